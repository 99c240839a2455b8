"""Resize and Upsample: separable resampling, one axis at a time.

Per axis the output→input coordinate map is geometry (it depends on sizes only), so it is worked
out on the host; the data then goes through lazytensor ops: nearest modes are a gather, linear and
cubic modes multiply by an (out, in) interpolation matrix along the axis.
"""
from __future__ import annotations

import math

import numpy as np

from lazytensor.onnx.ops import OpContext, Value, normalize_axis, register, static_floats, static_ints
from lazytensor.tensor import Tensor


def source_coords(mode: str, out: int, size: int, scale: float, roi: tuple[float, float]) -> np.ndarray:
    """ONNX coordinate_transformation_mode: output positions 0..out-1 → positions in the input axis."""
    x = np.arange(out, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = out / (scale * size)
        center = size / 2
        offset = center * (1 - adjustment)
        return offset + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out > 1 else np.zeros(out)
    if mode == "align_corners":
        out_float = scale * size      # the reference divides by the unrounded output length
        return x * (size - 1) / (out_float - 1) if out_float != 1 else np.zeros(out)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_crop_and_resize":
        start, end = roi
        if out > 1:
            return start * (size - 1) + x * (end - start) * (size - 1) / (out - 1)
        return np.full(out, 0.5 * (start + end) * (size - 1))
    raise ValueError(f"Resize: unknown coordinate_transformation_mode {mode!r}")


def nearest_index(coords: np.ndarray, mode: str, size: int) -> np.ndarray:
    if mode == "round_prefer_floor":
        idx = np.where(coords - np.floor(coords) == 0.5, np.floor(coords), np.round(coords))
    elif mode == "round_prefer_ceil":
        idx = np.where(coords - np.floor(coords) == 0.5, np.ceil(coords), np.round(coords))
    elif mode == "floor":
        idx = np.floor(coords)
    elif mode == "ceil":
        idx = np.ceil(coords)
    else:
        raise ValueError(f"Resize: unknown nearest_mode {mode!r}")
    return np.clip(idx, 0, size - 1).astype(np.int64)


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def interpolation_matrix(coords: np.ndarray, size: int, mode: str, cubic_a: float, exclude_outside: bool,
                         antialias: bool, scale: float) -> np.ndarray:
    """(out, in) weights: row o mixes the input taps around coords[o] (edge taps clamp to the border)."""
    out = len(coords)
    weights = np.zeros((out, size), dtype=np.float64)
    radius = 1.0 if mode == "linear" else 2.0

    def kernel(d: np.ndarray) -> np.ndarray:
        if mode == "linear":
            return np.maximum(0.0, 1 - np.abs(d))
        return _cubic(d, cubic_a)

    squeeze = min(scale, 1.0) if antialias else 1.0      # antialias widens the kernel when shrinking
    start = int(math.floor(-radius / squeeze) + 1)
    offsets = np.arange(start, 2 - start)
    for o, c in enumerate(coords):
        base = math.floor(c)
        taps = base + offsets
        w = kernel((taps - c) * squeeze)
        if antialias:
            w = w / w.sum()
        if exclude_outside:
            w = np.where((taps >= 0) & (taps <= size - 1), w, 0.0)
            total = w.sum()
            w = w / total if total != 0 else w
        for t, wt in zip(np.clip(taps, 0, size - 1).astype(np.int64), w):
            weights[o, t] += wt
    return weights


def _along(x: Tensor, axis: int, matrix: np.ndarray) -> Tensor:
    """Contract x's axis (size in) with matrix (out, in) → same layout with size out."""
    m = Tensor(matrix.T.copy(), device=x.device).cast(x.dtype)        # (in, out)
    return x.movedim(axis, -1).matmul(m).movedim(-1, axis)


def resize(ctx: OpContext, x: Tensor, out_sizes: list[int], scales: list[float], roi: list[float]) -> Tensor:
    mode = ctx.attr("mode", "nearest")
    coord_mode = ctx.attr("coordinate_transformation_mode", "half_pixel" if ctx.opset >= 11 else "asymmetric")
    nearest_mode = ctx.attr("nearest_mode", "round_prefer_floor" if ctx.opset >= 11 else "floor")
    cubic_a = ctx.attr("cubic_coeff_a", -0.75)
    exclude = bool(ctx.attr("exclude_outside", 0))
    antialias = bool(ctx.attr("antialias", 0))
    extrapolation = ctx.attr("extrapolation_value", 0.0)
    if mode not in ("nearest", "linear", "cubic"):
        raise ctx.unsupported(f"mode {mode!r}")
    y = x
    for axis in range(x.ndim):
        size, out, scale = x.shape[axis], out_sizes[axis], scales[axis]
        if out == size and scale == 1.0 and coord_mode != "tf_crop_and_resize":
            continue
        region = (roi[axis], roi[axis + x.ndim]) if roi else (0.0, 1.0)
        coords = source_coords(coord_mode, out, size, scale, region)
        outside = (coords < 0) | (coords > size - 1) if coord_mode == "tf_crop_and_resize" else None
        if mode == "nearest":
            index = Tensor(nearest_index(coords, nearest_mode, size), device=x.device)
            y = y.index_select(axis, index)
        else:
            y = _along(y, axis, interpolation_matrix(coords, size, mode, cubic_a, exclude, antialias, scale))
        if outside is not None and outside.any():
            shape = tuple(out if i == axis else 1 for i in range(x.ndim))
            mask = Tensor(outside.reshape(shape), device=x.device)
            y = mask._where(extrapolation, y).cast(x.dtype)
    return y


def _output_geometry(ctx: OpContext, x: Tensor, scales: list[float], sizes: list[int],
                     axes: list[int]) -> tuple[list[int], list[float]]:
    n = x.ndim
    full_scales = [1.0] * n
    full_sizes = list(x.shape)
    if sizes:
        policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
        ratios = [sizes[i] / x.shape[a] for i, a in enumerate(axes)]
        if policy != "stretch":
            r = min(ratios) if policy == "not_larger" else max(ratios)
            ratios = [r] * len(axes)
            sizes = [int(math.floor(r * x.shape[a] + 0.5)) for a in axes]
        for i, a in enumerate(axes):
            full_sizes[a] = sizes[i]
            full_scales[a] = ratios[i]
    else:
        for i, a in enumerate(axes):
            full_scales[a] = scales[i]
            full_sizes[a] = int(math.floor(x.shape[a] * scales[i]))
    return full_sizes, full_scales


@register("Resize")
def resize_op(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    if ctx.opset < 11:
        roi, scales, sizes = [], static_floats(args[1]), []
    else:
        roi = static_floats(args[1]) if len(args) > 1 and args[1] is not None else []
        scales = static_floats(args[2]) if len(args) > 2 and args[2] is not None else []
        sizes = static_ints(args[3]) if len(args) > 3 and args[3] is not None else []
    axes = [normalize_axis(a, x.ndim, ctx) for a in (ctx.attr("axes") or range(x.ndim))]
    if roi and len(roi) == 2 * len(axes) and len(axes) != x.ndim:
        full_roi = [0.0] * x.ndim + [1.0] * x.ndim
        for i, a in enumerate(axes):
            full_roi[a], full_roi[a + x.ndim] = roi[i], roi[i + len(axes)]
        roi = full_roi
    out_sizes, out_scales = _output_geometry(ctx, x, scales, sizes, axes)
    return resize(ctx, x, out_sizes, out_scales, roi)


@register("Upsample")
def upsample(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    scales = ctx.attr("scales") if ctx.opset < 9 else static_floats(args[1])
    out_sizes = [int(math.floor(s * f)) for s, f in zip(x.shape, scales)]
    return resize(ctx, x, out_sizes, list(scales), [])

"""nn area: pooling (max/avg/adaptive), interpolation, pad, unfold/fold, and their Module classes.

Fixed-window pooling reuses conv.py's `sliding_windows` view: pad the input (with -inf for max,
zeros for average), view it as (*lead, *out, *kernel) windows and reduce the kernel axes.
Adaptive pooling uses index masks built from iota (window i covers [floor(i·L/O), ceil((i+1)·L/O))).
Max pooling that needs gradients or indices routes everything to the first maximum of each window,
exactly as torch does (a plain max-reduce would split the gradient between ties).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from lazytensor import dtypes
from lazytensor.creation import arange, ones
from lazytensor.functions import where
from lazytensor.nn.conv import IntOrTuple, _trailing_pad, ntuple, sliding_windows
from lazytensor.nn.module import Module
from lazytensor.tensor import Tensor

FUNCTIONS: list[str] = ["max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
                        "max_pool2d_with_indices", "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d",
                        "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
                        "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool1d_with_indices",
                        "adaptive_max_pool2d_with_indices", "interpolate", "upsample", "pad", "unfold",
                        "fold"]
MODULES: list[str] = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
                      "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
                      "AdaptiveMaxPool2d", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d",
                      "Unfold", "Fold"]


# ---- geometry ----

def _check_rank(op: str, x: Tensor, n: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected an lt.Tensor input, got {type(x).__name__}")
    if x.ndim not in (n + 1, n + 2):
        raise RuntimeError(f"{op}: expected {n + 1}D (unbatched) or {n + 2}D (batched) input, but got input "
                           f"of size {list(x.shape)} ({x.ndim}D)")


def _pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape: floor or ceil, and a ceil window must start inside input or left pad."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


class _PoolGeometry:
    """Kernel, stride, padding, dilation and output size of an n-d pooling, validated like torch."""

    def __init__(self, op: str, x: Tensor, n: int, kernel_size: IntOrTuple, stride: IntOrTuple | None,
                 padding: IntOrTuple, dilation: IntOrTuple, ceil_mode: bool, is_max: bool) -> None:
        self.n = n
        self.kernel = ntuple(kernel_size, n, "kernel_size", op)
        empty = stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
        self.stride = self.kernel if empty else ntuple(stride, n, "stride", op)
        self.pad = ntuple(padding, n, "padding", op)
        self.dilation = ntuple(dilation, n, "dilation", op)
        if any(k <= 0 for k in self.kernel):
            raise RuntimeError(f"{op}: kernel_size must be greater than zero, but got {self.kernel}")
        if any(s <= 0 for s in self.stride):
            raise RuntimeError(f"{op}: stride must be greater than zero, but got {self.stride}")
        if any(d <= 0 for d in self.dilation):
            raise RuntimeError(f"{op}: dilation must be greater than zero, but got {self.dilation}")
        for k, p, d in zip(self.kernel, self.pad, self.dilation):
            if p < 0:
                raise RuntimeError(f"{op}: padding must be non-negative, but got {self.pad}")
            if is_max and p > (d * (k - 1) + 1) // 2:
                raise RuntimeError(f"{op}: pad should be at most half of effective kernel size, but got pad="
                                   f"{p}, kernel_size={k} and dilation={d}")
            if not is_max and p > k // 2:
                raise RuntimeError(f"{op}: pad should be at most half of kernel size, but got pad={p}, "
                                   f"kernel_size={k}")
        self.sizes = tuple(x.shape[x.ndim - n:])
        self.outs = tuple(_pool_output_size(i, k, s, p, d, ceil_mode) for i, k, s, p, d in
                          zip(self.sizes, self.kernel, self.stride, self.pad, self.dilation))
        if any(o < 1 for o in self.outs):
            lead = x.shape[x.ndim - n - 1]
            given = " x ".join(str(v) for v in (lead,) + self.sizes)
            calculated = " x ".join(str(v) for v in (lead,) + self.outs)
            raise RuntimeError(f"{op}: given input size: ({given}). Calculated output size: ({calculated}). "
                               f"Output size is too small")

    def padding_pairs(self) -> list[tuple[int, int]]:
        """(before, after) so the padded input holds exactly the windows of `outs` (after may crop)."""
        pairs = []
        for i, k, s, p, d, o in zip(self.sizes, self.kernel, self.stride, self.pad, self.dilation, self.outs):
            needed = (o - 1) * s + d * (k - 1) + 1
            pairs.append((p, needed - i - p))
        return pairs

    def is_exact(self) -> bool:
        """True when every window lies inside the unpadded input."""
        return all(b == 0 and a <= 0 for b, a in self.padding_pairs())

    def windows(self, x: Tensor, value: float | None = None) -> Tensor:
        """x (*lead, *in) padded (with value) and viewed as (*lead, *out, *kernel)."""
        padded = x.pad(_trailing_pad(self.padding_pairs()), value=value)
        return sliding_windows(padded, self.kernel, self.stride, self.dilation)


# ---- max pooling ----

def _taps(shape: tuple[int, ...], device: str) -> Tensor:
    """int64 tensor of `shape` numbering its elements 0, 1, ... in row-major order."""
    return arange(math.prod(shape), dtype=dtypes.int64, device=device).reshape(shape)


def _first_max(win: Tensor, n: int, valid: Tensor | None) -> tuple[Tensor, Tensor]:
    """For windows on the last n axes: (value, tap) of the first maximum (a NaN counts as the maximum).

    Only taps where `valid` is true can be chosen (padding never wins, as in torch). The value is a
    where-select of that tap, so the gradient flows to it alone."""
    axes = tuple(range(win.ndim - n, win.ndim))
    kernel = tuple(win.shape[win.ndim - n:])
    taps = _taps(kernel, win.device)
    best = win.amax(axes, keepdim=True)
    hit = win == best
    if win.dtype.is_float:
        hit = hit | win.isnan()
    if valid is not None:
        hit = hit & valid
    first = where(hit, taps, math.prod(kernel)).amin(axes)
    chosen = taps == first.reshape(tuple(first.shape) + (1,) * n)
    value = where(chosen, win, 0.0 if win.dtype.is_float else 0).sum(axes)
    return value, first


def _max_pool(op: str, n: int, x: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None,
              padding: IntOrTuple, dilation: IntOrTuple, ceil_mode: bool, return_indices: bool) -> Any:
    """Max over each window; with return_indices also the flat index (within each plane) of the maximum."""
    _check_rank(op, x, n)
    geo = _PoolGeometry(op, x, n, kernel_size, stride, padding, dilation, ceil_mode, is_max=True)
    lowest = -math.inf if x.dtype.is_float else dtypes.min_value(x.dtype)
    win = geo.windows(x, lowest)
    axes = tuple(range(win.ndim - n, win.ndim))
    if not return_indices and not x.requires_grad:
        return win.amax(axes)
    valid = None
    if not geo.is_exact():
        valid = geo.windows(ones(geo.sizes, dtype=dtypes.bool_, device=x.device), False)
    value, first = _first_max(win, n, valid)
    if not return_indices:
        return value
    # tap number → position in the unpadded input: o·stride + k·dilation - pad per dim, flattened
    index = first._const(0, shape=())
    tap_stride = math.prod(geo.kernel)
    plane_stride = math.prod(geo.sizes)
    for axis in range(n):
        tap_stride //= geo.kernel[axis]
        plane_stride //= geo.sizes[axis]
        k = (first // tap_stride) % geo.kernel[axis]
        shape = [1] * n
        shape[axis] = geo.outs[axis]
        o = arange(geo.outs[axis], dtype=dtypes.int64, device=x.device).reshape(shape)
        pos = o * geo.stride[axis] + k * geo.dilation[axis] - geo.pad[axis]
        index = index + pos * plane_stride
    return value, index


def max_pool1d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Any:
    """1-D max pooling over (N, C, L) or (C, L); with return_indices also the argmax positions."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Any:
    """2-D max pooling over (N, C, H, W) or (C, H, W); indices are flat positions h·W + w."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool3d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Any:
    """3-D max pooling over (N, C, D, H, W) or (C, D, H, W)."""
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool1d_with_indices(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
                            padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
                            ceil_mode: bool = False, return_indices: bool = True) -> Any:
    """max_pool1d returning (values, indices)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
                            padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
                            ceil_mode: bool = False, return_indices: bool = True) -> Any:
    """max_pool2d returning (values, indices)."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
                            padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
                            ceil_mode: bool = False, return_indices: bool = True) -> Any:
    """max_pool3d returning (values, indices)."""
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


# ---- average pooling ----

def _window_counts(geo: _PoolGeometry, axis: int, include_pad: bool, device: str) -> Tensor:
    """Per output position along one axis: how many taps the divisor counts (float32, shape (out,))."""
    size, k, s, p = geo.sizes[axis], geo.kernel[axis], geo.stride[axis], geo.pad[axis]
    start = arange(geo.outs[axis], dtype=dtypes.int64, device=device) * s - p
    if include_pad:
        end = (start + k).clamp(max=size + p)
        return (end - start).float()
    end = (start + k).clamp(max=size)
    return (end - start.clamp(min=0)).float()


def _avg_pool(op: str, n: int, x: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None,
              padding: IntOrTuple, ceil_mode: bool, count_include_pad: bool,
              divisor_override: int | None) -> Tensor:
    """Mean over each window: sum / divisor, the divisor following torch's count_include_pad rules."""
    _check_rank(op, x, n)
    if not x.dtype.is_float:
        raise RuntimeError(f"{op}: expected a floating-point input, got {x.dtype.name}; call .float() first")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError(f"{op}: divisor must be not zero")
    geo = _PoolGeometry(op, x, n, kernel_size, stride, padding, 1, ceil_mode, is_max=False)
    win = geo.windows(x)
    total = win.sum(tuple(range(win.ndim - n, win.ndim)))
    if divisor_override is not None:
        return total / divisor_override
    full = all(a <= 0 for _, a in geo.padding_pairs()) and (count_include_pad or geo.is_exact())
    if full:
        return total / math.prod(geo.kernel)
    divisor: Tensor | None = None
    for axis in range(n):
        shape = [1] * n
        shape[axis] = geo.outs[axis]
        count = _window_counts(geo, axis, count_include_pad, x.device).reshape(shape)
        divisor = count if divisor is None else divisor * count
    assert divisor is not None
    return total / divisor.to(x.dtype)


def avg_pool1d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """1-D average pooling over (N, C, L) or (C, L)."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """2-D average pooling over (N, C, H, W) or (C, H, W)."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """3-D average pooling over (N, C, D, H, W) or (C, D, H, W)."""
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


# ---- adaptive pooling ----

def _adaptive_sizes(op: str, x: Tensor, n: int, output_size: Any) -> tuple[int, ...]:
    _check_rank(op, x, n)
    if isinstance(output_size, (list, tuple)):
        if len(output_size) != n:
            raise ValueError(f"{op}: output_size must be an int or a tuple of {n} ints, got "
                             f"{tuple(output_size)}")
        sizes = tuple(x.shape[x.ndim - n + i] if s is None else int(s) for i, s in enumerate(output_size))
    else:
        sizes = (int(output_size),) * n
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"{op}: output_size must be non-negative, got {sizes}")
    spatial = tuple(x.shape[x.ndim - n:])
    if any(s == 0 for s in spatial):
        raise RuntimeError(f"{op}: expected input with non-zero spatial size, got input of size "
                           f"{list(x.shape)}")
    return sizes


def _adaptive_mask(size: int, out: int, device: str) -> Tensor:
    """(out, size) bool: window i covers [floor(i·size/out), ceil((i+1)·size/out))."""
    i = arange(out, dtype=dtypes.int64, device=device).reshape(out, 1)
    j = arange(size, dtype=dtypes.int64, device=device).reshape(1, size)
    start = (i * size) // out
    end = ((i + 1) * size + out - 1) // out
    return (j >= start) & (j < end)


def _adaptive_avg(op: str, n: int, x: Tensor, output_size: Any) -> Tensor:
    """Adaptive average pooling, one spatial axis at a time (averaging over a box is separable)."""
    outs = _adaptive_sizes(op, x, n, output_size)
    if not x.dtype.is_float:
        raise RuntimeError(f"{op}: expected a floating-point input, got {x.dtype.name}; call .float() first")
    spatial = tuple(x.shape[x.ndim - n:])
    if all(o > 0 and i % o == 0 for i, o in zip(spatial, outs)):   # equal windows: a plain average pool
        kernel = tuple(i // o for i, o in zip(spatial, outs))
        return _avg_pool(op, n, x, kernel, kernel, 0, False, True, None)
    out = x
    for axis in range(n):
        dim = x.ndim - n + axis
        size, o = spatial[axis], outs[axis]
        if size == o:
            continue
        moved = out.movedim(dim, -1).unsqueeze(-2)                     # (..., 1, size)
        mask = _adaptive_mask(size, o, x.device)                          # (o, size)
        total = where(mask, moved, 0.0).sum(-1)                           # (..., o)
        count = mask.sum(-1).to(x.dtype)
        out = (total / count).movedim(-1, dim)
    return out


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling of (N, C, L) to a fixed length."""
    return _adaptive_avg("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling of (N, C, H, W) to a fixed (H_out, W_out); None keeps that size."""
    return _adaptive_avg("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling of (N, C, D, H, W) to a fixed (D_out, H_out, W_out)."""
    return _adaptive_avg("adaptive_avg_pool3d", 3, input, output_size)


def _adaptive_max(op: str, n: int, x: Tensor, output_size: Any, return_indices: bool) -> Any:
    """Adaptive max pooling: every output position masks the whole plane to its window and takes the max."""
    outs = _adaptive_sizes(op, x, n, output_size)
    spatial = tuple(x.shape[x.ndim - n:])
    lead = tuple(x.shape[:x.ndim - n])
    mask: Tensor | None = None                                            # (*out, *in)
    for axis in range(n):
        m = _adaptive_mask(spatial[axis], outs[axis], x.device)
        shape = [1] * (2 * n)
        shape[axis], shape[n + axis] = outs[axis], spatial[axis]
        m = m.reshape(shape)
        mask = m if mask is None else mask & m
    assert mask is not None
    lowest = -math.inf if x.dtype.is_float else dtypes.min_value(x.dtype)
    win = x.reshape(lead + (1,) * n + spatial)
    win = where(mask, win, lowest)                                        # (*lead, *out, *in)
    if not return_indices and not x.requires_grad:
        return win.amax(tuple(range(win.ndim - n, win.ndim)))
    value, first = _first_max(win, n, mask)
    return (value, first) if return_indices else value


def adaptive_max_pool1d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling of (N, C, L) to a fixed length."""
    return _adaptive_max("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling of (N, C, H, W) to a fixed (H_out, W_out)."""
    return _adaptive_max("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool1d_with_indices(input: Tensor, output_size: Any, return_indices: bool = True) -> Any:
    """adaptive_max_pool1d returning (values, indices)."""
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input: Tensor, output_size: Any, return_indices: bool = True) -> Any:
    """adaptive_max_pool2d returning (values, indices)."""
    return adaptive_max_pool2d(input, output_size, True)


# ---- interpolation ----

_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area")


def _interp_sizes(x: Tensor, n: int, size: Any,
                  scale_factor: Any) -> tuple[tuple[int, ...], list[float | None]]:
    """Output sizes and the user's scale factors (None where the size was given)."""
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: exactly one of size or scale_factor must be defined")
    spatial = tuple(x.shape[2:])
    if size is not None:
        sizes = ntuple(size, n, "size", "interpolate")
        return sizes, [None] * n
    if isinstance(scale_factor, (list, tuple)):
        if len(scale_factor) != n:
            raise ValueError(f"interpolate: scale_factor shape must match input shape; input is {n}D, "
                             f"scale_factor has {len(scale_factor)} elements")
        scales = [float(s) for s in scale_factor]
    else:
        scales = [float(scale_factor)] * n
    return tuple(int(math.floor(i * s)) for i, s in zip(spatial, scales)), list(scales)


def _source_scale(size: int, out: int, scale: float | None, align_corners: bool) -> float:
    """torch's area_pixel_compute_scale: the step in input coordinates per output pixel."""
    if align_corners:
        return (size - 1) / (out - 1) if out > 1 else 0.0
    if scale is not None and scale > 0:
        return 1.0 / scale
    return size / out


def _interp_axis(x: Tensor, dim: int, out: int, scale: float | None, mode: str,
                 align_corners: bool) -> Tensor:
    """Resample one axis of x to `out` samples (nearest: a gather; linear: two gathers and a lerp)."""
    size = x.shape[dim]
    step = _source_scale(size, out, scale, align_corners)
    compute = dtypes.float64 if x.dtype == dtypes.float64 else dtypes.float32
    dst = arange(out, dtype=compute, device=x.device)
    if mode in ("nearest", "nearest-exact"):
        offset = 0.5 if mode == "nearest-exact" else 0.0
        src = ((dst + offset) * step).floor().cast(dtypes.int64).clamp(max=size - 1)
        return x.index_select(dim, src)
    if align_corners:
        src = dst * step
    else:
        src = ((dst + 0.5) * step - 0.5).clamp(min=0.0)
    low = src.cast(dtypes.int64)                                   # src >= 0, so truncation is floor
    high = (low + 1).clamp(max=size - 1)
    frac = (src - low.cast(compute)).cast(x.dtype)
    shape = [1] * x.ndim
    shape[dim] = out
    frac = frac.reshape(shape)
    return x.index_select(dim, low) * (1 - frac) + x.index_select(dim, high) * frac


def interpolate(input: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize (N, C, *spatial) by size or scale_factor: nearest, nearest-exact, (bi/tri)linear or area."""
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported; supported modes are "
                                  f"{', '.join(_MODES)}")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    n = input.ndim - 2
    if n not in (1, 2, 3):
        raise ValueError(f"interpolate: expected a 3D, 4D or 5D input (N, C, *spatial), got {input.ndim}D "
                         f"input of size {list(input.shape)}")
    if mode in _LINEAR_MODES and _LINEAR_MODES[mode] != n:
        raise NotImplementedError(f"interpolate: got {input.ndim}D input, but {mode} mode needs "
                                  f"{_LINEAR_MODES[mode] + 2}D input")
    if align_corners is not None and mode not in _LINEAR_MODES:
        raise ValueError("interpolate: align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | trilinear")
    if not input.dtype.is_float and mode not in ("nearest", "nearest-exact"):
        raise RuntimeError(f"interpolate: mode {mode!r} needs a floating-point input, got {input.dtype.name}")
    sizes, scales = _interp_sizes(input, n, size, scale_factor)
    if any(s <= 0 for s in sizes):
        raise ValueError(f"interpolate: output size {sizes} must be positive (input {list(input.shape)})")
    if mode == "area":
        return _adaptive_avg("interpolate", n, input, sizes)
    if recompute_scale_factor:
        scales = [None] * n
    out = input
    for axis in reversed(range(n)):   # last axis first, the order torch's kernels combine the weights in
        out = _interp_axis(out, 2 + axis, sizes[axis], scales[axis], mode, bool(align_corners))
    return out


def upsample(input: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """Deprecated alias of interpolate (as in torch)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """F.pad: pairs (before, after) from the last dim backwards; modes constant/reflect/replicate/circular."""
    return input.pad(pad, mode=mode, value=value)


# ---- unfold / fold (im2col / col2im) ----

def unfold(input: Tensor, kernel_size: IntOrTuple, dilation: IntOrTuple = 1, padding: IntOrTuple = 0,
           stride: IntOrTuple = 1) -> Tensor:
    """Sliding blocks as columns: (N, C, H, W) → (N, C·kh·kw, L), L = number of blocks."""
    if input.ndim not in (3, 4):
        raise RuntimeError(f"unfold: expected 3D (unbatched) or 4D (batched) input, got input of size "
                           f"{list(input.shape)}")
    x = input if input.ndim == 4 else input.unsqueeze(0)
    k = ntuple(kernel_size, 2, "kernel_size", "unfold")
    d = ntuple(dilation, 2, "dilation", "unfold")
    p = ntuple(padding, 2, "padding", "unfold")
    s = ntuple(stride, 2, "stride", "unfold")
    x = x.pad(_trailing_pad([(v, v) for v in p]))
    win = sliding_windows(x, k, s, d)                                        # (N, C, oh, ow, kh, kw)
    n, c, oh, ow = win.shape[:4]
    cols = win.permute(0, 1, 4, 5, 2, 3).reshape(n, c * k[0] * k[1], oh * ow)
    return cols if input.ndim == 4 else cols.squeeze(0)


def fold(input: Tensor, output_size: IntOrTuple, kernel_size: IntOrTuple, dilation: IntOrTuple = 1,
         padding: IntOrTuple = 0, stride: IntOrTuple = 1) -> Tensor:
    """Sum columns back into an image (the adjoint of unfold): (N, C·kh·kw, L) → (N, C, H, W)."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"fold: expected 2D (unbatched) or 3D (batched) input, got input of size "
                           f"{list(input.shape)}")
    x = input if input.ndim == 3 else input.unsqueeze(0)
    size = ntuple(output_size, 2, "output_size", "fold")
    k = ntuple(kernel_size, 2, "kernel_size", "fold")
    d = ntuple(dilation, 2, "dilation", "fold")
    p = ntuple(padding, 2, "padding", "fold")
    s = ntuple(stride, 2, "stride", "fold")
    taps = k[0] * k[1]
    if x.shape[1] % taps:
        raise RuntimeError(f"fold: expected size of input's dimension 1 to be divisible by the product of "
                           f"kernel_size, but got input.size(1)={x.shape[1]} and kernel_size={k}")
    blocks = [(size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2)]
    if blocks[0] <= 0 or blocks[1] <= 0 or x.shape[2] != blocks[0] * blocks[1]:
        raise RuntimeError(f"fold: given output_size={size}, kernel_size={k}, dilation={d}, padding={p}, "
                           f"stride={s}, expected size of input's dimension 2 to match the calculated number "
                           f"of sliding blocks {blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got "
                           f"input.size(2)={x.shape[2]}")
    n, c = x.shape[0], x.shape[1] // taps
    ph, pw = size[0] + 2 * p[0], size[1] + 2 * p[1]
    # flat position in the padded image of tap (i, j) of block (bh, bw)
    dev = x.device
    i = arange(k[0], dtype=dtypes.int64, device=dev).reshape(k[0], 1, 1, 1)
    j = arange(k[1], dtype=dtypes.int64, device=dev).reshape(1, k[1], 1, 1)
    bh = arange(blocks[0], dtype=dtypes.int64, device=dev).reshape(1, 1, blocks[0], 1)
    bw = arange(blocks[1], dtype=dtypes.int64, device=dev).reshape(1, 1, 1, blocks[1])
    position = (bh * s[0] + i * d[0]) * pw + bw * s[1] + j * d[1]            # (kh, kw, bh, bw)
    index = position.reshape(1, 1, taps * blocks[0] * blocks[1]).expand(n, c, taps * blocks[0] * blocks[1])
    src = x.reshape(n, c, taps * x.shape[2])
    image = x._const(0, shape=(n, c, ph * pw)).scatter_add(2, index, src).reshape(n, c, ph, pw)
    image = image[:, :, p[0]:p[0] + size[0], p[1]:p[1] + size[1]]
    return image if input.ndim == 3 else image.squeeze(0)


# ---- layers ----

class _MaxPoolNd(Module):
    n = 0

    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor) -> Any:
        return _max_pool(f"max_pool{self.n}d", self.n, input, self.kernel_size, self.stride, self.padding,
                         self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling layer (see max_pool1d)."""
    n = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling layer (see max_pool2d)."""
    n = 2


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling layer (see max_pool3d)."""
    n = 3


class _AvgPoolNd(Module):
    n = 0

    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return _avg_pool(f"avg_pool{self.n}d", self.n, input, self.kernel_size, self.stride, self.padding,
                         self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling layer (see avg_pool1d)."""
    n = 1

    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling layer (see avg_pool2d)."""
    n = 2


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling layer (see avg_pool3d)."""
    n = 3


class _AdaptivePool(Module):
    n = 0
    is_max = False

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input: Tensor) -> Any:
        if self.is_max:
            return _adaptive_max(f"adaptive_max_pool{self.n}d", self.n, input, self.output_size,
                                 self.return_indices)
        return _adaptive_avg(f"adaptive_avg_pool{self.n}d", self.n, input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePool):
    """Average pooling to a fixed output length."""
    n = 1

    def __init__(self, output_size: Any) -> None:
        super().__init__(output_size)


class AdaptiveAvgPool2d(_AdaptivePool):
    """Average pooling to a fixed output size (H_out, W_out)."""
    n = 2

    def __init__(self, output_size: Any) -> None:
        super().__init__(output_size)


class AdaptiveAvgPool3d(_AdaptivePool):
    """Average pooling to a fixed output size (D_out, H_out, W_out)."""
    n = 3

    def __init__(self, output_size: Any) -> None:
        super().__init__(output_size)


class AdaptiveMaxPool1d(_AdaptivePool):
    """Max pooling to a fixed output length."""
    n, is_max = 1, True


class AdaptiveMaxPool2d(_AdaptivePool):
    """Max pooling to a fixed output size (H_out, W_out)."""
    n, is_max = 2, True


class Upsample(Module):
    """Resize layer: interpolate(input, size, scale_factor, mode, align_corners)."""

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None) -> None:
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        what = f"scale_factor={self.scale_factor}" if self.scale_factor is not None else f"size={self.size}"
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour 2-D upsampling."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear 2-D upsampling with align_corners=True (as torch)."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class Unfold(Module):
    """Extract sliding blocks as columns (see unfold)."""

    def __init__(self, kernel_size: IntOrTuple, dilation: IntOrTuple = 1, padding: IntOrTuple = 0,
                 stride: IntOrTuple = 1) -> None:
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(Module):
    """Sum columns back into an image (see fold)."""

    def __init__(self, output_size: IntOrTuple, kernel_size: IntOrTuple, dilation: IntOrTuple = 1,
                 padding: IntOrTuple = 0, stride: IntOrTuple = 1) -> None:
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

"""Shape and movement ONNX ops: Reshape, Transpose, Concat/Split/Slice, Pad, Expand/Tile, constants."""
from __future__ import annotations

import math

import numpy as np

from lazytensor import creation, dtypes
from lazytensor.functions import cat
from lazytensor.onnx.ops import (OpContext, Value, full, normalize_axis, register, static_ints, static_scalar)
from lazytensor.tensor import Tensor


@register("Shape")
def shape(ctx: OpContext, args: list[Value]) -> Value:
    dims = list(args[0].shape)
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    return ctx.tensor(np.array(dims[slice(start, end)], dtype=np.int64))


@register("Size")
def size(ctx: OpContext, args: list[Value]) -> Value:
    return ctx.tensor(np.array(args[0].numel(), dtype=np.int64))


@register("Reshape")
def reshape(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    target = ctx.attr("shape") if ctx.opset < 5 else static_ints(args[1])
    allow_zero = ctx.attr("allowzero", 0)
    dims = []
    for i, d in enumerate(target):
        if d == 0 and not allow_zero:
            dims.append(x.shape[i])
        else:
            dims.append(d)
    return x.reshape(tuple(dims))


@register("Flatten")
def flatten(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    axis = ctx.attr("axis", 1)
    if axis < 0:
        axis += x.ndim
    lead = math.prod(x.shape[:axis])
    return x.reshape((lead, math.prod(x.shape[axis:])))


def _axes_arg(ctx: OpContext, args: list[Value], since: int) -> list[int] | None:
    if ctx.opset < since:
        return ctx.attr("axes")
    if len(args) > 1 and args[1] is not None:
        return static_ints(args[1])
    return None


@register("Squeeze")
def squeeze(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    axes = _axes_arg(ctx, args, 13)
    if axes is None:
        axes = [i for i, s in enumerate(x.shape) if s == 1]
    axes = sorted(normalize_axis(a, x.ndim, ctx) for a in axes)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"{ctx.where()}: cannot squeeze axis {a} of size {x.shape[a]} in shape {list(x.shape)}")
    return x.reshape(tuple(s for i, s in enumerate(x.shape) if i not in axes))


@register("Unsqueeze")
def unsqueeze(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    axes = _axes_arg(ctx, args, 13) or []
    rank = x.ndim + len(axes)
    axes = sorted(normalize_axis(a, rank, ctx) for a in axes)
    dims = list(x.shape)
    for a in axes:
        dims.insert(a, 1)
    return x.reshape(tuple(dims))


@register("Transpose")
def transpose(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    perm = ctx.attr("perm") or list(reversed(range(x.ndim)))
    return x.permute(perm)


@register("Concat")
def concat(ctx: OpContext, args: list[Value]) -> Value:
    xs = [x for x in args if x is not None]
    axis = normalize_axis(ctx.attr("axis", 0), xs[0].ndim, ctx)
    nonempty = [x for x in xs if x.shape[axis] != 0] or xs[:1]
    return cat(nonempty, dim=axis) if len(nonempty) > 1 else nonempty[0]


@register("Split")
def split(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    axis = normalize_axis(ctx.attr("axis", 0), x.ndim, ctx)
    n_out = len(ctx.node.outputs)
    if ctx.opset < 13:
        sizes = ctx.attr("split")
    else:
        sizes = static_ints(args[1]) if len(args) > 1 and args[1] is not None else None
    if not sizes:
        n = ctx.attr("num_outputs", n_out)
        chunk = -(-x.shape[axis] // n)
        sizes = [min(chunk, x.shape[axis] - i * chunk) for i in range(n)]
    if sum(sizes) != x.shape[axis]:
        raise ValueError(f"{ctx.where()}: split sizes {sizes} do not add up to axis {axis} of shape {list(x.shape)}")
    outs, start = [], 0
    for s in sizes:
        outs.append(x.narrow(axis, start, s))
        start += s
    return tuple(outs)


def slice_tensor(x: Tensor, starts: list[int], ends: list[int], axes: list[int], steps: list[int]) -> Tensor:
    """x[starts:ends:steps] along axes, with ONNX's clamping rules (ends may be ±huge)."""
    index: list[slice] = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = axis + x.ndim if axis < 0 else axis
        size = x.shape[axis]
        if step == 0:
            raise ValueError("Slice: step must not be 0")
        if start < 0:
            start += size
        if end < 0:
            end += size
        if step > 0:
            start, end = min(max(start, 0), size), min(max(end, 0), size)
        else:
            start, end = min(max(start, -1), size - 1), min(max(end, -1), size - 1)
        index[axis] = (start, end, step)
    out = x
    for axis, sl in enumerate(index):
        if isinstance(sl, slice):
            continue
        start, end, step = sl
        if step > 0:
            count = max(0, -(-(end - start) // step))
            out = out.narrow(axis, start, min(count * step, out.shape[axis] - start) if count else 0)
            if step > 1 and count:
                out = _stride_axis(out, axis, step, count)
        else:
            count = max(0, -(-(start - end) // -step))
            if count == 0:
                out = out.narrow(axis, 0, 0)
                continue
            lo = start - (count - 1) * (-step)
            out = out.narrow(axis, lo, start - lo + 1).flip(axis)
            if step < -1:
                out = _stride_axis(out, axis, -step, count)
    return out


def _stride_axis(x: Tensor, axis: int, step: int, count: int) -> Tensor:
    """Every step-th element along axis (count of them) as a pad+reshape+narrow view."""
    size = x.shape[axis]
    padded = count * step
    if padded > size:
        pads = [0, 0] * (x.ndim - axis - 1) + [0, padded - size]
        x = x.pad(pads)
    shape = list(x.shape)
    x = x.reshape(tuple(shape[:axis] + [count, step] + shape[axis + 1:]))
    x = x.narrow(axis + 1, 0, 1)
    return x.reshape(tuple(shape[:axis] + [count] + shape[axis + 1:]))


@register("Slice")
def slice_op(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    if ctx.opset < 10:
        starts, ends = ctx.attr("starts"), ctx.attr("ends")
        axes = ctx.attr("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = static_ints(args[1]), static_ints(args[2])
        axes = static_ints(args[3]) if len(args) > 3 and args[3] is not None else list(range(len(starts)))
        steps = static_ints(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    return slice_tensor(x, starts, ends, axes, steps)


@register("Expand")
def expand(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    target = static_ints(args[1])
    rank = max(len(target), x.ndim)
    xs = [1] * (rank - x.ndim) + list(x.shape)
    ts = [1] * (rank - len(target)) + target
    out = []
    for a, b in zip(xs, ts):
        if a != b and a != 1 and b != 1:
            raise ValueError(f"{ctx.where()}: cannot broadcast shape {list(x.shape)} to {target}")
        out.append(a if b == 1 else b)
    return x.reshape(tuple(xs)).expand(tuple(out))


@register("Tile")
def tile(ctx: OpContext, args: list[Value]) -> Value:
    return args[0].tile(tuple(static_ints(args[1])))


@register("Pad")
def pad(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    mode = ctx.attr("mode", "constant")
    if ctx.opset < 11:
        pads, value = ctx.attr("pads") or ctx.attr("paddings"), float(ctx.attr("value", 0.0))
        axes = list(range(x.ndim))
    else:
        pads = static_ints(args[1])
        value = static_scalar(args[2]) if len(args) > 2 and args[2] is not None else 0
        axes = static_ints(args[3]) if len(args) > 3 and args[3] is not None else list(range(x.ndim))
    axes = [normalize_axis(a, x.ndim, ctx) for a in axes]
    n = len(axes)
    pairs = [(0, 0)] * x.ndim
    for i, a in enumerate(axes):
        pairs[a] = (pads[i], pads[i + n])
    flat: list[int] = []
    for before, after in reversed(pairs):
        flat += [before, after]
    torch_mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}.get(mode)
    if torch_mode is None:
        raise ctx.unsupported(f"pad mode {mode!r}")
    if torch_mode == "constant":
        return x.pad(flat, mode="constant", value=value)
    return x.pad(flat, mode=torch_mode)


@register("Constant")
def constant(ctx: OpContext, args: list[Value]) -> Value:
    attrs = ctx.node.attrs
    if "value" in attrs:
        return _from_numpy(ctx, attrs["value"])
    if "value_float" in attrs:
        return ctx.tensor(np.array(attrs["value_float"], dtype=np.float32))
    if "value_floats" in attrs:
        return ctx.tensor(np.array(attrs["value_floats"], dtype=np.float32))
    if "value_int" in attrs:
        return ctx.tensor(np.array(attrs["value_int"], dtype=np.int64))
    if "value_ints" in attrs:
        return ctx.tensor(np.array(attrs["value_ints"], dtype=np.int64))
    if "sparse_value" in attrs:
        return _from_numpy(ctx, attrs["sparse_value"])
    raise ctx.unsupported(f"attributes {sorted(attrs)} (string constants are not supported)")


def _from_numpy(ctx: OpContext, arr: np.ndarray) -> Tensor:
    from lazytensor.onnx.model import to_tensor
    return to_tensor(arr, ctx.device)


@register("ConstantOfShape")
def constant_of_shape(ctx: OpContext, args: list[Value]) -> Value:
    dims = tuple(static_ints(args[0]))
    value = ctx.attr("value")
    if value is None:
        return full(dims, 0.0, dtypes.float32, ctx.device)
    proto = _from_numpy(ctx, np.asarray(value).reshape(-1)[:1])
    return proto.reshape(()).expand(dims) if dims else proto.reshape(())


@register("Range")
def range_op(ctx: OpContext, args: list[Value]) -> Value:
    start, limit, delta = (static_scalar(a) for a in args)
    dt = args[0].dtype
    count = max(int(math.ceil((limit - start) / delta)), 0)
    steps = creation.arange(count, dtype=dtypes.float64 if dt.is_float else dtypes.int64, device=ctx.device)
    return (steps * delta + start).cast(dt)


@register("EyeLike")
def eye_like(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    dt = ctx.dtype_attr("dtype") if ctx.attr("dtype") is not None else x.dtype
    rows, cols = x.shape
    k = ctx.attr("k", 0)
    r = creation.arange(rows, device=ctx.device).reshape((rows, 1))
    c = creation.arange(cols, device=ctx.device).reshape((1, cols))
    return (c - r).eq(k).cast(dt)


@register("Trilu")
def trilu(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    k = static_ints(args[1])[0] if len(args) > 1 and args[1] is not None else 0
    return x.triu(k) if ctx.attr("upper", 1) else x.tril(k)


@register("DepthToSpace")
def depth_to_space(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    b = ctx.attr("blocksize")
    n, c, h, w = x.shape
    if ctx.attr("mode", "DCR") == "DCR":
        y = x.reshape((n, b, b, c // (b * b), h, w)).permute((0, 3, 4, 1, 5, 2))
    else:
        y = x.reshape((n, c // (b * b), b, b, h, w)).permute((0, 1, 4, 2, 5, 3))
    return y.reshape((n, c // (b * b), h * b, w * b))


@register("SpaceToDepth")
def space_to_depth(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    b = ctx.attr("blocksize")
    n, c, h, w = x.shape
    y = x.reshape((n, c, h // b, b, w // b, b))
    y = y.permute((0, 1, 3, 5, 2, 4)) if ctx.attr("mode", "DCR") == "CRD" else y.permute((0, 3, 5, 1, 2, 4))
    return y.reshape((n, c * b * b, h // b, w // b))


@register("Dropout")
def dropout(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    training = len(args) > 2 and args[2] is not None and bool(static_scalar(args[2]))
    if training:
        ratio = static_scalar(args[1]) if len(args) > 1 and args[1] is not None else 0.5
        if ratio != 0:
            raise ctx.unsupported("training-mode dropout with ratio > 0 (random) is not supported")
    mask = full(tuple(x.shape), True, dtypes.bool_, ctx.device)
    if len(ctx.node.outputs) > 1:
        return x, mask
    return x

"""Indexed ONNX ops: Gather*, Scatter*, OneHot, NonZero, Compress, ReverseSequence, Einsum."""
from __future__ import annotations

import math

import numpy as np

from lazytensor import dtypes
from lazytensor.creation import arange
from lazytensor.functions import einsum
from lazytensor.onnx.ops import OpContext, Value, normalize_axis, register, static_ints
from lazytensor.tensor import Tensor


def wrap_negative(index: Tensor, size: int) -> Tensor:
    """ONNX indices may be negative (counted from the end)."""
    index = index.cast(dtypes.int64)
    return (index < 0)._where(index + size, index)


@register("Gather")
def gather(ctx: OpContext, args: list[Value]) -> Value:
    x, index = args
    axis = normalize_axis(ctx.attr("axis", 0), x.ndim, ctx)
    idx = wrap_negative(index, x.shape[axis])
    flat = x.index_select(axis, idx.reshape((-1,)))
    shape = tuple(x.shape[:axis]) + tuple(index.shape) + tuple(x.shape[axis + 1:])
    return flat.reshape(shape)


@register("GatherElements")
def gather_elements(ctx: OpContext, args: list[Value]) -> Value:
    x, index = args
    axis = normalize_axis(ctx.attr("axis", 0), x.ndim, ctx)
    return x.gather(axis, wrap_negative(index, x.shape[axis]))


def _linear_index(index: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Index tuples in the last axis of `index` → row-major linear positions within `dims`."""
    out = None
    stride = 1
    for i in range(len(dims) - 1, -1, -1):
        part = wrap_negative(index.narrow(index.ndim - 1, i, 1).squeeze(-1), dims[i]) * stride
        out = part if out is None else out + part
        stride *= dims[i]
    assert out is not None
    return out


@register("GatherND")
def gather_nd(ctx: OpContext, args: list[Value]) -> Value:
    x, index = args
    b = ctx.attr("batch_dims", 0)
    k = index.shape[-1]
    batch = tuple(x.shape[:b])
    nb = math.prod(batch)
    inner = tuple(x.shape[b:b + k])
    rest = tuple(x.shape[b + k:])
    data = x.reshape((nb, math.prod(inner)) + rest)
    idx = index.reshape((nb, -1, k))
    lin = _linear_index(idx, inner) if k else arange(1, dtype=dtypes.int64, device=x.device).reshape((1, 1)) * 0
    rows = arange(nb, dtype=dtypes.int64, device=x.device).reshape((nb, 1))
    picked = data[rows, lin]                          # (nb, M, *rest)
    return picked.reshape(batch + tuple(index.shape[b:-1]) + rest)


_SCATTER_REDUCE = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _scatter(ctx: OpContext, x: Tensor, axis: int, index: Tensor, updates: Tensor) -> Tensor:
    reduction = ctx.attr("reduction", "none")
    idx = wrap_negative(index, x.shape[axis])
    if reduction == "none":
        return x.scatter(axis, idx, updates)
    if reduction not in _SCATTER_REDUCE:
        raise ctx.unsupported(f"reduction {reduction!r}")
    return x.scatter_reduce(axis, idx, updates, _SCATTER_REDUCE[reduction], include_self=True)


@register("ScatterElements", "Scatter")
def scatter_elements(ctx: OpContext, args: list[Value]) -> Value:
    x, index, updates = args
    axis = normalize_axis(ctx.attr("axis", 0), x.ndim, ctx)
    return _scatter(ctx, x, axis, index, updates)


@register("ScatterND")
def scatter_nd(ctx: OpContext, args: list[Value]) -> Value:
    x, index, updates = args
    k = index.shape[-1]
    inner = tuple(x.shape[:k])
    rest = tuple(x.shape[k:])
    data = x.reshape((math.prod(inner),) + rest)
    lin = _linear_index(index.reshape((-1, k)), inner)            # (U,)
    n_updates = lin.shape[0]
    upd = updates.reshape((n_updates,) + rest)
    idx = lin.reshape((n_updates,) + (1,) * len(rest)).expand((n_updates,) + rest)
    return _scatter(ctx, data, 0, idx, upd).reshape(tuple(x.shape))


@register("OneHot")
def one_hot(ctx: OpContext, args: list[Value]) -> Value:
    indices, depth_t, values = args
    depth = int(np.asarray(depth_t.numpy()).reshape(-1)[0])
    axis = ctx.attr("axis", -1)
    rank = indices.ndim + 1
    axis = normalize_axis(axis, rank, ctx)
    idx = indices.cast(dtypes.int64)
    idx = (idx < 0)._where(idx + depth, idx).unsqueeze(axis)
    pos = arange(depth, dtype=dtypes.int64, device=indices.device).reshape(
        tuple(depth if i == axis else 1 for i in range(rank)))
    off, on = values.narrow(0, 0, 1).reshape(()), values.narrow(0, 1, 1).reshape(())
    return pos.eq(idx)._where(on, off)


@register("NonZero")
def nonzero(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    if x.ndim == 0:
        x = x.reshape((1,))
    return x.nonzero().transpose(0, 1).cast(dtypes.int64)


@register("Compress")
def compress(ctx: OpContext, args: list[Value]) -> Value:
    x, cond = args
    axis = ctx.attr("axis")
    if axis is None:
        x = x.reshape((-1,))
        axis = 0
    axis = normalize_axis(axis, x.ndim, ctx)
    cond = cond.reshape((-1,))
    cond = cond.narrow(0, 0, min(cond.shape[0], x.shape[axis])).cast(dtypes.bool_)
    keep = cond.nonzero().reshape((-1,))
    return x.index_select(axis, keep)


@register("ReverseSequence")
def reverse_sequence(ctx: OpContext, args: list[Value]) -> Value:
    x, lengths = args
    batch_axis, time_axis = ctx.attr("batch_axis", 1), ctx.attr("time_axis", 0)
    steps = x.shape[time_axis]
    shape_t = tuple(steps if i == time_axis else 1 for i in range(x.ndim))
    shape_b = tuple(x.shape[batch_axis] if i == batch_axis else 1 for i in range(x.ndim))
    t = arange(steps, dtype=dtypes.int64, device=x.device).reshape(shape_t)
    n = lengths.cast(dtypes.int64).reshape(shape_b)
    src = (t < n)._where(n - 1 - t, t)
    index = src.expand(tuple(x.shape))
    return x.gather(time_axis, index)


@register("Einsum")
def einsum_op(ctx: OpContext, args: list[Value]) -> Value:
    return einsum(ctx.attr("equation").replace(" ", ""), *args)

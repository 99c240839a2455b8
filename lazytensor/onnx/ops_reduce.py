"""Reducing ONNX ops: Reduce*, ArgMax/ArgMin, CumSum/CumProd, Softmax family, TopK, LpNormalization."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from lazytensor import dtypes
from lazytensor.creation import arange
from lazytensor.onnx.ops import OpContext, Value, full, normalize_axis, register, static_ints
from lazytensor.tensor import Tensor

# ReduceX: (opset from which axes is an input, function of (x, axes, keepdim), value of an empty reduce)
ReduceFn = Callable[[Tensor, tuple[int, ...], bool], Tensor]


def _sum(x: Tensor, axes: tuple[int, ...], keep: bool) -> Tensor:
    return x.sum(axes, keepdim=keep).cast(x.dtype)


def _log_sum_exp(x: Tensor, axes: tuple[int, ...], keep: bool) -> Tensor:
    if not x.dtype.is_float:
        return x.exp().sum(axes, keepdim=keep).log().cast(x.dtype)
    return x.logsumexp(axes, keepdim=keep)


REDUCTIONS: dict[str, tuple[int, ReduceFn, float]] = {
    "ReduceSum": (13, _sum, 0),
    "ReduceMean": (18, lambda x, a, k: x.mean(a, keepdim=k) if x.dtype.is_float
                   else (x.sum(a, keepdim=k) // math.prod(x.shape[i] for i in a)).cast(x.dtype), math.nan),
    "ReduceMax": (18, lambda x, a, k: x.amax(a, keepdim=k), -math.inf),
    "ReduceMin": (18, lambda x, a, k: x.amin(a, keepdim=k), math.inf),
    "ReduceProd": (18, lambda x, a, k: x.prod(a, keepdim=k).cast(x.dtype), 1),
    "ReduceL1": (18, lambda x, a, k: x.abs().sum(a, keepdim=k).cast(x.dtype), 0),
    "ReduceL2": (18, lambda x, a, k: (x * x).sum(a, keepdim=k).sqrt().cast(x.dtype), 0),
    "ReduceLogSum": (18, lambda x, a, k: x.sum(a, keepdim=k).log(), -math.inf),
    "ReduceLogSumExp": (18, _log_sum_exp, -math.inf),
    "ReduceSumSquare": (18, lambda x, a, k: (x * x).sum(a, keepdim=k).cast(x.dtype), 0),
}


def _reduction(name: str, axes_input_since: int, fn: ReduceFn, empty_value: float):
    def handler(ctx: OpContext, args: list[Value]) -> Value:
        x = args[0]
        keep = bool(ctx.attr("keepdims", 1))
        if ctx.opset >= axes_input_since:
            axes = static_ints(args[1]) if len(args) > 1 and args[1] is not None else []
        else:
            axes = ctx.attr("axes") or []
        if not axes:
            if ctx.attr("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.ndim))
        axes_t = tuple(sorted({normalize_axis(a, x.ndim, ctx) for a in axes}))
        if x.numel() == 0:
            out_shape = tuple(1 if i in axes_t else s for i, s in enumerate(x.shape) if keep or i not in axes_t)
            value = empty_value
            if not x.dtype.is_float and math.isinf(value):
                info = np.iinfo(x.dtype.np) if x.dtype.is_int else None
                value = (info.min if value < 0 else info.max) if info else (value > 0)
            return full(out_shape, value, x.dtype, ctx.device)
        if x.ndim == 0:
            return fn(x.reshape((1,)), (0,), False) if not keep else fn(x.reshape((1,)), (0,), False)
        return fn(x, axes_t, keep)
    return handler


for _name, (_since, _fn, _empty) in REDUCTIONS.items():
    register(_name)(_reduction(_name, _since, _fn, _empty))


def _arg(largest: bool):
    def handler(ctx: OpContext, args: list[Value]) -> Value:
        x = args[0]
        axis = normalize_axis(ctx.attr("axis", 0), x.ndim, ctx)
        keep = bool(ctx.attr("keepdims", 1))
        if ctx.attr("select_last_index", 0):
            flipped = x.flip(axis)
            idx = flipped.argmax(axis, keepdim=keep) if largest else flipped.argmin(axis, keepdim=keep)
            return (x.shape[axis] - 1 - idx).cast(dtypes.int64)
        idx = x.argmax(axis, keepdim=keep) if largest else x.argmin(axis, keepdim=keep)
        return idx.cast(dtypes.int64)
    return handler


register("ArgMax")(_arg(True))
register("ArgMin")(_arg(False))


def _scan(method: str):
    def handler(ctx: OpContext, args: list[Value]) -> Value:
        x = args[0]
        axis = normalize_axis(static_ints(args[1])[0], x.ndim, ctx)
        exclusive, reverse = ctx.attr("exclusive", 0), ctx.attr("reverse", 0)
        if reverse:
            x = x.flip(axis)
        out = getattr(x, method)(axis).cast(x.dtype)
        if exclusive:
            identity = 0 if method == "cumsum" else 1
            pads = [0, 0] * (x.ndim - axis - 1) + [1, 0]
            out = out.narrow(axis, 0, x.shape[axis] - 1).pad(pads, value=identity)
        if reverse:
            out = out.flip(axis)
        return out
    return handler


register("CumSum")(_scan("cumsum"))
register("CumProd")(_scan("cumprod"))


def _softmax_family(kind: str):
    def handler(ctx: OpContext, args: list[Value]) -> Value:
        x = args[0]
        if ctx.opset < 13:
            # older opsets flatten to 2-D at axis (default 1) and normalize over the trailing block
            axis = normalize_axis(ctx.attr("axis", 1), x.ndim, ctx)
            flat = x.reshape((math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))
            return _apply(kind, flat, 1).reshape(tuple(x.shape))
        axis = normalize_axis(ctx.attr("axis", -1), x.ndim, ctx)
        return _apply(kind, x, axis)
    return handler


def _apply(kind: str, x: Tensor, axis: int) -> Tensor:
    if kind == "Softmax":
        return x.softmax(axis)
    if kind == "LogSoftmax":
        return x.log_softmax(axis)
    # Hardmax: one-hot of the first maximum
    idx = x.argmax(axis, keepdim=True)
    pos = Tensor(np.arange(x.shape[axis]), device=x.device).reshape(
        tuple(x.shape[axis] if i == axis else 1 for i in range(x.ndim)))
    return pos.eq(idx).cast(x.dtype)


for _kind in ("Softmax", "LogSoftmax", "Hardmax"):
    register(_kind)(_softmax_family(_kind))


@register("TopK")
def topk(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    k = ctx.attr("k") if ctx.opset < 10 else static_ints(args[1])[0]
    axis = normalize_axis(ctx.attr("axis", -1), x.ndim, ctx)
    largest = bool(ctx.attr("largest", 1))
    return top_k(x, k, axis, largest)


def top_k(x: Tensor, k: int, axis: int, largest: bool) -> tuple[Tensor, Tensor]:
    """The k largest (smallest) entries along axis, sorted, ties broken by lower index; with int64 indices.

    Each element's rank is counted by comparing it against every other element on its axis
    (O(n²) per row: meant for the short axes TopK sees), then values and indices are scattered
    to their rank and the first k kept."""
    n = x.shape[axis]
    xa = x.movedim(axis, -1)
    a = xa.unsqueeze(-1)         # (..., n, 1): element i
    b = xa.unsqueeze(-2)         # (..., 1, n): element j
    beats = b > a if largest else b < a
    pos = arange(n, dtype=dtypes.int64, device=x.device)
    earlier = pos.reshape((1, n)) < pos.reshape((n, 1))     # [i, j]: j < i
    rank = (beats | (b.eq(a) & earlier)).cast(dtypes.int64).sum(-1)
    idx = pos.expand(tuple(xa.shape))
    values = xa.scatter(-1, rank, xa).narrow(xa.ndim - 1, 0, k)
    indices = idx.scatter(-1, rank, idx).narrow(xa.ndim - 1, 0, k)
    return values.movedim(-1, axis), indices.movedim(-1, axis)


@register("LpNormalization")
def lp_normalization(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    axis = normalize_axis(ctx.attr("axis", -1), x.ndim, ctx)
    p = ctx.attr("p", 2)
    norm = x.abs().sum(axis, keepdim=True) if p == 1 else (x * x).sum(axis, keepdim=True).sqrt()
    return norm.eq(0)._where(0.0, x / norm).cast(x.dtype)

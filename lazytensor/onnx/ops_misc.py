"""Smaller ONNX ops: window functions, CenterCropPad, MaxUnpool, training optimizers
(Adagrad/Adam/Momentum, ai.onnx.preview.training) and the ai.onnx.ml Binarizer/ArrayFeatureExtractor."""
from __future__ import annotations

import math

from lazytensor import dtypes
from lazytensor.creation import arange, zeros
from lazytensor.onnx.ops import OpContext, Value, normalize_axis, register, static_ints, static_scalar


TRAINING = "ai.onnx.preview.training"
ML = "ai.onnx.ml"


def _window(coeffs: list[float]):
    """Generalized cosine window: sum_k (-1)^k a_k cos(2πkn/N), N = size (periodic) or size-1."""
    def handler(ctx: OpContext, args: list[Value]) -> Value:
        size = int(static_scalar(args[0]))
        periodic = ctx.attr("periodic", 1)
        dt = ctx.dtype_attr("output_datatype", 1)
        n = arange(size, dtype=dtypes.float64, device=ctx.device)
        denom = size if periodic else size - 1
        out = n * 0 + coeffs[0]
        for k, a in enumerate(coeffs[1:], start=1):
            out = out + ((-1) ** k) * a * (n * (2 * math.pi * k / denom)).cos()
        return out.cast(dt)
    return handler


register("HannWindow")(_window([0.5, 0.5]))
register("HammingWindow")(_window([25 / 46, 21 / 46]))
register("BlackmanWindow")(_window([0.42, 0.5, 0.08]))


@register("CenterCropPad")
def center_crop_pad(ctx: OpContext, args: list[Value]) -> Value:
    x, shape = args
    target = static_ints(shape)
    axes = [normalize_axis(a, x.ndim, ctx) for a in (ctx.attr("axes") or range(x.ndim))]
    for axis, want in zip(axes, target):
        have = x.shape[axis]
        if want < have:
            start = (have - want) // 2
            x = x.narrow(axis, start, want)
        elif want > have:
            before = (want - have) // 2
            pads = [0, 0] * (x.ndim - axis - 1) + [before, want - have - before]
            x = x.pad(pads)
    return x


@register("MaxUnpool")
def max_unpool(ctx: OpContext, args: list[Value]) -> Value:
    x, index = args[0], args[1]
    n = x.ndim - 2
    if len(args) > 2 and args[2] is not None:
        out_shape = static_ints(args[2])
    else:
        kernel = ctx.attr("kernel_shape")
        strides = ctx.attr("strides") or [1] * n
        pads = ctx.attr("pads") or [0] * (2 * n)
        spatial = [(i - 1) * s - pads[d] - pads[d + n] + k
                   for d, (i, k, s) in enumerate(zip(x.shape[2:], kernel, strides))]
        out_shape = list(x.shape[:2]) + spatial
    flat = zeros((math.prod(out_shape),), dtype=x.dtype, device=x.device)
    flat = flat.scatter(0, index.reshape((-1,)).cast(dtypes.int64), x.reshape((-1,)))
    return flat.reshape(tuple(out_shape))


@register("Adagrad", domain=TRAINING)
def adagrad(ctx: OpContext, args: list[Value]) -> Value:
    rate, step = args[0], args[1]
    rest = args[2:]
    n = len(rest) // 3
    decay, eps, norm = ctx.attr("decay_factor", 0.0), ctx.attr("epsilon", 0.0), ctx.attr("norm_coefficient", 0.0)
    r = rate / (step.cast(rate.dtype) * decay + 1)
    xs, hs = [], []
    for x, g, h in zip(rest[:n], rest[n:2 * n], rest[2 * n:]):
        g = g + x * norm
        h_new = h + g * g
        xs.append((x - r * g / (h_new.sqrt() + eps)).cast(x.dtype))
        hs.append(h_new.cast(h.dtype))
    return tuple(xs + hs)


@register("Momentum", domain=TRAINING)
def momentum(ctx: OpContext, args: list[Value]) -> Value:
    rate, step = args[0], args[1]
    rest = args[2:]
    n = len(rest) // 3
    alpha, beta, norm = ctx.attr("alpha"), ctx.attr("beta"), ctx.attr("norm_coefficient")
    nesterov = ctx.attr("mode") == "nesterov"
    first = static_scalar(step) == 0
    xs, vs = [], []
    for x, g, v in zip(rest[:n], rest[n:2 * n], rest[2 * n:]):
        g = g + x * norm
        v_new = v * alpha + g * (1.0 if first else beta)     # the first step takes the whole gradient
        update = g + v_new * alpha if nesterov else v_new
        xs.append((x - rate * update).cast(x.dtype))
        vs.append(v_new.cast(v.dtype))
    return tuple(xs + vs)


@register("Adam", domain=TRAINING)
def adam(ctx: OpContext, args: list[Value]) -> Value:
    rate, step = args[0], args[1]
    rest = args[2:]
    n = len(rest) // 4
    alpha, beta = ctx.attr("alpha", 0.9), ctx.attr("beta", 0.999)
    eps, norm = ctx.attr("epsilon", 1e-6), ctx.attr("norm_coefficient", 0.0)
    norm_post = ctx.attr("norm_coefficient_post", 0.0)
    t = static_scalar(step)
    if t > 0:
        r = rate * math.sqrt(1 - beta ** t) / (1 - alpha ** t)
    else:
        r = rate
    xs, vs, hs = [], [], []
    for x, g, v, h in zip(rest[:n], rest[n:2 * n], rest[2 * n:3 * n], rest[3 * n:]):
        g = g + x * norm
        v_new = v * alpha + g * (1 - alpha)
        h_new = h * beta + g * g * (1 - beta)
        x_new = x - r * v_new / (h_new.sqrt() + eps)
        x_new = x_new * (1 - norm_post)
        xs.append(x_new.cast(x.dtype))
        vs.append(v_new.cast(v.dtype))
        hs.append(h_new.cast(h.dtype))
    return tuple(xs + vs + hs)


@register("Binarizer", domain=ML)
def binarizer(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    return (x > ctx.attr("threshold", 0.0))._where(1, 0).cast(x.dtype)


@register("ArrayFeatureExtractor", domain=ML)
def array_feature_extractor(ctx: OpContext, args: list[Value]) -> Value:
    x, index = args
    idx = index.reshape((-1,)).cast(dtypes.int64)
    out = x.index_select(x.ndim - 1, idx)
    return out if x.ndim > 1 else out.reshape((1, -1))

"""Neural-network ONNX ops: MatMul/Gemm, Conv/ConvTranspose, pooling, normalization, LRN."""
from __future__ import annotations

import math
from typing import Sequence

from lazytensor import dtypes
from lazytensor.creation import arange, ones
from lazytensor.nn import functional as F
from lazytensor.nn.conv import sliding_windows
from lazytensor.onnx.ops import OpContext, Value, normalize_axis, register
from lazytensor.tensor import Tensor


@register("MatMul")
def matmul(ctx: OpContext, args: list[Value]) -> Value:
    a, b = args
    return a.matmul(b)


@register("Gemm")
def gemm(ctx: OpContext, args: list[Value]) -> Value:
    a, b = args[0], args[1]
    c = args[2] if len(args) > 2 else None
    if ctx.attr("transA", 0):
        a = a.transpose(0, 1)
    if ctx.attr("transB", 0):
        b = b.transpose(0, 1)
    alpha, beta = ctx.attr("alpha", 1.0), ctx.attr("beta", 1.0)
    out = a.matmul(b)
    if alpha != 1.0:
        out = (out * alpha).cast(a.dtype)
    if c is not None:
        out = out + (c * beta).cast(c.dtype) if beta != 1.0 else out + c
    return out


def spatial_pads(ctx: OpContext, in_sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                 dilations: Sequence[int]) -> list[tuple[int, int]]:
    """(begin, end) padding per spatial dim from `pads` or `auto_pad` (SAME_UPPER/SAME_LOWER/VALID)."""
    n = len(kernel)
    auto = ctx.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pairs = []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            pairs.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return pairs
    if auto == "VALID":
        return [(0, 0)] * n
    pads = ctx.attr("pads") or [0] * (2 * n)
    return [(pads[i], pads[i + n]) for i in range(n)]


def _pad_spatial(x: Tensor, pairs: Sequence[tuple[int, int]], value: float = 0.0) -> Tensor:
    if all(p == (0, 0) for p in pairs):
        return x
    flat: list[int] = []
    for before, after in reversed(list(pairs)):
        flat += [before, after]
    return x.pad(flat, value=value)


@register("Conv")
def conv(ctx: OpContext, args: list[Value]) -> Value:
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    n = x.ndim - 2
    kernel = ctx.attr("kernel_shape") or list(w.shape[2:])
    strides = ctx.attr("strides") or [1] * n
    dilations = ctx.attr("dilations") or [1] * n
    pairs = spatial_pads(ctx, x.shape[2:], kernel, strides, dilations)
    x = _pad_spatial(x, pairs)
    groups = ctx.attr("group", 1)
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}.get(n)
    if fn is None:
        raise ctx.unsupported(f"{n}-d convolution (1-3 spatial dims are supported)")
    return fn(x, w, b, stride=strides, dilation=dilations, groups=groups)


@register("ConvTranspose")
def conv_transpose(ctx: OpContext, args: list[Value]) -> Value:
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    n = x.ndim - 2
    kernel = ctx.attr("kernel_shape") or list(w.shape[2:])
    strides = ctx.attr("strides") or [1] * n
    dilations = ctx.attr("dilations") or [1] * n
    out_pad = ctx.attr("output_padding") or [0] * n
    groups = ctx.attr("group", 1)
    # full (unpadded) transposed conv, then crop: out_full_i = (in-1)*s + (k-1)*d + 1 + output_padding
    full_sizes = [(i - 1) * s + (k - 1) * d + 1 + op for i, k, s, d, op in
                  zip(x.shape[2:], kernel, strides, dilations, out_pad)]
    output_shape = ctx.attr("output_shape")
    auto = ctx.attr("auto_pad", "NOTSET")
    if output_shape or auto in ("SAME_UPPER", "SAME_LOWER"):
        targets = list(output_shape)[-n:] if output_shape else [i * s for i, s in zip(x.shape[2:], strides)]
        pairs = []
        for full, target in zip(full_sizes, targets):
            total = full - target
            if total < 0:          # output_shape larger than the full result: zeros appended at the end
                pairs.append((0, total))
            elif auto == "SAME_UPPER" or (auto != "SAME_LOWER" and output_shape):
                pairs.append((total // 2, total - total // 2))
            else:
                pairs.append((total - total // 2, total // 2))
    elif auto == "VALID":
        pairs = [(0, 0)] * n
    else:
        pads = ctx.attr("pads") or [0] * (2 * n)
        pairs = [(pads[i], pads[i + n]) for i in range(n)]
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}.get(n)
    if fn is None:
        raise ctx.unsupported(f"{n}-d transposed convolution")
    extra = [max(op, 0) for op in out_pad]
    # torch's output_padding must be < stride or dilation; ONNX allows more, so grow with a pad instead
    y = fn(x, w, None, stride=strides, padding=0, output_padding=0, groups=groups, dilation=dilations)
    grow = [(0, e) for e in extra]
    y = _pad_spatial(y, grow)
    crop = [(pb, y.shape[2 + i] - pe) for i, (pb, pe) in enumerate(pairs)]
    for i, (lo, hi) in enumerate(crop):
        if lo < 0 or hi > y.shape[2 + i]:
            y = _pad_spatial(y, [(max(-lo, 0), max(hi - y.shape[2 + i], 0)) if j == i else (0, 0)
                                 for j in range(n)])
            lo, hi = max(lo, 0), hi + max(-lo, 0)
        y = y.narrow(2 + i, lo, hi - lo)
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * n)
    return y


# ---- pooling -------------------------------------------------------------------------------------------

def _pool_geometry(ctx: OpContext, x: Tensor) -> tuple[list[int], list[int], list[int], list[tuple[int, int]],
                                                      list[int]]:
    """kernel, strides, dilations, explicit pads and the extra end padding that ceil_mode adds."""
    n = x.ndim - 2
    kernel = ctx.attr("kernel_shape")
    strides = ctx.attr("strides") or [1] * n
    dilations = ctx.attr("dilations") or [1] * n
    pairs = spatial_pads(ctx, x.shape[2:], kernel, strides, dilations)
    extra = []
    for size, k, s, d, (pb, pe) in zip(x.shape[2:], kernel, strides, dilations, pairs):
        span = (k - 1) * d + 1
        padded = size + pb + pe
        if ctx.attr("ceil_mode", 0):
            out = -(-(padded - span) // s) + 1
            if (out - 1) * s >= size + pb:      # the last window must start inside input or left pad
                out -= 1
        else:
            out = (padded - span) // s + 1
        extra.append(max((out - 1) * s + span - padded, 0))
    return kernel, strides, dilations, pairs, extra


def _windows(x: Tensor, kernel, strides, dilations, pairs, extra, fill: float) -> Tensor:
    full = [(pb, pe + e) for (pb, pe), e in zip(pairs, extra)]
    return sliding_windows(_pad_spatial(x, full, fill), kernel, strides, dilations)


@register("MaxPool")
def max_pool(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    kernel, strides, dilations, pairs, extra = _pool_geometry(ctx, x)
    n = len(kernel)
    lowest = -math.inf if x.dtype.is_float else dtypes.min_value(x.dtype)
    win = _windows(x, kernel, strides, dilations, pairs, extra, lowest)
    axes = tuple(range(win.ndim - n, win.ndim))
    value = win.amax(axes)
    if len(ctx.node.outputs) < 2 or not ctx.node.outputs[1]:
        return value
    # indices: flat position (row-major, or column-major spatial with storage_order=1) of the first max
    sizes = list(x.shape[2:])
    spatial_strides = [0] * n
    step = 1
    for axis in (range(n) if ctx.attr("storage_order", 0) else range(n - 1, -1, -1)):
        spatial_strides[axis] = step
        step *= sizes[axis]
    positions = None
    for axis in range(n):
        coord = arange(sizes[axis], dtype=dtypes.int64, device=x.device).reshape(
            tuple(sizes[axis] if i == axis else 1 for i in range(n))) * spatial_strides[axis]
        positions = coord if positions is None else positions + coord
    assert positions is not None
    never = 1 << 60         # padding positions are never the first maximum
    pos_win = _windows(positions.reshape((1, 1) + tuple(sizes)), kernel, strides, dilations, pairs, extra, never)
    hit = win.eq(value.reshape(tuple(value.shape) + (1,) * n))
    first = hit._where(pos_win, never).amin(axes)
    planes = arange(x.shape[0] * x.shape[1], dtype=dtypes.int64, device=x.device) * math.prod(sizes)
    return value, first + planes.reshape((x.shape[0], x.shape[1]) + (1,) * n)


@register("AveragePool")
def average_pool(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    kernel, strides, dilations, pairs, extra = _pool_geometry(ctx, x)
    n = len(kernel)
    win = _windows(x, kernel, strides, dilations, pairs, extra, 0.0)
    axes = tuple(range(win.ndim - n, win.ndim))
    total = win.sum(axes)
    include_pad = bool(ctx.attr("count_include_pad", 0))
    if not any(extra) and (include_pad or all(p == (0, 0) for p in pairs)):
        return (total / math.prod(kernel)).cast(x.dtype)
    mask = ones(tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
    if include_pad:
        mask = _pad_spatial(mask, pairs, 1.0)
        count_win = sliding_windows(_pad_spatial(mask, [(0, e) for e in extra]), kernel, strides, dilations)
    else:
        count_win = _windows(mask, kernel, strides, dilations, pairs, extra, 0.0)
    count = count_win.sum(tuple(range(count_win.ndim - n, count_win.ndim)))
    return (total / count).cast(x.dtype)


@register("LpPool")
def lp_pool(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    kernel, strides, dilations, pairs, extra = _pool_geometry(ctx, x)
    n = len(kernel)
    p = ctx.attr("p", 2)
    win = _windows(x, kernel, strides, dilations, pairs, extra, 0.0)
    axes = tuple(range(win.ndim - n, win.ndim))
    return (win.abs() ** p).sum(axes) ** (1.0 / p)


@register("GlobalAveragePool")
def global_average_pool(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    return x.mean(tuple(range(2, x.ndim)), keepdim=True)


@register("GlobalMaxPool")
def global_max_pool(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    return x.amax(tuple(range(2, x.ndim)), keepdim=True)


@register("GlobalLpPool")
def global_lp_pool(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    p = ctx.attr("p", 2)
    return (x.abs() ** p).sum(tuple(range(2, x.ndim)), keepdim=True) ** (1.0 / p)


# ---- normalization -------------------------------------------------------------------------------------

def _channel(t: Tensor, ndim: int) -> Tensor:
    return t.reshape((1, -1) + (1,) * (ndim - 2))


@register("BatchNormalization")
def batch_norm(ctx: OpContext, args: list[Value]) -> Value:
    x, scale, bias, mean, var = args[:5]
    eps = ctx.attr("epsilon", 1e-5)
    training = ctx.attr("training_mode", 0) or (ctx.opset < 9 and ctx.attr("is_test", 1) == 0)
    if training and ctx.opset >= 14:
        axes = (0,) + tuple(range(2, x.ndim))
        momentum = ctx.attr("momentum", 0.9)
        batch_mean = x.mean(axes)
        batch_var = x.var(axes, correction=0)
        y = (x - _channel(batch_mean, x.ndim)) / (_channel(batch_var, x.ndim) + eps).sqrt()
        y = y * _channel(scale, x.ndim) + _channel(bias, x.ndim)
        running_mean = mean * momentum + batch_mean * (1 - momentum)
        running_var = var * momentum + batch_var * (1 - momentum)
        return y, running_mean.cast(mean.dtype), running_var.cast(var.dtype)
    inv = (var + eps).rsqrt()
    y = (x - _channel(mean, x.ndim)) * _channel(inv * scale, x.ndim) + _channel(bias, x.ndim)
    return y.cast(x.dtype)


@register("InstanceNormalization")
def instance_norm(ctx: OpContext, args: list[Value]) -> Value:
    x, scale, bias = args
    eps = ctx.attr("epsilon", 1e-5)
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axes, keepdim=True)
    var = ((x - mean) ** 2).mean(axes, keepdim=True)
    return (x - mean) / (var + eps).sqrt() * _channel(scale, x.ndim) + _channel(bias, x.ndim)


@register("LayerNormalization")
def layer_norm(ctx: OpContext, args: list[Value]) -> Value:
    x, scale = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    axis = normalize_axis(ctx.attr("axis", -1), x.ndim, ctx)
    eps = ctx.attr("epsilon", 1e-5)
    stash = dtypes.float32 if ctx.attr("stash_type", 1) == 1 else x.dtype
    xs = x.cast(stash)
    axes = tuple(range(axis, x.ndim))
    mean = xs.mean(axes, keepdim=True)
    var = ((xs - mean) ** 2).mean(axes, keepdim=True)
    inv_std = (var + eps).rsqrt()
    y = ((xs - mean) * inv_std).cast(x.dtype) * scale
    if bias is not None:
        y = y + bias
    return y, mean, inv_std


@register("RMSNormalization")
def rms_norm(ctx: OpContext, args: list[Value]) -> Value:
    x, scale = args[0], args[1]
    axis = normalize_axis(ctx.attr("axis", -1), x.ndim, ctx)
    eps = ctx.attr("epsilon", 1e-5)
    stash = dtypes.float32 if ctx.attr("stash_type", 1) == 1 else x.dtype
    xs = x.cast(stash)
    axes = tuple(range(axis, x.ndim))
    inv = ((xs * xs).mean(axes, keepdim=True) + eps).rsqrt()
    return (xs * inv).cast(x.dtype) * scale


@register("GroupNormalization")
def group_norm(ctx: OpContext, args: list[Value]) -> Value:
    x, scale, bias = args
    groups = ctx.attr("num_groups")
    eps = ctx.attr("epsilon", 1e-5)
    stash = dtypes.float32 if ctx.attr("stash_type", 1) == 1 else x.dtype
    n, c = x.shape[0], x.shape[1]
    xs = x.cast(stash).reshape((n, groups, -1))
    mean = xs.mean(2, keepdim=True)
    var = ((xs - mean) ** 2).mean(2, keepdim=True)
    y = ((xs - mean) / (var + eps).sqrt()).reshape(tuple(x.shape)).cast(x.dtype)
    if ctx.opset < 21:     # opset 18: scale/bias per group
        scale = scale.reshape((groups, 1)).expand((groups, c // groups)).reshape((c,))
        bias = bias.reshape((groups, 1)).expand((groups, c // groups)).reshape((c,))
    return y * _channel(scale, x.ndim) + _channel(bias, x.ndim)


@register("MeanVarianceNormalization")
def mean_variance_norm(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    axes = tuple(normalize_axis(a, x.ndim, ctx) for a in (ctx.attr("axes") or [0, 2, 3]))
    mean = x.mean(axes, keepdim=True)
    var = ((x - mean) ** 2).mean(axes, keepdim=True)
    return (x - mean) / (var.sqrt() + 1e-9)


@register("LRN")
def lrn(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    size = ctx.attr("size")
    alpha, beta, bias = ctx.attr("alpha", 1e-4), ctx.attr("beta", 0.75), ctx.attr("bias", 1.0)
    sq = (x * x).unsqueeze(1)           # (N, 1, C, *): sum over a window of channels
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    pads = [0, 0] * (x.ndim - 2) + [lo, hi]
    win = sliding_windows(sq.pad(pads).squeeze(1).movedim(1, -1), [size], [1], [1]).movedim(-2, 1)
    total = win.sum(-1)
    return x / (total * (alpha / size) + bias) ** beta

"""Quantization ONNX ops: QuantizeLinear, DequantizeLinear (8/16-bit integers, and the narrow
float8/float4/int4/int2 types of ops_lowprecision), DynamicQuantizeLinear, MatMulInteger,
QLinearMatMul, ConvInteger, QLinearConv."""
from __future__ import annotations

from lazytensor import dtypes
from lazytensor.dtypes import DType
from lazytensor.onnx.ops import OpContext, Value, normalize_axis, register
from lazytensor.onnx.ops_lowprecision import (FLOAT_FORMATS, INT_FORMATS, Narrow, int_format_range, onnx_code,
                                              round_to_float_format, widen)
from lazytensor.onnx.ops_nn import conv
from lazytensor.tensor import Tensor


def _per_axis(ctx: OpContext, t: Tensor, x: Tensor) -> Tensor:
    """A scale/zero-point (scalar, per-axis 1-D or blocked) broadcast against x."""
    if t.numel() == 1 and t.ndim <= 1:
        return t.reshape(())
    axis = normalize_axis(ctx.attr("axis", 1), x.ndim, ctx)
    block = ctx.attr("block_size", 0)
    if block:
        return t.repeat_interleave(block, dim=axis).narrow(axis, 0, x.shape[axis])
    return t.reshape(tuple(x.shape[axis] if i == axis else 1 for i in range(x.ndim)))


def _saturate(ctx: OpContext, y: Tensor, dt: DType) -> Tensor:
    if not dt.is_int:
        raise ctx.unsupported(f"quantizing to {dt.name} (8/16-bit integer targets are supported)")
    return y.clamp(dtypes.min_value(dt), dtypes.max_value(dt)).cast(dt)


def quantize(ctx: OpContext, x: Tensor, scale: Tensor, zero: Tensor | None, dt: DType) -> Tensor:
    y = (x.cast(dtypes.float32) / _per_axis(ctx, scale, x).cast(dtypes.float32)).round()
    if zero is not None:
        y = y + _per_axis(ctx, zero, x).cast(dtypes.float32)
    return _saturate(ctx, y, dt)


def quantize_narrow(ctx: OpContext, x: Tensor, scale: Tensor, zero: Tensor | None, code: int) -> Narrow:
    """QuantizeLinear to a float8/float4 type (x/scale + zero, rounded to the format per `saturate`)
    or a 4/2-bit integer type (round half to even, + zero, clamp to the type's range)."""
    y = x.cast(dtypes.float32) / _per_axis(ctx, scale, x).cast(dtypes.float32)
    if code in INT_FORMATS:
        y = y.round()
    if zero is not None:
        y = y + _per_axis(ctx, zero, x).cast(dtypes.float32)
    if code in FLOAT_FORMATS:
        return Narrow(round_to_float_format(y, code, bool(ctx.attr("saturate", 1))), code)
    if code in INT_FORMATS:
        lo, hi = int_format_range(code)
        return Narrow(y.clamp(lo, hi).cast(dtypes.int8 if lo < 0 else dtypes.uint8), code)
    raise ctx.unsupported(f"quantizing to ONNX element type {code}")


@register("QuantizeLinear")
def quantize_linear(ctx: OpContext, args: list[Value]) -> Value:
    x, scale = widen(args[0]), widen(args[1])
    zero_value = args[2] if len(args) > 2 else None
    zero = widen(zero_value)
    if ctx.attr("output_dtype"):
        code = int(ctx.attr("output_dtype"))
    else:
        code = onnx_code(zero_value) if zero_value is not None else 2     # UINT8
    if code in FLOAT_FORMATS or code in INT_FORMATS:
        return quantize_narrow(ctx, x, scale, zero, code)
    return quantize(ctx, x, scale, zero, ctx.dtype_attr("output_dtype", code))


@register("DequantizeLinear")
def dequantize_linear(ctx: OpContext, args: list[Value]) -> Value:
    args = [widen(a) for a in args]
    x, scale = args[0], args[1]
    zero = args[2] if len(args) > 2 else None
    out_dt = ctx.dtype_attr("output_dtype") if ctx.attr("output_dtype") else scale.dtype
    y = x.cast(dtypes.float32)
    if zero is not None:
        y = y - _per_axis(ctx, zero, x).cast(dtypes.float32)
    return (y * _per_axis(ctx, scale, x).cast(dtypes.float32)).cast(out_dt)


@register("DynamicQuantizeLinear")
def dynamic_quantize_linear(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    lo = x.amin().clamp(max=0.0)
    hi = x.amax().clamp(min=0.0)
    scale = (hi - lo) / 255.0
    zero = (-lo / scale).round().clamp(0, 255)
    y = ((x / scale).round() + zero).clamp(0, 255).cast(dtypes.uint8)
    return y, scale.cast(x.dtype), zero.cast(dtypes.uint8)


def _centered(t: Tensor, zero: Tensor | None, axis_shape: tuple[int, ...] | None = None) -> Tensor:
    out = t.cast(dtypes.int32)
    if zero is not None:
        z = zero.cast(dtypes.int32)
        if axis_shape is not None and z.numel() > 1:
            z = z.reshape(axis_shape)
        out = out - z
    return out


@register("MatMulInteger")
def matmul_integer(ctx: OpContext, args: list[Value]) -> Value:
    a, b = args[0], args[1]
    a_zero = args[2] if len(args) > 2 else None
    b_zero = args[3] if len(args) > 3 else None
    a_c = _centered(a, a_zero, (a.shape[-2], 1) if a_zero is not None and a_zero.numel() > 1 else None)
    b_c = _centered(b, b_zero, (1, b.shape[-1]) if b_zero is not None and b_zero.numel() > 1 else None)
    return a_c.matmul(b_c)


@register("QLinearMatMul")
def qlinear_matmul(ctx: OpContext, args: list[Value]) -> Value:
    a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero = args
    fa = (a.cast(dtypes.float32) - a_zero.cast(dtypes.float32)) * a_scale.cast(dtypes.float32)
    fb = (b.cast(dtypes.float32) - b_zero.cast(dtypes.float32)) * b_scale.cast(dtypes.float32)
    y = (fa.matmul(fb) / y_scale.cast(dtypes.float32)).round() + y_zero.cast(dtypes.float32)
    return _saturate(ctx, y, y_zero.dtype)


@register("ConvInteger")
def conv_integer(ctx: OpContext, args: list[Value]) -> Value:
    x, w = args[0], args[1]
    x_zero = args[2] if len(args) > 2 else None
    w_zero = args[3] if len(args) > 3 else None
    xf = _centered(x, x_zero).cast(dtypes.float64)
    wf = _centered(w, w_zero, (-1,) + (1,) * (w.ndim - 1) if w_zero is not None and w_zero.numel() > 1
                   else None).cast(dtypes.float64)
    # float64 sums of int products are exact here; the result is the int32 ONNX asks for
    return conv(ctx, [xf, wf]).round().cast(dtypes.int32)


@register("QLinearConv")
def qlinear_conv(ctx: OpContext, args: list[Value]) -> Value:
    args = args + [None] * (9 - len(args))
    x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero, bias = args
    xf = (x.cast(dtypes.float32) - x_zero.cast(dtypes.float32)) * x_scale.cast(dtypes.float32)
    ws = w_scale.cast(dtypes.float32)
    wz = w_zero.cast(dtypes.float32)
    if ws.numel() > 1:
        ws = ws.reshape((-1,) + (1,) * (w.ndim - 1))
    if wz.numel() > 1:
        wz = wz.reshape((-1,) + (1,) * (w.ndim - 1))
    wf = (w.cast(dtypes.float32) - wz) * ws
    bf = None
    if bias is not None:
        bf = bias.cast(dtypes.float32) * (x_scale.cast(dtypes.float32) * w_scale.cast(dtypes.float32))
    y = conv(ctx, [xf, wf] + ([bf] if bf is not None else []))
    y = (y / y_scale.cast(dtypes.float32)).round() + (y_zero.cast(dtypes.float32) if y_zero is not None else 0)
    return _saturate(ctx, y, y_zero.dtype if y_zero is not None else dtypes.uint8)

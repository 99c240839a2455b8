"""Elementwise ONNX ops: math, activations, comparisons, logic, bitwise, variadic Sum/Max/Min/Mean."""
from __future__ import annotations

import math
from typing import Callable

from lazytensor import dtypes
from lazytensor.functions import where as lt_where
from lazytensor.onnx.ops import OpContext, Value, register
from lazytensor.tensor import Tensor

# op name → Tensor method computing it (same semantics as ONNX)
UNARY_METHODS: dict[str, Callable[[Tensor], Tensor]] = {
    "Abs": Tensor.abs, "Neg": Tensor.neg, "Exp": Tensor.exp, "Log": Tensor.log, "Sqrt": Tensor.sqrt,
    "Reciprocal": Tensor.reciprocal, "Sin": Tensor.sin, "Cos": Tensor.cos, "Tan": Tensor.tan,
    "Asin": Tensor.asin, "Acos": Tensor.acos, "Atan": Tensor.atan, "Sinh": Tensor.sinh, "Cosh": Tensor.cosh,
    "Tanh": Tensor.tanh, "Asinh": Tensor.asinh, "Acosh": Tensor.acosh, "Atanh": Tensor.atanh,
    "Erf": Tensor.erf, "Floor": Tensor.floor, "Ceil": Tensor.ceil, "Round": Tensor.round, "Sign": Tensor.sign,
    "Sigmoid": Tensor.sigmoid, "Relu": Tensor.relu, "Softsign": Tensor.softsign, "IsNaN": Tensor.isnan,
    "Not": Tensor.logical_not, "BitwiseNot": Tensor.bitwise_not, "Mish": Tensor.mish,
    "HardSwish": Tensor.hardswish,
}


def _unary(method: Callable[[Tensor], Tensor]):
    def handler(ctx: OpContext, args: list[Value]) -> Value:
        return method(args[0])
    return handler


for _name, _method in UNARY_METHODS.items():
    register(_name)(_unary(_method))


@register("Identity")
def identity(ctx: OpContext, args: list[Value]) -> Value:
    return args[0]


@register("Softplus")
def softplus(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    # log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))
    return x.relu() + (-x.abs()).exp().log1p()


@register("IsInf")
def isinf(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    pos, neg = ctx.attr("detect_positive", 1), ctx.attr("detect_negative", 1)
    if pos and neg:
        return x.isinf()
    if pos:
        return x.isposinf()
    if neg:
        return x.isneginf()
    return x.isinf() & False


def _alpha_act(name: str, default: float, fn: Callable[[Tensor, float], Tensor]):
    def handler(ctx: OpContext, args: list[Value]) -> Value:
        return fn(args[0], float(ctx.attr(name, default)))
    return handler


register("LeakyRelu")(_alpha_act("alpha", 0.01, lambda x, a: lt_where(x < 0, x * a, x).cast(x.dtype)))
register("Elu")(_alpha_act("alpha", 1.0, lambda x, a: lt_where(x < 0, (x.exp() - 1) * a, x).cast(x.dtype)))
register("Celu")(_alpha_act("alpha", 1.0, lambda x, a: x.relu() + ((x / a).exp() - 1).clamp(max=0) * a))
register("ThresholdedRelu")(_alpha_act("alpha", 1.0, lambda x, a: lt_where(x > a, x, 0.0).cast(x.dtype)))


@register("Selu")
def selu(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    alpha = float(ctx.attr("alpha", 1.67326319217681884765625))
    gamma = float(ctx.attr("gamma", 1.05070102214813232421875))
    return (lt_where(x > 0, x, (x.exp() - 1) * alpha) * gamma).cast(x.dtype)


@register("HardSigmoid")
def hard_sigmoid(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    alpha, beta = float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5))
    return (x * alpha + beta).clamp(0.0, 1.0).cast(x.dtype)


@register("Gelu")
def gelu(ctx: OpContext, args: list[Value]) -> Value:
    return args[0].gelu(approximate=ctx.attr("approximate", "none"))


@register("Swish")
def swish(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    return x * (x * float(ctx.attr("alpha", 1.0))).sigmoid()


@register("Shrink")
def shrink(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    bias, lambd = float(ctx.attr("bias", 0.0)), float(ctx.attr("lambd", 0.5))
    out = lt_where(x < -lambd, x + bias, lt_where(x > lambd, x - bias, 0))
    return out.cast(x.dtype)


@register("PRelu")
def prelu(ctx: OpContext, args: list[Value]) -> Value:
    x, slope = args
    return lt_where(x < 0, x * slope, x).cast(x.dtype)


@register("Clip")
def clip(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    if ctx.opset < 11:
        lo, hi = ctx.attr("min", -math.inf), ctx.attr("max", math.inf)
    else:
        lo = args[1] if len(args) > 1 else None
        hi = args[2] if len(args) > 2 else None
    if lo is not None:
        x = x.maximum(lo) if isinstance(lo, Tensor) else x.clamp(min=lo)
    if hi is not None:
        x = x.minimum(hi) if isinstance(hi, Tensor) else x.clamp(max=hi)
    return x


# ---- binary arithmetic -------------------------------------------------------------------------------

def _binary(fn: Callable[[Tensor, Tensor], Tensor]):
    def handler(ctx: OpContext, args: list[Value]) -> Value:
        a, b = args
        if ctx.opset < 7 and ctx.attr("broadcast", 0) and ctx.attr("axis") is not None:
            axis = ctx.attr("axis") % a.ndim
            b = b.reshape(tuple(b.shape) + (1,) * (a.ndim - axis - b.ndim))
        return fn(a, b)
    return handler


def _div(a: Tensor, b: Tensor) -> Tensor:
    if a.dtype.is_float:
        return a / b
    return a.div(b, rounding_mode="trunc")


def _pow(a: Tensor, b: Tensor) -> Tensor:
    if a.dtype.is_int and b.dtype.is_float:
        return a.cast(b.dtype).pow(b).cast(a.dtype)
    if a.dtype.is_float and b.dtype is not a.dtype:
        return a.pow(b.cast(a.dtype))
    return a.pow(b).cast(a.dtype)


for _name, _fn in {
    "Add": Tensor.add, "Sub": Tensor.sub, "Mul": Tensor.mul, "Div": _div, "Pow": _pow,
    "Equal": Tensor.eq, "Less": Tensor.lt, "LessOrEqual": Tensor.le, "Greater": Tensor.gt,
    "GreaterOrEqual": Tensor.ge, "And": Tensor.logical_and, "Or": Tensor.logical_or,
    "Xor": Tensor.logical_xor, "BitwiseAnd": Tensor.bitwise_and, "BitwiseOr": Tensor.bitwise_or,
    "BitwiseXor": Tensor.bitwise_xor,
}.items():
    register(_name)(_binary(_fn))


@register("Mod")
def mod(ctx: OpContext, args: list[Value]) -> Value:
    a, b = args
    if ctx.attr("fmod", 0):
        return a.fmod(b)
    return a.remainder(b)


@register("BitShift")
def bit_shift(ctx: OpContext, args: list[Value]) -> Value:
    a, b = args
    # shifting by a negative amount or by the bit width or more is defined: all bits shifted out
    valid = (b >= 0) & (b < a.dtype.bits)
    safe = valid._where(b, 0).cast(b.dtype)
    if ctx.attr("direction") == "LEFT":
        return valid._where(a.bitwise_left_shift(safe), 0).cast(a.dtype)
    sign_fill = (a < 0)._where(-1, 0) if a.dtype.kind == "i" else 0
    return valid._where(a.bitwise_right_shift(safe), sign_fill).cast(a.dtype)


def _variadic(fn: Callable[[Tensor, Tensor], Tensor]):
    def handler(ctx: OpContext, args: list[Value]) -> Value:
        out = args[0]
        for x in args[1:]:
            out = fn(out, x)
        return out
    return handler


register("Sum")(_variadic(Tensor.add))
register("Max")(_variadic(Tensor.maximum))
register("Min")(_variadic(Tensor.minimum))


@register("Mean")
def mean(ctx: OpContext, args: list[Value]) -> Value:
    total = _variadic(Tensor.add)(ctx, args)
    return total / len(args)


@register("Where")
def where(ctx: OpContext, args: list[Value]) -> Value:
    cond, a, b = args
    return lt_where(cond, a, b)


# Cast and CastLike live in ops_lowprecision.py (they also produce the narrow float8/int4 types)


_ = dtypes

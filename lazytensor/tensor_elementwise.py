"""Elementwise ops, comparisons, logic and activations, composed from primitive ops.

Each method builds graph nodes through the primitive wrappers in tensor.py; nothing here
computes a value. Float-only ops promote integer inputs to the default float dtype, as
PyTorch does.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lazytensor import dtypes
from lazytensor import graph as g
from lazytensor.codegen.cpu_target import host_has_fma
from lazytensor.expansion_templates import expand_cached
from lazytensor.ops import Op

if TYPE_CHECKING:
    from lazytensor.tensor import Tensor

_ADD = Op.ADD   # (read through the enum class, a member costs ~80 ns: see graph.py)
LOG2_E = 1.0 / math.log(2.0)
LN_2 = math.log(2.0)


class ElementwiseMixin:
    """Arithmetic, math functions, comparisons, logic, bitwise ops and activations."""

    # ---- primitive helpers ----
    def _unary(self: "Tensor", op: Op) -> "Tensor":
        return self._new(g.unary(op, self.node))

    def _binop(self: "Tensor", op: Op, other: Any, reverse: bool = False, name: str = "") -> "Tensor":
        a, b = self._broadcast_pair(other, name or op.name.lower(), reverse)
        return a._new(g.binary(op, a.node, b.node))

    def _floating(self: "Tensor") -> "Tensor":
        """self, promoted to the default float dtype if it is not floating point."""
        return self if self.dtype.is_float else self.cast(dtypes.default_float)

    def _math_in(self: "Tensor", fn: Any, wide: bool = False) -> "Tensor":
        """fn(x) for the floating value x of self, computed in float32 for the 16-bit floats (their
        constants would otherwise be rounded to 16 bits) or, with wide=True, in float64 for every
        dtype but float64 (for formulas whose argument reduction loses bits); cast back at the end.
        fn's graph is built once per signature and re-instantiated (expansion_templates.py)."""
        x = self._floating()
        work = dtypes.float64 if wide else dtypes.float32
        if x.dtype == dtypes.float64 or (not wide and x.dtype == dtypes.float32):
            return expand_cached(fn, x)
        return expand_cached(fn, x.cast(work)).cast(x.dtype)

    def where(self: "Tensor", condition: Any, other: Any) -> "Tensor":
        """self where condition else other (torch.Tensor.where)."""
        from lazytensor.functions import where
        return where(condition, self, other)

    def _where(self: "Tensor", a: Any, b: Any) -> "Tensor":
        """where(self, a, b) with self a bool tensor; a and b broadcast and promote."""
        from lazytensor.functions import where
        return where(self, a, b)

    # ---- arithmetic ----
    def add(self: "Tensor", other: Any, alpha: Any = 1) -> "Tensor":
        a, b = self._broadcast_pair(other, "add")
        if alpha == 1:
            return a._new(g.binary(_ADD, a.node, b.node))
        if a.dtype in (dtypes.float16, dtypes.bfloat16):
            # one op in PyTorch: a + alpha·b in float32 (alpha first rounded to a's dtype), rounded once
            alpha = dtypes.cast_scalar(alpha, a.dtype)
            return a.cast(dtypes.float32).add(b.cast(dtypes.float32), alpha=alpha).cast(a.dtype)
        b = (b * alpha).cast(a.dtype)   # alpha does not take part in type promotion
        return a._new(g.binary(Op.ADD, a.node, b.node))

    def sub(self: "Tensor", other: Any, alpha: Any = 1) -> "Tensor":
        if self.dtype.is_bool and (isinstance(other, bool) or getattr(other, "dtype", None) == dtypes.bool_):
            raise TypeError("sub: subtraction of bool tensors is not supported; use logical_xor() or ~")
        a, b = self._broadcast_pair(other, "sub")
        if alpha != 1 and a.dtype in (dtypes.float16, dtypes.bfloat16):
            alpha = dtypes.cast_scalar(alpha, a.dtype)
            return a.cast(dtypes.float32).sub(b.cast(dtypes.float32), alpha=alpha).cast(a.dtype)
        if alpha != 1:
            b = (b * alpha).cast(a.dtype)
        return a._new(g.binary(Op.ADD, a.node, (-b).node))

    def rsub(self: "Tensor", other: Any, alpha: Any = 1) -> "Tensor":
        a, b = self._broadcast_pair(other, "rsub", reverse=True)
        return a.sub(b, alpha=alpha)

    def _scalar_in_opmath(self: "Tensor", other: Any) -> bool:
        """True when other, met by this 16-bit float tensor in mul/div, must take part at float32
        precision: PyTorch computes such an op in float32 with the unrounded number (a Python scalar
        or a 0-d float32/float64 tensor) and rounds the result once (h * 1e10 is inf where h != 0, not
        nan). A number exact in the 16-bit type needs no detour: the result is the same."""
        if self.dtype not in (dtypes.float16, dtypes.bfloat16):
            return False
        if isinstance(other, ElementwiseMixin):
            return other.ndim == 0 and other.dtype in (dtypes.float32, dtypes.float64)
        if isinstance(other, (bool, np.bool_)) or not isinstance(other, (int, float, np.number)):
            return False
        return dtypes.cast_scalar(other, self.dtype) != dtypes.cast_scalar(other, dtypes.float32)

    def _in_opmath(self: "Tensor", other: Any) -> tuple["Tensor", Any]:
        """self and other (see _scalar_in_opmath) as float32 operands."""
        if isinstance(other, ElementwiseMixin):
            other = other.cast(dtypes.float32)
        return self.cast(dtypes.float32), other

    def mul(self: "Tensor", other: Any) -> "Tensor":
        if self._scalar_in_opmath(other):
            a, b = self._in_opmath(other)
            return a.mul(b).cast(self.dtype)
        return self._binop(Op.MUL, other, name="mul")

    def div(self: "Tensor", other: Any, rounding_mode: str | None = None) -> "Tensor":
        """True division (integers promote to float); rounding_mode 'trunc' or 'floor' rounds."""
        if rounding_mode is None:
            if self._scalar_in_opmath(other):
                a, b = self._in_opmath(other)
                return a.div(b).cast(self.dtype)
            a, b = self._broadcast_pair(other, "div")
            if not a.dtype.is_float:
                a, b = a.cast(dtypes.default_float), b.cast(dtypes.default_float)
            return a._new(g.binary(Op.FDIV, a.node, b.node))
        if rounding_mode == "trunc":
            a, b = self._broadcast_pair(other, "div")
            if a.dtype.is_float:
                return (a / b).trunc()
            return a._new(g.binary(Op.IDIV, a.node, b.node))
        if rounding_mode == "floor":
            return self.floor_divide(other)
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")

    divide = div
    true_divide = div
    multiply = mul
    subtract = sub

    def floor_divide(self: "Tensor", other: Any, _reverse: bool = False) -> "Tensor":
        a, b = self._broadcast_pair(other, "floor_divide", _reverse)
        if a.dtype.is_bool:
            raise TypeError("floor_divide: not supported for bool tensors")
        if a.dtype.is_float:
            # Same steps as PyTorch: exact quotient of (a - fmod(a, b)), corrected toward -inf.
            mod = a.fmod(b)
            div = (a - mod) / b
            div = ((mod != 0) & ((b < 0) != (mod < 0)))._where(div - 1, div)
            floored = div.floor()
            floored = ((div - floored) > 0.5)._where(floored + 1, floored)
            return (b == 0)._where(a / b, floored)
        q = a._new(g.binary(Op.IDIV, a.node, b.node))
        if a.dtype.kind == "u":
            return q
        needs_fix = (q * b != a) & ((a < 0) != (b < 0))
        return needs_fix._where(q - 1, q)

    def remainder(self: "Tensor", other: Any, _reverse: bool = False) -> "Tensor":
        """Python-style modulus: the result has the sign of the divisor."""
        a, b = self._broadcast_pair(other, "remainder", _reverse)
        r = a._new(g.binary(Op.MOD, a.node, b.node))
        if a.dtype.kind == "u":
            return r
        return ((r != 0) & ((r < 0) != (b < 0)))._where(r + b, r)

    def fmod(self: "Tensor", other: Any) -> "Tensor":
        """C-style remainder: the result has the sign of the dividend."""
        return self._binop(Op.MOD, other, name="fmod")

    def neg(self: "Tensor") -> "Tensor":
        if self.dtype.is_bool:
            raise TypeError("neg: negation of a bool tensor is not supported; use ~ or logical_not()")
        return self._unary(Op.NEG)

    negative = neg

    def abs(self: "Tensor") -> "Tensor":
        if self.dtype.is_bool or self.dtype.kind == "u":
            return self
        out = (self < 0)._where(-self, self)
        if not self.dtype.is_float:
            return out
        # at ±0 the value is +0.0 and the gradient 0 (torch's sign(0) = 0); NaN stays NaN
        return (self == 0)._where(self._const(0.0, shape=()), out)

    absolute = abs

    def reciprocal(self: "Tensor") -> "Tensor":
        return self._floating()._unary(Op.RECIPROCAL)

    def sign(self: "Tensor") -> "Tensor":
        if self.dtype.is_bool:
            return self
        one, zero = self._const(1, shape=()), self._const(0, shape=())
        # PyTorch's sign(nan) is 0, which this gives since nan compares false
        return (self > 0)._where(one, (self < 0)._where(-one if self.dtype.kind != "u" else zero, zero))

    def sgn(self: "Tensor") -> "Tensor":
        return self.sign()

    def signbit(self: "Tensor") -> "Tensor":
        if not self.dtype.is_float:
            return self < 0
        x = self.cast(dtypes.float32) if self.dtype in (dtypes.float16, dtypes.bfloat16) else self
        bits = x.bitcast(dtypes.int64 if x.dtype == dtypes.float64 else dtypes.int32)
        return bits < 0

    def square(self: "Tensor") -> "Tensor":
        x = self.cast(dtypes.int64) if self.dtype.is_bool else self
        return x * x

    def sqrt(self: "Tensor") -> "Tensor":
        return self._floating()._unary(Op.SQRT)

    def rsqrt(self: "Tensor") -> "Tensor":
        return self._math_in(lambda x: x.sqrt().reciprocal())

    def exp2(self: "Tensor") -> "Tensor":
        return self._floating()._unary(Op.EXP2)

    def exp(self: "Tensor") -> "Tensor":
        """~1 ulp for every x: Cody–Waite reduction (see _exp), not exp2(x·log2 e)."""
        return self._math_in(_exp)

    def expm1(self: "Tensor") -> "Tensor":
        return self._math_in(_expm1)

    def log2(self: "Tensor") -> "Tensor":
        return self._floating()._unary(Op.LOG2)

    def log(self: "Tensor") -> "Tensor":
        return self._math_in(lambda x: x._unary(Op.LOG2) * LN_2)

    def log10(self: "Tensor") -> "Tensor":
        return self._math_in(lambda x: x._unary(Op.LOG2) * (LN_2 / math.log(10.0)))

    def log1p(self: "Tensor") -> "Tensor":
        return self._math_in(_log1p)

    def sin(self: "Tensor") -> "Tensor":
        return self._floating()._unary(Op.SIN)

    def cos(self: "Tensor") -> "Tensor":
        """A primitive of its own (not sin(π/2 - x): that subtraction rounds away the low bits of x)."""
        return self._floating()._unary(Op.COS)

    def tan(self: "Tensor") -> "Tensor":
        """sin/cos, in float64 for narrower dtypes (one rounding of the quotient to the dtype)."""
        return self._math_in(lambda x: x._unary(Op.SIN) / x._unary(Op.COS), wide=True)

    def atan(self: "Tensor") -> "Tensor":
        return self._math_in(_atan)

    def arctan(self: "Tensor") -> "Tensor":
        return self.atan()

    def asin(self: "Tensor") -> "Tensor":
        # (1 - x)(1 + x) instead of 1 - x² keeps relative accuracy near |x| = 1; asin(±1) = atan(±inf)
        return self._math_in(lambda x: _atan(x / ((1 - x) * (1 + x)).sqrt()))

    arcsin = asin

    def acos(self: "Tensor") -> "Tensor":
        def acos_(x: "Tensor") -> "Tensor":
            out = _atan(((1 - x) / (1 + x)).sqrt()) * 2
            return (x == -1)._where(x._const(math.pi, shape=()), out)
        return self._math_in(acos_)

    arccos = acos

    def atan2(self: "Tensor", other: Any) -> "Tensor":
        """atan2(y=self, x=other), quadrant-correct like the C library."""
        y, x = self._broadcast_pair(other, "atan2")
        y, x = y._floating(), x._floating()
        if y.dtype in (dtypes.float16, dtypes.bfloat16):
            return y.cast(dtypes.float32).atan2(x.cast(dtypes.float32)).cast(y.dtype)
        c = y._const
        base = _atan(_magnitude(y / x))
        both_inf = y.isinf() & x.isinf()
        base = both_inf._where(c(math.pi / 4, shape=()), base)
        angle = (x.signbit())._where(math.pi - base, base)
        angle = ((x == 0) & (y == 0))._where((x.signbit())._where(c(math.pi, shape=()), c(0.0, shape=())),
                                             angle)
        angle = ((x == 0) & (y != 0))._where(c(math.pi / 2, shape=()), angle)
        angle = (x.isnan() | y.isnan())._where(x + y, angle)
        return (y.signbit())._where(-angle, angle)

    arctan2 = atan2

    def sinh(self: "Tensor") -> "Tensor":
        def sinh_(x: "Tensor") -> "Tensor":
            ax = _magnitude(x)
            em = _expm1(ax)
            moderate = (em + em / (em + 1)) * 0.5        # no cancellation for small |x|
            h = _exp(ax * 0.5)
            r = (ax > 20)._where((h * 0.5) * h, moderate)  # e^|x|/2 without overflowing early
            return x.signbit()._where(-r, r)
        return self._math_in(sinh_)

    def cosh(self: "Tensor") -> "Tensor":
        def cosh_(x: "Tensor") -> "Tensor":
            ax = _magnitude(x)
            e = _exp(ax)
            h = _exp(ax * 0.5)
            return (ax > 20)._where((h * 0.5) * h, (e + 1 / e) * 0.5)
        return self._math_in(cosh_)

    def tanh(self: "Tensor") -> "Tensor":
        def tanh_(x: "Tensor") -> "Tensor":
            em = _expm1(_magnitude(x) * -2)                  # tanh|x| = -expm1(-2|x|) / (2 + expm1(-2|x|))
            t = -em / (em + 2)
            return x.signbit()._where(-t, t)
        return self._math_in(tanh_)

    def asinh(self: "Tensor") -> "Tensor":
        def asinh(x: "Tensor") -> "Tensor":
            ax = _magnitude(x)
            r = (ax + (ax * ax + 1).sqrt()).log()
            return (x < 0)._where(-r, r)
        return self._math_in(asinh)

    def acosh(self: "Tensor") -> "Tensor":
        x = self._floating()
        return (x + (x * x - 1).sqrt()).log()

    def atanh(self: "Tensor") -> "Tensor":
        x = self._floating()
        return ((1 + x) / (1 - x)).log() * 0.5

    def erf(self: "Tensor") -> "Tensor":
        """Series / continued fraction (see _erf): ~1e-15 relative in float64, ~1 ulp in float32."""
        return self._math_in(_erf)

    def erfc(self: "Tensor") -> "Tensor":
        return 1 - self.erf()

    def floor(self: "Tensor") -> "Tensor":
        if not self.dtype.is_float:
            return self
        t = self._unary(Op.TRUNC)
        return (t > self)._where(t - 1, t)

    def ceil(self: "Tensor") -> "Tensor":
        if not self.dtype.is_float:
            return self
        t = self._unary(Op.TRUNC)
        return (t < self)._where(t + 1, t)

    def trunc(self: "Tensor") -> "Tensor":
        return self._unary(Op.TRUNC) if self.dtype.is_float else self

    fix = trunc

    def round(self: "Tensor", decimals: int = 0) -> "Tensor":
        """Round half to even (PyTorch/NumPy semantics)."""
        if not self.dtype.is_float:
            return self
        if decimals != 0:
            scale = 10.0 ** decimals
            # one kernel in PyTorch, so float32 throughout for the 16-bit floats (rounded once)
            return self._math_in(lambda x: (x * scale).round() / scale)
        f = self.floor()
        d = self - f
        odd = (f.fmod(2) != 0)
        up = (d > 0.5) | ((d == 0.5) & odd)
        return up._where(f + 1, f)

    def frac(self: "Tensor") -> "Tensor":
        return self - self.trunc()

    def clamp(self: "Tensor", min: Any = None, max: Any = None) -> "Tensor":
        if min is None and max is None:
            raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
        out = self
        # selects, not maximum/minimum: at a bound the gradient goes to the input, and a tensor bound
        # gets it only where it strictly wins (PyTorch); a NaN bound gives NaN like torch.clamp
        if min is not None:
            if isinstance(min, ElementwiseMixin):
                out = ((out < min) | min.isnan())._where(min, out)
            else:
                out = (out < min)._where(out._as_scalar_like(min), out)
        if max is not None:
            if isinstance(max, ElementwiseMixin):
                out = ((out > max) | max.isnan())._where(max, out)
            else:
                out = (out > max)._where(out._as_scalar_like(max), out)
        return out

    clip = clamp

    def clamp_min(self: "Tensor", min: Any) -> "Tensor":
        return self.clamp(min=min)

    def clamp_max(self: "Tensor", max: Any) -> "Tensor":
        return self.clamp(max=max)

    def _as_scalar_like(self: "Tensor", v: Any) -> Any:
        """A Python scalar clamp bound, promoted like PyTorch (an int tensor clamped by a float → float)."""
        return v

    def maximum(self: "Tensor", other: Any) -> "Tensor":
        return self._binop(Op.MAX, other, name="maximum")

    def minimum(self: "Tensor", other: Any) -> "Tensor":
        a, b = self._broadcast_pair(other, "minimum")
        if a.dtype.is_bool:
            return a & b
        if a.dtype.is_float:
            return -((-a).maximum(-b))
        return ~((~a).maximum(~b))

    def fmax(self: "Tensor", other: Any) -> "Tensor":
        a, b = self._broadcast_pair(other, "fmax")
        return a.isnan()._where(b, b.isnan()._where(a, a.maximum(b)))

    def fmin(self: "Tensor", other: Any) -> "Tensor":
        a, b = self._broadcast_pair(other, "fmin")
        return a.isnan()._where(b, b.isnan()._where(a, a.minimum(b)))

    def lerp(self: "Tensor", end: Any, weight: Any) -> "Tensor":
        if self.dtype in (dtypes.float16, dtypes.bfloat16):   # one op in PyTorch: float32, rounded once
            wide = [v.cast(dtypes.float32) if isinstance(v, ElementwiseMixin) else v for v in (end, weight)]
            return self.cast(dtypes.float32).lerp(*wide).cast(self.dtype)
        diff = end - self
        w = weight if isinstance(weight, ElementwiseMixin) else self._const(weight, shape=())
        return (w.abs() < 0.5)._where(self + w * diff, end - diff * (1 - w))

    def isnan(self: "Tensor") -> "Tensor":
        if not self.dtype.is_float:
            return self._const(False, dtypes.bool_)
        return self._new(g.binary(Op.CMPNE, self.node, self.node))

    def isinf(self: "Tensor") -> "Tensor":
        if not self.dtype.is_float:
            return self._const(False, dtypes.bool_)
        return (self == math.inf) | (self == -math.inf)

    def isposinf(self: "Tensor") -> "Tensor":
        return self == math.inf if self.dtype.is_float else self._const(False, dtypes.bool_)

    def isneginf(self: "Tensor") -> "Tensor":
        return self == -math.inf if self.dtype.is_float else self._const(False, dtypes.bool_)

    def isfinite(self: "Tensor") -> "Tensor":
        if not self.dtype.is_float:
            return self._const(True, dtypes.bool_)
        return (self - self) == 0

    def nan_to_num(self: "Tensor", nan: float = 0.0, posinf: float | None = None,
                   neginf: float | None = None) -> "Tensor":
        if not self.dtype.is_float:
            return self
        finfo_max = {dtypes.float16: 65504.0, dtypes.bfloat16: 3.3895313892515355e38,
                     dtypes.float32: 3.4028234663852886e38, dtypes.float64: 1.7976931348623157e308}[self.dtype]
        posinf = finfo_max if posinf is None else posinf
        neginf = -finfo_max if neginf is None else neginf
        out = self.isnan()._where(self._const(nan, shape=()), self)
        out = (self == math.inf)._where(self._const(posinf, shape=()), out)
        return (self == -math.inf)._where(self._const(neginf, shape=()), out)

    def pow(self: "Tensor", exponent: Any) -> "Tensor":
        return _pow(self, exponent)

    def float_power(self: "Tensor", exponent: Any) -> "Tensor":
        base = self.cast(dtypes.float64)
        e = exponent.cast(dtypes.float64) if isinstance(exponent, ElementwiseMixin) else float(exponent)
        return base.pow(e)

    # ---- comparisons ----
    def eq(self: "Tensor", other: Any) -> "Tensor":
        a, b = self._broadcast_pair(other, "eq")
        return a._new(g.binary(Op.CMPNE, a.node, b.node)).logical_not()

    def ne(self: "Tensor", other: Any) -> "Tensor":
        return self._binop(Op.CMPNE, other, name="ne")

    def lt(self: "Tensor", other: Any) -> "Tensor":
        return self._binop(Op.CMPLT, other, name="lt")

    def gt(self: "Tensor", other: Any) -> "Tensor":
        return self._binop(Op.CMPLT, other, reverse=True, name="gt")

    def le(self: "Tensor", other: Any) -> "Tensor":
        return self.lt(other) | self.eq(other)

    def ge(self: "Tensor", other: Any) -> "Tensor":
        return self.gt(other) | self.eq(other)

    less, greater, less_equal, greater_equal, not_equal = lt, gt, le, ge, ne

    def equal(self: "Tensor", other: "Tensor") -> bool:
        """True if same shape and all elements equal (a Python bool, like torch.equal)."""
        return tuple(self.shape) == tuple(other.shape) and bool(self.eq(other).all().item())

    def allclose(self: "Tensor", other: Any, rtol: float = 1e-5, atol: float = 1e-8,
                 equal_nan: bool = False) -> bool:
        return bool(self.isclose(other, rtol, atol, equal_nan).all().item())

    def isclose(self: "Tensor", other: Any, rtol: float = 1e-5, atol: float = 1e-8,
                equal_nan: bool = False) -> "Tensor":
        a, b = self._broadcast_pair(other, "isclose")
        close = (a == b) | ((a - b).abs() <= atol + rtol * b.abs())
        if equal_nan:
            close = close | (a.isnan() & b.isnan())
        return close

    # ---- logic and bitwise ----
    def logical_not(self: "Tensor") -> "Tensor":
        b = self.cast(dtypes.bool_)
        return b._new(g.binary(Op.CMPNE, b.node, g.const(True, dtypes.bool_, b.node.shape)))

    def logical_and(self: "Tensor", other: Any) -> "Tensor":
        return self.cast(dtypes.bool_)._binop(Op.AND, self._as_tensor(other).cast(dtypes.bool_))

    def logical_or(self: "Tensor", other: Any) -> "Tensor":
        return self.cast(dtypes.bool_)._binop(Op.OR, self._as_tensor(other).cast(dtypes.bool_))

    def logical_xor(self: "Tensor", other: Any) -> "Tensor":
        return self.cast(dtypes.bool_)._binop(Op.XOR, self._as_tensor(other).cast(dtypes.bool_))

    def _check_bitwise(self: "Tensor", name: str, other: Any = None) -> None:
        for t in (self, other):
            if isinstance(t, ElementwiseMixin) and t.dtype.is_float:
                raise TypeError(f"{name}: only integer and bool tensors are supported, got {t.dtype}")
            if isinstance(t, float):
                raise TypeError(f"{name}: only integer and bool operands are supported, got a float")

    def bitwise_and(self: "Tensor", other: Any) -> "Tensor":
        self._check_bitwise("bitwise_and", other)
        return self._binop(Op.AND, other, name="bitwise_and")

    def bitwise_or(self: "Tensor", other: Any) -> "Tensor":
        self._check_bitwise("bitwise_or", other)
        return self._binop(Op.OR, other, name="bitwise_or")

    def bitwise_xor(self: "Tensor", other: Any) -> "Tensor":
        self._check_bitwise("bitwise_xor", other)
        return self._binop(Op.XOR, other, name="bitwise_xor")

    def bitwise_not(self: "Tensor") -> "Tensor":
        self._check_bitwise("bitwise_not")
        if self.dtype.is_bool:
            return self.logical_not()
        return self._new(g.binary(Op.XOR, self.node, g.const(-1, self.dtype, self.node.shape)))

    def _check_shift(self: "Tensor", name: str, other: Any) -> None:
        self._check_bitwise(name, other)
        for t in (self, other):
            if isinstance(t, bool) or (isinstance(t, ElementwiseMixin) and t.dtype.is_bool):
                raise TypeError(f"{name}: shifts are not supported for bool tensors (as in PyTorch); "
                                "convert with .int() first")

    def bitwise_left_shift(self: "Tensor", other: Any) -> "Tensor":
        self._check_shift("bitwise_left_shift", other)
        return self._binop(Op.SHL, other, name="bitwise_left_shift")

    def bitwise_right_shift(self: "Tensor", other: Any) -> "Tensor":
        self._check_shift("bitwise_right_shift", other)
        return self._binop(Op.SHR, other, name="bitwise_right_shift")

    # ---- activations ----
    def relu(self: "Tensor") -> "Tensor":
        """max(x, 0) with PyTorch's gradient: 0 at x == 0 (not the 1/2 of maximum's tie); NaN stays NaN."""
        if self.dtype.is_bool:
            return self
        return (self <= 0)._where(self._const(0, shape=()), self)

    def relu6(self: "Tensor") -> "Tensor":
        return self.hardtanh(0.0, 6.0)

    def leaky_relu(self: "Tensor", negative_slope: float = 0.01) -> "Tensor":
        return (self > 0)._where(self, self * negative_slope)

    def elu(self: "Tensor", alpha: float = 1.0) -> "Tensor":
        return self._math_in(lambda x: (x > 0)._where(x, _expm1(x) * alpha))

    def selu(self: "Tensor") -> "Tensor":
        alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
        return self._math_in(lambda x: (x > 0)._where(x * scale, _expm1(x) * (alpha * scale)))

    def celu(self: "Tensor", alpha: float = 1.0) -> "Tensor":
        return self._math_in(lambda x: x.maximum(0) + (_expm1(x / alpha) * alpha).minimum(0))

    def gelu(self: "Tensor", approximate: str = "none") -> "Tensor":
        if approximate == "tanh":
            def gelu_tanh(x: "Tensor") -> "Tensor":
                inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
                return x * 0.5 * (1 + inner.tanh())
            return self._math_in(gelu_tanh)
        if approximate != "none":
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return self._math_in(lambda x: x * 0.5 * (1 + _erf(x * (1 / math.sqrt(2.0)))))

    def sigmoid(self: "Tensor") -> "Tensor":
        return self._math_in(lambda x: 1 / (1 + _exp(-x)))

    def logsigmoid(self: "Tensor") -> "Tensor":
        # -(max(-x, 0) + log1p(e^-|x|)), without softplus's threshold (PyTorch has none here)
        return self._math_in(lambda x: -((-x).maximum(0) + _log1p(_exp(-x.abs()))))

    def silu(self: "Tensor") -> "Tensor":
        return self._math_in(lambda x: x / (1 + _exp(-x)))

    swish = silu

    def mish(self: "Tensor") -> "Tensor":
        return self._math_in(lambda x: x * x.softplus().tanh())

    def softplus(self: "Tensor", beta: float = 1.0, threshold: float = 20.0) -> "Tensor":
        def softplus_(x: "Tensor") -> "Tensor":
            bx = x * beta
            # log(1 + e^bx) = max(bx, 0) + log1p(e^-|bx|), stable for large |bx|
            soft = (bx.maximum(0) + _log1p(_exp(-(bx.abs())))) / beta
            return (bx > threshold)._where(x, soft)
        return self._math_in(softplus_)

    def softsign(self: "Tensor") -> "Tensor":
        return self / (1 + self.abs())

    def hardtanh(self: "Tensor", min_val: float = -1.0, max_val: float = 1.0) -> "Tensor":
        # unlike clamp, the bounds take self's dtype (PyTorch keeps integer hardtanh integer), and the
        # gradient is 0 at the bounds themselves (PyTorch's hardtanh_backward: min < x < max)
        lo, hi = self._const(min_val, shape=()), self._const(max_val, shape=())
        return (self <= lo)._where(lo, (self >= hi)._where(hi, self))

    def hardsigmoid(self: "Tensor") -> "Tensor":
        return (self + 3).hardtanh(0.0, 6.0) / 6   # gradient 0 at ±3, as in PyTorch

    def hardswish(self: "Tensor") -> "Tensor":
        return self * ((self + 3).hardtanh(0.0, 6.0) / 6)   # PyTorch's gradient at ±3: 0 and 1

    def hardshrink(self: "Tensor", lambd: float = 0.5) -> "Tensor":
        return (self.abs() > lambd)._where(self, self * 0)

    def softshrink(self: "Tensor", lambd: float = 0.5) -> "Tensor":
        return (self > lambd)._where(self - lambd, (self < -lambd)._where(self + lambd, self * 0))

    def tanhshrink(self: "Tensor") -> "Tensor":
        return self - self.tanh()

    def threshold(self: "Tensor", threshold: float, value: float) -> "Tensor":
        return (self > threshold)._where(self, self._const(value, shape=()))

    # ---- operators ----
    __add__ = add   # (the method itself, not a wrapper calling it: a small op is mostly call overhead)

    def __radd__(self: "Tensor", other: Any) -> "Tensor":
        return self._binop(Op.ADD, other, reverse=True, name="add")

    __sub__ = sub

    def __rsub__(self: "Tensor", other: Any) -> "Tensor":
        a, b = self._broadcast_pair(other, "sub", reverse=True)
        return a.sub(b)

    __mul__ = mul

    def __rmul__(self: "Tensor", other: Any) -> "Tensor":
        if self._scalar_in_opmath(other):
            return self.mul(other)
        return self._binop(Op.MUL, other, reverse=True, name="mul")

    def __truediv__(self, other: Any) -> "Tensor":
        return self.div(other)

    def __rtruediv__(self: "Tensor", other: Any) -> "Tensor":
        if isinstance(other, (int, float, np.number)):
            return self.reciprocal().mul(other)   # as PyTorch: number / t is reciprocal(t) * number
        a, b = self._broadcast_pair(other, "div", reverse=True)
        return a.div(b)

    def __floordiv__(self, other: Any) -> "Tensor":
        return self.floor_divide(other)

    def __rfloordiv__(self, other: Any) -> "Tensor":
        return self.floor_divide(other, _reverse=True)

    def __mod__(self, other: Any) -> "Tensor":
        return self.remainder(other)

    def __rmod__(self, other: Any) -> "Tensor":
        return self.remainder(other, _reverse=True)

    def __pow__(self, other: Any) -> "Tensor":
        return self.pow(other)

    def __rpow__(self: "Tensor", other: Any) -> "Tensor":
        a, b = self._broadcast_pair(other, "pow", reverse=True)
        return a.pow(b)

    def __neg__(self) -> "Tensor":
        return self.neg()

    def __pos__(self) -> "Tensor":
        return self

    def __abs__(self) -> "Tensor":
        return self.abs()

    def __invert__(self) -> "Tensor":
        return self.bitwise_not()

    def __and__(self, other: Any) -> "Tensor":
        return self.bitwise_and(other)

    def __rand__(self, other: Any) -> "Tensor":
        return self.bitwise_and(other)

    def __or__(self, other: Any) -> "Tensor":
        return self.bitwise_or(other)

    def __ror__(self, other: Any) -> "Tensor":
        return self.bitwise_or(other)

    def __xor__(self, other: Any) -> "Tensor":
        return self.bitwise_xor(other)

    def __rxor__(self, other: Any) -> "Tensor":
        return self.bitwise_xor(other)

    def __lshift__(self, other: Any) -> "Tensor":
        return self.bitwise_left_shift(other)

    def __rshift__(self, other: Any) -> "Tensor":
        return self.bitwise_right_shift(other)

    def __eq__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return self.eq(other)

    def __ne__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return self.ne(other)

    def __lt__(self, other: Any) -> "Tensor":
        return self.lt(other)

    def __le__(self, other: Any) -> "Tensor":
        return self.le(other)

    def __gt__(self, other: Any) -> "Tensor":
        return self.gt(other)

    def __ge__(self, other: Any) -> "Tensor":
        return self.ge(other)


def _magnitude(x: "Tensor") -> "Tensor":
    """|x| for formulas that rebuild an odd function from its value at |x| (sign restored by signbit):
    the gradient is +1 at +0 (public abs() has PyTorch's 0 there, which would zero e.g. tanh'(0))."""
    return (x < 0)._where(-x, x) + x._const(0.0, shape=())   # -0.0 → +0.0


def _pow(base: "Tensor", exponent: Any) -> "Tensor":
    """PyTorch pow: exact products for small integer exponents, exp2(e·log2|b|) otherwise."""
    if not isinstance(exponent, ElementwiseMixin) and not isinstance(exponent, (bool, int, float)):
        exponent = base._as_tensor(exponent)
    if isinstance(exponent, (bool, int, float)):
        a, _ = base._broadcast_pair(exponent, "pow")
        if float(exponent).is_integer() and abs(exponent) <= 64:
            # one kernel in PyTorch: the products in float32, rounded once to the 16-bit type; but its
            # bfloat16 kernel multiplies in bfloat16 (rounding each product) for the exponents 3 and -2
            per_op = a.dtype == dtypes.bfloat16 and exponent in (3, -2)
            if a.dtype in (dtypes.float16, dtypes.bfloat16) and not per_op:
                return _pow(a.cast(dtypes.float32), exponent).cast(a.dtype)
            n = int(exponent)
            if not a.dtype.is_float and n < 0:
                raise RuntimeError("pow: integers to negative integer powers are not allowed")
            result = _int_power(a, abs(n))
            return 1 / result if n < 0 else result
        if exponent == 0.5:
            return a.sqrt()   # as PyTorch: (-inf) ** 0.5 is nan (C pow would say inf)
        e = a._const(exponent, shape=())
        return _float_pow(a, e._broadcast_to(tuple(a.shape)))
    a, e = base._broadcast_pair(exponent, "pow")
    if not a.dtype.is_float:
        # integer tensor exponents: square-and-multiply over the exponent's bits
        result = a._const(1, shape=())._broadcast_to(tuple(a.shape))
        power, rest = a, e
        for _ in range(64 if a.dtype.itemsize == 8 else 32):
            result = ((rest & 1) != 0)._where(result * power, result)
            power, rest = power * power, rest >> 1
        return (e < 0)._where(a * 0, result)
    return _float_pow(a, e)


def _int_power(a: "Tensor", n: int) -> "Tensor":
    result = None
    power = a
    while n:
        if n & 1:
            result = power if result is None else result * power
        n >>= 1
        if n:
            power = power * power
    return result if result is not None else a._const(1, shape=())._broadcast_to(tuple(a.shape))


def _float_pow(a: "Tensor", e: "Tensor") -> "Tensor":
    """C pow: exp2(e·log2|a|) with the sign and special cases fixed up. Narrower floats are computed
    in float64 (the product e·log2|a| would cost |e·log2 a| ulp); float64 is within ~1e-14."""
    if a.dtype != dtypes.float64:
        return _float_pow(a.cast(dtypes.float64), e.cast(dtypes.float64)).cast(a.dtype)
    mag = (e * a.abs()._unary(Op.LOG2))._unary(Op.EXP2)
    e_is_int = e.trunc() == e
    e_is_odd = e_is_int & (e.fmod(2).abs() == 1)
    out = (a.signbit() & e_is_odd & ~a.isnan())._where(-mag, mag)
    out = ((a < 0) & ~e_is_int & ~e.isinf() & ~a.isinf())._where(a._const(math.nan, shape=()), out)
    one = a._const(1.0, shape=())
    # fix up only where the formula is off (else the constant would cut the gradient, e.g. of 2**x at 0)
    special = (a == 1) | (e == 0) | ((a == -1) & e.isinf())
    return (special & (out != 1))._where(one, out)


# ---- float kernels shared by the methods above: x is float32 or float64, nothing is promoted ----

# ln 2 split so that n·hi is exact for the n an in-range exp can have (Cody–Waite).
_LN2_SPLIT = {dtypes.float32: (0.693145751953125, 1.428606765330187045e-06),
              dtypes.float64: (6.93147180369123816490e-01, 1.90821492927058770002e-10)}


# e**r on |r| ≤ ln2/2 by its Taylor series: the last term kept is below half an ulp of the result.
_EXP_TERMS = {dtypes.float32: 8, dtypes.float64: 14}
# exp's argument range with a finite, nonzero result (beyond: the scaling gives inf or 0 by itself).
_EXP_RANGE = {dtypes.float32: (-104.0, 89.0), dtypes.float64: (-746.0, 710.0)}
# 1.5·2**(mantissa bits) and its bit pattern: for |v| < 2**22 (float32) or 2**51 (float64), the sum
# v + M rounds v to the nearest integer k (the adder's own rounding), and its bits are M's bits + k.
_ROUNDING_MAGIC = {dtypes.float32: (12582912.0, 0x4B400000, dtypes.int32),
                   dtypes.float64: (6755399441055744.0, 0x4338000000000000, dtypes.int64)}


def _exp(x: "Tensor") -> "Tensor":
    """e**x: n = round(x·log2 e), r = x - n·ln2 (Cody–Waite: exact in two steps), e**r by a short
    polynomial, times 2**n built from exponent bits in two halves (so subnormal results survive).
    Only arithmetic, no libm call: kernels using exp vectorize.

    The chain of dependent operations is kept short, because an elementwise kernel with an exp is
    bound by it (the CPU holds only a few elements' chains in flight): n comes from one add of a
    rounding constant (not a floor: a float→int→float round trip, a compare and a select), and the
    polynomial is evaluated mostly by Estrin's scheme (five levels of multiply-adds, not eight).
    Measured on one Zen 3 core: the bench's 8-op chain, cache-hot, 1.52-1.69 -> 1.24-1.42 ns per
    element; over 16M elements 36 -> 31 ms."""
    hi, lo = _LN2_SPLIT[x.dtype]
    low, high = _EXP_RANGE[x.dtype]
    magic, magic_bits, int_dtype = _ROUNDING_MAGIC[x.dtype]
    xc = x.clamp(low, high)
    shifted = _muladd(xc, LOG2_E, magic)   # magic + n exactly
    # n as an integer, read from the sum's bits, and as a float through that integer: a step function,
    # so the integer path is also what keeps gradients from flowing through n
    n_bits = shifted.bitcast(int_dtype) - magic_bits
    n = n_bits.cast(x.dtype)
    r = _muladd(n, -lo, _muladd(n, -hi, xc))   # (n·hi is exact: the first step is xc - n·hi as well)
    # 1 + (r + r²·Σ r^(k-2)/k!): the two last roundings are those of Horner's rule (on a sum much
    # smaller than the result, then on the result), so the error stays within an ulp
    tail = _estrin(r, tuple(1.0 / math.factorial(k) for k in range(2, _EXP_TERMS[x.dtype])))
    poly = 1 + _muladd(r * r, tail, r)
    # For a NaN x, n_bits is arbitrary and so are the two scale factors (the integer arithmetic wraps),
    # but poly is NaN already and NaN times any float is NaN: no select is needed to tame n_bits. (The
    # select, a compare and a blend on every element, cost 3-8% of the bench's exp chain.)
    half = n_bits >> 1                    # floor(n / 2): an arithmetic shift
    return poly * _pow2_bits(half, x.dtype) * _pow2_bits(n_bits - half, x.dtype)


def _pow2_bits(k: "Tensor", dt: dtypes.DType) -> "Tensor":
    """2**k as float dt for an int32 (float32) or int64 (float64) k within the normal exponent range,
    from the exponent bits (exact)."""
    if dt == dtypes.float32:
        return ((k + 127) << 23).bitcast(dt)
    return ((k + 1023) << 52).bitcast(dt)


def _expm1(x: "Tensor") -> "Tensor":
    """e**x - 1 by Kahan's trick: (u - 1)·x / log(u) with u = e**x cancels the rounding of u."""
    u = _exp(x)
    um1 = u - 1
    exact = u == 1   # the result is x there; keep the untaken branch finite (else its gradient is NaN)
    small = um1 * x / exact._where(1.0, u._unary(Op.LOG2) * LN_2)
    out = (x.abs() < 1)._where(small, um1)
    return (u == 1)._where(x, (um1 == -1)._where(um1, out))


def _log1p(x: "Tensor") -> "Tensor":
    """log(1 + x) by Kahan's trick: log(u)·x / (u - 1) with u = 1 + x rounded."""
    u = x + 1
    logu = u._unary(Op.LOG2) * LN_2
    exact = u == 1
    denom = exact._where(1.0, u - 1)   # never 0/0 in the untaken branch: its gradient would be NaN
    return exact._where(x, u.isinf()._where(logu, logu * x / denom))


def _atan(x: "Tensor") -> "Tensor":
    """Reduce |x| > 1 by atan(x) = π/2 - atan(1/x), halve the angle twice (|t| ≤ tan(π/16)),
    then a 13-term odd Taylor series: error below 1e-16 relative."""
    ax = _magnitude(x)
    big = ax > 1
    t = big._where(1 / big._where(ax, 1.0), ax)   # never 1/0 in the untaken branch (NaN gradient)
    for _ in range(2):
        t = t / (1 + (1 + t * t).sqrt())
    t2 = t * t
    series = x._const(0.0, shape=())
    for k in range(12, -1, -1):
        series = series * t2 + ((-1) ** k) / (2 * k + 1)
    r = series * t * 4
    r = big._where(math.pi / 2 - r, r)
    r = ax.isinf()._where(x._const(math.pi / 2, shape=()), r)
    return x.signbit()._where(-r, r)


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
# erf(x) = 2/√π · x · e^{-x²} · Σ (2x²)^n / (2n+1)!!: positive terms, so no cancellation
_ERF_SERIES = [2.0 ** n / math.prod(range(1, 2 * n + 2, 2)) for n in range(41)]


# float32 erf in two pieces, Chebyshev fits (numpy.polynomial.chebyshev.chebfit on 2000 Chebyshev
# nodes against SciPy's float64 erf/erfc, converted to power series), rounded to float32:
# |x| < 1.25: erf(x) = x·P(u), u = 2x²/1.25² - 1 (within 2.2 ulp);
# 1.25 ≤ |x| < 3.92: erf(x) = 1 - e^{-x²}·Q(w), w = (|x| - 1.25)·2/2.67 - 1 (within 0.9 ulp);
# beyond 3.92, erf(x) rounds to ±1 in float32.
_ERF32_SPLIT, _ERF32_ONE = 1.25, 3.92
_ERF32_NEAR = (0.8923127055168152, -0.18785153329372406, 0.03998836502432823, -0.007047492079436779,
               0.0010343525791540742, -0.00012914816034026444, 1.421708020643564e-05, -1.3552162272389978e-06)
_ERFC32_FAR = (0.2046622335910797, -0.093817800283432, 0.040991608053445816, -0.017160888761281967,
               0.006913688965141773, -0.0026981604751199484, 0.0010172519832849503, -0.0003525283536873758,
               0.0001245984312845394, -6.267977732932195e-05, 2.1479991119122133e-05)


def _horner(t: "Tensor", coefficients: tuple[float, ...]) -> "Tensor":
    """Σ coefficients[i]·t^i (each step one multiply-add: _muladd)."""
    s = t._const(coefficients[-1], shape=())
    for c in reversed(coefficients[:-1]):
        s = _muladd(s, t, c)
    return s


def _estrin(t: "Tensor", coefficients: tuple[float, ...]) -> "Tensor":
    """Σ coefficients[i]·t^i by Estrin's scheme: pairs c[2i] + c[2i+1]·t, then pairs of those joined by
    t², then by t⁴, …. The same sum as Horner's rule with a dependency chain of log2(len) multiply-adds
    instead of len - 1, so more of it runs in parallel."""
    terms = [_muladd(t, coefficients[i + 1], coefficients[i]) if i + 1 < len(coefficients)
             else t._const(coefficients[i], shape=()) for i in range(0, len(coefficients), 2)]
    power = t
    while len(terms) > 1:
        power = power * power
        terms = [_muladd(power, terms[i + 1], terms[i]) if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def _muladd(a: "Tensor", b: "Tensor | float", c: "Tensor | float") -> "Tensor":
    """a·b + c for a math expansion's own arithmetic (never a user's a*b + c, whose two roundings
    NumPy and PyTorch keep): rounded once (Op.MULADD) where the device has a fused multiply-add
    instruction (an x86 CPU with FMA3, every GPU), else a product and a sum. One instruction of 4
    cycles' latency instead of two of 3 each: a kernel with an exp is bound by the length of its
    chain of dependent operations (see _exp)."""
    if not _fuses_multiply_add(a.device) or a.dtype not in (dtypes.float32, dtypes.float64):
        return a * b + c
    from lazytensor.tensor import broadcast_shapes   # (tensor.py imports this module)
    operands = [v if isinstance(v, a.__class__) else a._const(v, shape=()) for v in (a, b, c)]
    shape = broadcast_shapes(*(v.node.shape for v in operands), op="muladd")
    nodes = [v._broadcast_to(shape).node for v in operands]
    return a._new(g.muladd(*nodes))


def _fuses_multiply_add(device: str) -> bool:
    """The device runs a fused multiply-add as one instruction (C's fmaf would otherwise be a slow
    library call)."""
    return device != "CPU" or host_has_fma()


def _erf_float32(x: "Tensor") -> "Tensor":
    """erf for float32: two short polynomials and one exp (see _ERF32_NEAR / _ERFC32_FAR)."""
    ax = _magnitude(x)
    near = x * _horner(ax * ax * (2 / _ERF32_SPLIT ** 2) - 1, _ERF32_NEAR)
    af = ax.clamp(_ERF32_SPLIT, _ERF32_ONE)
    far = 1 - _exp(-(af * af)) * _horner((af - _ERF32_SPLIT) * (2 / (_ERF32_ONE - _ERF32_SPLIT)) - 1, _ERFC32_FAR)
    far = x.signbit()._where(-far, far)
    return (ax < _ERF32_SPLIT)._where(near, far)


def _erf(x: "Tensor") -> "Tensor":
    """|x| < 2.5: the positive series above (40 terms); beyond, 1 - erfc(|x|) with erfc from its
    continued fraction e^{-x²}/√π / (x + ½/(x + 1/(x + 3/2/(x + ...)))) (30 terms).
    Both are accurate to ~1e-15 relative in float64 (erfc's error is scaled by erfc ≤ 4e-4).
    float32 takes the cheaper _erf_float32."""
    if x.dtype == dtypes.float32:
        return _erf_float32(x)
    ax = _magnitude(x)
    y = ax * ax
    e = _exp(-y)
    s = x._const(0.0, shape=())
    for c in reversed(_ERF_SERIES):
        s = s * y + c
    series = ax * e * s * _TWO_OVER_SQRT_PI
    xb = ax.maximum(2.5)    # keep the fraction finite where it is not selected
    f = xb
    for k in range(30, 0, -1):
        f = xb + (k / 2) / f
    tail = 1 - _exp(-(xb * xb)) / f * (1 / math.sqrt(math.pi))
    r = (ax < 2.5)._where(series, tail)
    return x.signbit()._where(-r, r)

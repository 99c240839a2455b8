"""Elementwise ops, comparisons, logic and activations, composed from primitive ops.

Each method builds graph nodes through the primitive wrappers in tensor.py; nothing here
computes a value. Float-only ops promote integer inputs to the default float dtype, as
PyTorch does.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lazytensor import dtypes
from lazytensor import graph as g
from lazytensor.ops import Op

if TYPE_CHECKING:
    from lazytensor.tensor import Tensor

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

    def _where(self: "Tensor", a: Any, b: Any) -> "Tensor":
        """where(self, a, b) with self a bool tensor; a and b broadcast and promote."""
        from lazytensor.functions import where
        return where(self, a, b)

    # ---- arithmetic ----
    def add(self: "Tensor", other: Any, alpha: Any = 1) -> "Tensor":
        if alpha != 1:
            other = self._as_tensor(other) * alpha
        return self._binop(Op.ADD, other, name="add")

    def sub(self: "Tensor", other: Any, alpha: Any = 1) -> "Tensor":
        if self.dtype.is_bool and (isinstance(other, bool) or getattr(other, "dtype", None) == dtypes.bool_):
            raise TypeError("sub: subtraction of bool tensors is not supported; use logical_xor() or ~")
        a, b = self._broadcast_pair(other, "sub")
        if alpha != 1:
            b = b * alpha
        return a._new(g.binary(Op.ADD, a.node, (-b).node))

    def rsub(self: "Tensor", other: Any, alpha: Any = 1) -> "Tensor":
        a, b = self._broadcast_pair(other, "rsub", reverse=True)
        return a.sub(b, alpha=alpha)

    def mul(self: "Tensor", other: Any) -> "Tensor":
        return self._binop(Op.MUL, other, name="mul")

    def div(self: "Tensor", other: Any, rounding_mode: str | None = None) -> "Tensor":
        """True division (integers promote to float); rounding_mode 'trunc' or 'floor' rounds."""
        if rounding_mode is None:
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
        return out + self._const(0.0, shape=()) if self.dtype.is_float else out  # -0.0 → 0.0

    absolute = abs

    def reciprocal(self: "Tensor") -> "Tensor":
        return self._floating()._unary(Op.RECIPROCAL)

    def sign(self: "Tensor") -> "Tensor":
        if self.dtype.is_bool:
            return self
        one, zero = self._const(1, shape=()), self._const(0, shape=())
        out = (self > 0)._where(one, (self < 0)._where(-one if self.dtype.kind != "u" else zero, zero))
        return self.isnan()._where(self, out) if self.dtype.is_float else out

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
        return self.sqrt().reciprocal()

    def exp2(self: "Tensor") -> "Tensor":
        return self._floating()._unary(Op.EXP2)

    def exp(self: "Tensor") -> "Tensor":
        x = self._floating()
        return (x * LOG2_E)._unary(Op.EXP2)

    def expm1(self: "Tensor") -> "Tensor":
        x = self._floating()
        u = x.exp()
        # Kahan: (u - 1) * x / log(u) keeps precision for small x
        small = (u - 1) * x / u.log()
        return ((u == 1))._where(x, ((u - 1) == -1)._where(u - 1, (x.abs() < 1)._where(small, u - 1)))

    def log2(self: "Tensor") -> "Tensor":
        return self._floating()._unary(Op.LOG2)

    def log(self: "Tensor") -> "Tensor":
        return self.log2() * LN_2

    def log10(self: "Tensor") -> "Tensor":
        return self.log2() * (LN_2 / math.log(10.0))

    def log1p(self: "Tensor") -> "Tensor":
        x = self._floating()
        u = x + 1
        # Kahan: log(u) * x / (u - 1) is exact-ish where u rounds
        return (u == 1)._where(x, (u.isinf())._where(u.log(), u.log() * x / (u - 1)))

    def sin(self: "Tensor") -> "Tensor":
        return self._floating()._unary(Op.SIN)

    def cos(self: "Tensor") -> "Tensor":
        x = self._floating()
        return (math.pi / 2 - x)._unary(Op.SIN)

    def tan(self: "Tensor") -> "Tensor":
        return self.sin() / self.cos()

    def atan(self: "Tensor") -> "Tensor":
        x = self._floating()
        ax = x.abs()
        big = ax > 1
        t = big._where(1 / ax, ax)
        # two argument halvings: atan(t) = 2 atan(t / (1 + sqrt(1 + t²))), then |t| ≤ tan(π/16)
        for _ in range(2):
            t = t / (1 + (1 + t * t).sqrt())
        t2 = t * t
        series = t * 0
        for k in range(12, -1, -1):
            series = series * t2 + ((-1) ** k) / (2 * k + 1)
        r = series * t * 4
        r = big._where(math.pi / 2 - r, r)
        r = ax.isinf()._where(ax * 0 + math.pi / 2, r)
        return (x < 0)._where(-r, x.isnan()._where(x, r))

    def arctan(self: "Tensor") -> "Tensor":
        return self.atan()

    def asin(self: "Tensor") -> "Tensor":
        x = self._floating()
        out = (x / (1 - x * x).sqrt()).atan()
        return (x.abs() > 1)._where(x * math.nan, out)

    arcsin = asin

    def acos(self: "Tensor") -> "Tensor":
        x = self._floating()
        out = ((1 - x) / (1 + x)).sqrt().atan() * 2
        return (x.abs() > 1)._where(x * math.nan, (x == -1)._where(x * 0 + math.pi, out))

    arccos = acos

    def atan2(self: "Tensor", other: Any) -> "Tensor":
        """atan2(y=self, x=other), quadrant-correct like the C library."""
        y, x = self._broadcast_pair(other, "atan2")
        y, x = y._floating(), x._floating()
        base = (y / x).abs().atan()
        both_inf = y.isinf() & x.isinf()
        base = both_inf._where(base * 0 + math.pi / 4, base)
        angle = (x < 0)._where(math.pi - base, base)
        angle = ((x == 0) & (y == 0))._where((x.signbit())._where(base * 0 + math.pi, base * 0), angle)
        angle = ((x == 0) & (y != 0))._where(base * 0 + math.pi / 2, angle)
        return (y.signbit())._where(-angle, angle)

    arctan2 = atan2

    def sinh(self: "Tensor") -> "Tensor":
        x = self._floating()
        e = x.exp()
        big = (e - 1 / e) / 2
        small = x + x * x * x / 6
        return (x.abs() < 1e-4)._where(small, big)

    def cosh(self: "Tensor") -> "Tensor":
        e = self._floating().exp()
        return (e + 1 / e) / 2

    def tanh(self: "Tensor") -> "Tensor":
        x = self._floating()
        ax = x.abs()
        e = (ax * -2).exp()
        t = (1 - e) / (1 + e)
        small = x - x * x * x / 3
        out = (ax < 1e-4)._where(small, (x < 0)._where(-t, t))
        return out

    def asinh(self: "Tensor") -> "Tensor":
        x = self._floating()
        ax = x.abs()
        r = (ax + (ax * ax + 1).sqrt()).log()
        return (x < 0)._where(-r, r)

    def acosh(self: "Tensor") -> "Tensor":
        x = self._floating()
        return (x + (x * x - 1).sqrt()).log()

    def atanh(self: "Tensor") -> "Tensor":
        x = self._floating()
        return ((1 + x) / (1 - x)).log() * 0.5

    def erf(self: "Tensor") -> "Tensor":
        """Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7)."""
        x = self._floating()
        ax = x.abs()
        t = 1 / (1 + 0.3275911 * ax)
        poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        y = 1 - poly * (-(ax * ax)).exp()
        return (x < 0)._where(-y, y)

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
            return (self * scale).round() / scale
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
        if min is not None:
            out = out.maximum(min) if isinstance(min, ElementwiseMixin) else \
                (out < min)._where(out._as_scalar_like(min), out)
        if max is not None:
            out = out.minimum(max) if isinstance(max, ElementwiseMixin) else \
                (out > max)._where(out._as_scalar_like(max), out)
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
        diff = end - self
        w = weight if isinstance(weight, ElementwiseMixin) else self._as_tensor(weight).cast(self.dtype)
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

    def bitwise_left_shift(self: "Tensor", other: Any) -> "Tensor":
        self._check_bitwise("bitwise_left_shift", other)
        return self._binop(Op.SHL, other, name="bitwise_left_shift")

    def bitwise_right_shift(self: "Tensor", other: Any) -> "Tensor":
        self._check_bitwise("bitwise_right_shift", other)
        return self._binop(Op.SHR, other, name="bitwise_right_shift")

    # ---- activations ----
    def relu(self: "Tensor") -> "Tensor":
        return self.maximum(self._const(0, shape=())) if not self.dtype.is_bool else self

    def relu6(self: "Tensor") -> "Tensor":
        return self.hardtanh(0.0, 6.0)

    def leaky_relu(self: "Tensor", negative_slope: float = 0.01) -> "Tensor":
        return (self > 0)._where(self, self * negative_slope)

    def elu(self: "Tensor", alpha: float = 1.0) -> "Tensor":
        return (self > 0)._where(self, self.expm1() * alpha)

    def selu(self: "Tensor") -> "Tensor":
        alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
        return self.elu(alpha) * scale

    def celu(self: "Tensor", alpha: float = 1.0) -> "Tensor":
        return self.maximum(0) + ((self / alpha).expm1() * alpha).minimum(0)

    def gelu(self: "Tensor", approximate: str = "none") -> "Tensor":
        if approximate == "tanh":
            inner = (self + self * self * self * 0.044715) * math.sqrt(2.0 / math.pi)
            return self * 0.5 * (1 + inner.tanh())
        if approximate != "none":
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return self * 0.5 * (1 + (self * (1 / math.sqrt(2.0))).erf())

    def sigmoid(self: "Tensor") -> "Tensor":
        x = self._floating()
        return 1 / (1 + (-x).exp())

    def logsigmoid(self: "Tensor") -> "Tensor":
        return -(-self).softplus()

    def silu(self: "Tensor") -> "Tensor":
        return self * self.sigmoid()

    swish = silu

    def mish(self: "Tensor") -> "Tensor":
        return self * self.softplus().tanh()

    def softplus(self: "Tensor", beta: float = 1.0, threshold: float = 20.0) -> "Tensor":
        x = self._floating()
        bx = x * beta
        # log(1 + e^bx) = max(bx, 0) + log1p(e^-|bx|), stable for large |bx|
        soft = (bx.maximum(0) + (-(bx.abs())).exp().log1p()) / beta
        return (bx > threshold)._where(x, soft)

    def softsign(self: "Tensor") -> "Tensor":
        return self / (1 + self.abs())

    def hardtanh(self: "Tensor", min_val: float = -1.0, max_val: float = 1.0) -> "Tensor":
        return self.clamp(min_val, max_val)

    def hardsigmoid(self: "Tensor") -> "Tensor":
        return ((self + 3) / 6).clamp(0, 1)

    def hardswish(self: "Tensor") -> "Tensor":
        return self * ((self + 3).clamp(0, 6) / 6)

    def hardshrink(self: "Tensor", lambd: float = 0.5) -> "Tensor":
        return (self.abs() > lambd)._where(self, self * 0)

    def softshrink(self: "Tensor", lambd: float = 0.5) -> "Tensor":
        return (self > lambd)._where(self - lambd, (self < -lambd)._where(self + lambd, self * 0))

    def tanhshrink(self: "Tensor") -> "Tensor":
        return self - self.tanh()

    def threshold(self: "Tensor", threshold: float, value: float) -> "Tensor":
        return (self > threshold)._where(self, self._const(value, shape=()))

    # ---- operators ----
    def __add__(self, other: Any) -> "Tensor":
        return self.add(other)

    def __radd__(self: "Tensor", other: Any) -> "Tensor":
        return self._binop(Op.ADD, other, reverse=True, name="add")

    def __sub__(self, other: Any) -> "Tensor":
        return self.sub(other)

    def __rsub__(self: "Tensor", other: Any) -> "Tensor":
        a, b = self._broadcast_pair(other, "sub", reverse=True)
        return a.sub(b)

    def __mul__(self, other: Any) -> "Tensor":
        return self.mul(other)

    def __rmul__(self: "Tensor", other: Any) -> "Tensor":
        return self._binop(Op.MUL, other, reverse=True, name="mul")

    def __truediv__(self, other: Any) -> "Tensor":
        return self.div(other)

    def __rtruediv__(self: "Tensor", other: Any) -> "Tensor":
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


def _pow(base: "Tensor", exponent: Any) -> "Tensor":
    """PyTorch pow: exact products for small integer exponents, exp2(e·log2|b|) otherwise."""
    if not isinstance(exponent, ElementwiseMixin) and not isinstance(exponent, (bool, int, float)):
        exponent = base._as_tensor(exponent)
    if isinstance(exponent, (bool, int, float)):
        a, _ = base._broadcast_pair(exponent, "pow")
        if float(exponent).is_integer() and abs(exponent) <= 64:
            n = int(exponent)
            if not a.dtype.is_float and n < 0:
                raise RuntimeError("pow: integers to negative integer powers are not allowed")
            result = _int_power(a, abs(n))
            return 1 / result if n < 0 else result
        if exponent == 0.5:
            return a.sqrt()
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
    mag = (e * a.abs().log2()).exp2()
    e_is_int = e.trunc() == e
    e_is_odd = e_is_int & (e.fmod(2).abs() == 1)
    out = ((a < 0) & e_is_odd)._where(-mag, mag)
    out = ((a < 0) & ~e_is_int & ~e.isinf())._where(a * math.nan, out)
    out = ((a == 1) | (e == 0))._where(a * 0 + 1, out)
    return out

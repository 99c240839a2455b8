"""ONNX element types lazytensor has no dtype for: float8 (e4m3fn, e4m3fnuz, e5m2, e5m2fnuz),
float4e2m1, float8e8m0 and the 4/2-bit integers — and the ops that produce them (Cast, CastLike),
plus BitCast (same-size reinterpretation).

Such a value is a `Narrow`: a Tensor of a wider lazytensor dtype (float32 for the float formats,
int8/uint8 for the integers) that holds only values the narrow type can represent, plus the ONNX
type code. Rounding to the narrow format (round-to-nearest-even on the format's mantissa,
subnormals, overflow by ONNX's `saturate` rule) is built from Tensor ops on float32 bit patterns.
Widening a Narrow back (Cast to float, DequantizeLinear) is exact. At the model boundary, NumPy
arrays of ml_dtypes' narrow types (what onnx itself uses) convert exactly to and from the holder.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from lazytensor import dtypes
from lazytensor.dtypes import DType
from lazytensor.onnx.loader import ONNX_DTYPE_NAMES, onnx_dtype
from lazytensor.onnx.ops import OpContext, Value, register
from lazytensor.tensor import Tensor


@dataclass(frozen=True)
class FloatFormat:
    """A small IEEE-like float format: mantissa bits, exponent of its smallest normal, largest finite."""
    mantissa: int
    min_exp: int
    max: float
    has_inf: bool
    has_nan: bool
    unsigned_zero: bool      # the fnuz formats: -0 is not a value (its bit pattern is NaN)


FLOAT_FORMATS: dict[int, FloatFormat] = {
    17: FloatFormat(3, -6, 448.0, has_inf=False, has_nan=True, unsigned_zero=False),      # FLOAT8E4M3FN
    18: FloatFormat(3, -7, 240.0, has_inf=False, has_nan=True, unsigned_zero=True),       # FLOAT8E4M3FNUZ
    19: FloatFormat(2, -14, 57344.0, has_inf=True, has_nan=True, unsigned_zero=False),    # FLOAT8E5M2
    20: FloatFormat(2, -15, 57344.0, has_inf=False, has_nan=True, unsigned_zero=True),    # FLOAT8E5M2FNUZ
    23: FloatFormat(1, 0, 6.0, has_inf=False, has_nan=False, unsigned_zero=False),        # FLOAT4E2M1
}
E8M0 = 24
INT_FORMATS: dict[int, tuple[int, bool]] = {21: (4, False), 22: (4, True), 25: (2, False), 26: (2, True)}
HOLDERS: dict[int, DType] = {**{c: dtypes.float32 for c in FLOAT_FORMATS}, E8M0: dtypes.float32,
                             21: dtypes.uint8, 22: dtypes.int8, 25: dtypes.uint8, 26: dtypes.int8}
# ml_dtypes' names for these types (the NumPy dtypes onnx's numpy_helper uses)
NUMPY_NAMES: dict[str, int] = {
    "float8_e4m3fn": 17, "float8_e4m3fnuz": 18, "float8_e5m2": 19, "float8_e5m2fnuz": 20, "uint4": 21,
    "int4": 22, "float4_e2m1fn": 23, "float8_e8m0fnu": 24, "uint2": 25, "int2": 26,
}


@dataclass(frozen=True)
class Narrow:
    """A value of a narrow ONNX element type, held exactly in `tensor` (of the type's holder dtype)."""
    tensor: Tensor
    code: int

    @property
    def type_name(self) -> str:
        return ONNX_DTYPE_NAMES[self.code]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.tensor.shape


def is_narrow_code(code: int | None) -> bool:
    return code in HOLDERS


def widen(value: Value) -> Value:
    """The holder Tensor of a Narrow (lists handled element-wise); other values pass through."""
    if isinstance(value, Narrow):
        return value.tensor
    if isinstance(value, list):
        return [widen(v) for v in value]
    return value


def from_numpy(arr: np.ndarray, device: str) -> Narrow | None:
    """A Narrow for an ml_dtypes array (exact widening to the holder), None for any other dtype."""
    code = NUMPY_NAMES.get(arr.dtype.name)
    if code is None:
        return None
    return Narrow(Tensor(arr.astype(HOLDERS[code].np), device=device), code)


def to_numpy(tensor: Tensor, code: int) -> np.ndarray:
    """The holder tensor's values as a NumPy array of the ONNX type's ml_dtypes dtype (exact)."""
    from onnx.helper import tensor_dtype_to_np_dtype
    return np.asarray(tensor.numpy()).astype(tensor_dtype_to_np_dtype(code))


def _pow2(exponent: Tensor) -> Tensor:
    """2**exponent as float32 for int32 exponents in the normal range [-126, 127], built from bits."""
    return ((exponent + 127) << 23).bitcast(dtypes.float32)


def round_to_float_format(x: Tensor, code: int, saturate: bool = True) -> Tensor:
    """x rounded to the float format `code` (round to nearest even, subnormals kept), as float32.

    Out-of-range values follow ONNX's Cast: saturate → ±max (infinities too); otherwise ±inf where the
    format has infinities, else NaN. FLOAT4E2M1 has neither inf nor NaN and always saturates."""
    fmt = FLOAT_FORMATS[code]
    x = x.cast(dtypes.float32)
    a = x.abs()
    exponent = ((a.bitcast(dtypes.int32) >> 23) - 127).clamp(min=fmt.min_exp)   # of a's binade, >= smallest normal
    quantum = _pow2(exponent - fmt.mantissa)                                   # spacing of the format there
    r = (a / quantum).round() * quantum                                        # exact: quantum is a power of 2
    too_big = r > fmt.max
    if saturate or not fmt.has_nan:
        r = too_big._where(fmt.max, r)
    else:
        r = too_big._where(float("inf") if fmt.has_inf else float("nan"), r)
    if not fmt.has_nan:
        r = r.isnan()._where(0.0, r)
    negative = x.signbit() & (r != 0) if fmt.unsigned_zero else x.signbit()
    return negative._where(-r, r)


def round_to_e8m0(x: Tensor, saturate: bool = True, round_mode: str = "up") -> Tensor:
    """x as FLOAT8E8M0 (a power of two 2**(e-127), e in 0..254; 255 is NaN), held as float32.

    The exponent comes from |x|'s float32 bits; `round_mode` up/down/nearest decides what the mantissa
    does to it; saturate keeps the largest exponent from rounding into NaN."""
    bits = x.cast(dtypes.float32).bitcast(dtypes.int32)
    exponent = (bits >> 23) & 0xFF
    special = exponent == 0xFF
    if round_mode == "up":
        round_up = (bits & 0x7FFFFF) != 0
    elif round_mode == "nearest":
        guard = (bits & 0x400000) != 0
        rest = ((bits & 0x200000) != 0) | ((bits & 0x1FFFFF) != 0) | (exponent > 0)
        round_up = guard & rest
    elif round_mode == "down":
        round_up = None
    else:
        raise ValueError(f"Cast to FLOAT8E8M0: round_mode must be 'up', 'down' or 'nearest', got {round_mode!r}")
    if round_up is not None:
        if saturate:
            round_up = round_up & (exponent != 0xFE)
        exponent = exponent + round_up.cast(dtypes.int32)
    exponent = special._where(0xFF, exponent)
    value_bits = (exponent == 0)._where(0x00400000, exponent << 23)     # e=0 is the subnormal 2**-127
    value = value_bits.bitcast(dtypes.float32)
    return (exponent == 0xFF)._where(float("nan"), value)


def wrap_to_int_format(x: Tensor, code: int) -> Tensor:
    """x converted to a 4/2-bit integer like a C cast: floats truncate, then two's-complement wrap."""
    bits, signed = INT_FORMATS[code]
    v = x.cast(dtypes.int32) if x.dtype.is_float or x.dtype.itemsize < 4 else x.cast(dtypes.int64)
    v = v & ((1 << bits) - 1)
    if signed:
        half = 1 << (bits - 1)
        v = (v ^ half) - half
    return v.cast(HOLDERS[code])


def int_format_range(code: int) -> tuple[int, int]:
    bits, signed = INT_FORMATS[code]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def cast_to(ctx: OpContext, x: Value, code: int) -> Value:
    """x (Tensor or Narrow) cast to the ONNX element type `code`, per ONNX Cast (saturate, round_mode)."""
    src = widen(x)
    if not isinstance(src, Tensor):
        raise ctx.unsupported(f"casting a {type(x).__name__} value")
    if code in FLOAT_FORMATS:
        if isinstance(x, Narrow) and x.code == code:
            return x
        return Narrow(round_to_float_format(src, code, bool(ctx.attr("saturate", 1))), code)
    if code == E8M0:
        return Narrow(round_to_e8m0(src, bool(ctx.attr("saturate", 1)), ctx.attr("round_mode", "up")), code)
    if code in INT_FORMATS:
        return Narrow(wrap_to_int_format(src, code), code)
    return src.cast(onnx_dtype(code, ctx.where()))


def onnx_code(value: Value) -> int | None:
    """The ONNX element type code of a value (None for sequences / absent values)."""
    if isinstance(value, Narrow):
        return value.code
    if isinstance(value, Tensor):
        from lazytensor.onnx.loader import DTYPE_TO_ONNX
        return DTYPE_TO_ONNX.get(value.dtype)
    return None


@register("Cast")
def cast(ctx: OpContext, args: list[Value]) -> Value:
    return cast_to(ctx, args[0], int(ctx.attr("to")))


@register("CastLike")
def cast_like(ctx: OpContext, args: list[Value]) -> Value:
    code = onnx_code(args[1])
    if code is None:
        raise ctx.unsupported(f"target_type must be a tensor, got {type(args[1]).__name__}")
    return cast_to(ctx, args[0], code)


# ops that understand Narrow inputs; every other op sees the holder tensor
NARROW_AWARE_OPS = frozenset({"Cast", "CastLike", "QuantizeLinear", "DequantizeLinear"})



@register("BitCast")
def bitcast(ctx: OpContext, args: list[Value]) -> Value:
    """Reinterpret the bits as another type of the same size (bool ↔ 8-bit integers via 0/1)."""
    x = widen(args[0])
    code = int(ctx.attr("to"))
    if code in HOLDERS or (isinstance(args[0], Narrow)):
        raise ctx.unsupported(f"BitCast to or from {ONNX_DTYPE_NAMES.get(code, code)} (narrow types are held "
                              f"in a wider dtype, so their bit patterns are not available)")
    target = onnx_dtype(code, ctx.where())
    if target.itemsize != x.dtype.itemsize:
        raise ctx.unsupported(f"BitCast from {x.dtype.name} to {target.name}: sizes differ "
                              f"({x.dtype.itemsize} vs {target.itemsize} bytes)")
    if x.dtype.is_bool:
        return x.cast(dtypes.uint8).bitcast(target) if target is not dtypes.uint8 else x.cast(target)
    if target.is_bool:
        return x.bitcast(dtypes.uint8) != 0 if x.dtype is not dtypes.uint8 else x != 0
    return x.bitcast(target)

"""Data types and PyTorch's type-promotion rules.

Promotion follows torch.result_type: operands fall in three priority groups
(dimensioned tensors, 0-d tensors, Python scalars); a lower group only matters when it
belongs to a higher category (bool < integer < floating). See `result_type`.
"""
from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass

import numpy as np

_FLOAT32 = struct.Struct("f")


@dataclass(frozen=True, eq=False)
class DType:
    """A scalar type. `kind` is 'b' (bool), 'i' (signed), 'u' (unsigned) or 'f' (floating).

    Each dtype exists once (the module-level constants below), so equality and hashing are by
    identity (C-level: every graph node's key hashes its dtype); copies and pickles give back the
    same object."""
    name: str
    itemsize: int
    kind: str
    np_name: str      # how the value is stored in a NumPy array at the boundary

    def __repr__(self) -> str:
        return f"lazytensor.{self.name}"

    def __reduce__(self) -> tuple:
        return (by_name, (self.name,))

    def __copy__(self) -> "DType":
        return self

    def __deepcopy__(self, memo: dict) -> "DType":
        return self

    @property
    def is_float(self) -> bool:
        return self.kind == "f"

    @property
    def is_int(self) -> bool:
        """Signed or unsigned integer (not bool)."""
        return self.kind in "iu"

    @property
    def is_signed(self) -> bool:
        return self.kind in "if"

    @property
    def is_bool(self) -> bool:
        return self.kind == "b"

    @functools.cached_property
    def np(self) -> np.dtype:   # (cached: every numpy()/item() asks, and np.dtype(name) costs ~0.5 µs)
        return np.dtype(self.np_name)

    @property
    def bits(self) -> int:
        return self.itemsize * 8

    # PyTorch-compatible properties
    @property
    def is_floating_point(self) -> bool:
        return self.is_float

    @property
    def is_complex(self) -> bool:
        return False


bool_ = DType("bool", 1, "b", "bool")
uint8 = DType("uint8", 1, "u", "uint8")
int8 = DType("int8", 1, "i", "int8")
int16 = DType("int16", 2, "i", "int16")
uint16 = DType("uint16", 2, "u", "uint16")
int32 = DType("int32", 4, "i", "int32")
uint32 = DType("uint32", 4, "u", "uint32")
int64 = DType("int64", 8, "i", "int64")
uint64 = DType("uint64", 8, "u", "uint64")
# float16/bfloat16 are stored as 16-bit patterns; kernels compute in float32 and round every op's result.
float16 = DType("float16", 2, "f", "float16")
bfloat16 = DType("bfloat16", 2, "f", "uint16")
float32 = DType("float32", 4, "f", "float32")
float64 = DType("float64", 8, "f", "float64")

ALL_DTYPES = (bool_, uint8, int8, int16, uint16, int32, uint32, int64, uint64,
              float16, bfloat16, float32, float64)
BY_NAME = {d.name: d for d in ALL_DTYPES}


def by_name(name: str) -> DType:
    """The dtype called `name` (how pickles and copies find the one instance)."""
    return BY_NAME[name]
BY_NAME.update({"float": float32, "double": float64, "half": float16, "long": int64, "int": int32,
                "short": int16, "bool": bool_})

default_float = float32
default_int = int64

# Signed integers in order of width, floats in order of "rank" for promotion.
_SIGNED = (int8, int16, int32, int64)
_FLOAT_RANK = {float16: 1, bfloat16: 1, float32: 2, float64: 3}


def to_dtype(x: object) -> DType:
    """Normalize a dtype given as DType, name, NumPy dtype, Python type or torch dtype."""
    if isinstance(x, DType):
        return x
    if x is bool:
        return bool_
    if x is int:
        return int64
    if x is float:
        return default_float
    if isinstance(x, str):
        name = x.replace("torch.", "").replace("lazytensor.", "")
        if name in BY_NAME:
            return BY_NAME[name]
        raise TypeError(f"unknown dtype {x!r}; expected one of {sorted(BY_NAME)}")
    torch_name = getattr(x, "__module__", None) == "torch" or type(x).__name__ == "dtype" and \
        str(x).startswith("torch.")
    if torch_name:
        return to_dtype(str(x))
    try:
        npd = np.dtype(x)
    except TypeError:
        raise TypeError(f"cannot interpret {x!r} as a dtype") from None
    for d in ALL_DTYPES:
        if d is not bfloat16 and d.np == npd:
            return d
    raise TypeError(f"NumPy dtype {npd} has no lazytensor equivalent")


def promote_types(a: DType, b: DType) -> DType:
    """The smallest dtype both a and b convert to without losing category (torch.promote_types)."""
    if a == b:
        return a
    if a.is_bool:
        return b
    if b.is_bool:
        return a
    if a.is_float or b.is_float:
        if not (a.is_float and b.is_float):
            return a if a.is_float else b
        if {a, b} == {float16, bfloat16}:
            return float32
        return a if _FLOAT_RANK[a] >= _FLOAT_RANK[b] else b
    # both integers
    if a.kind == b.kind:
        return a if a.itemsize >= b.itemsize else b
    unsigned, signed = (a, b) if a.kind == "u" else (b, a)
    if signed.itemsize > unsigned.itemsize:
        return signed
    for candidate in _SIGNED:
        if candidate.itemsize > unsigned.itemsize:
            return candidate
    return int64  # uint64 with a signed type: PyTorch has no better answer either


def _category(d: DType | None) -> int:
    if d is None:
        return -1
    return 0 if d.is_bool else 1 if d.is_int else 2


def _combine_categories(higher: DType | None, lower: DType | None) -> DType | None:
    """torch's rule for merging a higher-priority group's dtype with a lower one's."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.is_float:
        return higher
    if higher.is_bool or lower.is_float:
        return promote_types(higher, lower)
    return higher


def scalar_dtype(value: object) -> DType:
    """The dtype a Python scalar takes when it meets a tensor (a 'weak' type)."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return default_float
    raise TypeError(f"expected a number, got {type(value).__name__}")


def result_type(*operands: object) -> DType:
    """torch.result_type over tensors (anything with .dtype and .ndim) and Python scalars."""
    dim_result: DType | None = None
    zero_result: DType | None = None
    wrapped_result: DType | None = None
    for x in operands:
        if hasattr(x, "dtype") and hasattr(x, "ndim"):
            if x.ndim > 0:
                dim_result = x.dtype if dim_result is None else promote_types(dim_result, x.dtype)
            else:
                zero_result = x.dtype if zero_result is None else promote_types(zero_result, x.dtype)
        else:
            d = scalar_dtype(x)
            wrapped_result = d if wrapped_result is None else promote_types(wrapped_result, d)
    out = _combine_categories(dim_result, _combine_categories(zero_result, wrapped_result))
    assert out is not None, "result_type needs at least one operand"
    return out


def sum_dtype(d: DType) -> DType:
    """Output dtype of sum/prod/cumsum without an explicit dtype: integers and bools widen to int64."""
    return int64 if (d.is_int or d.is_bool) else d


def acc_dtype(d: DType) -> DType:
    """The dtype a reduction accumulates in: float32 for the 16-bit floats."""
    return float32 if d in (float16, bfloat16) else d


def min_value(d: DType) -> float | int | bool:
    """Smallest representable value (-inf for floats): the identity of max."""
    if d.is_float:
        return -math.inf
    if d.is_bool:
        return False
    if d.kind == "u":
        return 0
    return -(1 << (d.bits - 1))


def max_value(d: DType) -> float | int | bool:
    """Largest representable value (inf for floats): the identity of min."""
    if d.is_float:
        return math.inf
    if d.is_bool:
        return True
    if d.kind == "u":
        return (1 << d.bits) - 1
    return (1 << (d.bits - 1)) - 1


_FLOAT32_BITS = struct.Struct("I")


def _round_to_bfloat16(single: float) -> float:
    """A float32 value rounded to bfloat16 (to nearest, ties to even), as a Python float."""
    if math.isnan(single) or math.isinf(single):
        return single
    bits = _FLOAT32_BITS.unpack(_FLOAT32.pack(single))[0]
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return _FLOAT32.unpack(_FLOAT32_BITS.pack(bits))[0]


def cast_scalar(value: float | int | bool, d: DType) -> float | int | bool:
    """Convert a Python scalar to the value it has as dtype d (wrapping integers like C)."""
    if d.is_bool:
        return bool(value)
    if d.is_float:
        if d is float64:
            return float(value)
        if d is float32:
            try:   # the C cast to float, as NumPy does it, without NumPy's microseconds of overhead
                return _FLOAT32.unpack(_FLOAT32.pack(value))[0]
            except (OverflowError, struct.error):
                pass   # out of float32's range (NumPy makes it ±inf) or not a plain number
            with np.errstate(over="ignore"):
                return float(np.array(value, dtype=np.float64).astype(np.float32))
        # PyTorch converts a number to a 16-bit float through float32 (two roundings, as c10 does)
        single = cast_scalar(value, float32)
        if d is float16:
            with np.errstate(over="ignore"):
                return float(np.float32(single).astype(np.float16))
        return _round_to_bfloat16(single)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return 0
        value = int(value)
    value = int(value)
    mask = (1 << d.bits) - 1
    value &= mask
    if d.kind == "i" and value >= (1 << (d.bits - 1)):
        value -= 1 << d.bits
    return value

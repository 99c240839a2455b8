"""Tensor creation: constants, ranges, identity, and random numbers.

Random numbers come from a counter-based generator computed inside generated kernels: each
element's bits are a hash of (seed, counter + element index). `manual_seed` resets the seed
and counter, so a program draws the same numbers on every device and every run.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from lazytensor import capture, dtypes
from lazytensor import graph as g
from lazytensor.dtypes import DType
from lazytensor.tensor import Device, Tensor
from lazytensor.runtime.device import canonical_device


def _shape(size: tuple[Any, ...]) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension: {shape}")
    return shape


def _device(device: Any) -> str:
    return canonical_device(device) if device is not None else Device.DEFAULT


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor holding a copy of data (nested lists, scalars, NumPy arrays or tensors)."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return Tensor(data, dtype=dtype, device=device)


def from_numpy(array: Any) -> Tensor:
    return Tensor(array)


def full(size: Sequence[int], fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.scalar_dtype(fill_value)
    t = Tensor._from_node(g.const(fill_value, dt, _shape((size,))), _device(device))
    return t.requires_grad_(requires_grad)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return full(_shape(size), 0, dtype or dtypes.default_float, device, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return full(_shape(size), 1, dtype or dtypes.default_float, device, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def zeros_like(x: Tensor, dtype: Any = None, device: Any = None) -> Tensor:
    return full(tuple(x.shape), 0, dtype or x.dtype, device or x.device)


def ones_like(x: Tensor, dtype: Any = None, device: Any = None) -> Tensor:
    return full(tuple(x.shape), 1, dtype or x.dtype, device or x.device)


def full_like(x: Tensor, fill_value: Any, dtype: Any = None, device: Any = None) -> Tensor:
    return full(tuple(x.shape), fill_value, dtype or x.dtype, device or x.device)


def empty_like(x: Tensor, dtype: Any = None, device: Any = None) -> Tensor:
    return zeros_like(x, dtype, device)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    n = max(math.ceil((end - start) / step), 0)
    if dtype is None:
        dt = dtypes.int64 if all(isinstance(v, int) for v in (start, end, step)) else dtypes.default_float
    else:
        dt = dtypes.to_dtype(dtype)
    compute = dtypes.float64 if dt.is_float else dtypes.int64
    idx = Tensor._from_node(g.iota(n, compute), _device(device))
    out = (idx * step + start) if (step != 1 or start != 0) else idx
    return out.cast(dt).requires_grad_(requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None) -> Tensor:
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.default_float
    if steps == 1:
        return full((1,), start, dt, device)
    step = (end - start) / (steps - 1)
    i = Tensor._from_node(g.iota(steps, dtypes.float64), _device(device))
    # symmetric like PyTorch: the first half counts up from start, the second down from end
    out = (i < steps // 2)._where(start + i * step, end - (steps - 1 - i) * step)
    return out.cast(dt)


def logspace(start: float, end: float, steps: int, base: float = 10.0, dtype: Any = None,
             device: Any = None) -> Tensor:
    return (linspace(start, end, steps, dtypes.float64, device) * math.log2(base)).exp2().cast(
        dtypes.to_dtype(dtype) if dtype is not None else dtypes.default_float)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None) -> Tensor:
    m = n if m is None else m
    dev = _device(device)
    i = Tensor._from_node(g.reshape(g.iota(n, dtypes.int64), (n, 1)), dev)
    j = Tensor._from_node(g.reshape(g.iota(m, dtypes.int64), (1, m)), dev)
    return (i == j).cast(dtypes.to_dtype(dtype) if dtype is not None else dtypes.default_float)


# ---- random numbers ----

class _Generator:
    seed: int = 0
    counter: int = 0


_generator = _Generator()


def manual_seed(seed: int) -> _Generator:
    """Reset the random stream: the same seed gives the same numbers everywhere."""
    _generator.seed = int(seed) & 0xFFFFFFFF
    _generator.counter = 0
    return _generator


def seed() -> int:
    return _generator.seed


def _mix(x: Tensor) -> Tensor:
    """A 32-bit integer hash with good avalanche (xor-shift-multiply, 'lowbias32')."""
    x = x ^ (x >> 16)
    x = x * 0x7FEB352D
    x = x ^ (x >> 15)
    x = x * 0x846CA68B
    return x ^ (x >> 16)


def random_bits(n: int, device: str) -> Tensor:
    """n uint32 random words from the counter-based generator (advances the counter by n)."""
    u32 = dtypes.uint32
    capture.note_random_draw()
    start = _generator.counter
    _generator.counter += n
    key = _generator.seed
    key_hi = (key * 0x9E3779B9 + (start >> 32)) & 0xFFFFFFFF
    # The counter and key travel as data, not as constants baked into the kernel: the next draw of
    # the same size is then the same kernel (no recompile, the schedule cache hits).
    words = Tensor(np.array([start & 0xFFFFFFFF, key & 0xFFFFFFFF, key_hi], dtype=np.uint32), device=device)
    ctr_start, key_lo, key_high = (words[i].expand(n) for i in range(3))
    ctr = Tensor._from_node(g.iota(n, u32), device) + ctr_start
    return _mix(_mix(ctr ^ key_lo) + key_high)


def _uniform01(shape: tuple[int, ...], dt: DType, device: str) -> Tensor:
    n = math.prod(shape)
    bits = random_bits(n, device)
    if dt == dtypes.float64:
        hi = bits >> 5          # 27 bits
        lo = random_bits(n, device) >> 6   # 26 bits
        val = (hi.cast(dtypes.float64) * 67108864.0 + lo.cast(dtypes.float64)) * (1.0 / 9007199254740992.0)
    else:
        val = (bits >> 8).cast(dtypes.float32) * (1.0 / 16777216.0)
    return val.reshape(shape).cast(dt)


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
         generator: Any = None) -> Tensor:
    """Uniform [0, 1)."""
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.default_float
    return _uniform01(_shape(size), dt, _device(device)).requires_grad_(requires_grad)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
          generator: Any = None) -> Tensor:
    """Standard normal (Box–Muller)."""
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.default_float
    shape = _shape(size)
    compute = dtypes.float64 if dt == dtypes.float64 else dtypes.float32
    u1 = _uniform01(shape, compute, _device(device))
    u2 = _uniform01(shape, compute, _device(device))
    z = (-2 * (1 - u1).log()).sqrt() * (u2 * (2 * math.pi)).cos()
    return z.cast(dt).requires_grad_(requires_grad)


def randint(low: int, high: int | None = None, size: Sequence[int] = (), dtype: Any = None,
            device: Any = None, generator: Any = None) -> Tensor:
    """Uniform integers in [low, high)."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"randint: expected low < high, got low={low}, high={high}")
    shape = tuple(size)
    u = _uniform01(shape, dtypes.float64, _device(device))
    out = (u * (high - low)).floor().cast(dtypes.int64) + low
    return out.cast(dtypes.to_dtype(dtype) if dtype is not None else dtypes.int64)


def rand_like(x: Tensor, dtype: Any = None) -> Tensor:
    return rand(tuple(x.shape), dtype=dtype or x.dtype, device=x.device)


def randn_like(x: Tensor, dtype: Any = None) -> Tensor:
    return randn(tuple(x.shape), dtype=dtype or x.dtype, device=x.device)


def randint_like(x: Tensor, low: int, high: int | None = None, dtype: Any = None) -> Tensor:
    return randint(low, high, tuple(x.shape), dtype=dtype or x.dtype, device=x.device)


def bernoulli(p: Tensor) -> Tensor:
    return (rand_like(p._floating()) < p).cast(p.dtype)


def normal(mean: float, std: float, size: Sequence[int], dtype: Any = None, device: Any = None) -> Tensor:
    return randn(tuple(size), dtype=dtype, device=device) * std + mean

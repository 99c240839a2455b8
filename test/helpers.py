"""Test helpers: random inputs per dtype, non-contiguous variants, and comparison against
PyTorch and NumPy on the same data."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import lazytensor as lt

try:
    import torch
except ImportError:  # torch is a test dependency; tests that need it skip without it
    torch = None

FLOAT_DTYPES = ["float32", "float64"]
INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8"]
ALL_DTYPES = ["bool"] + INT_DTYPES + ["float16", "bfloat16"] + FLOAT_DTYPES
SHAPES = [(), (0,), (1,), (5,), (3, 1, 4), (2, 3, 4), (0, 3)]

RTOL = {"float16": 1e-2, "bfloat16": 2e-2, "float32": 1e-5, "float64": 1e-10}
ATOL = {"float16": 1e-2, "bfloat16": 2e-2, "float32": 1e-6, "float64": 1e-12}


def random_array(shape: tuple[int, ...], dtype: str, low: float = -3.0, high: float = 3.0,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """Random data of a dtype family (floats in [low, high), ints in a small safe range)."""
    rng = rng or np.random.default_rng(0)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype in ("float16", "bfloat16", "float32", "float64"):
        a = rng.uniform(low, high, shape)
        return a.astype(np.float32 if dtype == "bfloat16" else dtype)
    info = np.iinfo(dtype)
    lo, hi = max(info.min, int(low) * 3), min(info.max, int(high) * 3 + 1)
    if hi <= lo:
        lo, hi = 0, 10
    return rng.integers(lo, hi, shape).astype(dtype)


def ours(a: np.ndarray, dtype: str) -> "lt.Tensor":
    return lt.tensor(a, dtype=dtype)


def theirs(a: np.ndarray, dtype: str) -> "torch.Tensor":
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.to(getattr(torch, dtype))


def to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, lt.Tensor):
        return x.numpy()
    if torch is not None and isinstance(x, torch.Tensor):
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.detach().numpy()
    return np.asarray(x)


def assert_close(got: Any, want: Any, dtype: str | None = None, rtol: float | None = None,
                 atol: float | None = None, check_dtype: bool = True) -> None:
    """Values, shapes and (by default) dtypes equal within the dtype's tolerance; NaNs must match."""
    g, w = to_numpy(got), to_numpy(want)
    if check_dtype and isinstance(got, lt.Tensor) and torch is not None and isinstance(want, torch.Tensor):
        assert got.dtype.name == str(want.dtype).replace("torch.", ""), (got.dtype, want.dtype)
    assert g.shape == w.shape, f"shape {g.shape} != {w.shape}"
    name = dtype or (got.dtype.name if isinstance(got, lt.Tensor) else str(w.dtype))
    if name in RTOL:
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol or RTOL[name],
                                   atol=atol if atol is not None else ATOL[name], equal_nan=True)
    else:
        np.testing.assert_array_equal(g, w)


def non_contiguous_variants(a: np.ndarray) -> list[tuple[str, Callable[[Any], Any]]]:
    """Ways to view the same data non-contiguously, each applicable to ours and torch's tensors."""
    out: list[tuple[str, Callable[[Any], Any]]] = [("plain", lambda t: t)]
    if a.ndim >= 2:
        out.append(("transposed", lambda t: t.transpose(0, 1)))
    if a.ndim >= 1 and a.shape[-1] >= 2:
        out.append(("stepped", lambda t: t[..., ::2]))
    if a.ndim >= 1 and a.shape[0] >= 1:
        out.append(("expanded", lambda t: t[:1].expand(3, *t.shape[1:]) if t.shape[0] == 1 else t))
    return out

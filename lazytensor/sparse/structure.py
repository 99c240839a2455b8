"""Host-side bookkeeping of sparsity structure (integer indices only).

A sparse matrix or a graph has two parts: its *structure* (which (row, col) pairs exist, in
which order) and its *values* (edge weights, features, attention scores). Structure changes
shape with the data (how many edges survive a filter, how many pairs are unique), so it is
prepared on the host with NumPy when a matrix or edge list is built, the way PyG's loaders and
torch_sparse's constructors do. Everything that touches values — gathers, sums, products,
gradients — is a lazytensor op and runs in generated kernels.

The core has no O(n) sort, unique or stream compaction yet (its cumsum, and so boolean-mask
indexing, is O(n²)), which is why the index arithmetic below lives here instead of in kernels.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lazytensor import dtypes
from lazytensor.tensor import Tensor


def host_index(index: Any, name: str = "index") -> np.ndarray:
    """An integer index (lt.Tensor, NumPy array, torch tensor or list) as an int64 NumPy array."""
    if isinstance(index, Tensor):
        if not index.dtype.is_int:
            raise TypeError(f"{name}: expected an integer tensor, got {index.dtype}")
        return np.asarray(index.numpy(), dtype=np.int64)
    if type(index).__module__.startswith("torch"):
        index = index.detach().cpu().numpy()
    arr = np.asarray(index)
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer indices, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def index_tensor(arr: np.ndarray, device: str | None = None) -> Tensor:
    """An int64 lazytensor holding a host index array."""
    return Tensor(np.ascontiguousarray(arr, dtype=np.int64), dtype=dtypes.int64, device=device)


def compress(sorted_index: np.ndarray, size: int) -> np.ndarray:
    """Sorted indices → pointer array of length size+1 (CSR rowptr): ptr[i]..ptr[i+1] hold index i."""
    counts = np.bincount(sorted_index, minlength=size) if sorted_index.size else np.zeros(size, np.int64)
    ptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def expand_ptr(ptr: np.ndarray) -> np.ndarray:
    """Pointer array → the index of the segment of every element (inverse of `compress`)."""
    return np.repeat(np.arange(len(ptr) - 1, dtype=np.int64), np.diff(ptr))


def check_in_range(index: np.ndarray, size: int, op: str, what: str) -> None:
    """Raise IndexError naming the op when an index is negative or >= size."""
    if index.size and (index.min() < 0 or index.max() >= size):
        bad = int(index.min()) if index.min() < 0 else int(index.max())
        raise IndexError(f"{op}: {what} index {bad} is out of range for size {size}")

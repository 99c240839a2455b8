"""Sparse kernels written as Tensor ops: scatter/segment reductions, spmm and sddmm.

Every op here is a gather (index_select: an indexed load) feeding elementwise math feeding a
scatter (index_add / scatter_reduce: a push-style indexed store), so its cost is O(nnz·F) and
the scheduler fuses gather → multiply → scatter into one kernel. Gradients come from the
autograd rules of the gather and scatter primitives (a gather's gradient is a scatter-add and
vice versa), so spmm is differentiable w.r.t. both the sparse values and the dense operand.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lazytensor.creation import zeros
from lazytensor.sparse.structure import expand_ptr, host_index, index_tensor
from lazytensor.tensor import Tensor

if TYPE_CHECKING:
    from lazytensor.sparse.tensor import SparseTensor

REDUCES = ("sum", "add", "mean", "max", "min", "amax", "amin")


def _check_scatter_args(src: Tensor, index: Tensor, dim: int, op: str) -> int:
    if not isinstance(src, Tensor) or not isinstance(index, Tensor):
        raise TypeError(f"{op}: src and index must be lt.Tensors, got {type(src).__name__} and "
                        f"{type(index).__name__}")
    if not index.dtype.is_int:
        raise TypeError(f"{op}: index must be an integer tensor, got {index.dtype}")
    if src.ndim == 0:
        raise ValueError(f"{op}: src must have at least one dimension")
    axis = dim % src.ndim
    if index.ndim != 1 or index.shape[0] != src.shape[axis]:
        raise ValueError(f"{op}: index must be 1-D with one entry per slice of src along dim {dim}: "
                         f"index {tuple(index.shape)}, src {tuple(src.shape)}")
    return axis


def scatter(src: Tensor, index: Tensor, dim: int = 0, dim_size: int | None = None,
            reduce: str = "sum") -> Tensor:
    """Reduce slices of `src` along `dim` into `dim_size` buckets chosen by the 1-D `index`.

    out[index[e]] (reduce)= src[e]; buckets nobody writes to are 0 (as torch_geometric.utils.scatter).
    reduce: 'sum' ('add'), 'mean', 'max' ('amax') or 'min' ('amin'). Cost O(src.numel())."""
    axis = _check_scatter_args(src, index, dim, "scatter")
    if reduce not in REDUCES:
        raise ValueError(f"scatter: reduce must be one of {REDUCES}, got {reduce!r}")
    if dim_size is None:
        dim_size = int(host_index(index).max()) + 1 if index.numel() else 0
    shape = list(src.shape)
    shape[axis] = dim_size
    base = zeros(*shape, dtype=src.dtype, device=src.device)
    if index.shape[0] == 0 and src.requires_grad:
        return base + src.sum() * 0   # nothing is written, but the (zero) gradient still reaches src
    if reduce in ("sum", "add"):
        return base.index_add(axis, index, src)
    if reduce == "mean":
        total = base.index_add(axis, index, src)
        ones = zeros(index.shape[0], dtype=src.dtype, device=src.device) + 1
        count = zeros(dim_size, dtype=src.dtype, device=src.device).index_add(0, index, ones).clamp(min=1)
        view = [1] * src.ndim
        view[axis] = dim_size
        return total / count.reshape(tuple(view))
    view = [1] * src.ndim
    view[axis] = index.shape[0]
    full_index = index.reshape(tuple(view)).expand(tuple(src.shape))
    op = "amax" if reduce in ("max", "amax") else "amin"
    return base.scatter_reduce(axis, full_index, src, op, include_self=False)


def segment(src: Tensor, ptr: Tensor | np.ndarray, reduce: str = "sum") -> Tensor:
    """Reduce contiguous segments of `src` along dim 0: out[i] = reduce(src[ptr[i]:ptr[i+1]]).

    (torch_scatter.segment_csr.) Empty segments give 0."""
    host_ptr = host_index(ptr, "segment")
    if host_ptr.ndim != 1 or host_ptr.size == 0 or host_ptr[0] != 0 or host_ptr[-1] != src.shape[0] \
            or np.any(np.diff(host_ptr) < 0):
        raise ValueError(f"segment: ptr must be a non-decreasing 1-D pointer array from 0 to "
                         f"src.shape[0]={src.shape[0]}")
    index = index_tensor(expand_ptr(host_ptr), src.device)
    return scatter(src, index, 0, len(host_ptr) - 1, reduce)


def spmm(sparse: "SparseTensor", dense: Tensor, reduce: str = "sum") -> Tensor:
    """Sparse (M, N) × dense (N, F) → dense (M, F): out[r] = reduce over stored (r, c) of v·dense[c].

    reduce='sum' is the matrix product; 'mean', 'max', 'min' reduce the weighted neighbours
    instead (as torch_sparse.matmul). One fused gather → multiply → scatter kernel, O(nnz·F)."""
    from lazytensor.sparse.bsr import BlockSparseTensor, bsr_spmm
    from lazytensor.sparse.tensor import SparseTensor
    if isinstance(sparse, BlockSparseTensor):
        if reduce not in ("sum", "add"):
            raise ValueError(f"spmm: a BlockSparseTensor supports reduce='sum' only, got {reduce!r}")
        return bsr_spmm(sparse, dense)
    if not isinstance(sparse, SparseTensor):
        raise TypeError(f"spmm: first operand must be a SparseTensor, got {type(sparse).__name__}")
    if not isinstance(dense, Tensor):
        raise TypeError(f"spmm: second operand must be an lt.Tensor, got {type(dense).__name__}")
    squeeze = dense.ndim == 1
    if squeeze:
        dense = dense.unsqueeze(-1)
    if dense.ndim != 2 or dense.shape[0] != sparse.shape[1]:
        raise ValueError(f"spmm: shapes {tuple(sparse.shape)} @ {tuple(dense.shape)} do not line up: "
                         f"the dense operand needs {sparse.shape[1]} rows")
    if sparse.nnz() == 0:   # an all-zero product; the gradient reaching `dense` is zero
        out = zeros(sparse.shape[0], dense.shape[1], dtype=dense.dtype, device=dense.device)
        out = out + dense.sum() * 0 if dense.requires_grad else out
        return out.squeeze(-1) if squeeze else out
    row, col = sparse.row_tensor(), sparse.col_tensor()
    messages = dense.index_select(0, col)
    value = sparse.values_or_none()
    if value is not None:
        messages = messages * value.cast(dense.dtype).unsqueeze(-1)
    out = scatter(messages, row, 0, sparse.shape[0], reduce)
    return out.squeeze(-1) if squeeze else out


def sddmm(sparse: "SparseTensor", mat1: Tensor, mat2: Tensor) -> "SparseTensor":
    """Sampled dense-dense product: (mat1 @ mat2) read only at the stored positions of `sparse`.

    mat1 (M, K), mat2 (K, N) → a SparseTensor with sparse's pattern and values
    (mat1[row] · mat2[:, col]), O(nnz·K) (never forms the M×N product). Differentiable in both."""
    if mat1.ndim != 2 or mat2.ndim != 2 or mat1.shape[1] != mat2.shape[0] \
            or (mat1.shape[0], mat2.shape[1]) != tuple(sparse.shape):
        raise ValueError(f"sddmm: mat1 {tuple(mat1.shape)} @ mat2 {tuple(mat2.shape)} must give the sparse "
                         f"shape {tuple(sparse.shape)}")
    left = mat1.index_select(0, sparse.row_tensor())
    right = mat2.t().index_select(0, sparse.col_tensor())
    return sparse.with_values((left * right).sum(-1))


def sampled_addmm(input: "SparseTensor", mat1: Tensor, mat2: Tensor, *, beta: float = 1.0,
                  alpha: float = 1.0) -> "SparseTensor":
    """torch.sparse.sampled_addmm: alpha·(mat1 @ mat2) sampled at input's pattern + beta·input."""
    sampled = sddmm(input, mat1, mat2).values()
    base = input.values()
    return input.with_values(sampled * alpha + base.cast(sampled.dtype) * beta)


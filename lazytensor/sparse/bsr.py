"""Block-sparse matrices (BSR, torch's sparse_bsr layout) and their sparse × dense product.

A (M, N) matrix is cut into R×C blocks; only the blocks that hold a nonzero are stored, in
block-row order: `crow_indices` (M/R + 1,) points into `col_indices` (nnzb,) and `values`
(nnzb, R, C). The structure (which blocks exist) is host-side bookkeeping like every sparse
structure here; the values are a lazy lt.Tensor, so products are differentiable in them.

bsr_spmm works block by block, never on the dense matrix: each stored block column c of block
b contributes the outer product values[b, :, c] ⊗ dense[col_b·C + c, :] to output rows
row_b·R .. row_b·R + R, i.e. one gather → multiply → scatter-add over nnzb·C (R, F) slabs,
O(nnzb·R·C·F) and one fused kernel.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lazytensor.creation import zeros
from lazytensor.sparse.structure import check_in_range, compress, expand_ptr, host_index, index_tensor
from lazytensor.tensor import Tensor


class BlockSparseTensor:
    """A (M, N) matrix stored as R×C dense blocks in block-CSR order (torch.sparse_bsr_tensor)."""

    def __init__(self, crow_indices: Any, col_indices: Any, values: Tensor, size: tuple[int, int]) -> None:
        self._crow = host_index(crow_indices, "BlockSparseTensor crow_indices")
        self._col = host_index(col_indices, "BlockSparseTensor col_indices")
        if not isinstance(values, Tensor):
            values = Tensor(np.asarray(values))
        if values.ndim != 3 or values.shape[0] != self._col.size:
            raise ValueError(f"BlockSparseTensor: values must have shape (nnzb, R, C) with nnzb = "
                             f"len(col_indices) = {self._col.size}, got {tuple(values.shape)}")
        r, c = int(values.shape[1]), int(values.shape[2])
        m, n = int(size[0]), int(size[1])
        if r == 0 or c == 0 or m % r or n % c:
            raise ValueError(f"BlockSparseTensor: size {(m, n)} must be a multiple of the blocksize {(r, c)}")
        if self._crow.ndim != 1 or self._crow.size != m // r + 1 or self._crow[0] != 0 \
                or self._crow[-1] != self._col.size or np.any(np.diff(self._crow) < 0):
            raise ValueError(f"BlockSparseTensor: crow_indices must be a non-decreasing pointer array of "
                             f"length {m // r + 1} from 0 to nnzb={self._col.size}")
        check_in_range(self._col, n // c, "BlockSparseTensor", "col_indices")
        self.shape = (m, n)
        self.blocksize = (r, c)
        self._values = values
        self.device = values.device

    @classmethod
    def from_dense(cls, dense: Tensor, blocksize: tuple[int, int]) -> "BlockSparseTensor":
        """Keep the R×C blocks of `dense` that hold a nonzero (Tensor.to_sparse_bsr). The block values
        are gathered from `dense` lazily, so they stay differentiable w.r.t. it."""
        if dense.ndim != 2:
            raise ValueError(f"to_sparse_bsr: expected a 2-D tensor, got shape {tuple(dense.shape)}")
        r, c = int(blocksize[0]), int(blocksize[1])
        m, n = dense.shape
        if r <= 0 or c <= 0 or m % r or n % c:
            raise ValueError(f"to_sparse_bsr: shape {(m, n)} must be a multiple of the blocksize {(r, c)}")
        mb, nb = m // r, n // c
        # (mb, r, nb, c) → (mb, nb, r, c): block (i, j) at position i·nb + j
        blocks = dense.reshape(mb, r, nb, c).permute(0, 2, 1, 3).reshape(mb * nb, r, c)
        nonzero = np.abs(blocks.detach().numpy()).reshape(mb * nb, -1).max(axis=1, initial=0) != 0
        kept = np.nonzero(nonzero)[0]                       # sorted: block-row order
        values = blocks.index_select(0, index_tensor(kept, dense.device))
        return cls(compress(kept // nb, mb), kept % nb, values, (m, n))

    @property
    def dtype(self) -> Any:
        return self._values.dtype

    @property
    def layout(self) -> str:
        return "bsr"

    def crow_indices(self) -> Tensor:
        return index_tensor(self._crow, self.device)

    def col_indices(self) -> Tensor:
        return index_tensor(self._col, self.device)

    def values(self) -> Tensor:
        return self._values

    def _nnz(self) -> int:
        """Number of stored blocks (as torch for BSR)."""
        return int(self._col.size)

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def _block_rows(self) -> np.ndarray:
        return expand_ptr(self._crow)

    def to_dense(self) -> Tensor:
        """The (M, N) dense matrix; differentiable in values."""
        (m, n), (r, c) = self.shape, self.blocksize
        mb, nb = m // r, n // c
        position = index_tensor(self._block_rows() * nb + self._col, self.device)
        blocks = zeros(mb * nb, r, c, dtype=self.dtype, device=self.device)
        blocks = blocks.index_add(0, position, self._values)
        return blocks.reshape(mb, nb, r, c).permute(0, 2, 1, 3).reshape(m, n)

    def matmul(self, other: Tensor) -> Tensor:
        return bsr_spmm(self, other)

    def __matmul__(self, other: Tensor) -> Tensor:
        return self.matmul(other)

    def __repr__(self) -> str:
        return (f"BlockSparseTensor(size={self.shape}, blocksize={self.blocksize}, nnzb={self._nnz()}, "
                f"dtype={self.dtype})")


def bsr_spmm(sparse: BlockSparseTensor, dense: Tensor) -> Tensor:
    """Block-sparse (M, N) × dense (N, F) → dense (M, F), block by block in O(nnzb·R·C·F).

    Differentiable w.r.t. the block values and the dense operand."""
    if not isinstance(sparse, BlockSparseTensor):
        raise TypeError(f"bsr_spmm: first operand must be a BlockSparseTensor, got {type(sparse).__name__}")
    if not isinstance(dense, Tensor):
        raise TypeError(f"bsr_spmm: second operand must be an lt.Tensor, got {type(dense).__name__}")
    squeeze = dense.ndim == 1
    if squeeze:
        dense = dense.unsqueeze(-1)
    (m, n), (r, c) = sparse.shape, sparse.blocksize
    if dense.ndim != 2 or dense.shape[0] != n:
        raise ValueError(f"bsr_spmm: shapes {sparse.shape} @ {tuple(dense.shape)} do not line up: the dense "
                         f"operand needs {n} rows")
    f = dense.shape[1]
    nnzb = sparse._nnz()
    out = zeros(m, f, dtype=dense.dtype, device=dense.device)
    if nnzb == 0:   # an all-zero product; the gradient reaching `dense` is zero
        out = out + dense.sum() * 0 if dense.requires_grad else out
        return out.squeeze(-1) if squeeze else out
    # slab k = b·C + j: column j of block b, (R,) weights times dense row col_b·C + j, into the R output
    # rows of block row row_b; the slabs are flattened to (nnzb·C·R, F) rows so the scatter writes `out`
    # directly (a reshape after the scatter would cost a copy kernel)
    dense_rows = (sparse._col[:, None] * c + np.arange(c)[None, :]).reshape(-1)
    target = (np.repeat(sparse._block_rows(), c)[:, None] * r + np.arange(r)[None, :]).reshape(-1)
    weights = sparse.values().cast(dense.dtype).permute(0, 2, 1).reshape(nnzb * c, r, 1)
    slabs = weights * dense.index_select(0, index_tensor(dense_rows, dense.device)).unsqueeze(1)
    out = out.index_add(0, index_tensor(target, dense.device), slabs.reshape(nnzb * c * r, f))
    return out.squeeze(-1) if squeeze else out

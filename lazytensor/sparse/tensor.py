"""SparseTensor: a 2-D sparse matrix in COO, CSR or CSC layout.

Storage is always the COO triplet (row, col, value); the layout says how the entries are
ordered and which compressed pointer is exposed: CSR keeps entries sorted by row (row-major)
and exposes `crow_indices()`, CSC sorted by column and exposes `ccol_indices()`. Indices are
structure, kept on the host (see `sparse.structure`) and uploaded once as int64 tensors; the
values are an lt.Tensor (or None for an unweighted pattern, read as all ones), so every
operation on values is lazy and differentiable.

Names follow torch.sparse where it has them (`to_dense`, `coalesce`, `t`, `values`,
`indices`, `crow_indices`, `col_indices`, `to_sparse_csr`, `_nnz`) and torch_sparse for
graph helpers (`from_edge_index`, `from_dense`, `from_scipy`, `degree`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lazytensor import dtypes
from lazytensor.creation import ones, zeros
from lazytensor.sparse.structure import check_in_range, compress, host_index, index_tensor
from lazytensor.tensor import Tensor

LAYOUTS = ("coo", "csr", "csc")


class SparseTensor:
    """A (M, N) sparse matrix: host int64 `row`/`col` arrays plus lazy `value` (nnz,) or None."""

    def __init__(self, row: Any, col: Any, value: Tensor | None = None,
                 sparse_sizes: tuple[int, int] | None = None, layout: str = "coo",
                 device: str | None = None) -> None:
        self._row = host_index(row, "SparseTensor row")
        self._col = host_index(col, "SparseTensor col")
        if self._row.ndim != 1 or self._row.shape != self._col.shape:
            raise ValueError(f"SparseTensor: row and col must be 1-D of equal length, got {self._row.shape} "
                             f"and {self._col.shape}")
        if sparse_sizes is None:
            sparse_sizes = (int(self._row.max()) + 1 if self._row.size else 0,
                            int(self._col.max()) + 1 if self._col.size else 0)
        self.shape = (int(sparse_sizes[0]), int(sparse_sizes[1]))
        check_in_range(self._row, self.shape[0], "SparseTensor", "row")
        check_in_range(self._col, self.shape[1], "SparseTensor", "col")
        if value is not None:
            if not isinstance(value, Tensor):
                value = Tensor(value)
            if value.ndim != 1 or value.shape[0] != self._row.size:
                raise ValueError(f"SparseTensor: value must have shape ({self._row.size},), got "
                                 f"{tuple(value.shape)}")
        self._value = value
        self.device = value.device if value is not None else device
        if layout not in LAYOUTS:
            raise ValueError(f"SparseTensor: layout must be one of {LAYOUTS}, got {layout!r}")
        self.layout = layout
        self._row_t: Tensor | None = None
        self._col_t: Tensor | None = None
        if layout != "coo":
            self._sort(by_row=(layout == "csr"))

    # ---- construction ----
    @classmethod
    def from_edge_index(cls, edge_index: Any, edge_attr: Tensor | None = None,
                        sparse_sizes: tuple[int, int] | None = None) -> "SparseTensor":
        """From a (2, E) edge list (row 0 = source/row, row 1 = target/col) and optional weights."""
        ei = host_index(edge_index, "from_edge_index")
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise ValueError(f"from_edge_index: edge_index must have shape (2, E), got {ei.shape}")
        return cls(ei[0], ei[1], edge_attr, sparse_sizes)

    @classmethod
    def from_dense(cls, dense: Tensor, has_value: bool = True) -> "SparseTensor":
        """The nonzero entries of a 2-D tensor, in row-major order (values stay differentiable)."""
        if dense.ndim != 2:
            raise ValueError(f"from_dense: expected a 2-D tensor, got shape {tuple(dense.shape)}")
        rows, cols = np.nonzero(dense.numpy())
        value = None
        if has_value:
            flat = index_tensor(rows * dense.shape[1] + cols, dense.device)
            value = dense.reshape(-1).index_select(0, flat)
        return cls(rows, cols, value, tuple(dense.shape), layout="coo", device=dense.device)

    @classmethod
    def from_scipy(cls, matrix: Any, dtype: Any = None) -> "SparseTensor":
        """From any scipy.sparse matrix or array (its entries in COO order)."""
        coo = matrix.tocoo()
        value = Tensor(np.asarray(coo.data), dtype=dtype)
        return cls(coo.row, coo.col, value, tuple(coo.shape))

    def to_scipy(self, layout: str = "csr") -> Any:
        """A scipy.sparse matrix with the same entries (realizes the values)."""
        import scipy.sparse as sp
        data = self.values().numpy()
        coo = sp.coo_matrix((data, (self._row, self._col)), shape=self.shape)
        return coo.tocsr() if layout == "csr" else coo.tocsc() if layout == "csc" else coo

    # ---- properties ----
    @property
    def dtype(self) -> dtypes.DType:
        return self._value.dtype if self._value is not None else dtypes.default_float

    def _nnz(self) -> int:
        return int(self._row.size)

    def nnz(self) -> int:
        """Number of stored entries (duplicates count until coalesce())."""
        return self._nnz()

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return 2

    @property
    def ndim(self) -> int:
        return 2

    def row_tensor(self) -> Tensor:
        """Row index of every entry as an int64 lt.Tensor (uploaded once)."""
        if self._row_t is None:
            self._row_t = index_tensor(self._row, self.device)
        return self._row_t

    def col_tensor(self) -> Tensor:
        """Column index of every entry as an int64 lt.Tensor (uploaded once)."""
        if self._col_t is None:
            self._col_t = index_tensor(self._col, self.device)
        return self._col_t

    def values_or_none(self) -> Tensor | None:
        """The stored values, or None for an unweighted pattern (all ones)."""
        return self._value

    def values(self) -> Tensor:
        """The stored values (ones for an unweighted pattern), shape (nnz,)."""
        if self._value is None:
            return ones(self._nnz(), device=self.device)
        return self._value

    def indices(self) -> Tensor:
        """(2, nnz) int64 tensor of (row, col) coordinates (torch's COO indices())."""
        return index_tensor(np.stack([self._row, self._col]), self.device)

    def edge_index(self) -> Tensor:
        """Same as indices(): the (2, E) edge list a graph layer takes."""
        return self.indices()

    def crow_indices(self) -> Tensor:
        """CSR row pointer (M + 1,); the matrix must be in CSR layout."""
        if self.layout != "csr":
            raise RuntimeError(f"crow_indices: expected a CSR matrix, got layout {self.layout!r}; "
                               f"call to_sparse_csr() first")
        return index_tensor(compress(self._row, self.shape[0]), self.device)

    def col_indices(self) -> Tensor:
        """Column index of every entry, in CSR order."""
        if self.layout != "csr":
            raise RuntimeError(f"col_indices: expected a CSR matrix, got layout {self.layout!r}")
        return self.col_tensor()

    def ccol_indices(self) -> Tensor:
        """CSC column pointer (N + 1,); the matrix must be in CSC layout."""
        if self.layout != "csc":
            raise RuntimeError(f"ccol_indices: expected a CSC matrix, got layout {self.layout!r}; "
                               f"call to_sparse_csc() first")
        return index_tensor(compress(self._col, self.shape[1]), self.device)

    def row_indices(self) -> Tensor:
        """Row index of every entry, in CSC order."""
        if self.layout != "csc":
            raise RuntimeError(f"row_indices: expected a CSC matrix, got layout {self.layout!r}")
        return self.row_tensor()

    def rowptr(self) -> np.ndarray:
        """Host CSR row pointer (entries must be sorted by row: CSR layout or coalesced)."""
        if self.layout == "csc" or (self.layout == "coo" and not _is_sorted(self._row)):
            raise RuntimeError("rowptr: entries are not sorted by row; call to_sparse_csr() first")
        return compress(self._row, self.shape[0])

    def with_values(self, value: Tensor | None) -> "SparseTensor":
        """Same pattern and layout, new values (nnz,)."""
        out = SparseTensor.__new__(SparseTensor)
        out.__dict__.update(self.__dict__)
        if value is not None and (value.ndim != 1 or value.shape[0] != self._nnz()):
            raise ValueError(f"with_values: value must have shape ({self._nnz()},), got {tuple(value.shape)}")
        out._value = value
        out.device = value.device if value is not None else self.device
        return out

    def __repr__(self) -> str:
        return f"SparseTensor(shape={self.shape}, nnz={self._nnz()}, layout={self.layout!r})"

    # ---- layout changes ----
    def _permuted(self, perm: np.ndarray, layout: str) -> "SparseTensor":
        value = None
        if self._value is not None:
            value = self._value.index_select(0, index_tensor(perm, self._value.device))
        out = SparseTensor(self._row[perm], self._col[perm], value, self.shape, "coo", self.device)
        out.layout = layout
        return out

    def _sort(self, by_row: bool) -> None:
        major, minor = (self._row, self._col) if by_row else (self._col, self._row)
        perm = np.lexsort((minor, major))
        if np.array_equal(perm, np.arange(perm.size)):
            return
        sorted_copy = self._permuted(perm, self.layout)
        self._row, self._col, self._value = sorted_copy._row, sorted_copy._col, sorted_copy._value

    def to_sparse_csr(self) -> "SparseTensor":
        """Entries sorted by (row, col): CSR layout (duplicates kept, as torch)."""
        return SparseTensor(self._row, self._col, self._value, self.shape, "csr", self.device)

    def to_sparse_csc(self) -> "SparseTensor":
        """Entries sorted by (col, row): CSC layout."""
        return SparseTensor(self._row, self._col, self._value, self.shape, "csc", self.device)

    def to_sparse_coo(self) -> "SparseTensor":
        return SparseTensor(self._row, self._col, self._value, self.shape, "coo", self.device)

    def to_sparse(self, layout: str = "coo") -> "SparseTensor":
        return {"coo": self.to_sparse_coo, "csr": self.to_sparse_csr, "csc": self.to_sparse_csc}[layout]()

    def is_coalesced(self) -> bool:
        """True when entries are sorted row-major with no duplicate (row, col)."""
        key = self._row * max(self.shape[1], 1) + self._col
        return bool(np.all(np.diff(key) > 0))

    def coalesce(self) -> "SparseTensor":
        """Sort row-major and sum duplicate entries (one scatter-add over the values)."""
        key = self._row * max(self.shape[1], 1) + self._col
        unique, inverse = np.unique(key, return_inverse=True)
        rows, cols = unique // max(self.shape[1], 1), unique % max(self.shape[1], 1)
        value = None
        if self._value is not None:
            target = zeros(unique.size, dtype=self._value.dtype, device=self._value.device)
            value = target.index_add(0, index_tensor(inverse.reshape(-1), self._value.device), self._value)
        elif unique.size != key.size:
            # an unweighted pattern with duplicates: the multiplicities become the values
            value = Tensor(np.bincount(inverse.reshape(-1), minlength=unique.size).astype(np.float32),
                           device=self.device)
        out = SparseTensor(rows, cols, value, self.shape, "csr", self.device)
        return out.to_sparse_csc() if self.layout == "csc" else out

    def t(self) -> "SparseTensor":
        """Transpose: (N, M). A CSR matrix becomes CSR of the transpose (= CSC of the original)."""
        return SparseTensor(self._col, self._row, self._value, (self.shape[1], self.shape[0]), self.layout,
                            self.device)

    @property
    def T(self) -> "SparseTensor":
        return self.t()

    # ---- dense results ----
    def to_dense(self) -> Tensor:
        """The (M, N) dense matrix; duplicate entries add up (as torch). Differentiable in values."""
        m, n = self.shape
        flat = index_tensor(self._row * n + self._col, self.device)
        base = zeros(m * n, dtype=self.dtype, device=self.device)
        return base.index_add(0, flat, self.values()).reshape(m, n)

    def sum(self, dim: int | None = None) -> Tensor:
        """Sum of values: all (0-d) or per row (dim=1 → (M,)) / per column (dim=0 → (N,))."""
        if dim is None:
            return self.values().sum()
        axis = dim % 2
        index = self.row_tensor() if axis == 1 else self.col_tensor()
        size = self.shape[0] if axis == 1 else self.shape[1]
        return zeros(size, dtype=self.dtype, device=self.device).index_add(0, index, self.values())

    def degree(self, dim: int = 0) -> Tensor:
        """Number of stored entries per row (dim=0, out-degree) or per column (dim=1)."""
        index = self.row_tensor() if dim == 0 else self.col_tensor()
        size = self.shape[dim]
        ones_e = zeros(self._nnz(), device=self.device) + 1
        return zeros(size, device=self.device).index_add(0, index, ones_e)

    # ---- slicing ----
    def __getitem__(self, key: Any) -> "SparseTensor":
        """Row/column slicing: A[i], A[a:b], A[a:b, c:d], A[rows_tensor] (rows kept in given order)."""
        rows_key, cols_key = (key if isinstance(key, tuple) else (key, slice(None)))
        out = self._select(0, rows_key)
        return out._select(1, cols_key)

    def _select(self, dim: int, key: Any) -> "SparseTensor":
        size = self.shape[dim]
        if isinstance(key, slice):
            if key == slice(None):
                return self
            chosen = np.arange(size)[key]
        elif isinstance(key, int):
            if not -size <= key < size:
                raise IndexError(f"SparseTensor index {key} is out of range for dim {dim} with size {size}")
            chosen = np.array([key % size])
        else:
            chosen = host_index(key, "SparseTensor index")
            check_in_range(chosen, size, "SparseTensor indexing", f"dim {dim}")
        return self.index_select(dim, chosen)

    def index_select(self, dim: int, index: Any) -> "SparseTensor":
        """Rows (dim=0) or columns (dim=1) `index`, renumbered 0..len(index)-1 in the given order."""
        chosen = host_index(index, "index_select")
        size = self.shape[dim]
        check_in_range(chosen, size, "SparseTensor.index_select", f"dim {dim}")
        major = self._row if dim == 0 else self._col
        order = np.argsort(major, kind="stable")
        ptr = compress(major[order], size)
        starts, stops = ptr[chosen], ptr[chosen + 1]
        counts = stops - starts
        picked = order[np.repeat(starts, counts) + _ranges(counts)] if counts.sum() else np.zeros(0, np.int64)
        new_major = np.repeat(np.arange(chosen.size), counts)
        value = None
        if self._value is not None:
            value = self._value.index_select(0, index_tensor(picked, self._value.device))
        if dim == 0:
            rows, cols, shape = new_major, self._col[picked], (chosen.size, self.shape[1])
        else:
            rows, cols, shape = self._row[picked], new_major, (self.shape[0], chosen.size)
        return SparseTensor(rows, cols, value, shape, self.layout, self.device)

    def narrow(self, dim: int, start: int, length: int) -> "SparseTensor":
        return self.index_select(dim, np.arange(start, start + length))

    # ---- products ----
    def matmul(self, other: Tensor) -> Tensor:
        from lazytensor.sparse.ops import spmm
        return spmm(self, other)

    def __matmul__(self, other: Tensor) -> Tensor:
        return self.matmul(other)

    def mul(self, other: Any) -> "SparseTensor":
        """Scale values by a scalar, or elementwise by a (nnz,) tensor."""
        return self.with_values(self.values() * other)

    def __mul__(self, other: Any) -> "SparseTensor":
        return self.mul(other)


def _ranges(counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges: counts [2, 3] → [0, 1, 0, 1, 2]."""
    total = int(counts.sum())
    ends = np.cumsum(counts)
    offsets = np.repeat(ends - counts, counts)
    return np.arange(total) - offsets


def _is_sorted(a: np.ndarray) -> bool:
    return bool(np.all(a[1:] >= a[:-1])) if a.size > 1 else True

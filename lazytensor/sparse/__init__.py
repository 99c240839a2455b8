"""Sparse tensors (COO/CSR/CSC) and their kernels: spmm, sddmm, scatter and segment reductions.

    from lazytensor.sparse import SparseTensor, spmm
    A = SparseTensor.from_edge_index(edge_index, weights, sparse_sizes=(n, n)).to_sparse_csr()
    y = A @ x                       # one fused gather → multiply → scatter kernel, O(nnz·F)
    B = BlockSparseTensor.from_dense(w, blocksize=(4, 4))
    y = B @ x                       # block by block, O(nnzb·R·C·F)
"""
from lazytensor.sparse.bsr import BlockSparseTensor, bsr_spmm
from lazytensor.sparse.ops import sampled_addmm, scatter, sddmm, segment, spmm
from lazytensor.sparse.tensor import SparseTensor

__all__ = ["SparseTensor", "BlockSparseTensor", "spmm", "bsr_spmm", "sddmm", "sampled_addmm", "scatter",
           "segment"]

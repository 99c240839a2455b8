"""SparseTensor (COO/CSR/CSC), spmm, sddmm, scatter and segment reductions vs torch.sparse / dense."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import lazytensor as lt
from lazytensor.sparse import BlockSparseTensor, SparseTensor, sampled_addmm, scatter, sddmm, segment, spmm

RTOL, ATOL = 1e-5, 1e-5


def random_coo(m: int, n: int, nnz: int, seed: int = 0, duplicates: bool = True):
    """Random (row, col, value) with duplicates, an empty row and an empty column."""
    rng = np.random.default_rng(seed)
    row = rng.integers(0, max(m - 1, 1), nnz)        # the last row stays empty
    col = rng.integers(1, n, nnz) if n > 1 else np.zeros(nnz, np.int64)   # column 0 stays empty
    if duplicates and nnz > 2:
        row[-1], col[-1] = row[0], col[0]
    value = rng.standard_normal(nnz).astype(np.float32)
    return row, col, value


def dense_reference(m, n, row, col, value):
    out = np.zeros((m, n), np.float64)
    np.add.at(out, (row, col), value)
    return out


def close(ours, ref, rtol=RTOL, atol=ATOL):
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    np.testing.assert_allclose(np.asarray(ours.numpy() if isinstance(ours, lt.Tensor) else ours), ref,
                               rtol=rtol, atol=atol)


SHAPES = [(1, 1, 0), (5, 7, 12), (16, 9, 40), (30, 30, 200)]


@pytest.mark.parametrize("m,n,nnz", SHAPES)
@pytest.mark.parametrize("layout", ["coo", "csr", "csc"])
def test_to_dense_matches_reference(m, n, nnz, layout):
    row, col, value = random_coo(m, n, nnz)
    a = SparseTensor(row, col, lt.tensor(value), (m, n)).to_sparse(layout)
    assert a.layout == layout and a.nnz() == nnz
    close(a.to_dense(), dense_reference(m, n, row, col, value))


@pytest.mark.parametrize("m,n,nnz", SHAPES)
def test_coalesce_matches_torch(m, n, nnz):
    row, col, value = random_coo(m, n, nnz)
    ours = SparseTensor(row, col, lt.tensor(value), (m, n)).coalesce()
    ref = torch.sparse_coo_tensor(np.stack([row, col]), value, (m, n)).coalesce()
    assert ours.is_coalesced()
    np.testing.assert_array_equal(ours.indices().numpy(), ref.indices().numpy())
    close(ours.values(), ref.values())


@pytest.mark.parametrize("m,n,nnz", SHAPES[1:])
def test_csr_pointers_match_torch(m, n, nnz):
    row, col, value = random_coo(m, n, nnz)
    ref = torch.sparse_coo_tensor(np.stack([row, col]), value, (m, n)).coalesce().to_sparse_csr()
    ours = SparseTensor(row, col, lt.tensor(value), (m, n)).coalesce().to_sparse_csr()
    np.testing.assert_array_equal(ours.crow_indices().numpy(), ref.crow_indices().numpy())
    np.testing.assert_array_equal(ours.col_indices().numpy(), ref.col_indices().numpy())
    close(ours.values(), ref.values())
    ref_csc = ref.to_dense().to_sparse_csc()
    csc = ours.to_sparse_csc()
    np.testing.assert_array_equal(csc.ccol_indices().numpy(), ref_csc.ccol_indices().numpy())
    np.testing.assert_array_equal(csc.row_indices().numpy(), ref_csc.row_indices().numpy())


def test_construct_from_dense_scipy_and_edge_index():
    rng = np.random.default_rng(3)
    dense = rng.standard_normal((6, 5)).astype(np.float32) * (rng.random((6, 5)) < 0.4)
    a = SparseTensor.from_dense(lt.tensor(dense))
    assert a.nnz() == int((dense != 0).sum())
    close(a.to_dense(), dense)
    s = sp.random(8, 4, density=0.3, format="csr", random_state=1, dtype=np.float32)
    b = SparseTensor.from_scipy(s)
    close(b.to_dense(), s.toarray())
    assert abs(b.to_scipy() - s).max() == 0
    edge_index = lt.tensor([[0, 1, 1, 3], [1, 0, 2, 3]])
    c = SparseTensor.from_edge_index(edge_index, sparse_sizes=(4, 4))
    close(c.to_dense(), np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]], np.float32))
    np.testing.assert_array_equal(c.degree(0).numpy(), [1, 2, 0, 1])
    np.testing.assert_array_equal(c.degree(1).numpy(), [1, 1, 1, 1])


def test_transpose_sum_and_slicing():
    m, n, nnz = 9, 7, 30
    row, col, value = random_coo(m, n, nnz)
    a = SparseTensor(row, col, lt.tensor(value), (m, n)).to_sparse_csr()
    ref = dense_reference(m, n, row, col, value)
    close(a.t().to_dense(), ref.T)
    assert a.t().shape == (n, m)
    close(a.sum(), ref.sum())
    close(a.sum(1), ref.sum(1))
    close(a.sum(0), ref.sum(0))
    close(a[2:6].to_dense(), ref[2:6])
    close(a[3].to_dense(), ref[3:4])
    close(a[1:8, 2:5].to_dense(), ref[1:8, 2:5])
    close(a[lt.tensor([4, 0, 4])].to_dense(), ref[[4, 0, 4]])
    close(a.narrow(1, 1, 3).to_dense(), ref[:, 1:4])


@pytest.mark.parametrize("m,n,nnz,f", [(5, 7, 12, 3), (16, 9, 40, 1), (30, 30, 200, 8), (4, 4, 0, 2)])
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_spmm_forward_and_gradients_match_torch_sparse(m, n, nnz, f, layout):
    row, col, value = random_coo(m, n, nnz)
    x = np.random.default_rng(1).standard_normal((n, f)).astype(np.float32)
    upstream = np.random.default_rng(2).standard_normal((m, f)).astype(np.float32)
    # torch: coalesced sparse COO with a differentiable values tensor
    tv = torch.tensor(value, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ta = torch.sparse_coo_tensor(torch.tensor(np.stack([row, col])), tv, (m, n))
    ty = torch.sparse.mm(ta, tx)
    (ty * torch.tensor(upstream)).sum().backward()
    lv = lt.tensor(value, requires_grad=True)
    lx = lt.tensor(x, requires_grad=True)
    a = SparseTensor(row, col, lv, (m, n)).to_sparse(layout)
    ly = a @ lx
    (ly * lt.tensor(upstream)).sum().backward()
    close(ly, ty)
    close(lx.grad, tx.grad)
    if nnz:
        close(lv.grad, tv.grad)   # gradient w.r.t. values reaches the leaf through the CSR permutation


@pytest.mark.parametrize("reduce", ["mean", "max", "min"])
def test_spmm_reductions_match_dense_reference(reduce):
    m, n, nnz, f = 12, 10, 50, 4
    row, col, value = random_coo(m, n, nnz)
    x = np.random.default_rng(1).standard_normal((n, f)).astype(np.float32)
    out = spmm(SparseTensor(row, col, lt.tensor(value), (m, n)), lt.tensor(x), reduce=reduce).numpy()
    ref = np.zeros((m, f), np.float64)
    for r in range(m):
        msgs = value[row == r, None] * x[col[row == r]]
        if len(msgs):
            ref[r] = {"mean": msgs.mean(0), "max": msgs.max(0), "min": msgs.min(0)}[reduce]
    close(out, ref)


def test_sddmm_and_sampled_addmm_match_torch():
    m, n, k, nnz = 8, 6, 5, 20
    row, col, value = random_coo(m, n, nnz, duplicates=False)
    pattern = torch.sparse_coo_tensor(np.stack([row, col]), value, (m, n)).coalesce().to_sparse_csr()
    rng = np.random.default_rng(4)
    m1, m2 = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    t1, t2 = torch.tensor(m1, requires_grad=True), torch.tensor(m2, requires_grad=True)
    ref = torch.sparse.sampled_addmm(pattern, t1, t2, beta=0.5, alpha=2.0)
    a = SparseTensor(row, col, lt.tensor(value), (m, n)).coalesce().to_sparse_csr()
    l1, l2 = lt.tensor(m1, requires_grad=True), lt.tensor(m2, requires_grad=True)
    ours = sampled_addmm(a, l1, l2, beta=0.5, alpha=2.0)
    close(ours.values(), ref.values())
    # gradients of sum(sddmm) against the dense product restricted to the pattern
    mask = torch.tensor(dense_reference(m, n, row, col, np.ones(nnz)) > 0, dtype=torch.float32)
    ((t1 @ t2) * mask).sum().backward()
    sddmm(a, l1, l2).values().sum().backward()
    close(l1.grad, t1.grad)
    close(l2.grad, t2.grad)


@pytest.mark.parametrize("reduce,torch_reduce", [("sum", "sum"), ("mean", "mean"), ("max", "amax"),
                                                 ("min", "amin")])
def test_scatter_and_segment_match_torch_scatter_reduce(reduce, torch_reduce):
    rng = np.random.default_rng(5)
    index = np.sort(rng.integers(0, 6, 25))
    index[index == 3] = 2                      # bucket 3 is empty
    src = rng.standard_normal((25, 3)).astype(np.float32)
    ts = torch.tensor(src, requires_grad=True)
    ref = torch.zeros(7, 3).scatter_reduce(0, torch.tensor(index)[:, None].expand(25, 3), ts, torch_reduce,
                                           include_self=False)
    ref.sum().backward()
    ls = lt.tensor(src, requires_grad=True)
    ours = scatter(ls, lt.tensor(index), 0, 7, reduce)
    ours.sum().backward()
    close(ours, ref)
    close(ls.grad, ts.grad)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(index, minlength=7))])
    close(segment(lt.tensor(src), ptr, reduce), ref)


def test_spmm_is_one_fused_kernel():
    row, col, value = random_coo(20, 20, 80)
    a = SparseTensor(row, col, lt.tensor(value).realize(), (20, 20))
    x = lt.randn(20, 16).realize()
    a.row_tensor().realize(), a.col_tensor().realize()
    y = a @ x
    items = y.schedule()
    assert len(items) == 1 and "scatter" in items[0].fused_ops and "index" in items[0].fused_ops


def random_bsr(m: int, n: int, blocksize: tuple[int, int], keep: float, seed: int):
    """(crow, col, values) of a random BSR matrix with some empty block rows and absent blocks."""
    rng = np.random.default_rng(seed)
    r, c = blocksize
    present = rng.random((m // r, n // c)) < keep
    if present.shape[0] > 1:
        present[1] = False                                     # an empty block row
    rows, cols = np.nonzero(present)
    crow = np.concatenate([[0], np.cumsum(present.sum(1))]).astype(np.int64)
    values = rng.standard_normal((rows.size, r, c)).astype(np.float32)
    return crow, cols.astype(np.int64), values


BSR_CASES = [((4, 6), (2, 3), 0.6, 5), ((8, 8), (4, 4), 0.5, 3), ((12, 10), (3, 2), 0.3, 7),
             ((6, 4), (1, 1), 0.5, 2), ((4, 4), (2, 2), 0.0, 3)]


@pytest.mark.parametrize("size,blocksize,keep,f", BSR_CASES)
def test_bsr_spmm_matches_torch_dense_product_and_gradients(size, blocksize, keep, f):
    crow, col, values = random_bsr(*size, blocksize, keep, seed=size[0])
    dense = np.random.default_rng(1).standard_normal((size[1], f)).astype(np.float32)
    t_values, t_dense = torch.tensor(values, requires_grad=True), torch.tensor(dense, requires_grad=True)
    t_matrix = torch.sparse_bsr_tensor(torch.tensor(crow), torch.tensor(col), t_values, size).to_dense()
    t_out = t_matrix @ t_dense
    l_values, l_dense = lt.tensor(values, requires_grad=True), lt.tensor(dense, requires_grad=True)
    a = BlockSparseTensor(crow, col, l_values, size)
    l_out = a @ l_dense
    close(l_out, t_out)
    close(spmm(a, l_dense), t_out)
    up = np.random.default_rng(2).standard_normal((size[0], f)).astype(np.float32)
    (t_out * torch.tensor(up)).sum().backward(), (l_out * lt.tensor(up)).sum().backward()
    close(l_dense.grad, t_dense.grad)
    if values.size:
        close(l_values.grad, t_values.grad)
    close(a.to_dense(), torch.sparse_bsr_tensor(torch.tensor(crow), torch.tensor(col), torch.tensor(values),
                                                size).to_dense())


def test_bsr_from_dense_matches_torch_to_sparse_bsr():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 8)).astype(np.float32)
    w[0:2, 4:8] = 0                                      # two all-zero blocks are not stored
    w[2:4, :] = 0
    ref = torch.tensor(w).to_sparse_bsr((2, 4))
    lw = lt.tensor(w, requires_grad=True)
    ours = BlockSparseTensor.from_dense(lw, (2, 4))
    close(ours.crow_indices(), ref.crow_indices()), close(ours.col_indices(), ref.col_indices())
    close(ours.values(), ref.values())
    (ours @ lt.ones(8, 3)).sum().backward()            # the kept blocks' entries get gradient 3
    expected = np.zeros_like(w)
    expected[0:2, 0:4] = expected[4:6, :] = 3.0
    close(lw.grad, expected)


def test_bsr_spmm_is_one_fused_kernel():
    crow, col, values = random_bsr(16, 16, (4, 4), 0.5, seed=4)
    a = BlockSparseTensor(crow, col, lt.tensor(values).realize(), (16, 16))
    items = (a @ lt.randn(16, 8).realize()).schedule()
    assert len(items) == 1, lt.explain(a @ lt.randn(16, 8))
    assert {"index", "mul", "scatter"} <= set(items[0].fused_ops)


@pytest.mark.parametrize("bad,match", [
    (lambda: SparseTensor([0, 5], [0, 1], None, (3, 3)), "row index 5 is out of range"),
    (lambda: SparseTensor([0, 1], [0], None), "equal length"),
    (lambda: SparseTensor([0, 1], [0, 1], None, (2, 2)) @ lt.ones(3, 2), "do not line up"),
    (lambda: SparseTensor([0, 1], [0, 1], None, (2, 2)).crow_indices(), "to_sparse_csr"),
    (lambda: scatter(lt.ones(3, 2), lt.tensor([0, 1]), 0, 2), "one entry per slice"),
    (lambda: BlockSparseTensor([0, 1], [0], lt.ones(1, 2, 2), (2, 3)), "multiple of the blocksize"),
    (lambda: BlockSparseTensor([0, 1], [0], lt.ones(1, 2, 2), (2, 4)) @ lt.ones(3, 2), "do not line up"),
    (lambda: BlockSparseTensor([0, 2], [0], lt.ones(1, 2, 2), (2, 4)), "crow_indices"),
])
def test_bad_input_errors_name_the_op(bad, match):
    with pytest.raises((ValueError, IndexError, RuntimeError), match=match):
        bad()

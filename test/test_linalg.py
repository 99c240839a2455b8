"""matmul and friends, einsum, and the fusion of matmul epilogues, against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lazytensor as lt
from helpers import assert_close, random_array

LINALG_DTYPES = ["float32", "float64", "int32", "int64"]


def both(a: np.ndarray) -> tuple[lt.Tensor, torch.Tensor]:
    a = np.array(a)
    return lt.tensor(a), torch.from_numpy(a.copy())


def inputs(dtype, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [both(random_array(s, dtype, rng=rng)) for s in shapes]


MATMUL_SHAPES = [
    ((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 5)), ((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,)),
    ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (6, 4, 2)), ((1, 1), (1, 1)), ((0, 4), (4, 3)),
    ((3, 0), (0, 2)), ((2, 0, 4), (4, 3)), ((1,), (1, 7)),
]


@pytest.mark.parametrize("dtype", LINALG_DTYPES)
def test_matmul_all_shape_cases(dtype):
    for sa, sb in MATMUL_SHAPES:
        (a, ta), (b, tb) = inputs(dtype, sa, sb)
        assert_close(a @ b, ta @ tb)
        assert_close(lt.matmul(a, b), torch.matmul(ta, tb))
        assert_close(a.matmul(b), ta.matmul(tb))


@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_matmul_noncontiguous_and_mixed_dtypes(dtype):
    (a, ta), (b, tb) = inputs(dtype, (4, 3), (5, 4))
    assert_close(a.T @ b.T, ta.T @ tb.T)
    assert_close(a.flip(0)[::2] @ b[:3, :2], ta.flip(0)[::2] @ tb[:3, :2])
    assert_close(a[:, :1].expand(4, 5) @ b, ta[:, :1].expand(4, 5) @ tb)
    (c, tc), = inputs("float64", (3, 2))
    with pytest.raises(RuntimeError):   # torch does not promote in matmul
        ta @ tc
    with pytest.raises(RuntimeError, match="same dtype"):
        a @ c


@pytest.mark.parametrize("dtype", LINALG_DTYPES)
def test_dot_mm_bmm_mv_outer_addmm(dtype):
    (v, tv), (w, tw), (m, tm), (n, tn), (b1, tb1), (b2, tb2), (c, tc) = inputs(
        dtype, (5,), (5,), (3, 5), (5, 4), (2, 3, 5), (2, 5, 4), (3, 4))
    assert_close(v.dot(w), tv.dot(tw))
    assert_close(v.inner(w), tv.inner(tw))
    assert_close(m.mm(n), tm.mm(tn))
    assert_close(b1.bmm(b2), tb1.bmm(tb2))
    assert_close(m.mv(v), tm.mv(tv))
    assert_close(v.outer(w[:3]), tv.outer(tw[:3]))
    assert_close(c.addmm(m, n), tc.addmm(tm, tn))
    assert_close(c.addmm(m, n, beta=2, alpha=3), tc.addmm(tm, tn, beta=2, alpha=3))
    assert_close(c[0].addmm(m, n), tc[0].addmm(tm, tn))   # broadcast bias
    if dtype.startswith("float"):
        assert_close(c.addmm(m, n, beta=0.5, alpha=-1.5), tc.addmm(tm, tn, beta=0.5, alpha=-1.5))


def test_bool_matmul_matches_torch_error_or_value():
    # torch has no bool matmul kernel on CPU; we only require that we do not crash silently
    a = lt.tensor(np.array([[True, False], [True, True]]))
    out = (a.int() @ a.int()).numpy()
    np.testing.assert_array_equal(out, np.array([[1, 0], [2, 1]]))


@pytest.mark.parametrize("sa,sb", [((3, 4), (5, 6)), ((3, 4), (3, 4)), ((2, 3, 4), (2, 5, 6)), ((4,), (5,)),
                                   ((3, 4), (5,)), ((4,), (5, 3))])
def test_matmul_mismatch_message(sa, sb):
    a, b = lt.ones(*sa), lt.ones(*sb)
    with pytest.raises(ValueError, match="inner dimensions") as info:
        a @ b
    assert str(sa) in str(info.value) and str(sb) in str(info.value)
    assert ("Did you mean" in str(info.value)) == (sa == sb == (3, 4)), str(info.value)
    assert "Did you mean" in str(info.value) or "Hint:" in str(info.value)


def test_matmul_rejects_bad_ranks():
    with pytest.raises(RuntimeError):
        lt.tensor(2.0) @ lt.ones(3)
    with pytest.raises(RuntimeError):
        lt.ones(3, 4).mm(lt.ones(4))
    with pytest.raises(RuntimeError):
        lt.ones(2, 3, 4).bmm(lt.ones(3, 4, 5))
    with pytest.raises(RuntimeError):
        lt.ones(3).dot(lt.ones(4))
    with pytest.raises((RuntimeError, ValueError)):
        lt.ones(3, 4).mv(lt.ones(3, 4))
    with pytest.raises(RuntimeError):
        lt.ones(3, 4).outer(lt.ones(3))
    with pytest.raises(ValueError):
        lt.ones(2, 3, 4) @ lt.ones(3, 4, 2)     # batch dims 2 and 3 do not broadcast


EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ii->", [(4, 4)]),
    ("ii->i", [(4, 4)]), ("i,j->ij", [(3,), (4,)]), ("ij->ji", [(3, 4)]), ("ijk->j", [(2, 3, 4)]),
    ("ijk->", [(2, 3, 4)]), ("ij,jk", [(3, 4), (4, 5)]), ("ba,ca", [(3, 4), (5, 4)]), ("ij", [(3, 4)]),
    ("ji", [(3, 4)]), ("ii", [(3, 3)]), ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,jk", [(2, 2, 3, 4), (4, 5)]), ("i...->...", [(3, 2, 4)]), ("...,...->...", [(2, 3), (2, 3)]),
    ("i,i->", [(5,), (5,)]), ("i,i->i", [(5,), (5,)]), ("bi,bj->bij", [(2, 3), (2, 4)]),
    ("ij,ij->i", [(3, 4), (3, 4)]), ("iij->ij", [(3, 3, 2)]), ("ij,kj,lj->ikl", [(2, 3), (4, 3), (5, 3)]),
    ("i j , j k -> i k", [(3, 4), (4, 5)]), ("...i,...i", [(2, 3), (1, 3)]), ("ij,j->i", [(3, 1), (4,)]),
    ("bij->", [(0, 3, 4)]), ("i,->i", [(3,), ()]), ("ij,k->i", [(3, 2), (4,)]),
    ("BaA,aB->A", [(2, 3, 4), (3, 2)]),
    ("aB,Ba", [(3, 2), (2, 3)]), ("aB", [(3, 2)]),
]


@pytest.mark.parametrize("dtype", LINALG_DTYPES)
def test_einsum_matches_torch(dtype):
    for eq, shapes in EINSUM_CASES:
        ops = inputs(dtype, *shapes)
        got = lt.einsum(eq, *[o for o, _ in ops])
        want = torch.einsum(eq, *[t for _, t in ops])
        try:
            assert_close(got, want)
        except AssertionError as e:
            raise AssertionError(f"einsum {eq!r} on {shapes}: {e}") from None
    ops = inputs(dtype, (3, 4), (4, 5))
    assert_close(lt.einsum("ij,jk->ik", [o for o, _ in ops]), torch.einsum("ij,jk->ik", [t for _, t in ops]))


@pytest.mark.parametrize("eq,shapes", [("ij,jk->ik", [(3, 4), (5, 6)]), ("ij->ik", [(3, 4)]),
                                       ("ij,jk->ik", [(3, 4)]), ("ijk->ij", [(3, 4)]), ("ij->ii", [(3, 3)])])
def test_einsum_rejects_bad_equations(eq, shapes):
    with pytest.raises((ValueError, RuntimeError)):
        lt.einsum(eq, *[lt.ones(*s) for s in shapes])


def _kernels(t: lt.Tensor) -> int:
    return sum(1 for item in t.schedule() if item.kind == "kernel")


def test_matmul_bias_relu_is_one_kernel():
    (a, ta), (w, tw), (b, tb) = inputs("float32", (8, 16), (16, 4), (4,))
    a.realize(), w.realize(), b.realize()
    out = (a @ w + b).relu()
    assert _kernels(out) == 1, out.schedule()
    assert_close(out, (ta @ tw + tb).relu())


def test_mul_sum_add_is_one_kernel():
    (a, ta), (b, tb), (c, tc) = inputs("float32", (6, 7), (6, 7), (6,))
    for t in (a, b, c):
        t.realize()
    out = (a * b).sum(1) + c
    assert _kernels(out) == 1, out.schedule()
    assert_close(out, (ta * tb).sum(1) + tc)

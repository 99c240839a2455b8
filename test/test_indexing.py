"""Indexing, gather/scatter and masked ops against PyTorch on the same inputs."""
from __future__ import annotations
# ruff: noqa: E731

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lazytensor as lt
from helpers import assert_close, non_contiguous_variants, random_array

pytestmark = pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")

X = random_array((4, 5, 6), "float32")
TX = torch.from_numpy(X)


def both(a: np.ndarray) -> tuple[lt.Tensor, torch.Tensor]:
    a = np.array(a)  # a copy; (ascontiguousarray would make 0-d into 1-d)
    return lt.tensor(a), torch.from_numpy(a.copy())


def I(*v):  # noqa: E743 - an int64 index tensor, built for each library
    return np.array(v if len(v) != 1 or not isinstance(v[0], list) else v[0], dtype=np.int64)


def convert(key, lib):
    """Turn numpy arrays inside a key into tensors of the given library."""
    if isinstance(key, tuple):
        return tuple(convert(k, lib) for k in key)
    if isinstance(key, np.ndarray):
        return lt.tensor(key) if lib == "lt" else torch.from_numpy(key)
    return key


B = np.array([True, False, True, True])
B2 = random_array((4, 5), "bool")
GET_KEYS = {
    "int": 2, "neg_int": -1, "int_int": (1, -2), "int3": (3, 4, -6),
    "slice": slice(1, 3), "slice_step": slice(None, None, 2), "slice_step3": (slice(None), slice(1, None, 3)),
    "slice_neg": slice(-3, -1), "slice_neg_stop": (slice(None), slice(None, -2)),
    "slice_past_end": slice(2, 100), "slice_empty": slice(3, 1), "slice_step_neg_start": slice(-4, None, 3),
    "none": None, "none_mid": (slice(None), None, 1), "ellipsis": ..., "ellipsis_int": (..., 2),
    "int_ellipsis_int": (1, ..., -1), "ellipsis_none": (..., None), "none_ellipsis_none": (None, ..., None),
    "tensor1": I(0, 2, -1), "tensor_2d": I([[0, 1], [3, 3]]), "tensor_0d": np.array(2),
    "tensor_empty": np.zeros(0, np.int64),
    "two_tensors": (I(0, 1, 3), I(4, -1, 0)), "broadcast_tensors": (I([[0], [2]]), I(1, 3, 4)),
    "adjacent_after_slice": (slice(None), I(0, 4), I(1, 2)),
    "non_adjacent": (I(0, 3), slice(None), I(1, 5)),
    "non_adjacent_int": (I(0, 3), 1, I(1, 5)),  # int counts as advanced: torch moves dims to front
    "adjacent_int": (1, I(0, 3), I(1, 5)),
    "tensor_slice_step": (I(1, 2), slice(None, None, 2)), "slice_tensor_none": (slice(1, 3), I(0, 2), None),
    "tensor_none_tensor": (I(0, 1), None, I(2, 3)),
    "ellipsis_tensor": (..., I(0, 5, 5)),
    "mask_full": (random_array((4, 5, 6), "bool"),), "mask_first": B, "mask_2d": B2,
    "mask_then_slice": (B, slice(1, 4)), "slice_mask": (slice(None), np.array([1, 0, 0, 1, 1], bool)),
    "mask_and_tensor": (B, I(0, 4, 1)), "mask_all_false": np.zeros(4, bool),
    "mask_0d_true": np.array(True), "mask_0d_false": np.array(False),
    "int_mask": (2, np.array([1, 0, 0, 1, 1], bool)),
    "list_index": [0, 3, 1],
}


@pytest.mark.parametrize("key", list(GET_KEYS.values()), ids=list(GET_KEYS))
def test_getitem_matches_torch(key):
    assert_close(lt.tensor(X)[convert(key, "lt")], TX[convert(key, "torch")])


def _key_part(draw, size):
    kind = draw(st.sampled_from(["int", "slice", "tensor", "none", "full"]))
    if kind == "int":
        return draw(st.integers(-size, size - 1))
    if kind == "slice":
        bound = st.none() | st.integers(-size - 2, size + 2)
        return slice(draw(bound), draw(bound), draw(st.none() | st.integers(1, 3)))
    if kind == "tensor":
        n = draw(st.integers(0, 3))
        return np.array(draw(st.lists(st.integers(-size, size - 1), min_size=n, max_size=n)), np.int64)
    return None if kind == "none" else slice(None)


@st.composite
def getitem_keys(draw):
    parts = [_key_part(draw, n) for n in X.shape[:draw(st.integers(0, 3))]]
    if parts and draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), ...)
    # tensors of different lengths must broadcast: make them all the length of the first
    lengths = {p.shape[0] for p in parts if isinstance(p, np.ndarray)}
    if len(lengths) > 1:
        n = min(lengths)
        parts = [p[:n] if isinstance(p, np.ndarray) else p for p in parts]
    return tuple(parts)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(key=getitem_keys())
def test_getitem_random_keys_match_torch(key):
    assert_close(lt.tensor(X)[convert(key, "lt")], TX[convert(key, "torch")])


@pytest.mark.parametrize("dtype", ["float64", "int32", "int64", "bool"])
def test_getitem_dtypes_and_noncontiguous(dtype):
    a = random_array((4, 5), dtype)
    for name, view in non_contiguous_variants(a):
        for key in [(I(0, 2), slice(None, None, 2)), (slice(1, None), -1), a.shape[0] and (..., I(1, 0))]:
            ours, theirs = view(lt.tensor(a)), view(torch.from_numpy(a))
            assert_close(ours[convert(key, "lt")], theirs[convert(key, "torch")])


@pytest.mark.parametrize("shape,key", [((), ()), ((), None), ((), ...), ((), np.array(True)),
                                      ((0, 3), slice(None)), ((0, 3), (slice(None), 1)),
                                      ((0, 3), np.zeros(0, np.int64)), ((1, 3), I(0, 0, 0)),
                                      ((3, 0), (I(1, 2),)), ((1,), -1)])
def test_getitem_degenerate_shapes(shape, key):
    a = random_array(shape, "float32")
    assert_close(lt.tensor(a)[convert(key, "lt")], torch.from_numpy(a)[convert(key, "torch")])


@pytest.mark.parametrize("key,err", [(4, IndexError), (-5, IndexError), ((0, 0, 0, 0), IndexError),
                                     ((..., ...), IndexError), (np.ones(3, bool), IndexError)])
def test_getitem_bad_static_keys(key, err):
    with pytest.raises(err):
        lt.tensor(X)[convert(key, "lt")]


@pytest.mark.parametrize("key", [I(0, 4), I(-5), (slice(None), I(5)), (I(0), I(0), I(6))])
def test_getitem_out_of_range_tensor_raises(key):
    with pytest.raises(IndexError, match="out of bounds"):
        lt.tensor(X)[convert(key, "lt")].numpy()


# ---- assignment ----
SET_KEYS = {k: GET_KEYS[k] for k in ["int", "neg_int", "int_int", "slice_step", "slice_neg", "none_mid",
                                     "ellipsis_int", "tensor1", "two_tensors", "non_adjacent", "mask_first",
                                     "mask_2d", "mask_then_slice", "slice_mask", "slice_empty", "tensor_2d"]}


@pytest.mark.parametrize("value", ["scalar", "broadcast_row", "full"])
@pytest.mark.parametrize("key", list(SET_KEYS.values()), ids=list(SET_KEYS))
def test_setitem_matches_torch(key, value):
    ours, theirs = lt.tensor(X), TX.clone()
    target_shape = theirs[convert(key, "torch")].shape
    if value == "scalar":
        v_ours = v_theirs = 7.5
    else:
        vshape = tuple(target_shape[-1:]) if value == "broadcast_row" else tuple(target_shape)
        v = random_array(vshape, "float32", rng=np.random.default_rng(1))
        v_ours, v_theirs = lt.tensor(v), torch.from_numpy(v)
    ours[convert(key, "lt")] = v_ours
    theirs[convert(key, "torch")] = v_theirs
    assert_close(ours, theirs)


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", "float64"])
def test_setitem_dtypes(dtype):
    a = random_array((3, 4), dtype)
    ours, theirs = lt.tensor(a), torch.from_numpy(a.copy())
    for key, val in [((1, slice(None)), 1), ((I(0, 2), I(3, 1)), 0), ((slice(None), -1), True)]:
        ours[convert(key, "lt")] = val
        theirs[convert(key, "torch")] = val
    assert_close(ours, theirs)


def test_setitem_value_with_leading_ones():
    ours, theirs = lt.tensor(X), TX.clone()
    v = random_array((1, 1, 6), "float32")
    ours[1, 2] = lt.tensor(v)
    theirs[1, 2] = torch.from_numpy(v)
    assert_close(ours, theirs)


def test_setitem_shape_mismatch_raises():
    t = lt.tensor(X)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        t[0] = lt.ones(3)


def test_setitem_out_of_range_raises():
    t = lt.tensor(X)
    t[I(0, 9)] = 1.0
    with pytest.raises(IndexError, match="out of bounds"):
        t.numpy()


# ---- gather / take / index_select ----
def _idx(shape, high, seed=2, low=None):
    rng = np.random.default_rng(seed)
    return rng.integers(-high if low is None else low, high, shape).astype(np.int64)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_and_take_along_dim(dtype, dim):
    a = random_array((3, 4, 5), dtype)
    ishape = [3, 4, 5]
    ishape[dim] = 7
    ishape[0] = min(ishape[0], 2) if dim != 0 else ishape[0]  # index may be smaller than input
    idx = _idx(tuple(ishape), a.shape[dim], low=0)
    for name, view in non_contiguous_variants(a)[:1] + [("flipped", lambda t: t.flip(0))]:
        (x, tx), (i, ti) = both(a), both(idx)
        assert_close(view(x).gather(dim, i), torch.gather(view(tx), dim, ti))
        assert_close(lt.gather(view(x), dim, i), torch.gather(view(tx), dim, ti))
    full = _idx(a.shape[:dim % 3] + (2,) + a.shape[dim % 3 + 1:], a.shape[dim], low=0)
    (x, tx), (i, ti) = both(a), both(full)
    assert_close(x.take_along_dim(i, dim), torch.take_along_dim(tx, ti, dim))
    bshape = [1, 1, 1]
    bshape[dim] = 2
    (i, ti) = both(_idx(tuple(bshape), a.shape[dim], low=0))      # broadcasts against the input
    assert_close(x.take_along_dim(i, dim), torch.take_along_dim(tx, ti, dim))
    if dim % 3:   # input broadcasts against the index along dim 0
        assert_close(x[:1].take_along_dim(i.expand(3, -1, -1), dim),
                     torch.take_along_dim(tx[:1], ti.expand(3, -1, -1), dim))
    (i, ti) = both(_idx((4,), a.size, low=0))
    assert_close(x.take_along_dim(i), torch.take_along_dim(tx, ti))


@pytest.mark.parametrize("shape,dim,ishape", [((), 0, ()), ((5,), 0, (0,)), ((1, 3), 1, (1, 1)),
                                              ((0, 3), 1, (0, 2)), ((2, 3), 0, (2, 0))])
def test_gather_degenerate(shape, dim, ishape):
    a = random_array(shape, "float32")
    size = max(a.shape[dim] if a.ndim else 1, 1)
    idx = _idx(ishape, size, low=0)
    (x, tx), (i, ti) = both(a), both(idx)
    assert_close(x.gather(dim, i), torch.gather(tx, dim, ti))


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64", "bool"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_index_select(dtype, dim):
    a = random_array((3, 4, 5), dtype)
    for index in [I(0, 2, 1, 2), I(1), np.array(2), np.zeros(0, np.int64)]:
        index = index if index.ndim == 0 or index.size == 0 else index % a.shape[dim]
        (x, tx), (i, ti) = both(a), both(index)
        assert_close(x.index_select(dim, i), torch.index_select(tx, dim, ti))
        assert_close(lt.index_select(x.transpose(0, 2), dim, i),
                     torch.index_select(tx.transpose(0, 2), dim, ti))
    (x, tx), (i, ti) = both(a), both(I(0, 2).astype(np.int32))
    assert_close(x.index_select(dim, i), torch.index_select(tx, dim, ti))


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_take(dtype):
    a = random_array((3, 4), dtype)
    for index in [I(0, 11, -1, -12), I([[1, 2], [3, -4]]), np.array(5), np.zeros((0, 2), np.int64)]:
        (x, tx), (i, ti) = both(a), both(index)
        assert_close(x.take(i), torch.take(tx, ti))
        assert_close(x.T.take(i), torch.take(tx.T, ti))


@pytest.mark.parametrize("op", ["gather", "index_select", "take", "take_along_dim"])
@pytest.mark.parametrize("bad", [5, -9])
def test_gather_family_out_of_range_raises(op, bad):
    x = lt.tensor(random_array((4, 5), "float32"))
    i = lt.tensor(I([[0, bad]])) if op in ("gather", "take_along_dim") else lt.tensor(I(0, bad * 5))
    with pytest.raises(IndexError, match="out of bounds"):
        if op == "gather":
            x.gather(1, i).numpy()
        elif op == "take_along_dim":
            x.take_along_dim(i, 1).numpy()
        elif op == "index_select":
            x.index_select(1, i).numpy()
        else:
            x.take(i).numpy()


def test_gather_rejects_bad_arguments():
    x = lt.tensor(X)
    with pytest.raises(RuntimeError):
        x.gather(0, lt.tensor(I(0, 1)))                  # wrong ndim
    with pytest.raises((RuntimeError, TypeError, IndexError)):
        x.gather(0, lt.tensor(np.zeros((1, 1, 1), np.float32)))
    with pytest.raises(IndexError):
        x.gather(3, lt.tensor(np.zeros((1, 1, 1), np.int64)))


# ---- scatter family ----
SCATTER_CASES = [  # (self shape, dim, index shape)
    ((4, 5), 0, (3, 5)), ((4, 5), 1, (4, 7)), ((4, 5), 1, (2, 3)), ((3, 4, 5), -1, (3, 2, 6)),
    ((5,), 0, (8,)), ((5,), 0, (0,)), ((1, 3), 0, (1, 3)), ((2, 0), 0, (2, 0)),
]


def _scatter_inputs(shape, dim, ishape, dtype, seed=3):
    rng = np.random.default_rng(seed)
    a = random_array(shape, dtype, rng=rng)
    size = shape[dim] if shape[dim] else 1
    idx = rng.integers(0, size, ishape).astype(np.int64)
    src = random_array(tuple(s + 1 for s in ishape), dtype, rng=rng)  # src may be larger than index
    return a, idx, src


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("case", SCATTER_CASES, ids=str)
def test_scatter_and_scatter_add(case, dtype):
    shape, dim, ishape = case
    a, idx, src = _scatter_inputs(shape, dim, ishape, dtype)
    (x, tx), (i, ti), (s, ts) = both(a), both(idx), both(src)
    # plain scatter: torch leaves colliding writes unspecified, so use one unique target per slot
    uniq = np.argsort(np.random.default_rng(4).random(ishape), axis=dim)
    if uniq.shape[dim] <= shape[dim]:
        (u, tu) = both(uniq.astype(np.int64))
        assert_close(x.scatter(dim, u, s), tx.scatter(dim, tu, ts))
        assert_close(x.scatter(dim, u, value=2), tx.scatter(dim, tu, value=2))
        assert_close(x.scatter(dim, u, 2), tx.scatter(dim, tu, 2))
    assert_close(x.scatter_add(dim, i, s), tx.scatter_add(dim, ti, ts))
    assert_close(x.scatter(dim, i, s, reduce="add"), tx.scatter(dim, ti, ts, reduce="add"))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_scatter_reduce(reduce, include_self, dtype):
    for shape, dim, ishape in [((4, 5), 1, (4, 7)), ((6,), 0, (4,)), ((3, 4), 0, (5, 2))]:
        a, idx, src = _scatter_inputs(shape, dim, ishape, dtype)
        if reduce == "prod":
            is_int = dtype.startswith("int")   # keep products small
            a, src = (a % 3 + 1, src % 3 - 1) if is_int else (a / 2, src / 2)
        (x, tx), (i, ti), (s, ts) = both(a), both(idx), both(src)
        assert_close(x.scatter_reduce(dim, i, s, reduce, include_self=include_self),
                     tx.scatter_reduce(dim, ti, ts, reduce, include_self=include_self))


def test_scatter_noncontiguous_inputs():
    a, idx, src = _scatter_inputs((5, 4), 0, (3, 4), "float32")
    (x, tx), (i, ti), (s, ts) = both(a), both(idx), both(src)
    assert_close(x.T.scatter_add(1, i.T, s.T), tx.T.scatter_add(1, ti.T, ts.T))
    assert_close(x.flip(0).scatter_reduce(0, i[:, ::2], s.T[:, ::2], "amax"),
                 tx.flip(0).scatter_reduce(0, ti[:, ::2], ts.T[:, ::2], "amax"))


@pytest.mark.parametrize("op", ["scatter", "scatter_add", "scatter_reduce", "index_add", "index_copy"])
def test_scatter_out_of_range_raises(op):
    x = lt.zeros(3, 4)
    i = lt.tensor(I([[0, 1, 7, 2]]))
    s = lt.ones(1, 4)
    with pytest.raises(IndexError, match="out of bounds"):
        if op == "scatter":
            x.scatter(0, i, s).numpy()
        elif op == "scatter_add":
            x.scatter_add(0, i, s).numpy()
        elif op == "scatter_reduce":
            x.scatter_reduce(0, i, s, "amax").numpy()
        elif op == "index_add":
            x.index_add(1, lt.tensor(I(0, 9)), lt.ones(3, 2)).numpy()
        else:
            x.index_copy(1, lt.tensor(I(0, 9)), lt.ones(3, 2)).numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_add_copy_fill(dim, dtype):
    a = random_array((4, 5), dtype)
    n = a.shape[dim]
    rng = np.random.default_rng(5)
    idx = rng.integers(-n, n, 6).astype(np.int64)
    perm = rng.permutation(n)[:3].astype(np.int64)  # index_copy: unique targets
    sshape = list(a.shape)
    sshape[dim] = 6
    src = random_array(tuple(sshape), dtype, rng=rng)
    (x, tx), (i, ti), (s, ts) = both(a), both(idx), both(src)
    assert_close(x.index_add(dim, i % n, s), tx.index_add(dim, ti % n, ts))
    assert_close(x.index_add(dim, i % n, s, alpha=3), tx.index_add(dim, ti % n, ts, alpha=3))
    (p, tp) = both(perm)
    s3, ts3 = s.narrow(dim, 0, 3), ts.narrow(dim, 0, 3)
    assert_close(x.index_copy(dim, p, s3), tx.index_copy(dim, tp, ts3))
    assert_close(x.index_fill(dim, i, 9), tx.index_fill(dim, ti, 9))
    assert_close(x.T.index_fill(dim, p, -1), tx.T.index_fill(dim, tp, -1))
    if dtype.startswith("float"):
        assert_close(x.index_add(dim, i % n, s, alpha=0.5), tx.index_add(dim, ti % n, ts, alpha=0.5))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_masked_fill_select_scatter(dtype):
    a = random_array((3, 4), dtype)
    m = random_array((3, 4), "bool", rng=np.random.default_rng(6))
    for name, view in non_contiguous_variants(a):
        (x, tx), (mm, tm) = both(a), both(m)
        x, tx, mm, tm = view(x), view(tx), view(mm), view(tm)
        assert_close(x.masked_fill(mm, 1), tx.masked_fill(tm, 1))
        assert_close(x.masked_fill(mm[:1], True), tx.masked_fill(tm[:1], True))    # broadcast mask
        assert_close(x.masked_fill(mm, lt.tensor(0)), tx.masked_fill(tm, torch.tensor(0)))
        assert_close(x.masked_select(mm), tx.masked_select(tm))
        assert_close(x.masked_select(mm[0]), tx.masked_select(tm[0]))
        src = random_array((20,), dtype, rng=np.random.default_rng(7))
        (s, ts) = both(src)
        assert_close(x.masked_scatter(mm, s), tx.masked_scatter(tm, ts))
        assert_close(x.masked_scatter(mm[:, :1], s.reshape(4, 5)),
                     tx.masked_scatter(tm[:, :1], ts.reshape(4, 5)))


@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (3, 4), (2, 0, 3), (2, 3, 4)])
@pytest.mark.parametrize("dtype", ["float32", "int32", "int64", "bool"])
def test_nonzero_argwhere_where(shape, dtype):
    a = random_array(shape, dtype, low=-1, high=1.5)
    if dtype.startswith("float"):
        a = np.where(np.abs(a) < 0.5, 0, a).astype(a.dtype)
    x, tx = both(a)
    assert_close(x.nonzero(), tx.nonzero())
    assert_close(x.argwhere(), torch.argwhere(tx))
    for got, want in [(x.nonzero(as_tuple=True), tx.nonzero(as_tuple=True)),
                      (lt.where(x), torch.where(tx))]:
        assert len(got) == len(want)
        for g_, w_ in zip(got, want):
            assert_close(g_, w_)
    assert_close(x[x != 0] if x.ndim else x[x != 0], tx[tx != 0])


def test_nonzero_all_zero_and_all_set():
    for a in [np.zeros((3, 2), np.float32), np.ones((3, 2), np.float32)]:
        x, tx = both(a)
        assert_close(x.nonzero(), tx.nonzero())


def test_padded_lanes_do_not_raise():
    """cat pads its parts: lanes outside a part read zeros and must not trip the index or
    division-by-zero checks (their values are discarded)."""
    x = lt.tensor(np.array([1.0, 2.0, 3.0], np.float32))
    i = lt.arange(3).flip(0) + 0          # computed in the kernel, bounds not provable
    assert_close(lt.cat([lt.zeros(2), x[i]]), torch.tensor([0, 0, 3.0, 2, 1]))
    assert_close(lt.cat([lt.zeros(2), x.gather(0, i)]), torch.tensor([0, 0, 3.0, 2, 1]))
    c = lt.tensor(np.array([1, 2, 3]))
    got = lt.cat([lt.tensor(np.array([5])), lt.tensor(np.array([4, 5, 6])) // c])
    assert_close(got, torch.tensor([5, 4, 2, 2]))


# ---- empty indices: the gradient is a scatter of nothing, which must give zeros ----

EMPTY_INDEX_OPS = [
    ("index_select", lambda x, i: x.index_select(0, i)),
    ("gather", lambda x, i: x.gather(0, i.reshape(0, 1).expand(0, 2))),
    ("scatter_add", lambda x, i: x.scatter_add(0, i.reshape(0, 1).expand(0, 2), x[:0])),
    ("index_add", lambda x, i: x.index_add(0, i, x[:0] * 2)),
]


@pytest.mark.parametrize("name,fn", EMPTY_INDEX_OPS, ids=[o[0] for o in EMPTY_INDEX_OPS])
def test_empty_index_values_and_grads(name, fn):
    a = random_array((4, 2), "float32", rng=np.random.default_rng(21))
    x = lt.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    got = fn(x, lt.tensor([], dtype=lt.int64))
    want = fn(t, torch.tensor([], dtype=torch.int64))
    assert_close(got, want.detach())
    (got * 3).sum().backward()
    (want * 3).sum().backward()
    assert_close(x.grad, t.grad)


@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_mask_indexing_100k(dtype):
    a = random_array((100_000,), dtype, low=-50, high=50, rng=np.random.default_rng(22))
    x, t = both(a)
    assert_close(x[x > 0], t[t > 0])
    assert_close(x.nonzero(), t.nonzero())
    assert_close(x.masked_select(x < 3), t.masked_select(t < 3))

"""Movement, joining and splitting ops against PyTorch on the same inputs, plus a hypothesis
property test: random chains of views give the same values as in NumPy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st, HealthCheck

import lazytensor as lt
from helpers import assert_close, non_contiguous_variants, random_array

ERRORS = (RuntimeError, IndexError, ValueError, TypeError)


def _both(a: np.ndarray, dtype: str = "float32"):
    a = np.array(a)
    return lt.tensor(a, dtype=dtype), torch.from_numpy(a).to(getattr(torch, dtype))


def _check(fn, a: np.ndarray, dtype: str = "float32", view=lambda t: t):
    """fn(ours) == fn(torch); if torch raises, ours must raise a Python exception too."""
    x, t = _both(a, dtype)
    try:
        want = fn(view(t))
    except ERRORS:
        with pytest.raises(ERRORS):
            got = fn(view(x))
            for part in (got if isinstance(got, (tuple, list)) else [got]):
                part.realize()
        return
    got = fn(view(x))
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want), (len(got), len(want))
        for g_, w_ in zip(got, want):
            assert_close(g_, w_)
    else:
        assert_close(got, want)


A234 = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
MOVES = [
    ("reshape", (3, 8), lambda t: t.reshape(3, 8)),
    ("reshape_-1", (4, 6), lambda t: t.reshape(-1, 3)),
    ("reshape_0d", (), lambda t: t.reshape(1, 1)),
    ("reshape_to_0d", (1, 1), lambda t: t.reshape(())),
    ("reshape_empty", (0, 3), lambda t: t.reshape(3, 0, -1) if False else t.reshape(3, 0)),
    ("view_list", (2, 3, 4), lambda t: t.view([6, 4])),
    ("view_-1", (2, 3, 4), lambda t: t.view(-1)),
    ("permute", (2, 3, 4), lambda t: t.permute(2, 0, 1)),
    ("permute_neg", (2, 3, 4), lambda t: t.permute(-1, -3, -2)),
    ("transpose", (2, 3, 4), lambda t: t.transpose(0, 2)),
    ("transpose_neg", (2, 3, 4), lambda t: t.transpose(-1, -2)),
    ("swapaxes", (2, 3, 4), lambda t: t.swapaxes(1, 2)),
    ("expand", (3, 1), lambda t: t.expand(2, 3, 5)),
    ("expand_-1", (3, 1), lambda t: t.expand(-1, 4)),
    ("expand_0d", (), lambda t: t.expand(2, 2)),
    ("expand_as", (1, 4), lambda t: t.expand_as(torch.zeros(3, 4) if isinstance(t, torch.Tensor)
                                                  else lt.zeros(3, 4))),
    ("broadcast_to", (3, 1), lambda t: t.broadcast_to((2, 3, 3))),
    ("flatten", (2, 3, 4), lambda t: t.flatten()),
    ("flatten_range", (2, 3, 4, 1), lambda t: t.flatten(1, 2)),
    ("flatten_0d", (), lambda t: t.flatten()),
    ("unflatten", (2, 12), lambda t: t.unflatten(1, (3, -1))),
    ("squeeze", (1, 3, 1, 4), lambda t: t.squeeze()),
    ("squeeze_dim", (1, 3, 1, 4), lambda t: t.squeeze(2)),
    ("squeeze_non1", (1, 3, 1, 4), lambda t: t.squeeze(1)),
    ("squeeze_tuple", (1, 3, 1, 4), lambda t: t.squeeze((0, 2))),
    ("squeeze_0d", (), lambda t: t.squeeze()),
    ("unsqueeze", (3, 4), lambda t: t.unsqueeze(1)),
    ("unsqueeze_neg", (3, 4), lambda t: t.unsqueeze(-1)),
    ("unsqueeze_0d", (), lambda t: t.unsqueeze(0)),
    ("flip", (2, 3, 4), lambda t: t.flip(0, 2)),
    ("flip_neg", (2, 3, 4), lambda t: t.flip(-1)),
    ("flip_empty", (0, 3), lambda t: t.flip(0)),
    ("roll", (2, 3, 4), lambda t: t.roll(1, 2)),
    ("roll_neg", (2, 3, 4), lambda t: t.roll(-2, 1)),
    ("roll_multi", (2, 3, 4), lambda t: t.roll((1, 5), (0, 2))),
    ("roll_flat", (2, 3, 4), lambda t: t.roll(5)),
    ("repeat", (2, 3), lambda t: t.repeat(2, 1, 3)),
    ("repeat_0d", (), lambda t: t.repeat(3)),
    ("repeat_zero", (2, 3), lambda t: t.repeat(0, 2)),
    ("tile", (2, 3), lambda t: t.tile((2,))),
    ("tile_more", (2, 3), lambda t: t.tile((2, 1, 2))),
    ("narrow", (5, 4), lambda t: t.narrow(0, 1, 3)),
    ("narrow_neg_start", (5, 4), lambda t: t.narrow(1, -3, 2)),
    ("narrow_empty", (5, 4), lambda t: t.narrow(1, 4, 0)),
    ("T", (2, 3, 4), lambda t: t.T if t.ndim == 2 else t.permute(2, 1, 0)),
    ("T_2d", (3, 4), lambda t: t.T),
    ("mT", (2, 3, 4), lambda t: t.mT),
    ("t", (3, 4), lambda t: t.t()),
    ("movedim", (2, 3, 4), lambda t: t.movedim(0, -1)),
    ("movedim_multi", (2, 3, 4, 5), lambda t: t.movedim((0, 1), (3, 0))),
    ("diagonal", (3, 4), lambda t: t.diagonal()),
    ("diagonal_off", (3, 4), lambda t: t.diagonal(1)),
    ("diagonal_neg", (4, 3), lambda t: t.diagonal(-2)),
    ("diagonal_dims", (2, 3, 4), lambda t: t.diagonal(0, 2, 1)),
    ("diagonal_far", (3, 4), lambda t: t.diagonal(7)),
    ("tril", (4, 5), lambda t: t.tril()),
    ("tril_pos", (4, 5), lambda t: t.tril(2)),
    ("tril_neg", (2, 4, 5), lambda t: t.tril(-1)),
    ("triu", (4, 5), lambda t: t.triu()),
    ("triu_pos", (2, 4, 5), lambda t: t.triu(1)),
    ("triu_neg", (4, 5), lambda t: t.triu(-2)),
    ("triu_empty", (0, 3), lambda t: t.triu()),
    ("split_int", (7, 3), lambda t: t.split(3)),
    ("split_list", (7, 3), lambda t: t.split([2, 0, 5])),
    ("split_dim", (2, 7), lambda t: t.split(2, dim=-1)),
    ("chunk", (7, 3), lambda t: t.chunk(3)),
    ("chunk_more_than_size", (2, 3), lambda t: t.chunk(5, 1)),
    ("chunk_6_4", (6,), lambda t: t.chunk(4)),
    ("unbind", (2, 3, 4), lambda t: t.unbind(1)),
    ("unbind_neg", (2, 3), lambda t: t.unbind(-1)),
    ("getitem_step", (6, 5), lambda t: t[1::2, 1:4][::2]),
]
PADS = [
    ("pad_const", (2, 3), lambda t: F.pad(t, (1, 2)) if isinstance(t, torch.Tensor) else t.pad((1, 2))),
    ("pad_value", (2, 3), lambda t: F.pad(t, (1, 0, 2, 1), value=-1.5) if isinstance(t, torch.Tensor)
        else t.pad((1, 0, 2, 1), value=-1.5)),
    ("pad_negative", (4, 5), lambda t: F.pad(t, (-1, 2, 0, -2)) if isinstance(t, torch.Tensor)
        else t.pad((-1, 2, 0, -2))),
    ("pad_reflect", (2, 3, 4), lambda t: F.pad(t, (2, 3), mode="reflect") if isinstance(t, torch.Tensor)
        else t.pad((2, 3), mode="reflect")),
    ("pad_reflect2d", (1, 3, 4), lambda t: F.pad(t, (1, 1, 2, 0), mode="reflect")
        if isinstance(t, torch.Tensor) else t.pad((1, 1, 2, 0), mode="reflect")),
    ("pad_replicate", (2, 3, 4), lambda t: F.pad(t, (2, 1, 1, 3), mode="replicate")
        if isinstance(t, torch.Tensor) else t.pad((2, 1, 1, 3), mode="replicate")),
    ("pad_circular", (2, 3, 4), lambda t: F.pad(t, (2, 3), mode="circular")
        if isinstance(t, torch.Tensor) else t.pad((2, 3), mode="circular")),
    ("pad_circular2d", (1, 3, 4), lambda t: F.pad(t, (1, 2, 2, 1), mode="circular")
        if isinstance(t, torch.Tensor) else t.pad((1, 2, 2, 1), mode="circular")),
]


@pytest.mark.parametrize("name,shape,fn", MOVES + PADS, ids=[m[0] for m in MOVES + PADS])
def test_movement_matches_torch(name, shape, fn):
    a = random_array(shape, "float32", rng=np.random.default_rng(len(name)))
    _check(fn, a)


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int32", "int64", "float16", "bfloat16", "float64"])
def test_movement_dtypes(dtype):
    """The same views on every dtype family (pads fill with the dtype's zero / value)."""
    a = random_array((2, 3, 4), dtype, rng=np.random.default_rng(1))
    for fn in (lambda t: t.permute(2, 0, 1).reshape(4, 6), lambda t: t.flip(1)[:, 1:],
               lambda t: t.unsqueeze(0).expand(2, 2, 3, 4), lambda t: t.roll(1, 2).tril(),
               lambda t: F.pad(t, (1, 1)) if isinstance(t, torch.Tensor) else t.pad((1, 1)),
               lambda t: t.repeat(1, 2, 1)):
        _check(fn, a, dtype)


@pytest.mark.parametrize("name,shape,fn", [m for m in MOVES if m[1] == (2, 3, 4) or m[1] == (4, 5)],
                         ids=[m[0] for m in MOVES if m[1] == (2, 3, 4) or m[1] == (4, 5)])
def test_movement_on_non_contiguous_inputs(name, shape, fn):
    a = random_array(shape, "float32", rng=np.random.default_rng(2))
    for vname, view in non_contiguous_variants(a)[1:]:
        v = (lambda t, view=view: view(t).contiguous() if False else view(t))
        try:
            fn(v(torch.from_numpy(a)))
        except ERRORS:
            continue   # the op does not apply to this view's shape
        _check(fn, a, view=v)


# ---- joining ----

def _cat_case(shapes, dtypes_, dim, op="cat"):
    rng = np.random.default_rng(3)
    arrays = [random_array(s, d, rng=rng) for s, d in zip(shapes, dtypes_)]
    ours_ = [lt.tensor(a, dtype=d) for a, d in zip(arrays, dtypes_)]
    theirs_ = [torch.from_numpy(np.array(a)).to(getattr(torch, d)) for a, d in zip(arrays, dtypes_)]
    return ours_, theirs_


JOINS = [
    ("cat0", [(2, 3), (4, 3)], ["float32"] * 2, 0, "cat"),
    ("cat1", [(2, 3), (2, 1), (2, 0)], ["float32"] * 3, 1, "cat"),
    ("cat_neg", [(2, 3, 1), (2, 3, 2)], ["int32"] * 2, -1, "cat"),
    ("cat_mixed_dtype", [(2, 3), (1, 3)], ["int32", "float32"], 0, "cat"),
    ("cat_bool_int", [(2,), (3,)], ["bool", "uint8"], 0, "cat"),
    ("cat_bool", [(2,), (3,)], ["bool", "bool"], 0, "cat"),
    ("cat_int64_f16", [(2,), (3,)], ["int64", "float16"], 0, "cat"),
    ("cat_legacy_empty", [(0,), (2, 3)], ["float32"] * 2, 0, "cat"),
    ("cat_one", [(2, 3)], ["float64"], 1, "cat"),
    ("cat_mismatch", [(2, 3), (2, 4)], ["float32"] * 2, 0, "cat"),
    ("cat_ndim_mismatch", [(2, 3), (3,)], ["float32"] * 2, 0, "cat"),
    ("cat_dim_range", [(2, 3), (2, 3)], ["float32"] * 2, 2, "cat"),
    ("cat_0d", [(), ()], ["float32"] * 2, 0, "cat"),
    ("stack0", [(2, 3), (2, 3)], ["float32"] * 2, 0, "stack"),
    ("stack_last", [(2, 3), (2, 3), (2, 3)], ["float32"] * 3, -1, "stack"),
    ("stack_mid", [(2, 3), (2, 3)], ["int64", "float32"], 1, "stack"),
    ("stack_0d", [(), ()], ["float32"] * 2, 0, "stack"),
    ("stack_mismatch", [(2, 3), (3, 2)], ["float32"] * 2, 0, "stack"),
    ("hstack", [(2, 3), (2, 1)], ["float32"] * 2, None, "hstack"),
    ("hstack_1d", [(2,), (3,)], ["float32"] * 2, None, "hstack"),
    ("vstack", [(3,), (3,)], ["float32"] * 2, None, "vstack"),
    ("vstack_2d", [(2, 3), (1, 3)], ["float32"] * 2, None, "vstack"),
]


@pytest.mark.parametrize("name,shapes,dts,dim,op", JOINS, ids=[j[0] for j in JOINS])
def test_joining_matches_torch(name, shapes, dts, dim, op):
    ours_, theirs_ = _cat_case(shapes, dts, dim)
    args = () if dim is None else (dim,)
    try:
        want = getattr(torch, op)(theirs_, *args)
    except ERRORS:
        with pytest.raises(ERRORS) as info:
            getattr(lt, op)(ours_, *args).realize()
        assert op in str(info.value), str(info.value)
        return
    assert_close(getattr(lt, op)(ours_, *args), want)


def test_cat_non_contiguous_and_lazy_inputs():
    a = random_array((4, 4), "float32")
    x, t = _both(a)
    assert_close(lt.cat([x.T, (x.T * 2)[:, ::2]], 1), torch.cat([t.T, (t.T * 2)[:, ::2]], 1))
    assert_close(lt.stack([x[::2], x[1::2].flip(0)]), torch.stack([t[::2], t[1::2].flip(0)]))


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_where_matches_torch(dtype):
    rng = np.random.default_rng(4)
    c = rng.random((3, 1)) > 0.5
    a, b = random_array((3, 4), dtype, rng=rng), random_array((4,), dtype, rng=rng)
    tc, ta, tb = torch.from_numpy(c), torch.from_numpy(a), torch.from_numpy(b)
    xc, xa, xb = lt.tensor(c), lt.tensor(a), lt.tensor(b)
    assert_close(lt.where(xc, xa, xb), torch.where(tc, ta, tb))
    assert_close(lt.where(xc, xa, 2), torch.where(tc, ta, 2))
    assert_close(lt.where(xc, 1.5, xb), torch.where(tc, 1.5, tb))
    assert_close(lt.where(xc, 1, 0), torch.where(tc, 1, 0))
    assert_close(xa.where(xc, xb), ta.where(tc, tb))


# ---- errors name the op and the shapes ----

@pytest.mark.parametrize("call,words", [
    (lambda x: x.reshape(5, 5), ["reshape", "(5, 5)", "24"]),
    (lambda x: x.reshape(-1, -1), ["reshape"]),
    (lambda x: x.view(7, -1), ["reshape", "24"]),
    (lambda x: x.permute(0, 1), ["permute"]),
    (lambda x: x.permute(0, 1, 1), ["permute"]),
    (lambda x: x.transpose(0, 3), ["transpose", "range"]),
    (lambda x: x.expand(2, 5, 4), ["expand", "(2, 3, 4)"]),
    (lambda x: x.squeeze(4), ["squeeze", "range"]),
    (lambda x: x.unsqueeze(5), ["unsqueeze", "range"]),
    (lambda x: x.flip(3), ["flip", "range"]),
    (lambda x: x.narrow(1, 2, 2), ["narrow"]),
    (lambda x: x.split([1, 1], 1), ["split"]),
    (lambda x: x.unflatten(2, (3, 3)), ["unflatten"]),
    (lambda x: x.pad((1, 2, 3)), ["pad"]),
    (lambda x: x.pad((4, 0), mode="reflect"), ["pad", "reflect"]),
    (lambda x: x.movedim(0, 3), ["movedim", "range"]),
    (lambda x: lt.cat([x, x[:, :2, :2]], 1), ["cat", "(2, 3, 4)", "(2, 2, 2)"]),
    (lambda x: lt.stack([x, x[:1]]), ["stack", "(2, 3, 4)", "(1, 3, 4)"]),
    (lambda x: x.diagonal(0, 0, 0), ["diagonal"]),
])
def test_movement_errors_name_the_op(call, words):
    x = lt.tensor(A234)
    with pytest.raises(ERRORS) as info:
        call(x).realize()
    for w in words:
        assert w in str(info.value), str(info.value)


# ---- property test: random view chains agree with NumPy ----

@st.composite
def view_chains(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    steps = []
    cur = list(shape)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["reshape", "permute", "expand", "pad", "shrink", "flip", "step"]))
        if kind == "reshape":
            n = int(np.prod(cur))
            divisors = [d for d in range(1, n + 1) if n % d == 0]
            d = draw(st.sampled_from(divisors))
            cur = [d, n // d]
            steps.append(("reshape", tuple(cur)))
        elif kind == "permute":
            perm = draw(st.permutations(range(len(cur))))
            cur = [cur[p] for p in perm]
            steps.append(("permute", tuple(perm)))
        elif kind == "expand":
            cur = [2] + cur
            steps.append(("expand", tuple(cur)))
        elif kind == "pad":
            pads = [(draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in cur]
            cur = [s + a + b for s, (a, b) in zip(cur, pads)]
            steps.append(("pad", tuple(pads)))
        elif kind == "shrink":
            bounds = []
            for s in cur:
                lo = draw(st.integers(0, s - 1))
                hi = draw(st.integers(lo + 1, s))
                bounds.append((lo, hi))
            cur = [hi - lo for lo, hi in bounds]
            steps.append(("shrink", tuple(bounds)))
        elif kind == "flip":
            axis = draw(st.integers(0, len(cur) - 1))
            steps.append(("flip", axis))
        else:
            axis = draw(st.integers(0, len(cur) - 1))
            step = draw(st.integers(2, 3))
            cur[axis] = -(-cur[axis] // step)
            steps.append(("step", (axis, step)))
    return shape, steps


def _apply_numpy(a: np.ndarray, steps) -> np.ndarray:
    for kind, arg in steps:
        if kind == "reshape":
            a = a.reshape(arg)
        elif kind == "permute":
            a = a.transpose(arg)
        elif kind == "expand":
            a = np.broadcast_to(a[None], arg)
        elif kind == "pad":
            a = np.pad(a, arg)
        elif kind == "shrink":
            a = a[tuple(slice(lo, hi) for lo, hi in arg)]
        elif kind == "flip":
            a = np.flip(a, arg)
        else:
            axis, step = arg
            a = a[(slice(None),) * axis + (slice(None, None, step),)]
    return a


def _apply_ours(x: lt.Tensor, steps) -> lt.Tensor:
    for kind, arg in steps:
        if kind == "reshape":
            x = x.reshape(arg)
        elif kind == "permute":
            x = x.permute(arg)
        elif kind == "expand":
            x = x.unsqueeze(0).expand(arg)
        elif kind == "pad":
            x = x.pad(tuple(v for pair in reversed(arg) for v in pair))
        elif kind == "shrink":
            x = x[tuple(slice(lo, hi) for lo, hi in arg)]
        elif kind == "flip":
            x = x.flip(arg)
        else:
            axis, step = arg
            x = x[(slice(None),) * axis + (slice(None, None, step),)]
    return x


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(view_chains())
def test_random_view_chains_match_numpy(case):
    shape, steps = case
    a = np.arange(1, int(np.prod(shape)) + 1, dtype=np.int32).reshape(shape)
    want = _apply_numpy(a, steps)
    got = _apply_ours(lt.tensor(a), steps).numpy()
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# ---- unfold: sliding windows as one view (the WINDOW movement op) ----

UNFOLDS = [((9,), 0, 3, 1), ((9,), 0, 3, 2), ((2, 3, 9), 2, 3, 1), ((2, 3, 9), -1, 4, 3), ((2, 3, 9), 1, 2, 1),
           ((2, 3, 9), 0, 1, 1), ((2, 3, 9), 2, 9, 1), ((2, 3, 9), 2, 2, 5), ((4, 5), 0, 4, 1), ((1, 7), 1, 7, 7)]


@pytest.mark.parametrize("shape,dim,size,step", UNFOLDS, ids=[str(u) for u in UNFOLDS])
def test_unfold_values_and_gradients_match_torch(shape, dim, size, step):
    a = np.random.default_rng(len(shape) * 7 + size).standard_normal(shape)
    ours, theirs = lt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    got, want = ours.unfold(dim, size, step), theirs.unfold(dim, size, step)
    assert_close(got, want)
    upstream = np.random.default_rng(1).standard_normal(tuple(want.shape))
    (got * lt.tensor(upstream)).sum().backward()
    (want * torch.tensor(upstream)).sum().backward()
    assert_close(ours.grad, theirs.grad)


def test_unfold_of_non_contiguous_views_and_twice_for_2d_windows():
    a = np.random.default_rng(3).standard_normal((3, 6, 7)).astype(np.float32)
    x, t = lt.tensor(a), torch.tensor(a)
    assert_close(x.transpose(1, 2).unfold(1, 3, 2), t.transpose(1, 2).unfold(1, 3, 2))
    assert_close(x[:, ::2].unfold(2, 2, 1), t[:, ::2].unfold(2, 2, 1))
    assert_close(x.unfold(1, 3, 1).unfold(2, 3, 1), t.unfold(1, 3, 1).unfold(2, 3, 1))


def test_unfold_with_dilation_matches_strided_indexing():
    a = np.arange(10.0)
    got = lt.tensor(a).unfold(0, 3, 2, dilation=2).numpy()
    want = np.stack([a[o * 2 + np.arange(3) * 2] for o in range(3)])
    np.testing.assert_array_equal(got, want)


def test_unfold_errors_name_the_op():
    with pytest.raises(RuntimeError, match="unfold"):
        lt.zeros(3, 4).unfold(1, 5, 1)
    with pytest.raises(RuntimeError, match="unfold"):
        lt.zeros(3, 4).unfold(1, 2, 0)


def test_reading_an_intermediate_keeps_its_gradient():
    w = lt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    hidden = (w * w).unfold(0, 2, 1)
    hidden.numpy()                    # realizing a value must not cut it out of the graph
    hidden.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [2.0, 8.0, 6.0])


# ---- deep graphs: no Python recursion over the graph ----

@pytest.mark.parametrize("count,dtype", [(1000, "float32"), (100, "bool")])
def test_cat_of_many_tensors(count, dtype):
    arrays = [random_array((1, 2), dtype, rng=np.random.default_rng(i)) for i in range(count)]
    got = lt.cat([lt.tensor(a, dtype=dtype) for a in arrays])
    want = torch.cat([torch.from_numpy(a).to(getattr(torch, dtype)) for a in arrays])
    assert_close(got, want)


def test_lowering_a_deep_graph_does_not_recurse():
    from lazytensor.codegen.lower import lower_kernel
    x = lt.tensor(np.arange(4, dtype=np.float32))
    y = x
    for _ in range(3000):   # one fused kernel whose expression is 6000 ops deep
        y = y * 0.5 + x
    items = [item for item in y.schedule() if item.kind == "kernel"]
    kernel = lower_kernel(items[-1].ast)
    assert len(kernel.nests) == 1 and len(kernel.nests[0].stores) == 1


def test_contiguous_of_contiguous_and_clone_of_a_lazy_value():
    """contiguous() twice (torch returns self the second time) and clone() of a lazy contiguous value
    realize; a boundary inside a boundary used to fail with 'cannot lower CONTIGUOUS inside a kernel'."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = lt.tensor(a) + 1
    np.testing.assert_array_equal(x.contiguous().contiguous().numpy(), a + 1)
    np.testing.assert_array_equal(x.contiguous().clone().numpy(), a + 1)
    np.testing.assert_array_equal(x.T.contiguous().contiguous().numpy(), (a + 1).T)
    padded = lt.nn.functional.pad(lt.tensor(a)[None, None], (1, 1, 1, 1)).contiguous()
    out = lt.nn.functional.conv2d(padded, lt.ones(1, 1, 3, 3))
    want = F.conv2d(torch.tensor(a)[None, None], torch.ones(1, 1, 3, 3), padding=1)
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-6)

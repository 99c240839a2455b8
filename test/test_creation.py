"""Creation ops against PyTorch, and the random generator: deterministic under manual_seed,
right shape/dtype/range, and loosely right statistics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lazytensor as lt
from helpers import assert_close

CREATIONS = [
    ("zeros", lambda m: m.zeros(2, 3)),
    ("zeros_tuple", lambda m: m.zeros((2, 0, 3))),
    ("zeros_0d", lambda m: m.zeros(())),
    ("zeros_int", lambda m: m.zeros(3, dtype=m.int32)),
    ("ones", lambda m: m.ones(4, 1)),
    ("ones_bool", lambda m: m.ones(2, 2, dtype=m.bool)),
    ("ones_f16", lambda m: m.ones(3, dtype=m.float16)),
    ("ones_bf16", lambda m: m.ones(3, dtype=m.bfloat16)),
    ("full_float", lambda m: m.full((2, 3), 1.5)),
    ("full_int", lambda m: m.full((2,), 7)),
    ("full_bool", lambda m: m.full((2,), True)),
    ("full_dtype", lambda m: m.full((2, 2), 3, dtype=m.float64)),
    ("full_uint8", lambda m: m.full((3,), 200, dtype=m.uint8)),
    ("arange_int", lambda m: m.arange(5)),
    ("arange_start", lambda m: m.arange(2, 9)),
    ("arange_step", lambda m: m.arange(1, 10, 3)),
    ("arange_neg_step", lambda m: m.arange(10, 0, -3)),
    ("arange_float", lambda m: m.arange(0.5, 3)),
    ("arange_float_step", lambda m: m.arange(0, 1, 0.1)),
    ("arange_neg_float", lambda m: m.arange(1.0, -1.0, -0.25)),
    ("arange_empty", lambda m: m.arange(5, 2)),
    ("arange_dtype", lambda m: m.arange(6, dtype=m.float32)),
    ("arange_f64", lambda m: m.arange(0, 2, 0.5, dtype=m.float64)),
    ("arange_int_from_float_dtype", lambda m: m.arange(0.0, 5.0, dtype=m.int64)),
    ("arange_big", lambda m: m.arange(-1000, 1000, 7)),
    ("linspace", lambda m: m.linspace(0, 1, 5)),
    ("linspace_neg", lambda m: m.linspace(3, -2, 7)),
    ("linspace_one", lambda m: m.linspace(2, 5, 1)),
    ("linspace_zero", lambda m: m.linspace(2, 5, 0)),
    ("linspace_f64", lambda m: m.linspace(-1, 1, 101, dtype=m.float64)),
    ("linspace_int", lambda m: m.linspace(0, 10, 6, dtype=m.int64)),
    ("eye", lambda m: m.eye(3)),
    ("eye_rect", lambda m: m.eye(2, 4)),
    ("eye_zero", lambda m: m.eye(0)),
    ("eye_int", lambda m: m.eye(3, dtype=m.int32)),
    ("eye_bool", lambda m: m.eye(2, 3, dtype=m.bool)),
    ("tril_of_ones", lambda m: m.ones(3, 4).tril(1)),
]


@pytest.mark.parametrize("name,fn", CREATIONS, ids=[c[0] for c in CREATIONS])
def test_creation_matches_torch(name, fn):
    try:
        want = fn(torch)
    except (RuntimeError, ValueError, TypeError):
        with pytest.raises((RuntimeError, ValueError, TypeError)):
            fn(lt).realize()
        return
    got = fn(lt)
    assert_close(got, want, rtol=1e-6, atol=1e-6)


LIKES = [
    ("zeros_like", lambda m, x: m.zeros_like(x)),
    ("ones_like", lambda m, x: m.ones_like(x)),
    ("full_like", lambda m, x: m.full_like(x, 3)),
    ("ones_like_dtype", lambda m, x: m.ones_like(x, dtype=m.float64)),
    ("empty_like", lambda m, x: m.empty_like(x).shape),
]


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int32", "int64", "float16", "bfloat16", "float32"])
@pytest.mark.parametrize("name,fn", LIKES, ids=[c[0] for c in LIKES])
def test_like_matches_torch(name, fn, dtype):
    x = lt.zeros(2, 3, dtype=getattr(lt, dtype))[:, ::2]
    t = torch.zeros(2, 3, dtype=getattr(torch, dtype))[:, ::2]
    got, want = fn(lt, x), fn(torch, t)
    if name == "empty_like":
        assert tuple(got) == tuple(want)
    else:
        assert_close(got, want)


def test_empty_has_shape_and_dtype():
    for args, kw in [((2, 3), {}), (((4,),), {"dtype": lt.int64}), ((0,), {})]:
        t = lt.empty(*args, **kw)
        want = torch.empty(*args, **{k: getattr(torch, v.name) for k, v in kw.items()})
        assert tuple(t.shape) == tuple(want.shape) and t.dtype.name == str(want.dtype)[6:]
        assert t.numpy().shape == tuple(want.shape)


@pytest.mark.parametrize("call", [lambda: lt.zeros(-1, 2), lambda: lt.arange(0, 5, 0),
                                  lambda: lt.randint(5, 5, (2,)), lambda: lt.full((-2,), 1.0)])
def test_creation_errors(call):
    with pytest.raises((RuntimeError, ValueError)):
        call().realize()


# ---- random ----

RANDOMS = [
    ("rand", lambda: lt.rand(3, 4), (3, 4), "float32"),
    ("rand_f64", lambda: lt.rand((5,), dtype=lt.float64), (5,), "float64"),
    ("rand_f16", lambda: lt.rand(5, dtype=lt.float16), (5,), "float16"),
    ("rand_bf16", lambda: lt.rand(5, dtype=lt.bfloat16), (5,), "bfloat16"),
    ("rand_0d", lambda: lt.rand(()), (), "float32"),
    ("rand_empty", lambda: lt.rand(0, 3), (0, 3), "float32"),
    ("randn", lambda: lt.randn(2, 5), (2, 5), "float32"),
    ("randn_f64", lambda: lt.randn(4, dtype=lt.float64), (4,), "float64"),
    ("randint", lambda: lt.randint(0, 10, (6,)), (6,), "int64"),
    ("randint_high_only", lambda: lt.randint(5, size=(2, 2)), (2, 2), "int64"),
    ("randint_dtype", lambda: lt.randint(-3, 3, (7,), dtype=lt.int32), (7,), "int32"),
    ("rand_like", lambda: lt.rand_like(lt.zeros(2, 3)), (2, 3), "float32"),
    ("randn_like", lambda: lt.randn_like(lt.zeros(4, dtype=lt.float64)), (4,), "float64"),
]


@pytest.mark.parametrize("name,make,shape,dtype", RANDOMS, ids=[r[0] for r in RANDOMS])
def test_random_is_deterministic_and_well_formed(name, make, shape, dtype):
    lt.manual_seed(123)
    a = make().numpy()
    lt.manual_seed(123)
    b = make().numpy()
    lt.manual_seed(124)
    c = make().numpy()
    d = make().numpy()   # the stream advances: a second draw differs from the first
    assert a.shape == shape and make().dtype.name == dtype
    np.testing.assert_array_equal(a, b)
    if a.size >= 4:
        assert not np.array_equal(a, c) and not np.array_equal(c, d)
    if name.startswith("rand") and not name.startswith(("randn", "randint")):
        assert np.all((a >= 0) & (a < 1))
    if name == "randint_dtype":
        assert np.all((a >= -3) & (a < 3))


def test_uniform_statistics():
    lt.manual_seed(7)
    x = lt.rand(100_000).numpy().astype(np.float64)
    assert abs(x.mean() - 0.5) < 0.01 and abs(x.std() - (1 / 12) ** 0.5) < 0.01
    assert x.min() >= 0 and x.max() < 1
    hist = np.histogram(x, bins=10, range=(0, 1))[0]
    assert hist.min() > 9_000 and hist.max() < 11_000


def test_normal_statistics():
    lt.manual_seed(8)
    x = lt.randn(100_000).numpy().astype(np.float64)
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02
    assert abs((np.abs(x) < 1).mean() - 0.6827) < 0.01
    assert np.isfinite(x).all()


def test_randint_covers_all_values_uniformly():
    lt.manual_seed(9)
    x = lt.randint(-5, 5, (100_000,)).numpy()
    counts = np.bincount(x + 5, minlength=10)
    assert x.min() == -5 and x.max() == 4 and len(counts) == 10
    assert counts.min() > 9_000 and counts.max() < 11_000


def test_random_draws_are_independent():
    lt.manual_seed(10)
    a, b = lt.rand(50_000).numpy(), lt.rand(50_000).numpy()
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.02
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.02


@pytest.mark.parametrize("value", [np.float16(1.5), np.float32(-2.0), np.float64(2.5), np.int8(-3), np.int32(3),
                                   np.int64(-4), np.uint8(7), np.bool_(True)])
def test_numpy_scalar_keeps_its_dtype_like_torch(value):
    torch = pytest.importorskip("torch")
    ours, want = lt.tensor(value), torch.tensor(value)
    assert str(ours.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    assert tuple(ours.shape) == () and ours.item() == want.item()

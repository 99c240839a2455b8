"""Schedules are cached by graph structure: new data reuses the plan, and a cached plan never
mixes up buffers, constants or aliasing, nor keeps data alive."""
from __future__ import annotations

import gc
import weakref

import numpy as np

import lazytensor as lt
from lazytensor.schedule_cache import PLANS, structure_key


def _data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _f(a, b):
    return ((a @ b).relu() + 1).sum(1)


def test_same_structure_new_data_hits_the_cache_and_computes_new_values():
    PLANS.clear()
    misses, hits = PLANS.misses, PLANS.hits
    for seed in range(3):
        a, b = _data(4, 5, seed=seed), _data(5, 3, seed=seed + 10)
        got = _f(lt.tensor(a), lt.tensor(b)).numpy()
        np.testing.assert_allclose(got, (np.maximum(a @ b, 0) + 1).sum(1), rtol=1e-5)
    assert PLANS.misses - misses == 1 and PLANS.hits - hits == 2


def test_structure_key_distinguishes_constants_shapes_dtypes_and_aliasing():
    a, b = lt.tensor(_data(3)), lt.tensor(_data(3, seed=1))
    keys = [structure_key([n.node])[0] for n in (a + b, a + a, a * 2 + b, a * 3 + b, a.double() + b,
                                                   lt.tensor(_data(4)) + lt.tensor(_data(4)))]
    assert len(set(keys)) == len(keys)
    same = structure_key([(lt.tensor(_data(3, seed=5)) + lt.tensor(_data(3, seed=6))).node])[0]
    assert same == keys[0]


def test_aliased_inputs_use_the_right_buffers():
    a, b = _data(6), _data(6, seed=1)
    ta, tb = lt.tensor(a), lt.tensor(b)
    np.testing.assert_allclose((ta * 2 - tb).numpy(), a * 2 - b, rtol=1e-6)
    np.testing.assert_allclose((ta * 2 - ta).numpy(), a, rtol=1e-6)
    np.testing.assert_allclose((tb * 2 - ta).numpy(), b * 2 - a, rtol=1e-6)


def test_realized_intermediates_are_read_not_recomputed():
    x = lt.tensor(_data(5))
    y = (x * 2).realize()
    z = x * 2 + 1               # contains the node realized as y: reads y's buffer
    np.testing.assert_allclose(z.numpy(), _data(5) * 2 + 1, rtol=1e-6)
    w = lt.tensor(_data(5, seed=3))
    np.testing.assert_allclose((w * 2 + 1).numpy(), _data(5, seed=3) * 2 + 1, rtol=1e-6)


def test_cached_plans_do_not_keep_buffers_alive():
    x = lt.tensor(_data(64))
    y = (x.exp() + 1).realize()
    buf = weakref.ref(y.node.arg)
    src = weakref.ref(x.node.arg)
    del x, y
    gc.collect()
    assert buf() is None and src() is None


def test_training_loop_reuses_one_plan_per_step():
    w = lt.tensor(_data(4, 3), requires_grad=True)
    x = lt.tensor(_data(8, 4, seed=2))
    PLANS.clear()
    misses, hits = PLANS.misses, PLANS.hits
    for _ in range(4):
        loss = (x @ w).square().mean()
        loss.backward()
        with lt.no_grad():
            w.sub_(w.grad * 0.1)
        w.grad = None
        lt.realize(loss, w)
    assert PLANS.misses - misses <= 2 and PLANS.hits - hits >= 2

"""Sibling fusion (lazytensor/sibling_fusion.py): elementwise kernels over one shape that read the same
data become one kernel with several outputs. Checked by counting the kernels of a schedule, by
values against NumPy and against the same schedule without the fusion, and through lt.jit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazytensor as lt
from lazytensor import schedule, sibling_fusion
from lazytensor.schedule import create_schedule
from lazytensor.schedule_cache import PLANS


def rand(*shape: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def kinds(*tensors: lt.Tensor) -> list[str]:
    items, _ = create_schedule([t.node for t in tensors], "CPU")
    return [item.kind for item in items]


def adam_like(p: lt.Tensor, m: lt.Tensor, v: lt.Tensor, g: lt.Tensor):
    """Adam's three updates of one parameter (constants for the step's factors; v is made >= 0)."""
    v = v.abs()
    m2 = m + (g - m) * 0.1
    v2 = v * 0.999 + g * g * 0.001
    p2 = p - m2 / (v2.sqrt() / 0.1 + 1e-8) * 0.01
    return m2, v2, p2


def adam_numpy(p, m, v, g):
    v = np.abs(v)
    m2 = m + (g - m) * np.float32(0.1)
    v2 = v * np.float32(0.999) + g * g * np.float32(0.001)
    p2 = p - m2 / (np.sqrt(v2) / np.float32(0.1) + np.float32(1e-8)) * np.float32(0.01)
    return m2, v2, p2


@pytest.fixture
def no_sibling_fusion(monkeypatch):
    """Schedules made inside run without sibling fusion (the plan cache is cleared around it)."""
    PLANS.clear()
    monkeypatch.setattr(schedule, "SIBLING_FUSION_DEVICES", ())
    yield
    PLANS.clear()


def test_adam_updates_are_one_kernel_with_three_outputs():
    p, m, v, g = (lt.tensor(rand(24, 40, seed=s)) for s in range(4))
    outs = adam_like(p, m, v, g)
    assert kinds(*outs) == ["alloc", "alloc", "kernel"]
    lt.realize(*outs)
    want = adam_numpy(*(rand(24, 40, seed=s) for s in range(4)))
    for got, ref in zip(outs, want):
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_fused_values_are_bitwise_the_unfused_ones(no_sibling_fusion, monkeypatch):
    arrays = [rand(7, 127, seed=s) for s in range(4)]
    apart = [t.numpy() for t in _realized(adam_like(*(lt.tensor(a) for a in arrays)))]
    PLANS.clear()
    monkeypatch.setattr(schedule, "SIBLING_FUSION_DEVICES", ("CPU",))
    together = [t.numpy() for t in _realized(adam_like(*(lt.tensor(a) for a in arrays)))]
    for a, b in zip(apart, together):
        np.testing.assert_array_equal(a, b)


def _realized(tensors):
    lt.realize(*tensors)
    return tensors


def test_unfused_schedule_has_three_kernels(no_sibling_fusion):
    outs = adam_like(*(lt.tensor(rand(8, 8, seed=s)) for s in range(4)))
    assert kinds(*outs) == ["kernel", "kernel", "kernel"]


def test_outputs_of_different_dtypes_and_non_contiguous_inputs():
    x = rand(16, 9)
    t = lt.tensor(x).T                      # a transposed view: every member reads it strided
    a, b, c = t * 2 + 1, (t > 0), (t * 2 + 1).to(lt.float64) - t.to(lt.float64)
    assert kinds(a, b, c).count("kernel") == 1
    lt.realize(a, b, c)
    np.testing.assert_allclose(a.numpy(), x.T * 2 + 1, rtol=1e-6)
    np.testing.assert_array_equal(b.numpy(), x.T > 0)
    assert c.dtype == lt.float64
    np.testing.assert_allclose(c.numpy(), (x.T * 2 + 1).astype(np.float64) - x.T.astype(np.float64), rtol=1e-6)


def test_a_view_of_a_sibling_output_is_not_fused():
    x = lt.tensor(rand(8, 8))
    a = x * 2
    b = a.T + x                       # reads a transposed: other elements than the loop computes
    assert kinds(a, b).count("kernel") == 2
    lt.realize(a, b)
    xn = rand(8, 8)
    np.testing.assert_allclose(b.numpy(), (xn * 2).T + xn, rtol=1e-6)


def test_a_contiguous_value_stays_a_boundary():
    x = lt.tensor(rand(4, 4))
    t = (x + 1).contiguous() * 2
    assert kinds(t).count("kernel") == 2


def test_different_shapes_or_unrelated_inputs_are_not_fused():
    x, y = lt.tensor(rand(4, 6)), lt.tensor(rand(4, 6, seed=1))
    assert kinds(x + 1, y * 2).count("kernel") == 2            # nothing read in common
    assert kinds(x + 1, x.sum(0) * 2).count("kernel") == 2     # a reduce is not elementwise
    assert kinds(x + 1, x[:, :3] * 2).count("kernel") == 2     # shapes differ


def test_a_reader_between_members_closes_the_group():
    x = lt.tensor(rand(6, 5))
    a = x + 1
    s = a.sum()                 # a reduce reads a: the group {a} cannot move past it
    b = x * 2 + s               # shares x with a, but comes after the reader
    items, _ = create_schedule([a.node, s.node, b.node], "CPU")
    assert "alloc" not in [item.kind for item in items]
    lt.realize(a, s, b)
    xn = rand(6, 5)
    np.testing.assert_allclose(b.numpy(), xn * 2 + (xn + 1).sum(), rtol=1e-5)


def test_can_join_says_why_not():
    x, y = lt.tensor(rand(4, 6)), lt.tensor(rand(4, 6, seed=1))
    first, unrelated, other_shape, sibling = (create_schedule([t.node], "CPU")[0][0]
                                              for t in (x + 1, y * 2, x[:2] * 2, x * 3))
    group = sibling_fusion._Group([first], set(first.inputs), {first.output})
    assert "shares no input" in sibling_fusion.can_join(group, unrelated)
    assert "shape [2, 6]" in sibling_fusion.can_join(group, other_shape)
    assert sibling_fusion.can_join(group, sibling) == ""


def test_group_size_is_capped():
    x = lt.tensor(rand(5, 5))
    outs = [x * float(k + 2) for k in range(sibling_fusion.MAX_GROUP_OUTPUTS + 2)]
    found = kinds(*outs)
    assert found.count("kernel") == 2
    assert found.count("alloc") == len(outs) - 2
    lt.realize(*outs)
    for k, t in enumerate(outs):
        np.testing.assert_allclose(t.numpy(), rand(5, 5) * np.float32(k + 2), rtol=1e-6)


def test_sgd_momentum_under_jit_matches_eager():
    w0 = rand(33, 17, seed=3)

    def run(jitted: bool) -> np.ndarray:
        w = lt.tensor(w0.copy(), requires_grad=True)
        opt = lt.optim.SGD([w], lr=0.1, momentum=0.9)
        x = lt.tensor(rand(8, 33, seed=4))

        def step(bx: lt.Tensor) -> lt.Tensor:
            opt.zero_grad()
            loss = ((bx @ w).tanh() ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        fn = lt.jit(step) if jitted else step
        for _ in range(5):
            fn(x)
        return w.numpy()

    np.testing.assert_allclose(run(True), run(False), rtol=1e-6, atol=1e-7)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.sampled_from([1, 2, 7, 16, 127]), min_size=1, max_size=3))
def test_random_shapes_against_numpy(shape):
    arrays = [rand(*shape, seed=s) for s in range(4)]
    outs = adam_like(*(lt.tensor(a) for a in arrays))
    assert kinds(*outs).count("kernel") == 1
    lt.realize(*outs)
    for got, ref in zip(outs, adam_numpy(*arrays)):
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_empty_outputs_are_left_alone():
    x = lt.tensor(np.zeros((0, 3), np.float32))
    a, b = x + 1, x * 2
    assert "alloc" not in kinds(a, b)
    lt.realize(a, b)
    assert a.numpy().shape == (0, 3) and b.numpy().shape == (0, 3)


def test_explain_shows_the_extra_outputs_as_written_not_read():
    from lazytensor.explain import explain_schedule
    x = lt.tensor(rand(6, 5))
    a = x + 1
    b = x * 2 + a
    items, _ = create_schedule([a.node, b.node], "CPU")
    text = explain_schedule(items)
    assert "[0] alloc" in text and "also writes: [0] float32[6, 5]" in text
    assert "from [0]" not in text          # the kernel computes a's value, it does not read it
    assert items[1].read_inputs == [x.node] and items[1].extra_outputs == [a.node]

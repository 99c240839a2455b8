"""The scheduler's fusion claims, checked by counting kernels in `t.schedule()`, plus the
boundary reasons every kernel must carry."""
from __future__ import annotations

import importlib
import numpy as np
import pytest

import lazytensor as lt
from lazytensor import schedule


def kernels(t: lt.Tensor) -> list:
    return [item for item in t.schedule() if item.kind == "kernel"]


def realized(*shape: int) -> lt.Tensor:
    return lt.tensor(np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32))


def chain8(a, b, c, d):
    return (((a * b + c).exp() * d - a).relu().sqrt() + 1)


# A reduce broadcast back along a row (softmax, layer_norm over the last axis) stays in one kernel on the
# CPU (row_fusion.py); other devices store each row reduce (max, sum, mean, variance) first.
ROW_FUSED = 1 if lt.Device.DEFAULT == "CPU" else 3

REFERENCE_GRAPHS = [
    # (name, builder, max kernels)
    ("8-op elementwise chain on 4 inputs", lambda: chain8(*(realized(16, 16) for _ in range(4))), 1),
    ("(a*b).sum(1) + c", lambda: (realized(8, 16) * realized(8, 16)).sum(1) + realized(8), 1),
    ("softmax over the last axis", lambda: realized(8, 16).softmax(-1), ROW_FUSED),
    ("log_softmax over the last axis", lambda: realized(8, 16).log_softmax(-1), ROW_FUSED),
    ("layer_norm over the last axis", lambda: lt.nn.functional.layer_norm(realized(8, 16), (16,)), ROW_FUSED),
    ("softmax over a middle axis", lambda: realized(4, 8, 16).softmax(1), 3),
    ("(x - x.mean()).sum()", lambda: (lambda x: (x - x.mean()).sum())(realized(8, 16)), 2),
    ("matmul + bias + relu", lambda: (realized(8, 16) @ realized(16, 4) + realized(4)).relu(), 1),
    ("broadcast elementwise", lambda: realized(8, 1) * realized(1, 16) + realized(16), 1),
    ("sum of a sum", lambda: realized(8, 16).sum(1).sum(0), 2),
]


@pytest.mark.parametrize("name,build,limit", REFERENCE_GRAPHS, ids=[g[0] for g in REFERENCE_GRAPHS])
def test_reference_graph_kernel_counts(name, build, limit):
    t = build()
    ks = kernels(t)
    assert 1 <= len(ks) <= limit, f"{name}: {len(ks)} kernels: {ks}"
    t.realize()   # and the schedule runs


def test_elementwise_chain_is_exactly_one_kernel_and_correct():
    arrays = [np.random.default_rng(i).uniform(0.1, 1, (64,)).astype(np.float32) for i in range(4)]
    a, b, c, d = (lt.tensor(x) for x in arrays)
    t = chain8(a, b, c, d)
    assert len(kernels(t)) == 1
    na, nb, nc, nd = arrays
    want = np.sqrt(np.maximum(np.exp(na * nb + nc) * nd - na, 0)) + 1
    np.testing.assert_allclose(t.numpy(), want, rtol=1e-5)


def test_every_kernel_has_a_reason():
    x = realized(4, 8)
    t = (x.softmax(-1) @ realized(8, 3)).sum()
    for item in t.schedule():
        assert isinstance(item.reason, str) and item.reason
    reasons = {item.reason for item in t.schedule()}
    assert schedule.REASON_OUTPUT in reasons
    assert schedule.REASON_NESTED in reasons
    # a column sum broadcast down the rows would be recomputed for every row: its own kernel
    assert schedule.REASON_BROADCAST in {item.reason for item in (x / x.sum(0, keepdim=True)).schedule()}


def test_contiguous_forces_a_boundary():
    x = realized(4, 4)
    t = (x + 1).contiguous() * 2
    ks = kernels(t)
    assert len(ks) == 2
    assert ks[0].reason == schedule.REASON_CONTIGUOUS


def test_realized_tensor_is_not_recomputed():
    x = realized(4, 4)
    y = (x * 2).realize()
    t = y + 1
    assert len(kernels(t)) == 1
    assert kernels(t)[0].inputs[0].op.name == "BUFFER"


def test_equal_computations_share_one_compiled_kernel():
    realize_mod = importlib.import_module("lazytensor.realize")   # lt.realize is the function
    a = (realized(5, 7) * 3 + 1).realize()
    before = len(realize_mod._compiled)
    b = (realized(5, 7) * 3 + 1).realize()   # new data, same computation
    assert len(realize_mod._compiled) == before
    assert a.shape == b.shape


def test_explain_lists_kernels_and_reasons(capsys):
    x = realized(4, 8)
    text = lt.explain(x / x.sum(0, keepdim=True))
    assert "kernel" in text and "why:" in text
    assert schedule.REASON_BROADCAST in text


def test_shared_subexpression_is_one_node():
    x = realized(3, 3)
    assert ((x + 1) * 2).node is ((x + 1) * 2).node


@pytest.mark.parametrize("columns,stored", [(8, False), (128, True)])
def test_a_small_transform_of_a_matmul_operand_is_stored_when_read_many_times(columns, stored):
    """relu(x + b) feeding a matmul is recomputed once per output column when fused: with many
    columns (>= RECOMPUTE_REPEATS) it is stored once instead; with few it stays fused."""
    x, b = lt.randn(16, 32).realize(), lt.randn(32).realize()
    w = lt.randn(columns, 32).realize()
    items = ((x + b).relu() @ w.T).schedule()
    reasons = [item.reason for item in items]
    assert (schedule.REASON_EXPENSIVE in reasons) == stored
    out = ((x + b).relu() @ w.T).numpy()
    want = np.maximum(x.numpy() + b.numpy(), 0) @ w.numpy().T
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


def test_a_value_copied_by_contiguous_is_computed_once_for_its_other_users():
    """v = exp(a * b) is copied by contiguous() and also summed: the sum reads the copy, so the exp is
    computed in one kernel only (schedule.share_copied_values), and both results are right."""
    rng = np.random.default_rng(11)
    a, b = (rng.uniform(-1, 1, (6, 9)).astype(np.float32) for _ in range(2))
    oa, ob = lt.tensor(a), lt.tensor(b)
    value = (oa * ob).exp()
    copy, total = value.contiguous(), value.sum(0)
    items = [item for item in lt.Tensor.schedule(copy + total) if item.kind == "kernel"]
    assert [oa.node in item.inputs for item in items].count(True) == 1   # one kernel computes exp(a * b)
    lt.realize(copy, total)
    np.testing.assert_allclose(copy.numpy(), np.exp(a * b), rtol=1e-6)
    np.testing.assert_allclose(total.numpy(), np.exp(a * b).sum(0), rtol=1e-5)


def test_a_copy_of_stored_data_does_not_redirect_its_other_readers():
    """x.T.contiguous() next to x + 1: the add still reads x itself, not the transposed copy."""
    x = realized(5, 7)
    copy, plus = x.T.contiguous(), x + 1
    items = [item for item in lt.Tensor.schedule(copy.T + plus) if item.kind == "kernel"]
    assert any(inp.op.name == "BUFFER" and inp is x.node for item in items for inp in item.inputs)
    np.testing.assert_allclose((copy.T + plus).numpy(), 2 * x.numpy() + 1, rtol=1e-6)

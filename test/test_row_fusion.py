"""Row reductions fused into their consumer: the scheduler's policy (schedule.py + row_fusion.py),
the row-kernel pass list (codegen/hoist.py) and the renderer's hoisting (render/cstyle.py).
Numerical checks against torch live in test_reduce.py (test_row_reductions_*)."""
from __future__ import annotations

import numpy as np
import pytest

import lazytensor as lt
from lazytensor import schedule
from lazytensor.codegen.hoist import is_row_kernel, optimize_cpu, row_reduces
from lazytensor.codegen.lower import lower_kernel
from lazytensor.codegen.render.c import CRenderer
from lazytensor.row_fusion import classify_reduce


def realized(*shape: int) -> lt.Tensor:
    return lt.tensor(np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32))


def kernel_items(roots: list[lt.Tensor], device: str = "CPU") -> list[schedule.ScheduleItem]:
    items, _ = schedule.create_schedule([t.node for t in roots], device)
    return [it for it in items if it.kind == "kernel"]


@pytest.mark.parametrize("needed,out_axes,kind", [
    (frozenset({0, 1}), [0, 1], "inline"),          # one reduce per output element
    (frozenset({0}), [0, 1], "row"),                # softmax's max[i] under out[i, j]
    (frozenset({0, 1}), [0, 1, 2], "row"),          # layer_norm over the last axis of (B, S, D)
    (frozenset({1}), [0, 1], "broadcast"),          # a column sum under every row: recomputed per row
    (frozenset({0, 2}), [0, 1, 2], "broadcast"),    # softmax over a middle axis
    (frozenset(), [0, 1], "broadcast"),             # a full sum under every element
    (frozenset({0, ("reduce", 1, 0)}), [0, 1], "nested"),
    (frozenset({("part", 0, 0, 2)}), [0], "broadcast"),   # one factor of a merged loop only
    (frozenset({("part", 0, 0, 2), ("part", 0, 1, 2)}), [0], "inline"),
])
def test_classify_reduce(needed, out_axes, kind):
    assert classify_reduce(needed, out_axes) == kind


def test_softmax_is_one_kernel_on_the_cpu_and_three_on_gpus():
    x = realized(8, 16)
    assert len(kernel_items([x.softmax(-1)])) == 1
    # GPU renderers give every output element its own work-item: a row reduce keeps its kernel
    assert len(kernel_items([x.softmax(-1)], "CL")) == 3


def test_reduce_feeding_two_kernels_is_stored_once():
    x = realized(8, 16)
    m = x.amax(-1, keepdim=True)
    items = kernel_items([x - m, x * m])
    assert [it.reason for it in items].count(schedule.REASON_SHARED) == 1
    assert len(items) == 2   # the max, then x - m and x * m in one pass (sibling_fusion.py)


def test_bert_like_block_kernel_count():
    x, w = realized(2, 8, 16), realized(16,)
    out = lt.nn.functional.layer_norm(x, (16,), w, w).softmax(-1)
    assert len(kernel_items([out])) == 1
    np.testing.assert_allclose(out.numpy().sum(-1), 1.0, rtol=1e-5)


def test_norm_read_by_a_matmul_and_by_the_next_norm_stays_one_kernel():
    """A layer norm whose output feeds a matmul (stored for it) and, as a residual, the next norm:
    its mean and rsqrt stay inside its own kernel instead of getting kernels of their own."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    xs, ws = rng.standard_normal((2, 24, 64)).astype(np.float32), rng.standard_normal((64, 64)).astype(np.float32)
    x, w = lt.tensor(xs), lt.tensor(ws)
    F = lt.nn.functional
    with lt.no_grad():
        y = F.layer_norm(x, (64,))
        z = F.layer_norm(F.linear(y, w) + y, (64,))
        items = kernel_items([z])
    per_row = [it for it in items if tuple(it.output.shape) == (2, 24, 1)]   # a mean or an rsqrt alone
    assert per_row == [], [it.reason for it in per_row]
    ty = torch.nn.functional.layer_norm(torch.from_numpy(xs), (64,))
    want = torch.nn.functional.layer_norm(torch.nn.functional.linear(ty, torch.from_numpy(ws)) + ty, (64,))
    np.testing.assert_allclose(z.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


def _softmax_kernel(rows: int, cols: int):
    x = realized(rows, cols)
    (item,) = kernel_items([x.softmax(-1)])
    return lower_kernel(item.ast)


@pytest.mark.parametrize("rows,cols", [(4, 8), (64, 1024), (7, 127)])
def test_row_kernel_keeps_the_row_loop_outside_and_hoists_the_reduces(rows, cols):
    kernel = optimize_cpu(_softmax_kernel(rows, cols))
    assert is_row_kernel(kernel)
    (nest,) = kernel.nests
    assert [loop.size for loop in nest.loops] == [rows, cols]     # not blocked or reordered
    assert row_reduces(nest)
    source = CRenderer().render(kernel)
    inner_loop = source.index(f"{nest.loops[-1].var.arg[0]} < {cols}")
    first_reduce = source.index("acc")
    assert first_reduce < inner_loop, "the row's reduces must be computed before the inner loop"


def test_plain_reduce_kernel_is_not_a_row_kernel():
    x = realized(8, 16)
    (item,) = kernel_items([x.sum(-1)])
    assert not is_row_kernel(lower_kernel(item.ast))


def test_row_reduce_inside_a_matmul_is_stored():
    x, w = realized(8, 16), realized(16, 4)
    out = (x - x.mean(-1, keepdim=True)) @ w
    items = kernel_items([out])
    assert [it.reason for it in items].count(schedule.REASON_ROW_IN_REDUCE) == 1
    matmul = items[-1]
    assert not is_row_kernel(lower_kernel(matmul.ast))     # keeps opt.optimize's register tiles
    a, b = x.numpy().astype(np.float64), w.numpy().astype(np.float64)
    np.testing.assert_allclose(out.numpy(), (a - a.mean(-1, keepdims=True)) @ b, rtol=1e-4, atol=1e-5)

"""lt.explain and DEBUG=3: the kernels a realize would run, their boundary reasons and cost estimates."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import lazytensor as lt
from lazytensor import schedule
from lazytensor.explain import estimate_cost, explain_schedule, render_ast


def realized(*shape: int) -> lt.Tensor:
    return lt.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32)).realize()


# (description, build, expected kernels, FLOPs by formula, bytes by formula)
COST_CASES = [
    ("a + b", lambda a, b: a + b, 1, 6 * 7, 3 * 6 * 7 * 4),
    ("a * b + a", lambda a, b: a * b + a, 1, 2 * 6 * 7, 3 * 6 * 7 * 4),
    ("sum(a)", lambda a, b: a.sum(), 1, 6 * 7, 6 * 7 * 4 + 4),
    ("a @ b.T", lambda a, b: a @ b.T, 1, 2 * 6 * 6 * 7, 2 * 6 * 7 * 4 + 6 * 6 * 4),
]


@pytest.mark.parametrize("name,build,kernels,flops,nbytes", COST_CASES, ids=[c[0] for c in COST_CASES])
def test_cost_estimates_match_formulas(name, build, kernels, flops, nbytes):
    items = build(realized(6, 7), realized(6, 7)).schedule()
    assert len(items) == kernels
    assert estimate_cost(items[0]) == (flops, nbytes)


def test_explain_softmax_names_every_boundary_and_dataflow(capsys):
    # over dim 0 (a column softmax) the reduces are broadcast along an outer loop: 3 kernels
    x = realized(4, 8)
    text = lt.explain(x.softmax(0))
    assert capsys.readouterr().out.strip() == text.strip()     # printed and returned
    items = x.softmax(0).schedule()
    assert text.splitlines()[0] == f"schedule: {len(items)} kernel(s), 0 copy(ies)"
    for k, item in enumerate(items):
        assert f"[{k}] kernel -> float32{list(item.output.shape)}" in text
        assert f"why:    {item.reason}" in text
    assert schedule.REASON_BROADCAST in text and schedule.REASON_OUTPUT in text
    assert "from buffer" in text and "from [0]" in text   # inputs say where they come from
    assert "read by: [1]" in text
    assert "total: ~" in text


def test_explain_several_tensors_schedules_them_together():
    x = realized(5, 3)
    s, m = x.sum(), x.max()
    together = lt.explain(s, m)
    assert together.splitlines()[0].startswith("schedule: 2 kernel(s)")
    assert together.count(schedule.REASON_OUTPUT) == 2


def test_explain_realized_tensor_has_nothing_to_do():
    text = lt.explain(realized(3))
    assert "0 kernel(s)" in text and "already realized" in text


def test_explain_needs_a_tensor():
    with pytest.raises(TypeError, match="explain"):
        lt.explain()


def test_render_ast_lists_each_op_once_sources_first():
    (item,) = (realized(3, 4).exp2() * 2).schedule()
    lines = render_ast(item.ast)
    assert lines[0].startswith("%0 = ")
    ops = [line.split(" = ")[1].split()[0] for line in lines]
    assert {"define_buf", "exp2", "mul", "const"} <= set(ops)
    assert "exp2" in explain_schedule([item], show_ast=True)


def test_debug_3_prints_reasons_and_asts_during_realize():
    program = "import lazytensor as lt; x = lt.arange(6).float(); print((x - x.max()).numpy())"
    env = dict(os.environ, DEBUG="3")
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
    for piece in ("schedule: 2 kernel(s)", "why:", schedule.REASON_BROADCAST, "ast:",
                  "define_buf input slot 1",
                  "reduce max over axes (0,)", "realize: 2 kernel(s)"):
        assert piece in out.stdout, f"DEBUG=3 output lacks {piece!r}:\n{out.stdout}"

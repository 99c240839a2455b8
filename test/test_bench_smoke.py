"""Smoke test of the benchmark harness (bench/): every row at tiny sizes, one round, no timing checks.

What it really checks: in every row our result equals each peer's result (NumPy, PyTorch) on the
same inputs — the benchmark compares like with like — and the harness's checker can fail.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repo root holds the bench package

torch = pytest.importorskip("torch")

from bench import rows  # noqa: E402
from bench.report import markdown_report, table  # noqa: E402
from bench.timing import OURS, Impl, compare, measure_case  # noqa: E402

NUMERIC_ROWS = ["elementwise", "sum", "softmax", "matmul", "conv2d", "mlp", "tiny", "triad", "fma", "bert", "gcn", "gat"]


def tiny_config() -> rows.Config:
    return rows.Config(scale="tiny", rounds=1, warmup=1, threads=1, torch_compile=False)


@pytest.mark.parametrize("name", NUMERIC_ROWS)
def test_row_results_agree_with_peers(name):
    got = rows.ROWS[name](tiny_config())
    ran = [m for m in got if m.times]
    assert any(m.impl == OURS for m in ran), f"{name}: our implementation did not run: {got}"
    assert len(ran) >= 2, f"{name}: no peer ran beside ours: {got}"
    for m in ran:
        assert m.note == "" or not m.note.startswith("failed"), f"{name}/{m.impl}: {m.note}"
        assert m.check in ("ok", "ref"), f"{name} {m.case} {m.impl}: {m.check}"
        assert m.times and min(m.times) >= 0
    assert table(got).count("\n") == len(got) + 1


def test_conv_im2col_peer_matches_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    np.testing.assert_allclose(rows.np_conv2d_im2col(x, w, 1), want, rtol=1e-4, atol=1e-5)


def test_checker_reports_a_wrong_result():
    impls = [Impl(OURS, lambda: np.arange(4.0) + 1e-2), Impl("numpy", lambda: np.arange(4.0))]
    got = measure_case("demo", "wrong on purpose", impls, rounds=2, warmup=1)
    assert got[0].check.startswith("MISMATCH") and got[1].check == "ref"
    assert compare(np.zeros(3), np.zeros(4), 1e-4, 1e-5).startswith("MISMATCH shape")


def test_failing_peer_is_a_note_not_a_crash():
    def broken() -> None:
        raise RuntimeError("no such op")

    impls = [Impl(OURS, lambda: np.ones(2)), Impl("torch", broken)]
    got = measure_case("demo", "peer fails", impls, rounds=1, warmup=1)
    assert got[1].times == [] and got[1].note.startswith("failed: RuntimeError")
    section = {"threads": 1, "rounds": 1, "scale": "tiny", "measurements": got}
    report = markdown_report({"cpu": "test"}, [section])
    assert "failed: RuntimeError" in report and "| demo |" in report


def _m(row: str, case: str, impl: str, seconds: float, work: float | None = None) -> "Measurement":
    from bench.timing import Measurement
    return Measurement(row, case, impl, times=[seconds], work=work, work_unit="GB/s" if work else "")


def test_targets_are_ratios_of_the_run_with_misses_marked():
    """Each issue-4 target's figure is computed from the run's medians; a miss says so, a missing peer
    says that instead of passing."""
    from bench.targets import best_peer_medians, evaluate, targets_table
    one_thread = [
        _m("elementwise", "8 ops", OURS, 0.020, work=1e9), _m("elementwise", "8 ops", "torch.compile", 0.050),
        _m("machine: triad", "a = b + s*c", OURS, 0.010, work=0.25e9),
        _m("matmul", "512^3 f32", OURS, 0.004), _m("matmul", "512^3 f32", "numpy", 0.003),
        _m("matmul", "1024^3 f32", OURS, 0.020), _m("matmul", "1024^3 f32", "numpy", 0.021),
        _m("mlp train step", "784 Adam, lt.jit", OURS, 0.003), _m("mlp train step", "784 Adam, lt.jit", "torch", 0.005),
        _m("mlp train step", "784 Adam, lt.jit", "tinygrad", 0.012),
        _m("(a+b).sum() 2x2", "per call, .item()", OURS, 40e-6),
        _m("(a+b).sum() 2x2", "per call, .item(), lt.jit", OURS, 20e-6),
        _m("fresh process", "import", OURS, 0.5),
    ]
    two_threads = [_m("mlp train step", "784 Adam, lt.jit", "torch", 0.002)]   # torch's better figure
    got = {(name, case): (figure, met) for name, case, figure, met in
           evaluate(one_thread, best_peer_medians([one_thread, two_threads]))}
    assert got[("elementwise ≥ 2x torch.compile", "8 ops")] == ("2.50x", True)
    assert got[("elementwise ≥ 70% of triad bandwidth", "8 ops")] == ("200% (50.0 of 25.0 GB/s)", True)
    assert got[("matmul ≥ NumPy", "512^3 f32")] == ("0.75x", False)
    assert got[("matmul ≥ NumPy", "1024^3 f32")] == ("1.05x", True)
    assert got[("MLP step (lt.jit) within 1.2x of torch's best", "784 Adam, lt.jit")] == ("1.50x", False)
    assert got[("MLP step (lt.jit) ≥ 5x tinygrad", "784 Adam, lt.jit")] == ("4.00x", False)
    assert got[("small op, lt.jit, ≤ 5x torch", "per call, .item(), lt.jit")] == ("torch not measured", None)
    assert got[("small op, no jit, ≤ 50 µs", "per call, .item()")] == ("40 µs", True)
    assert got[("fresh process ≤ 0.4 s", "import")] == ("0.5 s", False)
    assert ("sum ≥ NumPy", "") not in got                  # rows the run did not measure are left out
    table = targets_table(one_thread)
    assert "| matmul ≥ NumPy | 512^3 f32 | 0.75x | **missed** |" in table
    assert "| small op, lt.jit, ≤ 5x torch | per call, .item(), lt.jit | torch not measured | no peer |" in table

"""lt.Profiler: per-kernel launches, the sorted table, and a chrome trace Perfetto can open."""
from __future__ import annotations

import json
import random

import numpy as np

import lazytensor as lt


def realized(*shape: int, seed: int = 0) -> lt.Tensor:
    return lt.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32)).realize()


def softmax_matmul(a: lt.Tensor, b: lt.Tensor) -> lt.Tensor:
    """A column softmax (3 kernels: its reduces broadcast along an outer loop), a matmul, a relu."""
    return (a.softmax(0) @ b).relu()


def test_profiler_sees_every_launch_and_results_are_unchanged():
    a, b = realized(16, 32), realized(32, 8, seed=1)
    planned = len(softmax_matmul(a, b).schedule())
    with lt.count_kernels() as counter, lt.Profiler() as prof:
        out = softmax_matmul(a, b).numpy()
    sa = np.exp(a.numpy() - a.numpy().max(0, keepdims=True))
    expected = np.maximum((sa / sa.sum(0, keepdims=True)) @ b.numpy(), 0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert len(prof.launches) == counter.kernels == planned >= 3
    assert abs(prof.total_seconds - counter.seconds) < 1e-9
    reasons = {launch.reason for launch in prof.launches}
    assert "output of realize()" in reasons
    assert all(launch.seconds > 0 and launch.bytes_moved > 0 for launch in prof.launches)


def test_flops_and_bandwidth_follow_the_formulas():
    a, b = realized(24, 40), realized(40, 16, seed=1)
    with lt.Profiler() as prof:
        (a @ b).realize()
    (launch,) = prof.launches
    assert launch.flops == 2 * 24 * 40 * 16
    assert launch.bytes_moved == (24 * 40 + 40 * 16 + 24 * 16) * 4
    assert np.isclose(launch.gflops, launch.flops / launch.seconds / 1e9)
    assert np.isclose(launch.gbytes_per_second, launch.bytes_moved / launch.seconds / 1e9)


def test_compile_then_in_memory():
    x = realized(7, 5)
    scale = random.Random().uniform(2.0, 3.0)   # a constant no earlier run compiled
    with lt.Profiler() as first:
        (x * scale + 1).realize()
    with lt.Profiler() as second:
        (x * scale + 1).realize()
    assert first.launches[0].compile_status in ("compiled", "disk cache")
    assert first.launches[0].compile_seconds > 0
    assert second.launches[0].compile_status == "in memory"
    assert second.launches[0].compile_seconds == 0.0


def test_table_is_sorted_by_total_time_and_names_kernels(capsys):
    a, b = realized(16, 32), realized(32, 8, seed=1)
    with lt.Profiler() as prof:
        for _ in range(3):
            softmax_matmul(a, b).realize()
            a = (a + 1).realize()
    text = prof.table()
    assert capsys.readouterr().out.strip() == text.strip()
    rows = prof.summaries()
    assert [r.seconds for r in rows] == sorted((r.seconds for r in rows), reverse=True)
    assert sum(r.launches for r in rows) == len(prof.launches)
    for row in rows:
        assert row.name[:32] in text
    assert "GFLOP/s" in text and "GB/s" in text and "compile" in text
    assert f"{len(prof.launches)} launch(es)" in text
    limited = prof.table(row_limit=1)
    assert f"... {len(rows) - 1} more kernel(s)" in limited


def test_chrome_trace_is_valid_trace_event_json(tmp_path):
    a, b = realized(16, 32), realized(32, 8, seed=1)
    with lt.Profiler() as prof:
        softmax_matmul(a, b).realize()
        (a * 2).sum().realize()
    path = prof.export_chrome_trace(tmp_path / "trace.json")
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel"]
    realizes = [e for e in events if e.get("cat") == "realize"]
    assert len(kernels) == len(prof.launches) >= 4
    assert len(realizes) == 2
    for e in kernels + realizes:
        assert e["ph"] == "X" and e["dur"] >= 0 and e["ts"] >= 0
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
    starts = [e["ts"] for e in kernels]
    assert starts == sorted(starts)
    # every kernel runs inside the realize that launched it
    for e in kernels:
        assert any(r["ts"] <= e["ts"] + 1 and e["ts"] + e["dur"] <= r["ts"] + r["dur"] + 1 for r in realizes)
    assert {"reason", "flops", "bytes", "GFLOP/s", "GB/s"} <= set(kernels[0]["args"])


def test_profiler_stops_listening_after_the_block():
    x = realized(3, 3)
    with lt.Profiler() as prof:
        (x + 1).realize()
    (x + 2).realize()
    assert len(prof.launches) == 1

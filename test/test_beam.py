"""BEAM search (lazytensor/beam.py): searched kernels stay exact, the winner is cached on disk and
reused without searching again. The knob grid is narrowed here so each search compiles a handful
of variants; nothing here asserts a time."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import lazytensor as lt
from lazytensor import beam, config
from lazytensor.codegen.opt import HEURISTIC, OptChoices


@pytest.fixture
def small_beam(monkeypatch, tmp_path):
    monkeypatch.setenv("LAZYTENSOR_CACHE", str(tmp_path))
    monkeypatch.setattr(config, "BEAM", 2)
    monkeypatch.setattr(beam, "KNOB_VALUES", {"tile_rows": (None, 1, 2), "parallel": (True, False)})
    monkeypatch.setattr(beam, "TIMED_RUNS", 1)
    return tmp_path


def test_neighbours_change_exactly_one_knob():
    for other in beam.neighbours(HEURISTIC):
        changed = [f.name for f in dataclasses.fields(OptChoices)
                   if getattr(other, f.name) != getattr(HEURISTIC, f.name)]
        assert len(changed) == 1
    assert len(set(beam.neighbours(HEURISTIC))) == len(beam.neighbours(HEURISTIC))


@pytest.mark.parametrize("m,k,n", [(37, 40, 32), (16, 300, 48)])
def test_searched_matmul_is_exact_and_cached(small_beam, m, k, n):
    rng = np.random.default_rng(m)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    before = beam.searches_run
    got = (lt.tensor(a) @ lt.tensor(b)).numpy()
    np.testing.assert_allclose(got, a @ b, rtol=1e-4, atol=1e-4)
    searched = beam.searches_run - before
    assert searched >= 1                                  # the packing copy and the matmul kernel
    saved = list((small_beam / "beam").glob("*.json"))
    assert len(saved) == searched
    for path in saved:                                    # a stored winner is one of the grid's settings
        choices = OptChoices(**json.loads(path.read_text()))
        assert choices.tile_rows in (None, 1, 2) and choices.parallel in (True, False)
    # a new process would find the winners on disk: clear the in-memory program table and rerun
    import sys
    sys.modules["lazytensor.realize"]._compiled.clear()
    again = (lt.tensor(a) @ lt.tensor(b)).numpy()
    assert beam.searches_run - before == searched        # nothing searched twice
    np.testing.assert_array_equal(again, got)


def test_a_variant_with_a_different_result_never_wins(small_beam, monkeypatch):
    """If every variant but the heuristic disagreed with the heuristic's output, the heuristic wins."""
    monkeypatch.setattr(beam, "_same_output", lambda out, ref: out is ref)
    x = lt.tensor(np.ones((40, 64), np.float32))
    w = lt.tensor(np.ones((64, 32), np.float32))
    *_, item = (x @ w).schedule()
    from lazytensor.codegen.lower import lower_kernel
    assert beam.search(lower_kernel(item.ast), 2) == HEURISTIC

"""The digits example trains for real: a shortened run (3 epochs) must reach 90% test accuracy."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

pytest.importorskip("sklearn", reason="the digits dataset ships with scikit-learn")

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_digits.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_short_digits_training_reaches_90_percent():
    result = _load_example().train(epochs=3, progress=False)
    assert result["test_accuracy"] >= 0.90, result
    assert result["steps"] == 3 * (1438 // 64)
    assert 0 < result["kernels_per_step"] < 80, result

"""The disk compile cache: a second process running the same program compiles nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROGRAM = r"""
import json, lazytensor as lt
from lazytensor.runtime.device import get_runtime
x = lt.arange(12).reshape(3, 4).float()
y = ((x * 2 + 1).relu().sum(1) / 3).numpy()
print(json.dumps({"compiles": get_runtime("CPU").compiles, "value": y.tolist()}))
"""


def run_fresh_process(cache: str) -> dict:
    env = dict(os.environ, LAZYTENSOR_CACHE=cache)
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_compiles_nothing(tmp_path):
    first = run_fresh_process(str(tmp_path))
    second = run_fresh_process(str(tmp_path))
    assert first["compiles"] >= 1
    assert second["compiles"] == 0
    assert first["value"] == second["value"]
    # rows of 2x+1 for x = 0..11, summed, over 3
    assert first["value"] == pytest.approx([16 / 3, 48 / 3, 80 / 3], rel=1e-6)

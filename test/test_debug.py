"""DEBUG levels print what DESIGN.md promises, and compile failures point at the source."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lazytensor.runtime.cpu import CompileError
from lazytensor.runtime.device import get_runtime

PROGRAM = "import lazytensor as lt; x = lt.arange(6).float(); print((x.exp() - x.sum()).numpy())"


def run_with_debug(level: int) -> str:
    env = dict(os.environ, DEBUG=str(level))
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True)
    return out.stdout


@pytest.mark.parametrize("level,expected", [
    (1, ["realize: 2 kernel(s)"]),
    (2, ["us", "GB/s", "reduce result is broadcast"]),
    (3, ["schedule: 2 kernel(s)", "why:", "fused:"]),
    (4, ["--- source of", "for (long long"]),
])
def test_debug_levels(level, expected):
    text = run_with_debug(level)
    for piece in expected:
        assert piece in text, f"DEBUG={level} output lacks {piece!r}:\n{text}"


def test_no_debug_output_by_default():
    env = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True)
    assert "kernel" not in out.stdout


def test_compile_error_shows_kernel_name_and_numbered_source():
    with pytest.raises(CompileError) as info:
        get_runtime("CPU").compile("void broken_kernel(float* b0) {\n  b0[0] = ;\n}\n", "broken_kernel", 1)
    message = str(info.value)
    assert "broken_kernel" in message
    assert "   2 |   b0[0] = ;" in message

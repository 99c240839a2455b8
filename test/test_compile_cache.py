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


def _fresh_cpu_runtime(monkeypatch, tmp_path, template):
    """A CPU runtime of its own with an empty disk cache; template None forces the compiler driver's link."""
    from lazytensor.runtime.cpu import CPURuntime
    monkeypatch.setenv("LAZYTENSOR_CACHE", str(tmp_path))
    rt = CPURuntime()
    if template is None:
        rt._link_template = None
    return rt


KERNEL = """#include <math.h>
#include <stdint.h>
void scaled_exp(float* restrict out, const float* restrict a) {
  #pragma omp parallel for if(0)
  for (int64_t i = 0; i < 11; i++) out[i] = expf(a[i]) * 2.0f;
}
"""


@pytest.mark.parametrize("link", ["direct", "driver"])
def test_kernel_links_and_runs_either_way(monkeypatch, tmp_path, link):
    """The direct linker (runtime/cpu_linker.py) and the compiler driver both give a library that loads,
    resolves libm (and libgomp) and computes the same values."""
    import numpy as np
    rt = _fresh_cpu_runtime(monkeypatch, tmp_path, "auto" if link == "direct" else None)
    if link == "direct" and rt.link_template is None:
        pytest.skip("this compiler's link command could not be read: the driver links (covered below)")
    program, cached = rt.compile(KERNEL, "scaled_exp", 2)
    assert not cached and rt.compiles == 1
    a = np.linspace(-3, 3, 11, dtype=np.float32)
    out = np.empty_like(a)
    program(out, a)
    np.testing.assert_allclose(out, np.exp(a) * 2, rtol=1e-6)


def test_direct_link_template_has_no_placeholders_left(tmp_path):
    """The template names the object and output by placeholder only, and carries no LTO plugin arguments."""
    from lazytensor.runtime import cpu_linker
    from lazytensor.runtime.cpu import BASE_FLAGS, find_compiler
    template = cpu_linker.fast_link_template(find_compiler(), BASE_FLAGS, ["-lm"])
    if template is None:
        pytest.skip("this compiler's link command could not be read")
    assert template.count(cpu_linker.OBJECT_SLOT) == 1 and template.count(cpu_linker.OUTPUT_SLOT) == 1
    assert not any(a.startswith("-plugin") for a in template)


def test_compile_error_names_the_kernel(monkeypatch, tmp_path):
    from lazytensor.runtime.cpu import CompileError
    rt = _fresh_cpu_runtime(monkeypatch, tmp_path, "auto")
    with pytest.raises(CompileError, match="broken_kernel"):
        rt.compile("void broken_kernel(float* out) { out[0] = undefined_name; }\n", "broken_kernel", 1)

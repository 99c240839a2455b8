"""The GPU's tiled matmul path (codegen/gpu.py `plan_tiled_matmul`): which nests take it, and its
results against NumPy on OpenCL (PoCL runs it on the CPU). Shapes that the 16x16 tile does not
divide check the zero padding of the local-memory tiles and the guarded stores."""
from __future__ import annotations

import numpy as np
import pytest
from lazytensor.runtime.device import DeviceUnavailable, get_runtime

import lazytensor as lt


def _cl_available() -> bool:
    try:
        get_runtime("CL")
        return True
    except DeviceUnavailable:
        return False


needs_cl = pytest.mark.skipif(not _cl_available(), reason="no OpenCL platform (pip install 'lazytensor[cl]')")


def _gpu_kernels(t: lt.Tensor) -> list:
    """The GPU-optimized LoopKernels of t's schedule (nothing runs)."""
    from lazytensor.codegen.gpu import optimize_gpu
    from lazytensor.codegen.lower import lower_kernel
    return [optimize_gpu(lower_kernel(item.ast)) for item in t.schedule() if item.kind == "kernel"]


def _modes(t: lt.Tensor) -> list[str]:
    from lazytensor.codegen.gpu import plan_nest
    return [plan_nest(nest).mode for k in _gpu_kernels(t) for nest in k.nests]


def _ones(*shape: int) -> lt.Tensor:
    return lt.tensor(np.ones(shape, dtype=np.float32))


@pytest.mark.parametrize("name,build,want", [
    ("matmul", lambda: _ones(17, 33) @ _ones(33, 9), "tiled_matmul"),
    ("batched", lambda: _ones(3, 8, 5) @ _ones(3, 5, 4), "tiled_matmul"),
    ("batch_times_matrix", lambda: _ones(3, 8, 5) @ _ones(5, 4), "tiled_matmul"),
    ("a_transposed", lambda: _ones(33, 17).T @ _ones(33, 9), "tiled_matmul"),
    ("matmul_relu_bias", lambda: (_ones(7, 7) @ _ones(7, 7)).relu() + _ones(7), "tiled_matmul"),
    ("matrix_vector", lambda: _ones(64, 32) @ _ones(32), "threads"),
    ("row_sum", lambda: _ones(64, 32).sum(1), "threads"),
    ("few_long_dots", lambda: _ones(2, 4096) @ _ones(4096, 2), "group_reduce"),
    ("elementwise", lambda: _ones(16, 16) * 2, "threads"),
])
def test_tiled_mode_is_chosen_for_matmuls_only(name, build, want):
    assert _modes(build())[-1] == want


def test_tiled_kernel_stages_operands_in_local_memory():
    from lazytensor.codegen.render.cuda import CUDARenderer
    from lazytensor.codegen.render.opencl import OpenCLRenderer
    (kernel,) = _gpu_kernels(_ones(17, 33) @ _ones(33, 9))
    assert any(note.startswith("gpu tiled matmul 16x16") for note in kernel.notes)
    cl = OpenCLRenderer().render(kernel)
    assert cl.count("__local ") == 2 and cl.count("barrier(CLK_LOCAL_MEM_FENCE)") == 2
    cuda = CUDARenderer().render(kernel)
    assert cuda.count("__shared__ ") == 2 and cuda.count("__syncthreads()") == 2
    (launch,) = OpenCLRenderer().launches(kernel)
    assert (launch.global_size, launch.local_size) == (2 * 1 * 256, 256)   # 2 row blocks x 1 column block


@pytest.mark.parametrize("m,n,want", [(17, 9, (1, 1)), (40, 70, (2, 4)), (127, 130, (4, 4)),
                                      (64, 31, (4, 1))])
def test_register_tile_per_work_item_follows_the_output_size(m, n, want):
    from lazytensor.codegen.gpu import plan_tiled_matmul
    (kernel,) = _gpu_kernels(_ones(m, 8) @ _ones(8, n))
    tiled = plan_tiled_matmul(kernel.nests[0])
    assert (tiled.rows_per_item, tiled.cols_per_item) == want


def test_noopt_keeps_the_thread_per_output_path(monkeypatch):
    from lazytensor import config
    monkeypatch.setattr(config, "NOOPT", True)
    assert _modes(_ones(17, 33) @ _ones(33, 9)) == ["threads"]


def _operands(case: str, n: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    if dtype == "int64":
        return rng.integers(-9, 9, (n, n + 3)), rng.integers(-9, 9, (n + 3, n))
    if case == "batched":
        a, b = rng.standard_normal((3, n, n + 2)), rng.standard_normal((3, n + 2, n))
        return a.astype(dtype), b.astype(dtype)
    return rng.standard_normal((n, n + 3)).astype(dtype), rng.standard_normal((n + 3, n)).astype(dtype)


LAYOUTS = {   # how the operands reach the kernel: row-major, or read through a transposed view
    "plain": lambda x, y: x @ y,
    "a_T": lambda x, y: x.T.contiguous().T @ y,
    "b_T": lambda x, y: x @ y.T.contiguous().T,
    "batched": lambda x, y: x @ y,
    "scaled_a": lambda x, y: (x * 3 + 1) @ y,   # a computed operand, fused: no fma, acc += x * y
}
CASES = [("plain", n, dt) for n, dt in [(1, "float32"), (7, "float64"), (16, "float32"), (17, "float64"),
                                        (127, "float32"), (130, "float64")]]
CASES += [("a_T", 17, "float32"), ("a_T", 130, "float64"), ("b_T", 17, "float64"), ("b_T", 127, "float32"),
          ("batched", 17, "float32"), ("batched", 130, "float64"), ("plain", 33, "int64"),
          ("scaled_a", 20, "float64")]


@needs_cl
@pytest.mark.parametrize("case,n,dtype", CASES)
def test_tiled_matmul_on_cl_matches_numpy(case, n, dtype):
    a, b = _operands(case, n, dtype)
    out = LAYOUTS[case](lt.tensor(a, device="CL"), lt.tensor(b, device="CL"))
    assert _modes(out)[-1] == ("tiled_matmul" if n > 1 else "threads")
    got = out.numpy()
    if dtype == "int64":
        np.testing.assert_array_equal(got, a @ b)
        return
    a64 = a.astype(np.float64) * 3 + 1 if case == "scaled_a" else a.astype(np.float64)
    want = a64 @ b.astype(np.float64)
    tol = 1e-4 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(a.shape[-1]))


@needs_cl
def test_tiled_matmul_epilogue_on_cl():
    rng = np.random.default_rng(5)
    a, b, bias = rng.standard_normal((19, 40)), rng.standard_normal((40, 70)), rng.standard_normal(70)
    x, y, z = (lt.tensor(v, device="CL") for v in (a, b, bias))
    got = ((x @ y).relu() + z).numpy()
    np.testing.assert_allclose(got, np.maximum(a @ b, 0) + bias, rtol=1e-12, atol=1e-12)

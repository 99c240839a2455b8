"""Devices: selection (env vars, device=, Tensor.to), transfers, cross-device errors, missing
dependencies, and the GPU launch modes (thread per output, work-group reductions, serial scatter)
checked against NumPy on OpenCL (PoCL runs it on the CPU). CUDA cannot run here; its compile
path is covered by test_cuda_compile.py."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from lazytensor.runtime import device as device_module
from lazytensor.runtime.device import DeviceUnavailable, canonical_device, get_runtime

import lazytensor as lt
from lazytensor import config


def _cl_available() -> bool:
    try:
        get_runtime("CL")
        return True
    except DeviceUnavailable:
        return False


needs_cl = pytest.mark.skipif(not _cl_available(), reason="no OpenCL platform (pip install 'lazytensor[cl]')")


# ---- names and environment selection ----

@pytest.mark.parametrize("name,want", [("cpu", "CPU"), ("CPU:0", "CPU"), ("cl", "CL"), ("opencl", "CL"),
                                       ("OpenCL:1", "CL"), ("cuda", "CUDA"), ("gpu", "CUDA")])
def test_device_names_are_canonical(name, want):
    assert canonical_device(name) == want


def test_unknown_device_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown device 'tpu'.*CL.*CPU.*CUDA"):
        canonical_device("tpu")


@pytest.mark.parametrize("env,want", [({}, "CPU"), ({"CPU": "1"}, "CPU"), ({"CL": "1"}, "CL"),
                                      ({"CUDA": "1"}, "CUDA"), ({"CL": "0"}, "CPU"), ({"CL": ""}, "CPU"),
                                      ({"CL": "1", "CPU": "0"}, "CL")])
def test_env_selects_the_default_device(monkeypatch, env, want):
    for name in config.DEVICE_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert config.default_device() == want


def test_two_devices_in_env_is_an_error(monkeypatch):
    monkeypatch.setenv("CPU", "1")
    monkeypatch.setenv("CL", "1")
    monkeypatch.delenv("CUDA", raising=False)
    with pytest.raises(RuntimeError, match=r"CPU=1, CL=1.*set only one"):
        config.default_device()


# ---- missing dependencies fail with what to install ----

@pytest.fixture
def fresh_registry(monkeypatch):
    """Forget started runtimes (and their modules) so a device starts again inside the test."""
    monkeypatch.setattr(device_module, "_runtimes", {})
    for mod in ("lazytensor.runtime.opencl", "lazytensor.runtime.cuda"):
        monkeypatch.delitem(sys.modules, mod, raising=False)


@pytest.mark.parametrize("device,module,hint", [("CL", "pyopencl", "pocl-binary-distribution"),
                                                ("CUDA", "pycuda", "lazytensor\\[cuda\\]")])
def test_missing_python_module_says_what_to_install(monkeypatch, fresh_registry, device, module, hint):
    monkeypatch.setitem(sys.modules, module, None)     # import fails as if not installed
    with pytest.raises(DeviceUnavailable, match=rf"device {device} needs the Python module {module}.*{hint}"):
        get_runtime(device)
    with pytest.raises(DeviceUnavailable):
        lt.tensor([1.0, 2.0], device=device)


@needs_cl
def test_no_opencl_platform_says_what_to_install(monkeypatch, fresh_registry):
    import pyopencl
    monkeypatch.setattr(pyopencl, "get_platforms", lambda: [])
    with pytest.raises(DeviceUnavailable, match=r"no OpenCL platform.*pip install pocl-binary-distribution"):
        get_runtime("CL")


# ---- transfers and cross-device errors ----

TRANSFER_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
                   "float64"]


@needs_cl
@pytest.mark.parametrize("dtype", TRANSFER_DTYPES)
def test_to_device_and_back_keeps_every_bit(dtype):
    rng = np.random.default_rng(1)
    host = rng.uniform(-100, 100, (3, 5)).astype(np.float32)
    x = lt.tensor(host, device="CPU").to(getattr(lt, dtype))
    on_cl = x.to("CL")
    assert on_cl.device == "CL" and on_cl.dtype == x.dtype
    back = on_cl.to("cpu")
    assert back.device == "CPU"
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    np.testing.assert_array_equal(on_cl.numpy(), x.numpy())


@needs_cl
def test_lazy_graph_moves_and_keeps_computing_on_the_target():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = lt.tensor(a, device="CPU") * 2 + 1            # still lazy when moved
    y = (x.to("CL").exp().sum(1)).to("CPU") - 1
    np.testing.assert_allclose(y.numpy(), np.exp(a * 2 + 1).sum(1) - 1, rtol=1e-5)
    assert y.device == "CPU"


@needs_cl
def test_schedule_records_the_device_copy():
    x = lt.tensor(np.ones(4, dtype=np.float32), device="CPU")
    moved = x.to("CL") + 1
    kinds = [item.kind for item in moved.schedule()]
    assert kinds == ["copy", "kernel"], kinds
    np.testing.assert_array_equal(moved.numpy(), np.full(4, 2.0, dtype=np.float32))


@needs_cl
@pytest.mark.parametrize("op", ["add", "mul", "matmul", "where", "cat"])
def test_ops_across_devices_name_both_devices(op):
    a = lt.ones(2, 2, device="CPU")
    b = lt.ones(2, 2, device="CL")
    fns = {"add": lambda: a + b, "mul": lambda: a * b, "matmul": lambda: a @ b,
           "where": lambda: lt.where(a > 0, a, b), "cat": lambda: lt.cat([a, b])}
    with pytest.raises(RuntimeError, match=r"(CPU and CL|CL and CPU)"):
        fns[op]().numpy()


@needs_cl
def test_default_device_setting_places_new_tensors(monkeypatch):
    monkeypatch.setattr(lt.Device, "_value", "CL")
    assert lt.Device.DEFAULT == "CL"
    assert lt.tensor([1, 2]).device == "CL"
    assert lt.zeros(3).device == "CL"
    assert "device='CL'" in repr(lt.tensor([1.0]))


@needs_cl
def test_module_to_device_trains_there():
    lt.manual_seed(0)
    model = lt.nn.Linear(4, 2).to("CL")
    assert all(p.device == "CL" for p in model.parameters())
    x = lt.tensor(np.ones((3, 4), dtype=np.float32), device="CL")
    loss = model(x).square().mean()
    loss.backward()
    assert model.weight.grad.device == "CL"
    w, b = model.weight.to("CPU").numpy(), model.bias.to("CPU").numpy()
    out = np.ones((3, 4), dtype=np.float32) @ w.T + b
    np.testing.assert_allclose(model.weight.grad.numpy(), (2 * out / out.size).T @ np.ones((3, 4)), rtol=1e-5)


# ---- GPU launch modes, against NumPy ----

def _launch_modes(t: lt.Tensor) -> list[str]:
    from lazytensor.codegen.gpu import optimize_gpu, plan_nest
    from lazytensor.codegen.lower import lower_kernel
    modes = []
    for item in t.schedule():
        if item.kind == "kernel":
            modes += [plan_nest(n).mode for n in optimize_gpu(lower_kernel(item.ast)).nests]
    return modes


REDUCTIONS = [
    ("sum_all", lambda x: x.sum(), lambda a: a.sum()),
    ("max_all", lambda x: x.max(), lambda a: a.max()),
    ("mean_rows", lambda x: x.reshape(16, -1).mean(1), lambda a: a.reshape(16, -1).mean(1)),
    ("sum_cols", lambda x: x.reshape(-1, 16).sum(0), lambda a: a.reshape(-1, 16).sum(0)),
    ("norm", lambda x: x.square().sum().sqrt(), lambda a: np.sqrt((a * a).sum())),
    ("argmax", lambda x: x.argmax(), lambda a: a.argmax()),
    ("logsumexp_rows", lambda x: x.reshape(8, -1).logsumexp(1),
     lambda a: np.log(np.exp(a.reshape(8, -1)).sum(1))),
    ("any", lambda x: (x > 3.5).any(), lambda a: (a > 3.5).any()),
    ("prod_small", lambda x: (x[:64] * 0.01 + 1).prod(), lambda a: (a[:64] * 0.01 + 1).prod()),
]


@needs_cl
@pytest.mark.parametrize("n", [1008, 1 << 15, 16 * 3087])
@pytest.mark.parametrize("name,ours,ref", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reductions_on_cl_match_numpy(name, ours, ref, n):
    a = np.random.default_rng(n).uniform(-4, 4, n)
    got = ours(lt.tensor(a, device="CL")).numpy()
    np.testing.assert_allclose(got, ref(a), rtol=1e-10, atol=1e-10)


def test_launch_mode_choice():
    big = lt.tensor(np.ones(1 << 16, dtype=np.float32))
    assert _launch_modes(big.sum()) == ["group_reduce"]
    assert _launch_modes(big * 2) == ["threads"]
    assert _launch_modes(big.reshape(256, 256).sum(1)) == ["threads"]   # enough outputs already
    rows = lt.tensor(np.ones((4, 4096), dtype=np.float32))
    assert _launch_modes(rows.sum(1)) == ["group_reduce"]
    a, b = lt.tensor(np.ones((64, 32), dtype=np.float32)), lt.tensor(np.ones((32, 48), dtype=np.float32))
    assert _launch_modes(a @ b)[-1] == "tiled_matmul"   # local-memory tiles (test_gpu_tiles.py)
    idx = lt.tensor(np.array([0, 1, 0]))
    scatter = lt.zeros(2).scatter_add(0, idx, lt.ones(3))
    assert _launch_modes(scatter)[-1] == "serial"


@needs_cl
def test_scatter_add_with_colliding_targets_on_cl():
    idx = np.array([0, 3, 0, 1, 3, 3])
    src = np.arange(6, dtype=np.float64)
    got = lt.zeros(5, dtype=lt.float64, device="CL").scatter_add(0, lt.tensor(idx, device="CL"),
                                                                 lt.tensor(src, device="CL"))
    want = np.zeros(5)
    np.add.at(want, idx, src)
    np.testing.assert_array_equal(got.numpy(), want)


@needs_cl
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 5, 3), (64, 48, 32), (33, 130, 17)])
def test_matmul_on_cl_matches_numpy(m, k, n):
    rng = np.random.default_rng(m + k + n)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    got = (lt.tensor(a, device="CL") @ lt.tensor(b, device="CL")).numpy()
    np.testing.assert_allclose(got, a @ b, rtol=1e-12, atol=1e-12)


@needs_cl
def test_kernel_errors_are_raised_on_cl():
    x = lt.tensor(np.arange(4.0), device="CL")
    with pytest.raises(IndexError, match="out of bounds"):
        x[lt.tensor(np.array([0, 7]), device="CL")].numpy()
    with pytest.raises(ZeroDivisionError):
        (lt.tensor(np.array([4, 5]), device="CL") // lt.tensor(np.array([1, 0]), device="CL")).numpy()


@needs_cl
def test_opencl_binaries_come_from_the_disk_cache(monkeypatch, tmp_path):
    from lazytensor.codegen.gpu import optimize_gpu
    from lazytensor.codegen.lower import lower_kernel
    from lazytensor.codegen.render.opencl import OpenCLRenderer
    from lazytensor.runtime.opencl import CLRuntime
    monkeypatch.setenv("LAZYTENSOR_CACHE", str(tmp_path))    # an empty disk cache
    t = lt.tensor(np.arange(6.0), device="CL") * 3 + 0.25
    (item,) = [i for i in t.schedule() if i.kind == "kernel"]
    kernel = optimize_gpu(lower_kernel(item.ast))
    renderer = OpenCLRenderer()
    source = renderer.render(kernel)
    first = CLRuntime()       # each new runtime stands for a new process
    _, cached = first.compile(source, kernel.name, 3, **renderer.launch_options(kernel))
    assert not cached and first.compiles == 1
    if first.defer_binaries:  # PoCL: the second build (a hit in PoCL's own cache) exports the binary
        assert not list((tmp_path / "opencl").glob("*.bin"))
        second = CLRuntime()
        _, cached = second.compile(source, kernel.name, 3, **renderer.launch_options(kernel))
        assert not cached and second.compiles == 1
    assert len(list((tmp_path / "opencl").glob("*.bin"))) == 1
    last = CLRuntime()        # loads the binary, compiles nothing, and it runs
    program, cached = last.compile(source, kernel.name, 3, **renderer.launch_options(kernel))
    assert cached and last.compiles == 0
    out, src = last.alloc(6 * 8), last.alloc(6 * 8)
    last.copyin(src, memoryview(np.arange(6.0)))
    program(out, src, np.zeros(4, dtype=np.int64))
    got = last.copyout(out, 6 * 8).view(np.float64)
    np.testing.assert_array_equal(got, np.arange(6.0) * 3 + 0.25)

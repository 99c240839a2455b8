"""The CUDA runtime on pycuda: device memory, copies, programs (cubins cached on disk), launches.

pycuda is imported only when the CUDA device is asked for (`CUDA=1`, `device="CUDA"`); without it,
or without a driver and GPU, the device fails to start with a message saying what is missing.
Kernels are compiled by pycuda's nvcc driver to a cubin for the GPU's compute capability; the cubin
is kept in the disk cache keyed by source, nvcc version, architecture and flags.
A program is a list of kernel functions launched in order on one stream (a renderer's `Launch` list).

NOTE: this module has not been executed on a real GPU in development (no CUDA device was available);
the kernels it would load are checked by test/test_cuda_compile.py (nvcc --ptx), and
bench/gpu_check.py runs the test suite on it where a GPU exists.
"""
from __future__ import annotations

import subprocess
from typing import Any, Sequence

import numpy as np
from lazytensor.runtime.cache import cache_key, cached_artifact
from lazytensor.runtime.device import DeviceUnavailable

try:
    import pycuda.driver as cuda
    from pycuda.compiler import compile as nvcc_compile
except ModuleNotFoundError as e:    # get_runtime turns this into an install hint
    raise ModuleNotFoundError("pycuda is not installed", name="pycuda") from e

ERR_SLOTS = 4
# precise division/sqrt and no fused multiply-add: results round like the CPU's and PyTorch's
NVCC_OPTIONS = ["--fmad=false", "-prec-div=true", "-prec-sqrt=true"]


class CompileError(RuntimeError):
    """nvcc rejected a kernel; the message carries its output and the source."""


def _nvcc_version() -> str:
    try:
        return subprocess.run(["nvcc", "--version"], capture_output=True, text=True).stdout.strip()
    except FileNotFoundError:
        raise DeviceUnavailable("device CUDA needs nvcc (the CUDA toolkit) on PATH to compile kernels; "
                                "install the CUDA toolkit") from None


class CUDAProgram:
    """A loaded module's kernel functions: call with device allocations (slot order) and the host
    error array."""

    def __init__(self, runtime: "CUDARuntime", module: Any, launches: Sequence[Any],
                 checks_errors: bool) -> None:
        self.runtime = runtime
        self.module = module   # keeps the functions alive
        self.checks_errors = checks_errors
        self.steps = [(module.get_function(lc.function), lc.global_size // lc.local_size, lc.local_size)
                      for lc in launches]

    def __call__(self, *handles: Any, **_: object) -> float | None:
        rt = self.runtime
        *buffers, err = handles
        if self.checks_errors:
            cuda.memcpy_htod(rt.err_buffer, np.zeros(ERR_SLOTS, dtype=np.int64))
        start_event, end_event = (cuda.Event(), cuda.Event()) if rt.timing else (None, None)
        if start_event is not None:
            start_event.record()
        for function, blocks, threads in self.steps:
            function(*buffers, rt.err_buffer, block=(threads, 1, 1), grid=(blocks, 1))
        if self.checks_errors:
            cuda.memcpy_dtoh(err, rt.err_buffer)
        if end_event is not None:
            end_event.record()
            end_event.synchronize()
            return start_event.time_till(end_event) / 1e3
        return None


class CUDARuntime:
    name = "CUDA"

    def __init__(self) -> None:
        try:
            cuda.init()
            if cuda.Device.count() == 0:
                raise DeviceUnavailable("device CUDA: the driver reports no GPU")
            self.device = cuda.Device(0)
            self.context = self.device.make_context()
        except cuda.Error as e:
            raise DeviceUnavailable(f"device CUDA could not start the NVIDIA driver ({e}); it needs an "
                                    "NVIDIA GPU and driver (check nvidia-smi)") from None
        import atexit
        atexit.register(self.context.pop)
        major, minor = self.device.compute_capability()
        self.arch = f"sm_{major}{minor}"
        self.identity = " ".join([_nvcc_version(), self.arch, *NVCC_OPTIONS])
        self.err_buffer = cuda.mem_alloc(ERR_SLOTS * 8)
        self.programs: dict[tuple[str, str], CUDAProgram] = {}
        self.compiles = 0
        self.timing = False  # True: each launch is timed with CUDA events (and waits for the GPU)

    def __repr__(self) -> str:
        return f"<CUDARuntime {self.device.name()!r} {self.arch}>"

    def alloc(self, nbytes: int) -> Any:
        return cuda.mem_alloc(max(nbytes, 1))

    def copyin(self, handle: Any, data: memoryview) -> None:
        if data.nbytes:
            cuda.memcpy_htod(handle, np.frombuffer(data, dtype=np.uint8))

    def copyout(self, handle: Any, nbytes: int) -> np.ndarray:
        out = np.empty(nbytes, dtype=np.uint8)
        if nbytes:
            cuda.memcpy_dtoh(out, handle)
        return out

    def synchronize(self) -> None:
        cuda.Context.synchronize()

    def compile(self, source: str, function_name: str, n_args: int, launches: Sequence[Any] | None = None,
                checks_errors: bool = True) -> tuple[CUDAProgram, bool]:
        """(program, was_cached): from memory, else a cached cubin, else nvcc."""
        found = self.programs.get((source, function_name))
        if found is not None:
            return found, True
        if launches is None:
            raise ValueError(f"CUDA kernel {function_name}: the renderer's launch list is required")

        def build(out_path) -> None:
            try:
                cubin = nvcc_compile(source, options=list(NVCC_OPTIONS), arch=self.arch, no_extern_c=True)
            except Exception as e:   # pycuda raises CompileError with nvcc's stderr
                raise CompileError(f"nvcc failed on kernel {function_name}:\n{e}") from None
            self.compiles += 1
            out_path.write_bytes(cubin)

        path, cached = cached_artifact("cuda", cache_key(source, self.identity), ".cubin", build)
        module = cuda.module_from_buffer(path.read_bytes())
        prog = CUDAProgram(self, module, launches, checks_errors)
        self.programs[(source, function_name)] = prog
        return prog, cached


def create_runtime() -> CUDARuntime:
    return CUDARuntime()

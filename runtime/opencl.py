"""The OpenCL runtime on pyopencl: buffers, copies, programs (binaries cached on disk), launches.

Runs on any OpenCL platform; PoCL (`pip install pocl-binary-distribution`) gives one on a plain
CPU machine. The first GPU device found is used, else the first device of any type.
A program is a list of kernel functions launched in order (a renderer's `Launch` list).

Binaries: a program built from source is exported (clGetProgramInfo BINARIES) to the disk cache,
and a later process builds it from that binary. On PoCL exporting costs as much as a second
compile (PoCL makes a generic work-group function for the binary: ~1.0 s of the ~2.5 s a cold
kernel costs on 2 busy cores), and PoCL keeps its own on-disk kernel cache (POCL_CACHE_DIR). So
there, the first process to build a source only leaves a marker; the next one, whose build hits
PoCL's cache, exports the binary (then almost free); later ones load it (~0.04 s a kernel
against ~0.3 s for a source build that hits PoCL's cache).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
from lazytensor.runtime.cache import cache_dir, cache_key, cached_artifact
from lazytensor.runtime.device import DeviceUnavailable

try:
    import pyopencl as cl
except ModuleNotFoundError as e:    # get_runtime turns this into an install hint
    raise ModuleNotFoundError("pyopencl is not installed", name="pyopencl") from e

ERR_SLOTS = 4     # int64 error slots every kernel takes last (index errors, division by zero)


class CompileError(RuntimeError):
    """The OpenCL compiler rejected a kernel; the message carries its build log and the source."""


def _pick_device() -> tuple[Any, Any]:
    """(platform, device): the first GPU of any platform, else the first device at all."""
    try:
        platforms = cl.get_platforms()
    except cl.Error as e:
        platforms = []
        reason = str(e)
    else:
        reason = "no platforms"
    devices = [(p, d) for p in platforms for d in p.get_devices()]
    if not devices:
        raise DeviceUnavailable(
            f"device CL found no OpenCL platform or device ({reason}); install a driver for your GPU, or "
            "PoCL for the CPU: pip install pocl-binary-distribution (or pip install 'lazytensor[cl]')")
    gpus = [(p, d) for p, d in devices if d.type & cl.device_type.GPU]
    return (gpus or devices)[0]


def _numbered(source: str) -> str:
    return "\n".join(f"{i + 1:4d} | {line}" for i, line in enumerate(source.splitlines()))


class CLProgram:
    """A built OpenCL program: call it with device buffers (slot order) and the host error array."""

    def __init__(self, runtime: "CLRuntime", program: Any, launches: Sequence[Any],
                 checks_errors: bool) -> None:
        self.runtime = runtime
        self.checks_errors = checks_errors
        self.steps = [(getattr(program, lc.function), (lc.global_size,), (lc.local_size,)) for lc in launches]

    def __call__(self, *handles: Any, **_: object) -> float | None:
        rt = self.runtime
        *buffers, err = handles
        err_buf = rt.err_buffer
        if self.checks_errors:
            cl.enqueue_copy(rt.queue, err_buf, np.zeros(ERR_SLOTS, dtype=np.int64))
        start = time.perf_counter()
        for kernel, global_size, local_size in self.steps:
            kernel(rt.queue, global_size, local_size, *buffers, err_buf)
        if self.checks_errors:   # blocking read: the error must be known before the next step
            cl.enqueue_copy(rt.queue, err, err_buf)
        if rt.timing:
            rt.queue.finish()
            return time.perf_counter() - start
        return None


class CLRuntime:
    name = "CL"

    def __init__(self) -> None:
        self.platform, self.device = _pick_device()
        self.context = cl.Context([self.device])
        self.queue = cl.CommandQueue(self.context)
        self.has_fp64 = bool(self.device.double_fp_config)
        self.options: list[str] = []
        if self.device.single_fp_config & cl.device_fp_config.CORRECTLY_ROUNDED_DIVIDE_SQRT:
            self.options.append("-cl-fp32-correctly-rounded-divide-sqrt")
        self.identity = " ".join([self.platform.name, self.platform.version, self.device.name,
                                  self.device.driver_version, *self.options])
        # PoCL: export a binary only on a program's second build (see the module docstring)
        self.defer_binaries = "Portable Computing Language" in self.platform.name
        self.err_buffer = cl.Buffer(self.context, cl.mem_flags.READ_WRITE, ERR_SLOTS * 8)
        self.programs: dict[tuple[str, str], CLProgram] = {}
        self.compiles = 0    # OpenCL compiler invocations in this process (the disk cache saves them)
        self.timing = False  # True: each launch waits for the device and returns its wall time

    def __repr__(self) -> str:
        return f"<CLRuntime {self.device.name!r} on {self.platform.name!r}>"

    def alloc(self, nbytes: int) -> Any:
        return cl.Buffer(self.context, cl.mem_flags.READ_WRITE, max(nbytes, 1))

    def copyin(self, handle: Any, data: memoryview) -> None:
        if data.nbytes:
            cl.enqueue_copy(self.queue, handle, np.frombuffer(data, dtype=np.uint8))

    def copyout(self, handle: Any, nbytes: int) -> np.ndarray:
        out = np.empty(nbytes, dtype=np.uint8)
        if nbytes:
            cl.enqueue_copy(self.queue, out, handle)
        return out

    def synchronize(self) -> None:
        self.queue.finish()

    def compile(self, source: str, function_name: str, n_args: int, launches: Sequence[Any] | None = None,
                checks_errors: bool = True) -> tuple[CLProgram, bool]:
        """(program, was_cached): from memory, else a cached binary, else the OpenCL compiler."""
        found = self.programs.get((source, function_name))
        if found is not None:
            return found, True
        if launches is None:
            raise ValueError(f"OpenCL kernel {function_name}: the renderer's launch list is required")
        if "cl_khr_fp64" in source and not self.has_fp64:
            raise RuntimeError(f"kernel {function_name} uses float64, which the OpenCL device "
                               f"{self.device.name!r} does not support (no cl_khr_fp64); "
                               "use float32 tensors")
        options = " ".join(self.options)
        key = cache_key(source, self.identity)
        binary_path = cache_dir() / "opencl" / f"{key}.bin"
        if binary_path.exists():
            from_binary = cl.Program(self.context, [self.device], [binary_path.read_bytes()])
            program = self._build(from_binary, options, function_name, source)
            cached = True
        else:
            program = self._build(cl.Program(self.context, source), options, function_name, source)
            self.compiles += 1
            cached = False
            self._store_binary(program, key)
        prog = CLProgram(self, program, launches, checks_errors)
        self.programs[(source, function_name)] = prog
        return prog, cached

    def _store_binary(self, program: Any, key: str) -> None:
        """Write the built program's binary to the disk cache (on PoCL: only on its second build)."""
        if self.defer_binaries:
            _, seen_before = cached_artifact("opencl", key, ".built", lambda path: None)
            if not seen_before:
                return

        def export(out_path) -> None:
            out_path.write_bytes(program.get_info(cl.program_info.BINARIES)[0])

        cached_artifact("opencl", key, ".bin", export)

    def _build(self, program: Any, options: str, function_name: str, source: str) -> Any:
        try:
            built = program.build(options=options)
        except cl.RuntimeError as e:
            raise CompileError(f"OpenCL compiler failed on kernel {function_name}:\n{e}\n"
                               f"--- source ---\n{_numbered(source)}") from None
        return built


def create_runtime() -> CLRuntime:
    return CLRuntime()

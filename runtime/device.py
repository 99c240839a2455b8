"""The device registry and the protocols every runtime implements.

A device has an allocator (raw bytes on the device), a compiler (source → program, cached on
disk) and a program type (launch with buffer arguments). Runtimes are imported only when a
device is first asked for, so a missing optional dependency only matters to its own device.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class DeviceUnavailable(RuntimeError):
    """A requested device cannot start; the message says what is missing and how to install it."""


class Program(Protocol):
    def __call__(self, *buffers: "Buffer", global_size: tuple[int, ...] | None = None,
                 local_size: tuple[int, ...] | None = None) -> float | None: ...


class Runtime(Protocol):
    name: str

    def alloc(self, nbytes: int) -> Any: ...
    def copyin(self, handle: Any, data: memoryview) -> None: ...
    def copyout(self, handle: Any, nbytes: int) -> np.ndarray: ...
    def compile(self, source: str, function_name: str, n_args: int) -> tuple[Program, bool]: ...
    def synchronize(self) -> None: ...


@dataclass(eq=False)
class Buffer:
    """nbytes of memory on a device. Hashes by identity (it is a graph leaf's argument)."""
    device: str
    nbytes: int
    handle: Any = field(default=None, repr=False)

    def allocate(self) -> "Buffer":
        if self.handle is None:
            self.handle = get_runtime(self.device).alloc(self.nbytes)
        return self

    def copyin(self, data: np.ndarray) -> "Buffer":
        """Fill from a host array of exactly nbytes (any dtype; the bytes are copied)."""
        flat = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        assert flat.nbytes == self.nbytes, (flat.nbytes, self.nbytes)
        self.allocate()
        get_runtime(self.device).copyin(self.handle, memoryview(flat))
        return self

    def copyout(self) -> np.ndarray:
        """The bytes as a fresh host uint8 array."""
        self.allocate()
        return get_runtime(self.device).copyout(self.handle, self.nbytes)

    def __del__(self, _is_finalizing: Any = sys.is_finalizing) -> None:
        # hand the memory back to its runtime, which may keep it for the next allocation of this size
        # (sys.is_finalizing is bound as a default: a buffer held by a graph node can die while the
        # interpreter clears this module's globals at exit, when `sys` here is already None)
        handle, self.handle = self.handle, None
        if handle is None or _is_finalizing():
            return
        runtime = _runtimes.get(self.device)
        free = getattr(runtime, "free", None)
        if free is not None:
            free(handle, self.nbytes)


_RUNTIME_MODULES = {"CPU": "lazytensor.runtime.cpu", "CL": "lazytensor.runtime.opencl",
                    "CUDA": "lazytensor.runtime.cuda"}
_runtimes: dict[str, Runtime] = {}
_INSTALL_HINTS = {
    "CL": "pip install 'lazytensor[cl]' (pyopencl, plus pocl-binary-distribution for an OpenCL platform "
          "that runs on the CPU)",
    "CUDA": "pip install 'lazytensor[cuda]' (pycuda; it also needs an NVIDIA GPU, its driver and the CUDA "
            "toolkit's nvcc)",
}


def canonical_device(name: str) -> str:
    """'cpu', 'CPU', 'CPU:0' → 'CPU'; 'opencl'/'cl' → 'CL'; 'cuda'/'gpu' → 'CUDA'."""
    base = str(name).split(":")[0].upper()
    aliases = {"OPENCL": "CL", "GPU": "CUDA"}
    base = aliases.get(base, base)
    if base not in _RUNTIME_MODULES:
        raise ValueError(f"unknown device {name!r}; expected one of {sorted(_RUNTIME_MODULES)}")
    return base


def get_runtime(device: str) -> Runtime:
    """The runtime for a device, started on first use."""
    rt = _runtimes.get(device)   # fast path: an already canonical name of a started device
    if rt is not None:
        return rt
    device = canonical_device(device)
    rt = _runtimes.get(device)
    if rt is None:
        try:
            module = importlib.import_module(_RUNTIME_MODULES[device])
        except ModuleNotFoundError as e:
            hint = _INSTALL_HINTS.get(device, f"pip install 'lazytensor[{device.lower()}]'")
            raise DeviceUnavailable(f"device {device} needs the Python module {e.name}, which is not "
                                    f"installed; install it with: {hint}") from e
        rt = module.create_runtime()
        _runtimes[device] = rt
    return rt

"""The CPU runtime: C source → shared library (system compiler, OpenMP when available) → ctypes.

Compiled libraries live in the disk cache (runtime/cache.py) keyed by source, compiler
identity and flags; loaded functions are kept in memory for the life of the process.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from lazytensor.runtime import cpu_linker
from lazytensor.runtime.cpu_threads import ThreadGovernor, adaptive_threads_enabled
from lazytensor.runtime.cache import cache_key, cached_artifact
from lazytensor.runtime.device import DeviceUnavailable

ALIGNMENT = 64
POOL_MIN_BLOCK = 1 << 16    # freed blocks of at least this many bytes are kept for reuse ...
POOL_BYTES = 1 << 30        # ... up to this many bytes in all
SMALL_BLOCK = 1 << 12       # smaller freed blocks up to this size are kept too (a new one costs ~5 µs of
SMALL_KEEP = 64             # NumPy calls, a lot next to a tiny kernel): at most this many per size ...
SMALL_POOL_BYTES = 1 << 22  # ... and this many bytes of small blocks in all
# -ffp-contract=off: no fused multiply-add contraction, so a*b+c rounds twice like PyTorch/NumPy
# (FMA changed results by up to 100% where a*b and c cancel, and made them depend on fusion).
# -fno-tree-loop-if-convert: GCC 12.2's loop vectorizer miscompiles if-converted guarded loads in
# reduce loops (a padded, transposed int64 row sum read garbage; test_opt has the reproducer). Our
# selects are rendered as bit blends, which need no if-conversion and still vectorize.
BASE_FLAGS = ["-O2", "-march=native", "-fPIC", "-shared", "-fwrapv", "-fno-math-errno", "-ffp-contract=off",
              "-fno-tree-loop-if-convert"]


class CompileError(RuntimeError):
    """The C compiler rejected a kernel; the message carries the compiler's output and source."""


def find_compiler() -> str:
    for name in (os.environ.get("CC", ""), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    raise DeviceUnavailable("the CPU device needs a C compiler (cc, gcc or clang) on PATH;"
                            " install one, e.g. apt-get install gcc")


def _compiler_identity(cc: str) -> str:
    """Path, size and mtime: changes when the compiler is replaced, costs one stat."""
    st = os.stat(os.path.realpath(cc))
    return f"{os.path.realpath(cc)}:{st.st_size}:{int(st.st_mtime)}"


def _openmp_works(cc: str) -> bool:
    import subprocess   # imported where used: a process whose kernels are all cached never needs it
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "t.c"
        src.write_text("#include <omp.h>\nint f(void) { return omp_get_max_threads(); }\n")
        r = subprocess.run([cc, "-fopenmp", "-fPIC", "-shared", str(src), "-o", str(Path(d) / "t.so")],
                           capture_output=True)
        return r.returncode == 0


class CPUMemory:
    """A block of host memory: the NumPy array owning it and its address (read once: asking NumPy for
    an address costs microseconds, and small kernels are launched in microseconds)."""
    __slots__ = ("array", "address")

    def __init__(self, array: np.ndarray, address: int | None = None) -> None:
        self.array = array
        self.address = array.ctypes.data if address is None else address


_last_host: tuple = (None, 0)   # the host array passed last (the launcher's error array), its address


def _host_address(array: np.ndarray) -> int:
    """A host array's address; the last one is remembered (kept alive here, so `is` is safe), since
    the launcher passes the same error array to every kernel and NumPy takes microseconds to answer.
    (One tuple, replaced whole: threads launching at once never pair an array with another's address.)"""
    global _last_host
    last = _last_host
    if array is last[0]:
        return last[1]
    address = array.ctypes.data
    _last_host = (array, address)
    return address


class CPUProgram:
    """A loaded kernel function; call it with Buffers (slot order) and the error buffer."""

    def __init__(self, fn: ctypes._CFuncPtr, lib: ctypes.CDLL, n_args: int,
                 governor: ThreadGovernor | None = None) -> None:
        self.fn, self.lib, self.governor, self.n_args = fn, lib, governor, n_args
        fn.argtypes = [ctypes.c_void_p] * n_args
        fn.restype = None

    @property
    def address(self) -> int:
        """The kernel function's address (for a CPUSequence driver)."""
        return ctypes.cast(self.fn, ctypes.c_void_p).value or 0

    def __call__(self, *handles: "CPUMemory | np.ndarray", **_: object) -> float:
        args = []   # (a loop, not a comprehension: a launch of a tiny kernel is mostly this overhead)
        for h in handles:
            args.append(h.address if h.__class__ is CPUMemory else _host_address(h))
        start = time.perf_counter()
        governor = self.governor
        if governor is not None:   # fewer OpenMP threads while other processes hold cores (cpu_threads.py)
            if start >= governor.next_check:
                governor.update(start)
            governor.apply()
        self.fn(*args)
        return time.perf_counter() - start


class CPUSequence:
    """Loaded kernels run in order by one call of a generated C driver (an lt.jit replay): one trip
    through ctypes and the launcher instead of one per kernel, which is most of a small kernel's cost.

    Call it with an array of argument addresses, each kernel's in turn (buffers in slot order, then
    its error buffer). The driver stops after a kernel that reports an error and returns that kernel's
    position; -1 when all ran."""

    def __init__(self, driver: ctypes._CFuncPtr, programs: list[CPUProgram],
                 governor: ThreadGovernor | None) -> None:
        self.driver, self.governor = driver, governor
        self.functions = (ctypes.c_void_p * len(programs))(*[p.address for p in programs])
        self.programs = programs          # (kept alive: the driver calls into their libraries)
        self.n_args = sum(p.n_args for p in programs)

    def __call__(self, arguments: "ctypes.Array[ctypes.c_void_p]") -> int:
        governor = self.governor
        if governor is not None:
            now = time.perf_counter()
            if now >= governor.next_check:
                governor.update(now)
            governor.apply()
        return self.driver(self.functions, arguments)


def sequence_driver_source(arities: list[int]) -> str:
    """C source of a CPUSequence driver calling kernels of these argument counts in order."""
    lines = ["int lt_sequence(void* const* f, void* const* a) {"]
    offset = 0
    for k, n in enumerate(arities):
        params = ", ".join(["void*"] * n)
        args = ", ".join(f"a[{offset + i}]" for i in range(n))
        lines.append(f"  ((void (*)({params}))f[{k}])({args});")
        lines.append(f"  if (*(const long long*)a[{offset + n - 1}]) return {k};")
        offset += n
    lines += ["  return -1;", "}", ""]
    return "\n".join(lines)


class CPURuntime:
    name = "CPU"

    def __init__(self) -> None:
        self.cc = find_compiler()
        self.cc_id = _compiler_identity(self.cc)
        self._flags: list[str] | None = None
        self._link_template: list[str] | None | bool = False   # False: not looked up yet
        self.programs: dict[tuple[str, str], CPUProgram] = {}
        self.compiles = 0   # compiler invocations in this process (tests check the disk cache)
        self.free_blocks: dict[int, list[CPUMemory]] = {}   # nbytes -> blocks freed and kept for reuse
        self.kept_bytes = 0
        self.small_bytes = 0   # the part of kept_bytes in blocks under pool_min_block
        self.pool_min_block, self.pool_bytes = POOL_MIN_BLOCK, POOL_BYTES
        self.governor: ThreadGovernor | None = None
        self._governor_wanted = adaptive_threads_enabled()

    @property
    def flags(self) -> list[str]:
        if self._flags is None:
            omp_key = cache_key("openmp-probe", self.cc_id)
            marker = Path(tempfile.gettempdir()) / f"lazytensor-omp-{omp_key}"
            if marker.exists():
                has_omp = marker.read_text() == "1"
            else:
                has_omp = _openmp_works(self.cc)
                marker.write_text("1" if has_omp else "0")
            self._flags = BASE_FLAGS + (["-fopenmp"] if has_omp else [])
        return self._flags

    @property
    def link_template(self) -> list[str] | None:
        """The direct linker command (runtime/cpu_linker.py), found once per compiler and remembered in a
        temp file like the OpenMP probe; None when kernels must be linked by the compiler driver."""
        if self._link_template is False:
            libraries = ["-lm", *(["-fopenmp"] if "-fopenmp" in self.flags else [])]
            marker = Path(tempfile.gettempdir()) / f"lazytensor-link-{cache_key('link', self.cc_id, *libraries)}"
            try:
                text = marker.read_text()
                self._link_template = json.loads(text) if text else None
            except (OSError, ValueError):   # not probed yet on this machine
                self._link_template = cpu_linker.fast_link_template(self.cc, self.flags, libraries)
                partial = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
                partial.write_text(json.dumps(self._link_template) if self._link_template else "")
                os.replace(partial, marker)   # atomic: parallel test workers never read half a file
        return self._link_template  # type: ignore[return-value]

    def alloc(self, nbytes: int) -> CPUMemory:
        """nbytes of 64-byte-aligned memory: a freed block of the same size if one is kept, else new."""
        kept = self.free_blocks.get(nbytes)
        if kept:
            self.kept_bytes -= nbytes
            if nbytes < self.pool_min_block:
                self.small_bytes -= nbytes
            return kept.pop()
        raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
        base = raw.ctypes.data
        offset = (-base) % ALIGNMENT
        return CPUMemory(raw[offset:offset + nbytes], base + offset)

    def free(self, handle: CPUMemory, nbytes: int) -> None:
        """Keep a block nobody uses any more for the next allocation of its size: big blocks (their first
        touch costs page faults; at most POOL_BYTES kept) and a few small ones per size (making one costs
        more than a tiny kernel runs). Mid-sized blocks are cheap to make and are let go."""
        if nbytes < self.pool_min_block:
            if nbytes > SMALL_BLOCK or self.small_bytes + nbytes > SMALL_POOL_BYTES:
                return
            kept = self.free_blocks.setdefault(nbytes, [])
            if len(kept) < SMALL_KEEP:
                kept.append(handle)
                self.kept_bytes += nbytes
                self.small_bytes += nbytes
            return
        if self.kept_bytes + nbytes > self.pool_bytes:
            return
        self.free_blocks.setdefault(nbytes, []).append(handle)
        self.kept_bytes += nbytes

    def copyin(self, handle: CPUMemory, data: memoryview) -> None:
        handle.array[:] = np.frombuffer(data, dtype=np.uint8)

    def copyout(self, handle: CPUMemory, nbytes: int) -> np.ndarray:
        return handle.array[:nbytes].copy()

    def synchronize(self) -> None:
        pass

    def compile(self, source: str, function_name: str, n_args: int) -> tuple[CPUProgram, bool]:
        """(program, was_cached): from memory, else from the disk cache, else the compiler."""
        found = self.programs.get((source, function_name))
        if found is not None:
            return found, True
        flags = self.flags
        key = cache_key(source, self.cc_id, " ".join(flags))

        def build(out: Path) -> None:
            import subprocess   # imported where used: a process whose kernels are all cached never needs it
            with tempfile.TemporaryDirectory() as d:
                src = Path(d) / f"{function_name}.c"
                src.write_text(source)
                template = self.link_template
                r = None
                if template is not None:   # compile, then link without the driver (runtime/cpu_linker.py)
                    obj = Path(d) / f"{function_name}.o"
                    r = subprocess.run([self.cc, *flags, "-c", str(src), "-o", str(obj)],
                                       capture_output=True, text=True)
                    if r.returncode == 0 and cpu_linker.run_link(template, obj, out).returncode != 0:
                        self._link_template = r = None   # a linker that changed under us: the driver links
                if r is None:
                    r = subprocess.run([self.cc, *flags, str(src), "-o", str(out), "-lm"],
                                       capture_output=True, text=True)
                self.compiles += 1
                if r.returncode != 0:
                    raise CompileError(f"C compiler failed on kernel {function_name}:\n{r.stderr}\n"
                                       f"--- source ---\n{_numbered(source)}")

        path, cached = cached_artifact("cpu", key, ".so", build)
        lib = ctypes.CDLL(str(path))
        if self.governor is None and self._governor_wanted and "-fopenmp" in flags:
            self.governor = _thread_governor(lib)
        prog = CPUProgram(getattr(lib, function_name), lib, n_args, self.governor)
        self.programs[(source, function_name)] = prog
        return prog, cached


    def sequence(self, programs: list[CPUProgram]) -> CPUSequence:
        """A CPUSequence running these programs in order (its driver compiled once per list of
        argument counts, cached like a kernel)."""
        source = sequence_driver_source([p.n_args for p in programs])
        driver, _ = self.compile(source, "lt_sequence", 2)
        function = driver.fn
        function.restype = ctypes.c_int
        return CPUSequence(function, programs, self.governor)


def _thread_governor(lib: ctypes.CDLL) -> ThreadGovernor | None:
    """A ThreadGovernor driving the OpenMP runtime this kernel library links (found through it, so
    that it is the runtime the kernels use), or None when the library does not link one."""
    try:
        set_threads, max_threads = lib.omp_set_num_threads, lib.omp_get_max_threads
    except AttributeError:
        return None
    set_threads.argtypes, set_threads.restype = [ctypes.c_int], None
    max_threads.argtypes, max_threads.restype = [], ctypes.c_int
    return ThreadGovernor(max_threads(), set_threads)


def _numbered(source: str) -> str:
    return "\n".join(f"{i + 1:4d} | {line}" for i, line in enumerate(source.splitlines()))


def create_runtime() -> CPURuntime:
    return CPURuntime()

"""Linking a compiled kernel object into a shared library without the compiler driver.

`cc file.c -shared -o file.so` runs the driver, which runs the compiler proper, the assembler,
then `collect2` and `ld`. For our small kernels the link half costs about as much as the
compilation itself (≈55 ms of ≈110 ms on the CI machine), most of it the driver and collect2
working out crt files and library paths — the same answer for every kernel. So we ask the
driver once (`cc -### …` prints the commands it would run), keep its linker command as a
template, and afterwards run the linker directly: the shared library is the same, the link
takes a fraction of the time.

Anything unexpected (a driver whose `-###` output we cannot read, a linker that fails, a probe
library that does not load) turns the fast path off and the caller links with the driver.
"""
from __future__ import annotations

import ctypes
import shlex
import subprocess
import tempfile
from pathlib import Path

OBJECT_SLOT = "@lazytensor-object@.o"
OUTPUT_SLOT = "@lazytensor-output@.so"


def _driver_link_command(cc: str, libraries: list[str]) -> list[str] | None:
    """The linker command the driver runs for `cc -shared OBJECT -o OUTPUT libraries`, with the object
    and output as placeholders; None when it cannot be read from `cc -###`."""
    probe = subprocess.run([cc, "-###", "-shared", OBJECT_SLOT, "-o", OUTPUT_SLOT, *libraries],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return None
    lines = [line for line in probe.stderr.splitlines()
             if line.startswith(" ") and OBJECT_SLOT in line and OUTPUT_SLOT in line]
    if len(lines) != 1:
        return None
    command = shlex.split(lines[0])
    if Path(command[0]).name == "collect2":
        # collect2 wraps ld for C++ static constructors and LTO, neither of which a C kernel has
        ld = subprocess.run([cc, "-print-prog-name=ld"], capture_output=True, text=True).stdout.strip()
        if not ld:
            return None
        command[0] = ld
    return _without_lto_plugin(command)


def _without_lto_plugin(command: list[str]) -> list[str]:
    """Drop the LTO plugin's arguments: they name a per-run temporary file and our objects carry no LTO."""
    kept: list[str] = []
    skip_next = False
    for arg in command:
        if skip_next:
            skip_next = False
        elif arg == "-plugin":
            skip_next = True
        elif not arg.startswith("-plugin-opt="):
            kept.append(arg)
    return kept


def _probe_works(cc: str, compile_flags: list[str], template: list[str]) -> bool:
    """Compile and fast-link a tiny library that calls libm, then load it: proof the template links right."""
    with tempfile.TemporaryDirectory() as d:
        src, obj, lib = Path(d) / "probe.c", Path(d) / "probe.o", Path(d) / "probe.so"
        src.write_text("#include <math.h>\ndouble probe(double x) { return exp(x) + 1.0; }\n")
        built = subprocess.run([cc, *compile_flags, "-c", str(src), "-o", str(obj)], capture_output=True)
        if built.returncode != 0 or run_link(template, obj, lib).returncode != 0:
            return False
        try:
            fn = ctypes.CDLL(str(lib)).probe
        except OSError:
            return False
        fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_double]
        return abs(fn(0.0) - 2.0) < 1e-12


def fast_link_template(cc: str, compile_flags: list[str], libraries: list[str]) -> list[str] | None:
    """The direct linker command (with placeholders) for this compiler and these libraries, checked on a
    probe library; None when the driver must link (then nothing is lost but time)."""
    try:
        template = _driver_link_command(cc, libraries)
    except OSError:
        return None
    if template is None or not _probe_works(cc, compile_flags, template):
        return None
    return template


def run_link(template: list[str], obj: Path, out: Path) -> subprocess.CompletedProcess:
    """Run the linker template on one object file, writing the shared library `out`."""
    args = [str(obj) if a == OBJECT_SLOT else str(out) if a == OUTPUT_SLOT else a for a in template]
    return subprocess.run(args, capture_output=True, text=True)

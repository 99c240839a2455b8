"""Every environment variable lazytensor reads, parsed in one place.

Anything that changes generated code must be part of `codegen_key()`, so the compile cache
can never return a program built under other settings.
"""
from __future__ import annotations

import os
from pathlib import Path


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} must be an integer") from None


DEBUG = _int_env("DEBUG", 0)
"""1: a line per realize. 2: a line per kernel launch. 3: kernel ASTs and boundary reasons.
4: generated source. 5: rewrite-rule trace."""

VIZ = _int_env("VIZ", 0)
"""1: every realize with a schedule not seen before writes an HTML page of its kernel graph (viz.py)."""

VIZ_DIR = Path(os.environ.get("VIZ_DIR", "lazytensor-viz"))
"""Where VIZ=1 and lt.viz.show() (without a path) write their pages."""

NOOPT = _int_env("NOOPT", 0)
"""1: skip loop optimizations (tests compare optimized against unoptimized code)."""

BEAM = _int_env("BEAM", 0)
"""n > 0: search each CPU kernel's optimization settings with a beam of width n, timing compiled
variants, and keep the fastest (lazytensor/beam.py; results cached on disk per kernel)."""

VALIDATE = _int_env("VALIDATE", 0)
"""1: prove every load/store index of every kernel in range before rendering (tests turn it on)."""

CACHE_DIR = Path(os.environ.get("LAZYTENSOR_CACHE", Path.home() / ".cache" / "lazytensor"))
"""Where compiled programs are kept between processes."""

RECORD_KERNELS = os.environ.get("LAZYTENSOR_RECORD_KERNELS", "")
"""A folder: every distinct kernel this process compiles is recorded there (lazytensor/kernel_record.py,
for the nvcc check of test/test_cuda_compile.py). Changes no generated code."""

DEVICE_ENV_VARS = ("CPU", "CL", "CUDA")


def default_device() -> str:
    """The device named by CPU=1 / CL=1 / CUDA=1 (CPU when none is set; two is an error)."""
    chosen = [name for name in DEVICE_ENV_VARS if os.environ.get(name, "0") not in ("", "0")]
    if len(chosen) > 1:
        raise RuntimeError(f"more than one device selected by environment: {', '.join(c + '=1' for c in chosen)};"
                           " set only one of CPU=1, CL=1, CUDA=1")
    return chosen[0] if chosen else "CPU"


def codegen_key() -> str:
    """The settings that shape generated code, as a string folded into compile-cache keys."""
    return f"noopt={NOOPT}"

"""What the host CPU's vector unit offers, as the CPU optimization passes need it.

The CPU runtime compiles with -march=native, so the C compiler targets exactly this machine: its
vector width and register count decide how big a register tile can be before it spills.
"""
from __future__ import annotations

import functools
import math
import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class VectorUnit:
    """The SIMD registers the compiler can use: their width in bytes and how many there are."""
    width_bytes: int
    registers: int


@functools.cache
def host_vector_unit() -> VectorUnit:
    """The host's vector unit: AVX-512 (64 B × 32), AVX/AVX2 (32 B × 16), else 16-byte SIMD
    (SSE: 16 registers, NEON: 32)."""
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return VectorUnit(16, 32)
    flags = _cpu_flags()
    if "avx512f" in flags:
        return VectorUnit(64, 32)
    if "avx" in flags or "avx2" in flags:
        return VectorUnit(32, 16)
    return VectorUnit(16, 16)


@functools.cache
def host_has_fma() -> bool:
    """The host has fused multiply-add instructions for its AVX registers (x86 FMA3: every AVX2 CPU)."""
    return "fma" in _cpu_flags()


@functools.cache
def host_l2_bytes() -> int | None:
    """One core's L2 cache in bytes (Linux sysfs: cpu0's level-2 data or unified cache), or None
    where the system does not say."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    try:
        for index in sorted(base.glob("index*")):
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            if level == "2" and kind in ("Unified", "Data"):
                return _cache_size_bytes((index / "size").read_text())
    except (OSError, ValueError):
        pass
    return None


def _cache_size_bytes(text: str) -> int:
    """sysfs's cache size ("512K", "1024K", "2M", "65536") in bytes."""
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


MAX_TILE_ROWS = 12
"""Most rows per register tile: more only add compile time (measured on AVX-512 with 32-float rows,
one core, 480³: 12 rows ~117 GFLOP/s, 8 rows ~112, 6 rows ~114)."""
L1_SET_SPAN_BYTES = 4096
"""Addresses this far apart fall into the same set of the L1 data cache (64 sets of 64-byte lines)."""
L1_WAYS = 8
"""Lines one L1 set holds. A tile's rows each stream a row of the (unpacked) left operand; when those
rows lie a multiple of L1_SET_SPAN_BYTES apart they all compete for one set, so a tile keeps at most
L1_WAYS of them (2048³ on 2 threads: 88 ms with 8 rows, 123 ms with 12)."""


def rows_share_l1_sets(row_stride_bytes: int) -> bool:
    """Rows of an operand this far apart map to the same L1 set (power-of-two strides of 4 KiB+)."""
    return row_stride_bytes != 0 and row_stride_bytes % L1_SET_SPAN_BYTES == 0
CACHE_LINE_BYTES = 64


def tile_row_bytes(unit: VectorUnit | None = None) -> int:
    """Bytes of one row of a matmul register tile, and so of one packed panel of its right operand:
    two vector registers (two loads per reduce step feed the FMA units while one broadcast value is
    reused across them), at least one cache line. AVX-512: 32 floats; AVX2: 16 floats.

    Measured on AVX-512 (Zen 4, one core, 480³): 16-float rows reach ~68 GFLOP/s, 32-float rows ~117."""
    unit = unit or host_vector_unit()
    return max(CACHE_LINE_BYTES, 2 * unit.width_bytes)


def tile_rows(tile_bytes: int, unit: VectorUnit | None = None) -> int:
    """Rows of a register tile whose rows are `tile_bytes` wide, so that the accumulators plus a
    few registers for the loaded operands fit the register file (AVX2, 16-float rows: 6)."""
    unit = unit or host_vector_unit()
    per_row = max(1, math.ceil(tile_bytes / unit.width_bytes))
    spare = 4   # the column vectors of one reduce step and a broadcast row value
    return max(1, min(MAX_TILE_ROWS, (unit.registers - spare) // per_row))

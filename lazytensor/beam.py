"""BEAM search: time other optimization settings for one CPU kernel and keep the fastest.

With BEAM=n, compiling a kernel first looks for its searched settings on disk; when there are
none, it searches: starting from the heuristic's `OptChoices`, each round changes one knob of
each of the n best settings so far to each of its other values, compiles and times every new
variant on random inputs, and keeps the n fastest. It stops when a round finds nothing faster
(or after MAX_ROUNDS). A variant whose output differs from the heuristic's is thrown away, so a
miscompiled setting can never win. The winner is written to the cache folder, so the search runs
once per kernel and machine; later processes (and BEAM=0 runs never) read it.

Variants that render to the same source are timed once. Only CPU kernels are searched: the GPU
pass list has no knobs yet.
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Callable

import numpy as np

from lazytensor import config
from lazytensor.codegen.cpu_target import host_vector_unit
from lazytensor.codegen.kernel import LoopKernel
from lazytensor.codegen.opt import HEURISTIC, OptChoices, optimize
from lazytensor.runtime.cache import cache_dir, cache_key

KNOB_VALUES: dict[str, tuple] = {
    "tile_rows": (None, 1, 2, 4, 6, 8, 12),
    "tile_columns": (None, 1, 4, 8, 16, 32),
    "block_rows": (0, 4, 8, 16),
    "split_lanes": (True, False),
    "unroll_max": (0, 4),
    "tile_unroll": (1, 4),
    "parallel": (True, False),
    "vectorize": (True, False),
}
"""The values BEAM tries for each OptChoices field (the heuristic's own value is among them)."""
MAX_ROUNDS = 4
TIMED_RUNS = 3
"""Runs per variant after one warm-up run; the median counts."""
SLOW_RUN_SECONDS = 0.25
"""A variant whose warm-up run takes longer than this is timed once (it is not going to win)."""

searches_run = 0
"""Searches this process ran (tests check that a cached result is reused)."""


def neighbours(choices: OptChoices) -> list[OptChoices]:
    """Every setting that differs from `choices` in exactly one knob."""
    out = []
    for name, values in KNOB_VALUES.items():
        for value in values:
            if getattr(choices, name) != value:
                out.append(dataclasses.replace(choices, **{name: value}))
    return out


def _render(kernel: LoopKernel) -> str:
    from lazytensor.codegen.render.c import CRenderer
    return CRenderer().render(kernel)


def _search_key(kernel: LoopKernel, width: int) -> str:
    unit = host_vector_unit()
    return cache_key("beam-v2", _render(kernel), str(width), f"{unit.width_bytes}x{unit.registers}")


def _random_inputs(kernel: LoopKernel, rng: np.random.Generator) -> list[np.ndarray]:
    """One host array per slot: normal floats, zero integers (valid gather indices) and bools."""
    arrays = []
    for slot in kernel.buffers:
        dtype = slot.dtype.np
        if dtype.kind == "f":
            arrays.append(rng.standard_normal(max(slot.size, 1)).astype(dtype))
        else:
            arrays.append(np.zeros(max(slot.size, 1), dtype=dtype))
    return arrays


class _Timer:
    """Compiles a variant's source and times it on fixed inputs; remembers results per source."""

    def __init__(self, kernel: LoopKernel) -> None:
        from lazytensor.runtime.device import get_runtime
        self.runtime = get_runtime("CPU")
        self.n_args = len(kernel.buffers) + 1
        self.inputs = _random_inputs(kernel, np.random.default_rng(0))
        self.err = np.zeros(4, dtype=np.int64)
        self.by_source: dict[str, tuple[float, np.ndarray | None]] = {}

    def run(self, kernel: LoopKernel) -> tuple[float, np.ndarray | None]:
        """(median seconds, output) of the kernel; (inf, None) when it raises a kernel error."""
        source = _render(kernel)
        found = self.by_source.get(source)
        if found is not None:
            return found
        program, _ = self.runtime.compile(source, kernel.name, self.n_args)
        out = self.inputs[0]
        out[...] = 0
        self.err[:] = 0
        first = program(*self.inputs, self.err)
        if self.err[0] != 0:
            result: tuple[float, np.ndarray | None] = (float("inf"), None)
        else:
            runs = [first] if first > SLOW_RUN_SECONDS else [program(*self.inputs, self.err)
                                                              for _ in range(TIMED_RUNS)]
            result = (float(np.median(runs)), out.copy())
        self.by_source[source] = result
        return result


def _same_output(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind == "f":
        return bool(np.allclose(a, b, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(b).max(initial=0))),
                                equal_nan=True))
    return bool(np.array_equal(a, b))


def search(kernel: LoopKernel, width: int, log: Callable[[str], None] | None = None) -> OptChoices:
    """The fastest OptChoices for an unoptimized CPU kernel, by beam search of the given width."""
    global searches_run
    searches_run += 1
    timer = _Timer(kernel)
    start = time.perf_counter()
    base_time, reference = timer.run(optimize(kernel, HEURISTIC))
    scored: dict[OptChoices, float] = {HEURISTIC: base_time}
    beam = [HEURISTIC]
    for _ in range(MAX_ROUNDS):
        best_before = min(scored.values())
        for choices in beam:
            for candidate in neighbours(choices):
                if candidate in scored:
                    continue
                seconds, out = timer.run(optimize(kernel, candidate))
                if out is None or reference is None or not _same_output(out, reference):
                    seconds = float("inf")
                scored[candidate] = seconds
        beam = sorted(scored, key=scored.__getitem__)[:width]
        if scored[beam[0]] >= best_before:
            break
    best = beam[0]
    if log is not None:
        log(f"BEAM {kernel.name}: {len(timer.by_source)} variants in {time.perf_counter() - start:.1f} s, "
            f"{base_time * 1e6:.0f} us -> {scored[best] * 1e6:.0f} us with {best}")
    return best


def _to_json(choices: OptChoices) -> str:
    return json.dumps(dataclasses.asdict(choices), sort_keys=True)


def beam_choices(kernel: LoopKernel, width: int) -> OptChoices:
    """The searched OptChoices for this kernel: from the cache folder, else searched and stored."""
    key = _search_key(kernel, width)
    path = cache_dir() / "beam" / f"{key}.json"
    if path.exists():
        return OptChoices(**json.loads(path.read_text()))
    log = print if config.DEBUG >= 1 else None
    best = search(kernel, width, log)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_to_json(best))
    tmp.replace(path)
    return best

"""Per-kernel profiling: `with lt.Profiler() as p: ...` then `p.table()` or `p.export_chrome_trace(path)`.

The profiler listens to every kernel launch (realize.py's `_listeners`) and to every realize
(`_realize_observers`). For each launch it keeps the run time, the estimated FLOPs (from the
kernel AST, as `lt.explain` counts them), the bytes of the buffers the kernel touched, and whether
the kernel had to be compiled inside the profiled block (and how long that took), was loaded from
the on-disk compile cache, or was already in memory.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lazytensor.explain import estimate_ast_cost, format_count, summarize_ops


def _realize_module():
    # lazytensor.realize is shadowed by lt.realize() on the package, so go through sys.modules
    import lazytensor.realize  # noqa: F401
    return sys.modules["lazytensor.realize"]


@dataclass
class KernelLaunch:
    """One kernel launch seen by a profiler. Times are seconds; `start` counts from the profiler's start."""
    name: str
    start: float
    seconds: float
    flops: int
    bytes_moved: int
    reason: str
    fused_ops: tuple[str, ...]
    device: str
    compile_status: str          # "compiled", "disk cache" (loaded a cached build) or "in memory"
    compile_seconds: float       # time spent getting the program ready, 0 when it was in memory

    @property
    def gflops(self) -> float:
        return self.flops / max(self.seconds, 1e-12) / 1e9

    @property
    def gbytes_per_second(self) -> float:
        return self.bytes_moved / max(self.seconds, 1e-12) / 1e9


@dataclass
class KernelSummary:
    """All launches of one compiled kernel, added up (one row of `Profiler.table()`)."""
    name: str
    launches: int
    seconds: float
    flops: int
    bytes_moved: int
    reason: str
    fused_ops: tuple[str, ...]
    compile_status: str
    compile_seconds: float

    @property
    def mean_seconds(self) -> float:
        return self.seconds / max(self.launches, 1)

    @property
    def gflops(self) -> float:
        return self.flops / max(self.seconds, 1e-12) / 1e9

    @property
    def gbytes_per_second(self) -> float:
        return self.bytes_moved / max(self.seconds, 1e-12) / 1e9


@dataclass
class RealizeSpan:
    """One realize: when it ran (from the profiler's start) and how many kernels its plan has."""
    start: float
    seconds: float
    kernels: int


class Profiler:
    """Context manager collecting every kernel launch inside it.

    >>> with lt.Profiler() as p:
    ...     loss = train_step()
    >>> p.table()                               # sorted summary: time, GFLOP/s, GB/s, compile
    >>> p.export_chrome_trace("trace.json")     # open in https://ui.perfetto.dev or chrome://tracing
    """

    def __init__(self) -> None:
        self.launches: list[KernelLaunch] = []
        self.realizes: list[RealizeSpan] = []
        self._key_of: list[int] = []     # per launch: id of its CompiledKernel (rows group by it)
        self._known_before: set[int] = set()
        self._seen: set[int] = set()
        self._cost: dict[int, int] = {}
        self._origin = 0.0
        self._active = False

    # ---- collecting -------------------------------------------------------------------------

    def __enter__(self) -> "Profiler":
        realize = _realize_module()
        self._known_before = {id(ck) for ck in realize._compiled.values()}
        self._origin = time.perf_counter()
        realize._listeners.append(self._on_launch)
        realize._realize_observers.append(self._on_realize)
        self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        realize = _realize_module()
        realize._listeners.remove(self._on_launch)
        realize._realize_observers.remove(self._on_realize)
        self._active = False

    def _on_launch(self, record, ck, step) -> None:
        end = time.perf_counter() - self._origin
        key = id(ck)
        if key in self._seen or key in self._known_before:
            status, compile_seconds = "in memory", 0.0
        else:
            status = "disk cache" if ck.was_cached else "compiled"
            compile_seconds = ck.compile_seconds
        self._seen.add(key)
        if key not in self._cost:
            self._cost[key] = estimate_ast_cost(step.ast)[0]
        self.launches.append(KernelLaunch(ck.name, end - record.seconds, record.seconds, self._cost[key],
                                          record.bytes_moved, record.reason, tuple(step.fused_ops),
                                          step.device, status, compile_seconds))
        self._key_of.append(key)

    def _on_realize(self, roots, plan, device):
        start = time.perf_counter() - self._origin
        kernels = sum(1 for step in plan.steps if step.kind == "kernel")

        def done() -> None:
            self.realizes.append(RealizeSpan(start, time.perf_counter() - self._origin - start, kernels))
        return done

    # ---- reading ----------------------------------------------------------------------------

    @property
    def total_seconds(self) -> float:
        """Kernel run time added over every launch."""
        return sum(launch.seconds for launch in self.launches)

    def summaries(self) -> list[KernelSummary]:
        """One row per compiled kernel, slowest (by total time) first."""
        rows: dict[int, KernelSummary] = {}
        for key, launch in zip(self._key_of, self.launches):
            row = rows.get(key)
            if row is None:
                rows[key] = KernelSummary(launch.name, 1, launch.seconds, launch.flops, launch.bytes_moved,
                                          launch.reason, launch.fused_ops, launch.compile_status,
                                          launch.compile_seconds)
                continue
            row.launches += 1
            row.seconds += launch.seconds
            row.flops += launch.flops
            row.bytes_moved += launch.bytes_moved
        return sorted(rows.values(), key=lambda r: r.seconds, reverse=True)

    def table(self, row_limit: int | None = None, file=None) -> str:
        """Print (and return) the per-kernel summary sorted by total time: launches, total and mean
        time, share, GFLOP/s, GB/s, compile (time, disk cache hit or in memory), fused ops, reason."""
        rows = self.summaries()
        total = self.total_seconds
        header = (f"{'kernel':<32} {'calls':>5} {'total ms':>9} {'%':>5} {'mean us':>9} {'GFLOP/s':>8} "
                  f"{'GB/s':>7}  {'compile':<16} {'ops / reason'}")
        lines = [f"profile: {len(self.launches)} launch(es) of {len(rows)} kernel(s), "
                 f"{total * 1e3:.3f} ms in kernels, {len(self.realizes)} realize(s)",
                 header, "-" * len(header)]
        for row in rows[:row_limit]:
            if row.compile_status == "in memory":
                compiled = "in memory"
            else:
                compiled = f"{row.compile_status} {row.compile_seconds * 1e3:.1f}ms"
            share = 100.0 * row.seconds / total if total > 0 else 0.0
            lines.append(f"{row.name[:32]:<32} {row.launches:>5} {row.seconds * 1e3:>9.3f} {share:>5.1f} "
                         f"{row.mean_seconds * 1e6:>9.1f} {row.gflops:>8.2f} {row.gbytes_per_second:>7.2f}  "
                         f"{compiled:<16} {summarize_ops(row.fused_ops)[:40]} | {row.reason}")
        if row_limit is not None and len(rows) > row_limit:
            lines.append(f"... {len(rows) - row_limit} more kernel(s)")
        flops = sum(launch.flops for launch in self.launches)
        lines.append(f"total: {format_count(flops, 'FLOP')} estimated, "
                     f"{format_count(sum(launch.bytes_moved for launch in self.launches), 'B')} moved")
        text = "\n".join(lines)
        print(text, file=file)
        return text

    def chrome_trace(self) -> dict:
        """The profile in the Trace Event Format (what Perfetto and chrome://tracing read)."""
        pid = 1
        events: list[dict] = [
            {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": "lazytensor"}},
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": 1, "args": {"name": "kernels"}},
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": 2, "args": {"name": "compile"}},
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": 3, "args": {"name": "realize"}},
        ]
        for launch in self.launches:
            events.append({"name": launch.name, "cat": "kernel", "ph": "X", "pid": pid, "tid": 1,
                           "ts": launch.start * 1e6, "dur": launch.seconds * 1e6,
                           "args": {"device": launch.device, "reason": launch.reason,
                                    "ops": summarize_ops(launch.fused_ops), "flops": launch.flops,
                                    "bytes": launch.bytes_moved, "GFLOP/s": round(launch.gflops, 3),
                                    "GB/s": round(launch.gbytes_per_second, 3),
                                    "compile": launch.compile_status}})
            if launch.compile_status != "in memory":
                # compiling happens right before the first launch in the same realize
                events.append({"name": f"compile {launch.name}", "cat": "compile", "ph": "X", "pid": pid,
                               "tid": 2, "ts": (launch.start - launch.compile_seconds) * 1e6,
                               "dur": launch.compile_seconds * 1e6,
                               "args": {"status": launch.compile_status}})
        for span in self.realizes:
            events.append({"name": f"realize ({span.kernels} kernels)", "cat": "realize", "ph": "X",
                           "pid": pid, "tid": 3, "ts": span.start * 1e6, "dur": span.seconds * 1e6,
                           "args": {}})
        return {"traceEvents": events, "displayTimeUnit": "ms"}

    def export_chrome_trace(self, path: str | Path) -> Path:
        """Write the trace as JSON to path; open it in https://ui.perfetto.dev or chrome://tracing."""
        path = Path(path)
        path.write_text(json.dumps(self.chrome_trace()))
        return path

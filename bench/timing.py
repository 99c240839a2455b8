"""Timing helpers: a Timer, the Impl/Measurement records, and the alternating-rounds runner.

Every case runs its implementations side by side: each is warmed up, then for every round each
implementation is timed once, in turn, so that a slow patch of a busy machine hits all of them
alike; each timed call follows one untimed call of the same implementation (see run_alternating).
Medians, minima and maxima come from those per-round times.
"""
from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

OURS = "lazytensor"


class Timer:
    """`with Timer() as t: ...` then `t.seconds` (wall clock, perf_counter)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> "Timer":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


@dataclass
class Impl:
    """One implementation of a case: `fn()` does one timed call and returns its result.

    `result` (optional) returns the array to check after the rounds (default: the last value `fn`
    returned). `seconds` (optional) replaces the wall time of a call with a figure the call itself
    reports, e.g. kernel time for the machine rows."""
    name: str
    fn: Callable[[], Any]
    result: Callable[[], Any] | None = None
    seconds: Callable[[], float] | None = None


@dataclass
class Measurement:
    """The per-round times of one implementation on one case, plus what the table needs."""
    row: str
    case: str
    impl: str
    times: list[float] = field(default_factory=list)
    unit: str = "ms"                 # how the table shows times: "ms" or "us"
    work: float | None = None        # bytes or flops per call, for the throughput column
    work_unit: str = ""              # "GB/s" or "GFLOP/s"
    check: str = "-"                 # agreement with the reference implementation
    note: str = ""
    output: Any = field(default=None, repr=False)   # NumPy result, for checks (not serialized)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def throughput(self) -> float | None:
        """work / median time in GB/s or GFLOP/s, or None when the row has no work figure."""
        if not self.work or not self.times:
            return None
        return self.work / self.median / 1e9

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "output"}

    @staticmethod
    def from_json(d: dict[str, Any]) -> "Measurement":
        return Measurement(**d)


def as_array(x: Any) -> np.ndarray | None:
    """A result (lazytensor/torch/tinygrad tensor, NumPy array, Python number) as a NumPy array."""
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (int, float, np.number)):
        return np.asarray(x)
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return np.asarray(x)


def run_alternating(impls: list[Impl], rounds: int, warmup: int, settle: bool = True
                    ) -> tuple[dict[str, list[float]], dict[str, Any], dict[str, str]]:
    """Warm up every impl, then time one call of each impl per round, in turn.

    With `settle`, each timed call comes right after one untimed call of the same impl: the previous
    impl's idle threads (OpenMP's and OpenBLAS's spin a while before they sleep) then slow that
    untimed call, not the timed one. Measured on 2 cores: our conv right after torch's took 1.5x
    its time; torch's right after ours the same.

    → (times per impl, last result per impl, failure note per impl that raised)."""
    # Objects made before the rounds (imports, models, inputs) go to the permanent generation, so a
    # full garbage collection during a timed call walks only what the calls themselves made. Otherwise
    # it walks torch's ~170k objects as well (~95 ms here), a cost every impl in the process pays
    # whenever it happens to allocate enough, ours more often since a lazy graph is many objects.
    gc.collect()
    gc.freeze()
    failed: dict[str, str] = {}
    last: dict[str, Any] = {}
    live = []
    for impl in impls:
        try:
            for _ in range(warmup):
                last[impl.name] = impl.fn()
            live.append(impl)
        except Exception as e:  # a peer that cannot run this case is reported, not fatal
            first_line = str(e).splitlines()[0][:120] if str(e) else ""
            failed[impl.name] = f"failed: {type(e).__name__}: {first_line}"
    times: dict[str, list[float]] = {impl.name: [] for impl in live}
    for _ in range(rounds):
        for impl in live:
            if settle:
                impl.fn()
            with Timer() as t:
                last[impl.name] = impl.fn()
            times[impl.name].append(impl.seconds() if impl.seconds is not None else t.seconds)
    return times, last, failed


def compare(ours: np.ndarray | None, ref: np.ndarray | None, rtol: float, atol: float) -> str:
    """'ok' when the arrays agree within tolerance, else a short description of the mismatch."""
    if ours is None or ref is None:
        return "-"
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        return f"MISMATCH shape {ours.shape} vs {ref.shape}"
    if np.allclose(ours, ref, rtol=rtol, atol=atol, equal_nan=True):
        return "ok"
    return f"MISMATCH max|diff| {np.nanmax(np.abs(ours - ref)):.3g}"


def measure_case(row: str, case: str, impls: list[Impl], *, rounds: int, warmup: int, unit: str = "ms",
                 work: float | None = None, work_unit: str = "", rtol: float = 1e-4, atol: float = 1e-5,
                 notes: dict[str, str] | None = None, settle: bool = True) -> list[Measurement]:
    """Run `impls` in alternating rounds and check each result against the reference.

    The reference is NumPy's result when NumPy ran, else the first peer's; our own row is checked
    against it, and every peer too (a peer that disagrees shows up as well)."""
    times, last, failed = run_alternating(impls, rounds, warmup, settle)
    out: list[Measurement] = []
    for impl in impls:
        m = Measurement(row, case, impl.name, times.get(impl.name, []), unit, work, work_unit)
        m.note = failed.get(impl.name, (notes or {}).get(impl.name, ""))
        if impl.name in times:
            m.output = as_array(impl.result() if impl.result is not None else last.get(impl.name))
        out.append(m)
    ran = [m for m in out if m.times and m.output is not None]
    peers = [m for m in ran if m.impl != OURS]
    ref = next((m for m in peers if m.impl == "numpy"), peers[0] if peers else None)
    for m in ran:
        if ref is not None and m is not ref:
            m.check = compare(m.output, ref.output, rtol, atol)
        elif ref is not None:
            m.check = "ref"
    return out

"""The speed targets of issue 4, checked against one bench run: each target's figure and whether it is met.

Every figure is a ratio between medians of the same run (or our own time against a fixed bound), so it
is as trustworthy as the run: on a noisy host, read it next to the machine rows (triad, FMA peak).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bench.timing import OURS, Measurement


@dataclass(frozen=True)
class Target:
    """One target: `figure(ours, peer)` compared with `bound` (at least, or at most)."""
    name: str
    row: str
    case: Callable[[str], bool]    # which cases of the row it covers (one table line per case)
    peer: str                      # the peer's impl name, or the row its figure is divided by
    kind: str                      # "faster": peer/ours ≥ bound; "within": ours/peer ≤ bound;
                                   # "fraction": our throughput / the peer row's ≥ bound; "under": ours ≤ bound s
    bound: float
    against_best: bool = False     # compare with the peer's best median over every thread count and case


def _any(case: str) -> bool:
    return True


def _jit(case: str) -> bool:
    return case.endswith("lt.jit")


def _no_jit(case: str) -> bool:
    return not case.endswith("lt.jit")


TARGETS = [
    Target("elementwise ≥ 2x torch.compile", "elementwise", _any, "torch.compile", "faster", 2.0),
    Target("elementwise ≥ 70% of triad bandwidth", "elementwise", _any, "machine: triad", "fraction", 0.70),
    Target("sum ≥ NumPy", "sum", _any, "numpy", "faster", 1.0),
    Target("softmax ≥ 2x torch", "softmax", _any, "torch", "faster", 2.0),
    Target("matmul ≥ NumPy", "matmul", _any, "numpy", "faster", 1.0),
    Target("conv2d ≥ torch", "conv2d", _any, "torch", "faster", 1.0),
    Target("MLP step (lt.jit) within 1.2x of torch's best", "mlp train step", _jit, "torch", "within", 1.2,
           against_best=True),
    Target("MLP step (lt.jit) ≥ 5x tinygrad", "mlp train step", _jit, "tinygrad", "faster", 5.0),
    Target("small op, lt.jit, ≤ 5x torch", "(a+b).sum() 2x2", _jit, "torch", "within", 5.0),
    Target("small op, no jit, ≤ 50 µs", "(a+b).sum() 2x2", _no_jit, "", "under", 50e-6),
    Target("fresh process ≤ 0.4 s", "fresh process", _any, "", "under", 0.4),
]


def _find(measurements: list[Measurement], row: str, case: str | None, impl: str) -> Measurement | None:
    """The timed measurement of impl on (row, case), any case of the row when case is None."""
    for m in measurements:
        if m.row == row and (case is None or m.case == case) and m.impl == impl and m.times:
            return m
    return None


def _median(measurements: list[Measurement], row: str, case: str | None, impl: str) -> float | None:
    found = _find(measurements, row, case, impl)
    return found.median if found is not None else None


def _throughput(measurements: list[Measurement], row: str, case: str | None) -> float | None:
    found = _find(measurements, row, case, OURS)
    return found.throughput if found is not None else None


def evaluate(measurements: list[Measurement], best_peer: dict[tuple[str, str], float] | None = None
             ) -> list[tuple[str, str, str, bool | None]]:
    """(target, case, figure, met) for every target and case this run measured; met is None when the
    peer is missing. best_peer maps (row, impl) to that peer's best median in the row over every thread
    count and case, for the targets set against it (the MLP one: PyTorch eager's better figure, 1 or 2
    threads)."""
    out: list[tuple[str, str, str, bool | None]] = []
    for t in TARGETS:
        cases = [m.case for m in measurements if m.row == t.row and m.impl == OURS and m.times and t.case(m.case)]
        for case in cases:
            ours = _median(measurements, t.row, case, OURS)
            assert ours is not None
            if t.kind == "under":
                scale = 1e6 if t.bound < 1e-3 else 1.0
                unit = "µs" if scale == 1e6 else "s"
                out.append((t.name, case, f"{ours * scale:.3g} {unit}", ours <= t.bound))
                continue
            if t.kind == "fraction":
                mine, theirs = _throughput(measurements, t.row, case), _throughput(measurements, t.peer, None)
                if mine is None or not theirs:
                    out.append((t.name, case, f"no {t.peer} row", None))
                    continue
                out.append((t.name, case, f"{mine / theirs:.0%} ({mine:.1f} of {theirs:.1f} GB/s)",
                            mine / theirs >= t.bound))
                continue
            peer = _median(measurements, t.row, case, t.peer)
            if best_peer is not None and t.against_best and (t.row, t.peer) in best_peer:
                peer = best_peer[(t.row, t.peer)]
            if peer is None:
                out.append((t.name, case, f"{t.peer} not measured", None))
            elif t.kind == "faster":
                out.append((t.name, case, f"{peer / ours:.2f}x", peer / ours >= t.bound))
            else:
                out.append((t.name, case, f"{ours / peer:.2f}x", ours / peer <= t.bound))
    return out


def best_peer_medians(sections: list[list[Measurement]]) -> dict[tuple[str, str], float]:
    """Each peer's best median per row over all thread counts and cases."""
    best: dict[tuple[str, str], float] = {}
    for measurements in sections:
        for m in measurements:
            if m.impl != OURS and m.times:
                key = (m.row, m.impl)
                best[key] = min(best.get(key, m.median), m.median)
    return best


def targets_table(measurements: list[Measurement], best_peer: dict[tuple[str, str], float] | None = None
                  ) -> str:
    """A Markdown table of evaluate(): target, case, figure, met / MISSED / no peer."""
    lines = ["| target | case | figure | |", "|---|---|---:|---|"]
    for name, case, figure, met in evaluate(measurements, best_peer):
        verdict = "no peer" if met is None else "met" if met else "**missed**"
        lines.append(f"| {name} | {case} | {figure} | {verdict} |")
    return "\n".join(lines)

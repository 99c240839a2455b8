"""Benchmark rows for graph layers: GCNConv and GATConv forward + backward vs PyTorch Geometric.

A synthetic power-law graph (sources drawn with probability ∝ rank^-0.8, so a few hubs have huge
out-degree) with random features; both sides use the same weights. Each timed call builds the
layer's graph, runs forward and backward and realizes the input-feature gradient (ours) or calls
backward (PyG). Registered by bench/rows.py's table (the lead adds the rows there).

After the timed rounds, each implementation's peak memory for one forward + backward is measured in
a fresh child process (bench/gnn_memory.py) and shown in the note column as "peak +X MB (abs Y GB)":
X is the step's peak RSS above the RSS right before it, Y the process's absolute peak. A child that
fails leaves a note instead. At the "tiny" scale only ours is measured (a PyG child spends ~8 s
importing torch_geometric, too slow for the smoke test).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lazytensor as lt
from bench.gnn_memory import node_features, power_law_graph
from bench.timing import OURS, Impl, Measurement, measure_case
from lazytensor import gnn

try:
    import torch
    import torch_geometric.nn as pyg_nn
except ImportError:  # the peer is optional
    torch = None  # type: ignore[assignment]
    pyg_nn = None  # type: ignore[assignment]

# nodes, edges, features per scale
GNN_SIZES: dict[str, tuple[int, int, int]] = {
    "full": (100_000, 1_000_000, 64),
    "quick": (10_000, 100_000, 32),
    "tiny": (200, 1_000, 8),
}


def _scale(cfg: Any) -> tuple[int, int, int]:
    return GNN_SIZES[cfg.scale]


MEMORY_IMPLS = {OURS: "lazytensor", "pyg": "pyg"}     # table impl name → bench/gnn_memory.py --impl
MEMORY_TIMEOUT_S = {"full": 600.0, "quick": 300.0, "tiny": 120.0}


def _fmt_bytes(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def measure_peak_memory(impl: str, layer: str, cfg: Any) -> dict[str, Any]:
    """Run bench/gnn_memory.py in a fresh process for one implementation at the row's scale.

    → its JSON result (bytes). Raises RuntimeError when the child fails or prints no result."""
    nodes, edges, feats = _scale(cfg)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, **{k: str(cfg.threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                             "MKL_NUM_THREADS")})
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [sys.executable, "-m", "bench.gnn_memory", "--impl", impl, "--layer", layer, "--nodes", str(nodes),
           "--edges", str(edges), "--feats", str(feats), "--threads", str(cfg.threads)]
    try:
        r = subprocess.run(cmd, check=False, cwd=root, env=env, capture_output=True, text=True,
                           timeout=MEMORY_TIMEOUT_S.get(cfg.scale, 600.0))
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"timed out after {e.timeout:.0f} s") from None
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        err = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        raise RuntimeError(f"exit {r.returncode}: {err[:100]}")
    return json.loads(lines[-1])


def memory_note(impl: str, layer: str, cfg: Any) -> str:
    """The note-column text for one implementation's peak memory, e.g. "peak +812 MB (abs 1.40 GB)".

    Never raises: an implementation without a memory script, the skipped PyG child at the tiny scale
    and a failing child each give a short note instead (none starts with "failed")."""
    if impl not in MEMORY_IMPLS:
        return ""
    if cfg.scale == "tiny" and impl != OURS:
        return "peak: not measured at tiny scale"
    try:
        got = measure_peak_memory(MEMORY_IMPLS[impl], layer, cfg)
    except (RuntimeError, OSError, ValueError) as e:
        return f"peak n/a (memory child: {e})"
    since = "" if got["reset"] else ", since process start"
    return f"peak +{_fmt_bytes(got['delta'])} (abs {_fmt_bytes(got['peak'])}{since})"


def _case(name: str, cfg: Any, make_pyg: Any, make_ours: Any) -> list[Measurement]:
    nodes, edges, feats = _scale(cfg)
    ei = power_law_graph(nodes, edges)
    x = node_features(nodes, feats)
    ours = make_ours(feats)
    lx = lt.tensor(x, requires_grad=True).realize()
    lei = lt.tensor(ei).realize()

    def run_ours() -> Any:
        lx.grad = None
        out = ours(lx, lei)
        out.sum().backward()
        return lx.grad.realize()

    impls = [Impl(OURS, run_ours)]
    if torch is not None and pyg_nn is not None:
        torch.manual_seed(0)
        theirs = make_pyg(feats)
        ours.load_state_dict(theirs.state_dict())
        tx = torch.tensor(x, requires_grad=True)
        tei = torch.tensor(ei)

        def run_pyg() -> Any:
            tx.grad = None
            theirs(tx, tei).sum().backward()
            return tx.grad

        impls.append(Impl("pyg", run_pyg))
    case = f"{nodes // 1000}k nodes, {edges // 1000}k edges, F={feats}, fwd+bwd"
    got = measure_case(name, case, impls, rounds=max(3, cfg.rounds // 3), warmup=cfg.warmup, rtol=1e-3,
                       atol=1e-4, work=edges * feats * 4 * 4, work_unit="GB/s")
    for m in got:
        if m.times:                       # an implementation that failed to run keeps its failure note
            note = memory_note(m.impl, name, cfg)
            m.note = f"{m.note}; {note}" if m.note else note
    return got


def row_gcn(cfg: Any) -> list[Measurement]:
    """GCNConv(F, F) forward + backward (self loops, symmetric normalization)."""
    return _case("gcn", cfg, lambda f: pyg_nn.GCNConv(f, f), lambda f: gnn.GCNConv(f, f))


def row_gat(cfg: Any) -> list[Measurement]:
    """GATConv(F, F/4, heads=4) forward + backward (self loops, attention softmax per target)."""
    return _case("gat", cfg, lambda f: pyg_nn.GATConv(f, f // 4, heads=4),
                 lambda f: gnn.GATConv(f, f // 4, heads=4))

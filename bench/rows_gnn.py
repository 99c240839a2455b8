"""Benchmark rows for graph layers: GCNConv and GATConv forward + backward vs PyTorch Geometric.

A synthetic power-law graph (sources drawn with probability ∝ rank^-0.8, so a few hubs have huge
out-degree) with random features; both sides use the same weights. Each timed call builds the
layer's graph, runs forward and backward and realizes the input-feature gradient (ours) or calls
backward (PyG). Registered by bench/rows.py's table (the lead adds the rows there).
"""
from __future__ import annotations

from typing import Any

import numpy as np

import lazytensor as lt
import lazytensor.gnn as gnn
from bench.timing import OURS, Impl, Measurement, measure_case

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


def power_law_graph(nodes: int, edges: int, seed: int = 0) -> np.ndarray:
    """(2, E) int64 edges whose sources follow a power law (hubs) and targets are uniform."""
    rng = np.random.default_rng(seed)
    weights = np.arange(1, nodes + 1, dtype=np.float64) ** -0.8
    src = rng.choice(nodes, size=edges, p=weights / weights.sum())
    dst = rng.integers(0, nodes, edges)
    perm = rng.permutation(nodes)                      # hubs spread over the id range
    return np.stack([perm[src], dst]).astype(np.int64)


def _scale(cfg: Any) -> tuple[int, int, int]:
    return GNN_SIZES[cfg.scale]


def _case(name: str, cfg: Any, make_pyg: Any, make_ours: Any) -> list[Measurement]:
    nodes, edges, feats = _scale(cfg)
    ei = power_law_graph(nodes, edges)
    x = np.random.default_rng(1).standard_normal((nodes, feats)).astype(np.float32)
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
    return measure_case(name, case, impls, rounds=max(3, cfg.rounds // 3), warmup=cfg.warmup, rtol=1e-3,
                        atol=1e-4, work=edges * feats * 4 * 4, work_unit="GB/s")


def row_gcn(cfg: Any) -> list[Measurement]:
    """GCNConv(F, F) forward + backward (self loops, symmetric normalization)."""
    return _case("gcn", cfg, lambda f: pyg_nn.GCNConv(f, f), lambda f: gnn.GCNConv(f, f))


def row_gat(cfg: Any) -> list[Measurement]:
    """GATConv(F, F/4, heads=4) forward + backward (self loops, attention softmax per target)."""
    return _case("gat", cfg, lambda f: pyg_nn.GATConv(f, f // 4, heads=4),
                 lambda f: gnn.GATConv(f, f // 4, heads=4))

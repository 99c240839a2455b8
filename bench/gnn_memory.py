"""Peak memory of one GCN/GAT forward + backward, measured in a fresh process per implementation.

`python -m bench.gnn_memory --impl lazytensor|pyg --layer gcn|gat --nodes N --edges E --feats F`
builds the same power-law graph, features and layer as bench/rows_gnn.py, runs one forward +
backward, and prints one JSON line: the resident set size right before the step (`before`), the
process's peak RSS during the step (`peak`, VmHWM; `getrusage` `ru_maxrss` off Linux) and their
difference (`delta`), all in bytes. The step's peak is isolated by resetting the kernel's
high-water mark (`echo 5 > /proc/self/clear_refs`, Linux) just before the step; where that is not
possible `reset` is false and `peak` is the peak since the process started.

Each implementation gets its own process so that neither library's allocator caches, imported
modules or freed-but-kept memory count against the other. Only NumPy is imported at module level:
the PyG child never imports lazytensor and the lazytensor child never imports torch.
`bench/rows_gnn.py` runs this script and puts the figures in the table's note column.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
from collections.abc import Callable
from typing import Any

import numpy as np

LAYERS = ("gcn", "gat")
IMPLS = ("lazytensor", "pyg")


def power_law_graph(nodes: int, edges: int, seed: int = 0) -> np.ndarray:
    """(2, E) int64 edges whose sources follow a power law (hubs) and targets are uniform."""
    rng = np.random.default_rng(seed)
    weights = np.arange(1, nodes + 1, dtype=np.float64) ** -0.8
    src = rng.choice(nodes, size=edges, p=weights / weights.sum())
    dst = rng.integers(0, nodes, edges)
    perm = rng.permutation(nodes)                      # hubs spread over the id range
    return np.stack([perm[src], dst]).astype(np.int64)


def node_features(nodes: int, feats: int) -> np.ndarray:
    """The (nodes, feats) float32 input features the benchmark rows use."""
    return np.random.default_rng(1).standard_normal((nodes, feats)).astype(np.float32)


def current_rss() -> int:
    """This process's resident set size now, in bytes (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _status_kib(field: str) -> int | None:
    """A `VmXXX:   N kB` field of /proc/self/status in bytes, or None where unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss() -> int:
    """This process's peak RSS in bytes: VmHWM where /proc has it, else getrusage's ru_maxrss.

    VmHWM is preferred because `ru_maxrss` also keeps the high-water mark the kernel carried over at
    exec from the forking parent (a child of a 360 MB benchmark process starts at 360 MB), which
    neither reflects this process nor is reset by `clear_refs`."""
    hwm = _status_kib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux ≥ 4.0); False where that fails."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _ours_step(layer: str, x: np.ndarray, ei: np.ndarray) -> Callable[[], Any]:
    import lazytensor as lt
    from lazytensor import gnn
    feats = x.shape[1]
    model = gnn.GCNConv(feats, feats) if layer == "gcn" else gnn.GATConv(feats, feats // 4, heads=4)
    lx = lt.tensor(x, requires_grad=True).realize()
    lei = lt.tensor(ei).realize()

    def step() -> Any:
        model(lx, lei).sum().backward()
        return lx.grad.realize()
    return step


def _pyg_step(layer: str, x: np.ndarray, ei: np.ndarray, threads: int) -> Callable[[], Any]:
    import torch
    import torch_geometric.nn as pyg_nn
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    feats = x.shape[1]
    model = pyg_nn.GCNConv(feats, feats) if layer == "gcn" else pyg_nn.GATConv(feats, feats // 4, heads=4)
    tx = torch.tensor(x, requires_grad=True)
    tei = torch.tensor(ei)

    def step() -> Any:
        model(tx, tei).sum().backward()
        return tx.grad
    return step


def measure(impl: str, layer: str, nodes: int, edges: int, feats: int, threads: int = 1) -> dict[str, Any]:
    """Build inputs and layer, run one forward + backward; → {"before", "peak", "delta", "reset"} (bytes)."""
    ei = power_law_graph(nodes, edges)
    x = node_features(nodes, feats)
    step = _ours_step(layer, x, ei) if impl == "lazytensor" else _pyg_step(layer, x, ei, threads)
    del x, ei                                           # both libraries hold their own copies
    gc.collect()
    reset = reset_peak()
    before = current_rss()
    result = step()                                     # kept alive until the peak is read
    peak = peak_rss()
    del result
    return {"impl": impl, "layer": layer, "before": before, "peak": peak, "delta": max(0, peak - before),
            "reset": reset}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: measure one implementation and print the JSON line."""
    p = argparse.ArgumentParser(prog="python -m bench.gnn_memory", description=__doc__.splitlines()[0])
    p.add_argument("--impl", choices=IMPLS, required=True)
    p.add_argument("--layer", choices=LAYERS, required=True)
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--edges", type=int, required=True)
    p.add_argument("--feats", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    print(json.dumps(measure(args.impl, args.layer, args.nodes, args.edges, args.feats, args.threads)))


if __name__ == "__main__":
    main()

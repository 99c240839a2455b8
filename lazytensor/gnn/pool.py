"""Graph pooling: global sum/mean/max readouts over a batch vector, and TopKPooling."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from lazytensor.creation import empty
from lazytensor.gnn.utils import edge_array, softmax
from lazytensor.nn import init
from lazytensor.nn.module import Module, Parameter
from lazytensor.sparse.ops import scatter
from lazytensor.sparse.structure import host_index, index_tensor
from lazytensor.tensor import Tensor


def _pool(x: Tensor, batch: Tensor | None, size: int | None, reduce: str, name: str) -> Tensor:
    if batch is None:
        reducer = {"sum": x.sum, "mean": x.mean, "max": x.amax}[reduce]
        return reducer(-2, keepdim=x.ndim <= 2)
    if batch.ndim != 1 or batch.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: batch must be 1-D with one graph id per node: x {tuple(x.shape)}, "
                         f"batch {tuple(batch.shape)}")
    return scatter(x, batch, 0, size, reduce)


def global_add_pool(x: Tensor, batch: Tensor | None = None, size: int | None = None) -> Tensor:
    """Sum of node features per graph → (num_graphs, F)."""
    return _pool(x, batch, size, "sum", "global_add_pool")


def global_mean_pool(x: Tensor, batch: Tensor | None = None, size: int | None = None) -> Tensor:
    """Mean of node features per graph → (num_graphs, F)."""
    return _pool(x, batch, size, "mean", "global_mean_pool")


def global_max_pool(x: Tensor, batch: Tensor | None = None, size: int | None = None) -> Tensor:
    """Feature-wise max over the nodes of each graph → (num_graphs, F)."""
    return _pool(x, batch, size, "max", "global_max_pool")


def topk_per_graph(score: np.ndarray, ratio: float | int, batch: np.ndarray) -> np.ndarray:
    """Indices of the ceil(ratio·n_g) (or int(ratio) if ratio >= 1) best-scored nodes of every graph,
    graph by graph, best first within a graph (PyG's order)."""
    num_graphs = int(batch.max()) + 1 if batch.size else 0
    counts = np.bincount(batch, minlength=num_graphs)
    if ratio >= 1:
        k = np.minimum(np.full(num_graphs, int(ratio)), counts)
    else:
        k = np.ceil(float(ratio) * counts.astype(np.float32)).astype(np.int64)
    order = np.lexsort((-score, batch))          # by graph, then descending score
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if num_graphs else np.zeros(0, np.int64)
    rank = np.arange(order.size) - starts[batch[order]]
    return order[rank < k[batch[order]]]


def above_min_score(score: np.ndarray, min_score: float, batch: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Indices (ascending) of the nodes scoring above min_score; a graph whose best node is below it
    keeps the nodes within `tol` of its best, so no graph loses all its nodes (as PyG)."""
    num_graphs = int(batch.max()) + 1 if batch.size else 0
    best = np.full(num_graphs, -np.inf, dtype=score.dtype)
    np.maximum.at(best, batch, score)
    threshold = np.minimum(best[batch] - np.asarray(tol, score.dtype), np.asarray(min_score, score.dtype))
    return np.nonzero(score > threshold)[0]


def filter_adj(edge_index: np.ndarray, edge_attr: Tensor | None, perm: np.ndarray,
               num_nodes: int) -> tuple[np.ndarray, Tensor | None]:
    """Keep the edges whose two ends are both kept, renumbered by their position in perm."""
    mapping = np.full(num_nodes, -1, dtype=np.int64)
    mapping[perm] = np.arange(perm.size)
    row, col = mapping[edge_index[0]], mapping[edge_index[1]]
    keep = np.nonzero((row >= 0) & (col >= 0))[0]
    attr = None if edge_attr is None else edge_attr.index_select(0, index_tensor(keep, edge_attr.device))
    return np.stack([row[keep], col[keep]]), attr


class SelectTopK(Module):
    """The scoring half of TopKPooling: holds the projection vector `weight` (1, in_channels)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.weight = Parameter(empty(1, in_channels))
        bound = 1.0 / math.sqrt(in_channels)
        init.uniform_(self.weight, -bound, bound)


class TopKPooling(Module):
    """Graph U-Net pooling: score y = tanh(X p / ||p||), keep the top ratio of nodes per graph,
    scale their features by their score (so p gets a gradient), drop edges to removed nodes.
    With min_score, y = softmax over each graph of X p and the nodes with y > min_score are kept
    (at least the best of each graph). ratio >= 1 is a node count k; multiplier scales the output;
    nonlinearity is a Tensor method name ('tanh', 'sigmoid', ...) or a callable.

    forward → (x, edge_index, edge_attr, batch, perm, score[perm]) as PyG."""

    def __init__(self, in_channels: int, ratio: float | int = 0.5, min_score: float | None = None,
                 multiplier: float = 1.0, nonlinearity: Any = "tanh") -> None:
        super().__init__()
        if min_score is None and ratio is None:
            raise ValueError("TopKPooling: at least one of 'ratio' and 'min_score' must be given")
        self.in_channels, self.ratio, self.min_score, self.multiplier = in_channels, ratio, min_score, multiplier
        self.nonlinearity = nonlinearity
        self.select = SelectTopK(in_channels)   # parameter name select.weight, as PyG

    def _act(self, t: Tensor) -> Tensor:
        if callable(self.nonlinearity):
            return self.nonlinearity(t)
        return getattr(t, self.nonlinearity)()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None, batch: Tensor | None = None,
                attn: Tensor | None = None) -> tuple[Any, ...]:
        ei = edge_array(edge_index, "TopKPooling")
        n = x.shape[0]
        host_batch = np.zeros(n, np.int64) if batch is None else host_index(batch, "TopKPooling batch")
        attn = x if attn is None else attn
        attn = attn.reshape(-1, 1) if attn.ndim == 1 else attn
        weight = self.select.weight
        score = (attn * weight).sum(-1)
        if self.min_score is None:
            score = self._act(score / weight.norm(p=2, dim=-1))
        else:
            batch_t = index_tensor(host_batch, x.device) if batch is None else batch
            num_graphs = int(host_batch.max()) + 1 if host_batch.size else 0
            score = softmax(score, batch_t, None, num_graphs)
        # which nodes survive is structure: chosen on the host from the realized scores
        host_score = score.detach().numpy()
        if self.min_score is None:
            perm = topk_per_graph(host_score, self.ratio, host_batch)
        else:
            perm = above_min_score(host_score, self.min_score, host_batch)
        perm_t = index_tensor(perm, x.device)
        kept_score = score.index_select(0, perm_t)
        out = x.index_select(0, perm_t) * kept_score.reshape(-1, 1)
        if self.multiplier != 1:
            out = out * self.multiplier
        new_ei, new_attr = filter_adj(ei, edge_attr, perm, n)
        new_batch = index_tensor(host_batch[perm], x.device)
        return out, index_tensor(new_ei, x.device), new_attr, new_batch, perm_t, kept_score

    def __repr__(self) -> str:
        return (f"TopKPooling({self.in_channels}, ratio={self.ratio}, multiplier={self.multiplier}, "
                f"min_score={self.min_score})")

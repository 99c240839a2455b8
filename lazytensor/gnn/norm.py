"""Graph normalization layers (PairNorm, GraphNorm) and DropEdge, as in PyG."""
from __future__ import annotations

from typing import Any

from lazytensor.creation import ones, zeros
from lazytensor.gnn.utils import dropout_edge, maybe_num_nodes
from lazytensor.nn.module import Module, Parameter
from lazytensor.sparse.ops import scatter
from lazytensor.tensor import Tensor


def _batch_size(batch: Tensor, batch_size: int | None) -> int:
    return batch_size if batch_size is not None else maybe_num_nodes(batch.reshape(1, -1))


class PairNorm(Module):
    """PairNorm (Zhao & Akoglu): center features per graph, then rescale so the mean squared row
    norm is scale² (or every row norm is `scale` with scale_individually=True)."""

    def __init__(self, scale: float = 1.0, scale_individually: bool = False, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale, self.scale_individually, self.eps = scale, scale_individually, eps

    def forward(self, x: Tensor, batch: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        if batch is None:
            x = x - x.mean(0, keepdim=True)
            if not self.scale_individually:
                return self.scale * x / (self.eps + x.pow(2).sum(-1).mean()).sqrt()
            return self.scale * x / (self.eps + x.norm(2, -1, keepdim=True))
        size = _batch_size(batch, batch_size)
        x = x - scatter(x, batch, 0, size, "mean").index_select(0, batch)
        if not self.scale_individually:
            spread = scatter(x.pow(2).sum(-1, keepdim=True), batch, 0, size, "mean").index_select(0, batch)
            return self.scale * x / (self.eps + spread).sqrt()
        return self.scale * x / (self.eps + x.norm(2, -1, keepdim=True))

    def __repr__(self) -> str:
        return "PairNorm()"


class GraphNorm(Module):
    """GraphNorm (Cai et al.): per graph, x' = γ ⊙ (x − α ⊙ mean) / std + β, with a learnable
    fraction α of the mean removed."""

    def __init__(self, in_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.in_channels, self.eps = in_channels, eps
        self.weight = Parameter(ones(in_channels))
        self.bias = Parameter(zeros(in_channels))
        self.mean_scale = Parameter(ones(in_channels))

    def forward(self, x: Tensor, batch: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        if batch is None:
            mean = x.mean(0, keepdim=True)
            out = x - mean * self.mean_scale
            std = (out.pow(2).mean(0, keepdim=True) + self.eps).sqrt()
            return self.weight * out / std + self.bias
        size = _batch_size(batch, batch_size)
        mean = scatter(x, batch, 0, size, "mean")
        out = x - mean.index_select(0, batch) * self.mean_scale
        var = scatter(out.pow(2), batch, 0, size, "mean")
        std = (var + self.eps).sqrt().index_select(0, batch)
        return self.weight * out / std + self.bias

    def __repr__(self) -> str:
        return f"GraphNorm({self.in_channels})"


class DropEdge(Module):
    """Drop each edge with probability p while training (dropout_edge as a module); identity in eval."""

    def __init__(self, p: float = 0.5, force_undirected: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"DropEdge: p must be in [0, 1], got {p}")
        self.p, self.force_undirected = p, force_undirected

    def forward(self, edge_index: Tensor, edge_attr: Tensor | None = None) -> Any:
        new_ei, kept = dropout_edge(edge_index, self.p, self.force_undirected, self.training)
        if edge_attr is None:
            return new_ei
        if self.force_undirected:
            return new_ei, edge_attr.index_select(0, kept)
        import numpy as np
        from lazytensor.sparse.structure import index_tensor
        ids = np.nonzero(kept.numpy())[0]
        return new_ei, edge_attr.index_select(0, index_tensor(ids, edge_attr.device))

    def __repr__(self) -> str:
        return f"DropEdge(p={self.p})"

"""Aggregations: how the messages arriving at a node are reduced (torch_geometric.nn.aggr).

Each aggregation is a Module (so a learnable temperature is a parameter named `aggr_module.t`
inside a layer, as in PyG) whose forward maps messages (E, ...) and their target ids (E,) to
(dim_size, ...). Nodes that receive no message aggregate to 0. All of them are built from the
scatter reductions of lazytensor.sparse, so they are O(E·F) and differentiable.
"""
from __future__ import annotations

import math
from typing import Any

from lazytensor.creation import full, zeros
from lazytensor.gnn.utils import softmax
from lazytensor.nn import init
from lazytensor.nn.module import Module, Parameter
from lazytensor.sparse.ops import scatter
from lazytensor.sparse.structure import expand_ptr, host_index, index_tensor
from lazytensor.tensor import Tensor


class Aggregation(Module):
    """Base class: forward(x, index=None, ptr=None, dim_size=None, dim=-2) → reduced tensor."""

    def forward(self, x: Tensor, index: Tensor | None = None, ptr: Any = None, dim_size: int | None = None,
                dim: int = -2) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def reduce(self, x: Tensor, index: Tensor | None = None, ptr: Any = None, dim_size: int | None = None,
               dim: int = -2, reduce: str = "sum") -> Tensor:
        """Scatter-reduce x along `dim` into the groups named by `index` (or the CSR pointer `ptr`)."""
        axis = self._axis(x, dim)
        index, dim_size = self._groups(x, axis, index, ptr, dim_size)
        return scatter(x, index, axis, dim_size, reduce)

    def _axis(self, x: Tensor, dim: int) -> int:
        if not -x.ndim <= dim < x.ndim:
            raise ValueError(f"{type(self).__name__}: dim {dim} is out of range for messages of shape "
                             f"{tuple(x.shape)}")
        return dim % x.ndim

    def _groups(self, x: Tensor, axis: int, index: Tensor | None, ptr: Any,
                dim_size: int | None) -> tuple[Tensor, int | None]:
        """The group id of every slice of x along `axis` (from index, or expanded from ptr)."""
        if index is not None:
            return index, dim_size
        if ptr is not None:
            host_ptr = host_index(ptr, f"{type(self).__name__} ptr")
            size = len(host_ptr) - 1 if dim_size is None else dim_size
            return index_tensor(expand_ptr(host_ptr), x.device), size
        # no grouping at all: every slice belongs to the single group 0
        return index_tensor(_zeros_index(x.shape[axis]), x.device), 1 if dim_size is None else dim_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _zeros_index(n: int) -> Any:
    import numpy as np
    return np.zeros(n, dtype=np.int64)


class SumAggregation(Aggregation):
    """Σ of the messages (aggr='sum' or 'add'). One fused gather → message → scatter kernel."""

    def forward(self, x: Tensor, index: Tensor | None = None, ptr: Any = None, dim_size: int | None = None,
                dim: int = -2) -> Tensor:
        return self.reduce(x, index, ptr, dim_size, dim, "sum")


class MeanAggregation(Aggregation):
    """Mean of the messages (aggr='mean')."""

    def forward(self, x: Tensor, index: Tensor | None = None, ptr: Any = None, dim_size: int | None = None,
                dim: int = -2) -> Tensor:
        return self.reduce(x, index, ptr, dim_size, dim, "mean")


class MaxAggregation(Aggregation):
    """Feature-wise max of the messages (aggr='max')."""

    def forward(self, x: Tensor, index: Tensor | None = None, ptr: Any = None, dim_size: int | None = None,
                dim: int = -2) -> Tensor:
        return self.reduce(x, index, ptr, dim_size, dim, "max")


class MinAggregation(Aggregation):
    """Feature-wise min of the messages (aggr='min')."""

    def forward(self, x: Tensor, index: Tensor | None = None, ptr: Any = None, dim_size: int | None = None,
                dim: int = -2) -> Tensor:
        return self.reduce(x, index, ptr, dim_size, dim, "min")


class VarAggregation(Aggregation):
    """Feature-wise variance mean(x²) - mean(x)² of the messages (aggr='var').

    semi_grad: no gradient flows through the mean(x²) term (as PyG)."""

    def __init__(self, semi_grad: bool = False) -> None:
        super().__init__()
        self.semi_grad = semi_grad

    def forward(self, x: Tensor, index: Tensor | None = None, ptr: Any = None, dim_size: int | None = None,
                dim: int = -2) -> Tensor:
        mean = self.reduce(x, index, ptr, dim_size, dim, "mean")
        squares = x.detach() * x.detach() if self.semi_grad else x * x
        mean2 = self.reduce(squares, index, ptr, dim_size, dim, "mean")
        return mean2 - mean * mean


class StdAggregation(Aggregation):
    """Feature-wise standard deviation of the messages (aggr='std').

    As PyG: sqrt(max(var, 1e-5)), and exactly 0 (with zero gradient) where var <= 1e-5, so a
    node with one message or identical messages has a defined gradient."""

    def __init__(self, semi_grad: bool = False) -> None:
        super().__init__()
        self.var_aggr = VarAggregation(semi_grad)

    def forward(self, x: Tensor, index: Tensor | None = None, ptr: Any = None, dim_size: int | None = None,
                dim: int = -2) -> Tensor:
        var = self.var_aggr(x, index, ptr, dim_size, dim)
        out = var.clamp(min=1e-5).sqrt()
        return out.masked_fill(out <= math.sqrt(1e-5), 0.0)


class SoftmaxAggregation(Aggregation):
    """Softmax-attention over the messages (DeeperGCN; aggr='softmax'):
    out_i = Σ_j softmax_j(t · x_j) ⊙ x_j, feature-wise, the softmax taken over each node's messages.

    t: initial inverse temperature; learn: make t a parameter (`t`, one per channel with
    channels > 1); semi_grad: no gradient through the softmax weights (only with a fixed t)."""

    def __init__(self, t: float = 1.0, learn: bool = False, semi_grad: bool = False,
                 channels: int = 1) -> None:
        super().__init__()
        if learn and semi_grad:
            raise ValueError("SoftmaxAggregation: 'semi_grad' cannot be used with a learnable temperature "
                             "(learn=True)")
        if not learn and channels != 1:
            raise ValueError(f"SoftmaxAggregation: channels={channels} needs learn=True (a fixed temperature "
                             f"is one number)")
        self._init_t, self.learn, self.semi_grad, self.channels = t, learn, semi_grad, channels
        self.t: Any = Parameter(full((channels,), float(t))) if learn else float(t)

    def reset_parameters(self) -> None:
        if isinstance(self.t, Tensor):
            init.constant_(self.t, float(self._init_t))

    def forward(self, x: Tensor, index: Tensor | None = None, ptr: Any = None, dim_size: int | None = None,
                dim: int = -2) -> Tensor:
        axis = self._axis(x, dim)
        index, dim_size = self._groups(x, axis, index, ptr, dim_size)
        t = self.t
        if self.channels != 1:
            if x.ndim != 2:
                raise ValueError(f"SoftmaxAggregation: channels={self.channels} needs 2-D messages (E, "
                                 f"{self.channels}), got {tuple(x.shape)}")
            t = t.reshape(-1, self.channels)
        alpha = x
        if isinstance(t, Tensor) or t != 1:
            alpha = x * t
        if self.semi_grad:
            alpha = alpha.detach()
        alpha = softmax(alpha, index, None, dim_size, axis)
        return scatter(x * alpha, index, axis, dim_size, "sum")

    def __repr__(self) -> str:
        return f"SoftmaxAggregation(learn={self.learn})"


class PowerMeanAggregation(Aggregation):
    """Power mean (DeeperGCN; aggr='powermean'): mean(clamp(x)^p)^(1/p), values clamped to
    [clamp_min, clamp_max] before each power (so isolated nodes give clamp_min^(1/p), as PyG).
    learn makes p a parameter `p` (one per channel with channels > 1)."""

    def __init__(self, p: float = 1.0, learn: bool = False, channels: int = 1, clamp_min: float | None = 1e-4,
                 clamp_max: float | None = 100.0) -> None:
        super().__init__()
        if not learn and channels != 1:
            raise ValueError(f"PowerMeanAggregation: channels={channels} needs learn=True (a fixed power is "
                             f"one number)")
        self._init_p, self.learn, self.channels = p, learn, channels
        self.min_value, self.max_value = clamp_min, clamp_max
        self.p: Any = Parameter(full((channels,), float(p))) if learn else float(p)

    def reset_parameters(self) -> None:
        if isinstance(self.p, Tensor):
            init.constant_(self.p, float(self._init_p))

    def forward(self, x: Tensor, index: Tensor | None = None, ptr: Any = None, dim_size: int | None = None,
                dim: int = -2) -> Tensor:
        p = self.p
        if self.channels != 1:
            if x.ndim != 2:
                raise ValueError(f"PowerMeanAggregation: channels={self.channels} needs 2-D messages (E, "
                                 f"{self.channels}), got {tuple(x.shape)}")
            p = p.reshape(-1, self.channels)
        is_identity = not isinstance(p, Tensor) and p == 1
        if not is_identity:
            x = x.clamp(min=self.min_value, max=self.max_value).pow(p)
        out = self.reduce(x, index, ptr, dim_size, dim, "mean")
        if not is_identity:
            out = out.clamp(min=self.min_value, max=self.max_value).pow(1.0 / p)
        return out

    def __repr__(self) -> str:
        return f"PowerMeanAggregation(learn={self.learn})"


class VariancePreservingAggregation(Aggregation):
    """Σ of the messages divided by sqrt(their count) (aggr='variance_preserving'; a node with no
    message gives 0)."""

    def forward(self, x: Tensor, index: Tensor | None = None, ptr: Any = None, dim_size: int | None = None,
                dim: int = -2) -> Tensor:
        axis = self._axis(x, dim)
        index, dim_size = self._groups(x, axis, index, ptr, dim_size)
        out = scatter(x, index, axis, dim_size, "sum")
        ones = zeros(index.shape[0], dtype=x.dtype, device=x.device) + 1
        count = scatter(ones, index, 0, out.shape[axis], "sum")
        view = [1] * x.ndim
        view[axis] = out.shape[axis]
        return out / count.sqrt().clamp(min=1.0).reshape(tuple(view))


AGGREGATIONS: dict[str, type[Aggregation]] = {
    "add": SumAggregation, "sum": SumAggregation, "mean": MeanAggregation, "max": MaxAggregation,
    "min": MinAggregation, "softmax": SoftmaxAggregation, "var": VarAggregation, "std": StdAggregation,
    "powermean": PowerMeanAggregation, "variancepreserving": VariancePreservingAggregation,
}


def aggregation_resolver(query: Any, **kwargs: Any) -> Aggregation:
    """An Aggregation from a name ('sum', 'softmax', 'SoftmaxAggregation', ...) or pass one through."""
    if isinstance(query, Aggregation):
        return query
    if isinstance(query, (list, tuple)):
        raise NotImplementedError("aggregation_resolver: lists of aggregations (PyG's MultiAggregation) are "
                                  "not supported yet; pass one name")
    if not isinstance(query, str):
        raise TypeError(f"aggregation_resolver: aggr must be a name or an Aggregation, got "
                        f"{type(query).__name__}")
    key = query.lower().replace("_", "").replace("-", "").replace(" ", "")
    key = key.removesuffix("aggregation")
    if key not in AGGREGATIONS:
        raise ValueError(f"aggr must be one of {tuple(AGGREGATIONS)} (or an Aggregation), got {query!r}")
    return AGGREGATIONS[key](**kwargs)

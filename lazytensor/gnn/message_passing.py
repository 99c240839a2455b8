"""MessagePassing: the gather → message → aggregate → update skeleton of every graph layer.

As in PyG, a layer implements `message(...)` and names what it needs: an argument `x_j` is the
node tensor `x` read at each edge's source, `x_i` at its target, anything else is passed
through (edge features, per-edge weights). `propagate` builds that graph of lazy ops; because
the reads are gathers (index_select) and the aggregation is one scatter (index_add /
scatter_reduce), the scheduler fuses gather → message → scatter into a single kernel per
aggregation, with no E×F message tensor in memory.

Kernels per propagate() forward (realized inputs, lazytensor.gnn.aggr): sum 1; max 2; mean,
min, powermean, variance_preserving 3; std, var 4; softmax 4 (group max, exp stored once per
edge and feature, group sum, weighted sum).
"""
from __future__ import annotations

import inspect
from typing import Any

from lazytensor.gnn.aggr import aggregation_resolver
from lazytensor.nn.module import Module
from lazytensor.sparse.tensor import SparseTensor
from lazytensor.sparse.structure import index_tensor
from lazytensor.tensor import Tensor

SPECIAL_ARGS = ("index", "ptr", "dim_size", "size_i", "size_j", "edge_index", "edge_index_i", "edge_index_j")


class MessagePassing(Module):
    """Base class of message-passing layers (torch_geometric.nn.MessagePassing).

    aggr: a name ('add'/'sum', 'mean', 'max', 'min', 'softmax', 'std', 'var') or an Aggregation
    module, built with aggr_kwargs (e.g. aggr='softmax', aggr_kwargs=dict(learn=True)); it is
    kept as the submodule `aggr_module`. flow: 'source_to_target' (messages go from
    edge_index[0] to edge_index[1]) or 'target_to_source'. Nodes with no incoming edge
    aggregate to 0."""

    def __init__(self, aggr: Any = "sum", *, aggr_kwargs: dict[str, Any] | None = None,
                 flow: str = "source_to_target", node_dim: int = -2) -> None:
        super().__init__()
        try:
            aggr_module = aggregation_resolver(aggr, **(aggr_kwargs or {}))
        except ValueError as err:
            raise ValueError(f"{type(self).__name__}: {err}") from None
        if flow not in ("source_to_target", "target_to_source"):
            raise ValueError(f"{type(self).__name__}: flow must be 'source_to_target' or 'target_to_source', "
                             f"got {flow!r}")
        self.aggr = aggr if isinstance(aggr, str) else repr(aggr)
        self.aggr_module = aggr_module
        self.flow = flow
        self.node_dim = node_dim
        self._message_args = _arg_names(self.message)
        self._edge_update_args = _arg_names(self.edge_update)

    # ---- the pieces a layer overrides ----
    def message(self, x_j: Tensor) -> Tensor:
        """The message sent along each edge (default: the source node's features)."""
        return x_j

    def aggregate(self, inputs: Tensor, index: Tensor, ptr: Any = None, dim_size: int | None = None) -> Tensor:
        """Reduce the messages arriving at each node (dim 0 of `inputs`) with `aggr_module`."""
        return self.aggr_module(inputs, index, ptr=ptr, dim_size=dim_size, dim=0)

    def update(self, inputs: Tensor) -> Tensor:
        """Map each node's aggregated message to its new value (default: identity)."""
        return inputs

    def edge_update(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}: edge_updater() needs edge_update() to be defined")

    # ---- the driver ----
    def _indices(self, edge_index: Any) -> tuple[Tensor, Tensor]:
        """(source index j, target index i) of every edge, as int64 tensors."""
        if isinstance(edge_index, SparseTensor):
            # PyG's convention for a sparse adjacency: adj_t[target, source]
            return edge_index.col_tensor(), edge_index.row_tensor()
        if not isinstance(edge_index, Tensor) or edge_index.ndim != 2 or edge_index.shape[0] != 2:
            shape = tuple(edge_index.shape) if hasattr(edge_index, "shape") else type(edge_index).__name__
            raise ValueError(f"{type(self).__name__}.propagate: edge_index must be a (2, E) integer tensor or a "
                             f"SparseTensor, got {shape}")
        if not edge_index.dtype.is_int:
            raise TypeError(f"{type(self).__name__}.propagate: edge_index must be integer, got {edge_index.dtype}")
        src, dst = edge_index[0], edge_index[1]
        return (src, dst) if self.flow == "source_to_target" else (dst, src)

    def _sizes(self, names: list[str], size: Any, kwargs: dict[str, Any]) -> list[int | None]:
        """[number of source nodes, number of target nodes], as PyG: from `size`, else from the node
        tensors that message() reads as `*_j` / `*_i` (both halves of a (source, target) pair)."""
        sizes: list[int | None] = [None, None] if size is None else [int(size[0]), int(size[1])]
        j_side, i_side = (0, 1) if self.flow == "source_to_target" else (1, 0)
        for name in names:
            if not (name.endswith("_j") or name.endswith("_i")) or name[:-2] not in kwargs:
                continue
            value = kwargs[name[:-2]]
            if isinstance(value, tuple):
                # a pair sets both sides; its position k is side k (side j is 0 for source_to_target)
                sides = [(0, value[0]), (1, value[1])]
            else:
                sides = [(j_side if name.endswith("_j") else i_side, value)]
            for side, tensor in sides:
                if isinstance(tensor, Tensor) and tensor.ndim > 0:
                    if sizes[side] is not None and sizes[side] != tensor.shape[0]:
                        raise ValueError(f"{type(self).__name__}.propagate: {name[:-2]} has "
                                         f"{tensor.shape[0]} nodes on one side of the graph, but that side "
                                         f"has {sizes[side]}")
                    sizes[side] = tensor.shape[0]
        return sizes

    def _collect(self, names: list[str], edge_index: Any, size: Any,
                 kwargs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of message()/edge_update(): `*_j` / `*_i` gathered per edge."""
        j_index, i_index = self._indices(edge_index)
        if size is None and isinstance(edge_index, SparseTensor):
            size = (edge_index.shape[1], edge_index.shape[0])     # adj_t is [target, source]
        sizes = self._sizes(names, size, kwargs)
        j_side, i_side = (0, 1) if self.flow == "source_to_target" else (1, 0)
        out: dict[str, Any] = {}
        for name in names:
            if name.endswith("_j") or name.endswith("_i"):
                base, side = name[:-2], name[-1]
                if base not in kwargs:
                    raise TypeError(f"{type(self).__name__}.message needs {name!r}, so propagate() needs "
                                    f"{base}=")
                value = kwargs[base]
                if isinstance(value, tuple):
                    value = value[j_side] if side == "j" else value[i_side]
                if value is None:
                    out[name] = None
                    continue
                out[name] = value.index_select(0, j_index if side == "j" else i_index)
            elif name == "index" or name == "edge_index_i":
                out[name] = i_index
            elif name == "edge_index_j":
                out[name] = j_index
            elif name in ("dim_size", "size_i"):
                out[name] = sizes[i_side] if sizes[i_side] is not None else sizes[j_side]
            elif name == "size_j":
                out[name] = sizes[j_side] if sizes[j_side] is not None else sizes[i_side]
            elif name == "ptr":
                out[name] = None
            elif name == "edge_index":
                out[name] = edge_index
            else:
                out[name] = kwargs.get(name)
        out["_index"] = i_index
        out["_dim_size"] = sizes[i_side] if sizes[i_side] is not None else sizes[j_side]
        return out

    def propagate(self, edge_index: Any, size: tuple[int, int] | None = None, **kwargs: Any) -> Tensor:
        """Run message → aggregate → update over the edges; kwargs feed message() by name."""
        if isinstance(edge_index, SparseTensor) and edge_index.values_or_none() is not None \
                and "edge_weight" in self._message_args and "edge_weight" not in kwargs:
            kwargs["edge_weight"] = edge_index.values()
        collected = self._collect(self._message_args, edge_index, size, kwargs)
        index, dim_size = collected.pop("_index"), collected.pop("_dim_size")
        messages = self.message(**{k: collected[k] for k in self._message_args})
        out = self.aggregate(messages, index=index, ptr=None, dim_size=dim_size)
        return self.update(out)

    def edge_updater(self, edge_index: Any, size: tuple[int, int] | None = None, **kwargs: Any) -> Tensor:
        """Compute per-edge values with edge_update(), arguments collected as in propagate()."""
        collected = self._collect(self._edge_update_args, edge_index, size, kwargs)
        return self.edge_update(**{k: collected[k] for k in self._edge_update_args})

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _arg_names(fn: Any) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def edge_index_tensor(edge_index: Any) -> Any:
    """Pass SparseTensors and lt.Tensors through; turn lists/arrays into an int64 (2, E) tensor."""
    if isinstance(edge_index, (Tensor, SparseTensor)):
        return edge_index
    import numpy as np
    return index_tensor(np.asarray(edge_index))

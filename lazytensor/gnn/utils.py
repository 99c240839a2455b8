"""Graph utilities with torch_geometric.utils' names and semantics.

Edge lists are (2, E) int64 tensors: row 0 holds sources, row 1 targets. Edits of the edge
*structure* (dropping self loops, keeping a subset of nodes) are index bookkeeping done on the
host (see lazytensor.sparse.structure); edge *values* (weights, features) are moved with
lazytensor gathers so they stay differentiable.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lazytensor import dtypes
from lazytensor.creation import full, rand, zeros
from lazytensor.functions import cat
from lazytensor.sparse.ops import scatter
from lazytensor.sparse.structure import check_in_range, host_index, index_tensor
from lazytensor.tensor import Tensor


def maybe_num_nodes(edge_index: Any, num_nodes: int | None = None) -> int:
    """num_nodes if given, else 1 + the largest node id in edge_index (0 for no edges)."""
    if num_nodes is not None:
        return int(num_nodes)
    ei = host_index(edge_index, "edge_index")
    return int(ei.max()) + 1 if ei.size else 0


def edge_array(edge_index: Any, op: str) -> np.ndarray:
    """A (2, E) edge list as a host int64 array, with a clear error for any other shape."""
    ei = host_index(edge_index, op)
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise ValueError(f"{op}: edge_index must have shape (2, E), got {tuple(ei.shape)}")
    return ei


def _take(attr: Tensor | None, keep: np.ndarray) -> Tensor | None:
    """attr[keep] along dim 0 as a lazy gather (None stays None)."""
    if attr is None:
        return None
    return attr.index_select(0, index_tensor(keep, attr.device))


def degree(index: Tensor, num_nodes: int | None = None, dtype: Any = None) -> Tensor:
    """How often each node id occurs in the 1-D `index` (torch_geometric.utils.degree)."""
    n = maybe_num_nodes(index.reshape(1, -1), num_nodes)
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.default_float
    ones = zeros(index.shape[0], dtype=dt, device=index.device) + 1
    return zeros(n, dtype=dt, device=index.device).index_add(0, index, ones)


def softmax(src: Tensor, index: Tensor, ptr: Any = None, num_nodes: int | None = None, dim: int = 0) -> Tensor:
    """Softmax of `src` within the groups given by `index` (all entries sharing a target node).

    As torch_geometric.utils.softmax: the group max (treated as a constant) is subtracted for
    stability, and the denominator gets 1e-16 so an all-underflow group gives 0, not NaN."""
    if dim != 0:
        src = src.movedim(dim, 0)
    n = maybe_num_nodes(index.reshape(1, -1), num_nodes)
    src_max = _group_max(src.detach(), index, n)
    out = stored_exp(src - src_max.index_select(0, index))
    out_sum = scatter(out, index, 0, n, "sum") + 1e-16
    out = out / out_sum.index_select(0, index)
    return out.movedim(0, dim) if dim != 0 else out


def _group_max(src: Tensor, index: Tensor, num_groups: int) -> Tensor:
    """The max of src (E, ...) over each group of dim 0 named by index (E,) → (num_groups, ...).

    Only read back at the groups' own members, so a group with no member may keep -inf: one
    scatter, without the counting pass that scatter(..., 'max') needs to give empty groups 0."""
    if index.shape[0] == 0:
        return scatter(src, index, 0, num_groups, "max")
    full_index = index.reshape((-1,) + (1,) * (src.ndim - 1)).expand(tuple(src.shape))
    base = full((num_groups,) + tuple(src.shape[1:]), float("-inf"), dtype=src.dtype, device=src.device)
    return base.scatter_reduce(0, full_index, src, "amax", include_self=True)


def stored_exp(x: Tensor) -> Tensor:
    """exp(x), computed once into a buffer that both the forward and the backward pass read.

    The gradient rule of exp rebuilds exp(x) from x, so every backward kernel that needs it (here
    the serial scatters of the logits' gradient to the source and target nodes) would evaluate exp
    again per element. Instead the value is stored, detached, and multiplied by 1 + (x - x̄) with
    x̄ = x.detach(): the factor is exactly 1 (x - x̄ is replaced by 0 where x is not finite, so
    exp(-inf) stays 0 with gradient 0), and its derivative makes d out / d x = the stored value."""
    value = x.exp().contiguous().detach()
    stopped = x.detach()
    delta = (x - stopped).masked_fill(~stopped.isfinite(), 0.0)
    return value * (delta + 1.0)


def remove_self_loops(edge_index: Tensor, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Drop every edge (i, i)."""
    ei = edge_array(edge_index, "remove_self_loops")
    keep = np.nonzero(ei[0] != ei[1])[0]
    return index_tensor(ei[:, keep], edge_index.device), _take(edge_attr, keep)


def contains_self_loops(edge_index: Tensor) -> bool:
    ei = edge_array(edge_index, "contains_self_loops")
    return bool(np.any(ei[0] == ei[1]))


def _loop_attr(edge_index: np.ndarray, edge_attr: Tensor, num_nodes: int, fill_value: Any) -> Tensor:
    """Features of new self loops: a constant, a tensor, or a reduction of each node's in-edges."""
    shape = (num_nodes,) + tuple(edge_attr.shape[1:])
    if fill_value is None:
        return full(shape, 1.0, dtype=edge_attr.dtype, device=edge_attr.device)
    if isinstance(fill_value, (int, float)):
        return full(shape, float(fill_value), dtype=edge_attr.dtype, device=edge_attr.device)
    if isinstance(fill_value, Tensor):
        return fill_value.cast(edge_attr.dtype).expand(shape)
    if isinstance(fill_value, str):
        reduce = {"add": "sum", "sum": "sum", "mean": "mean", "max": "max", "min": "min"}.get(fill_value)
        if reduce is None:
            raise ValueError(f"add_self_loops: fill_value must be a number, a tensor or one of 'add', 'mean', "
                             f"'max', 'min'; got {fill_value!r}")
        target = index_tensor(edge_index[1], edge_attr.device)
        return scatter(edge_attr, target, 0, num_nodes, reduce)
    raise TypeError(f"add_self_loops: unsupported fill_value of type {type(fill_value).__name__}")


def add_self_loops(edge_index: Tensor, edge_attr: Tensor | None = None, fill_value: Any = None,
                   num_nodes: int | None = None) -> tuple[Tensor, Tensor | None]:
    """Append one edge (i, i) for every node (existing loops are kept too)."""
    ei = edge_array(edge_index, "add_self_loops")
    n = maybe_num_nodes(ei, num_nodes)
    loops = np.arange(n, dtype=np.int64)
    new_ei = index_tensor(np.concatenate([ei, np.stack([loops, loops])], axis=1), edge_index.device)
    if edge_attr is None:
        return new_ei, None
    return new_ei, cat([edge_attr, _loop_attr(ei, edge_attr, n, fill_value)], 0)


def replace_self_loops(edge_index: Tensor, edge_attr: Tensor | None = None, fill_value: Any = None,
                       num_nodes: int | None = None) -> tuple[Tensor, Tensor | None]:
    """remove_self_loops followed by add_self_loops (GATConv's preprocessing), in one host pass:
    the edge list is read back and uploaded once instead of twice. Same result as the two calls."""
    ei = edge_array(edge_index, "replace_self_loops")
    is_kept = ei[0] != ei[1]
    n = maybe_num_nodes(ei[:, is_kept] if num_nodes is None else ei, num_nodes)
    kept = int(np.count_nonzero(is_kept))
    out = np.empty((2, kept + n), dtype=np.int64)
    for row in range(2):
        out[row, :kept] = ei[row][is_kept]
        out[row, kept:] = np.arange(n, dtype=np.int64)
    new_ei = index_tensor(out, edge_index.device)
    if edge_attr is None:
        return new_ei, None
    kept_attr = _take(edge_attr, np.flatnonzero(is_kept))
    return new_ei, cat([kept_attr, _loop_attr(out[:, :kept], kept_attr, n, fill_value)], 0)


def add_remaining_self_loops(edge_index: Tensor, edge_attr: Tensor | None = None, fill_value: Any = None,
                             num_nodes: int | None = None) -> tuple[Tensor, Tensor | None]:
    """Replace existing self loops by exactly one loop per node: a node that had a loop keeps its
    feature (the last one if it had several), the others get `fill_value`."""
    ei = edge_array(edge_index, "add_remaining_self_loops")
    n = maybe_num_nodes(ei, num_nodes)
    is_loop = ei[0] == ei[1]
    keep = np.nonzero(~is_loop)[0]
    loops = np.arange(n, dtype=np.int64)
    new_ei = index_tensor(np.concatenate([ei[:, keep], np.stack([loops, loops])], axis=1), edge_index.device)
    if edge_attr is None:
        return new_ei, None
    loop_attr = _loop_attr(ei, edge_attr, n, fill_value)
    old_loops = np.nonzero(is_loop)[0]
    if old_loops.size:
        loop_attr = loop_attr.index_copy(0, index_tensor(ei[0, old_loops], edge_attr.device),
                                         _take(edge_attr, old_loops))
    return new_ei, cat([_take(edge_attr, keep), loop_attr], 0)


def to_undirected(edge_index: Tensor, num_nodes: int | None = None) -> Tensor:
    """Add the reverse of every edge and drop duplicates (sorted row-major, as PyG)."""
    ei = edge_array(edge_index, "to_undirected")
    n = maybe_num_nodes(ei, num_nodes)
    both = np.concatenate([ei, ei[::-1]], axis=1)
    key = np.unique(both[0] * max(n, 1) + both[1])
    return index_tensor(np.stack([key // max(n, 1), key % max(n, 1)]), edge_index.device)


def dropout_edge(edge_index: Tensor, p: float = 0.5, force_undirected: bool = False,
                 training: bool = True) -> tuple[Tensor, Tensor]:
    """Randomly drop edges with probability p → (kept edge_index, bool mask or ids of kept edges).

    With force_undirected, (i, j) and (j, i) are kept or dropped together and the second result
    holds the ids of the kept edges (as PyG)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout_edge: dropout probability has to be between 0 and 1 (got {p})")
    ei = edge_array(edge_index, "dropout_edge")
    e = ei.shape[1]
    if not training or p == 0.0:
        return edge_index, Tensor(np.ones(e, dtype=bool), device=edge_index.device)
    # the random draw is a lazytensor kernel (lt.manual_seed makes it reproducible)
    mask = rand(e, device=edge_index.device).numpy() >= p if e else np.zeros(0, dtype=bool)
    if force_undirected:
        mask &= ei[0] <= ei[1]
        kept = np.nonzero(mask)[0]
        directed = ei[:, kept]
        new_ei = np.concatenate([directed, directed[::-1]], axis=1)
        ids = np.concatenate([kept, kept])
        return index_tensor(new_ei, edge_index.device), index_tensor(ids, edge_index.device)
    kept = np.nonzero(mask)[0]
    return index_tensor(ei[:, kept], edge_index.device), Tensor(mask, device=edge_index.device)


def subgraph(subset: Any, edge_index: Tensor, edge_attr: Tensor | None = None, relabel_nodes: bool = False,
             num_nodes: int | None = None, return_edge_mask: bool = False) -> tuple[Any, ...]:
    """The edges with both ends in `subset` (node ids or a bool mask) → (edge_index, edge_attr[, mask]).

    relabel_nodes renumbers the kept nodes 0..k-1 in increasing id order (as PyG)."""
    ei = edge_array(edge_index, "subgraph")
    sub = host_index(subset, "subgraph subset") if not _is_bool(subset) else None
    if sub is None:
        node_mask = np.asarray(subset.numpy() if isinstance(subset, Tensor) else subset, dtype=bool)
        n = node_mask.size
    else:
        n = max(maybe_num_nodes(ei, num_nodes), int(sub.max()) + 1 if sub.size else 0)
        node_mask = np.zeros(n, dtype=bool)
        node_mask[sub] = True
    edge_mask = node_mask[ei[0]] & node_mask[ei[1]] if ei.size else np.zeros(0, dtype=bool)
    kept = np.nonzero(edge_mask)[0]
    new_ei = ei[:, kept]
    if relabel_nodes:
        mapping = np.full(n, -1, dtype=np.int64)
        mapping[np.nonzero(node_mask)[0]] = np.arange(int(node_mask.sum()))
        new_ei = mapping[new_ei]
    out: tuple[Any, ...] = (index_tensor(new_ei, edge_index.device), _take(edge_attr, kept))
    if return_edge_mask:
        out += (Tensor(edge_mask, device=edge_index.device),)
    return out


def k_hop_subgraph(node_idx: Any, num_hops: int, edge_index: Tensor, relabel_nodes: bool = False,
                   num_nodes: int | None = None, flow: str = "source_to_target",
                   directed: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Nodes that reach `node_idx` within num_hops hops, and the edges among them.

    → (subset, edge_index, mapping, edge_mask), as torch_geometric.utils.k_hop_subgraph:
    subset is sorted, mapping gives the position of each seed inside subset. flow says which
    way messages travel (source_to_target: collect the nodes that send to the seeds); with
    directed=True only the edges walked on the way in are kept, else every edge among subset."""
    if flow not in ("source_to_target", "target_to_source"):
        raise ValueError(f"k_hop_subgraph: flow must be 'source_to_target' or 'target_to_source', got {flow!r}")
    ei = edge_array(edge_index, "k_hop_subgraph")
    n = maybe_num_nodes(ei, num_nodes)
    # an edge is walked from `row` (already reached) back to `col` (newly reached)
    row, col = (ei[1], ei[0]) if flow == "source_to_target" else (ei[0], ei[1])
    seeds = np.atleast_1d(host_index(node_idx, "k_hop_subgraph node_idx"))
    check_in_range(seeds, n, "k_hop_subgraph", "node_idx")
    frontier = seeds
    visited = np.zeros(n, dtype=bool)
    visited[seeds] = True
    walked = np.zeros(ei.shape[1], dtype=bool)
    for _ in range(num_hops):
        hit = np.zeros(n, dtype=bool)
        hit[frontier] = True
        step = hit[row]
        walked |= step
        frontier = np.unique(col[step])
        visited[frontier] = True
    subset = np.nonzero(visited)[0]
    edge_mask = walked if directed else visited[ei[0]] & visited[ei[1]]
    new_ei = ei[:, edge_mask]
    if relabel_nodes:
        mapping_arr = np.full(n, -1, dtype=np.int64)
        mapping_arr[subset] = np.arange(subset.size)
        new_ei = mapping_arr[new_ei]
    position = np.searchsorted(subset, seeds)
    device = edge_index.device
    return (index_tensor(subset, device), index_tensor(new_ei, device), index_tensor(position, device),
            Tensor(edge_mask, device=device))


def _is_bool(x: Any) -> bool:
    if isinstance(x, Tensor):
        return x.dtype == dtypes.bool_
    return np.asarray(x).dtype == bool


def to_dense_adj(edge_index: Tensor, edge_attr: Tensor | None = None,
                 max_num_nodes: int | None = None) -> Tensor:
    """Dense (1, N, N) adjacency of a single graph (duplicate edges add up), as PyG without batch."""
    from lazytensor.sparse.tensor import SparseTensor
    n = maybe_num_nodes(edge_index, max_num_nodes)
    adj = SparseTensor.from_edge_index(edge_index, edge_attr, (n, n)).to_dense()
    return adj.unsqueeze(0)

"""NeighborLoader: uniform k-hop neighbour sampling for mini-batch training on large graphs.

Sampling is structure (which node ids enter the mini-batch), done on the host over a CSR of
incoming edges built once; node features are then gathered with one lazytensor index_select.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from lazytensor.gnn.data import Data
from lazytensor.gnn.utils import edge_array
from lazytensor.sparse.structure import compress, host_index, index_tensor
from lazytensor.tensor import Tensor


class NeighborLoader:
    """Mini-batches of seed nodes with up to num_neighbors[h] sampled in-neighbours per node at hop h.

    Each batch is a Data holding the sampled subgraph: `n_id` (global ids, seeds first),
    `x`/`y` gathered for those nodes, `edge_index` in local ids (source → target as in the full
    graph), `batch_size` (the first batch_size nodes are the seeds) and `input_id`. -1 in
    num_neighbors takes all neighbours (as torch_geometric.loader.NeighborLoader)."""

    def __init__(self, data: Data, num_neighbors: list[int], batch_size: int = 1, input_nodes: Tensor | None = None,
                 shuffle: bool = False, replace: bool = False, seed: int = 0) -> None:
        self.data, self.num_neighbors, self.batch_size = data, list(num_neighbors), batch_size
        self.shuffle, self.replace = shuffle, replace
        self._rng = np.random.default_rng(seed)
        n = data.num_nodes
        ei = edge_array(data.edge_index, "NeighborLoader")
        order = np.argsort(ei[1], kind="stable")          # in-edges grouped by target
        self._ptr = compress(ei[1][order], n)
        self._src = ei[0][order]
        self._eid = order
        if input_nodes is None:
            self._inputs = np.arange(n, dtype=np.int64)
        else:
            raw = host_index(input_nodes, "NeighborLoader input_nodes")
            is_mask = isinstance(input_nodes, Tensor) and input_nodes.dtype.is_bool
            self._inputs = np.nonzero(raw)[0] if is_mask else raw

    def __len__(self) -> int:
        return (len(self._inputs) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Data]:
        inputs = self._rng.permutation(self._inputs) if self.shuffle else self._inputs
        for start in range(0, len(inputs), self.batch_size):
            yield self.sample(inputs[start:start + self.batch_size])

    def _neighbours(self, node: int, k: int) -> np.ndarray:
        lo, hi = self._ptr[node], self._ptr[node + 1]
        if k < 0 or hi - lo <= k and not self.replace:
            return np.arange(lo, hi)
        if hi == lo:
            return np.zeros(0, np.int64)
        return lo + self._rng.choice(hi - lo, size=k, replace=self.replace)

    def sample(self, seeds: np.ndarray) -> Data:
        """The sampled subgraph around `seeds` (global node ids)."""
        seeds = np.asarray(seeds, dtype=np.int64)
        local = {int(s): i for i, s in enumerate(seeds)}
        n_id = list(int(s) for s in seeds)
        rows, cols, eids = [], [], []
        frontier = list(n_id)
        for k in self.num_neighbors:
            next_frontier = []
            for target in frontier:
                for slot in self._neighbours(target, k):
                    source = int(self._src[slot])
                    if source not in local:
                        local[source] = len(n_id)
                        n_id.append(source)
                        next_frontier.append(source)
                    rows.append(local[source])
                    cols.append(local[target])
                    eids.append(int(self._eid[slot]))
            frontier = next_frontier
        device = self.data.edge_index.device
        n_id_t = index_tensor(np.array(n_id, dtype=np.int64), device)
        out = Data(edge_index=index_tensor(np.array([rows, cols], dtype=np.int64).reshape(2, -1), device))
        out.n_id, out.e_id = n_id_t, index_tensor(np.array(eids, dtype=np.int64), device)
        out.batch_size, out.input_id = len(seeds), index_tensor(seeds, device)
        for key in ("x", "y"):
            value = self.data[key]
            if isinstance(value, Tensor) and value.ndim > 0 and value.shape[0] == self.data.num_nodes:
                setattr(out, key, value.index_select(0, n_id_t))
        edge_attr = self.data.edge_attr
        if isinstance(edge_attr, Tensor):
            out.edge_attr = edge_attr.index_select(0, out.e_id)
        out.num_nodes = len(n_id)
        return out

"""Data (one graph) and Batch (many graphs as one disjoint union), as torch_geometric.data."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from lazytensor.functions import cat
from lazytensor.sparse.structure import host_index, index_tensor
from lazytensor.tensor import Tensor

INDEX_KEYS = ("edge_index", "face")


class Data:
    """A graph: any named attributes; by PyG's convention `x` (N, F), `edge_index` (2, E),
    `edge_attr` (E, D), `y`, `pos`. Node count comes from num_nodes, x, pos or edge_index."""

    def __init__(self, x: Tensor | None = None, edge_index: Tensor | None = None, edge_attr: Tensor | None = None,
                 y: Any = None, pos: Tensor | None = None, **kwargs: Any) -> None:
        for key, value in dict(x=x, edge_index=edge_index, edge_attr=edge_attr, y=y, pos=pos, **kwargs).items():
            if value is not None:
                setattr(self, key, value)

    def keys(self) -> list[str]:
        return [k for k in self.__dict__ if not k.startswith("_")]

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __contains__(self, key: str) -> bool:
        return key in self.keys()

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return None   # PyG: missing attributes read as None

    @property
    def num_nodes(self) -> int:
        if "_num_nodes" in self.__dict__:
            return self.__dict__["_num_nodes"]
        for key in ("x", "pos"):
            value = self.__dict__.get(key)
            if isinstance(value, Tensor):
                return int(value.shape[0])
        ei = self.__dict__.get("edge_index")
        return int(host_index(ei).max()) + 1 if ei is not None and ei.numel() else 0

    @num_nodes.setter
    def num_nodes(self, n: int) -> None:
        self.__dict__["_num_nodes"] = int(n)

    @property
    def num_edges(self) -> int:
        ei = self.__dict__.get("edge_index")
        return 0 if ei is None else int(ei.shape[1])

    @property
    def num_node_features(self) -> int:
        x = self.__dict__.get("x")
        return 0 if x is None else (1 if x.ndim == 1 else int(x.shape[-1]))

    def __repr__(self) -> str:
        parts = []
        for key in self.keys():
            value = getattr(self, key)
            parts.append(f"{key}={list(value.shape)}" if isinstance(value, Tensor) else f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class Batch(Data):
    """Graphs merged into one big graph with no edges between them: node tensors concatenated,
    edge indices shifted by each graph's node offset, `batch[n]` = graph id of node n and
    `ptr` the node offsets (num_graphs + 1)."""

    @classmethod
    def from_data_list(cls, data_list: list[Data]) -> "Batch":
        if not data_list:
            raise ValueError("Batch.from_data_list: the list of graphs is empty")
        keys = data_list[0].keys()
        counts = np.array([d.num_nodes for d in data_list], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        out = cls()
        for key in keys:
            if key == "_num_nodes":
                continue
            values = [d[key] for d in data_list]
            if key in INDEX_KEYS:
                shifted = [host_index(v) + offsets[i] for i, v in enumerate(values)]
                setattr(out, key, index_tensor(np.concatenate(shifted, axis=1), values[0].device))
            elif isinstance(values[0], Tensor):
                parts = values if values[0].ndim > 0 else [v.reshape(1) for v in values]
                setattr(out, key, _cat_many(parts))
            else:
                setattr(out, key, values)
        out.batch = index_tensor(np.repeat(np.arange(len(data_list)), counts))
        out.ptr = index_tensor(offsets)
        out.num_nodes = int(offsets[-1])
        out.__dict__["_num_graphs"] = len(data_list)
        return out

    @property
    def num_graphs(self) -> int:
        return self.__dict__["_num_graphs"]


CAT_GROUP = 64


def _cat_many(parts: list[Tensor]) -> Tensor:
    """Concatenate along dim 0 in groups of CAT_GROUP, each group stored, so the graph stays shallow
    (the core's lt.cat of ~1000 tensors builds one expression too deep for its recursive lowering)."""
    while len(parts) > CAT_GROUP:
        parts = [cat(parts[i:i + CAT_GROUP], 0).contiguous() for i in range(0, len(parts), CAT_GROUP)]
    return cat(parts, 0)


class GraphDataLoader:
    """Mini-batches of graphs: yields a Batch of `batch_size` Data objects (torch_geometric.loader.DataLoader)."""

    def __init__(self, dataset: list[Data], batch_size: int = 1, shuffle: bool = False, seed: int = 0) -> None:
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return (len(self.dataset) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        order = self._rng.permutation(len(self.dataset)) if self.shuffle else np.arange(len(self.dataset))
        for start in range(0, len(order), self.batch_size):
            yield Batch.from_data_list([self.dataset[i] for i in order[start:start + self.batch_size]])

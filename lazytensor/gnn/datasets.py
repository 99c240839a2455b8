"""Offline dataset readers: Planetoid files (Cora, CiteSeer, PubMed) the user already has, and
Zachary's karate club from networkx. Nothing here downloads anything."""
from __future__ import annotations

import os
import pickle
import warnings
from typing import Any

import numpy as np

from lazytensor.gnn.data import Data
from lazytensor.sparse.structure import index_tensor
from lazytensor.tensor import Tensor

PLANETOID_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _read_part(folder: str, prefix: str, name: str) -> Any:
    path = os.path.join(folder, f"ind.{prefix.lower()}.{name}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"read_planetoid: missing {path}; a Planetoid folder holds the files "
                                f"ind.{prefix.lower()}.{{{','.join(PLANETOID_PARTS)}}}")
    if name == "test.index":
        return np.loadtxt(path, dtype=np.int64, ndmin=1)
    with open(path, "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = pickle.load(f, encoding="latin1")
    if name == "graph":
        return out
    out = out.todense() if hasattr(out, "todense") else out
    return np.asarray(out, dtype=np.float32)


def _edges_from_dict(graph: dict[int, list[int]], num_nodes: int) -> np.ndarray:
    """Adjacency lists → (2, E) without self loops or duplicates, sorted by (target, source) as PyG."""
    rows = np.array([k for k, v in graph.items() for _ in v], dtype=np.int64)
    cols = np.array([c for v in graph.values() for c in v], dtype=np.int64)
    keep = rows != cols
    key = np.unique(cols[keep] * num_nodes + rows[keep])
    return np.stack([key % num_nodes, key // num_nodes])


def read_planetoid(folder: str, name: str) -> Data:
    """Read the Planetoid split files of `name` ('Cora', 'CiteSeer', 'PubMed') from `folder`.

    → Data(x, edge_index, y, train_mask, val_mask, test_mask) with the public split: the first
    len(y) nodes train, the next 500 validate, test.index test (as torch_geometric's Planetoid)."""
    x, tx, allx, y, ty, ally, graph, test_index = (_read_part(folder, name, p) for p in PLANETOID_PARTS)
    sorted_test = np.sort(test_index)
    if name.lower() == "citeseer":
        # isolated test nodes are missing from tx/ty: add zero rows so ids stay consecutive
        span = int(test_index.max() - test_index.min()) + 1
        tx_ext = np.zeros((span, tx.shape[1]), np.float32)
        tx_ext[sorted_test - test_index.min()] = tx
        ty_ext = np.zeros((span, ty.shape[1]), np.float32)
        ty_ext[sorted_test - test_index.min()] = ty
        tx, ty = tx_ext, ty_ext
    features = np.concatenate([allx, tx], axis=0)
    features[test_index] = features[sorted_test]
    labels = np.concatenate([ally, ty], axis=0).argmax(1)
    labels[test_index] = labels[sorted_test]
    n = labels.shape[0]
    masks = {}
    for key, ids in (("train_mask", np.arange(y.shape[0])), ("val_mask", np.arange(y.shape[0], y.shape[0] + 500)),
                     ("test_mask", test_index)):
        mask = np.zeros(n, dtype=bool)
        mask[ids[ids < n]] = True
        masks[key] = Tensor(mask)
    edge_index = index_tensor(_edges_from_dict(graph, n))
    return Data(x=Tensor(features), edge_index=edge_index, y=index_tensor(labels), **masks)


def karate_club() -> Data:
    """Zachary's karate club (34 members, 78 friendships, both directions stored) from networkx:
    x = identity features, y = the club each member joined (0: Mr. Hi, 1: Officer)."""
    import networkx as nx
    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    edges = np.array(list(g.edges()), dtype=np.int64).T
    both = np.concatenate([edges, edges[::-1]], axis=1)
    order = np.lexsort((both[1], both[0]))
    labels = np.array([0 if g.nodes[i]["club"] == "Mr. Hi" else 1 for i in range(n)], dtype=np.int64)
    return Data(x=Tensor(np.eye(n, dtype=np.float32)), edge_index=index_tensor(both[:, order]),
                y=index_tensor(labels))

"""Graph classification with a GIN on networkx's graph atlas: does a small graph contain a cycle?

The atlas lists all 1253 graphs with up to 7 nodes. Each graph becomes a Data object with a
constant node feature; a 3-layer GIN with sum pooling learns to tell forests from graphs
with a cycle. The graphs are split 80/20 and each split is one disjoint-union Batch (full-batch
training, so every step runs the same compiled kernels).

    python examples/graph_classification.py
"""
from __future__ import annotations

import networkx as nx
import numpy as np

import lazytensor as lt
import lazytensor.gnn as gnn
import lazytensor.nn.functional as F


def atlas_dataset() -> list[gnn.Data]:
    """One Data per non-empty atlas graph: x = ones (N, 1), both edge directions, y = has a cycle."""
    graphs = []
    for g in nx.graph_atlas_g()[1:]:
        n = g.number_of_nodes()
        edges = np.array(list(g.edges()), dtype=np.int64).reshape(-1, 2).T
        edge_index = np.concatenate([edges, edges[::-1]], axis=1)
        has_cycle = int(not nx.is_forest(g))
        graphs.append(gnn.Data(x=lt.ones(n, 1), edge_index=lt.tensor(edge_index), y=lt.tensor([has_cycle])))
    return graphs


class GIN(lt.nn.Module):
    def __init__(self, hidden: int = 32, layers: int = 3, classes: int = 2) -> None:
        super().__init__()
        dims = [1] + [hidden] * layers
        self.convs = lt.nn.ModuleList([
            gnn.GINConv(lt.nn.Sequential(lt.nn.Linear(i, o), lt.nn.ReLU(), lt.nn.Linear(o, o)), train_eps=True)
            for i, o in zip(dims[:-1], dims[1:])])
        self.head = lt.nn.Linear(hidden * layers, classes)

    def forward(self, x: lt.Tensor, edge_index: lt.Tensor, batch: lt.Tensor, num_graphs: int) -> lt.Tensor:
        readouts = []
        for conv in self.convs:
            # store each layer output once: the readout and the next layer both read it
            x = conv(x, edge_index).relu().contiguous()
            readouts.append(gnn.global_add_pool(x, batch, num_graphs))
        return self.head(lt.cat(readouts, -1))


def accuracy(model: GIN, data: gnn.Batch) -> float:
    logits = model(data.x, data.edge_index, data.batch, data.num_graphs)
    return float((logits.argmax(-1).numpy() == data.y.numpy()).mean())


def train(epochs: int = 150, seed: int = 0, verbose: bool = True) -> tuple[float, float]:
    """→ (train accuracy, test accuracy)."""
    lt.manual_seed(seed)
    graphs = atlas_dataset()
    order = np.random.default_rng(seed).permutation(len(graphs))
    cut = int(0.8 * len(graphs))
    train_set = gnn.Batch.from_data_list([graphs[i] for i in order[:cut]])
    test_set = gnn.Batch.from_data_list([graphs[i] for i in order[cut:]])
    model = GIN()
    opt = lt.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(epochs):
        model.train()
        opt.zero_grad()
        logits = model(train_set.x, train_set.edge_index, train_set.batch, train_set.num_graphs)
        loss = F.cross_entropy(logits, train_set.y)
        loss.backward()
        opt.step()
        if verbose and epoch % 25 == 0:
            print(f"epoch {epoch:3d}  loss {loss.item():.4f}")
    model.eval()
    result = accuracy(model, train_set), accuracy(model, test_set)
    if verbose:
        print(f"{len(graphs)} graphs: train accuracy {result[0]:.3f}, test accuracy {result[1]:.3f} "
              f"(majority class: {max(np.mean([g.y.item() for g in graphs]), 1 - np.mean([g.y.item() for g in graphs])):.3f})")
    return result


if __name__ == "__main__":
    train()

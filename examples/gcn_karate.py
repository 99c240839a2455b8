"""Semi-supervised node classification on Zachary's karate club with a two-layer GCN.

Only 4 of the 34 members are labelled (two per club); the GCN spreads those labels over the
friendship graph and predicts which club every other member joined after the split.

    python examples/gcn_karate.py
"""
from __future__ import annotations

import numpy as np

import lazytensor as lt
import lazytensor.gnn as gnn
import lazytensor.nn.functional as F

LABELLED = [0, 1, 32, 33]   # Mr. Hi and a loyal student; the Officer and a loyal member


class GCN(lt.nn.Module):
    def __init__(self, in_channels: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.conv1 = gnn.GCNConv(in_channels, hidden)
        self.conv2 = gnn.GCNConv(hidden, classes)

    def forward(self, x: lt.Tensor, edge_index: lt.Tensor) -> lt.Tensor:
        h = self.conv1(x, edge_index).relu()
        h = F.dropout(h, p=0.5, training=self.training)
        return self.conv2(h, edge_index)


def train(epochs: int = 100, seed: int = 0, verbose: bool = True) -> float:
    """Train on the 4 labelled members; → accuracy on the 30 unlabelled ones."""
    lt.manual_seed(seed)
    data = gnn.karate_club()
    labelled = lt.tensor(LABELLED)
    unlabelled = np.setdiff1d(np.arange(data.num_nodes), LABELLED)
    model = GCN(data.num_node_features, 16, 2)
    opt = lt.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for epoch in range(epochs):
        model.train()
        opt.zero_grad()
        logits = model(data.x, data.edge_index)
        loss = F.cross_entropy(logits.index_select(0, labelled), data.y.index_select(0, labelled))
        loss.backward()
        opt.step()
        if verbose and epoch % 20 == 0:
            print(f"epoch {epoch:3d}  loss {loss.item():.4f}")
    model.eval()
    pred = model(data.x, data.edge_index).argmax(-1).numpy()
    accuracy = float((pred[unlabelled] == data.y.numpy()[unlabelled]).mean())
    if verbose:
        print(f"accuracy on the {len(unlabelled)} unlabelled members: {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    train()

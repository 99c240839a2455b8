"""Graph neural networks: message passing and PyG-compatible layers, pooling, batching, sampling.

    from lazytensor.gnn import GCNConv
    conv = GCNConv(16, 32)
    conv.load_state_dict(pyg_conv.state_dict())   # parameter names follow torch_geometric
    out = conv(x, edge_index)                     # (N, 16), (2, E) int64 → (N, 32)
"""
from lazytensor.gnn.aggr import (Aggregation, MaxAggregation, MeanAggregation, MinAggregation,
                                 PowerMeanAggregation, SoftmaxAggregation, StdAggregation, SumAggregation,
                                 VarAggregation, VariancePreservingAggregation, aggregation_resolver)
from lazytensor.gnn.conv import GATConv, GCNConv, GINConv, GINEConv, SAGEConv, gcn_norm
from lazytensor.gnn.data import Batch, Data, GraphDataLoader
from lazytensor.gnn.datasets import karate_club, read_planetoid
from lazytensor.gnn.loader import NeighborLoader
from lazytensor.gnn.message_passing import MessagePassing
from lazytensor.gnn.norm import DropEdge, GraphNorm, PairNorm
from lazytensor.gnn.pool import TopKPooling, global_add_pool, global_max_pool, global_mean_pool
from lazytensor.gnn.utils import (add_remaining_self_loops, add_self_loops, contains_self_loops, degree,
                                  dropout_edge, k_hop_subgraph, remove_self_loops, softmax, subgraph,
                                  to_dense_adj, to_undirected)

__all__ = ["Aggregation", "SumAggregation", "MeanAggregation", "MaxAggregation", "MinAggregation",
           "SoftmaxAggregation", "StdAggregation", "VarAggregation", "PowerMeanAggregation",
           "VariancePreservingAggregation", "aggregation_resolver",
           "MessagePassing", "GCNConv", "SAGEConv", "GINConv", "GINEConv", "GATConv", "gcn_norm",
           "global_add_pool", "global_mean_pool", "global_max_pool", "TopKPooling", "PairNorm", "GraphNorm",
           "DropEdge", "Data", "Batch", "GraphDataLoader", "NeighborLoader", "read_planetoid", "karate_club",
           "degree", "softmax", "add_self_loops", "add_remaining_self_loops", "remove_self_loops",
           "contains_self_loops", "dropout_edge", "subgraph", "k_hop_subgraph", "to_undirected", "to_dense_adj"]

"""Graph layers, pooling, norms, batching and sampling vs PyTorch Geometric (same weights copied in).

Graphs have isolated nodes, self loops and multi-edges; outputs and all gradients (input
features, edge weights/features, parameters) must match within 1e-5.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch_geometric.nn as pyg_nn
import torch_geometric.utils as pyg_utils
from torch_geometric.data import Batch as PygBatch
from torch_geometric.data import Data as PygData

import lazytensor as lt
import lazytensor.gnn as gnn
from lazytensor.sparse import SparseTensor

RTOL, ATOL = 1e-5, 1e-5
N, N_CONNECTED, E, F_IN = 12, 9, 36, 5     # nodes 9..11 are isolated


def random_graph(seed: int = 0) -> np.ndarray:
    """(2, E) edges among nodes 0..8, plus self loops on 1 and 4 and a few repeated edges."""
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, N_CONNECTED, E), rng.integers(0, N_CONNECTED, E)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    src = np.concatenate([src, [1, 4, src[0], src[1], src[0]]])
    dst = np.concatenate([dst, [1, 4, dst[0], dst[1], dst[0]]])
    return np.stack([src, dst]).astype(np.int64)


def close(ours, ref, what=""):
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    ours = ours.numpy() if isinstance(ours, lt.Tensor) else np.asarray(ours)
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL, err_msg=what)


def lt_mlp(i, h, o):
    return lt.nn.Sequential(lt.nn.Linear(i, h), lt.nn.ReLU(), lt.nn.Linear(h, o))


def torch_mlp(i, h, o):
    return torch.nn.Sequential(torch.nn.Linear(i, h), torch.nn.ReLU(), torch.nn.Linear(h, o))


# name → (make PyG layer, make our layer, edge input: None | "weight" | ("attr", dim))
LAYERS = {
    "gcn": (lambda: pyg_nn.GCNConv(F_IN, 4), lambda: gnn.GCNConv(F_IN, 4), None),
    "gcn_weighted": (lambda: pyg_nn.GCNConv(F_IN, 4), lambda: gnn.GCNConv(F_IN, 4), "weight"),
    "gcn_improved_weighted": (lambda: pyg_nn.GCNConv(F_IN, 3, improved=True),
                              lambda: gnn.GCNConv(F_IN, 3, improved=True), "weight"),
    "gcn_raw": (lambda: pyg_nn.GCNConv(F_IN, 4, normalize=False, bias=False),
                lambda: gnn.GCNConv(F_IN, 4, normalize=False, bias=False), "weight"),
    "sage_mean": (lambda: pyg_nn.SAGEConv(F_IN, 4), lambda: gnn.SAGEConv(F_IN, 4), None),
    "sage_max_normalize": (lambda: pyg_nn.SAGEConv(F_IN, 4, aggr="max", normalize=True),
                           lambda: gnn.SAGEConv(F_IN, 4, aggr="max", normalize=True), None),
    "sage_sum_noroot_project": (lambda: pyg_nn.SAGEConv(F_IN, 4, aggr="sum", root_weight=False, project=True),
                                lambda: gnn.SAGEConv(F_IN, 4, aggr="sum", root_weight=False, project=True), None),
    "sage_min": (lambda: pyg_nn.SAGEConv(F_IN, 3, aggr="min"), lambda: gnn.SAGEConv(F_IN, 3, aggr="min"), None),
    "gin": (lambda: pyg_nn.GINConv(torch_mlp(F_IN, 8, 4)), lambda: gnn.GINConv(lt_mlp(F_IN, 8, 4)), None),
    "gin_train_eps": (lambda: pyg_nn.GINConv(torch_mlp(F_IN, 8, 4), eps=0.3, train_eps=True),
                      lambda: gnn.GINConv(lt_mlp(F_IN, 8, 4), eps=0.3, train_eps=True), None),
    "gine_edge_dim": (lambda: pyg_nn.GINEConv(torch_mlp(F_IN, 8, 4), edge_dim=3, train_eps=True),
                      lambda: gnn.GINEConv(lt_mlp(F_IN, 8, 4), edge_dim=3, train_eps=True), ("attr", 3)),
    "gine_same_dim": (lambda: pyg_nn.GINEConv(torch_mlp(F_IN, 8, 4)),
                      lambda: gnn.GINEConv(lt_mlp(F_IN, 8, 4)), ("attr", F_IN)),
    "gat": (lambda: pyg_nn.GATConv(F_IN, 4), lambda: gnn.GATConv(F_IN, 4), None),
    "gat_heads_concat": (lambda: pyg_nn.GATConv(F_IN, 3, heads=3, negative_slope=0.1),
                         lambda: gnn.GATConv(F_IN, 3, heads=3, negative_slope=0.1), None),
    "gat_heads_mean_noloops": (lambda: pyg_nn.GATConv(F_IN, 4, heads=2, concat=False, add_self_loops=False),
                               lambda: gnn.GATConv(F_IN, 4, heads=2, concat=False, add_self_loops=False), None),
    "gat_edge_dim": (lambda: pyg_nn.GATConv(F_IN, 2, heads=2, edge_dim=3),
                     lambda: gnn.GATConv(F_IN, 2, heads=2, edge_dim=3), ("attr", 3)),
    "gat_residual": (lambda: pyg_nn.GATConv(F_IN, 3, heads=2, residual=True),
                     lambda: gnn.GATConv(F_IN, 3, heads=2, residual=True), None),
    "gat_residual_mean_fill_add": (
        lambda: pyg_nn.GATConv(F_IN, 3, heads=2, concat=False, residual=True, edge_dim=2, fill_value="add"),
        lambda: gnn.GATConv(F_IN, 3, heads=2, concat=False, residual=True, edge_dim=2, fill_value="add"),
        ("attr", 2)),
    "gat_edge_dim_fill_const": (lambda: pyg_nn.GATConv(F_IN, 2, heads=3, edge_dim=1, fill_value=0.5),
                                lambda: gnn.GATConv(F_IN, 2, heads=3, edge_dim=1, fill_value=0.5), ("attr", 1)),
    "gat_edge_dim_fill_max": (lambda: pyg_nn.GATConv(F_IN, 2, edge_dim=3, fill_value="max"),
                              lambda: gnn.GATConv(F_IN, 2, edge_dim=3, fill_value="max"), ("attr", 3)),
    "gat_edge_dim_fill_tensor": (
        lambda: pyg_nn.GATConv(F_IN, 2, heads=2, edge_dim=3, fill_value=torch.tensor([0.1, -0.2, 0.3])),
        lambda: gnn.GATConv(F_IN, 2, heads=2, edge_dim=3, fill_value=lt.tensor([0.1, -0.2, 0.3])), ("attr", 3)),
    "gat_bipartite_weights_one_input": (lambda: pyg_nn.GATConv((F_IN, F_IN), 3, heads=2),
                                        lambda: gnn.GATConv((F_IN, F_IN), 3, heads=2), None),
}

# new aggregations, through SAGEConv (it aggregates the raw F_IN input features)
AGGR_CASES = {
    "softmax": ("softmax", None),
    "softmax_t": ("softmax", dict(t=0.3)),
    "softmax_learn": ("softmax", dict(learn=True, t=0.7)),
    "softmax_learn_channels": ("softmax", dict(learn=True, channels=F_IN)),
    "softmax_semi_grad": ("softmax", dict(semi_grad=True, t=2.0)),
    "std": ("std", None),
    "var": ("var", None),
    "var_semi_grad": ("var", dict(semi_grad=True)),
    "powermean": ("powermean", dict(p=2.0)),
    "powermean_learn_channels": ("powermean", dict(learn=True, channels=F_IN)),
    "variance_preserving": ("variance_preserving", None),
}
for _name, (_aggr, _kwargs) in AGGR_CASES.items():
    LAYERS[f"sage_{_name}"] = (
        lambda a=_aggr, k=_kwargs: pyg_nn.SAGEConv(F_IN, 4, aggr=a, aggr_kwargs=k),
        lambda a=_aggr, k=_kwargs: gnn.SAGEConv(F_IN, 4, aggr=a, aggr_kwargs=k), None)


def randomize(theirs: torch.nn.Module, seed: int) -> None:
    """Non-trivial values for every parameter and buffer (PyG zero-inits biases)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in list(theirs.parameters()) + list(theirs.buffers()):
            p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
        for name, p in theirs.named_parameters():
            if name.endswith("aggr_module.p"):     # a power mean's exponent: keep it away from 0
                p.add_(2.0)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_matches_pyg_outputs_and_gradients(name):
    make_theirs, make_ours, edge_input = LAYERS[name]
    torch.manual_seed(0)
    theirs, ours = make_theirs(), make_ours()
    randomize(theirs, 1)
    ours.load_state_dict(theirs.state_dict())
    theirs.eval(), ours.eval()
    ei = random_graph()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, F_IN)).astype(np.float32)
    t_x, l_x = torch.tensor(x, requires_grad=True), lt.tensor(x, requires_grad=True)
    t_args, l_args = [t_x, torch.tensor(ei)], [l_x, lt.tensor(ei)]
    t_edge = l_edge = None
    if edge_input == "weight":
        w = rng.uniform(0.5, 2.0, ei.shape[1]).astype(np.float32)
        t_edge, l_edge = torch.tensor(w, requires_grad=True), lt.tensor(w, requires_grad=True)
    elif edge_input is not None:
        a = rng.standard_normal((ei.shape[1], edge_input[1])).astype(np.float32)
        t_edge, l_edge = torch.tensor(a, requires_grad=True), lt.tensor(a, requires_grad=True)
    if t_edge is not None:
        t_args.append(t_edge), l_args.append(l_edge)
    t_out, l_out = theirs(*t_args), ours(*l_args)
    close(l_out, t_out, "forward")
    upstream = rng.standard_normal(tuple(t_out.shape)).astype(np.float32)
    (t_out * torch.tensor(upstream)).sum().backward()
    (l_out * lt.tensor(upstream)).sum().backward()
    close(l_x.grad, t_x.grad, "grad x")
    if t_edge is not None:
        close(l_edge.grad, t_edge.grad, "grad edge input")
    ours_params = dict(ours.named_parameters())
    for pname, p in theirs.named_parameters():
        close(ours_params[pname].grad, p.grad, f"grad {pname}")


def test_gcn_accepts_sparse_adjacency_like_edge_index():
    ei = random_graph(3)
    conv = gnn.GCNConv(F_IN, 4)
    x = lt.randn(N, F_IN)
    adj_t = SparseTensor(ei[1], ei[0], None, (N, N))         # PyG's adj_t[target, source]
    close(conv(x, adj_t), conv(x, lt.tensor(ei)).numpy())


def test_gat_with_sparse_adjacency_matches_pyg_edge_index():
    torch.manual_seed(0)
    theirs, ours = pyg_nn.GATConv(F_IN, 3, heads=2, residual=True), gnn.GATConv(F_IN, 3, heads=2, residual=True)
    randomize(theirs, 23)
    ours.load_state_dict(theirs.state_dict())
    ei = random_graph(24)
    x = np.random.default_rng(25).standard_normal((N, F_IN)).astype(np.float32)
    adj_t = SparseTensor(ei[1], ei[0], None, (N, N))         # PyG's adj_t[target, source]
    close(ours(lt.tensor(x), adj_t), theirs(torch.tensor(x), torch.tensor(ei)))
    with pytest.raises(NotImplementedError, match="pass a \\(2, E\\) edge_index"):
        ours(lt.tensor(x), adj_t, return_attention_weights=True)


def test_gat_attention_dropout_only_in_training():
    conv = gnn.GATConv(F_IN, 4, heads=2, dropout=0.5)
    x, ei = lt.randn(N, F_IN), lt.tensor(random_graph())
    conv.eval()
    ref = conv(x, ei).numpy()
    out, (ei_loops, alpha) = conv(x, ei, return_attention_weights=True)
    close(out, ref)
    # the attention over the edges into each node sums to 1 per head (every node has its self loop)
    sums = np.zeros((N, 2))
    np.add.at(sums, ei_loops.numpy()[1], alpha.numpy())
    close(sums, np.ones((N, 2)))
    conv.train()
    assert not np.allclose(conv(x, ei).numpy(), ref)


N_DST = 7    # bipartite graphs: N source nodes, N_DST target nodes (targets 5, 6 receive nothing)
GAT_BIPARTITE = {
    "separate_weights_residual": (dict(in_channels=(F_IN, 3), out_channels=4, heads=2, residual=True), True),
    "edge_dim_fill_mean": (dict(in_channels=(F_IN, 3), out_channels=2, heads=2, edge_dim=2), True),
    "shared_weights_no_loops": (dict(in_channels=F_IN, out_channels=3, add_self_loops=False), True),
    "no_target_features": (dict(in_channels=F_IN, out_channels=3, heads=2, add_self_loops=False), False),
}


@pytest.mark.parametrize("name", list(GAT_BIPARTITE))
def test_gat_bipartite_matches_pyg(name):
    kwargs, with_dst = GAT_BIPARTITE[name]
    torch.manual_seed(0)
    theirs, ours = pyg_nn.GATConv(**kwargs), gnn.GATConv(**kwargs)
    randomize(theirs, 20)
    ours.load_state_dict(theirs.state_dict())
    rng = np.random.default_rng(21)
    ei = np.stack([rng.integers(0, N, 30), rng.integers(0, 5, 30)])
    ei = np.concatenate([ei, [[2, 2, 3], [2, 2, 3]]], axis=1)          # self loops and a repeated edge
    dst_dim = kwargs["in_channels"][1] if isinstance(kwargs["in_channels"], tuple) else F_IN
    xs = [rng.standard_normal((N, F_IN)).astype(np.float32),
          rng.standard_normal((N_DST, dst_dim)).astype(np.float32)]
    t_x = [torch.tensor(a, requires_grad=True) for a in xs]
    l_x = [lt.tensor(a, requires_grad=True) for a in xs]
    t_pair = (t_x[0], t_x[1] if with_dst else None)
    l_pair = (l_x[0], l_x[1] if with_dst else None)
    extra_t, extra_l = {}, {}
    if kwargs.get("edge_dim"):
        attr = rng.standard_normal((ei.shape[1], kwargs["edge_dim"])).astype(np.float32)
        extra_t["edge_attr"], extra_l["edge_attr"] = torch.tensor(attr), lt.tensor(attr)
    size = (N, N_DST) if with_dst else None
    t_out, (t_ei, t_alpha) = theirs(t_pair, torch.tensor(ei), size=size, return_attention_weights=True,
                                    **extra_t)
    l_out, (l_ei, l_alpha) = ours(l_pair, lt.tensor(ei), size=size, return_attention_weights=True, **extra_l)
    close(l_out, t_out, "forward")
    close(l_ei, t_ei, "edge_index with self loops")
    close(l_alpha, t_alpha, "attention weights")
    up = rng.standard_normal(tuple(t_out.shape)).astype(np.float32)
    (t_out * torch.tensor(up)).sum().backward(), (l_out * lt.tensor(up)).sum().backward()
    close(l_x[0].grad, t_x[0].grad, "grad x_src")
    if with_dst:
        close(l_x[1].grad, t_x[1].grad, "grad x_dst")
    ours_params = dict(ours.named_parameters())
    for pname, p in theirs.named_parameters():
        if p.grad is None:      # unused (att_dst without target features): no gradient in either
            assert ours_params[pname].grad is None, pname
            continue
        close(ours_params[pname].grad, p.grad, f"grad {pname}")


def test_aggregation_modules_match_pyg_with_ptr_and_without_index():
    import torch_geometric.nn.aggr as pyg_aggr
    from lazytensor.gnn import aggr
    x = np.random.default_rng(22).standard_normal((9, 3)).astype(np.float32)
    ptr = np.array([0, 2, 2, 6, 9])             # segment 1 is empty
    for name in ("Softmax", "Std", "Var", "Mean", "Max"):
        theirs, ours = getattr(pyg_aggr, f"{name}Aggregation")(), getattr(aggr, f"{name}Aggregation")()
        close(ours(lt.tensor(x), ptr=lt.tensor(ptr)), theirs(torch.tensor(x), ptr=torch.tensor(ptr)), name)
        close(ours(lt.tensor(x)), theirs(torch.tensor(x)), f"{name} without index")


@pytest.mark.parametrize("pool", ["global_add_pool", "global_mean_pool", "global_max_pool"])
def test_global_pooling_matches_pyg(pool):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((10, 3)).astype(np.float32)
    batch = np.array([0, 0, 0, 1, 1, 3, 3, 3, 3, 3])          # graph 2 has no nodes
    t_x, l_x = torch.tensor(x, requires_grad=True), lt.tensor(x, requires_grad=True)
    t_out = getattr(pyg_nn, pool)(t_x, torch.tensor(batch), 4)
    l_out = getattr(gnn, pool)(l_x, lt.tensor(batch), 4)
    close(l_out, t_out)
    t_out.sum().backward(), l_out.sum().backward()
    close(l_x.grad, t_x.grad)
    close(getattr(gnn, pool)(lt.tensor(x)), getattr(pyg_nn, pool)(torch.tensor(x), None))


TOPK_CASES = {
    "ratio": dict(ratio=0.5),
    "k_multiplier_sigmoid": dict(ratio=3, multiplier=2.0, nonlinearity="sigmoid"),
    "min_score": dict(min_score=0.1),
    "min_score_drops_all_but_best": dict(min_score=0.9, multiplier=0.5),
}


@pytest.mark.parametrize("name", list(TOPK_CASES))
def test_topk_pooling_matches_pyg(name):
    torch.manual_seed(0)
    theirs, ours = pyg_nn.TopKPooling(F_IN, **TOPK_CASES[name]), gnn.TopKPooling(F_IN, **TOPK_CASES[name])
    ours.load_state_dict(theirs.state_dict())
    ei = random_graph(5)
    batch = np.array([0] * 6 + [1] * 6)
    x = np.random.default_rng(6).standard_normal((N, F_IN)).astype(np.float32)
    attr = np.random.default_rng(7).standard_normal((ei.shape[1], 2)).astype(np.float32)
    t_x, l_x = torch.tensor(x, requires_grad=True), lt.tensor(x, requires_grad=True)
    t_out = theirs(t_x, torch.tensor(ei), torch.tensor(attr), torch.tensor(batch))
    l_out = ours(l_x, lt.tensor(ei), lt.tensor(attr), lt.tensor(batch))
    for k, (a, b) in enumerate(zip(l_out, t_out)):
        close(a, b, f"output {k}")
    up = np.random.default_rng(8).standard_normal(tuple(t_out[0].shape)).astype(np.float32)
    (t_out[0] * torch.tensor(up)).sum().backward(), (l_out[0] * lt.tensor(up)).sum().backward()
    close(l_x.grad, t_x.grad)
    close(ours.select.weight.grad, theirs.select.weight.grad)


@pytest.mark.parametrize("make", [
    lambda: (pyg_nn.PairNorm(), gnn.PairNorm()),
    lambda: (pyg_nn.PairNorm(scale=2.0, scale_individually=True), gnn.PairNorm(scale=2.0, scale_individually=True)),
    lambda: (pyg_nn.GraphNorm(3), gnn.GraphNorm(3)),
], ids=["pairnorm", "pairnorm_individual", "graphnorm"])
@pytest.mark.parametrize("batched", [False, True])
def test_norms_match_pyg(make, batched):
    theirs, ours = make()
    randomize(theirs, 3)
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(8).standard_normal((9, 3)).astype(np.float32)
    batch = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    t_x, l_x = torch.tensor(x, requires_grad=True), lt.tensor(x, requires_grad=True)
    t_out = theirs(t_x, torch.tensor(batch) if batched else None)
    l_out = ours(l_x, lt.tensor(batch) if batched else None)
    close(l_out, t_out)
    up = np.random.default_rng(9).standard_normal((9, 3)).astype(np.float32)
    (t_out * torch.tensor(up)).sum().backward(), (l_out * lt.tensor(up)).sum().backward()
    close(l_x.grad, t_x.grad)


def test_batch_from_data_list_matches_pyg():
    rng = np.random.default_rng(10)
    graphs = []
    for n, e in [(3, 4), (1, 0), (5, 7)]:
        ei = rng.integers(0, n, (2, e))
        graphs.append((rng.standard_normal((n, 2)).astype(np.float32), ei, rng.standard_normal((e, 1)).astype(
            np.float32), np.array([n % 2])))
    ref = PygBatch.from_data_list([PygData(x=torch.tensor(x), edge_index=torch.tensor(ei), edge_attr=torch.tensor(a),
                                           y=torch.tensor(y)) for x, ei, a, y in graphs])
    ours = gnn.Batch.from_data_list([gnn.Data(x=lt.tensor(x), edge_index=lt.tensor(ei), edge_attr=lt.tensor(a),
                                              y=lt.tensor(y)) for x, ei, a, y in graphs])
    for key in ("x", "edge_index", "edge_attr", "y", "batch", "ptr"):
        close(ours[key], ref[key], key)
    assert ours.num_graphs == 3 and ours.num_nodes == 9


def test_subgraph_and_k_hop_subgraph_match_pyg():
    ei = random_graph(11)
    attr = np.arange(ei.shape[1], dtype=np.float32)
    subset = [0, 2, 3, 7]
    ref = pyg_utils.subgraph(torch.tensor(subset), torch.tensor(ei), torch.tensor(attr), relabel_nodes=True,
                             num_nodes=N, return_edge_mask=True)
    ours = gnn.subgraph(lt.tensor(subset), lt.tensor(ei), lt.tensor(attr), relabel_nodes=True, num_nodes=N,
                        return_edge_mask=True)
    for a, b in zip(ours, ref):
        close(a, b)

@pytest.mark.parametrize("seeds", [[3, 5], 4, [9]], ids=["two_seeds", "int_seed", "isolated_seed"])
@pytest.mark.parametrize("hops", [1, 2])
@pytest.mark.parametrize("flow", ["source_to_target", "target_to_source"])
@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("relabel", [False, True])
def test_k_hop_subgraph_matches_pyg(seeds, hops, flow, directed, relabel):
    ei = random_graph(11)
    ref = pyg_utils.k_hop_subgraph(seeds, hops, torch.tensor(ei), relabel_nodes=relabel, num_nodes=N,
                                   flow=flow, directed=directed)
    ours = gnn.k_hop_subgraph(seeds, hops, lt.tensor(ei), relabel_nodes=relabel, num_nodes=N, flow=flow,
                              directed=directed)
    for what, a, b in zip(("subset", "edge_index", "mapping", "edge_mask"), ours, ref):
        close(a, b, what)


def test_self_loop_utilities_match_pyg():
    ei = random_graph(12)
    w = np.random.default_rng(13).uniform(size=ei.shape[1]).astype(np.float32)
    for fn, kwargs in [("add_self_loops", dict(fill_value=0.5)), ("add_remaining_self_loops", dict(fill_value=2.0)),
                       ("add_self_loops", dict(fill_value="mean"))]:
        ref = getattr(pyg_utils, fn)(torch.tensor(ei), torch.tensor(w), num_nodes=N, **kwargs)
        ours = getattr(gnn, fn)(lt.tensor(ei), lt.tensor(w), num_nodes=N, **kwargs)
        close(ours[0], ref[0]), close(ours[1], ref[1])
    ref = pyg_utils.remove_self_loops(torch.tensor(ei), torch.tensor(w))
    ours = gnn.remove_self_loops(lt.tensor(ei), lt.tensor(w))
    close(ours[0], ref[0]), close(ours[1], ref[1])
    close(gnn.degree(lt.tensor(ei[1]), N), pyg_utils.degree(torch.tensor(ei[1]), N))
    src = np.random.default_rng(14).standard_normal((ei.shape[1], 2)).astype(np.float32)
    close(gnn.softmax(lt.tensor(src), lt.tensor(ei[1]), num_nodes=N),
          pyg_utils.softmax(torch.tensor(src), torch.tensor(ei[1]), num_nodes=N))
    close(gnn.to_undirected(lt.tensor(ei)), pyg_utils.to_undirected(torch.tensor(ei)))


def test_dropout_edge_and_drop_edge_module():
    ei = lt.tensor(random_graph(15))
    kept, mask = gnn.dropout_edge(ei, p=0.5)
    m = mask.numpy()
    assert 0 < m.sum() < m.size
    np.testing.assert_array_equal(kept.numpy(), ei.numpy()[:, m])
    same, _ = gnn.dropout_edge(ei, p=0.5, training=False)
    np.testing.assert_array_equal(same.numpy(), ei.numpy())
    assert gnn.dropout_edge(ei, p=1.0)[0].shape[1] == 0
    und, ids = gnn.dropout_edge(gnn.to_undirected(ei), p=0.3, force_undirected=True)
    pairs = set(map(tuple, und.numpy().T))
    assert all((b, a) in pairs for a, b in pairs)
    drop = gnn.DropEdge(p=0.5)
    drop.eval()
    np.testing.assert_array_equal(drop(ei).numpy(), ei.numpy())


def test_neighbor_loader_samples_real_edges_within_fanout():
    ei = random_graph(16)
    x = lt.tensor(np.arange(N * 2, dtype=np.float32).reshape(N, 2))
    data = gnn.Data(x=x, edge_index=lt.tensor(ei), y=lt.tensor(np.arange(N)))
    loader = gnn.NeighborLoader(data, num_neighbors=[2, 2], batch_size=4, shuffle=True)
    edges = set(map(tuple, ei.T))
    seen = []
    for batch in loader:
        n_id = batch.n_id.numpy()
        local = batch.edge_index.numpy()
        assert len(set(n_id)) == len(n_id)
        seen += list(n_id[:batch.batch_size])
        for s, t in local.T:
            assert (n_id[s], n_id[t]) in edges
        in_deg = np.bincount(local[1], minlength=len(n_id)) if local.size else np.zeros(len(n_id))
        assert in_deg[:batch.batch_size].max(initial=0) <= 2
        close(batch.x, x.numpy()[n_id])
        close(batch.y, n_id)
    assert sorted(seen) == list(range(N))
    full = next(iter(gnn.NeighborLoader(data, num_neighbors=[-1], batch_size=N)))
    assert full.edge_index.shape[1] == ei.shape[1]


def test_read_planetoid_matches_pyg(tmp_path):
    from torch_geometric.io import read_planetoid_data
    rng = np.random.default_rng(17)
    n_train, n_rest, n_test, feats, classes = 3, 505, 4, 6, 3
    n_all = n_train + n_rest
    onehot = lambda k: np.eye(classes, dtype=np.float32)[rng.integers(0, classes, k)]  # noqa: E731
    allx = sp.csr_matrix((rng.random((n_all, feats)) < 0.3).astype(np.float32))
    parts = dict(x=allx[:n_train], allx=allx, tx=sp.csr_matrix(rng.random((n_test, feats)).astype(np.float32)),
                 y=onehot(n_train), ty=onehot(n_test))
    parts["ally"] = np.concatenate([parts["y"], onehot(n_rest)])
    total = n_all + n_test
    graph = {i: list(rng.integers(0, total, 3)) + [i] for i in range(total)}   # self loops and repeats
    parts["graph"] = graph
    for key, value in parts.items():
        with open(tmp_path / f"ind.tiny.{key}", "wb") as f:
            pickle.dump(value, f)
    test_index = np.array([n_all + 2, n_all, n_all + 3, n_all + 1])
    np.savetxt(tmp_path / "ind.tiny.test.index", test_index, fmt="%d")
    ref = read_planetoid_data(str(tmp_path), "tiny")
    ours = gnn.read_planetoid(str(tmp_path), "tiny")
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        close(ours[key], ref[key], key)
    with pytest.raises(FileNotFoundError, match="ind.cora.x"):
        gnn.read_planetoid(str(tmp_path), "cora")


def test_message_passing_fuses_gather_message_scatter_into_one_kernel():
    ei = lt.tensor(random_graph()).realize()
    x = lt.randn(N, 8).realize()

    class Weighted(gnn.MessagePassing):
        def message(self, x_j, x_i):
            return (x_j * x_i).relu() + x_j

    out = Weighted(aggr="add").propagate(ei, x=x)
    items = out.schedule()
    assert len(items) == 1, lt.explain(out)
    assert {"index", "mul", "add", "scatter"} <= set(items[0].fused_ops)


@pytest.mark.parametrize("aggr,most", [("sum", 1), ("max", 2), ("mean", 3), ("var", 4), ("std", 4),
                                       ("softmax", 4)])
def test_aggregation_kernel_count_stays_small(aggr, most):
    """Upper bounds, not timings: each aggregation reads the gathered messages inside its scatters."""
    ei = lt.tensor(random_graph()).realize()
    x = lt.randn(N, 8).realize()
    out = gnn.MessagePassing(aggr=aggr).propagate(ei, x=x)
    items = out.schedule()
    assert len(items) <= most, lt.explain(out)
    assert any({"index", "scatter"} <= set(item.fused_ops) for item in items)


@pytest.mark.parametrize("fill_value", [None, 0.5, "mean", "add", "max"])
@pytest.mark.parametrize("with_attr", [False, True])
def test_replace_self_loops_is_pyg_remove_then_add(fill_value, with_attr):
    from lazytensor.gnn.utils import replace_self_loops
    ei = random_graph(6)
    attr = np.random.default_rng(16).standard_normal((ei.shape[1], 2)).astype(np.float32)
    t_attr = torch.tensor(attr) if with_attr else None
    l_attr = lt.tensor(attr) if with_attr else None
    t_ei, t_attr = pyg_utils.remove_self_loops(torch.tensor(ei), t_attr)
    num_nodes = None if fill_value == "max" else N     # None: counted from the edges left
    t_ei, t_attr = pyg_utils.add_self_loops(t_ei, t_attr, fill_value=fill_value, num_nodes=num_nodes)
    l_ei, l_attr = replace_self_loops(lt.tensor(ei), l_attr, fill_value, num_nodes)
    close(l_ei, t_ei, "edge_index")
    if with_attr:
        close(l_attr, t_attr, "edge_attr")
    else:
        assert l_attr is None


SOFTMAX_CASES = {   # name: (logits shape with E as dim `dim`, dim, scale, -inf positions)
    "per_edge": ((None,), 0, 1.0, ()),
    "heads": ((None, 3), 0, 1.0, ()),
    "large_logits": ((None, 2), 0, 80.0, ()),
    "minus_inf_logit": ((None, 2), 0, 1.0, (0, 5)),
    "dim_1": ((2, None), 1, 1.0, ()),
}


@pytest.mark.parametrize("name", list(SOFTMAX_CASES))
def test_softmax_matches_pyg_values_and_gradients(name):
    shape, dim, scale, minus_inf = SOFTMAX_CASES[name]
    ei = random_graph(5)
    shape = tuple(ei.shape[1] if s is None else s for s in shape)
    rng = np.random.default_rng(15)
    src = (rng.standard_normal(shape) * scale).astype(np.float32)
    for e in minus_inf:
        src.reshape(-1)[e] = -np.inf
    upstream = rng.standard_normal(shape).astype(np.float32)
    t_src, l_src = torch.tensor(src, requires_grad=True), lt.tensor(src, requires_grad=True)
    t_out = pyg_utils.softmax(t_src, torch.tensor(ei[1]), num_nodes=N, dim=dim)
    l_out = gnn.softmax(l_src, lt.tensor(ei[1]), num_nodes=N, dim=dim)
    close(l_out, t_out, "softmax")
    (t_out * torch.tensor(upstream)).sum().backward()
    (l_out * lt.tensor(upstream)).sum().backward()
    close(l_src.grad, t_src.grad, "softmax gradient")


STORED_EXP_INPUTS = {
    "moderate": [0.0, -1.5, 2.0, -30.0, 0.25],
    "softmax_shifted": [0.0, -0.5, -87.0, -104.0, -200.0],      # underflow to 0 and below
    "minus_inf": [0.0, float("-inf"), -3.0],
}


@pytest.mark.parametrize("name", list(STORED_EXP_INPUTS))
def test_stored_exp_matches_torch_exp_and_its_gradient(name):
    from lazytensor.gnn.utils import stored_exp
    x = np.array(STORED_EXP_INPUTS[name], dtype=np.float32)
    upstream = np.linspace(-1.0, 2.0, x.size).astype(np.float32)
    t_x, l_x = torch.tensor(x, requires_grad=True), lt.tensor(x, requires_grad=True)
    t_out, l_out = t_x.exp(), stored_exp(l_x * 1.0)
    close(l_out, t_out, "value")
    (t_out * torch.tensor(upstream)).sum().backward()
    (l_out * lt.tensor(upstream)).sum().backward()
    close(l_x.grad, t_x.grad, "gradient")


EXP_LOWERING_OPS = {"exp2", "shl", "bitcast"}     # exp2's polynomial lowering shows up as shl/bitcast


def test_gat_backward_reads_the_stored_exp_instead_of_recomputing_it_in_scatters():
    """The attention softmax computes exp once per (edge, head); the backward scatters to the source
    and target nodes (serial kernels) read that buffer rather than evaluating exp again."""
    x = lt.tensor(np.random.default_rng(3).standard_normal((N, F_IN)).astype(np.float32), requires_grad=True)
    conv = gnn.GATConv(F_IN, 3, heads=2)
    conv(x, lt.tensor(random_graph())).sum().backward()
    items = x.grad.schedule()
    with_exp = [item for item in items if EXP_LOWERING_OPS & set(item.fused_ops)]
    assert len(with_exp) == 1, lt.explain(x.grad)
    assert not any("scatter" in item.fused_ops for item in with_exp), lt.explain(x.grad)


def test_bad_inputs_name_the_layer():
    conv = gnn.GCNConv(F_IN, 4)
    with pytest.raises(ValueError, match="edge_index must have shape"):
        conv(lt.randn(N, F_IN), lt.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="aggr must be one of"):
        gnn.SAGEConv(3, 4, aggr="median")
    with pytest.raises(ValueError, match="semi_grad"):
        gnn.SoftmaxAggregation(learn=True, semi_grad=True)
    with pytest.raises(ValueError, match="needs learn=True"):
        gnn.MessagePassing(aggr="softmax", aggr_kwargs={"channels": 4})
    with pytest.raises(ValueError, match="needs 2-D messages"):
        gnn.SoftmaxAggregation(learn=True, channels=2)(lt.ones(3, 2, 2), lt.tensor([0, 1, 1]), dim=0)
    with pytest.raises(ValueError, match="at least one of 'ratio' and 'min_score'"):
        gnn.TopKPooling(3, ratio=None)
    with pytest.raises(ValueError, match="edge_dim"):
        gnn.GINEConv(lt_mlp(3, 4, 4))(lt.randn(4, 3), lt.tensor([[0, 1], [1, 2]]), lt.randn(2, 5))

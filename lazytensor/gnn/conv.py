"""Graph convolutions with PyG's names, arguments, parameter names and semantics.

Parameter names match torch_geometric 2.8 (`lin.weight`, `att_src`, `lin_l.weight`, ...), so
`layer.load_state_dict(pyg_layer.state_dict())` copies weights across.
"""
from __future__ import annotations

import math
from typing import Any

from lazytensor.creation import empty, zeros
from lazytensor.gnn.message_passing import MessagePassing
from lazytensor.gnn.utils import add_remaining_self_loops, replace_self_loops
from lazytensor.nn import init
from lazytensor.nn.linear import Linear, dropout
from lazytensor.nn.module import Module, Parameter
from lazytensor.nn.normalization import normalize
from lazytensor.sparse.ops import scatter
from lazytensor.sparse.tensor import SparseTensor
from lazytensor.tensor import Tensor


def _glorot_linear(in_features: int, out_features: int, bias: bool) -> Linear:
    """A Linear with PyG's default init: Glorot-uniform weight, zero bias."""
    lin = Linear(in_features, out_features, bias=bias)
    init.xavier_uniform_(lin.weight)
    if bias:
        init.zeros_(lin.bias)
    return lin


def gcn_norm(edge_index: Tensor, edge_weight: Tensor | None = None, num_nodes: int | None = None,
             improved: bool = False, add_self_loops: bool = True, flow: str = "source_to_target",
             dtype: Any = None) -> tuple[Tensor, Tensor]:
    """Symmetric normalization D^-1/2 (A + I) D^-1/2 of an edge list → (edge_index, edge_weight).

    Self loops: every node gets exactly one (weight 2 with improved=True, else 1); a node that
    already had one keeps its weight. Degrees are in-degrees (summed weights at the target)."""
    from lazytensor.gnn.utils import maybe_num_nodes
    n = maybe_num_nodes(edge_index, num_nodes)
    if add_self_loops:
        edge_index, edge_weight = add_remaining_self_loops(edge_index, edge_weight, 2.0 if improved else 1.0, n)
    if edge_weight is None:
        edge_weight = zeros(edge_index.shape[1], device=edge_index.device) + 1
    row, col = edge_index[0], edge_index[1]
    idx = col if flow == "source_to_target" else row
    deg = scatter(edge_weight, idx, 0, n, "sum")
    deg_inv_sqrt = deg.rsqrt()
    deg_inv_sqrt = deg_inv_sqrt.masked_fill(deg_inv_sqrt == math.inf, 0.0)
    weight = deg_inv_sqrt.index_select(0, row) * edge_weight * deg_inv_sqrt.index_select(0, col)
    # stored once per edge: left lazy, the scheduler would recompute it for every feature column
    # inside the message scatter (E·F instead of E evaluations)
    return edge_index, weight.contiguous()


class GCNConv(MessagePassing):
    """Kipf & Welling's graph convolution: X' = D^-1/2 (A + I) D^-1/2 X W + b."""

    def __init__(self, in_channels: int, out_channels: int, improved: bool = False, cached: bool = False,
                 add_self_loops: bool | None = None, normalize: bool = True, bias: bool = True,
                 **kwargs: Any) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if add_self_loops is None:
            add_self_loops = normalize
        if add_self_loops and not normalize:
            raise ValueError("GCNConv: 'add_self_loops' needs 'normalize=True' (as PyG)")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.improved, self.cached = improved, cached
        self.add_self_loops, self.normalize = add_self_loops, normalize
        self._cache: tuple[Any, Tensor] | None = None
        self.lin = _glorot_linear(in_channels, out_channels, bias=False)
        self.bias = Parameter(zeros(out_channels)) if bias else None

    def reset_parameters(self) -> None:
        init.xavier_uniform_(self.lin.weight)
        if self.bias is not None:
            init.zeros_(self.bias)
        self._cache = None

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        if isinstance(edge_index, SparseTensor):
            edge_weight = edge_index.values_or_none() if edge_weight is None else edge_weight
            edge_index = _adj_t_to_edge_index(edge_index)
        if self.normalize:
            if self.cached and self._cache is not None:
                edge_index, edge_weight = self._cache
            else:
                edge_index, edge_weight = gcn_norm(edge_index, edge_weight, x.shape[self.node_dim], self.improved,
                                                   self.add_self_loops, self.flow)
                if self.cached:
                    self._cache = (edge_index, edge_weight.detach().realize())
                    edge_weight = self._cache[1]
        x = self.lin(x)
        out = self.propagate(edge_index, x=x, edge_weight=edge_weight)
        return out + self.bias if self.bias is not None else out

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        return x_j if edge_weight is None else edge_weight.reshape(-1, 1) * x_j

    def __repr__(self) -> str:
        return f"GCNConv({self.in_channels}, {self.out_channels})"


class SAGEConv(MessagePassing):
    """GraphSAGE: x'_i = W_1 x_i + W_2 · aggr_{j→i} x_j (mean by default), optionally L2-normalized."""

    def __init__(self, in_channels: int | tuple[int, int], out_channels: int, aggr: Any = "mean",
                 normalize: bool = False, root_weight: bool = True, project: bool = False, bias: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(aggr=aggr, **kwargs)
        if isinstance(in_channels, int):
            in_channels = (in_channels, in_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.normalize, self.root_weight, self.project = normalize, root_weight, project
        if project:
            self.lin = Linear(in_channels[0], in_channels[0], bias=True)
        self.lin_l = Linear(in_channels[0], out_channels, bias=bias)
        if root_weight:
            self.lin_r = Linear(in_channels[1], out_channels, bias=False)

    def forward(self, x: Tensor | tuple[Tensor, Tensor | None], edge_index: Any,
                size: tuple[int, int] | None = None) -> Tensor:
        pair = x if isinstance(x, tuple) else (x, x)
        if self.project:
            pair = (self.lin(pair[0]).relu(), pair[1])
        out = self.propagate(edge_index, x=pair, size=size)
        out = self.lin_l(out)
        if self.root_weight and pair[1] is not None:
            out = out + self.lin_r(pair[1])
        if self.normalize:
            out = normalize(out, p=2.0, dim=-1)
        return out

    def message(self, x_j: Tensor) -> Tensor:
        return x_j

    def __repr__(self) -> str:
        return f"SAGEConv({self.in_channels}, {self.out_channels}, aggr={self.aggr})"


def _first_in_features(net: Module) -> int | None:
    for m in net.modules():
        if hasattr(m, "in_features"):
            return int(m.in_features)
    return None


def _register_eps(module: Module, eps: float, train_eps: bool) -> None:
    """GIN's self-weight eps: a learned parameter with train_eps, else a buffer (PyG's layout)."""
    module.initial_eps = eps
    if train_eps:
        module.eps = Parameter(Tensor([float(eps)]))
    else:
        module.register_buffer("eps", Tensor([float(eps)]))


class GINConv(MessagePassing):
    """Graph isomorphism network: x'_i = nn((1 + eps) x_i + Σ_{j→i} x_j)."""

    def __init__(self, nn: Module, eps: float = 0.0, train_eps: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.nn = nn
        _register_eps(self, eps, train_eps)

    def forward(self, x: Tensor | tuple[Tensor, Tensor | None], edge_index: Any,
                size: tuple[int, int] | None = None) -> Tensor:
        pair = x if isinstance(x, tuple) else (x, x)
        out = self.propagate(edge_index, x=pair, size=size)
        if pair[1] is not None:
            out = out + (1 + self.eps) * pair[1]
        return self.nn(out)

    def message(self, x_j: Tensor) -> Tensor:
        return x_j

    def __repr__(self) -> str:
        return f"GINConv(nn={self.nn})"


class GINEConv(MessagePassing):
    """GIN with edge features: x'_i = nn((1 + eps) x_i + Σ_{j→i} ReLU(x_j + W e_ji))."""

    def __init__(self, nn: Module, eps: float = 0.0, train_eps: bool = False, edge_dim: int | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.nn = nn
        _register_eps(self, eps, train_eps)
        if edge_dim is not None:
            in_channels = _first_in_features(nn)
            if in_channels is None:
                raise ValueError("GINEConv: could not infer the input size of 'nn' to project edge features")
            self.lin = Linear(edge_dim, in_channels)
        else:
            self.lin = None

    def forward(self, x: Tensor | tuple[Tensor, Tensor | None], edge_index: Any,
                edge_attr: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        pair = x if isinstance(x, tuple) else (x, x)
        out = self.propagate(edge_index, x=pair, edge_attr=edge_attr, size=size)
        if pair[1] is not None:
            out = out + (1 + self.eps) * pair[1]
        return self.nn(out)

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        if edge_attr is None:
            raise ValueError("GINEConv: edge_attr is required (pass edge_attr=...)")
        if self.lin is None and x_j.shape[-1] != edge_attr.shape[-1]:
            raise ValueError(f"GINEConv: node features ({x_j.shape[-1]}) and edge features "
                             f"({edge_attr.shape[-1]}) differ in size; set 'edge_dim' to project edge features")
        if self.lin is not None:
            edge_attr = self.lin(edge_attr)
        return (x_j + edge_attr).relu()

    def __repr__(self) -> str:
        return f"GINEConv(nn={self.nn})"


class GATConv(MessagePassing):
    """Graph attention (Veličković et al.): per head, α_ij = softmax_j(LeakyReLU(a_s·Wx_j + a_d·Wx_i [+ a_e·W_e e_ij]))
    and x'_i = Σ_j α_ij W x_j; heads are concatenated (concat=True) or averaged.

    in_channels=(a, b) makes the layer bipartite: source and target nodes get their own weights
    (`lin_src`, `lin_dst`) and forward takes x=(x_src, x_dst). residual=True adds a projection
    `res` of the target features to the output. add_self_loops gives every node that is both a
    source and a target one self loop (existing loops are replaced); its edge features come from
    `fill_value` (a number, a tensor, or 'add'/'mean'/'max'/'min' of the node's incoming edges)."""

    def __init__(self, in_channels: int | tuple[int, int], out_channels: int, heads: int = 1,
                 concat: bool = True, negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 edge_dim: int | None = None, fill_value: Any = "mean", bias: bool = True,
                 residual: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.concat, self.negative_slope, self.dropout = concat, negative_slope, dropout
        self.add_self_loops, self.edge_dim, self.fill_value = add_self_loops, edge_dim, fill_value
        self.residual = residual
        if isinstance(in_channels, int):
            self.lin = _glorot_linear(in_channels, heads * out_channels, bias=False)
            self.lin_src = self.lin_dst = None
        else:
            self.lin = None
            self.lin_src = _glorot_linear(in_channels[0], heads * out_channels, bias=False)
            self.lin_dst = _glorot_linear(in_channels[1], heads * out_channels, bias=False)
        self.att_src = Parameter(empty(1, heads, out_channels))
        self.att_dst = Parameter(empty(1, heads, out_channels))
        init.xavier_uniform_(self.att_src)
        init.xavier_uniform_(self.att_dst)
        if edge_dim is not None:
            self.lin_edge = _glorot_linear(edge_dim, heads * out_channels, bias=False)
            self.att_edge = Parameter(empty(1, heads, out_channels))
            init.xavier_uniform_(self.att_edge)
        else:
            self.lin_edge = None
            self.att_edge = None
        total = heads * out_channels if concat else out_channels
        if residual:
            res_in = in_channels if isinstance(in_channels, int) else in_channels[1]
            self.res = _glorot_linear(res_in, total, bias=False)
        else:
            self.res = None
        self.bias = Parameter(zeros(total)) if bias else None

    def _project(self, x: Tensor | tuple[Tensor, Tensor | None]
                 ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Node features → (W x_src, W x_dst or None, residual term or None), each (N, heads, C)."""
        heads, channels = self.heads, self.out_channels
        x_src, x_dst = x if isinstance(x, tuple) else (x, None)
        if x_src.ndim != 2:
            raise ValueError(f"GATConv: node features must be 2-D (N, F), got {tuple(x_src.shape)}")
        res_input = x_dst if isinstance(x, tuple) else x_src
        res = self.res(res_input) if self.res is not None and res_input is not None else None
        lin_src = self.lin if self.lin is not None else self.lin_src
        lin_dst = self.lin if self.lin is not None else self.lin_dst
        if not isinstance(x, tuple):
            src = lin_src(x_src).reshape(-1, heads, channels)
            dst = src if self.lin is not None else lin_dst(x_src).reshape(-1, heads, channels)
            return src, dst, res
        src = lin_src(x_src).reshape(-1, heads, channels)
        dst = None if x_dst is None else lin_dst(x_dst).reshape(-1, heads, channels)
        return src, dst, res

    def forward(self, x: Tensor | tuple[Tensor, Tensor | None], edge_index: Any,
                edge_attr: Tensor | None = None, size: tuple[int, int] | None = None,
                return_attention_weights: bool | None = None) -> Any:
        """x (N, F) or (x_src, x_dst) → (N_dst, heads·C) (concat) or (N_dst, C); with
        return_attention_weights also (edge_index with the self loops used, α (E', heads))."""
        heads, channels = self.heads, self.out_channels
        adj_t = edge_index if isinstance(edge_index, SparseTensor) else None
        if adj_t is not None:
            edge_index = _adj_t_to_edge_index(adj_t)
            if size is None:
                size = (adj_t.shape[1], adj_t.shape[0])
        x_src, x_dst, res = self._project(x)
        alpha_src = (x_src * self.att_src).sum(-1)
        alpha_dst = None if x_dst is None else (x_dst * self.att_dst).sum(-1)
        if self.add_self_loops:
            if adj_t is not None and self.edge_dim is not None:
                raise NotImplementedError("GATConv: 'edge_attr' with 'add_self_loops' is not supported for a "
                                          "SparseTensor adjacency (as PyG); pass a (2, E) edge_index")
            n = x_src.shape[0] if x_dst is None else min(x_src.shape[0], x_dst.shape[0])
            n = min(size) if size is not None else n
            edge_index, edge_attr = replace_self_loops(edge_index, edge_attr, self.fill_value, n)
        alpha = self.edge_updater(edge_index, size=size, alpha=(alpha_src, alpha_dst), edge_attr=edge_attr)
        out = self.propagate(edge_index, size=size, x=(x_src, x_dst), alpha=alpha)
        out = out.reshape(-1, heads * channels) if self.concat else out.mean(1)
        if res is not None:
            out = out + res
        if self.bias is not None:
            out = out + self.bias
        if return_attention_weights:
            if adj_t is not None:
                # PyG returns adj_t with α as (E, heads) values; our SparseTensor holds 1-D values only
                raise NotImplementedError("GATConv: return_attention_weights with a SparseTensor adjacency "
                                          "is not supported; pass a (2, E) edge_index to get "
                                          "(edge_index, alpha)")
            return out, (edge_index, alpha)
        return out

    def edge_update(self, alpha_j: Tensor, alpha_i: Tensor | None, edge_attr: Tensor | None, index: Tensor,
                    dim_size: int | None) -> Tensor:
        from lazytensor.gnn.utils import softmax
        alpha = alpha_j if alpha_i is None else alpha_j + alpha_i
        if index.shape[0] == 0:
            return alpha
        if edge_attr is not None and self.lin_edge is not None:
            if edge_attr.ndim == 1:
                edge_attr = edge_attr.reshape(-1, 1)
            edge_feat = self.lin_edge(edge_attr).reshape(-1, self.heads, self.out_channels)
            alpha = alpha + (edge_feat * self.att_edge).sum(-1)
        # the logits are stored once per (edge, head): the group max, the exp and the backward
        # scatters to both endpoints all read them instead of gathering and recomputing
        alpha = alpha.leaky_relu(self.negative_slope).contiguous()
        alpha = softmax(alpha, index, None, dim_size)
        alpha = dropout(alpha, p=self.dropout, training=self.training)
        # stored once per (edge, head): left lazy it would be recomputed for every channel inside
        # the message scatter
        return alpha.contiguous()

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return alpha.unsqueeze(-1) * x_j

    def __repr__(self) -> str:
        return f"GATConv({self.in_channels}, {self.out_channels}, heads={self.heads})"


def _adj_t_to_edge_index(adj_t: SparseTensor) -> Tensor:
    """A transposed adjacency adj_t[target, source] (PyG's convention) as a (2, E) edge list."""
    from lazytensor.functions import stack
    return stack([adj_t.col_tensor(), adj_t.row_tensor()], 0)

"""nn area: attention — scaled_dot_product_attention, MultiheadAttention and the Transformer encoder.

Parameter names and shapes follow torch (in_proj_weight, in_proj_bias, out_proj, ...), so a torch
state_dict loads unchanged. Everything is composed from Tensor ops: matmuls, a masked softmax, dropout.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

from lazytensor import creation, dtypes
from lazytensor.functions import cat, where
from lazytensor.nn import init
from lazytensor.nn.activation import gelu, relu
from lazytensor.nn.linear import Dropout, Linear, dropout, linear
from lazytensor.nn.module import Module, ModuleList, Parameter
from lazytensor.nn.normalization import LayerNorm
from lazytensor.tensor import Tensor

FUNCTIONS: list[str] = ["scaled_dot_product_attention", "multi_head_attention_forward"]
MODULES: list[str] = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder"]


# ---- scaled dot-product attention ----


def _causal_mask(length: int, source: int, device: str) -> Tensor:
    """Bool (L, S): True where query i may attend to key j (j <= i, top-left aligned as torch)."""
    rows = creation.arange(length, device=device).reshape(length, 1)
    cols = creation.arange(source, device=device).reshape(1, source)
    return cols <= rows


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """softmax(q @ kᵀ · scale + mask) @ v: (..., L, E), (..., S, E), (..., S, Ev) → (..., L, Ev).

    A bool attn_mask marks the pairs that may attend (True = keep); a float one is added to the scores.
    Rows with no key to attend to give zeros (as torch's CPU kernel). enable_gqa lets key/value have
    fewer heads (dim -3) than query, each shared by a group of query heads."""
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError(
            f"scaled_dot_product_attention: query, key and value need at least 2 dims, got "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(
            f"scaled_dot_product_attention: query {tuple(query.shape)}, key {tuple(key.shape)} and "
            f"value {tuple(value.shape)} do not line up: query and key need the same last dim, "
            "key and value the same sequence length (dim -2)"
        )
    if is_causal and attn_mask is not None:
        raise RuntimeError(
            "scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True"
        )
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        heads, kv_heads = query.shape[-3], key.shape[-3]
        if heads % kv_heads != 0 or value.shape[-3] != kv_heads:
            raise RuntimeError(
                f"scaled_dot_product_attention: with enable_gqa, query heads ({heads}) must be a "
                f"multiple of key/value heads ({kv_heads}, {value.shape[-3]})"
            )
        key = key.repeat_interleave(heads // kv_heads, -3)
        value = value.repeat_interleave(heads // kv_heads, -3)
    length, source = query.shape[-2], key.shape[-2]
    factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = query.matmul(key.transpose(-2, -1)) * factor
    keep = None
    if is_causal:
        keep = _causal_mask(length, source, query.device)
    elif attn_mask is not None:
        if attn_mask.dtype == dtypes.bool_:
            keep = attn_mask
        else:
            scores = scores + attn_mask
    if keep is not None:
        scores = where(keep, scores, float("-inf"))
    weights = _softmax_rows_or_zero(scores)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True)
    return weights.matmul(value)


def _softmax_rows_or_zero(scores: Tensor) -> Tensor:
    """Softmax over the last dim; a row that is -inf everywhere gives zeros (and zero gradient), not NaN."""
    alive = scores.amax(-1, keepdim=True) > float("-inf")
    safe = where(alive, scores, 0.0)
    return where(alive, safe.softmax(-1), 0.0)


# ---- multi-head attention ----


def _float_mask(mask: Tensor | None, like: Tensor, name: str) -> Tensor | None:
    """torch's canonical mask: a bool mask (True = not allowed) becomes 0 / -inf of like's dtype."""
    if mask is None:
        return None
    if mask.dtype == dtypes.bool_:
        return where(mask, float("-inf"), 0.0).cast(like.dtype)
    if not mask.dtype.is_float:
        raise AssertionError(
            f"MultiheadAttention: only bool and floating types of {name} are supported, got {mask.dtype}"
        )
    return mask


def multi_head_attention_forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: Tensor | None,
    in_proj_bias: Tensor | None,
    bias_k: Tensor | None,
    bias_v: Tensor | None,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: Tensor,
    out_proj_bias: Tensor | None,
    training: bool = True,
    key_padding_mask: Tensor | None = None,
    need_weights: bool = True,
    attn_mask: Tensor | None = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: Tensor | None = None,
    k_proj_weight: Tensor | None = None,
    v_proj_weight: Tensor | None = None,
    static_k: Tensor | None = None,
    static_v: Tensor | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """torch.nn.functional.multi_head_attention_forward on sequence-first input (L, N, E) or (L, E)."""
    if static_k is not None or static_v is not None:
        raise NotImplementedError("multi_head_attention_forward: static_k/static_v are not supported")
    batched = query.ndim == 3
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise AssertionError(
            f"MultiheadAttention: query, key and value must all be 2-D (unbatched) or 3-D, got "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    length, batch, embed_dim = query.shape
    if embed_dim != embed_dim_to_check:
        raise AssertionError(
            f"MultiheadAttention: was expecting embedding dimension of {embed_dim_to_check}, "
            f"but got {embed_dim}"
        )
    if key.shape[:2] != value.shape[:2]:
        raise AssertionError(
            f"MultiheadAttention: key shape {tuple(key.shape)} does not match value shape "
            f"{tuple(value.shape)}"
        )
    if is_causal and attn_mask is None:
        raise RuntimeError(
            "MultiheadAttention: Need attn_mask if specifying the is_causal hint (pass the causal "
            "mask as attn_mask)"
        )
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(
            f"MultiheadAttention: embed_dim {embed_dim} not divisible by num_heads {num_heads}"
        )

    # input projections: q/k/v weights are the three row blocks of in_proj_weight (or separate weights)
    if use_separate_proj_weight:
        weights = (q_proj_weight, k_proj_weight, v_proj_weight)
    else:
        weights = in_proj_weight.chunk(3, 0)
    biases = in_proj_bias.chunk(3, 0) if in_proj_bias is not None else (None, None, None)
    q = linear(query, weights[0], biases[0])
    k = linear(key, weights[1], biases[1])
    v = linear(value, weights[2], biases[2])

    attn_mask = _float_mask(attn_mask, q, "attn_mask")
    key_padding_mask = _float_mask(key_padding_mask, q, "key_padding_mask")
    source = k.shape[0]
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (length, source):
                raise RuntimeError(
                    f"MultiheadAttention: The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, "
                    f"but should be {(length, source)}."
                )
            attn_mask = attn_mask.unsqueeze(0)
        elif attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (batch * num_heads, length, source):
                raise RuntimeError(
                    f"MultiheadAttention: The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, "
                    f"but should be {(batch * num_heads, length, source)}."
                )
        else:
            raise RuntimeError(f"MultiheadAttention: attn_mask's dimension {attn_mask.ndim} is not supported")

    if bias_k is not None and bias_v is not None:
        k = cat([k, bias_k.expand(1, batch, embed_dim)], 0)
        v = cat([v, bias_v.expand(1, batch, embed_dim)], 0)
        attn_mask = attn_mask.pad((0, 1)) if attn_mask is not None else None
        key_padding_mask = key_padding_mask.pad((0, 1)) if key_padding_mask is not None else None

    # (L, N, E) → (N·H, L, head_dim)
    q = q.reshape(length, batch * num_heads, head_dim).transpose(0, 1)
    k = k.reshape(k.shape[0], batch * num_heads, head_dim).transpose(0, 1)
    v = v.reshape(v.shape[0], batch * num_heads, head_dim).transpose(0, 1)
    if add_zero_attn:
        zeros = creation.zeros(batch * num_heads, 1, head_dim, dtype=k.dtype, device=k.device)
        k, v = cat([k, zeros], 1), cat([v, zeros], 1)
        attn_mask = attn_mask.pad((0, 1)) if attn_mask is not None else None
        key_padding_mask = key_padding_mask.pad((0, 1)) if key_padding_mask is not None else None
    source = k.shape[1]

    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (batch, source):
            raise AssertionError(
                f"MultiheadAttention: expecting key_padding_mask shape of {(batch, source)}, "
                f"but got {tuple(key_padding_mask.shape)}"
            )
        padding = key_padding_mask.reshape(batch, 1, 1, source).expand(batch, num_heads, 1, source)
        padding = padding.reshape(batch * num_heads, 1, source)
        attn_mask = padding if attn_mask is None else attn_mask + padding

    if not training:
        dropout_p = 0.0
    if need_weights:
        scores = (q * (1.0 / math.sqrt(head_dim))).matmul(k.transpose(-2, -1))
        if attn_mask is not None:
            scores = scores + attn_mask
        probs = scores.softmax(-1)
        if dropout_p > 0.0:
            probs = dropout(probs, dropout_p)
        out = probs.matmul(v)
        probs = probs.reshape(batch, num_heads, length, source)
        if average_attn_weights:
            probs = probs.mean(1)
    else:
        mask = None
        if attn_mask is not None:
            if attn_mask.shape[0] != 1:  # (N·H, L or 1, S) → (N, H, L or 1, S)
                mask = attn_mask.reshape(batch, num_heads, attn_mask.shape[1], source)
            else:
                mask = attn_mask
        q4 = q.reshape(batch, num_heads, length, head_dim)
        k4 = k.reshape(batch, num_heads, source, head_dim)
        v4 = v.reshape(batch, num_heads, source, head_dim)
        out = scaled_dot_product_attention(q4, k4, v4, mask, dropout_p).reshape(
            batch * num_heads, length, head_dim
        )
        probs = None
    out = out.transpose(0, 1).reshape(length * batch, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(length, batch, embed_dim)
    if not batched:
        out = out.squeeze(1)
        probs = probs.squeeze(0) if probs is not None else None
    return out, probs


class NonDynamicallyQuantizableLinear(Linear):
    """torch's name for MultiheadAttention.out_proj's class (a plain Linear)."""


class MultiheadAttention(Module):
    """Multi-head attention with torch's parameters: in_proj_weight (3E, E) (or q/k/v_proj_weight when
    kdim/vdim differ from embed_dim), in_proj_bias (3E), out_proj (Linear E → E), bias_k/bias_v.

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) → (output, weights or None); bool masks: True = ignore."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"MultiheadAttention: embed_dim and num_heads must be greater than 0, got "
                f"embed_dim={embed_dim} and num_heads={num_heads} instead"
            )
        if embed_dim % num_heads != 0:
            raise AssertionError(
                f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = dropout, batch_first
        self.head_dim = embed_dim // num_heads
        self.add_zero_attn = add_zero_attn

        def empty(*shape: int) -> Parameter:
            return Parameter(init.placeholder(shape, dtype=dtype, device=device))

        if self._qkv_same_embed_dim:
            self.in_proj_weight = empty(3 * embed_dim, embed_dim)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = empty(embed_dim, embed_dim)
            self.k_proj_weight = empty(embed_dim, self.kdim)
            self.v_proj_weight = empty(embed_dim, self.vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = empty(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(
            embed_dim, embed_dim, bias=bias, device=device, dtype=dtype
        )
        if add_bias_kv:
            self.bias_k = empty(1, 1, embed_dim)
            self.bias_v = empty(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """xavier_uniform_ on the projections, zeros on the in/out biases, xavier_normal_ on bias_k/v."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        batched = query.ndim == 3
        if self.batch_first and batched:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        out, weights = multi_head_attention_forward(
            query,
            key,
            value,
            self.embed_dim,
            self.num_heads,
            self.in_proj_weight,
            self.in_proj_bias,
            self.bias_k,
            self.bias_v,
            self.add_zero_attn,
            self.dropout,
            self.out_proj.weight,
            self.out_proj.bias,
            training=self.training,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            attn_mask=attn_mask,
            use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights,
            is_causal=is_causal,
        )
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        return out, weights


# ---- transformer encoder ----


def _activation_fn(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    if callable(activation):
        return activation
    if activation == "relu":
        return relu
    if activation == "gelu":
        return gelu
    raise RuntimeError(f"TransformerEncoderLayer: activation should be relu/gelu, not {activation}")


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with dropout, a residual and LayerNorm (after the
    residual by default, before the block with norm_first=True); torch's submodule names."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, device=device, dtype=dtype
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, device=device, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, device=device, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation_fn(activation)

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(
        self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool
    ) -> Tensor:
        out = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(out)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


def _clone_module(module: Module) -> Module:
    """A deep copy of module whose parameters and buffers are new tensors with the same values."""
    memo: dict[int, Any] = {}
    for table in ("_parameters", "_buffers"):
        for sub in module.modules():
            for value in getattr(sub, table).values():
                if value is None or id(value) in memo:
                    continue
                if isinstance(value, Parameter):
                    memo[id(value)] = Parameter(value.detach(), requires_grad=value.requires_grad)
                else:
                    memo[id(value)] = value.detach().clone().realize()
    return copy.deepcopy(module, memo)


class TransformerEncoder(Module):
    """num_layers copies of encoder_layer applied in order (layers.0, layers.1, ...), then optional norm."""

    def __init__(
        self,
        encoder_layer: Module,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        self.layers = ModuleList([_clone_module(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        out = src
        for layer in self.layers:
            out = layer(
                out, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal)
            )
        return self.norm(out) if self.norm is not None else out

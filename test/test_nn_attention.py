"""Attention against torch: scaled_dot_product_attention, MultiheadAttention, TransformerEncoder(Layer).

Forward values and gradients (same upstream gradient) are compared on the same inputs, with torch's
weights loaded into ours (and ours into torch)."""

from __future__ import annotations

import numpy as np
import pytest

import lazytensor as lt
import lazytensor.nn as nn
import lazytensor.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def close(got, want, rtol=1e-4, atol=1e-5):
    w = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    g = got.numpy() if isinstance(got, lt.Tensor) else np.asarray(got)
    assert g.shape == w.shape, (g.shape, w.shape)
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)


def close_all(pairs, rtol=1e-4, atol=1e-5):
    """Compare (ours, torch's) pairs; ours are computed in one realize (shared work once, fewer kernels)."""
    lt.realize(*[got for got, _ in pairs])
    for got, want in pairs:
        close(got, want, rtol, atol)


def pair(shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return lt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def backward_both(ours, theirs, seed=99):
    """Same upstream gradient into both; done before ours is realized (realizing replaces its graph)."""
    g = np.random.default_rng(seed).standard_normal(tuple(theirs.shape)).astype(np.float32)
    ours.backward(lt.tensor(g))
    theirs.backward(torch.tensor(g))


def causal_bool(length, source):
    return np.tril(np.ones((length, source), dtype=bool))


# ---- scaled_dot_product_attention ----

SDPA_CASES = [
    # (q shape, k shape, v shape, kwargs, mask kind)
    ((2, 3, 4), (2, 5, 4), (2, 5, 6), {}, None),
    ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4), {"is_causal": True}, None),
    ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4), {}, "bool"),
    ((2, 3, 4), (2, 5, 4), (2, 5, 4), {"scale": 0.3}, "float_batched"),
    ((1, 4, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4), {"enable_gqa": True}, "float"),
    ((3, 4), (5, 4), (5, 2), {}, None),
]


@pytest.mark.parametrize("q_shape,k_shape,v_shape,kwargs,mask", SDPA_CASES, ids=lambda v: str(v))
def test_sdpa_matches_torch(q_shape, k_shape, v_shape, kwargs, mask):
    q, tq = pair(q_shape, 0)
    k, tk = pair(k_shape, 1)
    v, tv = pair(v_shape, 2)
    length, source = q_shape[-2], k_shape[-2]
    m = tm = None
    if mask == "bool":
        a = np.random.default_rng(3).random((length, source)) > 0.3
        a[:, 0] = True
        m, tm = lt.tensor(a), torch.tensor(a)
    elif mask in ("float", "float_batched"):
        shape = (q_shape[0], length, source) if mask == "float_batched" else (length, source)
        a = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
        m, tm = lt.tensor(a), torch.tensor(a)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kwargs)
    ty = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, **kwargs)
    backward_both(y, ty)
    close_all([(y, ty), (q.grad, tq.grad), (k.grad, tk.grad), (v.grad, tv.grad)])


def test_sdpa_fully_masked_row_gives_zeros_like_torch():
    q, tq = pair((1, 3, 4), 0)
    k, tk = pair((1, 5, 4), 1)
    v, tv = pair((1, 5, 4), 2)
    a = np.ones((3, 5), dtype=bool)
    a[1] = False
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=lt.tensor(a))
    ty = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.tensor(a))
    backward_both(y, ty)
    close_all([(y, ty), (q.grad, tq.grad)])
    np.testing.assert_array_equal(y.numpy()[0, 1], 0.0)


def test_sdpa_dropout_is_seeded_and_scaled():
    q, k, v = lt.ones(1, 64, 8), lt.ones(1, 64, 8), lt.ones(1, 64, 8)
    lt.manual_seed(5)
    first = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    lt.manual_seed(5)
    second = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    np.testing.assert_array_equal(first, second)
    # uniform weights 1/64, half dropped and the rest doubled: every output ≈ 1 on average
    assert abs(first.mean() - 1.0) < 0.05 and first.std() > 0.05


def test_sdpa_errors():
    q = lt.ones(2, 3, 4)
    with pytest.raises(RuntimeError, match="should not be set when is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=lt.ones(3, 3), is_causal=True)
    with pytest.raises(RuntimeError, match="do not line up"):
        F.scaled_dot_product_attention(q, lt.ones(2, 3, 5), q)


# ---- MultiheadAttention ----

MHA_CASES = [
    # (constructor kwargs, forward kwargs, masks)
    ({}, {}, None),
    ({"batch_first": True}, {"average_attn_weights": False}, "key_padding_bool"),
    ({"bias": False}, {"need_weights": False}, "key_padding_float"),
    ({}, {}, "attn_bool"),
    ({"batch_first": True}, {"need_weights": False}, "attn_float3d"),
    ({"kdim": 3, "vdim": 5}, {}, None),
    ({"add_bias_kv": True, "add_zero_attn": True}, {}, "key_padding_bool"),
    ({}, {"need_weights": False}, "unbatched"),
]


@pytest.mark.parametrize("ctor,fwd,masks", MHA_CASES, ids=lambda v: str(v))
def test_multihead_attention_matches_torch(ctor, fwd, masks):
    embed, heads, length, source, batch = 8, 2, 3, 4, 2
    ours, theirs = (
        nn.MultiheadAttention(embed, heads, **ctor),
        torch.nn.MultiheadAttention(embed, heads, **ctor),
    )
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict())
    bf = ctor.get("batch_first", False)

    def shape(seq, dim):
        if masks == "unbatched":
            return (seq, dim)
        return (batch, seq, dim) if bf else (seq, batch, dim)

    q, tq = pair(shape(length, embed), 0)
    k, tk = pair(shape(source, ctor.get("kdim", embed)), 1)
    v, tv = pair(shape(source, ctor.get("vdim", embed)), 2)
    extra, textra = {}, {}
    if masks == "key_padding_bool":
        a = np.zeros((batch, source), dtype=bool)
        a[0, -2:] = True
        extra["key_padding_mask"], textra["key_padding_mask"] = lt.tensor(a), torch.tensor(a)
    elif masks == "key_padding_float":
        a = np.random.default_rng(5).standard_normal((batch, source)).astype(np.float32)
        extra["key_padding_mask"], textra["key_padding_mask"] = lt.tensor(a), torch.tensor(a)
    elif masks == "attn_bool":
        a = ~causal_bool(length, source)
        extra["attn_mask"], textra["attn_mask"] = lt.tensor(a), torch.tensor(a)
    elif masks == "attn_float3d":
        a = np.random.default_rng(6).standard_normal((batch * heads, length, source)).astype(np.float32)
        extra["attn_mask"], textra["attn_mask"] = lt.tensor(a), torch.tensor(a)
    out, weights = ours(q, k, v, **fwd, **extra)
    tout, tweights = theirs(tq, tk, tv, **fwd, **textra)
    backward_both(out, tout)
    assert (weights is None) == (tweights is None)
    pairs = [(out, tout), (q.grad, tq.grad), (k.grad, tk.grad), (v.grad, tv.grad)]
    pairs += [(p.grad, tp.grad) for p, tp in zip(ours.parameters(), theirs.parameters())]
    close_all(pairs + ([(weights, tweights)] if weights is not None else []))


def test_multihead_attention_ours_into_torch():
    ours = nn.MultiheadAttention(6, 3, batch_first=True)
    theirs = torch.nn.MultiheadAttention(6, 3, batch_first=True)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 4, 6)).astype(np.float32)
    out, _ = ours(lt.tensor(x), lt.tensor(x), lt.tensor(x))
    with torch.no_grad():
        tout, _ = theirs(torch.tensor(x), torch.tensor(x), torch.tensor(x))
    close(out, tout)


def test_multihead_attention_init_like_torch():
    layer = nn.MultiheadAttention(16, 4)
    np.testing.assert_array_equal(layer.in_proj_bias.numpy(), 0.0)
    np.testing.assert_array_equal(layer.out_proj.bias.numpy(), 0.0)
    bound = np.sqrt(6.0 / (16 + 48))  # xavier_uniform_ over the (3E, E) in_proj_weight
    w = layer.in_proj_weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound


def test_multihead_attention_errors():
    with pytest.raises(AssertionError, match="divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    layer = nn.MultiheadAttention(4, 2)
    x = lt.ones(3, 2, 4)
    with pytest.raises(RuntimeError, match="2D attn_mask"):
        layer(x, x, x, attn_mask=lt.ones(2, 2))
    with pytest.raises(AssertionError, match="embedding dimension of 4"):
        layer(lt.ones(3, 2, 5), x, x)


def test_multihead_attention_dropout_only_in_training():
    layer = nn.MultiheadAttention(4, 2, dropout=0.5)
    x = lt.randn(3, 2, 4)
    layer.eval()
    a, _ = layer(x, x, x)
    b, _ = layer(x, x, x)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    layer.train()
    c, _ = layer(x, x, x)
    assert not np.allclose(a.numpy(), c.numpy())


# ---- Transformer encoder ----

ENCODER_CASES = [
    # (constructor kwargs, masked)
    ({}, False),
    ({"norm_first": True, "activation": "gelu", "batch_first": True, "layer_norm_eps": 1e-3}, True),
    ({"bias": False}, True),
]


@pytest.mark.parametrize("kwargs,masked", ENCODER_CASES, ids=str)
def test_transformer_encoder_layer_matches_torch(kwargs, masked):
    d_model, nhead, ff, length, batch = 8, 2, 16, 4, 2
    ours = nn.TransformerEncoderLayer(d_model, nhead, ff, dropout=0.0, **kwargs)
    theirs = torch.nn.TransformerEncoderLayer(d_model, nhead, ff, dropout=0.0, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict())
    bf = kwargs.get("batch_first", False)
    x, tx = pair((batch, length, d_model) if bf else (length, batch, d_model), 0)
    extra, textra = {}, {}
    if masked:
        a = np.zeros((batch, length), dtype=bool)
        a[1, -1] = True
        m = np.random.default_rng(1).standard_normal((length, length)).astype(np.float32)
        extra = {"src_key_padding_mask": lt.tensor(a), "src_mask": lt.tensor(m)}
        textra = {"src_key_padding_mask": torch.tensor(a), "src_mask": torch.tensor(m)}
    y, ty = ours(x, **extra), theirs(tx, **textra)
    backward_both(y, ty)
    pairs = [(y, ty), (x.grad, tx.grad)]
    pairs += [(p.grad, tp.grad) for p, tp in zip(ours.parameters(), theirs.parameters())]
    close_all(pairs, rtol=1e-3, atol=1e-4)


def test_transformer_encoder_stack_matches_torch_both_ways():
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    theirs = torch.nn.TransformerEncoder(layer, 2, norm=torch.nn.LayerNorm(8), enable_nested_tensor=False)
    ours = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2, norm=nn.LayerNorm(8)
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict())
    causal = ~causal_bool(4, 4)
    x, tx = pair((2, 4, 8), 0)
    y = ours(x, mask=lt.tensor(causal), is_causal=True)
    ty = theirs(tx, mask=torch.tensor(causal), is_causal=True)
    backward_both(y, ty)
    close_all([(y, ty), (x.grad, tx.grad)])
    # ours → torch
    fresh = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2)
    other = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
        2,
        enable_nested_tensor=False,
    )
    other.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in fresh.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((2, 4, 8)).astype(np.float32)
    with torch.no_grad():
        close(fresh(lt.tensor(x)), other.train()(torch.tensor(x)))


def test_transformer_encoder_layers_are_independent_copies():
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8), 3)
    first, second = encoder.layers[0].linear1.weight, encoder.layers[1].linear1.weight
    assert first is not second
    np.testing.assert_array_equal(first.numpy(), second.numpy())  # torch deep-copies one layer
    assert len(list(encoder.parameters())) == 3 * len(list(encoder.layers[0].parameters()))
    x = lt.randn(3, 1, 4)
    encoder(x).sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())

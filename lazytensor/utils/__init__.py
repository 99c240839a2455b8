"""lt.utils: data loading (`lt.utils.data`: Dataset, DataLoader, samplers)."""
from lazytensor.utils import data

__all__ = ["data"]

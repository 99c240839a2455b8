"""lt.utils: data loading."""

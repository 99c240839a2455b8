"""Runtimes: source and buffers in, results out. Knows nothing of graphs or dtypes."""

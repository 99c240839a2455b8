"""nn.init: PyTorch's parameter initializers."""

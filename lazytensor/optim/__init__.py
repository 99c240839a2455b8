"""lt.optim: optimizers (SGD, Adam, ...) and lr_scheduler."""

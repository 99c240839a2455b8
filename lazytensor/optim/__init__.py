"""lt.optim: optimizers (SGD, Adam, ...) and lr_scheduler, with torch.optim's names and update rules.

Every step is lazy: the updates of all parameters and state tensors (and the loss) are realized
together in one schedule, fused with the forward and backward graph that produced the gradients.
"""

from __future__ import annotations

from lazytensor.optim.optimizer import Optimizer, required
from lazytensor.optim.sgd import SGD
from lazytensor.optim.adam import Adam, AdamW
from lazytensor.optim.rmsprop import RMSprop
from lazytensor.optim.adagrad import Adagrad
from lazytensor.optim.adamax import Adamax
from lazytensor.optim.nadam import NAdam
from lazytensor.optim.radam import RAdam
from lazytensor.optim import lr_scheduler

__all__ = [
    "Optimizer",
    "required",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adamax",
    "NAdam",
    "RAdam",
    "lr_scheduler",
]

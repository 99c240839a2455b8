"""lt.nn: Module, layers, initializers and utilities, with torch.nn's names.

Layers live in area modules (linear.py, conv.py, normalization.py, ...); each lists its classes in
`MODULES`, which are gathered here so `lt.nn.Conv2d` works like `torch.nn.Conv2d`.
"""
from __future__ import annotations

from lazytensor.nn import functional, init, utils
from lazytensor.nn import activation, attention, conv, linear, loss, normalization, pooling, recurrent
from lazytensor.nn.module import Module, ModuleDict, ModuleList, Parameter, Sequential

for _area in (activation, attention, conv, linear, loss, normalization, pooling, recurrent):
    for _name in _area.MODULES:
        globals()[_name] = getattr(_area, _name)

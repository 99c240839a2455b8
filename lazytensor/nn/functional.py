"""lt.nn.functional: the function form of every layer and loss, with torch.nn.functional's names.

Each area module (conv.py, pooling.py, ...) defines its functions next to the Module classes that
use them and lists the functions in `FUNCTIONS`; this module gathers them in one namespace.
"""
from __future__ import annotations

from lazytensor.nn import activation, attention, conv, linear, loss, normalization, pooling, recurrent

for _area in (activation, attention, conv, linear, loss, normalization, pooling, recurrent):
    for _name in _area.FUNCTIONS:
        globals()[_name] = getattr(_area, _name)

"""nn area: linear (function forms and their Module classes)."""
from __future__ import annotations

FUNCTIONS: list[str] = []   # names re-exported by lt.nn.functional
MODULES: list[str] = []     # Module classes re-exported by lt.nn

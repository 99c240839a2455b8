"""Math expansions built once per signature and re-instantiated on each input.

exp, erf, sigmoid, GELU … are not primitives: tensor_elementwise.py builds each from a few dozen
elementwise ops (exp: range clamp, Cody–Waite reduction, polynomial, exponent bits). Built through
the tensor ops, with their broadcasting and promotion checks, that is ~2000 Python calls and most
of a millisecond per call, paid again on every forward pass of an eager model.

The graph of such an expansion depends only on the function, its captured constants, the input's
dtype, shape and device, and the grad mode (a device-dependent choice, like whether exp uses fused
multiply-adds, is fixed for the process). `expand_cached` therefore builds it once on a stand-in
input node, keeps the nodes that depend on it in order, and for every later input rebuilds just
those nodes over the real input: one `Node.make` per node. Nodes are hash-consed, so the result is
the very graph the direct build gives (the tests check identity), and everything after it (autograd,
scheduling, the schedule cache) cannot tell the difference.
"""
from __future__ import annotations

import types
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable

from lazytensor import graph as g
from lazytensor.autograd import GradMode
from lazytensor.dtypes import DType
from lazytensor.ops import BINARY, UNARY, Op

if TYPE_CHECKING:
    from lazytensor.graph import Node
    from lazytensor.tensor import Tensor

MAX_TEMPLATES = 256
"""Templates kept (least recently used dropped first): one per function, dtype, shape and device."""

# The ops an expansion may consist of: elementwise only, so rebuilding a node over new sources never
# has to re-derive a shape. A function whose graph has anything else is not cached.
_TEMPLATE_OPS = frozenset(UNARY) | frozenset(BINARY) | {Op.WHERE, Op.MULADD, Op.CAST, Op.BITCAST,
                                                        Op.CONST, Op.DETACH}


class _StandIn:
    """The argument of the stand-in BUFFER node a template is built on (it never holds data)."""
    __slots__ = ()


class _Template:
    """An expansion built on a stand-in node: the nodes depending on it, sources before users."""
    __slots__ = ("stand_in", "steps", "result")

    def __init__(self, stand_in: "Node", steps: list["Node"], result: "Node") -> None:
        self.stand_in, self.steps, self.result = stand_in, steps, result

    def instantiate(self, x: "Node") -> "Node":
        """The expansion's result node for input x: each step rebuilt over its new sources."""
        made: dict[int, "Node"] = {id(self.stand_in): x}
        for node in self.steps:
            srcs = tuple(made.get(id(s), s) for s in node.srcs)
            if node.op is Op.DETACH:
                new = g.detach(srcs[0])
            elif node.op is Op.CAST:
                new = g.cast(srcs[0], node.dtype)
            else:
                new = g.Node.make(node.op, node.dtype, srcs, node.arg, node.shape)
            made[id(node)] = new
        return made.get(id(self.result), self.result)


_TEMPLATES: "OrderedDict[tuple, _Template | None]" = OrderedDict()   # None: not cacheable
_MISSING = object()


def _value_key(value: Any) -> Any:
    """A hashable key for a constant a function captured: a float by its exact bits (0.0 and -0.0
    differ, NaN equals NaN), a nested function by its code and captures; TypeError for anything else
    (a tensor: the function is then not cached)."""
    if value is None or isinstance(value, (bool, int, str, DType)):
        return (type(value), value)
    if isinstance(value, float):
        return (float, value.hex())
    if isinstance(value, types.FunctionType):
        return _function_key(value)
    if isinstance(value, tuple):
        return tuple(_value_key(v) for v in value)
    raise TypeError(f"not a constant: {type(value).__name__}")


def _function_key(fn: types.FunctionType) -> tuple:
    cells = tuple(_value_key(c.cell_contents) for c in fn.__closure__ or ())
    return (fn.__code__, cells, _value_key(fn.__defaults__))


def _signature(fn: Callable[["Tensor"], "Tensor"], x: "Tensor") -> tuple | None:
    """What the graph of fn(x) depends on, or None when fn captures something other than constants."""
    if not isinstance(fn, types.FunctionType) or fn.__kwdefaults__:
        return None
    try:
        key = _function_key(fn)
    except TypeError:
        return None
    return (key, x.node.dtype, x.node.shape, x.device, GradMode.enabled)


def _build(fn: Callable[["Tensor"], "Tensor"], x: "Tensor") -> _Template | None:
    """fn's graph on a stand-in for x, or None if it holds a non-elementwise op."""
    from lazytensor.tensor import Tensor
    stand_in = g.buffer(_StandIn(), x.node.dtype, x.node.shape)
    result = fn(Tensor._from_node(stand_in, x.device))
    if not isinstance(result, Tensor) or result.device != x.device:
        return None
    steps: list["Node"] = []
    depends: set[int] = {id(stand_in)}
    for node in g.toposort([result.node]):
        if node.op not in _TEMPLATE_OPS and node is not stand_in:
            return None
        if any(id(s) in depends for s in node.srcs):
            depends.add(id(node))
            steps.append(node)
    return _Template(stand_in, steps, result.node)


def expand_cached(fn: Callable[["Tensor"], "Tensor"], x: "Tensor") -> "Tensor":
    """fn(x) for an elementwise math expansion fn, from a template built on the first call with x's
    signature (see the module docstring). Falls back to calling fn where a template cannot stand in:
    a constant or index input (its ops fold differently), or a function capturing non-constants."""
    if x.node.op in (Op.CONST, Op.IOTA):
        return fn(x)
    key = _signature(fn, x)
    if key is None:
        return fn(x)
    template = _TEMPLATES.get(key, _MISSING)
    if template is _MISSING:
        template = _build(fn, x)
        _TEMPLATES[key] = template
        while len(_TEMPLATES) > MAX_TEMPLATES:
            try:
                _TEMPLATES.popitem(last=False)
            except KeyError:   # another thread emptied it meanwhile
                break
    else:
        try:
            _TEMPLATES.move_to_end(key)
        except KeyError:       # another thread dropped it meanwhile: the template is still good
            pass
    if template is None:
        return fn(x)
    return x._new(template.instantiate(x.node))

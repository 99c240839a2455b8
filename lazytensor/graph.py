"""The op graph: one immutable, hash-consed node type.

Equal subgraphs are the same object (`Node.make` looks them up in a weak table), so common
subexpressions are shared for free and a node can be used as a dict key by identity.
Shapes and dtypes are inferred here, one small function per op family. Broadcasting is never
implicit: sources of an elementwise op must already have equal shapes (the front end inserts
explicit RESHAPE/EXPAND).
"""
from __future__ import annotations

import math
import weakref
from typing import Any, Callable, Iterable

from lazytensor import dtypes
from lazytensor.dtypes import DType
from lazytensor.ops import BINARY, COMPARISON, MOVEMENT, UNARY, Op

Shape = tuple[int, ...]


def _arg_key(arg: Any) -> Any:
    """A hashable key that tells 0.0 from -0.0 and matches NaN with itself (arg itself when no float
    is inside: shapes, axes, permutations and (op, axes) pairs need no key of their own)."""
    if arg is None or arg.__class__ is int:   # fast paths: most nodes have no arg or an int one
        return arg
    if arg.__class__ is tuple:
        for a in arg:
            if a.__class__ is not int and a.__class__ is not Op and _arg_key(a) is not a:
                return tuple(_arg_key(a) for a in arg)
        return arg
    if isinstance(arg, float):
        return ("float", arg.hex())
    if isinstance(arg, tuple):
        return tuple(_arg_key(a) for a in arg)
    return arg


# An enum member read through its class costs ~80 ns on Python 3.11 (EnumType's __getattr__ hook), as
# much as the rest of a small constructor: the constructors every small op goes through keep theirs here.
_BUFFER, _CONST, _RESHAPE, _REDUCE = Op.BUFFER, Op.CONST, Op.RESHAPE, Op.REDUCE

_nodes: "dict[tuple, _NodeRef]" = {}   # the hash-cons table: key -> weak reference to its node
                                               # (a plain dict: WeakValueDictionary's Python-level
                                               # methods cost a microsecond per node built)


class _NodeRef(weakref.ref):
    """A weak reference to a node that knows its hash-cons key (weakref.KeyedRef does the same, but
    through a Python-level __new__ and __init__: a microsecond per node built)."""
    __slots__ = ("key",)


def _forget(ref: _NodeRef, nodes: dict = _nodes) -> None:
    """A node died: drop its entry, unless the key already belongs to a newer node. (The table is
    bound as a default: the callback may run while the interpreter tears the module down.)"""
    key = ref.key
    found = nodes.pop(key, None)   # (one hash of the key; a newer node's entry is put back)
    if found is not ref and found is not None:
        nodes[key] = found


class Node:
    """One op in the graph: `op` applied to `srcs` with argument `arg`, giving `dtype`/`shape`.

    Never construct directly; use `Node.make` (or the helpers below) so equal nodes are shared.
    """
    __slots__ = ("op", "dtype", "srcs", "arg", "shape", "__weakref__", "_bounds", "arg_key", "grad_memo",
                 "realized")

    op: Op
    dtype: DType
    srcs: tuple["Node", ...]
    arg: Any
    shape: Shape
    arg_key: Any   # _arg_key(arg), kept for the schedule cache's structure key
    grad_memo: int   # autograd.needs_grad's memo: 2·generation + answer (-1: never asked)
    realized: Any    # the buffer holding this node's computed value, or None (see schedule.REALIZED)

    @staticmethod
    def make(op: Op, dtype: DType, srcs: tuple["Node", ...] = (), arg: Any = None,
             shape: Shape = ()) -> "Node":
        # (only a float or a tuple can need a key of its own: no call for the others, e.g. a buffer)
        arg_key = _arg_key(arg) if isinstance(arg, (float, tuple)) else arg
        key = (op, dtype, srcs, arg_key, shape)
        ref = _nodes.get(key)
        if ref is not None:
            found = ref()
            if found is not None:
                return found
        node = object.__new__(Node)
        node.op, node.dtype, node.srcs, node.arg, node.shape = op, dtype, srcs, arg, shape
        node._bounds, node.arg_key, node.grad_memo, node.realized = None, arg_key, -1, None
        ref = _NodeRef(node, _forget)
        ref.key = key
        _nodes[key] = ref
        return node

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def __repr__(self) -> str:
        arg = "" if self.arg is None or self.op is Op.BUFFER else f", {self.arg}"
        return f"<{self.op.name} {self.dtype.name}{list(self.shape)}{arg} ({len(self.srcs)} srcs)>"


def toposort(roots: Iterable[Node], stop: "Callable[[Node], bool] | None" = None) -> list[Node]:
    """All nodes reachable from roots, each after its sources. Iterative: graphs can be deep.

    Nodes for which stop(node) is true are included but not walked into."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in roots:
        if id(root) in seen:
            continue
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            if stop is not None and stop(node):
                continue
            for s in reversed(node.srcs):
                if id(s) not in seen:
                    stack.append((s, False))
    return order


# ----------------------------------------------------------------------------------------------
# Constructors with shape/dtype inference. They also fold trivial movement (identity views,
# views of views, views of constants) so graphs stay small; algebra lives in rewrite rules.
# ----------------------------------------------------------------------------------------------

def const(value: float | int | bool, dtype: DType, shape: Shape = ()) -> Node:
    """A constant broadcast over shape."""
    return Node.make(Op.CONST, dtype, (), dtypes.cast_scalar(value, dtype), tuple(shape))


def iota(n: int, dtype: DType = dtypes.int32) -> Node:
    """[0, 1, ..., n-1]."""
    return Node.make(Op.IOTA, dtype, (), None, (n,))


def buffer(buf: Any, dtype: DType, shape: Shape) -> Node:
    """A leaf standing for a realized buffer (contiguous, row-major)."""
    return Node.make(_BUFFER, dtype, (), buf, tuple(shape))


def unary(op: Op, x: Node) -> Node:
    assert op in UNARY and op not in (Op.CAST, Op.BITCAST), op
    return Node.make(op, x.dtype, (x,), None, x.shape)


def cast(x: Node, dtype: DType) -> Node:
    if x.dtype == dtype:
        return x
    if x.op is Op.CONST:
        return const(x.arg, dtype, x.shape)
    return Node.make(Op.CAST, dtype, (x,), None, x.shape)


def bitcast(x: Node, dtype: DType) -> Node:
    assert x.dtype.itemsize == dtype.itemsize, (x.dtype, dtype)
    if x.dtype == dtype:
        return x
    return Node.make(Op.BITCAST, dtype, (x,), None, x.shape)


def binary(op: Op, a: Node, b: Node) -> Node:
    assert op in BINARY, op
    assert a.shape == b.shape, f"{op.name}: shapes {a.shape} and {b.shape} (broadcast first)"
    assert a.dtype == b.dtype or op in (Op.SHL, Op.SHR), f"{op.name}: dtypes {a.dtype} and {b.dtype}"
    out = dtypes.bool_ if op in COMPARISON else a.dtype
    return Node.make(op, out, (a, b), None, a.shape)


def where(cond: Node, a: Node, b: Node) -> Node:
    assert cond.shape == a.shape == b.shape and cond.dtype == dtypes.bool_ and a.dtype == b.dtype
    return Node.make(Op.WHERE, a.dtype, (cond, a, b), None, a.shape)


def muladd(a: Node, b: Node, c: Node) -> Node:
    """a*b + c with one rounding (floats; shapes and dtypes already equal)."""
    assert a.shape == b.shape == c.shape and a.dtype == b.dtype == c.dtype
    assert a.dtype in (dtypes.float32, dtypes.float64), f"MULADD on {a.dtype}"
    return Node.make(Op.MULADD, a.dtype, (a, b, c), None, a.shape)


def reduce(x: Node, op: Op, axes: tuple[int, ...]) -> Node:
    """Reduce over axes (non-negative, any order, repeats allowed) with op (ADD, MUL or MAX); reduced
    axes keep size 1."""
    in_shape = x.shape
    reduced: list[int] = []   # the axes asked for that are not already of size 1, in order
    kept: list[int] = []      # the output shape
    for i, s in enumerate(in_shape):
        if s != 1 and i in axes:
            reduced.append(i)
            kept.append(1)
        else:
            kept.append(s)
    if not reduced:
        return x
    axes = tuple(reduced)
    shape = tuple(kept)
    if 0 in in_shape:   # an empty reduce is its identity (a loop over a size-0 dim has no index math)
        identity = {Op.ADD: 0, Op.MUL: 1}.get(op, dtypes.min_value(x.dtype))
        return const(identity, x.dtype, shape)
    return Node.make(_REDUCE, x.dtype, (x,), (op, axes), shape)


def reshape(x: Node, shape: Shape) -> Node:
    shape = tuple(shape)
    assert math.prod(shape) == math.prod(x.shape), f"reshape {x.shape} -> {shape}"
    if shape == x.shape:
        return x
    if x.op is _CONST:
        return const(x.arg, x.dtype, shape)
    if x.op is _RESHAPE:
        return reshape(x.srcs[0], shape)
    return Node.make(_RESHAPE, x.dtype, (x,), shape, shape)


def permute(x: Node, order: tuple[int, ...]) -> Node:
    order = tuple(order)
    assert sorted(order) == list(range(len(x.shape))), f"permute {x.shape} by {order}"
    if order == tuple(range(len(order))):
        return x
    shape = tuple(x.shape[i] for i in order)
    if x.op is Op.CONST:
        return const(x.arg, x.dtype, shape)
    if x.op is Op.PERMUTE:
        inner = x.arg
        return permute(x.srcs[0], tuple(inner[i] for i in order))
    return Node.make(Op.PERMUTE, x.dtype, (x,), order, shape)


def expand(x: Node, shape: Shape) -> Node:
    shape = tuple(shape)
    if shape == x.shape:
        return x
    assert len(shape) == len(x.shape), f"expand {x.shape} -> {shape}"
    for s, n in zip(x.shape, shape):
        assert s == n or s == 1, f"expand {x.shape} -> {shape}"
    if x.op is Op.CONST:
        return const(x.arg, x.dtype, shape)
    if x.op is Op.EXPAND:
        return expand(x.srcs[0], shape)
    return Node.make(Op.EXPAND, x.dtype, (x,), shape, shape)


def pad(x: Node, padding: tuple[tuple[int, int], ...]) -> Node:
    padding = tuple((int(b), int(a)) for b, a in padding)
    assert len(padding) == len(x.shape) and all(b >= 0 and a >= 0 for b, a in padding)
    if all(b == 0 and a == 0 for b, a in padding):
        return x
    shape = tuple(s + b + a for s, (b, a) in zip(x.shape, padding))
    if x.op is Op.CONST and x.arg == 0:
        return const(0, x.dtype, shape)
    return Node.make(Op.PAD, x.dtype, (x,), padding, shape)


def shrink(x: Node, bounds: tuple[tuple[int, int], ...]) -> Node:
    bounds = tuple((int(s), int(e)) for s, e in bounds)
    assert len(bounds) == len(x.shape) and all(0 <= s <= e <= n for (s, e), n in zip(bounds, x.shape))
    if all(s == 0 and e == n for (s, e), n in zip(bounds, x.shape)):
        return x
    shape = tuple(e - s for s, e in bounds)
    if x.op is Op.CONST:
        return const(x.arg, x.dtype, shape)
    if x.op is Op.SHRINK:
        inner = x.arg
        return shrink(x.srcs[0], tuple((i0 + s, i0 + e) for (i0, _), (s, e) in zip(inner, bounds)))
    return Node.make(Op.SHRINK, x.dtype, (x,), bounds, shape)


def flip(x: Node, axes: tuple[int, ...]) -> Node:
    axes = tuple(sorted(a for a in set(axes) if x.shape[a] > 1))
    if not axes:
        return x
    if x.op is Op.CONST:
        return x
    if x.op is Op.FLIP:
        remaining = tuple(sorted(set(x.arg) ^ set(axes)))
        return flip(x.srcs[0], remaining)
    return Node.make(Op.FLIP, x.dtype, (x,), axes, x.shape)


def window(x: Node, dim: int, size: int, step: int, dilation: int = 1) -> Node:
    """Sliding windows along dim: that dim becomes the window count and a trailing axis of `size`
    taps is appended; element (o, k) is x at o*step + k*dilation (torch's Tensor.unfold, plus dilation)."""
    span = dilation * (size - 1) + 1
    assert size >= 1 and step >= 1 and dilation >= 1 and x.shape[dim] >= span, f"window {x.shape} {dim} {size}"
    count = (x.shape[dim] - span) // step + 1
    shape = x.shape[:dim] + (count,) + x.shape[dim + 1:] + (size,)
    if x.op is Op.CONST:
        return const(x.arg, x.dtype, shape)
    return Node.make(Op.WINDOW, x.dtype, (x,), (dim, size, step, dilation), shape)


def contiguous(x: Node) -> Node:
    """A kernel boundary around x (x itself when it is one already: a boundary inside a boundary
    would leave the inner one with no kernel of its own)."""
    if x.op is Op.CONTIGUOUS:
        return x
    return Node.make(Op.CONTIGUOUS, x.dtype, (x,), None, x.shape)


def detach(x: Node) -> Node:
    if x.op in (Op.DETACH, Op.CONST, Op.IOTA):
        return x
    return Node.make(Op.DETACH, x.dtype, (x,), None, x.shape)


def copy_to(x: Node, device: str) -> Node:
    return Node.make(Op.COPY, x.dtype, (x,), device, x.shape)


def index(src: Node, idxs: tuple[Node, ...]) -> Node:
    """Gather: out[i] = src[idxs[0][i], ..., idxs[d-1][i]]; every idx has the output's shape."""
    assert len(idxs) == len(src.shape) and idxs
    shape = idxs[0].shape
    assert all(i.shape == shape and (i.dtype.is_int) for i in idxs)
    return Node.make(Op.INDEX, src.dtype, (src, *idxs), None, shape)


def scatter(base: Node, src: Node, idxs: tuple[Node, ...], reduce_op: Op | None) -> Node:
    """out = base; then out[idxs[0][i], ...] (reduce_op)= src[i] for every i in src's shape."""
    assert len(idxs) == len(base.shape) and base.dtype == src.dtype
    assert all(i.shape == src.shape and i.dtype.is_int for i in idxs)
    return Node.make(Op.SCATTER, base.dtype, (base, src, *idxs), reduce_op, base.shape)


def movement(op: Op, x: Node, arg: Any) -> Node:
    """Apply a movement op by enum (used by rewrites that rebuild views)."""
    assert op in MOVEMENT
    builders = {Op.RESHAPE: reshape, Op.PERMUTE: permute, Op.EXPAND: expand, Op.PAD: pad,
                Op.SHRINK: shrink, Op.FLIP: flip, Op.WINDOW: lambda src, arg: window(src, *arg)}
    return builders[op](x, arg)


def rebuild(node: Node, srcs: tuple[Node, ...]) -> Node:
    """The same op as node over new sources (shape re-derived where it depends on sources)."""
    if srcs == node.srcs:
        return node
    if node.op in MOVEMENT:
        return movement(node.op, srcs[0], node.arg)
    if node.op is Op.REDUCE:
        return reduce(srcs[0], node.arg[0], node.arg[1])
    return Node.make(node.op, node.dtype, srcs, node.arg, node.shape)

"""Movement ops → index expressions.

A movement op is a view: an element of its output is an element of its source at another
index (or, for PAD, a zero where the index falls outside the source). `source_index` maps
symbolic output indices to symbolic source indices plus a validity condition; a chain of
views composes by calling it repeatedly, and symbolic.py keeps the result tidy (a reshape of
a contiguous buffer folds back to a plain linear index).
"""
from __future__ import annotations

from lazytensor import symbolic as sym
from lazytensor.graph import Node, Shape
from lazytensor.ops import Op

Index = tuple[Node, ...]


def strides_of(shape: Shape) -> tuple[int, ...]:
    """Row-major (C-contiguous) strides, in elements."""
    strides = []
    acc = 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= s
    return tuple(reversed(strides))


def flat_index(idx: Index, shape: Shape) -> Node:
    """Linear offset of idx in a contiguous row-major array of shape."""
    out = sym.const(0)
    for i, stride, size in zip(idx, strides_of(shape), shape):
        if size != 1:
            out = sym.add(out, sym.mul(i, sym.const(stride)))
    return out


def unflatten_index(flat: Node, shape: Shape) -> Index:
    """The multi-index of linear offset `flat` in a contiguous array of shape."""
    out = []
    for stride, size in zip(strides_of(shape), shape):
        if size == 1:
            out.append(sym.const(0))
        else:
            out.append(sym.mod(sym.idiv(flat, stride), size))
    return tuple(out)


def source_index(node: Node, idx: Index) -> tuple[Index, Node | None]:
    """For movement node `node`: (index into node.srcs[0], validity or None if always valid)."""
    src_shape = node.srcs[0].shape
    op = node.op
    if op is Op.RESHAPE:
        return unflatten_index(flat_index(idx, node.shape), src_shape), None
    if op is Op.PERMUTE:
        out: list[Node] = [sym.const(0)] * len(idx)
        for i, axis in enumerate(node.arg):
            out[axis] = idx[i]
        return tuple(out), None
    if op is Op.EXPAND:
        return tuple(sym.const(0) if s == 1 else i for i, s in zip(idx, src_shape)), None
    if op is Op.SHRINK:
        return tuple(sym.add(i, sym.const(start)) if start else i
                     for i, (start, _) in zip(idx, node.arg)), None
    if op is Op.FLIP:
        return tuple(sym.add(sym.mul(i, sym.const(-1)), sym.const(n - 1)) if axis in node.arg else i
                     for axis, (i, n) in enumerate(zip(idx, src_shape))), None
    if op is Op.WINDOW:
        dim, _, step, dilation = node.arg
        out = list(idx[:-1])
        out[dim] = sym.add(sym.mul(idx[dim], sym.const(step)), sym.mul(idx[-1], sym.const(dilation)))
        return tuple(out), None
    if op is Op.PAD:
        valid: Node | None = None
        out = []
        for i, (before, _), n in zip(idx, node.arg, src_shape):
            if before == 0 and sym.bounds(i)[1] < n:
                out.append(i)
                continue
            shifted = sym.add(i, sym.const(-before))
            cond = sym.logical_and(sym.ge(shifted, sym.const(0)), sym.lt(shifted, sym.const(n)))
            valid = sym.logical_and(valid, cond)
            out.append(shifted)
        return tuple(out), valid
    raise ValueError(f"{op} is not a movement op")

"""Module-level tensor functions (`lt.where`, `lt.cat`, `lt.stack`, `lt.einsum`, ...)."""
from __future__ import annotations

import re
from typing import Any, Sequence

from lazytensor import dtypes
from lazytensor import graph as g
from lazytensor.tensor import Tensor, broadcast_shapes


def _first_tensor(*xs: Any) -> Tensor:
    for x in xs:
        if isinstance(x, Tensor):
            return x
    raise TypeError("expected at least one tensor argument")


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """condition ? input : other, broadcasting all three; where(condition) is nonzero(as_tuple=True)."""
    if input is None and other is None:
        return condition.nonzero(as_tuple=True)
    ref = _first_tensor(condition, input, other)
    cond = ref._as_tensor(condition).cast(dtypes.bool_)
    a, b = ref._as_tensor(input) if isinstance(input, Tensor) else input, other
    a_t = a if isinstance(a, Tensor) else None
    if a_t is not None:
        a2, b2 = a_t._broadcast_pair(b, "where")
    elif isinstance(b, Tensor):
        b2, a2 = b._broadcast_pair(a, "where")
    else:
        out_dtype = dtypes.result_type(a, b)
        a2, b2 = ref._const(a, out_dtype, ()), ref._const(b, out_dtype, ())
    shape = broadcast_shapes(tuple(cond.shape), tuple(a2.shape), op="where")
    cond, a2, b2 = cond._broadcast_to(shape), a2._broadcast_to(shape), b2._broadcast_to(shape)
    return cond._new(g.where(cond.node, a2.node, b2.node))


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate along dim: each part is padded into place and the parts are summed."""
    tensors = [t for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    # PyTorch skips legacy empty 1-D tensors
    nonempty = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    ref = nonempty[0]
    for i, t in enumerate(nonempty):
        if t.ndim == 0:
            raise RuntimeError(f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated; "
                               f"use stack, or reshape it to (1,) first")
    axis = ref._axis(dim, "cat")
    out_dtype = dtypes.result_type(*[t for t in nonempty]) if len(nonempty) > 1 else ref.dtype
    for t in nonempty:
        if t.ndim != ref.ndim or any(t.shape[d] != ref.shape[d] for d in range(ref.ndim) if d != axis):
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {axis}; got "
                               f"{[tuple(x.shape) for x in nonempty]}")
        if t.device != ref.device:
            raise RuntimeError(f"cat: all tensors must be on the same device, got {ref.device} and {t.device}")
    total = sum(t.shape[axis] for t in nonempty)
    parts = []
    start = 0
    for t in nonempty:
        pads = [(0, 0)] * ref.ndim
        pads[axis] = (start, total - start - t.shape[axis])
        parts.append(t.cast(out_dtype)._pad_zeros(pads))
        start += t.shape[axis]
    # combine pairwise (a balanced tree): the graph of a cat of k parts is log2(k) deep, not k
    while len(parts) > 1:
        pairs = [(a | b if out_dtype.is_bool else a + b) for a, b in zip(parts[0::2], parts[1::2])]
        parts = pairs + parts[len(pairs) * 2:]
    return parts[0]


concat = cat
concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise RuntimeError(f"stack: expects each tensor to be equal size, but got {[tuple(t.shape) for t in tensors]}")
    axis = tensors[0]._axis(dim, "stack", ndim=tensors[0].ndim + 1)
    return cat([t.unsqueeze(axis) for t in tensors], axis)


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    return cat(list(tensors), 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    return cat([t.reshape(1, -1) if t.ndim == 1 else t for t in tensors], 0)


def maximum(a: Tensor, b: Any) -> Tensor:
    return a.maximum(b)


def minimum(a: Tensor, b: Any) -> Tensor:
    return a.minimum(b)


def clamp(x: Tensor, min: Any = None, max: Any = None) -> Tensor:
    return x.clamp(min, max)


clip = clamp


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return a.matmul(b)


def _einsum_parse(equation: str, operands: Sequence[Tensor]) -> tuple[list[str], str, dict[str, int]]:
    """'...' expanded into private labels; returns (input specs, output spec, size of each label)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: equation {equation!r} has {len(inputs)} operand(s) but {len(operands)} "
                         "were given")
    for spec in inputs + ([rhs] if arrow else []):
        bad = set(spec.replace("...", "")) - set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        if bad or spec.count("...") > 1:
            raise ValueError(f"einsum: invalid subscripts {spec!r} in {equation!r} "
                             "(letters and one '...' only)")
    # '...' stands for each operand's leading unlabelled dims, broadcast right-aligned across operands
    n_ell = 0
    for spec, t in zip(inputs, operands):
        n_named = len(spec.replace("...", ""))
        if ("..." in spec and t.ndim < n_named) or ("..." not in spec and t.ndim != n_named):
            raise ValueError(f"einsum: operand with shape {tuple(t.shape)} does not match subscripts "
                             f"{spec!r}")
        if "..." in spec:
            n_ell = max(n_ell, t.ndim - n_named)
    ell_labels = "".join(chr(0x100 + i) for i in range(n_ell))
    inputs = [s.replace("...", ell_labels[n_ell - (t.ndim - len(s) + 3):] if "..." in s else "")
              for s, t in zip(inputs, operands)]
    if not arrow:
        counts: dict[str, int] = {}
        for s in inputs:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        # implicit output: the broadcast dims, then labels used once, alphabetically (A-Z before a-z)
        rhs = ell_labels + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell_labels))
    else:
        rhs = rhs.replace("...", ell_labels)
    sizes: dict[str, int] = {}
    for spec, t in zip(inputs, operands):
        for c, n in zip(spec, t.shape):
            if c not in sizes or sizes[c] == 1:
                sizes[c] = n
            elif n != sizes[c] and n != 1:
                raise ValueError(f"einsum: subscript {c!r} has sizes {sizes[c]} and {n} in {equation!r}")
    for c in rhs:
        if c not in sizes:
            raise ValueError(f"einsum: output subscript {c!r} does not appear in the inputs of {equation!r}")
        if rhs.count(c) > 1:
            raise ValueError(f"einsum: output subscript {c!r} appears more than once in {equation!r}")
    return inputs, rhs, sizes


def _presums_a_label(inputs: list[str], operands: Sequence[Tensor], rhs: str) -> bool:
    """True if a summed label has size > 1 in only one operand: PyTorch sums it there first."""
    for c in set("".join(inputs)) - set(rhs):
        owners = [i for i, (spec, t) in enumerate(zip(inputs, operands))
                  if any(ch == c and n != 1 for ch, n in zip(spec, t.shape))]
        if len(owners) == 1:
            return True
    return False


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation: each operand (diagonals taken for repeated labels) is permuted and broadcast
    to all labels (output labels first), the operands are multiplied and the rest summed: one kernel."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands or not all(isinstance(t, Tensor) for t in operands):
        raise TypeError("einsum: operands must be tensors")
    inputs, rhs, sizes = _einsum_parse(equation, operands)
    labels: list[str] = []
    for c in "".join(inputs):
        if c not in labels:
            labels.append(c)
    order = list(rhs) + [c for c in labels if c not in rhs]
    product = None
    for spec, t in zip(inputs, operands):
        # take diagonals for repeated labels within one operand
        while len(set(spec)) != len(spec):
            c = next(ch for ch in spec if spec.count(ch) > 1)
            i, j = spec.index(c), spec.index(c, spec.index(c) + 1)
            if t.shape[i] != t.shape[j]:
                raise ValueError(f"einsum: subscript {c!r} is repeated in {spec!r} but its dims have sizes "
                                 f"{t.shape[i]} and {t.shape[j]}")
            t = t.diagonal(0, i, j)
            spec = spec[:i] + spec[i + 1:j] + spec[j + 1:] + c
        perm = sorted(range(len(spec)), key=lambda k: order.index(spec[k]))
        t = t.permute(perm) if perm else t
        present = [spec[k] for k in perm]
        t = t.reshape(tuple(t.shape[present.index(c)] if c in present else 1 for c in order))
        t = t.expand(tuple(sizes[c] for c in order))
        product = t if product is None else product * t
    assert product is not None
    summed = tuple(range(len(rhs), len(order)))
    if not summed:
        return product
    from lazytensor.ops import Op
    out_dtype = product.dtype
    if not out_dtype.is_float and _presums_a_label(inputs, operands, rhs):
        out_dtype = dtypes.int64   # PyTorch sums such a label out with sum(), which widens ints
    acc = out_dtype if out_dtype != product.dtype else dtypes.acc_dtype(product.dtype)
    return product.cast(acc)._reduce(Op.ADD, summed, False, "einsum").cast(out_dtype)

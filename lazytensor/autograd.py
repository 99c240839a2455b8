"""Autograd as a graph rewrite: one gradient rule per primitive op, written as graph construction.

`backward` walks the graph once in reverse topological order from the output, asks each
node's rule for its sources' gradients (new lazy nodes), sums them per node, and attaches the
results to the leaf tensors as lazy `.grad` tensors. Nothing is realized here: forward,
backward and an optimizer update form one graph that the scheduler fuses.

A rule gets (node, upstream gradient) and returns one gradient per source (None where no
gradient flows: integer sources, conditions, indices). A composite op may define its own gradient
for its output node (`define_gradient`: convolution does), used instead of the walk through its ops.
"""
from __future__ import annotations

import math
import weakref
from typing import Callable, NamedTuple

from lazytensor import dtypes
from lazytensor import graph as g
from lazytensor.graph import Node
from lazytensor.ops import MOVEMENT, Op

GradRule = Callable[[Node, Node], tuple[Node | None, ...]]
CustomGradRule = Callable[[Node, tuple[bool, ...]], tuple[Node | None, ...]]


class GradMode:
    """Whether new ops record gradient flow (`lt.no_grad()` turns it off)."""
    enabled = True


# ---- small graph helpers (all shapes already equal: broadcasting is explicit) ----

def _c(value: float, like: Node) -> Node:
    return g.const(value, like.dtype, like.shape)


def _add(a: Node, b: Node) -> Node:
    return g.binary(Op.ADD, a, b)


def _mul(a: Node, b: Node) -> Node:
    return g.binary(Op.MUL, a, b)


def _div(a: Node, b: Node) -> Node:
    return g.binary(Op.FDIV, a, b)


def _neg(a: Node) -> Node:
    return g.unary(Op.NEG, a)


def _eq(a: Node, b: Node) -> Node:
    ne = g.binary(Op.CMPNE, a, b)
    return g.binary(Op.CMPNE, ne, g.const(True, dtypes.bool_, ne.shape))


def _select(cond: Node, a: Node, like: Node) -> Node:
    """where(cond, a, 0)."""
    return g.where(cond, a, _c(0, like))


def _sum_to(grad: Node, shape: tuple[int, ...]) -> Node:
    """Sum a gradient over the axes an EXPAND broadcast (inverse of expand)."""
    axes = tuple(i for i, (s, n) in enumerate(zip(shape, grad.shape)) if s == 1 and n != 1)
    if not axes:
        return grad
    acc = dtypes.acc_dtype(grad.dtype)
    return g.cast(g.reduce(g.cast(grad, acc), Op.ADD, axes), grad.dtype)


def _expand_back(grad: Node, reduced: Node) -> Node:
    """Broadcast a reduce's gradient back over the reduced axes of its source."""
    return g.expand(grad, reduced.srcs[0].shape)


def _layout_source(node: Node) -> Node:
    """node with the layout copies (CONTIGUOUS) inside its chain of views removed: the same values,
    read from where they came from. A matmul packs its right operand into panels for the forward
    pass; the backward pass reads the operand in its own layout instead (there the packed layout
    would be strided along the gradient's vector axis)."""
    views: list[Node] = []
    current = node
    while current.op in MOVEMENT or current.op is Op.CONTIGUOUS:
        views.append(current)
        current = current.srcs[0]
    if current.op is not Op.BUFFER or not any(v.op is Op.CONTIGUOUS for v in views):
        return node   # only a copy of stored data is dropped: a computed value stays computed once
    rebuilt = current
    for view in reversed(views):
        if view.op is not Op.CONTIGUOUS:
            rebuilt = Node.make(view.op, view.dtype, (rebuilt,), view.arg, view.shape)
    return rebuilt


# ---- the rules, one per primitive ----

def _grad_max(node: Node, grad: Node) -> tuple[Node | None, ...]:
    """Elementwise maximum: the larger input gets the gradient; ties split it evenly (PyTorch)."""
    a, b = node.srcs
    a_wins = g.binary(Op.CMPLT, b, a)
    tie = _eq(a, b)
    half = _mul(grad, _c(0.5, grad))
    ga = g.where(a_wins, grad, _select(tie, half, grad))
    gb = g.where(g.binary(Op.CMPLT, a, b), grad, _select(tie, half, grad))
    return ga, gb


def _grad_reduce(node: Node, grad: Node) -> tuple[Node | None, ...]:
    op, axes = node.arg
    x = node.srcs[0]
    up = _expand_back(grad, node)
    if op is Op.ADD:
        return (up,)
    if op is Op.MAX:
        # the maxima share the gradient evenly (PyTorch's rule for amax/amin and max() without dim)
        out = g.expand(node, x.shape)
        hit = g.cast(_eq(x, out), x.dtype)
        count = g.expand(g.reduce(hit, Op.ADD, axes), x.shape)
        return (_div(_mul(up, hit), count),)
    # MUL: d(prod)/dx_i = the product of the others, exact with zeros (never out / x_i there)
    is_zero = _eq(x, _c(0, x))
    x_or_one = g.where(is_zero, _c(1, x), x)
    prod_nonzero = g.expand(g.reduce(x_or_one, Op.MUL, axes), x.shape)
    zeros = g.expand(g.reduce(g.cast(is_zero, x.dtype), Op.ADD, axes), x.shape)
    return (_mul(up, _product_of_others(is_zero, x_or_one, prod_nonzero, zeros)),)


def _product_of_others(is_zero: Node, x_or_one: Node, prod_nonzero: Node, zeros: Node) -> Node:
    """The product of all the other factors of a product, per factor x_i, given: whether x_i is 0,
    x_i with zeros replaced by 1, the product of the nonzero factors and the count of zero factors.
    No zero: prod / x_i. Exactly one zero: prod_nonzero at the zero, 0 elsewhere. More: 0."""
    no_zero = _eq(zeros, _c(0, zeros))
    the_only_zero = g.binary(Op.AND, is_zero, _eq(zeros, _c(1, zeros)))
    return g.where(no_zero, _div(prod_nonzero, x_or_one), _select(the_only_zero, prod_nonzero, prod_nonzero))


def _grad_index(node: Node, grad: Node) -> tuple[Node | None, ...]:
    """Gather: scatter-add the gradient back to the positions that were read."""
    src, idxs = node.srcs[0], node.srcs[1:]
    zeros = g.const(0, grad.dtype, src.shape)
    return (g.scatter(zeros, grad, idxs, Op.ADD),) + (None,) * len(idxs)


def _grad_scatter(node: Node, grad: Node) -> tuple[Node | None, ...]:
    base, src, idxs = node.srcs[0], node.srcs[1], node.srcs[2:]
    gathered = g.index(grad, idxs)
    if node.arg is Op.ADD:
        return (grad, gathered) + (None,) * len(idxs)
    if node.arg is None:
        # overwritten positions get no gradient in the base
        hit = g.scatter(g.const(False, dtypes.bool_, base.shape), g.const(True, dtypes.bool_, src.shape),
                        idxs, None)
        return (g.where(hit, _c(0, grad), grad), gathered) + (None,) * len(idxs)
    if node.arg is Op.MAX:
        # every input equal to the result shares its gradient evenly (PyTorch's scatter_reduce amax rule)
        out_at_src = g.index(node, idxs)
        base_won = g.cast(_eq(node, base), grad.dtype)
        src_won = g.cast(_eq(out_at_src, src), grad.dtype)
        share = _div(grad, g.scatter(base_won, src_won, idxs, Op.ADD))
        return (_mul(share, base_won), _mul(g.index(share, idxs), src_won)) + (None,) * len(idxs)
    # MUL: each factor gets the product of the other factors written to its position, exact with zeros
    base_zero, src_zero = _eq(base, _c(0, base)), _eq(src, _c(0, src))
    base_or_one = g.where(base_zero, _c(1, base), base)
    src_or_one = g.where(src_zero, _c(1, src), src)
    prod_nonzero = g.scatter(base_or_one, src_or_one, idxs, Op.MUL)
    zeros = g.scatter(g.cast(base_zero, base.dtype), g.cast(src_zero, src.dtype), idxs, Op.ADD)
    grad_base = _mul(grad, _product_of_others(base_zero, base_or_one, prod_nonzero, zeros))
    grad_src = _mul(gathered, _product_of_others(src_zero, src_or_one, g.index(prod_nonzero, idxs),
                                                 g.index(zeros, idxs)))
    return (grad_base, grad_src) + (None,) * len(idxs)


def _grad_window(node: Node, grad: Node) -> Node:
    """Sliding windows: every tap k adds its slice of grad back at positions o*step + k*dilation
    (one padded, strided view per tap, summed: col2im with linear indices)."""
    dim, size, step, dilation = node.arg
    src_shape = node.srcs[0].shape
    count = node.shape[dim]
    rank = len(src_shape)
    total: Node | None = None
    for k in range(size):
        tap = g.shrink(grad, tuple((0, s) for s in grad.shape[:-1]) + ((k, k + 1),))
        tap = g.reshape(tap, tap.shape[:-1])                       # (..., count, ...)
        if step > 1:   # spread the count values `step` apart: (count,) -> (count, step) -> count*step
            spread = g.reshape(tap, src_shape[:dim] + (count, 1) + src_shape[dim + 1:])
            spread = g.pad(spread, tuple((0, step - 1) if i == dim + 1 else (0, 0) for i in range(rank + 1)))
            tap = g.reshape(spread, src_shape[:dim] + (count * step,) + src_shape[dim + 1:])
            tap = g.shrink(tap, tuple((0, (count - 1) * step + 1) if i == dim else (0, s)
                                      for i, s in enumerate(tap.shape)))
        before = k * dilation
        after = src_shape[dim] - before - tap.shape[dim]
        tap = g.pad(tap, tuple((before, after) if i == dim else (0, 0) for i in range(rank)))
        total = tap if total is None else g.binary(Op.ADD, total, tap)
    return total


def _inverse_permutation(order: tuple[int, ...]) -> tuple[int, ...]:
    inv = [0] * len(order)
    for i, o in enumerate(order):
        inv[o] = i
    return tuple(inv)


GRAD_RULES: dict[Op, GradRule] = {
    Op.ADD: lambda n, gr: (gr, gr),
    Op.MUL: lambda n, gr: (_mul(gr, _layout_source(n.srcs[1])), _mul(gr, _layout_source(n.srcs[0]))),
    Op.FDIV: lambda n, gr: (_div(gr, n.srcs[1]),
                            _neg(_div(_mul(gr, n), n.srcs[1]))),
    Op.NEG: lambda n, gr: (_neg(gr),),
    Op.EXP2: lambda n, gr: (_mul(gr, _mul(n, _c(math.log(2.0), n))),),
    Op.LOG2: lambda n, gr: (_div(gr, _mul(n.srcs[0], _c(math.log(2.0), n))),),
    Op.SIN: lambda n, gr: (_mul(gr, g.unary(Op.COS, n.srcs[0])),),
    Op.COS: lambda n, gr: (_neg(_mul(gr, g.unary(Op.SIN, n.srcs[0]))),),
    Op.SQRT: lambda n, gr: (_div(gr, _mul(n, _c(2.0, n))),),
    Op.RECIPROCAL: lambda n, gr: (_neg(_mul(gr, _mul(n, n))),),
    Op.TRUNC: lambda n, gr: (_c(0, gr),),
    Op.CAST: lambda n, gr: (g.cast(gr, n.srcs[0].dtype) if n.srcs[0].dtype.is_float else None,),
    Op.BITCAST: lambda n, gr: (None,),
    Op.MAX: _grad_max,
    Op.MOD: lambda n, gr: (gr, _neg(_mul(gr, g.unary(Op.TRUNC, _div(n.srcs[0], n.srcs[1]))))),
    Op.WHERE: lambda n, gr: (None, _select(n.srcs[0], gr, gr), g.where(n.srcs[0], _c(0, gr), gr)),
    Op.MULADD: lambda n, gr: (_mul(gr, n.srcs[1]), _mul(gr, n.srcs[0]), gr),
    Op.REDUCE: _grad_reduce,
    Op.RESHAPE: lambda n, gr: (g.reshape(gr, n.srcs[0].shape),),
    Op.PERMUTE: lambda n, gr: (g.permute(gr, _inverse_permutation(n.arg)),),
    Op.EXPAND: lambda n, gr: (_sum_to(gr, n.srcs[0].shape),),
    Op.PAD: lambda n, gr: (g.shrink(gr, tuple((b, b + s) for (b, _), s in zip(n.arg, n.srcs[0].shape))),),
    Op.SHRINK: lambda n, gr: (g.pad(gr, tuple((s, full - e)
                                              for (s, e), full in zip(n.arg, n.srcs[0].shape))),),
    Op.FLIP: lambda n, gr: (g.flip(gr, n.arg),),
    Op.WINDOW: lambda n, gr: (_grad_window(n, gr),),
    Op.CONTIGUOUS: lambda n, gr: (gr,),
    Op.INDEX: _grad_index,
    Op.SCATTER: _grad_scatter,
}
NO_GRADIENT = frozenset({Op.CMPLT, Op.CMPNE, Op.AND, Op.OR, Op.XOR, Op.SHL, Op.SHR, Op.IDIV, Op.IOTA,
                         Op.CONST, Op.BUFFER, Op.DETACH})


# ---- gradients that a composite op defines for itself ----

class CustomGradient(NamedTuple):
    """A composite's own gradient: `rule(upstream gradient, which inputs want one)` → one gradient per
    input (None where not wanted), replacing the generic walk through the composite's inner graph."""
    inputs: tuple[Node, ...]
    rule: CustomGradRule


# output node → its composite's gradient. The rule must not hold the output node itself (the key is weak).
CUSTOM_GRADIENTS: "weakref.WeakKeyDictionary[Node, CustomGradient]" = weakref.WeakKeyDictionary()


def define_gradient(output: Node, inputs: tuple[Node, ...], rule: CustomGradRule) -> None:
    """Make `gradients` differentiate `output` with respect to `inputs` (nodes it was computed from)
    by `rule` instead of through the ops between them. A gradient reaching an inner node from another
    consumer still flows generically, so the result stays exact whoever else reads the inner nodes.
    Where an input is no longer in output's graph (view folding: linear(linear(x)) reads the first
    result's reduce through one merged reshape, not its output node), the gradient flows generically
    too: a gradient handed to a node outside the graph would be lost."""
    CUSTOM_GRADIENTS[output] = CustomGradient(tuple(inputs), rule)


# ---- results waiting for the next optimizer step ----

# Tensors that backward() was called on (losses) since the last Optimizer.step(): the step realizes
# them in the same schedule as the parameter update, so reading the loss afterwards runs nothing.
_PENDING_STEP: "list[weakref.ref]" = []


def mark_for_step(tensor: object) -> None:
    """Ask the next Optimizer.step() to realize `tensor` together with the update (held weakly)."""
    if len(_PENDING_STEP) > 64:   # backward() without step(): keep only the live ones
        _PENDING_STEP[:] = [r for r in _PENDING_STEP if r() is not None]
    _PENDING_STEP.append(weakref.ref(tensor))


def take_marked_for_step() -> list:
    """The live tensors marked since the last call (and forget them)."""
    alive = [r() for r in _PENDING_STEP]
    _PENDING_STEP.clear()
    return [t for t in alive if t is not None]


# ---- which nodes are differentiable leaves ----

# node → the leaf tensor that owns it (tensors created with requires_grad=True, or requires_grad_())
LEAVES: "weakref.WeakValueDictionary[Node, object]" = weakref.WeakValueDictionary()


class _NeedsGradMemo:
    """needs_grad's answers live on the nodes (Node.grad_memo = 2·generation + answer), so asking costs
    an attribute read, not a weak-dictionary lookup; forgetting every answer is a generation bump."""
    generation = 0


def register_leaf(node: Node, tensor: object) -> None:
    LEAVES[node] = tensor
    _forget_needs_grad_through(node)


def unregister_leaf(node: Node) -> None:
    LEAVES.pop(node, None)
    _forget_needs_grad_through(node)


def _forget_needs_grad_through(node: Node) -> None:
    """Forget memoized needs_grad answers that a change of node's leaf status can make wrong.

    needs_grad answers every node its walk passes (leaves and DETACHes included), so a node without
    a current answer lies under no answered node: nothing answered depends on it, and nothing is
    forgotten. That is the common case of an optimizer step pointing a parameter at a fresh node."""
    if node.grad_memo >> 1 == _NeedsGradMemo.generation:
        _NeedsGradMemo.generation += 1


def leaf_nodes_under(node: Node) -> list[Node]:
    """The registered leaves a gradient from node can reach."""
    order = g.toposort([node], stop=lambda n: n.op is Op.DETACH or n in LEAVES)
    return [n for n in order if n in LEAVES]


def needs_grad(node: Node) -> bool:
    """True if a gradient can flow from node to some registered leaf (memoized; stops at DETACH)."""
    leaves = LEAVES.data   # node -> weak reference to its tensor (read directly: this runs per realize)
    if not leaves:
        return False
    current = 2 * _NeedsGradMemo.generation   # a memo m is current when m >> 1 == generation
    memo = node.grad_memo
    if memo >= current:
        return memo == current + 1
    # one walk over the nodes not answered yet (sources first); answered nodes, leaves and DETACHes
    # end it, so asking about every new op of a growing graph costs the new part only
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        n, expanded = stack.pop()
        if n.grad_memo >= current:
            continue
        if expanded:
            flows = False
            for s in n.srcs:
                if s.grad_memo == current + 1:
                    flows = True
                    break
            n.grad_memo = current + 1 if flows else current
            continue
        owner = leaves.get(n)
        if owner is not None and owner() is not None:
            n.grad_memo = current + 1
        elif n.op is Op.DETACH:
            n.grad_memo = current
        else:
            stack.append((n, True))
            for s in n.srcs:
                if s.grad_memo < current:
                    stack.append((s, False))
    return node.grad_memo == current + 1


def _graph_down_to_leaves(output: Node) -> tuple[list[Node], set[Node]]:
    """(every node a gradient from output can pass, sources before users; the opaque ones among them).

    Opaque nodes (registered leaves and DETACHes) are listed but not walked into: an updated leaf is
    a lazy node whose own graph gradients must not enter. One iterative walk, each node tested once."""
    order: list[Node] = []
    opaque: set[Node] = set()
    seen: set[Node] = set()
    detach = Op.DETACH
    stack: list[tuple[Node, bool]] = [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        if node.op is detach or node in LEAVES:
            opaque.add(node)
            order.append(node)
            continue
        stack.append((node, True))
        for src in reversed(node.srcs):
            if src not in seen:
                stack.append((src, False))
    return order, opaque


def gradients(output: Node, seed: Node, targets: list[Node] | None = None) -> dict[Node, Node]:
    """d(output)/d(target) for each target, as lazy graph nodes, given d(loss)/d(output) = seed.

    Targets may be leaves or intermediate results; a gradient keeps flowing through an
    intermediate target to the targets below it (the total derivative, as in PyTorch). The walk
    never enters a registered leaf's own graph (an updated leaf is a lazy node) or a DETACH.
    targets=None: every registered leaf under output (what backward() wants; saves a second walk)."""
    order, opaque = _graph_down_to_leaves(output)
    if targets is None:
        targets = [n for n in order if n in opaque and n in LEAVES]
    wanted = set(targets)
    relevant: set[Node] = set()
    for n in order:   # nodes on a path to a target
        if n in wanted:
            relevant.add(n)
            continue
        if n in opaque:
            continue
        for src in n.srcs:
            if src in relevant:
                relevant.add(n)
                break
    grads: dict[Node, Node] = {output: seed}
    walked = set(order)
    for n in reversed(order):
        grad = grads.get(n)
        if grad is None or n not in relevant or n in opaque or n.op in NO_GRADIENT:
            continue
        custom = CUSTOM_GRADIENTS.get(n)
        if custom is not None and all(src in walked for src in custom.inputs):
            srcs = custom.inputs
            src_grads = custom.rule(grad, tuple(src in relevant for src in srcs))
        else:
            rule = GRAD_RULES.get(n.op)
            if rule is None:
                raise RuntimeError(f"autograd: no gradient rule for {n.op.name}")
            srcs, src_grads = n.srcs, rule(n, grad)
        for src, src_grad in zip(srcs, src_grads):
            if src_grad is None or src not in relevant or not src.dtype.is_float:
                continue
            if src_grad.dtype != src.dtype:
                src_grad = g.cast(src_grad, src.dtype)
            previous = grads.get(src)
            grads[src] = src_grad if previous is None else _add(previous, src_grad)
    return {t: grads[t] for t in targets if t in grads}

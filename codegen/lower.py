"""Kernel AST (tensor-level nodes over DEFINE_BUF slots) → LoopKernel (loops of scalar stores).

Lowering computes "the value of node at index idx" recursively: elementwise ops lower their
sources at the same index, views map the index through indexing.source_index (PAD adds a
validity condition that gates loads), a fused reduce opens new loop variables, a gather
lowers its index tensors first and reads its source at the (checked) result.
"""
from __future__ import annotations

import math
from typing import Generator

from lazytensor import dtypes
from lazytensor import symbolic as sym
from lazytensor.dtypes import DType
from lazytensor.graph import Node
from lazytensor.indexing import Index, flat_index, source_index
from lazytensor.ops import ELEMENTWISE, MOVEMENT, Op

from lazytensor.codegen.kernel import BufferSlot, Loop, LoopKernel, LoopNest, Store


Request = tuple[Node, Index, "Node | None"]   # (node, index, gate) whose scalar value is wanted


def scalar(op: Op, dtype: DType, srcs: tuple[Node, ...], arg: object = None) -> Node:
    return Node.make(op, dtype, srcs, arg, ())


def zero(dtype: DType) -> Node:
    return scalar(Op.CONST, dtype, (), dtypes.cast_scalar(0, dtype))


class Lowerer:
    """Lowers one kernel AST. Values are memoized per (node, index, gate): shared subexpressions
    lower once, and the renderer emits them once."""

    def __init__(self, slots: dict[int, Node]) -> None:
        self.slots = slots
        self.memo: dict[tuple, Node] = {}
        self.n_reduce_vars = 0
        self.checks_errors = False

    def new_var(self, prefix: str, size: int) -> Node:
        name = f"{prefix}{self.n_reduce_vars}"
        self.n_reduce_vars += 1
        return sym.loop_var(name, size)

    def value(self, node: Node, idx: Index, gate: Node | None) -> Node:
        """The scalar value of `node` at multi-index `idx` (loads guarded by `gate`).

        Deep graphs (a cat of 1000 parts is a 1000-deep chain) must not hit Python's recursion
        limit, so this drives the _lower generators with an explicit stack: each one yields the
        (node, idx, gate) values it needs and receives them back, and returns its own value.
        """
        root = (node, idx, gate)
        found = self.memo.get(root)
        if found is not None:
            return found
        stack: list[tuple[tuple, Generator[Request, Node, Node]]] = [(root, self._lower(node, idx, gate))]
        reply: Node | None = None
        while stack:
            key, gen = stack[-1]
            try:
                request = gen.send(reply)   # type: ignore[arg-type]  # None primes a new generator
            except StopIteration as done:
                stack.pop()
                self.memo[key] = done.value
                reply = done.value
                continue
            reply = self.memo.get(request)
            if reply is None:
                stack.append((request, self._lower(*request)))
        assert reply is not None
        return reply

    def _lower(self, node: Node, idx: Index, gate: Node | None) -> Generator[Request, Node, Node]:
        """Lower one node: yields (node, idx, gate) requests for the values it needs (see value)."""
        op = node.op
        if op is Op.DEFINE_BUF:
            offset = flat_index(idx, node.shape)
            srcs = (offset,) if gate is None else (offset, gate)
            return scalar(Op.LOAD, node.dtype, srcs, node.arg)
        if op is Op.CONST:
            return scalar(Op.CONST, node.dtype, (), node.arg)
        if op is Op.IOTA:
            return cast(idx[0], node.dtype)
        if op in ELEMENTWISE:
            srcs = []
            for s in node.srcs:
                srcs.append((yield (s, idx, gate)))
            srcs = tuple(srcs)
            if op in (Op.IDIV, Op.MOD) and node.dtype.is_int:
                self.checks_errors = True
                if gate is not None and srcs[1].op is not Op.CONST:
                    # a lane masked off by PAD reads 0 for the divisor: that is not a user's division
                    # by zero, so divide by 1 there (the result is discarded)
                    one = scalar(Op.CONST, node.dtype, (), dtypes.cast_scalar(1, node.dtype))
                    srcs = (srcs[0], scalar(Op.WHERE, node.dtype, (gate, srcs[1], one)))
            return scalar(op, node.dtype, srcs, node.arg)
        if op in MOVEMENT:
            src_idx, valid = source_index(node, idx)
            if sym.is_false(valid):
                return zero(node.dtype)
            inner = yield (node.srcs[0], src_idx, sym.logical_and(gate, valid))
            if valid is None:
                return inner
            return scalar(Op.WHERE, node.dtype, (valid, inner, zero(node.dtype)))
        if op is Op.REDUCE:
            reduce_op, axes = node.arg
            src = node.srcs[0]
            ranges = tuple(self.new_var("r", src.shape[a]) for a in axes)
            src_idx = list(idx)
            for a, r in zip(axes, ranges):
                src_idx[a] = r
            body = yield (src, tuple(src_idx), gate)
            return scalar(Op.REDUCE_LOOP, node.dtype, (body,), (reduce_op, ranges))
        if op is Op.INDEX:
            src = node.srcs[0]
            gathered = []
            for i, size in zip(node.srcs[1:], src.shape):
                gathered.append(self.checked_index((yield (i, idx, gate)), size, gate))
            return (yield (src, tuple(gathered), gate))
        raise ValueError(f"cannot lower {op} inside a kernel")

    def checked_index(self, value: Node, size: int, gate: Node | None = None) -> Node:
        """An index read from data, checked against [0, size) before it is used. Lanes masked off
        by `gate` (PAD) use index 0 instead: their value is discarded and must not raise."""
        value = cast(value, sym.INDEX)
        lo, hi = sym.bounds(value)
        if 0 <= lo and hi < size:
            return value
        if gate is not None:
            value = scalar(Op.WHERE, sym.INDEX, (gate, value, sym.const(0)))
        self.checks_errors = True
        return scalar(Op.CHECK_INDEX, sym.INDEX, (value,), (size, "index"))


def cast(x: Node, dtype: DType) -> Node:
    if x.dtype == dtype:
        return x
    if x.op is Op.CONST:
        return scalar(Op.CONST, dtype, (), dtypes.cast_scalar(x.arg, dtype))
    return scalar(Op.CAST, dtype, (x,))


def global_loops(shape: tuple[int, ...], prefix: str) -> tuple[Index, tuple[Loop, ...]]:
    """Loop variables over shape (size-1 dims become the constant 0: no loop)."""
    idx = []
    loops = []
    for i, s in enumerate(shape):
        if s == 1:
            idx.append(sym.const(0))
        else:
            var = sym.loop_var(f"{prefix}{i}", s)
            idx.append(var)
            loops.append(Loop(var))
    return tuple(idx), tuple(loops)


class UnprovenIndex(AssertionError):
    """A kernel index the bounds analysis cannot prove in range: a simplifier gap or a lowering bug."""


def validate_indices(kernel: LoopKernel) -> None:
    """Prove, from index bounds, that every ungated load and every store stays inside its buffer."""
    from lazytensor.graph import toposort
    for nest in kernel.nests:
        for st in nest.stores:
            _check_in_range(st.index, kernel.buffers[st.slot].size, f"store to slot {st.slot}", kernel)
            for n in toposort([st.value, st.index]):
                if n.op is Op.LOAD and len(n.srcs) == 1:
                    _check_in_range(n.srcs[0], kernel.buffers[n.arg].size, f"load from slot {n.arg}", kernel)
        for bs in nest.body_stores:
            what = f"store to slot {bs.slot} in a reduce"
            _check_in_range(bs.index, kernel.buffers[bs.slot].size, what, kernel)


def _check_in_range(index: Node, size: int, what: str, kernel: LoopKernel) -> None:
    lo, hi = sym.bounds(index)
    if lo < 0 or hi >= max(size, 1):
        raise UnprovenIndex(f"kernel {kernel.name}: {what} has index bounds [{lo}, {hi}] but the buffer has "
                            f"{size} elements")


def kernel_name(ast: Node, has_reduce: bool) -> str:
    kind = "S" if ast.op is Op.SCATTER else "r" if has_reduce else "E"
    dims = "_".join(str(s) for s in ast.shape) or "0d"
    return f"{kind}_{dims}"


def lower_kernel(ast: Node) -> LoopKernel:
    """Kernel AST → LoopKernel with one nest (two for a scatter: copy the base, then scatter)."""
    slots: dict[int, Node] = {}
    for n in _define_bufs(ast):
        slots[n.arg] = n
    lowerer = Lowerer(slots)
    if ast.op is Op.OUTPUTS:
        return _lower_outputs(ast, slots, lowerer)
    buffers = [BufferSlot(ast.dtype, math.prod(ast.shape), True)]
    for i in range(1, len(slots) + 1):
        buffers.append(BufferSlot(slots[i].dtype, math.prod(slots[i].shape)))
    nests: list[LoopNest] = []
    if ast.op is Op.SCATTER:
        base, src = ast.srcs[0], ast.srcs[1]
        out_idx, loops = global_loops(ast.shape, "g")
        nests.append(LoopNest(loops, (Store(0, flat_index(out_idx, ast.shape),
                                            lowerer.value(base, out_idx, None)),)))
        if math.prod(src.shape) > 0:   # an empty source scatters nothing: the copy of base is all
            nests.append(_scatter_nest(lowerer, ast))
    else:
        # A reshape at the root keeps the row-major order, so the loops run over its source's shape
        # (a packed matmul's (m, n/16, 16) tile axes stay separate instead of merging into divmods).
        root = ast
        while root.op is Op.RESHAPE:
            root = root.srcs[0]
        loop_shape = epilogue_loop_shape(root)
        if loop_shape != root.shape:
            # run the loops over the reduce's shape and read the epilogue through a reshape to it
            root = Node.make(Op.RESHAPE, root.dtype, (root,), loop_shape, loop_shape)
        out_idx, loops = global_loops(root.shape, "g")
        nests.append(LoopNest(loops, (Store(0, flat_index(out_idx, root.shape),
                                            lowerer.value(root, out_idx, None)),)))
    has_reduce = any(n.op is Op.REDUCE for n in _all_nodes(ast))
    return LoopKernel(kernel_name(ast, has_reduce), tuple(buffers), tuple(nests),
                      lowerer.checks_errors)


def _lower_outputs(ast: Node, slots: dict[int, Node], lowerer: Lowerer) -> LoopKernel:
    """A kernel with several elementwise outputs (lazytensor/sibling_fusion.py): one nest over the
    common shape storing each value to its slot; values the outputs share are the same nodes, so the
    renderer computes them once per element."""
    numel = math.prod(ast.shape)
    output_slots = dict(zip(ast.arg, ast.srcs))
    buffers = []
    for i in range(len(slots) + len(output_slots)):
        if i in output_slots:
            buffers.append(BufferSlot(output_slots[i].dtype, numel, True))
        else:
            buffers.append(BufferSlot(slots[i].dtype, math.prod(slots[i].shape)))
    out_idx, loops = global_loops(ast.shape, "g")
    index = flat_index(out_idx, ast.shape)
    stores = tuple(Store(slot, index, lowerer.value(value, out_idx, None)) for slot, value in output_slots.items())
    return LoopKernel(kernel_name(ast, False), tuple(buffers), (LoopNest(loops, stores),), lowerer.checks_errors)


def epilogue_loop_shape(root: Node) -> tuple[int, ...]:
    """The shape a kernel's loops should run over: root's own, unless root is an elementwise epilogue
    (bias add, activation) of a reduce that it reads through reshapes only. Then the reduce's finer
    shape, which has the same row-major order: a packed matmul's (m, n/16, 16) tile axes stay
    separate loops for the upcast pass instead of one n loop read through divmods."""
    reduce = _epilogue_reduce(root)
    if reduce is not None and len(reduce.shape) > len(root.shape):
        return reduce.shape
    return root.shape


def _epilogue_reduce(root: Node) -> Node | None:
    """root itself if it is a reduce, else a reduce of root's size that root reads through elementwise
    ops and reshapes only (its epilogue), or None."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.op is Op.REDUCE:
            return node
        if node.op in ELEMENTWISE or node.op is Op.RESHAPE:
            stack += [s for s in node.srcs if s.numel == root.numel]
    return None


def _scatter_nest(lowerer: Lowerer, ast: Node) -> LoopNest:
    """The serial loop over a scatter's source that adds (or writes) each element at its target."""
    src, idxs = ast.srcs[1], ast.srcs[2:]
    src_idx, src_loops = global_loops(src.shape, "s")
    targets = tuple(lowerer.checked_index(lowerer.value(i, src_idx, None), size)
                    for i, size in zip(idxs, ast.shape))
    store = Store(0, flat_index(targets, ast.shape), lowerer.value(src, src_idx, None),
                  reduce_op=ast.arg, replace_op=ast.arg is None)
    nest = LoopNest(src_loops, (store,), serial_reason="scatter targets may collide")
    return _disjoint_chunks_outermost(nest, targets)


SCATTER_CHUNK = 16
"""Elements of a scatter's non-indexed axis one thread handles per source element (a cache line)."""


def _disjoint_chunks_outermost(nest: LoopNest, targets: tuple[Node, ...]) -> LoopNest:
    """A scatter's source loop whose variable is itself one of the target coordinates (the feature axis
    of index_add(0, idx, src)) never sends two of its iterations to the same element. Split it into
    chunks of SCATTER_CHUNK and put the chunk loop outermost, marked disjoint: threads may then share
    the scatter, each owning whole chunks, while the source is still read in memory order within one."""
    for pos, loop in enumerate(nest.loops):
        if not any(t is loop.var for t in targets):
            continue
        name, size = loop.var.arg
        chunk = next((c for c in (SCATTER_CHUNK, 8, 4, 2) if size % c == 0 and size // c >= 2), 0)
        if not chunk:
            continue
        outer = sym.loop_var(name + "o", size // chunk)
        inner = sym.loop_var(name + "i", chunk)
        value = sym.add(sym.mul(outer, sym.const(chunk)), inner)
        (st,) = nest.stores
        index, stored = sym.substitute([st.index, st.value], {loop.var: value})
        loops = (Loop(outer),) + nest.loops[:pos] + nest.loops[pos + 1:] + (Loop(inner),)
        return LoopNest(loops, (Store(st.slot, index, stored, st.reduce_op, st.replace_op),),
                        nest.serial_reason, disjoint_outer=True)
    return nest


def _all_nodes(ast: Node) -> list[Node]:
    from lazytensor.graph import toposort
    return toposort([ast])


def _define_bufs(ast: Node) -> list[Node]:
    return [n for n in _all_nodes(ast) if n.op is Op.DEFINE_BUF]

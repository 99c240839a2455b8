"""Graph → ordered kernels.

The fusion policy lives here and only here:
- elementwise ops and views fuse with each other, into the sources of a reduce and after it;
- a node becomes a kernel output ("is materialized") only for a reason, recorded in words:
  it was asked for (realize/contiguous), it is a reduce whose result is broadcast back
  against a larger shape or feeds another reduce (it needs its own pass), it is a reduce used
  by several consumers, a scatter (a push-style kernel), or a device copy;
- on the CPU a reduce broadcast only along a kernel's inner loops (softmax's max and sum over the
  last axis, layernorm's mean and var) stays inline and is computed once per row (row_fusion.py);
- elementwise kernels over one shape that read the same data (an optimizer's updates of
  one parameter) become one kernel with several outputs (sibling_fusion.py).

`create_schedule` is the stage entry point; each helper can be called on its own in tests.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lazytensor import graph as g
from lazytensor.graph import Node
from lazytensor.ops import ELEMENTWISE, MOVEMENT, Op
from lazytensor.rewrite import ALGEBRA_RULES, rewrite
from lazytensor.sibling_fusion import fuse_siblings
from lazytensor.row_fusion import (NO_DEPS, Deps, RegionScan, classify_reduce, output_deps, pad_gate_deps,
                                   source_deps)



class RealizedBuffers:
    """Buffers of nodes that were realized: a later graph that still contains such a node reads the
    buffer instead of recomputing it. A mapping node -> buffer that lives as long as the node, like a
    WeakKeyDictionary, but kept in the node's `realized` slot: every realize writes it and every
    structure key reads it, and a weak reference per access costs more than a small kernel runs."""

    def get(self, node: Node, default: Any = None) -> Any:
        buf = node.realized
        return default if buf is None else buf

    def __contains__(self, node: Node) -> bool:
        return node.realized is not None

    def __getitem__(self, node: Node) -> Any:
        buf = node.realized
        if buf is None:
            raise KeyError(node)
        return buf

    def __setitem__(self, node: Node, buf: Any) -> None:
        assert buf is not None
        node.realized = buf


REALIZED = RealizedBuffers()

REASON_OUTPUT = "output of realize()"
REASON_CONTIGUOUS = "user asked for contiguous()"
REASON_BROADCAST = "reduce result is broadcast against a larger shape (needs its own pass)"
REASON_NESTED = "reduce result feeds another reduce (needs its own pass)"
REASON_GATHER = "reduce result is read at data-dependent positions by a gather"
REASON_SHARED = "reduce result has several consumers (computed once, stored)"
REASON_SCATTER = "scatter writes by index (push-style kernel)"
REASON_SCATTER_INPUT = "reduce result feeds a scatter"
REASON_COPY = "copy to another device"
REASON_EXPENSIVE = "costly input is broadcast inside a reduce (computed once, stored)"
REASON_EPILOGUE = ("reduce with an elementwise epilogue is read repeatedly inside another reduce (the "
                   "epilogue is computed once, in the first reduce's kernel)")
REASON_ROW_IN_REDUCE = ("reduce result is broadcast inside a per-element reduce (stored, so that reduce "
                        "keeps its loop optimizations)")

ROW_FUSION_DEVICES = ("CPU",)
SIBLING_FUSION_DEVICES = ("CPU", "CL", "CUDA")
"""Devices whose renderers write kernels with several outputs (sibling_fusion.py): every device."""
"""Devices whose renderer hoists a row reduce above the inner loops of its kernel. The GPU
renderers map every output element to its own work-item, where a row reduce would be
recomputed per element, so there such a reduce keeps its own kernel."""

RECOMPUTE_LIMIT = 6
"""An elementwise subgraph with more ops than this is stored rather than recomputed for every
element of a reduce that broadcasts it (a matmul over a random or transformed operand)."""
RECOMPUTE_REPEATS = 64
SMALL_RECOMPUTE_LIMIT = 2
"""A smaller subgraph (more than SMALL_RECOMPUTE_LIMIT ops) is stored too when the broadcast reads each
of its values at least RECOMPUTE_REPEATS times: a layer norm or a relu gradient feeding a matmul
would be recomputed once per column tile of the matmul."""


def _costly_to_repeat(expand: Node, src: Node) -> bool:
    """Whether src, read repeatedly through `expand` inside a reduce, should be stored first."""
    repeats = expand.numel // max(expand.srcs[0].numel, 1)
    limit = SMALL_RECOMPUTE_LIMIT if repeats >= RECOMPUTE_REPEATS else RECOMPUTE_LIMIT
    return _op_count(src, limit + 1) > limit


@dataclass
class ScheduleItem:
    """One kernel (or device copy) to run: its AST, where its inputs come from, and why it exists.

    `ast` is the kernel's computation with every input replaced by a DEFINE_BUF placeholder
    (arg = slot number, slot 0 is the output), so equal computations on new data give the
    same AST object and hit the compiled-program cache.
    """
    kind: str                      # "kernel", "copy", or "alloc" (a buffer the next kernel writes too)
    ast: Node
    output: Node                   # the graph node this item materializes
    inputs: list[Node]             # graph nodes (BUFFER or earlier outputs), by slot 1..n
    reason: str
    device: str
    fused_ops: list[str] = field(default_factory=list)

    @property
    def extra_outputs(self) -> list[Node]:
        """The outputs a kernel with several (sibling_fusion.py) writes besides `output`: its last
        inputs, each an "alloc" item's node."""
        if self.kind != "kernel" or self.ast.op is not Op.OUTPUTS:
            return []
        return self.inputs[len(self.inputs) - (len(self.ast.srcs) - 1):]

    @property
    def read_inputs(self) -> list[Node]:
        """The inputs the item reads (all of them but the extra outputs)."""
        return self.inputs[:len(self.inputs) - len(self.extra_outputs)]

    def __repr__(self) -> str:
        return (f"<{self.kind} {list(self.output.shape)} {self.output.dtype.name} "
                f"ops={'+'.join(self.fused_ops) or '-'} inputs={len(self.inputs)} ({self.reason})>")


def substitute_realized(roots: list[Node]) -> dict[Node, Node]:
    """Replace nodes realized earlier by BUFFER leaves holding their data."""
    mapping: dict[Node, Node] = {}
    for node in g.toposort(roots):
        buf = REALIZED.get(node)
        if buf is not None and node.op is not Op.BUFFER:
            mapping[node] = g.buffer(buf, node.dtype, node.shape)
        else:
            mapping[node] = g.rebuild(node, tuple(mapping[s] for s in node.srcs))
    return mapping


def share_copied_values(roots: list[Node]) -> dict[Node, Node]:
    """Where a computed value is copied by contiguous() and also used elsewhere, the other users read
    the copy: the value is computed once, in the copy's kernel. (Without this, the copy's kernel and
    each other user computed it inline: the weight gradient's row-major copy of g in nn.linear made
    the hidden layer's masked gradient a kernel of its own and recomputed it for the bias gradient.)
    Copies of stored data (views of a BUFFER) are left alone: other users read the data where it is."""
    order = g.toposort(roots)
    copied = {n.srcs[0] for n in order if n.op is Op.CONTIGUOUS and not is_pure_view(n.srcs[0])}
    if not copied:   # the usual case: nothing to rebuild
        return {n: n for n in order}
    mapping: dict[Node, Node] = {}
    copy_of: dict[Node, Node] = {}   # the copied value's original node -> its (rebuilt) copy
    for node in order:
        if node.op is Op.CONTIGUOUS and node.srcs[0] in copied:
            mapping[node] = copy_of[node.srcs[0]]
            continue
        srcs = tuple(copy_of.get(s, mapping[s]) for s in node.srcs)
        mapping[node] = g.rebuild(node, srcs)
        if node in copied:
            copy_of[node] = Node.make(Op.CONTIGUOUS, node.dtype, (mapping[node],), None, node.shape)
    return mapping


def count_consumers(roots: list[Node]) -> Counter:
    """How many distinct nodes use each node as a source."""
    users: Counter = Counter()
    for node in g.toposort(roots):
        for s in set(node.srcs):
            users[s] += 1
    return users


def count_fused_outputs(roots: list[Node]) -> dict[Node, int]:
    """For each node, how many different consumers outside its own elementwise/movement region
    (requested outputs, reduces, gathers, ...) its value reaches inline, capped at 2. A reduce
    reaching two (an optimizer using one gradient in two state updates) would otherwise be
    computed twice; a reduce used twice within one expression (relu's x > 0 ? x : 0) is not."""
    order = g.toposort(roots)
    reach: dict[Node, frozenset[int]] = {n: frozenset() for n in order}
    for r in roots:
        reach[r] = frozenset((id(r),))
    for node in reversed(order):
        inline = node.op in ELEMENTWISE or node.op in MOVEMENT
        mine = reach[node] if inline else frozenset((id(node),))
        for s in set(node.srcs):
            if len(reach[s]) < 2:
                reach[s] = frozenset(list(reach[s] | mine)[:2])
    return {n: len(targets) for n, targets in reach.items()}


def find_materialized(roots: list[Node], fuse_rows: bool = False) -> dict[Node, str]:
    """Every node that must be a kernel output, with the reason (the fusion policy).

    fuse_rows: keep a reduce that is only broadcast along a kernel's inner loops (softmax's
    max and sum, layernorm's mean and var) inside that kernel (see row_fusion.py); the
    renderer must then hoist it above those loops (the C renderer does)."""
    out: dict[Node, str] = {}
    for r in roots:
        if r.op is not Op.BUFFER:
            out.setdefault(r, REASON_OUTPUT)
    users = count_consumers(roots)
    fused_outputs = count_fused_outputs(roots)
    for node in g.toposort(roots):
        if node.op is Op.CONTIGUOUS:
            out.setdefault(node, REASON_CONTIGUOUS)
        elif node.op is Op.SCATTER:
            out.setdefault(node, REASON_SCATTER)
        elif node.op is Op.COPY:
            out.setdefault(node, REASON_COPY)
        elif node.op is Op.REDUCE and (users[node] > 1 or (fused_outputs[node] > 1 and not fuse_rows)):
            # (with fuse_rows, a reduce reaching several kernels is found by _cut_to_fixed_point)
            out.setdefault(node, REASON_SHARED)
    if fuse_rows:
        return _cut_to_fixed_point(out)
    # Walk each kernel's region from its output down; a reduce reached in a context where it
    # cannot be computed inline (under a broadcast, inside another reduce, ...) is cut out.
    worklist = list(out)
    while worklist:
        kernel_root = worklist.pop()
        for node, reason in _reduces_to_cut(kernel_root, out):
            if node not in out:
                out[node] = reason
                worklist.append(node)
    return out


def _reduces_to_cut(kernel_root: Node, materialized: dict[Node, str]) -> list[tuple[Node, str]]:
    """Reduces inside kernel_root's region that must become their own kernels, with the reason."""
    cut: list[tuple[Node, str]] = []
    # context: None (plain), or the reason a reduce found here must be cut
    start = kernel_root.srcs[0] if kernel_root.op is Op.CONTIGUOUS else kernel_root
    stack: list[tuple[Node, str | None]] = []
    if start.op is Op.SCATTER:
        stack += [(s, REASON_SCATTER_INPUT) for s in start.srcs]
    elif start.op is Op.REDUCE:
        stack.append((start.srcs[0], REASON_NESTED))
    elif start.op is Op.COPY:
        return []
    else:
        stack.append((start, None))
    seen: set[tuple[int, str | None]] = set()
    while stack:
        node, context = stack.pop()
        if (id(node), context) in seen:
            continue
        seen.add((id(node), context))
        if node is not start and node in materialized:
            continue
        if node.op is Op.REDUCE:
            if context is not None:
                cut.append((node, context))
                continue
            stack.append((node.srcs[0], REASON_NESTED))
        elif node.op in (Op.EXPAND, Op.WINDOW) and node.numel > node.srcs[0].numel:   # reads repeat
            src = _through_views(node.srcs[0])
            if context == REASON_NESTED and src not in materialized and _costly_to_repeat(node, src):
                cut.append((src, REASON_EXPENSIVE))
                continue
            epilogue = context == REASON_NESTED and src not in materialized
            if epilogue and _is_reduce_epilogue(src, materialized):
                cut.append((src, REASON_EPILOGUE))
                continue
            stack.append((node.srcs[0], context or REASON_BROADCAST))
        elif node.op is Op.INDEX:
            stack.append((node.srcs[0], context or REASON_GATHER))
            stack += [(s, context) for s in node.srcs[1:]]
        elif node.op in (Op.SCATTER, Op.CONTIGUOUS, Op.COPY):
            continue  # always materialized
        else:
            stack += [(s, context) for s in node.srcs]
    return cut


def _cut_to_fixed_point(out: dict[Node, str]) -> dict[Node, str]:
    """The fuse_rows policy: walk every kernel's region (_reduces_to_cut_rows), cut what must be
    cut, and cut a reduce computed inline in two kernels (or at two different indices in one);
    repeat until nothing changes (every round adds a kernel, so this ends).

    When a round would store an elementwise operand (REASON_EXPENSIVE, REASON_EPILOGUE) that contains
    another one it would store, it stores only the outer one and scans again: inside a stored value,
    the inner cut may not be needed any more. (BERT: a layer norm's output is stored for the next
    matmul; the next layer norm, reading it as its residual, had also cut the first one's rsqrt and
    mean out into kernels of their own: 2 extra kernels per norm.)"""
    while True:
        added = False
        placements: dict[Node, set] = {}
        cuts: list[tuple[Node, str]] = []
        for kernel_root in list(out):
            scan = _reduces_to_cut_rows(kernel_root, out)
            cuts += [(node, reason) for node, reason in scan.cut if node not in out]
            for node, deps_seen in scan.inline_reduces.items():
                placements.setdefault(node, set()).update((id(kernel_root), d) for d in deps_seen)
        nested = _operands_inside_other_operands(cuts, out)
        if nested:
            for node, reason in cuts:
                if node not in nested:
                    out.setdefault(node, reason)
            continue
        for node, reason in cuts:
            if node not in out:
                out[node] = reason
                added = True
        for node, where in placements.items():
            if len(where) > 1 and node not in out:
                out[node] = REASON_SHARED
                added = True
        if not added:
            return out


def _operands_inside_other_operands(cuts: list[tuple[Node, str]], materialized: dict[Node, str]) -> set[Node]:
    """The cut nodes found, through elementwise and movement ops, inside an elementwise operand that
    the same round stores (REASON_EXPENSIVE or REASON_EPILOGUE)."""
    operands = [node for node, reason in cuts if reason in (REASON_EXPENSIVE, REASON_EPILOGUE)]
    if len(cuts) < 2 or not operands:
        return set()
    candidates = {node for node, _ in cuts}
    inside: set[Node] = set()
    for operand in operands:
        stack, seen = list(operand.srcs), set()
        while stack:
            n = stack.pop()
            if id(n) in seen or n in materialized:
                continue
            seen.add(id(n))
            if n in candidates and n is not operand:
                inside.add(n)
            if n.op in ELEMENTWISE or n.op in MOVEMENT:
                stack += n.srcs
    return inside


def _reduces_to_cut_rows(kernel_root: Node, materialized: dict[Node, str]) -> RegionScan:
    """Like _reduces_to_cut, but a reduce broadcast only along the kernel's inner loops stays
    inline (row_fusion.classify_reduce decides); also reports the reduces it keeps inline."""
    scan = RegionScan()
    start = kernel_root.srcs[0] if kernel_root.op is Op.CONTIGUOUS else kernel_root
    if start.op is Op.COPY:
        return scan
    out_axes = [a for a, s in enumerate(start.shape) if s > 1]
    root_deps = output_deps(start.shape)
    # entries: (node, hard context or None, deps per axis, deps of the PAD guards above it (the
    # lowering gates every load below a PAD by them), kind of the innermost enclosing reduce or None)
    stack: list[tuple[Node, str | None, Deps, frozenset, str | None]] = []
    if start.op is Op.SCATTER:
        stack += [(s, REASON_SCATTER_INPUT, output_deps(s.shape), NO_DEPS, None) for s in start.srcs]
    elif start.op is Op.REDUCE:
        stack.append((start.srcs[0], None, _reduce_source_deps(start, root_deps), NO_DEPS, "inline"))
    else:
        stack.append((start, None, root_deps, NO_DEPS, None))
    seen: set[tuple] = set()
    while stack:
        node, context, deps, gate, enclosing = stack.pop()
        in_reduce = enclosing is not None
        key = (id(node), context, deps, gate, enclosing)
        if key in seen:
            continue
        seen.add(key)
        if node is not start and node in materialized:
            continue
        if node.op is Op.REDUCE:
            kind = classify_reduce(gate.union(*deps), out_axes)
            if context is not None:
                scan.cut.append((node, context))
            elif kind == "nested":
                scan.cut.append((node, REASON_NESTED))
            elif kind == "broadcast":
                scan.cut.append((node, REASON_BROADCAST))
            elif kind == "row" and enclosing == "inline":
                scan.cut.append((node, REASON_ROW_IN_REDUCE))   # e.g. a row mean inside a matmul
            else:
                scan.inline_reduces.setdefault(node, set()).add((deps, gate))
                stack.append((node.srcs[0], None, _reduce_source_deps(node, deps), gate, kind))
        elif node.op in (Op.EXPAND, Op.WINDOW) and node.numel > node.srcs[0].numel:   # reads repeat
            src = _through_views(node.srcs[0])
            if in_reduce and src not in materialized and _costly_to_repeat(node, src):
                scan.cut.append((src, REASON_EXPENSIVE))
                continue
            if in_reduce and src not in materialized and _is_reduce_epilogue(src, materialized):
                scan.cut.append((src, REASON_EPILOGUE))
                continue
            stack += [(s, context, d, gate, enclosing) for s, d in zip(node.srcs, source_deps(node, deps))]
        elif node.op is Op.INDEX:
            src = node.srcs[0]
            stack.append((src, context or REASON_GATHER, output_deps(src.shape), gate, enclosing))
            stack += [(s, context, deps, gate, enclosing) for s in node.srcs[1:]]
        elif node.op in (Op.SCATTER, Op.CONTIGUOUS, Op.COPY):
            continue  # always materialized
        elif node.op in ELEMENTWISE or node.op in MOVEMENT:
            inner_gate = gate | pad_gate_deps(node, deps) if node.op is Op.PAD else gate
            stack += [(s, context, d, inner_gate, enclosing) for s, d in zip(node.srcs, source_deps(node, deps))]
    return scan


def _reduce_source_deps(node: Node, deps: Deps) -> Deps:
    """A reduce's source axes: kept axes depend on what the reduce's output axis does, reduced
    axes on the reduce's own loop (a tag naming this reduce and axis)."""
    axes = node.arg[1]
    return tuple(frozenset((("reduce", id(node), a),)) if a in axes else deps[a]
                 for a in range(len(node.srcs[0].shape)))


def _is_reduce_epilogue(node: Node, materialized: dict[Node, str]) -> bool:
    """node is an elementwise function of a reduce of its own size, still to be computed (a matmul's
    bias add, q in attention): stored with its reduce, the epilogue is computed once per element,
    inside the reduce's register tile, instead of once per read by the consuming reduce."""
    if node.op not in ELEMENTWISE:
        return False
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if id(n) in seen or n in materialized:
            continue
        seen.add(id(n))
        if n.op is Op.REDUCE:
            return _is_contraction(n)
        if n is node or n.op in ELEMENTWISE or n.op is Op.RESHAPE:
            stack += [s for s in n.srcs if s.numel == node.numel]
    return False


def _is_contraction(reduce: Node) -> bool:
    """reduce sums a product of two broadcast operands (a matmul, a conv), not a row of one tensor
    (a mean or a variance, which row fusion keeps inline)."""
    src = reduce.srcs[0]
    while src.op is Op.CAST:
        src = src.srcs[0]
    return reduce.arg[0] is Op.ADD and src.op is Op.MUL and all(_is_broadcast(s) for s in src.srcs)


def _is_broadcast(node: Node) -> bool:
    while node.op in MOVEMENT:
        if node.op is Op.EXPAND:
            return True
        node = node.srcs[0]
    return False


def _through_views(node: Node) -> Node:
    while node.op in MOVEMENT:
        node = node.srcs[0]
    return node


def _op_count(node: Node, limit: int = RECOMPUTE_LIMIT + 1) -> int:
    """Elementwise ops under node (stopping at buffers and reduces), counted up to limit."""
    count = 0
    stack, seen = [node], set()
    while stack and count < limit:
        n = stack.pop()
        if id(n) in seen or n.op in (Op.BUFFER, Op.REDUCE, Op.CONTIGUOUS, Op.SCATTER, Op.COPY):
            continue
        seen.add(id(n))
        if n.op in ELEMENTWISE or n.op is Op.INDEX:
            count += 1
        stack += n.srcs
    return count


def build_kernel_ast(root: Node, materialized: dict[Node, str]) -> tuple[Node, list[Node], list[str]]:
    """The kernel computing `root`, inputs replaced by DEFINE_BUF slots 1..n (slot 0: output).

    Returns (ast, input nodes by slot, names of the fused ops for display)."""
    inputs: list[Node] = []
    slot_of: dict[Node, Node] = {}
    fused: list[str] = []
    mapping: dict[Node, Node] = {}
    body = root.srcs[0] if root.op is Op.CONTIGUOUS else root

    def is_input(node: Node) -> bool:
        return node.op is Op.BUFFER or (node is not body and node in materialized)

    for node in g.toposort([body], stop=is_input):
        if is_input(node):
            if node not in slot_of:
                inputs.append(node)
                slot_of[node] = Node.make(Op.DEFINE_BUF, node.dtype, (), len(inputs), node.shape)
            mapping[node] = slot_of[node]
            continue
        if node.op in ELEMENTWISE or node.op in (Op.REDUCE, Op.INDEX, Op.SCATTER):
            name = node.op.name.lower() if node.op is not Op.REDUCE else f"reduce_{node.arg[0].name.lower()}"
            fused.append(name)
        mapping[node] = g.rebuild(node, tuple(mapping[s] for s in node.srcs))
    return mapping[body], inputs, fused


def create_schedule(roots: list[Node], device: str) -> tuple[list[ScheduleItem], dict[Node, Node]]:
    """Graph → ordered kernels. Returns the items and, for each requested root, the node that
    holds its value after the schedule runs (a BUFFER root needs no kernel)."""
    mapping = substitute_realized(roots)
    pre = [mapping[r] for r in roots]
    simplified = rewrite(pre, ALGEBRA_RULES)
    shared = share_copied_values([simplified[r] for r in pre])
    new_roots = [shared[simplified[r]] for r in pre]
    materialized = find_materialized(new_roots, fuse_rows=device in ROW_FUSION_DEVICES)
    items: list[ScheduleItem] = []
    for node in g.toposort(new_roots):
        if node not in materialized:
            continue
        reason = materialized[node]
        if node.op is Op.COPY:
            src = node.srcs[0]
            items.append(ScheduleItem("copy", node, node, [src], reason, node.arg))
            continue
        ast, inputs, fused = build_kernel_ast(node, materialized)
        items.append(ScheduleItem("kernel", ast, node, inputs, reason, device, fused))
    if device in SIBLING_FUSION_DEVICES:
        items = fuse_siblings(items)
    return items, {r: shared[simplified[mapping[r]]] for r in roots}


def is_pure_view(node: Node) -> bool:
    """True for a chain of movement ops over one buffer (no arithmetic)."""
    while node.op in MOVEMENT:
        node = node.srcs[0]
    return node.op is Op.BUFFER

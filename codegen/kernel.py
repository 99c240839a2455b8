"""The loop-level IR: what a kernel does, as loop nests of scalar stores.

A `LoopKernel` has buffer slots (slot 0 is the output) and one or more `LoopNest`s run in
order. A nest is a perfect nest of loops (outermost first) around a list of stores; the
stored values are scalar expression DAGs (graph.Node with shape ()) that may contain
REDUCE_LOOP nodes, which the renderer turns into inner accumulation loops.
Optimization passes (opt.py) rewrite nests and annotate loops; renderers only read.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from lazytensor.dtypes import DType
from lazytensor.graph import Node
from lazytensor.ops import Op


@dataclass(frozen=True)
class BufferSlot:
    """A kernel argument: element dtype and element count. Slot 0 is written, others read."""
    dtype: DType
    size: int
    is_output: bool = False


@dataclass(frozen=True)
class Store:
    """buffers[slot][index] = value, or (op)= value when `reduce_op` is set (scatter)."""
    slot: int
    index: Node
    value: Node
    reduce_op: Op | None = None
    replace_op: bool = False    # a scatter that overwrites (no reduction)


@dataclass(frozen=True)
class Loop:
    """One loop of a nest. `parallel`: split across threads (work-groups on GPUs)."""
    var: Node          # a RANGE node
    parallel: bool = False

    @property
    def size(self) -> int:
        return self.var.arg[1]


@dataclass(frozen=True)
class BodyStore:
    """Inside the loop of `reduce` (a REDUCE_LOOP of the nest), also write `value` (a part of its
    body) to buffers[slot][index] (both over the reduce's ranges); the nest's stores may then LOAD
    it back instead of computing it again (softmax: exp(x - max) once, see codegen/hoist.py)."""
    reduce: Node
    slot: int
    index: Node
    value: Node


@dataclass(frozen=True)
class LoopNest:
    loops: tuple[Loop, ...]
    stores: tuple[Store, ...]
    serial_reason: str = ""    # why this nest must not run in parallel (e.g. racy scatter)
    disjoint_outer: bool = False   # despite serial_reason, the outermost loop's iterations write
                                   # disjoint targets (a scatter's non-indexed axis): it may be parallel
    body_stores: tuple[BodyStore, ...] = ()
    joins_previous: bool = False   # a piece of the same nest as the previous one (codegen/peel.py), with
                                   # the same outermost loop: it may run inside that loop, after the
                                   # previous piece (pieces write disjoint elements and read none of them)
    register_transpose: int = 0    # t > 0: the innermost two loops, t iterations each, are a t×t tile of a
                                   # transposing copy that the C renderer moves through vector registers
                                   # (codegen/transpose_tiles.py)

    def with_loops(self, loops: tuple[Loop, ...]) -> "LoopNest":
        return replace(self, loops=loops)


@dataclass(frozen=True)
class LoopKernel:
    name: str
    buffers: tuple[BufferSlot, ...]
    nests: tuple[LoopNest, ...]
    checks_errors: bool = False        # has index checks or integer division: needs the error slot
    notes: tuple[str, ...] = field(default=())   # what optimization passes did, for DEBUG/VIZ
    unrolled_ranges: frozenset[Node] = field(default=frozenset())   # reduce ranges to unroll whole
    partly_unrolled: tuple[tuple[Node, int], ...] = field(default=())   # (reduce range, unroll factor):
                                   # the compiler unrolls the loop by the factor (opt.unroll_tile_reduce_loops)
    lane_ranges: frozenset[Node] = field(default=frozenset())   # innermost reduce ranges whose iterations
                                   # are independent vector lanes: one accumulator per lane (see hoist.py)

    @property
    def output(self) -> BufferSlot:
        return self.buffers[0]


def outer_loop_groups(nests: tuple[LoopNest, ...]) -> list[list[LoopNest]]:
    """The nests in order, grouped where a nest joins the previous one's outermost loop (same loop
    variable and parallel mark): each group renders as one outer loop around its members' inner loops,
    so a padded copy's border pieces share the interior's parallel loop instead of each sweeping the
    whole output on one thread."""
    groups: list[list[LoopNest]] = []
    for nest in nests:
        previous = groups[-1][-1] if groups else None
        if nest.joins_previous and previous is not None and previous.loops and nest.loops \
                and previous.loops[0] == nest.loops[0]:
            groups[-1].append(nest)
        else:
            groups.append([nest])
    return groups


def shared_loop_depth(group: list[LoopNest]) -> int:
    """How many outer loops every nest of a group has in common (at least 1 for a real group)."""
    depth = min(len(nest.loops) for nest in group)
    for nest in group[1:]:
        k = 0
        while k < depth and nest.loops[k] == group[0].loops[k]:
            k += 1
        depth = k
    return depth


def reduce_loops(value: Node) -> list[Node]:
    """The REDUCE_LOOP nodes inside a value expression."""
    from lazytensor.graph import toposort
    return [n for n in toposort([value]) if n.op is Op.REDUCE_LOOP]


def resize_loop(nest: LoopNest, pos: int, var: Node, value: Node) -> LoopNest:
    """The nest with loop `pos` replaced by a loop over `var`, its old variable standing for `value`
    in every store (the index arithmetic re-simplified: symbolic.substitute)."""
    from lazytensor import symbolic as sym
    loop = nest.loops[pos]
    stores = tuple(Store(st.slot, *sym.substitute([st.index, st.value], {loop.var: value}),
                         st.reduce_op, st.replace_op) for st in nest.stores)
    loops = nest.loops[:pos] + (Loop(var, loop.parallel),) + nest.loops[pos + 1:]
    return replace(nest, loops=loops, stores=stores)

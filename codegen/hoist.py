"""Row kernels: nests with a reduce computed once per iteration of the outer loops.

The scheduler keeps a reduce that is only broadcast along a kernel's inner loops inside that
kernel (softmax over the last axis: out[i, j] = exp(x[i, j] - max[i]) / sum[i]); the renderer
hoists such a "row reduce" above the inner loops (codegen/render/cstyle.py). The CPU pass list
in opt.py assumes every reduce depends on every output loop: blocking the row loop around the
column loop would put the column loop outside the row's reduces and recompute them per column,
and its lane splitting does not rewrite a reduce nested in another's body. So a row kernel
gets its own, shorter pass list here (`optimize_row_kernel`); `optimize_cpu` picks the list:

1. store_row_reduce_bodies: a reduce body the inner loop would compute again (softmax's exp(x - max))
   is written to the output row inside the reduce's loop and read back there (exp once, not twice);
2. split_row_reduce_lanes: float add/max reduces along contiguous memory loop over vector lanes with
   one accumulator each (LoopKernel.lane_ranges), a loop GCC vectorizes whatever the body holds;
3. parallelize_outer_loop (opt.py): OpenMP over the rows.
"""
from __future__ import annotations

from dataclasses import replace

from lazytensor import config, dtypes
from lazytensor import symbolic as sym
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op

from lazytensor.codegen.kernel import BodyStore, LoopKernel, LoopNest, Store
from lazytensor.codegen.opt import _split_candidate, optimize, parallelize_outer_loop


def free_ranges(value: Node) -> dict[Node, frozenset[Node]]:
    """For every node of a scalar DAG: the RANGE nodes it depends on, less those its own (or an
    inner) REDUCE_LOOP iterates over."""
    deps: dict[Node, frozenset[Node]] = {}
    for n in toposort([value]):
        if n.op is Op.RANGE:
            deps[n] = frozenset((n,))
            continue
        d: frozenset[Node] = frozenset().union(*(deps[s] for s in n.srcs)) if n.srcs else frozenset()
        if n.op is Op.REDUCE_LOOP:
            d = d - frozenset(n.arg[1])
        deps[n] = d
    return deps


def row_reduces(nest: LoopNest) -> list[Node]:
    """The REDUCE_LOOPs of a nest whose value does not depend on the nest's innermost loop."""
    if not nest.loops:
        return []
    inner = nest.loops[-1].var
    found: list[Node] = []
    for st in nest.stores:
        deps = free_ranges(st.value)
        found += [n for n, d in deps.items() if n.op is Op.REDUCE_LOOP and inner not in d and n not in found]
    return found


def has_nested_reduces(nest: LoopNest) -> bool:
    """True when a REDUCE_LOOP sits inside another's body (softmax's max inside its sum)."""
    for st in nest.stores:
        for n in toposort([st.value]):
            if n.op is Op.REDUCE_LOOP and any(m.op is Op.REDUCE_LOOP for m in toposort([n.srcs[0]])):
                return True
    return False


def is_row_kernel(kernel: LoopKernel) -> bool:
    """True when some nest computes a reduce once per outer iteration, or nests one reduce in
    another's body (see the module docstring): opt.optimize's passes do not expect either."""
    return any(row_reduces(nest) or has_nested_reduces(nest) for nest in kernel.nests)


EXPENSIVE_OPS = (Op.EXP2, Op.LOG2, Op.SIN, Op.COS, Op.SQRT, Op.FDIV, Op.RECIPROCAL)
STORE_BODY_MIN_NODES = 8
"""A reduce body worth writing out and reading back (rather than computing again in the inner
loop): one with a transcendental or a division in it, or at least this many scalar ops."""


def _worth_storing(value: Node) -> bool:
    ops = [n for n in toposort([value]) if n.op not in (Op.RANGE, Op.CONST, Op.LOAD) and n.dtype.is_float]
    return any(n.op in EXPENSIVE_OPS for n in ops) or len(ops) >= STORE_BODY_MIN_NODES


def _reused_body(reduce: Node, inner: Node, value: Node) -> Node | None:
    """The biggest part of the reduce's body that the stored value computes again in the inner
    loop (the body with the reduce's range read as the inner loop's variable), if worth storing."""
    ranges = reduce.arg[1]
    if len(ranges) != 1 or ranges[0].arg[1] != inner.arg[1]:
        return None
    r = ranges[0]
    (as_inner,) = sym.substitute([reduce.srcs[0]], {r: inner})
    in_value = set(toposort([value]))
    deps = free_ranges(as_inner)
    for n in reversed(toposort([as_inner])):      # the body first, then ever smaller parts
        if n in in_value and inner in deps[n] and n.op is not Op.LOAD:
            return n if _worth_storing(n) else None
    return None


def store_row_reduce_bodies(kernel: LoopKernel) -> LoopKernel:
    """Compute a row reduce's body once: softmax's sum of e = exp(x - max) writes e to the output
    row while it accumulates, and the inner loop then reads e back and divides it in place, instead
    of computing exp again. Applies to a single plain store of a float32/float64 output whose
    inner loop recomputes (part of) a row reduce's body over the same range."""
    nests = []
    notes = list(kernel.notes)
    for nest in kernel.nests:
        if len(nest.stores) != 1 or nest.serial_reason or nest.body_stores or not nest.loops:
            nests.append(nest)
            continue
        st = nest.stores[0]
        dt = kernel.buffers[st.slot].dtype
        inner = nest.loops[-1].var
        if st.reduce_op is not None or st.replace_op or dt not in (dtypes.float32, dtypes.float64):
            nests.append(nest)
            continue
        index_loops = free_ranges(st.index)[st.index] - {inner}
        for reduce in reversed(row_reduces(nest)):
            part = _reused_body(reduce, inner, st.value)
            if part is None or part.dtype != dt or not index_loops <= free_ranges(reduce)[reduce]:
                continue   # (the reduce's loop must see every outer loop the stored row's index uses)
            r = reduce.arg[1][0]
            (index,) = sym.substitute([st.index], {inner: r})
            (body_part,) = sym.substitute([part], {inner: r})
            if body_part not in set(toposort([reduce.srcs[0]])):
                continue
            # the reduce accumulates body_part's enclosing body; store body_part itself
            (value,) = sym.substitute([st.value], {part: Node.make(Op.LOAD, dt, (st.index,), st.slot, ())})
            nest = replace(nest, stores=(replace(st, value=value),),
                           body_stores=(BodyStore(reduce, st.slot, index, body_part),))
            notes.append(f"store the body of reduce {r.arg[0]} ({r.arg[1]}): computed once")
            break
        nests.append(nest)
    return replace(kernel, nests=tuple(nests), notes=tuple(notes))


def lane_split(reduce: Node, lanes: int) -> tuple[Node, Node, dict[Node, Node]]:
    """REDUCE(body, ..., r) → REDUCE(body[r = ro·lanes + l], ..., ro, l), the new lane range l and
    the substitution {r: ro·lanes + l}. The value is the same reduction; marking l as a lane range
    (LoopKernel.lane_ranges) asks the renderer for one accumulator per lane, so the l loop is a plain
    vector loop for the C compiler."""
    reduce_op, ranges = reduce.arg
    name, size = ranges[-1].arg
    outer = sym.loop_var(name + "o", size // lanes)
    lane = sym.loop_var(name + "l", lanes)
    position = {ranges[-1]: sym.add(sym.mul(outer, sym.const(lanes)), lane)}
    (body,) = sym.substitute([reduce.srcs[0]], position)
    split = Node.make(Op.REDUCE_LOOP, reduce.dtype, (body,), (reduce_op, ranges[:-1] + (outer, lane)), ())
    return split, lane, position


def split_row_reduce_lanes(kernel: LoopKernel) -> LoopKernel:
    """opt.split_reduce_lanes for row kernels, whose reduces may sit inside each other's bodies (the
    softmax sum reads the max): each float add/max reduce along contiguous memory is split into a
    loop over vector lanes (lane_split); reduces are split innermost first, and each outer one is
    rebuilt over its already split sources, so every reduce is still computed once."""
    nests = []
    notes = list(kernel.notes)
    lane_ranges = set(kernel.lane_ranges)
    for nest in kernel.nests:
        if len(nest.stores) == 1 and not nest.serial_reason:
            st = nest.stores[0]
            done: dict[Node, Node] = {}
            positions: dict[Node, dict[Node, Node]] = {}
            for n in toposort([st.value]):
                if n.op is not Op.REDUCE_LOOP:
                    continue
                (rebuilt,) = sym.substitute([n], done)
                lanes = _split_candidate(rebuilt)
                done[n] = rebuilt
                if lanes:
                    done[n], lane, positions[n] = lane_split(rebuilt, lanes)
                    lane_ranges.add(lane)
                    ranges = n.arg[1]
                    notes.append(f"split reduce {ranges[-1].arg[0]} ({ranges[-1].arg[1]}) into {lanes} lanes")
            if done:
                (value,) = sym.substitute([st.value], done)
                body_stores = []
                for bs in nest.body_stores:
                    mapping = {**done, **positions.get(bs.reduce, {})}
                    index, part = sym.substitute([bs.index, bs.value], mapping)
                    body_stores.append(BodyStore(done.get(bs.reduce, bs.reduce), bs.slot, index, part))
                nest = replace(nest, stores=(Store(st.slot, st.index, value, st.reduce_op, st.replace_op),),
                               body_stores=tuple(body_stores))
        nests.append(nest)
    return replace(kernel, nests=tuple(nests), notes=tuple(notes), lane_ranges=frozenset(lane_ranges))


ROW_PASSES = [store_row_reduce_bodies, split_row_reduce_lanes, parallelize_outer_loop]


def optimize_row_kernel(kernel: LoopKernel) -> LoopKernel:
    """The pass list of a row kernel (none with NOOPT=1)."""
    if config.NOOPT:
        return kernel
    for p in ROW_PASSES:
        kernel = p(kernel)
    return kernel


def optimize_cpu(kernel: LoopKernel) -> LoopKernel:
    """The CPU's optimization: the row-kernel pass list for row kernels, opt.optimize otherwise."""
    if is_row_kernel(kernel):
        return optimize_row_kernel(kernel)
    return optimize(kernel)

"""Row kernels: nests with a reduce computed once per iteration of the outer loops.

The scheduler keeps a reduce that is only broadcast along a kernel's inner loops inside that
kernel (softmax over the last axis: out[i, j] = exp(x[i, j] - max[i]) / sum[i]); the renderer
hoists such a "row reduce" above the inner loops (codegen/render/cstyle.py). The CPU pass list
in opt.py assumes every reduce depends on every output loop: blocking the row loop around the
column loop would put the column loop outside the row's reduces and recompute them per column,
and its lane splitting does not rewrite a reduce nested in another's body. So a row kernel
gets its own, shorter pass list here (`optimize_row_kernel`); `optimize_cpu` picks the list.
"""
from __future__ import annotations

from dataclasses import replace

from lazytensor import config
from lazytensor import symbolic as sym
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op

from lazytensor.codegen.kernel import LoopKernel, LoopNest, Store
from lazytensor.codegen.opt import _split_candidate, _split_reduce, optimize, parallelize_outer_loop


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


def split_nested_reduce_lanes(kernel: LoopKernel) -> LoopKernel:
    """opt.split_reduce_lanes for nests whose reduces may sit inside each other's bodies (the
    softmax sum reads the max): reduces are split innermost first, and each outer one is rebuilt
    over its already split sources, so every reduce is still computed once."""
    nests = []
    notes = list(kernel.notes)
    for nest in kernel.nests:
        if len(nest.stores) == 1 and not nest.serial_reason:
            st = nest.stores[0]
            done: dict[Node, Node] = {}
            for n in toposort([st.value]):
                if n.op is not Op.REDUCE_LOOP:
                    continue
                (rebuilt,) = sym.substitute([n], done)
                lanes = _split_candidate(rebuilt)
                done[n] = _split_reduce(rebuilt, lanes) if lanes else rebuilt
                if lanes:
                    ranges = n.arg[1]
                    notes.append(f"split reduce {ranges[-1].arg[0]} ({ranges[-1].arg[1]}) into {lanes} lanes")
            if done:
                (value,) = sym.substitute([st.value], done)
                nest = LoopNest(nest.loops, (Store(st.slot, st.index, value, st.reduce_op, st.replace_op),),
                                nest.serial_reason)
        nests.append(nest)
    return replace(kernel, nests=tuple(nests), notes=tuple(notes))


ROW_PASSES = [split_nested_reduce_lanes, parallelize_outer_loop]


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

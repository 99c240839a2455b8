"""Loop optimization passes: LoopKernel → LoopKernel, each a small named transformation.

The pass list (`optimize`) is the one place that says which run and in what order.
"""
from __future__ import annotations

import math
from dataclasses import replace

from lazytensor import config
from lazytensor.graph import toposort
from lazytensor.ops import Op

from lazytensor.codegen.kernel import Loop, LoopKernel, LoopNest

PARALLEL_MIN_WORK = 1 << 15
"""Below this many inner-loop iterations a nest runs on one thread: forking costs more."""


def nest_work(nest: LoopNest) -> int:
    """Loop iterations of a nest, counting the reduce loops inside its stored values."""
    outer = math.prod(loop.size for loop in nest.loops)
    inner = 1
    for st in nest.stores:
        for n in toposort([st.value]):
            if n.op is Op.REDUCE_LOOP:
                inner = max(inner, math.prod(r.arg[1] for r in n.arg[1]))
    return outer * inner


def parallelize_outer_loop(kernel: LoopKernel) -> LoopKernel:
    """Mark the outermost loop of each big enough, race-free nest as parallel (OpenMP on the CPU)."""
    nests = []
    notes = list(kernel.notes)
    for nest in kernel.nests:
        if nest.loops and not nest.serial_reason and nest_work(nest) >= PARALLEL_MIN_WORK:
            loops = (replace(nest.loops[0], parallel=True),) + nest.loops[1:]
            nest = nest.with_loops(loops)
            notes.append(f"parallel over {nest.loops[0].var.arg[0]} ({nest.loops[0].size})")
        nests.append(nest)
    return replace(kernel, nests=tuple(nests), notes=tuple(notes))


PASSES = [parallelize_outer_loop]


def optimize(kernel: LoopKernel) -> LoopKernel:
    """Run the optimization passes in order (none with NOOPT=1)."""
    if config.NOOPT:
        return kernel
    for p in PASSES:
        kernel = p(kernel)
    return kernel

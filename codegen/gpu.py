"""GPU lowering: how each loop nest of a kernel maps onto work-items (OpenCL) / threads (CUDA).

Three launch modes, chosen per nest by `plan_nest`:

- "threads": one work-item per output element (per register tile after upcasting). The nest's
  output loops are flattened into one global index, so any loop structure launches as a 1-D grid
  of `local_size`-sized groups; the last group is partly idle (a bounds check returns early).
- "group_reduce": few outputs, each a long reduction (a full sum, a row norm): one work-group per
  output element. Its work-items split the reduce loop (strided, so neighbours read neighbouring
  elements), then combine their partial results through local/shared memory with barriers.
- "serial": a nest that must not run in parallel (a scatter whose targets may collide) runs on a
  single work-item, in order.

`optimize_gpu` is the GPU's optimization pass list (the CPU's is codegen/opt.py's `optimize`):
register tiles for reduce kernels, smaller than the CPU's (GPU registers are per thread), and
never for nests that will be reduced cooperatively.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from lazytensor.codegen.kernel import LoopKernel, LoopNest
from lazytensor.codegen.opt import choose_upcasts, upcast_loop

from lazytensor import config
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op

THREADS_PER_GROUP = 128
"""Work-group size of a thread-per-output nest (a multiple of every GPU's warp/wavefront width)."""
REDUCE_GROUP_SIZE = 256
"""Work-items cooperating on one output in a group reduce (a power of two: the tree halves it)."""
GROUP_REDUCE_MIN_LENGTH = 512
"""A reduce this long is worth splitting across a work-group."""
GROUP_REDUCE_MAX_OUTPUTS = 8192
"""With more outputs than this, one work-item per output already fills the device."""
GPU_TILE_MAX = 4
"""Largest register tile per axis on a GPU (the CPU's 16x8 tiles would spill registers)."""


@dataclass(frozen=True)
class NestLaunch:
    """How one nest is launched: `global_size` work-items in groups of `local_size` (1-D)."""
    mode: str            # "threads", "group_reduce" or "serial"
    global_size: int
    local_size: int
    outputs: int         # output elements (threads mode: work-items doing work; group mode: groups)


def top_level_reduces(nest: LoopNest) -> list[Node]:
    """REDUCE_LOOP nodes of the stored values that are not inside another reduce's body."""
    inner: set[Node] = set()
    for st in nest.stores:
        for n in toposort([st.value]):
            if n.op is Op.REDUCE_LOOP:
                inner.update(m for m in toposort([n.srcs[0]]) if m.op is Op.REDUCE_LOOP)
    found = []
    for st in nest.stores:
        for n in toposort([st.value]):
            if n.op is Op.REDUCE_LOOP and n not in inner and n not in found:
                found.append(n)
    return found


def reduce_length(reduce_loop: Node) -> int:
    return math.prod(r.arg[1] for r in reduce_loop.arg[1])


def wants_group_reduce(nest: LoopNest) -> bool:
    """Few outputs, each a long reduction, and no register tile: reduce cooperatively."""
    if nest.serial_reason or len(nest.stores) != 1:
        return False
    outputs = math.prod(loop.size for loop in nest.loops)
    reduces = top_level_reduces(nest)
    if not reduces or outputs > GROUP_REDUCE_MAX_OUTPUTS:
        return False
    return max(reduce_length(r) for r in reduces) >= GROUP_REDUCE_MIN_LENGTH


def plan_nest(nest: LoopNest) -> NestLaunch:
    """The launch mode and sizes of one nest (see the module docstring)."""
    outputs = math.prod(loop.size for loop in nest.loops)
    if nest.serial_reason:
        return NestLaunch("serial", 1, 1, 1)
    if wants_group_reduce(nest):
        return NestLaunch("group_reduce", outputs * REDUCE_GROUP_SIZE, REDUCE_GROUP_SIZE, outputs)
    local = min(THREADS_PER_GROUP, max(outputs, 1))
    groups = -(-max(outputs, 1) // local)
    return NestLaunch("threads", groups * local, local, outputs)


def _gpu_tile(lanes: int, size: int) -> int:
    """The largest tile ≤ GPU_TILE_MAX that divides both the CPU's choice and the loop size."""
    for f in (GPU_TILE_MAX, 2):
        if f <= lanes and lanes % f == 0 and size % f == 0:
            return f
    return 1


def upcast_gpu_tiles(kernel: LoopKernel) -> LoopKernel:
    """Register tiles (at most GPU_TILE_MAX per axis) for thread-per-output reduce nests."""
    nests = []
    notes = list(kernel.notes)
    for nest in kernel.nests:
        if not wants_group_reduce(nest):
            for pos, lanes in sorted(choose_upcasts(nest), reverse=True):
                size = nest.loops[pos].size
                tile = _gpu_tile(lanes, size)
                if tile > 1 and size // tile >= 1:
                    notes.append(f"gpu upcast {nest.loops[pos].var.arg[0]} ({size}) by {tile}")
                    nest = upcast_loop(nest, pos, tile)
        nests.append(nest)
    return replace(kernel, nests=tuple(nests), notes=tuple(notes))


GPU_PASSES = [upcast_gpu_tiles]


def optimize_gpu(kernel: LoopKernel) -> LoopKernel:
    """The GPU pass list (none with NOOPT=1); launch modes are chosen later, per nest, by plan_nest."""
    if config.NOOPT:
        return kernel
    for p in GPU_PASSES:
        kernel = p(kernel)
    return kernel

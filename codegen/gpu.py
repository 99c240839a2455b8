"""GPU lowering: how each loop nest of a kernel maps onto work-items (OpenCL) / threads (CUDA).

Four launch modes, chosen per nest by `plan_nest`:

- "threads": one work-item per output element (per register tile after upcasting). The nest's
  output loops are flattened into one global index, so any loop structure launches as a 1-D grid
  of `local_size`-sized groups; the last group is partly idle (a bounds check returns early).
- "group_reduce": few outputs, each a long reduction (a full sum, a row norm): one work-group per
  output element. Its work-items split the reduce loop (strided, so neighbours read neighbouring
  elements), then combine their partial results through local/shared memory with barriers.
- "tiled_matmul": a reduce shaped like a matmul (`plan_tiled_matmul`): a work-group of
  MATMUL_TILE x MATMUL_TILE work-items computes a block of outputs, each work-item a register tile
  of up to MATMUL_REGISTER_TILE x MATMUL_REGISTER_TILE of them. The reduce loop runs in chunks of
  MATMUL_TILE: the group loads an A chunk and a B chunk into local/shared memory (zeros past the
  edges), waits at a barrier, accumulates from local memory, and waits again before the next chunk.
  Each A and B element is then read from global memory once per block instead of once per output.
- "serial": a nest that must not run in parallel (a scatter whose targets may collide) runs on a
  single work-item, in order.

`optimize_gpu` is the GPU's optimization pass list (the CPU's is codegen/opt.py's `optimize`):
register tiles for reduce kernels, smaller than the CPU's (GPU registers are per thread), and
never for nests that will be reduced cooperatively or tiled through local memory.
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
MATMUL_TILE = 16
"""Work-items per side of a tiled-matmul work-group (MATMUL_TILE**2 of them) and the length of
each reduce chunk staged in local memory."""
MATMUL_REGISTER_TILE = 4
"""Most outputs per axis one tiled-matmul work-item accumulates in registers."""


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


@dataclass(frozen=True)
class TiledMatmul:
    """A nest whose stored value reduces `a * b` over one range `k`, where `a` does not depend on
    the column loop and `b` not on the row loop: out[..., row, col] = f(sum_k a[row, k] * b[k, col]).
    `row` and `col` are loop positions in the nest; the other loops are batch loops. A work-group
    covers a block of (tile * rows_per_item) x (tile * cols_per_item) outputs."""
    reduce: Node
    k: Node
    a: Node
    b: Node
    row: int
    col: int
    rows_per_item: int = 1
    cols_per_item: int = 1
    tile: int = MATMUL_TILE

    @property
    def block_rows(self) -> int:
        return self.tile * self.rows_per_item

    @property
    def block_cols(self) -> int:
        return self.tile * self.cols_per_item

    def groups(self, nest: LoopNest) -> int:
        """Work-groups of the launch: one per batch element and output block."""
        batch = math.prod(loop.size for pos, loop in enumerate(nest.loops) if pos not in (self.row, self.col))
        rows = -(-nest.loops[self.row].size // self.block_rows)
        cols = -(-nest.loops[self.col].size // self.block_cols)
        return batch * rows * cols


def _register_tile(size: int) -> int:
    """Outputs per work-item along an axis of `size`: the most that still keeps every work-item of
    a block's first pass busy (a 17-wide axis gets 1, a 40-wide one 2, a 64-wide one 4)."""
    for f in (MATMUL_REGISTER_TILE, 2):
        if size >= f * MATMUL_TILE:
            return f
    return 1


def _ranges_in(node: Node) -> set[Node]:
    return {n for n in toposort([node]) if n.op is Op.RANGE}


def plan_tiled_matmul(nest: LoopNest) -> TiledMatmul | None:
    """The matmul structure of a nest, if it should run as local-memory tiles (else None).

    Wanted: one plain store whose value holds exactly one sum-reduce, over one range k, of a
    product a * b (the same operand analysis choose_upcasts does): a depends on k and on a row
    loop that b does not depend on; b on k and a column loop that a does not depend on (the
    innermost such loops). Anything else in the stored value (bias, activation) is an epilogue.
    Not chosen with NOOPT=1, for a few long reductions (group_reduce is better) or for a
    matrix-vector product (an output side of 1: a tile would reuse nothing)."""
    if config.NOOPT or nest.serial_reason or len(nest.stores) != 1 or len(nest.loops) < 2:
        return None
    store = nest.stores[0]
    if store.reduce_op is not None or store.replace_op or wants_group_reduce(nest):
        return None
    reduces = [n for n in toposort([store.value]) if n.op is Op.REDUCE_LOOP]
    if len(reduces) != 1:
        return None
    reduce = reduces[0]
    op, ranges = reduce.arg
    body = reduce.srcs[0]
    if op is not Op.ADD or len(ranges) != 1 or reduce.dtype.is_bool or body.op is not Op.MUL:
        return None
    k = ranges[0]
    a, b = body.srcs
    deps_a, deps_b = _ranges_in(a), _ranges_in(b)
    loop_vars = {loop.var for loop in nest.loops}
    if k not in deps_a or k not in deps_b or not (deps_a | deps_b) <= loop_vars | {k}:
        return None
    rows = [pos for pos, loop in enumerate(nest.loops) if loop.var in deps_a and loop.var not in deps_b]
    cols = [pos for pos, loop in enumerate(nest.loops) if loop.var in deps_b and loop.var not in deps_a]
    if not rows or not cols:
        return None
    row, col = rows[-1], cols[-1]
    if nest.loops[row].size < 2 or nest.loops[col].size < 2:
        return None
    return TiledMatmul(reduce, k, a, b, row, col, _register_tile(nest.loops[row].size),
                       _register_tile(nest.loops[col].size))


def plan_nest(nest: LoopNest) -> NestLaunch:
    """The launch mode and sizes of one nest (see the module docstring)."""
    outputs = math.prod(loop.size for loop in nest.loops)
    if nest.serial_reason:
        return NestLaunch("serial", 1, 1, 1)
    if wants_group_reduce(nest):
        return NestLaunch("group_reduce", outputs * REDUCE_GROUP_SIZE, REDUCE_GROUP_SIZE, outputs)
    tiled = plan_tiled_matmul(nest)
    if tiled is not None:
        local = tiled.tile * tiled.tile
        return NestLaunch("tiled_matmul", tiled.groups(nest) * local, local, outputs)
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
    """Register tiles (at most GPU_TILE_MAX per axis) for thread-per-output reduce nests; a nest
    plan_tiled_matmul takes is left whole (its launch tiles it) and gets a note saying so."""
    nests = []
    notes = list(kernel.notes)
    for nest in kernel.nests:
        tiled = plan_tiled_matmul(nest)
        if tiled is not None:
            row, col = nest.loops[tiled.row], nest.loops[tiled.col]
            notes.append(f"gpu tiled matmul {tiled.tile}x{tiled.tile} work-items x {tiled.rows_per_item}x"
                         f"{tiled.cols_per_item} outputs over {row.var.arg[0]} ({row.size}) x "
                         f"{col.var.arg[0]} ({col.size}), k {tiled.k.arg[0]} ({tiled.k.arg[1]})"
                         " in local memory")
        elif not wants_group_reduce(nest):
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

"""Loop optimization passes: LoopKernel → LoopKernel, each a small named transformation.

The pass list (`optimize`) is the one place that says which run and in what order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from lazytensor import config
from lazytensor import symbolic as sym
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op

from lazytensor.codegen.cpu_target import (L1_WAYS, VectorUnit, host_l2_bytes, host_vector_unit, rows_share_l1_sets,
                                           tile_row_bytes, tile_rows)
from lazytensor.codegen.kernel import Loop, LoopKernel, LoopNest, Store, outer_loop_groups, reduce_loops, resize_loop
from lazytensor.codegen.peel import peel_gated_borders
from lazytensor.codegen.transpose_tiles import tile_transposed_copies
from lazytensor.codegen.vectorize import (VECTOR_DTYPES, one_instruction_fma, packs_whole, vector_lanes,
                                          vectorize_tiles)

PARALLEL_MIN_WORK = 1 << 18
"""Below this many inner-loop iterations a nest runs on one thread: forking costs more."""


@dataclass(frozen=True)
class OptChoices:
    """The knobs the passes read. The defaults are the heuristic; BEAM search (lazytensor/beam.py)
    times other settings per kernel and keeps the fastest.

    tile_rows:    rows of a register tile (None: fill the vector registers, see tile_rows;
                  1: no row axis). tile_columns: lanes of its vector axis (None: the widest of
                  _vector_factors dividing the loop; 1: no vector axis).
    block_rows:   row tiles per cache block (0: no blocking).
    split_lanes:  partial accumulators for lone contiguous reduces.
    unroll_max:   longest inner reduce range unrolled whole (0: none).
    tile_unroll:  times the reduce loop of a vector register tile is unrolled (1: not at all).
    parallel:     split the outer loop across threads when the nest is big enough.
    vectorize:    regroup a tile's lanes into explicit vectors (codegen/vectorize.py)."""
    tile_rows: int | None = None
    tile_columns: int | None = None
    block_rows: int = 8
    split_lanes: bool = True
    unroll_max: int = 4
    tile_unroll: int = 4
    parallel: bool = True
    vectorize: bool = True


HEURISTIC = OptChoices()


def nest_work(nest: LoopNest) -> int:
    """Loop iterations of a nest, counting the reduce loops inside its stored values and each of
    its stores (a register tile's lanes are work too: an upcast nest has fewer, fuller iterations)."""
    outer = math.prod(loop.size for loop in nest.loops) * max(len(nest.stores), 1)
    inner = 1
    for st in nest.stores:
        for n in toposort([st.value]):
            if n.op is Op.REDUCE_LOOP:
                inner = max(inner, math.prod(r.arg[1] for r in n.arg[1]))
    return outer * inner


def parallelize_outer_loop(kernel: LoopKernel, choices: OptChoices = HEURISTIC) -> LoopKernel:
    """Mark the outermost loop of each big enough, race-free nest as parallel (OpenMP on the CPU)."""
    if not choices.parallel:
        return kernel
    nests = []
    notes = list(kernel.notes)
    for group in outer_loop_groups(kernel.nests):   # pieces sharing an outer loop share its threads
        free = all(not nest.serial_reason or nest.disjoint_outer for nest in group)
        if group[0].loops and free and sum(nest_work(nest) for nest in group) >= PARALLEL_MIN_WORK:
            group = [nest.with_loops((replace(nest.loops[0], parallel=True),) + nest.loops[1:])
                     for nest in group]
            loop = group[0].loops[0]
            shared = f", {len(group)} pieces" if len(group) > 1 else ""
            notes.append(f"parallel over {loop.var.arg[0]} ({loop.size}){shared}")
        nests += group
    return replace(kernel, nests=tuple(nests), notes=tuple(notes))


# ---- upcast: register tiles for reduce kernels ----

VECTOR_FACTORS = (16, 8, 4)
"""Lanes tried for the contiguous output axis without a vector unit (GPU register tiles). With one
(the CPU), _vector_factors adds wider tiles up to tile_row_bytes (32 floats on AVX-512)."""
ROW_FACTORS = (8, 4, 2)
"""Lanes tried for a second output axis whose values a reduce-body load does not depend on (reuse),
when no vector unit is given (GPU register tiles) or the tile has no vector axis."""
UPCAST_NODE_BUDGET = 10000
"""Most scalar nodes a tiled reduce body may have: bigger tiles only slow the C compiler down. The
count is the untiled value's size times the tile's lanes, so it overcounts what the lanes share:
a 12x32 matmul tile with a bias epilogue (~20 nodes x 384 lanes) compiles in well under a second."""


def _depends_on(node: Node, var: Node) -> bool:
    return any(n is var for n in toposort([node]))


def _coefficient(index: Node, var: Node) -> int | None:
    """The coefficient of var in a linear index, or None if var appears non-linearly."""
    terms, _ = sym._linear(index)
    coef = terms.get(var)
    others = [t for t in terms if t is not var and _depends_on(t, var)]
    return None if others else (coef or 0)


def _reduce_body_loads(nest: LoopNest) -> list[Node]:
    loads = []
    for st in nest.stores:
        for n in toposort([st.value]):
            if n.op is Op.REDUCE_LOOP:
                loads += [m for m in toposort([n.srcs[0]]) if m.op is Op.LOAD]
    return loads


def _lanes(size: int, factors: tuple[int, ...], full_unroll_max: int) -> int:
    """The largest factor dividing size; a small loop (≤ full_unroll_max) is unrolled whole."""
    if size <= full_unroll_max:
        return size
    return next((f for f in factors if size % f == 0), 0)


def _vector_factors(unit: VectorUnit | None, itemsize: int) -> tuple[int, ...]:
    """Lanes tried for a tile's vector axis: the widest fills a tile row of the host (two vectors)."""
    if unit is None:
        return VECTOR_FACTORS
    widest = max(tile_row_bytes(unit) // max(itemsize, 1), VECTOR_FACTORS[-1])
    wider = tuple(f for f in (widest, widest // 2) if f > VECTOR_FACTORS[0])
    return wider + tuple(f for f in VECTOR_FACTORS if f <= widest)


def _accumulator_itemsize(nest: LoopNest) -> int:
    for n in toposort([nest.stores[0].value]):
        if n.op is Op.REDUCE_LOOP:
            return n.dtype.itemsize
    return nest.stores[0].value.dtype.itemsize


def _row_loads_alias(nest: LoopNest, row_var: Node) -> bool:
    """Some reduce-body load walks rows `row_var` apart whose stride maps them to one L1 set."""
    for load in _reduce_body_loads(nest):
        coef = _coefficient(load.srcs[0], row_var)
        if coef and rows_share_l1_sets(abs(coef) * load.dtype.itemsize):
            return True
    return False


def _whole_vectors(nest: LoopNest, lanes: int, unit: VectorUnit) -> bool:
    """A vector axis of `lanes` lanes fills whole vector registers of the stored dtype. Only such
    tiles take a second vector axis or have the node budget count their vectors: narrower runs (an
    8-wide image on AVX-512) pack too since partial runs do, but keep the smaller tiles, whose compile
    time was measured."""
    dt = nest.stores[0].value.dtype
    return dt in VECTOR_DTYPES and lanes % vector_lanes(dt, unit) == 0


def _second_vector_axis(nest: LoopNest, vector: tuple[int, int], vector_loads: list[Node],
                        loads: list[Node], unit: VectorUnit) -> list[tuple[int, int]]:
    """[(loop position, lanes)] of a second axis for a tile row narrower than tile_row_bytes: an
    output loop that every vector load moves along while some other load (the broadcast operand)
    does not. A direct NCHW conv over 16-wide images: 2 output rows of 16 pixels per tile row, so
    each broadcast weight feeds two vector FMAs (as a 32-column matmul tile row does); else []."""
    pos, lanes = vector
    widest = tile_row_bytes(unit) // _accumulator_itemsize(nest)
    if lanes >= widest or widest % lanes or not _whole_vectors(nest, lanes, unit):
        return []
    extra = widest // lanes
    for other in range(len(nest.loops) - 1, -1, -1):
        var = nest.loops[other].var
        if other == pos or nest.loops[other].size % extra:
            continue
        moves_vectors = vector_loads and all(_depends_on(i, var) for i in vector_loads)
        if moves_vectors and not all(_depends_on(i, var) for i in loads):
            return [(other, extra)]
    return []


def _dividing_row_count(size: int, most: int, unit: VectorUnit) -> int:
    """With 32 vector registers (AVX-512), the largest row count from 2/3 of `most` up to `most` that
    divides the row loop, else `most`. A row count that leaves a remainder costs a tail nest with a
    smaller tile, and the full tile's broadcasts may then no longer fit the registers beside its
    accumulators. Measured (AVX-512, one run, alternating, 2 threads): conv2d 32x32x16x16 by
    64x32x3x3, 12 rows + a tail of 4: 1.79 ms, 8 rows: 1.59 ms; conv2d 8x3x64x64 by 32x3x3x3
    (1 thread), 12 + 8: 725 µs, 8: 651 µs; 512³ matmul the same.

    With 16 registers (AVX2): `most` (6 rows of 16 floats) and a tail. The tile's broadcasts never
    fit beside its accumulators there (they are loaded where used), and 4 rows keep the FMA units
    too little busy. Measured on one Zen 3 core: matmul 512³ 87 -> 92 GFLOP/s, 1024³ 65 -> 95,
    2048³ 76 -> 81; the conv2d above 61 -> 89 GFLOP/s."""
    if unit.registers < 32:
        return most
    for rows in range(most, -(-2 * most // 3) - 1, -1):
        if rows > 1 and size % rows == 0:
            return rows
    return most


def choose_upcasts(nest: LoopNest, unit: VectorUnit | None = None,
                   choices: OptChoices = HEURISTIC) -> list[tuple[int, int]]:
    """(loop position, lanes) to unroll into a register tile, for a nest whose value reduces.

    A "vector" axis is an output loop that some reduce-body load reads contiguously (its lanes
    become one vector load); a "row" axis is one that some load does not depend on while another
    does, so each loaded value is reused by every lane (the B row in matmul, the weight in conv).
    Without a vector axis, two row axes make a scalar tile (each load still reused).

    With a vector unit (the CPU), the row count fills its registers (tile_rows: 6 rows of 16
    floats on AVX2) and need not divide the loop: upcast_with_tail peels the remainder. So need the
    vector axis: it takes a full tile row (two registers) or the whole loop when shorter, not a
    narrower width that divides it. A 100-wide output: 3 tiles of 32 columns and a tail of 4 (was 25
    tiles of 4: 262 -> 120 us); a 784-wide one: 24 tiles of 32 and a tail of 16 (was 49 of 16).
    choices.tile_rows / tile_columns override the row count and the vector lanes."""
    if nest.serial_reason or len(nest.stores) != 1 or not nest.loops:
        return []
    loads = [ld.srcs[0] for ld in _reduce_body_loads(nest)]
    if not loads:
        return []
    positions = list(range(len(nest.loops) - 1, -1, -1))   # innermost first
    chosen: list[tuple[int, int]] = []
    for pos in positions:
        if any(_coefficient(index, nest.loops[pos].var) == 1 for index in loads):
            size = nest.loops[pos].size
            if choices.tile_columns is None:
                factors = _vector_factors(unit, _accumulator_itemsize(nest))
                lanes = _lanes(size, factors, 16)
                if unit is not None and lanes < min(size, factors[0]):
                    lanes = min(size, factors[0])   # a full tile row, a tail nest for the rest (see above)
            else:
                lanes = choices.tile_columns if size % choices.tile_columns == 0 else 0
            if lanes > 1:
                chosen.append((pos, lanes))
                break
    # the loads the vector lanes read: a row axis is worth most when it reuses exactly these
    vector_loads = [i for i in loads if chosen and _coefficient(i, nest.loops[chosen[0][0]].var) == 1]
    if unit is not None and chosen and choices.tile_columns is None:
        chosen += _second_vector_axis(nest, chosen[0], vector_loads, loads, unit)
    row_axes_wanted = 1 if chosen else 2
    rows: list[tuple[int, int]] = []
    for pos in positions:
        if len(rows) == row_axes_wanted:
            break
        if chosen and pos == chosen[0][0]:
            continue
        var = nest.loops[pos].var
        depends = [_depends_on(index, var) for index in loads]
        if vector_loads and any(_depends_on(index, var) for index in vector_loads):
            continue
        if any(depends) and not all(depends):
            size = nest.loops[pos].size
            if choices.tile_rows is not None:
                lanes = min(choices.tile_rows, size)
            elif unit is not None and chosen and size > 8:
                columns = math.prod(f for _, f in chosen)    # the vector axis, times a second one
                lanes = min(tile_rows(columns * _accumulator_itemsize(nest), unit), size)
                if _row_loads_alias(nest, var):
                    lanes = min(lanes, L1_WAYS)
                lanes = _dividing_row_count(size, lanes, unit)
            else:
                lanes = _lanes(size, ROW_FACTORS, 8)
            if lanes > 1:
                rows.append((pos, lanes))
    chosen += rows
    body_size = len(toposort([nest.stores[0].value]))
    if unit is not None and vector_loads and choices.vectorize and packs_whole(nest.stores[0].value) \
            and _whole_vectors(nest, chosen[0][1], unit):
        # the vectorize pass writes each run of vector lanes once: count vectors, not lanes (an
        # epilogue that does not pack, erf or tanh, is written per lane: 384 lanes of it took 20 s
        # to compile)
        body_size = max(1, body_size // min(chosen[0][1], vector_lanes(nest.stores[0].value.dtype, unit)))
    while chosen and body_size * math.prod(f for _, f in chosen) > UPCAST_NODE_BUDGET:
        pos, lanes = chosen[-1]
        if unit is not None and rows and pos == rows[-1][0]:
            smaller = lanes - 1    # the CPU's row axis takes any count (upcast_with_tail peels the rest)
        else:
            smaller = next((f for f in ROW_FACTORS + (1,) if f < lanes and lanes % f == 0), 1)
        if smaller < 2:
            chosen.pop()
        else:
            chosen[-1] = (pos, smaller)
    return chosen


def upcast_loop(nest: LoopNest, pos: int, lanes: int) -> LoopNest:
    """Split loop `pos` into (size/lanes) iterations of `lanes` unrolled copies of the stores.

    The copies share every subexpression that does not depend on the lane, and their reduce
    loops (identical ranges) are rendered as one loop with one accumulator per lane."""
    loop = nest.loops[pos]
    name, size = loop.var.arg
    outer = sym.loop_var(name, size // lanes)
    stores: list[Store] = []
    for lane in range(lanes):
        if size == lanes:
            lane_value = sym.const(lane)
        else:
            lane_value = sym.add(sym.mul(outer, sym.const(lanes)), sym.const(lane))
        for st in nest.stores:
            index, value = sym.substitute([st.index, st.value], {loop.var: lane_value})
            stores.append(Store(st.slot, index, value, st.reduce_op, st.replace_op))
    if size == lanes:
        loops = nest.loops[:pos] + nest.loops[pos + 1:]
    else:
        loops = nest.loops[:pos] + (Loop(outer, loop.parallel),) + nest.loops[pos + 1:]
    return LoopNest(loops, tuple(stores), nest.serial_reason)


def upcast_with_tail(nest: LoopNest, pos: int, lanes: int) -> list[LoopNest]:
    """upcast_loop for any loop size: when `lanes` does not divide it, the first size - size % lanes
    iterations are tiled by `lanes` and the remainder becomes a second nest, unrolled whole."""
    name, size = nest.loops[pos].var.arg
    tail = size % lanes
    if tail == 0:
        return [upcast_loop(nest, pos, lanes)]
    main_var = sym.loop_var(name, size - tail)
    main = upcast_loop(resize_loop(nest, pos, main_var, main_var), pos, lanes)
    tail_var = sym.loop_var(name + "t", tail)
    rest = resize_loop(nest, pos, tail_var, sym.add(sym.const(size - tail), tail_var))
    return [main, upcast_loop(rest, pos, tail)]


def upcast_reduce_tiles(kernel: LoopKernel, choices: OptChoices = HEURISTIC) -> LoopKernel:
    """Register-tile reduce kernels (see choose_upcasts): the pass that makes matmul/conv fast."""
    nests: list[LoopNest] = []
    notes = list(kernel.notes)
    unit = host_vector_unit()
    for nest in kernel.nests:
        parts = [nest]
        for pos, lanes in sorted(choose_upcasts(nest, unit, choices), reverse=True):
            loop_name, size = nest.loops[pos].var.arg
            tail = f", tail of {size % lanes} unrolled" if size % lanes else ""
            notes.append(f"upcast {loop_name} ({size}) by {lanes}{tail}")
            parts = [piece for part in parts for piece in upcast_with_tail(part, pos, lanes)]
        nests += parts
    return replace(kernel, nests=tuple(nests), notes=tuple(notes))


# ---- cache blocking: keep a panel of the reused operand in cache across row tiles ----

BLOCK_ROWS = HEURISTIC.block_rows
"""Row tiles per block: the column loop then sweeps with a block of rows (and each column panel is
read once per block, not once per row tile). Leftover row tiles form a second, unblocked nest."""
BLOCK_MIN_REDUCE = 256
"""Only reduces at least this long stream operands big enough to fall out of cache."""
BIG_BLOCK_ROWS = 64
"""Row tiles per block when a block of BLOCK_ROWS tiles' rows and its column panel do not fit in L2
together (see cache_block_rows)."""


def _reduce_length(nest: LoopNest) -> int:
    length = 1
    for st in nest.stores:
        for n in toposort([st.value]):
            if n.op is Op.REDUCE_LOOP:
                length = max(length, math.prod(r.arg[1] for r in n.arg[1]))
    return length


def streamed_bytes_per_step(nest: LoopNest, row_var: Node) -> tuple[int, int]:
    """Bytes one row tile's reduces read per reduce step: (from the tile's own rows, from what every
    row tile of a block shares: the column panel). Loads that do not move with the reduce are left out."""
    reduce_ranges: set[Node] = set()
    loads: set[Node] = set()
    for st in nest.stores:
        for n in toposort([st.value]):
            if n.op is Op.REDUCE_LOOP:
                reduce_ranges.update(n.arg[1])
            elif n.op is Op.LOAD:
                loads.add(n)
    own = shared = 0
    for load in loads:
        index_nodes = set(toposort([load.srcs[0]]))
        if not index_nodes & reduce_ranges:
            continue
        if row_var in index_nodes:
            own += load.dtype.itemsize
        else:
            shared += load.dtype.itemsize
    return own, shared


def cache_block_rows(nest: LoopNest, row_var: Node, block: int, row_tiles: int) -> int:
    """Row tiles per block: `block`, unless its tiles' rows and the column panel they share take more
    than half of L2 (the rest holds output tiles, the stack and what the prefetcher brings early):
    long reduces, e.g. matmul 2048³ with 6x16 tiles, 384 + 128 KiB on a 512 KiB L2. Then the rows
    cannot stay in L2 anyway, and a block of BIG_BLOCK_ROWS tiles reads each column panel into L2 8x
    less often (the row tiles split into blocks of about that many). Measured on one Zen 3 core (512 KiB L2), 2048³: blocks of 8 tiles 70-82 GFLOP/s,
    64 tiles 86-94 (2 threads: 152 -> 178); 1024³ and a (1024, 1536) x (1536, 384) matmul, just
    over half: the same within noise; BERT's reduces of 384 fit and keep 8 tiles (64: 5% slower)."""
    l2 = host_l2_bytes()
    if l2 is None or block >= BIG_BLOCK_ROWS:
        return block
    own, shared = streamed_bytes_per_step(nest, row_var)
    if _reduce_length(nest) * (own * block + shared) <= l2 // 2:
        return block
    blocks = -(-row_tiles // BIG_BLOCK_ROWS)
    return max(block, row_tiles // blocks)   # blocks of about BIG_BLOCK_ROWS, few tiles left over


def _block_rows(nest: LoopNest, block: int) -> LoopNest:
    """Loops (..., r, c) → (..., r_outer, c, r_inner), r_inner of `block` (r divisible by it).

    When r is the nest's outermost loop, (r_outer, c) become one loop over their pairs, r_outer
    major: the loop the threads share then has blocks × columns iterations instead of a few
    blocks (matmul 512 with 12-row tiles: 5 blocks of 96 rows left one of 2 threads idle a sixth
    of the time, 1.9 -> 1.5 ms; 80 pairs split evenly), and each thread still sweeps the columns of
    a block in order."""
    row, col = nest.loops[-2], nest.loops[-1]
    name, size = row.var.arg
    blocks = size // block
    inner = sym.loop_var(name + "i", block)
    if len(nest.loops) == 2:
        col_name, columns = col.var.arg
        pair = sym.loop_var(name + col_name, blocks * columns)
        outer, col_value = sym.idiv(pair, columns), sym.mod(pair, columns)
        loops: tuple[Loop, ...] = (Loop(pair, row.parallel), Loop(inner))
    else:
        outer, col_value = sym.loop_var(name + "o", blocks), col.var
        loops = nest.loops[:-2] + (Loop(outer, row.parallel), col, Loop(inner))
    value = sym.add(sym.mul(outer, sym.const(block)), inner)
    subs = {row.var: value, col.var: col_value}
    stores = tuple(Store(st.slot, *sym.substitute([st.index, st.value], subs),
                         st.reduce_op, st.replace_op) for st in nest.stores)
    return LoopNest(loops, stores, nest.serial_reason)


def block_row_loop(kernel: LoopKernel, choices: OptChoices = HEURISTIC) -> LoopKernel:
    """For a long reduce over the last two loops (row tiles, column tiles), split the row loop
    into blocks of BLOCK_ROWS (or more: cache_block_rows) and sweep the columns once per block: loops (r, c) become
    (r_outer, c, r_inner). The tile's column operand is then reused by BLOCK_ROWS row tiles while
    it is still in cache (matmul 2048: each B panel is read 8x less often from memory). Row tiles
    past the last whole block stay a plain (r, c) nest of their own."""
    if choices.block_rows < 2:
        return kernel
    nests: list[LoopNest] = []
    notes = list(kernel.notes)
    for nest in kernel.nests:
        if len(nest.loops) < 2 or nest.serial_reason or _reduce_length(nest) < BLOCK_MIN_REDUCE:
            nests.append(nest)
            continue
        row, col = nest.loops[-2], nest.loops[-1]
        name, size = row.var.arg
        block = cache_block_rows(nest, row.var, choices.block_rows, size)
        if size <= block or col.size <= 1:
            nests.append(nest)
            continue
        tail = size % block
        pos = len(nest.loops) - 2
        if tail:
            main_var = sym.loop_var(name, size - tail)
            tail_var = sym.loop_var(name + "t", tail)
            nests.append(_block_rows(resize_loop(nest, pos, main_var, main_var), block))
            nests.append(resize_loop(nest, pos, tail_var, sym.add(sym.const(size - tail), tail_var)))
        else:
            nests.append(_block_rows(nest, block))
        leftover = f", {tail} left over" if tail else ""
        notes.append(f"block {name} ({size}) by {block} around {col.var.arg[0]}{leftover}")
    return replace(kernel, nests=tuple(nests), notes=tuple(notes))


# ---- split reduce lanes: vector accumulators for a reduce along contiguous memory ----

REDUCE_LANES = {4: 16, 8: 8}
"""Partial accumulators per element size in bytes (16 float32 or 8 float64: one 512-bit register)."""
SPLIT_MIN_REDUCE = 64
"""Shorter reduces gain little from lanes (the lanes still have to be added up)."""


def _split_candidate(reduce: Node) -> int:
    """Lanes to split this REDUCE_LOOP's innermost range into, or 0 when it does not pay or apply:
    a float add/max reduce whose innermost range some load in the body reads contiguously."""
    reduce_op, ranges = reduce.arg
    if reduce_op not in (Op.ADD, Op.MAX) or not reduce.dtype.is_float or not ranges:
        return 0
    lanes = REDUCE_LANES.get(reduce.dtype.itemsize, 0)
    size = ranges[-1].arg[1]
    if not lanes or size < SPLIT_MIN_REDUCE or size % lanes:
        return 0
    loads = [m.srcs[0] for m in toposort([reduce.srcs[0]]) if m.op is Op.LOAD]
    return lanes if any(_coefficient(index, ranges[-1]) == 1 for index in loads) else 0


def _split_reduce(reduce: Node, lanes: int) -> Node:
    """REDUCE(body, ..., r) → REDUCE(body[r = ro·lanes + 0]) ⊕ … ⊕ REDUCE(body[r = ro·lanes + lanes-1]),
    all over (..., ro): one loop with `lanes` accumulators (the renderer merges equal ranges), which
    the C compiler turns into vector accumulators; the partial results are combined pairwise."""
    reduce_op, ranges = reduce.arg
    name, size = ranges[-1].arg
    outer = sym.loop_var(name + "o", size // lanes)
    new_ranges = ranges[:-1] + (outer,)
    parts = []
    for lane in range(lanes):
        position = sym.add(sym.mul(outer, sym.const(lanes)), sym.const(lane))
        (body,) = sym.substitute([reduce.srcs[0]], {ranges[-1]: position})
        parts.append(Node.make(Op.REDUCE_LOOP, reduce.dtype, (body,), (reduce_op, new_ranges), ()))
    while len(parts) > 1:
        parts = [Node.make(reduce_op, reduce.dtype, (parts[i], parts[i + 1]), None, ())
                 for i in range(0, len(parts), 2)]
    return parts[0]


def split_reduce_lanes(kernel: LoopKernel, choices: OptChoices = HEURISTIC) -> LoopKernel:
    """Give a lone reduce along contiguous memory (a row sum, softmax's max and sum, a dot product)
    partial accumulators, so its loop vectorizes: C compilers may not reorder a float reduction
    themselves. Nests the upcast pass tiled (several stores) are left alone."""
    if not choices.split_lanes:
        return kernel
    nests = []
    notes = list(kernel.notes)
    for nest in kernel.nests:
        if len(nest.stores) == 1 and not nest.serial_reason:
            st = nest.stores[0]
            mapping = {}
            for n in toposort([st.value]):
                lanes = _split_candidate(n) if n.op is Op.REDUCE_LOOP else 0
                if lanes:
                    mapping[n] = _split_reduce(n, lanes)
                    notes.append(f"split reduce {n.arg[1][-1].arg[0]} ({n.arg[1][-1].arg[1]}) into {lanes} lanes")
            if mapping:
                (value,) = sym.substitute([st.value], mapping)
                nest = LoopNest(nest.loops, (Store(st.slot, st.index, value, st.reduce_op, st.replace_op),),
                                nest.serial_reason)
        nests.append(nest)
    return replace(kernel, nests=tuple(nests), notes=tuple(notes))


# ---- unroll short inner reduce ranges: a 3x3 window's kh, kw loops ----

UNROLL_MAX = HEURISTIC.unroll_max
"""Inner reduce ranges this short are unrolled whole: their loop overhead and the accumulator
round trips across loop levels cost more than the body (and GCC's SLP vectorizer gives up on
tiles whose accumulators cross three loop levels)."""


def unroll_short_reduce_ranges(kernel: LoopKernel, choices: OptChoices = HEURISTIC) -> LoopKernel:
    """Mark every reduce range of at most UNROLL_MAX iterations inside a longer one for full
    unrolling (the renderer emits the compiler's unroll pragma): conv's (cin, kh, kw) reduce then
    runs one loop over cin with 9 unrolled steps of the register tile."""
    marked: set[Node] = set(kernel.unrolled_ranges)
    for nest in kernel.nests:
        for st in nest.stores:
            for n in toposort([st.value]):
                if n.op is Op.REDUCE_LOOP and len(n.arg[1]) > 1:
                    marked |= {r for r in n.arg[1][1:] if r.arg[1] <= choices.unroll_max}
    if len(marked) == len(kernel.unrolled_ranges):
        return kernel
    names = ", ".join(sorted(f"{r.arg[0]} ({r.arg[1]})" for r in marked - kernel.unrolled_ranges))
    return replace(kernel, unrolled_ranges=frozenset(marked), notes=kernel.notes + (f"unroll {names}",))


# ---- unroll the reduce loop of a vector register tile: fewer loop-overhead instructions per FMA ----

TILE_UNROLL_MIN_ACCUMULATORS = 4
"""Vector accumulators a reduce loop must update per step to be unrolled (a register tile's)."""
TILE_UNROLL_MIN_STEPS = 16
"""Shorter reduce loops are left alone (their loop overhead is not the cost)."""


def unroll_tile_reduce_loops(kernel: LoopKernel, choices: OptChoices = HEURISTIC) -> LoopKernel:
    """Mark the innermost reduce range of each vectorized register tile for unrolling by
    `choices.tile_unroll` (the renderer emits the compiler's unroll pragma).

    A 6x16 float32 matmul tile's step is 8 loads and 12 FMAs, plus an add per pointer and the loop's
    compare and branch: unrolled 4x, the overhead is paid once per 48 FMAs. That matters when the core's
    other hardware thread takes half of the instruction dispatch. One Zen 3 core, the kernels of both
    settings interleaved in one process (medians of two runs): 512³ 4.07/3.89 -> 3.78/3.56 ms, 1024³
    29.2/31.8 -> 28.9/29.5 ms, 2048³ 241/246 -> 226/237 ms; the best runs about equal. Runs after vectorize_tiles and
    only on reduces that are one vector FMA each: GCC's unroller takes a per-lane FMA helper apart
    (see vectorize_tiles). Ranges already unrolled whole, or split into lanes, are left as they are."""
    if choices.tile_unroll <= 1:
        return kernel
    before = dict(kernel.partly_unrolled)
    factors = dict(before)
    for nest in kernel.nests:
        by_range: dict[Node, list[Node]] = {}
        for st in nest.stores:
            for n in reduce_loops(st.value):
                if n.arg[1]:
                    by_range.setdefault(n.arg[1][-1], []).append(n)
        for r, reduces in by_range.items():
            if (len(reduces) >= TILE_UNROLL_MIN_ACCUMULATORS and r.arg[1] >= TILE_UNROLL_MIN_STEPS
                    and r not in kernel.unrolled_ranges and r not in kernel.lane_ranges
                    and all(n.shape and one_instruction_fma(n) for n in reduces)):
                factors[r] = choices.tile_unroll
    if len(factors) == len(before):
        return kernel
    new = sorted(f"{r.arg[0]} ({r.arg[1]})" for r in factors if r not in before)
    return replace(kernel, partly_unrolled=tuple(factors.items()),
                   notes=kernel.notes + (f"unroll {', '.join(new)} by {choices.tile_unroll}",))


PASSES = [peel_gated_borders, upcast_reduce_tiles, split_reduce_lanes, block_row_loop, unroll_short_reduce_ranges,
          tile_transposed_copies, parallelize_outer_loop, vectorize_tiles, unroll_tile_reduce_loops]


def optimize(kernel: LoopKernel, choices: OptChoices = HEURISTIC) -> LoopKernel:
    """Run the optimization passes in order (none with NOOPT=1), with the heuristic's knobs or
    the ones given (BEAM search)."""
    if config.NOOPT:
        return kernel
    for p in PASSES:
        kernel = p(kernel, choices)
    return kernel

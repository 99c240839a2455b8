"""Tile transposing copies: a square of elements per step, so reads and writes both stay in cache.

A copy such as x.permute(0, 2, 1).contiguous() writes along its innermost loop while it reads
along another loop, so each read lands a whole row apart from the last one. When the rows are
long, the lines read are evicted before their neighbours are needed: a 4096² float32 transpose
ran at ~1 GB/s. Splitting both loops into tiles of TILE_BYTES per row and moving the read-
contiguous loop's tile inside the write loop's tile makes every tile read T lines and write T
lines, each used T times while it sits in L1.

On an AVX-512 host a transposing copy of 4-byte elements goes further: each 16×16 tile is read as 16
row vectors, transposed in registers (64 shuffles) and written as 16 row vectors, where the plain loop
moves one element per load and store (register_transpose_loops; rendered by render/c.py). An AVX host
does the same with 8×8 tiles (24 shuffles).
"""
from __future__ import annotations

import math
from dataclasses import replace

from lazytensor import symbolic as sym
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op

from lazytensor.codegen.cpu_target import host_vector_unit
from lazytensor.codegen.kernel import Loop, LoopKernel, LoopNest, Store

TILE_BYTES = 64
"""Bytes per tile row: one cache line (16 float32 elements, a 16×16 tile)."""
MIN_TILE = 4
"""Smaller tiles (when no larger one divides both loops) are not worth the loop overhead."""
L2_WAYS = 8
"""Lines one L2 set holds (Zen 4: 1 MiB, 8-way)."""
L2_SET_SPAN_BYTES = 128 * 1024
"""Addresses this far apart share an L2 set (2048 sets of 64-byte lines)."""


def sweep_thrashes(lines: int, stride_bytes: int) -> bool:
    """One sweep of the innermost loop reads `lines` lines `stride_bytes` apart, and they cannot all
    stay in the L2 sets that stride maps to until the next sweep reads their neighbours. Only then
    does tiling pay (measured, 2 threads: 4096² 56 -> 23 ms, 1024² 2.0 -> 1.1 ms, (64, 1024, 8)
    reversed 0.79 -> 0.26 ms; a 2 MB copy with 1 KiB strides ran 280 us untiled, 400 tiled)."""
    sets = L2_SET_SPAN_BYTES // math.gcd(stride_bytes, L2_SET_SPAN_BYTES)
    return lines > L2_WAYS * min(sets, L2_SET_SPAN_BYTES // TILE_BYTES)


def _coefficients(index: Node) -> dict[Node, int]:
    terms, _ = sym._linear(index)
    return terms


def _tile_size(itemsize: int, a: int, b: int) -> int:
    """The largest power of two ≤ TILE_BYTES / itemsize dividing both loop sizes (0: none ≥ MIN_TILE)."""
    t = TILE_BYTES // max(itemsize, 1)
    while t >= MIN_TILE:
        if a % t == 0 and b % t == 0:
            return t
        t //= 2
    return 0


def transposed_loop(nest: LoopNest) -> int | None:
    """The position of the loop a transposing copy reads contiguously (None when the nest is not
    one): a single plain store, no reduce, written along its innermost loop, and some load that
    moves by one element along another loop and so far along the innermost that a sweep thrashes
    the cache (sweep_thrashes)."""
    if nest.serial_reason or nest.body_stores or len(nest.stores) != 1 or len(nest.loops) < 2:
        return None
    st = nest.stores[0]
    if st.reduce_op is not None or st.replace_op or st.value.shape:
        return None
    inner = nest.loops[-1].var
    if _coefficients(st.index).get(inner) != 1:
        return None
    nodes = toposort([st.value])
    if any(n.op is Op.REDUCE_LOOP for n in nodes):
        return None
    for load in (n for n in nodes if n.op is Op.LOAD):
        coefs = _coefficients(load.srcs[0])
        stride = abs(coefs.get(inner, 0)) * load.dtype.itemsize
        if stride < TILE_BYTES or not sweep_thrashes(nest.loops[-1].size, stride):
            continue
        for pos, loop in enumerate(nest.loops[:-1]):
            if coefs.get(loop.var) == 1:
                return pos
    return None


def tile_nest(nest: LoopNest, pos: int, t: int) -> LoopNest:
    """Loops (..., a, ..., b) → (..., a_outer, ..., b_outer, a_inner, b_inner), a = loops[pos]
    and b the innermost, each inner loop of t iterations."""
    a, b = nest.loops[pos], nest.loops[-1]
    (a_name, a_size), (b_name, b_size) = a.var.arg, b.var.arg
    a_outer, a_inner = sym.loop_var(a_name + "o", a_size // t), sym.loop_var(a_name + "i", t)
    b_outer, b_inner = sym.loop_var(b_name + "o", b_size // t), sym.loop_var(b_name + "i", t)
    subs = {a.var: _tile_position(a_outer, a_inner, a_size, t), b.var: _tile_position(b_outer, b_inner, b_size, t)}
    stores = tuple(Store(st.slot, *sym.substitute([st.index, st.value], subs), st.reduce_op, st.replace_op)
                   for st in nest.stores)
    loops: list[Loop | None] = list(nest.loops)
    # an outer loop of one iteration is left out (a parallel mark on it would leave threads idle)
    loops[pos] = Loop(a_outer, a.parallel) if a_size > t else None
    loops[-1] = Loop(b_outer, b.parallel) if b_size > t else None
    kept = [loop for loop in loops if loop is not None]
    return replace(nest, loops=tuple(kept + [Loop(a_inner), Loop(b_inner)]), stores=stores)


def _tile_position(outer: Node, inner: Node, size: int, t: int) -> Node:
    """outer·t + inner, or just inner when the loop is a single tile."""
    return sym.add(sym.mul(outer, sym.const(t)), inner) if size > t else inner


def register_tile() -> int:
    """Side of the tiles a transposing copy of 4-byte elements moves through this host's vector
    registers: 16 with AVX-512, 8 with AVX (a 16-byte unit has none: 0)."""
    return {64: 16, 32: 8}.get(host_vector_unit().width_bytes, 0)


REGISTER_TRANSPOSE_MAX_BYTES = 8 << 20
"""Largest copy (bytes read) moved through registers. Measured, alternating (2 threads, plain tiles vs
registers): (128, 784).T 36 -> 11 us, (512, 784) packed for matmul ~90 -> ~50 us, 1024² 470 -> 314 us,
(64, 1024, 16) reversed 931 -> 486 us; but copies that stream from memory got slower: 4096² 12.7 ->
14.9 ms, (32, 512, 784) swapping the last two 4.1 -> 5.7 ms. Those keep the cache tiles."""


def register_transpose_loop(nest: LoopNest, itemsize: int, tile: int | None = None) -> int | None:
    """The position of the loop a pure copy reads contiguously while it writes along its innermost
    loop, when both loops split into tile × tile tiles (default: register_tile()) a register transpose
    can move (4-byte elements, an ungated load of the stored dtype, linear indices); else None."""
    tile = register_tile() if tile is None else tile
    if not tile:
        return None
    if nest.serial_reason or nest.body_stores or len(nest.stores) != 1 or len(nest.loops) < 2:
        return None
    st = nest.stores[0]
    value = st.value
    if st.reduce_op is not None or st.replace_op or value.shape or value.op is not Op.LOAD:
        return None
    if len(value.srcs) != 1 or itemsize != 4 or value.dtype.itemsize != 4:
        return None
    if math.prod(loop.size for loop in nest.loops) * itemsize > REGISTER_TRANSPOSE_MAX_BYTES:
        return None
    inner = nest.loops[-1]
    store_coefs, load_coefs = _coefficients(st.index), _coefficients(value.srcs[0])
    if store_coefs.get(inner.var) != 1 or not load_coefs.get(inner.var) or inner.size % tile:
        return None
    if not _linear_in(st.index, nest) or not _linear_in(value.srcs[0], nest):
        return None
    for pos, loop in enumerate(nest.loops[:-1]):
        if load_coefs.get(loop.var) == 1 and store_coefs.get(loop.var) and loop.size % tile == 0:
            return pos
    return None


def _linear_in(index: Node, nest: LoopNest) -> bool:
    """index is a sum of loop variables times constants (no divmod of a loop variable)."""
    terms, _ = sym._linear(index)
    loop_vars = {loop.var for loop in nest.loops}
    return all(t in loop_vars or not any(n in loop_vars for n in toposort([t])) for t in terms)


def tile_transposed_copies(kernel: LoopKernel, choices=None) -> LoopKernel:
    """Tile every transposing copy nest (see the module docstring): through registers where
    register_transpose_loop allows it (an AVX or AVX-512 host), else for the cache where a sweep thrashes."""
    nests = []
    notes = list(kernel.notes)
    tile = register_tile()
    in_registers = tile > 0 and (choices is None or choices.vectorize)
    for nest in kernel.nests:
        pos = None
        if in_registers and nest.stores:
            pos = register_transpose_loop(nest, kernel.buffers[nest.stores[0].slot].dtype.itemsize)
        if pos is not None:
            names = f"{nest.loops[pos].var.arg[0]} and {nest.loops[-1].var.arg[0]}"
            nest = replace(tile_nest(nest, pos, tile), register_transpose=tile)
            notes.append(f"transpose {tile}x{tile} tiles over {names} in registers")
            nests.append(nest)
            continue
        pos = transposed_loop(nest)
        t = 0 if pos is None else _tile_size(kernel.buffers[nest.stores[0].slot].dtype.itemsize,
                                             nest.loops[pos].size, nest.loops[-1].size)
        if t:
            names = f"{nest.loops[pos].var.arg[0]} and {nest.loops[-1].var.arg[0]}"
            nest = tile_nest(nest, pos, t)
            notes.append(f"tile the transposing copy over {names} by {t}x{t}")
        nests.append(nest)
    return replace(kernel, nests=tuple(nests), notes=tuple(notes))

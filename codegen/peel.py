"""Peel gated borders: split a loop where its padding gates change value.

A padded view reads `gate ? x[i] : 0`, the gate comparing loop variables with the valid range.
At -O2 without loop if-conversion (see runtime/cpu.py) GCC keeps such a load a branch and the
loop scalar: padding a 3×64×64 image by one pixel ran at ~4 GB/s. Splitting each gated loop at
the points where a gate's comparisons can change value makes every comparison a constant inside
each piece (the substitution re-simplifies them from the piece's bounds): the interior then copies
without any gate, and the border pieces store their zeros.
"""
from __future__ import annotations

import math
from dataclasses import replace

from lazytensor import symbolic as sym
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op

from lazytensor.codegen.kernel import LoopKernel, LoopNest, resize_loop

MAX_PIECES = 27
"""Most nests one nest may be split into (3 pieces along each of 3 loops)."""
PEEL_NODE_BUDGET = 2000
"""Most expression nodes all the pieces may hold together: each piece is a copy of the nest, and a
big fused kernel (a loss's backward with index gates) split 27 ways took 2.4 s to compile."""


def _gate_comparisons(nest: LoopNest) -> list[Node]:
    """The index comparisons (CMPLT) inside the gates of the nest's loads and selects."""
    gates = []
    for st in nest.stores:
        for n in toposort([st.value]):
            if n.op is Op.LOAD and len(n.srcs) == 2:
                gates.append(n.srcs[1])
            elif n.op is Op.WHERE:
                gates.append(n.srcs[0])
    found = {m for g in gates for m in toposort([g])
             if m.op is Op.CMPLT and m.srcs[0].dtype == sym.INDEX and m.srcs[1].dtype == sym.INDEX}
    return sorted(found, key=id)


def _switch_points(comparison: Node, var: Node) -> set[int]:
    """Values p of var such that comparison a < b is decided (always true or always false over the
    other variables' ranges) for all var ≥ p on one side and all var < p on the other."""
    a, b = comparison.srcs
    diff = sym.add(b, sym.mul(a, sym.const(-1)))             # a < b  ⟺  diff ≥ 1
    terms, _ = sym._linear(diff)
    k = terms.get(var, 0)
    if not k or any(t is not var and any(m is var for m in toposort([t])) for t in terms):
        return set()
    (rest,) = sym.substitute([diff], {var: sym.const(0)})
    lo, hi = sym.bounds(rest)
    if k > 0:    # true once k·var ≥ 1 - lo; false while k·var ≤ -hi
        return {-((lo - 1) // k), (-hi) // k + 1}
    k = -k       # true while k·var ≤ lo - 1; false once k·var ≥ hi
    return {(lo - 1) // k + 1, -(-hi // k)}


def _split(nest: LoopNest, pos: int, points: list[int]) -> list[LoopNest]:
    """The nest as one nest per piece [start, end) of loop `pos` (points inside (0, size))."""
    loop = nest.loops[pos]
    name, size = loop.var.arg
    edges = [0] + points + [size]
    pieces = []
    for i, (start, end) in enumerate(zip(edges, edges[1:])):
        var = sym.loop_var(f"{name}p{i}", end - start)
        value = sym.add(sym.const(start), var) if start else var
        pieces.append(resize_loop(nest, pos, var, value))
    return pieces


def peel_nest(nest: LoopNest) -> tuple[list[LoopNest], list[str]]:
    """The nest split along every loop whose gates change value inside it (and what was split)."""
    if nest.serial_reason or nest.body_stores or any(st.reduce_op or st.replace_op for st in nest.stores):
        return [nest], []
    comparisons = _gate_comparisons(nest)
    if not comparisons:
        return [nest], []
    cuts: list[tuple[int, list[int]]] = []
    for pos, loop in enumerate(nest.loops):
        points = set()
        for c in comparisons:
            points |= _switch_points(c, loop.var)
        inside = sorted(p for p in points if 0 < p < loop.size)
        if inside:
            cuts.append((pos, inside))
    pieces = math.prod(len(points) + 1 for _, points in cuts)
    if not cuts or pieces > MAX_PIECES:
        return [nest], []
    size = len(toposort([x for st in nest.stores for x in (st.index, st.value)]))
    if size * pieces > PEEL_NODE_BUDGET:
        return [nest], []
    nests = [nest]
    for pos, points in cuts:
        nests = [piece for n in nests for piece in _split(n, pos, points)]
    if cuts[0][0] > 0:    # the outermost loop is whole in every piece: they may share it
        nests = nests[:1] + [replace(piece, joins_previous=True) for piece in nests[1:]]
    notes = [f"peel {nest.loops[pos].var.arg[0]} ({nest.loops[pos].size}) at {points}"
             for pos, points in cuts]
    return nests, notes


def peel_gated_borders(kernel: LoopKernel, choices=None) -> LoopKernel:
    """Split every nest along the loops where its padding gates switch (see the module docstring)."""
    nests: list[LoopNest] = []
    notes = list(kernel.notes)
    for nest in kernel.nests:
        pieces, what = peel_nest(nest)
        nests += pieces
        notes += what
    if len(nests) == len(kernel.nests):
        return kernel
    return replace(kernel, nests=tuple(nests), notes=tuple(notes))

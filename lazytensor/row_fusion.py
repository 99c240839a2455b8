"""Which reduces a kernel can compute inline, judged by the loops each one's value depends on.

A kernel loops over its output's axes (outermost first). A reduce reached inside the kernel is
needed at an index that depends on some of those loops; this module tracks, for every node of
a kernel's region, which output axes (and which enclosing reduce ranges) each of its axes
depends on. A reduce is computed inline when its value depends on

- every output axis (the plain case: one reduce per output element), or
- a leading run of the output axes (a "row" reduce: softmax's max[i] and sum[i] under
  out[i, j]); the renderer then computes it once per iteration of those outer loops, above
  the inner loops that only repeat its value (codegen/render/cstyle.py hoists it).

Anything else is cut into its own kernel, with a reason in words: a value that varies inside
an enclosing reduce's loop (nested), one broadcast along an outer loop (it would be recomputed
for every outer iteration), one read by a gather or feeding a scatter.

`reduces_to_cut_rows` walks one kernel's region; schedule.find_materialized iterates it over
every kernel to a fixed point.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lazytensor.graph import Node
from lazytensor.ops import ELEMENTWISE, MOVEMENT, Op

Deps = tuple[frozenset, ...]
"""Per axis of a node: the tags its index depends on. A tag is an int (a kernel output axis),
("reduce", id, axis) (an enclosing reduce's range) or ("part", tag, i, m) (factor i of m of
another tag, where a reshape merged axes)."""

NO_DEPS: frozenset = frozenset()


@dataclass
class RegionScan:
    """What walking one kernel's region found."""
    cut: list[tuple[Node, str]] = field(default_factory=list)
    inline_reduces: dict[Node, set[Deps]] = field(default_factory=dict)


def output_deps(shape: tuple[int, ...]) -> Deps:
    """The deps of a kernel's output: axis a depends on output loop a (size-1 axes have no loop)."""
    return tuple(frozenset((a,)) if s > 1 else NO_DEPS for a, s in enumerate(shape))


def _union(deps: Deps) -> frozenset:
    out: frozenset = NO_DEPS
    for d in deps:
        out = out | d
    return out


def _reshape_deps(node: Node, deps: Deps) -> Deps:
    """Deps of a reshape's source: each source axis depends on every output axis of its group
    (runs of axes with equal products); anything irregular falls back to all of them."""
    out_shape, src_shape = node.shape, node.srcs[0].shape
    everything = _union(deps)
    if 0 in out_shape or 0 in src_shape:
        return tuple(everything for _ in src_shape)
    result = [NO_DEPS] * len(src_shape)
    i = j = 0
    try:
        while i < len(out_shape) and j < len(src_shape):
            group_out, group_src = [i], [j]
            p_out, p_src = out_shape[i], src_shape[j]
            i, j = i + 1, j + 1
            while p_out != p_src:
                if p_out < p_src:
                    group_out.append(i)
                    p_out *= out_shape[i]
                    i += 1
                else:
                    group_src.append(j)
                    p_src *= src_shape[j]
                    j += 1
            joined = _union(tuple(deps[k] for k in group_out))
            real = [k for k in group_src if src_shape[k] > 1]
            for part, k in enumerate(real):
                # a source axis that is only one factor of merged output axes depends on a part
                result[k] = joined if len(real) == 1 else frozenset(("part", t, part, len(real)) for t in joined)
    except IndexError:
        return tuple(everything for _ in src_shape)
    return tuple(result)


def source_deps(node: Node, deps: Deps) -> list[Deps]:
    """The deps of each source of a movement or elementwise node, given the node's own deps."""
    op = node.op
    if op in ELEMENTWISE:
        return [deps for _ in node.srcs]
    src = node.srcs[0]
    if op is Op.EXPAND:
        return [tuple(NO_DEPS if s == 1 else d for s, d in zip(src.shape, deps))]
    if op is Op.PERMUTE:
        result = [NO_DEPS] * len(deps)
        for i, axis in enumerate(node.arg):
            result[axis] = deps[i]
        return [tuple(result)]
    if op is Op.RESHAPE:
        return [_reshape_deps(node, deps)]
    if op in (Op.PAD, Op.SHRINK, Op.FLIP):
        return [deps]
    everything = _union(deps)      # WINDOW and anything else: every source axis may depend on all
    return [tuple(everything for _ in src.shape)]


def pad_gate_deps(node: Node, deps: Deps) -> frozenset:
    """What a PAD's validity guard depends on: the deps of its padded axes."""
    out: frozenset = NO_DEPS
    for (before, after), d in zip(node.arg, deps):
        if before or after:
            out = out | d
    return out


def classify_reduce(needed: frozenset, out_axes: list[int]) -> str:
    """How a reduce whose value depends on `needed` fits a kernel looping over `out_axes`:
    "nested" (varies inside an enclosing reduce), "inline" (every output axis), "row" (a leading
    run of output axes: hoisted above the inner loops) or "broadcast" (recomputed per outer loop)."""
    if any(_is_reduce_tag(t) for t in needed):
        return "nested"
    parts: dict[tuple, set[int]] = {}
    for t in needed:
        if isinstance(t, tuple) and t[0] == "part":
            parts.setdefault((t[1], t[3]), set()).add(t[2])
    if any(len(seen) < m for (_, m), seen in parts.items()):
        return "broadcast"       # depends on only some factors of a merged loop: recomputed per rest
    whole = {t[1] for t in needed if isinstance(t, tuple) and t[0] == "part"}
    used = sorted(a for a in set(needed) | whole if isinstance(a, int) and a in out_axes)
    if used == out_axes:
        return "inline"
    if used and used == out_axes[:len(used)]:
        return "row"
    return "broadcast"


def _is_reduce_tag(tag: object) -> bool:
    if isinstance(tag, tuple) and tag[0] == "part":
        return _is_reduce_tag(tag[1])
    return isinstance(tag, tuple) and tag[0] == "reduce"

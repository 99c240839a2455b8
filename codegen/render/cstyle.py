"""LoopKernel → C-family source text. Dialects (C, OpenCL C, CUDA C) override the hooks.

Scalar nodes are emitted in topological order inside the innermost loop they depend on
("scopes"): a node that only depends on the output loops is computed once per output element,
a node that depends on a reduce's loop variables is computed inside that reduce's loop.
Nodes used once in the same scope are inlined; the rest become named temporaries.
16-bit floats are stored as 16-bit patterns and computed in float, each op's result rounded to
its 16-bit type (see expr), as PyTorch rounds every op's result.
"""
from __future__ import annotations

import math
from collections import defaultdict

from lazytensor import dtypes
from lazytensor.dtypes import DType
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op

from lazytensor.codegen.kernel import LoopKernel, LoopNest, Store, outer_loop_groups, shared_loop_depth

HALF_TYPES = (dtypes.float16, dtypes.bfloat16)

# The 16-bit float conversions are branchless (selects are bit blends) so that loops over float16 and
# bfloat16 data vectorize; float<->bits goes through lt_f2u/lt_u2f, which the GPU dialects rewrite.
C_HELPERS = {
    "f2u": """static inline unsigned int lt_f2u(float f) {
  unsigned int x; __builtin_memcpy(&x, &f, 4); return x;
}""",
    "u2f": """static inline float lt_u2f(unsigned int bits) {
  float f; __builtin_memcpy(&f, &bits, 4); return f;
}""",
    "h2f": """static inline float lt_h2f(unsigned short h) {
  unsigned int sign = (unsigned int)(h & 0x8000u) << 16, em = h & 0x7fffu;
  unsigned int is_special = 0u - (unsigned int)(em >= 0x7c00u), is_sub = 0u - (unsigned int)(em < 0x400u);
  unsigned int normal = (em << 13) + 0x38000000u + (is_special & 0x38000000u);
  unsigned int sub = lt_f2u((float)(int)em * 5.9604644775390625e-08f);   /* em * 2^-24, exact */
  return lt_u2f(sign | (sub & is_sub) | (normal & ~is_sub));
}""",
    "f2h": """static inline unsigned short lt_f2h(float f) {
  unsigned int x = lt_f2u(f), ax = x & 0x7fffffffu;
  unsigned int normal = (ax - 0x38000000u + 0xfffu + ((ax >> 13) & 1u)) >> 13;   /* rebias, round to even */
  unsigned int overflow = 0u - (unsigned int)(normal > 0x7c00u);
  normal = (0x7c00u & overflow) | (normal & ~overflow);
  unsigned int sub = lt_f2u(lt_u2f(ax) + 0.5f) - 0x3f000000u;   /* |f| < 2^-14: round to a multiple of 2^-24 */
  unsigned int is_sub = 0u - (unsigned int)(ax < 0x38800000u), is_nan = 0u - (unsigned int)(ax > 0x7f800000u);
  unsigned int r = (sub & is_sub) | (normal & ~is_sub);
  r = (0x7e00u & is_nan) | (r & ~is_nan);
  return (unsigned short)(((x >> 16) & 0x8000u) | r);
}""",
    "bf2f": """static inline float lt_bf2f(unsigned short h) {
  return lt_u2f((unsigned int)h << 16);
}""",
    "f2bf": """static inline unsigned short lt_f2bf(float f) {
  unsigned int x = lt_f2u(f);
  unsigned int is_nan = 0u - (unsigned int)((x & 0x7fffffffu) > 0x7f800000u);
  unsigned int rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;   /* round to nearest even */
  return (unsigned short)((((x >> 16) | 0x40u) & is_nan) | (rounded & ~is_nan));
}""",
    "check": """static inline long long lt_check(long long i, long long n, long long* err) {
  if (i < 0 || i >= n) { err[0] = 1; err[1] = i; err[2] = n; return 0; }
  return i;
}""",
}
HELPER_DEPS = {"h2f": ("f2u", "u2f"), "f2h": ("f2u", "u2f"), "bf2f": ("u2f",), "f2bf": ("f2u",)}

# Ops whose float16/bfloat16 result is rounded to the 16-bit type right away, as PyTorch rounds every
# op's result (computed in float32 "opmath") to the tensor's dtype. The others (neg, max, where,
# trunc, loads, constants) give back a value that is already exact in the 16-bit type.
ROUNDED_OPS = frozenset({Op.CAST, Op.ADD, Op.MUL, Op.FDIV, Op.RECIPROCAL, Op.EXP2, Op.LOG2, Op.SIN, Op.COS,
                         Op.SQRT, Op.MOD})

# Ops whose 8/16-bit integer result C computes in int and may leave out of the type's range.
WRAPPED_OPS = frozenset({Op.ADD, Op.MUL, Op.NEG, Op.SHL})


def helpers_in_order(used: set[str]) -> list[str]:
    """The named helpers used, with what they call, each after the helpers it calls."""
    needed = set(used)
    for name in used:
        needed.update(HELPER_DEPS.get(name, ()))
    return [name for name in C_HELPERS if name in needed]


def _is_loaded_operand(n: Node) -> bool:
    """A (possibly cast or padding-gated) buffer load or constant: a dot product's factor."""
    while n.op in (Op.CAST, Op.WHERE, Op.EXPAND):   # EXPAND: a vector lane broadcast (codegen/vectorize.py)
        n = n.srcs[1] if n.op is Op.WHERE else n.srcs[0]
    return n.op in (Op.LOAD, Op.CONST)


class CStyleRenderer:
    """Shared C-family rendering. Subclasses set the dialect's names and kernel signature."""

    unrolled_ranges: frozenset[Node] = frozenset()   # set per kernel by render_nest
    partly_unrolled: dict[Node, int] = {}             # (the same)
    lane_ranges: frozenset[Node] = frozenset()       # set per kernel by render_nest
    device = "CPU"
    restrict = "restrict"
    bool_type = "_Bool"
    kernel_prefix = ""
    global_qualifier = ""
    helper_prefix = "static inline"
    index_type = "long long"        # loop variables and index arithmetic
    outline_parallel_body = False   # C: the body of a parallel loop becomes its own function (see outline_body)
    hoist_above_flat_loop = False   # C: a one-loop nest computes its loop invariants before the loop

    # ---- dialect hooks ----
    def type_name(self, dt: DType) -> str:
        """The C type a value of dt is computed in."""
        names = {"bool": self.bool_type, "uint8": "unsigned char", "int8": "signed char",
                 "int16": "short", "uint16": "unsigned short", "int32": "int", "uint32": "unsigned int",
                 "int64": "long long", "uint64": "unsigned long long", "float16": "float",
                 "bfloat16": "float", "float32": "float", "float64": "double"}
        return names[dt.name]

    def storage_type(self, dt: DType) -> str:
        """The C type a value of dt is stored as in a buffer."""
        return "unsigned short" if dt in HALF_TYPES else self.type_name(dt)

    def math_fn(self, name: str, dt: DType) -> str:
        return name if dt == dtypes.float64 else name + "f"

    def loop_pragma(self, nest: LoopNest, depth: int) -> str | None:
        return None

    def gated_load(self, slot: int, index: str, gate: str, dt: DType) -> str:
        """buffer[index] where gate holds, else 0 (the index may be out of range where it does not)."""
        return f"({gate} ? {self.from_storage(f'b{slot}[{index}]', dt)} : {self.literal(0, dt)})"

    def select(self, cond: str, a: str, b: str, dt: DType) -> str:
        """cond ? a : b."""
        return f"({cond} ? {a} : {b})"

    def narrow_to_float32(self, expr: str) -> str:
        """double → float (rounding to float32 must survive, even when the value is widened again)."""
        return f"((float){expr})"

    def preamble(self) -> list[str]:
        return ["#include <math.h>", "#include <string.h>"]

    def helper_source(self, name: str) -> str:
        """The source of a named helper (16-bit float conversions, index checks)."""
        return C_HELPERS[name]

    def bit_copy(self, dst: str, src: str, dst_type: str) -> str:
        """A statement copying the bits of variable src into variable dst (same size, dst_type)."""
        return f"memcpy(&{dst}, &{src}, sizeof({dst}));"

    def kernel_params(self, kernel: LoopKernel) -> list[str]:
        """The kernel's parameter declarations: buffers b0.. (b0 is written) and the error slot."""
        params = []
        for slot, buf in enumerate(kernel.buffers):
            const = "" if buf.is_output else "const "
            params.append(f"{self.global_qualifier}{const}{self.storage_type(buf.dtype)}* "
                          f"{self.restrict} b{slot}".replace("  ", " "))
        err_type = self.type_name(dtypes.int64)
        params.append(f"{self.global_qualifier}{err_type}* {self.restrict} err".replace("  ", " "))
        return params

    def launch_options(self, kernel: LoopKernel) -> dict:
        """What the device runtime needs besides the source to launch this kernel (the CPU: nothing)."""
        return {}

    # ---- rendering ----
    def render(self, kernel: LoopKernel, name: str | None = None) -> str:
        """The full source of one kernel function (plus the helpers it uses)."""
        self.helpers_used: set[str] = set()
        self.extra_helpers: dict[str, str] = {}
        name = name or kernel.name
        params = self.kernel_params(kernel)
        self.kernel_name = name
        self.param_decls = ", ".join(params)
        self.param_names = ", ".join([f"b{slot}" for slot in range(len(kernel.buffers))] + ["err"])
        body: list[str] = []
        index = 0
        for group in outer_loop_groups(kernel.nests):
            nest = group[0]
            lines = self.render_nest(kernel, nest) if len(group) == 1 else self.render_group(kernel, group)
            if self.outline_parallel_body and nest.loops and nest.loops[0].parallel:
                lines = self.outline_body(lines, nest, index)
            if (not nest.loops or self.lines_before_loops) and len(kernel.nests) > 1:
                lines = ["  {"] + ["  " + line for line in lines] + ["  }"]   # its names are its own
            body += lines
            index += len(group)
        helpers = [self.helper_source(h) for h in helpers_in_order(self.helpers_used)]
        helpers += list(self.extra_helpers.values())
        head = self.preamble() + helpers
        signature = f"{self.kernel_prefix}void {name}({', '.join(params)})"
        return "\n".join(head + [signature + " {"] + body + ["}", ""])

    def render_group(self, kernel: LoopKernel, group: list[LoopNest]) -> list[str]:
        """Nests sharing their outer loops (kernel.outer_loop_groups, shared_loop_depth): those loops
        once, around each member's other loops in turn (each in a block of its own: its names are its own)."""
        depth = shared_loop_depth(group)
        pragma = self.loop_pragma(group[0], 0)
        lines = ["  " + pragma] if pragma else []
        indent = "  "
        for loop in group[0].loops[:depth]:
            v = loop.var.arg[0]
            lines.append(f"{indent}for ({self.index_type} {v} = 0; {v} < {loop.size}; {v}++) {{")
            indent += "  "
        for member in group:
            inner = self.render_nest(kernel, member.with_loops(member.loops[depth:]))
            lines += [indent + "{"] + [indent + line for line in inner] + [indent + "}"]
        for k in range(depth):
            lines.append("  " * (depth - k) + "}")
        self.lines_before_loops, self.hoisted_names = 0, []   # each member's own are inside its block
        return lines

    def render_nest(self, kernel: LoopKernel, nest: LoopNest) -> list[str]:
        self.prepare_nest(nest)
        self.unrolled_ranges = kernel.unrolled_ranges
        self.partly_unrolled = dict(kernel.partly_unrolled)
        self.buffer_dtypes = [buf.dtype for buf in kernel.buffers]
        self.lane_ranges = kernel.lane_ranges
        # loop invariants of a one-loop nest (Adam's step size, narrowed from double through an asm
        # barrier) are computed before the loop: inside it, the barrier keeps the loop scalar
        lines: list[str] = self.emit_scope(None, "  ", 0) if self.invariants_above_loop else []
        self.lines_before_loops = len(lines)
        self.hoisted_names = [(self.value_type(n), self.names[n]) for n in self.nodes
                              if n in self.names and self.loop_depth.get(n) == 0] if lines else []
        indent = "  "
        for depth, loop in enumerate(nest.loops):
            pragma = self.loop_pragma(nest, depth)
            if pragma:
                lines.append(indent + pragma)
            v = loop.var.arg[0]
            lines.append(f"{indent}for ({self.index_type} {v} = 0; {v} < {loop.size}; {v}++) {{")
            indent += "  "
            if depth + 1 < len(nest.loops):
                lines += self.emit_scope(None, indent, depth + 1)
        lines += self.emit_scope(None, indent, len(nest.loops))
        for st in nest.stores:
            lines.append(indent + self.render_store(kernel, st))
        for depth in range(len(nest.loops)):
            lines.append("  " * (len(nest.loops) - depth) + "}")
        return lines

    def prepare_nest(self, nest: LoopNest) -> None:
        """Order the nest's scalar nodes and find each one's scope, use count and name table."""
        self.invariants_above_loop = self.hoist_above_flat_loop and len(nest.loops) == 1
        roots: list[Node] = []
        for st in nest.stores:
            roots += [st.index, st.value]
        for bs in nest.body_stores:
            roots += [bs.index, bs.value]
        nodes = toposort(roots)
        self.group_of = self._reduce_groups(nodes)
        nodes = self._emission_order(nodes)
        self.deps = self._range_deps(nodes)
        self.scope = self._scopes(nodes)
        self.uses: dict[Node, int] = defaultdict(int)
        for n in nodes:
            for s in n.srcs:
                self.uses[s] += 1
        self.cross_scope = {s for n in nodes for s in n.srcs if self.scope[s] is not self.scope[n]}
        self.loop_depth = self._loop_depths(nest, nodes)
        self.cross_scope |= {s for n in nodes for s in n.srcs
                             if self.scope[n] is None and self.loop_depth[s] < self.loop_depth[n]}
        self.fused_products = {n.srcs[0] for n in nodes if self._fma_product(n) is not None}
        self.body_stores: dict[Node, list] = defaultdict(list)
        for bs in nest.body_stores:
            self.body_stores[bs.reduce].append(bs)
            self.cross_scope |= {bs.index, bs.value}     # named where computed, then stored and used
        self.names: dict[Node, str] = {}
        self.nodes = nodes
        self.counter = 0

    def outline_body(self, lines: list[str], nest: LoopNest, index: int) -> list[str]:
        """Move what a parallel loop runs per iteration into a static function with restrict
        parameters: OpenMP's outlining otherwise loses `restrict`, and GCC then will not vectorize
        the inner loops. lines = [pragma, for-line, body..., closing brace]."""
        var = nest.loops[0].var.arg[0]
        # values computed before the loop (a one-loop nest's invariants) become parameters as well
        before, lines = lines[:self.lines_before_loops], lines[self.lines_before_loops:]
        pragma, loop_line, body, closing = lines[0], lines[1], lines[2:-1], lines[-1]
        fname = f"{self.kernel_name}_body{index}"
        extra_decls = "".join(f", {t} {name}" for t, name in self.hoisted_names)
        extra_names = "".join(f", {name}" for _, name in self.hoisted_names)
        function = [f"static void {fname}(long long {var}, {self.param_decls}{extra_decls}) {{"]
        function += [line[2:] for line in body] + ["}"]
        self.extra_helpers[fname] = "\n".join(function)
        return before + [pragma, loop_line, f"    {fname}({var}, {self.param_names}{extra_names});", closing]

    def _reduce_groups(self, nodes: list[Node]) -> dict[Node, tuple[Node, ...]]:
        """REDUCE_LOOPs over the same ranges (the lanes of an upcast tile) are rendered as one loop
        with one accumulator each: every member maps to the whole group, in order."""
        by_ranges: dict[tuple[Node, ...], list[Node]] = defaultdict(list)
        for n in nodes:
            if n.op is Op.REDUCE_LOOP:
                by_ranges[n.arg[1]].append(n)
        return {m: tuple(group) for group in by_ranges.values() for m in group}

    def _emission_order(self, nodes: list[Node]) -> list[Node]:
        """A topological order in which each reduce group's members are adjacent (all of the
        group's inputs come before its first member)."""
        def key(n: Node) -> Node:
            return self.group_of[n][0] if n in self.group_of else n

        def preds(k: Node) -> list[Node]:
            members = self.group_of.get(k, (k,))
            return [key(s) for m in members for s in m.srcs]

        order: list[Node] = []
        seen: set[Node] = set()
        for start in nodes:
            if key(start) in seen:
                continue
            stack: list[tuple[Node, bool]] = [(key(start), False)]
            while stack:
                k, expanded = stack.pop()
                if expanded:
                    order += list(self.group_of.get(k, (k,)))
                    continue
                if k in seen:
                    continue
                seen.add(k)
                stack.append((k, True))
                for p in reversed(preds(k)):
                    if p not in seen:
                        stack.append((p, False))
        return order

    def _range_deps(self, nodes: list[Node]) -> dict[Node, frozenset[Node]]:
        deps: dict[Node, frozenset[Node]] = {}
        for n in nodes:
            if n.op is Op.RANGE:
                deps[n] = frozenset((n,))
            else:
                d = frozenset().union(*(deps[s] for s in n.srcs)) if n.srcs else frozenset()
                if n.op is Op.REDUCE_LOOP:
                    d = d - frozenset(n.arg[1])
                deps[n] = d
        return deps

    def _scopes(self, nodes: list[Node]) -> dict[Node, Node | None]:
        """Each node's innermost enclosing REDUCE_LOOP (None: the nest's body)."""
        owner_of_range: dict[Node, Node] = {}
        for n in nodes:
            if n.op is Op.REDUCE_LOOP:
                for r in n.arg[1]:
                    owner_of_range[r] = self.group_of[n][0]
        depth: dict[Node | None, int] = {None: 0}
        scope: dict[Node, Node | None] = {}
        for n in nodes:   # sources come first, so a reduce's own scope is known before its users
            owners = {owner_of_range[r] for r in self.deps[n] if r in owner_of_range}
            if n.op is Op.RANGE and n in owner_of_range:
                owners = {owner_of_range[n]}
            best: Node | None = None
            for o in owners:
                if o not in depth:
                    depth[o] = depth[scope.get(o)] + 1 if o in scope else 1
                if best is None or depth[o] > depth[best]:
                    best = o
            scope[n] = best
            if n.op is Op.REDUCE_LOOP:
                depth[n] = depth[best] + 1
        return scope

    def _loop_depths(self, nest: LoopNest, nodes: list[Node]) -> dict[Node, int]:
        """For the nodes of the nest's body (scope None): how many of the nest's loops must be open
        to compute it. A reduce that does not depend on the inner loops (a row reduce: softmax's
        max[i] under out[i, j]) is then computed once per outer iteration, with what it needs, and
        so is any loop-invariant value: Adam's step size narrowed from double goes through an asm
        barrier (render/c.py) that kept the whole update loop scalar when it sat inside it."""
        innermost = len(nest.loops)
        position = {loop.var: k + 1 for k, loop in enumerate(nest.loops)}
        depth: dict[Node, int] = {}
        for n in nodes:
            needed = [position[r] for r in self.deps[n] if r in position]
            lowest = 0 if self.invariants_above_loop else min(1, innermost)
            depth[n] = max(needed, default=lowest) if self.scope[n] is None else innermost
        # a reduce group is one loop, emitted at one depth: the deepest its members need (a member
        # whose body folded to a constant needs none); what uses a member is computed no higher
        for n in nodes:
            if n in self.group_of and self.scope[n] is None:
                depth[n] = max(depth[m] for m in self.group_of[n])
            elif self.scope[n] is None and n.srcs:
                depth[n] = max([depth[n]] + [depth[s] for s in n.srcs if self.scope[s] is None])
        self._keep_epilogue_loads_after_reduces(nodes, depth)
        return depth

    def _keep_epilogue_loads_after_reduces(self, nodes: list[Node], depth: dict[Node, int]) -> None:
        """A load that only the epilogue uses (a bias added to a matmul tile) is loaded no higher than
        the deepest reduce of the nest, not hoisted out of the loop around it: held across the reduce
        loop it takes registers the tile's accumulators need. A 6x16 AVX2 tile whose two bias vectors
        were hoisted above its row-tile loop: 41 GFLOP/s, loaded after the reduce: 85 (one Zen 3 core).
        Reloading it costs one L1 load per tile. What uses such a load moves down with it. The C
        renderer also keeps the compiler from hoisting these loads again (epilogue_loads)."""
        self.epilogue_loads: set[Node] = set()
        reduces = [n for n in nodes if n.op is Op.REDUCE_LOOP and self.scope[n] is None]
        if not reduces:
            return
        floor = max(depth[n] for n in reduces)
        feeds_reduce: set[Node] = set()
        for r in reduces:
            feeds_reduce |= set(toposort(list(r.srcs)))
        moved = False
        for n in nodes:
            if self.scope[n] is not None:
                continue
            if n.op is Op.LOAD and n not in feeds_reduce:
                self.epilogue_loads.add(n)
                if depth[n] < floor:
                    depth[n] = floor
                    moved = True
            elif moved and n.srcs:
                depth[n] = max([depth[n]] + [depth[s] for s in n.srcs if self.scope[s] is None])

    def emit_scope(self, owner: Node | None, indent: str, loop_depth: int | None = None) -> list[str]:
        """The statements of one scope (a reduce's body, or the nest's body: then, given
        loop_depth, only the nodes computed right inside that many open loops)."""
        lines: list[str] = []
        for n in self.nodes:
            if self.scope[n] is not owner or n.op in (Op.RANGE, Op.CONST):
                continue
            if owner is None and loop_depth is not None and self.loop_depth[n] != loop_depth:
                continue
            if n.op is Op.REDUCE_LOOP:
                if n is self.group_of[n][0]:
                    lines += self.render_reduce_group(self.group_of[n], indent)
                continue
            if n in self.fused_products or self.always_inline(n):
                continue
            if self.uses[n] > 1 or n in self.cross_scope or (n.op is Op.LOAD and self.uses[n] > 0):
                name = f"t{self.counter}"
                self.counter += 1
                lines.append(f"{indent}{self.value_type(n)} {name} = {self.expr(n)};")
                self.names[n] = name
        return lines

    def render_reduce_group(self, group: tuple[Node, ...], indent: str) -> list[str]:
        """One accumulation loop over the group's shared ranges, one accumulator per member (an
        array of them, one per lane, when the innermost range is a lane range)."""
        ranges = group[0].arg[1]
        lane = ranges[-1] if ranges and ranges[-1] in self.lane_ranges else None
        lines: list[str] = []
        lane_accs: dict[Node, str] = {}
        for n in group:
            acc = f"acc{self.counter}"
            self.counter += 1
            t, identity = self.value_type(n), self.accumulator_init(n)
            if lane is None:
                lines.append(f"{indent}{t} {acc} = {identity};")
                self.names[n] = acc
                continue
            v = lane.arg[0]
            lines.append(f"{indent}{t} {acc}v[{lane.arg[1]}];")
            lines.append(f"{indent}for ({self.index_type} {v} = 0; {v} < {lane.arg[1]}; {v}++) "
                         f"{acc}v[{v}] = {identity};")
            lane_accs[n] = acc
            self.names[n] = f"{acc}v[{v}]"
        inner = indent
        for r in ranges:
            v = r.arg[0]
            factor = r.arg[1] if r in self.unrolled_ranges else self.partly_unrolled.get(r)
            pragma = self.unroll_pragma(factor) if factor else ""
            if pragma:
                lines.append(inner + pragma)
            lines.append(f"{inner}for ({self.index_type} {v} = 0; {v} < {r.arg[1]}; {v}++) {{")
            inner += "  "
        lines += self.emit_scope(group[0], inner)
        for n in group:
            for bs in self.body_stores.get(n, ()):
                stored = self.to_storage(self.ref(bs.value), self.buffer_dtypes[bs.slot])
                lines.append(f"{inner}b{bs.slot}[{self.ref(bs.index)}] = {stored};")
        for n in group:
            product = self._fma_product(n)
            if product is not None:
                x, y = (self.ref(s) for s in product.srcs)
                lines.append(f"{inner}{self.names[n]} = {self.fma_fn_for(n)}({x}, {y}, {self.names[n]});")
            else:
                lines.append(inner + self.accumulate(n.arg[0], n.dtype, self.names[n], self.ref(n.srcs[0])))
        for i in range(len(ranges)):
            lines.append(indent + "  " * (len(ranges) - 1 - i) + "}")
        for n, acc in lane_accs.items():
            lanes = [f"{acc}v[{k}]" for k in range(lane.arg[1])]
            combined = self.combine_lanes(n.arg[0], n.dtype, lanes)
            lines.append(f"{indent}{self.type_name(n.dtype)} {acc} = {combined};")
            self.names[n] = acc
        return lines

    def combine_lanes(self, op: Op, dt: DType, lanes: list[str]) -> str:
        """The expression folding per-lane accumulators pairwise (a balanced tree, like a vector
        reduction: the rounding differs from a serial sum only as a lane split's does)."""
        while len(lanes) > 1:
            paired = [self.combine(op, dt, lanes[i], lanes[i + 1]) for i in range(0, len(lanes) - 1, 2)]
            lanes = paired + ([lanes[-1]] if len(lanes) % 2 else [])
        return lanes[0]

    def combine(self, op: Op, dt: DType, a: str, b: str) -> str:
        """a ⊕ b for a reduce op (the expression form of `accumulate`)."""
        if op is Op.ADD:
            return f"({a} + {b})" if not dt.is_bool else f"({a} | {b})"
        if op is Op.MUL:
            return f"({a} * {b})" if not dt.is_bool else f"({a} & {b})"
        return f"{self.max_fn(dt)}({a}, {b})"

    def unroll_pragma(self, count: int) -> str:
        """The pragma asking the compiler to unroll the next loop `count` times ("" for none)."""
        return f"#pragma GCC unroll {count}"

    def _fma_product(self, n: Node) -> Node | None:
        """The product a float sum-reduce accumulates, when it can be one fused multiply-add
        (acc = fma(a, b, acc): a dot product's one instruction per element, and exact rounding)."""
        if n.op is not Op.REDUCE_LOOP or n.arg[0] is not Op.ADD or n.dtype not in (dtypes.float32, dtypes.float64):
            return None
        body = n.srcs[0]
        if body.op is not Op.MUL or body.dtype != n.dtype or self.uses[body] != 1:
            return None
        if not all(_is_loaded_operand(s) for s in body.srcs):
            # a computed factor (exp's polynomial in a row sum): GCC 12 then does not vectorize the
            # lane-split loop around fmaf (x.exp().sum(-1) on 4096x4096: 60 ms -> 560 ms)
            return None
        return body

    def fma_fn_for(self, n: Node) -> str:
        """The fused multiply-add function for n (a reduce's accumulator, or a MULADD; vector dialects
        override)."""
        return self.fma_fn(n.dtype)

    def fma_fn(self, dt: DType) -> str:
        """The fused multiply-add function for dt (C99 names; dialects override)."""
        return "fmaf" if dt == dtypes.float32 else "fma"

    def accumulate(self, op: Op, dt: DType, acc: str, body: str) -> str:
        """The statement that folds one more value into an accumulator."""
        if op is Op.ADD:
            return f"{acc} += {body};" if not dt.is_bool else f"{acc} |= {body};"
        if op is Op.MUL:
            return f"{acc} *= {body};" if not dt.is_bool else f"{acc} &= {body};"
        return f"{acc} = {self.max_fn(dt)}({acc}, {body});"

    def always_inline(self, n: Node) -> bool:
        """n is written out at each use, never named (the C dialect: vector broadcasts)."""
        return False

    def value_type(self, n: Node) -> str:
        """The C type node n's value is computed in (the C dialect adds vector types)."""
        return self.type_name(n.dtype)

    def accumulator_init(self, n: Node) -> str:
        """The initial value of reduce n's accumulator: its op's identity."""
        return self.identity(n.arg[0], n.dtype)

    def identity(self, op: Op, dt: DType) -> str:
        if op is Op.ADD:
            return self.literal(0, dt)
        if op is Op.MUL:
            return self.literal(1, dt)
        return self.literal(dtypes.min_value(dt), dt)

    def literal(self, v: float | int | bool, dt: DType) -> str:
        if dt.is_bool:
            return "1" if v else "0"
        if dt.is_float:
            suffix = "" if dt == dtypes.float64 else "f"
            cast = "(double)" if dt == dtypes.float64 else ""
            if math.isnan(v):
                return f"{cast}NAN"
            if math.isinf(v):
                return f"{'-' if v < 0 else ''}{cast}INFINITY"
            return f"{float(v)!r}{suffix}".replace("e", "e").replace("inff", "INFINITY")
        if dt.bits == 64:
            if dt.kind == "u":
                return f"{int(v)}ull"
            if v == dtypes.min_value(dtypes.int64):
                return "(-9223372036854775807ll - 1)"
            return f"{int(v)}ll"
        if dt.kind == "u":
            return f"{int(v)}u"
        if v == dtypes.min_value(dtypes.int32) and dt.bits == 32:
            return "(-2147483647 - 1)"
        return f"({self.type_name(dt)}){int(v)}" if dt.bits < 32 else str(int(v))

    def ref(self, n: Node) -> str:
        """The expression that refers to n: its name if it has one, else n itself inlined."""
        name = self.names.get(n)
        return name if name is not None else self.expr(n)

    def max_fn(self, dt: DType) -> str:
        t = self.type_name(dt)
        fname = f"lt_max_{dt.name}"
        if dt.is_float:
            body = "return ((a > b) | (a != a)) ? a : b;"   # | not ||: no branch, so loops vectorize
        else:
            body = "return a > b ? a : b;"
        self.extra_helpers[fname] = f"{self.helper_prefix} {t} {fname}({t} a, {t} b) {{ {body} }}"
        return fname

    def bitcast_fn(self, src: DType, dst: DType) -> str:
        fname = f"lt_bitcast_{src.name}_{dst.name}"
        ts, td = self.type_name(src), self.type_name(dst)
        stored_s, stored_d = self.storage_type(src), self.storage_type(dst)
        to_bits = self.to_storage("a", src)
        from_bits = self.from_storage("y", dst)
        self.extra_helpers[fname] = (
            f"{self.helper_prefix} {td} {fname}({ts} a) {{ {stored_s} x = {to_bits}; {stored_d} y; "
            f"{self.bit_copy('y', 'x', stored_d)} return {from_bits}; }}")
        return fname

    def to_storage(self, expr: str, dt: DType) -> str:
        expr = self._without_rounding(expr, dt)   # the 16-bit pattern of a rounded value: round once
        if dt == dtypes.float16:
            self.helpers_used.add("f2h")
            return f"lt_f2h({expr})"
        if dt == dtypes.bfloat16:
            self.helpers_used.add("f2bf")
            return f"lt_f2bf({expr})"
        return expr

    def from_storage(self, expr: str, dt: DType) -> str:
        if dt == dtypes.float16:
            self.helpers_used.add("h2f")
            return f"lt_h2f({expr})"
        if dt == dtypes.bfloat16:
            self.helpers_used.add("bf2f")
            return f"lt_bf2f({expr})"
        return expr

    def round_to(self, expr: str, dt: DType) -> str:
        """expr (a float) rounded to the 16-bit float type dt, as a float: a round trip through dt's
        bit pattern."""
        return self.from_storage(self.to_storage(expr, dt), dt)

    def _without_rounding(self, expr: str, dt: DType) -> str:
        """expr without an outer round_to(…, dt), if it has one (else expr unchanged)."""
        if dt not in HALF_TYPES:
            return expr
        prefix = "lt_h2f(lt_f2h(" if dt == dtypes.float16 else "lt_bf2f(lt_f2bf("
        if not (expr.startswith(prefix) and expr.endswith("))")):
            return expr
        inner = expr[len(prefix):-2]
        depth = 0
        for ch in inner:    # the prefix's parentheses must close at the very end, not before
            depth += 1 if ch == "(" else -1 if ch == ")" else 0
            if depth < 0:
                return expr
        return inner if depth == 0 else expr

    def render_store(self, kernel: LoopKernel, st: Store) -> str:
        dt = kernel.buffers[st.slot].dtype
        target = f"b{st.slot}[{self.ref(st.index)}]"
        value = self.ref(st.value)
        if st.reduce_op is None:
            return f"{target} = {self.to_storage(value, dt)};"
        current = self.from_storage(target, dt)
        if st.reduce_op is Op.ADD:
            combined = f"({current} + {value})" if not dt.is_bool else f"({current} | {value})"
        elif st.reduce_op is Op.MUL:
            combined = f"({current} * {value})" if not dt.is_bool else f"({current} & {value})"
        else:
            combined = f"{self.max_fn(dt)}({current}, {value})"
        return f"{target} = {self.to_storage(combined, dt)};"

    def expr(self, n: Node) -> str:
        """n as a C expression over its sources' references. A float16/bfloat16 result is computed
        in float and rounded to its dtype after every op, as PyTorch does (not only when stored)."""
        text = self.unrounded_expr(n)
        if n.dtype in HALF_TYPES and n.op in ROUNDED_OPS:
            return self.round_to(text, n.dtype)
        if n.dtype.is_int and n.dtype.bits < 32 and n.op in WRAPPED_OPS:
            return f"(({self.type_name(n.dtype)}){text})"   # C computes in int: wrap like an int8 op
        return text

    def unrounded_expr(self, n: Node) -> str:
        """n as a C expression, a 16-bit float result left in float (see expr)."""
        op, dt = n.op, n.dtype
        s = [self.ref(x) for x in n.srcs]
        if op is Op.CONST:
            return self.literal(n.arg, dt)
        if op is Op.RANGE:
            return n.arg[0]
        if op is Op.LOAD:
            if len(s) == 2:
                return self.gated_load(n.arg, s[0], s[1], dt)
            return self.from_storage(f"b{n.arg}[{s[0]}]", dt)
        if op is Op.CHECK_INDEX:
            self.helpers_used.add("check")
            return f"lt_check({s[0]}, {self.literal(n.arg[0], dtypes.int64)}, err)"
        if op is Op.CAST:
            if dt.is_bool:
                return f"({s[0]} != 0)"
            if dt == dtypes.float32 and n.srcs[0].dtype == dtypes.float64:
                return self.narrow_to_float32(s[0])
            return f"(({self.type_name(dt)}){s[0]})"
        if op is Op.BITCAST:
            return f"{self.bitcast_fn(n.srcs[0].dtype, dt)}({s[0]})"
        if op is Op.NEG:   # (-(-1ll)), not (--1ll): a negated literal (a peeled border's index)
            return s[0] if dt.is_bool else f"(-({s[0]}))" if s[0].startswith("-") else f"(-{s[0]})"
        if op in (Op.EXP2, Op.LOG2, Op.SIN, Op.COS, Op.SQRT, Op.TRUNC):
            return f"{self.math_fn(op.name.lower(), dt)}({s[0]})"
        if op is Op.RECIPROCAL:
            return f"({self.literal(1, dt)} / {s[0]})"
        if op is Op.WHERE:
            return self.select(s[0], s[1], s[2], dt)
        if op is Op.MULADD:
            return f"{self.fma_fn_for(n)}({s[0]}, {s[1]}, {s[2]})"
        if op is Op.MAX:
            return f"{self.max_fn(dt)}({s[0]}, {s[1]})"
        if op is Op.ADD and dt.is_bool:
            return f"({s[0]} | {s[1]})"
        if op is Op.MUL and dt.is_bool:
            return f"({s[0]} & {s[1]})"
        if op is Op.MOD and dt.is_float:
            return f"{self.math_fn('fmod', dt)}({s[0]}, {s[1]})"
        if op in (Op.IDIV, Op.MOD):
            return self.int_division(op, dt, s[0], s[1], n.srcs[1])
        symbols = {Op.ADD: "+", Op.MUL: "*", Op.FDIV: "/", Op.CMPLT: "<", Op.CMPNE: "!=", Op.AND: "&",
                   Op.OR: "|", Op.XOR: "^", Op.SHL: "<<", Op.SHR: ">>"}
        if op in symbols:
            return f"({s[0]} {symbols[op]} {s[1]})"
        raise ValueError(f"renderer cannot render {op}")

    def int_division(self, op: Op, dt: DType, a: str, b: str, divisor: Node | None = None) -> str:
        """C integer / and %, made total: x/0 flags an error (raised after the kernel), x/-1 wraps.
        A positive constant divisor (all index math) needs no guard."""
        if divisor is not None and divisor.op is Op.CONST and divisor.arg > 0:
            return f"({a} {'/' if op is Op.IDIV else '%'} {b})"
        t = self.type_name(dt)
        fname = f"lt_{op.name.lower()}_{dt.name}"
        if dt.kind == "u":
            guard = ""
        else:
            neg = f"({t})(0 - ({self.type_name(dtypes.uint64)})a)" if op is Op.IDIV else "0"
            guard = f"if (b == -1) return {neg}; "
        expr = "a / b" if op is Op.IDIV else "a % b"
        self.extra_helpers[fname] = (f"{self.helper_prefix} {t} {fname}({t} a, {t} b, "
                                     f"{self.global_qualifier}{self.type_name(dtypes.int64)}* err) {{ "
                                     f"if (b == 0) {{ err[0] = 2; return 0; }} {guard}return {expr}; }}")
        return f"{fname}({a}, {b}, err)"

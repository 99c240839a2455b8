"""The shared GPU rendering of a LoopKernel (OpenCL C and CUDA C differ only in the hooks).

Each nest becomes one kernel function, launched as codegen/gpu.py's `plan_nest` says:
"threads" maps the flattened output loops onto the global work-item index; "group_reduce"
gives each output a work-group whose work-items split the top-level reduce loops and combine
their partial results through local memory; "tiled_matmul" gives each work-group a square block
of outputs and stages the reduce's operands through local memory in chunks (render_tiled_nest);
"serial" renders the C loops for one work-item.
A kernel with several nests (a scatter: copy the base, then scatter) is several functions,
launched in order on one queue/stream.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lazytensor.codegen.gpu import NestLaunch, TiledMatmul, plan_nest, plan_tiled_matmul
from lazytensor.codegen.kernel import LoopKernel, LoopNest, Store
from lazytensor.codegen.render.cstyle import C_HELPERS, CStyleRenderer, helpers_in_order

from lazytensor import symbolic as sym
from lazytensor.dtypes import DType
from lazytensor.graph import Node
from lazytensor.ops import Op

NEST_STATE = ("group_of", "deps", "scope", "uses", "cross_scope", "loop_depth", "fused_products", "names",
              "nodes", "counter")
"""What prepare_nest sets up for one nest: saved and restored around a fragment (render_fragment)."""


@dataclass(frozen=True)
class Launch:
    """One kernel function of a program and its 1-D launch: global work-items, work-group size."""
    function: str
    global_size: int
    local_size: int


class GPURenderer(CStyleRenderer):
    """C-style rendering for devices that run a kernel as a grid of work-items."""
    local_qualifier = ""

    # ---- dialect hooks ----
    def global_id(self) -> str:
        raise NotImplementedError

    def group_id(self) -> str:
        raise NotImplementedError

    def local_id(self) -> str:
        raise NotImplementedError

    def barrier(self) -> str:
        raise NotImplementedError

    def bits_to_float(self, expr: str) -> str:
        raise NotImplementedError

    def float_to_bits(self, expr: str) -> str:
        raise NotImplementedError

    def local_type(self, dt: DType) -> str:
        """The type of a local-memory slot holding a partial result of dtype dt."""
        return self.type_name(dt)

    def preamble_for(self, body: str) -> list[str]:
        """Lines before the helpers, given the rendered functions (to see what they use)."""
        return []

    def helper_source(self, name: str) -> str:
        """The CPU helpers with this dialect's float<->bits casts, qualifiers and index type."""
        src = C_HELPERS[name]
        src = src.replace("float f; __builtin_memcpy(&f, &bits, 4); return f;",
                          f"return {self.bits_to_float('bits')};")
        src = src.replace("unsigned int x; __builtin_memcpy(&x, &f, 4);",
                          f"unsigned int x = {self.float_to_bits('f')};")
        src = src.replace("long long* err", f"{self.global_qualifier}{self.index_type}* err")
        src = src.replace("long long", self.index_type)
        src = src.replace("static inline", self.helper_prefix)
        src = re.sub(r"\bhalf\b", "hbits", src)     # `half` is a type name in OpenCL C
        assert "__builtin_memcpy" not in src, name
        return src

    # ---- rendering ----
    def function_name(self, kernel: LoopKernel, index: int, name: str | None = None) -> str:
        base = name or kernel.name
        return base if len(kernel.nests) == 1 else f"{base}_{index}"

    def launches(self, kernel: LoopKernel, name: str | None = None) -> list[Launch]:
        """The functions of the rendered program, in launch order, with their launch sizes."""
        out = []
        for i, nest in enumerate(kernel.nests):
            plan = plan_nest(nest)
            out.append(Launch(self.function_name(kernel, i, name), plan.global_size, plan.local_size))
        return out

    def launch_options(self, kernel: LoopKernel) -> dict:
        """What the runtime needs besides the source: the launches and whether err is written."""
        return {"launches": self.launches(kernel), "checks_errors": kernel.checks_errors}

    def render(self, kernel: LoopKernel, name: str | None = None) -> str:
        self.helpers_used = set()
        self.extra_helpers = {}
        self.cooperative = False
        self.tiled: TiledMatmul | None = None
        params = ", ".join(self.kernel_params(kernel))
        functions: list[str] = []
        for i, nest in enumerate(kernel.nests):
            plan = plan_nest(nest)
            self.local_decls: list[str] = []
            if plan.mode == "serial":
                body = self.render_nest(kernel, nest)
            else:
                body = self.render_parallel_nest(kernel, nest, plan)
            fname = self.function_name(kernel, i, name)
            functions.append("\n".join([f"{self.kernel_prefix}void {fname}({params}) {{"]
                                       + self.local_decls + body + ["}"]))
        helpers = [self.helper_source(h) for h in helpers_in_order(self.helpers_used)]
        helpers += list(self.extra_helpers.values())
        text = "\n".join(helpers + functions)
        return "\n".join(self.preamble_for(text) + [text, ""])

    def split_index(self, flat: str, loops: list[tuple[str, int]], indent: str) -> list[str]:
        """Declare each loop variable from a flat index (the last loop varies fastest)."""
        lines = []
        rest = flat
        for k in range(len(loops) - 1, -1, -1):
            var, size = loops[k]
            if k == 0:
                lines.append(f"{indent}{self.index_type} {var} = {rest};")
            else:
                lines.append(f"{indent}{self.index_type} {var} = {rest} % {size};")
                quotient = f"q_{var}"
                lines.append(f"{indent}{self.index_type} {quotient} = {rest} / {size};")
                rest = quotient
        return lines

    def render_parallel_nest(self, kernel: LoopKernel, nest: LoopNest, plan: NestLaunch) -> list[str]:
        if plan.mode == "tiled_matmul":
            return self.render_tiled_nest(kernel, nest)
        self.prepare_nest(nest)
        self.cooperative = plan.mode == "group_reduce"
        indent = "  "
        loops = [(loop.var.arg[0], loop.size) for loop in nest.loops]
        lines: list[str] = []
        if self.cooperative:
            lines.append(f"{indent}{self.index_type} gid = {self.group_id()};")
            lines.append(f"{indent}{self.index_type} lid = {self.local_id()};")
        else:
            lines.append(f"{indent}{self.index_type} gid = {self.global_id()};")
            lines.append(f"{indent}if (gid >= {plan.outputs}) return;")
        lines += self.split_index("gid", loops, indent)
        lines += self.emit_scope(None, indent)
        stores = [indent + self.render_store(kernel, st) for st in nest.stores]
        if self.cooperative:   # every work-item holds the result; one writes it
            lines.append(f"{indent}if (lid == 0) {{")
            lines += ["  " + line for line in stores]
            lines.append(f"{indent}}}")
        else:
            lines += stores
        self.cooperative = False
        return lines

    def render_reduce_group(self, group: tuple[Node, ...], indent: str) -> list[str]:
        if self.tiled is not None and group == (self.tiled.reduce,):
            return []    # rendered ahead of the epilogue by render_tiled_nest; named acc[tm_u][tm_v]
        if not self.cooperative or self.scope[group[0]] is not None:
            return super().render_reduce_group(group, indent)
        return self.render_cooperative_reduce(group, indent)

    def render_cooperative_reduce(self, group: tuple[Node, ...], indent: str) -> list[str]:
        """A top-level reduce split across the work-group: strided partial sums, then a tree
        combine in local memory (log2(group size) steps, a barrier after each)."""
        from lazytensor.codegen.gpu import REDUCE_GROUP_SIZE
        ranges = group[0].arg[1]
        total = 1
        for r in ranges:
            total *= r.arg[1]
        lines: list[str] = []
        for n in group:
            acc = f"acc{self.counter}"
            self.counter += 1
            lines.append(f"{indent}{self.type_name(n.dtype)} {acc} = {self.identity(n.arg[0], n.dtype)};")
            self.names[n] = acc
        flat = f"rq{self.counter}"
        self.counter += 1
        lines.append(f"{indent}for ({self.index_type} {flat} = lid; {flat} < {total}; "
                     f"{flat} += {REDUCE_GROUP_SIZE}) {{")
        inner = indent + "  "
        lines += self.split_index(flat, [(r.arg[0], r.arg[1]) for r in ranges], inner)
        lines += self.emit_scope(group[0], inner)
        for n in group:
            lines.append(inner + self.accumulate(n.arg[0], n.dtype, self.names[n], self.ref(n.srcs[0])))
        lines.append(f"{indent}}}")
        for n in group:
            lines += self.combine_in_local_memory(n, indent, REDUCE_GROUP_SIZE)
        return lines

    def combine_in_local_memory(self, n: Node, indent: str, size: int) -> list[str]:
        acc = self.names[n]
        scratch = f"red_{acc}"
        self.local_decls.append(f"  {self.local_qualifier}{self.local_type(n.dtype)} {scratch}[{size}];")
        mine, other = f"{scratch}[lid]", f"{scratch}[lid + s]"
        return [
            f"{indent}{mine} = {acc};",
            f"{indent}{self.barrier()};",
            f"{indent}for (int s = {size // 2}; s > 0; s >>= 1) {{",
            f"{indent}  if (lid < s) {mine} = {self.combine(n.arg[0], n.dtype, mine, other)};",
            f"{indent}  {self.barrier()};",
            f"{indent}}}",
            f"{indent}{acc} = {scratch}[0];",
        ]

    def combine(self, op: Op, dt: DType, a: str, b: str) -> str:
        """Two partial results of a reduce, combined."""
        if op is Op.ADD:
            return f"({a} | {b})" if dt.is_bool else f"({a} + {b})"
        if op is Op.MUL:
            return f"({a} & {b})" if dt.is_bool else f"({a} * {b})"
        return f"{self.max_fn(dt)}({a}, {b})"

    # ---- tiled matmul: operands staged through local memory ----
    def render_tiled_nest(self, kernel: LoopKernel, nest: LoopNest) -> list[str]:
        """One work-group per (batch element, output block). Work-item (tm_li, tm_lj) owns the
        outputs (block row + tm_li + tile * u, block column + tm_lj + tile * v) of its register tile.
        The reduce runs first (render_tiled_reduce); then, per register-tile element, the rest of
        the stored value (the epilogue) and the store. Work-items past the matrix edge still take
        part in the loads and barriers: their row/column is clamped so every read is in bounds, and
        their store is skipped."""
        tiled = plan_tiled_matmul(nest)
        assert tiled is not None, "render_tiled_nest needs a nest that plan_tiled_matmul accepts"
        self.prepare_nest(nest)
        self.tiled = tiled
        size, index = tiled.tile, self.index_type
        indent = "  "
        row, col = nest.loops[tiled.row], nest.loops[tiled.col]
        self.tiled_loops = (row, col)
        lines = [f"{indent}{index} gid = {self.group_id()};",
                 f"{indent}{index} lid = {self.local_id()};",
                 f"{indent}{index} tm_li = lid / {size};",
                 f"{indent}{index} tm_lj = lid % {size};"]
        group_loops = [(loop.var.arg[0], loop.size) for pos, loop in enumerate(nest.loops)
                       if pos not in (tiled.row, tiled.col)]
        group_loops += [("tm_ti", -(-row.size // tiled.block_rows)),
                        ("tm_tj", -(-col.size // tiled.block_cols))]
        lines += self.split_index("gid", group_loops, indent)
        lines += self.render_tiled_reduce(tiled.reduce, indent)
        inner = indent + "    "
        lines += [f"{indent}{self.unroll_all()}",
                  f"{indent}for (int tm_u = 0; tm_u < {tiled.rows_per_item}; tm_u++) {{",
                  f"{indent}  {self.unroll_all()}",
                  f"{indent}  for (int tm_v = 0; tm_v < {tiled.cols_per_item}; tm_v++) {{",
                  f"{inner}{index} tm_i = tm_ti * {tiled.block_rows} + tm_li + {size} * tm_u;",
                  f"{inner}{index} tm_j = tm_tj * {tiled.block_cols} + tm_lj + {size} * tm_v;",
                  f"{inner}{index} {row.var.arg[0]} = tm_i < {row.size} ? tm_i : {row.size - 1};",
                  f"{inner}{index} {col.var.arg[0]} = tm_j < {col.size} ? tm_j : {col.size - 1};"]
        lines += self.emit_scope(None, inner)
        lines.append(f"{inner}if (tm_i < {row.size} && tm_j < {col.size}) {{")
        lines += [f"{inner}  {self.render_store(kernel, st)}" for st in nest.stores]
        lines += [f"{inner}}}", f"{indent}  }}", f"{indent}}}"]
        self.tiled = None
        return lines

    def unroll_all(self) -> str:
        """The pragma that unrolls the next (constant-count) loop completely: nvcc and OpenCL C."""
        return "#pragma unroll"

    def render_tiled_reduce(self, n: Node, indent: str) -> list[str]:
        """acc[u][v] = sum_k a * b in chunks of `tile` k-steps: the work-items load the A chunk
        (block rows x chunk) and the B chunk (chunk x block columns) into local memory, each
        element once, zero past the edges; barrier; each work-item accumulates its register tile
        from local memory (one A value per row and one B value per column per k-step); barrier
        (before the next chunk overwrites the tiles). Afterwards the reduce's value is acc[tm_u][tm_v]."""
        tiled = self.tiled
        assert tiled is not None
        size, index, length = tiled.tile, self.index_type, tiled.k.arg[1]
        rows, cols = tiled.rows_per_item, tiled.cols_per_item
        (row, col) = self.tiled_loops
        fused = self._fma_product(n) is not None
        acc = f"acc{self.counter}"
        self.counter += 1
        # a's row and k, b's k and column, as this work-item's load coordinates
        load_row, load_ka = sym.loop_var("tm_ai", row.size), sym.loop_var("tm_ak", length)
        load_kb, load_col = sym.loop_var("tm_bk", length), sym.loop_var("tm_bj", col.size)
        (a_value,) = sym.substitute([tiled.a], {row.var: load_row, tiled.k: load_ka})
        (b_value,) = sym.substitute([tiled.b], {col.var: load_col, tiled.k: load_kb})
        a_tile, b_tile = f"tm_a_{acc}", f"tm_b_{acc}"
        self.local_decls += [
            f"  {self.local_qualifier}{self.local_type(a_value.dtype)} {a_tile}[{tiled.block_rows * size}];",
            f"  {self.local_qualifier}{self.local_type(b_value.dtype)} {b_tile}[{size * tiled.block_cols}];"]
        t = self.type_name(n.dtype)
        inner, inner2 = indent + "  ", indent + "    "
        lines = [f"{indent}{t} {acc}[{rows}][{cols}];",
                 f"{indent}{self.unroll_all()}",
                 f"{indent}for (int tm_u = 0; tm_u < {rows}; tm_u++) {{",
                 f"{indent}  {self.unroll_all()}",
                 (f"{indent}  for (int tm_v = 0; tm_v < {cols}; tm_v++) {acc}[tm_u][tm_v] = "
                  f"{self.identity(Op.ADD, n.dtype)};"),
                 f"{indent}}}",
                 f"{indent}for ({index} tm_k0 = 0; tm_k0 < {length}; tm_k0 += {size}) {{",
                 f"{inner}for (int tm_u = 0; tm_u < {rows}; tm_u++) {{",
                 f"{inner2}{index} tm_ai = tm_ti * {tiled.block_rows} + tm_li + {size} * tm_u;",
                 f"{inner2}{index} tm_ak = tm_k0 + tm_lj;"]
        lines += self.load_tile_element(f"{a_tile}[(tm_li + {size} * tm_u) * {size} + tm_lj]", a_value,
                                        f"tm_ai < {row.size} && tm_ak < {length}", inner2)
        lines += [f"{inner}}}",
                  f"{inner}for (int tm_v = 0; tm_v < {cols}; tm_v++) {{",
                  f"{inner2}{index} tm_bk = tm_k0 + tm_li;",
                  f"{inner2}{index} tm_bj = tm_tj * {tiled.block_cols} + tm_lj + {size} * tm_v;"]
        lines += self.load_tile_element(f"{b_tile}[tm_li * {tiled.block_cols} + tm_lj + {size} * tm_v]",
                                        b_value, f"tm_bk < {length} && tm_bj < {col.size}", inner2)
        lines += [f"{inner}}}", f"{inner}{self.barrier()};"]
        x, y = "tm_x[tm_u]", "tm_y[tm_v]"
        if fused:
            step = f"{acc}[tm_u][tm_v] = {self.fma_fn(n.dtype)}({x}, {y}, {acc}[tm_u][tm_v]);"
        else:
            step = self.accumulate(Op.ADD, n.dtype, f"{acc}[tm_u][tm_v]", f"({x} * {y})")
        lines += [f"{inner}for (int tm_kk = 0; tm_kk < {size}; tm_kk++) {{",
                  f"{inner2}{t} tm_x[{rows}];",
                  f"{inner2}{t} tm_y[{cols}];",
                  f"{inner2}{self.unroll_all()}",
                  (f"{inner2}for (int tm_u = 0; tm_u < {rows}; tm_u++) "
                   f"tm_x[tm_u] = {a_tile}[(tm_li + {size} * tm_u) * {size} + tm_kk];"),
                  f"{inner2}{self.unroll_all()}",
                  (f"{inner2}for (int tm_v = 0; tm_v < {cols}; tm_v++) "
                   f"tm_y[tm_v] = {b_tile}[tm_kk * {tiled.block_cols} + tm_lj + {size} * tm_v];"),
                  f"{inner2}{self.unroll_all()}",
                  f"{inner2}for (int tm_u = 0; tm_u < {rows}; tm_u++) {{",
                  f"{inner2}  {self.unroll_all()}",
                  f"{inner2}  for (int tm_v = 0; tm_v < {cols}; tm_v++) {step}",
                  f"{inner2}}}",
                  f"{inner}}}",
                  f"{inner}{self.barrier()};",
                  f"{indent}}}"]
        self.names[n] = f"{acc}[tm_u][tm_v]"
        return lines

    def load_tile_element(self, target: str, value: Node, in_bounds: str, indent: str) -> list[str]:
        """target = value where in_bounds holds, else 0 (nothing is read out of bounds)."""
        inner = indent + "  "
        body, expr = self.render_fragment(value, inner + "  ")
        return [f"{indent}{{",
                f"{inner}{self.type_name(value.dtype)} tm_val = {self.literal(0, value.dtype)};",
                f"{inner}if ({in_bounds}) {{"] + body + [
                f"{inner}  tm_val = {expr};",
                f"{inner}}}",
                f"{inner}{target} = tm_val;",
                f"{indent}}}"]

    def render_fragment(self, value: Node, indent: str) -> tuple[list[str], str]:
        """Statements computing a scalar expression on its own, and the expression naming it.
        The nest's rendering state is kept aside meanwhile; the fragment's temporaries belong in
        a block of their own (their names restart at t0)."""
        saved = {name: getattr(self, name) for name in NEST_STATE}
        self.prepare_nest(LoopNest((), (Store(0, sym.const(0), value),)))
        lines = self.emit_scope(None, indent)
        expr = self.ref(value)
        for name, state in saved.items():
            setattr(self, name, state)
        return lines, expr

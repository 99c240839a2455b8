"""The shared GPU rendering of a LoopKernel (OpenCL C and CUDA C differ only in the hooks).

Each nest becomes one kernel function, launched as codegen/gpu.py's `plan_nest` says:
"threads" maps the flattened output loops onto the global work-item index; "group_reduce"
gives each output a work-group whose work-items split the top-level reduce loops and combine
their partial results through local memory; "serial" renders the C loops for one work-item.
A kernel with several nests (a scatter: copy the base, then scatter) is several functions,
launched in order on one queue/stream.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lazytensor.codegen.gpu import NestLaunch, plan_nest
from lazytensor.codegen.kernel import LoopKernel, LoopNest
from lazytensor.codegen.render.cstyle import C_HELPERS, CStyleRenderer

from lazytensor.dtypes import DType
from lazytensor.graph import Node
from lazytensor.ops import Op


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
        helpers = [self.helper_source(h) for h in sorted(self.helpers_used)]
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

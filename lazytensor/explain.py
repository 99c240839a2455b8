"""Text explanations of a schedule: the kernels a realize would run and why each exists.

`lt.explain(t)` prints them for a tensor; `DEBUG=3` prints the same (plus each kernel's AST)
during realize. The cost estimates here (FLOPs, bytes) are also what the profiler and the VIZ
page report, so all three agree.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from lazytensor.graph import Node, toposort
from lazytensor.ops import ELEMENTWISE, MOVEMENT, Op
from lazytensor.schedule import ScheduleItem, create_schedule

if TYPE_CHECKING:
    from lazytensor.tensor import Tensor


def describe(node: Node) -> str:
    """'float32[64, 10]': a value's dtype and shape as users read them."""
    return f"{node.dtype.name}{list(node.shape)}"


def estimate_ast_cost(ast: Node) -> tuple[int, int]:
    """(FLOPs, bytes) of one kernel AST: one op per element of every elementwise op and of every
    reduce's input, plus the bytes of every input slot read once and of the output written once."""
    flops = 0
    outputs = ast.srcs if ast.op is Op.OUTPUTS else (ast,)   # (a kernel with several outputs)
    nbytes = sum(out.numel * out.dtype.itemsize for out in outputs)
    for n in toposort([ast]):
        if n.op in ELEMENTWISE:
            flops += n.numel
        elif n.op is Op.REDUCE:
            flops += n.srcs[0].numel
        elif n.op is Op.DEFINE_BUF:
            nbytes += n.numel * n.dtype.itemsize
    return flops, nbytes


def estimate_cost(item: ScheduleItem) -> tuple[int, int]:
    """(FLOPs, bytes) of one schedule item (a device copy moves its bytes and computes nothing)."""
    if item.kind == "copy":
        return 0, 2 * item.output.numel * item.output.dtype.itemsize
    if item.kind == "alloc":   # its bytes count in the kernel that writes it
        return 0, 0
    return estimate_ast_cost(item.ast)


def summarize_ops(ops: list[str] | tuple[str, ...]) -> str:
    """'add mul add exp' → 'add×2 mul exp' (first-appearance order)."""
    counts: dict[str, int] = {}
    for op in ops:
        counts[op] = counts.get(op, 0) + 1
    return " ".join(name if n == 1 else f"{name}×{n}" for name, n in counts.items())


def format_count(n: float, unit: str) -> str:
    """12_300_000, 'FLOP' → '12.3 MFLOP'."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {prefix}{unit}"
    return f"{n:.0f} {unit}"


def render_ast(ast: Node) -> list[str]:
    """A kernel AST as numbered lines, one per op, sources before users: `%3 = mul %1 %2`.

    Movement ops are shown with their argument, so the index math a kernel does is visible."""
    lines: list[str] = []
    number: dict[int, int] = {}
    for n in toposort([ast]):
        number[id(n)] = len(number)
        srcs = " ".join(f"%{number[id(s)]}" for s in n.srcs)
        if n.op is Op.DEFINE_BUF:
            detail = f"input slot {n.arg}"
        elif n.op is Op.CONST:
            detail = repr(n.arg)
        elif n.op is Op.REDUCE:
            detail = f"{n.arg[0].name.lower()} over axes {tuple(n.arg[1])} {srcs}"
        elif n.op in MOVEMENT:
            detail = f"{n.arg} {srcs}"
        else:
            detail = srcs
        head = f"%{number[id(n)]} = {n.op.name.lower()}"
        lines.append(f"{head} {detail} : {describe(n)}" if detail else f"{head} : {describe(n)}")
    return lines


def explain_schedule(items: list[ScheduleItem], show_ast: bool = False) -> str:
    """One block per kernel: output, where each input comes from, fused ops, the reason for its
    boundary, who reads its output, and the estimated cost; a total line at the end."""
    n_kernels = sum(1 for i in items if i.kind == "kernel")
    n_copies = sum(1 for i in items if i.kind == "copy")
    lines = [f"schedule: {n_kernels} kernel(s), {n_copies} copy(ies)"]
    if not items:
        lines[0] += " (nothing to compute: every value is already realized)"
        return "\n".join(lines)
    produced_by = {item.output: k for k, item in enumerate(items)}
    readers: dict[int, list[int]] = {k: [] for k in range(len(items))}
    for k, item in enumerate(items):
        for src in item.read_inputs:
            if src in produced_by:
                readers[produced_by[src]].append(k)
    total_flops = total_bytes = 0
    for k, item in enumerate(items):
        flops, nbytes = estimate_cost(item)
        total_flops += flops
        total_bytes += nbytes
        lines.append(f"  [{k}] {item.kind} -> {describe(item.output)} on {item.device}")
        lines.append(f"      why:    {item.reason}")
        if item.fused_ops:
            lines.append(f"      fused:  {summarize_ops(item.fused_ops)}")
        if item.read_inputs:
            sources = []
            for src in item.read_inputs:
                origin = f"[{produced_by[src]}]" if src in produced_by else "buffer"
                sources.append(f"{describe(src)} from {origin}")
            lines.append(f"      inputs: {', '.join(sources)}")
        if item.extra_outputs:
            written = ", ".join(f"[{produced_by[n]}] {describe(n)}" for n in item.extra_outputs)
            lines.append(f"      also writes: {written}")
        if readers[k]:
            lines.append(f"      read by: {', '.join(f'[{j}]' for j in readers[k])}")
        lines.append(f"      cost:   ~{format_count(flops, 'FLOP')}, {format_count(nbytes, 'B')}")
        if show_ast and item.kind == "kernel":
            lines.append("      ast:")
            lines += [f"        {line}" for line in render_ast(item.ast)]
    lines.append(f"  total: ~{format_count(total_flops, 'FLOP')}, {format_count(total_bytes, 'B')} moved")
    return "\n".join(lines)


def explain(*tensors: "Tensor", show_ast: bool = False) -> str:
    """Print (and return) the kernels realizing the tensors would run: fused ops, inputs and
    outputs, the reason for every kernel boundary, estimated FLOPs and bytes. Runs nothing."""
    if not tensors:
        raise TypeError("explain() needs at least one tensor, e.g. lt.explain(loss)")
    devices = {t.device for t in tensors}
    blocks = []
    for device in sorted(devices):
        roots = [t.node for t in tensors if t.device == device]
        items, _ = create_schedule(roots, device)
        blocks.append(explain_schedule(items, show_ast=show_ast))
    text = "\n".join(blocks)
    print(text)
    return text

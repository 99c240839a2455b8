"""Text explanations of a schedule: the kernels a realize would run and why each exists."""
from __future__ import annotations

from lazytensor.graph import Node
from lazytensor.schedule import ScheduleItem


def _describe(node: Node) -> str:
    return f"{node.dtype.name}{list(node.shape)}"


def estimate_cost(item: ScheduleItem) -> tuple[int, int]:
    """(FLOPs, bytes) of one item: ops fused × elements, plus input and output bytes."""
    from lazytensor.graph import toposort
    from lazytensor.ops import ELEMENTWISE, Op
    flops = 0
    for n in toposort([item.ast]):
        if n.op in ELEMENTWISE:
            flops += n.numel
        elif n.op is Op.REDUCE:
            flops += n.srcs[0].numel
    nbytes = item.output.numel * item.output.dtype.itemsize
    nbytes += sum(n.numel * n.dtype.itemsize for n in item.inputs)
    return flops, nbytes


def summarize_ops(ops: list[str]) -> str:
    """'add mul add exp' → 'add×2 mul exp' (first-appearance order)."""
    counts: dict[str, int] = {}
    for op in ops:
        counts[op] = counts.get(op, 0) + 1
    return " ".join(name if n == 1 else f"{name}×{n}" for name, n in counts.items())


def explain_schedule(items: list[ScheduleItem]) -> str:
    """One block per kernel: output, inputs, fused ops, the reason for its boundary, cost."""
    lines = [f"schedule: {sum(1 for i in items if i.kind == 'kernel')} kernel(s), "
             f"{sum(1 for i in items if i.kind == 'copy')} copy(ies)"]
    for k, item in enumerate(items):
        flops, nbytes = estimate_cost(item)
        lines.append(f"  [{k}] {item.kind} -> {_describe(item.output)} on {item.device}")
        lines.append(f"      why:    {item.reason}")
        if item.fused_ops:
            lines.append(f"      fused:  {summarize_ops(item.fused_ops)}")
        if item.inputs:
            lines.append(f"      inputs: {', '.join(_describe(n) for n in item.inputs)}")
        lines.append(f"      cost:   ~{flops} FLOPs, {nbytes} bytes")
    return "\n".join(lines)

"""Schedules cached by graph structure, so the same computation on new data is not re-scheduled.

A training loop builds a structurally identical graph every step: the same ops over new parameter
buffers. `structure_key` describes a graph with its buffers abstracted to numbered inputs; a `Plan`
is a schedule with every buffer reference replaced by such a number (and every earlier kernel's
output by its position), so it holds no data and can be replayed on the buffers of any graph with
the same key.
"""
from __future__ import annotations

import functools

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from lazytensor.graph import Node
from lazytensor.ops import Op
from lazytensor.schedule import REALIZED, ScheduleItem

_BUFFER = Op.BUFFER   # (read through the enum class, a member costs ~80 ns: see graph.py)

PLAN_CACHE_SIZE = 256
"""Structures remembered (least recently used are dropped)."""

Ref = tuple[str, int]
"""Where a value comes from: ("input", k) is the k-th buffer of the graph, ("item", j) the output
of the plan's j-th step."""


@dataclass(frozen=True)
class PlannedStep:
    """One kernel launch or device copy of a plan, with data-free references to its operands."""
    kind: str              # "kernel", "copy" or "alloc" (an output buffer of the next kernel)
    ast: Node              # kernel AST over DEFINE_BUF slots (buffer-free), or the COPY node's template
    dtype: Any
    shape: tuple[int, ...]
    inputs: tuple[Ref, ...]
    reason: str
    device: str
    fused_ops: tuple[str, ...]

    @functools.cached_property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @functools.cached_property
    def nbytes(self) -> int:
        """Size of the step's output buffer."""
        return self.numel * self.dtype.itemsize


@dataclass(frozen=True)
class Plan:
    steps: tuple[PlannedStep, ...]
    roots: tuple[Ref, ...]     # where each requested root's value is after the plan runs

    @functools.cached_property
    def released_after(self) -> tuple[tuple[int, ...], ...]:
        """For each step, the earlier steps' outputs nothing reads after it (and no root is): run_plan
        lets go of them there, so their memory is reused by later steps instead of piling up."""
        last_read: dict[int, int] = {}
        for k, step in enumerate(self.steps):
            for kind, j in step.inputs:
                if kind == "item":
                    last_read[j] = k
        kept = {j for kind, j in self.roots if kind == "item"}
        released: list[list[int]] = [[] for _ in self.steps]
        for j, k in last_read.items():
            if j not in kept:
                released[k].append(j)
        return tuple(tuple(r) for r in released)


def _is_leaf(node: Node) -> bool:
    return node.op is Op.BUFFER or node in REALIZED


def structure_key(roots: list[Node]) -> tuple[tuple, list[Any]]:
    """(hashable description of the graph with buffers numbered, the graph's buffers in that order).

    Nodes realized earlier count as buffers (their data is reused, not recomputed). This runs on every
    realize, so it is one iterative walk (sources before users, like `g.toposort`) with no helper calls
    per node: for a small op it is a good part of the whole overhead. A node stays on the stack until
    its sources are numbered (looking at them again is cheaper than a (node, expanded) pair per visit)."""
    buffer_op = _BUFFER
    position: dict[Node, int] = {}     # node (hashed by identity) -> its entry number; walked once
    numbered_at = position.get
    buffers: list[Any] = []
    entries: list[tuple] = []
    for root in roots:
        if root in position:
            continue
        stack: list[Node] = [root]
        while stack:
            node = stack[-1]
            if node in position:   # reached again through another user before its first visit ended
                stack.pop()
                continue
            leaf = node.arg if node.op is buffer_op else node.realized
            if leaf is not None:
                stack.pop()
                position[node] = len(entries)
                entries.append(("input", len(buffers), node.dtype, node.shape))
                buffers.append(leaf)
                continue
            srcs = node.srcs
            if len(srcs) == 1:   # (one and two sources, the usual cases, spelled out)
                p0 = numbered_at(srcs[0])
                if p0 is None:
                    stack.append(srcs[0])
                    continue
                numbered: tuple = (p0,)
            elif len(srcs) == 2:
                p0, p1 = numbered_at(srcs[0]), numbered_at(srcs[1])
                if p0 is None or p1 is None:
                    if p1 is None:
                        stack.append(srcs[1])
                    if p0 is None:
                        stack.append(srcs[0])
                    continue
                numbered = (p0, p1)
            else:
                waiting = [s for s in srcs if s not in position]
                if waiting:
                    stack.extend(reversed(waiting))
                    continue
                numbered = tuple([position[s] for s in srcs])
            stack.pop()
            position[node] = len(entries)
            entries.append((node.op, node.dtype, node.shape, node.arg_key, numbered))
    key = (tuple(entries), tuple([position[r] for r in roots]))
    return key, buffers


def plan_from_schedule(items: list[ScheduleItem], final: list[Node], buffers: list[Any]) -> Plan:
    """Turn a schedule over real nodes into a data-free Plan (buffers by their input number)."""
    input_number = {id(buf): k for k, buf in reversed(list(enumerate(buffers)))}
    step_number: dict[Node, int] = {}

    def ref(node: Node) -> Ref:
        if node in step_number:
            return ("item", step_number[node])
        if node.op is Op.BUFFER and id(node.arg) in input_number:
            return ("input", input_number[id(node.arg)])
        raise KeyError(f"schedule cache: operand {node} is neither an input buffer nor an earlier output")

    steps = []
    for j, item in enumerate(items):
        steps.append(PlannedStep(item.kind, item.ast if item.kind == "kernel" else _copy_template(item.ast),
                                 item.output.dtype, item.output.shape, tuple(ref(n) for n in item.inputs),
                                 item.reason, item.device, tuple(item.fused_ops)))
        step_number[item.output] = j
    return Plan(tuple(steps), tuple(ref(n) for n in final))


def _copy_template(node: Node) -> Node:
    """A device copy's node without its source data (only the target device matters); for an alloc
    step, a placeholder of the buffer's dtype and shape."""
    if node.op is not Op.COPY:
        return Node.make(Op.DEFINE_BUF, node.dtype, (), -1, node.shape)
    return Node.make(Op.COPY, node.dtype, (), node.arg, node.shape)


class PlanCache:
    """Structure key → Plan, least recently used dropped beyond PLAN_CACHE_SIZE."""

    def __init__(self, size: int = PLAN_CACHE_SIZE) -> None:
        self.size = size
        self.plans: OrderedDict[tuple, Plan] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._last: tuple[tuple, Plan] | None = None   # the most recently used (key, plan)

    def get(self, key: tuple) -> Plan | None:
        last = self._last
        if last is not None and last[0] == key:
            # a loop asks for the same structure again and again: one comparison instead of hashing the
            # key twice (lookup, move_to_end); the most recent entry needs no move
            self.hits += 1
            return last[1]
        plan = self.plans.get(key)
        if plan is None:
            self.misses += 1
            return None
        self.hits += 1
        self.plans.move_to_end(key)
        self._last = (key, plan)
        return plan

    def put(self, key: tuple, plan: Plan) -> None:
        self.plans[key] = plan
        self._last = (key, plan)
        if len(self.plans) > self.size:
            self.plans.popitem(last=False)

    def clear(self) -> None:
        self.plans.clear()
        self._last = None


PLANS = PlanCache()

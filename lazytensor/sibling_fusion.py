"""Sibling fusion: elementwise kernels over the same shape that read the same data run as one kernel
with several outputs.

An optimizer step stores three values per parameter: Adam's m, v and the parameter itself. Each is
elementwise over the parameter's shape, m and v read the same gradient, and the parameter's update
reads the new m and v. As separate kernels that is ten passes over memory (read m, g; read v, g;
read p, m', v'; three writes); as one kernel that reads p, m, v and g once and writes all three, it
is seven, and two launches fewer.

A schedule's kernels are merged into a group when (each a small function below, so a test can ask
why two kernels did not merge):
- both are elementwise (no reduce, scatter or gather; pure copies keep their own tiling) over the
  same shape on the same device;
- the newer one reads something the group reads, or reads a group member's output;
- it reads a member's output only element for element (no view of it): the fused kernel computes
  that value in the same loop iteration instead of loading it; a value the user made contiguous()
  is read from memory, by a later kernel (the boundary the user asked for stays);
- nothing scheduled between them reads a member's output (the group runs where its last member
  was: a reader in between would run before the value exists).

The merged kernel is one ScheduleItem whose AST is an OUTPUTS node (one value per output slot).
The group's other outputs get "alloc" items right before it: their buffers are allocated there and
passed to the kernel as extra output operands, so every output keeps its own step in the plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from lazytensor import graph as g
from lazytensor.graph import Node
from lazytensor.ops import ELEMENTWISE, MOVEMENT, Op

if TYPE_CHECKING:   # (schedule.py imports this module)
    from lazytensor.schedule import ScheduleItem

MAX_GROUP_OUTPUTS = 6
"""At most this many outputs per merged kernel (Adam with amsgrad writes four)."""
MAX_GROUP_INPUTS = 12
"""At most this many input buffers per merged kernel (each is a stream the loop reads)."""
REASON_ALLOC = "written by the next kernel (several outputs in one pass: sibling fusion)"

_NOT_ELEMENTWISE = frozenset({Op.REDUCE, Op.SCATTER, Op.INDEX, Op.WINDOW})


@dataclass
class _Group:
    """Kernels merging into one: their schedule items (in order) and what they read."""
    members: list["ScheduleItem"] = field(default_factory=list)   # in schedule order
    reads: set[Node] = field(default_factory=set)        # input nodes of all members
    outputs: set[Node] = field(default_factory=set)      # output nodes of all members

    @property
    def shape(self) -> tuple[int, ...]:
        return self.members[0].output.shape


def is_elementwise_kernel(item: "ScheduleItem") -> bool:
    """A kernel item computing its output element by element from its inputs, with at least one
    arithmetic op (a pure copy keeps its own tiling: codegen/transpose_tiles.py)."""
    if item.kind != "kernel" or item.output.numel == 0:
        return False
    nodes = g.toposort([item.ast])
    if any(n.op in _NOT_ELEMENTWISE for n in nodes):
        return False
    return any(n.op in ELEMENTWISE for n in nodes)


def reads_only_elementwise(item: "ScheduleItem", outputs: set[Node]) -> bool:
    """Every read `item` makes of one of `outputs` is element for element: its DEFINE_BUF placeholder
    is used directly by arithmetic, never through a view (a view would read other elements, which a
    fused loop has not computed yet)."""
    slots = {k + 1 for k, node in enumerate(item.inputs) if node in outputs}
    if not slots:
        return True
    for node in g.toposort([item.ast]):
        if node.op in MOVEMENT and any(s.op is Op.DEFINE_BUF and s.arg in slots for s in node.srcs):
            return False
    return True


def can_join(group: _Group, item: "ScheduleItem") -> str:
    """'' when `item` may join `group`, else why not (for tests and DEBUG)."""
    if item.device != group.members[0].device:
        return "another device"
    if item.output.shape != group.shape:
        return f"shape {list(item.output.shape)} is not the group's {list(group.shape)}"
    reads = set(item.inputs)
    if not (reads & group.reads) and not (reads & group.outputs):
        return "shares no input with the group and reads none of its outputs"
    if not reads_only_elementwise(item, group.outputs):
        return "reads a group output through a view"
    if any(node.op is Op.CONTIGUOUS for node in reads & group.outputs):
        return "reads a contiguous() value of the group (a kernel boundary the user asked for)"
    if len(group.members) + 1 > MAX_GROUP_OUTPUTS:
        return f"the group has {MAX_GROUP_OUTPUTS} outputs already"
    if len((group.reads | reads) - group.outputs - {item.output}) > MAX_GROUP_INPUTS:
        return f"more than {MAX_GROUP_INPUTS} input buffers"
    return ""


def find_groups(items: list["ScheduleItem"]) -> list[list[int]]:
    """Indices of the schedule items to merge, one list per group of two or more, in schedule order."""
    open_groups: list[_Group] = []
    closed: list[_Group] = []
    index_of = {id(item): k for k, item in enumerate(items)}
    for item in items:
        reads = set(item.inputs)
        joined = None
        elementwise = is_elementwise_kernel(item)
        if elementwise:
            joined = next((grp for grp in open_groups if not can_join(grp, item)), None)
        # a group whose output this item reads without joining cannot move past it: close it
        for grp in list(open_groups):
            if grp is not joined and reads & grp.outputs:
                open_groups.remove(grp)
                closed.append(grp)
        if joined is not None:
            joined.members.append(item)
            joined.reads |= reads
            joined.outputs.add(item.output)
        elif elementwise:
            open_groups.append(_Group([item], set(reads), {item.output}))
    return [[index_of[id(m)] for m in grp.members] for grp in closed + open_groups if len(grp.members) > 1]


def merge_group(members: list["ScheduleItem"]) -> tuple[Node, list[Node], list[str]]:
    """The AST, input nodes (by slot 1..n, extra outputs last) and fused op names of one kernel
    computing every member's output. Slot 0 is the last member's output; a member's output read by a
    later member is computed in place (the same node, so the renderer computes it once)."""
    value_of: dict[Node, Node] = {}     # member output node -> its value over the merged slots
    inputs: list[Node] = []
    slot_of: dict[Node, Node] = {}
    fused: list[str] = []

    def placeholder(node: Node) -> Node:
        if node in value_of:
            return value_of[node]
        if node not in slot_of:
            inputs.append(node)
            slot_of[node] = Node.make(Op.DEFINE_BUF, node.dtype, (), len(inputs), node.shape)
        return slot_of[node]

    for item in members:
        mapping: dict[Node, Node] = {}
        for node in g.toposort([item.ast]):
            if node.op is Op.DEFINE_BUF:
                mapping[node] = placeholder(item.inputs[node.arg - 1])
            else:
                mapping[node] = g.rebuild(node, tuple(mapping[s] for s in node.srcs))
        value_of[item.output] = mapping[item.ast]
        fused += item.fused_ops
    extra = [m.output for m in members[:-1]]
    first_extra = len(inputs) + 1
    values = (value_of[members[-1].output],) + tuple(value_of[n] for n in extra)
    slots = (0,) + tuple(range(first_extra, first_extra + len(extra)))
    shape = members[-1].output.shape
    ast = Node.make(Op.OUTPUTS, values[0].dtype, values, slots, shape)
    return ast, inputs + extra, fused


def fuse_siblings(items: list["ScheduleItem"]) -> list["ScheduleItem"]:
    """The schedule with each group of sibling kernels (find_groups) replaced by "alloc" items for
    all but the last member's output, followed by one kernel writing every output, at the last
    member's position."""
    groups = find_groups(items)
    if not groups:
        return items
    replaced: dict[int, list["ScheduleItem"]] = {}
    dropped: set[int] = set()
    for group in groups:
        members = [items[k] for k in group]
        ast, inputs, fused = merge_group(members)
        last = members[-1]
        allocs = [replace(m, kind="alloc", ast=m.output, inputs=[], reason=REASON_ALLOC, fused_ops=[])
                  for m in members[:-1]]
        reason = f"{last.reason} (+{len(members) - 1} sibling output(s) in the same pass)"
        kernel = replace(last, ast=ast, inputs=inputs, reason=reason, fused_ops=fused)
        replaced[group[-1]] = allocs + [kernel]
        dropped |= set(group[:-1])
    out: list["ScheduleItem"] = []
    for k, item in enumerate(items):
        if k in dropped:
            continue
        out += replaced.get(k, [item])
    return out

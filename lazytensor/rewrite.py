"""The rewrite engine: named pattern → replacement rules applied bottom-up to a graph.

One mechanism, many rule sets; each rule set lives next to the stage that owns it (the
algebraic one is here since the scheduler and autograd both want it). A rule's name shows in
the trace (`DEBUG=5`), so "why did my graph change?" has an answer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from lazytensor import config, dtypes
from lazytensor import graph as g
from lazytensor.graph import Node
from lazytensor.ops import COMMUTATIVE, Op

_ANY = object()


class Pat:
    """Matches a node by op, argument, sources; `name` binds the matched node for the rule."""

    def __init__(self, op: Op | tuple[Op, ...] | None = None, srcs: tuple["Pat", ...] | None = None,
                 name: str | None = None, arg: Any = _ANY,
                 predicate: Callable[[Node], bool] | None = None) -> None:
        self.ops = (op,) if isinstance(op, Op) else op
        self.srcs, self.name, self.arg, self.predicate = srcs, name, arg, predicate

    @staticmethod
    def var(name: str) -> "Pat":
        return Pat(name=name)

    @staticmethod
    def const(value: Any, name: str | None = None) -> "Pat":
        return Pat(Op.CONST, name=name, predicate=lambda n: n.arg == value and type(n.arg) is not bool
                   or n.arg is value)

    @staticmethod
    def const_any(name: str | None = None) -> "Pat":
        return Pat(Op.CONST, name=name)

    def match(self, node: Node, bound: dict[str, Node]) -> bool:
        if self.ops is not None and node.op not in self.ops:
            return False
        if self.arg is not _ANY and node.arg != self.arg:
            return False
        if self.predicate is not None and not self.predicate(node):
            return False
        if self.srcs is not None:
            if len(self.srcs) != len(node.srcs):
                return False
            orders = [node.srcs]
            if node.op in COMMUTATIVE and len(node.srcs) == 2:
                orders.append(node.srcs[::-1])
            for srcs in orders:
                trial = dict(bound)
                if all(p.match(s, trial) for p, s in zip(self.srcs, srcs)):
                    bound.clear()
                    bound.update(trial)
                    break
            else:
                return False
        if self.name is not None:
            if self.name in bound and bound[self.name] is not node:
                return False
            bound[self.name] = node
        return True


@dataclass
class Rule:
    """`name`: shown in traces. `fn` gets the bound nodes and returns a replacement or None."""
    name: str
    pattern: Pat
    fn: Callable[..., Node | None]


@dataclass
class RuleSet:
    name: str
    rules: list[Rule]
    _by_op: dict[Op | None, list[Rule]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for rule in self.rules:
            for op in rule.pattern.ops or (None,):
                self._by_op.setdefault(op, []).append(rule)

    def candidates(self, op: Op) -> list[Rule]:
        return self._by_op.get(op, []) + self._by_op.get(None, [])


def apply_rules(node: Node, rules: RuleSet, max_steps: int = 100) -> Node:
    """Rewrite one node (whose sources are already rewritten) until no rule matches."""
    for _ in range(max_steps):
        for rule in rules.candidates(node.op):
            bound: dict[str, Node] = {}
            if not rule.pattern.match(node, bound):
                continue
            out = rule.fn(**bound)
            if out is not None and out is not node:
                if config.DEBUG >= 5:
                    print(f"rewrite[{rules.name}] {rule.name}: {node} -> {out}")
                node = out
                break
        else:
            return node
    return node


def rewrite(roots: list[Node], rules: RuleSet) -> dict[Node, Node]:
    """Rewrite the graph under roots bottom-up; returns old node → new node for every node."""
    mapping: dict[Node, Node] = {}
    for node in g.toposort(roots):
        srcs = tuple(mapping[s] for s in node.srcs)
        mapping[node] = apply_rules(g.rebuild(node, srcs), rules)
    return mapping


# ---- algebraic simplification and constant folding ----

def _fold(n: Node) -> Node | None:
    """Fold an elementwise op whose sources are all constants (scalar compiler arithmetic)."""
    vals = [s.arg for s in n.srcs]
    op, dt = n.op, n.dtype
    try:
        if op is Op.ADD:
            v = vals[0] + vals[1]
        elif op is Op.MUL:
            v = vals[0] * vals[1]
        elif op is Op.NEG:
            v = -vals[0] if not dt.is_bool else vals[0]
        elif op is Op.MAX:
            v = vals[0] if (vals[0] != vals[0] or vals[0] > vals[1]) else vals[1]
        elif op is Op.CMPLT:
            v = vals[0] < vals[1]
        elif op is Op.CMPNE:
            v = vals[0] != vals[1]
        elif op is Op.CAST:
            v = vals[0]
        elif op is Op.SQRT and vals[0] >= 0:
            v = math.sqrt(vals[0])
        elif op is Op.AND and dt.is_bool:
            v = vals[0] and vals[1]
        elif op is Op.OR and dt.is_bool:
            v = vals[0] or vals[1]
        else:
            return None
    except (OverflowError, TypeError):
        return None
    if dt.is_float and isinstance(v, float) and math.isinf(v) and not any(
            isinstance(x, float) and math.isinf(x) for x in vals):
        return None  # overflow: leave it to the kernel, whose rounding is the reference
    return g.const(v, dt, n.shape)


def _is_exact_int(n: Node) -> bool:
    return n.dtype.is_int or n.dtype.is_bool


ALGEBRA_RULES = RuleSet("algebra", [
    Rule("x + 0 → x (x + -0.0 for floats: -0.0 + 0.0 is 0.0)", Pat(Op.ADD, (Pat.var("x"), Pat.const(0, "z"))),
         lambda x, z: x if _is_exact_int(x) or math.copysign(1.0, z.arg) < 0 else None),
    Rule("x * 1 → x", Pat(Op.MUL, (Pat.var("x"), Pat.const(1))), lambda x: x),
    Rule("x * 0 → 0 (integers)", Pat(Op.MUL, (Pat.var("x"), Pat.const(0, "z"))),
         lambda x, z: z if _is_exact_int(x) else None),
    Rule("detach(x) → x (gradients are already built)", Pat(Op.DETACH, (Pat.var("x"),)), lambda x: x),
    Rule("-(-x) → x", Pat(Op.NEG, (Pat(Op.NEG, (Pat.var("x"),)),)), lambda x: x),
    Rule("where(true, a, b) → a", Pat(Op.WHERE, (Pat.const_any("c"), Pat.var("a"), Pat.var("b"))),
         lambda c, a, b: a if c.arg else b),
    Rule("where(c, a, a) → a", Pat(Op.WHERE, (Pat.var("c"), Pat.var("a"), Pat.var("a"))),
         lambda c, a: a),
    Rule("fold constants", Pat((Op.ADD, Op.MUL, Op.NEG, Op.MAX, Op.CMPLT, Op.CMPNE, Op.CAST, Op.SQRT,
                                Op.AND, Op.OR), name="n",
                               predicate=lambda n: all(s.op is Op.CONST for s in n.srcs)), _fold),
    Rule("cast(x: T) to T → x", Pat(Op.CAST, (Pat.var("x"),), name="n"),
         lambda x, n: x if x.dtype == n.dtype else None),
    Rule("bool and true → x", Pat(Op.AND, (Pat.var("x"), Pat.const(True))),
         lambda x: x if x.dtype == dtypes.bool_ else None),
])

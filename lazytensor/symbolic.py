"""Index expressions and their simplification.

Index math inside a kernel is built from scalar int64 nodes (graph.Node with shape ()):
loop variables (RANGE), constants, ADD, MUL, IDIV and MOD by positive constants, and
data-dependent values (a gathered index). Every value has known bounds (`bounds`), and the
constructors here simplify as they build, using those bounds. The rules, by name:

- fold constants                         3 + 4 → 7
- flatten sums into linear forms         (a + 2b) + 3b → a + 5b
- split multiples out of a division      (q·c + r) // c → q + r // c
- small quotient                         r // c → k    when k·c ≤ r < (k+1)·c
- drop multiples in a remainder          (q·c + r) % c → r % c
- small remainder                        r % c → r     when 0 ≤ r < c
- reduce coefficients                    (a·x + r) // c, % c with a ≥ c: a → a % c when that removes the op
- nested division                        (x // a) // b → x // (a·b)
- common factor                          (g·A + r) // c → A // (c/g),  (g·A + r) % c → g·(A % (c/g)) + r
                                         when g divides c and 0 ≤ r < g
- recombine                              c·(x // c) + x % c → x
- recombine nested                       x % c + c·((x // c) % b) → x % (c·b)
- decided comparison                     a < b → true/false when the bounds decide it

Only non-negative operands reach IDIV/MOD (indices are checked before use), so C's
truncating division and floor division agree here.
"""
from __future__ import annotations

from lazytensor import dtypes
from lazytensor.dtypes import DType
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op

INDEX = dtypes.int64
Bounds = tuple[int, int]


def const(v: int | bool, dtype: DType = INDEX) -> Node:
    return Node.make(Op.CONST, dtype, (), dtypes.cast_scalar(v, dtype), ())


def loop_var(name: str, size: int) -> Node:
    """A loop variable in [0, size)."""
    return Node.make(Op.RANGE, INDEX, (), (name, size), ())


def bounds(n: Node) -> Bounds:
    """Inclusive (min, max) of an integer or bool scalar node."""
    if n._bounds is None:
        n._bounds = _compute_bounds(n)
    return n._bounds


def _compute_bounds(n: Node) -> Bounds:
    op = n.op
    if op is Op.CONST:
        return (int(n.arg), int(n.arg))
    if op is Op.RANGE:
        return (0, n.arg[1] - 1)
    if op is Op.CHECK_INDEX:
        return (0, n.arg[0] - 1)
    if op is Op.ADD:
        (a0, a1), (b0, b1) = bounds(n.srcs[0]), bounds(n.srcs[1])
        return (a0 + b0, a1 + b1)
    if op is Op.MUL:
        (a0, a1), (b0, b1) = bounds(n.srcs[0]), bounds(n.srcs[1])
        products = (a0 * b0, a0 * b1, a1 * b0, a1 * b1)
        return (min(products), max(products))
    if op is Op.IDIV and n.srcs[1].op is Op.CONST and n.srcs[1].arg > 0:
        (a0, a1), c = bounds(n.srcs[0]), n.srcs[1].arg
        if a0 >= 0:
            return (a0 // c, a1 // c)
    if op is Op.MOD and n.srcs[1].op is Op.CONST and n.srcs[1].arg > 0:
        (a0, a1), c = bounds(n.srcs[0]), n.srcs[1].arg
        if a0 >= 0:
            if a1 // c == a0 // c:
                return (a0 % c, a1 % c)
            return (0, c - 1)
    if op is Op.MAX:
        (a0, a1), (b0, b1) = bounds(n.srcs[0]), bounds(n.srcs[1])
        return (max(a0, b0), max(a1, b1))
    if op is Op.WHERE:
        (a0, a1), (b0, b1) = bounds(n.srcs[1]), bounds(n.srcs[2])
        return (min(a0, b0), max(a1, b1))
    if n.dtype.is_bool or op in (Op.CMPLT, Op.CMPNE):
        return (0, 1)
    if op is Op.CAST and (n.srcs[0].dtype.is_int or n.srcs[0].dtype.is_bool):
        s0, s1 = bounds(n.srcs[0])
        lo, hi = int(dtypes.min_value(n.dtype)), int(dtypes.max_value(n.dtype))
        if lo <= s0 and s1 <= hi:
            return (s0, s1)
    if n.dtype.is_int:
        return (int(dtypes.min_value(n.dtype)), int(dtypes.max_value(n.dtype)))
    raise ValueError(f"no integer bounds for {n}")


# ---- linear forms: sum of coefficient·atom plus a constant ----

def _linear(n: Node) -> tuple[dict[Node, int], int]:
    """n as ({atom: coefficient}, constant). Atoms are nodes that are not ADD/MUL-by-const/CONST."""
    if n.op is Op.CONST:
        return {}, int(n.arg)
    if n.op is Op.ADD:
        ta, ca = _linear(n.srcs[0])
        tb, cb = _linear(n.srcs[1])
        terms = dict(ta)
        for atom, coef in tb.items():
            terms[atom] = terms.get(atom, 0) + coef
        return {a: c for a, c in terms.items() if c != 0}, ca + cb
    if n.op is Op.MUL and n.srcs[1].op is Op.CONST:
        terms, c = _linear(n.srcs[0])
        k = int(n.srcs[1].arg)
        if k == 0:
            return {}, 0
        return {a: coef * k for a, coef in terms.items()}, c * k
    return {n: 1}, 0


def _recombine(terms: dict[Node, int]) -> tuple[dict[Node, int], int]:
    """Apply 'recombine' and 'recombine nested' until nothing changes; returns (terms, constant added)."""
    extra = 0
    changed = True
    while changed:
        changed = False
        for atom, k in list(terms.items()):
            if atom.op is not Op.MOD or atom.srcs[1].op is not Op.CONST or atom not in terms:
                continue
            x, c = atom.srcs[0], atom.srcs[1].arg
            # c·(x // c) + x % c → x
            quotient = _raw(Op.IDIV, x, const(c))
            if terms.get(quotient) == k * c:
                del terms[quotient], terms[atom]
                extra += _add_term(terms, x, k)
                changed = True
                continue
            # x % c + c·((x // c) % b) → x % (c·b)
            for other, k2 in list(terms.items()):
                if (other.op is Op.MOD and other.srcs[0] is quotient and other.srcs[1].op is Op.CONST
                        and k2 == k * c):
                    b = other.srcs[1].arg
                    del terms[other], terms[atom]
                    extra += _add_term(terms, mod(x, const(c * b)), k)
                    changed = True
                    break
    return terms, extra


def _add_term(terms: dict[Node, int], atom: Node, k: int) -> int:
    """Add k·atom into terms (atom's linear form, flattened); returns the constant part to add."""
    lin, c = _linear(atom)
    for a, coef in lin.items():
        terms[a] = terms.get(a, 0) + coef * k
        if terms[a] == 0:
            del terms[a]
    return c * k


def _raw(op: Op, a: Node, b: Node) -> Node:
    """Build without simplifying (used to look up nodes that may already exist)."""
    return Node.make(op, INDEX, (a, b), None, ())


def _from_linear(terms: dict[Node, int], c: int) -> Node:
    """Rebuild a canonical sum: terms in first-seen order (deterministic source), then the constant."""
    out: Node | None = None
    for atom, coef in terms.items():
        term = atom if coef == 1 else _raw(Op.MUL, atom, const(coef))
        out = term if out is None else _raw(Op.ADD, out, term)
    if out is None:
        return const(c)
    return out if c == 0 else _raw(Op.ADD, out, const(c))


def _reduce_coefficients(terms: dict[Node, int], k: int, c: int) -> tuple[Node, Node, int, int] | None:
    """'reduce coefficients': with every atom ≥ 0, split each coef·atom as
    c·(coef // c)·atom + (coef % c)·atom.

    Returns (quotient part, remainder part r, bounds of r) so that a = c·quotient + r and r ≥ 0;
    callers use it only when r's bounds fall into one multiple of c (then the division or remainder
    disappears, e.g. (k·(L+d) + j) % L → k·d + j for the sliding windows of a convolution)."""
    if any(bounds(t)[0] < 0 for t in terms) or all(coef % c == 0 for coef in terms.values()):
        return None
    quotient = _from_linear({t: coef // c for t, coef in terms.items() if coef // c}, k // c)
    rest = _from_linear({t: coef % c for t, coef in terms.items() if coef % c}, k % c)
    lo, hi = bounds(rest)
    return quotient, rest, lo, hi


# ---- public constructors ----

def add(a: Node, b: Node) -> Node:
    if a.op is Op.CONST and b.op is Op.CONST:
        return const(a.arg + b.arg)
    ta, ca = _linear(a)
    tb, cb = _linear(b)
    terms = dict(ta)
    for atom, coef in tb.items():
        terms[atom] = terms.get(atom, 0) + coef
    terms, extra = _recombine({k: v for k, v in terms.items() if v != 0})
    return _from_linear(terms, ca + cb + extra)


def mul(a: Node, b: Node) -> Node:
    if a.op is Op.CONST and b.op is not Op.CONST:
        a, b = b, a
    if b.op is Op.CONST:
        k = int(b.arg)
        if a.op is Op.CONST:
            return const(a.arg * k)
        if k == 0:
            return const(0)
        if k == 1:
            return a
        terms, c = _linear(a)
        return _from_linear({t: coef * k for t, coef in terms.items()}, c * k)
    return _raw(Op.MUL, a, b)


def _common_factor(terms: dict[Node, int], k: int, c: int) -> tuple[int, Node, Node] | None:
    """Find g > 1 dividing c with a = g·A + r, 0 ≤ r < g; returns (g, A, r)."""
    from math import gcd
    for coef in sorted({abs(v) for v in terms.values()}, reverse=True):
        g = gcd(coef, c)
        if g <= 1:
            continue
        big = {t: v // g for t, v in terms.items() if v % g == 0}
        small = {t: v for t, v in terms.items() if v % g != 0}
        rest = _from_linear(small, k % g)
        lo, hi = bounds(rest)
        if lo >= 0 and hi < g and big:
            return g, _from_linear(big, k // g), rest
    return None


def idiv(a: Node, c: int) -> Node:
    """a // c for a positive constant c and non-negative a."""
    assert c > 0
    if c == 1:
        return a
    if a.op is Op.CONST:
        return const(a.arg // c)
    if a.op is Op.IDIV and a.srcs[1].op is Op.CONST:
        return idiv(a.srcs[0], a.srcs[1].arg * c)
    terms, k = _linear(a)
    factored = _common_factor(terms, k, c) if bounds(a)[0] >= 0 else None
    if factored is not None:
        g, big, _ = factored
        return idiv(big, c // g)
    reduced = _reduce_coefficients(terms, k, c)
    if reduced is not None and reduced[2] // c == reduced[3] // c:
        return add(reduced[0], const(reduced[2] // c))
    quotient_terms = {t: coef // c for t, coef in terms.items() if coef % c == 0}
    rest_terms = {t: coef for t, coef in terms.items() if coef % c != 0}
    quotient_const, rest_const = divmod(k, c)
    quotient = _from_linear(quotient_terms, quotient_const)
    rest = _from_linear(rest_terms, rest_const)
    lo, hi = bounds(rest)
    if lo >= 0 and lo // c == hi // c:
        return add(quotient, const(lo // c))
    if lo < 0:   # cannot split safely: keep the division whole
        return _raw(Op.IDIV, a, const(c))
    return add(quotient, _raw(Op.IDIV, rest, const(c)))


def mod(a: Node, c_node: Node | int) -> Node:
    """a % c for a positive constant c and non-negative a."""
    c = c_node if isinstance(c_node, int) else int(c_node.arg)
    assert c > 0
    if c == 1:
        return const(0)
    if a.op is Op.CONST:
        return const(a.arg % c)
    if a.op is Op.MOD and a.srcs[1].op is Op.CONST and a.srcs[1].arg % c == 0:
        return mod(a.srcs[0], c)
    terms, k = _linear(a)
    factored = _common_factor(terms, k, c) if bounds(a)[0] >= 0 else None
    if factored is not None:
        g, big, small = factored
        return add(mul(mod(big, c // g), const(g)), small)
    reduced = _reduce_coefficients(terms, k, c)
    if reduced is not None and reduced[2] // c == reduced[3] // c:
        return add(reduced[1], const(-(reduced[2] // c) * c))
    rest_terms = {t: coef for t, coef in terms.items() if coef % c != 0}
    rest = _from_linear(rest_terms, k % c)
    lo, hi = bounds(rest)
    if lo >= 0 and hi < c:
        return rest
    if lo >= 0 and lo // c == hi // c:
        return add(rest, const(-(lo // c) * c))
    if bounds(a)[0] < 0 or lo < 0:
        return _raw(Op.MOD, a, const(c))
    return _raw(Op.MOD, rest, const(c))


def lt(a: Node, b: Node) -> Node:
    """a < b as a bool node, decided at build time when the bounds allow."""
    (a0, a1), (b0, b1) = bounds(a), bounds(b)
    if a1 < b0:
        return const(True, dtypes.bool_)
    if a0 >= b1:
        return const(False, dtypes.bool_)
    return Node.make(Op.CMPLT, dtypes.bool_, (a, b), None, ())


def ge(a: Node, b: Node) -> Node:
    """a >= b, as (b - 1) < a for integers."""
    return lt(add(b, const(-1)), a)


def logical_and(a: Node | None, b: Node | None) -> Node | None:
    """Conjunction of optional conditions; None means 'always true'."""
    for x, y in ((a, b), (b, a)):
        if x is None or (x.op is Op.CONST and x.arg is True):
            return y
        if x.op is Op.CONST and x.arg is False:
            return x
    if a is b:
        return a
    return Node.make(Op.AND, dtypes.bool_, (a, b), None, ())


def is_false(cond: Node | None) -> bool:
    return cond is not None and cond.op is Op.CONST and cond.arg is False


def substitute(roots: list[Node], mapping: dict[Node, Node]) -> list[Node]:
    """Rebuild scalar expression DAGs with some nodes replaced (e.g. a loop variable by
    `outer * 4 + lane`), re-simplifying the index arithmetic that the replacement touches."""
    done: dict[Node, Node] = dict(mapping)
    for n in toposort(roots):
        if n in done:
            continue
        srcs = tuple(done[s] for s in n.srcs)
        done[n] = n if srcs == n.srcs else _rebuild_scalar(n, srcs)
    return [done[r] for r in roots]


def _rebuild_scalar(n: Node, srcs: tuple[Node, ...]) -> Node:
    """n's op over new sources; integer add/mul/div/mod/compare go through the simplifying builders."""
    if n.dtype == INDEX and n.op is Op.ADD:
        return add(*srcs)
    if n.dtype == INDEX and n.op is Op.MUL:
        return mul(*srcs)
    if n.op in (Op.IDIV, Op.MOD) and n.dtype == INDEX and srcs[1].op is Op.CONST and srcs[1].arg > 0 \
            and bounds(srcs[0])[0] >= 0:
        return idiv(srcs[0], int(srcs[1].arg)) if n.op is Op.IDIV else mod(srcs[0], srcs[1])
    if n.op is Op.CMPLT and srcs[0].dtype == INDEX and srcs[1].dtype == INDEX:
        return lt(*srcs)
    decided = _decided_by_constant_condition(n, srcs)
    if decided is not None:
        return decided
    return Node.make(n.op, n.dtype, srcs, n.arg, n.shape)


def _is_const_bool(n: Node) -> bool:
    return n.op is Op.CONST and n.dtype.is_bool


def _decided_by_constant_condition(n: Node, srcs: tuple[Node, ...]) -> Node | None:
    """n over srcs simplified where a (bool) condition among srcs became a constant (a padding
    gate decided inside a peeled loop piece, see codegen/peel.py); None when nothing folds."""
    if n.op is Op.AND and n.dtype.is_bool and any(_is_const_bool(s) for s in srcs):
        return logical_and(*srcs)
    if n.op is Op.LOAD and len(srcs) == 2 and _is_const_bool(srcs[1]):
        if srcs[1].arg:
            return Node.make(Op.LOAD, n.dtype, srcs[:1], n.arg, n.shape)
        return const(0, n.dtype)
    if n.op is Op.WHERE and _is_const_bool(srcs[0]):
        return srcs[1] if srcs[0].arg else srcs[2]
    return None

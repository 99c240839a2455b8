"""Index simplification: each named rule in symbolic.py, and a property test that simplified
expressions evaluate like the unsimplified math for every value of their loop variables."""
from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from lazytensor import symbolic as sym
from lazytensor.graph import Node
from lazytensor.indexing import flat_index, unflatten_index
from lazytensor.ops import Op


def evaluate(n: Node, env: dict[str, int]) -> int:
    """Reference evaluation of an index expression (floor division, Python ints)."""
    if n.op is Op.CONST:
        return int(n.arg)
    if n.op is Op.RANGE:
        return env[n.arg[0]]
    a = [evaluate(s, env) for s in n.srcs]
    return {Op.ADD: lambda: a[0] + a[1], Op.MUL: lambda: a[0] * a[1], Op.IDIV: lambda: a[0] // a[1],
            Op.MOD: lambda: a[0] % a[1], Op.CMPLT: lambda: int(a[0] < a[1]),
            Op.AND: lambda: int(a[0] and a[1])}[n.op]()


def ops_in(n: Node) -> set[Op]:
    from lazytensor.graph import toposort
    return {x.op for x in toposort([n])}


def test_constants_fold():
    assert sym.add(sym.const(3), sym.const(4)).arg == 7


def test_recombine_division_and_remainder():
    x = sym.loop_var("x", 100)
    e = sym.add(sym.mul(sym.idiv(x, 7), sym.const(7)), sym.mod(x, 7))
    assert e is x


def test_reshape_of_contiguous_is_plain_linear_index():
    i, j = sym.loop_var("i", 6), sym.loop_var("j", 4)
    # a (6, 4) view of a contiguous (3, 2, 4) buffer
    src_idx = unflatten_index(flat_index((i, j), (6, 4)), (3, 2, 4))
    offset = flat_index(src_idx, (3, 2, 4))
    assert Op.IDIV not in ops_in(offset) and Op.MOD not in ops_in(offset)
    for vi, vj in itertools.product(range(6), range(4)):
        assert evaluate(offset, {"i": vi, "j": vj}) == vi * 4 + vj


def test_small_quotient_and_remainder_vanish():
    j = sym.loop_var("j", 5)
    assert sym.idiv(j, 5).arg == 0
    assert sym.mod(j, 5) is j


def test_comparison_decided_by_bounds():
    j = sym.loop_var("j", 5)
    assert sym.lt(j, sym.const(5)).arg is True
    assert sym.lt(j, sym.const(0)).arg is False


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       new_split=st.integers(1, 4), data=st.data())
def test_reshape_index_round_trip(sizes, new_split, data):
    """Any reshape's index expression addresses the same element as row-major arithmetic."""
    total = 1
    for s in sizes:
        total *= s
    divisors = [d for d in range(1, total + 1) if total % d == 0]
    a = data.draw(st.sampled_from(divisors))
    out_shape = (a, total // a)
    vars_ = (sym.loop_var("p", out_shape[0]), sym.loop_var("q", out_shape[1]))
    offset = flat_index(unflatten_index(flat_index(vars_, out_shape), tuple(sizes)), tuple(sizes))
    for p, q in itertools.product(range(out_shape[0]), range(out_shape[1])):
        assert evaluate(offset, {"p": p, "q": q}) == p * out_shape[1] + q


@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 9), n=st.integers(1, 60), k=st.integers(0, 20), m=st.integers(1, 5))
def test_division_rules_match_floor_semantics(c, n, k, m):
    x = sym.loop_var("x", n)
    for expr, ref in [(sym.idiv(sym.add(sym.mul(x, sym.const(m)), sym.const(k)), c), lambda v: (v * m + k) // c),
                      (sym.mod(sym.add(sym.mul(x, sym.const(m)), sym.const(k)), c), lambda v: (v * m + k) % c)]:
        for v in range(n):
            assert evaluate(expr, {"x": v}) == ref(v)


@settings(max_examples=80, deadline=None)
@given(rows=st.integers(1, 5), cols=st.integers(1, 6), data=st.data())
def test_flip_then_reshape_addresses_the_right_element(rows, cols, data):
    """Views with negative strides (flip) composed with a reshape back onto the buffer's shape."""
    from lazytensor import graph as g
    from lazytensor.indexing import source_index
    total = rows * cols
    divisors = [d for d in range(1, total + 1) if total % d == 0]
    a = data.draw(st.sampled_from(divisors))
    view_shape = (a, total // a)
    flip_axis = data.draw(st.sampled_from([0, 1]))
    buf = g.buffer(object(), __import__("lazytensor").float32, (rows, cols))
    node = g.flip(g.reshape(buf, view_shape), (flip_axis,))
    idx = (sym.loop_var("p", view_shape[0]), sym.loop_var("q", view_shape[1]))
    while node.op is not Op.BUFFER:   # walk the view chain down to the buffer
        idx, _ = source_index(node, idx)
        node = node.srcs[0]
    offset = flat_index(idx, (rows, cols))
    for vp, vq in itertools.product(range(view_shape[0]), range(view_shape[1])):
        fp, fq = vp, vq
        if view_shape[flip_axis] > 1:
            if flip_axis == 0:
                fp = view_shape[0] - 1 - vp
            else:
                fq = view_shape[1] - 1 - vq
        assert evaluate(offset, {"p": vp, "q": vq}) == fp * view_shape[1] + fq

"""codegen/peel.py: loops split where padding gates switch store every element once, with the
gates gone from the interior, and the same values as NumPy."""
from __future__ import annotations

import numpy as np
import pytest

import lazytensor as lt
import lazytensor.nn.functional as F
from lazytensor import symbolic as sym
from lazytensor.codegen.lower import lower_kernel
from lazytensor.codegen.opt import optimize
from lazytensor.codegen.peel import _switch_points, peel_gated_borders
from lazytensor.graph import toposort
from lazytensor.ops import Op


def _gated_loads(nest) -> int:
    return sum(1 for st in nest.stores for n in toposort([st.value]) if n.op is Op.LOAD and len(n.srcs) == 2)


def _elements(nest) -> int:
    lanes = sum(st.value.shape[0] if st.value.shape else 1 for st in nest.stores)
    return lanes * int(np.prod([loop.size for loop in nest.loops]))


PADS = [((1, 1, 1, 1), (2, 3, 8, 8)), ((2, 0, 0, 3), (1, 5, 7)), ((0, 1), (4, 17)), ((3, 3, 1, 1, 2, 2), (2, 3, 4, 5)),
        ((1, 2, 0, 0), (1, 1, 1)), ((5, 5), (0, 3))]


@pytest.mark.parametrize("pad,shape", PADS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint8])
@pytest.mark.parametrize("layout", ["plain", "transposed", "computed"])
def test_peeled_pad_matches_numpy(pad, shape, dtype, layout):
    rng = np.random.default_rng(len(shape) + sum(pad))
    a = (rng.standard_normal(shape) * 10).astype(dtype)
    x = lt.tensor(a)
    if layout == "transposed" and a.ndim >= 2:
        a = np.ascontiguousarray(np.swapaxes(a, -1, -2))
        x = lt.tensor(a).transpose(-1, -2)
        a = np.swapaxes(a, -1, -2)
    if layout == "computed":
        x, a = x * 2, a * 2
    out = F.pad(x, pad).numpy()
    widths = [(0, 0)] * (a.ndim - len(pad) // 2) + [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
    np.testing.assert_array_equal(out, np.pad(a, widths))


@pytest.mark.parametrize("value", [0.0, -1.5])
def test_peeled_pad_with_a_fill_value_matches_numpy(value):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    out = F.pad(lt.tensor(a), (1, 2, 2, 1), value=value).numpy()
    np.testing.assert_array_equal(out, np.pad(a, [(0, 0), (2, 1), (1, 2)], constant_values=value))


def test_the_interior_of_a_2d_pad_has_no_gate_and_every_element_is_stored_once():
    x = lt.randn(3, 2, 64, 64).realize()
    (item,) = F.pad(x, (1, 1, 1, 1)).schedule()
    kernel = lower_kernel(item.ast)
    assert _gated_loads(kernel.nests[0]) == 1
    peeled = peel_gated_borders(kernel)
    assert len(peeled.nests) == 9                       # 3 pieces of rows times 3 of columns
    assert sum(_elements(n) for n in peeled.nests) == 3 * 2 * 66 * 66
    interior = max(peeled.nests, key=_elements)
    assert _elements(interior) == 3 * 2 * 64 * 64 and _gated_loads(interior) == 0
    assert all(_gated_loads(n) == 0 for n in peeled.nests)
    assert any(note.startswith("peel") for note in optimize(kernel).notes)


@pytest.mark.parametrize("k,offset,size", [(1, -1, 66), (-1, 64, 66), (2, -3, 40), (1, 0, 10)])
def test_switch_points_split_a_comparison_into_decided_pieces(k, offset, size):
    """Every piece between switch points decides (var·k + offset) < 0 one way for all its values."""
    var = sym.loop_var("v", size)
    lhs = sym.add(sym.mul(var, sym.const(k)), sym.const(offset))
    comparison = sym.lt(lhs, sym.const(0))
    if comparison.op is Op.CONST:                      # decided from the bounds already
        assert all((v * k + offset < 0) is comparison.arg for v in range(size))
        return
    edges = [0] + sorted(p for p in _switch_points(comparison, var) if 0 < p < size) + [size]
    for start, end in zip(edges, edges[1:]):
        truths = {v * k + offset < 0 for v in range(start, end)}
        assert len(truths) == 1


def test_scatters_are_not_peeled():
    base = lt.zeros(10).realize()
    index = lt.tensor(np.array([0, 3, 3, 9]))
    out = base.index_add(0, index, lt.ones(4))
    *_, item = out.schedule()
    kernel = lower_kernel(item.ast)
    assert peel_gated_borders(kernel).nests == kernel.nests
    np.testing.assert_array_equal(out.numpy(), np.bincount([0, 3, 3, 9], minlength=10).astype(np.float32))


def test_pieces_share_their_outer_loops_in_one_parallel_region():
    """The pieces of a peeled pad keep the loops no gate splits (batch, channel) in common: they render
    inside one outer loop, parallel as a whole, instead of each border piece sweeping the output on one
    thread; every element is still stored once with NumPy's value."""
    from lazytensor.beam import _render
    from lazytensor.codegen.kernel import outer_loop_groups, shared_loop_depth
    a = np.random.default_rng(0).standard_normal((32, 32, 16, 16)).astype(np.float32)
    (item,) = F.pad(lt.tensor(a), (1, 1, 1, 1)).contiguous().schedule()
    kernel = optimize(lower_kernel(item.ast))
    groups = outer_loop_groups(kernel.nests)
    assert len(groups) == 1 and len(groups[0]) == 9 and shared_loop_depth(groups[0]) == 2
    assert all(nest.loops[0].parallel for nest in kernel.nests)
    source = _render(kernel)
    assert source.count("#pragma omp parallel") == 1
    got = F.pad(lt.tensor(a), (1, 1, 1, 1)).numpy()
    np.testing.assert_array_equal(got, np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1))))

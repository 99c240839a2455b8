"""Broadcasting as a property: any NumPy-compatible pair of shapes gives NumPy's result, and
incompatible shapes give an error naming the op and both shapes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lazytensor as lt

OPS = {
    "add": (lambda a, b: a + b, np.add),
    "mul": (lambda a, b: a * b, np.multiply),
    "maximum": (lambda a, b: a.maximum(b), np.maximum),
    "lt": (lambda a, b: a < b, np.less),
    "where": (lambda a, b: lt.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b)),
}


@settings(max_examples=40, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
       op=st.sampled_from(sorted(OPS)), seed=st.integers(0, 2**16))
def test_binary_broadcasting_matches_numpy(shapes, op, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in shapes.input_shapes)
    ours, ref = OPS[op]
    got = ours(lt.tensor(a), lt.tensor(b)).numpy()
    want = ref(a, b)
    assert got.shape == want.shape == shapes.result_shape
    np.testing.assert_allclose(got, want, rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), value=st.floats(-10, 10, width=32))
def test_scalar_broadcasting_matches_numpy(shape, value):
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose((lt.tensor(a) * value - value).numpy(), a * np.float32(value) - np.float32(value),
                               rtol=1e-6)


@pytest.mark.parametrize("sa,sb", [((3,), (4,)), ((2, 3), (3, 2)), ((5, 1, 2), (4, 3))])
def test_incompatible_shapes_raise_with_both_shapes(sa, sb):
    with pytest.raises(ValueError) as info:
        lt.ones(*sa) + lt.ones(*sb)
    assert str(sa) in str(info.value) and str(sb) in str(info.value) and "add" in str(info.value)

"""In-place forms (`add_`, `+=`, `copy_`, `fill_`, ...) against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lazytensor as lt
from helpers import assert_close

CASES = [
    ("add_", (2.0,)), ("sub_", (0.5,)), ("mul_", (3.0,)), ("div_", (4.0,)), ("pow_", (2,)),
    ("clamp_", (-0.5, 0.5)), ("relu_", ()), ("sigmoid_", ()), ("exp_", ()), ("abs_", ()), ("neg_", ()),
    ("floor_", ()), ("tanh_", ()), ("masked_fill_", "mask"), ("tril_", ()), ("lerp_", "lerp"),
]


@pytest.mark.parametrize("name,args", CASES, ids=[c[0] for c in CASES])
def test_inplace_matches_torch(name, args):
    data = np.random.default_rng(1).uniform(-2, 2, (3, 4)).astype(np.float32)
    ours, theirs = lt.tensor(data), torch.tensor(data)
    if args == "mask":
        mask = data > 0
        ours_args, theirs_args = (lt.tensor(mask), 7.0), (torch.tensor(mask), 7.0)
    elif args == "lerp":
        end = data[::-1].copy()
        ours_args, theirs_args = (lt.tensor(end), 0.3), (torch.tensor(end), 0.3)
    else:
        ours_args = theirs_args = args
    out = getattr(ours, name)(*ours_args)
    getattr(theirs, name)(*theirs_args)
    assert out is ours
    assert_close(ours, theirs)


def test_augmented_assignment_operators():
    a = lt.tensor([1, 2, 3])
    t = torch.tensor([1, 2, 3])
    for op in ("+=", "-=", "*=", "//=", "%=", "&=", "|=", "^="):
        exec(f"a {op} 2", {}, {"a": a})
        exec(f"t {op} 2", {}, {"t": t})
    ours_loc, theirs_loc = {"a": a}, {"t": t}
    exec("a += 5", {}, ours_loc)
    exec("t += 5", {}, theirs_loc)
    assert_close(ours_loc["a"], theirs_loc["t"])


def test_inplace_keeps_dtype_and_refuses_unsafe_cast():
    x = lt.tensor([1, 2, 3])
    x.mul_(2)
    assert x.dtype == lt.int64 and x.tolist() == [2, 4, 6]
    with pytest.raises(RuntimeError, match="can't be cast"):
        x.add_(0.5)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        lt.tensor([1.0, 2.0]).add_(lt.ones(3, 2))


def test_copy_fill_zero():
    x = lt.zeros(2, 3)
    x.copy_(lt.tensor([1.0, 2.0, 3.0]))
    assert x.tolist() == [[1.0, 2.0, 3.0]] * 2
    x.fill_(4)
    assert x.tolist() == [[4.0] * 3] * 2
    x.zero_()
    assert x.sum().item() == 0.0


def test_uniform_and_normal_fill_in_place():
    lt.manual_seed(3)
    x = lt.zeros(10000).uniform_(-1, 1)
    v = x.numpy()
    assert v.min() >= -1 and v.max() < 1 and abs(v.mean()) < 0.05
    y = lt.zeros(10000).normal_(2.0, 0.5).numpy()
    assert abs(y.mean() - 2.0) < 0.05 and abs(y.std() - 0.5) < 0.05

"""Row kernels on the CPU (codegen/hoist.py + the C renderer): reduces split into vector lanes, and a
row reduce's body written once and read back (softmax computes exp once). Checked against torch in
float64 on rows that take every path: lane-split lengths (multiples of 16), odd lengths, size 0 and
1, -inf / NaN / all-equal rows, non-contiguous inputs; and against the unoptimized kernels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lazytensor as lt
from lazytensor import config, schedule
from lazytensor.codegen.hoist import optimize_cpu
from lazytensor.codegen.lower import lower_kernel
from lazytensor.codegen.render.c import CRenderer

from helpers import assert_close

F = torch.nn.functional

ROW_OPS = {
    "softmax": (lambda t: t.softmax(-1), lambda t: torch.softmax(t, -1)),
    "log_softmax": (lambda t: t.log_softmax(-1), lambda t: torch.log_softmax(t, -1)),
    "logsumexp": (lambda t: t - t.logsumexp(-1, keepdim=True), lambda t: t - t.logsumexp(-1, keepdim=True)),
    "layer_norm": (lambda t: lt.nn.functional.layer_norm(t, t.shape[-1:]),
                   lambda t: F.layer_norm(t, t.shape[-1:])),
    "masked_softmax": (lambda t: (t * 0.125 + (t > 1.5).float() * -10000.0).softmax(-1),
                       lambda t: (t * 0.125 + (t > 1.5).double() * -10000.0).softmax(-1)),
    "gelu": (lambda t: lt.nn.functional.gelu(t), lambda t: F.gelu(t)),
}

# row lengths: lane-split (multiples of 16 from 64), short, odd, long and odd
ROW_SHAPES = [(3, 64), (4, 128), (2, 3, 256), (5, 7), (2, 127), (3, 1023), (2, 4096)]


def _rows(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(np.float32)


def _check(op: str, a: np.ndarray, view=lambda t: t) -> None:
    ours, theirs = ROW_OPS[op]
    got = ours(view(lt.tensor(a)))
    want = theirs(view(torch.tensor(a, dtype=torch.float64))).float()
    assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", ROW_SHAPES, ids=str)
@pytest.mark.parametrize("op", list(ROW_OPS))
def test_row_kernels_match_torch(op, shape):
    _check(op, _rows(shape))


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp", "layer_norm"])
def test_row_kernels_on_non_contiguous_rows(op):
    a = _rows((128, 64), seed=1)
    _check(op, a, lambda t: t.T)                  # rows strided by 64
    _check(op, a, lambda t: t[::2, ::2])           # every other row and column (32 long)
    _check(op, a, lambda t: t[:, 16:].flip(-1))    # offset and reversed (48 long)


@pytest.mark.parametrize("cols", [64, 7])
@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
def test_special_rows(op, cols):
    a = _rows((6, cols), seed=2)
    a[0] = -np.inf                 # every entry -inf: NaN out, like torch
    a[1, ::3] = -np.inf            # some -inf: those get probability 0
    a[2] = 1.5                     # all equal: uniform
    a[3, cols // 2] = np.nan       # a NaN poisons its row
    a[4, 1] = np.inf               # +inf: NaN row (inf - inf)
    a[5] *= 30                     # large spread: most exp underflow
    ours, theirs = ROW_OPS[op]
    got = ours(lt.tensor(a)).numpy()
    want = theirs(torch.tensor(a, dtype=torch.float64)).float().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("shape", [(3, 0), (0, 64), (4, 1), (1, 1)], ids=str)
@pytest.mark.parametrize("op", ["softmax", "log_softmax", "layer_norm"])
def test_empty_and_single_element_rows(op, shape):
    _check(op, _rows(shape, seed=3))


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "masked_softmax", "layer_norm"])
def test_optimized_row_kernels_match_unoptimized_code(op):
    a = _rows((33, 512), seed=4)
    results = []
    for noopt in (0, 1):
        saved, config.NOOPT = config.NOOPT, noopt
        try:
            results.append(ROW_OPS[op][0](lt.tensor(a)).numpy())
        finally:
            config.NOOPT = saved
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)


def _softmax_source(rows: int, cols: int) -> str:
    x = lt.tensor(_rows((rows, cols)))
    items, _ = schedule.create_schedule([x.softmax(-1).node], "CPU")
    (item,) = [it for it in items if it.kind == "kernel"]
    return CRenderer().render(optimize_cpu(lower_kernel(item.ast)))


EXP_CONSTANT = "1.4426950216293335f"   # log2(e): one per exp the kernel computes


@pytest.mark.parametrize("cols", [128, 7])
def test_softmax_computes_exp_once_and_scales_the_row_in_place(cols):
    source = _softmax_source(4, cols)
    assert source.count(EXP_CONSTANT) == 1, source
    assert "= b0[" in source, "the inner loop should read the stored exp back from the output"


def test_lane_split_reduces_keep_one_accumulator_per_lane():
    source = _softmax_source(4, 128)
    assert "v[16];" in source and "v[0]" in source and "v[15]" in source, source


@pytest.mark.parametrize("case", ["broadcast_rows", "flipped", "scaled", "two_outputs_per_row"])
def test_row_kernels_whose_output_is_not_the_reduced_row(case):
    """Outputs indexed by more loops than the row reduce sees, or read at other positions: the body
    of the reduce may only be stored where the output row and the reduced row coincide."""
    a = _rows((4, 64), seed=5)
    x, t = lt.tensor(a), torch.tensor(a, dtype=torch.float64)
    if case == "broadcast_rows":       # out[i, j, k] = softmax(x)[i, k]: the reduces see i only
        got, want = x.softmax(-1).unsqueeze(1).expand(4, 3, 64), t.softmax(-1).unsqueeze(1).expand(4, 3, 64)
    elif case == "flipped":
        got, want = x.softmax(-1).flip(-1), t.softmax(-1).flip(-1)
    elif case == "scaled":
        got = x.exp() / x.exp().sum(-1, keepdim=True) * 3 - 1
        want = t.exp() / t.exp().sum(-1, keepdim=True) * 3 - 1
    else:
        got, want = lt.cat([x.softmax(-1), x], -1), torch.cat([t.softmax(-1), t], -1)
    assert_close(got, want.float(), rtol=1e-5, atol=1e-5)

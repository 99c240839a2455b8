"""Pooling, interpolation and unfold/fold (lt.nn.functional and nn layers) against torch: forward values,
max-pool indices, and input gradients for the same upstream gradient."""
from __future__ import annotations

import numpy as np
import pytest

import lazytensor as lt
import lazytensor.nn as nn
import lazytensor.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-5, 1e-6


def _rand(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _close(got: lt.Tensor, want: "torch.Tensor", what: str) -> None:
    assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=what)


def check_op(ours, theirs, x: np.ndarray, view=lambda t: t, grad: bool = True) -> None:
    """Compare ours(view(x)) with theirs(view(x)) — values, indices if a pair comes back, and the input
    gradient for one random upstream gradient."""
    a = lt.tensor(x, requires_grad=grad)
    b = torch.tensor(x, requires_grad=grad)
    out, ref = ours(view(a)), theirs(view(b))
    indices = None
    if isinstance(ref, tuple):
        (out, indices), (ref, ref_indices) = out, ref
    if grad:
        up = np.random.default_rng(99).standard_normal(tuple(ref.shape)).astype(np.float32)
        out.backward(lt.tensor(up))      # backward before realizing out: realize keeps only the value
        ref.backward(torch.tensor(up))
        lt.realize(out, a.grad)
    _close(out, ref, "output")
    if indices is not None:
        assert indices.dtype == lt.int64
        np.testing.assert_array_equal(indices.numpy(), ref_indices.numpy())
    if grad:
        _close(a.grad, b.grad, "input gradient")


# (input shape, kernel, stride, padding, dilation, ceil_mode)
MAX_POOL2D_CASES = [
    ((2, 3, 8, 8), 2, None, 0, 1, False),
    ((1, 2, 9, 7), 3, 2, 1, 1, False),
    ((2, 2, 10, 7), 3, 2, 1, 1, True),
    ((1, 3, 9, 8), (2, 3), (1, 2), (1, 1), (2, 1), False),
    ((1, 1, 11, 11), 3, 3, 0, 2, True),
    ((1, 1, 5, 5), 5, 1, 2, 1, False),
    ((3, 6, 7), 2, 2, 1, 1, True),                            # unbatched (C, H, W)
]


@pytest.mark.parametrize("shape,kernel,stride,padding,dilation,ceil_mode", MAX_POOL2D_CASES)
def test_max_pool2d_matches_torch(shape, kernel, stride, padding, dilation, ceil_mode):
    args = (kernel, stride, padding, dilation, ceil_mode, True)
    check_op(lambda x: F.max_pool2d(x, *args), lambda x: TF.max_pool2d(x, *args), _rand(shape, 0))


@pytest.mark.parametrize("shape,kernel,stride,padding,dilation,ceil_mode", [
    ((2, 3, 9), 2, None, 0, 1, False),
    ((1, 2, 10), 3, 2, 1, 2, True),
    ((2, 7), 4, 3, 2, 1, True),                                 # unbatched (C, L)
])
def test_max_pool1d_matches_torch(shape, kernel, stride, padding, dilation, ceil_mode):
    args = (kernel, stride, padding, dilation, ceil_mode, True)
    check_op(lambda x: F.max_pool1d(x, *args), lambda x: TF.max_pool1d(x, *args), _rand(shape, 1))


def test_max_pool3d_matches_torch():
    args = ((2, 3, 2), (2, 1, 2), (1, 1, 0), 1, True, True)
    check_op(lambda x: F.max_pool3d(x, *args), lambda x: TF.max_pool3d(x, *args), _rand((1, 2, 5, 6, 5), 2))


def test_max_pool2d_without_grad_is_one_kernel():
    x = lt.tensor(_rand((2, 3, 9, 9), 3))
    assert len(F.max_pool2d(x, 3, 2, 1).schedule()) == 1


@pytest.mark.parametrize("name", ["constant", "relu-zeros", "repeats"])
def test_max_pool_ties_route_gradient_to_first_maximum(name):
    x = {"constant": np.ones((1, 1, 4, 5), np.float32),
         "relu-zeros": np.maximum(_rand((1, 2, 6, 6), 4), 0),
         "repeats": np.round(_rand((1, 2, 7, 7), 5))}[name]
    check_op(lambda t: F.max_pool2d(t, 3, 2, 1, return_indices=True),
             lambda t: TF.max_pool2d(t, 3, 2, 1, return_indices=True), x)


def test_max_pool_nan_and_inf_like_torch():
    x = _rand((1, 1, 6, 6), 6)
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 4, :] = -np.inf
    x[0, 0, 5, 5] = np.inf
    check_op(lambda t: F.max_pool2d(t, 2, return_indices=True),
             lambda t: TF.max_pool2d(t, 2, return_indices=True), x, grad=False)


@pytest.mark.parametrize("view", [lambda t: t.transpose(2, 3), lambda t: t[:, :, 1::2]], ids=["T", "stepped"])
def test_pooling_non_contiguous_input(view):
    x = _rand((2, 3, 10, 7), 7)
    check_op(lambda t: F.max_pool2d(t, 2, 1, return_indices=True),
             lambda t: TF.max_pool2d(t, 2, 1, return_indices=True), x, view=view)
    check_op(lambda t: F.avg_pool2d(t, 3, 2, 1), lambda t: TF.avg_pool2d(t, 3, 2, 1), x, view=view)


# (input shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_POOL2D_CASES = [
    ((2, 3, 8, 8), 2, None, 0, False, True, None),
    ((1, 2, 9, 7), 3, 2, 1, False, True, None),
    ((2, 2, 10, 8), 3, 2, 1, True, False, None),
    ((1, 1, 11, 6), (4, 2), (3, 1), (2, 1), True, False, None),
    ((1, 2, 6, 7), 3, 2, 1, True, True, 5),
    ((3, 5, 5), 2, 1, 1, False, False, None),                   # unbatched
]


@pytest.mark.parametrize("shape,kernel,stride,padding,ceil_mode,include_pad,divisor", AVG_POOL2D_CASES)
def test_avg_pool2d_matches_torch(shape, kernel, stride, padding, ceil_mode, include_pad, divisor):
    args = (kernel, stride, padding, ceil_mode, include_pad, divisor)
    check_op(lambda x: F.avg_pool2d(x, *args), lambda x: TF.avg_pool2d(x, *args), _rand(shape, 8))


@pytest.mark.parametrize("shape,kernel,stride,padding,ceil_mode,include_pad", [
    ((2, 3, 9), 3, None, 0, False, True),
    ((1, 2, 11), 4, 3, 2, True, False),
    ((1, 2, 11), 4, 3, 2, True, True),
])
def test_avg_pool1d_matches_torch(shape, kernel, stride, padding, ceil_mode, include_pad):
    args = (kernel, stride, padding, ceil_mode, include_pad)
    check_op(lambda x: F.avg_pool1d(x, *args), lambda x: TF.avg_pool1d(x, *args), _rand(shape, 9))


@pytest.mark.parametrize("shape,size", [
    ((2, 3, 8, 6), (4, 3)),            # divisible: a plain average pool
    ((1, 2, 10, 7), (3, 4)),           # overlapping windows
    ((1, 2, 5, 7), (1, 1)),            # global
    ((1, 2, 5, 7), (7, None)),         # upsampling one dim, None keeps the other
    ((3, 9, 5), 4),                    # unbatched
])
def test_adaptive_avg_pool2d_matches_torch(shape, size):
    check_op(lambda x: F.adaptive_avg_pool2d(x, size), lambda x: TF.adaptive_avg_pool2d(x, size),
             _rand(shape, 10))


@pytest.mark.parametrize("shape,size", [((2, 3, 9), 4), ((2, 4, 7), 1)])
def test_adaptive_avg_pool1d_matches_torch(shape, size):
    check_op(lambda x: F.adaptive_avg_pool1d(x, size), lambda x: TF.adaptive_avg_pool1d(x, size),
             _rand(shape, 11))


@pytest.mark.parametrize("shape,size", [((2, 2, 10, 7), (3, 4)), ((1, 1, 5, 4), (1, 1))])
def test_adaptive_max_pool2d_matches_torch(shape, size):
    check_op(lambda x: F.adaptive_max_pool2d(x, size, True), lambda x: TF.adaptive_max_pool2d(x, size, True),
             _rand(shape, 12))


def test_adaptive_max_pool1d_matches_torch():
    check_op(lambda x: F.adaptive_max_pool1d(x, 3, True), lambda x: TF.adaptive_max_pool1d(x, 3, True),
             _rand((2, 3, 8), 13))


# (input shape, size, scale_factor, mode, align_corners)
INTERPOLATE_CASES = [
    ((1, 2, 5, 4), None, 2.5, "nearest", None),
    ((1, 2, 5, 4), (3, 7), None, "nearest", None),
    ((1, 2, 5, 4), (8, 3), None, "nearest-exact", None),
    ((2, 2, 5, 4), (7, 9), None, "bilinear", False),
    ((1, 2, 5, 4), None, 1.7, "bilinear", True),
    ((1, 2, 6, 6), (3, 4), None, "bilinear", False),           # downsampling
    ((2, 3, 9), None, 0.6, "linear", False),
    ((1, 1, 3, 4, 2), (5, 3, 4), None, "trilinear", False),
    ((1, 2, 7, 5), (3, 2), None, "area", None),
]


@pytest.mark.parametrize("shape,size,scale,mode,align", INTERPOLATE_CASES)
def test_interpolate_matches_torch(shape, size, scale, mode, align):
    check_op(lambda x: F.interpolate(x, size, scale, mode, align),
             lambda x: TF.interpolate(x, size, scale, mode, align), _rand(shape, 14))


def test_interpolate_recompute_scale_factor():
    args = dict(scale_factor=1.3, mode="bilinear", recompute_scale_factor=True)
    check_op(lambda x: F.interpolate(x, **args), lambda x: TF.interpolate(x, **args), _rand((1, 1, 5, 6), 15))


@pytest.mark.parametrize("kernel,dilation,padding,stride", [(2, 1, 0, 1), ((2, 3), (1, 2), 1, (2, 1))])
def test_unfold_and_fold_match_torch(kernel, dilation, padding, stride):
    x = _rand((2, 3, 7, 8), 16)
    check_op(lambda t: F.unfold(t, kernel, dilation, padding, stride),
             lambda t: TF.unfold(t, kernel, dilation, padding, stride), x)
    cols = TF.unfold(torch.tensor(x), kernel, dilation, padding, stride).numpy()
    check_op(lambda t: F.fold(t, (7, 8), kernel, dilation, padding, stride),
             lambda t: TF.fold(t, (7, 8), kernel, dilation, padding, stride), cols)


@pytest.mark.parametrize("mode,value", [("constant", 1.5), ("reflect", None), ("replicate", None),
                                        ("circular", None)])
def test_pad_matches_torch(mode, value):
    check_op(lambda t: F.pad(t, (1, 2, 2, 1), mode=mode, value=value),
             lambda t: TF.pad(t, (1, 2, 2, 1), mode=mode, value=value), _rand((1, 2, 3, 4), 17))


# ---- layers ----

LAYERS = [
    ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 9)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (1, 2, 8, 7)),
    ("AvgPool1d", dict(kernel_size=2, ceil_mode=True), (1, 2, 7)),
    ("AvgPool2d", dict(kernel_size=3, stride=1, padding=1, count_include_pad=False), (1, 2, 5, 5)),
    ("AdaptiveAvgPool2d", dict(output_size=(2, 3)), (1, 2, 5, 7)),
    ("AdaptiveMaxPool2d", dict(output_size=(2, 3)), (1, 2, 5, 7)),
    ("Upsample", dict(scale_factor=2, mode="nearest"), (1, 2, 3, 4)),
    ("Upsample", dict(size=(5, 7), mode="bilinear", align_corners=True), (1, 2, 3, 4)),
    ("Unfold", dict(kernel_size=2, stride=2), (1, 2, 4, 6)),
]


@pytest.mark.parametrize("name,kwargs,shape", LAYERS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(LAYERS)])
def test_layers_match_torch(name, kwargs, shape):
    ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert ours.state_dict() == {} and len(theirs.state_dict()) == 0
    check_op(ours, theirs, _rand(shape, 18))


# ---- errors ----

def test_errors_name_the_problem():
    x = lt.tensor(_rand((1, 2, 4, 4), 19))
    with pytest.raises(RuntimeError, match="max_pool2d: expected 3D .* or 4D"):
        F.max_pool2d(x.reshape(32), 2)
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(RuntimeError, match="pad should be at most half of kernel size"):
        F.avg_pool2d(x, 3, padding=2)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        F.max_pool2d(x, 5)
    with pytest.raises(RuntimeError, match="divisor must be not zero"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match="exactly one of size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(NotImplementedError, match="bilinear mode needs 4D"):
        F.interpolate(x.reshape(1, 2, 16), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(RuntimeError, match="fold: .*sliding blocks"):
        F.fold(lt.tensor(_rand((1, 8, 5), 20)), (4, 4), 2)
    with pytest.raises(ValueError, match="kernel_size must be an int or a tuple of 2"):
        F.max_pool2d(x, (2, 2, 2))

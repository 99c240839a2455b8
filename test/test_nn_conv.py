"""Convolutions (lt.nn.functional.conv*/conv_transpose*, nn.Conv*/ConvTranspose*) against torch:
forward values and the gradients of input, weight and bias for the same upstream gradient."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytensor as lt
import lazytensor.nn as nn
import lazytensor.nn.functional as F
from lazytensor.nn import conv as conv_module

torch = pytest.importorskip("torch")
TF = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")

RTOL, ATOL = 1e-4, 1e-5


def _close(got: lt.Tensor, want: "torch.Tensor", what: str) -> None:
    assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=what)


def check_op(ours, theirs, arrays: list[np.ndarray | None], view=lambda t: t, seed: int = 0) -> None:
    """Run ours/theirs on the same arrays (None passes through, view applied to the first) and compare the
    outputs and every input's gradient for one random upstream gradient."""
    lt_in = [None if a is None else lt.tensor(a, requires_grad=True) for a in arrays]
    th_in = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out = ours(view(lt_in[0]), *lt_in[1:])
    ref = theirs(view(th_in[0]), *th_in[1:])
    up = np.random.default_rng(seed + 1).standard_normal(tuple(ref.shape)).astype(np.float32)
    out.backward(lt.tensor(up))          # backward before realizing out: realize keeps only the value
    ref.backward(torch.tensor(up))
    grads = [t.grad for t in lt_in if t is not None]
    lt.realize(out, *grads)
    _close(out, ref, "output")
    for i, (a, b) in enumerate(zip(lt_in, th_in)):
        if a is not None:
            _close(a.grad, b.grad, f"grad of input {i}")


def _rand(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# (input shape, weight shape, stride, padding, dilation, groups, bias)
CONV2D_CASES = [
    ((2, 3, 7, 8), (4, 3, 3, 3), 1, 0, 1, 1, True),
    ((1, 3, 9, 7), (5, 3, 3, 3), 2, 1, 1, 1, True),          # batch 1, odd sizes
    ((2, 4, 10, 9), (6, 2, 3, 2), (2, 1), (1, 0), (2, 1), 2, True),
    ((2, 4, 6, 6), (4, 1, 3, 3), 1, 1, 1, 4, False),          # depthwise
    ((1, 2, 9, 8), (3, 2, 2, 1), 3, 1, 1, 1, True),           # stride > kernel
    ((1, 2, 7, 7), (2, 2, 3, 3), 1, "same", 2, 1, True),
    ((1, 2, 6, 5), (3, 2, 2, 4), 1, "same", 1, 1, False),     # 'same' with even kernels: extra pad after
    ((1, 2, 5, 5), (2, 2, 3, 3), 2, 2, 3, 1, True),           # dilation 3 with big padding
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups,bias", CONV2D_CASES)
def test_conv2d_matches_torch(xs, ws, stride, padding, dilation, groups, bias):
    arrays = [_rand(xs, 0), _rand(ws, 1), _rand((ws[0],), 2) if bias else None]
    check_op(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups),
             lambda x, w, b: TF.conv2d(x, w, b, stride, padding, dilation, groups), arrays)


CONV1D_CASES = [
    ((2, 3, 11), (4, 3, 3), 1, 0, 1, 1),
    ((1, 4, 10), (6, 2, 4), 3, 2, 2, 2),
    ((2, 2, 7), (2, 2, 5), 1, "same", 1, 1),
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV1D_CASES)
def test_conv1d_matches_torch(xs, ws, stride, padding, dilation, groups):
    arrays = [_rand(xs, 3), _rand(ws, 4), _rand((ws[0],), 5)]
    check_op(lambda x, w, b: F.conv1d(x, w, b, stride, padding, dilation, groups),
             lambda x, w, b: TF.conv1d(x, w, b, stride, padding, dilation, groups), arrays)


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", [
    ((1, 2, 5, 6, 4), (3, 2, 3, 2, 2), 1, 1, 1, 1),
    ((2, 4, 5, 5, 5), (2, 2, 2, 3, 2), (2, 1, 2), (0, 1, 1), (1, 2, 1), 2),
])
def test_conv3d_matches_torch(xs, ws, stride, padding, dilation, groups):
    arrays = [_rand(xs, 6), _rand(ws, 7), _rand((ws[0],), 8)]
    check_op(lambda x, w, b: F.conv3d(x, w, b, stride, padding, dilation, groups),
             lambda x, w, b: TF.conv3d(x, w, b, stride, padding, dilation, groups), arrays)


# (input shape, weight shape, stride, padding, output_padding, groups, dilation)
CONV_T2D_CASES = [
    ((2, 3, 4, 5), (3, 2, 3, 3), 1, 0, 0, 1, 1),
    ((1, 4, 3, 4), (4, 3, 3, 2), 2, 1, 1, 1, 1),
    ((2, 4, 5, 3), (4, 1, 2, 3), (2, 3), (0, 1), (1, 2), 2, 1),
    ((1, 2, 4, 4), (2, 3, 3, 3), 2, 3, 0, 1, 2),               # padding > dilation·(k-1): crops
]


@pytest.mark.parametrize("xs,ws,stride,padding,out_pad,groups,dilation", CONV_T2D_CASES)
def test_conv_transpose2d_matches_torch(xs, ws, stride, padding, out_pad, groups, dilation):
    arrays = [_rand(xs, 9), _rand(ws, 10), _rand((ws[1] * groups,), 11)]
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, out_pad, groups, dilation),
             lambda x, w, b: TF.conv_transpose2d(x, w, b, stride, padding, out_pad, groups, dilation), arrays)


@pytest.mark.parametrize("xs,ws,stride,padding,out_pad,groups,dilation", [
    ((1, 4, 5), (4, 1, 4), 3, 1, 2, 4, 2),
])
def test_conv_transpose1d_matches_torch(xs, ws, stride, padding, out_pad, groups, dilation):
    arrays = [_rand(xs, 12), _rand(ws, 13), _rand((ws[1] * groups,), 14)]
    check_op(lambda x, w, b: F.conv_transpose1d(x, w, b, stride, padding, out_pad, groups, dilation),
             lambda x, w, b: TF.conv_transpose1d(x, w, b, stride, padding, out_pad, groups, dilation), arrays)


VIEWS = {
    "transposed": (lambda t: t.transpose(2, 3), (2, 3, 6, 7)),
    "stepped": (lambda t: t[:, :, ::2, 1:], (2, 3, 11, 8)),
}


@pytest.mark.parametrize("name", list(VIEWS))
def test_conv2d_non_contiguous_input(name):
    view, shape = VIEWS[name]
    arrays = [_rand(shape, 15), _rand((4, 3, 3, 3), 16), _rand((4,), 17)]
    check_op(lambda x, w, b: F.conv2d(x, w, b, 1, 1), lambda x, w, b: TF.conv2d(x, w, b, 1, 1), arrays,
             view=view)


def test_conv2d_unbatched_input():
    arrays = [_rand((3, 6, 5), 18), _rand((2, 3, 3, 3), 19), None]
    check_op(lambda x, w, b: F.conv2d(x, w, b, padding=1), lambda x, w, b: TF.conv2d(x, w, b, padding=1),
             arrays)


def test_conv2d_float64():
    x, w = np.random.default_rng(20).standard_normal((1, 2, 5, 5)), np.random.default_rng(21).standard_normal(
        (3, 2, 3, 3))
    out = F.conv2d(lt.tensor(x), lt.tensor(w), stride=2, padding=1)
    ref = TF.conv2d(torch.tensor(x), torch.tensor(w), stride=2, padding=1)
    assert out.dtype == lt.float64
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)


def test_conv2d_forward_fuses_windows_multiply_and_sum():
    x = lt.tensor(_rand((2, 3, 8, 8), 22))
    w, b = lt.tensor(_rand((4, 3, 3, 3), 23)), lt.tensor(_rand((4,), 24))
    # the windows are a view: one reduce kernel (plus at most one that stores the padded input)
    assert len(F.conv2d(x, w, b, stride=2, dilation=2).schedule()) == 1
    kernels = F.conv2d(x, w, b, stride=2, padding=1, dilation=2).schedule()
    assert len(kernels) <= 2


# ---- the channels-last layout: ≥ 8 input channels and whole panels of 16 (float64: 8) output channels ----

# (input shape, weight shape, stride, padding, dilation, groups)
CHANNELS_LAST_CASES = [
    ((2, 8, 7, 9), (16, 8, 3, 3), 1, 1, 1, 1),                 # tile rows with a tail (9 = 6 + 3)
    ((1, 12, 9, 8), (32, 12, 3, 2), (2, 1), (1, 0), (1, 2), 1),
    ((2, 16, 6, 6), (32, 8, 3, 3), 1, "same", 1, 2),           # groups: 16 outputs per group
    ((1, 9, 5, 13), (16, 9, 1, 1), 1, 0, 1, 1),                # 1x1 conv
    ((1, 8, 11), (16, 8, 5), 2, 2, 1, 1),                      # conv1d
    ((1, 8, 4, 5, 6), (16, 8, 2, 3, 3), (1, 2, 1), 1, (2, 1, 1), 1),   # conv3d
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CHANNELS_LAST_CASES)
def test_channels_last_conv_matches_torch(xs, ws, stride, padding, dilation, groups):
    n = len(xs) - 2
    ours = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    theirs = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}[n]
    layout = conv_module._conv_layout(lt.tensor(_rand(xs, 0)), lt.tensor(_rand(ws, 0)), groups)
    assert layout == "channels_last"
    arrays = [_rand(xs, 40), _rand(ws, 41), _rand((ws[0],), 42)]
    check_op(lambda x, w, b: ours(x, w, b, stride, padding, dilation, groups),
             lambda x, w, b: theirs(x, w, b, stride, padding, dilation, groups), arrays)


def test_channels_last_conv_transpose_matches_torch():
    # a transposed conv is a stride-1 conv over the zero-stuffed input: 8 in, 16 out channels
    arrays = [_rand((1, 8, 4, 5), 53), _rand((8, 16, 3, 3), 54), _rand((16,), 55)]
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1),
             lambda x, w, b: TF.conv_transpose2d(x, w, b, 2, 1, 1), arrays)


def test_channels_last_non_contiguous_unbatched_and_float64():
    arrays = [_rand((2, 8, 9, 7), 43), _rand((16, 8, 3, 3), 44), _rand((16,), 45)]
    check_op(lambda x, w, b: F.conv2d(x, w, b, 1, 1), lambda x, w, b: TF.conv2d(x, w, b, 1, 1), arrays,
             view=lambda t: t.transpose(2, 3))
    check_op(lambda x, w, b: F.conv2d(x, w, b, padding=1), lambda x, w, b: TF.conv2d(x, w, b, padding=1),
             [_rand((8, 5, 6), 46), _rand((16, 8, 3, 3), 47), None])
    # 5 output columns: not whole vectors of float64 on any host (4 lanes on AVX2, 8 on AVX-512)
    x, w = np.random.default_rng(48).standard_normal((2, 8, 5, 7)), np.random.default_rng(49).standard_normal(
        (8, 8, 3, 3))
    assert conv_module._conv_layout(lt.tensor(x), lt.tensor(w), 1) == "channels_last"
    out = F.conv2d(lt.tensor(x), lt.tensor(w), padding=1)
    np.testing.assert_allclose(out.numpy(), TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy(),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("xs,ws,groups,layout", [
    ((1, 3, 8, 8), (32, 3, 3, 3), 1, "direct"),            # few input channels: a short reduce
    ((1, 16, 8, 8), (24, 16, 3, 3), 1, "direct"),          # output channels not whole panels
    ((1, 16, 8, 8), (32, 4, 3, 3), 4, "direct"),           # 8 outputs per group
    ((1, 16, 8, 8), (32, 16, 3, 3), 1, "channels_last"),
    ((1, 16, 8, 18), (32, 16, 3, 3), 1, "direct on the CPU"),   # output rows of 16 pixels: whole CPU vectors
])
def test_conv_layout_choice(xs, ws, groups, layout):
    if layout == "direct on the CPU":
        layout = "direct" if lt.Device.DEFAULT == "CPU" else "channels_last"
    assert conv_module._conv_layout(lt.tensor(_rand(xs, 0)), lt.tensor(_rand(ws, 0)), groups) == layout


def test_channels_last_kernels():
    """Input transpose, weight packing, the reduce, and the transpose back with the bias and relu fused.
    (7 columns: never whole vectors, so channels-last on every host.)"""
    x = lt.tensor(_rand((2, 16, 7, 7), 50))
    w, b = lt.tensor(_rand((32, 16, 3, 3), 51)), lt.tensor(_rand((32,), 52))
    out = F.conv2d(x, w, b, padding=1).relu()
    assert len(out.schedule()) == 4
    np.testing.assert_allclose(out.numpy(), TF.conv2d(torch.tensor(x.numpy()), torch.tensor(w.numpy()),
                                                      torch.tensor(b.numpy()), padding=1).relu().numpy(),
                               rtol=RTOL, atol=ATOL)


# ---- layers ----

LAYERS = [
    ("Conv1d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, groups=2), (2, 4, 9)),
    ("Conv2d", dict(in_channels=3, out_channels=4, kernel_size=(3, 2), padding="same", dilation=2),
     (2, 3, 7, 6)),
    ("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3, bias=False), (1, 2, 5, 5)),
    ("Conv3d", dict(in_channels=2, out_channels=3, kernel_size=2, stride=(1, 2, 1)), (1, 2, 4, 5, 3)),
    ("ConvTranspose1d", dict(in_channels=4, out_channels=2, kernel_size=3, stride=2, output_padding=1),
     (2, 4, 5)),
    ("ConvTranspose2d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, groups=2),
     (1, 4, 4, 3)),
]


@pytest.mark.parametrize("name,kwargs,shape", LAYERS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(LAYERS)])
def test_layer_state_dict_round_trip(name, kwargs, shape):
    theirs = getattr(torch.nn, name)(**kwargs)
    ours = getattr(nn, name)(**kwargs)
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    assert ours.weight.shape == tuple(theirs.weight.shape)
    x = _rand(shape, 25)
    ours.load_state_dict(theirs.state_dict())                      # torch → ours
    np.testing.assert_allclose(ours(lt.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=RTOL, atol=ATOL)
    fresh = getattr(nn, name)(**kwargs)                             # ours → torch
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in fresh.state_dict().items()})
    np.testing.assert_allclose(fresh(lt.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("mode,padding", [("reflect", (2, 1)), ("replicate", "same"), ("circular", 1)])
def test_conv2d_padding_modes(mode, padding):
    theirs = torch.nn.Conv2d(2, 3, 3, padding=padding, padding_mode=mode)
    ours = nn.Conv2d(2, 3, 3, padding=padding, padding_mode=mode)
    ours.load_state_dict(theirs.state_dict())
    check_op(lambda x: ours(x), lambda x: theirs(x), [_rand((1, 2, 5, 6), 26)])


def test_layer_gradients_reach_parameters():
    theirs = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
    ours = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    ours.load_state_dict(theirs.state_dict())
    x = _rand((2, 3, 7, 7), 27)
    (ours(lt.tensor(x)) ** 2).sum().backward()
    (theirs(torch.tensor(x)) ** 2).sum().backward()
    _close(ours.weight.grad, theirs.weight.grad, "weight grad")
    _close(ours.bias.grad, theirs.bias.grad, "bias grad")


def test_conv_transpose_output_size():
    theirs = torch.nn.ConvTranspose2d(2, 3, 3, stride=3, padding=1)
    ours = nn.ConvTranspose2d(2, 3, 3, stride=3, padding=1)
    ours.load_state_dict(theirs.state_dict())
    x = _rand((1, 2, 4, 3), 28)
    for size in [(10, 7), (12, 9), (1, 3, 11, 8)]:
        got, want = ours(lt.tensor(x), output_size=size), theirs(torch.tensor(x), output_size=size)
        _close(got, want, f"output_size {size}")
    with pytest.raises(ValueError, match="valid sizes"):
        ours(lt.tensor(x), output_size=(13, 7))


@pytest.mark.parametrize("name,kwargs", [
    ("Conv1d", dict(in_channels=3, out_channels=5, kernel_size=4)),
    ("Conv2d", dict(in_channels=6, out_channels=40, kernel_size=3, groups=2)),
    ("ConvTranspose2d", dict(in_channels=4, out_channels=30, kernel_size=(2, 3))),
])
def test_default_init_is_kaiming_uniform(name, kwargs):
    layer = getattr(nn, name)(**kwargs)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    fan_in = w.shape[1] * math.prod(w.shape[2:])
    bound = 1 / math.sqrt(fan_in)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # a real U(-bound, bound) draw: spread over the range, mean ~0, std ~ bound/sqrt(3)
    assert w.max() > 0.8 * bound and w.min() < -0.8 * bound
    assert abs(w.mean()) < 0.15 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.15 * bound
    assert len(np.unique(w)) == w.size
    assert layer.weight.requires_grad and layer.bias.requires_grad


def test_repr_matches_torch():
    kwargs = dict(in_channels=4, out_channels=8, kernel_size=3, stride=2, padding=1, groups=2, bias=False)
    assert repr(nn.Conv2d(**kwargs)) == repr(torch.nn.Conv2d(**kwargs))


# ---- errors ----

def _error(fn, exc=RuntimeError, match=None):
    with pytest.raises(exc, match=match):
        fn()


def test_errors_name_the_problem():
    x = lt.tensor(_rand((2, 3, 5, 5), 29))
    w = lt.tensor(_rand((4, 3, 3, 3), 30))
    w2 = lt.tensor(_rand((4, 2, 3, 3), 31))
    _error(lambda: F.conv2d(x, w2), match="expected input.*to have 2 channels")
    _error(lambda: F.conv2d(x.reshape(2, 75), w), match="conv2d: expected 3D .* or 4D")
    _error(lambda: F.conv2d(x, w, stride=2, padding="same"), ValueError, match="not supported for strided")
    _error(lambda: F.conv2d(x, w, padding="full"), ValueError, match="invalid padding string")
    _error(lambda: F.conv2d(x, w, groups=2), match="groups")
    _error(lambda: F.conv2d(lt.tensor(_rand((1, 3, 2, 2), 32)), w), match="kernel can't be greater")
    _error(lambda: F.conv2d(x.double(), w), match="input type .*float64.* and weight type .*float32")
    _error(lambda: F.conv2d(x, w, lt.tensor(_rand((3,), 33))), match="bias of shape")
    layer = nn.Conv2d(3, 4, 3)
    _error(lambda: layer(lt.tensor(_rand((2, 5, 6, 6), 34))), match="expected input with 3 channels")
    _error(lambda: layer(lt.tensor(_rand((6, 6), 35))), match="expected 3D .* or 4D")
    _error(lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, match="divisible by groups")
    _error(lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), ValueError, match="padding_mode")
    _error(lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"), ValueError, match="zeros")
    _error(lambda: F.conv_transpose2d(x, lt.tensor(_rand((3, 2, 3, 3), 36)), stride=2, output_padding=2),
           match="output padding must be smaller")


# ---- the convolution's own gradient (autograd.define_gradient) ----

def _reduce_count(tensor: lt.Tensor) -> int:
    return sum(op.startswith("reduce") for item in tensor.schedule() for op in item.fused_ops)


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", [
    ((2, 16, 8, 8), (32, 16, 3, 3), 1, 1, 1, 1),               # channels-last forward and gradients
    ((2, 3, 9, 8), (4, 3, 3, 3), 1, 1, 1, 1),                  # direct forward and weight gradient
    ((1, 16, 9, 7), (16, 4, 3, 2), (2, 3), (1, 0), (1, 2), 4),
])
def test_input_gradient_is_one_convolution(xs, ws, stride, padding, dilation, groups):
    """The input gradient is a transposed convolution (one reduce over output channels and taps), not
    one shifted reduce per kernel tap summed (what differentiating the window views gives)."""
    x = lt.tensor(_rand(xs, 60), requires_grad=True)
    w = lt.tensor(_rand(ws, 61), requires_grad=True)
    out = F.conv2d(x, w, None, stride, padding, dilation, groups)
    up = _rand(tuple(out.shape), 62)
    out.backward(lt.tensor(up))
    assert _reduce_count(x.grad) == 1 and _reduce_count(w.grad) == 1
    tx, tw = torch.tensor(x.numpy(), requires_grad=True), torch.tensor(w.numpy(), requires_grad=True)
    TF.conv2d(tx, tw, None, stride, padding, dilation, groups).backward(torch.tensor(up))
    _close(x.grad, tx.grad, "input gradient")
    _close(w.grad, tw.grad, "weight gradient")


def test_conv_gradient_with_inner_nodes_read_elsewhere():
    """A gradient reaching the conv's padded input from another consumer still flows (the custom rule
    replaces only the path through the convolution); chained convolutions, strided, with a residual."""
    xs, w1s, w2s = (2, 16, 9, 9), (32, 16, 3, 3), (16, 32, 3, 3)
    arrays = [_rand(xs, 70), _rand(w1s, 71) / 12, _rand(w2s, 72) / 17]   # weights at 1/sqrt(fan_in)

    def net(fn, pad):
        def run(x, w1, w2):
            h = fn.conv2d(x, w1, padding=1, stride=2).relu()
            y = fn.conv2d(h, w2, padding=1)
            return y.tanh().sum((2, 3)) + (pad(x, (1, 1, 1, 1)) ** 2).sum((2, 3)).sum(1, keepdim=True)
        return run

    check_op(net(F, lambda t, p: t.pad(p)), net(TF, TF.pad), arrays)


def test_second_order_gradient_through_conv():
    """The rule's output is itself differentiable: d/dx of sum((d conv(x, w)·u / dw)²) against torch."""
    x_np, w_np = _rand((1, 8, 6, 6), 80), _rand((16, 8, 3, 3), 81)
    x, w = lt.tensor(x_np, requires_grad=True), lt.tensor(w_np, requires_grad=True)
    (gw,) = F.conv2d(x, w, padding=1).sum().gradient(w)
    (gw * gw).sum().backward()
    tx, tw = torch.tensor(x_np, requires_grad=True), torch.tensor(w_np, requires_grad=True)
    (tgw,) = torch.autograd.grad(TF.conv2d(tx, tw, padding=1).sum(), tw, create_graph=True)
    (tgw * tgw).sum().backward()
    _close(gw, tgw, "weight gradient")
    _close(x.grad, tx.grad, "second-order input gradient")


def test_no_gradient_rule_recorded_without_grad():
    from lazytensor.autograd import CUSTOM_GRADIENTS
    x, w = lt.tensor(_rand((1, 8, 5, 5), 90)), lt.tensor(_rand((16, 8, 3, 3), 91), requires_grad=True)
    with lt.no_grad():
        out = F.conv2d(x, w, padding=1)
    assert not any(node in CUSTOM_GRADIENTS for node in _nodes_under(out))
    out = F.conv2d(x, w, padding=1)
    assert any(node in CUSTOM_GRADIENTS for node in _nodes_under(out))


def _nodes_under(t: lt.Tensor) -> list:
    from lazytensor import graph
    return graph.toposort([t.node])


@pytest.mark.parametrize("dtype", [np.float32, "float16", "bfloat16"])
@pytest.mark.parametrize("groups,stride,dilation", [(1, (1, 1), (1, 1)), (2, (2, 1), (1, 2))])
def test_direct_conv_graph_is_what_the_tensor_ops_record(groups, stride, dilation, dtype):
    """tensor_linalg.direct_conv builds nn/conv.py's direct layout from nodes (no per-op checks); it
    must be the very graph the tensor ops record (hash-consed: the same node), so schedules and caches
    are shared."""
    from lazytensor.nn import conv as conv_module
    from lazytensor.tensor_linalg import direct_conv
    rng = np.random.default_rng(0)
    x = lt.tensor(rng.standard_normal((2, 4, 18, 17)).astype(np.float32))
    w = lt.tensor(rng.standard_normal((6, 4 // groups, 3, 3)).astype(np.float32))
    if dtype != np.float32:
        x, w = x.to(getattr(lt, dtype)), w.to(getattr(lt, dtype))
    node = direct_conv(x, w, (3, 3), stride, dilation, groups).node
    win = conv_module.sliding_windows(x, (3, 3), stride, dilation)
    outs = tuple(win.shape[2:4])
    win = win.reshape((2, groups, 4 // groups) + outs + (3, 3)).permute([0, 1, 3, 4, 2, 5, 6]).unsqueeze(2)
    ww = w.reshape((1, groups, 6 // groups, 1, 1, 4 // groups, 3, 3))
    assert ((win * ww).sum((5, 6, 7)).reshape((2, 6) + outs)).node is node

"""Normalization (batch/instance/layer/group/RMS norm, local response norm, normalize) against torch:
forward values, gradients of input/weight/bias, running statistics, and state_dict round trips."""
from __future__ import annotations

import numpy as np
import pytest

import lazytensor as lt
import lazytensor.nn as nn
import lazytensor.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-4, 1e-5


def _rand(shape: tuple[int, ...], seed: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(np.float32)


def _close(got: lt.Tensor, want: "torch.Tensor", what: str) -> None:
    assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=what)


def check_op(ours, theirs, arrays: list[np.ndarray | None], view=lambda t: t) -> None:
    """Compare outputs and every array input's gradient (None passes through) for one upstream gradient."""
    lt_in = [None if a is None else lt.tensor(a, requires_grad=True) for a in arrays]
    th_in = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out = ours(view(lt_in[0]), *lt_in[1:])
    ref = theirs(view(th_in[0]), *th_in[1:])
    up = np.random.default_rng(7).standard_normal(tuple(ref.shape)).astype(np.float32)
    out.backward(lt.tensor(up))          # backward before realizing out: realize keeps only the value
    ref.backward(torch.tensor(up))
    lt.realize(out, *[t.grad for t in lt_in if t is not None])
    _close(out, ref, "output")
    for i, (a, b) in enumerate(zip(lt_in, th_in)):
        if a is not None:
            _close(a.grad, b.grad, f"grad of input {i}")


# ---- function forms ----

@pytest.mark.parametrize("shape,normalized,affine", [
    ((3, 4, 5), (5,), True),
    ((2, 3, 4, 5), (4, 5), True),
    ((6, 7), 7, False),
    ((1, 1, 9), (9,), True),
])
def test_layer_norm_matches_torch(shape, normalized, affine):
    wshape = (normalized,) if isinstance(normalized, int) else normalized
    weight, bias = (_rand(wshape, 1), _rand(wshape, 2)) if affine else (None, None)
    arrays = [_rand(shape, 0, 2, 1), weight, bias]
    check_op(lambda x, w, b: F.layer_norm(x, normalized, w, b, 1e-5),
             lambda x, w, b: TF.layer_norm(x, wshape, w, b, 1e-5), arrays)


@pytest.mark.parametrize("shape,groups,affine", [((3, 4, 5, 2), 2, True), ((2, 6, 7), 3, True),
                                                 ((1, 4, 3, 3), 4, False), ((2, 6), 1, True)])
def test_group_norm_matches_torch(shape, groups, affine):
    c = shape[1]
    arrays = [_rand(shape, 3, 3, -1), _rand((c,), 4) if affine else None, _rand((c,), 5) if affine else None]
    check_op(lambda x, w, b: F.group_norm(x, groups, w, b), lambda x, w, b: TF.group_norm(x, groups, w, b),
             arrays)


@pytest.mark.parametrize("shape,normalized,eps", [((3, 4, 5), (5,), None), ((2, 3, 4), (3, 4), 1e-3),
                                                  ((4, 6), 6, 1e-6)])
def test_rms_norm_matches_torch(shape, normalized, eps):
    wshape = (normalized,) if isinstance(normalized, int) else normalized
    check_op(lambda x, w: F.rms_norm(x, normalized, w, eps), lambda x, w: TF.rms_norm(x, wshape, w, eps),
             [_rand(shape, 6, 0.01), _rand(wshape, 7)])


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 5)])
def test_batch_norm_training_matches_torch(shape):
    c = shape[1]
    arrays = [_rand(shape, 8, 2, 3), _rand((c,), 9), _rand((c,), 10)]
    check_op(lambda x, w, b: F.batch_norm(x, None, None, w, b, True, 0.1, 1e-5),
             lambda x, w, b: TF.batch_norm(x, None, None, w, b, True, 0.1, 1e-5), arrays)


def test_batch_norm_eval_uses_running_stats():
    mean, var = _rand((3,), 11), np.abs(_rand((3,), 12)) + 0.5
    arrays = [_rand((2, 3, 4), 13), _rand((3,), 14), _rand((3,), 15)]
    check_op(lambda x, w, b: F.batch_norm(x, lt.tensor(mean), lt.tensor(var), w, b, False, 0.1, 1e-3),
             lambda x, w, b: TF.batch_norm(x, torch.tensor(mean), torch.tensor(var), w, b, False, 0.1, 1e-3),
             arrays)


def test_batch_norm_non_contiguous_input():
    arrays = [_rand((5, 3, 4), 16, 2), _rand((4,), 17), None]
    check_op(lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
             lambda x, w, b: TF.batch_norm(x, None, None, w, b, True), arrays,
             view=lambda t: t.transpose(1, 2))


@pytest.mark.parametrize("shape", [(2, 3, 5), (3, 2, 4, 3)])
def test_instance_norm_matches_torch(shape):
    c = shape[1]
    arrays = [_rand(shape, 18, 2, 1), _rand((c,), 19), _rand((c,), 20)]
    check_op(lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
             lambda x, w, b: TF.instance_norm(x, weight=w, bias=b), arrays)


@pytest.mark.parametrize("shape,size", [((2, 6, 5), 3), ((1, 4, 2, 2, 3), 4)])
def test_local_response_norm_matches_torch(shape, size):
    check_op(lambda x: F.local_response_norm(x, size, 0.1, 0.75, 2.0),
             lambda x: TF.local_response_norm(x, size, 0.1, 0.75, 2.0), [_rand(shape, 21)])


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, -1), (3.0, 0), (float("inf"), 1)])
def test_normalize_matches_torch(p, dim):
    x = _rand((3, 4, 5), 22)
    x[0, :, 0] = 0.0   # a zero vector along dim 1: the eps clamp keeps it finite
    check_op(lambda t: F.normalize(t, p, dim), lambda t: TF.normalize(t, p, dim), [x])


# ---- BatchNorm running statistics ----

@pytest.mark.parametrize("name,shape,momentum", [
    ("BatchNorm1d", (6, 3), 0.1),
    ("BatchNorm1d", (4, 3, 5), None),            # momentum=None: cumulative average
    ("BatchNorm2d", (4, 3, 5, 5), 0.1),
    ("BatchNorm2d", (4, 3, 5, 5), None),
    ("BatchNorm3d", (2, 3, 3, 2, 4), 0.5),
])
def test_batch_norm_running_stats_follow_torch(name, shape, momentum):
    ours, theirs = getattr(nn, name)(3, momentum=momentum), getattr(torch.nn, name)(3, momentum=momentum)
    for step in range(3):
        x = _rand(shape, 30 + step, 2.0, step)
        _close(ours(lt.tensor(x)), theirs(torch.tensor(x)), f"training output, step {step}")
    for key in ("running_mean", "running_var"):
        _close(getattr(ours, key), getattr(theirs, key), key)
    assert ours.num_batches_tracked.dtype == lt.int64 and ours.num_batches_tracked.item() == 3
    ours.eval()
    theirs.eval()
    x = _rand(shape, 40)
    _close(ours(lt.tensor(x)), theirs(torch.tensor(x)), "eval output")
    assert ours.num_batches_tracked.item() == 3


def test_batch_norm_forward_does_not_compute_running_stats():
    bn = nn.BatchNorm2d(3)
    bn(lt.tensor(_rand((2, 3, 4, 4), 41)))
    # the update is recorded lazily: realizing the buffer still has a kernel to run
    assert len(bn.running_mean.schedule()) >= 1
    assert len(bn.num_batches_tracked.schedule()) >= 1


@pytest.mark.parametrize("affine,track", [(False, True), (True, False), (False, False)])
def test_batch_norm_options(affine, track):
    ours = nn.BatchNorm2d(3, affine=affine, track_running_stats=track)
    theirs = torch.nn.BatchNorm2d(3, affine=affine, track_running_stats=track)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for step in range(2):
        x = _rand((2, 3, 3, 4), 42 + step, 1.5, 0.5)
        _close(ours(lt.tensor(x)), theirs(torch.tensor(x)), "training output")
    ours.eval()
    theirs.eval()
    x = _rand((2, 3, 3, 4), 45)
    _close(ours(lt.tensor(x)), theirs(torch.tensor(x)), "eval output")


def test_batch_norm_training_gradients_through_module():
    ours, theirs = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(_rand((3,), 46)))
        theirs.bias.copy_(torch.tensor(_rand((3,), 47)))
    ours.load_state_dict(theirs.state_dict())
    x = _rand((2, 3, 4, 3), 48, 2)
    a, b = lt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (ours(a) ** 3).sum().backward()
    (theirs(b) ** 3).sum().backward()
    _close(a.grad, b.grad, "input grad")
    _close(ours.weight.grad, theirs.weight.grad, "weight grad")
    _close(ours.bias.grad, theirs.bias.grad, "bias grad")


@pytest.mark.parametrize("name,shape", [("InstanceNorm1d", (2, 3, 6)), ("InstanceNorm2d", (2, 3, 4, 5)),
                                        ("InstanceNorm2d", (3, 4, 5))])
def test_instance_norm_running_stats_follow_torch(name, shape):
    ours = getattr(nn, name)(3, affine=True, track_running_stats=True)
    theirs = getattr(torch.nn, name)(3, affine=True, track_running_stats=True)
    for step in range(2):
        x = _rand(shape, 50 + step, 2, 1)
        _close(ours(lt.tensor(x)), theirs(torch.tensor(x)), "training output")
    _close(ours.running_mean, theirs.running_mean, "running_mean")
    _close(ours.running_var, theirs.running_var, "running_var")
    ours.eval()
    theirs.eval()
    x = _rand(shape, 55)
    _close(ours(lt.tensor(x)), theirs(torch.tensor(x)), "eval output")


# ---- state_dict round trips ----

LAYERS = [
    ("BatchNorm1d", (3,), {}, (4, 3)),
    ("BatchNorm2d", (3,), {}, (2, 3, 4, 4)),
    ("LayerNorm", ((4, 5),), {}, (2, 3, 4, 5)),
    ("LayerNorm", (5,), dict(bias=False), (2, 5)),
    ("LayerNorm", (5,), dict(elementwise_affine=False), (2, 5)),
    ("GroupNorm", (2, 4), {}, (2, 4, 3)),
    ("GroupNorm", (2, 4), dict(bias=False), (2, 4, 3)),
    ("BatchNorm2d", (3,), dict(bias=False), (2, 3, 2, 2)),
    ("RMSNorm", ((3, 4),), dict(eps=1e-4), (2, 3, 4)),
    ("InstanceNorm2d", (3,), dict(affine=True, track_running_stats=True), (2, 3, 4, 4)),
    ("LocalResponseNorm", (3,), {}, (2, 5, 4)),
]


def _randomize(state: dict) -> dict:
    """Random values of the same shapes (so the round trip cannot pass with default ones/zeros)."""
    out = {}
    for i, (k, v) in enumerate(state.items()):
        if v.dtype.is_floating_point:
            value = _rand(tuple(v.shape), 60 + i)
            out[k] = torch.tensor(np.abs(value) + 0.5 if "var" in k else value)
        else:
            out[k] = v.clone()
    return out


@pytest.mark.parametrize("name,args,kwargs,shape", LAYERS, ids=[f"{n}-{i}" for i, (n, *_rest) in
                                                                enumerate(LAYERS)])
def test_layer_state_dict_round_trip(name, args, kwargs, shape):
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    theirs.load_state_dict(_randomize(theirs.state_dict()))
    theirs.eval()
    ours = getattr(nn, name)(*args, **kwargs).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = _rand(shape, 70, 2, 0.5)
    ours.load_state_dict(theirs.state_dict())                       # torch → ours
    _close(ours(lt.tensor(x)), theirs(torch.tensor(x)), "torch → ours")
    fresh_theirs = getattr(torch.nn, name)(*args, **kwargs).eval()  # ours → torch
    fresh_theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    _close(ours(lt.tensor(x)), fresh_theirs(torch.tensor(x)), "ours → torch")


def test_default_parameters_like_torch():
    bn = nn.BatchNorm2d(4)
    np.testing.assert_array_equal(bn.weight.numpy(), np.ones(4, np.float32))
    np.testing.assert_array_equal(bn.bias.numpy(), np.zeros(4, np.float32))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(4, np.float32))
    assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked.item() == 0
    assert nn.InstanceNorm2d(3).weight is None and nn.InstanceNorm2d(3).running_mean is None
    assert nn.RMSNorm(4).eps is None and nn.RMSNorm(4).weight.shape == (4,)
    assert repr(nn.BatchNorm2d(4)) == repr(torch.nn.BatchNorm2d(4))
    for args, kwargs in [((4,), dict(bias=False)), ((3,), dict(affine=True))]:
        assert repr(nn.InstanceNorm1d(*args, **kwargs)) == repr(torch.nn.InstanceNorm1d(*args, **kwargs))
    assert repr(nn.LayerNorm(5, bias=False)) == repr(torch.nn.LayerNorm(5, bias=False))
    assert repr(nn.GroupNorm(2, 4)) == repr(torch.nn.GroupNorm(2, 4))


# ---- errors ----

def test_errors_name_the_problem():
    x = lt.tensor(_rand((2, 3, 4), 80))
    with pytest.raises(ValueError, match="BatchNorm2d: expected 4D input"):
        nn.BatchNorm2d(3)(x)
    with pytest.raises(ValueError, match="expected input with 4 channels"):
        nn.BatchNorm1d(4)(x)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(lt.tensor(_rand((1, 3), 81)), None, None, training=True)
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[5\], expected input with shape \[\*, 5\]"):
        F.layer_norm(x, (5,))
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(x, 2)
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nn.GroupNorm(2, 3)
    with pytest.raises(RuntimeError, match="floating-point"):
        F.layer_norm(lt.tensor([[1, 2]]), (2,))
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements"):
        F.batch_norm(x, lt.zeros(4), lt.ones(4))
    with pytest.raises(RuntimeError, match="must be defined in evaluation mode"):
        F.batch_norm(x, None, None)


def test_small_cnn_training_steps_match_torch():
    """Conv → BatchNorm → ReLU → MaxPool → AvgPool, three SGD steps: parameters, running stats and losses
    follow torch, and each Optimizer.step() computes the running stats (nothing stays pending)."""
    import lazytensor.optim as optim

    def build(lib):
        return lib.Sequential(lib.Conv2d(2, 4, 3, padding=1), lib.BatchNorm2d(4), lib.ReLU(),
                              lib.MaxPool2d(2), lib.Conv2d(4, 3, 2), lib.AdaptiveAvgPool2d(1))
    theirs, ours = build(torch.nn), build(nn)
    ours.load_state_dict(theirs.state_dict())
    opt_t, opt_o = torch.optim.SGD(theirs.parameters(), lr=0.1), optim.SGD(ours.parameters(), lr=0.1)
    for step in range(3):
        x = _rand((2, 2, 6, 6), 90 + step, 2, 0.5)
        loss_t = (theirs(torch.tensor(x)) ** 2).mean()
        loss_o = (ours(lt.tensor(x)) ** 2).mean()
        opt_t.zero_grad()
        opt_o.zero_grad()
        loss_t.backward()
        loss_o.backward()
        opt_t.step()
        opt_o.step()
        assert len(ours[1].running_mean.schedule()) == 0, "running stats left pending after step()"
        np.testing.assert_allclose(loss_o.item(), loss_t.item(), rtol=1e-4)
    for key, value in theirs.state_dict().items():
        got = ours.state_dict()[key].numpy()
        np.testing.assert_allclose(got, value.numpy(), rtol=1e-4, atol=1e-5, err_msg=key)

"""Optimizers vs torch.optim: 20-step trajectories, param groups, state_dict, zero_grad, the fused step,
and nn.utils gradient clipping vs torch.nn.utils."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pytest
import torch

import lazytensor as lt
import lazytensor.optim as optim
from lazytensor.nn import utils as nn_utils
from helpers import assert_close

REALIZE = sys.modules["lazytensor.realize"]

_RNG = np.random.default_rng(7)
X = _RNG.normal(size=(8, 3))
Y = _RNG.normal(size=(8, 2))
INIT = [_RNG.normal(size=(3, 5)) * 0.5, _RNG.normal(size=(5,)) * 0.1, _RNG.normal(size=(5, 2)) * 0.5]

OPT_CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.02, "maximize": True}),
    ("Adam", {"lr": 0.02, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {"lr": 0.05}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.7, "centered": True, "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.2}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.05, "betas": (0.7, 0.9), "weight_decay": 0.1}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.05, "momentum_decay": 0.01, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {}),
    ("RAdam", {"lr": 0.05, "betas": (0.8, 0.9), "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
]


def _leaf(n: int) -> lt.Tensor:
    """A fresh trainable leaf of n zeros (its own buffer)."""
    return lt.tensor(np.zeros(n, dtype=np.float32), requires_grad=True)


def _loss(params: list[Any], x: Any, y: Any) -> Any:
    w1, b1, w2 = params
    return (((x @ w1 + b1).tanh() @ w2 - y) ** 2).mean()


def run_ours(
    name: str, kwargs: dict, steps: int, dtype: str = "float64"
) -> tuple[list[np.ndarray], list[float]]:
    params = [lt.tensor(a.astype(dtype), requires_grad=True) for a in INIT]
    x, y = lt.tensor(X.astype(dtype)), lt.tensor(Y.astype(dtype))
    opt = getattr(optim, name)(params, **kwargs)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = _loss(params, x, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return [p.numpy() for p in params], losses


def run_torch(
    name: str, kwargs: dict, steps: int, dtype: str = "float64"
) -> tuple[list[np.ndarray], list[float]]:
    params = [torch.tensor(a.astype(dtype), requires_grad=True) for a in INIT]
    x, y = torch.tensor(X.astype(dtype)), torch.tensor(Y.astype(dtype))
    opt = getattr(torch.optim, name)(params, **kwargs)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = _loss(params, x, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return [p.detach().numpy() for p in params], losses


def _case_id(case: tuple[str, dict]) -> str:
    name, kwargs = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items())


@pytest.mark.parametrize("case", OPT_CASES, ids=[_case_id(c) for c in OPT_CASES])
def test_trajectory_matches_torch_float64(case: tuple[str, dict]) -> None:
    name, kwargs = case
    ours, our_losses = run_ours(name, kwargs, 20)
    theirs, their_losses = run_torch(name, kwargs, 20)
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-10, atol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


FLOAT32_CASES = [OPT_CASES[i] for i in (1, 3, 7, 11, 15, 17, 19, 21, 24)]


@pytest.mark.parametrize("case", FLOAT32_CASES, ids=[_case_id(c) for c in FLOAT32_CASES])
def test_trajectory_matches_torch_float32(case: tuple[str, dict]) -> None:
    name, kwargs = case
    ours, our_losses = run_ours(name, kwargs, 20, "float32")
    theirs, their_losses = run_torch(name, kwargs, 20, "float32")
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-5, atol=1e-6)
    for a, b in zip(ours, theirs):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_param_groups_with_their_own_hyperparameters(name: str) -> None:
    def groups(params: list[Any]) -> list[dict]:
        return [{"params": params[:2], "lr": 0.1}, {"params": params[2:], "lr": 0.01, "weight_decay": 0.5}]

    kwargs = {"momentum": 0.9} if name == "SGD" else {}
    ours = [lt.tensor(a, requires_grad=True) for a in INIT]
    theirs = [torch.tensor(a, requires_grad=True) for a in INIT]
    opt_ours = getattr(optim, name)(groups(ours), lr=0.5, **kwargs)
    opt_theirs = getattr(torch.optim, name)(groups(theirs), lr=0.5, **kwargs)
    for _ in range(5):
        for params, opt, x, y in (
            (ours, opt_ours, lt.tensor(X), lt.tensor(Y)),
            (theirs, opt_theirs, torch.tensor(X), torch.tensor(Y)),
        ):
            opt.zero_grad()
            _loss(params, x, y).backward()
            opt.step()
    for a, b in zip(ours, theirs):
        assert_close(a, b.detach(), rtol=1e-10, atol=1e-12)
    assert [g["lr"] for g in opt_ours.param_groups] == [0.1, 0.01]
    assert opt_ours.param_groups[0]["weight_decay"] == opt_theirs.param_groups[0]["weight_decay"]


def test_add_param_group_fills_defaults_and_rejects_duplicates() -> None:
    a, b = _leaf(2), lt.ones(3, requires_grad=True)
    opt = optim.Adam([a], lr=0.1, betas=(0.5, 0.6))
    opt.add_param_group({"params": b, "lr": 0.2})
    assert opt.param_groups[1]["betas"] == (0.5, 0.6) and opt.param_groups[1]["lr"] == 0.2
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
        (lambda p: optim.SGD([p], lr=-1), "Invalid learning rate"),
        (lambda p: optim.Adam([p], betas=(1.0, 0.9)), "Invalid beta parameter at index 0"),
        (lambda p: optim.Adam([p], eps=-1e-3), "Invalid epsilon"),
        (lambda p: optim.SGD([p], lr=0.1, nesterov=True), "Nesterov momentum requires"),
        (lambda p: optim.SGD([p * 2], lr=0.1), "non-leaf"),
        (lambda p: optim.SGD(p, lr=0.1), "iterable of Tensors"),
        (lambda p: optim.SGD({p}, lr=0.1), "ordered collections"),
    ],
)
def test_bad_arguments_raise_like_torch(make: Any, match: str) -> None:
    p = _leaf(3)
    with pytest.raises((ValueError, TypeError), match=match):
        make(p)


def _train(params: list[Any], opt: Any, steps: int) -> None:
    x, y = lt.tensor(X), lt.tensor(Y)
    for _ in range(steps):
        opt.zero_grad()
        _loss(params, x, y).backward()
        opt.step()


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", {"lr": 0.05, "momentum": 0.9}),
        ("Adam", {"lr": 0.05, "amsgrad": True}),
        ("NAdam", {"lr": 0.05}),
        ("Adagrad", {"lr": 0.1}),
        ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ],
)
def test_state_dict_round_trip_resumes_the_same_trajectory(name: str, kwargs: dict) -> None:
    straight = [lt.tensor(a, requires_grad=True) for a in INIT]
    _train(straight, getattr(optim, name)(straight, **kwargs), 8)

    first = [lt.tensor(a, requires_grad=True) for a in INIT]
    opt = getattr(optim, name)(first, **kwargs)
    _train(first, opt, 4)
    saved = opt.state_dict()
    assert sorted(saved["state"]) == [0, 1, 2]
    assert saved["param_groups"][0]["params"] == [0, 1, 2]
    resumed = [lt.tensor(p.numpy(), requires_grad=True) for p in first]
    _train(first, opt, 2)  # a saved state_dict is a snapshot: later steps must not change it
    opt2 = getattr(optim, name)(resumed, lr=123.0)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    _train(resumed, opt2, 4)
    for a, b in zip(resumed, straight):
        assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("Adam", {"lr": 0.05}),
        ("SGD", {"lr": 0.05, "momentum": 0.9}),
        ("NAdam", {"lr": 0.05}),
        ("RMSprop", {"lr": 0.01, "centered": True}),
    ],
)
def test_loading_a_torch_state_dict_continues_torchs_trajectory(name: str, kwargs: dict) -> None:
    theirs = [torch.tensor(a, requires_grad=True) for a in INIT]
    opt_t = getattr(torch.optim, name)(theirs, **kwargs)
    x, y = torch.tensor(X), torch.tensor(Y)
    for _ in range(3):
        opt_t.zero_grad()
        _loss(theirs, x, y).backward()
        opt_t.step()
    ours = [lt.tensor(p.detach().numpy(), requires_grad=True) for p in theirs]
    opt = getattr(optim, name)(ours, **kwargs)
    opt.load_state_dict(opt_t.state_dict())
    for _ in range(4):
        opt_t.zero_grad()
        _loss(theirs, x, y).backward()
        opt_t.step()
    _train(ours, opt, 4)
    for a, b in zip(ours, theirs):
        assert_close(a, b.detach(), rtol=1e-10, atol=1e-12)


def test_load_state_dict_checks_group_sizes() -> None:
    opt = optim.SGD([_leaf(2)], lr=0.1)
    other = optim.SGD([_leaf(2), _leaf(1)], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(other.state_dict())


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none: bool) -> None:
    p = lt.tensor([1.0, 2.0], requires_grad=True)
    (p * p).sum().backward()
    opt = optim.SGD([p], lr=0.1)
    opt.zero_grad(set_to_none=set_to_none)
    if set_to_none:
        assert p.grad is None
    else:
        assert p.grad.tolist() == [0.0, 0.0]


def test_parameters_without_grad_are_left_alone() -> None:
    a, b = lt.tensor([1.0, 2.0], requires_grad=True), lt.tensor([3.0], requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    (a * a).sum().backward()
    opt.step()
    assert b.tolist() == [3.0] and b not in opt.state
    assert a.numpy()[0] == pytest.approx(0.9)


def test_closure_is_called_with_grad_enabled_and_its_loss_returned() -> None:
    ours = [lt.tensor(a, requires_grad=True) for a in INIT]
    opt = optim.SGD(ours, lr=0.1)
    x, y = lt.tensor(X), lt.tensor(Y)

    def closure() -> Any:
        opt.zero_grad()
        loss = _loss(ours, x, y)
        loss.backward()
        return loss

    with lt.no_grad():
        loss = opt.step(closure)
    theirs = [torch.tensor(a, requires_grad=True) for a in INIT]
    want = _loss(theirs, torch.tensor(X), torch.tensor(Y))
    want.backward()
    assert loss.node.op.name == "BUFFER"
    assert loss.item() == pytest.approx(want.item(), rel=1e-12)


def _count_realizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = REALIZE.realize

    def counting(roots: list, device: str) -> list:
        calls.append(len(roots))
        return original(roots, device)

    monkeypatch.setattr(REALIZE, "realize", counting)
    return calls


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_a_training_step_is_one_schedule(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """forward + backward + clip + update + loss (and the clipped norm) are realized by ONE realize call."""
    params = [lt.tensor(a.astype(np.float32), requires_grad=True) for a in INIT]
    x, y = lt.tensor(X.astype(np.float32)), lt.tensor(Y.astype(np.float32))
    kwargs = {"momentum": 0.9} if name != "Adam" else {}
    opt = getattr(optim, name)(params, lr=0.01, **kwargs)
    calls = _count_realizes(monkeypatch)
    for step in range(3):
        opt.zero_grad()
        loss = _loss(params, x, y)
        loss.backward()
        norm = nn_utils.clip_grad_norm_(params, 1.0)
        opt.step()
        assert len(calls) == step + 1, "the step took more than one realize"
        assert loss.node.op.name == "BUFFER" and norm.node.op.name == "BUFFER"
        assert all(p.node.op.name == "BUFFER" for p in params)
        loss.item(), norm.item()
        assert len(calls) == step + 1, "reading the loss after the step ran another schedule"


def test_changing_lr_compiles_nothing_new() -> None:
    """lr (and bias corrections) are 0-d buffers, not constants: a scheduler changing them reuses kernels."""
    params = [lt.tensor(a.astype(np.float32), requires_grad=True) for a in INIT]
    x, y = lt.tensor(X.astype(np.float32)), lt.tensor(Y.astype(np.float32))
    opt = optim.Adam(params, lr=0.01)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    sizes = []
    for _ in range(5):
        opt.zero_grad()
        _loss(params, x, y).backward()
        opt.step()
        sched.step()
        sizes.append(len(REALIZE._compiled))
    assert sizes[1] == sizes[2] == sizes[3] == sizes[4]


def test_updated_parameters_stay_grad_leaves() -> None:
    p = lt.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.25)
    for _ in range(2):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
    assert p.is_leaf and p.requires_grad
    assert p.tolist() == [0.25, -0.5]


# ---- nn.utils ----


def _grads_pair(scale: float = 1.0) -> tuple[list[Any], list[Any]]:
    rng = np.random.default_rng(3)
    shapes = [(3, 4), (4,), (2, 2)]
    arrays = [rng.normal(size=s) * scale for s in shapes]
    ours = [lt.tensor(np.zeros(s), requires_grad=True) for s in shapes]
    theirs = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    for p, q, a in zip(ours, theirs, arrays):
        p.grad, q.grad = lt.tensor(a), torch.tensor(a)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 0.5, 3.0, -math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type: float, max_norm: float) -> None:
    ours, theirs = _grads_pair()
    got = nn_utils.clip_grad_norm_(ours, max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert_close(got, want, rtol=1e-12)
    for p, q in zip(ours, theirs):
        assert_close(p.grad, q.grad, rtol=1e-12)


def test_clip_grad_norm_nonfinite() -> None:
    ours, theirs = _grads_pair()
    ours[0].grad = ours[0].grad * math.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        nn_utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert math.isinf(nn_utils.clip_grad_norm_(ours, 1.0).item())


def test_clip_grad_norm_of_single_tensor_and_no_grads() -> None:
    ours, theirs = _grads_pair(5.0)
    assert_close(nn_utils.clip_grad_norm_(ours[0], 1.0), torch.nn.utils.clip_grad_norm_(theirs[0], 1.0))
    assert_close(ours[0].grad, theirs[0].grad)
    assert nn_utils.clip_grad_norm_([_leaf(2)], 1.0).item() == 0.0


def test_clip_grad_value_matches_torch() -> None:
    ours, theirs = _grads_pair(2.0)
    nn_utils.clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, q in zip(ours, theirs):
        assert_close(p.grad, q.grad)


def test_parameters_to_vector_and_back() -> None:
    ours, theirs = _grads_pair()
    vec = nn_utils.parameters_to_vector(ours)
    assert_close(vec, torch.nn.utils.parameters_to_vector(theirs).detach())
    new = np.arange(vec.numel(), dtype=np.float64)
    nn_utils.vector_to_parameters(lt.tensor(new), ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs)
    for p, q in zip(ours, theirs):
        assert_close(p, q.detach())
        assert p.is_leaf and p.requires_grad
    with pytest.raises(RuntimeError, match="does not hold"):
        nn_utils.vector_to_parameters(lt.tensor(new[:-1]), ours)

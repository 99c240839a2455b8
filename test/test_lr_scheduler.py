"""lr schedulers vs torch.optim.lr_scheduler: the lr (and cycled momentum) over 30 steps, exactly."""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import pytest
import torch

import lazytensor as lt
import lazytensor.optim as optim
from lazytensor.optim import lr_scheduler as ours_sched

theirs_sched = torch.optim.lr_scheduler


def _leaf(n: int) -> lt.Tensor:
    """A fresh trainable leaf of n zeros (its own buffer)."""
    return lt.tensor(np.zeros(n, dtype=np.float32), requires_grad=True)


def _two_groups(params: list[Any]) -> list[dict]:
    return [{"params": params[:1], "lr": 0.1}, {"params": params[1:], "lr": 0.02}]


SCHEDULERS: list[tuple[str, str, dict]] = [
    ("StepLR", "SGD", {"step_size": 4, "gamma": 0.5}),
    ("StepLR", "Adam", {"step_size": 1}),
    ("MultiStepLR", "SGD", {"milestones": [3, 7, 7, 20], "gamma": 0.3}),
    ("ExponentialLR", "SGD", {"gamma": 0.93}),
    ("CosineAnnealingLR", "SGD", {"T_max": 10}),
    ("CosineAnnealingLR", "Adam", {"T_max": 7, "eta_min": 0.001}),
    ("LinearLR", "SGD", {}),
    ("LinearLR", "SGD", {"start_factor": 0.1, "end_factor": 0.7, "total_iters": 12}),
    ("ConstantLR", "SGD", {"factor": 0.25, "total_iters": 6}),
    ("PolynomialLR", "SGD", {"total_iters": 12, "power": 2.0}),
    ("LambdaLR", "SGD", {"lr_lambda": lambda epoch: 0.95**epoch + 0.01 * epoch}),
    ("LambdaLR", "SGD", {"lr_lambda": [lambda e: 1.0 / (1 + e), lambda e: 0.5 ** (e // 3)]}),
    ("MultiplicativeLR", "SGD", {"lr_lambda": lambda epoch: 0.9 if epoch % 2 else 1.05}),
    ("CosineAnnealingWarmRestarts", "SGD", {"T_0": 5}),
    ("CosineAnnealingWarmRestarts", "SGD", {"T_0": 3, "T_mult": 2, "eta_min": 0.005}),
    ("OneCycleLR", "SGD", {"max_lr": 0.5, "total_steps": 30}),
    ("OneCycleLR", "Adam", {"max_lr": [0.3, 0.05], "total_steps": 31, "anneal_strategy": "linear"}),
    (
        "OneCycleLR",
        "SGD",
        {
            "max_lr": 0.4,
            "epochs": 3,
            "steps_per_epoch": 11,
            "three_phase": True,
            "pct_start": 0.25,
            "div_factor": 10.0,
            "final_div_factor": 100.0,
        },
    ),
    ("OneCycleLR", "SGD", {"max_lr": 0.2, "total_steps": 40, "cycle_momentum": False}),
]


def _make(module: Any, opt_module: Any, sched: str, opt_name: str, kwargs: dict, params: list[Any]) -> tuple:
    extra = {"momentum": 0.9} if opt_name == "SGD" else {}
    opt = getattr(opt_module, opt_name)(_two_groups(params), lr=0.1, **extra)
    return opt, getattr(module, sched)(opt, **kwargs)


def _trace(opt: Any, sched: Any, steps: int, metrics: list[float] | None = None) -> list[tuple]:
    """(last lr, group lrs, momentum or beta1 per group) after construction and after every step."""

    def snapshot() -> tuple:
        momenta = tuple(g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups)
        last = tuple(sched.get_last_lr()) if hasattr(sched, "get_last_lr") else ()
        return last, tuple(g["lr"] for g in opt.param_groups), momenta

    out = [snapshot()]
    for i in range(steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
        out.append(snapshot())
    return out


def _assert_traces_equal(got: list[tuple], want: list[tuple]) -> None:
    assert len(got) == len(want)
    for step, (g, w) in enumerate(zip(got, want)):
        for a, b in zip(g, w):
            np.testing.assert_allclose(
                np.array(a, dtype=float),
                np.array(b, dtype=float),
                rtol=1e-12,
                atol=1e-15,
                err_msg=f"at step {step}",
            )


@pytest.mark.parametrize(
    "sched,opt_name,kwargs", SCHEDULERS, ids=[f"{s}-{o}-{i}" for i, (s, o, _) in enumerate(SCHEDULERS)]
)
def test_lr_sequence_matches_torch(sched: str, opt_name: str, kwargs: dict) -> None:
    ours_opt, ours = _make(
        ours_sched,
        optim,
        sched,
        opt_name,
        kwargs,
        [_leaf(2), _leaf(3)],
    )
    their_opt, theirs = _make(
        theirs_sched,
        torch.optim,
        sched,
        opt_name,
        kwargs,
        [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)],
    )
    steps = 29 if sched == "OneCycleLR" else 30
    _assert_traces_equal(_trace(ours_opt, ours, steps), _trace(their_opt, theirs, steps))


PLATEAU = [
    {},
    {"mode": "max", "factor": 0.5, "patience": 2},
    {"patience": 1, "threshold": 0.1, "threshold_mode": "abs", "cooldown": 2, "min_lr": 0.004},
    {"mode": "max", "patience": 0, "threshold_mode": "abs", "min_lr": [0.01, 0.0], "factor": 0.7},
    {"patience": 3, "cooldown": 1, "eps": 0.05},
]


@pytest.mark.parametrize("kwargs", PLATEAU)
def test_reduce_lr_on_plateau_matches_torch(kwargs: dict) -> None:
    rng = np.random.default_rng(4)
    metrics = list(np.round(1.0 + 0.1 * np.cumsum(rng.normal(size=30)), 3))
    ours_opt = optim.SGD(_two_groups([_leaf(1), _leaf(1)]), lr=0.1)
    their_opt = torch.optim.SGD(
        _two_groups([torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]), lr=0.1
    )
    ours = ours_sched.ReduceLROnPlateau(ours_opt, **kwargs)
    theirs = theirs_sched.ReduceLROnPlateau(their_opt, **kwargs)
    _assert_traces_equal(_trace(ours_opt, ours, 30, metrics), _trace(their_opt, theirs, 30, metrics))
    assert ours.best == theirs.best and ours.num_bad_epochs == theirs.num_bad_epochs


def test_reduce_lr_on_plateau_accepts_a_tensor_metric() -> None:
    opt = optim.SGD([_leaf(1)], lr=1.0)
    sched = ours_sched.ReduceLROnPlateau(opt, patience=0)
    sched.step(lt.tensor(1.0))
    sched.step(lt.tensor(2.0))
    assert sched.get_last_lr() == [0.1]


def test_sequential_lr_matches_torch() -> None:
    def build(module: Any, opt_module: Any, params: list[Any]) -> tuple:
        opt = opt_module.SGD(_two_groups(params), lr=0.1, momentum=0.9)
        warm = module.LinearLR(opt, start_factor=0.2, total_iters=4)
        decay = module.ExponentialLR(opt, gamma=0.9)
        cosine = module.CosineAnnealingLR(opt, T_max=6)
        return opt, module.SequentialLR(opt, [warm, decay, cosine], milestones=[5, 12])

    ours = build(ours_sched, optim, [_leaf(1), _leaf(1)])
    theirs = build(
        theirs_sched, torch.optim, [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    )
    _assert_traces_equal(_trace(*ours, 30), _trace(*theirs, 30))


CLOSED_FORM = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [2, 5]}),
    ("ExponentialLR", {"gamma": 0.8}),
    ("CosineAnnealingLR", {"T_max": 8}),
    ("LinearLR", {}),
    ("ConstantLR", {}),
    ("PolynomialLR", {"total_iters": 8}),
]


@pytest.mark.parametrize("sched,kwargs", CLOSED_FORM, ids=[c[0] for c in CLOSED_FORM])
def test_step_with_epoch_uses_the_closed_form_like_torch(sched: str, kwargs: dict) -> None:
    ours_opt, ours = _make(ours_sched, optim, sched, "SGD", kwargs, [_leaf(1) for _ in range(2)])
    their_opt, theirs = _make(
        theirs_sched,
        torch.optim,
        sched,
        "SGD",
        kwargs,
        [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in (3, 7, 1, 10):
            ours.step(epoch)
            theirs.step(epoch)
            np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)


@pytest.mark.parametrize("sched,opt_name,kwargs", [SCHEDULERS[i] for i in (0, 4, 7, 14, 15, 16)])
def test_scheduler_state_dict_round_trip(sched: str, opt_name: str, kwargs: dict) -> None:
    opt, scheduler = _make(ours_sched, optim, sched, opt_name, kwargs, [_leaf(1) for _ in range(2)])
    reference = _trace(opt, scheduler, 20)
    opt, scheduler = _make(ours_sched, optim, sched, opt_name, kwargs, [_leaf(1) for _ in range(2)])
    head = _trace(opt, scheduler, 8)
    saved_opt, saved_sched = opt.state_dict(), scheduler.state_dict()
    assert "optimizer" not in saved_sched
    opt2, scheduler2 = _make(ours_sched, optim, sched, opt_name, kwargs, [_leaf(1) for _ in range(2)])
    opt2.load_state_dict(saved_opt)
    scheduler2.load_state_dict(saved_sched)
    tail = _trace(opt2, scheduler2, 12)
    _assert_traces_equal(head + tail[1:], reference)


def test_stepping_the_scheduler_first_warns_like_torch() -> None:
    opt = optim.SGD([_leaf(1)], lr=0.1)
    sched = ours_sched.StepLR(opt, 2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda opt: ours_sched.OneCycleLR(opt, max_lr=0.1), ValueError, "total_steps OR"),
        (
            lambda opt: ours_sched.OneCycleLR(opt, max_lr=0.1, total_steps=5, anneal_strategy="exp"),
            ValueError,
            "anneal_strategy",
        ),
        (lambda opt: ours_sched.ReduceLROnPlateau(opt, factor=1.5), ValueError, "Factor should be < 1.0"),
        (lambda opt: ours_sched.ReduceLROnPlateau(opt, mode="avg"), ValueError, "mode avg is unknown"),
        (lambda opt: ours_sched.StepLR(opt, 2, last_epoch=3), KeyError, "initial_lr"),
        (lambda opt: ours_sched.LambdaLR(opt, [lambda e: 1.0] * 3), ValueError, "Expected 1 lr_lambdas"),
        (lambda opt: ours_sched.StepLR(object(), 2), TypeError, "is not an Optimizer"),
    ],
)
def test_bad_scheduler_arguments(make: Callable, error: type, match: str) -> None:
    opt = optim.SGD([_leaf(1)], lr=0.1)
    with pytest.raises(error, match=match):
        make(opt)


def test_one_cycle_past_total_steps_raises() -> None:
    opt = optim.SGD([_leaf(1)], lr=0.1, momentum=0.9)
    sched = ours_sched.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        opt.step()
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        sched.step()

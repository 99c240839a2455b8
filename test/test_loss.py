"""Losses vs torch.nn.functional: values and gradients (input and, where differentiable, target)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch

import lazytensor as lt
import lazytensor.nn.functional as F
from lazytensor import nn
from helpers import assert_close

TF = torch.nn.functional


@dataclass
class Case:
    """One loss call: array args (float ones may get gradients), plain kwargs, differentiable args."""

    name: str
    fn: str
    arrays: Callable[[np.random.Generator], list[Any]]
    kwargs: dict = field(default_factory=dict)
    grad_args: tuple[int, ...] = (0,)
    tensor_kwargs: Callable[[np.random.Generator], dict] | None = None


def logits(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.normal(size=shape)


def classes(n: int, *shape: int, ignore: int | None = None) -> Callable[[np.random.Generator], np.ndarray]:
    def make(rng: np.random.Generator) -> np.ndarray:
        t = rng.integers(0, n, size=shape).astype(np.int64)
        if ignore is not None and t.size:
            t.reshape(-1)[::3] = ignore
        return t

    return make


def probs(*shape: int, dim: int = 1) -> Callable[[np.random.Generator], np.ndarray]:
    def make(rng: np.random.Generator) -> np.ndarray:
        e = np.exp(rng.normal(size=shape))
        return e / e.sum(axis=dim, keepdims=True)

    return make


def unit(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.uniform(0.05, 0.95, size=shape)


def both(*makers: Callable) -> Callable[[np.random.Generator], list[Any]]:
    return lambda rng: [m(rng) for m in makers]


def class_weight(n: int) -> Callable[[np.random.Generator], dict]:
    return lambda rng: {"weight": rng.uniform(0.2, 2.0, size=(n,))}


CASES = [
    Case("ce_basic", "cross_entropy", both(logits(4, 5), classes(5, 4))),
    Case("ce_unbatched", "cross_entropy", both(logits(5), classes(5))),
    Case("ce_extra_dims", "cross_entropy", both(logits(2, 3, 4, 2), classes(3, 2, 4, 2))),
    Case("ce_sum", "cross_entropy", both(logits(4, 5), classes(5, 4)), {"reduction": "sum"}),
    Case("ce_none", "cross_entropy", both(logits(4, 5), classes(5, 4)), {"reduction": "none"}),
    Case("ce_ignore", "cross_entropy", both(logits(6, 5), classes(5, 6, ignore=-100))),
    Case(
        "ce_ignore_custom", "cross_entropy", both(logits(6, 5), classes(5, 6, ignore=2)), {"ignore_index": 2}
    ),
    Case(
        "ce_weight",
        "cross_entropy",
        both(logits(6, 5), classes(5, 6, ignore=-100)),
        tensor_kwargs=class_weight(5),
    ),
    Case(
        "ce_weight_none",
        "cross_entropy",
        both(logits(6, 5), classes(5, 6)),
        {"reduction": "none"},
        tensor_kwargs=class_weight(5),
    ),
    Case("ce_smooth", "cross_entropy", both(logits(6, 5), classes(5, 6)), {"label_smoothing": 0.1}),
    Case(
        "ce_smooth_ignore_weight",
        "cross_entropy",
        both(logits(6, 5), classes(5, 6, ignore=-100)),
        {"label_smoothing": 0.2},
        tensor_kwargs=class_weight(5),
    ),
    Case(
        "ce_smooth_sum_extra",
        "cross_entropy",
        both(logits(2, 4, 3), classes(4, 2, 3, ignore=-100)),
        {"label_smoothing": 0.3, "reduction": "sum"},
    ),
    Case(
        "ce_smooth_none",
        "cross_entropy",
        both(logits(6, 5), classes(5, 6, ignore=-100)),
        {"label_smoothing": 0.3, "reduction": "none"},
        tensor_kwargs=class_weight(5),
    ),
    Case("ce_probs", "cross_entropy", both(logits(4, 5), probs(4, 5)), grad_args=(0, 1)),
    Case("ce_probs_extra_dims", "cross_entropy", both(logits(2, 3, 4), probs(2, 3, 4)), grad_args=(0, 1)),
    Case(
        "ce_probs_smooth_weight",
        "cross_entropy",
        both(logits(4, 5), probs(4, 5)),
        {"label_smoothing": 0.25},
        (0, 1),
        class_weight(5),
    ),
    Case("ce_probs_none", "cross_entropy", both(logits(4, 5), probs(4, 5)), {"reduction": "none"}, (0, 1)),
    Case("ce_legacy_reduce", "cross_entropy", both(logits(4, 5), classes(5, 4)), {"reduce": False}),
    Case(
        "ce_legacy_size_average", "cross_entropy", both(logits(4, 5), classes(5, 4)), {"size_average": False}
    ),
    Case("nll_basic", "nll_loss", both(logits(4, 5), classes(5, 4))),
    Case(
        "nll_weight_ignore",
        "nll_loss",
        both(logits(6, 5), classes(5, 6, ignore=-100)),
        tensor_kwargs=class_weight(5),
    ),
    Case(
        "nll_weight_sum_extra",
        "nll_loss",
        both(logits(2, 3, 4), classes(3, 2, 4, ignore=-100)),
        {"reduction": "sum"},
        tensor_kwargs=class_weight(3),
    ),
    Case("nll_none_extra", "nll_loss", both(logits(2, 3, 2, 2), classes(3, 2, 2, 2)), {"reduction": "none"}),
    Case("mse", "mse_loss", both(logits(3, 4), logits(3, 4)), grad_args=(0, 1)),
    Case("mse_sum", "mse_loss", both(logits(3, 4), logits(3, 4)), {"reduction": "sum"}, (0, 1)),
    Case("mse_none", "mse_loss", both(logits(3, 4), logits(3, 4)), {"reduction": "none"}, (0, 1)),
    Case(
        "mse_weight",
        "mse_loss",
        both(logits(3, 4), logits(3, 4)),
        {},
        (0, 1),
        lambda rng: {"weight": rng.uniform(0.1, 1, size=(3, 4))},
    ),
    Case("l1", "l1_loss", both(logits(3, 4), logits(3, 4)), grad_args=(0, 1)),
    Case(
        "l1_none_weight",
        "l1_loss",
        both(logits(3, 4), logits(3, 4)),
        {"reduction": "none"},
        (0, 1),
        lambda rng: {"weight": rng.uniform(0.1, 1, size=(3, 4))},
    ),
    Case(
        "l1_weight_mean",
        "l1_loss",
        both(logits(3, 4), logits(3, 4)),
        {},
        (0, 1),
        lambda rng: {"weight": rng.uniform(0.1, 1, size=(3, 4))},
    ),
    Case("smooth_l1", "smooth_l1_loss", both(logits(4, 5), logits(4, 5)), grad_args=(0, 1)),
    Case("smooth_l1_beta", "smooth_l1_loss", both(logits(4, 5), logits(4, 5)), {"beta": 0.5}, (0, 1)),
    Case("smooth_l1_beta0", "smooth_l1_loss", both(logits(4, 5), logits(4, 5)), {"beta": 0.0}, (0, 1)),
    Case(
        "smooth_l1_none",
        "smooth_l1_loss",
        both(logits(4, 5), logits(4, 5)),
        {"reduction": "none", "beta": 2.0},
        (0, 1),
    ),
    Case("huber", "huber_loss", both(logits(4, 5), logits(4, 5)), grad_args=(0, 1)),
    Case(
        "huber_delta",
        "huber_loss",
        both(logits(4, 5), logits(4, 5)),
        {"delta": 0.3, "reduction": "sum"},
        (0, 1),
    ),
    Case(
        "huber_weight",
        "huber_loss",
        both(logits(4, 5), logits(4, 5)),
        {"delta": 1.5},
        (0, 1),
        lambda rng: {"weight": rng.uniform(0.1, 1, size=(4, 5))},
    ),
    Case("bce", "binary_cross_entropy", both(unit(3, 4), unit(3, 4)), grad_args=(0, 1)),
    Case(
        "bce_weight_sum",
        "binary_cross_entropy",
        both(unit(3, 4), unit(3, 4)),
        {"reduction": "sum"},
        (0, 1),
        lambda rng: {"weight": rng.uniform(0.1, 1, size=(3, 4))},
    ),
    Case("bce_none", "binary_cross_entropy", both(unit(5), unit(5)), {"reduction": "none"}, (0, 1)),
    Case(
        "bce_saturated",
        "binary_cross_entropy",
        lambda rng: [np.array([0.0, 1.0, 0.5, 1e-50]), np.array([1.0, 0.0, 0.5, 1.0])],
        {"reduction": "none"},
        (),
    ),
    Case("bce_logits", "binary_cross_entropy_with_logits", both(logits(3, 4), unit(3, 4)), grad_args=(0, 1)),
    Case(
        "bce_logits_large",
        "binary_cross_entropy_with_logits",
        lambda rng: [np.array([-200.0, -30.0, 0.0, 30.0, 200.0]), np.array([1.0, 0.0, 0.5, 1.0, 0.0])],
        {"reduction": "none"},
        (0, 1),
    ),
    Case(
        "bce_logits_pos_weight",
        "binary_cross_entropy_with_logits",
        both(logits(3, 4), unit(3, 4)),
        {},
        (0, 1),
        lambda rng: {
            "pos_weight": rng.uniform(0.5, 3, size=(4,)),
            "weight": rng.uniform(0.1, 1, size=(3, 4)),
        },
    ),
    Case(
        "bce_logits_pos_weight_none",
        "binary_cross_entropy_with_logits",
        both(logits(3, 4), unit(3, 4)),
        {"reduction": "none"},
        (0, 1),
        lambda rng: {"pos_weight": rng.uniform(0.5, 3, size=(4,))},
    ),
    Case("kl_mean", "kl_div", both(lambda rng: np.log(probs(3, 4)(rng)), probs(3, 4)), grad_args=(0, 1)),
    Case(
        "kl_batchmean",
        "kl_div",
        both(lambda rng: np.log(probs(3, 4)(rng)), probs(3, 4)),
        {"reduction": "batchmean"},
        (0, 1),
    ),
    Case(
        "kl_log_target",
        "kl_div",
        both(logits(3, 4), logits(3, 4)),
        {"log_target": True, "reduction": "sum"},
        (0, 1),
    ),
    Case(
        "kl_zero_target",
        "kl_div",
        lambda rng: [rng.normal(size=(2, 3)), np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])],
        {"reduction": "none"},
        (0,),
    ),
    Case("cosine", "cosine_similarity", both(logits(4, 5), logits(4, 5)), grad_args=(0, 1)),
    Case("cosine_dim0_broadcast", "cosine_similarity", both(logits(4, 1), logits(4, 3)), {"dim": 0}, (0, 1)),
    Case("cosine_neg_dim", "cosine_similarity", both(logits(2, 3, 4), logits(2, 3, 4)), {"dim": -1}, (0, 1)),
    Case(
        "poisson",
        "poisson_nll_loss",
        both(logits(3, 4), lambda rng: rng.poisson(2.0, (3, 4)).astype(float)),
        grad_args=(0,),
    ),
    Case(
        "poisson_full_nolog",
        "poisson_nll_loss",
        both(unit(3, 4), lambda rng: rng.poisson(2.0, (3, 4)).astype(float)),
        {"log_input": False, "full": True},
        (0,),
    ),
    Case(
        "margin_ranking",
        "margin_ranking_loss",
        both(logits(6), logits(6), lambda rng: np.sign(rng.normal(size=6))),
        {"margin": 0.2},
        (0, 1),
    ),
    Case(
        "hinge_embedding",
        "hinge_embedding_loss",
        both(logits(6), lambda rng: np.sign(rng.normal(size=6))),
        {"margin": 0.5},
        (0,),
    ),
    Case(
        "soft_margin",
        "soft_margin_loss",
        both(logits(6), lambda rng: np.sign(rng.normal(size=6))),
        {"reduction": "sum"},
        (0,),
    ),
    Case(
        "gaussian_nll",
        "gaussian_nll_loss",
        both(logits(4, 3), logits(4, 3), lambda rng: rng.uniform(0.5, 2, size=(4, 3))),
        {},
        (0, 1, 2),
    ),
    Case(
        "gaussian_nll_full_homo",
        "gaussian_nll_loss",
        both(logits(4, 3), logits(4, 3), lambda rng: rng.uniform(0.5, 2, size=(4, 1))),
        {"full": True, "reduction": "sum"},
        (0, 1, 2),
    ),
]


def _to_pair(a: Any, dtype: str, requires_grad: bool) -> tuple[Any, Any]:
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        a = a.astype(dtype)
        return lt.tensor(a, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad)
    a = np.asarray(a)
    return lt.tensor(a), torch.tensor(a)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_loss_matches_torch(case: Case, dtype: str) -> None:
    rng = np.random.default_rng(len(case.name))
    arrays = case.arrays(rng)
    pairs = [_to_pair(a, dtype, i in case.grad_args) for i, a in enumerate(arrays)]
    extra = case.tensor_kwargs(rng) if case.tensor_kwargs else {}
    kw_ours = dict(case.kwargs, **{k: lt.tensor(v.astype(dtype)) for k, v in extra.items()})
    kw_theirs = dict(case.kwargs, **{k: torch.tensor(v.astype(dtype)) for k, v in extra.items()})
    got = getattr(F, case.fn)(*[p[0] for p in pairs], **kw_ours)
    want = getattr(TF, case.fn)(*[p[1] for p in pairs], **kw_theirs)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-9, "atol": 1e-11}
    if case.grad_args:  # backward before the value is read: realizing a result ends its graph
        upstream = rng.normal(size=tuple(want.shape)).astype(dtype)
        got.backward(lt.tensor(upstream))
        want.backward(torch.tensor(upstream))
    assert_close(got, want, **tol)
    for i in case.grad_args:
        assert_close(pairs[i][0].grad, pairs[i][1].grad, **tol)


MODULE_CASES = [
    ("CrossEntropyLoss", {"label_smoothing": 0.1, "ignore_index": 1}, both(logits(5, 4), classes(4, 5))),
    ("NLLLoss", {"reduction": "sum"}, both(logits(5, 4), classes(4, 5))),
    ("MSELoss", {"reduction": "none"}, both(logits(2, 3), logits(2, 3))),
    ("L1Loss", {}, both(logits(2, 3), logits(2, 3))),
    ("SmoothL1Loss", {"beta": 0.5}, both(logits(2, 3), logits(2, 3))),
    ("HuberLoss", {"delta": 0.5}, both(logits(2, 3), logits(2, 3))),
    ("BCELoss", {}, both(unit(2, 3), unit(2, 3))),
    ("BCEWithLogitsLoss", {}, both(logits(2, 3), unit(2, 3))),
    ("KLDivLoss", {"reduction": "batchmean", "log_target": True}, both(logits(2, 3), logits(2, 3))),
    ("CosineSimilarity", {"dim": 0}, both(logits(2, 3), logits(2, 3))),
    ("PoissonNLLLoss", {}, both(logits(2, 3), unit(2, 3))),
    ("SoftMarginLoss", {}, both(logits(4), lambda rng: np.sign(rng.normal(size=4)))),
    ("HingeEmbeddingLoss", {"margin": 2.0}, both(logits(4), lambda rng: np.sign(rng.normal(size=4)))),
    (
        "MarginRankingLoss",
        {"margin": 0.1},
        both(logits(4), logits(4), lambda rng: np.sign(rng.normal(size=4))),
    ),
]


@pytest.mark.parametrize("name,kwargs,arrays", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_loss_modules_match_torch(name: str, kwargs: dict, arrays: Callable) -> None:
    values = arrays(np.random.default_rng(1))
    pairs = [_to_pair(a, "float64", False) for a in values]
    got = getattr(nn, name)(**kwargs)(*[p[0] for p in pairs])
    want = getattr(torch.nn, name)(**kwargs)(*[p[1] for p in pairs])
    assert_close(got, want)


def test_weighted_module_holds_weight_buffer() -> None:
    w = np.array([0.5, 2.0, 1.0])
    module = nn.CrossEntropyLoss(weight=lt.tensor(w))
    assert "weight" in module.state_dict()
    x, t = np.random.default_rng(2).normal(size=(4, 3)), np.array([0, 1, 2, 1])
    assert_close(
        module(lt.tensor(x), lt.tensor(t)),
        torch.nn.CrossEntropyLoss(weight=torch.tensor(w))(torch.tensor(x), torch.tensor(t)),
    )


def test_all_targets_ignored_gives_nan_like_torch() -> None:
    x, t = np.zeros((2, 3)), np.array([-100, -100])
    got = F.cross_entropy(lt.tensor(x), lt.tensor(t))
    want = TF.cross_entropy(torch.tensor(x), torch.tensor(t))
    assert np.isnan(got.item()) and np.isnan(want.item())


@pytest.mark.parametrize("target", [[0, 3], [-1, 0], [7, 1]])
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_out_of_range_target_names_the_target(fn: str, target: list[int]) -> None:
    x = lt.tensor(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(IndexError, match=r"Target -?\d+ is out of bounds"):
        getattr(F, fn)(x, lt.tensor(target)).realize()


def test_out_of_range_computed_target_raises_in_kernel() -> None:
    x = lt.tensor(np.zeros((2, 3), dtype=np.float32))
    target = lt.tensor([1, 2]) + 2  # lazy: checked by the gather kernel
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, target).realize()


@pytest.mark.parametrize(
    "fn,args",
    [
        ("mse_loss", ((2, 3), (2, 3))),
        ("l1_loss", ((2, 3), (2, 3))),
        ("cross_entropy", ((2, 3), None)),
        ("kl_div", ((2, 3), (2, 3))),
        ("binary_cross_entropy", ((2, 3), (2, 3))),
    ],
)
def test_bad_reduction_is_a_clear_error(fn: str, args: tuple) -> None:
    x = lt.tensor(np.full(args[0], 0.5, dtype=np.float32))
    y = lt.tensor([0, 1]) if args[1] is None else lt.tensor(np.full(args[1], 0.5, dtype=np.float32))
    with pytest.raises(ValueError, match=f"{fn}: 'avg' is not a valid value for reduction"):
        getattr(F, fn)(x, y, reduction="avg")


@pytest.mark.parametrize(
    "fn,x_shape,t,match",
    [
        ("cross_entropy", (4, 3), np.zeros(3, dtype=np.int64), "expected target of shape"),
        ("cross_entropy", (4, 3), np.zeros((4, 2), dtype=np.float32), "class probabilities"),
        ("nll_loss", (4, 3), np.zeros(4, dtype=np.float32), "integer class indices"),
        ("binary_cross_entropy", (4, 3), np.zeros((4, 1), dtype=np.float32), "different to the input size"),
        ("binary_cross_entropy_with_logits", (4,), np.zeros(3, dtype=np.float32), "must be the same"),
    ],
)
def test_shape_and_dtype_errors(fn: str, x_shape: tuple, t: np.ndarray, match: str) -> None:
    x = lt.tensor(np.full(x_shape, 0.5, dtype=np.float32))
    with pytest.raises((ValueError, RuntimeError), match=match):
        getattr(F, fn)(x, lt.tensor(t))


def test_class_weight_of_wrong_length_is_rejected() -> None:
    with pytest.raises(RuntimeError, match="weight tensor should be defined"):
        F.cross_entropy(lt.zeros(2, 3), lt.tensor([0, 1]), weight=lt.ones(4))


def test_cross_entropy_fuses_with_training_graph() -> None:
    """The loss is lazy: nothing runs until the value is asked for, then a handful of kernels run."""
    x = lt.tensor(np.random.default_rng(0).normal(size=(8, 10)).astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(x, lt.tensor(np.arange(8) % 10))
    assert loss.node.op is not loss.node.op.BUFFER
    assert 1 <= len(loss.schedule()) <= 4

"""nn area: loss (function forms and their Module classes).

Every loss is composed from Tensor ops, so its gradient (w.r.t. input and, where torch has one,
target) comes from autograd and the whole loss fuses into the surrounding training step.
Reductions follow torch: 'mean' | 'sum' | 'none'; the deprecated size_average/reduce arguments
are accepted and mapped the way torch maps them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lazytensor import dtypes
from lazytensor.functions import where
from lazytensor.nn.module import Module
from lazytensor.ops import Op
from lazytensor.tensor import Tensor, broadcast_shapes

FUNCTIONS: list[str] = [
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
    "cosine_similarity",
    "poisson_nll_loss",
    "margin_ranking_loss",
    "hinge_embedding_loss",
    "soft_margin_loss",
    "gaussian_nll_loss",
]
MODULES: list[str] = [
    "CrossEntropyLoss",
    "NLLLoss",
    "MSELoss",
    "L1Loss",
    "SmoothL1Loss",
    "HuberLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "KLDivLoss",
    "CosineSimilarity",
    "PoissonNLLLoss",
    "MarginRankingLoss",
    "HingeEmbeddingLoss",
    "SoftMarginLoss",
    "GaussianNLLLoss",
]

_REDUCTIONS = ("mean", "sum", "none")


# ---- shared helpers ----


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch's mapping of the deprecated size_average/reduce pair onto `reduction`."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _check_reduction(reduction: str, op: str, extra: tuple[str, ...] = ()) -> None:
    if reduction not in _REDUCTIONS + extra:
        allowed = ", ".join(repr(r) for r in _REDUCTIONS + extra)
        raise ValueError(
            f"{op}: {reduction!r} is not a valid value for reduction (expected one of {allowed})"
        )


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    _check_reduction(reduction, op)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_tensor(x: Any, name: str, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a lazytensor Tensor, got {type(x).__name__}")
    return x


def _check_float(x: Tensor, name: str, op: str) -> None:
    if not x.dtype.is_float:
        raise RuntimeError(
            f"{op}: {name} must be a floating point tensor, got {x.dtype.name}; convert it with .float()"
        )


def _pointwise_pair(input: Tensor, target: Tensor, op: str) -> tuple[Tensor, Tensor]:
    """Input and target broadcast to one shape and promoted to one float dtype (elementwise losses)."""
    _check_tensor(input, "input", op)
    _check_tensor(target, "target", op)
    shape = broadcast_shapes(tuple(input.shape), tuple(target.shape), op=op)
    dt = dtypes.result_type(input, target)
    if not dt.is_float:
        raise RuntimeError(
            f"{op}: expected floating point input and target, got {input.dtype.name} and {target.dtype.name}"
        )
    return input.cast(dt).expand(shape), target.cast(dt).expand(shape)


def _weighted(
    loss: Tensor, weight: Tensor | None, input: Tensor, reduction: str, op: str, mean_by_weight: bool
) -> Tensor:
    """Elementwise weight for mse/l1/huber: 'mean' divides by sum(weight) (mse, l1) or numel (huber)."""
    _check_reduction(reduction, op)
    if weight is None:
        return _reduce(loss, reduction, op)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(
            f"{op}: Weights and input must have the same size (weight {tuple(weight.shape)}, "
            f"input {tuple(input.shape)})"
        )
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction, op)


def _xlogy(x: Tensor, y: Tensor) -> Tensor:
    """x * log(y) with 0 where x == 0 (torch.xlogy)."""
    is_zero = x == 0
    safe_y = where(is_zero, 1.0, y)  # keeps log(0) out of the untaken branch (no NaN gradient)
    return where(is_zero, 0.0, x * safe_y.log())


def _class_dim(input: Tensor) -> int:
    return 0 if input.ndim == 1 else 1


def _check_class_target(input: Tensor, target: Tensor, op: str) -> None:
    """Shapes of (N, C, d1, ...) input vs (N, d1, ...) integer target, with torch's wording."""
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least 1 dimension (classes), got a 0-d tensor")
    if not (target.dtype.is_int or target.dtype.kind == "u"):
        raise RuntimeError(
            f"{op}: expected target of integer class indices (int64), got {target.dtype.name}; "
            f"for class probabilities pass a float target with the input's shape "
            f"{tuple(input.shape)}"
        )
    want = () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != want:
        raise ValueError(
            f"{op}: expected target of shape {want} for input of shape {tuple(input.shape)} "
            f"(batch and extra dims of the input without the class dim {_class_dim(input)}), "
            f"got {tuple(target.shape)}"
        )


def _check_target_range(target: Tensor, n_classes: int, ignore_index: int, op: str) -> None:
    """Out-of-range class indices raise here when the target already holds data (no kernel runs:
    the buffer is read as is). A computed target is checked inside the gather kernel instead."""
    if target.node.op is not Op.BUFFER or target.numel() == 0:
        return
    values = target._peek().reshape(-1)
    bad = values[(values != ignore_index) & ((values < 0) | (values >= n_classes))]
    if bad.size:
        raise IndexError(
            f"{op}: Target {int(bad[0])} is out of bounds: class indices must be in "
            f"[0, {n_classes}) for an input with {n_classes} classes (or equal "
            f"ignore_index={ignore_index})"
        )


def _class_weight(weight: Tensor | None, n_classes: int, op: str) -> None:
    if weight is None:
        return
    _check_tensor(weight, "weight", op)
    if tuple(weight.shape) != (n_classes,):
        raise RuntimeError(
            f"{op}: weight tensor should be defined either for all {n_classes} classes or no "
            f"classes but got weight tensor of shape: {list(weight.shape)}"
        )


# ---- classification ----


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log likelihood of log-probabilities input (N, C, d1, ...) at integer classes (N, d1, ...).

    'mean' divides by the summed weight of the non-ignored targets, like torch."""
    op = "nll_loss"
    _check_tensor(input, "input", op)
    _check_tensor(target, "target", op)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    _check_class_target(input, target, op)
    cdim = _class_dim(input)
    n_classes = input.shape[cdim]
    _class_weight(weight, n_classes, op)
    _check_target_range(target, n_classes, ignore_index, op)
    target = target.cast(dtypes.int64)
    keep = target != ignore_index
    safe = where(keep, target, 0)
    picked = input.gather(cdim, safe.unsqueeze(cdim)).squeeze(cdim)
    w = keep.cast(input.dtype)
    if weight is not None:
        w = w * weight.cast(input.dtype).gather(0, safe.reshape(-1)).reshape(tuple(safe.shape))
    loss = -picked * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross entropy of logits input (N, C, d1, ...) against class indices (N, d1, ...) or class
    probabilities (same shape as input), with optional class weights and label smoothing."""
    op = "cross_entropy"
    _check_tensor(input, "input", op)
    _check_tensor(target, "target", op)
    _check_float(input, "input", op)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least 1 dimension (classes), got a 0-d tensor")
    cdim = _class_dim(input)
    n_classes = input.shape[cdim]
    _class_weight(weight, n_classes, op)
    logp = input.log_softmax(cdim)
    w_view = None
    if weight is not None:
        view = [1] * input.ndim
        view[cdim] = n_classes
        w_view = weight.cast(input.dtype).reshape(tuple(view))
    if target.dtype.is_float:
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(
                f"{op}: a float target holds class probabilities and must have the input's shape "
                f"{tuple(input.shape)}, got {tuple(target.shape)}; for class indices pass an "
                f"int64 target"
            )
        probs = target.cast(input.dtype)
        if label_smoothing > 0:
            probs = probs * (1 - label_smoothing) + label_smoothing / n_classes
        term = logp * probs if w_view is None else logp * probs * w_view
        loss = -term.sum(cdim)
        if reduction == "mean":
            return loss.sum() / (input.numel() // n_classes if n_classes else 0)
        return _reduce(loss, reduction, op)
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0:
        return nll
    keep = target.cast(dtypes.int64) != ignore_index
    smooth = -(logp if w_view is None else logp * w_view).sum(cdim)
    smooth = where(keep, smooth, 0.0)
    if reduction == "mean":
        if weight is None:
            denom = keep.cast(input.dtype).sum()
        else:
            safe = where(keep, target.cast(dtypes.int64), 0)
            picked_w = weight.cast(input.dtype).gather(0, safe.reshape(-1)).reshape(tuple(safe.shape))
            denom = (picked_w * keep.cast(input.dtype)).sum()
        smooth = smooth.sum() / denom
    elif reduction == "sum":
        smooth = smooth.sum()
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """-w * (t * log(x) + (1 - t) * log(1 - x)) with each log clamped at -100, like torch."""
    op = "binary_cross_entropy"
    _check_tensor(input, "input", op)
    _check_tensor(target, "target", op)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"{op}: Using a target size ({tuple(target.shape)}) that is different to the input size "
            f"({tuple(input.shape)}) is deprecated. Please ensure they have the same size."
        )
    _check_float(input, "input", op)
    t = target.cast(input.dtype)
    loss = -(t * input.log().clamp_min(-100.0) + (1 - t) * (1 - input).log().clamp_min(-100.0))
    if weight is not None:
        loss = loss * weight.cast(input.dtype)
    return _reduce(loss, reduction, op)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Sigmoid + binary cross entropy in one numerically stable form (no overflow for large |x|)."""
    op = "binary_cross_entropy_with_logits"
    _check_tensor(input, "input", op)
    _check_tensor(target, "target", op)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"{op}: Target size ({tuple(target.shape)}) must be the same as input size ({tuple(input.shape)})"
        )
    _check_float(input, "input", op)
    t = target.cast(input.dtype)
    # log(1 + exp(-x)) without overflow: log1p(exp(-|x|)) + max(-x, 0), with both pieces chosen by one
    # where() on x >= 0, so that at x = 0 the gradient is exactly sigmoid(0) - t like torch's
    nonneg = input >= 0
    softplus_neg = where(nonneg, -input, input).exp().log1p() + where(nonneg, 0.0, -input)
    if pos_weight is None:
        loss = (1 - t) * input + softplus_neg
    else:
        log_weight = (pos_weight.cast(input.dtype) - 1) * t + 1
        loss = (1 - t) * input + log_weight * softplus_neg
    if weight is not None:
        loss = loss * weight.cast(input.dtype)
    return _reduce(loss, reduction, op)


# ---- regression ----


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean squared error (input and target broadcast); weighted 'mean' divides by sum(weight)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    x, y = _pointwise_pair(input, target, "mse_loss")
    return _weighted((x - y).square(), weight, input, reduction, "mse_loss", mean_by_weight=True)


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean absolute error (input and target broadcast); weighted 'mean' divides by sum(weight)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    x, y = _pointwise_pair(input, target, "l1_loss")
    return _weighted((x - y).abs(), weight, input, reduction, "l1_loss", mean_by_weight=True)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """0.5 d² / beta where |d| < beta, else |d| - 0.5 beta (beta = 0 is l1_loss)."""
    op = "smooth_l1_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError(f"{op}: smooth_l1_loss does not support negative values for beta (got {beta})")
    x, y = _pointwise_pair(input, target, op)
    d = (x - y).abs()
    if beta == 0:
        return _reduce(d, reduction, op)
    return _reduce(where(d < beta, d.square() * (0.5 / beta), d - 0.5 * beta), reduction, op)


def huber_loss(
    input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0, weight: Tensor | None = None
) -> Tensor:
    """0.5 d² where |d| < delta, else delta (|d| - 0.5 delta)."""
    op = "huber_loss"
    if delta <= 0:
        raise RuntimeError(f"{op}: huber_loss does not support non-positive values for delta (got {delta})")
    x, y = _pointwise_pair(input, target, op)
    d = (x - y).abs()
    loss = where(d < delta, d.square() * 0.5, (d - 0.5 * delta) * delta)
    return _weighted(loss, weight, input, reduction, op, mean_by_weight=False)


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Pointwise KL divergence target * (log target - input), input given as log-probabilities.

    reduction='batchmean' divides the sum by the batch size (the mathematically correct KL)."""
    op = "kl_div"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op, extra=("batchmean",))
    x, t = _pointwise_pair(input, target, op)
    if log_target:
        loss = t.exp() * (t - x)
    else:
        loss = _xlogy(t, t) - t * x
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim > 0 else total
    return _reduce(loss, reduction, op)


def poisson_nll_loss(
    input: Tensor,
    target: Tensor,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Poisson negative log likelihood; full=True adds the Stirling term for targets > 1."""
    op = "poisson_nll_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    x, t = _pointwise_pair(input, target, op)
    loss = x.exp() - t * x if log_input else x - t * (x + eps).log()
    if full:
        stirling = t * t.log() - t + 0.5 * (2 * np.pi * t).log()
        loss = loss + where(t > 1, stirling, 0.0)
    return _reduce(loss, reduction, op)


def gaussian_nll_loss(
    input: Tensor,
    target: Tensor,
    var: Tensor | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """0.5 (log(max(var, eps)) + (input - target)² / max(var, eps)) (+ 0.5 log(2π) if full)."""
    op = "gaussian_nll_loss"
    _check_reduction(reduction, op)
    x, t = _pointwise_pair(input, target, op)
    v = var if isinstance(var, Tensor) else x._as_tensor(float(var), x.dtype)
    if isinstance(var, Tensor) and tuple(v.shape) != tuple(x.shape):
        if v.ndim == x.ndim - 1 and tuple(v.shape) == tuple(x.shape[:-1]):
            v = v.unsqueeze(-1)  # homoscedastic over the last dim, as torch allows
        elif not (v.ndim == x.ndim and v.shape[-1] == 1 and tuple(v.shape[:-1]) == tuple(x.shape[:-1])):
            raise ValueError(
                f"{op}: var of shape {tuple(v.shape)} is incompatible with input {tuple(x.shape)}"
            )
    if isinstance(var, Tensor):
        if var.node.op is Op.BUFFER and var.numel() and (var.numpy() < 0).any():
            raise ValueError(f"{op}: var has negative entry/entries")
    elif float(var) < 0:
        raise ValueError(f"{op}: var has negative entry/entries")
    v = v.cast(x.dtype)
    from lazytensor import no_grad

    with no_grad():
        clamped = v.clamp_min(eps)
    v = v + (clamped - v).detach()  # clamp without changing var's gradient (torch clamps under no_grad)
    loss = 0.5 * (v.log() + (x - t).square() / v)
    if full:
        loss = loss + 0.5 * float(np.log(2 * np.pi))
    return _reduce(loss, reduction, op)


# ---- margins and similarity ----


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, -target * (input1 - input2) + margin)."""
    op = "margin_ranking_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not (input1.ndim == input2.ndim == target.ndim):
        raise RuntimeError(
            f"{op}: All input tensors should have same dimension but got sizes: "
            f"input1: {tuple(input1.shape)}, input2: {tuple(input2.shape)}, "
            f"target: {tuple(target.shape)}"
        )
    return _reduce((-target * (input1 - input2) + margin).clamp_min(0.0), reduction, op)


def hinge_embedding_loss(
    input: Tensor,
    target: Tensor,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """x where target == 1, max(0, margin - x) where target == -1 (summed as torch does)."""
    op = "hinge_embedding_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    x, t = _pointwise_pair(input, target, op)
    margin_part = where(t == -1, (margin - x).clamp_min(0.0), 0.0)
    self_part = where(t == 1, x, 0.0)
    return _reduce(margin_part + self_part, reduction, op)


def soft_margin_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """log(1 + exp(-target * input))."""
    op = "soft_margin_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    x, t = _pointwise_pair(input, target, op)
    return _reduce((-t * x).exp().log1p(), reduction, op)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between x1 and x2 along dim (broadcast), each norm clamped at eps."""
    op = "cosine_similarity"
    a, b = _pointwise_pair(x1, x2, op)
    axis = a._axis(dim, op)
    norm_a = (a * a).sum(axis, keepdim=True).sqrt().clamp_min(eps)
    norm_b = (b * b).sum(axis, keepdim=True).sqrt().clamp_min(eps)
    return ((a / norm_a) * (b / norm_b)).sum(axis)


# ---- Module forms ----


class _Loss(Module):
    """Base of the loss modules: holds the reduction, validated up front like torch."""

    def __init__(
        self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.reduction = _legacy_reduction(size_average, reduce, reduction)

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Module form of cross_entropy."""

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_WeightedLoss):
    """Module form of nll_loss."""

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return nll_loss(
            input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction
        )


class MSELoss(_Loss):
    """Module form of mse_loss."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Module form of l1_loss."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Module form of smooth_l1_loss."""

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        beta: float = 1.0,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Module form of huber_loss."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class BCELoss(_WeightedLoss):
    """Module form of binary_cross_entropy."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Module form of binary_cross_entropy_with_logits."""

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        pos_weight: Tensor | None = None,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class KLDivLoss(_Loss):
    """Module form of kl_div."""

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        log_target: bool = False,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class PoissonNLLLoss(_Loss):
    """Module form of poisson_nll_loss."""

    def __init__(
        self,
        log_input: bool = True,
        full: bool = False,
        size_average: bool | None = None,
        eps: float = 1e-8,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input: Tensor, target: Tensor) -> Tensor:
        return poisson_nll_loss(
            log_input,
            target,
            log_input=self.log_input,
            full=self.full,
            eps=self.eps,
            reduction=self.reduction,
        )


class GaussianNLLLoss(_Loss):
    """Module form of gaussian_nll_loss."""

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.full, self.eps = full, eps

    def forward(self, input: Tensor, target: Tensor, var: Tensor | float) -> Tensor:
        return gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)


class MarginRankingLoss(_Loss):
    """Module form of margin_ranking_loss."""

    def __init__(
        self,
        margin: float = 0.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """Module form of hinge_embedding_loss."""

    def __init__(
        self,
        margin: float = 1.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """Module form of soft_margin_loss."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return soft_margin_loss(input, target, reduction=self.reduction)


class CosineSimilarity(Module):
    """Module form of cosine_similarity."""

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return cosine_similarity(x1, x2, self.dim, self.eps)

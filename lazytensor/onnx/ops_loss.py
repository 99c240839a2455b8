"""Loss ONNX ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss."""
from __future__ import annotations

from lazytensor import dtypes
from lazytensor.onnx.ops import OpContext, Value, register
from lazytensor.tensor import Tensor


def nll(ctx: OpContext, logp: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
    """ONNX NLL of log-probabilities (N, C, *d) at integer targets (N, *d), with weight/ignore_index."""
    ignore = ctx.attr("ignore_index")
    reduction = ctx.attr("reduction", "mean")
    target = target.cast(dtypes.int64)
    keep = None
    if ignore is not None:
        keep = target.ne(ignore)
        target = keep._where(target, 0)
    picked = logp.gather(1, target.unsqueeze(1)).squeeze(1)        # (N, *d)
    w = weight.index_select(0, target.reshape((-1,))).reshape(tuple(target.shape)) if weight is not None \
        else None
    if keep is not None:
        mask = keep.cast(logp.dtype)
        w = mask if w is None else w * mask
    loss = -picked if w is None else -picked * w
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    if reduction != "mean":
        raise ctx.unsupported(f"reduction {reduction!r}")
    if w is None:
        return total / loss.numel()
    return total / w.sum()


@register("NegativeLogLikelihoodLoss")
def negative_log_likelihood(ctx: OpContext, args: list[Value]) -> Value:
    logp, target = args[0], args[1]
    weight = args[2] if len(args) > 2 else None
    return nll(ctx, logp, target, weight).cast(logp.dtype)


@register("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy(ctx: OpContext, args: list[Value]) -> Value:
    scores, labels = args[0], args[1]
    weight = args[2] if len(args) > 2 else None
    logp = scores.log_softmax(1)
    loss = nll(ctx, logp, labels, weight).cast(scores.dtype)
    if len(ctx.node.outputs) > 1:
        return loss, logp
    return loss

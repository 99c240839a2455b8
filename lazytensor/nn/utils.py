"""nn.utils: gradient clipping and parameter helpers (torch.nn.utils' names and semantics).

Clipping is lazy: the total norm is a lazy 0-d tensor and every gradient is rescaled by a lazy
factor, so clipping fuses into the training step; the next Optimizer.step() realizes the norm in
its schedule, so reading it afterwards runs nothing. Only error_if_nonfinite=True needs the value
before the step: it realizes the gradients and the norm together (one schedule) to check it.
"""

from __future__ import annotations

import math
from typing import Iterable

from lazytensor.autograd import mark_for_step
from lazytensor.tensor import Tensor

__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "get_total_norm",
    "clip_grads_with_norm_",
    "parameters_to_vector",
    "vector_to_parameters",
    "skip_init",
]


def skip_init(module_cls: type, *args: object, **kwargs: object) -> object:
    """module_cls(*args, **kwargs) with its parameters left uninitialized (torch.nn.utils.skip_init):
    no initializer runs, for a module whose weights are loaded right after. See nn.init.no_init()."""
    from lazytensor.nn import init
    with init.no_init():
        return module_cls(*args, **kwargs)


def _as_list(tensors: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _vector_norm(x: Tensor, norm_type: float) -> Tensor:
    """torch.linalg.vector_norm of x flattened, for p in {inf, -inf, 0, any other float}."""
    flat = x.reshape(-1)
    if norm_type == math.inf:
        return flat.abs().amax() if flat.numel() else flat._const(0.0, shape=())
    if norm_type == -math.inf:
        return flat.abs().amin()
    if norm_type == 0:
        return (flat != 0).cast(flat.dtype).sum()
    if norm_type == 2:
        return (flat * flat).sum().sqrt()
    if norm_type == 1:
        return flat.abs().sum()
    return (flat.abs() ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(
    tensors: Tensor | Iterable[Tensor],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The norm of the norms of `tensors` (= the norm of all their elements as one vector), lazy."""
    from lazytensor.creation import tensor as make_tensor
    from lazytensor.functions import stack

    items = _as_list(tensors)
    norm_type = float(norm_type)
    if not items:
        return make_tensor(0.0)
    dtype = items[0].dtype
    norms = [_vector_norm(t, norm_type).cast(dtype) for t in items]
    total = _vector_norm(stack(norms), norm_type)
    if error_if_nonfinite:
        from lazytensor import realize

        realize(total, *items)  # one schedule: the gradients are kept, not recomputed by the step
        value = total.item()
        if math.isnan(value) or math.isinf(value):
            raise RuntimeError(
                f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                "so it cannot be clipped. To disable this error and scale the gradients by the "
                "non-finite norm anyway, set `error_if_nonfinite=False`"
            )
    return total


def clip_grads_with_norm_(
    parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Tensor, foreach: bool | None = None
) -> None:
    """Scale every gradient by min(1, max_norm / (total_norm + 1e-6)), lazily."""
    params = [p for p in _as_list(parameters) if p.grad is not None]
    if not params:
        return
    coef = (float(max_norm) / (total_norm + 1e-6)).clamp_max(1.0)
    for p in params:
        scale = coef.cast(p.grad.dtype) if coef.dtype != p.grad.dtype else coef
        p.grad = (p.grad * scale).detach()


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Rescale the gradients so that their total norm is at most max_norm; returns the total norm
    (before clipping) as a lazy 0-d tensor, realized with the next optimizer step."""
    params = _as_list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(params, max_norm, total, foreach)
    mark_for_step(total)
    return total


def clip_grad_value_(
    parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None
) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], lazily."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            p.grad = p.grad.clamp(-clip_value, clip_value).detach()


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor."""
    from lazytensor.functions import cat

    params = _as_list(parameters)
    devices = {p.device for p in params}
    if len(devices) > 1:
        raise TypeError(f"parameters_to_vector: found parameters on different devices {sorted(devices)}")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D vec into the parameters (in place, one schedule)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected lazytensor.Tensor, but got: {type(vec).__name__}")
    params = _as_list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise RuntimeError(
            f"vector_to_parameters: vec of shape {tuple(vec.shape)} does not hold the {total} "
            f"elements of the parameters (expected shape ({total},))"
        )
    from lazytensor import no_grad, realize
    from lazytensor.optim.optimizer import Optimizer

    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            piece = vec[offset : offset + n].reshape(tuple(p.shape)).cast(p.dtype).contiguous()
            Optimizer._assign(p, piece)
            offset += n
    realize(*params)

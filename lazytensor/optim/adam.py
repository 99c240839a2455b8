"""Adam and AdamW (torch.optim.Adam / AdamW), with amsgrad, weight decay (L2 or decoupled) and maximize."""

from __future__ import annotations

import math
from typing import Any, Iterable

from lazytensor import dtypes
from lazytensor.creation import full, zeros, zeros_like
from lazytensor.functions import stack
from lazytensor.tensor import Tensor
from lazytensor.optim.optimizer import Optimizer, check_hyperparameter


class Adam(Optimizer):
    """Adam, following torch's single-tensor update:

    g ← ±grad (+ wd·p, or p ← p·(1 − lr·wd) when decoupled);  m ← m + (1 − β1)(g − m);
    v ← β2·v + (1 − β2)·g²;  v̂ ← max(v̂, v) (amsgrad);
    p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        _check_adam_args(lr, betas, eps, weight_decay)
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                maximize=maximize,
                foreach=foreach,
                capturable=capturable,
                differentiable=differentiable,
                fused=fused,
                decoupled_weight_decay=decoupled_weight_decay,
            ),
        )

    def _update_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        # The step count lives on the device (float64: exact counts, accurate bias corrections), so a
        # step replayed by lt.jit advances it too. Parameters initialized together share one count,
        # and each count's two bias-corrected factors are computed once, in one small kernel.
        new_count: Tensor | None = None
        factors: dict[int, Tensor] = {}    # id(step count) -> [lr / (1 - beta1^t), sqrt(1 - beta2^t)]
        unpacked: dict[tuple, tuple[Tensor, Tensor]] = {}   # (id(step count), dtype) -> the two, cast
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = self._grad_of(p, group["maximize"], type(self).__name__)
            state = self.state[p]
            if not state:
                if new_count is None:
                    new_count = zeros((), dtype=dtypes.float64, device=p.device)
                state["step"] = new_count
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = zeros_like(p)
            if not isinstance(state["step"], Tensor):   # loaded from a state_dict as a number
                state["step"] = full((), float(state["step"]), dtype=dtypes.float64, device=p.device)
            count = state["step"]
            if id(count) not in factors:
                step = count + 1
                self._assign(count, step)
                factors[id(count)] = stack([
                    self._scalar(lr, step) / (1 - self._power(beta1, step)),
                    (1 - self._power(beta2, step)).sqrt(),
                ]).contiguous()
            if (id(count), p.dtype) not in unpacked:   # parameters sharing a count share the two views
                unpacked[id(count), p.dtype] = tuple(f.cast(p.dtype) for f in factors[id(count)].unbind(0))
            step_size, bias_correction2_sqrt = unpacked[id(count), p.dtype]
            if wd != 0:
                if group["decoupled_weight_decay"]:
                    self._assign(p, p * self._scalar_like(1 - lr * wd, p))
                else:
                    grad = grad + p * self._scalar_like(wd, p)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            self._assign(exp_avg, exp_avg + (grad - exp_avg) * self._scalar_like(1 - beta1, p))
            self._assign(exp_avg_sq, exp_avg_sq * self._scalar_like(beta2, p)
                         + grad * grad * self._scalar_like(1 - beta2, p))
            second = exp_avg_sq
            if group["amsgrad"]:
                self._assign(state["max_exp_avg_sq"], state["max_exp_avg_sq"].maximum(exp_avg_sq))
                second = state["max_exp_avg_sq"]
            denom = second.sqrt() / bias_correction2_sqrt + self._scalar_like(eps, p)
            self._assign(p, p - exp_avg / denom * step_size)

    def _power(self, beta: float, count: Tensor) -> Tensor:
        """beta ** count for 0 <= beta < 1 and a float64 count >= 1, as exp2(count · log2 beta): two ops
        on a 0-d buffer holding log2 beta (computed here), where the general pow builds ~30 (it handles
        negative bases and special exponents, which a beta never is). Within ~1e-13 of beta ** count
        for the counts a run reaches."""
        log2_beta = math.log2(beta) if beta > 0 else -math.inf   # 0 ** count = exp2(-inf) = 0
        return (count * self._scalar(log2_beta, count)).exp2()


class AdamW(Adam):
    """Adam with decoupled weight decay (p ← p·(1 − lr·wd) before the step); weight_decay=1e-2."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )


def _check_adam_args(lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> None:
    check_hyperparameter("learning rate", lr)
    check_hyperparameter("epsilon", eps)
    check_hyperparameter("beta parameter at index 0", betas[0], 0.0, 1.0)
    check_hyperparameter("beta parameter at index 1", betas[1], 0.0, 1.0)
    check_hyperparameter("weight_decay", weight_decay)

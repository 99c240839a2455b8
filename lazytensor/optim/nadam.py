"""NAdam (torch.optim.NAdam): Adam with Nesterov momentum and a momentum-decay schedule."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from lazytensor.creation import zeros_like
from lazytensor.optim.adam import _check_adam_args
from lazytensor import capture
from lazytensor.optim.optimizer import Optimizer, check_hyperparameter


class NAdam(Optimizer):
    """NAdam, following torch's update:

    μₜ = β1(1 − ½·0.96^(t·ψ)),  Πₜ = Πₜ₋₁·μₜ;  m, v as in Adam;  d = √(v / (1 − β2ᵗ)) + eps;
    p ← p − lr(1 − μₜ)/(1 − Πₜ) · g/d − lr·μₜ₊₁/(1 − Πₜ·μₜ₊₁) · m/d.
    Πₜ (state 'mu_product') is kept in float32 precision, as torch keeps it in a float32 tensor."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_adam_args(lr, betas, eps, weight_decay)
        check_hyperparameter("momentum_decay", momentum_decay)
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                momentum_decay=momentum_decay,
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
                foreach=foreach,
                capturable=capturable,
                differentiable=differentiable,
            ),
        )

    def _update_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        lr, wd, eps, psi = group["lr"], group["weight_decay"], group["eps"], group["momentum_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = self._grad_of(p, group["maximize"], "NAdam")
            state = self.state[p]
            if not state:
                state["step"] = 0.0
                state["mu_product"] = 1.0
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            state["step"] += 1
            capture.note_frozen("NAdam's step count")
            step = state["step"]
            bias_correction2 = 1 - beta2**step
            if wd != 0:
                if group["decoupled_weight_decay"]:
                    self._assign(p, p * self._scalar(1 - lr * wd, p))
                else:
                    grad = grad + p * self._scalar(wd, p)
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * psi)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi)))
            # torch keeps Πₜ in a float32 tensor: both factors and the product are rounded to float32
            mu_product = float(np.float32(np.float32(state["mu_product"]) * np.float32(mu)))
            state["mu_product"] = mu_product
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            self._assign(exp_avg, exp_avg + (grad - exp_avg) * self._scalar(1 - beta1, p))
            self._assign(
                exp_avg_sq, exp_avg_sq * self._scalar(beta2, p) + grad * grad * self._scalar(1 - beta2, p)
            )
            denom = (exp_avg_sq / self._scalar(bias_correction2, p)).sqrt() + self._scalar(eps, p)
            grad_coef = -lr * (1.0 - mu) / (1.0 - mu_product)
            avg_coef = -lr * mu_next / (1.0 - mu_product * mu_next)
            updated = p + grad / denom * self._scalar(grad_coef, p)
            self._assign(p, updated + exp_avg / denom * self._scalar(avg_coef, p))

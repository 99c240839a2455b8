"""RAdam (torch.optim.RAdam): Adam with a variance rectification term."""

from __future__ import annotations

from typing import Any, Iterable

from lazytensor.creation import zeros_like
from lazytensor.optim.adam import _check_adam_args
from lazytensor import capture
from lazytensor.optim.optimizer import Optimizer


class RAdam(Optimizer):
    """RAdam, following torch's update: with ρ∞ = 2/(1 − β2) − 1 and ρₜ = ρ∞ − 2tβ2ᵗ/(1 − β2ᵗ),
    p ← p − lr · m/(1 − β1ᵗ) · r·√(1 − β2ᵗ)/(√v + eps) when ρₜ > 5 (r the rectification), else
    p ← p − lr · m/(1 − β1ᵗ). The branch is taken in Python: t is a Python number."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_adam_args(lr, betas, eps, weight_decay)
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                maximize=maximize,
                foreach=foreach,
                capturable=capturable,
                decoupled_weight_decay=decoupled_weight_decay,
                differentiable=differentiable,
            ),
        )

    def _update_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = self._grad_of(p, group["maximize"], "RAdam")
            state = self.state[p]
            if not state:
                state["step"] = 0.0
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            state["step"] += 1
            capture.note_frozen("RAdam's step count")
            step = state["step"]
            if wd != 0:
                if group["decoupled_weight_decay"]:
                    self._assign(p, p * self._scalar(1 - lr * wd, p))
                else:
                    grad = grad + p * self._scalar(wd, p)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            self._assign(exp_avg, exp_avg + (grad - exp_avg) * self._scalar(1 - beta1, p))
            self._assign(
                exp_avg_sq, exp_avg_sq * self._scalar(beta2, p) + grad * grad * self._scalar(1 - beta2, p)
            )
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            corrected = exp_avg / self._scalar(bias_correction1, p)
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
            if rho_t > 5.0:
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                adaptive = self._scalar(bias_correction2**0.5, p) / (exp_avg_sq.sqrt() + self._scalar(eps, p))
                update = corrected * self._scalar(lr, p) * adaptive * self._scalar(rect, p)
            else:
                update = corrected * self._scalar(lr, p)
            self._assign(p, p - update)

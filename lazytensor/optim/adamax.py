"""Adamax (torch.optim.Adamax): Adam with an infinity-norm second moment."""

from __future__ import annotations

from typing import Any, Iterable

from lazytensor.creation import zeros_like
from lazytensor.optim.adam import _check_adam_args
from lazytensor import capture
from lazytensor.optim.optimizer import Optimizer


class Adamax(Optimizer):
    """Adamax, following torch's update:

    m ← m + (1 − β1)(g − m);  u ← max(β2·u, |g| + eps);  p ← p − lr/(1 − β1ᵗ) · m / u."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        _check_adam_args(lr, betas, eps, weight_decay)
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
                capturable=capturable,
            ),
        )

    def _update_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = self._grad_of(p, group["maximize"], "Adamax")
            state = self.state[p]
            if not state:
                state["step"] = 0.0
                state["exp_avg"] = zeros_like(p)
                state["exp_inf"] = zeros_like(p)
            state["step"] += 1
            capture.note_frozen("Adamax's step count")
            if wd != 0:
                grad = grad + p * self._scalar(wd, p)
            exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
            self._assign(exp_avg, exp_avg + (grad - exp_avg) * self._scalar(1 - beta1, p))
            self._assign(
                exp_inf, (exp_inf * self._scalar(beta2, p)).maximum(grad.abs() + self._scalar(eps, p))
            )
            clr = lr / (1 - beta1 ** state["step"])
            self._assign(p, p - exp_avg / exp_inf * self._scalar(clr, p))

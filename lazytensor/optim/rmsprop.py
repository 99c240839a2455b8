"""RMSprop (torch.optim.RMSprop): alpha, eps, centered, momentum, weight decay, maximize."""

from __future__ import annotations

from typing import Any, Iterable

from lazytensor.creation import zeros_like
from lazytensor.optim.optimizer import Optimizer, check_hyperparameter


class RMSprop(Optimizer):
    """RMSprop, following torch's update:

    v ← α·v + (1 − α)·g²;  centered: ḡ ← ḡ + (1 − α)(g − ḡ), avg = √(v − ḡ²) + eps, else √v + eps;
    momentum: b ← μ·b + g/avg, p ← p − lr·b;  otherwise p ← p − lr·g/avg."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_hyperparameter("learning rate", lr)
        check_hyperparameter("epsilon", eps)
        check_hyperparameter("momentum", momentum)
        check_hyperparameter("weight_decay", weight_decay)
        check_hyperparameter("alpha", alpha)
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                alpha=alpha,
                eps=eps,
                centered=centered,
                weight_decay=weight_decay,
                capturable=capturable,
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
            ),
        )

    def _update_group(self, group: dict[str, Any]) -> None:
        alpha, eps, wd, momentum = group["alpha"], group["eps"], group["weight_decay"], group["momentum"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = self._grad_of(p, group["maximize"], "RMSprop")
            state = self.state[p]
            if not state:
                state["step"] = 0.0
                state["square_avg"] = zeros_like(p)
                if momentum > 0:
                    state["momentum_buffer"] = zeros_like(p)
                if group["centered"]:
                    state["grad_avg"] = zeros_like(p)
            state["step"] += 1
            if wd != 0:
                grad = grad + p * self._scalar(wd, p)
            square_avg = state["square_avg"]
            self._assign(
                square_avg, square_avg * self._scalar(alpha, p) + grad * grad * self._scalar(1 - alpha, p)
            )
            if group["centered"]:
                grad_avg = state["grad_avg"]
                self._assign(grad_avg, grad_avg + (grad - grad_avg) * self._scalar(1 - alpha, p))
                avg = (square_avg - grad_avg * grad_avg).sqrt()
            else:
                avg = square_avg.sqrt()
            avg = avg + self._scalar(eps, p)
            if momentum > 0:
                buf = state["momentum_buffer"]
                self._assign(buf, buf * self._scalar(momentum, p) + grad / avg)
                self._assign(p, p - buf * self._scalar(group["lr"], p))
            else:
                self._assign(p, p - grad / avg * self._scalar(group["lr"], p))

"""Adagrad (torch.optim.Adagrad): lr_decay, weight decay, initial_accumulator_value, eps, maximize."""

from __future__ import annotations

from typing import Any, Iterable

from lazytensor.creation import full_like
from lazytensor import capture
from lazytensor.optim.optimizer import Optimizer, check_hyperparameter


class Adagrad(Optimizer):
    """Adagrad, following torch's update:

    clr = lr / (1 + (t − 1)·lr_decay);  s ← s + g²;  p ← p − clr · g / (√s + eps).
    State is created in the constructor, as torch does (sum = initial_accumulator_value)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_hyperparameter("learning rate", lr)
        check_hyperparameter("lr_decay", lr_decay)
        check_hyperparameter("weight_decay", weight_decay)
        check_hyperparameter("initial_accumulator_value", initial_accumulator_value)
        check_hyperparameter("epsilon", eps)
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                eps=eps,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
                fused=fused,
            ),
        )
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = 0.0
                state["sum"] = full_like(p, group["initial_accumulator_value"])

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = self._grad_of(p, group["maximize"], "Adagrad")
            state = self.state[p]
            if not state:  # a group added after construction
                state["step"] = 0.0
                state["sum"] = full_like(p, group["initial_accumulator_value"])
            state["step"] += 1
            if group["lr_decay"] != 0:
                capture.note_frozen("Adagrad's step count (lr_decay)")
            if wd != 0:
                grad = grad + p * self._scalar(wd, p)
            clr = lr / (1 + (state["step"] - 1) * group["lr_decay"])
            total = state["sum"]
            self._assign(total, total + grad * grad)
            std = total.sqrt() + self._scalar(eps, p)
            self._assign(p, p - grad / std * self._scalar(clr, p))

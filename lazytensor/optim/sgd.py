"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize (torch.optim.SGD)."""

from __future__ import annotations

from typing import Any, Iterable

from lazytensor.optim.optimizer import Optimizer, check_hyperparameter


class SGD(Optimizer):
    """Stochastic gradient descent, following torch's update exactly:

    g ← ±grad + wd·p;  b ← g (first step) or μ·b + (1 − dampening)·g;  g ← g + μ·b (nesterov) or b;
    p ← p − lr·g."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_hyperparameter("learning rate", lr)
        check_hyperparameter("momentum", momentum)
        check_hyperparameter("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
                foreach=foreach,
                differentiable=differentiable,
                fused=fused,
            ),
        )

    def _update_group(self, group: dict[str, Any]) -> None:
        momentum, dampening, wd = group["momentum"], group["dampening"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = self._grad_of(p, group["maximize"], "SGD")
            if wd != 0:
                grad = grad + p * self._scalar(wd, p)
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = grad.contiguous()
                    state["momentum_buffer"] = buf
                else:
                    self._assign(buf, buf * self._scalar(momentum, p) + grad * self._scalar(1 - dampening, p))
                grad = grad + buf * self._scalar(momentum, p) if group["nesterov"] else buf
            self._assign(p, p - grad * self._scalar(group["lr"], p))

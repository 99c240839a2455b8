"""Optimizer base: param groups, per-parameter state, zero_grad, state_dict — and a lazy, fused step.

`step()` never computes anything parameter by parameter. Each subclass builds the new value of
every parameter and state tensor as lazy Tensor ops (under no_grad) and points the tensors at
those graphs; the base class then realizes all of them — plus the losses that backward() was
called on since the last step — with ONE `lt.realize(...)`, so forward, backward and update of a
training step run as one schedule.

Scalars that change between steps (lr, bias corrections, scheduled betas/momentum) are not baked
into the kernels as constants (each new value would compile new kernels): they are 0-d buffers
read by the kernel, so a scheduler changing lr costs a host-to-device copy of one number, and
the compiled kernels are reused. The step counter and bias corrections are Python floats.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable

import numpy as np

from lazytensor import capture, dtypes
from lazytensor.autograd import GradMode, register_leaf, take_marked_for_step, unregister_leaf
from lazytensor.tensor import Tensor


class _RequiredParameter:
    """Marks a hyperparameter every param group must set (torch.optim.optimizer.required)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

_IGNORED_FLAGS = ("foreach", "fused", "capturable")  # torch's implementation switches: one fused path here


class Optimizer:
    """Base class: holds `param_groups` (list of dicts) and `state` (param → dict), like torch.optim."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got {type(params).__name__}"
            )
        if defaults.get("differentiable"):
            raise NotImplementedError(
                f"{type(self).__name__}: differentiable=True is not supported: the update "
                "is recorded under no_grad"
            )
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._scalars: dict[tuple, Tensor] = {}
        self._scalar_views: dict[tuple, Tensor] = {}
        if isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering "
                "of tensors in sets will change between runs. Please use a list instead."
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ---- groups ----
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones take the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering "
                "of tensors in sets will change between runs. Please use a list instead."
            )
        params = list(params)
        for p in params:
            if isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], Tensor):
                raise TypeError("named parameters (name, tensor) are not supported; pass the tensors")
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization parameter {name}"
                )
            group.setdefault(name, default)
        if isinstance(group.get("lr"), Tensor):
            group["lr"] = float(group["lr"].item())
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        if existing & {id(p) for p in params}:
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # ---- gradients ----
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (set_to_none=False: make them lazy zeros instead)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = Tensor._from_node(p.grad._const(0).node, p.device)

    # ---- the step ----
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter with a gradient; everything is realized in one schedule."""
        loss = None
        self._opt_called = True  # schedulers warn when they step before the optimizer
        if closure is not None:
            previous = GradMode.enabled
            GradMode.enabled = True
            try:
                loss = closure()
            finally:
                GradMode.enabled = previous
        previous = GradMode.enabled
        GradMode.enabled = False
        try:
            for group in self.param_groups:
                self._update_group(group)
        finally:
            GradMode.enabled = previous
        extra = [loss] if isinstance(loss, Tensor) else []
        self._realize_step(extra)
        capture.add_guard(self._hyperparameters)   # lt.jit captures again when a learning rate changes
        return loss

    def _hyperparameters(self) -> tuple:
        """Every group's settings except its parameters (what a captured step baked in)."""
        return tuple(tuple(sorted((k, repr(v)) for k, v in group.items() if k != "params"))
                     for group in self.param_groups)

    def _update_group(self, group: dict[str, Any]) -> None:
        """Build the lazy update of every parameter of one group (subclasses)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _update_group")

    def _realize_step(self, extra: list[Tensor]) -> None:
        """Realize parameters, state tensors and pending losses together: one schedule per device."""
        from lazytensor import realize

        targets: list[Tensor] = []
        for group in self.param_groups:
            for p in group["params"]:
                targets.append(p)
                for value in self.state.get(p, {}).values():
                    if isinstance(value, Tensor):
                        targets.append(value)
        targets += [t for t in take_marked_for_step() + extra if isinstance(t, Tensor)]
        realize(*targets)

    # ---- helpers for subclasses ----
    def _scalar(self, value: float, like: Tensor) -> Tensor:
        """A 0-d buffer holding `value` in like's dtype/device (a kernel input: no recompile per value)."""
        value = float(value)
        key = (value.hex(), like.dtype, like.device)
        found = self._scalars.get(key)
        if found is None:
            if len(self._scalars) > 256:
                self._scalars.clear()
            found = Tensor(value, dtype=like.dtype, device=like.device)
            self._scalars[key] = found
        return found

    def _scalar_like(self, value: float, like: Tensor) -> Tensor:
        """_scalar(value, like) broadcast to like's shape. Cached as well: an update multiplies every
        parameter by a few of these each step, and the broadcast view would be rebuilt each time."""
        key = (float(value).hex(), like.dtype, like.device, tuple(like.shape))
        found = self._scalar_views.get(key)
        if found is None:
            if len(self._scalar_views) > 256:
                self._scalar_views.clear()
            found = self._scalar(value, like).expand(tuple(like.shape))
            self._scalar_views[key] = found
        return found

    @staticmethod
    def _assign(target: Tensor, value: Tensor) -> None:
        """Point `target` (a parameter or state tensor) at a new lazy value (a grad leaf stays registered)."""
        node = value.cast(target.dtype).node if value.dtype != target.dtype else value.node
        capture.note_update(target)
        if target._is_leaf_grad:
            unregister_leaf(target.node)
            target.node = node
            register_leaf(node, target)
        else:
            target.node = node
        target._version += 1

    @staticmethod
    def _grad_of(p: Tensor, maximize: bool, op: str) -> Tensor:
        grad = p.grad
        if tuple(grad.shape) != tuple(p.shape):
            raise RuntimeError(
                f"{op}: gradient of shape {tuple(grad.shape)} does not match its parameter's shape "
                f"{tuple(p.shape)}"
            )
        grad = grad.cast(p.dtype) if grad.dtype != p.dtype else grad
        return -grad if maximize else grad

    # ---- state_dict ----
    def state_dict(self) -> dict[str, Any]:
        """torch's layout: {'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}."""
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            indices = []
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
                indices.append(index_of[id(p)])
            packed["params"] = indices
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index_of[id(p)]] = {k: _snapshot(v) for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict made by state_dict() (ours, or torch's with torch tensors)."""
        groups, saved_groups = self.param_groups, state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError(
                f"loaded state dict has a different number of parameter groups ({len(saved_groups)} "
                f"vs {len(groups)})"
            )
        for group, saved in zip(groups, saved_groups):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size of "
                    f"optimizer's group ({len(saved['params'])} vs {len(group['params'])})"
                )
        param_of = {}
        for group, saved in zip(groups, saved_groups):
            for index, p in zip(saved["params"], group["params"]):
                param_of[index] = p
        self.state = defaultdict(dict)
        for index, values in state_dict["state"].items():
            p = param_of.get(int(index))
            if p is None:
                continue
            self.state[p] = {k: _state_value(k, v, p) for k, v in values.items()}
        new_groups = []
        for group, saved in zip(groups, saved_groups):
            merged = {k: v for k, v in saved.items() if k != "params"}
            if isinstance(merged.get("lr"), Tensor) or type(merged.get("lr")).__module__.startswith("torch"):
                merged["lr"] = float(merged["lr"])
            if "betas" in merged:
                merged["betas"] = tuple(float(b) for b in merged["betas"])
            merged["params"] = group["params"]
            new_groups.append(merged)
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"


def _snapshot(value: Any) -> Any:
    """A state entry as of now: a new Tensor object on the same (immutable) buffer, so that later steps,
    which point the optimizer's own state tensors at new buffers, leave a saved state_dict unchanged."""
    if isinstance(value, Tensor):
        return Tensor._from_node(value.node, value.device)
    return value


def _state_value(key: str, value: Any, param: Tensor) -> Any:
    """A loaded state entry: counters become Python floats, tensors lt tensors in the param's dtype/device."""
    if key in ("step", "mu_product"):
        return float(value.item() if hasattr(value, "item") else value)
    if isinstance(value, Tensor):
        out = value.to(param.device)
    elif type(value).__module__.startswith("torch"):
        out = Tensor(value.detach().cpu().numpy(), device=param.device)
    elif isinstance(value, np.ndarray):
        out = Tensor(value, device=param.device)
    else:
        return value
    if out.dtype.is_float and out.dtype != param.dtype:
        out = out.cast(param.dtype)
    if out.dtype.is_float and out.dtype not in (
        dtypes.float16,
        dtypes.bfloat16,
        dtypes.float32,
        dtypes.float64,
    ):
        raise TypeError(f"load_state_dict: unsupported state dtype {out.dtype} for {key!r}")
    out = out.contiguous().realize()
    return Tensor._from_node(out.node, out.device)   # our own object: later steps never alias the source


def check_hyperparameter(
    name: str, value: Any, low: float = 0.0, high: float | None = None, inclusive_high: bool = False
) -> None:
    """torch's 'Invalid <name> value' checks: low <= value (< or <=) high."""
    if isinstance(value, Tensor):
        value = value.item()
    bad = value < low or (high is not None and (value > high if inclusive_high else value >= high))
    if bad:
        raise ValueError(f"Invalid {name} value: {value}")

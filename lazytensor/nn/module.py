"""nn.Module and its containers: parameters, buffers and submodules in registration order.

Attribute assignment registers things the way torch does: a `Parameter` becomes a parameter, a
`Module` a submodule, and `register_buffer` records a tensor that is part of the state_dict but is
not trained (BatchNorm's running stats).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple

from lazytensor import capture
from lazytensor.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable; requires_grad by default, like torch."""

    def __init__(self, data: Tensor | Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = Tensor([])
        source = data if isinstance(data, Tensor) else Tensor(data)
        super().__init__(source.detach())
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer: holds parameters, buffers and submodules, and a training flag."""

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())

    # ---- registration ----
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() call "
                f"(call super().__init__() first in {type(self).__name__}.__init__)"
            )
        if name in self._parameters and value is not None and not isinstance(value, Parameter):
            raise TypeError(
                f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                "(nn.Parameter or None expected)"
            )
        if name in self._modules and value is not None and not isinstance(value, Module):
            raise TypeError(
                f"cannot assign '{type(value).__name__}' as child module '{name}' "
                "(nn.Module or None expected)"
            )
        if isinstance(value, (Parameter, Module)):
            # leave the table the value goes into alone, so a re-assigned name keeps its position (as torch)
            own = self._parameters if isinstance(value, Parameter) else self._modules
            for table in (self._parameters, self._buffers, self._modules):
                if table is not own:
                    table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} as buffer {name!r} (Tensor or None expected)"
                )
            self._buffers[name] = value
        elif name in self._parameters and value is None:
            self._parameters[name] = None
        elif name in self._modules and value is None:
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, as for bias=False) under `name`."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}"
            )
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add non-trained state (e.g. running_mean); persistent buffers go into the state_dict."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}"
            )
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def register_module(self, name: str, module: "Module | None") -> None:
        """Add a submodule (or a None placeholder) under `name`."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(
                f"register_module: {name!r} must be a Module or None, got {type(module).__name__}"
            )
        if not isinstance(name, str) or "." in name or name == "":
            raise KeyError(
                f"register_module: module name must be a non-empty string without '.', got {name!r}"
            )
        self.__dict__.pop(name, None)
        self._modules[name] = module

    add_module = register_module

    # ---- traversal ----
    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module and every descendant, each once (unless remove_duplicate
        is False)."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def get_submodule(self, target: str) -> "Module":
        """The submodule at a dotted path ('' is self), e.g. 'encoder.layers.0'."""
        module: Module = self
        if target == "":
            return module
        for part in target.split("."):
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(
                    f"{type(module).__name__} has no attribute `{part}` (looking up {target!r})"
                )
            module = child
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path, e.g. 'encoder.linear1.weight'."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        param = module._parameters.get(name)
        if param is None:
            raise AttributeError(f"{type(module).__name__} has no parameter `{name}` (looking up {target!r})")
        return param

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self) -> Iterator["Module"]:
        for _, child in self.named_children():
            yield child

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules is listed once."""
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, buf in module._buffers.items():
                if buf is None or id(buf) in seen:
                    continue
                seen.add(id(buf))
                yield (f"{module_name}.{name}" if module_name else name), buf

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    # ---- state ----
    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """Parameters and persistent buffers by dotted name, in torch's order (detached unless keep_vars)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for name, param in self._parameters.items():
            if param is not None:
                out[prefix + name] = param if keep_vars else param.detach()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent:
                out[prefix + name] = buf if keep_vars else buf.detach()
        for name, child in self._modules.items():
            if child is not None:
                out.update(child.state_dict(prefix=f"{prefix}{name}.", keep_vars=keep_vars))
        return out

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> "IncompatibleKeys":
        """Copy values (lt or torch tensors, NumPy arrays) into parameters and buffers.

        Returns (missing_keys, unexpected_keys); with strict=True either being non-empty raises, and a
        shape mismatch always raises (torch's messages). Nothing is changed when it raises."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors: list[str] = []
        if strict and unexpected:
            errors.append(
                "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". "
            )
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
        values: dict[str, Tensor] = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = _as_lazytensor(state_dict[key], target)
            if tuple(value.shape) != tuple(target.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {_size(value.shape)} from "
                    f"checkpoint, the shape in current model is {_size(target.shape)}."
                )
            values[key] = value
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors)
            )
        for key, value in values.items():
            target = own[key]
            _replace_value(target, value.to(target.dtype).contiguous().realize())
        return IncompatibleKeys(missing, unexpected)

    # ---- modes and conveniences ----
    def train(self, mode: bool = True) -> "Module":
        """Set training mode here and in every submodule (Dropout, BatchNorm behave differently)."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's .grad (or, with set_to_none=False, make it zeros)."""
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad = param.grad.detach() * 0

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Call fn on every submodule (children first) and then on self, like torch."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """Move/cast parameters and buffers in place (floating-point ones only for a dtype cast)."""
        for module in self.modules():
            for table in (module._parameters, module._buffers):
                for name, value in table.items():
                    if value is None:
                        continue
                    moved = value.to(*args, **kwargs)
                    if not value.dtype.is_float and moved.dtype != value.dtype:
                        moved = moved.to(value.dtype)  # integer buffers keep their dtype, as in torch
                    _replace_value(value, moved.realize())
        return self

    def float(self) -> "Module":
        return self.to("float32")

    def double(self) -> "Module":
        return self.to("float64")

    def half(self) -> "Module":
        return self.to("float16")

    def cpu(self) -> "Module":
        return self.to("CPU")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + (")" if not lines else "\n" + "\n".join(lines) + "\n)")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for hook in list(self.__dict__.get("_forward_pre_hooks", {}).values()):
            changed = hook(self, args)
            if changed is not None:
                args = changed if isinstance(changed, tuple) else (changed,)
        result = self.forward(*args, **kwargs)
        for hook in list(self.__dict__.get("_forward_hooks", {}).values()):
            changed = hook(self, args, result)
            if changed is not None:
                result = changed
        return result

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> "RemovableHandle":
        """hook(module, args) runs before forward; a non-None return replaces args."""
        return RemovableHandle(self.__dict__.setdefault("_forward_pre_hooks", OrderedDict()), hook)

    def register_forward_hook(self, hook: Callable[..., Any]) -> "RemovableHandle":
        """hook(module, args, output) runs after forward; a non-None return replaces the output."""
        return RemovableHandle(self.__dict__.setdefault("_forward_hooks", OrderedDict()), hook)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define forward() in the subclass")

    def __dir__(self) -> list[str]:
        return sorted(
            set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules)
        )


class IncompatibleKeys(NamedTuple):
    """What load_state_dict returns: keys the model has but the dict lacks, and the reverse."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class RemovableHandle:
    """Returned by register_*_hook; .remove() unregisters the hook."""

    _next_id = 0

    def __init__(self, table: "OrderedDict[int, Callable[..., Any]]", hook: Callable[..., Any]) -> None:
        RemovableHandle._next_id += 1
        self.id, self._table = RemovableHandle._next_id, table
        table[self.id] = hook

    def remove(self) -> None:
        self._table.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _size(shape: Any) -> str:
    return f"torch.Size({list(shape)})"


def _as_lazytensor(value: Any, like: Tensor) -> Tensor:
    """A state_dict value (lt.Tensor, torch.Tensor, NumPy array, list) as an lt.Tensor on like's device."""
    if isinstance(value, Tensor):
        return value.to(like.device)
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().numpy()
    return Tensor(value, device=like.device)


def _replace_value(target: Tensor, value: Tensor) -> None:
    """Give `target` (a parameter or buffer object) new contents, keeping its identity and grad flag."""
    from lazytensor.autograd import unregister_leaf
    from lazytensor.tensor import _own_leaf_buffer

    capture.note_update(target)   # a jit replay that read the old value captures again
    if target._is_leaf_grad:
        unregister_leaf(target.node)
    target.node, target.device = value.node, value.device
    if target._is_leaf_grad:
        _own_leaf_buffer(
            target
        )  # a buffer shared with another leaf (e.g. loaded from its state_dict) is copied
    target._version += 1


class Sequential(Module):
    """Modules applied in order; indexable and sliceable like torch.nn.Sequential."""

    def __init__(self, *modules: Module | "OrderedDict[str, Module]") -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index: int | slice) -> Module:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[_checked_index(index, len(items), "Sequential")][1]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __setitem__(self, index: int, module: Module) -> None:
        key = list(self._modules)[_checked_index(index, len(self), "Sequential")]
        self.add_module(key, module)

    def __delitem__(self, index: int | slice) -> None:
        keys = list(self._modules)
        doomed = (
            keys[index]
            if isinstance(index, slice)
            else [keys[_checked_index(index, len(keys), "Sequential")]]
        )
        for key in doomed:
            del self._modules[key]
        if all(k.isdigit() for k in keys):
            _renumber(self)

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> "Sequential":
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> "Sequential":
        _insert(self, index, module, "Sequential")
        return self

    def pop(self, index: int = -1) -> Module:
        module = self[index]
        del self[index]
        return module


class ModuleList(Module):
    """A list of submodules that registers each one (so their parameters are found)."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        for module in modules or []:
            self.append(module)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index: int | slice) -> "Module | ModuleList":
        values = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(values[index])
        return values[_checked_index(index, len(values), "ModuleList")]

    def __setitem__(self, index: int, module: Module) -> None:
        key = list(self._modules)[_checked_index(index, len(self), "ModuleList")]
        self.add_module(key, module)

    def __delitem__(self, index: int | slice) -> None:
        keys = list(self._modules)
        doomed = (
            keys[index]
            if isinstance(index, slice)
            else [keys[_checked_index(index, len(keys), "ModuleList")]]
        )
        for key in doomed:
            del self._modules[key]
        _renumber(self)

    def __iadd__(self, modules: Iterable[Module]) -> "ModuleList":
        return self.extend(modules)

    def __repr__(self) -> str:
        """Runs of equal-looking modules are folded, as torch does: `(0-2): 3 x Linear(...)`."""
        reprs = [repr(m) for m in self._modules.values()]
        if not reprs:
            return "ModuleList()"
        lines, start = [], 0
        for end in range(1, len(reprs) + 1):
            if end < len(reprs) and reprs[end] == reprs[start]:
                continue
            body = reprs[start].replace("\n", "\n  ")
            if end - start == 1:
                lines.append(f"  ({start}): {body}")
            else:
                lines.append(f"  ({start}-{end - 1}): {end - start} x {body}")
            start = end
        return "ModuleList(\n" + "\n".join(lines) + "\n)"

    def insert(self, index: int, module: Module) -> None:
        _insert(self, index, module, "ModuleList")

    def pop(self, index: int = -1) -> Module:
        module = self[index]
        del self[index]
        return module

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of submodules that registers each one."""

    def __init__(self, modules: Mapping[str, Module] | None = None) -> None:
        super().__init__()
        for name, module in (modules or {}).items():
            self[name] = module

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for name, module in pairs:
            self[name] = module

    def pop(self, key: str) -> Module:
        module = self._modules[key]
        del self._modules[key]
        return module

    def clear(self) -> None:
        self._modules.clear()


def _renumber(container: Module) -> None:
    """Name the submodules 0..n-1 again after a deletion, as torch does."""
    modules = list(container._modules.values())
    container._modules.clear()
    for i, module in enumerate(modules):
        container._modules[str(i)] = module


def _insert(container: Module, index: int, module: Module, name: str) -> None:
    if not isinstance(module, Module):
        raise TypeError(f"{name}.insert: expected a Module, got {type(module).__name__}")
    modules = list(container._modules.values())
    n = len(modules)
    if not -n <= index <= n:
        raise IndexError(f"{name}.insert: index {index} is out of range for length {n}")
    modules.insert(index, module)
    container._modules.clear()
    for i, m in enumerate(modules):
        container._modules[str(i)] = m


def _checked_index(index: int, length: int, container: str) -> int:
    if not -length <= index < length:
        raise IndexError(f"{container}: index {index} is out of range for length {length}")
    return index % length

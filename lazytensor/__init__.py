"""lazytensor: a lazy tensor compiler with PyTorch's API.

Operations record a graph; `.realize()` (or asking for a value) schedules it into fused
kernels, renders them as C (or OpenCL C / CUDA C), compiles them once (cached on disk) and
runs them.
"""
from __future__ import annotations

import contextlib

from lazytensor import config as _config

from lazytensor import dtypes
from lazytensor.autograd import GradMode
from lazytensor.creation import (arange, as_tensor, bernoulli, empty, empty_like, eye, from_numpy, full,
                                 full_like, linspace, logspace, manual_seed, normal, ones, ones_like, rand,
                                 rand_like, randint, randint_like, randn, randn_like, seed, tensor, zeros,
                                 zeros_like)
from lazytensor.dtypes import (DType, bfloat16, float16, float32, float64, int8, int16, int32, int64,
                               promote_types, result_type, uint8, uint16, uint32, uint64)
from lazytensor.dtypes import bool_ as bool  # noqa: A001  (PyTorch's name)
from lazytensor.explain import explain
from lazytensor.functions import (cat, clamp, clip, concat, concatenate, einsum, hstack, matmul, maximum,
                                  minimum, stack, vstack, where)
from lazytensor.tensor import Device, Size, Tensor, broadcast_shapes
from lazytensor.jit import JitError, jit
from lazytensor import realize as _realize_module  # imported before def realize() below, which must win the name

float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16

__version__ = "0.1.0"

class _GradModeContext(contextlib.ContextDecorator):
    """Context manager and decorator that sets whether new ops record gradient flow."""

    def __init__(self, enabled: bool, previous: bool | None = None) -> None:
        self.enabled = enabled
        self.fixed_previous = previous   # set_grad_enabled: the mode before the call, not before `with`

    def __enter__(self) -> None:
        self.previous = GradMode.enabled if self.fixed_previous is None else self.fixed_previous
        GradMode.enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        GradMode.enabled = self.previous


def no_grad() -> _GradModeContext:
    """Ops recorded inside are detached: no gradient flows through them."""
    return _GradModeContext(False)


def enable_grad() -> _GradModeContext:
    return _GradModeContext(True)


def set_grad_enabled(mode: bool) -> _GradModeContext:
    """Set gradient recording now (as a call) or for a `with` block (restoring the mode before the call)."""
    ctx = _GradModeContext(mode, previous=GradMode.enabled)
    GradMode.enabled = mode
    return ctx


def is_grad_enabled() -> bool:
    return GradMode.enabled


def count_kernels() -> "_realize_module.KernelCounter":
    """`with lt.count_kernels() as k:` counts the kernels launched inside (k.kernels, k.seconds)."""
    return _realize_module.KernelCounter()


def realize(*tensors: Tensor) -> None:
    """Realize several tensors in one schedule (shared work is computed once)."""
    pending = list({id(t): t for t in tensors if t.node.op is not t.node.op.BUFFER}.values())
    by_device: dict[str, list[Tensor]] = {}
    for t in pending:
        by_device.setdefault(t.device, []).append(t)
    for device, ts in by_device.items():
        nodes = _realize_module.realize([t.node for t in ts], device)
        for t, n in zip(ts, nodes):
            t._set_realized(n)


# Parts of the API imported on first use, so that `import lazytensor` loads only the core (tensors, the
# compiler, the runtime): lt.onnx's op table alone costs ~60 ms, and nn, optim, utils, viz, the profiler
# and serialization took `import lazytensor` (numpy's own import not counted) from 67-113 to 44-77 ms in
# fresh processes. `from lazytensor import nn` and `import lazytensor.nn` work as they always do.
_LAZY_MODULES = {"onnx": "lazytensor.onnx", "nn": "lazytensor.nn", "optim": "lazytensor.optim",
                 "utils": "lazytensor.utils", "viz": "lazytensor.viz"}
_LAZY_NAMES = {"Profiler": "lazytensor.profiler", "load": "lazytensor.serialization",
               "save": "lazytensor.serialization"}


def __getattr__(name: str):
    """lt.nn, lt.optim, lt.utils, lt.viz, lt.onnx, lt.Profiler, lt.save and lt.load, imported on first use."""
    import importlib
    if name in _LAZY_MODULES:
        return importlib.import_module(_LAZY_MODULES[name])   # the import also binds lt.<name>
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lazytensor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MODULES) | set(_LAZY_NAMES))


def _module_function(name: str):
    def fn(x: Tensor, *args, **kwargs):
        return getattr(x, name)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"lt.{name}(x, ...) is x.{name}(...)."
    return fn


for _name in ("abs", "neg", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin",
              "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "erf", "floor", "ceil",
              "round", "trunc", "frac", "sign", "square", "reciprocal", "sigmoid", "relu", "pow", "isnan",
              "isinf", "isfinite", "nan_to_num", "lerp", "sum", "mean", "prod", "amax", "amin", "argmax",
              "argmin", "std", "var", "any", "all", "logsumexp", "softmax", "log_softmax", "cumsum",
              "cumprod", "norm", "reshape", "permute", "transpose", "swapaxes", "flatten", "unflatten",
              "squeeze", "unsqueeze", "flip", "roll", "tril", "triu", "split", "chunk", "unbind", "gather",
              "index_select", "scatter", "scatter_add", "scatter_reduce", "index_add", "masked_fill",
              "masked_select", "nonzero", "dot", "mm", "bmm", "outer", "add", "sub", "mul", "div",
              "remainder", "fmod", "floor_divide", "eq", "ne", "lt", "le", "gt", "ge", "logical_and",
              "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor",
              "bitwise_not", "max", "min", "narrow", "movedim", "diagonal", "diag", "take", "allclose",
              "isclose", "equal", "broadcast_to", "expand_as", "repeat_interleave", "tile", "count_nonzero",
              "signbit", "fmax", "fmin", "var_mean", "std_mean", "argwhere", "take_along_dim", "clone",
              "float_power", "sgn", "asinh", "acosh", "atanh", "arctan2", "moveaxis", "ravel", "t",
              "tensor_split", "negative", "absolute", "fix", "erfc", "numel", "masked_scatter",
              "index_copy", "index_fill", "sinh", "minimum", "maximum"):
    if _name not in globals():
        globals()[_name] = _module_function(_name)

if _config.VIZ:   # VIZ=1 writes a page per new schedule from the first realize on: lt.viz listens from import
    from lazytensor import viz  # noqa: E402

"""nn area: activations — torch.nn.functional's function forms and a Module class for each.

The math lives in Tensor methods (tensor_elementwise.py, tensor_reduce.py); the functions here add
torch.nn.functional's signatures (inplace=, dim=None's legacy choice, dtype=) and argument checks.
"""

from __future__ import annotations

import warnings
from typing import Any

from lazytensor import creation, dtypes
from lazytensor.functions import where
from lazytensor.nn.module import Module, Parameter
from lazytensor.tensor import Tensor

FUNCTIONS: list[str] = [
    "relu",
    "relu_",
    "relu6",
    "leaky_relu",
    "leaky_relu_",
    "elu",
    "elu_",
    "selu",
    "selu_",
    "celu",
    "celu_",
    "gelu",
    "silu",
    "mish",
    "softplus",
    "softsign",
    "hardtanh",
    "hardtanh_",
    "hardswish",
    "hardsigmoid",
    "sigmoid",
    "tanh",
    "logsigmoid",
    "softmax",
    "log_softmax",
    "softmin",
    "glu",
    "threshold",
    "threshold_",
    "prelu",
    "rrelu",
    "rrelu_",
    "tanhshrink",
    "hardshrink",
    "softshrink",
]
MODULES: list[str] = [
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Softplus",
    "Softsign",
    "Hardtanh",
    "Hardswish",
    "Hardsigmoid",
    "Sigmoid",
    "Tanh",
    "LogSigmoid",
    "Softmax",
    "Softmax2d",
    "LogSoftmax",
    "Softmin",
    "GLU",
    "Threshold",
    "PReLU",
    "RReLU",
    "Tanhshrink",
    "Hardshrink",
    "Softshrink",
]


def _finish(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    """Return out, or for inplace=True write it into input and return input (as torch does)."""
    if not inplace:
        return out
    input.copy_(out)
    return input


# ---- function forms ----


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    return _finish(input, input.relu(), inplace)


def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    return _finish(input, input.relu6(), inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope·x otherwise."""
    return _finish(input, input.leaky_relu(negative_slope), inplace)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha·(eˣ - 1) otherwise."""
    return _finish(input, input.elu(alpha), inplace)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, inplace=True)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale·elu(x, alpha) with SELU's fixed constants."""
    return _finish(input, input.selu(), inplace)


def selu_(input: Tensor) -> Tensor:
    return selu(input, inplace=True)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha·(e^(x/alpha) - 1))."""
    if alpha == 0:
        raise RuntimeError("celu: ZeroDivisionError: alpha must not be 0")
    return _finish(input, input.celu(alpha), inplace)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return celu(input, alpha, inplace=True)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x·Φ(x) (approximate='tanh' uses the tanh formula)."""
    return input.gelu(approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x·sigmoid(x)."""
    return _finish(input, input.silu(), inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x·tanh(softplus(x))."""
    return _finish(input, input.mish(), inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta·x)) / beta, and x itself where beta·x > threshold."""
    return input.softplus(beta, threshold)


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return input.softsign()


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return _finish(input, input.hardtanh(min_val, max_val), inplace)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x·relu6(x + 3)/6."""
    return _finish(input, input.hardswish(), inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3)/6."""
    return _finish(input, input.hardsigmoid(), inplace)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e⁻ˣ)."""
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return input.tanh()


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)), computed stably."""
    return input.logsigmoid()


def _softmax_dim(ndim: int, op: str) -> int:
    """torch's legacy choice when dim=None: 0 for 0-, 1- and 3-D input, else 1 (with a warning)."""
    warnings.warn(
        f"Implicit dimension choice for {op} has been deprecated. Change the call to include dim=X "
        "as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """e^x / sum(e^x) along dim (computed in dtype when given)."""
    if dim is None:
        dim = _softmax_dim(input.ndim, "softmax")
    return input.softmax(dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """x - logsumexp(x) along dim."""
    if dim is None:
        dim = _softmax_dim(input.ndim, "log_softmax")
    return input.log_softmax(dim, dtype=dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """softmax(-x) along dim."""
    if dim is None:
        dim = _softmax_dim(input.ndim, "softmin")
    x = input.cast(dtypes.to_dtype(dtype)) if dtype is not None else input
    return (-x).softmax(dim)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a·sigmoid(b) where a, b are the two halves of input along dim."""
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    axis = input._axis(dim, "glu")
    if input.shape[axis] % 2 != 0:
        raise RuntimeError(
            f"glu: Halving dimension must be even, but dimension {axis} is size {input.shape[axis]}"
        )
    a, b = input.chunk(2, axis)
    return a * b.sigmoid()


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    return _finish(input, input.threshold(threshold, value), inplace)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return _finish(input, input.threshold(threshold, value), True)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x for x > 0, weight·x otherwise; weight has 1 element or one per channel (dim 1)."""
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() != 1 and weight.numel() != channels:
        raise RuntimeError(
            f"prelu: Mismatch of parameter numbers and input channel size. Found parameter "
            f"numbers = {weight.numel()} and channel size = {channels}."
        )
    if weight.numel() == 1 or input.ndim < 2:
        slope = weight.reshape(())
    else:
        slope = weight.reshape((channels,) + (1,) * (input.ndim - 2))
    return where(input > 0, input, slope * input)


def rrelu(
    input: Tensor,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
) -> Tensor:
    """Leaky ReLU with a random slope from U(lower, upper) per element when training, else their mean."""
    if not training:
        return _finish(input, input.leaky_relu((lower + upper) / 2), inplace)
    slope = (
        creation.rand(tuple(input.shape), dtype=input.dtype, device=input.device) * (upper - lower) + lower
    )
    return _finish(input, where(input >= 0, input, input * slope), inplace)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:
    return rrelu(input, lower, upper, training, inplace=True)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    return input.tanhshrink()


def _check_lambd(lambd: float, op: str, input: Tensor) -> None:
    if lambd < 0:
        raise RuntimeError(
            f"{op}: lambda must be in range [0, inf) for input dtype {input.dtype}, but found {lambd}"
        )


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    return input.hardshrink(lambd)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    _check_lambd(lambd, "softshrink", input)
    return input.softshrink(lambd)


# ---- modules ----


class _Inplace(Module):
    """An activation with only an `inplace` flag."""

    _function: Any = None

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return type(self)._function(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class _Plain(Module):
    """An activation without arguments."""

    _function: Any = None

    def forward(self, input: Tensor) -> Tensor:
        return type(self)._function(input)


class ReLU(_Inplace):
    """max(x, 0)."""

    _function = staticmethod(relu)


class ReLU6(_Inplace):
    """min(max(x, 0), 6)."""

    _function = staticmethod(relu6)


class SELU(_Inplace):
    """Scaled ELU with fixed constants."""

    _function = staticmethod(selu)


class SiLU(_Inplace):
    """x·sigmoid(x)."""

    _function = staticmethod(silu)


class Mish(_Inplace):
    """x·tanh(softplus(x))."""

    _function = staticmethod(mish)


class Hardswish(_Inplace):
    """x·relu6(x + 3)/6."""

    _function = staticmethod(hardswish)


class Hardsigmoid(_Inplace):
    """relu6(x + 3)/6."""

    _function = staticmethod(hardsigmoid)


class Sigmoid(_Plain):
    """1 / (1 + e⁻ˣ)."""

    _function = staticmethod(sigmoid)


class Tanh(_Plain):
    """Hyperbolic tangent."""

    _function = staticmethod(tanh)


class LogSigmoid(_Plain):
    """log(sigmoid(x))."""

    _function = staticmethod(logsigmoid)


class Softsign(_Plain):
    """x / (1 + |x|)."""

    _function = staticmethod(softsign)


class Tanhshrink(_Plain):
    """x - tanh(x)."""

    _function = staticmethod(tanhshrink)


class LeakyReLU(Module):
    """x for x > 0, negative_slope·x otherwise."""

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Tensor) -> Tensor:
        return leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """x for x > 0, alpha·(eˣ - 1) otherwise."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(Module):
    """max(0, x) + min(0, alpha·(e^(x/alpha) - 1))."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return celu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """x·Φ(x); approximate='tanh' for the tanh approximation."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """log(1 + e^(beta·x)) / beta (linear above threshold)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """clamp(x, min_val, max_val)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input: Tensor) -> Tensor:
        return hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class Threshold(Module):
    """x where x > threshold, else value."""

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input: Tensor) -> Tensor:
        return threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}" + (", inplace=True" if self.inplace else "")


class _SoftmaxBase(Module):
    _function: Any = None

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return type(self)._function(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """e^x / sum(e^x) along dim."""

    _function = staticmethod(softmax)


class LogSoftmax(_SoftmaxBase):
    """log(softmax(x)) along dim."""

    _function = staticmethod(log_softmax)


class Softmin(_SoftmaxBase):
    """softmax(-x) along dim."""

    _function = staticmethod(softmin)


class Softmax2d(Module):
    """Softmax over the channel dim of (N, C, H, W) or (C, H, W) input."""

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected 3-D or 4-D input, got shape {tuple(input.shape)}")
        return input.softmax(-3)


class GLU(Module):
    """a·sigmoid(b) for the two halves of the input along dim."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class PReLU(Module):
    """Leaky ReLU with a learned slope: `weight` has num_parameters entries (1 or the channel count),
    all starting at init."""

    def __init__(
        self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(creation.full((num_parameters,), init, dtype=dtype, device=device))

    def reset_parameters(self) -> None:
        from lazytensor.nn.init import constant_

        constant_(self.weight, self.init)

    def forward(self, input: Tensor) -> Tensor:
        return prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Randomized leaky ReLU: slope from U(lower, upper) per element in training, their mean in eval."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False) -> None:
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input: Tensor) -> Tensor:
        return rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace else "")


class Hardshrink(Module):
    """x where |x| > lambd, else 0."""

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Tensor) -> Tensor:
        return hardshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Softshrink(Module):
    """Shrink toward zero by lambd (zero inside [-lambd, lambd])."""

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Tensor) -> Tensor:
        return softshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return str(self.lambd)

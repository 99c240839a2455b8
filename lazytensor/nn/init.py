"""nn.init: PyTorch's parameter initializers, with torch.nn.init's names and semantics.

Each function overwrites its tensor in place (under no_grad, so it works on Parameters), draws its
numbers from lazytensor's own counter-based generator (`lt.manual_seed` makes them repeatable), and
realizes the result at once, as torch's eager initializers do. Each returns the tensor it filled.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

from lazytensor import creation
from lazytensor.autograd import GradMode
from lazytensor.functions import where
from lazytensor.tensor import Tensor

_LINEAR_LIKE = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)


class _NoGrad:
    """Record the in-place update without gradient tracking (torch.no_grad, local to this module)."""

    def __enter__(self) -> None:
        self.previous = GradMode.enabled
        GradMode.enabled = False

    def __exit__(self, *exc: Any) -> None:
        GradMode.enabled = self.previous


_skip_depth = 0   # > 0 inside no_init(): the initializers leave their tensors as they are


@contextlib.contextmanager
def no_init() -> Iterator[None]:
    """Inside this block every initializer here returns its tensor untouched: no random numbers are
    drawn and nothing is computed. For building a module whose weights are overwritten right after
    (loading a checkpoint); its parameters hold uninitialized memory until then (see placeholder()).
    `lt.nn.utils.skip_init(cls, ...)` is torch's spelling for one module."""
    global _skip_depth
    _skip_depth += 1
    try:
        yield
    finally:
        _skip_depth -= 1


def placeholder(shape: tuple[int, ...], dtype: Any = None, device: Any = None) -> Tensor:
    """A layer's parameter before its initializer fills it: zeros; inside no_init(), uninitialized
    memory instead (nothing is computed or written: the loaded weight replaces it)."""
    if not _skip_depth:
        return creation.zeros(*shape, dtype=dtype, device=device)
    like = creation.zeros(*shape, dtype=dtype, device=device)   # a lazy constant: only resolves dtype/device
    return Tensor._uninitialized(tuple(shape), like.dtype, like.device)


def _fill_with(tensor: Tensor, value: Tensor, op: str) -> Tensor:
    """Overwrite tensor with value (same shape) under no_grad and compute it now."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a lazytensor Tensor, got {type(tensor).__name__}")
    if _skip_depth:   # (eye_, dirac_: the deterministic fills; the random ones return earlier)
        return tensor
    with _NoGrad():
        tensor.copy_(value.detach())
    return tensor.realize()


def _check_float(tensor: Tensor, op: str) -> None:
    if not tensor.dtype.is_float:
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {tensor.dtype}")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (torch.nn.init.calculate_gain's table)."""
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; use one of "
        f"{list(_LINEAR_LIKE) + ['tanh', 'relu', 'leaky_relu', 'selu']}"
    )


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: dims 1 and 0 times the receptive field (product of dims 2+)."""
    if tensor.ndim < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions "
            f"(got shape {tuple(tensor.shape)})"
        )
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with U(a, b)."""
    _check_float(tensor, "uniform_")
    if _skip_depth:
        return tensor
    u = creation.rand(tuple(tensor.shape), dtype=tensor.dtype, device=tensor.device)
    return _fill_with(tensor, u * (b - a) + a, "uniform_")


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with N(mean, std²)."""
    _check_float(tensor, "normal_")
    if _skip_depth:
        return tensor
    z = creation.randn(tuple(tensor.shape), dtype=tensor.dtype, device=tensor.device)
    return _fill_with(tensor, z * std + mean, "normal_")


def _erfinv(y: Tensor) -> Tensor:
    """Inverse error function on (-1, 1) (Giles 2010: two polynomial branches in w = -log(1 - y²))."""
    w = -((1 - y) * (1 + y)).log()
    central = w - 2.5
    p = central * 0 + 2.81022636e-08
    for c in (
        3.43273939e-07,
        -3.5233877e-06,
        -4.39150654e-06,
        0.00021858087,
        -0.00125372503,
        -0.00417768164,
        0.246640727,
        1.50140941,
    ):
        p = p * central + c
    tail = w.maximum(5.0).sqrt() - 3
    q = tail * 0 - 0.000200214257
    for c in (
        0.000100950558,
        0.00134934322,
        -0.00367342844,
        0.00573950773,
        -0.0076224613,
        0.00943887047,
        1.00167406,
        2.83297682,
    ):
        q = q * tail + c
    return where(w < 5.0, p, q) * y


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Any = None,
) -> Tensor:
    """Fill with N(mean, std²) truncated to [a, b] (inverse-CDF sampling, as torch does)."""
    _check_float(tensor, "trunc_normal_")
    if a >= b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    if _skip_depth:
        return tensor

    def norm_cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    low, high = norm_cdf((a - mean) / std), norm_cdf((b - mean) / std)
    # sample in float64 so the tails keep their precision, then clamp away rounding at the ends
    u = creation.rand(tuple(tensor.shape), dtype="float64", device=tensor.device)
    y = u * (2 * high - 2 * low) + (2 * low - 1)
    eps = 1e-15
    values = _erfinv(y.clamp(-1 + eps, 1 - eps)) * (std * math.sqrt(2.0)) + mean
    return _fill_with(tensor, values.clamp(a, b).cast(tensor.dtype), "trunc_normal_")


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with val."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"constant_: expected a lazytensor Tensor, got {type(tensor).__name__}")
    if _skip_depth:
        return tensor
    with _NoGrad():
        tensor.fill_(val)
    return tensor.realize()


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return constant_(tensor, 0.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity (ones on the main diagonal)."""
    if tensor.ndim != 2:
        raise ValueError(
            f"eye_: only tensors with 2 dimensions are supported, got shape {tuple(tensor.shape)}"
        )
    n, m = tensor.shape
    return _fill_with(tensor, creation.eye(n, m, dtype=tensor.dtype, device=tensor.device), "eye_")


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3/4/5-D conv weight so the convolution is the identity (per group of output channels)."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(
            f"dirac_: only tensors with 3, 4, or 5 dimensions are supported, got shape {tuple(tensor.shape)}"
        )
    if tensor.shape[0] % groups != 0:
        raise ValueError(f"dirac_: dim 0 ({tensor.shape[0]}) must be divisible by groups ({groups})")
    out_per_group = tensor.shape[0] // groups
    diag = min(out_per_group, tensor.shape[1])
    centre = tuple(k // 2 for k in tensor.shape[2:])
    # one (out, in) identity block per group, placed at the kernel's centre tap by padding
    block = creation.eye(out_per_group, tensor.shape[1], dtype=tensor.dtype, device=tensor.device)
    if diag < out_per_group:
        block = block * (creation.arange(out_per_group, device=tensor.device) < diag).reshape(-1, 1)
    stacked = block.repeat(groups, 1)
    for size, c in zip(tensor.shape[2:], centre):
        stacked = stacked.unsqueeze(-1).pad((c, size - c - 1))
    return _fill_with(tensor, stacked, "dirac_")


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot uniform: U(-a, a) with a = gain·sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot normal: N(0, std²) with std = gain·sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """He uniform: U(-b, b) with b = gain·sqrt(3 / fan), gain from calculate_gain(nonlinearity, a)."""
    if 0 in tuple(tensor.shape):
        return tensor  # torch warns and leaves an empty tensor alone
    fan = _calculate_correct_fan(tensor, mode)
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """He normal: N(0, std²) with std = gain / sqrt(fan)."""
    if 0 in tuple(tensor.shape):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix: the Q of a Gaussian matrix's QR with R's diagonal positive.

    Q is built by Gram–Schmidt, one column per step with the projection done twice ("twice is
    enough" keeps Q orthogonal to float precision); every step has the same shapes, so one kernel."""
    if tensor.ndim < 2:
        raise ValueError(
            f"orthogonal_: only tensors with 2 or more dimensions are supported, "
            f"got shape {tuple(tensor.shape)}"
        )
    if tensor.numel() == 0 or _skip_depth:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    work = "float64" if tensor.dtype.name == "float64" else "float32"
    a = creation.randn(rows, cols, dtype=work, device=tensor.device)
    if rows < cols:
        a = a.T
    m, n = a.shape  # m >= n: orthonormalise the n columns
    with _NoGrad():
        a = a.contiguous().realize()
        q = creation.zeros(m, n, dtype=work, device=tensor.device).realize()
        columns = creation.arange(n, device=tensor.device)
        for j in range(n):
            v = a[:, j]
            v = v - q @ (q.T @ v)
            v = v - q @ (q.T @ v)
            v = v / v.square().sum().sqrt()
            q = where(columns == j, v.unsqueeze(1), q).contiguous().realize()
    if rows < cols:
        q = q.T
    return _fill_with(tensor, (q * gain).reshape(tuple(tensor.shape)).cast(tensor.dtype), "orthogonal_")


# torch's deprecated names without the trailing underscore are not provided (they only warn there)
__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "no_init",
    "placeholder",
]

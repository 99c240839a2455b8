"""nn area: normalization (batch/layer/group/instance/RMS norm, local response norm, normalize) and layers.

All statistics are ordinary reductions (two-pass: mean, then the mean of squared deviations), so
they fuse like any other op. Training-mode BatchNorm/InstanceNorm also update their running
statistics in place, lazily: the buffer gets a new graph value (detached) and nothing is
computed until something realizes it (the next Optimizer.step() does, in its one schedule), so a
whole training step stays one lazy graph.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from lazytensor import dtypes
from lazytensor.autograd import GradMode, mark_for_step
from lazytensor.creation import ones, zeros
from lazytensor.dtypes import DType
from lazytensor.functions import where
from lazytensor.nn.conv import sliding_windows
from lazytensor.nn.module import Module, Parameter
from lazytensor.tensor import Tensor

FUNCTIONS: list[str] = ["batch_norm", "instance_norm", "layer_norm", "group_norm", "rms_norm",
                        "local_response_norm", "normalize"]
MODULES: list[str] = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
                      "InstanceNorm3d", "LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm"]

# torch.finfo(dtype).eps, the default eps of rms_norm
_MACHINE_EPS = {dtypes.float16: 2.0 ** -10, dtypes.bfloat16: 2.0 ** -7, dtypes.float32: 2.0 ** -23,
                dtypes.float64: 2.0 ** -52}


def _check_float(op: str, x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected an lt.Tensor input, got {type(x).__name__}")
    if not x.dtype.is_float:
        raise RuntimeError(f"{op}: expected a floating-point input, got {x.dtype.name}; call .float() first")


def _channel_view(t: Tensor, ndim: int) -> Tensor:
    """A per-channel vector (C,) shaped to broadcast against (N, C, *spatial) of ndim dims."""
    return t.reshape((1, t.shape[0]) + (1,) * (ndim - 2))


class _no_grad:
    """GradMode off inside (lt.no_grad without importing the top-level package from here)."""

    def __enter__(self) -> None:
        self.previous = GradMode.enabled
        GradMode.enabled = False

    def __exit__(self, *exc: Any) -> None:
        GradMode.enabled = self.previous


def _update_running(buffer: Tensor, batch_value: Tensor, momentum: float | Tensor) -> None:
    """buffer ← (1 - momentum)·buffer + momentum·batch_value, lazily and outside autograd."""
    with _no_grad():
        new = buffer * (1 - momentum) + batch_value.detach().to(buffer.dtype) * momentum
        buffer.copy_(new.detach())
    mark_for_step(buffer)   # the next Optimizer.step() computes it in its schedule (no graph chain builds up)


def _check_channels(op: str, x: Tensor, name: str, t: Tensor | None) -> None:
    channels = x.shape[1]
    if t is not None and tuple(t.shape) != (channels,):
        raise RuntimeError(f"{op}: {name} should contain {channels} elements (the input's channel dim 1 of "
                           f"{list(x.shape)}), not {list(t.shape)}")


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float | Tensor = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize (N, C, *) per channel with batch statistics (training) or the running ones (eval).

    In training, running_mean/running_var (if given) are updated in place with the unbiased variance."""
    op = "batch_norm"
    _check_float(op, input)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected an input of shape (N, C, *) with at least 2 dims, got "
                         f"{list(input.shape)}")
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        _check_channels(op, input, name, t)
    axes = tuple(a for a in range(input.ndim) if a != 1)
    count = math.prod(input.shape[a] for a in axes)
    if training:
        if count <= 1:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, got input size "
                             f"{list(input.shape)}")
        mean = input.mean(axes, keepdim=True)
        centered = input - mean
        var = (centered * centered).mean(axes, keepdim=True)
        if running_mean is not None:
            _update_running(running_mean, mean.reshape(-1), momentum)
        if running_var is not None:
            _update_running(running_var, var.reshape(-1) * (count / (count - 1)), momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError(f"{op}: running_mean and running_var must be defined in evaluation mode "
                               f"(training=False)")
        mean = _channel_view(running_mean.to(input.dtype), input.ndim)
        var = _channel_view(running_var.to(input.dtype), input.ndim)
        centered = input - mean
    out = centered * (var + eps).rsqrt()
    if weight is not None:
        out = out * _channel_view(weight, input.ndim)
    if bias is not None:
        out = out + _channel_view(bias, input.ndim)
    return out


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float | Tensor = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each (sample, channel) plane of (N, C, *spatial) over its spatial dims."""
    op = "instance_norm"
    _check_float(op, input)
    if input.ndim < 3:
        raise ValueError(f"{op}: expected an input of shape (N, C, *spatial) with at least 3 dims, got "
                         f"{list(input.shape)}")
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        _check_channels(op, input, name, t)
    axes = tuple(range(2, input.ndim))
    count = math.prod(input.shape[2:])
    if use_input_stats:
        if count <= 1:
            raise ValueError(f"{op}: expected more than 1 spatial element when training, got input size "
                             f"{list(input.shape)}")
        mean = input.mean(axes, keepdim=True)
        centered = input - mean
        var = (centered * centered).mean(axes, keepdim=True)
        # running stats follow torch: the batch average of each instance's mean and unbiased variance
        if running_mean is not None:
            _update_running(running_mean, mean.reshape(input.shape[:2]).mean(0), momentum)
        if running_var is not None:
            unbiased = var.reshape(input.shape[:2]) * (count / (count - 1))
            _update_running(running_var, unbiased.mean(0), momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError(f"{op}: expected running_mean and running_var to be defined when "
                               f"use_input_stats is false")
        mean = _channel_view(running_mean.to(input.dtype), input.ndim)
        var = _channel_view(running_var.to(input.dtype), input.ndim)
        centered = input - mean
    out = centered * (var + eps).rsqrt()
    if weight is not None:
        out = out * _channel_view(weight, input.ndim)
    if bias is not None:
        out = out + _channel_view(bias, input.ndim)
    return out


def _normalized_axes(op: str, x: Tensor, normalized_shape: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(normalized_shape as a tuple, the trailing axes it covers), checked against x's shape."""
    shape = (int(normalized_shape),) if isinstance(normalized_shape, int) else tuple(int(s) for s in
                                                                                     normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise RuntimeError(f"{op}: given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(str(s) for s in shape)}], but got input of size {list(x.shape)}")
    return shape, tuple(range(x.ndim - k, x.ndim))


def _check_affine(op: str, name: str, t: Tensor | None, shape: tuple[int, ...]) -> None:
    if t is not None and tuple(t.shape) != shape:
        raise RuntimeError(f"{op}: expected {name} of shape {list(shape)}, got {list(t.shape)}")


def layer_norm(input: Tensor, normalized_shape: Sequence[int] | int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing dims `normalized_shape` (biased variance), then scale and shift."""
    op = "layer_norm"
    _check_float(op, input)
    shape, axes = _normalized_axes(op, input, normalized_shape)
    _check_affine(op, "weight", weight, shape)
    _check_affine(op, "bias", bias, shape)
    # 16-bit floats are normalized in float32 and rounded once at the end, as PyTorch does
    compute: DType = dtypes.float32 if input.dtype in (dtypes.float16, dtypes.bfloat16) else input.dtype
    x = input.to(compute)
    mean = x.mean(axes, keepdim=True)
    centered = x - mean
    var = (centered * centered).mean(axes, keepdim=True)
    out = centered * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight.to(compute)
    if bias is not None:
        out = out + bias.to(compute)
    return out.to(input.dtype)


def rms_norm(input: Tensor, normalized_shape: Sequence[int] | int, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x², trailing dims) + eps) · weight; eps=None means the dtype's machine epsilon."""
    op = "rms_norm"
    _check_float(op, input)
    shape, axes = _normalized_axes(op, input, normalized_shape)
    _check_affine(op, "weight", weight, shape)
    if eps is None:
        eps = _MACHINE_EPS[input.dtype]
    compute: DType = dtypes.float32 if input.dtype in (dtypes.float16, dtypes.bfloat16) else input.dtype
    x = input.to(compute)
    out = (x * ((x * x).mean(axes, keepdim=True) + eps).rsqrt()).to(input.dtype)
    if weight is not None:
        out = out * weight
    return out


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize (N, C, *) over each group of C/num_groups channels (and all spatial positions)."""
    op = "group_norm"
    _check_float(op, input)
    if input.ndim < 2:
        raise RuntimeError(f"{op}: expected at least 2 dims (N, C, *), got input of size {list(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise RuntimeError(f"{op}: expected number of channels in input to be divisible by num_groups, but "
                           f"got input of shape {list(input.shape)} and num_groups={num_groups}")
    _check_affine(op, "weight", weight, (c,))
    _check_affine(op, "bias", bias, (c,))
    grouped = input.reshape(n, num_groups, -1)
    mean = grouped.mean(2, keepdim=True)
    centered = grouped - mean
    var = (centered * centered).mean(2, keepdim=True)
    out = (centered * (var + eps).rsqrt()).reshape(tuple(input.shape))
    if weight is not None:
        out = out * _channel_view(weight, input.ndim)
    if bias is not None:
        out = out + _channel_view(bias, input.ndim)
    return out


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """x / (k + alpha · mean of x² over `size` neighbouring channels) ** beta."""
    op = "local_response_norm"
    _check_float(op, input)
    if input.ndim < 3:
        raise ValueError(f"{op}: expected 3D or higher dimensional input, got {input.ndim}D input of size "
                         f"{list(input.shape)}")
    if input.numel() == 0:
        return input
    squares = (input * input).movedim(1, -1)                                  # (N, *spatial, C)
    padded = squares.pad([size // 2, (size - 1) // 2])
    windows = sliding_windows(padded, (size,), (1,), (1,))                    # (N, *spatial, C, size)
    div = (windows.sum(-1) / size).movedim(-1, 1)
    return input / (div * alpha + k) ** beta


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Any = None) -> Tensor:
    """input / max(‖input‖_p along dim, eps)."""
    if out is not None:
        raise TypeError("normalize: the out= argument is not supported (results are new lazy tensors)")
    _check_float("normalize", input)
    return input / _vector_norm(input, p, dim).clamp_min(eps).expand_as(input)


def _vector_norm(x: Tensor, p: float, dim: int) -> Tensor:
    """‖x‖_p along dim (kept), whose gradient at a zero vector is 0 as in torch (not 0·inf = NaN)."""
    if p == math.inf:
        return x.abs().amax(dim, keepdim=True)
    if p <= 0:
        raise ValueError(f"normalize: p must be positive (or inf), got {p}")
    total = (x.abs() ** p).sum(dim, keepdim=True)
    nonzero = total > 0
    safe = where(nonzero, total, 1.0)
    return where(nonzero, safe ** (1.0 / p), 0.0)


# ---- layers ----

def _affine_parameters(module: Module, affine: bool, bias: bool, shape: tuple[int, ...], dtype: DType,
                       device: Any) -> None:
    """Register weight (ones) and bias (zeros) when affine (bias only if asked), else None placeholders."""
    if affine:
        module.weight = Parameter(ones(shape, dtype=dtype, device=device))
    else:
        module.register_parameter("weight", None)
    if affine and bias:
        module.bias = Parameter(zeros(shape, dtype=dtype, device=device))
    else:
        module.register_parameter("bias", None)

class _NormBase(Module):
    """BatchNorm/InstanceNorm state: affine weight/bias, running stats and num_batches_tracked."""
    n_dims: tuple[int, ...] = ()     # accepted input ranks

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.default_float
        _affine_parameters(self, affine, bias, (num_features,), dt, device)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dt, device=device).realize())
            self.register_buffer("running_var", ones(num_features, dtype=dt, device=device).realize())
            self.register_buffer("num_batches_tracked",
                                 zeros((), dtype=dtypes.int64, device=device).realize())
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            with _no_grad():
                self.weight.fill_(1)
                if self.bias is not None:
                    self.bias.zero_()

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__}: expected an lt.Tensor input, got {type(x).__name__}")
        if x.ndim not in self.n_dims:
            dims = " or ".join(f"{d}D" for d in self.n_dims)
            raise ValueError(f"{type(self).__name__}: expected {dims} input (got {x.ndim}D input of size "
                             f"{list(x.shape)})")

    def _momentum(self) -> float | Tensor:
        """The running-average factor for this step (and count the step), as torch's _BatchNorm does."""
        if not (self.training and self.track_running_stats):
            return 0.0 if self.momentum is None else self.momentum
        _increment(self.num_batches_tracked)
        if self.momentum is None:   # cumulative moving average: 1 / steps so far (kept lazy)
            return 1.0 / self.num_batches_tracked.to(self.running_mean.dtype)
        return self.momentum

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


def _increment(counter: Tensor) -> None:
    with _no_grad():
        counter.copy_(counter + 1)
    mark_for_step(counter)


class _BatchNorm(_NormBase):
    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        if input.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected input with {self.num_features} channels "
                             f"(dim 1), got input of size {list(input.shape)}")
        momentum = self._momentum()
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep_running = not self.training or self.track_running_stats
        return batch_norm(input, self.running_mean if keep_running else None,
                          self.running_var if keep_running else None, self.weight, self.bias,
                          use_batch_stats, momentum, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) input."""
    n_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W) input."""
    n_dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization over (N, C, D, H, W) input."""
    n_dims = (5,)


class _InstanceNorm(_NormBase):
    """InstanceNorm: affine=False and track_running_stats=False by default, unbatched input allowed."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        unbatched = input.ndim == self.n_dims[0]
        x = input.unsqueeze(0) if unbatched else input
        if x.shape[1] != self.num_features and (self.affine or self.track_running_stats):
            raise ValueError(f"{type(self).__name__}: expected input's size at dim={1 - unbatched} to match "
                             f"num_features ({self.num_features}), but got input of size {list(input.shape)}")
        use_input_stats = self.training or not self.track_running_stats
        momentum = self.momentum if self.momentum is not None else 0.1
        out = instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats,
                            momentum, self.eps)
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over (N, C, L) or unbatched (C, L) input."""
    n_dims = (2, 3)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over (N, C, H, W) or unbatched (C, H, W) input."""
    n_dims = (3, 4)


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over (N, C, D, H, W) or unbatched (C, D, H, W) input."""
    n_dims = (4, 5)


class LayerNorm(Module):
    """Layer normalization over the trailing `normalized_shape` dims; weight ones, bias zeros."""

    def __init__(self, normalized_shape: Sequence[int] | int, eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = tuple(int(s) for s in shape), eps, \
            elementwise_affine
        dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.default_float
        _affine_parameters(self, elementwise_affine, bias, self.normalized_shape, dt, device)

    def forward(self, input: Tensor) -> Tensor:
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(Module):
    """RMS normalization over the trailing `normalized_shape` dims; eps=None uses the dtype's epsilon."""

    def __init__(self, normalized_shape: Sequence[int] | int, eps: float | None = None,
                 elementwise_affine: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape = tuple(int(s) for s in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.default_float
        if elementwise_affine:
            self.weight = Parameter(ones(self.normalized_shape, dtype=dt, device=device))
        else:
            self.register_parameter("weight", None)

    def forward(self, input: Tensor) -> Tensor:
        return rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Group normalization: num_channels split into num_groups, per-channel affine weight/bias."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Any = None, dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.default_float
        _affine_parameters(self, affine, bias, (num_channels,), dt, device)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim >= 2 and input.shape[1] != self.num_channels:
            raise RuntimeError(f"GroupNorm: expected input with {self.num_channels} channels (dim 1), got "
                               f"input of size {list(input.shape)}")
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """Local response normalization across channels (see local_response_norm)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input: Tensor) -> Tensor:
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"

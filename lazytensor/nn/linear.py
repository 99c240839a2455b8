"""nn area: linear layers, embeddings, dropout and reshaping layers (function forms and Modules)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from lazytensor import creation, dtypes
from lazytensor.autograd import GradMode, define_gradient, needs_grad
from lazytensor.graph import Node
from lazytensor.functions import where
from lazytensor.nn import init
from lazytensor.nn.module import Module, Parameter
from lazytensor.tensor import Tensor

FUNCTIONS: list[str] = [
    "linear",
    "bilinear",
    "embedding",
    "one_hot",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "feature_alpha_dropout",
]
MODULES: list[str] = [
    "Identity",
    "Linear",
    "LazyLinear",
    "Bilinear",
    "Embedding",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    "Flatten",
    "Unflatten",
]


# ---- functions ----


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input @ weight.T + bias: (*, in) × (out, in) → (*, out) (a 1-D weight gives (*))."""
    if weight.ndim not in (1, 2):
        raise RuntimeError(f"linear: weight must be 1-D or 2-D, got shape {tuple(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise RuntimeError(
            f"linear: input shape {tuple(input.shape)} and weight shape {tuple(weight.shape)} "
            f"do not line up: input's last dim must equal in_features={weight.shape[-1]}"
        )
    out = input.matmul(weight.T if weight.ndim == 2 else weight)
    if weight.ndim == 2:
        _define_linear_gradient(out, input, weight)
    return out if bias is None else out + bias


def _define_linear_gradient(out: Tensor, input: Tensor, weight: Tensor) -> None:
    """Give out = input @ weight.T its own gradient (autograd.define_gradient): grad_input = g @ weight
    and grad_weight = gᵀ @ input, each one matmul with input's leading dims flattened. Differentiated
    generically, the weight gradient came out as (inputᵀ @ g)ᵀ: a reduce reading both operands with
    strides, written transposed, that the matmul's operand packing never sees. As gᵀ @ input the
    stored input is packed into panels: the MLP's 784→512 layer's weight gradient on one Zen 3 core
    went 2.07 -> 1.36 ms (50 -> 76 GFLOP/s)."""
    if not GradMode.enabled or not input.dtype.is_float or input.ndim < 1:
        return
    if not (needs_grad(input.node) or needs_grad(weight.node)):
        return
    device = out.device
    # the nodes at forward time (an optimizer step moves a parameter's tensor on to new nodes)
    input_node, weight_node = input.node, weight.node
    in_shape = tuple(input.shape)

    def rule(grad: Node, wanted: tuple[bool, ...]) -> tuple[Node | None, ...]:
        upstream = Tensor._from_node(grad, device)
        w = Tensor._from_node(weight_node, device)
        grad_input = grad_weight = None
        if wanted[0]:
            grad_input = upstream.matmul(w).reshape(in_shape).node
        if wanted[1]:
            x = Tensor._from_node(input_node, device)
            rows = upstream.reshape(-1, upstream.shape[-1]) if upstream.ndim != 2 else upstream
            flat = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
            grad_weight = rows.T.matmul(flat).node
        return grad_input, grad_weight

    define_gradient(out.node, (input_node, weight_node), rule)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y[..., k] = input1[..., i] · weight[k, i, j] · input2[..., j] + bias[k]."""
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] or input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(
            f"bilinear: input1 {tuple(input1.shape)}, input2 {tuple(input2.shape)} and weight "
            f"{tuple(weight.shape)} do not line up: expected weight (out, "
            f"{input1.shape[-1]}, {input2.shape[-1]})"
        )
    if tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise RuntimeError(
            f"bilinear: input1 {tuple(input1.shape)} and input2 {tuple(input2.shape)} must have "
            "the same leading (batch) dimensions"
        )
    out_features, in1, in2 = weight.shape
    lead = tuple(input1.shape[:-1])
    x1 = input1.reshape(-1, in1)
    x2 = input2.reshape(-1, in2)
    # (B, i) @ (i, k·j) → (B, k, j), then contract j against input2
    mixed = x1.matmul(weight.permute(1, 0, 2).reshape(in1, out_features * in2)).reshape(-1, out_features, in2)
    out = (mixed * x2.unsqueeze(1)).sum(-1).reshape(lead + (out_features,))
    return out if bias is None else out + bias


def _index_counts(flat: Tensor, num: int, dtype: Any) -> Tensor:
    """How often each row index in [0, num) occurs in flat (a scatter-add of ones)."""
    ones = creation.ones(flat.shape[0], dtype=dtype, device=flat.device)
    return creation.zeros(num, dtype=dtype, device=flat.device).index_add(0, flat, ones)


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of weight picked by the integer indices in input: (*) → (*, embedding_dim).

    padding_idx's row gets no gradient; max_norm renormalises the looked-up rows of weight in place first;
    scale_grad_by_freq divides each row's gradient by how often it occurs in input."""
    if input.dtype.is_float or input.dtype.is_bool:
        raise RuntimeError(f"embedding: expected integer indices (Long or Int), got {input.dtype}")
    if weight.ndim != 2:
        raise RuntimeError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape {tuple(weight.shape)}"
        )
    num = weight.shape[0]
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within num_embeddings ({num})")
        padding_idx = padding_idx % num
    flat = input.reshape(-1)
    if max_norm is not None:
        _embedding_renorm_(weight, flat, max_norm, norm_type)
    rows = weight.index_select(0, flat)
    if scale_grad_by_freq:
        counts = _index_counts(flat, num, weight.dtype).index_select(0, flat).unsqueeze(1)
        scale = 1 / counts
        rows = rows * scale + rows.detach() * (1 - scale)  # same values; gradient divided by the count
    if padding_idx is not None:
        rows = where((flat == padding_idx).unsqueeze(1), rows.detach(), rows)
    return rows.reshape(tuple(input.shape) + (weight.shape[1],))


def _embedding_renorm_(weight: Tensor, flat: Tensor, max_norm: float, norm_type: float) -> None:
    """Scale the rows of weight that flat looks up so their norm is at most max_norm (in place, no grad)."""
    previous = GradMode.enabled
    GradMode.enabled = False
    try:
        w = weight.detach()
        norms = w.abs().pow(norm_type).sum(1, keepdim=True).pow(1.0 / norm_type)
        used = _index_counts(flat, weight.shape[0], w.dtype).unsqueeze(1) > 0
        scale = where(used & (norms > max_norm), max_norm / (norms + 1e-7), 1.0)
        weight.copy_(w * scale)
    finally:
        GradMode.enabled = previous


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding: (*) → (*, num_classes); num_classes=-1 means max(tensor) + 1."""
    if tensor.dtype.is_float or tensor.dtype.is_bool:
        raise RuntimeError(f"one_hot is only applicable to index tensor of integer dtype, got {tensor.dtype}")
    if num_classes == -1:
        if tensor.numel() == 0:
            raise RuntimeError("one_hot: can not infer total number of classes from empty tensor")
        num_classes = int(tensor.max().item()) + 1
    if tensor.numel() > 0:
        low, high = int(tensor.min().item()), int(tensor.max().item())
        if low < 0:
            raise RuntimeError("one_hot: Class values must be non-negative.")
        if high >= num_classes:
            raise RuntimeError(
                f"one_hot: Class values must be smaller than num_classes ({num_classes}), got {high}"
            )
    classes = creation.arange(num_classes, dtype=tensor.dtype, device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).cast(dtypes.int64)


def _check_p(p: float, op: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _keep_mask(x: Tensor, shape: tuple[int, ...], p: float) -> Tensor:
    """A float mask of x's dtype: 1 with probability 1 - p, else 0."""
    u = creation.rand(shape, dtype=dtypes.float32, device=x.device)
    return (u >= p).cast(x.dtype)


def _finish(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    """Return out, or for inplace=True write it into input and return input (as torch does)."""
    if not inplace:
        return out
    input.copy_(out)
    return input


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p); identity when not training."""
    _check_p(p, "dropout")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _finish(input, input * 0, inplace)
    mask = _keep_mask(input, tuple(input.shape), p)
    return _finish(input, input * mask * (1.0 / (1.0 - p)), inplace)


def _feature_dropout(
    input: Tensor, p: float, training: bool, inplace: bool, op: str, feature_dims: int
) -> Tensor:
    """Dropout of whole channels: one draw per (N, C) (or per C for unbatched input)."""
    _check_p(p, op)
    if input.ndim not in (feature_dims + 1, feature_dims + 2):
        raise RuntimeError(
            f"{op}: expected {feature_dims + 1}-D (unbatched) or {feature_dims + 2}-D (batched) "
            f"input, got shape {tuple(input.shape)}"
        )
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _finish(input, input * 0, inplace)
    shape = tuple(input.shape[:-feature_dims]) + (1,) * feature_dims
    mask = _keep_mask(input, shape, p)
    return _finish(input, input * mask * (1.0 / (1.0 - p)), inplace)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Channel dropout for (N, C, L) or (C, L) input."""
    return _feature_dropout(input, p, training, inplace, "dropout1d", 1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Channel dropout for (N, C, H, W) or (C, H, W) input."""
    return _feature_dropout(input, p, training, inplace, "dropout2d", 2)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Channel dropout for (N, C, D, H, W) or (C, D, H, W) input."""
    return _feature_dropout(input, p, training, inplace, "dropout3d", 3)


_SELU_ALPHA_PRIME = -1.7580993408473766  # -selu_alpha * selu_scale: SELU's negative saturation value


def _alpha_dropout_impl(
    input: Tensor, p: float, training: bool, inplace: bool, op: str, mask_shape: tuple[int, ...]
) -> Tensor:
    _check_p(p, op)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _finish(input, input * 0, inplace)
    keep = _keep_mask(input, mask_shape, p)
    a = 1.0 / math.sqrt((1 - p) * (1 + p * _SELU_ALPHA_PRIME**2))
    b = -a * _SELU_ALPHA_PRIME * p
    dropped = input * keep + (1 - keep) * _SELU_ALPHA_PRIME
    return _finish(input, dropped * a + b, inplace)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Dropout for SELU networks: dropped elements take SELU's saturation value, then an affine map keeps
    mean 0 and variance 1."""
    return _alpha_dropout_impl(input, p, training, inplace, "alpha_dropout", tuple(input.shape))


def feature_alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """alpha_dropout of whole channels (one draw per (N, C))."""
    shape = tuple(input.shape[:2]) + (1,) * max(input.ndim - 2, 0)
    return _alpha_dropout_impl(input, p, training, inplace, "feature_alpha_dropout", shape)


# ---- modules ----


class Identity(Module):
    """Returns its input; accepts and ignores any constructor arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


def _empty(shape: tuple[int, ...], dtype: Any, device: Any) -> Parameter:
    return Parameter(init.placeholder(shape, dtype=dtype, device=device))


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features); torch's default initialization."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty((out_features, in_features), dtype, device)
        if bias:
            self.bias = _empty((out_features,), dtype, device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """kaiming_uniform_(a=√5) on the weight, U(±1/√fan_in) on the bias, as torch."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        )


class LazyLinear(Linear):
    """A Linear whose in_features is taken from the first input it sees."""

    def __init__(self, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        Module.__init__(self)
        self.in_features, self.out_features = 0, out_features
        self._lazy = (bias, device, dtype)
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        if self.weight is None:
            bias, device, dtype = self._lazy
            Linear.__init__(
                self,
                input.shape[-1],
                self.out_features,
                bias,
                device,
                dtype if dtype is not None else input.dtype,
            )
        return linear(input, self.weight, self.bias)


class Bilinear(Module):
    """y = x1ᵀ A x2 + b with weight (out, in1, in2); weight and bias drawn from U(±1/√in1_features)."""

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        self.weight = _empty((out_features, in1_features, in2_features), dtype, device)
        if bias:
            self.bias = _empty((out_features,), dtype, device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


class Embedding(Module):
    """A lookup table of num_embeddings rows of size embedding_dim, initialized N(0, 1); padding_idx's row
    starts at zero and gets no gradient."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Tensor | None = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise AssertionError(
                    f"Embedding: padding_idx {padding_idx} must be within num_embeddings ({num_embeddings})"
                )
            padding_idx = padding_idx % num_embeddings
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = _empty((num_embeddings, embedding_dim), dtype, device)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise AssertionError(
                    f"Embedding: _weight has shape {tuple(_weight.shape)}, expected "
                    f"{(num_embeddings, embedding_dim)}"
                )
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            previous = GradMode.enabled
            GradMode.enabled = False
            try:
                row = creation.arange(self.num_embeddings, device=self.weight.device) == self.padding_idx
                self.weight.copy_(where(row.unsqueeze(1), 0.0, self.weight))
            finally:
                GradMode.enabled = previous

    def forward(self, input: Tensor) -> Tensor:
        return embedding(
            input,
            self.weight,
            self.padding_idx,
            self.max_norm,
            self.norm_type,
            self.scale_grad_by_freq,
            self.sparse,
        )

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> "Embedding":
        """An Embedding holding a copy of the 2-D tensor embeddings (frozen unless freeze=False)."""
        if embeddings.ndim != 2:
            raise ValueError(
                f"Embedding.from_pretrained: embeddings must be 2-D, got shape {tuple(embeddings.shape)}"
            )
        rows, cols = embeddings.shape
        return cls(
            rows,
            cols,
            padding_idx,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            sparse,
            _weight=embeddings,
            _freeze=freeze,
        )

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        return text


class _DropoutNd(Module):
    _function = staticmethod(dropout)

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        _check_p(p, type(self).__name__)
        self.p, self.inplace = p, inplace

    def forward(self, input: Tensor) -> Tensor:
        return type(self)._function(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """During training, zero elements with probability p and scale the rest by 1/(1-p)."""

    _function = staticmethod(dropout)


class Dropout1d(_DropoutNd):
    """During training, zero whole channels of (N, C, L) input with probability p."""

    _function = staticmethod(dropout1d)


class Dropout2d(_DropoutNd):
    """During training, zero whole channels of (N, C, H, W) input with probability p."""

    _function = staticmethod(dropout2d)


class Dropout3d(_DropoutNd):
    """During training, zero whole channels of (N, C, D, H, W) input with probability p."""

    _function = staticmethod(dropout3d)


class AlphaDropout(_DropoutNd):
    """Dropout that keeps SELU activations' mean and variance."""

    _function = staticmethod(alpha_dropout)


class FeatureAlphaDropout(_DropoutNd):
    """AlphaDropout of whole channels."""

    _function = staticmethod(feature_alpha_dropout)


class Flatten(Module):
    """Flatten dims start_dim..end_dim into one (default: all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim into unflattened_size (a tuple of ints, one of which may be -1)."""

    def __init__(self, dim: int | str, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        if isinstance(dim, str):
            raise TypeError("Unflatten: named dimensions are not supported; pass an int dim")
        if not isinstance(unflattened_size, (tuple, list)) or not all(
            isinstance(s, int) for s in unflattened_size
        ):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}")
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"

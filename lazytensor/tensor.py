"""The Tensor: a graph node plus a device. Every op records graph nodes; nothing runs until a
value is needed (`realize`, `numpy`, `item`, `tolist`, printing).

This file holds the core: construction, conversion, broadcasting and type promotion, and the
thin wrappers over primitive ops that the op families build on. The families themselves live
in tensor_*.py mixins (elementwise, reduce, movement, indexing, linalg), each composed from
the wrappers here, so every backend and the autograd get them for free.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from lazytensor import capture, config, dtypes
from lazytensor import graph as g
from lazytensor.dtypes import DType
from lazytensor.graph import Node
from lazytensor.ops import Op
from lazytensor.autograd import LEAVES, GradMode, gradients, needs_grad, register_leaf, unregister_leaf
from lazytensor.autograd import mark_for_step
from lazytensor.schedule import REALIZED
from lazytensor.realize import realize as realize_nodes
from lazytensor.runtime.device import Buffer, canonical_device
from lazytensor.tensor_elementwise import ElementwiseMixin
from lazytensor.tensor_indexing import IndexingMixin
from lazytensor.tensor_linalg import LinalgMixin
from lazytensor.tensor_movement import MovementMixin
from lazytensor.tensor_reduce import ReduceMixin

Scalar = int | float | bool
_BUFFER = Op.BUFFER   # (read through the enum class, a member costs ~80 ns: see graph.py)


class _DefaultDevice:
    """`lt.Device.DEFAULT`: the device new tensors go to (CPU unless CL=1 or CUDA=1)."""
    _value: str | None = None

    @property
    def DEFAULT(self) -> str:
        if self._value is None:
            self._value = config.default_device()
        return self._value

    @DEFAULT.setter
    def DEFAULT(self, name: str) -> None:
        self._value = canonical_device(name)


Device = _DefaultDevice()


def _infer_dtype(data: Any) -> DType:
    """The dtype torch.tensor would give nested Python data."""
    flat = np.asarray(data, dtype=object).reshape(-1) if not isinstance(data, (int, float, bool)) else [data]
    kinds = set()
    for v in flat:
        if isinstance(v, (bool, np.bool_)):
            kinds.add("b")
        elif isinstance(v, (int, np.integer)):
            kinds.add("i")
        elif isinstance(v, (float, np.floating)):
            kinds.add("f")
        elif isinstance(v, Tensor):
            kinds.add(v.dtype.kind)
        else:
            raise TypeError(f"tensor(): cannot make a tensor from element of type {type(v).__name__}")
    if "f" in kinds:
        return dtypes.default_float
    if "i" in kinds or "u" in kinds:
        return dtypes.int64
    if "b" in kinds:
        return dtypes.bool_
    return dtypes.default_float   # empty list


def _to_numpy_storage(arr: np.ndarray, dtype: DType) -> np.ndarray:
    """Host array in the layout our buffers use (bfloat16 as its 16 high float32 bits)."""
    if dtype is dtypes.bfloat16:
        f32 = np.ascontiguousarray(arr, dtype=np.float32)
        bits = f32.view(np.uint32)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        nan = np.isnan(f32)
        rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
        return rounded
    return np.ascontiguousarray(arr, dtype=dtype.np)


class Tensor(ElementwiseMixin, ReduceMixin, MovementMixin, IndexingMixin, LinalgMixin):
    """A lazy n-dimensional array with PyTorch's API."""
    __array_priority__ = 1000   # make numpy_array + tensor call our __radd__

    def __init__(self, data: Any, dtype: Any = None, device: str | None = None,
                 requires_grad: bool = False) -> None:
        dev = canonical_device(device) if device is not None else Device.DEFAULT
        want = dtypes.to_dtype(dtype) if dtype is not None else None
        if isinstance(data, Tensor):
            t = data.to(dev)
            if want is not None:
                t = t.to(want)
            self.node, self.device = t.node, t.device
        elif isinstance(data, Node):
            self.node, self.device = data, dev
        else:
            if isinstance(data, np.generic):
                data = np.asarray(data)   # a NumPy scalar keeps its dtype (torch.tensor(np.float16(1)))
            if isinstance(data, np.ndarray):
                if data.dtype == object:
                    raise TypeError("tensor(): NumPy arrays of dtype object are not supported")
                if data.dtype.kind == "c":
                    raise TypeError("tensor(): complex numbers are not supported")
                dt = want or dtypes.to_dtype(data.dtype)
                arr = data
            else:
                if isinstance(data, (list, tuple)) and any(isinstance(v, Tensor) for v in _flatten(data)):
                    data = _nested_tensor_values(data)
                dt = want or _infer_dtype(data)
                arr = np.array(data, dtype=np.float64 if dt.is_float else object)
                if arr.dtype == object:
                    arr = np.array(data)
                _check_ragged(arr, data)
            self.node = _buffer_node_from_array(np.asarray(arr), dt, dev)
            self.device = dev
        self.grad: Tensor | None = None
        self._version = 0
        self._is_leaf_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---- construction from graph nodes ----
    @classmethod
    def _from_node(cls, node: Node, device: str, requires_grad: bool = False) -> "Tensor":
        t = object.__new__(cls)
        t.node, t.device, t.grad, t._version, t._is_leaf_grad = node, device, None, 0, False
        if requires_grad:
            t.requires_grad_(True)
        return t

    @classmethod
    def _uninitialized(cls, shape: tuple[int, ...], dtype: DType, device: str) -> "Tensor":
        """A tensor over fresh device memory that nothing writes (torch.empty's contract): its memory
        is allocated on first use, so a value that replaces it before then costs nothing."""
        dev = canonical_device(device)
        node = g.buffer(Buffer(dev, math.prod(shape) * dtype.itemsize), dtype, tuple(shape))
        return cls._from_node(node, dev)

    def _new(self, node: Node) -> "Tensor":
        """A tensor for `node` on this tensor's device (detached when recorded under no_grad)."""
        if not GradMode.enabled:
            node = g.detach(node)
        t = object.__new__(Tensor)   # (Tensor._from_node(node, self.device), one call less per op)
        t.node, t.device, t.grad, t._version, t._is_leaf_grad = node, self.device, None, 0, False
        return t

    # ---- properties ----
    @property
    def shape(self) -> "Size":
        return Size(self.node.shape)

    @property
    def dtype(self) -> DType:
        return self.node.dtype

    @property
    def ndim(self) -> int:
        return len(self.node.shape)

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return self.node.numel

    def nelement(self) -> int:
        return self.node.numel

    def size(self, dim: int | None = None) -> "Size | int":
        if dim is None:
            return self.shape
        return self.node.shape[self._axis(dim, "size")]

    def element_size(self) -> int:
        return self.dtype.itemsize

    @property
    def is_floating_point_(self) -> bool:
        return self.dtype.is_float

    def is_floating_point(self) -> bool:
        return self.dtype.is_float

    # ---- autograd (rules in autograd.py) ----
    @property
    def requires_grad(self) -> bool:
        """True for leaves marked requires_grad and for results a gradient can flow through."""
        return self._is_leaf_grad or needs_grad(self.node)

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    @property
    def is_leaf(self) -> bool:
        return self._is_leaf_grad or not needs_grad(self.node)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Mark this tensor as a leaf whose gradient backward() should compute."""
        if requires_grad:
            if not self.dtype.is_float:
                raise RuntimeError(f"only Tensors of floating point dtype can require gradients (got {self.dtype})")
            if self.node.op is not Op.BUFFER:
                self.realize()   # a leaf needs its own buffer, so its node is unique
            self._is_leaf_grad = True
            _own_leaf_buffer(self)
        elif self._is_leaf_grad:
            self._is_leaf_grad = False
            unregister_leaf(self.node)
        return self

    def backward(self, gradient: "Tensor | None" = None, retain_graph: bool = False,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's .grad, lazily (nothing is computed here).

        The graph is never freed by backward, so retain_graph has no effect."""
        if not self.requires_grad:
            raise RuntimeError("backward: element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar outputs "
                                   f"(output has shape {tuple(self.shape)}); pass gradient=")
            seed = g.const(1, self.dtype, self.node.shape)
        else:
            seed = self._as_tensor(gradient).cast(self.dtype).expand(tuple(self.shape)).node
        grads = gradients(self.node, seed)   # every registered leaf under self
        mark_for_step(self)   # the next Optimizer.step() realizes this loss in the step's schedule
        for node, grad in grads.items():
            leaf = LEAVES.get(node)
            if leaf is None:
                continue
            new = Tensor._from_node(g.detach(grad), leaf.device)
            leaf.grad = new if leaf.grad is None else Tensor._from_node(g.detach(
                g.binary(Op.ADD, leaf.grad.node, new.node)), leaf.device)

    def gradient(self, *targets: "Tensor", gradient: "Tensor | None" = None) -> list["Tensor"]:
        """d(self)/d(target) for each target (leaves or intermediate results), as lazy tensors."""
        seed = g.const(1, self.dtype, self.node.shape) if gradient is None else \
            self._as_tensor(gradient).cast(self.dtype).expand(tuple(self.shape)).node
        grads = gradients(self.node, seed, [t.node for t in targets])
        return [Tensor._from_node(grads[t.node], self.device) if t.node in grads else
                Tensor._from_node(g.const(0, t.dtype, t.node.shape), self.device) for t in targets]

    def zero_grad(self) -> None:
        self.grad = None

    @property
    def grad_fn(self) -> object | None:
        return None if self.is_leaf else self.node.op

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.node.shape[0]

    # ---- realization and conversion ----
    def realize(self) -> "Tensor":
        """Compute this tensor now (schedule → compile, cached → run); returns self."""
        node = self.node
        if node.op is not _BUFFER and node.realized is None:   # (node not in REALIZED, without a call)
            (out,) = realize_nodes([node], self.device)
            self._set_realized(out)
        return self

    def _set_realized(self, node: Node) -> None:
        """Point this tensor at the buffer that now holds its value (keeping a leaf registered).

        A result that gradients flow through keeps its graph node (backward needs it); its value
        is found through REALIZED, and later graphs read that buffer instead of recomputing."""
        old = self.node
        if self._is_leaf_grad:
            self.node = node
            unregister_leaf(old)
            register_leaf(node, self)
        elif not LEAVES.data or not needs_grad(old):   # (no leaf registered anywhere: nothing to ask)
            self.node = node

    def _buffer(self) -> Buffer:
        """The device buffer holding this (realized) tensor's elements."""
        self.realize()
        node = self.node
        if node.op is _BUFFER:
            return node.arg
        return REALIZED[node]

    def schedule(self) -> list:
        """The kernels realize() would run, each with its fused ops and boundary reason."""
        from lazytensor.schedule import create_schedule
        return create_schedule([self.node], self.device)[0]

    def numpy(self) -> np.ndarray:
        """A NumPy copy of the value (realizes)."""
        if capture.ACTIVE is not None:   # (the message is built only while a jit capture listens)
            capture.note_host_read(f"{self.dtype.name}{list(self.shape)}")
        return self._peek()

    def _peek(self) -> np.ndarray:
        """numpy() for argument checks only: `lt.jit` does not treat the read as a Python decision
        (a replay skips the check, so the kernels must check the same thing)."""
        raw = self._buffer().copyout()
        if self.dtype is dtypes.bfloat16:
            bits = raw.view(np.uint16).astype(np.uint32) << 16
            return bits.view(np.float32).reshape(self.node.shape)
        return raw.view(self.dtype.np).reshape(self.node.shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def item(self) -> Scalar:
        node = self.node
        if node.shape and math.prod(node.shape) != 1:   # (a 0-d tensor, the usual case, has one element)
            raise RuntimeError(f"item(): a tensor with {self.numel()} elements cannot be converted to a "
                               "Python scalar; only one-element tensors can")
        if capture.ACTIVE is not None or node.dtype is dtypes.bfloat16:
            return self.numpy().item()   # (a one-element array of any shape gives its only element)
        # the common case without numpy()'s reshape: a one-element array of any shape gives its element
        self.realize()
        node = self.node
        buf = node.arg if node.op is _BUFFER else node.realized   # (self._buffer(), one call less)
        return buf.copyout().view(node.dtype.np).item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if not (self.dtype.is_int or self.dtype.is_bool) or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.numel()} elements is ambiguous")
        return bool(self.item())

    def __repr__(self) -> str:
        values = np.array2string(self.numpy(), separator=", ", precision=4)
        extra = "" if self.dtype in (dtypes.float32, dtypes.int64, dtypes.bool_) else f", dtype={self.dtype}"
        dev = "" if self.device == "CPU" else f", device='{self.device}'"
        return f"tensor({values}{extra}{dev})"

    def __hash__(self) -> int:
        return id(self)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def to(self, *args: Any, **kwargs: Any) -> "Tensor":
        """to(device), to(dtype), to(device, dtype) or to(other_tensor)."""
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, DType) or (not isinstance(a, str) and a is not None and _looks_like_dtype(a)):
                dtype = a
            elif isinstance(a, str):
                try:
                    device = canonical_device(a)
                except ValueError:
                    dtype = a
        out = self
        if dtype is not None and dtypes.to_dtype(dtype) != self.dtype:
            out = out.cast(dtypes.to_dtype(dtype))
        if device is not None and canonical_device(device) != self.device:
            target = canonical_device(device)
            src = out.contiguous().realize() if out.node.op is not Op.BUFFER else out
            out = Tensor._from_node(g.copy_to(src.node, target), target)
        return out

    def cpu(self) -> "Tensor":
        return self.to("CPU")

    def type(self, dtype: Any = None) -> "Tensor | str":
        if dtype is None:
            return f"lazytensor.{self.dtype.name}"
        return self.to(dtypes.to_dtype(dtype))

    def float(self) -> "Tensor":
        return self.cast(dtypes.float32)

    def half(self) -> "Tensor":
        return self.cast(dtypes.float16)

    def double(self) -> "Tensor":
        return self.cast(dtypes.float64)

    def int(self) -> "Tensor":
        return self.cast(dtypes.int32)

    def long(self) -> "Tensor":
        return self.cast(dtypes.int64)

    def bool(self) -> "Tensor":
        return self.cast(dtypes.bool_)

    def bfloat16(self) -> "Tensor":
        return self.cast(dtypes.bfloat16)

    def short(self) -> "Tensor":
        return self.cast(dtypes.int16)

    def byte(self) -> "Tensor":
        return self.cast(dtypes.uint8)

    def char(self) -> "Tensor":
        return self.cast(dtypes.int8)

    def contiguous(self) -> "Tensor":
        """A kernel boundary: the value is materialized in its own buffer when realized."""
        if self.node.op in (Op.BUFFER, Op.COPY):   # a device copy already lands in a fresh buffer
            return self
        return self._new(g.contiguous(self.node))

    def clone(self) -> "Tensor":
        return self._new(g.contiguous(self.node)) if self.node.op is not Op.BUFFER else \
            self._new(g.contiguous(g.reshape(self.node, self.node.shape)))

    def detach(self) -> "Tensor":
        return Tensor._from_node(g.detach(self.node), self.device)

    def detach_(self) -> "Tensor":
        self.node = g.detach(self.node)
        return self

    # ---- primitive wrappers the op families use ----
    def cast(self, dtype: DType) -> "Tensor":
        if dtype.__class__ is not DType:
            dtype = dtypes.to_dtype(dtype)
        return self._new(g.cast(self.node, dtype))

    def bitcast(self, dtype: Any) -> "Tensor":
        dt = dtypes.to_dtype(dtype)
        if dt.itemsize != self.dtype.itemsize:
            raise TypeError(f"bitcast: {self.dtype} and {dt} differ in size")
        return self._new(g.bitcast(self.node, dt))

    view_as_dtype = bitcast

    def _const(self, value: Scalar, dtype: DType | None = None, shape: Sequence[int] | None = None) -> "Tensor":
        dt = dtype or self.dtype
        return self._new(g.const(value, dt, tuple(self.node.shape if shape is None else shape)))

    def _axis(self, dim: int, op: str, ndim: int | None = None) -> int:
        """Normalize a possibly negative dim, with PyTorch's error for one out of range."""
        n = len(self.node.shape) if ndim is None else ndim
        if dim.__class__ is int and 0 <= dim < n:   # fast path: most dims are already in range
            return dim
        lo, hi = (-1, 0) if n == 0 else (-n, n - 1)
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
        if not lo <= dim <= hi:
            raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{lo}, {hi}], "
                             f"but got {dim})")
        return int(dim) % max(n, 1)

    def _as_tensor(self, x: Any, dtype: DType | None = None) -> "Tensor":
        """x as a tensor on this device (Python scalars become constants)."""
        if isinstance(x, Tensor):
            if x.device != self.device:
                raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two "
                                   f"devices, {self.device} and {x.device}; move one with .to()")
            return x
        if isinstance(x, (bool, int, float, np.number, np.bool_)):
            return self._new(g.const(x, dtype or dtypes.scalar_dtype(x), ()))
        return Tensor(x, dtype=dtype, device=self.device)

    def _broadcast_pair(self, other: Any, op: str, reverse: bool = False,
                        dtype: DType | None = None) -> tuple["Tensor", "Tensor"]:
        """Promote and broadcast self with other (a tensor or scalar) for a binary op."""
        if other.__class__ is Tensor and dtype is None and other.device == self.device:
            # fast path (most binary ops): same dtype and shape need no promotion and no broadcast
            if other.node.dtype is self.node.dtype and other.node.shape == self.node.shape:
                return (other, self) if reverse else (self, other)
        elif other.__class__ in (float, int) and dtype is None and self.node.dtype.is_float:
            # fast path: a Python number meeting a float tensor takes the tensor's dtype and shape (the
            # constant the general path builds through cast, reshape and expand, in one node)
            o = Tensor._from_node(g.const(other, self.node.dtype, self.node.shape), self.device)
            return (o, self) if reverse else (self, o)
        if isinstance(other, Tensor):
            if other.device != self.device:
                raise RuntimeError(f"{op}: Expected all tensors to be on the same device, but found at least "
                                   f"two devices, {self.device} and {other.device}; move one with .to()")
            if dtype is None and other.node.dtype is self.node.dtype:
                out_dtype = self.node.dtype   # (what result_type says, without its generic walk)
            else:
                out_dtype = dtype or dtypes.result_type(self, other)
            o = other
        elif isinstance(other, (bool, int, float, np.number, np.bool_)):
            out_dtype = dtype or dtypes.result_type(self, other)
            o = self._new(g.const(other, out_dtype, ()))
        else:
            o = Tensor(other, device=self.device)
            out_dtype = dtype or dtypes.result_type(self, o)
        a = self if self.node.dtype is out_dtype else self.cast(out_dtype)
        b = o if o.node.dtype is out_dtype else o.cast(out_dtype)
        shape = broadcast_shapes(a.node.shape, b.node.shape, op=op)
        a, b = a._broadcast_to(shape), b._broadcast_to(shape)
        return (b, a) if reverse else (a, b)

    def _broadcast_to(self, shape: tuple[int, ...]) -> "Tensor":
        shape = tuple(shape)
        own = self.node.shape
        if own == shape:
            return self
        padded = (1,) * (len(shape) - len(own)) + own
        node = g.reshape(self.node, padded)
        return self._new(g.expand(node, shape))


class Size(tuple):
    """torch.Size: a tuple of ints with numel()."""

    def numel(self) -> int:
        return math.prod(self)

    def __repr__(self) -> str:
        return f"lazytensor.Size({list(self)})"


def broadcast_shapes(*shapes: Sequence[int], op: str = "broadcast") -> tuple[int, ...]:
    """NumPy/PyTorch broadcasting of shapes, with an error naming the op and the shapes."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, n in enumerate((1,) * (ndim - len(s)) + tuple(s)):
            if n == out[i] or n == 1:
                continue
            if out[i] == 1:
                out[i] = n
            else:
                shown = " and ".join(str(tuple(x)) for x in shapes)
                raise ValueError(f"{op}: shapes {shown} cannot be broadcast: size {out[i]} vs {n} at "
                                 f"dimension {i - ndim}")
    return tuple(out)


def _flatten(data: Any) -> Iterable[Any]:
    if isinstance(data, (list, tuple)):
        for v in data:
            yield from _flatten(v)
    else:
        yield data


def _nested_tensor_values(data: Any) -> Any:
    if isinstance(data, (list, tuple)):
        return [_nested_tensor_values(v) for v in data]
    if isinstance(data, Tensor):
        return data.numpy().tolist()
    return data


def _check_ragged(arr: np.ndarray, data: Any) -> None:
    if arr.dtype == object and arr.ndim >= 1 and any(isinstance(v, (list, tuple, np.ndarray))
                                                     for v in arr.reshape(-1)):
        raise ValueError("tensor(): expected a sequence of equal-length sequences (got a ragged list)")


def _looks_like_dtype(a: Any) -> bool:
    try:
        dtypes.to_dtype(a)
        return True
    except TypeError:
        return False


def _buffer_node_from_array(arr: np.ndarray, dt: DType, device: str) -> Node:
    """Copy host data into a new device buffer and return its graph leaf."""
    host = _to_numpy_storage(np.asarray(arr), dt) if dt.is_float or dt.is_bool else \
        _int_storage(np.asarray(arr), dt)
    buf = Buffer(device, host.nbytes)
    buf.copyin(host)
    return g.buffer(buf, dt, tuple(arr.shape))


def _int_storage(arr: np.ndarray, dt: DType) -> np.ndarray:
    if arr.dtype.kind == "f":
        return arr.astype(dt.np)
    return arr.astype(dt.np, casting="unsafe")


# ---- in-place forms: `x.add_(y)` makes x refer to the result (a functional update of the graph) ----

INPLACE_OPS = (
    "add", "sub", "mul", "div", "floor_divide", "remainder", "fmod", "pow", "neg", "abs", "reciprocal",
    "sign", "square", "sqrt", "rsqrt", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos",
    "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "erf", "floor", "ceil", "round", "trunc",
    "frac", "clamp", "clip", "clamp_min", "clamp_max", "lerp", "nan_to_num", "relu", "sigmoid", "hardtanh",
    "leaky_relu", "elu", "celu", "selu", "silu", "gelu", "mish", "hardswish", "hardsigmoid", "logical_and",
    "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
    "bitwise_left_shift", "bitwise_right_shift", "eq", "ne", "lt", "le", "gt", "ge", "maximum", "minimum",
    "masked_fill", "index_add", "index_copy", "index_fill", "scatter", "scatter_add", "scatter_reduce",
    "masked_scatter", "tril", "triu", "t", "transpose", "squeeze", "unsqueeze", "addmm", "fix", "negative",
    "absolute", "multiply", "divide", "subtract", "true_divide", "float_power", "copysign", "hypot",
    "xlogy", "sgn", "arctan2", "deg2rad", "rad2deg", "logit", "erfc",
)
_SHAPE_CHANGING = {"t", "transpose", "squeeze", "unsqueeze"}


def _can_cast(src: DType, dst: DType) -> bool:
    """torch.can_cast for in-place results: never float → integer/bool, never integer → bool."""
    if dst.is_bool:
        return src.is_bool
    if dst.is_int:
        return not src.is_float
    return True


def _assign_result(self: Tensor, result: Tensor, op: str) -> Tensor:
    """Make self refer to result's value (same shape, result cast to self's dtype)."""
    if op.rstrip("_") not in _SHAPE_CHANGING and tuple(result.shape) != tuple(self.shape):
        raise RuntimeError(f"{op}: output with shape {list(self.shape)} doesn't match the broadcast shape "
                           f"{list(result.shape)}")
    if not _can_cast(result.dtype, self.dtype):
        raise RuntimeError(f"{op}: result type {result.dtype.name} can't be cast to the desired output type "
                           f"{self.dtype.name}")
    if self._is_leaf_grad and GradMode.enabled:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad is being used in an in-place operation; "
                           "wrap the update in `with lt.no_grad():`")
    capture.note_update(self)
    old = self.node
    if op.rstrip("_") in _SHAPE_CHANGING:
        self.node = result.node
    else:
        self.node = result.cast(self.dtype).node
    if self._is_leaf_grad:
        unregister_leaf(old)
        register_leaf(self.node, self)
    self._version += 1
    return self


def _make_inplace(name: str):
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return _assign_result(self, getattr(self, name)(*args, **kwargs), name + "_")
    method.__name__ = name + "_"
    method.__doc__ = f"In-place {name}: this tensor now holds the result of self.{name}(...)."
    return method


for _name in INPLACE_OPS:
    if hasattr(Tensor, _name) and not hasattr(Tensor, _name + "_"):
        setattr(Tensor, _name + "_", _make_inplace(_name))


def _iadd(self: Tensor, other: Any) -> Tensor:
    return self.add_(other)


def _isub(self: Tensor, other: Any) -> Tensor:
    return self.sub_(other)


def _imul(self: Tensor, other: Any) -> Tensor:
    return self.mul_(other)


def _itruediv(self: Tensor, other: Any) -> Tensor:
    return self.div_(other)


Tensor.__iadd__ = _iadd
Tensor.__isub__ = _isub
Tensor.__imul__ = _imul
Tensor.__itruediv__ = _itruediv
Tensor.__ifloordiv__ = lambda self, other: self.floor_divide_(other)
Tensor.__imod__ = lambda self, other: self.remainder_(other)
Tensor.__ipow__ = lambda self, other: self.pow_(other)
Tensor.__iand__ = lambda self, other: self.bitwise_and_(other)
Tensor.__ior__ = lambda self, other: self.bitwise_or_(other)
Tensor.__ixor__ = lambda self, other: self.bitwise_xor_(other)


def _rebind_inplace(self: Tensor, node: Node, op: str) -> Tensor:
    """Give self a new value node for an in-place op; a grad leaf stays registered (under its new node)."""
    if self._is_leaf_grad and GradMode.enabled:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad is being used in an in-place operation; "
                           "wrap the update in `with lt.no_grad():`")
    capture.note_update(self)
    old, self.node = self.node, node
    if self._is_leaf_grad:
        # a leaf is found by its node, so it gets a buffer of its own now (a lazy constant would be shared)
        unregister_leaf(old)
        self._is_leaf_grad = False   # realize unregistered: _own_leaf_buffer then checks for sharing
        self.realize()
        self._is_leaf_grad = True
        _own_leaf_buffer(self)
    self._version += 1
    return self


def _own_leaf_buffer(self: Tensor) -> None:
    """Register self (a realized grad leaf) under a buffer no other live leaf uses, copying it if needed.

    Realizing equal graphs yields the same buffer (e.g. two `zeros(3, requires_grad=True)`), and two
    leaves sharing a node would share one .grad."""
    node = self.node
    owner = LEAVES.get(node)
    if node.op is not Op.BUFFER:
        # realize may answer with a constant node, which every equal constant shares
        host = Tensor._from_node(node, self.device).numpy()
        self.node = _buffer_node_from_array(host, node.dtype, self.device)
    elif owner is not None and owner is not self:
        fresh = Buffer(node.arg.device, node.arg.nbytes)
        fresh.copyin(node.arg.copyout())
        self.node = g.buffer(fresh, node.dtype, node.shape)
    register_leaf(self.node, self)


def _copy_(self: Tensor, src: Any) -> Tensor:
    """Copy src's values into self (broadcast to self's shape, cast to self's dtype)."""
    value = self._as_tensor(src) if not isinstance(src, Tensor) else src.to(self.device)
    return _rebind_inplace(self, value.cast(self.dtype).expand(tuple(self.shape)).node, "copy_")


def _fill_(self: Tensor, value: Any) -> Tensor:
    node = g.const(value.item() if isinstance(value, Tensor) else value, self.dtype, self.node.shape)
    return _rebind_inplace(self, node, "fill_")


def _zero_(self: Tensor) -> Tensor:
    return _fill_(self, 0)


def _uniform_(self: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    from lazytensor.creation import rand
    return _copy_(self, rand(tuple(self.shape), dtype=self.dtype, device=self.device) * (b - a) + a)


def _normal_(self: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    from lazytensor.creation import randn
    return _copy_(self, randn(tuple(self.shape), dtype=self.dtype, device=self.device) * std + mean)


Tensor.copy_ = _copy_
Tensor.fill_ = _fill_
Tensor.zero_ = _zero_
Tensor.uniform_ = _uniform_
Tensor.normal_ = _normal_

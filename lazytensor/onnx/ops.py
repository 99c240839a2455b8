"""The ONNX op table: op name → handler that builds lazytensor ops for one node.

A handler receives an `OpContext` (the node, its attributes, the opset it runs under) and the input
values (Tensor, list of Tensors for sequences, or None for an absent optional input) and returns
the output values: one value, or a tuple of values for several outputs (a list is one sequence
value). The op families register themselves from ops_*.py modules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from lazytensor import dtypes
from lazytensor.dtypes import DType
from lazytensor.onnx.loader import NodeInfo, UnsupportedOnnx, onnx_dtype
from lazytensor.tensor import Tensor

Value = Any          # Tensor | list[Tensor] (sequence) | None (absent optional)
Handler = Callable[["OpContext", list[Value]], "tuple[Value, ...] | Value"]


@dataclass
class OpEntry:
    handler: Handler
    since: int = 1          # oldest opset this handler implements
    domain: str = ""


OPS: dict[tuple[str, str], list[OpEntry]] = {}


def register(*names: str, since: int = 1, domain: str = "") -> Callable[[Handler], Handler]:
    """Decorator: `@register("Relu")` makes fn the handler for Relu from opset `since` on."""
    def deco(fn: Handler) -> Handler:
        for name in names:
            OPS.setdefault((domain, name), []).append(OpEntry(fn, since, domain))
            OPS[(domain, name)].sort(key=lambda e: -e.since)
        return fn
    return deco


def find_handler(node: NodeInfo, opset: int) -> Handler:
    """The handler for node at opset, or an UnsupportedOnnx error naming op, node and opset."""
    domain = "" if node.domain in ("", "ai.onnx") else node.domain
    entries = OPS.get((domain, node.op_type))
    if not entries:
        raise UnsupportedOnnx(f"ONNX op {_where(node, opset)} is not supported by lazytensor")
    for entry in entries:
        if opset >= entry.since:
            return entry.handler
    raise UnsupportedOnnx(f"ONNX op {_where(node, opset)}: only opset >= {entries[-1].since} is supported")


def _where(node: NodeInfo, opset: int) -> str:
    domain = f"{node.domain}." if node.domain not in ("", "ai.onnx") else ""
    return f"{domain}{node.op_type} (node {node.name or '<unnamed>'!r}, opset {opset})"


@dataclass
class OpContext:
    """What a handler knows about the node it is building."""
    node: NodeInfo
    opset: int
    device: str
    run_subgraph: Callable[..., list[Value]] | None = None    # (graph, inputs: list[Value]) -> outputs
    opsets: dict[str, int] = field(default_factory=dict)

    @property
    def op(self) -> str:
        return self.node.op_type

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attrs.get(name, default)

    def where(self) -> str:
        return _where(self.node, self.opset)

    def unsupported(self, what: str) -> UnsupportedOnnx:
        return UnsupportedOnnx(f"ONNX op {self.where()}: {what}")

    def tensor(self, data: Any, dtype: DType | None = None) -> Tensor:
        """A constant tensor on the model's device."""
        if isinstance(data, Tensor):
            return data if dtype is None else data.cast(dtype)
        arr = np.asarray(data)
        return Tensor(arr, dtype=dtype, device=self.device)

    def dtype_attr(self, name: str, default: int | None = None) -> DType:
        code = self.attr(name, default)
        return onnx_dtype(int(code), self.where())


def static_ints(x: Value, what: str = "value") -> list[int]:
    """The values of a small integer tensor as Python ints (reads the tensor: shapes, axes, pads)."""
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return [int(v) for v in x]
    return [int(v) for v in np.asarray(x.numpy()).reshape(-1).tolist()]


def static_floats(x: Value) -> list[float]:
    if x is None:
        return []
    return [float(v) for v in np.asarray(x.numpy(), dtype=np.float64).reshape(-1).tolist()]


def static_scalar(x: Value) -> Any:
    return np.asarray(x.numpy()).reshape(-1)[0].item()


def normalize_axis(axis: int, ndim: int, ctx: OpContext | None = None) -> int:
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        where = ctx.where() if ctx else "onnx"
        raise ValueError(f"{where}: axis {axis} is out of range for a tensor of rank {ndim}")
    return axis + ndim if axis < 0 else axis


def zeros(shape: tuple[int, ...], dtype: DType, device: str) -> Tensor:
    from lazytensor.creation import zeros as lt_zeros
    return lt_zeros(*shape, dtype=dtype, device=device) if shape else lt_zeros((), dtype=dtype, device=device)


def full(shape: tuple[int, ...], value: Any, dtype: DType, device: str) -> Tensor:
    from lazytensor.creation import full as lt_full
    return lt_full(tuple(shape), value, dtype=dtype, device=device)


def is_float(x: Tensor) -> bool:
    return x.dtype.is_float


FLOAT_DTYPES = (dtypes.float16, dtypes.bfloat16, dtypes.float32, dtypes.float64)

"""Read ONNX protobufs into plain Python: graphs, nodes, attributes and constant arrays.

The `onnx` package is used only to parse the protobuf and to turn TensorProtos into NumPy arrays
(data at the boundary); nothing here computes model values.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lazytensor import dtypes
from lazytensor.dtypes import DType


def _require_onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("lazytensor.onnx needs the `onnx` package to parse models: "
                          "pip install 'lazytensor[onnx]'") from None
    return onnx


# TensorProto.DataType numbers → our dtypes (None: a type we cannot hold)
ONNX_DTYPES: dict[int, DType] = {
    1: dtypes.float32, 2: dtypes.uint8, 3: dtypes.int8, 4: dtypes.uint16, 5: dtypes.int16, 6: dtypes.int32,
    7: dtypes.int64, 9: dtypes.bool_, 10: dtypes.float16, 11: dtypes.float64, 12: dtypes.uint32,
    13: dtypes.uint64, 16: dtypes.bfloat16,
}
ONNX_DTYPE_NAMES = {
    0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
    8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
    15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2",
    20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1", 24: "FLOAT8E8M0", 25: "UINT2", 26: "INT2",
}
DTYPE_TO_ONNX = {dt: code for code, dt in ONNX_DTYPES.items()}


class UnsupportedOnnx(NotImplementedError):
    """An op, dtype or attribute combination lazytensor.onnx cannot run (names the node and opset)."""


def onnx_dtype(code: int, where: str = "") -> DType:
    """Our dtype for an ONNX element type number, or a clear error naming the type."""
    if code not in ONNX_DTYPES:
        name = ONNX_DTYPE_NAMES.get(code, str(code))
        raise UnsupportedOnnx(f"{where}: ONNX element type {name} is not supported by lazytensor "
                              f"(supported: {', '.join(ONNX_DTYPE_NAMES[c] for c in sorted(ONNX_DTYPES))})")
    return ONNX_DTYPES[code]


@dataclass
class NodeInfo:
    """One ONNX node: op, domain, input/output names ('' = absent optional) and parsed attributes."""
    op_type: str
    domain: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]


@dataclass
class ValueInfo:
    """A graph input/output: name, element type (None if not a tensor) and shape (str for symbolic dims)."""
    name: str
    elem_type: int | None
    shape: tuple[int | str | None, ...] | None
    kind: str = "tensor"     # tensor | sequence | optional | other


@dataclass
class GraphInfo:
    """A parsed (sub)graph: nodes in topological order, constant initializers, inputs and outputs."""
    name: str
    nodes: list[NodeInfo]
    initializers: dict[str, np.ndarray]
    inputs: list[ValueInfo]
    outputs: list[ValueInfo]
    sparse_initializers: dict[str, np.ndarray] = field(default_factory=dict)


def tensor_to_numpy(proto: Any) -> np.ndarray:
    """A TensorProto's data as a NumPy array (bfloat16 as ml_dtypes.bfloat16 when onnx gives it)."""
    onnx = _require_onnx()
    from onnx import numpy_helper
    if proto.data_type == 8:   # STRING
        return numpy_helper.to_array(proto)
    if proto.data_location == onnx.TensorProto.EXTERNAL and not proto.raw_data:
        raise UnsupportedOnnx(f"initializer {proto.name!r} keeps its data in an external file; load the model "
                              f"from its path (not bytes) so the data can be found")
    return numpy_helper.to_array(proto)


def _attribute_value(attr: Any) -> Any:
    onnx = _require_onnx()
    A = onnx.AttributeProto
    kind = attr.type
    if kind == A.FLOAT:
        return float(attr.f)
    if kind == A.INT:
        return int(attr.i)
    if kind == A.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if kind == A.TENSOR:
        return tensor_to_numpy(attr.t)
    if kind == A.GRAPH:
        return parse_graph(attr.g)
    if kind == A.FLOATS:
        return [float(v) for v in attr.floats]
    if kind == A.INTS:
        return [int(v) for v in attr.ints]
    if kind == A.STRINGS:
        return [s.decode("utf-8", errors="replace") for s in attr.strings]
    if kind == A.TENSORS:
        return [tensor_to_numpy(t) for t in attr.tensors]
    if kind == A.GRAPHS:
        return [parse_graph(gr) for gr in attr.graphs]
    if kind == A.SPARSE_TENSOR:
        return _sparse_to_numpy(attr.sparse_tensor)
    if kind == A.TYPE_PROTO:
        return attr.tp
    raise UnsupportedOnnx(f"attribute {attr.name!r} has an unsupported type {kind}")


def _sparse_to_numpy(sp: Any) -> np.ndarray:
    values = tensor_to_numpy(sp.values)
    indices = tensor_to_numpy(sp.indices).astype(np.int64)
    dense = np.zeros(int(np.prod(sp.dims)) if sp.dims else 1, dtype=values.dtype)
    if indices.ndim == 2:     # (nnz, rank) coordinates
        indices = np.ravel_multi_index(tuple(indices.T), tuple(sp.dims))
    dense[indices.reshape(-1)] = values.reshape(-1)
    return dense.reshape(tuple(sp.dims))


def _value_info(vi: Any) -> ValueInfo:
    t = vi.type
    which = t.WhichOneof("value")
    if which == "tensor_type":
        shape = None
        if t.tensor_type.HasField("shape"):
            dims: list[int | str | None] = []
            for d in t.tensor_type.shape.dim:
                if d.HasField("dim_value"):
                    dims.append(int(d.dim_value))
                elif d.HasField("dim_param"):
                    dims.append(d.dim_param)
                else:
                    dims.append(None)
            shape = tuple(dims)
        return ValueInfo(vi.name, int(t.tensor_type.elem_type), shape)
    kind = {"sequence_type": "sequence", "optional_type": "optional"}.get(which or "", "other")
    return ValueInfo(vi.name, None, None, kind)


def parse_graph(graph: Any) -> GraphInfo:
    """GraphProto → GraphInfo (attributes parsed, subgraphs parsed recursively, initializers as NumPy)."""
    nodes = [NodeInfo(n.op_type, n.domain, n.name, list(n.input), list(n.output),
                      {a.name: _attribute_value(a) for a in n.attribute}) for n in graph.node]
    inits = {t.name: tensor_to_numpy(t) for t in graph.initializer}
    sparse = {sp.values.name: _sparse_to_numpy(sp) for sp in graph.sparse_initializer}
    return GraphInfo(graph.name, nodes, inits, [_value_info(v) for v in graph.input],
                     [_value_info(v) for v in graph.output], sparse)


def read_model(source: Any) -> Any:
    """A ModelProto from a path, bytes, a file object or a ModelProto (external data resolved for paths)."""
    onnx = _require_onnx()
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return onnx.load_model_from_string(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        return onnx.load(os.fspath(source))
    if hasattr(source, "read"):
        return onnx.load_model_from_string(source.read())
    raise TypeError(f"onnx.load: expected a path, bytes, a file object or an onnx.ModelProto, "
                    f"got {type(source).__name__}")


def opset_versions(model: Any) -> dict[str, int]:
    """Domain → opset version the model imports ('' is the default ai.onnx domain)."""
    out = {}
    for imp in model.opset_import:
        domain = "" if imp.domain == "ai.onnx" else imp.domain
        out[domain] = int(imp.version)
    return out

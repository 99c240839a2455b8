"""OnnxModel: an ONNX graph evaluated node by node into one lazy lazytensor graph.

`model = lt.onnx.load(path)`; `outputs = model(input_name=array, ...)` returns a dict of output
name → Tensor (lazy until read). Control-flow subgraphs (If/Loop/Scan) run through the same
evaluator with the enclosing scope visible.
"""
from __future__ import annotations

from collections import ChainMap
from typing import Any, Mapping

import numpy as np

from lazytensor import dtypes
from lazytensor.onnx import ops_all  # noqa: F401  (registers every op family)
from lazytensor.onnx.loader import (ONNX_DTYPE_NAMES, GraphInfo, UnsupportedOnnx, onnx_dtype, opset_versions,
                                    parse_graph, read_model)
from lazytensor.onnx.ops import OpContext, Value, find_handler
from lazytensor.onnx.ops_lowprecision import HOLDERS, NARROW_AWARE_OPS, Narrow, from_numpy, widen
from lazytensor.tensor import Device, Tensor


def to_tensor(value: Any, device: str) -> Value:
    """A model value from user/initializer data: Tensor, list (sequence) or None pass through."""
    if value is None or isinstance(value, (Tensor, Narrow)):
        return value
    if isinstance(value, list):
        return [to_tensor(v, device) for v in value]
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind in "SU":
        raise UnsupportedOnnx("string tensors are not supported by lazytensor")
    narrow = from_numpy(arr, device)      # float8 / float4 / int4 / int2 (ml_dtypes arrays)
    if narrow is not None:
        return narrow
    if arr.dtype.name == "bfloat16":
        return Tensor(arr.astype(np.float32), dtype=dtypes.bfloat16, device=device)
    if arr.dtype.kind == "V" or arr.dtype.name not in dtypes.BY_NAME and arr.dtype.kind != "b":
        raise UnsupportedOnnx(f"arrays of dtype {arr.dtype} are not supported by lazytensor")
    return Tensor(arr, device=device)


class OnnxModel:
    """A loaded ONNX model. Call it with the graph inputs by name (NumPy arrays or Tensors)."""

    def __init__(self, proto: Any, device: str | None = None) -> None:
        self.proto = proto
        self.device = device or Device.DEFAULT
        self.opsets = opset_versions(proto)
        self.graph: GraphInfo = parse_graph(proto.graph)
        self._constants: dict[str, Value] = {}
        init_names = set(self.graph.initializers) | set(self.graph.sparse_initializers)
        self.input_names = [v.name for v in self.graph.inputs if v.name not in init_names]
        self.output_names = [v.name for v in self.graph.outputs]
        # declared ONNX element type per output; float8/int4-like outputs come back in a wider holder dtype
        self.output_types = {v.name: v.elem_type for v in self.graph.outputs}

    def __repr__(self) -> str:
        return (f"OnnxModel(inputs={self.input_names}, outputs={self.output_names}, "
                f"opset={self.opsets.get('', '?')}, nodes={len(self.graph.nodes)})")

    def __call__(self, *args: Any, **inputs: Any) -> dict[str, Value]:
        """Evaluate the graph lazily: inputs by name (or position) → {output name: Tensor}."""
        if len(args) > len(self.input_names):
            raise TypeError(f"onnx model takes {len(self.input_names)} inputs {self.input_names}, "
                            f"got {len(args)} positional")
        feeds = dict(zip(self.input_names, args))
        feeds.update(inputs)
        unknown = set(feeds) - set(self.input_names) - set(self.graph.initializers)
        if unknown:
            raise TypeError(f"onnx model got unknown inputs {sorted(unknown)}; it takes {self.input_names}")
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise TypeError(f"onnx model is missing inputs {missing} (it takes {self.input_names})")
        env: dict[str, Value] = {}
        for name, arr in {**self.graph.initializers, **self.graph.sparse_initializers}.items():
            if name not in self._constants:
                self._constants[name] = to_tensor(arr, self.device)
            env[name] = self._constants[name]
        for info in self.graph.inputs:
            if info.name in feeds:
                env[info.name] = self._check_input(info, to_tensor(feeds[info.name], self.device))
        outputs = self.run_graph(self.graph, env)
        return dict(zip(self.output_names, [widen(v) for v in outputs]))

    def example_inputs(self, seed: int = 0, dims: Mapping[str, int] | None = None,
                       values: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Seeded random NumPy inputs matching the declared input types.

        Symbolic dims take their size from `dims` (by dim name) or 1; `values` overrides whole inputs.
        Floats are uniform in [0, 1), integers in [0, 10), bools random."""
        rng = np.random.default_rng(seed)
        dims = dims or {}
        values = values or {}
        out: dict[str, np.ndarray] = {}
        for info in self.graph.inputs:
            if info.name not in self.input_names:
                continue
            if info.name in values:
                out[info.name] = np.asarray(values[info.name])
                continue
            dt = onnx_dtype(info.elem_type or 1, f"input {info.name!r}")
            shape = tuple(d if isinstance(d, int) and d > 0 else dims.get(str(d), 1) for d in (info.shape or ()))
            if dt.is_float:
                arr = rng.random(shape).astype(np.float32 if dt is dtypes.bfloat16 else dt.np)
            elif dt.is_bool:
                arr = rng.random(shape) < 0.5
            else:
                arr = rng.integers(0, 10, size=shape).astype(dt.np)
            out[info.name] = arr
        return out

    def _check_input(self, info: Any, value: Value) -> Value:
        if isinstance(value, Narrow) or isinstance(value, Tensor) and info.elem_type in HOLDERS:
            return self._check_narrow_input(info, value)
        if isinstance(value, Tensor) and info.elem_type:
            want = onnx_dtype(info.elem_type, f"input {info.name!r}")
            if value.dtype is not want:
                raise TypeError(f"onnx model input {info.name!r} must have dtype {want.name}, "
                                f"got {value.dtype.name}")
            if info.shape is not None:
                # a dim given as a positive number is fixed; names, '?', 0 and -1 are dynamic
                if len(info.shape) != value.ndim or any(isinstance(d, int) and d > 0 and d != s
                                                         for d, s in zip(info.shape, value.shape)):
                    raise ValueError(f"onnx model input {info.name!r} expects shape {list(info.shape)}, "
                                     f"got {list(value.shape)}")
        return value

    def _check_narrow_input(self, info: Any, value: Value) -> Narrow:
        """An input of a float8/float4/int4/int2 type: an ml_dtypes array, or a Tensor of the holder dtype."""
        code = info.elem_type
        if isinstance(value, Tensor):
            if value.dtype is not HOLDERS[code]:
                raise TypeError(f"onnx model input {info.name!r} has ONNX type {ONNX_DTYPE_NAMES[code]}: pass an "
                                f"ml_dtypes array or a {HOLDERS[code].name} Tensor of its values, "
                                f"got {value.dtype.name}")
            return Narrow(value, code)
        if code and value.code != code:
            raise TypeError(f"onnx model input {info.name!r} must have ONNX type {ONNX_DTYPE_NAMES[code]}, "
                            f"got {value.type_name}")
        return value

    def run_graph(self, graph: GraphInfo, scope: Mapping[str, Value], inputs: list[Value] | None = None
                  ) -> list[Value]:
        """Evaluate graph's nodes in order; `inputs` bind the graph's declared inputs (subgraphs)."""
        env: ChainMap[str, Value] = ChainMap({}, scope) if not isinstance(scope, dict) or inputs is not None \
            else ChainMap(scope)
        if inputs is not None:
            for info, value in zip(graph.inputs, inputs):
                env[info.name] = value
            for name, arr in graph.initializers.items():
                env[name] = to_tensor(arr, self.device)
        for node in graph.nodes:
            domain = "" if node.domain in ("", "ai.onnx") else node.domain
            opset = self.opsets.get(domain, self.opsets.get("", 1))
            ctx = OpContext(node, opset, self.device, self._subgraph_runner(env), self.opsets)
            args: list[Value] = []
            for name in node.inputs:
                if name == "":
                    args.append(None)
                elif name in env:
                    args.append(env[name])
                else:
                    raise KeyError(f"ONNX op {ctx.where()}: input {name!r} is not produced by any earlier "
                                   f"node, initializer or graph input")
            handler = find_handler(node, opset)
            if node.op_type not in NARROW_AWARE_OPS:
                args = [widen(a) for a in args]
            results = handler(ctx, args)
            if not isinstance(results, tuple):     # a tuple lists several outputs; a list is a sequence value
                results = (results,)
            for name, value in zip(node.outputs, results):
                if name:
                    env[name] = value
        missing = [o.name for o in graph.outputs if o.name not in env]
        if missing:
            raise KeyError(f"onnx graph {graph.name!r}: outputs {missing} are never produced")
        return [env[o.name] for o in graph.outputs]

    def _subgraph_runner(self, env: ChainMap):
        def run(graph: GraphInfo, inputs: list[Value]) -> list[Value]:
            return self.run_graph(graph, env, inputs)
        return run


def load(source: Any, device: str | None = None) -> OnnxModel:
    """Load an ONNX model from a path, bytes, file object or onnx.ModelProto."""
    return OnnxModel(read_model(source), device)

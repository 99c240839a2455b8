"""Export a lazytensor function or module to ONNX: `lt.onnx.export(fn, example_inputs, path)`.

The function is traced by running it once on the example inputs: the lazy graph of its outputs is
the model. Export then walks that graph (explicit stacks, no recursion) and writes ONNX nodes:

1. identity ops (DETACH, CONTIGUOUS, COPY) are stripped;
2. recognizers replace known compositions by one standard op: a broadcast multiply summed over its
   last axis becomes MatMul, and composite functions (exp, erf, tanh, sigmoid, relu, gelu, log,
   softmax, log_softmax) are recognized exactly by rebuilding them on the candidate input — the
   graph is hash-consed, so `x.exp().node is node` proves the node is exp(x);
3. everything else is written primitive by primitive (ADD → Add, REDUCE → ReduceSum/ReduceMax/
   ReduceProd, RESHAPE → Reshape, PERMUTE → Transpose, WINDOW → Gather + Transpose, ...).
   nn layers (conv2d, max_pool2d, avg_pool2d, layer_norm) are found the same way: their parameters
   are read off the graph (window sizes/steps, pads, weight shapes, eps), then nn.functional rebuilds
   the layer on the candidate inputs and only an identical node counts (Conv, MaxPool, AveragePool,
   LayerNormalization); anything else (ceil_mode, divisor_override, ...) stays primitive-level
   (sliding-window Gather, Mul, ReduceSum/ReduceMax).

Inputs become graph inputs with the example inputs' shapes and dtypes; every other buffer the
outputs depend on (parameters, captured tensors) becomes an initializer. Only the `onnx` package
is used, to build the protobuf.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lazytensor import dtypes
from lazytensor import graph as g
from lazytensor.autograd import GradMode
from lazytensor.dtypes import DType
from lazytensor.graph import Node, toposort
from lazytensor.nn.conv import direct_layout
from lazytensor.onnx.loader import DTYPE_TO_ONNX, _require_onnx
from lazytensor.ops import Op
from lazytensor.tensor import Tensor

BASE_OPSET = 18            # ReduceMax/ReduceProd take axes as an input from 18 on
IDENTITY_OPS = (Op.DETACH, Op.CONTIGUOUS, Op.COPY)


class UnsupportedExport(NotImplementedError):
    """A graph node that lt.onnx.export cannot write as ONNX (the message names the op)."""


# ---- recognizers for composite functions ----------------------------------------------------


@dataclass
class Template:
    """A composite function recognized by rebuilding it: `build(x)` must reproduce the node exactly.

    `path` leads from the function's root node to its input (src indices, with the op expected at
    each step), found once per dtype on a probe buffer."""
    onnx_op: str
    build: Callable[[Tensor], Tensor]
    attrs: dict[str, Any]
    since: int = BASE_OPSET


TEMPLATES = [   # bigger compositions first: gelu contains erf, sigmoid contains exp
    Template("Gelu", lambda x: x.gelu(), {}, since=20),
    Template("Softmax", lambda x: x.softmax(-1), {"axis": -1}),
    Template("LogSoftmax", lambda x: x.log_softmax(-1), {"axis": -1}),
    Template("Sigmoid", lambda x: x.sigmoid(), {}),
    Template("Tanh", lambda x: x.tanh(), {}),
    Template("Erf", lambda x: x.erf(), {}),
    Template("Exp", lambda x: x.exp(), {}),
    Template("Log", lambda x: x.log(), {}),
    Template("Relu", lambda x: x.relu(), {}),
]


@contextlib.contextmanager
def _recording_without_detach():
    """Grad mode on, so rebuilt compositions carry no DETACH nodes (the traced graph is stripped of them)."""
    previous = GradMode.enabled
    GradMode.enabled = True
    try:
        yield
    finally:
        GradMode.enabled = previous


def _path_to(root: Node, leaf: Node) -> list[tuple[int, Op]] | None:
    """The src indices (and the op found at each step) from root down to leaf, breadth first."""
    parents: dict[int, tuple[Node, int]] = {}
    frontier = [root]
    seen = {id(root)}
    while frontier:
        nxt = []
        for node in frontier:
            for i, s in enumerate(node.srcs):
                if id(s) in seen:
                    continue
                seen.add(id(s))
                parents[id(s)] = (node, i)
                if s is leaf:
                    steps = []
                    cur = s
                    while cur is not root:
                        parent, idx = parents[id(cur)]
                        steps.append((idx, parent.op))
                        cur = parent
                    return steps[::-1]
                nxt.append(s)
        frontier = nxt
    return None


class Recognizer:
    """Finds nodes that are exactly template(x) for some node x of the graph."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.paths: dict[tuple[str, DType], list[tuple[int, Op]] | None] = {}

    def _path(self, template: Template, dtype: DType) -> list[tuple[int, Op]] | None:
        key = (template.onnx_op, dtype)
        if key not in self.paths:
            with _recording_without_detach():
                probe = Tensor(np.zeros((2, 3), dtype=np.float32), device=self.device).to(dtype).realize()
                self.paths[key] = _path_to(template.build(probe).node, probe.node)
        return self.paths[key]

    def match(self, node: Node) -> tuple[Template, Node] | None:
        """(template, x) when node is template.build(x), else None."""
        if not node.dtype.is_float or not node.shape:
            return None
        for template in TEMPLATES:
            path = self._path(template, node.dtype)
            if not path or path[0][1] is not node.op:
                continue
            cur = node
            for idx, op in path:
                if cur.op is not op or idx >= len(cur.srcs):
                    cur = None
                    break
                cur = cur.srcs[idx]
            if cur is None or cur.shape != node.shape or cur.dtype != node.dtype:
                continue
            with _recording_without_detach():
                rebuilt = template.build(Tensor._from_node(cur, self.device)).node
            if rebuilt is node:
                return template, cur
        return None


@dataclass
class MatMulMatch:
    """REDUCE(ADD, last axis) of [CAST] MUL(expand(left), expand(right)): left (..., M, 1, K),
    right (..., 1, N, K); `acc` is the dtype the products are summed in."""
    left: Node
    right: Node
    acc: DType


def _unexpand(node: Node) -> Node:
    return node.srcs[0] if node.op is Op.EXPAND else node


def match_matmul(node: Node) -> MatMulMatch | None:
    """The matmul pattern lazytensor's `@` builds (see tensor_linalg._matmul), or None."""
    if node.op is not Op.REDUCE or node.arg[0] is not Op.ADD or not node.dtype.is_float:
        return None
    rank = len(node.shape)
    if rank < 3 or node.arg[1] != (rank - 1,):
        return None
    prod = node.srcs[0]
    if prod.op is Op.CAST and prod.srcs[0].dtype.is_float:
        prod = prod.srcs[0]
    if prod.op is not Op.MUL:
        return None
    a, b = (_unexpand(s) for s in prod.srcs)
    if a.shape[-2] == 1 and b.shape[-3] == 1:
        return MatMulMatch(a, b, node.dtype)
    if b.shape[-2] == 1 and a.shape[-3] == 1:
        return MatMulMatch(b, a, node.dtype)
    return None


# ---- recognizers for nn layers: convolution, pooling, layer norm ------------------------------


@dataclass
class LayerMatch:
    """A node proven to be an nn layer: ONNX `onnx_op` over `inputs` (None = an optional input left out,
    except a LayerNormalization scale, which ONNX requires: `ones_scale` gives its shape then)."""
    onnx_op: str
    inputs: tuple[Node | None, ...]
    attrs: dict[str, Any]
    since: int = BASE_OPSET
    ones_scale: tuple[int, ...] | None = None
    reshape_to: tuple[int, ...] | None = None


def _strip_above(root: Node, leaves: Sequence[Node]) -> Node:
    """root's graph without identity ops, not walking into leaves (already identity-free)."""
    stops = {id(leaf) for leaf in leaves}
    mapping: dict[int, Node] = {}
    for node in toposort([root], stop=lambda n: id(n) in stops):
        if id(node) in stops:
            mapping[id(node)] = node
        elif node.op in IDENTITY_OPS:
            mapping[id(node)] = mapping[id(node.srcs[0])]
        else:
            mapping[id(node)] = g.rebuild(node, tuple(mapping[id(s)] for s in node.srcs))
    return mapping[id(root)]


def _rebuilds(node: Node, build: Callable[[], Tensor], leaves: Sequence[Node]) -> bool:
    """True when build() (run on tensors of `leaves`) reproduces exactly node; a build that raises is no match."""
    with _recording_without_detach():
        try:
            built = build().node
        except (RuntimeError, ValueError, TypeError):
            return False
    return built is node or _strip_above(built, leaves) is node


def _unbroadcast(node: Node) -> Node:
    """The tensor under EXPAND and RESHAPE views (how a parameter is broadcast against an activation)."""
    if node.op is Op.EXPAND:
        node = node.srcs[0]
    if node.op is Op.RESHAPE:
        node = node.srcs[0]
    return node


def _window_pair(node: Node, limit: int) -> tuple[Node, Node] | None:
    """The nearest (outer, inner) WINDOW pair below node that slides over dims 2 and 3 of a 4-D tensor."""
    frontier, seen = [node], {id(node)}
    while frontier and len(seen) < limit:
        nxt = []
        for cur in frontier:
            if cur.op is Op.WINDOW and cur.arg[0] == 3 and cur.srcs[0].op is Op.WINDOW \
                    and cur.srcs[0].arg[0] == 2 and len(cur.srcs[0].srcs[0].shape) == 4:
                return cur, cur.srcs[0]
            for src in cur.srcs:
                if id(src) not in seen:
                    seen.add(id(src))
                    nxt.append(src)
        frontier = nxt
    return None


def _window_geometry(outer: Node, inner: Node) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(kernel, stride, dilation) of a WINDOW pair over dims 2, 3."""
    (_, k0, s0, d0), (_, k1, s1, d1) = inner.arg, outer.arg
    return (k0, k1), (s0, s1), (d0, d1)


def _conv_attrs(kernel, stride, dilation, pads: Sequence[tuple[int, int]], groups: int) -> dict[str, Any]:
    return {"kernel_shape": list(kernel), "strides": list(stride), "dilations": list(dilation),
            "pads": [b for b, _ in pads] + [a for _, a in pads], "group": groups}


class LayerRecognizer:
    """Finds conv2d / max_pool2d / avg_pool2d / layer_norm results by rebuilding them with nn.functional."""

    def __init__(self, device: str) -> None:
        self.device = device

    def tensor(self, node: Node, requires_grad: bool = False) -> Tensor:
        return Tensor._from_node(node, self.device, requires_grad=requires_grad)

    def match(self, node: Node) -> LayerMatch | None:
        if not node.dtype.is_float or not node.shape:
            return None
        if node.op is Op.RESHAPE and len(node.shape) != 4 and node.srcs[0].op is Op.REDUCE:
            return self.reshaped_layer(node)
        if len(node.shape) == 4 and node.op in (Op.ADD, Op.RESHAPE):
            found = self.conv2d(node)
            if found is None and node.op is Op.RESHAPE:
                found = self.max_pool2d(node)
            if found is not None:
                return found
        if len(node.shape) == 4 and node.op is Op.FDIV:
            found = self.avg_pool2d(node)
            if found is not None:
                return found
        if node.op in (Op.ADD, Op.MUL):
            return self.layer_norm(node)
        return None

    def reshaped_layer(self, node: Node) -> LayerMatch | None:
        """A conv/max-pool whose 4-D output was reshaped again (e.g. flatten(1)): reshapes merge, so the
        layer's own output node exists only as the 4-D reshape of the same REDUCE, which we build here."""
        reduced = node.srcs[0]
        shapes = []
        if len(reduced.shape) == 6 and reduced.shape[4:] == (1, 1):           # pooling: (N, C, OH, OW, 1, 1)
            shapes.append(tuple(reduced.shape[:4]))
        if len(reduced.shape) == 8 and reduced.shape[5:] == (1, 1, 1):        # conv: (N, G, C/G, OH, OW, 1, 1, 1)
            n, groups, per_group, oh, ow = reduced.shape[:5]
            shapes.append((n, groups * per_group, oh, ow))
        for shape in shapes:
            layer_out = g.movement(Op.RESHAPE, reduced, shape)
            found = self.conv2d(layer_out) or self.max_pool2d(layer_out)
            if found is not None:
                found.reshape_to = tuple(node.shape)
                return found
        return None

    # -- convolution: RESHAPE(REDUCE(MUL(windows of padded x, weight))) [+ bias] --
    def conv2d(self, node: Node) -> LayerMatch | None:
        from lazytensor.nn import functional as F
        options = [(node, None)]
        if node.op is Op.ADD:
            options = [(node.srcs[i], _unbroadcast(node.srcs[1 - i])) for i in (0, 1)]
        for core, bias in options:
            if core.op is not Op.RESHAPE or core.srcs[0].op is not Op.REDUCE:
                continue
            prod = core.srcs[0].srcs[0]
            if prod.op is not Op.MUL or (bias is not None and bias.shape != (node.shape[1],)):
                continue
            pair = _window_pair(prod, limit=12)
            if pair is None:
                continue
            kernel, stride, dilation = _window_geometry(*pair)
            weights = [_unbroadcast(s) for s in prod.srcs if len(_unbroadcast(s).shape) == 4]
            weights = [w for w in weights if tuple(w.shape[2:]) == kernel]
            padded = pair[1].srcs[0]
            inputs: list[tuple[Node, Any, list[tuple[int, int]]]] = [(padded, 0, [(0, 0), (0, 0)])]
            if padded.op is Op.PAD:
                pairs = list(padded.arg[2:])
                if all(b == a for b, a in pairs):
                    inputs.insert(0, (padded.srcs[0], tuple(b for b, _ in pairs), pairs))
                else:
                    inputs.insert(0, (padded.srcs[0], "same", pairs))
            for weight in weights:
                groups = padded.shape[1] // weight.shape[1] if weight.shape[1] else 0
                for x, padding, pads in inputs:
                    leaves = [n for n in (x, weight, bias) if n is not None]
                    def build(x=x, weight=weight, padding=padding, groups=groups) -> Tensor:
                        b = None if bias is None else self.tensor(bias)
                        return F.conv2d(self.tensor(x), self.tensor(weight), b, stride, padding, dilation, groups)
                    if _rebuilds(node, build, leaves):
                        return LayerMatch("Conv", (x, weight, bias),
                                          _conv_attrs(kernel, stride, dilation, pads, groups))
        return None

    def _pool_inputs(self, node: Node, limit: int) -> tuple[Any, list[Node]] | None:
        """((kernel, stride, dilation, outs), candidate inputs, deepest first) of the pooling windows below node."""
        pair = _window_pair(node, limit)
        if pair is None:
            return None
        kernel, stride, dilation = _window_geometry(*pair)
        padded = pair[1].srcs[0]
        candidates, frontier, seen = [], [padded], {id(padded)}
        while frontier and len(seen) < 8:
            cur = frontier.pop(0)
            if len(cur.shape) == 4 and cur.dtype == node.dtype and cur.shape[:2] == padded.shape[:2] \
                    and cur.op is not Op.CONST:
                candidates.append(cur)
            for src in cur.srcs:
                if id(src) not in seen:
                    seen.add(id(src))
                    frontier.append(src)
        outs = (pair[0].shape[2], pair[0].shape[3])
        return (kernel, stride, dilation, outs), candidates[::-1]

    def _pool_matches(self, node: Node, limit: int, max_pad: Callable[[int, int], int],
                      build: Callable[[Node, tuple[int, int], tuple, tuple, tuple, Any], Tensor],
                      variants: Sequence[Any]) -> tuple[Node, tuple, tuple, tuple, tuple, Any] | None:
        found = self._pool_inputs(node, limit)
        if found is None:
            return None
        (kernel, stride, dilation, outs), candidates = found
        for x in candidates:
            pad_options = []
            for axis in range(2):
                size, k, s, d = x.shape[2 + axis], kernel[axis], stride[axis], dilation[axis]
                pad_options.append([p for p in range(max_pad(k, d) + 1)
                                    if (size + 2 * p - d * (k - 1) - 1) // s + 1 == outs[axis]])
            for p0 in pad_options[0]:
                for p1 in pad_options[1]:
                    for variant in variants:
                        def rebuild(x=x, p0=p0, p1=p1, variant=variant) -> Tensor:
                            return build(x, (p0, p1), kernel, stride, dilation, variant)
                        if _rebuilds(node, rebuild, [x]):
                            return x, (p0, p1), kernel, stride, dilation, variant
        return None

    def max_pool2d(self, node: Node) -> LayerMatch | None:
        from lazytensor.nn import functional as F
        if node.srcs[0].op is not Op.REDUCE:
            return None
        def build(x, pads, kernel, stride, dilation, requires_grad) -> Tensor:
            return F.max_pool2d(self.tensor(x, requires_grad), kernel, stride, pads, dilation)
        found = self._pool_matches(node, 48, lambda k, d: (d * (k - 1) + 1) // 2, build, (False, True))
        if found is None:
            return None
        x, pads, kernel, stride, dilation, _ = found
        attrs = _conv_attrs(kernel, stride, dilation, [(p, p) for p in pads], 1)
        del attrs["group"]
        return LayerMatch("MaxPool", (x,), attrs)

    def avg_pool2d(self, node: Node) -> LayerMatch | None:
        from lazytensor.nn import functional as F
        def build(x, pads, kernel, stride, dilation, include_pad) -> Tensor:
            return F.avg_pool2d(self.tensor(x), kernel, stride, pads, count_include_pad=include_pad)
        found = self._pool_matches(node, 24, lambda k, d: k // 2, build, (True, False))
        if found is None:
            return None
        x, pads, kernel, stride, dilation, include_pad = found
        if dilation != (1, 1):
            return None
        attrs = _conv_attrs(kernel, stride, dilation, [(p, p) for p in pads], 1)
        del attrs["group"], attrs["dilations"]
        attrs["count_include_pad"] = int(include_pad)
        return LayerMatch("AveragePool", (x,), attrs)

    # -- layer norm: centered · rsqrt(mean(centered²) + eps) [· weight] [+ bias] --
    def layer_norm(self, node: Node) -> LayerMatch | None:
        from lazytensor.nn import functional as F
        options: list[tuple[Node, Node | None, Node | None]] = [(node, None, None)]
        if node.op is Op.ADD:
            for i in (0, 1):
                inner, bias = node.srcs[i], _unbroadcast(node.srcs[1 - i])
                options.append((inner, None, bias))
                if inner.op is Op.MUL:
                    options += [(inner.srcs[j], _unbroadcast(inner.srcs[1 - j]), bias) for j in (0, 1)]
        elif node.op is Op.MUL:
            options += [(node.srcs[j], _unbroadcast(node.srcs[1 - j]), None) for j in (0, 1)]
        for core, weight, bias in options:
            parts = self._layer_norm_core(core)
            if parts is None:
                continue
            x, axes, eps = parts
            shape = tuple(x.shape[a] for a in axes)
            if any(p is not None and tuple(p.shape) != shape for p in (weight, bias)):
                continue
            def build(x=x, weight=weight, bias=bias, eps=eps, shape=shape) -> Tensor:
                w = None if weight is None else self.tensor(weight)
                b = None if bias is None else self.tensor(bias)
                return F.layer_norm(self.tensor(x), shape, w, b, eps)
            leaves = [n for n in (x, weight, bias) if n is not None]
            if _rebuilds(node, build, leaves):
                return LayerMatch("LayerNormalization", (x, weight, bias),
                                  {"axis": axes[0] - len(x.shape), "epsilon": float(eps)}, since=17,
                                  ones_scale=shape if weight is None else None)
        return None

    @staticmethod
    def _layer_norm_core(core: Node) -> tuple[Node, tuple[int, ...], float] | None:
        """(x, normalized axes, eps) when core looks like MUL(x - mean, EXPAND(RECIPROCAL(SQRT(var + eps))))."""
        if core.op is not Op.MUL:
            return None
        for i in (0, 1):
            centered, scale = core.srcs[i], core.srcs[1 - i]
            if scale.op is Op.EXPAND:
                scale = scale.srcs[0]
            if scale.op is not Op.RECIPROCAL or scale.srcs[0].op is not Op.SQRT:
                continue
            shifted = scale.srcs[0].srcs[0]
            if shifted.op is not Op.ADD or centered.op is not Op.ADD:
                continue
            consts = [s for s in shifted.srcs if s.op is Op.CONST]
            mean_like = [s for s in shifted.srcs if s.op is not Op.CONST]
            if len(consts) != 1 or len(mean_like) != 1:
                continue
            reduce = mean_like[0].srcs[0] if mean_like[0].srcs else None
            if reduce is None or reduce.op is not Op.REDUCE:
                continue
            axes = tuple(reduce.arg[1])
            rank = len(core.shape)
            if axes != tuple(range(rank - len(axes), rank)):
                continue
            return centered.srcs[0], axes, consts[0].arg
        return None


# ---- the ONNX graph builder -------------------------------------------------------------------


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    rank = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(1,) * (rank - len(s)) + tuple(s) for s in shapes]):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return ()
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def onnx_type(dtype: DType) -> int:
    """ONNX element type number for our dtype."""
    return DTYPE_TO_ONNX[dtype]


BINARY_ONNX = {Op.ADD: "Add", Op.MUL: "Mul", Op.FDIV: "Div", Op.IDIV: "Div", Op.CMPLT: "Less"}
UNARY_ONNX = {Op.SIN: "Sin", Op.COS: "Cos", Op.SQRT: "Sqrt", Op.RECIPROCAL: "Reciprocal", Op.NEG: "Neg"}
REDUCE_ONNX = {Op.ADD: "ReduceSum", Op.MUL: "ReduceProd", Op.MAX: "ReduceMax"}


class GraphWriter:
    """Accumulates ONNX nodes and initializers for a lazy graph; one ONNX value per graph node."""

    def __init__(self, device: str, inputs: dict[Node, str], names: dict[Node, str]) -> None:
        self.onnx = _require_onnx()
        self.device = device
        self.values: dict[Node, str] = dict(inputs)
        self.leaf_names = names
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.consts: dict[tuple, str] = {}
        self.opset = BASE_OPSET
        self.counter = 0
        self.recognizer = Recognizer(device)
        self.layers = LayerRecognizer(device)
        self.lowered: dict[Node, tuple[str, Any, tuple[Node, ...]]] = {}

    # -- small helpers --
    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}_{self.counter}"

    def emit(self, op: str, inputs: Sequence[str], hint: str = "", **attrs: Any) -> str:
        out = self.fresh(hint or op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], **attrs))
        return out

    def initializer(self, array: np.ndarray, hint: str, dtype: DType | None = None,
                    exact: bool = False) -> str:
        """An initializer holding array (as dtype, default: the array's own); named hint itself if exact."""
        from onnx import numpy_helper
        name = hint if exact else self.fresh(hint)
        if dtype is dtypes.bfloat16:
            raw = np.ascontiguousarray(array, dtype=np.float32).reshape(np.shape(array))
            self.initializers.append(numpy_helper.from_array(raw, name + "_f32"))
            self.nodes.append(self.onnx.helper.make_node("Cast", [name + "_f32"], [name],
                                                         to=onnx_type(dtypes.bfloat16)))
            return name
        contiguous = np.ascontiguousarray(array).reshape(np.shape(array))   # (keeps 0-d arrays 0-d)
        self.initializers.append(numpy_helper.from_array(contiguous, name))
        return name

    def ints(self, values: Sequence[int]) -> str:
        """A shared int64 1-D initializer (shapes, axes, pads)."""
        key = ("ints", tuple(int(v) for v in values))
        if key not in self.consts:
            self.consts[key] = self.initializer(np.array(values, dtype=np.int64).reshape(len(values)), "ints")
        return self.consts[key]

    def scalar(self, value: Any, dtype: DType, rank: int) -> str:
        """A constant of shape (1,)*rank (broadcasts like our CONST against any shape)."""
        key = ("scalar", dtype, g._arg_key(value), rank)
        if key not in self.consts:
            np_dtype = np.float32 if dtype is dtypes.bfloat16 else dtype.np
            array = np.full((1,) * rank, value, dtype=np_dtype)
            self.consts[key] = self.initializer(array, "const", dtype)
        return self.consts[key]

    # -- lowering plan: which ONNX construct stands for each node, and what it reads --
    def plan(self, node: Node) -> tuple[str, Any, tuple[Node, ...]]:
        """(kind, payload, sources read) for node; recognized compositions read only their inputs."""
        if node in self.lowered:
            return self.lowered[node]
        found = match_matmul(node)
        layer = self.layers.match(node) if found is None else None
        if found is not None:
            result: tuple[str, Any, tuple[Node, ...]] = ("matmul", found, (found.left, found.right))
        elif layer is not None:
            result = ("layer", layer, tuple(n for n in layer.inputs if n is not None))
        else:
            recognized = self.recognizer.match(node)
            if recognized is not None:
                result = ("template", recognized[0], (recognized[1],))
            else:
                result = ("primitive", None, node.srcs)
        self.lowered[node] = result
        return result

    def write(self, roots: list[Node]) -> list[str]:
        """Emit every node the roots need (sources first); returns the roots' value names."""
        order: list[Node] = []
        seen: set[int] = set()
        for root in roots:
            stack: list[tuple[Node, bool]] = [(root, False)]
            while stack:
                node, expanded = stack.pop()
                if expanded:
                    order.append(node)
                    continue
                if id(node) in seen:
                    continue
                seen.add(id(node))
                stack.append((node, True))
                if node in self.values:
                    continue
                for src in reversed(self.plan(node)[2]):
                    stack.append((src, False))
        for node in order:
            if node not in self.values:
                self.values[node] = self.lower(node)
        return [self.values[r] for r in roots]

    # -- operands --
    def value(self, node: Node) -> str:
        """The ONNX value holding node at its full shape."""
        if node.op is Op.CONST and node not in self.values:
            small = self.scalar(node.arg, node.dtype, len(node.shape))
            self.values[node] = self.emit("Expand", [small, self.ints(node.shape)], "const")
        return self.values[node]

    def operands(self, node: Node) -> list[str]:
        """Values for an elementwise node's sources, leaving broadcasts to ONNX where that is exact."""
        small_shapes, small_names = [], []
        for src in node.srcs:
            if src.op is Op.CONST:
                small_shapes.append((1,) * len(src.shape))
                small_names.append(self.scalar(src.arg, src.dtype, len(src.shape)))
            elif src.op is Op.EXPAND and src.srcs[0] in self.values:
                small_shapes.append(src.srcs[0].shape)
                small_names.append(self.values[src.srcs[0]])
            else:
                small_shapes.append(src.shape)
                small_names.append(self.value(src))
        if _broadcast(*small_shapes) == tuple(node.shape):
            return small_names
        return [self.value(s) for s in node.srcs]

    # -- per-node lowering --
    def lower(self, node: Node) -> str:
        kind, payload, _ = self.plan(node)
        if kind == "matmul":
            return self.lower_matmul(node, payload)
        if kind == "layer":
            return self.lower_layer(payload)
        if kind == "template":
            self.opset = max(self.opset, payload.since)
            return self.emit(payload.onnx_op, [self.value(self.plan(node)[2][0])], payload.onnx_op.lower(),
                             **payload.attrs)
        return self.lower_primitive(node)

    def lower_layer(self, m: LayerMatch) -> str:
        """Conv / MaxPool / AveragePool / LayerNormalization over the layer's inputs."""
        self.opset = max(self.opset, m.since)
        names = []
        for i, src in enumerate(m.inputs):
            if src is not None:
                names.append(self.value(src))
            elif i == 1 and m.ones_scale is not None:
                names.append(self.initializer(np.ones(m.ones_scale, np.float32), "ones", m.inputs[0].dtype))
            else:
                names.append("")
        while names and names[-1] == "":
            names.pop()
        out = self.emit(m.onnx_op, names, m.onnx_op.lower(), **m.attrs)
        if m.reshape_to is not None:
            out = self.emit("Reshape", [out, self.ints(m.reshape_to)])
        return out

    def lower_matmul(self, node: Node, m: MatMulMatch) -> str:
        left = self.emit("Squeeze", [self.value(m.left), self.ints([-2])])            # (..., M, K)
        right = self.emit("Squeeze", [self.value(m.right), self.ints([-3])])          # (..., N, K)
        rank = len(m.right.shape) - 1
        perm = list(range(rank - 2)) + [rank - 1, rank - 2]
        right = self.emit("Transpose", [right], perm=perm)                            # (..., K, N)
        if m.left.dtype != m.acc:
            left = self.emit("Cast", [left], to=onnx_type(m.acc))
            right = self.emit("Cast", [right], to=onnx_type(m.acc))
        out = self.emit("MatMul", [left, right])
        return self.emit("Unsqueeze", [out, self.ints([-1])], "matmul")

    def lower_primitive(self, node: Node) -> str:
        op = node.op
        src = node.srcs[0] if node.srcs else None
        if op is Op.BUFFER:
            array = Tensor._from_node(node, self.device).numpy()
            if node in self.leaf_names:
                return self.initializer(array, self.leaf_names[node], node.dtype, exact=True)
            return self.initializer(array, "buffer", node.dtype)
        if op is Op.CONST:
            return self.value(node)
        if op is Op.IOTA:
            rangeable = (dtypes.int32, dtypes.int64, dtypes.float32)
            rng_dtype = node.dtype if node.dtype in rangeable else dtypes.int64
            out = self.emit("Range", [self.scalar(0, rng_dtype, 0), self.scalar(node.shape[0], rng_dtype, 0),
                                      self.scalar(1, rng_dtype, 0)], "iota")
            if rng_dtype != node.dtype:
                out = self.emit("Cast", [out], to=onnx_type(node.dtype))
            return out
        if op in UNARY_ONNX:
            return self.emit(UNARY_ONNX[op], [self.value(src)])
        if op is Op.EXP2:
            return self.emit("Pow", [self.scalar(2.0, node.dtype, len(node.shape)), self.value(src)], "exp2")
        if op is Op.LOG2:
            log = self.emit("Log", [self.value(src)])
            return self.emit("Mul", [log, self.scalar(1 / math.log(2), node.dtype, len(node.shape))], "log2")
        if op is Op.TRUNC:
            x = self.value(src)
            negative = self.emit("Less", [x, self.scalar(0, node.dtype, len(node.shape))])
            return self.emit("Where", [negative, self.emit("Ceil", [x]), self.emit("Floor", [x])], "trunc")
        if op is Op.CAST:
            return self.emit("Cast", [self.value(src)], to=onnx_type(node.dtype))
        if op is Op.BITCAST:
            self.opset = max(self.opset, 26)
            return self.emit("BitCast", [self.value(src)], to=onnx_type(node.dtype))
        if op in BINARY_ONNX:
            return self.emit(BINARY_ONNX[op], self.operands(node))
        if op in (Op.MAX, Op.MOD, Op.CMPNE, Op.AND, Op.OR, Op.XOR, Op.SHL, Op.SHR, Op.WHERE):
            return self.lower_logic(node)
        if op is Op.MULADD:   # ONNX has no fused multiply-add: a product rounded, then the sum
            a, b, c = self.operands(node)
            return self.emit("Add", [self.emit("Mul", [a, b], "muladd"), c])
        if op is Op.REDUCE:
            reduce_op, axes = node.arg
            if src.dtype.is_bool:
                raise UnsupportedExport(f"lt.onnx.export: REDUCE {reduce_op.name} over a bool tensor of "
                                        f"shape "
                                        f"{src.shape} has no ONNX equivalent; cast to uint8 first")
            return self.emit(REDUCE_ONNX[reduce_op], [self.value(src), self.ints(axes)], keepdims=1)
        if op in (Op.RESHAPE, Op.EXPAND):
            return self.emit(op.name.capitalize(), [self.value(src), self.ints(node.shape)])
        if op is Op.PERMUTE:
            return self.emit("Transpose", [self.value(src)], perm=list(node.arg))
        if op is Op.PAD:
            pads = [b for b, _ in node.arg] + [a for _, a in node.arg]
            return self.emit("Pad", [self.value(src), self.ints(pads)], mode="constant")
        if op is Op.SHRINK:
            starts, ends = [s for s, _ in node.arg], [e for _, e in node.arg]
            axes = list(range(len(node.shape)))
            return self.emit("Slice", [self.value(src), self.ints(starts), self.ints(ends), self.ints(axes)],
                             "shrink")
        if op is Op.FLIP:
            axes = list(node.arg)
            lowest = -(2 ** 63)
            minus_ones = self.ints([-1] * len(axes))
            return self.emit("Slice", [self.value(src), minus_ones, self.ints([lowest] * len(axes)),
                                       self.ints(axes), minus_ones], "flip")
        if op is Op.WINDOW:
            return self.lower_window(node)
        if op is Op.INDEX:
            return self.emit("GatherND", [self.value(src), self.stacked_indices(node.srcs[1:])], "index")
        if op is Op.SCATTER:
            reduction = {None: "none", Op.ADD: "add", Op.MUL: "mul", Op.MAX: "max"}[node.arg]
            idx = self.stacked_indices(node.srcs[2:])
            return self.emit("ScatterND", [self.value(src), idx, self.value(node.srcs[1])], "scatter",
                             reduction=reduction)
        raise UnsupportedExport(f"lt.onnx.export: the primitive op {op.name} "
                                f"({node.dtype.name}{list(node.shape)}) has no ONNX lowering")

    def lower_logic(self, node: Node) -> str:
        """MAX, MOD, comparisons, bitwise/logical ops, shifts and WHERE."""
        op, dtype = node.op, node.srcs[-1].dtype
        if op is Op.WHERE:
            return self.emit("Where", self.operands(node))
        if op is Op.CMPNE:
            return self.emit("Not", [self.emit("Equal", self.operands(node))], "cmpne")
        if op is Op.MAX:
            return self.emit("Or" if dtype.is_bool else "Max", self.operands(node))
        if op is Op.MOD:
            return self.emit("Mod", self.operands(node), fmod=1)
        if op in (Op.AND, Op.OR, Op.XOR):
            name = op.name.capitalize()
            return self.emit(name if dtype.is_bool else "Bitwise" + name, self.operands(node))
        # SHL/SHR: ONNX BitShift takes unsigned ints; signed values go through their unsigned bit pattern
        a, b = node.srcs
        direction = "LEFT" if op is Op.SHL else "RIGHT"
        if op is Op.SHR and a.dtype.is_signed:
            raise UnsupportedExport(f"lt.onnx.export: arithmetic SHR on {a.dtype.name} has no ONNX op "
                                    f"(BitShift is logical); shift an unsigned tensor instead")
        unsigned = {1: dtypes.uint8, 2: dtypes.uint16, 4: dtypes.uint32, 8: dtypes.uint64}[a.dtype.itemsize]
        x, amount = self.value(a), self.value(b)
        if a.dtype != unsigned:
            self.opset = max(self.opset, 26)
            x = self.emit("BitCast", [x], to=onnx_type(unsigned))
        if b.dtype != unsigned:
            amount = self.emit("Cast", [amount], to=onnx_type(unsigned))
        out = self.emit("BitShift", [x, amount], direction=direction)
        if a.dtype != unsigned:
            out = self.emit("BitCast", [out], to=onnx_type(a.dtype))
        return out

    def lower_window(self, node: Node) -> str:
        """WINDOW(dim, size, step, dilation) as Gather of the (count, size) tap positions + Transpose."""
        dim, size, step, dilation = node.arg
        count = node.shape[dim]
        positions = np.arange(count)[:, None] * step + np.arange(size)[None, :] * dilation
        key = ("window", dim, size, step, dilation, count)
        if key not in self.consts:
            self.consts[key] = self.initializer(positions.astype(np.int64), "window_taps")
        gathered = self.emit("Gather", [self.value(node.srcs[0]), self.consts[key]], axis=dim)
        rank = len(node.shape)          # gathered: (..., count, size, rest...) → taps to the end
        perm = list(range(dim + 1)) + list(range(dim + 2, rank)) + [dim + 1]
        return self.emit("Transpose", [gathered], "window", perm=perm)

    def stacked_indices(self, idxs: Sequence[Node]) -> str:
        """(..., d) int64 coordinates for GatherND/ScatterND from d index tensors of equal shape."""
        parts = []
        for idx in idxs:
            value = self.value(idx)
            if idx.dtype != dtypes.int64:
                value = self.emit("Cast", [value], to=onnx_type(dtypes.int64))
            parts.append(self.emit("Unsqueeze", [value, self.ints([-1])]))
        if len(parts) == 1:
            return parts[0]
        return self.emit("Concat", parts, "indices", axis=-1)


# ---- tracing ----------------------------------------------------------------------------------


def strip_identities(roots: list[Node]) -> list[Node]:
    """The roots' graph without DETACH/CONTIGUOUS/COPY (identities in ONNX), rebuilt bottom-up."""
    mapping: dict[Node, Node] = {}
    for node in toposort(roots):
        if node.op in IDENTITY_OPS:
            mapping[node] = mapping[node.srcs[0]]
        else:
            mapping[node] = g.rebuild(node, tuple(mapping[s] for s in node.srcs))
    return [mapping[r] for r in roots]


def _as_input(value: Any, where: str) -> Tensor:
    """A fresh buffer tensor for an example input (so inputs are distinct leaves of the graph)."""
    if isinstance(value, Tensor):
        return Tensor(value.numpy(), dtype=value.dtype, device=value.device)
    if isinstance(value, (np.ndarray, list, tuple, int, float, bool, np.generic)):
        return Tensor(np.asarray(value))
    raise TypeError(f"lt.onnx.export: {where} must be a Tensor or array-like, got {type(value).__name__}")


def _flatten_outputs(result: Any) -> tuple[list[Tensor], list[str]]:
    if isinstance(result, Tensor):
        return [result], ["output"]
    if isinstance(result, dict):
        items = list(result.items())
        return [v for _, v in items], [str(k) for k, _ in items]
    if isinstance(result, (list, tuple)):
        return list(result), [f"output_{i}" for i in range(len(result))]
    raise TypeError(f"lt.onnx.export: the function must return a Tensor, a tuple/list or a dict of Tensors, "
                    f"got {type(result).__name__}")


def _input_names(fn: Any, count: int) -> list[str]:
    target = fn.forward if hasattr(fn, "forward") and hasattr(fn, "parameters") else fn
    try:
        params = [p.name for p in inspect.signature(target).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) >= count:
        return params[:count]
    return [f"input_{i}" for i in range(count)]


def export(fn: Any, example_inputs: Any, path: str | os.PathLike | None = None, *,
           input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
           opset: int | None = None) -> Any:
    """Trace fn (a function or nn.Module) on example_inputs and write its graph as an ONNX model.

    example_inputs: one Tensor/array or a tuple of them (fixed shapes and dtypes of the graph inputs).
    Returns the onnx.ModelProto; also saves it to path when one is given. Parameters and other
    captured tensors become initializers named after the module's state_dict where possible.
    """
    onnx = _require_onnx()
    if not isinstance(example_inputs, (tuple, list)):
        example_inputs = (example_inputs,)
    inputs = [_as_input(v, f"example_inputs[{i}]") for i, v in enumerate(example_inputs)]
    names_in = list(input_names) if input_names is not None else _input_names(fn, len(inputs))
    if len(names_in) != len(inputs):
        raise ValueError(f"lt.onnx.export: {len(names_in)} input_names for {len(inputs)} example inputs")

    with direct_layout():   # convolutions traced in the layout the layer recognizer knows
        return _export_traced(onnx, fn, inputs, names_in, path, output_names, opset)


def _export_traced(onnx: Any, fn: Any, inputs: list[Tensor], names_in: list[str],
                   path: str | os.PathLike | None, output_names: Sequence[str] | None,
                   opset: int | None) -> Any:
    """export's body: trace fn on inputs, write the graph, check it and save it."""
    leaf_names: dict[Node, str] = {}
    if hasattr(fn, "state_dict"):
        for name, tensor in fn.state_dict().items():
            tensor.realize()          # lazily initialized parameters become buffers (initializers)
            leaf_names[tensor.node] = name
    outputs, names_out = _flatten_outputs(fn(*inputs))
    if output_names is not None:
        if len(output_names) != len(outputs):
            raise ValueError(f"lt.onnx.export: {len(output_names)} output_names for {len(outputs)} outputs")
        names_out = list(output_names)
    for i, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"lt.onnx.export: output {i} is a {type(out).__name__}, not a Tensor")

    roots = strip_identities([t.node for t in outputs])
    device = outputs[0].device if outputs else inputs[0].device
    writer = GraphWriter(device, {t.node: n for t, n in zip(inputs, names_in)}, leaf_names)
    values = writer.write(roots)
    helper = onnx.helper
    for value, name in zip(values, names_out):
        writer.nodes.append(helper.make_node("Identity", [value], [name]))
    def value_info(t: Tensor, name: str) -> Any:
        return helper.make_tensor_value_info(name, onnx_type(t.dtype), list(t.shape))
    graph_inputs = [value_info(t, n) for t, n in zip(inputs, names_in)]
    graph_outputs = [value_info(t, n) for t, n in zip(outputs, names_out)]
    graph = helper.make_graph(writer.nodes, "lazytensor", graph_inputs, graph_outputs, writer.initializers)
    version = max(writer.opset, opset or 0)
    opset_id = helper.make_opsetid("", version)
    model = helper.make_model(graph, opset_imports=[opset_id], producer_name="lazytensor",
                              ir_version=helper.find_min_ir_version_for([opset_id]))
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model

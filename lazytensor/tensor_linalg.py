"""Linear algebra: matmul (batched, broadcasting, 1-D cases), dot, mm, bmm, outer, einsum.

A matmul is a broadcast multiply and a sum over the shared axis; the scheduler fuses it into
one reduce kernel, with any elementwise epilogue (bias, activation) fused after it.
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Sequence

from lazytensor import capture, dtypes
from lazytensor import graph as g
from lazytensor.autograd import GradMode
from lazytensor.codegen.cpu_target import tile_row_bytes
from lazytensor.codegen.vectorize import VECTOR_DTYPES, vector_lanes
from lazytensor.ops import MOVEMENT, Op

if TYPE_CHECKING:
    from lazytensor.graph import Node
    from lazytensor.tensor import Tensor


def _matmul_error(a: "Tensor", b: "Tensor", op: str) -> ValueError:
    sa, sb = tuple(a.shape), tuple(b.shape)
    msg = f"{op}: shapes {sa} @ {sb} do not line up: inner dimensions {sa[-1]} and " \
          f"{sb[-2] if len(sb) > 1 else sb[0]} differ."
    if len(sa) == 2 and len(sb) == 2:
        hints = []
        if sa[1] == sb[1]:
            hints.append(f"a @ b.T {sa} @ {sb[::-1]}")
        if sa[0] == sb[0]:
            hints.append(f"a.T @ b {sa[::-1]} @ {sb}")
        if hints:
            msg += "\n  Did you mean " + "?  or ".join(hints) + "?"
            return ValueError(msg)
    inner_b = "second-to-last" if len(sb) > 1 else "only"
    msg += (f"\n  Hint: the last dim of the left operand ({sa[-1]}) must equal the {inner_b} dim of the "
            f"right operand ({sb[-2] if len(sb) > 1 else sb[0]}); check the operand order, or transpose "
            f"one of them (.T / .mT).")
    return ValueError(msg)


class LinalgMixin:
    """matmul and friends."""

    def matmul(self: "Tensor", other: "Tensor") -> "Tensor":
        return _matmul(self, other, "matmul")

    def __matmul__(self, other: "Tensor") -> "Tensor":
        return _matmul(self, other, "matmul")

    def __rmatmul__(self, other: "Tensor") -> "Tensor":
        return _matmul(self._as_tensor(other), self, "matmul")

    def mm(self: "Tensor", other: "Tensor") -> "Tensor":
        if self.ndim != 2 or other.ndim != 2:
            raise RuntimeError(f"mm: both arguments must be 2-D, got shapes {tuple(self.shape)} and "
                               f"{tuple(other.shape)}")
        return _matmul(self, other, "mm")

    def bmm(self: "Tensor", other: "Tensor") -> "Tensor":
        if self.ndim != 3 or other.ndim != 3 or self.shape[0] != other.shape[0]:
            raise RuntimeError(f"bmm: expected 3-D tensors with equal batch size, got {tuple(self.shape)} "
                               f"and "
                               f"{tuple(other.shape)}")
        return _matmul(self, other, "bmm")

    def dot(self: "Tensor", other: "Tensor") -> "Tensor":
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"dot: 1D tensors expected, but got {self.ndim}D and {other.ndim}D tensors")
        if self.shape[0] != other.shape[0]:
            raise RuntimeError(f"dot: inconsistent tensor size, expected tensor [{self.shape[0]}] and src "
                               f"[{other.shape[0]}] to have the same number of elements")
        return _matmul(self, other, "dot")

    inner = dot

    def vdot(self: "Tensor", other: "Tensor") -> "Tensor":
        return self.dot(other)

    def mv(self: "Tensor", vec: "Tensor") -> "Tensor":
        return _matmul(self, vec, "mv")

    def outer(self: "Tensor", other: "Tensor") -> "Tensor":
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError("outer: both arguments must be 1-D")
        return self.unsqueeze(1) * other.unsqueeze(0)

    ger = outer

    def addmm(self: "Tensor", mat1: "Tensor", mat2: "Tensor", beta: float = 1, alpha: float = 1) -> "Tensor":
        return self * beta + mat1.mm(mat2) * alpha


PACK_MIN_ROWS = 16
"""Below this many rows of the left operand, packing the right one does not pay."""
LEFT_COPY_MIN_COLUMNS = 128
"""From this many output columns on, a transposed left operand (gᵀ in a weight gradient) is copied
row-major before the matmul: the copy moves m·k values against m·k·n multiply-adds."""
PANEL_BYTES = 64
"""Narrowest packed panel of the right operand: one cache line (16 float32 or 8 float64 columns)."""


def packed_panel_width(dtype: dtypes.DType, columns: int, device: str) -> int:
    """Columns per packed panel for a right operand (of a matmul, or a conv's weight) with `columns`
    output columns: on the CPU, one row of the register tile the codegen's upcast pass builds
    (cpu_target.tile_row_bytes: 32 float32 on AVX-512, 16 on AVX2), else, or where that does not
    divide `columns`, one cache line; 0 where neither divides `columns`. Consecutive reduce steps then
    read consecutive `width`-column rows of one panel."""
    itemsize = max(dtype.itemsize, 1)
    widths = [PANEL_BYTES // itemsize]
    if device == "CPU":
        widths.insert(0, tile_row_bytes() // itemsize)
    return next((w for w in widths if columns % w == 0), 0)


def direct_conv(x: "Tensor", weight: "Tensor", kernel: tuple[int, ...], strides: Sequence[int],
                dilations: Sequence[int], groups: int) -> "Tensor":
    """nn/conv.py's direct layout for padded x (N, C_in, *in) and weight (C_out, C_in/G, *k) → (N, C_out,
    *out): window views of x times the weight, summed over (C_in/G, *k). Built from graph nodes, the
    nodes the equivalent tensor ops (unfold, reshape, permute, unsqueeze, mul, sum; its float32
    accumulation for 16-bit floats included) record, without their per-op argument checks and tensor
    wrappers (a third of a small conv's time went to them). The caller has checked the shapes."""
    n = len(kernel)
    node, w = x.node, weight.node
    batch, c_out, c_in_group = node.shape[0], w.shape[0], w.shape[1]
    for j, (k, s, d) in enumerate(zip(kernel, strides, dilations)):
        node = g.window(node, 2 + j, k, s, d)                             # (N, C_in, *out, *k)
    outs = tuple(node.shape[2:2 + n])
    # (N, G, 1, *out, C_in/G, *k) · (1, G, C_out/G, *1, C_in/G, *k), summed over (C_in/G, *k)
    node = g.reshape(node, (batch, groups, c_in_group) + outs + kernel)
    node = g.permute(node, (0, 1) + tuple(range(3, 3 + n)) + (2,) + tuple(range(3 + n, 3 + 2 * n)))
    node = g.reshape(node, node.shape[:2] + (1,) + node.shape[2:])
    w = g.reshape(w, (1, groups, c_out // groups) + (1,) * n + (c_in_group,) + kernel)
    full = tuple(max(a, b) for a, b in zip(node.shape, w.shape))
    product = g.binary(Op.MUL, g.expand(node, full), g.expand(w, full))
    axes = tuple(range(3 + n, 4 + 2 * n))
    acc = dtypes.acc_dtype(product.dtype)    # 16-bit floats sum in float32, as Tensor.sum does
    summed = g.reduce(g.cast(product, acc), Op.ADD, axes)
    summed = g.reshape(summed, tuple(size for i, size in enumerate(summed.shape) if i not in axes))
    return x._new(g.reshape(g.cast(summed, product.dtype), (batch, c_out) + outs))


def vector_lanes_on(dtype: dtypes.DType, device: str) -> int:
    """Lanes of `dtype` in one vector register of the device the codegen vectorizes explicitly (the
    CPU, for float32/float64: 16 float32 on AVX-512), else 0. The front end's window onto
    codegen/vectorize.py, for layout choices (nn/conv.py) that depend on it."""
    if device != "CPU" or dtype not in VECTOR_DTYPES:
        return 0
    return vector_lanes(dtype)


def _skip_detach(node: "Node") -> "Node":
    """node without the DETACH wrappers that ops recorded under no_grad carry (identities here)."""
    while node.op is Op.DETACH:
        node = node.srcs[0]
    return node


def _is_transposed_view(t: "Tensor") -> bool:
    """t is a permuted view whose second-to-last dim is its source's last one (weight.T, or k.mT in
    attention): as a right matmul operand, it runs along the reduced dim instead of the output dim."""
    node = _skip_detach(t.node)
    if node.op is not Op.PERMUTE:
        return False
    order = node.arg
    rank = len(order)
    return rank >= 2 and order[-2] == rank - 1


def _panel_width(y: "Tensor", m: int) -> int:
    """Columns per packed panel for the right operand y (..., k, n), or 0 to leave y as it is."""
    k, n = y.shape[-2], y.shape[-1]
    width = packed_panel_width(y.dtype, n, y.device)
    if not y.dtype.is_float or m < PACK_MIN_ROWS or k < 2 or not width or n < width:
        return 0
    if n == width and not _is_transposed_view(y):
        return 0   # one panel: row-major y is already in panel order
    if not _is_stored(y):
        return 0   # a computed operand would be computed inside the packing copy, in panel order
    return width


def _is_stored(t: "Tensor") -> bool:
    """t is a view of data already in a buffer (a parameter, an input), not a value still to compute."""
    node = _skip_detach(t.node)
    while node.op in MOVEMENT:
        node = _skip_detach(node.srcs[0])
    return node.op is Op.BUFFER


def _packed_columns(y: "Tensor", width: int) -> "Tensor":
    """y (..., k, n) as a view (..., n/width, width, k) of a packed copy laid out (..., n/width, k, width).

    A reduce step of the matmul then reads `width` adjacent values of one panel, and consecutive
    steps read consecutive cache lines: the hardware prefetcher streams the panel (row-major y
    would be read with a stride of n elements, a new page every few steps)."""
    return y._new(_swap_last_two(_pack_panels(y.node, width)))              # (..., n/w, w, k)


def _pack_panels(y: "Node", width: int) -> "Node":
    """y (..., k, n) copied into panels of `width` columns: (..., n/width, k, width), contiguous."""
    *batch, k, n = y.shape
    nb = len(batch)
    panels = g.reshape(y, (*batch, k, n // width, width))
    return g.contiguous(g.permute(panels, (*range(nb), nb + 1, nb, nb + 2)))


def _swap_last_two(node: "Node") -> "Node":
    rank = len(node.shape)
    return g.permute(node, (*range(rank - 2), rank - 1, rank - 2))


def _has_pending_reduce(node: "Node") -> bool:
    """node's value, computed inline, would run a reduce (a matmul, a sum) in the same kernel."""
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if id(n) in seen or n.op in (Op.BUFFER, Op.CONTIGUOUS, Op.COPY):
            continue
        seen.add(id(n))
        if n.op is Op.REDUCE:
            return True
        stack += n.srcs
    return False


def _row_major_copy(y: "Tensor") -> "Tensor":
    """A row-major copy of the transposed view y (see _is_transposed_view).

    When y's source is computed by a reduce (k.mT in attention, k from a linear layer), the source is
    stored first in its own layout and then copied transposed: fused into the transposing copy, the
    reduce would run in the transposed order and its register tile would not vectorize (~10x slower);
    the extra copy moves k·n values."""
    node = _skip_detach(y.node)
    order = tuple(range(len(node.shape)))
    while node.op is Op.PERMUTE:   # k.mT with k = heads.permute(0, 2, 1, 3): one permute of the heads
        order = tuple(node.arg[i] for i in order)
        node = _skip_detach(node.srcs[0])
    if not _has_pending_reduce(node):
        return y.contiguous()
    from lazytensor.tensor import Tensor
    stored = Tensor._from_node(node, y.device).contiguous()
    return stored.permute(*order).contiguous()


# Packed copies of stored right operands, per source BUFFER node (a weight's current value; an in-place
# update or load_state_dict gives the weight a new node, so a stale copy is never found), then per
# view chain and panel width. Weak on the buffer node: the copies go when the value does.
_PACKED: "weakref.WeakKeyDictionary[Node, dict[tuple, Tensor]]" = weakref.WeakKeyDictionary()


def _view_chain(node: "Node") -> tuple["Node", tuple]:
    """The BUFFER under a stored view, and the view ops on the way (DETACH skipped) as plain values."""
    chain = []
    node = _skip_detach(node)
    while node.op in MOVEMENT:
        chain.append((node.op, node.arg, node.shape))
        node = _skip_detach(node.srcs[0])
    return node, tuple(chain)


def _reusable_packed_columns(y: "Tensor", width: int) -> "Tensor":
    """_packed_columns(y, width), packed once per stored value of y when no gradient reaches y.

    Repacking a stored operand on every matmul (a weight in inference, a matrix multiplied again and
    again) costs a copy kernel each time; the copy is realized the first time and kept for as long as y
    holds that value. When a gradient is recorded for y the packing stays in the graph, so the gradient
    reaches y; so it does for an argument of a function being captured by lt.jit (a replay passes new
    data in its place, which a kept copy would not follow)."""
    if GradMode.enabled and y.requires_grad:
        return _packed_columns(y, width)
    base, chain = _view_chain(y.node)
    if capture.is_capture_input(base.arg):
        return _packed_columns(y, width)
    per_value = _PACKED.setdefault(base, {})
    key = (chain, width, y.device)
    packed = per_value.get(key)
    if packed is None:
        packed = y._new(_pack_panels(y.node, width)).realize()   # its own buffer: no reference to y
        capture.note_derived(packed._buffer(), base.arg)   # a jit replay reading it follows y's updates
        per_value[key] = packed
    return packed.transpose(-1, -2)


def _broadcast_node(node: "Node", shape: tuple[int, ...]) -> "Node":
    """node broadcast to shape (leading 1s added first), as Tensor._broadcast_to records it."""
    if node.shape == shape:
        return node
    return g.expand(g.reshape(node, (1,) * (len(shape) - len(node.shape)) + node.shape), shape)


def _matmul_node(x: "Node", y: "Node", columns: "Node | None", batch: tuple[int, ...]) -> "Node":
    """x (..., m, k) @ y (..., k, n) as graph nodes: the broadcast product summed over k (in the
    accumulation dtype), (..., m, n). With `columns`, y's packed panels (..., n/w, w, k), the product
    runs over (..., m, n/w, w, k). These are the nodes the tensor ops (unsqueeze, mul, sum, reshape)
    record, without their per-op checks and wrappers: a 64³ matmul's graph took ~190 µs to build
    through them."""
    m, k = x.shape[-2], x.shape[-1]
    n = y.shape[-1]
    x = _broadcast_node(x, batch + (m, k))
    if columns is not None:
        panels = columns.shape[-3:]
        columns = _broadcast_node(columns, batch + panels)
        full = batch + (m,) + panels
        left = g.expand(g.reshape(x, batch + (m, 1, 1, k)), full)
        right = g.expand(g.reshape(columns, batch + (1,) + panels), full)
    else:
        rows = _swap_last_two(_broadcast_node(y, batch + (k, n)))                 # (..., n, k)
        full = batch + (m, n, k)
        left = g.expand(g.reshape(x, batch + (m, 1, k)), full)
        right = g.expand(g.reshape(rows, batch + (1, n, k)), full)
    product = g.binary(Op.MUL, left, right)
    acc = dtypes.acc_dtype(product.dtype)
    if acc is not product.dtype:
        product = g.cast(product, acc)
    summed = g.reduce(product, Op.ADD, (len(full) - 1,))
    if acc is not x.dtype:
        summed = g.cast(summed, x.dtype)
    return g.reshape(summed, batch + (m, n))


def _matmul_by_tensor_ops(x: "Tensor", y: "Tensor", batch: tuple[int, ...], width: int, op: str) -> "Tensor":
    """The matmul through tensor ops, for what _matmul_node leaves out: bool operands (an any over the
    products) and empty shapes (an empty reduce keeps its input in the graph for autograd)."""
    m, k, n = x.shape[-2], x.shape[-1], y.shape[-1]
    x = x._broadcast_to(batch + (m, k))
    if width:
        # (..., m, 1, 1, k) * (..., 1, n/w, w, k) summed over k, then (..., m, n/w, w) -> (..., m, n)
        columns = _reusable_packed_columns(y, width)
        columns = columns._broadcast_to(batch + tuple(columns.shape[-3:]))
        prod = x.unsqueeze(-2).unsqueeze(-2) * columns.unsqueeze(-4)
    else:
        y = y._broadcast_to(batch + (k, n))
        # (..., m, 1, k) * (..., 1, n, k) summed over k
        prod = x.unsqueeze(-2) * y.transpose(-1, -2).unsqueeze(-3)
    if prod.dtype.is_bool:
        out = prod.cast(dtypes.uint8).amax(-1).cast(dtypes.bool_)
    else:
        acc = dtypes.acc_dtype(prod.dtype)
        out = prod.cast(acc)._reduce(Op.ADD, -1, False, op).cast(prod.dtype)
    return out.reshape(*batch, m, n)


def _matmul(a: "Tensor", b: "Tensor", op: str) -> "Tensor":
    a_shape, b_shape = a.node.shape, b.node.shape   # (node shapes: Tensor.shape builds a Size per read)
    if not a_shape or not b_shape:
        raise RuntimeError(f"{op}: both arguments to matmul need to be at least 1D, but they are "
                           f"{len(a_shape)}D and {len(b_shape)}D")
    if a.device != b.device:
        raise RuntimeError(f"{op}: Expected all tensors to be on the same device, but found at least two "
                           f"devices, {a.device} and {b.device}; move one with .to()")
    if a.node.dtype is not b.node.dtype:   # as PyTorch: matmul does not promote
        raise RuntimeError(f"{op}: expected both operands to have the same dtype, but got {a.dtype} and "
                           f"{b.dtype}; cast one of them with .to(dtype)")
    squeeze_front = len(a_shape) == 1
    squeeze_back = len(b_shape) == 1
    x = a.unsqueeze(0) if squeeze_front else a
    y = b.unsqueeze(1) if squeeze_back else b
    x_shape, y_shape = x.node.shape, y.node.shape
    if x_shape[-1] != y_shape[-2]:
        raise _matmul_error(a, b, op)
    batch = x_shape[:-2]
    if batch != y_shape[:-2]:
        from lazytensor.tensor import broadcast_shapes   # (tensor.py imports this module)
        batch = broadcast_shapes(batch, y_shape[:-2], op=op)
    m, k, n = x_shape[-2], x_shape[-1], y_shape[-1]
    width = _panel_width(y, m)
    if _is_transposed_view(x) and m >= PACK_MIN_ROWS and k > 1 and n >= LEFT_COPY_MIN_COLUMNS:
        # x = g.T (a weight gradient's gᵀ @ input): a register tile's rows sit side by side, but each
        # reduce step jumps a whole row of g ahead; with a power-of-two row (512 floats = 2 KiB) the
        # steps of one tile share two of L1's 64 sets and evict each other. Row-major, they stream.
        x = _row_major_copy(x)
    if not width and _is_transposed_view(y) and m >= PACK_MIN_ROWS and n > 1:
        # y = w.T (nn.Linear's layout): both operands would run along the reduced dim, leaving no
        # output dim to vectorize. A row-major copy of y costs k·n moves against m·k·n multiply-adds.
        y = _row_major_copy(y)
    if x.dtype.is_bool or 0 in batch or 0 in (m, k, n):
        out = _matmul_by_tensor_ops(x, y, batch, width, op)
    else:
        columns = _reusable_packed_columns(y, width).node if width else None
        out = x._new(_matmul_node(x.node, y.node, columns, batch))
    if squeeze_front:
        out = out.squeeze(-2)
    if squeeze_back:
        out = out.squeeze(-1)
    return out

"""Linear algebra: matmul (batched, broadcasting, 1-D cases), dot, mm, bmm, outer, einsum.

A matmul is a broadcast multiply and a sum over the shared axis; the scheduler fuses it into
one reduce kernel, with any elementwise epilogue (bias, activation) fused after it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from lazytensor import dtypes
from lazytensor.ops import MOVEMENT, Op

if TYPE_CHECKING:
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
PANEL_BYTES = 64
"""Width of one packed panel of the right operand: 16 float32 or 8 float64 columns, the column
count of the register tile the codegen's upcast pass builds (one cache line per reduce step)."""


def _is_transposed_view(t: "Tensor") -> bool:
    """t is a permuted view whose second-to-last dim is its source's last one (weight.T, or k.mT in
    attention): as a right matmul operand, it runs along the reduced dim instead of the output dim."""
    node = t.node
    if node.op is not Op.PERMUTE:
        return False
    order = node.arg
    rank = len(order)
    return rank >= 2 and order[-2] == rank - 1


def _panel_width(y: "Tensor", m: int) -> int:
    """Columns per packed panel for the right operand y (..., k, n), or 0 to leave y as it is."""
    k, n = y.shape[-2], y.shape[-1]
    width = PANEL_BYTES // max(y.dtype.itemsize, 1)
    if not y.dtype.is_float or m < PACK_MIN_ROWS or k < 2 or n <= width or n % width:
        return 0
    if not _is_stored(y):
        return 0   # a computed operand would be computed inside the packing copy, in panel order
    return width


def _is_stored(t: "Tensor") -> bool:
    """t is a view of data already in a buffer (a parameter, an input), not a value still to compute."""
    node = t.node
    while node.op in MOVEMENT:
        node = node.srcs[0]
    return node.op is Op.BUFFER


def _packed_columns(y: "Tensor", width: int) -> "Tensor":
    """y (..., k, n) as a view (..., n/width, width, k) of a packed copy laid out (..., n/width, k, width).

    A reduce step of the matmul then reads `width` adjacent values of one panel, and consecutive
    steps read consecutive cache lines: the hardware prefetcher streams the panel (row-major y
    would be read with a stride of n elements, a new page every few steps)."""
    *batch, k, n = y.shape
    nb = len(batch)
    panels = y.reshape(*batch, k, n // width, width)
    packed = panels.permute(*range(nb), nb + 1, nb, nb + 2).contiguous()    # (..., n/w, k, w)
    return packed.transpose(-1, -2)                                           # (..., n/w, w, k)


def _matmul(a: "Tensor", b: "Tensor", op: str) -> "Tensor":
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"{op}: both arguments to matmul need to be at least 1D, but they are "
                           f"{a.ndim}D and {b.ndim}D")
    if a.dtype != b.dtype:   # as PyTorch: matmul does not promote
        raise RuntimeError(f"{op}: expected both operands to have the same dtype, but got {a.dtype} and "
                           f"{b.dtype}; cast one of them with .to(dtype)")
    squeeze_front = a.ndim == 1
    squeeze_back = b.ndim == 1
    x = a.unsqueeze(0) if squeeze_front else a
    y = b.unsqueeze(1) if squeeze_back else b
    if x.shape[-1] != y.shape[-2]:
        raise _matmul_error(a, b, op)
    from lazytensor.tensor import broadcast_shapes
    batch = broadcast_shapes(tuple(x.shape[:-2]), tuple(y.shape[:-2]), op=op)
    m, k, n = x.shape[-2], x.shape[-1], y.shape[-1]
    width = _panel_width(y, m)
    if width:
        # (..., m, 1, 1, k) * (..., 1, n/w, w, k) summed over k, then (..., m, n/w, w) -> (..., m, n)
        x = x._broadcast_to(batch + (m, k))
        columns = _packed_columns(y, width)
        columns = columns._broadcast_to(batch + tuple(columns.shape[-3:]))
        prod = x.unsqueeze(-2).unsqueeze(-2) * columns.unsqueeze(-4)
    else:
        if _is_transposed_view(y) and m >= PACK_MIN_ROWS and n > 1:
            # y = w.T (nn.Linear's layout): both operands would run along the reduced dim, leaving no
            # output dim to vectorize. A row-major copy of y costs k·n moves against m·k·n multiply-adds.
            y = y.contiguous()
        x = x._broadcast_to(batch + (m, k))
        y = y._broadcast_to(batch + (k, n))
        # (..., m, 1, k) * (..., 1, n, k) summed over k
        prod = x.unsqueeze(-2) * y.transpose(-1, -2).unsqueeze(-3)
    acc = dtypes.acc_dtype(prod.dtype)
    if prod.dtype.is_bool:
        out = prod.cast(dtypes.uint8).amax(-1).cast(dtypes.bool_)
    else:
        out = prod.cast(acc)._reduce(Op.ADD, -1, False, op).cast(prod.dtype)
    if width:
        out = out.reshape(*batch, m, n)
    if squeeze_front:
        out = out.squeeze(-2)
    if squeeze_back:
        out = out.squeeze(-1)
    return out

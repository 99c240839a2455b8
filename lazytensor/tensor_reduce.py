"""Reductions (sum, mean, max, argmax, var, ...), softmax-style ops and scans.

All build on one primitive, REDUCE (ADD, MUL or MAX over axes, keeping size-1 dims); the
`dim=None|int|tuple, keepdim=False` conventions and PyTorch's output dtypes are handled here.
"""
from __future__ import annotations

import math
from collections import namedtuple
from typing import TYPE_CHECKING, Any, Sequence

from lazytensor import dtypes
from lazytensor import graph as g
from lazytensor.ops import Op

if TYPE_CHECKING:
    from lazytensor.tensor import Tensor

_ADD = Op.ADD   # (read through the enum class, a member costs ~80 ns: see graph.py)
ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])

Dims = int | Sequence[int] | None


class ReduceMixin:
    """sum/mean/prod/max/min/argmax/argmin/std/var/any/all/logsumexp/softmax/cumsum/norm."""

    def _reduce_axes(self: "Tensor", dim: Dims, op: str) -> tuple[int, ...]:
        """dim → sorted-free tuple of normalized axes; None and () mean every axis (as in PyTorch)."""
        if dim is None:
            return tuple(range(self.ndim))
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if not dims:
            return tuple(range(self.ndim))
        axes = tuple(self._axis(d, op) for d in dims)
        if len(set(axes)) != len(axes):
            raise RuntimeError(f"{op}: dim {list(dims)} appears multiple times in the list of dims")
        return axes if self.ndim else ()

    def _reduce(self: "Tensor", op: Op, dim: Dims, keepdim: bool, name: str) -> "Tensor":
        axes = self._reduce_axes(dim, name)
        x = self
        if self.numel() == 0 and self.requires_grad:
            # an empty reduce folds to a constant; keep the input in the graph so it gets its (empty)
            # gradient: pad the empty reduced axes to size 1 with the identity (0 for sum, 1 for prod)
            grow = [(0, 1) if i in axes and s == 0 else (0, 0) for i, s in enumerate(self.shape)]
            x = self._pad_zeros(grow)
            if op is Op.MUL:
                x = x + 1
            if 0 in x.shape:
                # the result is empty as well (a kept axis has size 0): its values do not matter, so the
                # reduced axes are cut to size 1 and nothing is left to reduce (x (0, 4) @ w (4, 3))
                x = x._shrink([(0, 1) if i in axes else (0, s) for i, s in enumerate(x.shape)])
        node = g.reduce(x.node, op, axes)
        out = self._new(node)
        if not keepdim:
            out = out._new(g.reshape(node, tuple(s for i, s in enumerate(node.shape) if i not in axes)))
        return out

    def _accumulate_as(self: "Tensor", dtype: Any) -> "Tensor":
        if dtype is not None:
            return self.cast(dtypes.to_dtype(dtype))
        out = dtypes.sum_dtype(self.dtype)
        return self if out is self.dtype else self.cast(out)

    def sum(self: "Tensor", dim: Dims = None, keepdim: bool = False, dtype: Any = None,
            axis: Dims = None) -> "Tensor":
        node = self.node
        if dim is None and axis is None and dtype is None and not keepdim and 0 not in node.shape and \
                (node.dtype is dtypes.float32 or node.dtype is dtypes.float64):
            # the common case, what the general path below records without its checks and dtype
            # look-ups (small ops are dominated by overhead): a sum of everything, in the input's dtype
            return self._new(g.reshape(g.reduce(node, _ADD, tuple(range(len(node.shape)))), ()))
        dim = axis if dim is None else dim
        x = self._accumulate_as(dtype)
        acc = dtypes.acc_dtype(x.dtype)
        if acc is x.dtype:   # the common case: no casts to record (small ops are dominated by overhead)
            return x._reduce(Op.ADD, dim, keepdim, "sum")
        return x.cast(acc)._reduce(Op.ADD, dim, keepdim, "sum").cast(x.dtype)

    def prod(self: "Tensor", dim: int | None = None, keepdim: bool = False, dtype: Any = None) -> "Tensor":
        x = self._accumulate_as(dtype)
        acc = dtypes.acc_dtype(x.dtype)
        return x.cast(acc)._reduce(Op.MUL, dim, keepdim, "prod").cast(x.dtype)

    def mean(self: "Tensor", dim: Dims = None, keepdim: bool = False, dtype: Any = None,
             axis: Dims = None) -> "Tensor":
        dim = axis if dim is None else dim
        x = self.cast(dtypes.to_dtype(dtype)) if dtype is not None else self
        if not x.dtype.is_float:
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating "
                               f"point or complex dtype. Got: {x.dtype.name}; use .float() first")
        axes = x._reduce_axes(dim, "mean")
        count = math.prod(x.shape[a] for a in axes)
        total = x.cast(dtypes.acc_dtype(x.dtype))._reduce(Op.ADD, dim, keepdim, "mean")
        return (total / count if count else total * math.nan).cast(x.dtype)

    def _check_nonempty_extreme(self: "Tensor", dim: Dims, name: str) -> None:
        """max/min have no identity: reducing over a size-0 dim is an error, as in PyTorch."""
        axes = self._reduce_axes(dim, name)
        if self.numel() == 0 and any(self.shape[a] == 0 for a in axes):
            raise IndexError(f"{name}: cannot reduce over a zero-size dimension (max/min have no identity); "
                             f"input shape {tuple(self.shape)}, dim {dim}")

    def _check_floating(self: "Tensor", name: str) -> None:
        if not self.dtype.is_float:
            raise RuntimeError(f"{name}: expected a floating point input, got {self.dtype.name}; "
                               f"use .float() or pass dtype=")

    def amax(self: "Tensor", dim: Dims = None, keepdim: bool = False) -> "Tensor":
        self._check_nonempty_extreme(dim, "amax")
        if self.dtype.is_bool:
            return self.cast(dtypes.uint8)._reduce(Op.MAX, dim, keepdim, "amax").cast(dtypes.bool_)
        return self._reduce(Op.MAX, dim, keepdim, "amax")

    def amin(self: "Tensor", dim: Dims = None, keepdim: bool = False) -> "Tensor":
        self._check_nonempty_extreme(dim, "amin")
        if self.dtype.is_bool:
            return self.cast(dtypes.uint8).amin(dim, keepdim).cast(dtypes.bool_)
        if self.dtype.is_float:
            return -((-self)._reduce(Op.MAX, dim, keepdim, "amin"))
        return ~((~self)._reduce(Op.MAX, dim, keepdim, "amin"))

    def max(self: "Tensor", dim: Any = None, keepdim: bool = False) -> Any:
        """max() over everything, max(other) elementwise, or max(dim) → (values, indices)."""
        from lazytensor.tensor import Tensor
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        if dim is None:
            return self.amax()
        return self._extreme_with_index(dim, keepdim, True, "max")

    def min(self: "Tensor", dim: Any = None, keepdim: bool = False) -> Any:
        from lazytensor.tensor import Tensor
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return self.amin()
        return self._extreme_with_index(dim, keepdim, False, "min")

    def _extreme_with_index(self: "Tensor", dim: int, keepdim: bool, largest: bool, name: str) -> Any:
        """(values, indices) of max(dim)/min(dim). With a gradient to carry, the values are read at the
        returned indices, so the gradient goes to that one element (PyTorch), never split among ties."""
        indices = self._arg_extreme(dim, keepdim, largest, name)
        if self.ndim and self.requires_grad:
            axis = self._axis(dim, name)
            picked = self.gather(axis, indices if keepdim else indices.unsqueeze(axis))
            return ValuesIndices(picked if keepdim else picked.squeeze(axis), indices)
        values = self.amax(dim, keepdim) if largest else self.amin(dim, keepdim)
        return ValuesIndices(values, indices)

    def _arg_extreme(self: "Tensor", dim: int | None, keepdim: bool, largest: bool, name: str) -> "Tensor":
        x = self.reshape(-1) if dim is None else self
        axis = 0 if dim is None else self._axis(dim, name)
        if x.ndim == 0:
            return self._const(0, dtypes.int64, ())
        n = x.shape[axis]
        if n == 0:
            raise IndexError(f"{name}: Expected reduction dim {axis} to have non-zero size")
        if x.dtype.is_bool:
            x = x.cast(dtypes.uint8)
        best = x.amax(axis, keepdim=True) if largest else x.amin(axis, keepdim=True)
        hit = x == best
        if x.dtype.is_float:
            hit = hit | (x.isnan() & best.isnan())
        # the first hit wins: score n - i for hits, 0 otherwise, take the max
        positions = x._iota_along(axis)
        score = hit._where(n - positions, x._const(0, dtypes.int64, ()))
        first = n - score.amax(axis, keepdim=True)
        if dim is None:
            return first.reshape(()) if not keepdim else first.reshape((1,) * self.ndim)
        return first if keepdim else first.squeeze(axis)

    def _iota_along(self: "Tensor", axis: int) -> "Tensor":
        """int64 tensor of this shape whose value is the index along axis."""
        n = self.shape[axis]
        shape = [1] * self.ndim
        shape[axis] = n
        node = g.reshape(g.iota(n, dtypes.int64), tuple(shape))
        return self._new(g.expand(node, tuple(self.shape)))

    def argmax(self: "Tensor", dim: int | None = None, keepdim: bool = False) -> "Tensor":
        if self.dtype.is_bool:
            raise RuntimeError("argmax: does not support bool input (as in PyTorch); use .int() first")
        return self._arg_extreme(dim, keepdim, True, "argmax")

    def argmin(self: "Tensor", dim: int | None = None, keepdim: bool = False) -> "Tensor":
        if self.dtype.is_bool:
            raise RuntimeError("argmin: does not support bool input (as in PyTorch); use .int() first")
        return self._arg_extreme(dim, keepdim, False, "argmin")

    def any(self: "Tensor", dim: Dims = None, keepdim: bool = False) -> "Tensor":
        """True where some element is nonzero (uint8 in, uint8 out, as in PyTorch)."""
        out_dtype = dtypes.uint8 if self.dtype == dtypes.uint8 else dtypes.bool_
        if dim is not None and not isinstance(dim, int) and len(tuple(dim)) == 0:
            return self.cast(dtypes.bool_).cast(out_dtype)   # PyTorch: any(dim=()) reduces nothing
        hit = self.cast(dtypes.bool_).cast(dtypes.uint8)._reduce(Op.MAX, dim, keepdim, "any")
        return hit.cast(dtypes.bool_).cast(out_dtype)

    def all(self: "Tensor", dim: Dims = None, keepdim: bool = False) -> "Tensor":
        out_dtype = dtypes.uint8 if self.dtype == dtypes.uint8 else dtypes.bool_
        return self.logical_not().any(dim, keepdim).logical_not().cast(out_dtype)

    def count_nonzero(self: "Tensor", dim: Dims = None) -> "Tensor":
        return (self != 0).sum(dim)

    def var(self: "Tensor", dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False,
            correction: float | None = None) -> "Tensor":
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        self._check_floating("std/var")
        x = self
        axes = x._reduce_axes(dim, "var")
        n = math.prod(x.shape[a] for a in axes)
        centered = x - x.mean(axes, keepdim=True)
        return (centered * centered).sum(axes, keepdim=keepdim) / max(n - correction, 0)

    def std(self: "Tensor", dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False,
            correction: float | None = None) -> "Tensor":
        return self.var(dim, unbiased, keepdim, correction).sqrt()

    def var_mean(self: "Tensor", dim: Dims = None, correction: float = 1, keepdim: bool = False):
        return self.var(dim, keepdim=keepdim, correction=correction), self.mean(dim, keepdim=keepdim)

    def std_mean(self: "Tensor", dim: Dims = None, correction: float = 1, keepdim: bool = False):
        return self.std(dim, keepdim=keepdim, correction=correction), self.mean(dim, keepdim=keepdim)

    def logsumexp(self: "Tensor", dim: Dims, keepdim: bool = False) -> "Tensor":
        x = self._floating()
        axes = x._reduce_axes(dim, "logsumexp")
        if x.numel() == 0:   # log(0) = -inf over empty dims; no max to shift by
            return x.exp().sum(dim, keepdim=keepdim).log()
        m = x.amax(dim, keepdim=True)
        # shift by the max, but not by an infinite one (inf - inf is nan); m * 0 would be nan too
        m = m.isinf()._where(m._const(0, shape=()), m)
        out = (x - m).exp().sum(dim, keepdim=True).log() + m
        if not keepdim:
            out = out.squeeze(axes)
        return out

    def softmax(self: "Tensor", dim: int = -1, dtype: Any = None) -> "Tensor":
        x = self.cast(dtypes.to_dtype(dtype)) if dtype is not None else self
        x._check_floating("softmax")
        x._axis(dim, "softmax")
        if x.ndim == 0:
            return x * 0 + 1
        if x.numel() == 0:
            return x
        def softmax(y: "Tensor") -> "Tensor":
            e = (y - y.amax(dim, keepdim=True)).exp()
            return e / e.sum(dim, keepdim=True)
        return x._math_in(softmax)   # float32 for the 16-bit floats: rounded once, as PyTorch

    def log_softmax(self: "Tensor", dim: int = -1, dtype: Any = None) -> "Tensor":
        x = self.cast(dtypes.to_dtype(dtype)) if dtype is not None else self
        x._check_floating("log_softmax")
        x._axis(dim, "log_softmax")
        if x.ndim == 0:
            return x * 0
        if x.numel() == 0:
            return x
        def log_softmax(y: "Tensor") -> "Tensor":
            shifted = y - y.amax(dim, keepdim=True)
            return shifted - shifted.exp().sum(dim, keepdim=True).log()
        return x._math_in(log_softmax)

    _SCAN_BLOCK = 128   # scans up to this long use one masked reduce; longer ones are blocked

    def _scan(self: "Tensor", dim: int, op: Op, name: str) -> "Tensor":
        """Inclusive scan along dim: out[..., i] = reduce(x[..., :i+1]) for op ADD (cumsum) or MUL.

        Built from primitives (so it stays lazy and autograd differentiates it): see _scan_last.
        """
        axis = self._axis(dim, name)
        if self.ndim == 0:
            return self
        out = self.movedim(axis, -1)._scan_last(op, name)
        return out.movedim(-1, axis)

    def _scan_last(self: "Tensor", op: Op, name: str) -> "Tensor":
        """Inclusive scan over the last axis with O(n·B) work, B = _SCAN_BLOCK (a blocked scan).

        The axis is padded with the identity to k blocks of B; each block is scanned by a masked
        B×B reduce, the k block totals are scanned recursively (log_B(n) levels), and each block
        then combines with the total of all blocks before it.
        """
        n = self.shape[-1]
        block = self._SCAN_BLOCK
        identity = 0 if op is Op.ADD else 1
        if n <= block:
            return self._masked_scan_last(op, name)
        lead = tuple(self.shape[:-1])
        k = -(-n // block)
        padded = self._pad_value([(0, 0)] * len(lead) + [(0, k * block - n)], identity)
        # stored once: the padded view fused into the block reduce reads through a bounds guard on
        # every element, and GCC 12 -march=native miscompiles that loop for int64 (see the report)
        padded = padded.contiguous()
        within = padded.reshape(lead + (k, block))._masked_scan_last(op, name)   # (..., k, B)
        totals = within.narrow(-1, block - 1, 1).reshape(lead + (k,))            # (..., k)
        before = totals._scan_last(op, name)._shift_right_last(identity)          # exclusive scan
        combined = within + before.unsqueeze(-1) if op is Op.ADD else within * before.unsqueeze(-1)
        return combined.reshape(lead + (k * block,)).narrow(-1, 0, n)

    def _masked_scan_last(self: "Tensor", op: Op, name: str) -> "Tensor":
        """Inclusive scan over the last axis as one masked n×n reduce: cheap only for small n."""
        n = self.shape[-1]
        # (..., i, j): x[..., j] where j <= i
        rows = self.unsqueeze(-2)._broadcast_to(tuple(self.shape[:-1]) + (n, n))
        i = self._new(g.reshape(g.iota(n, dtypes.int32), (n, 1)))
        j = self._new(g.reshape(g.iota(n, dtypes.int32), (1, n)))
        identity = 0 if op is Op.ADD else 1
        masked = (j <= i)._where(rows, rows._const(identity, shape=()))
        return masked._reduce(op, -1, False, name)

    def _pad_value(self: "Tensor", pads: list[tuple[int, int]], value: float) -> "Tensor":
        """Pad with a constant value (identity of a scan), built from a zero pad plus a mask."""
        if value == 0:
            return self._pad_zeros(pads)
        inside = self._const(True, dtypes.bool_, tuple(self.shape))._pad_zeros(pads)
        return inside._where(self._pad_zeros(pads), self._const(value, shape=()))

    def _shift_right_last(self: "Tensor", fill: float) -> "Tensor":
        """x[..., i-1] along the last axis with `fill` at i = 0 (turns an inclusive scan exclusive)."""
        n = self.shape[-1]
        pads = [(0, 0)] * (self.ndim - 1) + [(1, 0)]
        return self._pad_value(pads, fill).narrow(-1, 0, n)

    def cumsum(self: "Tensor", dim: int, dtype: Any = None) -> "Tensor":
        x = self._accumulate_as(dtype)
        acc = dtypes.acc_dtype(x.dtype)   # float32 for the 16-bit floats: each output rounded once
        return x._scan(dim, Op.ADD, "cumsum") if acc is x.dtype else \
            x.cast(acc)._scan(dim, Op.ADD, "cumsum").cast(x.dtype)

    def cumprod(self: "Tensor", dim: int, dtype: Any = None) -> "Tensor":
        x = self._accumulate_as(dtype)
        acc = dtypes.acc_dtype(x.dtype)
        return x._scan(dim, Op.MUL, "cumprod") if acc is x.dtype else \
            x.cast(acc)._scan(dim, Op.MUL, "cumprod").cast(x.dtype)

    def norm(self: "Tensor", p: Any = "fro", dim: Dims = None, keepdim: bool = False,
             dtype: Any = None) -> "Tensor":
        x = self.cast(dtypes.to_dtype(dtype)) if dtype is not None else self
        x._check_floating("norm")
        if p in ("fro", 2, 2.0):
            return (x * x).sum(dim, keepdim=keepdim).sqrt()
        if p in (math.inf, "inf"):
            return x.abs().amax(dim, keepdim)
        if p in (-math.inf, "-inf"):
            return x.abs().amin(dim, keepdim)
        if p == 0:
            return (x != 0).cast(x.dtype).sum(dim, keepdim=keepdim)
        if p == 1:
            return x.abs().sum(dim, keepdim=keepdim)
        if isinstance(p, (int, float)):
            return (x.abs() ** p).sum(dim, keepdim=keepdim) ** (1.0 / p)
        raise ValueError(f"norm: unsupported p={p!r}")

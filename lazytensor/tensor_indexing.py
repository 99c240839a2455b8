"""Indexing: t[...], t[...] = v, gather/scatter and friends.

Basic indexing (ints, slices with steps, None, ...) is a view (shrink/flip/reshape). Integer-
tensor indexing, gather and index_select are one INDEX node: a real indexed load, O(n), with
every index checked against its dim inside the kernel (one compare per load; a bad index
raises IndexError after the kernel instead of reading wild memory). Scatter-style ops are one
SCATTER node: a push-style kernel that writes by index, O(n).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lazytensor import capture, dtypes
from lazytensor import graph as g
from lazytensor.ops import Op

if TYPE_CHECKING:
    from lazytensor.tensor import Tensor


def _is_tensor(x: Any) -> bool:
    from lazytensor.tensor import Tensor
    return isinstance(x, Tensor)


class IndexingMixin:
    """__getitem__, __setitem__, gather, scatter(_add/_reduce), index_select, index_add, masked ops."""

    # ---- helpers ----
    def _index_node(self: "Tensor", idxs: list["Tensor"]) -> "Tensor":
        """out[i] = self[idxs[0][i], ...]; all idxs share the output shape and are in range."""
        return self._new(g.index(self.node, tuple(i.node for i in idxs)))

    def _iota_grid(self: "Tensor", shape: tuple[int, ...], axis: int) -> "Tensor":
        """int64 tensor of `shape` holding the index along `axis`."""
        view = [1] * len(shape)
        view[axis] = shape[axis]
        node = g.reshape(g.iota(shape[axis], dtypes.int64), tuple(view))
        return self._new(g.expand(node, shape))

    def _wrap_negative(self: "Tensor", index: "Tensor", size: int) -> "Tensor":
        index = index.cast(dtypes.int64)
        return (index < 0)._where(index + size, index)

    # ---- basic and advanced indexing ----
    def __getitem__(self: "Tensor", key: Any) -> "Tensor":
        return _getitem(self, key)

    def __setitem__(self: "Tensor", key: Any, value: Any) -> None:
        """Functional update: this tensor now refers to a new graph with the region replaced.

        Views taken from it earlier do not see the change (no aliasing in a lazy graph)."""
        flat_positions = self._new(g.reshape(g.iota(self.numel(), dtypes.int64), tuple(self.shape)))
        target = _getitem(flat_positions, key)
        v = self._as_tensor(value).cast(self.dtype) if not _is_tensor(value) else value.cast(self.dtype)
        while v.ndim > target.ndim and v.shape[0] == 1:   # PyTorch drops leading size-1 dims of the value
            v = v.squeeze(0)
        try:
            v = v.expand(tuple(target.shape))
        except RuntimeError:
            raise RuntimeError(f"setitem: shape mismatch: value tensor of shape {tuple(v.shape)} cannot be "
                               f"broadcast to indexing result of shape {tuple(target.shape)}") from None
        if target.numel() == 0:
            return
        flat = self.reshape(-1)
        out = flat._new(g.scatter(flat.node, v.reshape(-1).node, (target.reshape(-1).node,), None))
        capture.note_update(self)
        self.node = out.reshape(tuple(self.shape)).node
        self._version += 1

    # ---- gather / scatter ----
    def gather(self: "Tensor", dim: int, index: "Tensor") -> "Tensor":
        axis = self._axis(dim, "gather")
        _check_index_tensor(index, "gather")
        if self.ndim == 0:   # a 0-d input acts like shape (1,)
            if index.ndim != 0:
                raise RuntimeError("gather: index tensor must be 0-D for a 0-D input")
            return self.reshape(1).gather(0, index.reshape(1)).reshape(())
        if index.ndim != self.ndim:
            raise RuntimeError(f"gather: index tensor must have the same number of dimensions as input "
                               f"({index.ndim} vs {self.ndim})")
        for d in range(self.ndim):
            if d != axis and index.shape[d] > self.shape[d]:
                raise RuntimeError(f"gather: size of index {tuple(index.shape)} exceeds input "
                                   f"{tuple(self.shape)} at dimension {d}")
        shape = tuple(index.shape)
        idxs = [index.cast(dtypes.int64) if d == axis else self._iota_grid(shape, d)
                for d in range(self.ndim)]
        return self._index_node(idxs)

    def take_along_dim(self: "Tensor", indices: "Tensor", dim: int | None = None) -> "Tensor":
        """gather with input and indices broadcast against each other except along dim (dim=None:
        both flattened). Negative indices are out of range, as in gather."""
        _check_index_tensor(indices, "take_along_dim")
        if dim is None:
            return self.reshape(-1).gather(0, indices.reshape(-1))
        axis = self._axis(dim, "take_along_dim")
        if indices.ndim != self.ndim:
            raise RuntimeError("take_along_dim: input and indices should have the same number of dimensions, "
                               f"but got {self.ndim} and {indices.ndim}")
        from lazytensor.tensor import broadcast_shapes
        shape_x, shape_i = list(self.shape), list(indices.shape)
        shape_x[axis] = shape_i[axis] = 1
        common = broadcast_shapes(tuple(shape_x), tuple(shape_i), op="take_along_dim")
        x_shape = common[:axis] + (self.shape[axis],) + common[axis + 1:]
        i_shape = common[:axis] + (indices.shape[axis],) + common[axis + 1:]
        return self._broadcast_to(x_shape).gather(axis, indices._broadcast_to(i_shape))

    def index_select(self: "Tensor", dim: int, index: "Tensor") -> "Tensor":
        axis = self._axis(dim, "index_select")
        index = self._as_tensor(index)
        _check_index_tensor(index, "index_select")
        if index.ndim > 1:
            raise IndexError(f"index_select: index must be 1-D (or 0-D), got shape {tuple(index.shape)}")
        if self.ndim == 0:
            if index.numel() != 1:
                raise RuntimeError(f"index_select: index to a 0-D tensor can have only 1 value, "
                                   f"got {index.numel()}")
            return self.reshape(1).index_select(0, index).reshape(())
        index = index.reshape(-1)
        shape = tuple(self.shape[:axis]) + (index.shape[0],) + tuple(self.shape[axis + 1:])
        view = [1] * len(shape)
        view[axis] = index.shape[0]
        idx = index.cast(dtypes.int64).reshape(tuple(view)).expand(shape)
        idxs = [idx if d == axis else self._iota_grid(shape, d) for d in range(self.ndim)]
        return self._index_node(idxs)

    def take(self: "Tensor", index: "Tensor") -> "Tensor":
        flat = self.reshape(-1)
        return flat._index_node([flat._wrap_negative(index, flat.shape[0])])

    def _scatter(self: "Tensor", dim: int, index: "Tensor", src: Any, reduce_op: Op | None,
                 name: str) -> "Tensor":
        axis = self._axis(dim, name)
        _check_index_tensor(index, name)
        src_t = src if _is_tensor(src) else self._const(src, shape=tuple(index.shape))
        src_t = src_t.cast(self.dtype)
        if index.ndim != self.ndim or (src_t.ndim != index.ndim):
            raise RuntimeError(f"{name}: index {tuple(index.shape)}, src {tuple(src_t.shape)} and self "
                               f"{tuple(self.shape)} must have the same number of dimensions")
        shape = tuple(index.shape)
        for d in range(self.ndim):
            if shape[d] > src_t.shape[d] or (d != axis and shape[d] > self.shape[d]):
                raise RuntimeError(f"{name}: index {shape} is larger than src {tuple(src_t.shape)} or self "
                                   f"{tuple(self.shape)} at dimension {d}")
        src_t = src_t._shrink([(0, s) for s in shape])
        if index.numel() == 0:   # nothing is written
            return self
        idxs = tuple((index.cast(dtypes.int64) if d == axis else self._iota_grid(shape, d)).node
                     for d in range(self.ndim))
        return self._new(g.scatter(self.node, src_t.node, idxs, reduce_op))

    def scatter(self: "Tensor", dim: int, index: "Tensor", src: Any = None, value: Any = None,
                reduce: str | None = None) -> "Tensor":
        source = src if src is not None else value
        if reduce is not None:
            ops = {"add": "sum", "multiply": "prod"}
            return self.scatter_reduce(dim, index, source if _is_tensor(source) else
                                       self._const(source, shape=tuple(index.shape)), ops[reduce])
        return self._scatter(dim, index, source, None, "scatter")

    def scatter_add(self: "Tensor", dim: int, index: "Tensor", src: "Tensor") -> "Tensor":
        x = self
        if self.dtype.is_bool:
            raise TypeError("scatter_add: bool tensors are not supported")
        return x._scatter(dim, index, src, Op.ADD, "scatter_add")

    def scatter_reduce(self: "Tensor", dim: int, index: "Tensor", src: "Tensor", reduce: str,
                       include_self: bool = True) -> "Tensor":
        """reduce: 'sum', 'prod', 'mean', 'amax' or 'amin' (as torch.Tensor.scatter_reduce)."""
        if reduce not in ("sum", "prod", "mean", "amax", "amin"):
            raise ValueError(f"scatter_reduce: reduce must be sum, prod, mean, amax or amin, got {reduce!r}")
        identity = {"sum": 0, "mean": 0, "prod": 1, "amax": dtypes.min_value(self.dtype),
                    "amin": dtypes.max_value(self.dtype)}[reduce]
        touched = None
        base = self
        if not include_self or reduce == "mean":
            ones = self._const(1, dtypes.int32, tuple(index.shape))
            counts = self._const(0, dtypes.int32)._scatter(dim, index, ones, Op.ADD, "scatter_reduce")
            touched = counts > 0
            if not include_self:
                base = touched._where(self._const(identity, shape=()), self)
        if reduce in ("sum", "mean"):
            out = base._scatter(dim, index, src, Op.ADD, "scatter_reduce")
        elif reduce == "prod":
            out = base._scatter(dim, index, src, Op.MUL, "scatter_reduce")
        elif reduce == "amax":
            out = base._scatter(dim, index, src, Op.MAX, "scatter_reduce")
        else:
            neg = (lambda t: -t) if self.dtype.is_float else (lambda t: ~t)
            out = neg(neg(base)._scatter(dim, index, neg(src.cast(self.dtype)), Op.MAX, "scatter_reduce"))
        if reduce == "mean":
            n = counts + (1 if include_self else 0)
            n = (n == 0)._where(n * 0 + 1, n)
            out = out / n if self.dtype.is_float else out.div(n.cast(self.dtype), rounding_mode="floor")
        return out.cast(self.dtype)

    def index_add(self: "Tensor", dim: int, index: "Tensor", source: "Tensor", alpha: Any = 1) -> "Tensor":
        axis = self._axis(dim, "index_add")
        index = self._as_tensor(index).reshape(-1)
        if alpha != 1:
            source = source * alpha
        shape = tuple(source.shape)
        if len(shape) != self.ndim or shape[axis] != index.shape[0]:
            raise RuntimeError(f"index_add: source {shape} must match self {tuple(self.shape)} except at dim "
                               f"{dim}, where it must equal the index length {index.shape[0]}")
        view = [1] * len(shape)
        view[axis] = index.shape[0]
        # like PyTorch, negative indices are out of range here (the kernel raises IndexError)
        full_index = index.reshape(tuple(view)).expand(shape)
        return self._scatter(axis, full_index, source, Op.ADD, "index_add")

    def index_copy(self: "Tensor", dim: int, index: "Tensor", source: "Tensor") -> "Tensor":
        axis = self._axis(dim, "index_copy")
        index = self._as_tensor(index)
        _check_index_tensor(index, "index_copy")
        index = index.reshape(-1)
        shape = tuple(source.shape)
        if len(shape) != self.ndim or shape[axis] != index.shape[0]:
            raise RuntimeError(f"index_copy: source {shape} must match self {tuple(self.shape)} except at "
                               f"dim "
                               f"{dim}, where it must equal the index length {index.shape[0]}")
        view = [1] * len(shape)
        view[axis] = index.shape[0]
        full_index = index.reshape(tuple(view)).expand(shape)
        return self._scatter(axis, full_index, source, None, "index_copy")

    def index_fill(self: "Tensor", dim: int, index: "Tensor", value: Any) -> "Tensor":
        axis = self._axis(dim, "index_fill")
        index = self._as_tensor(index)
        _check_index_tensor(index, "index_fill")
        index = self._wrap_negative(index.reshape(-1), self.shape[axis])   # index_fill accepts -1
        shape = list(self.shape)
        shape[axis] = index.shape[0]
        src = value.cast(self.dtype).expand(tuple(shape)) if _is_tensor(value) else \
            self._const(value, shape=tuple(shape))
        return self.index_copy(axis, index, src)

    def masked_fill(self: "Tensor", mask: "Tensor", value: Any) -> "Tensor":
        if _is_tensor(mask) and mask.dtype != dtypes.bool_:
            raise RuntimeError(f"masked_fill: mask must be a bool tensor, got {mask.dtype}")
        v = value.cast(self.dtype) if _is_tensor(value) else self._const(value, shape=())
        return mask._where(v, self).cast(self.dtype)

    def masked_scatter(self: "Tensor", mask: "Tensor", source: "Tensor") -> "Tensor":
        mask = mask.expand(tuple(self.shape))
        positions = mask.reshape(-1).cast(dtypes.int64).cumsum(0) - 1
        picked = source.reshape(-1).take(positions.clamp(min=0))
        return mask._where(picked.reshape(tuple(self.shape)), self)

    def masked_select(self: "Tensor", mask: "Tensor") -> "Tensor":
        shape = _broadcast(self, mask, "masked_select")
        return self.expand(shape)[mask.expand(shape)]

    def nonzero(self: "Tensor", as_tuple: bool = False) -> Any:
        """Indices of nonzero elements, shape (count, ndim). Realizes the count (its size is data)."""
        flat = (self != 0).reshape(-1)
        count = int(flat.cast(dtypes.int64).sum().item())
        n = flat.shape[0]
        # slot of each nonzero element = running count - 1; scatter its flat position there
        slots = flat.cast(dtypes.int64).cumsum(0) - 1
        slots = flat._where(slots, flat._const(count, dtypes.int64, ()))   # zeros go to a spare slot
        positions = flat._new(g.iota(n, dtypes.int64))
        spare = flat._const(0, dtypes.int64, (count + 1,))
        picked = spare._scatter(0, slots, positions, None, "nonzero").narrow(0, 0, count)
        coords = []
        rest = picked
        for size, stride in zip(self.shape, _strides(tuple(self.shape))):
            coords.append((rest // stride) % size if size else rest * 0)
        if self.ndim == 0:   # a 0-d tensor acts like shape (1,) with no coordinate columns
            return (picked,) if as_tuple else self._const(0, dtypes.int64, (count, 0))
        if as_tuple:
            return tuple(coords)
        return stack_cols(coords)

    def argwhere(self: "Tensor") -> "Tensor":
        return self.nonzero()


def stack_cols(cols: list["Tensor"]) -> "Tensor":
    from lazytensor.functions import stack
    return stack(cols, 1)


def _strides(shape: tuple[int, ...]) -> list[int]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return list(reversed(out))


def _broadcast(a: "Tensor", b: "Tensor", op: str) -> tuple[int, ...]:
    from lazytensor.tensor import broadcast_shapes
    return broadcast_shapes(tuple(a.shape), tuple(b.shape), op=op)


def _check_index_tensor(index: Any, op: str) -> None:
    if not _is_tensor(index):
        raise TypeError(f"{op}: index must be a tensor, got {type(index).__name__}")
    if not index.dtype.is_int:
        raise RuntimeError(f"{op}: index must be an integer tensor (int64 or int32), got {index.dtype}")


def _normalize_key(x: "Tensor", key: Any) -> list[Any]:
    """Key as a list with Ellipsis expanded and lists/arrays turned into tensors."""
    from lazytensor.tensor import Tensor
    items = list(key) if isinstance(key, tuple) else [key]
    expanded: list[Any] = []
    for k in items:
        if isinstance(k, list) or (hasattr(k, "__array__") and not isinstance(k, Tensor)):
            k = Tensor(k, device=x.device)
        expanded.append(k)
    # `k is Ellipsis`, never `Ellipsis in expanded`: `in` would call Tensor.__eq__
    n_ellipsis = sum(1 for k in expanded if k is Ellipsis)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = 0
    for k in expanded:
        if isinstance(k, Tensor) and k.dtype.is_bool:
            consumed += k.ndim
        elif not (k is None or k is Ellipsis):
            consumed += 1
    if consumed > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim} (got {consumed})")
    out: list[Any] = []
    for k in expanded:
        if k is Ellipsis:
            out += [slice(None)] * (x.ndim - consumed)
        else:
            out.append(k)
    if n_ellipsis == 0:
        out += [slice(None)] * (x.ndim - consumed)
    return out


def _getitem(x: "Tensor", key: Any) -> "Tensor":
    """PyTorch indexing: ints select, slices/None/... are views, then all index tensors (bool masks
    become their nonzero coordinates) are broadcast together and read by one INDEX node."""
    from lazytensor.tensor import Tensor, broadcast_shapes
    items = _normalize_key(x, key)
    # pass 1: basic indexing (views); remember which dims of `view` tensor indices address
    view = x
    dim = 0
    adv: list[tuple[int, Tensor]] = []   # (dim in `view`, index tensor)
    for k in items:
        if k is None:
            view = view.unsqueeze(dim)
            dim += 1
        elif isinstance(k, Tensor) and k.dtype.is_bool:
            if k.ndim == 0:
                # a 0-d mask adds a dim of size 1 (True) or 0 (False)
                view = view.unsqueeze(dim)
                picked = [0] if bool(k.item()) else []
                adv.append((dim, Tensor(picked, dtype=dtypes.int64, device=x.device)))
                dim += 1
                continue
            for d in range(k.ndim):
                if k.shape[d] != view.shape[dim + d]:
                    raise IndexError(f"the shape of the mask {tuple(k.shape)} at index {d} does not match "
                                     f"the "
                                     f"shape of the indexed tensor {tuple(view.shape)} at index {dim + d}")
            for d, coord in enumerate(k.nonzero(as_tuple=True)):
                adv.append((dim + d, coord))
            dim += k.ndim
        elif isinstance(k, Tensor):
            if not k.dtype.is_int:
                raise IndexError(f"tensors used as indices must be long, int, byte or bool tensors, "
                                 f"got {k.dtype}")
            adv.append((dim, k))
            dim += 1
        elif isinstance(k, slice):
            view = _slice(view, dim, k)
            dim += 1
        elif isinstance(k, int) or hasattr(k, "__index__"):
            # an int selects (removes the dim) before tensor indices are placed, as in PyTorch
            i = int(k.__index__()) if not isinstance(k, int) else k
            n = view.shape[dim]
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {n}")
            view = view.narrow(dim, i % n, 1).squeeze(dim)
        else:
            raise IndexError(f"only integers, slices, None, ..., and integer or bool tensors are valid "
                             f"indices "
                             f"(got {type(k).__name__})")
    if not adv:
        return view
    # pass 2: advanced indices → one INDEX node. Adjacent tensor indices keep their place; if any
    # basic index separates them, the broadcast index dims go first (PyTorch/NumPy rule).
    adv_dims = [d for d, _ in adv]
    bshape = broadcast_shapes(*[tuple(t.shape) for _, t in adv], op="index")
    adjacent = adv_dims == list(range(adv_dims[0], adv_dims[0] + len(adv_dims)))
    rest = [d for d in range(view.ndim) if d not in adv_dims]
    if adjacent:
        before = [d for d in rest if d < adv_dims[0]]
        after = [d for d in rest if d > adv_dims[0]]
    else:
        before, after = [], rest
    out_shape = tuple(view.shape[d] for d in before) + bshape + tuple(view.shape[d] for d in after)
    nb = len(bshape)
    idxs: list[Tensor | None] = [None] * view.ndim
    for d, t in adv:
        t = view._wrap_negative(t, view.shape[d])
        t = t.reshape((1,) * (nb - t.ndim) + tuple(t.shape))
        t = t.reshape((1,) * len(before) + tuple(t.shape) + (1,) * len(after)).expand(out_shape)
        idxs[d] = t
    for pos, d in enumerate(before):
        idxs[d] = view._iota_grid(out_shape, pos)
    for pos, d in enumerate(after):
        idxs[d] = view._iota_grid(out_shape, len(before) + nb + pos)
    return view._index_node(idxs)  # type: ignore[arg-type]


def _slice(x: "Tensor", dim: int, s: slice) -> "Tensor":
    n = x.shape[dim]
    step = 1 if s.step is None else int(s.step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    if step < 0:
        raise ValueError("step must be greater than zero (PyTorch does not support negative slice steps; "
                         "use flip())")
    start, stop, _ = slice(s.start, s.stop, step).indices(n)
    stop = max(stop, start)
    bounds = [(0, size) for size in x.shape]
    bounds[dim] = (start, stop)
    out = x._shrink(bounds)
    if step == 1:
        return out
    length = stop - start
    count = math.ceil(length / step)
    # pad to count*step, view as (count, step), keep column 0
    pads = [(0, 0)] * x.ndim
    pads[dim] = (0, count * step - length)
    out = out._pad_zeros(pads)
    shape = tuple(out.shape)
    out = out.reshape(shape[:dim] + (count, step) + shape[dim + 1:])
    bounds = [(0, size) for size in out.shape]
    bounds[dim + 1] = (0, 1)
    return out._shrink(bounds).reshape(shape[:dim] + (count,) + shape[dim + 1:])

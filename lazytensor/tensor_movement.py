"""Movement ops: views over the same data (reshape, permute, expand, pad, shrink, flip) and the
user-facing ops built from them (transpose, squeeze, roll, repeat, split, cat, tril, ...)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from lazytensor import dtypes
from lazytensor import graph as g

if TYPE_CHECKING:
    from lazytensor.tensor import Tensor


def _shape_args(args: tuple[Any, ...]) -> tuple[int, ...]:
    """Accept f(2, 3), f((2, 3)) and f([2, 3])."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    if all(a.__class__ is int for a in args):   # fast path: plain ints need no conversion
        return args
    return tuple(int(a) for a in args)


class MovementMixin:
    """Views and the ops composed from them."""

    def reshape(self: "Tensor", *shape: Any) -> "Tensor":
        new = list(_shape_args(shape))
        if min(new, default=0) >= 0 and math.prod(new) == math.prod(self.node.shape):
            return self._new(g.reshape(self.node, tuple(new)))   # fast path: nothing to infer or check
        if new.count(-1) > 1:
            raise RuntimeError(f"reshape: only one dimension can be inferred, got shape {tuple(new)}")
        if -1 in new:
            known = math.prod(s for s in new if s != -1)
            if known == 0 or self.numel() % known:
                raise RuntimeError(f"reshape: shape {tuple(new)} is invalid for input of size {self.numel()}")
            new[new.index(-1)] = self.numel() // known
        if any(s < 0 for s in new) or math.prod(new) != self.numel():
            raise RuntimeError(f"reshape: shape {tuple(new)} is invalid for input of size {self.numel()} "
                               f"(shape {tuple(self.shape)})")
        return self._new(g.reshape(self.node, tuple(new)))

    def view(self: "Tensor", *shape: Any) -> "Tensor":
        if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)):
            return self.bitcast(shape[0])
        return self.reshape(*shape)

    def view_as(self: "Tensor", other: "Tensor") -> "Tensor":
        return self.reshape(tuple(other.shape))

    def reshape_as(self: "Tensor", other: "Tensor") -> "Tensor":
        return self.reshape(tuple(other.shape))

    def permute(self: "Tensor", *dims: Any) -> "Tensor":
        order = _shape_args(dims)
        if len(order) != self.ndim:
            raise RuntimeError(f"permute: number of dims {len(order)} doesn't match the tensor's {self.ndim} "
                               f"(shape {tuple(self.shape)})")
        axes = tuple(self._axis(d, "permute") for d in order)
        if len(set(axes)) != len(axes):
            raise RuntimeError(f"permute: repeated dim in {order}")
        return self._new(g.permute(self.node, axes))

    def transpose(self: "Tensor", dim0: int = 0, dim1: int = 1) -> "Tensor":
        if self.ndim < 2 and (dim0, dim1) == (0, 1):
            return self
        a, b = self._axis(dim0, "transpose"), self._axis(dim1, "transpose")
        order = list(range(self.ndim))
        order[a], order[b] = order[b], order[a]
        return self._new(g.permute(self.node, tuple(order)))

    swapaxes = transpose
    swapdims = transpose

    def t(self: "Tensor") -> "Tensor":
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self.transpose(0, 1) if self.ndim == 2 else self

    @property
    def T(self: "Tensor") -> "Tensor":
        return self.permute(tuple(reversed(range(self.ndim))))

    @property
    def mT(self: "Tensor") -> "Tensor":
        if self.ndim < 2:
            raise RuntimeError("mT: tensor must have at least 2 dimensions")
        return self.transpose(-2, -1)

    def movedim(self: "Tensor", source: Any, destination: Any) -> "Tensor":
        src = (source,) if isinstance(source, int) else tuple(source)
        dst = (destination,) if isinstance(destination, int) else tuple(destination)
        src = tuple(self._axis(s, "movedim") for s in src)
        dst = tuple(self._axis(d, "movedim") for d in dst)
        rest = [i for i in range(self.ndim) if i not in src]
        order = [-1] * self.ndim
        for s, d in zip(src, dst):
            order[d] = s
        it = iter(rest)
        order = [o if o != -1 else next(it) for o in order]
        return self._new(g.permute(self.node, tuple(order)))

    moveaxis = movedim

    def expand(self: "Tensor", *sizes: Any) -> "Tensor":
        target = _shape_args(sizes)
        if len(target) < self.ndim:
            raise RuntimeError(f"expand: the number of sizes provided ({len(target)}) must be greater or equal "
                               f"to the number of dimensions in the tensor ({self.ndim})")
        padded = (1,) * (len(target) - self.ndim) + tuple(self.shape)
        shape = []
        for want, have in zip(target, padded):
            if want == -1:
                shape.append(have)
            elif have == 1 or want == have:
                shape.append(want)
            else:
                raise RuntimeError(f"expand: the expanded size of the tensor ({want}) must match the existing "
                                   f"size ({have}) at a non-singleton dimension; shape {tuple(self.shape)} "
                                   f"-> {target}")
        return self._broadcast_to(tuple(shape))

    def expand_as(self: "Tensor", other: "Tensor") -> "Tensor":
        return self.expand(tuple(other.shape))

    def broadcast_to(self: "Tensor", shape: Sequence[int]) -> "Tensor":
        return self.expand(tuple(shape))

    def flatten(self: "Tensor", start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        if self.ndim == 0:
            return self.reshape(1)
        s, e = self._axis(start_dim, "flatten"), self._axis(end_dim, "flatten")
        if s > e:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        shape = tuple(self.shape)
        return self.reshape(shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])

    def ravel(self: "Tensor") -> "Tensor":
        return self.reshape(-1)

    def unflatten(self: "Tensor", dim: int, sizes: Sequence[int]) -> "Tensor":
        axis = self._axis(dim, "unflatten")
        shape = tuple(self.shape)
        sizes = list(sizes)
        if -1 in sizes:
            known = math.prod(s for s in sizes if s != -1)
            sizes[sizes.index(-1)] = shape[axis] // known if known else 0
        if math.prod(sizes) != shape[axis]:
            raise RuntimeError(f"unflatten: provided sizes {tuple(sizes)} don't multiply up to the size of dim "
                               f"{dim} ({shape[axis]}) in the input tensor")
        return self.reshape(shape[:axis] + tuple(sizes) + shape[axis + 1:])

    def squeeze(self: "Tensor", dim: Any = None) -> "Tensor":
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        axes = {self._axis(d, "squeeze") for d in dims} if self.ndim else set()
        return self.reshape(tuple(s for i, s in enumerate(self.shape) if not (i in axes and s == 1)))

    def unsqueeze(self: "Tensor", dim: int) -> "Tensor":
        axis = self._axis(dim, "unsqueeze", ndim=self.ndim + 1)
        shape = tuple(self.shape)
        return self.reshape(shape[:axis] + (1,) + shape[axis:])

    def flip(self: "Tensor", *dims: Any) -> "Tensor":
        axes = tuple(self._axis(d, "flip") for d in _shape_args(dims))
        return self._new(g.flip(self.node, axes))

    def unfold(self: "Tensor", dimension: int, size: int, step: int, dilation: int = 1) -> "Tensor":
        """All windows of `size` taps along `dimension`, `step` apart, as a view (torch's unfold): that
        dim becomes the window count and a last dim of `size` is appended. `dilation` spaces the taps."""
        if self.ndim == 0:
            dimension, view = 0, self.reshape(1)
        else:
            dimension, view = self._axis(dimension, "unfold"), self
        n = view.shape[dimension]
        span = dilation * (size - 1) + 1
        if size < 0 or step <= 0 or dilation <= 0:
            raise RuntimeError(f"unfold: size ({size}) must be non-negative and step ({step}) and dilation "
                               f"({dilation}) positive")
        if span > n:
            raise RuntimeError(f"unfold: maximum size for tensor at dimension {dimension} is {n} but size "
                               f"is {size}" + (f" (dilated span {span})" if dilation > 1 else ""))
        if size == 0:
            count = n // step + 1
            shape = view.shape[:dimension] + (count,) + view.shape[dimension + 1:] + (0,)
            return view._new(g.const(0, view.dtype, shape))   # no taps: an empty view
        return view._new(g.window(view.node, dimension, size, step, dilation))

    def fliplr(self: "Tensor") -> "Tensor":
        return self.flip(1)

    def flipud(self: "Tensor") -> "Tensor":
        return self.flip(0)

    def _shrink(self: "Tensor", bounds: Sequence[tuple[int, int]]) -> "Tensor":
        return self._new(g.shrink(self.node, tuple(bounds)))

    def _pad_zeros(self: "Tensor", padding: Sequence[tuple[int, int]]) -> "Tensor":
        return self._new(g.pad(self.node, tuple(padding)))

    def narrow(self: "Tensor", dim: int, start: int, length: int) -> "Tensor":
        axis = self._axis(dim, "narrow")
        n = self.shape[axis]
        if start < 0:
            start += n
        if not (0 <= start and start + length <= n and length >= 0):
            raise IndexError(f"narrow: start ({start}) + length ({length}) exceeds dimension size ({n})")
        bounds = [(0, s) for s in self.shape]
        bounds[axis] = (start, start + length)
        return self._shrink(bounds)

    def pad(self: "Tensor", pad: Sequence[int], mode: str = "constant", value: float | None = None) -> "Tensor":
        """F.pad: pairs (before, after) from the last dim backwards; negative pads crop."""
        if len(pad) % 2 or len(pad) // 2 > self.ndim:
            raise ValueError(f"pad: padding length {len(pad)} must be even and at most 2*ndim ({2 * self.ndim})")
        pairs = [(0, 0)] * self.ndim
        for i in range(len(pad) // 2):
            pairs[self.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
        if mode == "constant":
            crop = [(max(-b, 0), s - max(-a, 0)) for (b, a), s in zip(pairs, self.shape)]
            x = self._shrink(crop)
            grow = [(max(b, 0), max(a, 0)) for b, a in pairs]
            out = x._pad_zeros(grow)
            if value is not None and value != 0:
                mask = x._const(True, dtypes.bool_)._pad_zeros(grow)
                out = mask._where(out, out._const(value, shape=()))
            return out
        if mode in ("reflect", "replicate", "circular"):
            return _pad_by_index(self, pairs, mode)
        raise ValueError(f"pad: unknown mode {mode!r}; expected constant, reflect, replicate or circular")

    def roll(self: "Tensor", shifts: Any, dims: Any = None) -> "Tensor":
        if dims is None:
            return self.reshape(-1).roll(shifts, 0).reshape(tuple(self.shape))
        shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        out = self
        for s, d in zip(shifts, dims):
            axis = self._axis(d, "roll")
            n = self.shape[axis]
            if n == 0:
                continue
            s %= n
            if s == 0:
                continue
            out = out.cat_along([out.narrow(axis, n - s, s), out.narrow(axis, 0, n - s)], axis)
        return out

    def cat_along(self: "Tensor", parts: Sequence["Tensor"], axis: int) -> "Tensor":
        from lazytensor.functions import cat
        return cat(list(parts), axis)

    def repeat(self: "Tensor", *sizes: Any) -> "Tensor":
        reps = _shape_args(sizes)
        if len(reps) < self.ndim:
            raise RuntimeError("repeat: number of repeat dims can not be smaller than number of tensor dims")
        x = self.reshape((1,) * (len(reps) - self.ndim) + tuple(self.shape))
        shape = tuple(x.shape)
        # (r0, s0, r1, s1, ...) expanded, then merged
        inter = []
        for r, s in zip(reps, shape):
            inter += [1, s]
        x = x.reshape(tuple(inter))
        target = []
        for r, s in zip(reps, shape):
            target += [r, s]
        return x.expand(tuple(target)).reshape(tuple(r * s for r, s in zip(reps, shape)))

    def tile(self: "Tensor", *dims: Any) -> "Tensor":
        reps = _shape_args(dims)
        reps = (1,) * (self.ndim - len(reps)) + reps
        return self.repeat(reps)

    def repeat_interleave(self: "Tensor", repeats: int, dim: int | None = None) -> "Tensor":
        if not isinstance(repeats, int):
            raise TypeError("repeat_interleave: only an int number of repeats is supported")
        x = self.reshape(-1) if dim is None else self
        axis = 0 if dim is None else self._axis(dim, "repeat_interleave")
        shape = tuple(x.shape)
        y = x.unsqueeze(axis + 1)
        target = shape[:axis + 1] + (repeats,) + shape[axis + 1:]
        return y.expand(target).reshape(shape[:axis] + (shape[axis] * repeats,) + shape[axis + 1:])

    def split(self: "Tensor", split_size_or_sections: Any, dim: int = 0) -> tuple["Tensor", ...]:
        axis = self._axis(dim, "split")
        n = self.shape[axis]
        if isinstance(split_size_or_sections, int):
            size = split_size_or_sections
            if size <= 0 and n > 0:
                raise RuntimeError(f"split: split_size must be positive, got {size}")
            sizes = [min(size, n - i) for i in range(0, n, size)] if n else [0]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise RuntimeError(f"split: sizes {sizes} don't add up to the size of dim {dim} ({n})")
        out, start = [], 0
        for s in sizes:
            out.append(self.narrow(axis, start, s))
            start += s
        return tuple(out)

    def chunk(self: "Tensor", chunks: int, dim: int = 0) -> tuple["Tensor", ...]:
        if chunks <= 0:
            raise RuntimeError(f"chunk: chunks must be positive, got {chunks}")
        n = self.shape[self._axis(dim, "chunk")]
        size = max(math.ceil(n / chunks), 1) if n else 1
        return self.split(size, dim)

    def tensor_split(self: "Tensor", sections: int, dim: int = 0) -> tuple["Tensor", ...]:
        n = self.shape[self._axis(dim, "tensor_split")]
        base, extra = divmod(n, sections)
        return self.split([base + 1] * extra + [base] * (sections - extra), dim)

    def unbind(self: "Tensor", dim: int = 0) -> tuple["Tensor", ...]:
        axis = self._axis(dim, "unbind")
        return tuple(p.squeeze(axis) for p in self.split(1, axis)) if self.shape[axis] else ()

    def tril(self: "Tensor", diagonal: int = 0) -> "Tensor":
        return _triangle(self, diagonal, lower=True)

    def triu(self: "Tensor", diagonal: int = 0) -> "Tensor":
        return _triangle(self, diagonal, lower=False)

    def diagonal(self: "Tensor", offset: int = 0, dim1: int = 0, dim2: int = 1) -> "Tensor":
        a, b = self._axis(dim1, "diagonal"), self._axis(dim2, "diagonal")
        if a == b:
            raise RuntimeError(f"diagonal: dim1 and dim2 cannot be the same dimension (got {dim1} and {dim2} "
                               f"for shape {tuple(self.shape)})")
        x = self.movedim((a, b), (-2, -1))
        rows, cols = x.shape[-2], x.shape[-1]
        if offset >= 0:
            x = x.narrow(-1, min(offset, cols), max(cols - offset, 0))
        else:
            x = x.narrow(-2, min(-offset, rows), max(rows + offset, 0))
        n = min(x.shape[-2], x.shape[-1])
        x = x.narrow(-2, 0, n).narrow(-1, 0, n)
        lead = tuple(x.shape[:-2])
        # the diagonal of an (n, n) block is every (n+1)-th element of its flattening
        flat = x.reshape(lead + (n * n,))
        flat = flat._pad_zeros([(0, 0)] * len(lead) + [(0, n)])
        return flat.reshape(lead + (n, n + 1)).narrow(-1, 0, 1).reshape(lead + (n,))

    def diag(self: "Tensor", diagonal: int = 0) -> "Tensor":
        if self.ndim == 1:
            n = self.shape[0] + abs(diagonal)
            from lazytensor.creation import eye
            e = eye(self.shape[0], dtype=dtypes.bool_, device=self.device)
            square = e._where(self.unsqueeze(0), self._const(0, shape=()))
            pads = [(0, 0), (0, 0)]
            if diagonal >= 0:
                pads = [(0, diagonal), (diagonal, 0)]
            else:
                pads = [(-diagonal, 0), (0, -diagonal)]
            out = square._pad_zeros(pads)
            assert tuple(out.shape) == (n, n)
            return out
        return self.diagonal(diagonal)


def _triangle(x: "Tensor", diagonal: int, lower: bool) -> "Tensor":
    if x.ndim < 2:
        raise RuntimeError(f"{'tril' if lower else 'triu'}: input tensor must have at least 2 dimensions")
    rows, cols = x.shape[-2], x.shape[-1]
    i = x._new(g.reshape(g.iota(rows, dtypes.int64), (rows, 1)))
    j = x._new(g.reshape(g.iota(cols, dtypes.int64), (1, cols)))
    keep = (j - i <= diagonal) if lower else (j - i >= diagonal)
    return keep._where(x, x._const(0, shape=()))


def _pad_by_index(x: "Tensor", pairs: list[tuple[int, int]], mode: str) -> "Tensor":
    """reflect/replicate/circular padding as a gather along each padded axis."""
    out = x
    for axis, (before, after) in enumerate(pairs):
        if before == 0 and after == 0:
            continue
        n = out.shape[axis]
        total = n + before + after
        pos = out._new(g.iota(total, dtypes.int64)) - before
        if mode == "replicate":
            src = pos.clamp(0, n - 1)
        elif mode == "circular":
            src = pos.remainder(n)
        else:
            if before >= n or after >= n:
                raise ValueError(f"pad: reflect padding ({before}, {after}) must be smaller than the dim size {n}")
            period = 2 * (n - 1)
            m = pos.remainder(period)
            src = (m >= n)._where(period - m, m)
        out = out.index_select(axis, src)
    return out

"""Control flow, sequences and optionals: If, Loop, Scan, Sequence*, Optional*.

Branch conditions and loop trip counts are read from the tensors (a realize each); the bodies are
then traced into the same lazy graph, so an unrolled loop still fuses across iterations.
"""
from __future__ import annotations

from lazytensor import dtypes
from lazytensor.creation import zeros
from lazytensor.functions import cat, stack
from lazytensor.onnx.ops import OpContext, Value, normalize_axis, register, static_ints, static_scalar
from lazytensor.tensor import Tensor

MAX_UNROLLED_ITERATIONS = 100_000


def _bool(ctx: OpContext, x: Value) -> bool:
    return bool(static_scalar(x))


@register("If")
def if_op(ctx: OpContext, args: list[Value]) -> Value:
    branch = ctx.attr("then_branch") if _bool(ctx, args[0]) else ctx.attr("else_branch")
    assert ctx.run_subgraph is not None
    return tuple(ctx.run_subgraph(branch, []))


@register("Loop")
def loop(ctx: OpContext, args: list[Value]) -> Value:
    body = ctx.attr("body")
    max_trips = static_scalar(args[0]) if args and args[0] is not None else None
    keep_going = _bool(ctx, args[1]) if len(args) > 1 and args[1] is not None else True
    state = list(args[2:])
    n_state = len(state)
    scans: list[list[Value]] = [[] for _ in range(len(body.outputs) - 1 - n_state)]
    assert ctx.run_subgraph is not None
    i = 0
    while keep_going and (max_trips is None or i < max_trips):
        if i >= MAX_UNROLLED_ITERATIONS:
            raise ctx.unsupported(f"loop ran past {MAX_UNROLLED_ITERATIONS} iterations")
        iter_t = ctx.tensor(i, dtypes.int64)
        cond_t = ctx.tensor(True, dtypes.bool_)
        outs = ctx.run_subgraph(body, [iter_t, cond_t] + state)
        keep_going = _bool(ctx, outs[0])
        state = list(outs[1:1 + n_state])
        for acc, value in zip(scans, outs[1 + n_state:]):
            acc.append(value)
        i += 1
    stacked = []
    for k, acc in enumerate(scans):
        if acc:
            stacked.append(stack(acc, 0) if isinstance(acc[0], Tensor) else acc)
        else:
            info = body.outputs[1 + n_state + k]
            stacked.append(zeros((0,), dtype=dtypes.float32, device=ctx.device) if info.elem_type else [])
    return tuple(state + stacked)


@register("Scan", since=9)
def scan(ctx: OpContext, args: list[Value]) -> Value:
    body = ctx.attr("body")
    n_scan = ctx.attr("num_scan_inputs")
    n_state = len(args) - n_scan
    state = list(args[:n_state])
    xs = list(args[n_state:])
    in_axes = ctx.attr("scan_input_axes") or [0] * n_scan
    in_dirs = ctx.attr("scan_input_directions") or [0] * n_scan
    n_out = len(body.outputs) - n_state
    out_axes = ctx.attr("scan_output_axes") or [0] * n_out
    out_dirs = ctx.attr("scan_output_directions") or [0] * n_out
    in_axes = [normalize_axis(a, x.ndim, ctx) for a, x in zip(in_axes, xs)]
    steps = xs[0].shape[in_axes[0]] if xs else 0
    outputs: list[list[Tensor]] = [[] for _ in range(n_out)]
    assert ctx.run_subgraph is not None
    for t in range(steps):
        slices = []
        for x, axis, direction in zip(xs, in_axes, in_dirs):
            pos = steps - 1 - t if direction else t
            slices.append(x.narrow(axis, pos, 1).squeeze(axis))
        outs = ctx.run_subgraph(body, state + slices)
        state = list(outs[:n_state])
        for acc, value in zip(outputs, outs[n_state:]):
            acc.append(value)
    results = []
    for acc, axis, direction in zip(outputs, out_axes, out_dirs):
        if direction:
            acc = acc[::-1]
        rank = acc[0].ndim + 1
        results.append(stack(acc, normalize_axis(axis, rank, ctx)))
    return tuple(state + results)


# ---- sequences: Python lists of Tensors -------------------------------------------------------------------

@register("SequenceEmpty")
def sequence_empty(ctx: OpContext, args: list[Value]) -> Value:
    return []


@register("SequenceConstruct")
def sequence_construct(ctx: OpContext, args: list[Value]) -> Value:
    return list(args)


def _position(ctx: OpContext, seq: list, pos: Value, default: int, insert: bool = False) -> int:
    if pos is None:
        return default
    p = static_ints(pos)[0]
    n = len(seq) + (1 if insert else 0)
    if p < 0:
        p += len(seq)
    if not 0 <= p < n:
        raise IndexError(f"{ctx.where()}: position {p} is out of range for a sequence of length {len(seq)}")
    return p


@register("SequenceInsert")
def sequence_insert(ctx: OpContext, args: list[Value]) -> Value:
    seq, value = list(args[0]), args[1]
    pos = _position(ctx, seq, args[2] if len(args) > 2 else None, len(seq), insert=True)
    seq.insert(pos, value)
    return seq


@register("SequenceAt")
def sequence_at(ctx: OpContext, args: list[Value]) -> Value:
    seq = args[0]
    return seq[_position(ctx, seq, args[1], 0)]


@register("SequenceErase")
def sequence_erase(ctx: OpContext, args: list[Value]) -> Value:
    seq = list(args[0])
    pos = _position(ctx, seq, args[1] if len(args) > 1 else None, len(seq) - 1)
    del seq[pos]
    return seq


@register("SequenceLength")
def sequence_length(ctx: OpContext, args: list[Value]) -> Value:
    return ctx.tensor(len(args[0]), dtypes.int64)


@register("SplitToSequence")
def split_to_sequence(ctx: OpContext, args: list[Value]) -> Value:
    x = args[0]
    axis = normalize_axis(ctx.attr("axis", 0), x.ndim, ctx)
    split = args[1] if len(args) > 1 else None
    if split is None:
        parts = [x.narrow(axis, i, 1) for i in range(x.shape[axis])]
        if ctx.attr("keepdims", 1) == 0:
            parts = [p.squeeze(axis) for p in parts]
        return parts
    sizes = static_ints(split)
    if split.ndim == 0:
        chunk = sizes[0]
        sizes = [chunk] * (x.shape[axis] // chunk) + ([x.shape[axis] % chunk] if x.shape[axis] % chunk else [])
    parts, start = [], 0
    for s in sizes:
        parts.append(x.narrow(axis, start, s))
        start += s
    return parts


@register("ConcatFromSequence")
def concat_from_sequence(ctx: OpContext, args: list[Value]) -> Value:
    seq = args[0]
    if ctx.attr("new_axis", 0):
        axis = normalize_axis(ctx.attr("axis"), seq[0].ndim + 1, ctx)
        return stack(seq, axis)
    axis = normalize_axis(ctx.attr("axis"), seq[0].ndim, ctx)
    return cat(seq, axis)


@register("SequenceMap")
def sequence_map(ctx: OpContext, args: list[Value]) -> Value:
    body = ctx.attr("body")
    seqs = [a for a in args if isinstance(a, list)]
    n = len(seqs[0]) if seqs else 0
    assert ctx.run_subgraph is not None
    results: list[list[Value]] = [[] for _ in body.outputs]
    for i in range(n):
        inputs = [a[i] if isinstance(a, list) else a for a in args]
        for acc, value in zip(results, ctx.run_subgraph(body, inputs)):
            acc.append(value)
    return tuple(results)


# ---- optionals: None is the empty optional -----------------------------------------------------------------

@register("Optional")
def optional(ctx: OpContext, args: list[Value]) -> Value:
    return args[0] if args else None


@register("OptionalHasElement")
def optional_has_element(ctx: OpContext, args: list[Value]) -> Value:
    return ctx.tensor(bool(args) and args[0] is not None, dtypes.bool_)


@register("OptionalGetElement")
def optional_get_element(ctx: OpContext, args: list[Value]) -> Value:
    if args[0] is None:
        raise ValueError(f"{ctx.where()}: the optional input is empty")
    return args[0]

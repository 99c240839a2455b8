"""`@lt.jit`: capture a function's kernel launches once, then replay them on new inputs.

A jitted function goes through three phases per input signature (the shapes, dtypes and devices
of its tensor arguments and the values of the others):

1. the first call runs normally: it compiles the kernels and creates lazily made state (an
   optimizer's moment buffers, for instance);
2. the second call runs normally under a `capture.Recorder`, which notes every plan step that
   runs and every tensor updated in place; from that record `_build_replay` makes a `Replay`;
3. every later call is the `Replay`: the recorded launches on the new arguments' buffers, without
   running the Python function, building a graph or scheduling. Tensors the function updated in
   place (parameters, optimizer state, running statistics) are re-pointed at their new values.
   On the CPU the launches go through one generated C driver (`ReplaySequence`): one call into C
   for the whole replay.

A call whose signature differs from every captured one starts again at phase 1 for that
signature (up to `MAX_SIGNATURES`; beyond that it raises). A replay reads the buffers it does not
update (weights) as they were at capture; when one of them gets a new value outside the call
(`load_state_dict`, an in-place op, an optimizer step outside the jitted function), or a guarded
host value changes, the next call captures again instead of replaying stale values.

What a replay cannot repeat, it refuses at capture time with an error: reading tensor values on
the host inside the function (Python may branch on them) and drawing random numbers (they would
repeat). Things the replay does not do: run Python side effects, update `.grad` attributes, or
record a graph for autograd through its outputs.
"""
from __future__ import annotations

import ctypes
import functools
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from lazytensor import capture, config
from lazytensor import graph as g
from lazytensor.autograd import register_leaf, unregister_leaf
from lazytensor.dtypes import DType
from lazytensor.realize import CompiledKernel, _listeners, _raise_kernel_error, compile_kernel, launch_kernel
from lazytensor.runtime.device import Buffer
from lazytensor.schedule_cache import PlannedStep
from lazytensor.tensor import Tensor

MAX_SIGNATURES = 16

# Where a replayed step finds a buffer: ("input", i) the i-th tensor argument; ("state", j) the
# current value of the j-th tensor updated in place; ("made", k) what step k wrote in this replay;
# ("fixed", buffer) a buffer that does not change between calls (weights that are only read,
# constants created inside the function).
Source = tuple[str, Any]


class JitError(RuntimeError):
    """A function cannot be captured for replay (the message says why and what to change)."""


@dataclass
class ReplayStep:
    """One launch of a replay: the kernel (None for a copy), the step, and where its operands are."""
    kernel: CompiledKernel | None
    step: PlannedStep
    operands: list[Source]
    scratch: Buffer | None    # the buffer reused every call when nothing outside the call sees it


@dataclass
class TensorSlot:
    """A tensor the replay hands back or re-points: where its value is, and its shape and dtype."""
    source: Source
    shape: tuple[int, ...]
    dtype: DType
    device: str


@dataclass
class Replay:
    """The captured launches of one signature, and what to do with their results."""
    steps: list[ReplayStep]
    outputs: Any                                  # the function's result with TensorSlots for tensors
    updated: list[tuple[Tensor, TensorSlot]]      # state tensors and where their new value is
    state_before: list[Tensor]                    # state j is read from state_before[j]'s buffer
    guards: list[tuple[Callable[[], Any], Any]]   # host values the capture depends on
    fixed: list[Buffer] = field(default_factory=list)   # buffers read as they were at capture (weights)
    checked_updates: int = 0   # capture.UPDATES when the fixed buffers were last known current
    sequence: "ReplaySequence | None" = None   # all launches in one call (CPU-only replays)

    def is_current(self) -> bool:
        """Whether the host values the capture baked in (learning rates …) are unchanged, and no fixed
        buffer it reads was replaced by a new value since (a weight loaded or updated outside the call)."""
        if not all(read() == value for read, value in self.guards):
            return False
        if self.checked_updates != capture.UPDATES:
            if self.reads_superseded():
                return False
            self.checked_updates = capture.UPDATES
        return True

    def reads_superseded(self) -> bool:
        """A fixed operand's tensor got a new value after this capture (see capture.SUPERSEDED)."""
        return any(capture.superseded_since(buf, self.checked_updates) for buf in self.fixed)

    def run(self, inputs: list[Buffer]) -> Any:
        """Launch every step on `inputs`, re-point the updated tensors, return the outputs."""
        states = [t._buffer() for t in self.state_before]
        if self.sequence is not None and not _listeners and config.DEBUG < 2:
            # one call for every launch (a profiler or kernel counter listening gets them one by one)
            return self._finish(self.sequence.run(self.steps, inputs, states), inputs, states)
        made: list[Buffer] = []

        def resolve(src: Source) -> Buffer:
            return _resolve(src, made, inputs, states)

        for rs in self.steps:
            step = rs.step
            out = rs.scratch if rs.scratch is not None else \
                Buffer(step.device, step.numel * step.dtype.itemsize).allocate()
            made.append(out)
            operands = [resolve(src) for src in rs.operands]
            if rs.kernel is None:
                if step.kind == "copy":
                    out.copyin(operands[0].copyout())
            elif step.numel:
                launch_kernel(rs.kernel, step, out, operands)
        return self._finish(made, inputs, states)

    def _finish(self, made: list[Buffer], inputs: list[Buffer], states: list[Buffer]) -> Any:
        """Re-point the updated tensors at their new buffers; the outputs as tensors."""
        def resolve(src: Source) -> Buffer:
            return _resolve(src, made, inputs, states)

        def as_tensor(slot: TensorSlot) -> Tensor:
            return Tensor._from_node(g.buffer(resolve(slot.source), slot.dtype, slot.shape), slot.device)

        for tensor, slot in self.updated:
            _repoint(tensor, resolve(slot.source), slot)
        return _map_structure(self.outputs, as_tensor, TensorSlot)


def _resolve(src: Source, made: list[Buffer], inputs: list[Buffer], states: list[Buffer]) -> Buffer:
    """The buffer a Source names in this call."""
    kind, where = src
    if kind == "made":
        return made[where]
    if kind == "input":
        return inputs[where]
    if kind == "state":
        return states[where]
    return where


class ReplaySequence:
    """A replay whose steps are all CPU kernels (and alloc steps), run by one CPUSequence call: the
    argument array holds every launch's buffer addresses; those that are the same every call (fixed
    weights, scratch buffers) are written once per thread, the others (arguments, state, outputs
    that leave the call) before each call."""

    def __init__(self, steps: list[ReplayStep]) -> None:
        from lazytensor.runtime.device import get_runtime
        self.kernels = [(k, rs) for k, rs in enumerate(steps) if rs.kernel is not None and rs.step.numel]
        self.fresh = [k for k, rs in enumerate(steps) if rs.scratch is None]   # a new buffer every call
        self.runner = get_runtime("CPU").sequence([rs.kernel.program for _, rs in self.kernels])
        self.fixed: list[tuple[int, Buffer]] = []        # (argument position, buffer)
        self.per_call: list[tuple[int, Source]] = []     # (argument position, where the buffer is)
        self.error_positions: list[int] = []
        position = 0
        for k, rs in self.kernels:
            for src in [("made", k)] + rs.operands:
                kind, where = src
                if kind == "fixed":
                    self.fixed.append((position, where))
                elif kind == "made" and steps[where].scratch is not None:
                    self.fixed.append((position, steps[where].scratch))
                else:
                    self.per_call.append((position, src))
                position += 1
            self.error_positions.append(position)
            position += 1
        self.size = position
        self._per_thread = threading.local()

    def _arguments(self) -> tuple[Any, np.ndarray]:
        """This thread's argument array (fixed addresses filled in) and error buffer."""
        found = getattr(self._per_thread, "arguments", None)
        if found is None:
            err = np.zeros(4, dtype=np.int64)
            arguments = (ctypes.c_void_p * self.size)()
            for position, buf in self.fixed:
                arguments[position] = buf.allocate().handle.address
            for position in self.error_positions:
                arguments[position] = err.ctypes.data
            found = self._per_thread.arguments = (arguments, err)
        return found

    def run(self, steps: list[ReplayStep], inputs: list[Buffer], states: list[Buffer]) -> list[Buffer]:
        """Allocate this call's fresh buffers, launch every kernel in one call; the buffers by step."""
        made: list[Buffer] = [rs.scratch for rs in steps]   # type: ignore[misc]
        for k in self.fresh:
            step = steps[k].step
            made[k] = Buffer(step.device, step.numel * step.dtype.itemsize).allocate()
        arguments, err = self._arguments()
        for position, src in self.per_call:
            arguments[position] = _resolve(src, made, inputs, states).allocate().handle.address
        failed = self.runner(arguments)
        for _, rs in self.kernels:
            rs.kernel.launches += 1
        if failed >= 0:
            _, rs = self.kernels[failed]
            _raise_kernel_error(err, rs.step, rs.kernel)
        return made


class JitFunction:
    """A function wrapped by `lt.jit` (see the module docstring for how calls proceed)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.calls: dict[tuple, int] = {}
        self.replays: dict[tuple, Replay] = {}
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tensors: list[Tensor] = []
        key = _signature(args, tensors) if not kwargs else _signature((args, kwargs), tensors)
        replay = self.replays.get(key)
        if replay is not None:
            if replay.is_current():
                return replay.run([t._buffer() for t in tensors])
            del self.replays[key]   # a learning rate (or another guarded host value) changed: capture again
        seen = self.calls.get(key, 0)
        if seen == 0 and len(self.calls) >= MAX_SIGNATURES:
            raise JitError(f"jit({self.__name__}): called with more than {MAX_SIGNATURES} different input "
                           f"signatures (now {_describe_signature(tensors)}); pass tensors of fixed shapes "
                           "and dtypes, or do not jit this function")
        self.calls[key] = seen + 1
        if seen == 0:
            result = self.fn(*args, **kwargs)
            _realize_structure(result)
            return result
        result, replay = self._capture(args, kwargs, tensors)
        self.replays[key] = replay
        return result

    def reset(self) -> None:
        """Forget every capture (the next calls run and capture again)."""
        self.calls.clear()
        self.replays.clear()

    def _capture(self, args: tuple, kwargs: dict, tensors: list[Tensor]) -> tuple[Any, Replay]:
        inputs = [t._buffer() for t in tensors]
        recorder = capture.Recorder(input_ids={id(buf) for buf in inputs})
        if capture.ACTIVE is not None:
            raise JitError(f"jit({self.__name__}): jitted functions cannot call each other while capturing")
        capture.ACTIVE = recorder
        try:
            result = self.fn(*args, **kwargs)
            _realize_structure(result)
            for tensor, _ in recorder.updates.values():
                tensor.realize()
        finally:
            capture.ACTIVE = None
        name = f"jit({self.__name__})"
        if recorder.host_reads:
            raise JitError(f"{name}: the function reads tensor values on the host ({recorder.host_reads[0]} "
                           "via .item()/.numpy()/bool()/print) while being captured; a replay cannot repeat "
                           "Python decisions made on them. Move the read out of the jitted function.")
        if recorder.frozen:
            raise JitError(f"{name}: {recorder.frozen[0]} keeps a per-call value in Python that the kernels "
                           "read; a replay would freeze it. Use an optimizer that keeps it on the device "
                           "(SGD, Adam, AdamW, RMSprop) or do not jit this function.")
        if recorder.random_draws:
            raise JitError(f"{name}: the function draws random numbers (rand/randn/dropout); a replay would "
                           "repeat the same numbers every call. Draw them outside and pass them in, or "
                           "use the module in eval mode.")
        return result, _build_replay(recorder, inputs, tensors, result)


def jit(fn: Callable[..., Any]) -> JitFunction:
    """Decorator: capture fn's kernel launches on its second call and replay them afterwards.

    Tensor arguments must keep their shapes, dtypes and devices between calls (a new signature is
    captured separately); other arguments are part of the signature by value."""
    return JitFunction(fn)


# ---- building the replay ----

def _build_replay(recorder: capture.Recorder, inputs: list[Buffer], input_tensors: list[Tensor],
                  result: Any) -> Replay:
    """Turn a record into launches whose operands say where each buffer comes from."""
    input_index = {id(t): i for i, t in enumerate(input_tensors)}
    sources: dict[int, Source] = {}
    for i, buf in enumerate(inputs):
        sources.setdefault(id(buf), ("input", i))
    state_before: list[Tensor] = []
    for tensor, before in recorder.updates.values():
        if before is not None and id(before) not in sources:
            sources[id(before)] = ("state", len(state_before))
            state_before.append(tensor)

    def source_of(buf: Buffer) -> Source:
        return sources.get(id(buf), ("fixed", buf))

    steps: list[ReplayStep] = []
    for k, rec in enumerate(recorder.steps):
        kernel = None
        if rec.step.kind == "kernel" and rec.step.numel:
            kernel = compile_kernel(rec.step.ast, rec.step.device)
        steps.append(ReplayStep(kernel, rec.step, [source_of(b) for b in rec.operands], None))
        sources[id(rec.out)] = ("made", k)

    def slot_of(t: Tensor) -> TensorSlot:
        return TensorSlot(source_of(t._buffer()), tuple(t.shape), t.dtype, t.device)

    outputs = _map_structure(result, slot_of, Tensor)
    updated = []
    for tensor, _ in recorder.updates.values():
        if id(tensor) in input_index:
            raise JitError("jit: the function updates one of its tensor arguments in place "
                           f"({capture.describe(tensor)}); return the new value instead")
        updated.append((tensor, slot_of(tensor)))
    escaping = {slot.source[1] for slot in _slots(outputs) if slot.source[0] == "made"}
    escaping |= {slot.source[1] for _, slot in updated if slot.source[0] == "made"}
    for k, rs in enumerate(steps):
        if k not in escaping:
            rs.scratch = recorder.steps[k].out   # nobody outside the call sees it: reuse every call
    fixed = list({id(src[1]): src[1] for rs in steps for src in rs.operands if src[0] == "fixed"}.values())
    for buf in fixed:
        source_ref = capture.DERIVED.get(buf)
        source = source_ref() if source_ref is not None else None
        if source is not None and id(source) in sources:
            raise JitError("jit: a matmul in the function reads a packed copy (made once, outside the call) "
                           "of a tensor the function then updates in place; a replay would keep reading the "
                           "copy of its first value. Do the matmul after the update, or mark the tensor "
                           "requires_grad so the packing stays in the graph.")
    replay = Replay(steps, outputs, updated, state_before, recorder.guards, fixed, capture.UPDATES)
    if steps and all(rs.step.device == "CPU" and rs.step.kind != "copy" for rs in steps):
        replay.sequence = ReplaySequence(steps)
    return replay


def _repoint(tensor: Tensor, buf: Buffer, slot: TensorSlot) -> None:
    """Make a state tensor hold the buffer of its new value (a grad leaf stays registered)."""
    node = g.buffer(buf, slot.dtype, slot.shape)
    if tensor._is_leaf_grad:
        unregister_leaf(tensor.node)
        tensor.node = node
        register_leaf(node, tensor)
    else:
        tensor.node = node
    tensor._version += 1


# ---- argument and result structures ----

def _tensor_arguments(value: Any) -> list[Tensor]:
    """Every Tensor in nested tuples/lists/dicts, in a fixed order."""
    found: list[Tensor] = []
    _map_structure(value, found.append, Tensor)
    return found


def _signature(value: Any, tensors: list[Tensor]) -> tuple:
    """What must match for a replay: tensors by shape/dtype/device, everything else by value.
    Appends the tensors found (in a fixed order) to `tensors`."""
    if isinstance(value, Tensor):
        tensors.append(value)
        return (value.node.shape, value.node.dtype, value.device)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, *(_signature(v, tensors) for v in value))
    if isinstance(value, dict):
        return ("dict", *((k, _signature(v, tensors)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        raise JitError(f"jit: argument {value!r} of type {type(value).__name__} is not hashable; "
                       "jitted functions take tensors and hashable values") from None
    return ("value", type(value).__name__, value)


def _describe_signature(tensors: list[Tensor]) -> str:
    return ", ".join(f"{capture.describe(t)} on {t.device}" for t in tensors)


def _map_structure(value: Any, fn: Callable[[Any], Any], leaf_type: type) -> Any:
    """Apply fn to every leaf of leaf_type inside nested tuples/lists/dicts; keep the rest."""
    if isinstance(value, leaf_type):
        return fn(value)
    if isinstance(value, tuple):
        return type(value)(*(_map_structure(v, fn, leaf_type) for v in value)) if hasattr(value, "_fields") \
            else tuple(_map_structure(v, fn, leaf_type) for v in value)
    if isinstance(value, list):
        return [_map_structure(v, fn, leaf_type) for v in value]
    if isinstance(value, dict):
        return {k: _map_structure(v, fn, leaf_type) for k, v in value.items()}
    return value


def _slots(outputs: Any) -> list[TensorSlot]:
    found: list[TensorSlot] = []
    _map_structure(outputs, found.append, TensorSlot)
    return found


def _realize_structure(result: Any) -> None:
    from lazytensor import realize
    realize(*_tensor_arguments(result))

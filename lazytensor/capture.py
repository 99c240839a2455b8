"""Recording what a function does to device buffers, for `lt.jit`.

While a `Recorder` is ACTIVE, `run_plan` reports every step it runs (the kernel, the buffer it
wrote and the buffers it read), and the front end reports every tensor whose value is about to
be replaced in place (`x.add_(1)`, an optimizer's parameter update), with the buffer that held
its value before. From that record `lazytensor/jit.py` builds a replay: the same launches on new
buffers, with the updated tensors re-pointed afterwards.

This module holds only the record; it knows nothing of how a replay runs.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from lazytensor.ops import Op
from lazytensor.schedule import REALIZED

if TYPE_CHECKING:
    from lazytensor.runtime.device import Buffer
    from lazytensor.schedule_cache import PlannedStep
    from lazytensor.tensor import Tensor


@dataclass
class RecordedStep:
    """One step of a plan as it ran: what it computed, the buffer it wrote, the buffers it read."""
    step: "PlannedStep"
    out: "Buffer"
    operands: list["Buffer"]


@dataclass
class Recorder:
    """Everything a captured call did that a replay must repeat."""
    steps: list[RecordedStep] = field(default_factory=list)
    # id(tensor) -> (tensor, the buffer holding its value before its first in-place update, or None)
    updates: dict[int, tuple["Tensor", "Buffer | None"]] = field(default_factory=dict)
    random_draws: int = 0
    host_reads: list[str] = field(default_factory=list)
    # (read, value at capture): a replay is valid only while read() still returns value
    guards: list[tuple[Callable[[], Any], Any]] = field(default_factory=list)
    # host values that change every call but live in Python (a replay would freeze them)
    frozen: list[str] = field(default_factory=list)
    # ids of the buffers passed in as the function's tensor arguments (a replay passes others)
    input_ids: set[int] = field(default_factory=set)

    def record_step(self, step: "PlannedStep", out: "Buffer", operands: list["Buffer"]) -> None:
        self.steps.append(RecordedStep(step, out, list(operands)))

    def note_update(self, tensor: "Tensor") -> None:
        """Remember tensor and the buffer of its value before the update (realized now if lazy,
        outside the record, so that a replay reads the value the tensor has at each call)."""
        if id(tensor) in self.updates:
            return
        global ACTIVE
        if buffer_of(tensor) is None:
            ACTIVE = None
            try:
                tensor.realize()
            finally:
                ACTIVE = self
        self.updates[id(tensor)] = (tensor, buffer_of(tensor))


ACTIVE: Recorder | None = None


def is_capture_input(buffer: "Buffer") -> bool:
    """buffer holds a tensor argument of the function being captured: a replay passes new data in its
    place, so nothing computed from it may be kept outside the record (see tensor_linalg's packed
    copies)."""
    return ACTIVE is not None and id(buffer) in ACTIVE.input_ids


def buffer_of(tensor: "Tensor") -> "Buffer | None":
    """The buffer holding tensor's value now, or None while it is an unrealized graph."""
    node = tensor.node
    if node.op is Op.BUFFER:
        return node.arg
    return REALIZED.get(node)


# Buffers whose tensor got a new value outside any capture (a weight changed by load_state_dict, an
# in-place op, an optimizer step run outside the jitted function), with the update count at that time.
# A replay that reads such a buffer as a fixed operand was captured with the old value: jit captures
# again instead of replaying it (see Replay.reads_superseded in lazytensor/jit.py).
SUPERSEDED: "weakref.WeakKeyDictionary[Buffer, int]" = weakref.WeakKeyDictionary()
UPDATES = 0
"""How many times a realized tensor got a new value outside a capture (replays compare it first)."""


# Buffers computed once from a stored value and kept outside any graph (a weight packed for matmul under
# no_grad), each with a weak reference to the buffer it was computed from: a replay reading the copy is
# stale when that source is superseded (or gone: its tensor moved on to another value).
DERIVED: "weakref.WeakKeyDictionary[Buffer, weakref.ref[Buffer]]" = weakref.WeakKeyDictionary()


def note_derived(copy: "Buffer", source: "Buffer") -> None:
    """copy holds a value computed from source's current contents (see DERIVED)."""
    DERIVED[copy] = weakref.ref(source)


def superseded_since(buffer: "Buffer", updates: int) -> bool:
    """buffer, or the buffer it was derived from, got a new value after update count `updates`."""
    if SUPERSEDED.get(buffer, -1) > updates:
        return True
    source_ref = DERIVED.get(buffer)
    if source_ref is None:
        return False
    source = source_ref()
    return source is None or SUPERSEDED.get(source, -1) > updates


def note_update(tensor: "Tensor") -> None:
    """Call before replacing tensor's value node in place: the running capture records it; outside a
    capture, the buffer holding the old value is marked superseded for the replays that read it."""
    if ACTIVE is not None:
        ACTIVE.note_update(tensor)
        return
    old = buffer_of(tensor)
    if old is not None:
        global UPDATES
        UPDATES += 1
        SUPERSEDED[old] = UPDATES


def note_random_draw() -> None:
    """Random numbers were drawn: their seed and counter become constants of the captured kernels."""
    if ACTIVE is not None:
        ACTIVE.random_draws += 1


def add_guard(read: Callable[[], Any]) -> None:
    """Host values a capture depends on (an optimizer's learning rate): when read() returns something
    else at a later call, the function is captured again instead of replayed."""
    if ACTIVE is not None:
        ACTIVE.guards.append((read, read()))


def note_frozen(what: str) -> None:
    """A host value that changes every call (a step count kept in Python) went into the kernels."""
    if ACTIVE is not None and what not in ACTIVE.frozen:
        ACTIVE.frozen.append(what)


def note_host_read(what: str) -> None:
    """A tensor's value was read on the host (Python code may branch on it)."""
    if ACTIVE is not None:
        ACTIVE.host_reads.append(what)


def describe(value: Any) -> str:
    """Shape and dtype of a tensor for messages."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    return f"{getattr(dtype, 'name', dtype)}{list(shape) if shape is not None else ''}"

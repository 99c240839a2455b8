"""Run a schedule: lower, optimize, render and compile each kernel (cached), allocate, launch.

`realize(roots, device)` is the one entry point the front end uses; the pipeline it runs is
listed in `compile_kernel` and `run_schedule`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from lazytensor import capture, config, kernel_record
from lazytensor import graph as g
from lazytensor.graph import Node
from lazytensor.ops import Op
from lazytensor.schedule import create_schedule
from lazytensor.schedule_cache import PLANS, Plan, PlannedStep, plan_from_schedule, structure_key
from lazytensor.runtime.device import Buffer, get_runtime

from lazytensor.codegen.kernel import LoopKernel
from lazytensor.codegen.lower import lower_kernel, validate_indices
from lazytensor.codegen.hoist import is_row_kernel, optimize_cpu
from lazytensor.codegen.gpu import optimize_gpu
from lazytensor.codegen.opt import optimize


@dataclass
class CompiledKernel:
    """A kernel ready to launch, with what it took to get here (for DEBUG, VIZ and profiling)."""
    name: str
    source: str
    loop_kernel: LoopKernel
    program: object
    was_cached: bool
    compile_seconds: float
    launches: int = 0


@dataclass
class LaunchRecord:
    """One kernel launch, for DEBUG=2 and profilers."""
    name: str
    seconds: float
    numel: int
    bytes_moved: int
    reason: str


_BUFFER, _CONST = Op.BUFFER, Op.CONST   # (read through the enum class, a member costs ~80 ns: see graph.py)

_compiled: dict[tuple[str, Node], CompiledKernel] = {}
_errors = threading.local()   # .slots: this thread's kernel error slots (written only on an error), one
                              # array for all its launches, so the runtime resolves its address once
launch_log: list[LaunchRecord] = []
_listeners: list = []    # callables receiving each LaunchRecord (profilers)
_realize_observers: list = []   # callables (roots, plan, device) run before a plan; may return a callable
                                # run after it (VIZ: lazytensor/viz_capture.py)


class KernelCounter:
    """Context manager counting kernel launches (and their run time) while it is active:
    `with lt.count_kernels() as k: ...` then `k.kernels`, `k.seconds`."""

    def __init__(self) -> None:
        self.kernels = 0
        self.seconds = 0.0

    def _on_launch(self, record: LaunchRecord, *_: object) -> None:
        self.kernels += 1
        self.seconds += record.seconds

    def __enter__(self) -> "KernelCounter":
        _listeners.append(self._on_launch)
        return self

    def __exit__(self, *exc: object) -> None:
        _listeners.remove(self._on_launch)


def renderer_for(device: str):
    """The source renderer for a device."""
    if device == "CPU":
        from lazytensor.codegen.render.c import CRenderer
        return CRenderer()
    if device == "CL":
        from lazytensor.codegen.render.opencl import OpenCLRenderer
        return OpenCLRenderer()
    if device == "CUDA":
        from lazytensor.codegen.render.cuda import CUDARenderer
        return CUDARenderer()
    raise ValueError(f"no renderer for device {device}")


def optimize_for_device(loop_kernel: LoopKernel, device: str) -> LoopKernel:
    """The device's optimization passes; on the CPU with BEAM=n, with the beam-searched settings."""
    if device != "CPU":
        return optimize_gpu(loop_kernel)
    if config.BEAM > 0 and not config.NOOPT and not is_row_kernel(loop_kernel):
        from lazytensor.beam import beam_choices
        return optimize(loop_kernel, beam_choices(loop_kernel, config.BEAM))
    return optimize_cpu(loop_kernel)


def _compiled_key(ast: Node, device: str) -> tuple:
    """compile_kernel's memo key: the same AST on the same device under the same optimization settings."""
    return (device, ast, config.NOOPT, config.BEAM)


def compile_kernel(ast: Node, device: str) -> CompiledKernel:
    """Kernel AST → LoopKernel → optimized → source → program. Memoized on _compiled_key."""
    key = _compiled_key(ast, device)
    found = _compiled.get(key)
    if found is not None:
        return found
    if kernel_record.RECORDING:   # LAZYTENSOR_RECORD_KERNELS=DIR: keep every new kernel for the nvcc check
        kernel_record.record(ast, device)
    start = time.perf_counter()
    loop_kernel = lower_kernel(ast)
    if config.VALIDATE:
        validate_indices(loop_kernel)
    loop_kernel = optimize_for_device(loop_kernel, device)
    if config.VALIDATE:
        validate_indices(loop_kernel)   # optimization passes rewrite indices too
    renderer = renderer_for(device)
    source = renderer.render(loop_kernel)
    if config.DEBUG >= 4:
        print(f"--- source of {loop_kernel.name} ---\n{source}")
    program, cached = get_runtime(device).compile(source, loop_kernel.name, len(loop_kernel.buffers) + 1,
                                                  **renderer.launch_options(loop_kernel))
    ck = CompiledKernel(loop_kernel.name, source, loop_kernel, program, cached,
                        time.perf_counter() - start)
    _compiled[key] = ck
    return ck


def _nbytes(node: Node) -> int:
    return node.numel * node.dtype.itemsize


def run_plan(plan: Plan, inputs: list[Buffer]) -> list[Buffer]:
    """Run a plan's steps in order over the given input buffers; returns each root's buffer."""
    made: list[Buffer] = []
    sources = {"input": inputs, "item": made}   # a Ref (kind, k) is sources[kind][k]

    start_all = time.perf_counter()
    released = plan.released_after
    for k, step in enumerate(plan.steps):
        if k:
            for j in released[k - 1]:
                made[j] = None   # type: ignore[call-overload]  (its last reader has run: free for reuse)
        nbytes = step.nbytes
        out = Buffer(step.device, nbytes, get_runtime(step.device).alloc(nbytes))
        made.append(out)
        operands = [sources[kind][j] for kind, j in step.inputs]
        if capture.ACTIVE is not None:
            capture.ACTIVE.record_step(step, out, operands)
        if step.kind == "copy":
            out.copyin(operands[0].copyout())
            continue
        if step.kind == "alloc":   # written by a later kernel with several outputs
            continue
        if step.numel == 0:   # nothing to compute (and index math over a size-0 dim is undefined)
            continue
        ck = _compiled.get(_compiled_key(step.ast, step.device))   # (compile_kernel's memo, one call less)
        if ck is None:
            ck = compile_kernel(step.ast, step.device)
        launch_kernel(ck, step, out, operands)
    if config.DEBUG >= 1 and plan.steps:
        n_kernels = sum(1 for st in plan.steps if st.kind == "kernel")
        print(f"realize: {n_kernels} kernel(s), {(time.perf_counter() - start_all) * 1e3:.2f} ms")
    return [sources[kind][j] for kind, j in plan.roots]


def launch_kernel(ck: CompiledKernel, step: PlannedStep, out: Buffer, operands: list[Buffer]) -> float:
    """Run one compiled kernel writing `out` from `operands`; raises the kernel's own error (index out
    of range, integer division by zero). Returns the kernel's run time in seconds."""
    slots = getattr(_errors, "slots", None)
    if slots is None:
        array = np.zeros(4, dtype=np.int64)
        slots = _errors.slots = (array, memoryview(array))   # (the view reads a slot as a plain int)
    err, err_view = slots
    handles = [out.handle]
    for b in operands:
        handles.append(b.handle if b.handle is not None else b.allocate().handle)
    handles.append(err)
    seconds = ck.program(*handles)
    ck.launches += 1
    if err_view[0] != 0:
        _raise_kernel_error(err, step, ck)
    seconds = seconds or 0.0
    if _listeners or config.DEBUG >= 2:
        _report_launch(ck, step, out, operands, seconds)
    return seconds


def _report_launch(ck: CompiledKernel, step: PlannedStep, out: Buffer, operands: list[Buffer],
                   seconds: float) -> None:
    """Tell the listeners (profilers, kernel counters) about a launch; DEBUG=2 prints it."""
    moved = sum(b.nbytes for b in operands) + out.nbytes
    record = LaunchRecord(ck.name, seconds, step.numel, moved, step.reason)
    for listener in _listeners:
        listener(record, ck, step)
    if config.DEBUG >= 2:
        gbs = record.bytes_moved / max(record.seconds, 1e-9) / 1e9
        print(f"  {ck.name:<28} {record.seconds * 1e6:9.1f} us  {gbs:7.2f} GB/s  "
              f"{'cached' if ck.was_cached else 'compiled'}  ({step.reason})")


def _raise_kernel_error(err_slots: np.ndarray, step: PlannedStep, ck: CompiledKernel) -> None:
    """Raise the error a kernel reported in its error buffer, after clearing the buffer (kernels only
    write it on an error, so it must be clean for the next launch)."""
    err = err_slots.copy()
    err_slots[:] = 0
    ops = "+".join(step.fused_ops)
    if err[0] == 1:
        raise IndexError(f"index {int(err[1])} is out of bounds for dimension with size {int(err[2])} "
                         f"(in kernel {ck.name}: {ops}); indices must be in [0, size) after negative "
                         "indices are wrapped")
    raise ZeroDivisionError(f"integer division by zero (in kernel {ck.name}: {ops})")


def plan_for(roots: list[Node], device: str) -> tuple[Plan, list[Buffer]]:
    """The plan computing roots (from the structure cache, or scheduled now) and its input buffers."""
    key, buffers = structure_key(roots)
    key = (device, key)
    plan = None if config.DEBUG >= 3 else PLANS.get(key)
    if plan is None:
        items, final = create_schedule(roots, device)
        if config.DEBUG >= 3:
            from lazytensor.explain import explain_schedule
            print(explain_schedule(items, show_ast=True))
        plan = plan_from_schedule(items, [final[r] for r in roots], buffers)
        PLANS.put(key, plan)
    return plan, buffers


def realize(roots: list[Node], device: str) -> list[Node]:
    """Compute roots; returns, for each, a BUFFER node holding its value."""
    plan, buffers = plan_for(roots, device)
    if _realize_observers:
        after_run = [observe(roots, plan, device) for observe in _realize_observers]
        results = run_plan(plan, buffers)
        for done in after_run:
            if done is not None:
                done()
    else:
        results = run_plan(plan, buffers)
    out = []
    for r, buf in zip(roots, results):
        if r.op is _BUFFER:
            out.append(r)
            continue
        if r.op is not _CONST:   # a constant stays a constant in later graphs (cheaper than a load)
            r.realized = buf       # (REALIZED[r] = buf, without a call)
        out.append(g.buffer(buf, r.dtype, r.shape))
    return out

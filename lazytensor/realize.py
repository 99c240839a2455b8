"""Run a schedule: lower, optimize, render and compile each kernel (cached), allocate, launch.

`realize(roots, device)` is the one entry point the front end uses; the pipeline it runs is
listed in `compile_kernel` and `run_schedule`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lazytensor import config
from lazytensor.graph import Node
from lazytensor.ops import Op
from lazytensor.schedule import REALIZED, ScheduleItem, create_schedule
from lazytensor.runtime.device import Buffer, get_runtime

from lazytensor.codegen.kernel import LoopKernel
from lazytensor.codegen.lower import lower_kernel, validate_indices
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


_compiled: dict[tuple[str, Node], CompiledKernel] = {}
launch_log: list[LaunchRecord] = []
_listeners: list = []    # callables receiving each LaunchRecord (profilers)


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


def compile_kernel(ast: Node, device: str) -> CompiledKernel:
    """Kernel AST → LoopKernel → optimized → source → program. Memoized on (device, ast, NOOPT)."""
    key = (device, ast, config.NOOPT)
    found = _compiled.get(key)
    if found is not None:
        return found
    start = time.perf_counter()
    loop_kernel = lower_kernel(ast)
    if config.VALIDATE:
        validate_indices(loop_kernel)
    loop_kernel = optimize(loop_kernel)
    if config.VALIDATE:
        validate_indices(loop_kernel)   # optimization passes rewrite indices too
    source = renderer_for(device).render(loop_kernel)
    if config.DEBUG >= 4:
        print(f"--- source of {loop_kernel.name} ---\n{source}")
    program, cached = get_runtime(device).compile(source, loop_kernel.name, len(loop_kernel.buffers) + 1)
    ck = CompiledKernel(loop_kernel.name, source, loop_kernel, program, cached,
                        time.perf_counter() - start)
    _compiled[key] = ck
    return ck


def _nbytes(node: Node) -> int:
    return node.numel * node.dtype.itemsize


def run_schedule(items: list[ScheduleItem]) -> dict[Node, Buffer]:
    """Run items in order; returns the buffer made for each item's output node."""
    made: dict[Node, Buffer] = {}

    def buffer_of(n: Node) -> Buffer:
        return n.arg if n.op is Op.BUFFER else made[n]

    start_all = time.perf_counter()
    for item in items:
        out = Buffer(item.device, _nbytes(item.output)).allocate()
        if item.kind == "copy":
            src = buffer_of(item.inputs[0])
            out.copyin(src.copyout())
            made[item.output] = out
            continue
        if item.output.numel == 0:   # nothing to compute (and index math over a size-0 dim is undefined)
            made[item.output] = out
            continue
        ck = compile_kernel(item.ast, item.device)
        err = np.zeros(4, dtype=np.int64)
        handles = [out.handle] + [buffer_of(n).allocate().handle for n in item.inputs] + [err]
        seconds = ck.program(*handles)
        ck.launches += 1
        if err[0] != 0:
            _raise_kernel_error(err, item, ck)
        record = LaunchRecord(ck.name, seconds or 0.0, item.output.numel,
                              _nbytes(item.output) + sum(_nbytes(n) for n in item.inputs), item.reason)
        for listener in _listeners:
            listener(record, ck, item)
        if config.DEBUG >= 2:
            gbs = record.bytes_moved / max(record.seconds, 1e-9) / 1e9
            print(f"  {ck.name:<28} {record.seconds * 1e6:9.1f} us  {gbs:7.2f} GB/s  "
                  f"{'cached' if ck.was_cached else 'compiled'}  ({item.reason})")
        made[item.output] = out
    if config.DEBUG >= 1 and items:
        n_kernels = sum(1 for i in items if i.kind == "kernel")
        print(f"realize: {n_kernels} kernel(s), {(time.perf_counter() - start_all) * 1e3:.2f} ms")
    return made


def _raise_kernel_error(err: np.ndarray, item: ScheduleItem, ck: CompiledKernel) -> None:
    ops = "+".join(item.fused_ops)
    if err[0] == 1:
        raise IndexError(f"index {int(err[1])} is out of bounds for dimension with size {int(err[2])} "
                         f"(in kernel {ck.name}: {ops}); indices must be in [0, size) after negative "
                         "indices are wrapped")
    raise ZeroDivisionError(f"integer division by zero (in kernel {ck.name}: {ops})")


def realize(roots: list[Node], device: str) -> list[Node]:
    """Compute roots; returns, for each, a BUFFER node holding its value."""
    if config.DEBUG >= 3:
        from lazytensor.explain import explain_schedule
        items, final = create_schedule(roots, device)
        print(explain_schedule(items))
    else:
        items, final = create_schedule(roots, device)
    made = run_schedule(items)
    out = []
    from lazytensor import graph as g
    for r in roots:
        node = final[r]
        if node.op is Op.BUFFER:
            out.append(node)
            continue
        buf = made[node]
        REALIZED[r] = buf
        out.append(g.buffer(buf, r.dtype, r.shape))
    return out

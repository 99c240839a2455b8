"""VIZ: the fused kernel graph (and the op graph before scheduling) as a self-contained HTML page.

    lt.viz.show(loss)                    # the kernels realizing `loss` would run (nothing runs)
    lt.viz.show(train_step, path="step.html")   # call it; every realize inside, with per-kernel times
    VIZ=1 python train.py                # one page per new schedule, under VIZ_DIR (./lazytensor-viz)

The page works offline (no CDN, no server): kernel boxes list their fused ops, edges carry the
buffer's dtype and shape, every kernel says why it is a kernel of its own, and clicking one shows
its generated source. The stages: `capture` (record realizes) → `build_kernel_graph` /
`build_op_graph` (networkx) → viz_render.render_page (layout and HTML).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lazytensor import config
from lazytensor.explain import estimate_cost, summarize_ops
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op
from lazytensor.schedule import ScheduleItem, create_schedule


@dataclass
class KernelRecord:
    """What the page shows about one kernel (or device copy) of a schedule."""
    index: int
    kind: str
    name: str
    fused_ops: list[str]
    reason: str
    dtype: str
    shape: tuple[int, ...]
    flops: int
    bytes: int
    source: str
    is_output: bool
    seconds: float | None = None       # total over launches, None when the schedule has not run
    launches: int = 0
    compile_status: str = ""


@dataclass
class ScheduleRecord:
    """One realize (or a schedule made without running): its items, kernels and timings."""
    title: str
    device: str
    items: list[ScheduleItem]
    roots: list[Node]                   # the scheduled graph's roots (after algebraic simplification)
    kernels: list[KernelRecord] = field(default_factory=list)
    ran: bool = False


def _render_source(item: ScheduleItem) -> tuple[str, str]:
    """(kernel name, generated source) of a kernel item, compiling it if needed (cached)."""
    if item.kind == "copy":
        return f"copy_to_{item.device}", f"// device copy to {item.device}: no kernel source"
    if item.kind == "alloc":
        return "alloc", "// a buffer the next kernel writes besides its own output: no kernel source"
    if item.output.numel == 0:
        return "empty", "// an empty output: nothing is launched"
    from lazytensor.realize import compile_kernel   # realize imports us lazily too: keep the cycle open
    try:
        ck = compile_kernel(item.ast, item.device)
    except Exception as err:   # the page must still show the schedule when one kernel fails to build
        return "failed", f"// this kernel failed to compile:\n// {type(err).__name__}: {err}"
    return ck.name, ck.source


def record_schedule(items: list[ScheduleItem], roots: list[Node], device: str, title: str) -> ScheduleRecord:
    """A ScheduleRecord for a schedule (kernel names and sources filled in; no times yet)."""
    record = ScheduleRecord(title, device, items, roots)
    root_set = set(roots)
    for k, item in enumerate(items):
        flops, nbytes = estimate_cost(item)
        name, source = _render_source(item)
        record.kernels.append(KernelRecord(k, item.kind, name, list(item.fused_ops), item.reason,
                                           item.output.dtype.name, tuple(item.output.shape), flops, nbytes,
                                           source, item.output in root_set))
    return record


class Capture:
    """Records every realize while active (`with lt.viz.capture() as cap:`), with kernel times."""

    def __init__(self, only_new_plans: bool = False) -> None:
        self.schedules: list[ScheduleRecord] = []
        self.only_new_plans = only_new_plans
        self._seen_plans: dict[int, Any] = {}     # id → plan (kept alive so ids stay unique)
        self.pages_written = 0

    def observe(self, roots: list[Node], plan: Any, device: str) -> Callable[[], None] | None:
        """Called by realize before a plan runs; returns what to call after it ran."""
        if self.only_new_plans and id(plan) in self._seen_plans:
            return None
        self._seen_plans[id(plan)] = plan
        items, final = create_schedule(roots, device)
        if len(items) != len(plan.steps):   # a plan replayed for this graph must match its schedule
            return None
        n = len(self.schedules) + self.pages_written + 1
        kernel_count = sum(1 for i in items if i.kind == "kernel")
        record = record_schedule(items, [final[r] for r in roots], device,
                                 f"realize #{n}: {kernel_count} kernel(s) on {device}")
        step_index = {id(step): k for k, step in enumerate(plan.steps)}
        realize = _realize_module()

        def on_launch(launch, ck, step) -> None:
            k = step_index.get(id(step))
            if k is None:
                return
            kernel = record.kernels[k]
            kernel.seconds = (kernel.seconds or 0.0) + launch.seconds
            kernel.launches += 1
            if not kernel.compile_status:
                kernel.compile_status = "disk cache" if ck.was_cached else "compiled"

        realize._listeners.append(on_launch)

        def done() -> None:
            realize._listeners.remove(on_launch)
            record.ran = True
            if self.only_new_plans:   # VIZ=1: written out, not kept (a long run must not grow memory)
                self.pages_written += 1
                _write_viz_dir_page(record, self.pages_written)
            else:
                self.schedules.append(record)
        return done

    def __enter__(self) -> "Capture":
        _realize_module()._realize_observers.append(self.observe)
        return self

    def __exit__(self, *exc: object) -> None:
        _realize_module()._realize_observers.remove(self.observe)


def _realize_module():
    import lazytensor.realize  # noqa: F401  (the package's realize() function shadows the module name)
    return sys.modules["lazytensor.realize"]


def capture() -> Capture:
    """`with lt.viz.capture() as cap:` records every realize inside (cap.schedules)."""
    return Capture()


# ---- graphs ------------------------------------------------------------------------------------

def build_kernel_graph(record: ScheduleRecord, names: dict[int, str] | None = None):
    """networkx DiGraph: a node per kernel ("k<j>") and per input buffer ("b<i>"); an edge per
    buffer a kernel reads, labelled with its dtype and shape."""
    import networkx as nx
    graph = nx.DiGraph()
    names = names or {}
    produced_by = {item.output: k for k, item in enumerate(record.items)}
    buffer_id: dict[Node, str] = {}
    for k, item in enumerate(record.items):
        graph.add_node(f"k{k}", kind="kernel", kernel=k)
    for k, item in enumerate(record.items):
        for written in item.extra_outputs:   # a kernel with several outputs fills an alloc item's buffer
            graph.add_edge(f"k{k}", f"k{produced_by[written]}",
                           label=f"writes {written.dtype.name}{list(written.shape)}")
        for src in item.read_inputs:
            if src in produced_by:
                u = f"k{produced_by[src]}"
            else:
                if src not in buffer_id:
                    buffer_id[src] = f"b{len(buffer_id)}"
                    label = names.get(id(src.arg), "") if src.op is Op.BUFFER else ""
                    graph.add_node(buffer_id[src], kind="buffer", label=label or "input",
                                   value=f"{src.dtype.name}{list(src.shape)}")
                u = buffer_id[src]
            graph.add_edge(u, f"k{k}", label=f"{src.dtype.name}{list(src.shape)}")
    return graph


def build_op_graph(record: ScheduleRecord):
    """networkx DiGraph of the ops the scheduler saw (after algebraic simplification): every op
    node carries the kernels it was fused into (more than one when it is recomputed)."""
    import networkx as nx
    graph = nx.DiGraph()
    outputs = {item.output: k for k, item in enumerate(record.items)}
    kernels_of: dict[Node, list[int]] = {}
    for k, item in enumerate(record.items):
        body = item.output.srcs[0] if item.output.op is Op.CONTIGUOUS else item.output

        def is_input(node: Node, body: Node = body) -> bool:
            return node.op is Op.BUFFER or (node is not body and node in outputs)

        for node in toposort([body], stop=is_input):
            if not is_input(node):
                kernels_of.setdefault(node, []).append(k)
        kernels_of.setdefault(item.output, [k])
    number: dict[Node, int] = {}
    for node in toposort(record.roots):
        if node.op is Op.CONST:   # constants are folded into their user's label
            continue
        number[node] = len(number)
        consts = [s for s in node.srcs if s.op is Op.CONST]
        label = node.op.name.lower()
        if node.op is Op.REDUCE:
            label = f"reduce_{node.arg[0].name.lower()} {tuple(node.arg[1])}"
        elif node.op is Op.BUFFER:
            label = "buffer"
        if consts:
            label += " " + ", ".join(f"{c.arg:g}" if isinstance(c.arg, float) else str(c.arg) for c in consts)
        graph.add_node(f"o{number[node]}", label=label, value=f"{node.dtype.name}{list(node.shape)}",
                       kernels=kernels_of.get(node, []), output=node in outputs)
        for s in node.srcs:
            if s in number:
                graph.add_edge(f"o{number[s]}", f"o{number[node]}")
    return graph


# ---- entry points ------------------------------------------------------------------------------

def _tensors_of(value: Any) -> list:
    from lazytensor.tensor import Tensor
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Tensor) for v in value):
        return list(value)
    return []


def _buffer_names(names: Any) -> dict[int, str]:
    """{id(buffer): name} for `names` given as {name: Tensor} or an iterable of (name, Tensor)."""
    if names is None:
        return {}
    pairs = names.items() if isinstance(names, dict) else names
    found = {}
    for name, tensor in pairs:
        if tensor.node.op is Op.BUFFER:
            found[id(tensor.node.arg)] = name
    return found


def show(tensor_or_function: Any, path: str | Path | None = None, names: Any = None,
         title: str | None = None) -> Path:
    """Write the VIZ page and return its path.

    A tensor (or list of tensors) shows the kernels realizing it would run; nothing runs, so the
    page has no times. A function is called with no arguments: every realize inside it is recorded
    with per-kernel times (the page lets you pick one; the biggest is shown first). `names` maps
    names to tensors (e.g. `model.named_parameters()`) to label input buffers. The default path is
    VIZ_DIR/viz.html."""
    from lazytensor.viz_render import render_page
    buffer_names = _buffer_names(names)
    tensors = _tensors_of(tensor_or_function)
    if tensors:
        schedules = []
        for device in sorted({t.device for t in tensors}):
            roots = [t.node for t in tensors if t.device == device]
            items, final = create_schedule(roots, device)
            kernels = sum(1 for i in items if i.kind == "kernel")
            schedules.append(record_schedule(items, [final[r] for r in roots], device,
                                             f"schedule: {kernels} kernel(s) on {device} (not run)"))
    elif callable(tensor_or_function):
        with capture() as cap:
            tensor_or_function()
        schedules = cap.schedules
    else:
        raise TypeError(f"viz.show: expected a Tensor, a list of Tensors or a function, got "
                        f"{type(tensor_or_function).__name__}")
    if path is None:
        config.VIZ_DIR.mkdir(parents=True, exist_ok=True)
        path = config.VIZ_DIR / "viz.html"
    path = Path(path)
    page_title = title or getattr(tensor_or_function, "__name__", "lazytensor schedule")
    path.write_text(render_page(schedules, page_title, buffer_names), encoding="utf-8")
    return path


def _write_viz_dir_page(record: ScheduleRecord, n: int) -> None:
    """VIZ=1: write this schedule's page under VIZ_DIR and refresh the index of all pages."""
    from lazytensor.viz_render import render_index, render_page
    config.VIZ_DIR.mkdir(parents=True, exist_ok=True)
    kernels = sum(1 for k in record.kernels if k.kind == "kernel")
    path = config.VIZ_DIR / f"schedule-{n:03d}-{kernels}k.html"
    path.write_text(render_page([record], record.title, {}), encoding="utf-8")
    pages = sorted(p.name for p in config.VIZ_DIR.glob("schedule-*.html"))
    (config.VIZ_DIR / "index.html").write_text(render_index(pages), encoding="utf-8")
    print(f"VIZ: wrote {path} ({kernels} kernels)", file=sys.stderr)


_GLOBAL_CAPTURE: Capture | None = None


def enable_viz_env() -> None:
    """VIZ=1: from now on every realize with a schedule not seen before writes a page."""
    global _GLOBAL_CAPTURE
    if _GLOBAL_CAPTURE is None:
        _GLOBAL_CAPTURE = Capture(only_new_plans=True)
        _realize_module()._realize_observers.append(_GLOBAL_CAPTURE.observe)


def summary_line(record: ScheduleRecord) -> str:
    """'45 kernels, 1.234 ms, top: r_64_10 (0.4 ms)' for logs and the page header."""
    kernels = [k for k in record.kernels if k.kind == "kernel"]
    timed = [k for k in kernels if k.seconds is not None]
    line = f"{len(kernels)} kernels"
    if timed:
        top = max(timed, key=lambda k: k.seconds or 0.0)
        line += f", {sum(k.seconds or 0.0 for k in timed) * 1e3:.3f} ms, slowest {top.name} " \
                f"({(top.seconds or 0.0) * 1e3:.3f} ms: {summarize_ops(top.fused_ops)})"
    return line


if config.VIZ:
    enable_viz_env()

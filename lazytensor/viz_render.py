"""The VIZ page: kernel and op graphs laid out (viz_layout) and drawn as SVG, inside one HTML file
with its own CSS and JavaScript (pan/zoom, click a kernel for its source, a sortable kernel table).
Nothing is fetched from the network: the page works from a file on a plane.
"""
from __future__ import annotations

import html
import json

from lazytensor.explain import format_count, summarize_ops
from lazytensor.viz_layout import Layout, layered_layout
from lazytensor.viz_page import TEMPLATE as _TEMPLATE

CHAR_WIDTH = 6.7        # monospace 11px
LINE_HEIGHT = 14.0
MAX_CHARS = 42          # a kernel box wraps its text at this width
PAD = 8.0

REASON_COLORS = {       # boundary reasons by family: what a reader scans for
    "output of realize()": "#2e7d32",
    "user asked for contiguous()": "#6a1b9a",
    "reduce result is broadcast": "#c62828",
    "reduce result feeds another reduce": "#ad1457",
    "reduce result is read at data-dependent": "#4527a0",
    "reduce result has several consumers": "#ef6c00",
    "scatter writes by index": "#00838f",
    "reduce result feeds a scatter": "#00695c",
    "copy to another device": "#37474f",
    "costly input is broadcast": "#1565c0",
}


def reason_color(reason: str) -> str:
    """The legend color of a boundary reason (grey for one this table does not know)."""
    for prefix, color in REASON_COLORS.items():
        if reason.startswith(prefix):
            return color
    return "#616161"


def kernel_hue(k: int) -> int:
    """Distinct hues for neighbouring kernel numbers (golden-angle steps)."""
    return int(k * 137.508) % 360


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    """Word-wrap text to lines of at most width characters, at most max_lines (last one '…')."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > width:   # a single word longer than a line is cut
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        candidate = f"{current} {word}".strip()
        if len(candidate) > width and current:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:width - 1] + "…"
    return lines or [""]


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "not run"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} us"


# ---- kernel graph ------------------------------------------------------------------------------

def _kernel_box_lines(kernel) -> tuple[list[str], list[str]]:
    """(body lines, reason lines) of a kernel box."""
    head = f"#{kernel.index} {kernel.name}"
    out = f"-> {kernel.dtype}{list(kernel.shape)}" + ("  OUTPUT" if kernel.is_output else "")
    ops = _wrap(summarize_ops(kernel.fused_ops) or kernel.kind, MAX_CHARS, 3)
    cost = f"{format_seconds(kernel.seconds)} | {format_count(kernel.flops, 'FLOP')} | " \
           f"{format_count(kernel.bytes, 'B')}"
    body = [head[:MAX_CHARS], out[:MAX_CHARS]] + ops + [cost[:MAX_CHARS]]
    reason = _wrap(kernel.reason, MAX_CHARS, 2)
    return body, reason


def _box_size(lines: list[str]) -> tuple[float, float]:
    width = max(len(line) for line in lines) * CHAR_WIDTH + 2 * PAD
    return max(width, 90.0), len(lines) * LINE_HEIGHT + 2 * PAD


def _heat(share: float) -> str:
    """Fill for a kernel by its share of the schedule's time: white → orange → red."""
    share = min(max(share, 0.0), 1.0) ** 0.5
    return f"hsl({int(40 - 40 * share)}, 95%, {int(97 - 37 * share)}%)"


def _edge_path(points: list[tuple[float, float]]) -> str:
    """A smooth vertical curve through the route points."""
    (x0, y0) = points[0]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for (xa, ya), (xb, yb) in zip(points, points[1:]):
        mid = (ya + yb) / 2
        parts.append(f"C{xa:.1f},{mid:.1f} {xb:.1f},{mid:.1f} {xb:.1f},{yb:.1f}")
    return " ".join(parts)


def _text_lines(x: float, y: float, lines: list[str], cls: str) -> str:
    spans = "".join(f'<tspan x="{x:.1f}" dy="{LINE_HEIGHT if i else 0:.0f}">{_esc(line)}</tspan>'
                    for i, line in enumerate(lines))
    return f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}">{spans}</text>'


def kernel_graph_svg(record, buffer_names: dict[int, str]) -> tuple[str, int]:
    """The kernel graph of one schedule as SVG markup (and the number of edges drawn)."""
    from lazytensor.viz import build_kernel_graph
    graph = build_kernel_graph(record, buffer_names)
    total = sum(k.seconds or 0.0 for k in record.kernels)
    content: dict[str, tuple[list[str], list[str]]] = {}
    for node, data in graph.nodes(data=True):
        if data["kind"] == "kernel":
            body, reason = _kernel_box_lines(record.kernels[data["kernel"]])
            content[node] = (body, reason)
            width, height = _box_size(body + reason)
            height += 6   # the gap above the reason band
        else:
            body = [data["label"][:MAX_CHARS], data["value"][:MAX_CHARS]]
            content[node] = (body, [])
            width, height = _box_size(body)
        graph.nodes[node]["width"] = width
        graph.nodes[node]["height"] = height
    layout = layered_layout(graph)
    parts = [_svg_open(layout)]
    for (u, v), points in layout.routes.items():
        label = graph.edges[u, v]["label"]
        (xa, ya), (xb, yb) = points[-2], points[-1]   # near the reader: fan-out would stack labels
        parts.append(f'<g class="edge" data-from="{_esc(u)}" data-to="{_esc(v)}"><title>{_esc(label)}</title>'
                     f'<path d="{_edge_path(points)}" marker-end="url(#arrow)"/>'
                     f'<text class="elabel" x="{(xa + xb) / 2 + 4:.1f}" y="{(ya + yb) / 2 + 3:.1f}">'
                     f'{_esc(label)}</text></g>')
    for node, data in graph.nodes(data=True):
        cx, cy = layout.centers[node]
        w, h = data["width"], data["height"]
        x, y = cx - w / 2, cy - h / 2
        body, reason = content[node]
        if data["kind"] == "buffer":
            parts.append(f'<g class="bnode" id="{_esc(node)}"><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                         f'height="{h:.1f}" rx="12"/>{_text_lines(x + PAD, y + PAD + 10, body, "btext")}</g>')
            continue
        kernel = record.kernels[data["kernel"]]
        share = (kernel.seconds or 0.0) / total if total > 0 else 0.0
        band_y = y + PAD + len(body) * LINE_HEIGHT + 2
        band_h = y + h - band_y
        color = reason_color(kernel.reason)
        parts.append(
            f'<g class="knode{" out" if kernel.is_output else ""}" id="{_esc(node)}" data-k="{kernel.index}">'
            f'<title>{_esc(kernel.name)}: {_esc(kernel.reason)}</title>'
            f'<rect class="kbox" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="4" '
            f'style="fill:{_heat(share)}"/>'
            f'<rect class="kreason" x="{x:.1f}" y="{band_y:.1f}" width="{w:.1f}" height="{band_h:.1f}" '
            f'style="fill:{color}"/>'
            f'{_text_lines(x + PAD, y + PAD + 10, body, "ktext")}'
            f'{_text_lines(x + PAD, band_y + 13, reason, "rtext")}</g>')
    parts.append("</g></svg>")
    return "".join(parts), graph.number_of_edges()


def _svg_open(layout: Layout) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width:.0f}" '
            f'height="{layout.height:.0f}" '
            f'data-w="{layout.width:.0f}" data-h="{layout.height:.0f}">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#78909c"/></marker></defs>'
            '<g class="world">')


# ---- op graph ----------------------------------------------------------------------------------

def op_graph_svg(record) -> tuple[str, int]:
    """The op graph before scheduling, each op filled with the color of the kernel it landed in."""
    from lazytensor.viz import build_op_graph
    graph = build_op_graph(record)
    for node, data in graph.nodes(data=True):
        width, height = _box_size([data["label"][:30], data["value"][:30]])
        data["width"], data["height"] = width, height
    layout = layered_layout(graph)
    parts = [_svg_open(layout)]
    for (u, v), points in layout.routes.items():
        parts.append(f'<g class="edge" data-from="{u}" data-to="{v}"><path d="{_edge_path(points)}" '
                     f'marker-end="url(#arrow)"/></g>')
    for node, data in graph.nodes(data=True):
        cx, cy = layout.centers[node]
        w, h = data["width"], data["height"]
        kernels = data["kernels"]
        if kernels:
            fill = f"hsl({kernel_hue(kernels[0])}, 70%, 85%)"
            where = "kernel " + ", ".join(f"#{k}" for k in kernels)
            if len(kernels) > 1:
                where += " (recomputed in each)"
        else:
            fill, where = "#eceff1", "input buffer"
        text = [data["label"][:30], data["value"][:30]]
        classes = "onode" + (" out" if data["output"] else "") + (" multi" if len(kernels) > 1 else "")
        k_attr = f' data-k="{kernels[0]}"' if kernels else ""
        parts.append(f'<g class="{classes}"{k_attr}><title>{_esc(data["label"])} {_esc(data["value"])}: '
                     f'{_esc(where)}</title><rect x="{cx - w / 2:.1f}" y="{cy - h / 2:.1f}" width="{w:.1f}" '
                     f'height="{h:.1f}" rx="3" style="fill:{fill}"/>'
                     f'{_text_lines(cx - w / 2 + PAD, cy - h / 2 + PAD + 10, text, "otext")}'
                     '</g>')
    parts.append("</g></svg>")
    return "".join(parts), graph.number_of_nodes()


# ---- the page ----------------------------------------------------------------------------------

def _kernel_json(record) -> list[dict]:
    produced_by = {item.output: k for k, item in enumerate(record.items)}
    readers: dict[int, list[int]] = {k: [] for k in range(len(record.items))}
    inputs: dict[int, list[str]] = {}
    for k, item in enumerate(record.items):
        inputs[k] = []
        for src in item.read_inputs:
            origin = f"#{produced_by[src]}" if src in produced_by else "buffer"
            inputs[k].append(f"{src.dtype.name}{list(src.shape)} from {origin}")
            if src in produced_by:
                readers[produced_by[src]].append(k)
        for written in item.extra_outputs:   # (a kernel with several outputs: sibling_fusion.py)
            inputs[k].append(f"also writes {written.dtype.name}{list(written.shape)} of #{produced_by[written]}")
    rows = []
    for kernel in record.kernels:
        rows.append({"index": kernel.index, "kind": kernel.kind, "name": kernel.name,
                     "ops": summarize_ops(kernel.fused_ops), "reason": kernel.reason,
                     "out": f"{kernel.dtype}{list(kernel.shape)}", "isOutput": kernel.is_output,
                     "flops": kernel.flops, "bytes": kernel.bytes, "seconds": kernel.seconds,
                     "launches": kernel.launches, "compile": kernel.compile_status,
                     "inputs": inputs[kernel.index], "readers": readers[kernel.index],
                     "source": kernel.source, "color": reason_color(kernel.reason)})
    return rows


def render_page(schedules: list, title: str, buffer_names: dict[int, str]) -> str:
    """The whole page for one or more schedules (a picker switches between them)."""
    order = sorted(range(len(schedules)), key=lambda s: -sum(1 for k in schedules[s].kernels))
    sections, data = [], []
    for position, s in enumerate(order):
        record = schedules[s]
        kernel_svg, n_edges = kernel_graph_svg(record, buffer_names)
        op_svg, n_ops = op_graph_svg(record)
        n_kernels = sum(1 for k in record.kernels if k.kind == "kernel")
        total = sum(k.seconds or 0.0 for k in record.kernels)
        flops = sum(k.flops for k in record.kernels)
        summary = (f"{n_kernels} kernels, {n_edges} buffer edges, {n_ops} ops before scheduling | "
                   f"{format_seconds(total) if record.ran else 'not run'} in kernels | "
                   f"{format_count(flops, 'FLOP')} estimated")
        data.append({"title": record.title, "summary": summary, "ran": record.ran,
                     "kernels": _kernel_json(record)})
        hidden = "" if position == 0 else " hidden"
        sections.append(f'<section class="schedule{hidden}" data-s="{position}">'
                        f'<div class="view kview">{kernel_svg}</div>'
                        f'<div class="view oview hidden">{op_svg}</div>'
                        f'<div class="view tview hidden"><table class="ktable"><thead><tr>'
                        '<th data-key="index">#</th><th data-key="name">kernel</th>'
                        '<th data-key="seconds">time</th><th data-key="share">%</th>'
                        '<th data-key="gflops">GFLOP/s</th><th data-key="gbs">GB/s</th>'
                        '<th data-key="ops">fused ops</th><th data-key="reason">why a kernel</th>'
                        '</tr></thead><tbody></tbody></table></div></section>')
    options = "".join(f'<option value="{i}">{_esc(d["title"])}</option>' for i, d in enumerate(data))
    legend = "".join(f'<span class="chip" style="background:{color}">{_esc(reason)}…</span>'
                     for reason, color in REASON_COLORS.items())
    payload = json.dumps({"title": title, "schedules": data}).replace("</", "<\\/")
    return (_TEMPLATE.replace("%TITLE%", _esc(title))
            .replace("%OPTIONS%", options)
            .replace("%LEGEND%", legend)
            .replace("%SECTIONS%", "".join(sections))
            .replace("%DATA%", payload))


def render_index(pages: list[str]) -> str:
    """VIZ=1's index.html: a link per schedule page written so far."""
    links = "".join(f'<li><a href="{_esc(p)}">{_esc(p)}</a></li>' for p in pages)
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>lazytensor VIZ</title></head>'
            f'<body style="font-family:sans-serif"><h1>lazytensor schedules</h1><ol>{links}</ol>'
            '</body></html>')



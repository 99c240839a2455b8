"""VIZ: the kernel and op graphs (networkx), the layered layout, the offline page, VIZ=1, and the page
in a real browser (headless Chromium; skipped only when Chromium is not installed)."""
from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import lazytensor as lt
from lazytensor import schedule
from lazytensor.schedule import create_schedule
from lazytensor.viz import build_kernel_graph, build_op_graph, record_schedule
from lazytensor.viz_layout import layered_layout


def realized(*shape: int, seed: int = 0) -> lt.Tensor:
    return lt.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32)).realize()


def record_of(t: lt.Tensor):
    items, final = create_schedule([t.node], t.device)
    return record_schedule(items, [final[t.node]], t.device, "test")


def mlp_training_step():
    """A small MLP with Adam: forward, backward and update realize as one schedule."""
    lt.manual_seed(0)
    model = lt.nn.Sequential(lt.nn.Linear(12, 16), lt.nn.ReLU(), lt.nn.Linear(16, 3))
    opt = lt.optim.Adam(model.parameters(), lr=1e-2)
    x, y = realized(8, 12), lt.tensor(np.arange(8) % 3)

    def step() -> None:
        loss = lt.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, step


def many_kernels(n: int) -> lt.Tensor:
    """A graph of n kernels with long and short edges (each value forced with contiguous())."""
    values = [realized(8, 8)]
    for k in range(n - 1):
        mixed = values[-1] * 0.5 + values[max(0, len(values) - 1 - k % 7)] * 0.25
        values.append(mixed.contiguous())
    return values[-1] + values[len(values) // 2]


# ---- graphs ------------------------------------------------------------------------------------

def test_kernel_graph_has_a_node_per_kernel_and_input_and_labelled_edges():
    x, w = realized(4, 8), realized(8, 3, seed=1)
    record = record_of((x.softmax(0) @ w).relu())
    graph = build_kernel_graph(record)
    kernels = [n for n, d in graph.nodes(data=True) if d["kind"] == "kernel"]
    buffers = [n for n, d in graph.nodes(data=True) if d["kind"] == "buffer"]
    assert len(kernels) == len(record.items)
    assert len(buffers) == 2                               # x and w
    assert nx.is_directed_acyclic_graph(graph)
    assert graph.in_degree("k0") == 1                      # the first kernel reads x only
    for u, v, data in graph.edges(data=True):
        assert re.fullmatch(r"float32\[[\d, ]*\]", data["label"])
    inputs_read = sum(len(item.inputs) for item in record.items)
    assert graph.number_of_edges() == inputs_read


def test_op_graph_colours_every_op_by_its_kernel():
    x = realized(4, 8)
    record = record_of(x.softmax(0))
    graph = build_op_graph(record)
    assert nx.is_directed_acyclic_graph(graph)
    labels = [d["label"] for _, d in graph.nodes(data=True)]
    assert any(label.startswith("reduce_max") for label in labels)
    assert any(label.startswith("reduce_add") for label in labels)
    for node, data in graph.nodes(data=True):
        if data["label"] == "buffer":
            assert data["kernels"] == []
        else:
            assert data["kernels"], f"{data['label']} landed in no kernel"
            assert all(0 <= k < len(record.items) for k in data["kernels"])
    # exp is recomputed in the sum pass and the normalize pass: those ops sit in two kernels
    assert any(len(d["kernels"]) > 1 for _, d in graph.nodes(data=True))


# ---- layout ------------------------------------------------------------------------------------

def random_dag(n: int, seed: int) -> nx.DiGraph:
    rng = random.Random(seed)
    graph = nx.DiGraph()
    for i in range(n):
        graph.add_node(i, width=rng.choice([60.0, 150.0, 260.0]), height=rng.choice([30.0, 90.0]))
        for _ in range(rng.randint(0, 3)):
            if i:
                graph.add_edge(rng.randrange(max(0, i - 25), i), i)
    return graph


@pytest.mark.parametrize("n,seed", [(1, 0), (12, 1), (120, 2), (400, 3)])
def test_layout_keeps_boxes_apart_and_edges_downward(n, seed):
    graph = random_dag(n, seed)
    layout = layered_layout(graph)
    boxes = {}
    for node, (cx, cy) in layout.centers.items():
        w, h = graph.nodes[node]["width"], graph.nodes[node]["height"]
        boxes[node] = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        assert boxes[node][0] >= 0 and boxes[node][1] >= 0
        assert boxes[node][2] <= layout.width and boxes[node][3] <= layout.height
    ordered = sorted(boxes.values())
    for i, a in enumerate(ordered):              # no two boxes overlap
        for b in ordered[i + 1:]:
            if b[0] >= a[2]:
                break
            assert b[1] >= a[3] or a[1] >= b[3], (a, b)
    assert set(layout.routes) == set(graph.edges)
    for (u, v), points in layout.routes.items():
        assert points[0][1] <= points[-1][1]     # every edge points down the page
        assert np.isclose(points[0][1], boxes[u][3]) and np.isclose(points[-1][1], boxes[v][1])


def test_layout_rejects_a_cycle():
    graph = nx.DiGraph([(0, 1), (1, 0)])
    for n in graph.nodes:
        graph.nodes[n].update(width=10.0, height=10.0)
    with pytest.raises(ValueError, match="cycle"):
        layered_layout(graph)


# ---- the page ----------------------------------------------------------------------------------

def assert_offline(page: str) -> None:
    """No resource from the network: no external scripts, styles, images or fonts."""
    assert not re.search(r"<script[^>]+src=", page)
    assert "<link" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page)
    assert "@import" not in page


def test_show_tensor_writes_kernels_reasons_and_sources_without_running(tmp_path):
    x, w = realized(4, 8), realized(8, 3, seed=1)
    out = (x.softmax(0) @ w).relu()
    path = lt.viz.show(out, path=tmp_path / "page.html")
    page = path.read_text()
    assert_offline(page)
    assert out.node.op is not out.node.op.BUFFER           # nothing ran
    items = out.schedule()
    assert page.count('class="knode') == len(items)
    for item in items:
        assert item.reason.split(" (")[0] in page
    assert "void r_1_8" in page                            # a kernel's C source is embedded
    assert "not run" in page


def test_show_function_records_times_and_names(tmp_path):
    model, step = mlp_training_step()
    step()                                                  # warm: compile outside the page
    names = dict(model.named_parameters())
    with lt.viz.capture() as cap:
        path = lt.viz.show(step, path=tmp_path / "step.html", names=names)
    page = path.read_text()
    assert_offline(page)
    assert "0.weight" in page and "2.bias" in page          # input buffers carry parameter names
    assert " ms in kernels" in page or " us in kernels" in page
    assert len(cap.schedules) == 1                          # captures nest: the outer one saw the step too
    assert f'data-k="{len(cap.schedules[0].kernels) - 1}"' in page


def test_capture_times_every_launched_kernel():
    x = realized(6, 10)
    with lt.viz.capture() as cap:
        (x - x.mean(0, keepdim=True)).realize()
    (record,) = cap.schedules
    assert record.ran
    assert all(k.seconds is not None and k.seconds > 0 and k.launches == 1 for k in record.kernels)
    assert schedule.REASON_BROADCAST in {k.reason for k in record.kernels}


def test_viz_env_writes_a_page_per_new_schedule(tmp_path):
    program = ("import lazytensor as lt\n"
               "x = lt.arange(12).float().reshape(3, 4)\n"
               "for _ in range(3):\n"
               "    (x - x.max(-1, keepdim=True).values).realize()\n"
               "x.sum().realize()\n")
    env = dict(os.environ, VIZ="1", VIZ_DIR=str(tmp_path / "viz"))
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
    pages = sorted(p.name for p in (tmp_path / "viz").glob("schedule-*.html"))
    # the same subtract-max structure three times (one page), then a sum (a second page)
    assert len(pages) == out.stderr.count("VIZ: wrote") == 2, out.stderr
    index = (tmp_path / "viz" / "index.html").read_text()
    assert all(p in index for p in pages)


# ---- in a real browser -------------------------------------------------------------------------

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1600,1000", "--virtual-time-budget=5000"]


def run_chromium(tmp_path: Path, page: Path, *flags: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           *flags, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
@pytest.mark.parametrize("case", ["training_step", "300_kernels"])
def test_page_in_headless_chromium(tmp_path, case):
    if case == "training_step":
        model, step = mlp_training_step()
        step()
        page = lt.viz.show(step, path=tmp_path / "page.html", names=dict(model.named_parameters()))
        with lt.viz.capture() as cap:
            step()
        kernels = len(cap.schedules[0].kernels)
        reasons = {k.reason for k in cap.schedules[0].kernels}
    else:
        out = many_kernels(300)
        items = out.schedule()
        page = lt.viz.show(out, path=tmp_path / "page.html")
        kernels, reasons = len(items), {i.reason for i in items}
    dom = run_chromium(tmp_path, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    html = dom.stdout
    root = re.search(r"<html[^>]*>", html).group(0)        # the page's script marks errors and success here
    assert "data-js-error" not in root, root
    assert 'data-ready="1"' in root                         # the script ran to its end
    assert f'data-kernel-rows="{kernels}"' in root          # ... and built a table row per kernel
    assert not re.search(r'<pre id="js-errors"[^>]*>[^<]', html)
    assert html.count('class="knode') == kernels
    for reason in reasons:
        assert reason.split(" (")[0] in html
    assert '<pre class="source">' in html                    # a kernel's source is open in the side panel
    shot = tmp_path / f"viz_{case}.png"
    result = run_chromium(tmp_path, page, f"--screenshot={shot}")
    assert result.returncode == 0 and "Uncaught" not in result.stderr, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    keep = os.environ.get("LAZYTENSOR_VIZ_SCREENSHOTS")    # set to a folder to look at the screenshots
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)

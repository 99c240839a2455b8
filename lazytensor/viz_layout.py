"""Layered (Sugiyama-style) layout of a directed acyclic graph, for the VIZ page.

networkx holds the graph; every node carries `width` and `height` (pixels). The stages, in order:

1. `assign_layers`   longest path from the sources; a source sits right above its first reader
2. `insert_dummies`  an edge spanning several layers becomes a chain through point-sized dummies
3. `order_layers`    barycenter sweeps (down, up) to reduce edge crossings
4. `place_x`         each node as close to the mean of its neighbours as the order allows
                     (isotonic regression per layer, so no two boxes overlap)
5. routes            each edge as the list of points through its dummies

The result is plain numbers (`Layout`); turning it into SVG is viz_render's job.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

H_GAP = 28.0     # between boxes of one layer
V_GAP = 56.0     # between layers
DUMMY_WIDTH = 12.0
SWEEPS = 8
X_ITERATIONS = 12


@dataclass
class Layout:
    """Box centers by node, edge routes by (u, v) (points from u's bottom to v's top), total size."""
    centers: dict = field(default_factory=dict)
    routes: dict = field(default_factory=dict)
    width: float = 0.0
    height: float = 0.0


def assign_layers(graph: nx.DiGraph) -> dict:
    """Layer of every node: 1 + the deepest source it reads; nodes without sources are pulled
    down to sit right above their nearest reader, so leaf buffers do not all crowd the top row."""
    layer: dict = {}
    for node in nx.topological_sort(graph):
        preds = list(graph.predecessors(node))
        layer[node] = 1 + max(layer[p] for p in preds) if preds else 0
    for node in graph.nodes:
        succs = list(graph.successors(node))
        if graph.in_degree(node) == 0 and succs:
            layer[node] = min(layer[s] for s in succs) - 1
    return layer


def insert_dummies(graph: nx.DiGraph, layer: dict) -> tuple[nx.DiGraph, dict, dict]:
    """A proper layered graph (every edge spans one layer) and, per original edge, its dummy chain."""
    proper = nx.DiGraph()
    for node, data in graph.nodes(data=True):
        proper.add_node(node, width=data.get("width", 80.0), height=data.get("height", 30.0), dummy=False)
    chains: dict = {}
    new_layer = dict(layer)
    for u, v in graph.edges:
        chain = []
        previous = u
        for depth in range(layer[u] + 1, layer[v]):
            dummy = ("dummy", u, v, depth)
            proper.add_node(dummy, width=DUMMY_WIDTH, height=0.0, dummy=True)
            new_layer[dummy] = depth
            proper.add_edge(previous, dummy)
            chain.append(dummy)
            previous = dummy
        proper.add_edge(previous, v)
        chains[(u, v)] = chain
    return proper, new_layer, chains


def _initial_order(proper: nx.DiGraph, layer: dict) -> list[list]:
    """Nodes grouped by layer in depth-first discovery order (keeps related nodes adjacent)."""
    rows: list[list] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    seen: set = set()
    roots = [n for n in proper.nodes if proper.in_degree(n) == 0]
    for root in roots:
        stack = [root]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            rows[layer[node]].append(node)
            stack.extend(reversed(list(proper.successors(node))))
    return rows


def _barycenter_pass(rows: list[list], proper: nx.DiGraph, downward: bool) -> None:
    indices = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
    for i in indices:
        fixed = rows[i - 1] if downward else rows[i + 1]
        position = {n: k for k, n in enumerate(fixed)}
        keyed = []
        for k, node in enumerate(rows[i]):
            neighbours = proper.predecessors(node) if downward else proper.successors(node)
            places = [position[n] for n in neighbours if n in position]
            keyed.append((sum(places) / len(places) if places else float(k), k, node))
        keyed.sort(key=lambda t: (t[0], t[1]))
        rows[i] = [node for _, _, node in keyed]


def count_crossings(rows: list[list], proper: nx.DiGraph) -> int:
    """Edge crossings between adjacent layers (inversions of the target positions)."""
    total = 0
    for upper, lower in zip(rows, rows[1:]):
        position = {n: k for k, n in enumerate(lower)}
        targets = []
        for node in upper:
            targets += sorted(position[s] for s in proper.successors(node) if s in position)
        total += _inversions(targets)
    return total


def _inversions(values: list[int]) -> int:
    """Number of pairs i < j with values[i] > values[j] (merge sort, O(n log n))."""
    if len(values) < 2:
        return 0
    mid = len(values) // 2
    left, right = sorted(values[:mid]), sorted(values[mid:])
    count = _inversions(values[:mid]) + _inversions(values[mid:])
    j = 0
    for value in left:
        while j < len(right) and right[j] < value:
            j += 1
        count += j
    return count


def order_layers(proper: nx.DiGraph, layer: dict) -> list[list]:
    """Node order within every layer, after barycenter sweeps; the order with fewest crossings wins."""
    rows = _initial_order(proper, layer)
    best = [list(r) for r in rows]
    best_crossings = count_crossings(rows, proper)
    for sweep in range(SWEEPS):
        _barycenter_pass(rows, proper, downward=sweep % 2 == 0)
        crossings = count_crossings(rows, proper)
        if crossings < best_crossings:
            best, best_crossings = [list(r) for r in rows], crossings
    return best


def _isotonic_place(desired: list[float], widths: list[float]) -> list[float]:
    """Centers as close (least squares) to `desired` as possible with boxes in order, H_GAP apart.

    With offsets c_i (the least distance of box i from box 0), y_i = x_i - c_i must be
    non-decreasing: pool-adjacent-violators on desired_i - c_i gives y, then x = y + c."""
    offsets = [0.0]
    for k in range(1, len(widths)):
        offsets.append(offsets[-1] + (widths[k - 1] + widths[k]) / 2 + H_GAP)
    blocks: list[list[float]] = []   # [sum, count]
    for d, c in zip(desired, offsets):
        blocks.append([d - c, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    placed: list[float] = []
    for total, count in blocks:
        placed += [total / count] * int(count)
    return [y + c for y, c in zip(placed, offsets)]


def place_x(rows: list[list], proper: nx.DiGraph) -> dict:
    """x center of every node: packed per layer, then pulled toward its neighbours' mean."""
    width = {n: proper.nodes[n]["width"] for n in proper.nodes}
    x: dict = {}
    for row in rows:
        x.update(zip(row, _isotonic_place([0.0] * len(row), [width[n] for n in row])))
    for iteration in range(X_ITERATIONS):
        downward = iteration % 2 == 0
        for row in (rows if downward else reversed(rows)):
            desired = []
            for node in row:
                neighbours = list(proper.predecessors(node) if downward else proper.successors(node))
                if not neighbours:    # no pull from this side: use the other side, else stay
                    neighbours = list(proper.successors(node) if downward else proper.predecessors(node))
                desired.append(sum(x[n] for n in neighbours) / len(neighbours) if neighbours else x[node])
            x.update(zip(row, _isotonic_place(desired, [width[n] for n in row])))
    return x


def layered_layout(graph: nx.DiGraph, margin: float = 24.0) -> Layout:
    """Positions for every node of a DAG (attributes `width`, `height`) and routes for every edge."""
    if graph.number_of_nodes() == 0:
        return Layout(width=2 * margin, height=2 * margin)
    if not nx.is_directed_acyclic_graph(graph):
        raise ValueError("layered_layout: the graph has a cycle; kernel and op graphs are always acyclic")
    layer = assign_layers(graph)
    proper, layer, chains = insert_dummies(graph, layer)
    rows = order_layers(proper, layer)
    x = place_x(rows, proper)
    row_height = [max((proper.nodes[n]["height"] for n in row), default=0.0) for row in rows]
    row_top = []
    top = margin
    for h in row_height:
        row_top.append(top)
        top += h + V_GAP
    left = min(x[n] - proper.nodes[n]["width"] / 2 for n in proper.nodes)
    right = max(x[n] + proper.nodes[n]["width"] / 2 for n in proper.nodes)
    shift = margin - left
    centers = {}
    for n in proper.nodes:
        k = layer[n]
        centers[n] = (x[n] + shift, row_top[k] + row_height[k] / 2)
    layout = Layout(width=right - left + 2 * margin, height=top - V_GAP + margin)
    for (u, v), chain in chains.items():
        ux, uy = centers[u]
        vx, vy = centers[v]
        points = [(ux, uy + graph.nodes[u].get("height", 30.0) / 2)]
        points += [centers[d] for d in chain]
        points.append((vx, vy - graph.nodes[v].get("height", 30.0) / 2))
        layout.routes[(u, v)] = points
    layout.centers = {n: c for n, c in centers.items() if not proper.nodes[n]["dummy"]}
    return layout

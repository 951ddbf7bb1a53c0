"""The canvas on a 300-node graph: open + layout + render time, and pan/zoom frame times.

Builds a valid 300-node graph (two inputs, six residual branches of Dense / Add /
LayerNormalization cells, a Concatenate, two heads), opens it in a CanvasView
offscreen, runs the automatic layout, renders the widget (``grab``), then times
60 pan / zoom steps, each followed by a forced ``viewport().repaint()``, at the
zoom that fits the whole graph and at 100 % zoom.

    QT_QPA_PLATFORM=offscreen python benchmarks/canvas_300_nodes.py [--repeats 3] [--png out.png]

Target (issue 4): open + layout + render under 1 s on a laptop-class CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from nodenet.graph.project import Edge, Node, Project
from nodenet.ui.canvas import CanvasView
from nodenet.ui.document import Document, Selection

BRANCHES = 6
CELLS = 12  # per branch; a cell is Dense, Dense, Add (residual), LayerNormalization
WIDTH = 32
STEPS = 60


def build_project(total: int = 300) -> Project:
    """A valid graph of exactly ``total`` nodes, every node at (0, 0) before layout."""
    nodes: list[Node] = []
    edges: list[Edge] = []

    def add(node_id: str, block: str, params: dict, *inputs: str) -> str:
        nodes.append(Node(node_id, block, params, [0.0, 0.0]))
        edges.extend(Edge(src, node_id, port) for port, src in enumerate(inputs))
        return node_id

    x = add("features", "Input", {"shape": [WIDTH]})
    aux = add("aux", "Input", {"shape": [8]})
    ends = []
    for b in range(BRANCHES):
        h = x
        for c in range(CELLS):
            tag = f"b{b}_c{c}"
            d1 = add(f"{tag}_dense_a", "Dense", {"units": WIDTH, "activation": "relu"}, h)
            d2 = add(f"{tag}_dense_b", "Dense", {"units": WIDTH}, d1)
            s = add(f"{tag}_add", "Add", {}, h, d2)
            h = add(f"{tag}_norm", "LayerNormalization", {}, s)
        ends.append(h)
    aux_h = add("aux_dense", "Dense", {"units": 8, "activation": "relu"}, aux)
    h = add("concat", "Concatenate", {}, *ends, aux_h)
    heads = 4  # head_1, out_1, head_2, out_2
    for i in range(total - len(nodes) - heads):
        h = add(f"trunk_{i}", "Dense", {"units": 64, "activation": "relu"}, h)
    add("out_1", "Output", {}, add("head_1", "Dense", {"units": 10, "activation": "softmax"}, h))
    add(
        "out_2",
        "Output",
        {"loss": "mean_squared_error", "metrics": ["mae"]},
        add("head_2", "Dense", {"units": 1}, h),
    )
    project = Project(name="canvas-300", nodes=nodes, edges=edges)
    assert len(project.nodes) == total, len(project.nodes)
    return project


def open_layout_render(app: QApplication, project: Project) -> tuple[float, CanvasView]:
    start = time.perf_counter()
    doc = Document(project)
    view = CanvasView(doc, Selection(doc))
    view.resize(1280, 800)
    view.show()
    doc.layout()
    view.fit_to_view()
    app.processEvents()
    view.grab()
    elapsed = time.perf_counter() - start
    assert not doc.analysis.problems, doc.analysis.problems[:3]
    return elapsed, view


def frame_times(view: CanvasView) -> list[float]:
    """Seconds per pan or zoom step, each followed by a synchronous repaint."""
    times = []
    for step in range(STEPS):
        start = time.perf_counter()
        if step % 3 == 2:
            view.zoom_by(1.1 if step % 6 == 2 else 1 / 1.1, anchor_under_mouse=False)
        else:
            view.scroll_by(37 if step % 2 else -23, 19 if step % 4 < 2 else -29)
        view.viewport().repaint()
        times.append(time.perf_counter() - start)
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--png", help="save the rendered canvas (fit and 100 %) to this path")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])

    opens, views = [], []
    for _ in range(args.repeats):
        elapsed, view = open_layout_render(app, build_project())
        opens.append(elapsed)
        views.append(view)
    view = views[-1]
    fit_frames = frame_times(view)
    view.fit_to_view()
    if args.png:
        view.grab().save(args.png)
    view.reset_zoom()
    view.centerOn(view.canvas_scene.nodes["concat"].sceneBoundingRect().center())
    app.processEvents()
    detail_frames = frame_times(view)
    if args.png:
        view.grab().save(args.png.replace(".png", "_100.png"))

    n_edges = len(view.document.project.edges)
    print(f"canvas benchmark: {len(view.canvas_scene.nodes)} nodes, {n_edges} edges, 1280x800")
    print(f"{'measure':<38} {'value':>10}")
    print(f"{'-' * 38} {'-' * 10}")
    print(f"{'open + layout + render (best)':<38} {min(opens) * 1000:>8.0f} ms")
    print(f"{'open + layout + render (median)':<38} {statistics.median(opens) * 1000:>8.0f} ms")
    for label, frames in (("fit to view", fit_frames), ("100 % zoom", detail_frames)):
        mean = statistics.fmean(frames) * 1000
        print(f"{f'pan/zoom frame, {label} (mean)':<38} {mean:>8.1f} ms")
        print(f"{f'pan/zoom frame, {label} (p95)':<38} {p95(frames) * 1000:>8.1f} ms")
    verdict = "meets" if min(opens) < 1.0 else "misses"
    print(f"target open + layout + render < 1 s: {verdict}")


if __name__ == "__main__":
    main()

"""Auto layout + Fit of deep graphs: the zoom the app chooses, the layout time, legibility.

For an imported ResNet-50 and DenseNet-121 (keras.applications, ``weights=None``,
imported with ``import_keras_config`` of ``model.to_json()``; skipped with a message
when Keras is missing) and a 24-block residual CNN built in code, in an offscreen
canvas of each size (``--sizes``, default 1366x768 and 1920x1080), it runs the Layout
action's engine and Fit (what the L key does) and reports:

- the layout time (min-max over ``--repeats``; the machine is shared, so read it as a
  range, never as a bound) and per block;
- the zoom Fit chooses, and the zoom the whole folded graph would need (zooming out
  shows it), against the old one-row layered layout fitted whole;
- the on-screen height (font pixel size) of the smallest card detail line at the chosen
  zoom, which the issue wants at least 9 px, and how many screens tall the graph is.

It also times ``auto_layout`` alone on chains and residual chains of ``--scaling``
blocks (default 1,000 and 5,000): a flat µs-per-block figure is linear growth.

    python benchmarks/layout.py [--sizes 1366x768 1920x1080] [--repeats 5] [--png DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time

from PySide6.QtWidgets import QApplication

from nodenet.graph.bands import FIT_MARGIN, auto_layout
from nodenet.graph.layout import CARDS, card_port_counts, layered_layout
from nodenet.graph.project import Edge, Node, Project
from nodenet.ui.canvas import CanvasView, style
from nodenet.ui.document import Document, Selection


def residual_cnn() -> Project:
    """The issue's 24-block ResNet-style CNN: stem, two residual blocks, head."""
    nodes: list[Node] = []
    edges: list[Edge] = []

    def add(node_id: str, block: str, params: dict, *inputs: str) -> str:
        nodes.append(Node(node_id, block, params))
        edges.extend(Edge(src, node_id, port) for port, src in enumerate(inputs))
        return node_id

    h = add("x", "Input", {"shape": [32, 32, 3]})
    h = add("stem_conv", "Conv2D", {"filters": 16, "kernel_size": [3, 3], "padding": "same"}, h)
    h = add("stem_bn", "BatchNormalization", {}, h)
    h = add("stem_relu", "Activation", {"activation": "relu"}, h)
    h = add("stem_pool", "MaxPooling2D", {}, h)
    for r in (1, 2):
        skip = h
        conv = {"filters": 16, "kernel_size": [3, 3], "padding": "same"}
        h = add(f"r{r}_conv1", "Conv2D", conv, h)
        h = add(f"r{r}_bn1", "BatchNormalization", {}, h)
        h = add(f"r{r}_relu1", "Activation", {"activation": "relu"}, h)
        h = add(f"r{r}_conv2", "Conv2D", conv, h)
        h = add(f"r{r}_bn2", "BatchNormalization", {}, h)
        h = add(f"r{r}_add", "Add", {}, h, skip)
        h = add(f"r{r}_relu2", "Activation", {"activation": "relu"}, h)
    h = add("gap", "GlobalAveragePooling2D", {}, h)
    h = add("drop", "Dropout", {"rate": 0.2}, h)
    h = add("fc", "Dense", {"units": 64, "activation": "relu"}, h)
    h = add("logits", "Dense", {"units": 10, "activation": "softmax"}, h)
    add("y", "Output", {"loss": "sparse_categorical_crossentropy"}, h)
    project = Project("residual-cnn-24", nodes, edges)
    assert len(project.nodes) == 24, len(project.nodes)
    return project


def residual_chain(n: int) -> Project:
    """Input, residual blocks of three Dense and an Add (with the skip), Output: ``n`` blocks."""
    nodes = [Node("x", "Input", {"shape": [4]})]
    edges: list[Edge] = []
    h, b = "x", 0
    while len(nodes) < n - 1:
        skip = h
        for j in range(3):
            nodes.append(Node(f"d{b}_{j}", "Dense", {"units": 4}))
            edges.append(Edge(h, f"d{b}_{j}", 0))
            h = f"d{b}_{j}"
        nodes.append(Node(f"a{b}", "Add", {}))
        edges += [Edge(h, f"a{b}", 0), Edge(skip, f"a{b}", 1)]
        h, b = f"a{b}", b + 1
    nodes.append(Node("y", "Output", {"loss": "mean_squared_error"}))
    edges.append(Edge(h, "y", 0))
    return Project("residual-chain", nodes, edges)


def plain_chain(n: int) -> Project:
    nodes = [Node("x", "Input", {"shape": [4]})]
    nodes += [Node(f"d{i}", "Dense", {"units": 4}) for i in range(n - 2)]
    nodes.append(Node("y", "Output", {"loss": "mean_squared_error"}))
    edges = [Edge(a.id, b.id, 0) for a, b in itertools.pairwise(nodes)]
    return Project("chain", nodes, edges)


def scaling(sizes: list[int], repeats: int) -> None:
    """``auto_layout`` alone (no Qt) on chains and residual chains: µs per block."""
    print(f"{'auto_layout, us per block':<26}" + "".join(f"{n:>14,}" for n in sizes))
    for name, build in (("chain", plain_chain), ("residual chain", residual_chain)):
        cells = []
        for n in sizes:
            project, times = build(n), []
            for _ in range(repeats):
                start = time.perf_counter()
                auto_layout(project)
                times.append((time.perf_counter() - start) * 1e6 / n)
            cells.append(f"{min(times):.0f}-{max(times):.0f}")
        print(f"{name:<26}" + "".join(f"{c:>14}" for c in cells))


def keras_projects() -> dict[str, Project]:
    try:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras
    except ImportError as error:
        print(f"skipping ResNet-50 and DenseNet-121: keras is missing ({error})")
        return {}
    from nodenet.export.keras_import import import_keras_config

    projects = {}
    for name, build in (
        ("ResNet-50", keras.applications.ResNet50),
        ("DenseNet-121", keras.applications.DenseNet121),
    ):
        model = build(weights=None)
        projects[name] = import_keras_config(json.loads(model.to_json()), name)
    return projects


def one_row_zoom(project: Project, width: int, height: int) -> float:
    """The zoom a whole-graph fit of the old one-row layered layout needed."""
    positions = layered_layout(project)
    tall = card_port_counts(project)
    right = max(x for x, _ in positions.values()) + CARDS.width
    bottom = max(y + CARDS.node_height(tall[k]) for k, (_, y) in positions.items())
    return min(width / (right + FIT_MARGIN), height / (bottom + FIT_MARGIN))


def measure(app: QApplication, project: Project, width: int, height: int, repeats: int) -> dict:
    doc = Document(project)
    view = CanvasView(doc, Selection(doc))
    view.resize(width, height)
    view.show()
    app.processEvents()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        view._layout(doc.project)  # the Layout action's engine, for this view
        times.append(time.perf_counter() - start)
    doc.layout()
    view.fit_to_view()
    app.processEvents()
    chosen, text_px = view.zoom(), view.detail_text_px()
    rect = view.canvas_scene.graph_rect()
    port = view.viewport()
    screens = (rect.height() + FIT_MARGIN) * chosen / port.height()
    whole = min(
        port.width() / (rect.width() + FIT_MARGIN), port.height() / (rect.height() + FIT_MARGIN)
    )
    result = {
        "blocks": len(project.nodes),
        "times": times,
        "zoom": chosen,
        "text_px": text_px,
        "whole": whole,
        "one_row": one_row_zoom(project, port.width(), port.height()),
        "screens": screens,
        "view": view,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1366x768", "1920x1080"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--png", help="save each laid-out, fitted canvas into this folder")
    parser.add_argument("--scaling", nargs="*", type=int, default=[1000, 5000])
    args = parser.parse_args()
    if args.scaling:
        scaling(args.scaling, 3)
    app = QApplication.instance() or QApplication([])
    projects = {"residual CNN (24)": residual_cnn(), **keras_projects()}
    print(f"layout + fit, detail lines needed >= {style.LEGIBLE_PX:g} px")
    header = (
        f"{'graph':<18} {'canvas':>9} {'blocks':>6} {'layout ms':>11} {'us/block':>9} "
        f"{'zoom':>5} {'detail px':>9} {'screens':>7} {'whole':>6} {'one row':>7}"
    )
    print(header)
    print("-" * len(header))
    for (name, project), size in itertools.product(projects.items(), args.sizes):
        width, height = (int(v) for v in size.split("x"))
        r = measure(app, project, width, height, args.repeats)
        low, high = min(r["times"]) * 1000, max(r["times"]) * 1000
        per_block = min(r["times"]) * 1e6 / r["blocks"]
        print(
            f"{name:<18} {size:>9} {r['blocks']:>6} {low:>5.1f}-{high:<5.1f} {per_block:>9.0f} "
            f"{r['zoom']:>5.2f} {r['text_px']:>9.1f} {r['screens']:>7.1f} {r['whole']:>6.3f} "
            f"{r['one_row']:>7.3f}"
        )
        if args.png:
            os.makedirs(args.png, exist_ok=True)
            slug = name.split(" ")[0].lower()
            r["view"].grab().save(os.path.join(args.png, f"{slug}_{size}.png"))
        r["view"].close()
    print(
        "zoom: what Fit chooses after Layout; screens: the graph's height at that zoom in "
        "canvas heights; whole: the folded graph fitted whole; one row: the old layout fitted whole"
    )


if __name__ == "__main__":
    main()

"""How long does one GUI edit take on a big graph?

Opens a generated project (a chain of Dense layers, or a ResNet-ish graph whose
blocks of two Dense layers are merged back with Add) in the full main window,
shown offscreen so the canvas, the inspector, the summary, the problems, the
minimap and the history all follow, then times edits of every kind through the
Document methods the UI uses (move, set a parameter, add, connect, delete,
rename, undo, redo), each followed by ``QApplication.processEvents()`` so the
deferred work counts too.

Targets: median edit under 100 ms at 1,000 blocks, under 500 ms at 5,000.

    python benchmarks/gui_edits.py [--sizes 1000 5000] [--shapes chain resnet] [--edits 20]
                                   [--paste 2000]   # paste N blocks into N, then undo
    python benchmarks/gui_edits.py --profile 1000   # cProfile of the edits, top 30
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KERAS_BACKEND", "torch")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from nodenet.graph.project import Edge, Node, Project

TARGETS_MS = {1000: 100.0, 5000: 500.0}
KINDS = ("move", "set_param", "add", "connect", "delete", "rename", "undo", "redo")


def chain(n: int) -> Project:
    """Input -> n-2 Dense layers -> Output, laid out in a grid."""
    nodes = [Node("input", "Input", {"shape": [16]}, [0.0, 0.0])]
    for i in range(n - 2):
        nodes.append(Node(f"dense_{i}", "Dense", {"units": 16}, _grid(i + 1)))
    nodes.append(Node("output", "Output", {"loss": "mse", "metrics": []}, _grid(n - 1)))
    edges = [Edge(a.id, b.id, 0) for a, b in itertools.pairwise(nodes)]
    return Project(name=f"chain{n}", nodes=nodes, edges=edges)


def resnet(n: int) -> Project:
    """Residual blocks: x -> Dense -> Dense -> Add(x, .) until about ``n`` blocks."""
    nodes = [Node("input", "Input", {"shape": [16]}, [0.0, 0.0])]
    edges: list[Edge] = []
    last = "input"
    i = 0
    while len(nodes) + 4 <= n:
        a, b, add = f"dense_{i}a", f"dense_{i}b", f"add_{i}"
        k = len(nodes)
        nodes += [
            Node(a, "Dense", {"units": 16, "activation": "relu"}, _grid(k)),
            Node(b, "Dense", {"units": 16}, _grid(k + 1)),
            Node(add, "Add", {}, _grid(k + 2)),
        ]
        edges += [Edge(last, a, 0), Edge(a, b, 0), Edge(last, add, 0), Edge(b, add, 1)]
        last, i = add, i + 1
    nodes.append(Node("output", "Output", {"loss": "mse", "metrics": []}, _grid(len(nodes))))
    edges.append(Edge(last, "output", 0))
    return Project(name=f"resnet{n}", nodes=nodes, edges=edges)


def _grid(i: int) -> list[float]:
    return [float((i % 40) * 260), float((i // 40) * 160)]


SHAPES: dict[str, Callable[[int], Project]] = {"chain": chain, "resnet": resnet}


def make_window(app: QApplication):
    from nodenet.ui.main_window import MainWindow

    folder = Path(tempfile.mkdtemp(prefix="gui_edits_"))
    os.environ["NODENET_RECOVERY_DIR"] = str(folder / "recovery")
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    return window


def edit_plan(window, rounds: int) -> list[tuple[str, Callable[[], object]]]:
    """``rounds`` edits cycling through every kind, on blocks in the middle of the graph."""
    doc = window.document
    plan: list[tuple[str, Callable[[], object]]] = []
    dense = [n.id for n in doc.project.nodes if n.type == "Dense"]
    mid = len(dense) // 2
    state: dict[str, str] = {}

    def move(k: int) -> Callable[[], object]:
        node_id = dense[mid + k]
        x, y = doc.project.node(node_id).pos
        return lambda: doc.move_nodes({node_id: (x + 20, y + 20)})

    def set_param(k: int) -> Callable[[], object]:
        def run() -> None:
            node_id = dense[mid - k - 1]
            params = dict(doc.project.node(node_id).params)
            params["units"] = 16 + (k % 3)
            doc.set_params(node_id, params)

        return run

    def add(k: int) -> Callable[[], object]:
        def run() -> None:
            state["added"] = doc.add_node("Dense", (-400.0, 200.0 * k), {"units": 16})

        return run

    def connect(k: int) -> Callable[[], object]:
        return lambda: doc.connect(
            dense[(mid + 2 * k + len(dense) // 8) % len(dense)], state["added"]
        )

    def delete(k: int) -> Callable[[], object]:
        return lambda: doc.remove_nodes([state["added"]])

    def rename(k: int) -> Callable[[], object]:
        node_id = dense[(mid + k + len(dense) // 4) % len(dense)]
        return lambda: doc.rename(node_id, f"{node_id}_r")

    builders = {
        "move": move,
        "set_param": set_param,
        "add": add,
        "connect": connect,
        "delete": delete,
        "rename": rename,
    }
    for k in range(rounds):
        kind = KINDS[k % len(KINDS)]
        if kind == "undo":
            plan.append((kind, doc.undo))
        elif kind == "redo":
            plan.append((kind, doc.redo))
        else:
            plan.append((kind, _later(builders[kind], k // len(KINDS))))
    return plan


def _later(builder: Callable[[int], Callable[[], object]], k: int) -> Callable[[], object]:
    """Build the edit when it runs (it reads the document as the previous edits left it)."""
    return lambda: builder(k)()


class AnalysisClock:
    """Wraps the Document's ``analyze`` to add up the time spent in it (the graph analysis,
    :mod:`nodenet.graph.validation`, is not GUI code: the report shows the GUI's share apart)."""

    def __init__(self) -> None:
        import nodenet.ui.document as document_module

        self.module = document_module
        self.inner = document_module.analyze
        self.spent = 0.0
        document_module.analyze = self

    def __call__(self, project):
        start = time.perf_counter()
        try:
            return self.inner(project)
        finally:
            self.spent += time.perf_counter() - start


def time_edits(app: QApplication, window, edits: int) -> tuple[dict[str, list[float]], list[float]]:
    """Per kind, each edit's ms; and each edit's ms spent in the graph analysis."""
    times: dict[str, list[float]] = defaultdict(list)
    analysis: list[float] = []
    clock = AnalysisClock()
    try:
        for kind, run in edit_plan(window, edits):
            clock.spent = 0.0
            start = time.perf_counter()
            run()
            app.processEvents()
            times[kind].append((time.perf_counter() - start) * 1000)
            analysis.append(clock.spent * 1000)
    finally:
        clock.module.analyze = clock.inner
    return times, analysis


def bench(app: QApplication, shape: str, size: int, edits: int) -> float:
    window = make_window(app)
    project = SHAPES[shape](size)
    start = time.perf_counter()
    window.document.replace_project(project)
    app.processEvents()
    opened = (time.perf_counter() - start) * 1000
    times, analysis = time_edits(app, window, edits)
    every = [t for ts in times.values() for t in ts]
    median = statistics.median(every)
    in_analysis = statistics.median(analysis)
    target = TARGETS_MS.get(size)
    verdict = "" if target is None else ("  ok" if median < target else f"  OVER {target:.0f} ms")
    print(
        f"{shape:6s} {len(project.nodes):6d} blocks  open {opened:7.0f} ms  "
        f"median edit {median:7.1f} ms  max {max(every):7.1f} ms{verdict}"
    )
    gui = statistics.median(t - a for t, a in zip(_in_order(times), analysis, strict=True))
    print(f"        of which analyze() {in_analysis:.1f} ms (median);  GUI alone {gui:.1f} ms")
    print("        " + "  ".join(f"{k} {statistics.median(v):.1f}" for k, v in times.items()))
    window.document.undo_stack.setClean()
    window.work_guard.finish()
    window.close()
    window.deleteLater()
    app.processEvents()
    return median


def _in_order(times: dict[str, list[float]]) -> list[float]:
    """The edits' times in the order they ran (the plan cycles through ``KINDS``)."""
    queues = {k: list(v) for k, v in times.items()}
    total = sum(len(v) for v in queues.values())
    return [queues[KINDS[i % len(KINDS)]].pop(0) for i in range(total)]


def bench_paste(app: QApplication, size: int) -> None:
    """Copy every block of a ``size``-block chain, paste them all, then undo the paste."""
    window = make_window(app)
    window.document.replace_project(chain(size))
    app.processEvents()
    window.selection.set([n.id for n in window.document.project.nodes])
    window.actions["copy"].trigger()
    start = time.perf_counter()
    window.actions["paste"].trigger()
    app.processEvents()
    pasted = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    window.actions["undo"].trigger()
    app.processEvents()
    undone = (time.perf_counter() - start) * 1000
    print(f"paste  {size:6d} blocks into {size}: {pasted:7.0f} ms;  undo {undone:7.0f} ms")
    window.document.undo_stack.setClean()
    window.work_guard.finish()
    window.close()
    window.deleteLater()
    app.clipboard().clear()  # data left on the clipboard crashes the offscreen platform at exit
    app.processEvents()


def profile(app: QApplication, size: int, edits: int) -> None:
    window = make_window(app)
    window.document.replace_project(resnet(size))
    app.processEvents()
    profiler = cProfile.Profile()
    profiler.enable()
    time_edits(app, window, edits)
    profiler.disable()
    pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(80)
    window.document.undo_stack.setClean()
    window.work_guard.finish()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=["chain", "resnet"])
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--profile", type=int, metavar="SIZE")
    parser.add_argument("--paste", type=int, default=2000, metavar="N", help="0: skip")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    if args.profile:
        profile(app, args.profile, args.edits)
        return 0
    print(f"{args.edits} edits each ({', '.join(KINDS)}), median ms; machine: {_cpu()}")
    for size in args.sizes:
        for shape in args.shapes:
            bench(app, shape, size, args.edits)
    if args.paste:
        bench_paste(app, args.paste)
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())

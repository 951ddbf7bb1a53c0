"""Does training from the GUI keep the window responsive, and cost no throughput?

Trains a sample project from the Run panel (offscreen, the panel shown and its
plots redrawing at ~20 Hz) while a 5 ms ``QTimer`` measures how late the event
loop serves it, then runs the same ``Run.fit`` headless. Runs alternate
(GUI, headless, GUI, ...) because the machine is shared; medians are compared.

Targets: event-loop latency p99 < 50 ms; GUI training throughput within 10 %
of headless.

    python benchmarks/ui_responsiveness.py [--project FILE ...] [--epochs N] [--repeats K]

The headless runs use the same BLAS thread limit as the GUI worker (all cores but
one, see ``leave_a_core``), so the comparison isolates what the GUI costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QApplication

from nodenet.graph.project import load
from nodenet.runner import build_run
from nodenet.ui.document import Document
from nodenet.ui.training import TrainingPanel
from nodenet.ui.training.worker import leave_a_core

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROJECTS = [
    ROOT / "sample_projects" / "digits_mlp.json",  # tiny: ~70 epochs a second
    ROOT / "sample_projects" / "mnist1d_cnn.json",  # a few epochs a second
]
TICK_MS = 5
P99_TARGET_MS = 50.0
THROUGHPUT_TARGET = 0.90


class LatencyProbe:
    """A 5 ms precise timer; records how much later than due each tick arrives (ms)."""

    def __init__(self):
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.late: list[float] = []

    def start(self) -> None:
        self.late.clear()
        self.clock.start()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        elapsed = self.clock.nsecsElapsed() / 1e6
        self.clock.restart()
        self.late.append(max(elapsed - TICK_MS, 0.0))


def train_in_gui(app: QApplication, panel: TrainingPanel, probe: LatencyProbe) -> dict:
    """One run started with the Run button's slot; returns the worker's result."""
    results: list = []
    loop = QEventLoop()

    def done(value) -> None:
        results.append(value)
        loop.quit()

    panel.trainingFinished.connect(done)
    panel.trainingFailed.connect(done)
    probe.start()
    panel.run()
    loop.exec()
    probe.stop()
    panel.trainingFinished.disconnect(done)
    panel.trainingFailed.disconnect(done)
    app.processEvents()
    if isinstance(results[0], str):
        raise SystemExit(f"training failed: {results[0]}")
    return results[0]


def train_headless(project) -> float:
    """Seconds of the same ``Run.fit`` without any GUI, with the worker's BLAS thread limit."""
    with leave_a_core():
        run = build_run(project)
        start = time.perf_counter()
        run.fit()
        return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def measure(app: QApplication, path: Path, epochs: int, repeats: int) -> bool:
    """Benchmark one project; prints the report and returns whether both targets are met."""
    folder = Path(tempfile.mkdtemp(prefix="nodenet-bench-"))
    copy = folder / path.name
    shutil.copy(path, copy)  # weights are written beside it, not in the repository
    project = load(copy)
    project.training.update(epochs=epochs, early_stopping=None)
    document = Document(project)
    panel = TrainingPanel(document)
    panel.resize(1280, 800)
    panel.show()
    panel.show_tab("Curves")
    probe = LatencyProbe()
    gui_seconds, headless_seconds, late = [], [], []
    for _ in range(repeats):
        result = train_in_gui(app, panel, probe)
        gui_seconds.append(result["fit_seconds"])
        late.extend(probe.late)
        headless_seconds.append(train_headless(project))
    panel.shutdown()
    panel.close()
    shutil.rmtree(folder, ignore_errors=True)

    gui, headless = statistics.median(gui_seconds), statistics.median(headless_seconds)
    ratio = headless / gui
    p50, p99, worst = percentile(late, 50), percentile(late, 99), max(late)
    latency_ok, throughput_ok = p99 < P99_TARGET_MS, ratio >= THROUGHPUT_TARGET
    print(f"{path.name}: {epochs} epochs, {repeats} runs each way")
    print(
        f"  event-loop latency over {len(late)} ticks of {TICK_MS} ms: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {worst:.1f} ms "
        f"(target p99 < {P99_TARGET_MS:.0f} ms: {'ok' if latency_ok else 'MISSED'})"
    )
    print(
        f"  fit time: GUI {gui:.2f} s ({', '.join(f'{s:.2f}' for s in gui_seconds)}), "
        f"headless {headless:.2f} s ({', '.join(f'{s:.2f}' for s in headless_seconds)})"
    )
    print(
        f"  GUI throughput = {ratio:.1%} of headless "
        f"(target >= {THROUGHPUT_TARGET:.0%}: {'ok' if throughput_ok else 'MISSED'})"
    )
    return latency_ok and throughput_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project",
        type=Path,
        action="append",
        help="a project file (repeatable); default: the digits MLP and the MNIST-1D CNN",
    )
    parser.add_argument("--epochs", type=int, help="default: 100 (MLP) / 10 (others)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    projects = args.project or DEFAULT_PROJECTS
    app = QApplication.instance() or QApplication(sys.argv)
    ok = True
    for path in projects:
        epochs = args.epochs or (100 if path.name == "digits_mlp.json" else 10)
        ok = measure(app, path, epochs, args.repeats) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The Run panel: Run / Stop, progress, live curves, data and training settings, evaluation.

``TrainingPanel(document)`` reads ``document.project`` and ``document.analysis``,
writes settings through ``document.set_section`` (and the Outputs' losses through
``document.set_params``), and makes the graph read-only while a run uses it.
Training happens on a snapshot in a worker thread (:mod:`.worker`); every
problem ends as a message in the panel, never as a crash.

Trained weights are saved beside the project (``NAME.weights.npz``) when it has
a file, else kept in memory for **Save weights**; when a project is opened, its
weights file is loaded if it matches the graph.
"""

from __future__ import annotations

import copy
import html
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStyle,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from nodenet.atomic import atomic_write
from nodenet.backend import BatchEnd, EpochEnd, NumpyBackend, Prepared
from nodenet.errors import NodenetError
from nodenet.reports import histograms
from nodenet.runner import weights_path
from nodenet.runs_recorder import STATUS_OF_STOP
from nodenet.ui.settings import app_settings
from nodenet.ui.training.data_panel import DataPanel
from nodenet.ui.training.evaluation import EvaluationView
from nodenet.ui.training.plots import TrainingPlots
from nodenet.ui.training.run_on import RunOnChooser
from nodenet.ui.training.runs_view import RunsView
from nodenet.ui.training.settings_panel import SettingsPanel
from nodenet.ui.training.worker import TrainingController, TrainingWorker

PROGRESS_STEPS = 1000
MAX_PROBLEMS_SHOWN = 8
BANNER_STYLES = {
    "error": "background: #fdecea; border: 1px solid #e57373; color: #611a15;",
    "warning": "background: #fff8e1; border: 1px solid #ffb74d; color: #5d4037;",
    "info": "background: #e8f4fd; border: 1px solid #64b5f6; color: #0d3c61;",
}
TABS = ("Data", "Settings", "Curves", "Evaluation", "Runs")


class TrainingPanel(QWidget):
    """Controls, live plots and results of training the document's project."""

    trainingStarted = Signal()  # the worker exists (``controller.worker``), not yet running
    trainingFinished = Signal(object)  # the worker's finished dict
    trainingFailed = Signal(str)
    revealRequested = Signal()  # Run or Evaluate was asked for: the panel wants to be seen

    def __init__(self, document, parent: QWidget | None = None, *, batch_interval: float = 0.05):
        super().__init__(parent)
        self.document = document
        self.batch_interval = batch_interval
        self.controller = TrainingController(self)
        self.trained_weights: dict[str, np.ndarray] | None = None
        self.weights_unsaved = False
        self._worker: TrainingWorker | None = None
        self._mode = "train"
        self._run_id: int | None = None
        self._prepared = False
        self._latest: BatchEnd | None = None  # the newest batch
        self._shown: BatchEnd | None = None  # the batch the progress bar shows
        self._started_at = 0.0
        self.data_panel = DataPanel(document)
        self.settings_panel = SettingsPanel(document)
        self.plots = TrainingPlots()
        self.runs_view = RunsView(document, self.plots)  # NAME.runs.sqlite's runs
        self.evaluation = EvaluationView()
        self._build_controls()
        self._build_layout()
        self._build_actions()
        self.plots.timer.timeout.connect(self._show_progress)  # one GUI wake-up for both
        document.projectReplaced.connect(self._project_replaced)
        self._problems_shown = False  # the banner lists the graph's problems: keep it current
        document.analysisChanged.connect(self._analysis_changed)
        self.plots.settingsRequested.connect(self.use_run_settings)
        self.runs_view.message.connect(self.show_message)
        self.runs_view.weightsRestored.connect(self.adopt_weights)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self._set_running(False)
        self._load_saved_weights()
        self.runs_view.project_changed()

    # -- construction ---------------------------------------------------------------

    def _build_controls(self) -> None:
        style = self.style()
        self.run_button = _button("Run", style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.run_button.setToolTip("Train the model on its data (Ctrl+R)")
        self.stop_button = _button("Stop", style.standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.stop_button.setToolTip("Stop after the current batch, keeping the weights (Esc)")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Evaluate the trained weights on the test split")
        self.save_button = QPushButton("Save weights…")
        self.save_button.setToolTip("Write the trained weights to a .npz file")
        self.progress = QProgressBar()
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.progress.setMinimumWidth(220)
        self.rate = QLabel("")
        self.rate.setMinimumWidth(200)
        self.status = QLabel("Ready.")
        self.status.setStyleSheet("color: #555;")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        self.evaluate_button.clicked.connect(self.evaluate)
        self.save_button.clicked.connect(lambda: self.save_weights())
        self.run_on = RunOnChooser(app_settings())
        self.run_on.message.connect(lambda text: self.show_message(text, "warning"))

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        for widget in (self.run_button, self.stop_button, self.evaluate_button, self.save_button):
            top.addWidget(widget)
        top.addSpacing(8)
        top.addWidget(QLabel("Run on"))
        top.addWidget(self.run_on)
        top.addSpacing(12)
        top.addWidget(self.progress, 1)
        top.addWidget(self.rate)
        self.banner = QFrame()
        self.banner.setObjectName("run_banner")  # its style must not frame the label too
        banner_row = QHBoxLayout(self.banner)
        banner_row.setContentsMargins(8, 4, 4, 4)
        banner_row.addWidget(self.message, 1)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide_message)
        banner_row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.banner.hide()
        self.tabs = QTabWidget()
        evaluation = QScrollArea()
        evaluation.setWidgetResizable(True)
        evaluation.setWidget(self.evaluation)
        for widget, title in zip(
            (self.data_panel, self.settings_panel, self.plots, evaluation, self.runs_view),
            TABS,
            strict=True,
        ):
            self.tabs.addTab(widget, title)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)

    def _build_actions(self) -> None:
        self.run_action = QAction("&Run training", self)
        self.run_action.setShortcuts([QKeySequence("Ctrl+R"), QKeySequence("F5")])
        self.run_action.setToolTip("Train the model on its data (Ctrl+R, F5)")
        self.run_action.setStatusTip("Train the model; the graph is read-only while it runs")
        self.run_action.triggered.connect(self.run)
        self.stop_action = QAction("&Stop training", self)
        self.stop_action.setShortcuts(
            [QKeySequence("Ctrl+."), QKeySequence(Qt.Key.Key_Escape), QKeySequence("Shift+F5")]
        )
        self.stop_action.setToolTip("Stop training after the current batch (Esc)")
        self.stop_action.setStatusTip("Stop after the current batch, keeping the weights so far")
        self.stop_action.triggered.connect(self.stop)
        for action in (self.run_action, self.stop_action):
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(action)

    # -- public API -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._worker is not None

    def show_tab(self, title: str) -> None:
        self.tabs.setCurrentIndex(TABS.index(title))

    @Slot()
    def run(self) -> None:
        """Validate, then train a snapshot of the project in the background."""
        if self.running:
            return
        self.revealRequested.emit()
        if self.document.analysis.problems:
            self._show_problems()
            return
        self.show_tab("Curves")
        # frozen blocks keep the weights held so far (imported or trained); others start fresh
        self._start(
            "train",
            batch_interval=self.batch_interval,
            held_weights=self.trained_weights,
            backend=self.run_on.factory(),
        )

    def _show_problems(self) -> None:
        """The "Cannot run" banner, listing the graph's problems (the most useful first)."""
        problems = self.document.analysis.problems
        lines = [f"• {p}" for p in problems[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"… and {len(problems) - MAX_PROBLEMS_SHOWN} more")
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        self.show_message(f"Cannot run: the graph has {count}:\n" + "\n".join(lines))
        self._problems_shown = True

    @Slot()
    def _analysis_changed(self) -> None:
        """The "Cannot run" banner follows the graph: updated while it has problems, gone
        once it has none."""
        if not self._problems_shown:
            return
        if self.document.analysis.problems:
            self._show_problems()
        else:
            self.hide_message()

    @Slot()
    def evaluate(self) -> None:
        """Evaluate the trained (or loaded) weights on the test split, without training."""
        if self.running or self.trained_weights is None:
            return
        self.show_tab("Evaluation")
        self.revealRequested.emit()
        self._start("evaluate", epochs=0, initial_weights=self.trained_weights, save_to=None)

    @Slot()
    def stop(self) -> None:
        """Stop after the current batch; the weights so far are kept."""
        if self.running:
            self.controller.stop()
            self.status.setText("Stopping after this batch…")

    def shutdown(self) -> None:
        """Stop training and wait for the thread (call before the window closes)."""
        self.controller.shutdown()
        if self._worker is not None:
            self._worker = None
            self._set_running(False)

    def save_weights(self, path: str | Path | None = None) -> Path | None:
        """Write the trained weights (beside the project, or where the user chooses)."""
        if self.trained_weights is None:
            return None
        if path is None:
            path = weights_path(self.document.project)
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Save trained weights", "weights.npz", "NumPy archives (*.npz)"
            )
            if not chosen:
                return None
            path = chosen
        buffer = io.BytesIO()
        np.savez(buffer, **self.trained_weights)
        try:
            atomic_write(path, buffer.getvalue())
        except OSError as err:
            self.show_message(f"{path}: the weights could not be saved ({err.strerror or err})")
            return None
        self.weights_unsaved = False
        self.status.setText(f"Weights saved to {path}.")
        return Path(path)

    def on_project_saved(self) -> None:
        """After the document was saved: write weights trained before it had a file."""
        if self.weights_unsaved and self.document.project.path is not None:
            self.save_weights()
        self.runs_view.project_saved()  # a new file: the runs recorded beside it

    @Slot(int)
    def use_run_settings(self, run_id: int) -> None:
        """Make an earlier run's training and data settings the project's (undoable)."""
        record = self.plots.runs[run_id]
        project = self.document.project
        if record.settings == {"training": project.training, "data": project.data}:
            self.status.setText(f"The project already has the settings of {record.name}.")
            return
        stack = self.document.undo_stack
        stack.beginMacro(f"Use the settings of {record.name}")  # one undo step
        try:
            for section in ("training", "data"):
                self.document.set_section(section, copy.deepcopy(record.settings[section]))
        except NodenetError as err:
            self.show_message(str(err))
            return
        finally:
            stack.endMacro()
        self.status.setText(f"Settings of {record.name} restored.")

    def show_message(self, text: str, kind: str = "error") -> None:
        self._problems_shown = False  # another message: no longer the graph's problems
        self.message.setText(text)
        style = BANNER_STYLES[kind]
        text_colour = style.rsplit("color:", 1)[1]
        self.banner.setStyleSheet(
            f"QFrame#run_banner {{ {style} }} QLabel {{ color:{text_colour} }}"
        )
        self.banner.show()

    @Slot()
    def hide_message(self) -> None:
        self._problems_shown = False
        self.banner.hide()
        self.message.setText("")

    # -- running ----------------------------------------------------------------------

    def _start(self, mode: str, **options: Any) -> None:
        self.hide_message()
        self._mode, self._prepared, self._latest, self._run_id = mode, False, None, None
        project = self.document.project
        self._settings = {
            "training": copy.deepcopy(project.training),
            "data": copy.deepcopy(project.data),
        }
        self.document.set_read_only(True)
        self._set_running(True)
        self.status.setText("Loading the data and building the model…")
        try:
            self.controller.start(project, connect=self._connect_worker, **options)
        except (NodenetError, RuntimeError) as err:  # e.g. the previous thread still ending
            self._worker = None
            self.show_message(f"Cannot start training: {err}")
            self._finish()

    def _connect_worker(self, worker: TrainingWorker) -> None:
        self._worker = worker
        worker.prepared.connect(self._on_prepared)
        worker.batchEnd.connect(self._on_batch)
        worker.epochEnd.connect(self._on_epoch)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        self.trainingStarted.emit()  # before the thread starts: listeners miss nothing

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.run_action.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.stop_action.setEnabled(running)
        self.evaluate_button.setEnabled(not running and self.trained_weights is not None)
        self.save_button.setEnabled(not running and self.trained_weights is not None)
        self.run_on.setEnabled(not running)
        if running:
            self.progress.setValue(0)
            self.progress.setFormat("preparing…")
            self.rate.setText("")

    def _current(self) -> bool:
        """Whether a queued signal comes from the worker of the run in progress."""
        return self._worker is not None and self.sender() is self._worker

    @Slot(object)
    def _on_prepared(self, info: Prepared) -> None:
        if not self._current():
            return
        self._prepared, self._started_at = True, time.perf_counter()
        if self._mode == "train":
            self._run_id = self.plots.new_run(
                self._settings, epochs=info.epochs, heads=info.outputs
            )
        val = f", validating on {info.val:,}" if info.val else ""
        test = f", testing on {info.test:,}" if info.test else ""
        self.status.setText(
            f"Training on {info.train:,} samples{val}{test} · {info.params:,} parameters"
            if self._mode == "train"
            else "Evaluating the trained weights…"
        )

    @Slot(object)
    def _on_batch(self, event: BatchEnd) -> None:
        if self._current() and self._run_id is not None:
            self._latest = event
            self.plots.add_batch(self._run_id, event)

    @Slot(object)
    def _on_epoch(self, event: EpochEnd) -> None:
        if self._current() and self._run_id is not None:
            self.plots.add_epoch(self._run_id, event)

    @Slot()
    def _show_progress(self) -> None:
        batch = self._latest
        if batch is None or batch is self._shown or not self.running:
            return
        self._shown = batch
        done = (batch.epoch - 1 + batch.batch / batch.batches) / max(batch.epochs, 1)
        self.progress.setValue(round(done * PROGRESS_STEPS))
        self.progress.setFormat(
            f"epoch {batch.epoch}/{batch.epochs} · batch {batch.batch}/{batch.batches}"
        )
        elapsed = time.perf_counter() - self._started_at
        eta = elapsed / done * (1 - done) if done > 0 else 0.0
        self.rate.setText(f"{batch.samples_per_sec:,.0f} samples/s · ETA {_duration(eta)}")

    def _show_done(self, result: dict[str, Any]) -> None:
        how = {"user": "stopped", "early_stopping": "stopped early"}.get(result["stopped"], "done")
        self.progress.setValue(PROGRESS_STEPS)
        self.progress.setFormat(f"{how} · {result['epochs']} epoch(s)")
        self.rate.setText(f"{result['samples_per_sec']:,.0f} samples/s")

    @Slot(object)
    def _on_finished(self, result: dict[str, Any]) -> None:
        if not self._current():
            return
        self._worker = None
        self.trained_weights = result["weights"]
        title = "Trained weights"
        if self._mode == "train":
            self._show_done(result)
            status = STATUS_OF_STOP.get(result["stopped"], "stopped")  # the runs database's
            self.plots.finish_run(self._run_id, status, result)
            title = self.plots.runs[self._run_id].name
            self.weights_unsaved = result["weights_file"] is None
            if result["weights_error"]:
                self.show_message(f"The weights could not be saved: {result['weights_error']}")
            elif result.get("runs_error"):
                self.show_message(f"The run was not recorded: {result['runs_error']}", "warning")
            self.runs_view.run_recorded(self._run_id, result.get("run_id"))
        self.evaluation.show_result(result, title)
        self.status.setText(self._summary(result))
        self._finish()
        self.trainingFinished.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if not self._current():
            return
        self._worker = None
        if self._run_id is not None:
            self.plots.finish_run(self._run_id, "failed")
            self.runs_view.reload()  # recorded as failed
        what = "Training stopped" if self._prepared else "Cannot start training"
        if self._mode == "evaluate":
            what = "Cannot evaluate"
        self.show_message(f"{what}: {message}")
        self.status.setText(f"{what}.")
        self._finish()
        self.trainingFailed.emit(message)

    def _finish(self) -> None:
        self.document.set_read_only(False)
        self._set_running(False)
        if self._latest is None:
            self.progress.setFormat("idle")

    def _summary(self, result: dict[str, Any]) -> str:
        parts = []
        if self._mode == "train":
            how = {"user": "Stopped", "early_stopping": "Stopped early"}.get(
                result["stopped"], "Finished"
            )
            parts.append(
                f"{how} after {result['epochs']} epoch(s) in {result['fit_seconds']:.1f} s"
            )
            if result.get("best_epoch") and result.get("restored_best"):
                parts.append(f"best epoch {result['best_epoch']} restored")
        test = result.get("test")
        if test:
            shown = list(test["metrics"].items())[:3]
            parts.append("test " + ", ".join(f"{k} {v:.4g}" for k, v in shown))
        if result.get("weights_file"):
            parts.append(f"weights saved to {Path(result['weights_file']).name}")
        elif self._mode == "train":
            parts.append("weights kept in memory (Save weights… to keep them)")
        return " · ".join(parts) + "."

    # -- project changes ------------------------------------------------------------------

    @Slot()
    def _project_replaced(self) -> None:
        if self.running:
            self.controller.shutdown()
            self._worker = None
            self.document.set_read_only(False)
        self._set_running(False)
        self.plots.clear()
        self.evaluation.clear()
        self.hide_message()
        self.trained_weights, self.weights_unsaved, self._latest = None, False, None
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.rate.setText("")
        self.status.setText("Ready.")
        self._load_saved_weights()
        self.runs_view.project_changed()

    def _load_saved_weights(self) -> None:
        project = self.document.project
        path = weights_path(project)
        if path is None or not path.exists():
            return
        try:
            backend = NumpyBackend()
            backend.build(project, load_data=False)
            backend.load_weights(path)
        except NodenetError as err:
            self.show_message(
                f"The saved weights {path.name} were not loaded: {err}. "
                "Train again to replace them.",
                "warning",
            )
            return
        self.trained_weights = backend.get_weights()
        self.evaluation.clear(f"Trained weights loaded from {html.escape(path.name)}.")
        self.evaluation.show_histograms(histograms(self.trained_weights))
        self.status.setText(f"Trained weights loaded from {path.name}; Evaluate tests them.")
        self._set_running(False)

    def adopt_weights(self, weights: dict[str, np.ndarray], source: str) -> None:
        """Hold ``weights`` (an imported model's, matching the document's graph) as the
        trained weights, not yet saved: Evaluate and Export use them, and saving the
        project writes them beside it."""
        self.trained_weights = dict(weights)
        self.weights_unsaved = True
        self.evaluation.clear(f"Trained weights imported from {html.escape(source)}.")
        self.evaluation.show_histograms(histograms(self.trained_weights))
        self.status.setText(f"Trained weights imported from {source}; Evaluate tests them.")
        self._set_running(False)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)


def _button(text: str, icon) -> QPushButton:
    button = QPushButton(icon, text)
    button.setMinimumWidth(84)
    return button


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

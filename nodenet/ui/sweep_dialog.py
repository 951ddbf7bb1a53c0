"""The Sweep dialog: search hyperparameters of the open project with Optuna.

Pick settings from a tree of the project's blocks and training settings (each with a
range suggested by its descriptor, editable), the number of trials, the sampler and
pruning; Run sweeps in a background thread, trial after trial in this process, every
trial a run in the project's runs database (:mod:`nodenet.sweep`). The results show the
best trials, a parallel-coordinates plot, the parameter importances and whether the best
trial beat the project's own settings; "Use the best trial" applies its values to the
document as one undoable step.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nodenet.errors import NodenetError
from nodenet.sweep_space import (
    apply_trial,
    current_value,
    descriptor,
    resolve_specs,
    suggested_range,
    sweepable,
)
from nodenet.ui.plot_widget import PlotWidget
from nodenet.ui.sweep_plots import importance_bars, parallel_coordinates

KEY_ROLE = Qt.ItemDataRole.UserRole


class SweepThread(QThread):
    """Runs one sweep off the GUI thread; its signals arrive on the GUI thread."""

    trial_done = Signal(dict)  # a trial row (nodenet.sweep_report.trial_row)
    epoch_done = Signal(int, int, int)  # trial number, epoch, epochs
    finished_sweep = Signal(dict)  # the summary
    failed = Signal(str)

    def __init__(self, config, project, parent=None):
        super().__init__(parent)
        self.config, self.project = config, project
        self.stop_flag = threading.Event()

    def run(self) -> None:
        from nodenet.sweep import run_sweep
        from nodenet.sweep_report import summarize, trial_row

        try:
            study = run_sweep(
                self.config,
                project=self.project,
                on_trial=lambda t: self.trial_done.emit(trial_row(t)),
                on_epoch=lambda n, e, total, _v: self.epoch_done.emit(n, e, total),
                should_stop=self.stop_flag.is_set,
            )
            self.finished_sweep.emit(summarize(study))
        except NodenetError as err:
            self.failed.emit(str(err))
        except Exception as err:  # a bug must reach the dialog
            self.failed.emit(f"internal error ({type(err).__name__}: {err})")


class SweepDialog(QDialog):
    """The sweep's settings, its progress and its results, for ``document``."""

    def __init__(self, document, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sweep_dialog")
        self.setWindowTitle("Sweep hyperparameters")
        self.document = document
        self.thread: SweepThread | None = None
        self.summary: dict[str, Any] | None = None
        self.rows: list[dict] = []
        self._build()
        self._fill_tree()

    # -- layout ------------------------------------------------------------------------

    def _build(self) -> None:
        self.tree = QTreeWidget(objectName="sweep_params")
        self.tree.setHeaderLabels(["Setting", "Range", "Now"])
        self.tree.setEditTriggers(QTreeWidget.EditTrigger.NoEditTriggers)  # the range alone:
        self.tree.itemDoubleClicked.connect(self._edit_range)  # double-click or F2
        self.tree.setToolTip(
            "Tick the settings to sweep; edit a range (double-click): uniform:A:B, "
            "loguniform:A:B, int:A:B[:STEP] or categorical:a,b,c"
        )
        self.trials = QSpinBox(objectName="sweep_trials", minimum=1, maximum=10_000, value=20)
        self.sampler = QComboBox(objectName="sweep_sampler")
        self.sampler.addItems(["tpe", "random", "grid"])
        self.prune = QCheckBox("Stop bad trials early (median pruner)", objectName="sweep_prune")
        self.epochs = QSpinBox(objectName="sweep_epochs", minimum=0, maximum=100_000)
        self.epochs.setSpecialValueText("the project's")
        self.seed = QSpinBox(objectName="sweep_seed", minimum=0, maximum=2**31 - 1, value=0)
        self.seed.setSpecialValueText("random")
        form = QFormLayout()
        form.addRow("Trials", self.trials)
        form.addRow("Sampler", self.sampler)
        form.addRow("", self.prune)
        form.addRow("Epochs", self.epochs)
        form.addRow("Seed", self.seed)
        self.run_button = QPushButton("Run", objectName="sweep_run", clicked=self.run)
        self.stop_button = QPushButton("Stop", objectName="sweep_stop", clicked=self.stop)
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar(objectName="sweep_progress")
        self.status = QLabel("", objectName="sweep_status", wordWrap=True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.tree, 1)
        left_layout.addLayout(form)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.progress)
        left_layout.addWidget(self.status)

        self.table = QTableWidget(objectName="sweep_table")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.parallel = PlotWidget(objectName="sweep_parallel")
        self.importance = PlotWidget(objectName="sweep_importance")
        self.tabs = QTabWidget(objectName="sweep_tabs")
        self.tabs.addTab(self.table, "Trials")
        self.tabs.addTab(self.parallel, "Parallel coordinates")
        self.tabs.addTab(self.importance, "Importances")
        self.comparison = QLabel("", objectName="sweep_comparison", wordWrap=True)
        self.apply_button = QPushButton(
            "Use the best trial", objectName="sweep_apply", clicked=self.use_best
        )
        self.apply_button.setEnabled(False)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.tabs, 1)
        right_layout.addWidget(self.comparison)
        right_layout.addWidget(self.apply_button)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self.resize(1000, 600)

    def _fill_tree(self) -> None:
        """The project's blocks and training settings, each sweepable setting a row."""
        from nodenet.engine import OPTIMIZER_PARAMS, TRAINING_PARAMS, block_class

        project = self.document.project
        self.tree.clear()
        blocks = QTreeWidgetItem(self.tree, ["Blocks"])
        for node in project.nodes:
            if node.type in ("Input", "Output"):
                continue
            parent = QTreeWidgetItem(blocks, [f"{node.id} ({node.type})"])
            names = [p.name for p in block_class(node.type).PARAMS]
            self._add_rows(parent, [f"nodes.{node.id}.{n}" for n in names])
        training = QTreeWidgetItem(self.tree, ["Training"])
        self._add_rows(training, [f"training.{p.name}" for p in TRAINING_PARAMS])
        optimizer = project.training.get("optimizer", {}).get("name", "adam")
        opt = QTreeWidgetItem(training, [f"optimizer ({optimizer})"])
        names = [p.name for p in OPTIMIZER_PARAMS.get(optimizer, ())]
        self._add_rows(opt, [f"training.optimizer.{n}" for n in names])
        for section in ("early_stopping", "reduce_lr_on_plateau"):
            if project.training.get(section):
                from nodenet.sweep_space import _training_sections

                item = QTreeWidgetItem(training, [section])
                names = [p.name for p in _training_sections()[section]]
                self._add_rows(item, [f"training.{section}.{n}" for n in names])
        self.tree.expandAll()
        for column in range(self.tree.columnCount()):  # a range like categorical:a,b,c whole
            self.tree.resizeColumnToContents(column)

    def _add_rows(self, parent: QTreeWidgetItem, keys: list[str]) -> None:
        project = self.document.project
        for key in keys:
            param = descriptor(project, key)
            if not sweepable(param):
                continue
            now = current_value(project, key)
            rng = suggested_range(param, now)
            if rng is None:
                continue
            item = QTreeWidgetItem(parent, [key.split(".")[-1], rng, _text(now)])
            item.setData(0, KEY_ROLE, key)
            item.setFlags(
                item.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEditable
            )
            item.setCheckState(0, Qt.CheckState.Unchecked)
            item.setToolTip(0, f"{key}: {param.help}")

    def _edit_range(self, item: QTreeWidgetItem, _column: int = 1) -> None:
        if item.data(0, KEY_ROLE):
            self.tree.editItem(item, 1)

    def keyPressEvent(self, event) -> None:
        item = self.tree.currentItem()
        if event.key() == Qt.Key.Key_F2 and item is not None and self.tree.hasFocus():
            self._edit_range(item)
            return
        super().keyPressEvent(event)

    def item_for(self, key: str) -> QTreeWidgetItem | None:
        """The tree row of the setting ``key``."""
        for item in _walk(self.tree.invisibleRootItem()):
            if item.data(0, KEY_ROLE) == key:
                return item
        return None

    def chosen_specs(self) -> list[str]:
        """The ticked settings as ``KEY=RANGE`` specs."""
        return [
            f"{item.data(0, KEY_ROLE)}={item.text(1).strip()}"
            for item in _walk(self.tree.invisibleRootItem())
            if item.data(0, KEY_ROLE) and item.checkState(0) == Qt.CheckState.Checked
        ]

    # -- running -------------------------------------------------------------------------

    def run(self) -> None:
        from nodenet.sweep import SweepConfig

        project = self.document.project
        if project.path is None:
            self.status.setText(
                "Save the project first: a sweep's trials are recorded in NAME.runs.sqlite "
                "beside it."
            )
            return
        try:
            from nodenet.sweep import require_optuna

            require_optuna()
            specs = resolve_specs(project, self.chosen_specs())
        except NodenetError as err:
            self.status.setText(str(err))
            return
        config = SweepConfig(
            project_file=str(project.path),
            params=[s.text() for s in specs],
            trials=self.trials.value(),
            sampler=self.sampler.currentText(),
            prune="median" if self.prune.isChecked() else None,
            seed=self.seed.value() or None,
            epochs=self.epochs.value() or None,
        )
        snapshot = project.copy()
        snapshot.path = project.path
        self.rows, self.summary = [], None
        self.table.setRowCount(0)
        self.apply_button.setEnabled(False)
        self.comparison.setText("")
        self.progress.setRange(0, config.trials)
        self.progress.setValue(0)
        self.status.setText(f"running {config.trials} trials...")
        self.thread = SweepThread(config, snapshot, self)
        self.thread.trial_done.connect(self._trial_done)
        self.thread.epoch_done.connect(self._epoch_done)
        self.thread.finished_sweep.connect(self._finished)
        self.thread.failed.connect(self._failed)
        self.thread.finished.connect(self._thread_ended)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop_flag.set()
            self.status.setText("stopping after this batch...")

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def _epoch_done(self, number: int, epoch: int, epochs: int) -> None:
        self.status.setText(f"trial {number}: epoch {epoch}/{epochs}")

    def _trial_done(self, row: dict) -> None:
        self.rows.append(row)
        self.progress.setValue(len(self.rows))
        value = "-" if row["value"] is None else f"{row['value']:.4g}"
        self.status.setText(f"trial {row['number']}: {row['state']} {value}")
        self._show_rows(self.rows, objective=None)

    def _finished(self, summary: dict) -> None:
        self.summary = summary
        by_number = {r["number"]: r for r in summary["trials"]}
        ranked = [by_number[n] for n in summary["ranked"]]
        rest = [r for r in summary["trials"] if r["number"] not in summary["ranked"]]
        self._show_rows(ranked + rest, objective=summary["objective"])
        parallel_coordinates(self.parallel, summary)
        importance_bars(self.importance, summary["importances"])
        self.comparison.setText(summary["comparison"]["text"])
        counts = summary["counts"]
        self.status.setText(
            f"{summary['study']}: {counts['complete']} complete, {counts['pruned']} pruned, "
            f"{counts['failed']} failed"
        )
        self.apply_button.setEnabled(summary["best"] is not None)

    def _failed(self, message: str) -> None:
        self.status.setText(message)

    def _thread_ended(self) -> None:
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _show_rows(self, rows: list[dict], objective: str | None) -> None:
        keys = list(dict.fromkeys(k for r in rows for k in r["params"]))
        head = ["trial", "state", objective or "value", "run", *[k.split(".")[-1] for k in keys]]
        self.table.setColumnCount(len(head))
        self.table.setHorizontalHeaderLabels(head)
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            label = f"{r['number']}" + (" (project)" if r["defaults"] else "")
            cells = [label, r["state"], _text(r["value"]), _text(r["run"])]
            cells += [_text(r["params"].get(k)) for k in keys]
            for j, cell in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(cell))
        self.table.resizeColumnsToContents()

    # -- using the best trial ----------------------------------------------------------------

    def use_best(self) -> None:
        """Apply the best trial's values to the document: one undo step."""
        if self.summary is None or self.summary["best"] is None:
            return
        best = self.summary["best"]
        apply_params(self.document, best["params"], f"Use sweep trial {best['number']}")
        self.status.setText(f"trial {best['number']}'s values are in the project (Undo restores)")

    def closeEvent(self, event) -> None:
        if self.thread is not None and self.thread.isRunning():
            self.thread.stop_flag.set()
            self.thread.wait()
        super().closeEvent(event)


def apply_params(document, params: dict[str, Any], text: str) -> None:
    """Set ``params`` (sweep keys to values) on ``document`` inside one undo macro: each
    block's parameters with ``set_params``, the training section with ``set_section``."""
    project = document.project
    changed = apply_trial(project, params)  # checks every value first
    stack = document.undo_stack
    stack.beginMacro(text)
    try:
        for node_id in dict.fromkeys(k.split(".")[1] for k in params if k.startswith("nodes.")):
            document.set_params(node_id, dict(changed.node(node_id).params))
        if any(k.startswith("training.") for k in params):
            document.set_section("training", changed.training)
    finally:
        stack.endMacro()


def open_sweep_dialog(window) -> SweepDialog:
    """Show the Sweep dialog for ``window``'s document (the window's "Sweep..." command)."""
    dialog = SweepDialog(window.document, window)
    dialog.show()
    return dialog


def _walk(item: QTreeWidgetItem):
    for i in range(item.childCount()):
        child = item.child(i)
        yield child
        yield from _walk(child)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

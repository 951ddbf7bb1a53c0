"""The Runs tab: every run recorded in the project's runs database (``NAME.runs.sqlite``).

A sortable table (id, name, status, when, duration, backend, the validation and test
metric), a filter box speaking :mod:`nodenet.runs_query`'s language, a note per run,
rename (F2 or double-click on the name), delete (Del, confirmed: the row and its weights
file go), compare (the settings of two or more runs side by side, the differing ones
highlighted, and only their curves shown) and restore (the run's graph, training and
data settings become the project's in one undoable command; its kept weights become the
trained weights).

When the project is opened or saved under a new name, the database is read on a
background thread; the last :data:`SHOWN` runs' curves go into the Curves tab (oldest
first, each shown or hidden there), and **Show more** adds earlier ones. A database
that cannot be read (damaged, newer) is reported in a message and nothing else changes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nodenet.errors import NodenetError
from nodenet.runs_db import RunsDB, recorded, runs_path
from nodenet.runs_query import conditions
from nodenet.ui.training.runs_compare import CompareTable
from nodenet.ui.training.runs_restore import kept_weights, restore_project
from nodenet.ui.training.runs_rows import display_name, metric_keys, row_cells

SHOWN = 10  # runs whose curves are loaded into the Curves tab at first; Show more adds as many
ID, NAME, STATUS, WHEN, DURATION, BACKEND, VAL, TEST = range(8)
FIXED_HEADERS = ("id", "name", "status", "when", "duration", "backend")
READ_ERRORS = (NodenetError, sqlite3.Error, OSError)


FILTER_TIP = (
    "Comma-separated conditions KEY=VALUE, KEY~TEXT (contains), KEY<N, KEY>N; KEY is "
    "a column or a metric (val_accuracy, test_accuracy)"
)


class _Relay(QObject):
    """Carries a background read's result to the GUI thread (a queued signal)."""

    done = Signal(int, object)


def output_heads(project: dict[str, Any] | None) -> tuple[str, ...]:
    """The Output ids of a project snapshot when it has several (their curves share plots)."""
    outputs = [n.get("id") for n in (project or {}).get("nodes") or [] if n.get("type") == "Output"]
    return tuple(outputs) if len(outputs) > 1 else ()


def run_settings(project: dict[str, Any] | None) -> dict[str, Any]:
    project = project or {}
    return {"training": project.get("training") or {}, "data": project.get("data") or {}}


class RunsView(QWidget):
    """The runs of the document's project: table, filter, note, compare and restore."""

    message = Signal(str, str)  # text, kind ("error", "warning", "info")
    weightsRestored = Signal(object, str)  # weights dict, where they come from
    loaded = Signal()  # a read of the database ended (the table and curves are current)

    def __init__(self, document, plots, parent: QWidget | None = None):
        super().__init__(parent)
        self.document, self.plots = document, plots
        self.db_path: Path | None = None
        self.runs: list[dict[str, Any]] = []
        self.shown = SHOWN
        self.error: str | None = None
        self._generation = 0
        self._filling = False
        self._relay = _Relay(self)
        self._relay.done.connect(self._loaded)
        self._build()

    # -- construction ----------------------------------------------------------------

    def _build(self) -> None:
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter: val_accuracy>0.9, status=finished, name~adam")
        self.filter.setToolTip(FILTER_TIP)
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.apply_filter)
        self.info = QLabel("")
        self.info.setStyleSheet("color: #555;")
        self.info.setWordWrap(True)
        self.table = QTableWidget(0, 8)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        triggers = QAbstractItemView.EditTrigger
        self.table.setEditTriggers(triggers.DoubleClicked | triggers.EditKeyPressed)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(ID, Qt.SortOrder.AscendingOrder)
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.delete_action = QAction("Delete run", self.table)
        self.delete_action.setShortcut(QKeySequence(Qt.Key.Key_Delete))
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.delete_action.triggered.connect(lambda: self.delete_selected())
        self.table.addAction(self.delete_action)
        self.note = QLineEdit()
        self.note.setPlaceholderText("A note on the selected run (Enter keeps it)")
        self.note.setToolTip("A note kept with the selected run in the project's runs file")
        self.note.editingFinished.connect(self._note_edited)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Settings of the selected runs side by side; their curves")
        self.compare_button.clicked.connect(lambda: self.compare_selected())
        self.restore_button = QPushButton("Restore this run")
        self.restore_button.setToolTip(
            "Make the run's graph, training and data settings the project's (undoable) and its "
            "kept weights the trained weights"
        )
        self.restore_button.clicked.connect(lambda: self.restore_selected())
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete the selected runs and their weights (Del)")
        self.delete_button.clicked.connect(lambda: self.delete_selected())
        self.more_button = QPushButton("Show more in Curves")
        self.more_button.setToolTip(f"Add the curves of {SHOWN} earlier runs to the Curves tab")
        self.more_button.clicked.connect(self.show_more)
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Note"))
        buttons.addWidget(self.note, 1)
        for button in (self.compare_button, self.restore_button, self.delete_button):
            buttons.addWidget(button)
        buttons.addWidget(self.more_button)
        self.compare = CompareTable()
        self.compare.hide()
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.filter)
        top_layout.addWidget(self.info)
        top_layout.addWidget(self.table, 1)
        top_layout.addLayout(buttons)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.compare)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._set_headers("val_loss", "test_loss")
        self._selection_changed()

    # -- reading the database ------------------------------------------------------------

    def project_changed(self) -> None:
        """The document shows another project: read its runs, their curves included."""
        self.shown, self.error = SHOWN, None
        self.compare.hide()
        self.reload(curves=True)

    def project_saved(self) -> None:
        """The project was saved: a new file name means another runs database."""
        path = self.document.project.path
        if path is not None and runs_path(path) != self.db_path:
            self.reload(curves=True)

    def reload(self, curves: bool = False) -> None:
        """Read the database again on a background thread (and, with ``curves``, put the
        last :attr:`shown` runs into the Curves tab in place of those loaded before);
        :attr:`loaded` tells when it is done."""
        self._generation += 1
        generation = self._generation
        path = self.document.project.path
        self.db_path = runs_path(path) if path is not None else None
        wanted = self.shown if curves else 0
        db_path = self.db_path
        if db_path is None or not recorded(db_path):
            self._loaded(generation, ([], {}, None, curves))
            return
        self.info.setText("Reading the runs…")
        relay = self._relay

        def read() -> None:
            result = _read(db_path, wanted)
            with contextlib.suppress(RuntimeError):  # the view may be gone
                relay.done.emit(generation, (*result, curves))

        threading.Thread(target=read, name="nodenet-data-runs", daemon=True).start()

    @Slot(int, object)
    def _loaded(self, generation: int, result: tuple) -> None:
        if generation != self._generation:
            return  # an older read, overtaken
        runs, epochs, error, curves = result
        said, self.error = self.error, error
        if error is not None:
            if error != said:  # once: not again after each run of the same project
                self.message.emit(f"Past runs are not shown: {error}", "warning")
            self.info.setText(error)
        else:
            count = len(runs)
            self.info.setText(f"{count} run{'s' if count != 1 else ''} recorded" if runs else "")
        self.runs = runs
        self._fill()
        names = {run["id"]: display_name(run) for run in runs}
        for plot_id, record in list(self.plots.runs.items()):  # a run just recorded, say
            if record.db_id in names and record.name != names[record.db_id]:
                self.plots.rename_run(plot_id, names[record.db_id])
        if curves:
            self._load_curves(epochs)
        self.more_button.setEnabled(len(self.runs) > self.shown)
        self.loaded.emit()

    def _load_curves(self, epochs: dict[int, list[dict[str, Any]]]) -> None:
        """Replace the recorded runs in the Curves tab by the last :attr:`shown` ones."""
        for plot_id, record in list(self.plots.runs.items()):
            if record.db_id is not None and record.status != "running":
                self.plots.remove_run(plot_id)
        live = {r.db_id for r in self.plots.runs.values()}
        self.plots.max_runs = max(self.plots.max_runs, self.shown + len(self.plots.runs))
        for run in self.runs[-self.shown :]:
            if run["id"] in epochs and run["id"] not in live:
                self._add_curves(run, epochs[run["id"]])

    def _add_curves(self, run: dict[str, Any], epochs: list[dict[str, Any]]) -> int:
        project = run.get("project")
        return self.plots.add_past_run(
            run_settings(project),
            display_name(run),
            epochs,
            run["status"],
            heads=output_heads(project),
            db_id=run["id"],
        )

    @Slot()
    def show_more(self) -> None:
        """Load the curves of :data:`SHOWN` more earlier runs into the Curves tab."""
        self.shown += SHOWN
        self.reload(curves=True)

    def run_recorded(self, plot_id: int | None, run_id: int | None) -> None:
        """A run of this panel ended, recorded as ``run_id``: link its curves, re-read."""
        if plot_id is not None and run_id is not None and plot_id in self.plots.runs:
            self.plots.runs[plot_id].db_id = run_id
        self.reload()

    # -- the table -----------------------------------------------------------------------

    def _set_headers(self, val_key: str, test_key: str) -> None:
        self.val_key, self.test_key = val_key, test_key
        self.table.setHorizontalHeaderLabels([*FIXED_HEADERS, val_key, test_key])

    def _fill(self) -> None:
        self._filling = True
        selected = set(self.selected_ids())
        self.table.setSortingEnabled(False)
        try:
            self._set_headers(*metric_keys(self.runs))
            self.table.setRowCount(len(self.runs))
            for row, run in enumerate(self.runs):
                for column, cell in enumerate(row_cells(run, self.val_key, self.test_key)):
                    editable = column == NAME
                    flags = cell.flags() if editable else cell.flags() & ~Qt.ItemFlag.ItemIsEditable
                    cell.setFlags(flags)
                    cell.setData(Qt.ItemDataRole.UserRole, run["id"])
                    self.table.setItem(row, column, cell)
        finally:
            self.table.setSortingEnabled(True)
            self._filling = False
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(NAME, max(self.table.columnWidth(NAME), 140))  # room to rename
        self.apply_filter()
        flags = QItemSelectionModel.SelectionFlag
        for row in range(self.table.rowCount()):
            if self._row_id(row) in selected:
                index = self.table.model().index(row, ID)
                self.table.selectionModel().select(index, flags.Select | flags.Rows)

    def _row_id(self, row: int) -> int:
        return self.table.item(row, ID).data(Qt.ItemDataRole.UserRole)

    def row_of(self, run_id: int) -> int | None:
        for row in range(self.table.rowCount()):
            if self._row_id(row) == run_id:
                return row
        return None

    def visible_ids(self) -> list[int]:
        """The run ids of the rows shown, top to bottom."""
        rows = range(self.table.rowCount())
        return [self._row_id(r) for r in rows if not self.table.isRowHidden(r)]

    def selected_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self._row_id(r) for r in rows if self.table.item(r, ID) is not None]

    def run(self, run_id: int) -> dict[str, Any]:
        return next(r for r in self.runs if r["id"] == run_id)

    @Slot()
    def apply_filter(self) -> None:
        """Hide the rows the filter box's conditions reject (an invalid filter hides none)."""
        try:
            tests = conditions(self.filter.text())
        except NodenetError as err:
            self.filter.setStyleSheet("QLineEdit { border: 1px solid #e57373; }")
            self.filter.setToolTip(str(err))
            tests = []
        else:
            self.filter.setStyleSheet("")
            self.filter.setToolTip(FILTER_TIP)
        passing = {r["id"] for r in self.runs if all(test(r) for test in tests)}
        for row in range(self.table.rowCount()):
            self.table.setRowHidden(row, self._row_id(row) not in passing)

    @Slot()
    def _selection_changed(self) -> None:
        ids = self.selected_ids()
        self.compare_button.setEnabled(len(ids) >= 2)
        self.restore_button.setEnabled(len(ids) == 1)
        self.delete_button.setEnabled(bool(ids))
        self.note.setEnabled(len(ids) == 1)
        known = {r["id"]: r for r in self.runs}
        one = known.get(ids[0]) if len(ids) == 1 else None
        self.note.setText((one or {}).get("note") or "")

    # -- editing -------------------------------------------------------------------------

    def _edit(self, action: Callable[[RunsDB], Any]) -> bool:
        """Do ``action`` on the open database; a problem becomes a message. Whether it worked."""
        if self.db_path is None:
            return False
        try:
            with RunsDB(self.db_path, create=False) as db:
                action(db)
        except READ_ERRORS as err:
            self.message.emit(str(err), "error")
            return False
        return True

    @Slot(QTableWidgetItem)
    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != NAME:
            return
        run_id, name = item.data(Qt.ItemDataRole.UserRole), item.text().strip()
        if name == (self.run(run_id).get("name") or ""):
            return  # the note's tooltip changed, or the same name again
        run = self.run(run_id)
        if not self._edit(lambda db: db.rename(run_id, name)):
            self._filling = True  # the database kept the old name: so does the table
            item.setText(run.get("name") or "")
            self._filling = False
            return
        run["name"] = name
        for plot_id, record in self.plots.runs.items():
            if record.db_id == run_id:
                self.plots.rename_run(plot_id, display_name(run))

    @Slot()
    def _note_edited(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        run, note = self.run(ids[0]), self.note.text()
        if note != (run.get("note") or "") and self._edit(lambda db: db.annotate(run["id"], note)):
            run["note"] = note
            row = self.row_of(run["id"])
            if row is not None:
                self.table.item(row, NAME).setToolTip(note)

    def delete_selected(self, confirm: bool = True) -> list[int]:
        """Delete the selected runs (not one still running) after asking; the ids deleted."""
        ids = [i for i in self.selected_ids() if self.run(i)["status"] != "running"]
        if not ids:
            return []
        names = ", ".join(display_name(self.run(i)) for i in ids)
        text = f"Delete {names} and the weights kept for it? This cannot be undone."
        if confirm and not self._confirm(text):
            return []
        deleted = []

        def delete(db: RunsDB) -> None:
            for run_id in ids:
                db.delete(run_id)
                deleted.append(run_id)

        self._edit(delete)
        for plot_id, record in list(self.plots.runs.items()):
            if record.db_id in deleted:
                self.plots.remove_run(plot_id)
        self.runs = [r for r in self.runs if r["id"] not in deleted]
        self._fill()
        return deleted

    def _confirm(self, text: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, "Delete runs", text, parent=self)
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        return box.exec() == QMessageBox.StandardButton.Yes

    # -- compare and restore -------------------------------------------------------------

    def compare_selected(self) -> None:
        """Settings of the selected runs side by side, and only their curves shown."""
        ids = self.selected_ids()
        if len(ids) < 2:
            return
        runs = [self.run(i) for i in ids]
        self.compare.show_runs([display_name(r) for r in runs], [r.get("project") for r in runs])
        self.compare.show()
        in_plots = {r.db_id: plot_id for plot_id, r in self.plots.runs.items()}
        missing = [i for i in ids if i not in in_plots]
        if missing:
            epochs: dict[int, list] = {}
            self._edit(lambda db: epochs.update({i: db.get(i)["epochs"] for i in missing}))
            self.plots.max_runs = max(self.plots.max_runs, len(self.plots.runs) + len(missing))
            for run_id in missing:
                if run_id in epochs:
                    in_plots[run_id] = self._add_curves(self.run(run_id), epochs[run_id])
        self.plots.show_only([in_plots[i] for i in ids if i in in_plots])

    def restore_selected(self) -> None:
        """Make the selected run's graph and settings the project's (one undoable command)
        and its kept weights the trained weights."""
        ids = self.selected_ids()
        if len(ids) != 1 or self.db_path is None:
            return
        run = self.run(ids[0])
        name = display_name(run)
        try:
            restore_project(self.document, run, name, f"{self.db_path}: run {run['id']}")
        except NodenetError as err:
            self.message.emit(f"{name} cannot be restored: {err}", "error")
            return
        path = self.db_path.parent / run["weights"] if run.get("weights") else None
        if path is None or not path.exists():
            text = f"{name} restored; its weights were not kept (see Weights retention)."
            self.message.emit(text, "info")
            return
        try:
            weights = kept_weights(self.document.project, path)
        except NodenetError as err:
            self.message.emit(f"{name} restored; its weights were not loaded: {err}", "warning")
            return
        self.weightsRestored.emit(weights, name)
        self.message.emit(
            f"{name} restored, with its weights (Undo brings the project back).", "info"
        )


def _read(path: Path, curves: int) -> tuple[list, dict, str | None]:
    """Every run of the database (and the epochs of the last ``curves``), or the error."""
    try:
        with RunsDB(path, create=False) as db:
            runs = db.list()
            epochs = {r["id"]: db.get(r["id"])["epochs"] for r in runs[-curves:]} if curves else {}
    except READ_ERRORS as err:
        return [], {}, str(err)
    return runs, epochs, None

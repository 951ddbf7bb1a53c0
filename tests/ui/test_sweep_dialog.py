"""The Sweep dialog: settings picked in its tree with the keyboard and mouse, six trials run
in the background and recorded, the results drawn, and the best trial applied to the
document as one undoable step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("optuna", reason="sweeps need the optional optuna extra")

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from nodenet.graph.project import load
from nodenet.runs_db import RunsDB
from nodenet.ui.document import Document
from nodenet.ui.sweep_dialog import SweepDialog

SAMPLE = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"
LR = "training.optimizer.learning_rate"
TIMEOUT = 180_000


@pytest.fixture
def dialog(qtbot, tmp_path):
    path = tmp_path / "digits_mlp.json"
    shutil.copy(SAMPLE, path)
    document = Document(load(path))
    dialog = SweepDialog(document)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def tick(qtbot, dialog, key: str, rng: str | None = None) -> None:
    """Select the setting's row, tick it with Space, and type a new range into it."""
    tree = dialog.tree
    item = dialog.item_for(key)
    tree.setFocus()
    tree.setCurrentItem(item)
    qtbot.keyClick(tree.viewport(), Qt.Key.Key_Space)
    assert item.checkState(0) == Qt.CheckState.Checked
    if rng is not None:
        tree.scrollToItem(item)
        cell = tree.visualItemRect(item).center()
        cell.setX(tree.header().sectionPosition(1) + 8)
        qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=cell)
        qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=cell)
        # the open editor: an earlier one, closed, may still wait for its deletion
        editors = [e for e in tree.viewport().findChildren(QLineEdit) if e.isVisible()]
        assert len(editors) == 1, "double-clicking the range opened no editor"
        editor = editors[0]
        qtbot.keyClick(editor, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        qtbot.keyClicks(editor, rng)
        qtbot.keyClick(editor, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: item.text(1) == rng)  # the delegate commits queued


def type_number(qtbot, spin, value: int) -> None:
    spin.setFocus()
    qtbot.keyClick(spin, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(spin, str(value))
    qtbot.keyClick(spin, Qt.Key.Key_Tab)
    assert spin.value() == value


def test_the_tree_suggests_ranges_from_the_descriptors(dialog):
    units = dialog.item_for("nodes.hidden_1.units")
    assert (units.text(1), units.text(2)) == ("int:32:512", "128")
    lr = dialog.item_for(LR)
    assert (lr.text(1), lr.text(2)) == ("loguniform:0.0001:0.01", "0.001")
    assert dialog.item_for("nodes.hidden_1.activation").text(1).startswith("categorical:")
    assert dialog.item_for("training.early_stopping.patience") is not None
    assert dialog.item_for("nodes.pixels.shape") is None  # an Input has nothing to sweep


def test_a_bad_range_is_refused_naming_it(qtbot, dialog):
    tick(qtbot, dialog, "nodes.hidden_1.units", "int:0:8")
    qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    assert dialog.status.text().startswith("nodes.hidden_1.units=int:0:8: units must be")
    assert dialog.thread is None


def test_an_unsaved_project_is_not_swept(qtbot, dialog):
    dialog.document.project.path = None
    tick(qtbot, dialog, "nodes.hidden_1.units")
    qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    assert "Save the project first" in dialog.status.text()
    assert dialog.thread is None


def test_six_trials_then_the_best_is_used_and_undo_restores(qtbot, dialog):
    document = dialog.document
    tick(qtbot, dialog, LR, "loguniform:1e-4:1e-1")
    tick(qtbot, dialog, "nodes.hidden_1.units", "int:16:256")
    type_number(qtbot, dialog.trials, 6)
    type_number(qtbot, dialog.epochs, 2)
    type_number(qtbot, dialog.seed, 11)
    qtbot.mouseClick(dialog.prune, Qt.MouseButton.LeftButton)
    assert dialog.prune.isChecked()
    qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.summary is not None and not dialog.running, timeout=TIMEOUT)
    summary = dialog.summary
    assert dialog.progress.value() == 6
    assert dialog.table.rowCount() == 6
    best = summary["best"]
    assert dialog.table.item(0, 0).text().split()[0] == str(best["number"])  # best first
    # every trial is a run of the study, in the runs database beside the project
    with RunsDB(document.project.path.with_name("digits_mlp.runs.sqlite")) as db:
        runs = [db.get(r["id"]) for r in db.list()]
    assert sorted(r["trial"] for r in runs) == list(range(6))
    assert {r["study"] for r in runs} == {summary["study"]}
    # the plots: one polyline per finished trial, one bar per parameter
    complete = [t for t in summary["trials"] if t["state"] == "complete"]
    lines = [i for i in dialog.parallel.getPlotItem().items if isinstance(i, pg.PlotDataItem)]
    assert len(lines) == len(complete)
    bars = [i for i in dialog.importance.getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    assert len(bars) == 1
    assert set(summary["importances"]) == {LR, "nodes.hidden_1.units"}
    assert dialog.comparison.text() == summary["comparison"]["text"]
    # use the best trial: its values in the document, one undo step
    before = document.project.to_dict()
    assert dialog.apply_button.isEnabled()
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    assert (
        document.project.node("hidden_1").params["units"] == best["params"]["nodes.hidden_1.units"]
    )
    assert document.project.training["optimizer"]["learning_rate"] == best["params"][LR]
    assert document.undo_stack.count() == 1
    document.undo_stack.undo()
    assert document.project.to_dict() == before


def test_the_window_opens_the_dialog_on_its_document(qtbot):
    from nodenet.ui.main_window import MainWindow
    from nodenet.ui.sweep_dialog import open_sweep_dialog

    window = MainWindow()
    qtbot.addWidget(window)
    dialog = open_sweep_dialog(window)
    assert dialog.document is window.document
    assert dialog.isVisible() and dialog.parent() is window
    dialog.close()

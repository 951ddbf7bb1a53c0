"""The Runs tab with the real Document: runs trained from the GUI, reopened, sorted,
filtered, renamed, compared, restored and deleted with real clicks and keys."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject, QPoint, Qt, QTimer, Slot
from PySide6.QtWidgets import QApplication, QMessageBox

from nodenet.graph.project import load
from nodenet.runs_db import RunsDB, runs_path
from nodenet.ui.document import Document
from nodenet.ui.training import TrainingPanel
from nodenet.ui.training.runs_view import NAME, SHOWN, VAL

SAMPLE = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"
TIMEOUT = 180_000
LEFT = Qt.MouseButton.LeftButton
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def document(tmp_path):
    path = tmp_path / "digits_mlp.json"
    shutil.copy(SAMPLE, path)
    return Document(load(path))


@pytest.fixture
def panel(qtbot, document):
    panel = TrainingPanel(document, batch_interval=0.0)
    qtbot.addWidget(panel)
    panel.resize(1100, 700)
    panel.show()
    qtbot.waitExposed(panel)
    yield panel
    panel.shutdown()


class EpochRecorder(QObject):
    """Keeps the epochEnd events of the panel's current worker (the reference curves)."""

    def __init__(self, panel):
        super().__init__()
        self.panel, self.epochs = panel, []
        panel.trainingStarted.connect(self.attach)

    @Slot()
    def attach(self):
        self.panel.controller.worker.epochEnd.connect(self.on_epoch)

    @Slot(object)
    def on_epoch(self, event):
        self.epochs.append(event)


def train(qtbot, panel, document, learning_rate: float):
    """Set the learning rate and 2 epochs, click Run; the settings trained and the epochs."""
    training = copy.deepcopy(document.project.training)
    training.update(epochs=2, early_stopping=None)
    training["optimizer"] = {**training["optimizer"], "learning_rate": learning_rate}
    document.set_section("training", training)
    settings = {"training": copy.deepcopy(training), "data": copy.deepcopy(document.project.data)}
    graph = copy.deepcopy(document.project.to_dict()["nodes"])
    recorder = EpochRecorder(panel)
    rows = panel.runs_view.table.rowCount()
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.run_button, LEFT)
    assert finished.args[0]["run_id"] is not None and finished.args[0]["runs_error"] is None
    qtbot.waitUntil(lambda: panel.runs_view.table.rowCount() == rows + 1, timeout=10_000)
    return settings, graph, recorder.epochs


def reopen(qtbot, panel, document):
    """Open the project's file again, as File > Open does; wait for its runs."""
    with qtbot.waitSignal(panel.runs_view.loaded, timeout=30_000):
        document.replace_project(load(document.project.path))


def click_row(qtbot, table, row: int, column: int = 0, modifier=Qt.KeyboardModifier.NoModifier):
    rect = table.visualItemRect(table.item(row, column))
    qtbot.mouseClick(table.viewport(), LEFT, modifier, rect.center())


def answer_yes(qtbot) -> None:
    """Click Yes in the confirmation box once it is up."""

    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), LEFT)

    QTimer.singleShot(0, click)


def test_runs_survive_reopening_and_the_run_list_edits_them(qtbot, panel, document, tmp_path):
    first, graph, first_epochs = train(qtbot, panel, document, 0.01)
    second, _, second_epochs = train(qtbot, panel, document, 0.0005)
    assert [r.db_id for r in panel.plots.runs.values()] == [1, 2]  # linked to their records
    reopen(qtbot, panel, document)
    panel.show_tab("Curves")

    # both runs' curves and settings are back, oldest first, linked to their records
    plots, view = panel.plots, panel.runs_view
    records = list(plots.runs.values())
    assert [r.db_id for r in records] == [1, 2]
    assert [r.settings for r in records] == [first, second]
    for record, epochs in zip(records, (first_epochs, second_epochs), strict=True):
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            x, y = record.curves[key].getOriginalDataset()
            assert x.tolist() == [1, 2], key
            assert y.tolist() == pytest.approx([e.metrics[key] for e in epochs], rel=1e-12), key
        assert record.status == "finished" and record.visible

    # sort by the validation metric with header clicks
    bar = panel.tabs.tabBar()
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(4).center())  # the Runs tab
    table = view.table
    assert table.isVisible()
    assert view.val_key == "val_accuracy"
    final = {
        1: first_epochs[-1].metrics["val_accuracy"],
        2: second_epochs[-1].metrics["val_accuracy"],
    }
    header = table.horizontalHeader()
    section = header.sectionViewportPosition(VAL) + header.sectionSize(VAL) // 2
    qtbot.mouseClick(header.viewport(), LEFT, pos=QPoint(section, 5))
    ascending = [final[i] for i in view.visible_ids()]
    qtbot.mouseClick(header.viewport(), LEFT, pos=QPoint(section, 5))
    descending = [final[i] for i in view.visible_ids()]
    assert ascending == sorted(final.values()) and descending == ascending[::-1]

    # filter in the runs_query language
    view.filter.setFocus()
    qtbot.keyClicks(view.filter, "id>1")
    assert view.visible_ids() == [2]
    view.filter.clear()
    qtbot.keyClicks(view.filter, "backend~numpy, status=finished")
    assert sorted(view.visible_ids()) == [1, 2]
    view.filter.clear()
    qtbot.keyClicks(view.filter, "val_accuracy>")  # not a condition yet: nothing hidden
    assert sorted(view.visible_ids()) == [1, 2] and view.filter.toolTip()
    view.filter.clear()

    # rename with F2, annotate in the note field
    click_row(qtbot, table, view.row_of(1), NAME)
    qtbot.keyClick(table, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    qtbot.keyClicks(editor, "fast lr")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    view.note.setFocus()
    qtbot.keyClicks(view.note, "diverges early")
    qtbot.keyClick(view.note, Qt.Key.Key_Return)
    database = runs_path(document.project.path)
    with RunsDB(database, create=False) as db:
        stored = db.get(1)
        assert (stored["name"], stored["note"]) == ("fast lr", "diverges early")
    assert records[0].name == "fast lr"
    legend = [label.text for _, label in plots.plots["loss"].legend.items]
    assert "fast lr train" in legend and "Run 2 validation" in legend

    # compare: the learning rate differs, the batch size does not; both curves shown
    plots.run_list.item(1).setCheckState(Qt.CheckState.Unchecked)  # hide the second
    assert not records[1].visible
    click_row(qtbot, table, view.row_of(1))
    click_row(qtbot, table, view.row_of(2), modifier=CTRL)
    qtbot.mouseClick(view.compare_button, LEFT)
    compare = view.compare
    assert compare.isVisible()
    assert compare.highlighted("training.optimizer.learning_rate")
    assert not compare.highlighted("training.batch_size")
    assert not compare.highlighted("nodes.hidden_1.units")
    row = compare.row_of("training.optimizer.learning_rate")
    assert [compare.item(row, c).text() for c in (1, 2)] == ["0.01", "0.0005"]
    assert all(r.visible for r in records)

    # restore the first run: its settings, graph and weights; undo brings the project back
    before = copy.deepcopy((document.project.training, document.project.data))
    click_row(qtbot, table, view.row_of(1))
    qtbot.mouseClick(view.restore_button, LEFT)
    assert document.project.training == first["training"]
    assert document.project.data == first["data"]
    assert document.project.to_dict()["nodes"] == graph
    kept = np.load(database.with_name("digits_mlp.runs") / "1.weights.npz", allow_pickle=False)
    assert sorted(panel.trained_weights) == sorted(kept.files)
    for name in kept.files:
        np.testing.assert_array_equal(panel.trained_weights[name], kept[name])
    document.undo()
    assert (document.project.training, document.project.data) == before

    # delete the second run with Del, the confirmation answered
    weights_2 = database.with_name("digits_mlp.runs") / "2.weights.npz"
    assert weights_2.exists()
    click_row(qtbot, table, view.row_of(2))
    answer_yes(qtbot)
    qtbot.keyClick(table, Qt.Key.Key_Delete)
    assert view.visible_ids() == [1] and table.rowCount() == 1
    with RunsDB(database, create=False) as db:
        assert [r["id"] for r in db.list()] == [1]
    assert not weights_2.exists()
    assert [r.db_id for r in plots.runs.values()] == [1]


def test_a_damaged_runs_database_is_reported_and_left_alone(qtbot, panel, document):
    database = runs_path(document.project.path)
    database.write_bytes(b"not a database at all")
    reopen(qtbot, panel, document)
    assert panel.banner.isVisible()
    assert "not an SQLite database" in panel.message.text()
    assert panel.runs_view.table.rowCount() == 0 and not panel.plots.runs
    assert database.read_bytes() == b"not a database at all"

    # a run still trains, unrecorded, and says so
    training = copy.deepcopy(document.project.training)
    training.update(epochs=1, early_stopping=None)
    document.set_section("training", training)
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.run_button, LEFT)
    result = finished.args[0]
    assert result["run_id"] is None and "not an SQLite database" in result["runs_error"]
    assert panel.banner.isVisible()
    assert panel.message.text().startswith("The run was not recorded: ")
    assert database.read_bytes() == b"not a database at all"


def test_the_last_runs_are_plotted_and_show_more_adds_earlier_ones(qtbot, panel, document):
    count = SHOWN + 3
    with RunsDB(runs_path(document.project.path)) as db:
        for n in range(count):
            run_id = db.start_run(name=f"r{n}", project=document.project.to_dict())
            for epoch in (1, 2):
                db.epoch(run_id, epoch, {"loss": 1.0 / (n + epoch)})
            db.finish(run_id, "finished", final_metrics={"loss": 1.0 / (n + 2)})
    reopen(qtbot, panel, document)
    panel.show_tab("Curves")
    view = panel.runs_view
    assert view.table.rowCount() == count
    plotted = [r.db_id for r in panel.plots.runs.values()]
    assert plotted == list(range(4, count + 1))  # the last SHOWN, oldest first
    record = next(iter(panel.plots.runs.values()))
    assert record.curves["loss"].getOriginalDataset()[1].tolist() == [1 / 4, 1 / 5]
    assert view.more_button.isEnabled()
    with qtbot.waitSignal(view.loaded, timeout=30_000):
        qtbot.mouseClick(view.more_button, LEFT)
    assert [r.db_id for r in panel.plots.runs.values()] == list(range(1, count + 1))
    assert not view.more_button.isEnabled()


def test_saving_under_a_new_name_shows_the_runs_kept_there(qtbot, panel, document, tmp_path):
    target = tmp_path / "copy.json"
    with RunsDB(runs_path(target)) as db:
        run_id = db.start_run(name="earlier", project=document.project.to_dict())
        db.epoch(run_id, 1, {"loss": 0.5})
        db.finish(run_id, "stopped")
    with qtbot.waitSignal(panel.runs_view.loaded, timeout=30_000):
        document.save(target)
        panel.on_project_saved()  # what the main window does after saving
    view = panel.runs_view
    assert view.table.rowCount() == 1 and view.table.item(0, NAME).text() == "earlier"
    (record,) = panel.plots.runs.values()
    assert (record.db_id, record.name, record.status) == (run_id, "earlier", "stopped")
    assert record.series["loss"].data()[1].tolist() == [0.5]


def test_a_run_stopped_early_reads_the_same_while_shown_and_when_read_back(qtbot, panel, document):
    """The Curves tab's run list names a run's end as the runs database does."""
    training = copy.deepcopy(document.project.training)
    training.update(epochs=30, early_stopping={"monitor": "loss", "patience": 0, "min_delta": 10})
    document.set_section("training", training)
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT):
        qtbot.mouseClick(panel.run_button, LEFT)
    live = panel.plots.run_list.item(0).text()
    assert panel.plots.runs[1].status == "early_stopped", live
    reopen(qtbot, panel, document)
    assert [r.status for r in panel.plots.runs.values()] == ["early_stopped"]
    assert panel.plots.run_list.item(0).text() == live

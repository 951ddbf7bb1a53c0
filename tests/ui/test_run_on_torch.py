"""The Run panel's "Run on" choice with real clicks: PyTorch on the CPU trains in a child
process with the curves growing as with the engine, Stop ends it within a batch, a killed
child is a clear message and the panel stays usable, Evaluate reads the weights that came
home; without PyTorch, choosing it says how to install it."""

from __future__ import annotations

import copy
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from docs.tutorial_steps import choose, click
from nodenet.graph.project import load
from nodenet.ui.document import Document
from nodenet.ui.settings import app_settings
from nodenet.ui.training import TrainingPanel
from nodenet.ui.training.run_on import ENGINE, SETTING

SAMPLE = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"
TIMEOUT = 240_000
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def panel(qtbot, tmp_path):
    path = tmp_path / "digits_mlp.json"
    shutil.copy(SAMPLE, path)
    document = Document(load(path))
    panel = TrainingPanel(document, batch_interval=0.0)
    qtbot.addWidget(panel)
    panel.resize(1200, 700)
    panel.show()
    qtbot.waitExposed(panel)
    yield panel
    panel.shutdown()


def pick(combo, text: str) -> None:
    """Open the drop-down with a click and click ``text`` (the panel may refuse it, so
    the click is known to have landed when the list closes; on a busy machine a drop-down
    ignores a release that comes too soon after it opened, and the click is made again)."""
    index = combo.findText(text)
    click(combo)
    view = combo.view()
    assert view.isVisible(), "clicking the drop-down opened nothing"
    item = view.model().index(index, combo.modelColumn())
    view.scrollTo(item)
    for _ in range(5):
        QTest.qWait(QApplication.doubleClickInterval() + 50)
        point = view.visualRect(item).center()
        QTest.mouseMove(view.viewport(), point)
        click(view.viewport(), point)
        if not view.isVisible():
            return
    raise AssertionError(f"clicking {text!r} left the drop-down open")


def set_training(document, **changes):
    training = copy.deepcopy(document.project.training)
    training.update(changes)
    document.set_section("training", training)


def test_without_pytorch_choosing_it_says_how_to_install_it(qtbot, panel, monkeypatch):
    monkeypatch.setattr("nodenet.torch_backend.torch_installed", lambda: False)
    monkeypatch.setattr("nodenet.torch_backend.devices.torch_installed", lambda: False)
    pick(panel.run_on, "PyTorch CPU")
    assert panel.run_on.choice == ENGINE
    assert "pip install" in panel.message.text() and "torch" in panel.message.text()
    assert app_settings().value(SETTING) == ENGINE


def test_pytorch_cpu_trains_stops_survives_a_killed_child_and_evaluates(qtbot, panel):
    pytest.importorskip("torch", reason="the PyTorch backend runs on torch")
    document = panel.document
    choose(panel.run_on, "PyTorch CPU")
    assert app_settings().value(SETTING) == "torch:cpu"  # the machine's choice, not the file's
    assert "backend" not in document.project.training

    # 1. a run: the curves grow epoch by epoch, the weights come home
    set_training(document, epochs=3, early_stopping=None)
    epochs = []
    panel.trainingStarted.connect(
        lambda: panel.controller.worker.epochEnd.connect(lambda e: epochs.append(e.epoch))
    )
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.run_button, LEFT)
    result = finished.args[0]
    assert epochs == [1, 2, 3]
    (run_id,) = panel.plots.runs
    x, _ = panel.plots.curve(run_id, "loss").getOriginalDataset()
    assert x.tolist() == [1, 2, 3]
    assert result["weights"].keys() == panel.trained_weights.keys()
    assert panel.evaluation.confusion.sum() == result["test"]["size"]

    # 2. Stop ends the child within one batch
    set_training(document, epochs=500)
    qtbot.mouseClick(panel.run_button, LEFT)
    worker = panel.controller.worker
    qtbot.waitUntil(lambda: worker.steps >= 5, timeout=TIMEOUT)
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.stop_button, LEFT)
        steps_at_stop = worker.steps
    assert finished.args[0]["stopped"] == "user"
    # the child runs ahead of the events the GUI has read, so the GUI's count cannot time the
    # stop to the batch (tests/torch_backend does, in the child); the run ends in its first epoch
    assert steps_at_stop <= finished.args[0]["steps"] < 45  # 45 batches per epoch
    assert not document.read_only and panel.run_button.isEnabled()

    # 3. the child killed mid-run: a clear message, the panel usable
    qtbot.mouseClick(panel.run_button, LEFT)
    worker = panel.controller.worker
    qtbot.waitUntil(lambda: worker.steps >= 3, timeout=TIMEOUT)
    with qtbot.waitSignal(panel.trainingFailed, timeout=TIMEOUT) as failed:
        os.kill(worker.backend.process.pid, signal.SIGKILL)
    assert "PyTorch" in failed.args[0] or "child" in failed.args[0] or "process" in failed.args[0]
    assert not document.read_only and panel.run_button.isEnabled()

    # 4. Evaluate (the engine) on the weights the stopped run brought home
    kept = {k: v.copy() for k, v in panel.trained_weights.items()}
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT):
        qtbot.mouseClick(panel.evaluate_button, LEFT)
    confusion = panel.evaluation.confusion
    assert confusion.shape == (10, 10) and confusion.sum() > 0
    for key, array in kept.items():
        np.testing.assert_array_equal(panel.trained_weights[key], array)

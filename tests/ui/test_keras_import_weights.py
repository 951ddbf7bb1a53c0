"""File → Import of a .keras archive brings its trained weights into the Run panel.

The panel holds them as trained weights (Evaluate and Export use them, the evaluation
tab shows their histograms), unsaved until the project has a file: saving it writes
``NAME.weights.npz`` beside it, and reopening loads them again. Without h5py the model
comes in untrained, with a notice saying how to get the weights.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from nodenet.export import import_keras_archive
from nodenet.graph.project import load

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) writes the archive")
pytest.importorskip("h5py", reason="the `keras` extra (h5py) reads its weights")

pytestmark = pytest.mark.ref


@pytest.fixture
def archive(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(5, activation="relu", name="hidden"),
            keras.layers.Dense(2, activation="softmax", name="head"),
        ]
    )
    rng = np.random.default_rng(0)
    for layer in model.layers:
        layer.set_weights([rng.normal(size=tuple(w.shape)) for w in layer.weights])
    path = tmp_path / "trained.keras"
    model.save(path)
    return path


def test_import_brings_the_trained_weights_into_the_run_panel(
    make_window, no_prompts, archive, tmp_path
):
    window = make_window()
    assert window.import_keras_file(archive, ask=False)
    panel = window.training_panel
    _, expected = import_keras_archive(archive)
    assert panel.trained_weights.keys() == expected.keys()
    for key, array in expected.items():
        np.testing.assert_array_equal(panel.trained_weights[key], array)
    assert panel.weights_unsaved and panel.evaluate_button.isEnabled()
    assert "imported from trained.keras" in panel.status.text()
    assert window.save_as(tmp_path / "imported.json")
    assert (tmp_path / "imported.weights.npz").exists() and not panel.weights_unsaved
    window.document.replace_project(load(tmp_path / "imported.json"))
    np.testing.assert_array_equal(panel.trained_weights["head/kernel"], expected["head/kernel"])
    assert no_prompts == []


def test_without_h5py_the_model_comes_in_untrained_with_a_notice(
    make_window, no_prompts, archive, monkeypatch
):
    window = make_window()
    monkeypatch.setitem(sys.modules, "h5py", None)
    monkeypatch.setattr("nodenet.ui.project_files._has_h5py", lambda: False)
    assert window.import_keras_file(archive, ask=False)
    panel = window.training_panel
    assert panel.trained_weights is None
    assert "pip install h5py" in panel.message.text()
    assert {n.id for n in window.document.project.nodes} >= {"hidden", "head"}

"""docs/transfer-learning.md, through the real window with real gestures.

A Keras model with trained weights comes in through File → Import (Ctrl+I); the
body's blocks are selected with clicks and frozen with Ctrl+K; the old head is
deleted with the Delete key and a Dense from the palette takes its place, wired
port to port; the bundled digits dataset is chosen in the Run panel and Run is
pressed. The frozen body keeps the imported weights to the bit, the new head
learns, and the project saves and reopens with its frozen blocks.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog

from tests.ui.test_tutorial import steps

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) writes the model file")
pytest.importorskip("h5py", reason="the `test` extra (h5py) reads the model file's weights")

BODY = ("features_1", "norm", "features_2")
CTRL = Qt.KeyboardModifier.ControlModifier


def digits_body(path) -> None:
    """The doc's Keras model: trained (briefly) on the digits 0 to 4, saved with weights."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    keep = y < 5
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(64,), name="pixels")
    h = keras.layers.Rescaling(1 / 16, name="scale")(inputs)
    h = keras.layers.Dense(64, activation="relu", name="features_1")(h)
    h = keras.layers.BatchNormalization(name="norm")(h)
    h = keras.layers.Dense(32, activation="relu", name="features_2")(h)
    outputs = keras.layers.Dense(5, activation="softmax", name="digits_0_4")(h)
    model = keras.Model(inputs, outputs, name="digits_body")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x[keep].astype("float32"), y[keep], epochs=5, batch_size=32, verbose=0)
    model.save(path)


@pytest.fixture
def window(qtbot):
    """The main window as `nodenet` opens it, at the tutorial's size."""
    window = steps.start_window()
    qtbot.addWidget(window, before_close_func=lambda w: w.document.undo_stack.setClean())
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.training_panel.shutdown()


def ctrl_click(window, node_id: str) -> None:
    QTest.mouseClick(
        window.canvas.viewport(),
        Qt.MouseButton.LeftButton,
        CTRL,
        steps.header_point(window, node_id),
    )
    steps.settle()


def test_import_freeze_swap_the_head_and_train_on_a_bundled_dataset(
    qtbot, window, tmp_path, monkeypatch
):
    model_file = tmp_path / "digits_body.keras"
    digits_body(model_file)
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(model_file), ""))
    )
    welcome = getattr(window, "welcome", None)
    if welcome is not None and welcome.active:
        steps.click(welcome.page.new_button)

    # 1. File → Import (Ctrl+I): the graph and its trained weights
    steps.shortcut(qtbot, window, Qt.Key.Key_I, CTRL)
    document, panel = window.document, window.training_panel
    assert {n.id for n in document.project.nodes} >= {*BODY, "digits_0_4", "pixels"}
    imported = {k: v.copy() for k, v in panel.trained_weights.items()}
    assert any(k.startswith("features_1/") for k in imported)

    # 2. freeze the body: click, Ctrl+click, Ctrl+click, Ctrl+K
    steps.select_block(window, BODY[0])
    for node_id in BODY[1:]:
        ctrl_click(window, node_id)
    steps.shortcut(qtbot, window, Qt.Key.Key_K, CTRL)
    frozen = {n.id for n in document.project.nodes if not n.trainable}
    assert frozen == set(BODY)
    assert (
        "❄" in steps.card(window, "norm").toolTip()
        or "Frozen" in steps.card(window, "norm").toolTip()
    )

    # 3. swap the head: Delete the 5-way Dense, drag a 10-way one from the palette, wire it
    steps.select_block(window, "digits_0_4")
    steps.shortcut(qtbot, window, Qt.Key.Key_Delete)
    assert "digits_0_4" not in {n.id for n in document.project.nodes}
    head_at = steps.card(window, "features_2").scenePos()
    steps.drag_from_palette(window, "Dense", (head_at.x() + 260, head_at.y()))
    steps.rename(window, "probs")
    steps.set_param(window, "units", "10")
    steps.set_param(window, "activation", "softmax")
    output = next(n.id for n in document.project.nodes if n.type == "Output")
    steps.connect(window, "features_2", "probs")
    steps.connect(window, "probs", output)
    assert not document.analysis.problems

    # 4. the bundled digits, then Run
    steps.make_room_for_the_run_panel(window)
    steps.show_run_tab(window, "Data")
    data = panel.data_panel
    steps.choose(data.dataset, "digits")
    qtbot.waitUntil(lambda: data.mapping_combos[("inputs", "pixels")].findData("x") >= 0)
    steps.choose(data.mapping_combos[("inputs", "pixels")], "x")
    steps.choose(data.mapping_combos[("targets", output)], "y")
    steps.type_into(data.split_form.editor("test"), "0.2")
    qtbot.waitUntil(lambda: data.status.text().startswith("✓ Ready"), timeout=60_000)
    steps.show_run_tab(window, "Settings")
    steps.type_into(panel.settings_panel.training_form.editor("epochs"), "15")
    steps.train(qtbot, window, tmp_path)

    trained = panel.trained_weights
    for key, before in imported.items():
        if key.split("/", 1)[0] in BODY:  # the frozen body: the imported weights, to the bit
            np.testing.assert_array_equal(trained[key], before, err_msg=key)
    assert not np.allclose(trained["probs/kernel"], 0.0)
    history = panel.history.epochs if hasattr(panel, "history") else None
    if history:
        assert history[-1]["loss"] < history[0]["loss"]

    # 5. saved and reopened, the body is still frozen
    with steps.answering_file_dialogs(tmp_path / "transfer.json"):
        steps.shortcut(qtbot, window, Qt.Key.Key_S, CTRL)
    saved = json.loads((tmp_path / "transfer.json").read_text())
    assert {n["id"] for n in saved["nodes"] if n.get("trainable") is False} == set(BODY)

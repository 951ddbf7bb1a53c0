"""Freezing blocks in the editor: the document's command, the canvas mark, the inspector's
"Trainable" box (one block or a selection at once), the Freeze / Unfreeze command, undo, redo,
copy and paste, save and reopen."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from nodenet.graph.project import load
from nodenet.runner import build_model
from nodenet.ui.canvas import style
from nodenet.ui.document import Document, Selection
from nodenet.ui.inspector import Inspector
from nodenet.ui.main_window import MainWindow
from nodenet.ui.training import TrainingPanel
from tests.ui import SAMPLE

LEFT, NO_MOD = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier
DENSE = ("hidden_1", "hidden_2")


def click_box(box) -> None:
    """Click a check box on its indicator (a wide box ignores clicks right of its text)."""
    QTest.mouseClick(box, LEFT, NO_MOD, QPoint(8, box.height() // 2))


def trainable(doc: Document) -> dict[str, bool]:
    return {n.id: n.trainable for n in doc.project.nodes}


def test_freezing_is_one_command_that_skips_blocks_without_weights():
    doc = Document(load(SAMPLE))
    assert doc.freezable(["pixels", *DENSE, "digit"]) == list(DENSE)
    assert doc.set_trainable(["pixels", *DENSE], False) == 2
    assert doc.undo_stack.count() == 1
    assert doc.undo_stack.undoText() == "Freeze 2 blocks"
    assert doc.analysis.params["hidden_1"] == (0, 8320)
    assert not any(trainable(doc)[i] for i in DENSE) and trainable(doc)["pixels"]
    doc.undo()
    assert all(trainable(doc).values())
    assert doc.analysis.params["hidden_1"] == (8320, 0)
    doc.redo()
    assert doc.toggle_trainable(["hidden_1", "probs"]) == 1  # a mix: all trainable again
    assert trainable(doc)["hidden_1"] and trainable(doc)["probs"]
    assert doc.undo_stack.undoText() == "Unfreeze hidden_1"


def test_copy_paste_keeps_the_flag():
    doc = Document(load(SAMPLE))
    doc.set_trainable(["hidden_1"], False)
    new = doc.paste(doc.copy(["hidden_1", "hidden_2"]))
    assert [doc.project.node(i).trainable for i in new] == [False, True]


def test_a_frozen_card_is_marked_and_says_so(qtbot):
    from nodenet.ui.canvas import CanvasView

    doc = Document(load(SAMPLE))
    view = CanvasView(doc, Selection(doc))
    qtbot.addWidget(view)
    card = view.canvas_scene.nodes["hidden_1"]
    assert not card.face.frozen
    doc.set_trainable(["hidden_1"], False)
    assert card.face.frozen
    assert style.FROZEN_TIP in card.toolTip()
    assert "0 trainable" in card.toolTip()
    assert style.category_color("Core", muted=True) != style.category_color("Core")
    doc.undo()
    assert not card.face.frozen and style.FROZEN_TIP not in card.toolTip()


def test_the_inspector_box_follows_the_block(qtbot):
    doc = Document(load(SAMPLE))
    selection = Selection(doc)
    inspector = Inspector(doc, selection)
    qtbot.addWidget(inspector)
    inspector.resize(360, 800)
    inspector.show()
    qtbot.waitExposed(inspector)
    selection.set(["pixels"])
    assert inspector.trainable_box.isHidden()  # an Input has no weights
    selection.set(["hidden_1"])
    box = inspector.trainable_box
    assert box.isChecked() and not box.isHidden() and box.toolTip()
    click_box(box)
    assert not doc.project.node("hidden_1").trainable
    assert not inspector.trainable_box.isChecked()
    doc.undo()
    assert inspector.trainable_box.isChecked()
    selection.set(["hidden_1", "hidden_2"])
    doc.set_trainable(["hidden_2"], False)
    assert inspector.trainable_box.checkState() == Qt.CheckState.PartiallyChecked


@pytest.fixture
def window(qtbot):
    window = MainWindow()
    qtbot.addWidget(window, before_close_func=lambda w: w.document.undo_stack.setClean())
    window.open_sample(SAMPLE, ask=False)
    window.docks["inspector"].show()
    window.show()
    qtbot.waitExposed(window)
    return window


def click_card(window: MainWindow, node_id: str, modifiers=NO_MOD) -> None:
    view = window.canvas
    card = view.canvas_scene.nodes[node_id]
    view.ensureVisible(card)
    point = view.mapFromScene(card.mapToScene(QPointF(60, style.HEADER_HEIGHT / 2)))
    QTest.mouseClick(view.viewport(), LEFT, modifiers, point)


def test_select_two_blocks_freeze_undo_redo_save_and_reopen(window, tmp_path):
    click_card(window, "hidden_1")
    click_card(window, "hidden_2", CTRL)
    assert sorted(window.selection.ids()) == sorted(DENSE)
    box = window.inspector.trainable_box
    assert box.isVisible() and box.isChecked()
    click_box(box)
    assert not any(trainable(window.document)[i] for i in DENSE)
    assert all(window.canvas.canvas_scene.nodes[i].face.frozen for i in DENSE)
    assert not window.inspector.trainable_box.isChecked()
    assert window.document.undo_stack.count() == 1  # both blocks, one command
    totals = window.summary.totals.text()
    assert "Trainable: 1,290" in totals and "Non-trainable: 24,832" in totals  # as Keras counts

    QTest.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)  # undo
    assert all(trainable(window.document)[i] for i in DENSE)
    assert window.inspector.trainable_box.isChecked()
    window.actions["redo"].trigger()
    assert not any(trainable(window.document)[i] for i in DENSE)

    path = tmp_path / "frozen.json"
    assert window.save_as(path)
    saved = {n["id"]: n for n in json.loads(path.read_text())["nodes"]}
    assert saved["hidden_1"]["trainable"] is False and "trainable" not in saved["probs"]
    window.new_project()
    assert window.open_file(path, ask=False)
    assert trainable(window.document) == {
        "pixels": True,
        "hidden_1": False,
        "hidden_2": False,
        "probs": True,
        "digit": True,
    }
    assert window.canvas.canvas_scene.nodes["hidden_2"].face.frozen


def test_the_freeze_command_toggles_the_selection_from_the_keyboard(window):
    click_card(window, "probs")
    QTest.keyClick(window.canvas, Qt.Key.Key_K, CTRL)
    assert not window.document.project.node("probs").trainable
    assert window.document.undo_stack.undoText() == "Freeze probs"
    window.actions["freeze"].trigger()
    assert window.document.project.node("probs").trainable


def test_run_keeps_the_weights_of_frozen_blocks_and_trains_the_rest(qtbot, tmp_path):
    """The transfer-learning run: frozen blocks start from the weights held so far
    (imported or trained) and end with them; the others start fresh and learn."""
    path = tmp_path / "digits_mlp.json"
    shutil.copy(SAMPLE, path)
    document = Document(load(path))
    panel = TrainingPanel(document, batch_interval=0.0)
    qtbot.addWidget(panel)
    panel.show()
    training = {**document.project.training, "epochs": 1, "early_stopping": None}
    document.set_section("training", training)
    rng = np.random.default_rng(0)
    held = {
        k: v + rng.normal(size=v.shape).astype(v.dtype)
        for k, v in build_model(document.project, seed=5).get_weights().items()
    }
    panel.adopt_weights(held, "a test")
    document.set_trainable(["hidden_1", "hidden_2"], False)
    try:
        with qtbot.waitSignal(panel.trainingFinished, timeout=180_000) as finished:
            panel.run()
    finally:
        panel.shutdown()
    trained = finished.args[0]["weights"]
    for key, value in held.items():
        same = np.array_equal(trained[key], value)
        assert same == key.startswith(("hidden_1/", "hidden_2/")), key

"""Editing at scale, with real gestures: the parameters several selected blocks share,
Find on the canvas (Ctrl+F, Enter / Shift+Enter / F3), the palette's "no match" text."""

from __future__ import annotations

import itertools

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QCheckBox, QLabel, QLineEdit, QSpinBox, QToolButton

from docs.tutorial_steps import click, header_point, settle, type_into
from nodenet.graph.project import Edge, Node, Project
from nodenet.ui.shared_params import MIXED, common_specs

LEFT, NO_MOD = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def conv_project() -> Project:
    nodes = [
        Node("image", "Input", {"shape": [28, 28, 1]}, [0.0, 0.0]),
        Node("conv_a", "Conv2D", {"filters": 8}, [260.0, 0.0]),
        Node("conv_b", "Conv2D", {"filters": 8, "kernel_size": [5, 5]}, [520.0, 0.0]),
        Node("flat", "Flatten", {}, [780.0, 0.0]),
        Node("probs", "Dense", {"units": 10, "activation": "softmax"}, [1040.0, 0.0]),
        Node("out", "Output", {}, [1300.0, 0.0]),
    ]
    chain = [n.id for n in nodes]
    return Project(
        name="convs", nodes=nodes, edges=[Edge(a, b) for a, b in itertools.pairwise(chain)]
    )


@pytest.fixture
def window(make_window):
    window = make_window()
    window.welcome.leave()
    window.document.replace_project(conv_project())
    window.canvas.fit_to_view()
    settle()
    return window


def select_two(window, first: str, second: str) -> None:
    """Click one block's title bar, Ctrl+click another's."""
    viewport = window.canvas.viewport()
    click(viewport, header_point(window, first))
    QTest.mouseClick(viewport, LEFT, CTRL, header_point(window, second))
    settle()
    assert set(window.selection.ids()) == {first, second}


def test_common_parameters_of_mixed_types():
    names = [s.name for s in common_specs(["Conv2D", "Conv2D"])]
    assert names[:3] == ["filters", "kernel_size", "strides"]
    shared = {s.name for s in common_specs(["Conv2D", "Dense"])}
    assert {"use_bias", "activation", "kernel_initializer"} <= shared
    assert "filters" not in shared and "units" not in shared
    assert common_specs(["Conv2D", "Flatten"]) == [] or "filters" not in {
        s.name for s in common_specs(["Conv2D", "Flatten"])
    }


def test_two_conv2ds_edit_their_shared_parameters_as_one_command(window, qtbot):
    doc, inspector = window.document, window.inspector
    select_two(window, "conv_a", "conv_b")
    assert inspector.findChild(QLabel, "muted").text() == "2 blocks selected"
    assert {"filters", "kernel_size", "padding", "use_bias"} <= set(inspector.editors)
    filters = inspector.editors["filters"].widget
    assert isinstance(filters, QSpinBox) and filters.value() == 8  # common value
    kernel = inspector.editors["kernel_size"].widget
    assert isinstance(kernel, QLineEdit) and kernel.text() == ""  # they differ: "mixed"
    assert kernel.placeholderText() == MIXED
    before = doc.undo_stack.count()
    original = doc.project.to_dict()

    type_into(filters, "16")
    assert [doc.project.node(i).params["filters"] for i in ("conv_a", "conv_b")] == [16, 16]
    assert doc.undo_stack.count() == before + 1
    assert "2 blocks" in doc.undo_stack.undoText()
    assert doc.analysis.shapes["conv_b"][-1] == 16

    type_into(kernel, "3, 3")  # the mixed field: one value for both
    assert doc.project.node("conv_b").params["kernel_size"] == [3, 3]
    assert kernel.text() == "3, 3" and kernel.placeholderText() != MIXED
    assert doc.undo_stack.count() == before + 2

    QTest.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)  # undo the kernel size
    settle()
    assert doc.project.node("conv_b").params["kernel_size"] == [5, 5]
    assert kernel.text() == "" and kernel.placeholderText() == MIXED
    QTest.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)  # undo the filters
    settle()
    assert [doc.project.node(i).params["filters"] for i in ("conv_a", "conv_b")] == [8, 8]
    assert filters.value() == 8
    assert doc.undo_stack.count() == before + 2 and doc.undo_stack.index() == before
    assert doc.project.to_dict() == original  # undo restores exactly
    QTest.keyClick(window.canvas, Qt.Key.Key_Y, CTRL)  # redo both
    QTest.keyClick(window.canvas, Qt.Key.Key_Y, CTRL)
    settle()
    assert [doc.project.node(i).params["filters"] for i in ("conv_a", "conv_b")] == [16, 16]
    assert doc.project.node("conv_b").params["kernel_size"] == [3, 3]
    assert filters.value() == 16
    assert kernel.text() == "3, 3" and kernel.placeholderText() != MIXED


def test_a_mixed_check_box_and_a_refused_value(window):
    doc, inspector = window.document, window.inspector
    doc.set_params("conv_b", {**doc.project.node("conv_b").params, "use_bias": False})
    select_two(window, "conv_a", "conv_b")
    box = inspector.editors["use_bias"].widget
    assert isinstance(box, QCheckBox) and box.checkState() == Qt.CheckState.PartiallyChecked
    before = doc.undo_stack.count()
    click(box, QPoint(7, box.height() // 2))  # on its indicator
    assert [doc.project.node(i).params["use_bias"] for i in ("conv_a", "conv_b")] == [True] * 2
    assert doc.undo_stack.count() == before + 1 and not box.isTristate()

    strides = inspector.editors["strides"].widget
    type_into(strides, "0, 0")  # refused: nothing changes, the reason shows under the field
    assert doc.undo_stack.count() == before + 1
    assert inspector.errors["strides"].isVisible()
    assert doc.project.node("conv_a").params.get("strides", [1, 1]) == [1, 1]


def test_tab_through_a_mixed_field_changes_nothing(window):
    doc, inspector = window.document, window.inspector
    select_two(window, "conv_a", "conv_b")
    kernel = inspector.editors["kernel_size"].widget
    kernel.setFocus(Qt.FocusReason.MouseFocusReason)
    before = doc.undo_stack.count()
    QTest.keyClick(kernel, Qt.Key.Key_Tab)
    settle()
    assert doc.undo_stack.count() == before and not inspector.errors["kernel_size"].isVisible()


def test_ctrl_f_typing_an_id_frames_the_block(window, qtbot):
    canvas = window.canvas
    canvas.zoom_by(0.2 / canvas.zoom(), anchor_under_mouse=False)  # far out
    canvas.centerOn(0, 0)
    settle()
    window.activateWindow()
    QTest.keyClick(canvas, Qt.Key.Key_F, CTRL)
    settle()
    bar = window.find_bar
    assert bar.isVisible() and bar.field.hasFocus()
    QTest.keyClicks(bar.field, "conv_b")
    settle()
    assert window.selection.ids() == ["conv_b"] and window.inspector.node_id == "conv_b"
    assert canvas.zoom() >= 0.8 - 1e-6
    card = canvas.canvas_scene.nodes["conv_b"].sceneBoundingRect()
    assert canvas.visible_scene_rect().contains(card)
    centre = canvas.mapToScene(canvas.viewport().rect().center())
    assert abs(centre.x() - card.center().x()) < 40 and abs(centre.y() - card.center().y()) < 40
    assert bar.count.text() == "1 of 1"


def test_find_by_type_and_parameter_with_next_and_previous(window):
    bar = window.find_bar
    window.activateWindow()
    QTest.keyClick(window.canvas, Qt.Key.Key_F, CTRL)
    QTest.keyClicks(bar.field, "conv2d")  # by type
    settle()
    assert window.selection.ids() == ["conv_a"] and bar.count.text() == "1 of 2"
    QTest.keyClick(bar.field, Qt.Key.Key_Return)
    assert window.selection.ids() == ["conv_b"] and bar.count.text() == "2 of 2"
    QTest.keyClick(bar.field, Qt.Key.Key_Return)  # wraps around
    assert window.selection.ids() == ["conv_a"]
    QTest.keyClick(bar.field, Qt.Key.Key_Return, SHIFT)
    assert window.selection.ids() == ["conv_b"]
    QTest.keyClick(window, Qt.Key.Key_F3)  # F3 from anywhere in the window
    settle()
    assert window.selection.ids() == ["conv_a"]
    QTest.keyClick(window, Qt.Key.Key_F3, SHIFT)
    settle()
    assert window.selection.ids() == ["conv_b"]

    bar.field.selectAll()
    QTest.keyClicks(bar.field, "softmax")  # by a parameter's value
    settle()
    assert window.selection.ids() == ["probs"]
    bar.field.selectAll()
    QTest.keyClicks(bar.field, "nothing here")
    settle()
    assert bar.count.text() == "No block matches"
    QTest.keyClick(bar.field, Qt.Key.Key_Escape)
    settle()
    assert not bar.isVisible() and not window.training_panel.running


def test_find_select_all_edits_every_match(window):
    bar = window.find_bar
    window.activateWindow()
    QTest.keyClick(window.canvas, Qt.Key.Key_F, CTRL)
    QTest.keyClicks(bar.field, "conv")
    settle()
    button = next(b for b in bar.findChildren(QToolButton) if b.text() == "Select all")
    click(button)
    assert set(window.selection.ids()) == {"conv_a", "conv_b"}
    type_into(window.inspector.editors["filters"].widget, "4")
    assert [window.document.project.node(i).params["filters"] for i in ("conv_a", "conv_b")] == [
        4,
        4,
    ]


def test_the_palette_says_when_nothing_matches(window):
    palette = window.palette
    window.docks["palette"].show()
    settle()
    assert not palette.no_match.isVisible()
    palette.search.setFocus()
    QTest.keyClicks(palette.search, "zzqx")
    settle()
    assert palette.visible_types() == []
    assert palette.no_match.isVisible() and "No block matches" in palette.no_match.text()
    QTest.keyClick(palette.search, Qt.Key.Key_Backspace)
    for _ in range(4):
        QTest.keyClick(palette.search, Qt.Key.Key_Backspace)
    QTest.keyClicks(palette.search, "conv")
    settle()
    assert palette.visible_types() and not palette.no_match.isVisible()


def test_the_find_bar_searches_a_big_graph_in_one_pass(window):
    nodes = [Node(f"d{i}", "Dense", {"units": i + 1}, [260.0 * i, 0.0]) for i in range(1000)]
    window.document.replace_project(Project(name="big", nodes=nodes))
    settle()
    bar = window.find_bar
    bar.open()
    QTest.keyClicks(bar.field, "d999")
    settle()
    assert window.selection.ids() == ["d999"] and bar.count.text() == "1 of 1"


def test_a_selection_grown_after_the_single_block_form_is_gone_rebuilds_cleanly(window):
    """Found by the monkey test: the shared form cleared its error marks through the
    single-block form's id field, which Qt had deleted by then."""
    from PySide6.QtCore import QCoreApplication, QEvent

    select_two(window, "conv_a", "conv_b")
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    viewport = window.canvas.viewport()
    QTest.mouseClick(viewport, LEFT, CTRL, header_point(window, "probs"))  # a third block
    settle()
    assert set(window.selection.ids()) == {"conv_a", "conv_b", "probs"}
    shared = {"activation", "use_bias", "kernel_initializer"}
    assert shared <= set(window.inspector.editors)

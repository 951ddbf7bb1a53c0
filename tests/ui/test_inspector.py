"""The inspector: editors generated from parameter descriptors, validated before they apply."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QSpinBox,
)

from nodenet.engine import block_class, block_types
from nodenet.graph.project import load
from nodenet.ui.document import Document, Selection
from nodenet.ui.inspector import EDITORS, Inspector
from tests.ui import SAMPLE

LEFT, NO_MOD = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


@pytest.fixture
def setup(qtbot):
    doc = Document(load(SAMPLE))
    selection = Selection(doc)
    inspector = Inspector(doc, selection)
    qtbot.addWidget(inspector)
    inspector.resize(360, 800)
    inspector.show()
    qtbot.waitExposed(inspector)
    return doc, selection, inspector


def type_into(field: QLineEdit, text: str) -> None:
    """Select the field's text, type over it and press Enter."""
    field.setFocus()
    field.selectAll()
    QTest.keyClicks(field, text)
    QTest.keyClick(field, Qt.Key.Key_Return)


def error_of(inspector: Inspector, name: str) -> str | None:
    label: QLabel = inspector.errors[name]
    return label.text() if label.isVisible() else None


def test_every_block_kind_has_an_editor():
    kinds = {p.kind for t in block_types() for p in block_class(t).PARAMS}
    assert kinds <= set(EDITORS)


def test_selecting_a_block_builds_its_form(setup):
    _, selection, inspector = setup
    selection.set(["hidden_1"])
    assert inspector.node_id == "hidden_1"
    assert set(inspector.editors) == {p.name for p in block_class("Dense").PARAMS}
    units = inspector.editors["units"].widget
    assert isinstance(units, QSpinBox) and units.minimum() == 1 and units.value() == 128
    activation = inspector.editors["activation"].widget
    assert isinstance(activation, QComboBox) and activation.currentText() == "relu"
    assert activation.count() == len(block_class("Dense").PARAMS[1].choices)
    assert isinstance(inspector.editors["use_bias"].widget, QCheckBox)
    assert "number of output features" in units.toolTip()
    assert inspector.shape_label.text() == "(None, 128)"
    assert inspector.params_label.text() == "8,320"  # 64 * 128 + 128
    selection.set(["hidden_1", "probs"])
    assert inspector.node_id is None
    assert inspector.findChild(QLabel, "muted").text() == "2 blocks selected"


def test_spin_box_edit_is_one_undo_command_and_updates_the_shape(setup):
    doc, selection, inspector = setup
    selection.set(["hidden_1"])
    units = inspector.editors["units"].widget
    units.setFocus()
    units.selectAll()
    QTest.keyClicks(units, "64")
    assert doc.undo_stack.count() == 0, "no edit per keystroke"
    QTest.keyClick(units, Qt.Key.Key_Return)
    assert doc.project.node("hidden_1").params["units"] == 64
    assert doc.undo_stack.count() == 1
    assert inspector.shape_label.text() == "(None, 64)"
    assert inspector.params_label.text() == "4,160"  # 64 * 64 + 64
    doc.undo()
    assert units.value() == 128 and inspector.shape_label.text() == "(None, 128)"


def test_invalid_float_is_shown_in_place_and_never_reaches_the_document(setup):
    doc, selection, inspector = setup
    drop = doc.add_node("Dropout", (0, 0))
    selection.set([drop])
    rate = inspector.editors["rate"].widget
    before, count = doc.project.to_json(), doc.undo_stack.count()
    type_into(rate, "1.5")
    assert error_of(inspector, "rate") == "rate must be a finite number >= 0 and <= 1 (got 1.5)"
    assert rate.property("invalid") is True
    assert rate.text() == "1.5", "the invalid text stays for the user to fix"
    type_into(rate, "abc")
    assert error_of(inspector, "rate") == "'abc' is not a number"
    assert doc.project.to_json() == before and doc.undo_stack.count() == count
    type_into(rate, "0.25")
    assert error_of(inspector, "rate") is None and rate.property("invalid") is False
    assert doc.project.node(drop).params == {"rate": 0.25}
    assert doc.undo_stack.count() == count + 1


def test_shape_field_reads_comma_separated_dimensions(setup):
    doc, selection, inspector = setup
    selection.set(["pixels"])
    shape = inspector.editors["shape"].widget
    assert shape.text() == "64"
    type_into(shape, "8, 8")
    assert doc.project.node("pixels").params["shape"] == [8, 8]
    type_into(shape, "0, 3")
    assert "shape must be a list of at least 1 positive integers" in error_of(inspector, "shape")
    type_into(shape, "8, x")
    assert error_of(inspector, "shape") == "'x' is not an integer"
    type_into(shape, "None, 8")  # a variable-length sequence
    assert doc.project.node("pixels").params["shape"] == [None, 8]


def test_combo_check_box_and_metrics_list_each_make_one_edit(setup):
    doc, selection, inspector = setup
    selection.set(["hidden_1"])
    combo = inspector.editors["activation"].widget
    combo.setFocus()
    QTest.keyClick(combo, Qt.Key.Key_Down)  # the next choice after relu
    assert doc.project.node("hidden_1").params["activation"] == "sigmoid"
    box = inspector.editors["use_bias"].widget
    QTest.mouseClick(box, LEFT, NO_MOD, QPoint(8, box.height() // 2))  # on the box
    assert doc.project.node("hidden_1").params["use_bias"] is False
    assert doc.undo_stack.count() == 2
    selection.set(["digit"])
    metrics: QListWidget = inspector.editors["metrics"].widget
    mae = metrics.findItems("mae", Qt.MatchFlag.MatchExactly)[0]
    rect = metrics.visualItemRect(mae)
    check_box = QPoint(rect.left() + 10, rect.center().y())  # drawn at the row's left end
    QTest.mouseClick(metrics.viewport(), LEFT, NO_MOD, check_box)
    assert doc.project.node("digit").params["metrics"] == ["accuracy", "mae"]


def test_regularizer_needs_its_enable_box_and_valid_numbers(setup):
    doc, selection, inspector = setup
    selection.set(["hidden_1"])
    editor = inspector.editors["kernel_regularizer"]
    l1, l2 = editor.fields["l1"], editor.fields["l2"]
    assert not l2.isEnabled()
    QTest.mouseClick(editor.enabled, LEFT, NO_MOD, QPoint(8, editor.enabled.height() // 2))
    assert doc.project.node("hidden_1").params["kernel_regularizer"] == {"l1": 0.0, "l2": 0.0}
    type_into(l2, "-1")
    assert "kernel_regularizer must be" in error_of(inspector, "kernel_regularizer")
    assert l1.property("invalid") is True and l2.property("invalid") is True
    type_into(l2, "0.01")
    assert doc.project.node("hidden_1").params["kernel_regularizer"] == {"l1": 0.0, "l2": 0.01}
    assert error_of(inspector, "kernel_regularizer") is None


def test_checks_across_parameters_are_shown_in_place(setup):
    doc, selection, inspector = setup
    cat = doc.add_node("Concatenate", (0, 0))
    selection.set([cat])
    axis = inspector.editors["axis"].widget
    axis.setFocus()
    axis.selectAll()
    QTest.keyClicks(axis, "0")
    QTest.keyClick(axis, Qt.Key.Key_Return)
    assert "batch axis" in error_of(inspector, "axis")
    assert "axis" not in doc.project.node(cat).params


def test_id_field_renames_and_refuses_taken_ids(setup):
    doc, selection, inspector = setup
    selection.set(["hidden_1"])
    form = inspector.widget()
    type_into(inspector.id_field, "encoder")
    assert doc.project.has_node("encoder") and selection.ids() == ["encoder"]
    assert inspector.widget() is form, "a rename keeps the form"
    type_into(inspector.id_field, "probs")
    assert error_of(inspector, "id") == "the id 'probs' is already used by another block"
    assert inspector.id_field.property("invalid") is True
    assert doc.project.has_node("encoder")


def test_read_only_disables_the_form(setup):
    doc, selection, inspector = setup
    selection.set(["hidden_1"])
    doc.set_read_only(True)
    assert not inspector.widget().isEnabled()
    doc.set_read_only(False)
    assert inspector.widget().isEnabled()


def test_problems_of_the_block_are_listed(setup):
    doc, selection, inspector = setup
    dense = doc.add_node("Dense", (0, 0))
    selection.set([dense])
    assert "input port 0 is not connected" in inspector.problems_label.text()
    assert inspector.shape_label.text() == "?" and inspector.params_label.text() == "—"

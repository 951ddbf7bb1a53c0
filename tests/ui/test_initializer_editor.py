"""The inspector's initializer editor: a combo box of Keras's names and the arguments as
JSON beside it; picking a name goes back to a plain name; a bad argument is named in red
and changes nothing; the Output's from_logits shows as a check box."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QCheckBox, QLineEdit

from nodenet.graph.project import load
from nodenet.ui.document import Document, Selection
from nodenet.ui.inspector import Inspector
from nodenet.ui.param_editors import InitializerEditor
from tests.ui import SAMPLE


def type_into(field: QLineEdit, text: str) -> None:
    field.setFocus()
    field.selectAll()
    QTest.keyClicks(field, text)
    QTest.keyClick(field, Qt.Key.Key_Return)


def pick(editor: InitializerEditor, name: str) -> None:
    index = editor.names.findData(name)
    assert index >= 0, name
    editor.names.setCurrentIndex(index)
    editor.names.activated.emit(index)


def inspect(qtbot, block_type: str, params: dict | None = None):
    doc = Document(load(SAMPLE))
    selection = Selection(doc)
    inspector = Inspector(doc, selection)
    qtbot.addWidget(inspector)
    inspector.show()
    node_id = doc.add_node(block_type, (0, 0))
    if params:
        doc.set_params(node_id, {**doc.project.node(node_id).params, **params})
    selection.set([node_id])
    return doc, inspector, node_id


def test_an_initializer_is_a_name_with_editable_arguments(qtbot):
    doc, inspector, node_id = inspect(qtbot, "Dense")
    editor = inspector.editors["kernel_initializer"]
    assert isinstance(editor, InitializerEditor)
    assert editor.names.currentData() == "glorot_uniform" and editor.args.text() == ""

    pick(editor, "variance_scaling")
    assert doc.project.node(node_id).params["kernel_initializer"] == "variance_scaling"
    type_into(editor.args, '{"scale": 2.0, "mode": "fan_out", "seed": null}')
    assert doc.project.node(node_id).params["kernel_initializer"] == {
        "class_name": "VarianceScaling",
        "config": {"scale": 2.0, "mode": "fan_out"},
    }

    type_into(editor.args, '{"scale": -1}')  # refused, named, nothing changes
    assert (
        "VarianceScaling scale must be a finite number > 0"
        in inspector.errors["kernel_initializer"].text()
    )
    assert not inspector.errors["kernel_initializer"].isHidden()
    assert doc.project.node(node_id).params["kernel_initializer"]["config"]["scale"] == 2.0
    type_into(editor.args, "{scale: 2")
    assert "must be JSON" in inspector.errors["kernel_initializer"].text()

    pick(editor, "he_normal")  # back to a plain name: the arguments go
    assert doc.project.node(node_id).params["kernel_initializer"] == "he_normal"
    assert editor.args.text() == "" and inspector.errors["kernel_initializer"].isHidden()

    doc.undo_stack.undo()
    assert editor.names.currentData() == "variance_scaling"
    assert '"fan_out"' in editor.args.text()


def test_an_imported_constant_shows_its_name_and_value(qtbot):
    constant = {"class_name": "Constant", "config": {"value": 0.1}}
    _, inspector, _ = inspect(qtbot, "Dense", {"bias_initializer": constant})
    editor = inspector.editors["bias_initializer"]
    assert editor.names.currentText() == "constant"
    assert editor.args.text() == '{"value": 0.1}'


def test_the_output_shows_from_logits_and_label_smoothing(qtbot):
    doc, inspector, node_id = inspect(qtbot, "Output")
    box = inspector.editors["from_logits"].widget
    assert isinstance(box, QCheckBox) and not box.isChecked()
    box.setChecked(True)
    assert doc.project.node(node_id).params["from_logits"] is True
    assert "label_smoothing" in inspector.editors

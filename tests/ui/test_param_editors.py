"""One parameter-editor factory (nodenet.ui.param_editors) behind the inspector and the
run settings forms: the same editor and the same number text for the same descriptor,
and a read-only display for a kind the factory does not know."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit, QSpinBox

import nodenet.engine as engine
from nodenet.engine import block_class, block_types
from nodenet.engine.params import Float, Int, NumberList, Param
from nodenet.graph.project import load
from nodenet.ui.document import Document, Selection
from nodenet.ui.inspector import Inspector
from nodenet.ui.param_editors import EDITORS, ReadOnlyEditor, editor_for, format_number
from nodenet.ui.training.data_panel import CSV_SPECS, PREPROCESS_SPECS, SPLIT_SPECS
from nodenet.ui.training.folder_source import FOLDER_SPECS
from nodenet.ui.training.forms import ParamForm
from tests.ui import SAMPLE


@dataclass(frozen=True)
class Gadget(Param):
    """A descriptor kind no editor knows (as a new block's parameter would be)."""

    kind: ClassVar[str] = "gadget"


def run_form_specs() -> list[Param]:
    specs = [*CSV_SPECS, *PREPROCESS_SPECS, *SPLIT_SPECS, *block_class("Output").PARAMS]
    specs += [p for folder in FOLDER_SPECS.values() for p in folder]
    for name in ("TRAINING_PARAMS", "EARLY_STOPPING_PARAMS", "REDUCE_LR_PARAMS"):
        specs += getattr(engine, name)
    specs += [p for ps in engine.OPTIMIZER_PARAMS.values() for p in ps]
    specs += [p for name in engine.SCHEDULES.names() for p in engine.SCHEDULES.get(name).PARAMS]
    return [p for p in specs if p.kind != "learning_rate"]  # the panel's own editor


def type_into(field: QLineEdit, text: str) -> None:
    field.setFocus()
    field.selectAll()
    QTest.keyClicks(field, text)
    QTest.keyClick(field, Qt.Key.Key_Return)


def test_every_kind_of_the_blocks_and_the_run_forms_has_an_editor(qtbot):
    kinds = {p.kind for t in block_types() for p in block_class(t).PARAMS}
    kinds |= {p.kind for p in run_form_specs()}
    assert kinds <= set(EDITORS)
    editable = {kind for kind, cls in EDITORS.items() if cls is not ReadOnlyEditor}
    assert kinds - editable <= {"block"}  # a wrapper's inner block: read-only for now


@pytest.mark.parametrize("value", [0.1 + 0.2, 0.0, 1e-07, 0.25, 1])
def test_the_inspector_and_the_forms_write_a_number_the_same_way(qtbot, value):
    doc = Document(load(SAMPLE))
    selection = Selection(doc)
    inspector = Inspector(doc, selection)
    qtbot.addWidget(inspector)
    drop = doc.add_node("Dropout", (0, 0), {"rate": value})
    selection.set([drop])
    form = ParamForm((Float("rate", 0.5, "a fraction", min=0.0, max=1.0),), {"rate": value})
    qtbot.addWidget(form)
    shown = inspector.editors["rate"].widget.text()
    assert shown == form.editor("rate").text() == format_number(value) == repr(float(value))


def test_the_same_descriptor_gets_the_same_editor_in_both(qtbot):
    spec = Int("units", 8, "how many", min=1)
    form = ParamForm((spec,))
    qtbot.addWidget(form)
    editor = editor_for(spec, lambda: None)
    assert type(form.editor("units")) is type(editor.widget) is QSpinBox
    assert form.editor("units").minimum() == editor.widget.minimum() == 1


def test_an_unknown_kind_is_shown_read_only_in_the_inspector_and_the_forms(qtbot):
    spec = Gadget("gizmo", {"depth": 2}, "a thing")
    form = ParamForm((spec, Int("n", 3)), {"gizmo": {"depth": 5}})
    qtbot.addWidget(form)
    field = form.editor("gizmo")
    assert isinstance(field, QLineEdit) and field.isReadOnly()
    assert field.text() == '{"depth": 5}'
    assert form.values()["gizmo"] == {"depth": 5}
    editor = editor_for(spec, lambda: pytest.fail("a read-only editor never commits"))
    editor.set_value(None)
    assert isinstance(editor, ReadOnlyEditor) and editor.widget.text() == "null"


def test_a_wrapper_layer_shows_read_only_in_the_inspector(qtbot):
    wrappers = [t for t in block_types() if any(p.kind == "block" for p in block_class(t).PARAMS)]
    if not wrappers:
        pytest.skip("no block has a nested-block parameter yet")
    doc = Document(load(SAMPLE))
    selection = Selection(doc)
    inspector = Inspector(doc, selection)
    qtbot.addWidget(inspector)
    node_id = doc.add_node(wrappers[0], (0, 0))
    selection.set([node_id])
    spec = next(p for p in block_class(wrappers[0]).PARAMS if p.kind == "block")
    field = inspector.editors[spec.name].widget
    assert isinstance(field, QLineEdit) and field.isReadOnly()
    assert field.text()  # the inner block, as JSON


def test_a_form_names_the_field_whose_text_does_not_parse(qtbot):
    form = ParamForm((Float("momentum", 0.0, "a fraction", min=0.0),))
    qtbot.addWidget(form)
    form.show()
    edits: list[tuple[str, Any]] = []
    form.edited.connect(lambda name, value: edits.append((name, value)))
    type_into(form.editor("momentum"), "abc")
    assert form.error_label.text() == "momentum: 'abc' is not a number"
    assert edits == []
    type_into(form.editor("momentum"), "1e-1")
    assert edits == [("momentum", 0.1)] and form.editor("momentum").text() == "0.1"
    assert form.error_label.isHidden()


def test_an_integer_list_keeps_its_integers(qtbot):
    spec = NumberList("boundaries", [10, 20], "epochs", integer=True, increasing=True)
    form = ParamForm((spec,))
    qtbot.addWidget(form)
    assert form.editor("boundaries").text() == "10, 20"
    edits: list = []
    form.edited.connect(lambda name, value: edits.append(value))
    form.show()
    type_into(form.editor("boundaries"), "5, 15, 30")
    assert edits == [[5, 15, 30]]

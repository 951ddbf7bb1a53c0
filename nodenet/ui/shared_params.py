"""The inspector's form for several selected blocks: the parameters they share.

Blocks of one type share all their parameters; blocks of several types share the
names every type has with the same descriptor (:func:`common_specs`). Each row uses
the editor of :mod:`nodenet.ui.param_editors` and shows the blocks' common value,
or "mixed" when they differ (:func:`show_mixed`: empty text fields, combo boxes on
no choice, check boxes partly checked). A change sets the value on every selected
block as one undo command (:meth:`nodenet.ui.document.Document.set_param_many`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from nodenet.engine import block_class
from nodenet.engine.params import Param, json_repr
from nodenet.errors import NodenetError, ParamError
from nodenet.graph.project import Node
from nodenet.ui.document import Document
from nodenet.ui.param_editors import Editor, editor_for

MIXED = "mixed"  # what an editor shows when the selected blocks' values differ


def _specs(block_type: str) -> tuple[Param, ...]:
    try:
        return tuple(block_class(block_type).PARAMS)
    except NodenetError:  # an unknown block type: nothing to share
        return ()


def _signature(spec: Param) -> tuple:
    choices = tuple(json_repr(c) for c in getattr(spec, "choices", ()) or ())
    return (type(spec), spec.kind, spec.describe(), json_repr(spec.default), choices)


def common_specs(types: list[str]) -> list[Param]:
    """The parameters every one of ``types`` has, with the same descriptor (kind, range,
    choices), in the first type's order."""
    distinct = list(dict.fromkeys(types))
    if not distinct:
        return []
    shared = list(_specs(distinct[0]))
    for block_type in distinct[1:]:
        others = {s.name: _signature(s) for s in _specs(block_type)}
        shared = [s for s in shared if others.get(s.name) == _signature(s)]
    return shared


# -- the "mixed" state of an editor -------------------------------------------------


def _parts(editor: Editor) -> list[QWidget]:
    """An editor's input widgets (not the line edit inside a spin or combo box)."""
    found = [editor.widget, *editor.widget.findChildren(QWidget)]
    return [w for w in found if not isinstance(w.parent(), QAbstractSpinBox | QComboBox)]


def is_mixed(editor: Editor) -> bool:
    return bool(getattr(editor, "mixed", False))


def show_mixed(editor: Editor) -> None:
    """Show that the blocks differ; the next value the user gives is what ``read`` returns."""
    if not is_mixed(editor):
        editor.plain = {
            w: w.placeholderText() if isinstance(w, QLineEdit | QComboBox) else ""
            for w in _parts(editor)
        }
    editor.mixed = True
    for widget in _parts(editor):
        if isinstance(widget, QLineEdit) and not widget.isReadOnly():
            widget.clear()
            widget.setPlaceholderText(MIXED)
        elif isinstance(widget, QSpinBox):
            widget.setSpecialValueText(MIXED)
            widget.setValue(widget.minimum())
        elif isinstance(widget, QComboBox):
            widget.setCurrentIndex(-1)
            widget.setPlaceholderText(MIXED)
        elif isinstance(widget, QCheckBox):
            if not widget.isTristate():  # partly checked -> checked toggles nothing: a click
                widget.clicked.connect(_click_commit(editor))
            widget.setTristate(True)
            widget.setCheckState(Qt.CheckState.PartiallyChecked)


def _click_commit(editor: Editor) -> Callable[[bool], None]:
    """The editor's commit as a slot of ``clicked(bool)`` (one per editor, to disconnect)."""
    if not hasattr(editor, "click_commit"):
        editor.click_commit = lambda _checked=False: editor.commit()
    return editor.click_commit


def show_common(editor: Editor, value: Any) -> None:
    """Leave the "mixed" state (if shown) and show ``value``."""
    if is_mixed(editor):
        editor.mixed = False
        for widget, placeholder in editor.plain.items():
            if isinstance(widget, QLineEdit | QComboBox):
                widget.setPlaceholderText(placeholder)
            elif isinstance(widget, QSpinBox):
                widget.setSpecialValueText("")
            elif isinstance(widget, QCheckBox):
                widget.setTristate(False)
                widget.clicked.disconnect(_click_commit(editor))
    editor.set_value(value)


def untouched(editor: Editor) -> bool:
    """Still "mixed" as shown: nothing typed, no choice made (Tab through commits nothing)."""
    if not is_mixed(editor):
        return False
    for widget in _parts(editor):
        if isinstance(widget, QSpinBox):
            return False  # it commits only when its value changed
        if isinstance(widget, QLineEdit) and (widget.isModified() or widget.text()):
            return False
        if isinstance(widget, QComboBox) and widget.currentIndex() >= 0:
            return False
        if isinstance(widget, QCheckBox) and widget.checkState() != Qt.CheckState.PartiallyChecked:
            return False
    return True


def _quietly(editor: Editor, show: Callable[[], None]) -> None:
    widgets = [editor.widget, *editor.widget.findChildren(QWidget)]
    for widget in widgets:
        widget.blockSignals(True)
    try:
        show()
    except (TypeError, ValueError, AttributeError):
        pass  # an ill-typed value from the file: the problems list names it
    finally:
        for widget in widgets:
            widget.blockSignals(False)


# -- the form ------------------------------------------------------------------------------


class SharedForm:
    """The rows of the parameters that the blocks ``ids`` share, added to ``form``.

    ``label(name, widget, tip)`` and ``wrap(name, widget)`` come from the inspector (its
    aligned labels and the error line under each field); ``show_error(name, message)``
    and ``clear_error(name)`` show and clear a refusal.
    """

    def __init__(self, document: Document, ids: list[str], inspector: Any):
        self.document = document
        self.ids = ids
        self.inspector = inspector
        self.editors: dict[str, Editor] = {}

    def nodes(self) -> list[Node]:
        """The selected blocks still in the project (one pass: a big selection stays fast)."""
        by_id = {n.id: n for n in self.document.project.nodes}
        return [by_id[i] for i in self.ids if i in by_id]

    def add_rows(self, form: QFormLayout) -> None:
        nodes = self.nodes()
        for spec in common_specs([n.type for n in nodes]):
            if spec.kind == "block":
                continue  # shown read-only per block: nothing to share
            editor = editor_for(spec, lambda name=spec.name: self.commit(name))
            self.editors[spec.name] = editor
            tip = (
                f"{spec.help}\n({spec.describe()}; default {json_repr(spec.default)})\n"
                f"A change sets it on all {len(nodes)} selected blocks"
            )
            editor.widget.setToolTip(tip)
            form.addRow(
                self.inspector.form_label(spec.name, editor.widget, tip),
                self.inspector.with_error(spec.name, editor.widget),
            )
        self.refresh()

    def refresh(self) -> None:
        """Each row: the blocks' common value, or "mixed"."""
        nodes = self.nodes()
        defaults = {name: editor.spec.default for name, editor in self.editors.items()}
        for name, editor in self.editors.items():
            values = [n.params.get(name, defaults[name]) for n in nodes]
            if values and all(v == values[0] for v in values):
                _quietly(editor, lambda e=editor, v=values[0]: show_common(e, v))
            else:
                _quietly(editor, lambda e=editor: show_mixed(e))
            self.inspector.clear_error(name, editor.marked)

    def commit(self, name: str) -> None:
        """Read, check and set one parameter on every selected block (one command)."""
        editor = self.editors[name]
        if untouched(editor):
            return
        try:
            value = editor.read()
            editor.spec.coerce(value)
            self.document.set_param_many([n.id for n in self.nodes()], name, value)
        except (ValueError, ParamError, NodenetError) as err:
            self.inspector.show_error(name, str(err), editor.marked)
            return
        self.refresh()

"""The inspector: a form generated from the selected block's parameter descriptors.

Each descriptor ``kind`` maps to an editor (:data:`EDITORS`): ``int`` a spin box
with the range, ``float`` a checked text field, ``bool`` a check box,
``choice`` a combo box, ``ints`` / ``shape`` a text field read as ``3, 3``,
``regularizer`` an enable box with l1 / l2 fields, ``strs`` a checkable list.
A change is read and checked (by the descriptor, then by the block itself)
before it reaches the document; an invalid value stays in place, outlined in
red with the reason under it, and never becomes an edit. One change is one
undo command. Above the form: the block's type, its id (editable: renames),
its output shape, parameter count and problems.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from nodenet.engine import block_class
from nodenet.engine.params import Param, json_repr
from nodenet.errors import NodenetError, ParamError
from nodenet.project import Node, shape_text
from nodenet.ui.canvas.style import CATEGORY_COLORS, PROBLEM, TEXT_MUTED, UNKNOWN_COLOR
from nodenet.ui.document import Document, Selection

INT_LIMIT = 2**31 - 1
STYLE = f"""
*[invalid="true"] {{ border: 1.5px solid {PROBLEM}; border-radius: 3px; }}
QLabel#error {{ color: {PROBLEM}; }}
QLabel#muted {{ color: {TEXT_MUTED}; }}
"""


def set_invalid(widget: QWidget, flag: bool) -> None:
    """Outline ``widget`` in red (through the ``invalid`` property of :data:`STYLE`)."""
    if widget.property("invalid") != flag:
        widget.setProperty("invalid", flag)
        widget.style().unpolish(widget)
        widget.style().polish(widget)


def format_number(value: float) -> str:
    return repr(float(value))


def parse_number(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number") from None


def parse_dims(text: str, allow_none: bool) -> list:
    """``"28, 28, 1"`` -> ``[28, 28, 1]``; ``None`` / ``?`` allowed for a variable size."""
    out: list = []
    for token in text.replace(",", " ").split():
        if allow_none and token.lower() in ("none", "null", "?"):
            out.append(None)
            continue
        try:
            out.append(int(token))
        except ValueError:
            raise ValueError(f"{token!r} is not an integer") from None
    return out


# -- editors: one per descriptor kind --------------------------------------------------


class Editor:
    """A widget for one parameter. ``read`` raises ValueError for text it cannot parse."""

    def __init__(self, spec: Param, commit: Callable[[], None]):
        self.spec = spec
        self.commit = commit
        self.marked: list[QWidget] = []  # widgets outlined when the value is invalid
        self.widget = self.build()
        self.marked = self.marked or [self.widget]

    def build(self) -> QWidget:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def read(self) -> Any:
        raise NotImplementedError


class IntEditor(Editor):
    def build(self) -> QWidget:
        if self.spec.optional:
            return _text_editor(self, "none")
        box = QSpinBox()
        box.setRange(
            self.spec.min if self.spec.min is not None else -INT_LIMIT,
            self.spec.max if self.spec.max is not None else INT_LIMIT,
        )
        box.setKeyboardTracking(False)  # one edit per Enter / step, not per keystroke
        box.setGroupSeparatorShown(True)
        box.valueChanged.connect(lambda _: self.commit())
        return box

    def set_value(self, value: Any) -> None:
        if isinstance(self.widget, QLineEdit):
            self.widget.setText("" if value is None else str(value))
        else:
            self.widget.setValue(int(value))

    def read(self) -> Any:
        if isinstance(self.widget, QSpinBox):
            return self.widget.value()
        text = self.widget.text().strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None


class FloatEditor(Editor):
    def build(self) -> QWidget:
        return _text_editor(self, "none" if self.spec.optional else "")

    def set_value(self, value: Any) -> None:
        self.widget.setText("" if value is None else format_number(value))

    def read(self) -> Any:
        text = self.widget.text().strip()
        return None if not text and self.spec.optional else parse_number(text)


class BoolEditor(Editor):
    def build(self) -> QWidget:
        box = QCheckBox()
        box.toggled.connect(lambda _: self.commit())
        return box

    def set_value(self, value: Any) -> None:
        self.widget.setChecked(bool(value))

    def read(self) -> Any:
        return self.widget.isChecked()


class ChoiceEditor(Editor):
    def build(self) -> QWidget:
        box = QComboBox()
        for choice in self.spec.choices:
            box.addItem(choice if isinstance(choice, str) else json_repr(choice), choice)
        box.activated.connect(lambda _: self.commit())
        return box

    def set_value(self, value: Any) -> None:
        index = self.widget.findData(value)
        self.widget.setCurrentIndex(max(index, 0))

    def read(self) -> Any:
        return self.widget.currentData()


class IntsEditor(Editor):
    """``ints`` (kernel sizes, strides) and ``shape``: integers separated by commas."""

    def build(self) -> QWidget:
        return _text_editor(self, "none" if getattr(self.spec, "optional", False) else "")

    def set_value(self, value: Any) -> None:
        if value is None:
            self.widget.setText("")
        elif isinstance(value, int):
            self.widget.setText(str(value))
        else:
            self.widget.setText(", ".join("None" if v is None else str(v) for v in value))

    def read(self) -> Any:
        text = self.widget.text().strip()
        if not text and getattr(self.spec, "optional", False):
            return None
        dims = parse_dims(text, getattr(self.spec, "allow_none", False))
        if not dims:
            raise ValueError("enter integers separated by commas, e.g. 3, 3")
        return dims


class RegularizerEditor(Editor):
    """An enable box and two penalty fields, l1 and l2."""

    def build(self) -> QWidget:
        widget = QWidget()
        row = QHBoxLayout(widget)
        row.setContentsMargins(0, 0, 0, 0)
        self.enabled = QCheckBox()
        self.enabled.setToolTip("apply a penalty")
        self.fields = {key: QLineEdit() for key in ("l1", "l2")}
        for key, field in self.fields.items():
            field.setToolTip(f"the {key} penalty factor (a number >= 0)")
        row.addWidget(self.enabled)
        for key, field in self.fields.items():
            row.addWidget(QLabel(key))
            field.editingFinished.connect(self.commit)
            row.addWidget(field, 1)
        self.enabled.toggled.connect(self._toggled)
        self.marked = list(self.fields.values())
        return widget

    def _toggled(self, flag: bool) -> None:
        for field in self.fields.values():
            field.setEnabled(flag)
        self.commit()

    def set_value(self, value: Any) -> None:
        self.enabled.setChecked(value is not None)
        for key, field in self.fields.items():
            field.setEnabled(value is not None)
            field.setText(format_number(value.get(key, 0.0)) if value else "")

    def read(self) -> Any:
        if not self.enabled.isChecked():
            return None
        return {key: parse_number(field.text() or "0") for key, field in self.fields.items()}


class StrListEditor(Editor):
    """A checkable list of names (an Output's metrics)."""

    def build(self) -> QWidget:
        box = QListWidget()
        for choice in self.spec.choices:
            item = QListWidgetItem(choice, box)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
        box.setFixedHeight(box.sizeHintForRow(0) * len(self.spec.choices) + 6)
        box.itemChanged.connect(lambda _: self.commit())
        return box

    def set_value(self, value: Any) -> None:
        for i in range(self.widget.count()):
            item = self.widget.item(i)
            checked = item.text() in (value or [])
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def read(self) -> Any:
        items = [self.widget.item(i) for i in range(self.widget.count())]
        return [i.text() for i in items if i.checkState() == Qt.CheckState.Checked]


def _text_editor(editor: Editor, placeholder: str) -> QLineEdit:
    field = QLineEdit()
    field.setPlaceholderText(placeholder)
    field.editingFinished.connect(editor.commit)
    return field


def _label(text: str, field: QWidget) -> QLabel:
    """A form label as tall as its field's first line, so both centre on one line even
    when an error message shows under the field."""
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    label.setFixedHeight(min(field.sizeHint().height(), field.maximumHeight()))
    return label


EDITORS: dict[str, type[Editor]] = {
    "int": IntEditor,
    "float": FloatEditor,
    "bool": BoolEditor,
    "choice": ChoiceEditor,
    "ints": IntsEditor,
    "shape": IntsEditor,
    "regularizer": RegularizerEditor,
    "strs": StrListEditor,
}


# -- the inspector -------------------------------------------------------------------------


class Inspector(QScrollArea):
    """The selected block's type, id, shape, parameter count, problems and parameter form."""

    def __init__(self, document: Document, selection: Selection, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.selection = selection
        self.node: Node | None = None
        self.editors: dict[str, Editor] = {}
        self.errors: dict[str, QLabel] = {}
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setStyleSheet(STYLE)
        self._rebuild()
        selection.changed.connect(self._selection_changed)
        document.nodeChanged.connect(self._node_changed)
        document.analysisChanged.connect(self._refresh_info)
        document.projectReplaced.connect(self._rebuild)
        document.readOnlyChanged.connect(self._read_only_changed)

    def _read_only_changed(self, flag: bool) -> None:
        self.widget().setEnabled(not flag)

    @property
    def node_id(self) -> str | None:
        return self.node.id if self.node is not None else None

    # -- building ------------------------------------------------------------------

    def _selection_changed(self) -> None:
        current = self.selection.current()
        node = self._lookup(current)
        if node is not None and node is self.node:  # same block (renamed): keep the form
            self.id_field.setText(node.id)
            self._refresh_info()
            return
        self._rebuild()

    def _lookup(self, node_id: str | None) -> Node | None:
        if node_id is None or not self.document.project.has_node(node_id):
            return None
        return self.document.project.node(node_id)

    def _rebuild(self) -> None:
        self.node = self._lookup(self.selection.current())
        self.editors, self.errors = {}, {}
        page = QWidget()
        page.setEnabled(not self.document.read_only)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(10, 8, 10, 8)
        if self.node is None:
            count = len(self.selection.ids())
            text = f"{count} blocks selected" if count > 1 else "Select a block to edit it."
            hint = QLabel(text, objectName="muted", alignment=Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(hint)
            layout.addStretch(1)
            self.setWidget(page)
            return
        layout.addWidget(self._header(self.node))
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        self.id_field = QLineEdit(self.node.id)
        self.id_field.setToolTip("the block's id: its name in the summary, the code and the data")
        self.id_field.editingFinished.connect(self._rename)
        form.addRow(_label("id", self.id_field), self._with_error("id", self.id_field))
        self.shape_label = QLabel()
        self.params_label = QLabel()
        form.addRow(_label("output", self.shape_label), self.shape_label)
        form.addRow(_label("params", self.params_label), self.params_label)
        self.problems_label = QLabel(objectName="error", wordWrap=True)
        form.addRow(self.problems_label)
        self._add_param_rows(form, self.node)
        layout.addLayout(form)
        layout.addStretch(1)
        self.setWidget(page)
        self._refresh_info()

    def _header(self, node: Node) -> QWidget:
        try:
            category = block_class(node.type).CATEGORY
        except NodenetError:
            category = "unknown block type"
        colour = CATEGORY_COLORS.get(category, UNKNOWN_COLOR)
        label = QLabel(
            f"<span style='font-size:13pt; font-weight:600'>{html.escape(node.type)}</span>"
            f"&nbsp;&nbsp;<span style='color:{colour}'>● {html.escape(category)}</span>"
        )
        label.setTextFormat(Qt.TextFormat.RichText)
        return label

    def _add_param_rows(self, form: QFormLayout, node: Node) -> None:
        try:
            specs = block_class(node.type).PARAMS
        except NodenetError:
            specs = ()
        if specs:
            rule = QFrame(frameShape=QFrame.Shape.HLine, frameShadow=QFrame.Shadow.Sunken)
            form.addRow(rule)
        for spec in specs:
            editor = EDITORS.get(spec.kind)
            if editor is None:
                continue
            self.editors[spec.name] = editor(spec, lambda name=spec.name: self._commit(name))
            label = _label(spec.name, self.editors[spec.name].widget)
            tip = f"{spec.help}\n({spec.describe()}; default {json_repr(spec.default)})"
            label.setToolTip(tip)
            self.editors[spec.name].widget.setToolTip(tip)
            form.addRow(label, self._with_error(spec.name, self.editors[spec.name].widget))
        self._show_values()

    def _with_error(self, name: str, widget: QWidget) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(1)
        column.addWidget(widget)
        error = QLabel(objectName="error", wordWrap=True)
        error.hide()
        column.addWidget(error)
        self.errors[name] = error
        return box

    # -- showing ---------------------------------------------------------------------

    def _current_values(self) -> dict[str, Any]:
        try:
            specs = block_class(self.node.type).PARAMS
        except NodenetError:  # an unknown block type: nothing to edit
            return {}
        return {p.name: self.node.params.get(p.name, p.default) for p in specs}

    def _show_values(self) -> None:
        values = self._current_values()
        for name, editor in self.editors.items():
            for widget in (editor.widget, *editor.widget.findChildren(QWidget)):
                widget.blockSignals(True)
            try:
                editor.set_value(values[name])
            except (TypeError, ValueError, AttributeError):
                pass  # an ill-typed value from the file: the problem is listed above
            finally:
                for widget in (editor.widget, *editor.widget.findChildren(QWidget)):
                    widget.blockSignals(False)
            self._clear_error(name)

    def _node_changed(self, node_id: str) -> None:
        if self.node is not None and node_id == self.node.id:
            self._show_values()

    def _refresh_info(self) -> None:
        if self.node is None or not self.document.project.has_node(self.node.id):
            return
        analysis = self.document.analysis
        self.shape_label.setText(shape_text(analysis.shapes.get(self.node.id)))
        counts = analysis.params.get(self.node.id)
        if counts is None:
            self.params_label.setText("—")
        else:
            trainable, frozen = counts
            extra = f" ({frozen:,} non-trainable)" if frozen else ""
            self.params_label.setText(f"{trainable + frozen:,}{extra}")
        problems = [p.message for p in analysis.problems_for(self.node.id)]
        self.problems_label.setText("\n".join(f"⚠ {m}" for m in problems))
        self.problems_label.setVisible(bool(problems))

    def _show_error(self, name: str, message: str) -> None:
        self.errors[name].setText(message)
        self.errors[name].show()
        widgets = self.editors[name].marked if name in self.editors else [self.id_field]
        for widget in widgets:
            set_invalid(widget, True)

    def _clear_error(self, name: str) -> None:
        if name in self.errors:
            self.errors[name].hide()
        widgets = self.editors[name].marked if name in self.editors else [self.id_field]
        for widget in widgets:
            set_invalid(widget, False)

    # -- editing --------------------------------------------------------------------------

    def _commit(self, name: str) -> None:
        """Read, check and apply one parameter; an invalid value stays in place, in red."""
        node = self.node
        if node is None or not self.document.project.has_node(node.id):
            return
        spec = self.editors[name].spec
        try:
            value = self.editors[name].read()
            spec.coerce(value)
            if value == self._current_values()[name]:
                self._clear_error(name)
                return
            self.document.set_params(node.id, {**node.params, name: value})
        except (ValueError, ParamError) as err:
            self._show_error(name, str(err))
            return
        except NodenetError as err:  # read-only
            self._show_error(name, str(err))
            return
        self._clear_error(name)

    def _rename(self) -> None:
        if self.node is None:
            return
        new = self.id_field.text().strip()
        if new == self.node.id:
            self._clear_error("id")
            return
        try:
            self.document.rename(self.node.id, new)
        except NodenetError as err:
            self._show_error("id", str(err))
            return
        self._clear_error("id")

    def focus_id(self) -> None:
        """Put the cursor in the id field (Rename, F2)."""
        if self.node is not None:
            self.id_field.setFocus(Qt.FocusReason.ShortcutFocusReason)
            self.id_field.selectAll()

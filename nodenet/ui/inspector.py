"""The inspector: a form generated from the selected block's parameter descriptors.

Each descriptor ``kind`` maps to an editor of :mod:`nodenet.ui.param_editors`
(:data:`EDITORS`, shared with the run settings forms; a kind it does not know
is shown read-only). A change is read and checked (by the descriptor, then by
the block itself) before it reaches the document; an invalid value stays in place, outlined in
red with the reason under it, and never becomes an edit. One change is one
undo command. Above the form: the block's type, its id (editable: renames),
its output shape, parameter count, whether its weights train (a block with weights:
"trainable", unchecked when frozen) and problems. With several blocks selected, the
"trainable" box freezes or unfreezes all those with weights as one command, and the
parameters they share are edited on all of them at once (:mod:`nodenet.ui.shared_params`).
"""

from __future__ import annotations

import contextlib
import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from nodenet.engine import block_class
from nodenet.engine.params import json_repr
from nodenet.errors import NodenetError, ParamError
from nodenet.graph.project import Node, shape_text
from nodenet.graph.validation import UNUSED
from nodenet.ui.canvas.style import CATEGORY_COLORS, PROBLEM, TEXT_MUTED, UNKNOWN_COLOR
from nodenet.ui.document import Document, Selection
from nodenet.ui.param_editors import EDITORS, Editor, editor_for
from nodenet.ui.shared_params import SharedForm

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


def _label(text: str, field: QWidget) -> QLabel:
    """A form label as tall as its field's first line, so both centre on one line even
    when an error message shows under the field."""
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    label.setFixedHeight(min(field.sizeHint().height(), field.maximumHeight()))
    return label


def block_notes(document: Document, node_id: str, depth: int = 50) -> list[str]:
    """What is wrong at a block: its own problems, then its neighbours' that concern it —
    an input from a block with a problem (or whose shape is unknown because of one further
    up: the nearest such block, at most ``depth`` blocks up) and the blocks its output
    feeds that have a problem."""
    analysis = document.analysis
    index = analysis.index or document.project.edge_index()
    faults: dict[str, str] = {}
    for p in analysis.problems:
        if p.node is not None and p.message != UNUSED:
            faults.setdefault(p.node, p.message)
    notes = [p.message for p in analysis.problems_for(node_id)]
    for edge in index.incoming(node_id):
        src = edge.src
        if src in faults:
            notes.append(f"its input comes from {src}, which has a problem: {faults[src]}")
        elif analysis.shape_of(src, edge.src_port) is None:
            cause = _upstream_fault(index, faults, src, depth)
            if cause is not None:
                notes.append(
                    f"its input comes from {src}, whose input depends on {cause}, which has "
                    f"a problem: {faults[cause]}"
                )
    for edge in index.outgoing(node_id):
        if edge.dst in faults and edge.dst != node_id:
            notes.append(f"its output goes to {edge.dst}, which has a problem: {faults[edge.dst]}")
    return list(dict.fromkeys(notes))


def _upstream_fault(index, faults: dict[str, str], start: str, depth: int) -> str | None:
    """The nearest block above ``start`` with a problem (breadth first, ``depth`` blocks)."""
    seen, frontier = {start}, [start]
    for _ in range(depth):
        ahead = []
        for node in frontier:
            for edge in index.incoming(node):
                if edge.src in faults:
                    return edge.src
                if edge.src not in seen:
                    seen.add(edge.src)
                    ahead.append(edge.src)
        if not ahead:
            return None
        frontier = ahead
    return None


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
        self.trainable_box: QCheckBox | None = None
        self.trainable_label: QLabel | None = None
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
        self.shared: SharedForm | None = None
        self.trainable_box = self.trainable_label = None
        page = QWidget()
        page.setEnabled(not self.document.read_only)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(10, 8, 10, 8)
        if self.node is None:
            types = {n.id: n.type for n in self.document.project.nodes}
            ids = [i for i in self.selection.ids() if i in types]
            count = len(ids)
            text = f"{count} blocks selected" if count > 1 else "Select a block to edit it."
            hint = QLabel(text, objectName="muted", alignment=Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(hint)
            if count > 1:
                layout.addWidget(self._trainable_box(), 0, Qt.AlignmentFlag.AlignCenter)
                self._add_shared_rows(layout, ids, sorted({types[i] for i in ids}))
            layout.addStretch(1)
            self.setWidget(page)
            self._refresh_trainable()
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
        box = self._trainable_box()
        self.trainable_label = _label("trainable", box)
        form.addRow(self.trainable_label, box)
        self.problems_label = QLabel(objectName="error", wordWrap=True)
        form.addRow(self.problems_label)
        self._add_param_rows(form, self.node)
        layout.addLayout(form)
        layout.addStretch(1)
        self.setWidget(page)
        self._refresh_info()

    def _add_shared_rows(self, layout: QVBoxLayout, ids: list[str], types: list[str]) -> None:
        """The parameters the selected blocks share: a change sets it on all of them."""
        self.shared = SharedForm(self.document, ids, self)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.shared.add_rows(form)
        self.editors = self.shared.editors
        if not self.editors:
            if len(types) > 1:
                note = QLabel("They share no parameter.", objectName="muted")
                layout.addWidget(note, 0, Qt.AlignmentFlag.AlignCenter)
            return
        rule = QFrame(frameShape=QFrame.Shape.HLine, frameShadow=QFrame.Shadow.Sunken)
        layout.addWidget(rule)
        what = types[0] if len(types) == 1 else "shared by " + ", ".join(types)
        layout.addWidget(QLabel(f"Parameters ({what}):", objectName="muted", wordWrap=True))
        layout.addLayout(form)

    def form_label(self, text: str, field: QWidget, tip: str = "") -> QLabel:
        label = _label(text, field)
        label.setToolTip(tip)
        return label

    def with_error(self, name: str, widget: QWidget) -> QWidget:
        return self._with_error(name, widget)

    def show_error(self, name: str, message: str, widgets: list[QWidget]) -> None:
        """Show a refusal under a field of a form other than the block's own (the shared
        parameters of a selection), marking ``widgets``."""
        if name in self.errors:
            self.errors[name].setText(message)
            self.errors[name].show()
        for widget in widgets:
            set_invalid(widget, True)

    def clear_error(self, name: str, widgets: list[QWidget]) -> None:
        if name in self.errors:
            self.errors[name].hide()
        for widget in widgets:
            set_invalid(widget, False)

    def _trainable_box(self) -> QCheckBox:
        """Whether the selected blocks' weights train; a click freezes or unfreezes them."""
        box = QCheckBox("Trainable")
        box.setObjectName("trainable")
        box.setToolTip(
            "Whether training updates the weights (Keras's trainable). Unchecked, the block is "
            "frozen: its weights stay as they are, a BatchNormalization keeps its moving "
            "statistics (Freeze / Unfreeze, Ctrl+K)"
        )
        box.clicked.connect(self._toggle_trainable)
        self.trainable_box = box
        return box

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
            self.editors[spec.name] = editor_for(spec, lambda name=spec.name: self._commit(name))
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

    def _refresh_trainable(self) -> None:
        """The box: checked when every selected block with weights trains, unchecked when
        all are frozen, partly checked for a mix; hidden when none has weights."""
        box = self.trainable_box
        if box is None:
            return
        ids = self.document.freezable(self.selection.ids())
        nodes = [self.document.project.node(i) for i in ids]
        training = sum(n.trainable for n in nodes)
        state = Qt.CheckState.Checked if training == len(nodes) else Qt.CheckState.Unchecked
        if 0 < training < len(nodes):
            state = Qt.CheckState.PartiallyChecked
        box.blockSignals(True)
        box.setCheckState(state)
        box.blockSignals(False)
        box.setVisible(bool(nodes))
        if self.trainable_label is not None:
            self.trainable_label.setVisible(bool(nodes))

    def _toggle_trainable(self) -> None:
        with contextlib.suppress(NodenetError):  # read-only: the page is disabled then
            self.document.toggle_trainable(self.selection.ids())
        self._refresh_trainable()

    def _refresh_info(self) -> None:
        if self.node is None or not self.document.project.has_node(self.node.id):
            self._refresh_trainable()  # several blocks selected: their box and parameters
            if self.shared is not None:
                self.shared.refresh()
            return
        analysis = self.document.analysis
        every = analysis.output_shapes.get(self.node.id)  # a block with several outputs: each
        self.shape_label.setText(
            "\n".join(f"{k}: {shape_text(s)}" for k, s in enumerate(every))
            if every
            else shape_text(analysis.shapes.get(self.node.id))
        )
        counts = analysis.params.get(self.node.id)
        if counts is None:
            self.params_label.setText("—")
        else:
            trainable, frozen = counts
            extra = f" ({frozen:,} non-trainable)" if frozen else ""
            self.params_label.setText(f"{trainable + frozen:,}{extra}")
        self._refresh_trainable()
        problems = block_notes(self.document, self.node.id)
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


__all__ = ["EDITORS", "Inspector", "set_invalid"]

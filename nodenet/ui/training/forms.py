"""Forms generated from the engine's parameter descriptors (``nodenet.engine.params``).

A :class:`ParamForm` shows one editor per descriptor, chosen by its ``kind``
(int, float, bool, choice, text, numbers, strs), checks every edit with the
descriptor's own ``coerce`` and emits ``edited(name, value)`` only for valid
values; an invalid entry is outlined and explained under the form, and the
project is left unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from nodenet.engine.params import Bool, Float, Int, Param, Text
from nodenet.errors import ParamError

ERROR_STYLE = "color: #b71c1c;"
BAD_FIELD_STYLE = "border: 1px solid #d32f2f;"
SPIN_LIMIT = 2**31 - 1
NUMBER_WIDTH = 160


def format_number(value: Any) -> str:
    """A number as a user types it: ``0.001``, ``1e-07``, ``32``; ``None`` as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".10g")
    return str(value)


def parse_text(text: str, kind: str) -> Any:
    """What the user typed, as the JSON value a descriptor's ``coerce`` checks."""
    text = text.strip()
    if text == "" or text.lower() in ("none", "null"):
        return None
    if kind == "numbers":
        return [parse_text(part, "float") for part in text.replace(";", ",").split(",") if part]
    if kind == "names":  # column names or 0-based indices: "id, 3"
        parts = [part.strip() for part in text.split(",") if part.strip()]
        return [int(part) if part.isdigit() else part for part in parts]
    if kind in ("int", "float"):
        try:
            number = float(text)
        except ValueError:
            return text
        if kind == "int" and number.is_integer() and math.isfinite(number):
            return int(number)
        return number
    if kind == "text":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def spec_for_default(name: str, default: Any, help_: str = "") -> Param:
    """A descriptor for an option known only by its default (built-in dataset options)."""
    if isinstance(default, bool):
        return Bool(name, default, help_)
    if isinstance(default, int):
        return Int(name, default, help_)
    if isinstance(default, float):
        return Float(name, default, help_)
    return Text(name, default, help_)


class ParamForm(QWidget):
    """Editors for ``specs``; ``edited(name, value)`` after each valid change."""

    edited = Signal(str, object)

    def __init__(self, specs: tuple[Param, ...], values: dict | None = None, parent=None):
        super().__init__(parent)
        self.specs = {spec.name: spec for spec in specs}
        self._values: dict[str, Any] = {s.name: s.default for s in specs}
        self._editors: dict[str, QWidget] = {}
        self._setters: dict[str, Callable[[Any], None]] = {}
        self._errors: dict[str, str] = {}
        self.form = QFormLayout()
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        for spec in specs:
            editor = self._make_editor(spec)
            editor.setToolTip(f"{spec.help}\n({spec.describe()})" if spec.help else "")
            label = QLabel(spec.name)
            label.setToolTip(editor.toolTip())
            self.form.addRow(label, editor)
            self._editors[spec.name] = editor
        self.error_label = QLabel()
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.form)
        layout.addWidget(self.error_label)
        self.set_values(values or {})

    def values(self) -> dict[str, Any]:
        return dict(self._values)

    def editor(self, name: str) -> QWidget:
        return self._editors[name]

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (defaults for missing names) without emitting ``edited``."""
        for name, spec in self.specs.items():
            value = values.get(name, spec.default)
            self._values[name] = value
            editor = self._editors[name]
            editor.blockSignals(True)
            self._setters[name](value)
            editor.blockSignals(False)
            self._clear_error(name)

    # -- editors ---------------------------------------------------------------------

    def _make_editor(self, spec: Param) -> QWidget:
        kind = spec.kind
        if kind == "bool":
            return self._check_box(spec)
        if kind == "choice":
            return self._combo(spec)
        if kind == "int" and not getattr(spec, "optional", False):
            return self._spin_box(spec)
        if kind == "strs":
            return self._checks(spec)
        return self._line_edit(spec)

    def _check_box(self, spec: Param) -> QWidget:
        box = QCheckBox()
        self._setters[spec.name] = lambda v: box.setChecked(bool(v))
        box.toggled.connect(lambda checked: self._commit(spec.name, checked))
        return box

    def _combo(self, spec: Param) -> QWidget:
        combo = QComboBox()
        choices = list(spec.choices)
        for choice in choices:
            combo.addItem("auto" if choice is None else str(choice))

        def show(value: Any) -> None:
            combo.setCurrentIndex(choices.index(value) if value in choices else -1)

        self._setters[spec.name] = show
        combo.currentIndexChanged.connect(
            lambda i: self._commit(spec.name, choices[i]) if i >= 0 else None
        )
        return combo

    def _spin_box(self, spec: Param) -> QWidget:
        spin = QSpinBox()
        spin.setRange(
            max(spec.min if spec.min is not None else -SPIN_LIMIT, -SPIN_LIMIT),
            min(spec.max if spec.max is not None else SPIN_LIMIT, SPIN_LIMIT),
        )
        spin.setKeyboardTracking(False)
        self._setters[spec.name] = lambda v: spin.setValue(int(v if v is not None else 0))
        spin.valueChanged.connect(lambda v: self._commit(spec.name, int(v)))
        return spin

    def _checks(self, spec: Param) -> QWidget:
        host = QWidget()
        row = QHBoxLayout(host)
        row.setContentsMargins(0, 0, 0, 0)
        boxes = {}
        for choice in spec.choices:
            box = QCheckBox(str(choice))
            box.setToolTip(f"{spec.help} ({choice})" if spec.help else str(choice))
            row.addWidget(box)
            boxes[choice] = box
        row.addStretch(1)

        def show(value: Any) -> None:
            for choice, box in boxes.items():
                box.blockSignals(True)
                box.setChecked(choice in (value or []))
                box.blockSignals(False)

        def changed(_checked: bool) -> None:
            self._commit(spec.name, [c for c, b in boxes.items() if b.isChecked()])

        for box in boxes.values():
            box.toggled.connect(changed)
        self._setters[spec.name] = show
        return host

    def _line_edit(self, spec: Param) -> QWidget:
        edit = QLineEdit()
        kind = spec.kind if spec.kind in ("int", "float", "numbers", "names", "text") else "json"
        if getattr(spec, "optional", False) or kind == "json":
            edit.setPlaceholderText("none")
        if kind in ("int", "float"):
            edit.setMaximumWidth(NUMBER_WIDTH)

        def show(value: Any) -> None:
            if isinstance(value, list) and kind in ("numbers", "names"):
                edit.setText(", ".join(format_number(v) for v in value))
            elif kind == "json" and not isinstance(value, int | float | str | type(None)):
                edit.setText(json.dumps(value) if value else "")
            else:
                edit.setText(format_number(value))

        self._setters[spec.name] = show
        edit.editingFinished.connect(
            lambda: self._commit(spec.name, parse_text(edit.text(), kind), from_text=True)
        )
        return edit

    # -- checking ----------------------------------------------------------------------

    def _commit(self, name: str, value: Any, from_text: bool = False) -> None:
        spec = self.specs[name]
        try:
            value = spec.coerce(value)
        except ParamError as err:
            self._show_error(name, str(err))
            return
        self._clear_error(name)
        if from_text:
            editor = self._editors[name]
            editor.blockSignals(True)
            self._setters[name](value)
            editor.blockSignals(False)
        if value != self._values.get(name) or type(value) is not type(self._values.get(name)):
            self._values[name] = value
            self.edited.emit(name, value)

    def _show_error(self, name: str, text: str) -> None:
        self._errors[name] = text
        self._editors[name].setStyleSheet(BAD_FIELD_STYLE)
        self._refresh_errors()

    def _clear_error(self, name: str) -> None:
        if self._errors.pop(name, None) is not None:
            self._editors[name].setStyleSheet("")
            self._refresh_errors()

    def _refresh_errors(self) -> None:
        self.error_label.setText("\n".join(self._errors.values()))
        self.error_label.setVisible(bool(self._errors))

    def show_problem(self, text: str) -> None:
        """Show a problem that is not about one field (e.g. from the engine's check)."""
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))


__all__ = ["ParamForm", "format_number", "parse_text", "spec_for_default"]

"""Forms generated from the engine's parameter descriptors (``nodenet.engine.params``).

A :class:`ParamForm` shows one editor per descriptor, the one the inspector uses
too (:func:`nodenet.ui.param_editors.editor_for`; ``strs`` as a row of check
boxes here), checks every edit with the descriptor's own ``coerce`` and emits
``edited(name, value)`` only for valid values; an invalid entry is outlined and
explained under the form, and the project is left unchanged.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from nodenet.engine.params import Bool, Float, Int, Param, Text
from nodenet.errors import ParamError
from nodenet.ui.param_editors import Editor, StrChecksEditor, editor_for

ERROR_STYLE = "color: #b71c1c;"
BAD_FIELD_STYLE = "border: 1px solid #d32f2f;"
NUMBER_WIDTH = 160
VARIANTS: dict[str, type[Editor]] = {"strs": StrChecksEditor}


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
    """Editors for ``specs`` (from :func:`nodenet.ui.param_editors.editor_for`);
    ``edited(name, value)`` after each valid change."""

    edited = Signal(str, object)

    def __init__(self, specs: tuple[Param, ...], values: dict | None = None, parent=None):
        super().__init__(parent)
        self.specs = {spec.name: spec for spec in specs}
        self._values: dict[str, Any] = {s.name: s.default for s in specs}
        self._editors: dict[str, Editor] = {}
        self._errors: dict[str, str] = {}
        self.form = QFormLayout()
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        for spec in specs:
            editor = editor_for(spec, lambda name=spec.name: self._commit(name), VARIANTS)
            widget = editor.widget
            if spec.kind in ("int", "float") and isinstance(widget, QLineEdit):
                widget.setMaximumWidth(NUMBER_WIDTH)
            widget.setToolTip(f"{spec.help}\n({spec.describe()})" if spec.help else "")
            label = QLabel(spec.name)
            label.setToolTip(widget.toolTip())
            self.form.addRow(label, widget)
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
        return self._editors[name].widget

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (defaults for missing names) without emitting ``edited``."""
        for name, spec in self.specs.items():
            value = values.get(name, spec.default)
            self._values[name] = value
            self._show(name, value)
            self._clear_error(name)

    def _show(self, name: str, value: Any) -> None:
        editor = self._editors[name]
        widgets = (editor.widget, *editor.widget.findChildren(QWidget))
        for widget in widgets:
            widget.blockSignals(True)
        try:
            editor.set_value(value)
        except (TypeError, ValueError, AttributeError):
            pass  # an ill-typed value from the file: the engine's check reports it
        finally:
            for widget in widgets:
                widget.blockSignals(False)

    # -- checking ----------------------------------------------------------------------

    def _commit(self, name: str) -> None:
        spec = self.specs[name]
        try:
            value = spec.coerce(self._editors[name].read())
        except ValueError as err:  # text that does not parse
            self._show_error(name, f"{name}: {err}")
            return
        except ParamError as err:
            self._show_error(name, str(err))
            return
        self._clear_error(name)
        self._show(name, value)  # as the descriptor normalized it (1e-4 -> 0.0001)
        if value != self._values.get(name) or type(value) is not type(self._values.get(name)):
            self._values[name] = value
            self.edited.emit(name, value)

    def _show_error(self, name: str, text: str) -> None:
        self._errors[name] = text
        self._editors[name].widget.setStyleSheet(BAD_FIELD_STYLE)
        self._refresh_errors()

    def _clear_error(self, name: str) -> None:
        if self._errors.pop(name, None) is not None:
            self._editors[name].widget.setStyleSheet("")
            self._refresh_errors()

    def _refresh_errors(self) -> None:
        self.error_label.setText("\n".join(self._errors.values()))
        self.error_label.setVisible(bool(self._errors))

    def show_problem(self, text: str) -> None:
        """Show a problem that is not about one field (e.g. from the engine's check)."""
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))


__all__ = ["ParamForm", "spec_for_default"]

"""One editor per parameter descriptor kind, shared by the inspector and the run settings forms.

:func:`editor_for` picks the editor of a descriptor (:mod:`nodenet.engine.params`) by
its ``kind`` in :data:`EDITORS`: ``int`` a spin box with the range (a text field when
the value may be none), ``float`` a text field, ``bool`` a check box, ``choice`` a
combo box, ``initializer`` a combo box of names with a JSON field for the
initializer's arguments, ``ints`` / ``shape`` a text field read as ``3, 3``, ``regularizer`` an
enable box with l1 / l2 fields, ``strs`` a checkable list, ``numbers`` and ``names``
comma-separated lists, ``text`` a text field and ``any`` a JSON text field. A kind
it does not know (a new descriptor) is shown read-only, never a crash.

An editor only shows and reads: ``read`` raises :class:`ValueError` for text it
cannot parse; checking the value (the descriptor's ``coerce``) and applying it is
the container's work. Numbers are written one way everywhere: :func:`format_number`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QWidget,
)

from nodenet.engine.initializers import ALIASES, BY_NAME, KINDS, normalize
from nodenet.engine.params import Param, json_repr
from nodenet.errors import ParamError

INT_LIMIT = 2**31 - 1
NONE_WORDS = ("none", "null")


def format_number(value: float) -> str:
    """A float as the user reads and types it back: ``0.001``, ``1e-07``, ``0.0``."""
    return repr(float(value))


def parse_number(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number") from None


def parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not an integer") from None


def parse_dims(text: str, allow_none: bool) -> list:
    """``"28, 28, 1"`` -> ``[28, 28, 1]``; ``None`` / ``?`` allowed for a variable size."""
    out: list = []
    for token in text.replace(",", " ").split():
        if allow_none and token.lower() in ("none", "null", "?"):
            out.append(None)
            continue
        out.append(parse_int(token))
    return out


def choice_text(choice: Any) -> str:
    """How a choice reads in a combo box: ``auto`` for none, strings as they are."""
    if choice is None:
        return "auto"
    return choice if isinstance(choice, str) else json_repr(choice)


class Editor:
    """A widget for one parameter; ``commit`` is called after each change by the user."""

    def __init__(self, spec: Param, commit: Callable[[], None]):
        self.spec = spec
        self.commit = commit
        self.marked: list[QWidget] = []  # widgets outlined when the value is invalid
        self.widget = self.build()
        self.marked = self.marked or [self.widget]

    @property
    def optional(self) -> bool:
        return bool(getattr(self.spec, "optional", False))

    def build(self) -> QWidget:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def read(self) -> Any:
        raise NotImplementedError

    def _text_field(self, placeholder: str = "") -> QLineEdit:
        field = QLineEdit()
        field.setPlaceholderText(placeholder)
        field.editingFinished.connect(self.commit)
        return field

    def _none_or(self, parse: Callable[[str], Any]) -> Any:
        """The field's text parsed, or None when it is empty (or says none) and may be."""
        text = self.widget.text().strip()
        if self.optional and (not text or text.lower() in NONE_WORDS):
            return None
        return parse(text)


class IntEditor(Editor):
    def build(self) -> QWidget:
        if self.optional:
            return self._text_field("none")
        box = QSpinBox()
        low, high = self.spec.min, self.spec.max
        box.setRange(
            max(low, -INT_LIMIT) if low is not None else -INT_LIMIT,
            min(high, INT_LIMIT) if high is not None else INT_LIMIT,
        )
        box.setKeyboardTracking(False)  # one edit per Enter / step, not per keystroke
        box.setGroupSeparatorShown(True)
        box.valueChanged.connect(lambda _: self.commit())
        return box

    def set_value(self, value: Any) -> None:
        if isinstance(self.widget, QLineEdit):
            self.widget.setText("" if value is None else str(value))
        else:
            self.widget.setValue(int(value if value is not None else 0))

    def read(self) -> Any:
        if isinstance(self.widget, QSpinBox):
            return self.widget.value()
        return self._none_or(parse_int)


class FloatEditor(Editor):
    def build(self) -> QWidget:
        return self._text_field("none" if self.optional else "")

    def set_value(self, value: Any) -> None:
        self.widget.setText("" if value is None else format_number(value))

    def read(self) -> Any:
        return self._none_or(parse_number)


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
            box.addItem(choice_text(choice), choice)
        box.activated.connect(lambda _: self.commit())
        return box

    def set_value(self, value: Any) -> None:
        choices = list(self.spec.choices)
        self.widget.setCurrentIndex(choices.index(value) if value in choices else -1)

    def read(self) -> Any:
        index = self.widget.currentIndex()
        if index < 0:
            raise ValueError(f"choose one of {', '.join(map(choice_text, self.spec.choices))}")
        return self.spec.choices[index]


class InitializerEditor(Editor):
    """A weight initializer: a combo box of Keras's names and, beside it, its arguments
    as JSON (``{"scale": 2.0, "mode": "fan_out"}``; empty for Keras's defaults).

    Picking another name clears the arguments (they belong to the initializer they
    were given for), so a plain name is one pick away.
    """

    def build(self) -> QWidget:
        widget = QWidget()
        row = QHBoxLayout(widget)
        row.setContentsMargins(0, 0, 0, 0)
        self.names = QComboBox()
        for choice in self.spec.choices:
            self.names.addItem(choice_text(choice), choice)
        self.names.activated.connect(self._picked)
        self.names.setToolTip("the initializer (Keras's name)")
        self.args = QLineEdit()
        self.args.setPlaceholderText("default arguments")
        self.args.setToolTip(
            'the initializer\'s arguments as JSON, e.g. {"scale": 2.0, "mode": "fan_out"};'
            " empty for Keras's defaults"
        )
        self.args.editingFinished.connect(self.commit)
        row.addWidget(self.names)
        row.addWidget(self.args, 1)
        self.marked = [self.names, self.args]
        return widget

    def _picked(self, _index: int) -> None:
        self.args.clear()
        self.commit()

    def set_value(self, value: Any) -> None:
        name, args = value, ""
        if isinstance(value, dict):
            kind = KINDS.get(value.get("class_name"))
            name = kind.name if kind else None
            args = json.dumps(value.get("config", {}), ensure_ascii=False)
        self.names.setCurrentIndex(self.names.findData(name) if name is not None else -1)
        self.args.setText(args)
        self.args.setCursorPosition(0)

    def read(self) -> Any:
        name = self.names.currentData()
        if name is None:
            raise ValueError(f"choose one of {', '.join(map(choice_text, self.spec.choices))}")
        text = self.args.text().strip()
        if not text:
            return name
        try:
            config = json.loads(text)
        except ValueError:
            raise ValueError(
                f'the arguments must be JSON, e.g. {{"scale": 2.0}} (got {text[:40]!r})'
            ) from None
        value = {"class_name": BY_NAME[ALIASES.get(name, name)].class_name, "config": config}
        try:
            return normalize(value)
        except ParamError:
            return value  # the descriptor's check names what is wrong


class IntsEditor(Editor):
    """``ints`` (kernel sizes, strides) and ``shape``: integers separated by commas."""

    def build(self) -> QWidget:
        return self._text_field("none" if self.optional else "")

    def set_value(self, value: Any) -> None:
        if value is None:
            self.widget.setText("")
        elif isinstance(value, int):
            self.widget.setText(str(value))
        else:
            self.widget.setText(", ".join("None" if v is None else str(v) for v in value))

    def read(self) -> Any:
        text = self.widget.text().strip()
        if not text and self.optional:
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


class StrChecksEditor(Editor):
    """``strs`` as a row of check boxes (the run settings' narrow columns)."""

    def build(self) -> QWidget:
        host = QWidget()
        row = QHBoxLayout(host)
        row.setContentsMargins(0, 0, 0, 0)
        self.boxes: dict[str, QCheckBox] = {}
        for choice in self.spec.choices:
            box = QCheckBox(str(choice))
            help_ = self.spec.help
            box.setToolTip(f"{help_} ({choice})" if help_ else str(choice))
            box.toggled.connect(lambda _: self.commit())
            row.addWidget(box)
            self.boxes[choice] = box
        row.addStretch(1)
        return host

    def set_value(self, value: Any) -> None:
        for choice, box in self.boxes.items():
            box.setChecked(choice in (value or []))

    def read(self) -> Any:
        return [choice for choice, box in self.boxes.items() if box.isChecked()]


class NumbersEditor(Editor):
    """A list of numbers typed ``0.1, 0.01`` (integers for an integer list)."""

    def build(self) -> QWidget:
        return self._text_field()

    def _format(self, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return format_number(value)

    def set_value(self, value: Any) -> None:
        self.widget.setText(", ".join(self._format(v) for v in value or []))

    def read(self) -> Any:
        parts = [p for p in self.widget.text().replace(";", ",").split(",") if p.strip()]
        if getattr(self.spec, "integer", False):
            return [parse_int(p) for p in parts]
        return [parse_number(p) for p in parts]


class NamesEditor(Editor):
    """Column names or 0-based indices typed ``id, 3``."""

    def build(self) -> QWidget:
        return self._text_field()

    def set_value(self, value: Any) -> None:
        self.widget.setText(", ".join(str(v) for v in value or []))

    def read(self) -> Any:
        parts = [p.strip() for p in self.widget.text().split(",") if p.strip()]
        return [int(p) if p.isdigit() else p for p in parts]


class TextEditor(Editor):
    def build(self) -> QWidget:
        return self._text_field()

    def set_value(self, value: Any) -> None:
        self.widget.setText("" if value is None else str(value))

    def read(self) -> Any:
        return self.widget.text().strip() or None


class JsonEditor(Editor):
    """Any JSON value (a column name or index, a reshape table): what is not JSON is text."""

    def build(self) -> QWidget:
        return self._text_field("none")

    def set_value(self, value: Any) -> None:
        if value is None or isinstance(value, bool):
            text = "" if value is None else json.dumps(value)
        elif isinstance(value, str | int):
            text = str(value)
        elif isinstance(value, float):
            text = format_number(value)
        else:
            text = json.dumps(value) if value else ""
        self.widget.setText(text)

    def read(self) -> Any:
        text = self.widget.text().strip()
        if not text or text.lower() in NONE_WORDS:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text


class ReadOnlyEditor(Editor):
    """A kind with no editor yet: its value as JSON, read-only (it is never committed)."""

    def build(self) -> QWidget:
        field = QLineEdit()
        field.setReadOnly(True)
        return field

    def set_value(self, value: Any) -> None:
        self.value = value
        self.widget.setText(json.dumps(value, ensure_ascii=False, default=str))
        self.widget.setCursorPosition(0)

    def read(self) -> Any:
        return getattr(self, "value", self.spec.default)


EDITORS: dict[str, type[Editor]] = {
    "int": IntEditor,
    "float": FloatEditor,
    "bool": BoolEditor,
    "choice": ChoiceEditor,
    "initializer": InitializerEditor,
    "ints": IntsEditor,
    "shape": IntsEditor,
    "regularizer": RegularizerEditor,
    "strs": StrListEditor,
    "numbers": NumbersEditor,
    "names": NamesEditor,
    "text": TextEditor,
    "any": JsonEditor,
    "block": ReadOnlyEditor,  # a wrapper's inner block: shown, edited in the file for now
}


def editor_for(
    spec: Param,
    commit: Callable[[], None],
    variants: Mapping[str, type[Editor]] | None = None,
) -> Editor:
    """The editor of ``spec`` (``variants`` first, then :data:`EDITORS`; read-only for a
    kind neither knows)."""
    kind = spec.kind
    cls = (variants or {}).get(kind) or EDITORS.get(kind, ReadOnlyEditor)
    return cls(spec, commit)

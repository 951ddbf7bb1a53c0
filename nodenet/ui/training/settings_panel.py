"""Training settings: optimizer, learning-rate schedule, losses and metrics, epochs, stopping.

Every form is generated from the engine's descriptors (``OPTIMIZER_PARAMS``,
the schedules' ``PARAMS``, ``TRAINING_PARAMS``, ``EARLY_STOPPING_PARAMS``,
``REDUCE_LR_PARAMS`` and the Output block's ``PARAMS``). Each valid edit is one
undoable command: the ``training`` section through ``document.set_section`` and
an Output's loss / metrics through ``document.set_params``. Undo, redo and a new
project refresh the forms from the document.
"""

from __future__ import annotations

import copy
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from nodenet.engine import (
    EARLY_STOPPING_PARAMS,
    OPTIMIZER_NAMES,
    OPTIMIZER_PARAMS,
    REDUCE_LR_PARAMS,
    SCHEDULES,
    TRAINING_PARAMS,
    block_class,
)
from nodenet.errors import NodenetError, ParamError
from nodenet.ui.param_editors import format_number, parse_number
from nodenet.ui.training.forms import ERROR_STYLE, ParamForm

CONSTANT = "constant"
DEFAULT_OPTIMIZER = {"name": "adam", "learning_rate": 0.001}


class LearningRateEditor(QWidget):
    """A constant learning rate, or a schedule with its own form."""

    edited = Signal(object)  # a float, or a schedule dict with every argument

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.value: Any = 0.001
        self.kind = QComboBox()
        self.kind.addItems([CONSTANT, *SCHEDULES.names()])
        self.kind.setToolTip("a constant step size, or a Keras learning-rate schedule")
        self.constant = QLineEdit()
        self.constant.setToolTip("step size (a number >= 0, e.g. 0.001 or 1e-4)")
        self.schedule_form: ParamForm | None = None
        self._form_of = ""
        self.error = QLabel()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.kind)
        row.addWidget(self.constant, 1)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addLayout(row)
        self._layout.addWidget(self.error)
        self.kind.currentTextChanged.connect(self._kind_changed)
        self.constant.editingFinished.connect(self._constant_edited)

    def set_value(self, value: Any) -> None:
        """Show ``value`` without emitting ``edited``."""
        self.value = value
        name = value.get("schedule", CONSTANT) if isinstance(value, dict) else CONSTANT
        self.kind.blockSignals(True)
        self.kind.setCurrentText(name)
        self.kind.blockSignals(False)
        self._show_form(name, value if isinstance(value, dict) else None)
        self.constant.setVisible(name == CONSTANT)
        self.constant.setText("" if isinstance(value, dict) else format_number(value))
        self.error.hide()

    def _show_form(self, name: str, values: dict | None) -> None:
        """The schedule's fields; rebuilt only when the schedule changes."""
        if self.schedule_form is not None and self._form_of == name:
            self.schedule_form.set_values(values or {})
            return
        self._form_of = name
        if self.schedule_form is not None:
            self.schedule_form.hide()
            self.schedule_form.deleteLater()
            self.schedule_form = None
        if name == CONSTANT:
            return
        specs = SCHEDULES.get(name).PARAMS
        self.schedule_form = ParamForm(specs, values or {})
        self.schedule_form.edited.connect(self._schedule_edited)
        self._layout.insertWidget(1, self.schedule_form)

    @Slot(str)
    def _kind_changed(self, name: str) -> None:
        old = self.value
        start = old.get("initial_learning_rate", 0.01) if isinstance(old, dict) else old
        if name == CONSTANT:
            value: Any = float(start if isinstance(start, int | float) else 0.001)
        else:
            specs = SCHEDULES.get(name).PARAMS
            value = {"schedule": name, **{s.name: s.default for s in specs}}
            if "initial_learning_rate" in value and isinstance(start, int | float):
                value["initial_learning_rate"] = float(start)
        self.set_value(value)
        self.edited.emit(value)

    @Slot()
    def _constant_edited(self) -> None:
        try:
            value = parse_number(self.constant.text())
        except ValueError:
            value = None
        if value is None or not value >= 0 or value == float("inf"):
            self.error.setText(
                f"learning_rate must be a number >= 0 (got {self.constant.text()!r})"
            )
            self.error.show()
            return
        self.error.hide()
        if value != self.value:
            self.value = value
            self.edited.emit(value)

    @Slot(str, object)
    def _schedule_edited(self, name: str, value: Any) -> None:
        self.value = {**self.value, name: value}
        self.edited.emit(dict(self.value))


class SettingsPanel(QScrollArea):
    """The ``training`` section and the Outputs' losses and metrics, as forms."""

    def __init__(self, document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.setWidgetResizable(True)
        host = QWidget()
        self.setWidget(host)
        self.optimizer_name = QComboBox()
        self.optimizer_name.setToolTip("The optimizer that updates the weights")
        self.optimizer_name.addItems(list(OPTIMIZER_NAMES))
        self.learning_rate = LearningRateEditor()
        self.optimizer_form: ParamForm | None = None
        self._optimizer_shown = ""
        self.optimizer_box = QGroupBox("Optimizer")
        self._optimizer_layout = QFormLayout(self.optimizer_box)
        self._optimizer_layout.addRow("optimizer", self.optimizer_name)
        self._optimizer_layout.addRow("learning_rate", self.learning_rate)
        self.training_form = ParamForm(TRAINING_PARAMS)
        training_box = _boxed("Training", self.training_form)
        self.early_form = ParamForm(EARLY_STOPPING_PARAMS)
        self.early_box = _boxed("Early stopping", self.early_form, checkable=True)
        self.plateau_form = ParamForm(REDUCE_LR_PARAMS)
        self.plateau_box = _boxed("Reduce learning rate on plateau", self.plateau_form, True)
        self.outputs_box = QGroupBox("Outputs: loss and metrics")
        self._outputs_layout = QVBoxLayout(self.outputs_box)
        self.output_forms: dict[str, ParamForm] = {}
        self._outputs_signature: tuple = ()
        self.problem = QLabel()
        self.problem.setStyleSheet(ERROR_STYLE)
        self.problem.setWordWrap(True)
        self.problem.hide()
        self._layout_columns(host, training_box)
        self._connect(host)
        self.refresh()

    def _layout_columns(self, host: QWidget, training_box: QWidget) -> None:
        left, right = QVBoxLayout(), QVBoxLayout()
        for widget in (self.optimizer_box, training_box):
            left.addWidget(widget)
        for widget in (self.outputs_box, self.early_box, self.plateau_box):
            right.addWidget(widget)
        left.addStretch(1)
        right.addStretch(1)
        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addLayout(right, 1)
        outer = QVBoxLayout(host)
        outer.addWidget(self.problem)
        outer.addLayout(columns)

    def _connect(self, host: QWidget) -> None:
        document = self.document
        self.optimizer_name.currentTextChanged.connect(self._optimizer_changed)
        self.learning_rate.edited.connect(lambda v: self._set_optimizer_field("learning_rate", v))
        self.training_form.edited.connect(self._training_edited)
        self.early_form.edited.connect(lambda k, v: self._section_edited("early_stopping", k, v))
        self.plateau_form.edited.connect(
            lambda k, v: self._section_edited("reduce_lr_on_plateau", k, v)
        )
        self.early_box.toggled.connect(lambda on: self._toggle_section("early_stopping", on))
        self.plateau_box.toggled.connect(
            lambda on: self._toggle_section("reduce_lr_on_plateau", on)
        )
        document.settingsChanged.connect(self._settings_changed)
        document.projectReplaced.connect(self.refresh)
        document.analysisChanged.connect(self._refresh_outputs)
        document.readOnlyChanged.connect(lambda ro: host.setEnabled(not ro))

    # -- reading the document ---------------------------------------------------------

    @property
    def training(self) -> dict[str, Any]:
        return self.document.project.training

    @Slot()
    def refresh(self) -> None:
        """Show the document's settings in every form."""
        training = self.training
        optimizer = training.get("optimizer") or DEFAULT_OPTIMIZER
        name = optimizer.get("name", "adam")
        self.optimizer_name.blockSignals(True)
        self.optimizer_name.setCurrentText(name)
        self.optimizer_name.blockSignals(False)
        self._build_optimizer_form(name, optimizer)
        specs = dict((s.name, s) for s in OPTIMIZER_PARAMS.get(name, ()))
        default_lr = specs["learning_rate"].default if "learning_rate" in specs else 0.001
        self.learning_rate.set_value(optimizer.get("learning_rate", default_lr))
        self.training_form.set_values(training)
        for key, box, form in (
            ("early_stopping", self.early_box, self.early_form),
            ("reduce_lr_on_plateau", self.plateau_box, self.plateau_form),
        ):
            section = training.get(key)
            box.blockSignals(True)
            box.setChecked(section is not None)
            box.blockSignals(False)
            form.set_values(section or {})
            form.setVisible(section is not None)
        self._refresh_outputs(force=True)  # force: values again, widgets only if ids changed
        self.problem.hide()

    @Slot(str)
    def _settings_changed(self, section: str) -> None:
        if section == "training":
            self.refresh()

    def _build_optimizer_form(self, name: str, values: dict) -> None:
        """The optimizer's own fields; rebuilt only when the optimizer changes."""
        if self.optimizer_form is not None and self._optimizer_shown == name:
            self.optimizer_form.set_values(values)
            return
        if self.optimizer_form is not None:
            self._optimizer_layout.removeRow(2)
        specs = tuple(s for s in OPTIMIZER_PARAMS.get(name, ()) if s.name != "learning_rate")
        self._optimizer_shown = name
        self.optimizer_form = ParamForm(specs, values)
        self.optimizer_form.edited.connect(self._set_optimizer_field)
        self._optimizer_layout.addRow(self.optimizer_form)

    @Slot()
    def _refresh_outputs(self, force: bool = False) -> None:
        outputs = self.document.project.outputs()
        signature = tuple((n.id, repr(sorted(n.params.items()))) for n in outputs)
        if signature == self._outputs_signature and not force:
            return
        self._outputs_signature = signature
        if outputs and [n.id for n in outputs] == list(self.output_forms):
            for node in outputs:
                self.output_forms[node.id].set_values(node.params)
            return
        while self._outputs_layout.count():
            item = self._outputs_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()
                item.widget().deleteLater()
        self.output_forms = {}
        specs = block_class("Output").PARAMS
        for node in outputs:
            form = ParamForm(specs, node.params)
            form.edited.connect(lambda k, v, node_id=node.id: self._output_edited(node_id, k, v))
            title = QLabel(f"<b>{node.id}</b>")
            self._outputs_layout.addWidget(title)
            self._outputs_layout.addWidget(form)
            self.output_forms[node.id] = form
        if not outputs:
            self._outputs_layout.addWidget(QLabel("The graph has no Output block."))

    # -- writing the document -----------------------------------------------------------

    def _write(self, training: dict[str, Any]) -> None:
        try:
            self.document.set_section("training", training)
        except NodenetError as err:
            self._show_problem(str(err))
        else:
            self.problem.hide()

    def _show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.show()

    @Slot(str)
    def _optimizer_changed(self, name: str) -> None:
        old = self.training.get("optimizer") or DEFAULT_OPTIMIZER
        new: dict[str, Any] = {"name": name}
        if "learning_rate" in old:
            new["learning_rate"] = copy.deepcopy(old["learning_rate"])
        training = copy.deepcopy(self.training)
        training["optimizer"] = new
        self._write(training)
        self.refresh()

    def _set_optimizer_field(self, key: str, value: Any) -> None:
        training = copy.deepcopy(self.training)
        optimizer = dict(training.get("optimizer") or DEFAULT_OPTIMIZER)
        if value is None:
            optimizer.pop(key, None)
        else:
            optimizer[key] = value
        training["optimizer"] = optimizer
        self._write(training)

    @Slot(str, object)
    def _training_edited(self, key: str, value: Any) -> None:
        training = copy.deepcopy(self.training)
        training[key] = value
        self._write(training)

    def _section_edited(self, section: str, key: str, value: Any) -> None:
        training = copy.deepcopy(self.training)
        training[section] = {**(training.get(section) or {}), key: value}
        self._write(training)

    def _toggle_section(self, section: str, on: bool) -> None:
        form = self.early_form if section == "early_stopping" else self.plateau_form
        training = copy.deepcopy(self.training)
        training[section] = form.values() if on else None
        form.setVisible(on)
        self._write(training)

    def _output_edited(self, node_id: str, key: str, value: Any) -> None:
        node = self.document.project.node(node_id)
        try:
            self.document.set_params(node_id, {**node.params, key: value})
        except (ParamError, NodenetError) as err:
            self.output_forms[node_id].show_problem(str(err))


def _boxed(title: str, form: QWidget, checkable: bool = False) -> QGroupBox:
    box = QGroupBox(title)
    box.setCheckable(checkable)
    layout = QVBoxLayout(box)
    layout.addWidget(form)
    return box

"""The data settings: source, preview, array-to-node mapping, preprocessing, split.

Every valid edit replaces the project's ``data`` section through
``document.set_section("data", ...)``: one undoable command. The source is
loaded and checked against the graph in the background
(:class:`~nodenet.ui.training.data_preview.DataLoader`), so a mismatch between
the data and an Input or Output is shown here, naming the node and both
shapes, before training starts.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from nodenet.engine import ENCODINGS, NORMALIZATIONS, builtin_datasets
from nodenet.engine.params import Bool, Choice, Float, Int, Param, Text
from nodenet.errors import NodenetError
from nodenet.ui.training.data_preview import DataLoader, DataPreview
from nodenet.ui.training.folder_source import (
    FOLDER_SPECS,
    KIND_TEXT,
    PLACEHOLDER,
    FolderPreview,
    apply_summary,
    folder_source,
)
from nodenet.ui.training.forms import ERROR_STYLE, ParamForm, spec_for_default

KINDS = {
    "builtin": "Built-in dataset",
    "csv": "CSV file",
    "npz": "NPZ file",
    "idx": "IDX files (folder)",
    **KIND_TEXT,  # the user's own folders of images, texts, sounds
}
FILE_FILTERS = {
    "csv": "CSV files (*.csv *.txt);;All files (*)",
    "npz": "NumPy archives (*.npz);;All files (*)",
    "image_csv": "CSV files (*.csv *.txt);;All files (*)",
}
OK_STYLE = "color: #1b5e20;"
AUTO = "(auto)"
CHECK_DELAY_MS = 250


@dataclass(frozen=True)
class Names(Param):
    """Column names or indices, typed ``id, 3``."""

    kind: ClassVar[str] = "names"

    def coerce(self, value: Any) -> Any:
        return [] if value is None else list(value) if isinstance(value, list) else [value]


CSV_SPECS = (
    Param("target", None, "the label column: a name or a 0-based index (default: the last)"),
    Names("id_columns", [], "columns to drop, by name or index (comma separated)"),
    Text("delimiter", ",", "the character between values"),
    Bool("header", True, "the first line names the columns"),
    Choice("task", None, "classification or regression (auto: from the labels)",
           choices=(None, "classification", "regression")),
)  # fmt: skip
PREPROCESS_SPECS = (
    Choice("normalize", "none", "per-feature scaling fitted on the training split",
           choices=NORMALIZATIONS),
    Float("scale", None, "multiply float inputs by this first (e.g. 0.00392 for 1/255)",
          optional=True),
    Choice("target_encoding", "auto", "how labels become targets (auto follows the loss)",
           choices=ENCODINGS),
    Param("reshape", {}, 'per array, e.g. {"x": [28, 28, 1]} (JSON)'),
)  # fmt: skip
SPLIT_SPECS = (
    Float("validation", 0.0, "fraction of all samples held out for validation "
          "(0: use the training settings' validation_split)", min=0.0, max=0.9),
    Float("test", 0.0, "fraction of all samples held out for testing (unless the "
          "dataset has its own test split)", min=0.0, max=0.9),
    Int("seed", None, "seed of the shuffle that splits (default: the training seed)",
        min=0, optional=True),
)  # fmt: skip


class DataPanel(QScrollArea):
    """Source, preview, mapping, preprocessing and split of the project's data."""

    def __init__(self, document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.setWidgetResizable(True)
        self.datasets = {d["name"]: d for d in builtin_datasets()}
        self.loader = DataLoader(self)
        self.preview = DataPreview()
        self.folder_preview = FolderPreview()
        self.folder_preview.hide()
        self._build_source()
        self.mapping_box = QGroupBox("Arrays to nodes")
        self._mapping_layout = QFormLayout(self.mapping_box)
        self.mapping_combos: dict[tuple[str, str], QComboBox] = {}
        self.preprocess_form = ParamForm(PREPROCESS_SPECS)
        self.split_form = ParamForm(SPLIT_SPECS)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._names: list[str] = []
        self._mapped_names: list[str] = []
        self._labels: list[str] = []
        self._layout_columns()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(CHECK_DELAY_MS)
        self._timer.timeout.connect(self._request_check)
        self._connect()
        self.refresh()

    def _build_source(self) -> None:
        self.kind = QComboBox()
        self.kind.setToolTip("Where the data comes from: a built-in dataset or a file")
        for key, text in KINDS.items():
            self.kind.addItem(text, key)
        self.dataset = QComboBox()
        self.dataset.setToolTip("The built-in dataset (its description is on each entry)")
        for name, info in self.datasets.items():
            self.dataset.addItem(f"{name} ({info['task']})", name)
            index = self.dataset.count() - 1
            self.dataset.setItemData(index, info["description"], Qt.ItemDataRole.ToolTipRole)
            if not info["available"]:
                self.dataset.model().item(index).setEnabled(False)
        self.options_form: ParamForm | None = None
        self._options_of: str | None = None
        self.path = QLineEdit()
        self.path.setToolTip("The data file (or folder), relative to the project's folder")
        self.test_path = QLineEdit()
        self.test_path.setToolTip("A separate test file with the same columns (optional)")
        self.test_path.setPlaceholderText("optional: a file with the same columns")
        self.csv_form = ParamForm(CSV_SPECS)
        self.folder_forms = {kind: ParamForm(specs) for kind, specs in FOLDER_SPECS.items()}
        self.source_box = QGroupBox("Source")
        self._source_layout = QFormLayout(self.source_box)
        self._source_layout.addRow("kind", self.kind)
        self._source_layout.addRow("dataset", self.dataset)
        self._file_row = _with_button(self.path, self._browse)
        self._test_row = _with_button(self.test_path, self._browse_test)
        self._source_layout.addRow("file", self._file_row)
        self._source_layout.addRow("test file", self._test_row)
        self._source_layout.addRow(self.csv_form)
        for form in self.folder_forms.values():
            self._source_layout.addRow(form)

    def _layout_columns(self) -> None:
        host = QWidget()
        self.setWidget(host)
        preview_box = QGroupBox("Preview")
        preview_layout = QVBoxLayout(preview_box)
        preview_layout.addWidget(self.preview)
        preview_layout.addWidget(self.folder_preview)
        left, right = QVBoxLayout(), QVBoxLayout()
        left.addWidget(self.source_box)
        left.addWidget(preview_box, 1)
        right.addWidget(self.mapping_box)
        right.addWidget(_boxed("Preprocessing", self.preprocess_form))
        right.addWidget(_boxed("Split", self.split_form))
        right.addWidget(self.status)
        right.addStretch(1)
        columns = QHBoxLayout(host)
        columns.addLayout(left, 3)
        columns.addLayout(right, 2)

    def _connect(self) -> None:
        doc = self.document
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.dataset.currentIndexChanged.connect(self._dataset_changed)
        self.path.editingFinished.connect(self._write_source)
        self.test_path.editingFinished.connect(self._write_source)
        self.csv_form.edited.connect(lambda *_: self._write_source())
        for form in self.folder_forms.values():
            form.edited.connect(lambda *_: self._write_source())
        self.folder_preview.applyRequested.connect(self._apply_folder)
        self.preprocess_form.edited.connect(lambda k, v: self._write_part("preprocess", k, v))
        self.split_form.edited.connect(lambda k, v: self._write_part("split", k, v))
        self.loader.described.connect(self._described)
        self.loader.checked.connect(self._checked)
        self.loader.failed.connect(self._load_failed)
        doc.settingsChanged.connect(lambda section: section == "data" and self.refresh())
        doc.projectReplaced.connect(self.refresh)
        doc.analysisChanged.connect(self._graph_changed)
        doc.readOnlyChanged.connect(lambda ro: self.widget().setEnabled(not ro))

    # -- reading the document ---------------------------------------------------------

    @property
    def data(self) -> dict[str, Any]:
        return self.document.project.data

    @Slot()
    def refresh(self) -> None:
        """Show the document's ``data`` section and check it again."""
        source = self.data.get("source") or {}
        kind = source.get("kind", "builtin")
        for widget, value in (
            (self.kind, self.kind.findData(kind)),
            (self.dataset, self.dataset.findData(source.get("name"))),
        ):
            widget.blockSignals(True)
            widget.setCurrentIndex(value)
            widget.blockSignals(False)
        self.path.setText(str(source.get("path") or ""))
        self.test_path.setText(str(source.get("test_path") or ""))
        self.csv_form.set_values(source)
        if kind in self.folder_forms:
            self.folder_forms[kind].set_values(source)
        self._show_kind(kind)
        self._build_options(source.get("name"), source)
        self.preprocess_form.set_values(self.data.get("preprocess") or {})
        self.split_form.set_values(self.data.get("split") or {})
        self._build_mapping()
        self._timer.start()

    def _show_kind(self, kind: str) -> None:
        rows = {
            self.dataset: kind == "builtin",
            self._file_row: kind != "builtin",
            self._test_row: kind in ("csv", "npz"),
        }
        for widget, visible in rows.items():
            self._source_layout.setRowVisible(widget, visible)
        self.csv_form.setVisible(kind == "csv")
        for name, form in self.folder_forms.items():
            form.setVisible(kind == name)
        placeholder = "a folder with the MNIST IDX files" if kind == "idx" else ""
        self.path.setPlaceholderText(PLACEHOLDER.get(kind, placeholder))
        folder = kind == "idx" or (kind in self.folder_forms and kind != "image_csv")
        self._source_layout.labelForField(self._file_row).setText("folder" if folder else "file")

    def _build_options(self, name: str | None, source: dict) -> None:
        """The built-in dataset's options; rebuilt only when the dataset changes."""
        if self.options_form is not None and self._options_of == name:
            self.options_form.set_values(source)
            return
        self._options_of = name
        if self.options_form is not None:
            self._source_layout.removeRow(self.options_form)
            self.options_form = None
        info = self.datasets.get(name or "")
        if info is None or not info["options"] or source.get("kind", "builtin") != "builtin":
            return
        specs = tuple(spec_for_default(k, v) for k, v in info["options"].items())
        self.options_form = ParamForm(specs, source)
        self.options_form.edited.connect(lambda *_: self._write_source())
        self._source_layout.insertRow(2, self.options_form)

    def _build_mapping(self) -> None:
        """A combo per Input and Output; rebuilt only when the nodes or arrays change."""
        project = self.document.project
        rows = [("inputs", n.id) for n in project.inputs()]
        rows += [("targets", n.id) for n in project.outputs()]
        if rows == list(self.mapping_combos) and self._names == self._mapped_names:
            for (key, node_id), combo in self.mapping_combos.items():
                combo.blockSignals(True)
                combo.setCurrentIndex(
                    max(combo.findData((self.data.get(key) or {}).get(node_id)), 0)
                )
                combo.blockSignals(False)
            return
        self._mapped_names = list(self._names)
        self._labels = [self._row_label(n) for n in (*project.inputs(), *project.outputs())]
        while self._mapping_layout.rowCount():
            self._mapping_layout.removeRow(0)
        self.mapping_combos = {}
        for key, nodes in (("inputs", project.inputs()), ("targets", project.outputs())):
            mapping = self.data.get(key) or {}
            for node in nodes:
                combo = QComboBox()
                combo.setToolTip(
                    f"The array that feeds {node.id}"
                    if key == "inputs"
                    else f"The array {node.id} is trained to predict"
                )
                combo.addItem(AUTO, None)
                names = list(self._names)
                if mapping.get(node.id) and mapping[node.id] not in names:
                    names.append(mapping[node.id])
                for name in names:
                    combo.addItem(name, name)
                combo.setCurrentIndex(max(combo.findData(mapping.get(node.id)), 0))
                combo.currentIndexChanged.connect(
                    lambda _i, k=key, n=node.id, c=combo: self._mapping_changed(k, n, c)
                )
                self._mapping_layout.addRow(self._row_label(node), combo)
                self.mapping_combos[(key, node.id)] = combo

    def _row_label(self, node) -> str:
        shape = self.document.analysis.shapes.get(node.id)
        return f"{node.type} {node.id}" + ("" if shape is None else " " + _shape_text(shape))

    @Slot()
    def _graph_changed(self) -> None:
        project = self.document.project
        wanted = [("inputs", n.id) for n in project.inputs()]
        wanted += [("targets", n.id) for n in project.outputs()]
        labels = [self._row_label(n) for n in (*project.inputs(), *project.outputs())]
        if wanted != list(self.mapping_combos) or labels != self._labels:
            self.mapping_combos = {}  # the node list or a shape changed: new rows
            self._build_mapping()
        self._timer.start()

    @Slot()
    def _request_check(self) -> None:
        self.loader.request(self.document.project, self.document.analysis)

    @Slot(object)
    def _described(self, info: dict) -> None:
        folder = info.get("folder")
        self.folder_preview.setVisible(folder is not None)
        self.preview.setVisible(folder is None)
        if folder is not None:
            self.folder_preview.show_summary(folder)
        else:
            self.preview.show_description(info)
        if info["names"] != self._names:
            self._names = list(info["names"])
            self._build_mapping()

    @Slot(object)
    def _checked(self, result: dict) -> None:
        if result["ok"]:
            sizes = result["sizes"]
            train = f"{sizes.get('train', 0):,} training samples"
            fraction = self.document.project.training.get("validation_split") or 0
            if sizes.get("val"):
                train += f" · {sizes['val']:,} validation"
            elif fraction:
                train += f", {fraction:.0%} of them kept for validation (validation_split)"
            test = f" · {sizes['test']:,} test" if sizes.get("test") else " · no test split"
            self._set_status(f"✓ Ready: {train}{test}.", ok=True)
        else:
            self._set_status(result["message"], ok=False)

    @Slot(str)
    def _load_failed(self, message: str) -> None:
        self.preview.show_description(None)
        self.preview.summary.setText("The data could not be read.")
        self._set_status(message, ok=False)

    def _set_status(self, text: str, ok: bool) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(OK_STYLE if ok else ERROR_STYLE)

    # -- writing the document -----------------------------------------------------------

    def _write(self, data: dict[str, Any]) -> None:
        try:
            self.document.set_section("data", data)
        except NodenetError as err:
            self._set_status(str(err), ok=False)

    @Slot(int)
    def _kind_changed(self, _index: int) -> None:
        kind = self.kind.currentData()
        self._show_kind(kind)
        if kind == "builtin" and self.dataset.currentIndex() < 0:
            self.dataset.setCurrentIndex(0)  # writes through _dataset_changed
            return
        self._write_source()

    @Slot(int)
    def _dataset_changed(self, _index: int) -> None:
        self._build_options(self.dataset.currentData(), {"kind": "builtin"})
        self._write_source()

    def _source(self) -> dict[str, Any] | None:
        kind = self.kind.currentData()
        if kind == "builtin":
            name = self.dataset.currentData()
            if name is None:
                return None
            options = self.options_form.values() if self.options_form is not None else {}
            defaults = self.datasets[name]["options"]
            changed = {k: v for k, v in options.items() if defaults.get(k) != v}
            return {"kind": "builtin", "name": name, **changed}
        if kind in self.folder_forms:
            return folder_source(kind, self.path.text().strip(), self.folder_forms[kind].values())
        source: dict[str, Any] = {"kind": kind, "path": self.path.text().strip()}
        if kind in ("csv", "npz") and self.test_path.text().strip():
            source["test_path"] = self.test_path.text().strip()
        if kind == "csv":
            for spec in CSV_SPECS:
                value = self.csv_form.values()[spec.name]
                if value != spec.default:
                    source[spec.name] = value
        return source

    def _write_source(self) -> None:
        source = self._source()
        if source is None or source == self.data.get("source"):
            return
        data = copy.deepcopy(self.data)
        old = data.get("source") or {}
        data["source"] = source
        if (old.get("kind"), old.get("name"), old.get("path")) != (
            source.get("kind"),
            source.get("name"),
            source.get("path"),
        ):
            data.pop("inputs", None)  # another dataset: map automatically again
            data.pop("targets", None)
            self._names = []
        self._write(data)

    def _write_part(self, part: str, key: str, value: Any) -> None:
        data = copy.deepcopy(self.data)
        section = dict(data.get(part) or {})
        spec = next(s for s in (*PREPROCESS_SPECS, *SPLIT_SPECS) if s.name == key)
        if value == spec.default or value is None:
            section.pop(key, None)
        else:
            section[key] = value
        data[part] = section
        if not section:
            data.pop(part)
        self._write(data)

    def _mapping_changed(self, key: str, node_id: str, combo: QComboBox) -> None:
        data = copy.deepcopy(self.data)
        mapping = dict(data.get(key) or {})
        name = combo.currentData()
        if name is None:
            mapping.pop(node_id, None)
        else:
            mapping[node_id] = name
        data[key] = mapping
        if not mapping:
            data.pop(key)
        self._write(data)

    def _apply_folder(self, summary: dict[str, Any]) -> None:
        """The folder's shapes onto the graph (the preview's "Use for the graph")."""
        try:
            text = apply_summary(self.document, summary)
        except NodenetError as err:
            self._set_status(str(err), ok=False)
            return
        self._set_status(text, ok=True)

    def _relative(self, path: str) -> str:
        project_path = self.document.project.path
        if not path or project_path is None:
            return path
        try:
            return os.path.relpath(path, Path(project_path).parent)
        except ValueError:  # another drive
            return path

    @Slot()
    def _browse(self) -> None:
        kind = self.kind.currentData()
        if kind == "idx" or (kind in self.folder_forms and kind != "image_csv"):
            title = "Folder with the MNIST IDX files" if kind == "idx" else f"Open {KINDS[kind]}"
            path = QFileDialog.getExistingDirectory(self, title)
        else:
            path, _ = QFileDialog.getOpenFileName(
                self, f"Open {KINDS[kind]}", "", FILE_FILTERS.get(kind, "")
            )
        if path:
            self.path.setText(self._relative(path))
            self._write_source()

    @Slot()
    def _browse_test(self) -> None:
        kind = self.kind.currentData()
        path, _ = QFileDialog.getOpenFileName(self, "Open the test file", "", FILE_FILTERS[kind])
        if path:
            self.test_path.setText(self._relative(path))
            self._write_source()


def _with_button(edit: QLineEdit, slot) -> QWidget:
    host = QWidget()
    row = QHBoxLayout(host)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.setToolTip("Choose the file")
    button.clicked.connect(slot)
    row.addWidget(button)
    return host


def _boxed(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    QVBoxLayout(box).addWidget(widget)
    return box


def _shape_text(shape: tuple) -> str:
    dims = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"

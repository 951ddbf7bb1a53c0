"""A folder of the user's own files as the data source, in the Data panel.

:data:`FOLDER_SPECS` are the options of each folder kind (Keras's names:
``image_dataset_from_directory``, ``text_dataset_from_directory``,
``audio_dataset_from_directory``, and a CSV naming image files), for a
:class:`~nodenet.ui.training.forms.ParamForm`. :class:`FolderPreview` shows what
:func:`nodenet.engine.describe_folder` found: sample thumbnails (a text's first line,
an audio file's waveform) with their class, the files per class and split, the files
that could not be read and why, and the shapes the graph needs, with a button that
sets them on the Input, the Output and the Dense before it (one undo step).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nodenet.engine import FOLDER_KINDS, FOLDER_OPTIONS
from nodenet.engine.params import Bool, Choice, Int, Param, ShapeParam, Text
from nodenet.errors import NodenetError
from nodenet.ui.training.data_preview import THUMB_SIZE, signal_pixmap, to_pixmap

KIND_TEXT = {
    "image_directory": "Image folder (a sub-folder per class)",
    "text_directory": "Text folder (a sub-folder per class)",
    "audio_directory": "Audio folder (wav, a sub-folder per class)",
    "image_csv": "CSV naming image files",
}
PLACEHOLDER = {
    "image_directory": "a folder with one sub-folder of images per class",
    "text_directory": "a folder with one sub-folder of .txt files per class",
    "audio_directory": "a folder with one sub-folder of .wav files per class",
    "image_csv": "a CSV file with a column of image paths and a label column",
}
SHOWN_SKIPPED = 5  # unreadable files named in the preview
TEXT_CHARS = 90  # of a text sample's first line

_IMAGE = (
    ShapeParam("image_size", [256, 256], "height and width the images are resized to"),
    Choice("color_mode", "rgb", "channels: grayscale 1, rgb 3, rgba 4",
           choices=("grayscale", "rgb", "rgba")),
    Choice("interpolation", "bilinear", "how the images are resized",
           choices=("bilinear", "nearest")),
    Bool("crop_to_aspect_ratio", False, "crop the centre to the target's aspect ratio "
         "before resizing, instead of stretching"),
    Bool("cache", False, "keep the decoded images on disk after the first epoch "
         "(faster later epochs)"),
)  # fmt: skip
_LABELS = (
    Choice("label_mode", "int", "labels as class indices, one-hot vectors, or 0/1 (two "
           "classes)", choices=("int", "categorical", "binary")),
)  # fmt: skip
FOLDER_SPECS: dict[str, tuple[Param, ...]] = {
    "image_directory": (*_IMAGE, *_LABELS),
    "text_directory": (
        Int("max_length", None, "characters kept of each text (all when empty)", min=1,
            optional=True),
        Int("max_tokens", None, "vocabulary size (all words when empty)", min=1,
            optional=True),
        Int("output_sequence_length", None, "tokens per text, padded or cut (the "
            "longest text when empty)", min=1, optional=True),
        *_LABELS,
    ),
    "audio_directory": (
        Int("sampling_rate", None, "the rate every file must have (any when empty)", min=1,
            optional=True),
        Int("output_sequence_length", None, "samples per file, padded or cut (the "
            "longest file when empty)", min=1, optional=True),
        Bool("cache", False, "keep the decoded audio on disk after the first epoch"),
        *_LABELS,
    ),
    "image_csv": (
        Text("image_column", "image", "the column holding the image paths"),
        Text("target", "label", "the label column"),
        Text("delimiter", ",", "the character between values"),
        *_IMAGE,
        *_LABELS,
    ),
}  # fmt: skip
assert set(FOLDER_SPECS) == set(FOLDER_KINDS)


def folder_source(kind: str, path: str, values: dict[str, Any]) -> dict[str, Any]:
    """The data section's source: ``kind``, ``path`` and the options not at their default."""
    defaults = FOLDER_OPTIONS[kind]
    source: dict[str, Any] = {"kind": kind, "path": path}
    for spec in FOLDER_SPECS[kind]:
        value = values.get(spec.name, spec.default)
        if value != defaults.get(spec.name, spec.default):
            source[spec.name] = value
    return source


class FolderPreview(QWidget):
    """What a folder holds (see the module's text); ``applyRequested`` when the user asks
    for the suggested Input and Output."""

    applyRequested = Signal(object)  # the FolderSummary's dict

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.summary: dict[str, Any] | None = None
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.samples = QWidget()
        self._grid = QGridLayout(self.samples)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(8)
        self._grid.setVerticalSpacing(1)
        self.counts = QTableWidget()
        self.counts.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.counts.verticalHeader().setDefaultSectionSize(20)
        self.counts.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.counts.setMaximumHeight(170)
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #8a4b00;")
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.suggestion = QLabel()
        self.suggestion.setWordWrap(True)
        self.apply_button = QPushButton("Use for the graph")
        self.apply_button.setToolTip(
            "Set the Input's shape, the Output's loss and the units and activation of the "
            "Dense before it from this folder (one undo step)"
        )
        self.apply_button.clicked.connect(lambda: self.applyRequested.emit(self.summary))
        row = QHBoxLayout()
        row.addWidget(self.suggestion, 1)
        row.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.header, self.samples, self.counts, self.problems):
            layout.addWidget(widget)
        layout.addLayout(row)

    def show_summary(self, summary: dict[str, Any]) -> None:
        self.summary = summary
        counts = summary["counts"]
        totals = {split: sum(c.values()) for split, c in counts.items()}
        splits = " · ".join(f"{split} {n:,}" for split, n in totals.items() if n)
        self.header.setText(
            f"<b>{summary['files']:,} files</b> in {len(summary['class_names'])} classes "
            f"({summary['path']}) · {splits}"
        )
        self._show_samples(summary)
        self._show_counts(summary)
        self._show_problems(summary)
        shape = ", ".join(str(d) for d in summary["input_shape"])
        self.suggestion.setText(
            f"The graph needs: Input shape ({shape}) {summary['input_dtype']}; Output "
            f"{summary['output_units']} units, {summary['output_activation']}, "
            f"{summary['loss']}"
        )

    def _show_samples(self, summary: dict[str, Any]) -> None:
        while self._grid.count():
            self._grid.takeAt(0).widget().deleteLater()
        columns = max(1, min(12, len(summary["samples"])))
        for i, sample in enumerate(summary["samples"][:24]):
            row, col = divmod(i, columns)
            face = _sample_widget(summary["kind"], sample["preview"])
            face.setToolTip(f"{sample['file']} ({sample['split']})")
            caption = QLabel(str(sample["class"]))
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self._grid.addWidget(face, 2 * row, col)
            self._grid.addWidget(caption, 2 * row + 1, col)
        self._grid.setColumnStretch(columns, 1)

    def _show_counts(self, summary: dict[str, Any]) -> None:
        counts, names = summary["counts"], summary["class_names"]
        splits = [s for s in counts if any(counts[s].values())] or list(counts)
        self.counts.clear()
        self.counts.setRowCount(len(names))
        self.counts.setColumnCount(len(splits))
        self.counts.setHorizontalHeaderLabels(splits)
        self.counts.setVerticalHeaderLabels([str(n) for n in names])
        for r, name in enumerate(names):
            for c, split in enumerate(splits):
                item = QTableWidgetItem(f"{counts[split].get(name, 0):,}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.counts.setItem(r, c, item)

    def _show_problems(self, summary: dict[str, Any]) -> None:
        lines = list(summary.get("notes") or [])
        skipped = summary.get("skipped") or {}
        files = skipped.get("files") or []
        if skipped.get("count"):
            named = "; ".join(f"{f['file']}: {f['reason']}" for f in files[:SHOWN_SKIPPED])
            lines.append(f"{skipped['count']:,} file(s) could not be read and are skipped: {named}")
        self.problems.setText("\n".join(lines))
        self.problems.setVisible(bool(lines))


def _sample_widget(kind: str, preview: Any) -> QLabel:
    face = QLabel()
    if preview is None:
        face.setText("unreadable")
        face.setStyleSheet("color: #8a4b00;")
    elif kind == "text_directory":
        first = str(preview).strip().splitlines()[0] if str(preview).strip() else ""
        face.setText(first[:TEXT_CHARS] + ("…" if len(first) > TEXT_CHARS else ""))
        face.setWordWrap(True)
        face.setMaximumWidth(180)
    elif kind == "audio_directory":
        wave = np.asarray(preview, dtype=np.float64)
        face.setPixmap(signal_pixmap(wave[:, 0] if wave.ndim == 2 else wave))
    else:
        image = np.asarray(preview, dtype=np.float64)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        elif image.ndim == 3 and image.shape[-1] == 4:
            image = image[..., :3]
        face.setPixmap(to_pixmap(image, THUMB_SIZE))
    return face


def apply_summary(document, summary: dict[str, Any]) -> str:
    """Set the folder's shapes on the graph as one undo step: the only Input's shape and
    dtype, the only Output's loss, and the units and activation of the Dense feeding it.
    Returns what was done; :class:`NodenetError` when the graph has not one Input and one
    Output."""
    project = document.project
    inputs, outputs = project.inputs(), project.outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise NodenetError(
            "a folder feeds one Input and one Output: the graph has "
            f"{len(inputs)} Input(s) and {len(outputs)} Output(s)"
        )
    stack = document.undo_stack
    stack.beginMacro("Use the folder's shapes")
    done = []
    try:
        node = inputs[0]
        shape = list(summary["input_shape"])
        params = {**node.params, "shape": shape, "dtype": summary["input_dtype"]}
        document.set_params(node.id, params)
        done.append(f"{node.id} shape {tuple(shape)}")
        out = outputs[0]
        document.set_params(out.id, {**out.params, "loss": summary["loss"]})
        done.append(f"{out.id} loss {summary['loss']}")
        feeding = [e.src for e in project.edges if e.dst == out.id]
        if len(feeding) == 1 and project.node(feeding[0]).type == "Dense":
            dense = project.node(feeding[0])
            units, activation = summary["output_units"], summary["output_activation"]
            document.set_params(
                dense.id, {**dense.params, "units": units, "activation": activation}
            )
            done.append(f"{dense.id} {units} units, {activation}")
    finally:
        stack.endMacro()
    return "Set " + "; ".join(done)

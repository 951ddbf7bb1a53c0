"""A browser over every test sample of a finished run: filter to the mistakes or to one class,
sort by confidence (or error), a thumbnail, text or values for each sample's input.

The rows come from the per-sample ``table`` of a head report
(:mod:`nodenet.reports_metrics`: a few arrays, one entry per sample); filtering and
sorting are numpy operations on them, and the table is a Qt model that draws a row only
when it is seen (thumbnails made on demand and cached), so ten thousand samples cost
no more than a screenful.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from nodenet.reports import unnormalized
from nodenet.ui.training.data_preview import signal_pixmap, to_pixmap

RIGHT_ROW = QColor("#e8f5e9")
WRONG_ROW = QColor("#ffebee")
THUMB = 36
CACHED = 512  # thumbnails kept
TEXT_CHARS = 80
ALL, MISTAKES = "all samples", "mistakes only"
ORDER = "test order"
LOW_FIRST, HIGH_FIRST = "confidence: lowest first", "confidence: highest first"
WORST_FIRST, BEST_FIRST = "error: largest first", "error: smallest first"
Index = QModelIndex | QPersistentModelIndex


class SampleTable(QAbstractTableModel):
    """The shown test samples (``rows``: their indices) of one head as table rows."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table: dict[str, np.ndarray] = {}
        self.task = "classification"
        self.classes: list[str] = []
        self.rows = np.zeros(0, dtype=np.int64)
        self.inputs: np.ndarray | None = None
        self.stats: dict | None = None
        self.shape: tuple | None = None
        self._thumbs: OrderedDict[int, Any] = OrderedDict()

    def reset(self, report: dict, inputs: Any, stats: dict | None, shape: tuple | None) -> None:
        """Show the samples of ``report``'s table, reading each input from ``inputs``."""
        self.beginResetModel()
        self.table, self.task = report.get("table") or {}, report["task"]
        self.classes = list(report.get("classes") or [])
        self.inputs, self.stats, self.shape = inputs, stats, shape
        self.rows = np.arange(len(next(iter(self.table.values()), [])))
        self._thumbs.clear()
        self.endResetModel()

    def show_rows(self, rows: np.ndarray) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def headers(self) -> list[str]:
        last = "confidence" if self.task == "classification" else "error"
        return ["input", "#", "true", "predicted", last]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 5

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.headers()[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        sample, column = int(self.rows[index.row()]), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(sample, column)
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return self._thumbnail(sample)
        if role == Qt.ItemDataRole.BackgroundRole and "correct" in self.table:
            return QBrush(RIGHT_ROW if self.table["correct"][sample] else WRONG_ROW)
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, sample: int, column: int) -> str | None:
        table = self.table
        if column == 0:
            return self._input_text(sample)
        if column == 1:
            return str(sample)
        if self.task == "classification":
            if column in (2, 3):
                label = int(table["true" if column == 2 else "pred"][sample])
                return self.classes[label] if label < len(self.classes) else str(label)
            return f"{table['confidence'][sample]:.3f}"
        key = ("true", "pred", "error")[column - 2]
        return f"{table[key][sample]:.4g}"

    def sample_input(self, sample: int) -> np.ndarray:
        """One sample's input as shown: the Input's normalization undone."""
        x = np.asarray(self.inputs[sample : sample + 1])
        if len(x) == 0:  # a streamed file that could not be read
            return np.zeros(0)
        return unnormalized(x, self.stats)[0] if x.dtype.kind == "f" else x[0]

    def _input_text(self, sample: int) -> str | None:
        if self.inputs is None or self._picture(sample) is not None:
            return None
        x = self.sample_input(sample)
        if x.size == 0:
            return "(unreadable)"
        if x.dtype.kind in "US":  # text
            text = " ".join(str(v) for v in np.ravel(x))
            return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
        values = np.ravel(x)
        shown = ", ".join(f"{v:.3g}" if x.dtype.kind == "f" else str(v) for v in values[:6])
        return shown + (" …" if values.size > 6 else "")

    def _picture(self, sample: int) -> bool | None:
        """Whether the input is drawn (an image or a short signal), else None."""
        if self.inputs is None:
            return None
        if self.shape is not None:
            return True
        dims = np.shape(self.inputs)[1:]
        if len(dims) == 2 and dims[1] <= 3 and np.asarray(self.inputs[:1]).dtype.kind == "f":
            return True
        return None

    def _thumbnail(self, sample: int):
        if self._picture(sample) is None:
            return None
        if sample in self._thumbs:
            self._thumbs.move_to_end(sample)
            return self._thumbs[sample]
        x = self.sample_input(sample)
        if x.size == 0:  # a file that could not be read
            return None
        pixmap = to_pixmap(x.reshape(self.shape), THUMB) if self.shape else signal_pixmap(x[:, 0])
        self._thumbs[sample] = pixmap
        if len(self._thumbs) > CACHED:
            self._thumbs.popitem(last=False)
        return pixmap


class SampleBrowser(QWidget):
    """Every test sample of one head: a filter, an order, and the table."""

    sampleChosen = Signal(int)  # the index of the test sample clicked

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = SampleTable(self)
        self.filter = QComboBox()
        self.filter.setToolTip("Which test samples to list")
        self.order = QComboBox()
        self.order.setToolTip("How to order them")
        self.count = QLabel("")
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(THUMB + 4)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.view.setColumnWidth(0, 110)
        self.view.selectionModel().currentRowChanged.connect(self._chosen)
        self.filter.currentIndexChanged.connect(self._refresh)
        self.order.currentIndexChanged.connect(self._refresh)
        row = QHBoxLayout()
        row.addWidget(QLabel("Show"))
        row.addWidget(self.filter, 1)
        row.addWidget(QLabel("order"))
        row.addWidget(self.order, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.count)
        layout.addWidget(self.view, 1)

    def show_head(self, report: dict, inputs: Any, stats: dict | None, shape: tuple | None) -> None:
        """List every test sample of a head report (with its ``table``)."""
        for combo in (self.filter, self.order):
            combo.blockSignals(True)
            combo.clear()
        self.model.reset(report, inputs, stats, shape)
        if report["task"] == "classification":
            self.filter.addItems([ALL, MISTAKES, *(f"class {c}" for c in report["classes"])])
            self.order.addItems([ORDER, LOW_FIRST, HIGH_FIRST])
        else:
            self.filter.addItem(ALL)
            self.order.addItems([ORDER, WORST_FIRST, BEST_FIRST])
        for combo in (self.filter, self.order):
            combo.blockSignals(False)
        self._refresh()

    def clear(self) -> None:
        self.show_head({"task": "other", "table": {}}, None, None, None)
        self.count.setText("")

    def shown(self) -> np.ndarray:
        """The indices of the listed samples, in the listed order."""
        return self.model.rows

    def _refresh(self) -> None:
        table = self.model.table
        if not table:
            self.model.show_rows(np.zeros(0, dtype=np.int64))
            return
        n = len(next(iter(table.values())))
        choice = self.filter.currentIndex()
        if choice <= 0:
            rows = np.arange(n)
        elif choice == 1:
            rows = np.flatnonzero(~table["correct"])
        else:
            rows = np.flatnonzero(table["true"] == choice - 2)
        key = table.get("confidence", table.get("error"))
        order = self.order.currentText()
        if order in (LOW_FIRST, BEST_FIRST):
            rows = rows[np.argsort(key[rows], kind="stable")]
        elif order in (HIGH_FIRST, WORST_FIRST):
            rows = rows[np.argsort(-key[rows], kind="stable")]
        self.model.show_rows(rows)
        self.count.setText(f"{len(rows):,} of {n:,} test samples")

    def _chosen(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and current.row() < len(self.model.rows):
            self.sampleChosen.emit(int(self.model.rows[current.row()]))

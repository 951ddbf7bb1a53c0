"""The bottom docks: the Keras-style model summary and the list of problems.

Both follow ``document.analysis`` (fresh after every edit). Clicking a row of
either emits ``nodeActivated(node_id)``; the window selects that block.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nodenet.errors import ValidationError
from nodenet.project import shape_text
from nodenet.summary import summarize
from nodenet.ui.document import Document

NODE_ROLE = Qt.ItemDataRole.UserRole
BYTES_PER_PARAM = 4  # float32
COLUMNS = ("Layer (type)", "Output Shape", "Param #", "Connected to")


def format_bytes(count: int) -> str:
    """Bytes as Keras prints them in a summary: ``295.04 KB``."""
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def summary_rows(document: Document) -> list[tuple[str, str, str, str, str]]:
    """(node id, "id (Type)", output shape, parameter count, sources) in topological order.

    Works on invalid graphs too: an unknown shape is ``?``, an unknown count ``?``.
    """
    project, analysis = document.project, document.analysis
    order = list(analysis.order) + [n.id for n in project.nodes if n.id not in analysis.order]
    types = {n.id: n.type for n in project.nodes}
    rows = []
    for node_id in order:
        counts = analysis.params.get(node_id)
        params = "?" if counts is None else f"{sum(counts):,}"
        sources = ", ".join(e.src for e in project.incoming(node_id)) or "-"
        shape = shape_text(analysis.shapes.get(node_id))
        rows.append((node_id, f"{node_id} ({types[node_id]})", shape, params, sources))
    return rows


def totals(document: Document) -> tuple[int, int]:
    """(trainable, non-trainable) parameters over the blocks whose count is known."""
    counts = document.analysis.params.values()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


class SummaryView(QWidget):
    """A row per block (layer, output shape, parameters, inputs) and the totals."""

    nodeActivated = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for column in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.totals = QLabel(self)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_button = QPushButton("Copy as text", self)
        self.copy_button.setToolTip("copy the summary as Keras prints it (valid graphs only)")
        self.copy_button.clicked.connect(self.copy_text)
        bottom = QHBoxLayout()
        bottom.addWidget(self.totals, 1)
        bottom.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table)
        layout.addLayout(bottom)
        self.table.cellClicked.connect(self._clicked)
        document.analysisChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        rows = summary_rows(self.document)
        mono = QFont("DejaVu Sans Mono")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.table.setRowCount(len(rows))
        for r, (node_id, *cells) in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(NODE_ROLE, node_id)
                if c in (1, 2):
                    item.setFont(mono)
                if c == 2:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(r, c, item)
        trainable, frozen = totals(self.document)
        total = trainable + frozen
        self.totals.setText(
            f"<b>Total params: {total:,}</b> ({format_bytes(total * BYTES_PER_PARAM)})"
            f" &nbsp;·&nbsp; Trainable: {trainable:,}"
            f" &nbsp;·&nbsp; Non-trainable: {frozen:,}"
            + ("" if self.document.analysis.ok else " &nbsp;·&nbsp; <i>graph incomplete</i>")
        )
        self.copy_button.setEnabled(self.document.analysis.ok)

    def text(self) -> str | None:
        """The Keras-style text summary, or ``None`` while the graph has problems."""
        try:
            return summarize(self.document.project).to_text()
        except ValidationError:
            return None

    def copy_text(self) -> None:
        text = self.text()
        if text is not None:
            QGuiApplication.clipboard().setText(text)

    def _clicked(self, row: int, column: int) -> None:
        item = self.table.item(row, column)
        if item is not None:
            self.nodeActivated.emit(item.data(NODE_ROLE))


class ProblemsView(QListWidget):
    """Every problem of the graph; ``countChanged(n)`` after each analysis."""

    nodeActivated = Signal(str)
    countChanged = Signal(int)

    def __init__(self, document: Document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.itemClicked.connect(self._activate)
        self.itemActivated.connect(self._activate)
        document.analysisChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.clear()
        problems = self.document.analysis.problems
        warning = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        for problem in problems:
            item = QListWidgetItem(warning, str(problem), self)
            item.setData(NODE_ROLE, problem.node)
            item.setToolTip(
                f"click to select {problem.node}" if problem.node else (problem.field or "")
            )
        if not problems:
            ok = QListWidgetItem("No problems: the graph is complete and every shape fits.", self)
            ok.setFlags(Qt.ItemFlag.NoItemFlags)
        self.countChanged.emit(len(problems))

    def problem_count(self) -> int:
        return len(self.document.analysis.problems)

    def _activate(self, item: QListWidgetItem) -> None:
        node_id = item.data(NODE_ROLE)
        if node_id and self.document.project.has_node(node_id):
            self.nodeActivated.emit(node_id)

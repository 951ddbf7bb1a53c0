"""The bottom docks: the Keras-style model summary and the list of problems.

Both follow ``document.analysis`` (fresh after every edit). Clicking a row of
either emits ``nodeActivated(node_id)``; the window selects that block. They are
Qt model/views over plain Python rows: an edit signals only the rows it changed,
and a hidden view (another dock tab in front) catches up when it is shown, so
an edit costs the same at 10 blocks and at 5,000.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont, QGuiApplication, QIcon, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QPushButton,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from nodenet.errors import ValidationError
from nodenet.graph.project import shape_text
from nodenet.graph.summary import summarize
from nodenet.ui.document import Document

NODE_ROLE = Qt.ItemDataRole.UserRole
BYTES_PER_PARAM = 4  # float32
COLUMNS = ("Layer (type)", "Output Shape", "Param #", "Connected to")
CELL_CHARS = 160  # a longer "Connected to" cell is elided; its tooltip holds more
TIP_CHARS = 2000
ROW_SAMPLE = 0  # the header sizes a column to the rows in view only (not all 5,000)
MAX_RUNS = 16  # more separate runs of changed rows than this are signalled as one span
Index = QModelIndex | QPersistentModelIndex


def format_bytes(count: int) -> str:
    """Bytes as Keras prints them in a summary: ``295.04 KB``."""
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


Row = tuple[str, str, str, str, str]


def summary_rows(
    document: Document, cache: dict[str, tuple[tuple, Row]] | None = None
) -> list[Row]:
    """(node id, "id (Type)", output shape, parameter count, sources) in topological order.

    Works on invalid graphs too: an unknown shape is ``?``, an unknown count ``?``.
    One pass over the nodes and one over the edges (no per-node edge scans); with a
    ``cache`` (kept between calls) only the rows whose content changed are formatted.
    """
    project, analysis = document.project, document.analysis
    ordered = set(analysis.order)
    order = list(analysis.order) + [n.id for n in project.nodes if n.id not in ordered]
    types = {n.id: n.type for n in project.nodes}
    sources: dict[str, list[str]] = defaultdict(list)
    for edge in project.edges:  # another output than 0 is named: ``lstm[1]``
        sources[edge.dst].append(f"{edge.src}[{edge.src_port}]" if edge.src_port else edge.src)
    cache = {} if cache is None else cache
    shapes, counts_of, none = analysis.shapes, analysis.params, ()
    rows = []
    for node_id in order:
        shape, counts = shapes.get(node_id), counts_of.get(node_id)
        every = analysis.output_shapes.get(node_id)  # a block with several outputs: each
        srcs = tuple(sources.get(node_id, none))
        key = (types[node_id], every or shape, counts, srcs)
        hit = cache.get(node_id)
        if hit is not None and hit[0] == key:
            rows.append(hit[1])
            continue
        params = "?" if counts is None else f"{sum(counts):,}"
        shown = shape_text(shape) if not every else f"[{', '.join(map(shape_text, every))}]"
        row = (node_id, f"{node_id} ({key[0]})", shown, params, ", ".join(srcs) or "-")
        cache[node_id] = (key, row)
        rows.append(row)
    if len(cache) > 2 * len(rows) + 64:  # forget removed and renamed nodes now and then
        for node_id in set(cache) - set(types):
            del cache[node_id]
    return rows


def elide(text: str, limit: int = CELL_CHARS) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (a cell never lays out megabytes)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def totals(document: Document) -> tuple[int, int]:
    """(trainable, non-trainable) parameters over the blocks whose count is known."""
    counts = document.analysis.params.values()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


class SummaryModel(QAbstractTableModel):
    """The summary rows as plain tuples; :meth:`set_rows` signals only the rows that changed."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: list[Row] = []
        mono = QFont("DejaVu Sans Mono")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self._mono = mono

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        row, column = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return elide(row[column + 1])
        if role == NODE_ROLE:
            return row[0]
        if role == Qt.ItemDataRole.ToolTipRole and column == 3 and len(row[4]) > CELL_CHARS:
            return elide(row[4], TIP_CHARS)
        if role == Qt.ItemDataRole.FontRole and column in (1, 2):
            return self._mono
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def set_rows(self, rows: list[Row]) -> None:
        """Make the model hold ``rows``: the run of rows that differ is removed and inserted
        (ids changed) or reported changed (same ids); untouched rows are not signalled."""
        old = self.rows
        same = min(len(old), len(rows))
        head = next((i for i in range(same) if old[i][0] != rows[i][0]), same)
        tail = 0
        while tail < same - head and old[-1 - tail][0] == rows[-1 - tail][0]:
            tail += 1
        gone, new = len(old) - head - tail, len(rows) - head - tail
        if gone:
            self.beginRemoveRows(QModelIndex(), head, head + gone - 1)
            del self.rows[head : head + gone]
            self.endRemoveRows()
        if new:
            self.beginInsertRows(QModelIndex(), head, head + new - 1)
            self.rows[head:head] = rows[head : head + new]
            self.endInsertRows()
        changed = [i for i, (a, b) in enumerate(zip(self.rows, rows, strict=True)) if a is not b]
        changed = [i for i in changed if self.rows[i] != rows[i]]
        self.rows = list(rows)
        runs = _runs(changed)
        if len(runs) > MAX_RUNS:  # changes all over: one signal over their span
            runs = [(changed[0], changed[-1])]
        last = len(COLUMNS) - 1
        for first, end in runs:
            self.dataChanged.emit(self.index(first, 0), self.index(end, last))


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row numbers as (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row - 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs


class _Deferred:
    """A view that skips its refresh while hidden and catches up when shown.

    Hidden means not visible, or behind another tab of its dock: the window wires the
    dock's ``visibilityChanged`` to :meth:`set_shown` (a tabbed-away dock stays "visible").
    """

    _stale = False
    _shown = True

    def follow(self) -> None:
        if self._shown and self.isVisible():  # type: ignore[attr-defined]
            self._stale = False
            self.refresh_rows()
        else:
            self._stale = True

    def set_shown(self, shown: bool) -> None:
        self._shown = shown
        if shown:
            self.catch_up()

    def catch_up(self) -> None:
        if self._stale:
            self._stale = False
            self.refresh_rows()

    def refresh_rows(self) -> None:
        raise NotImplementedError


class SummaryView(_Deferred, QWidget):
    """A row per block (layer, output shape, parameters, inputs) and the totals.

    The table is a :class:`QTableView` over :class:`SummaryModel`; while the view is
    hidden (another dock tab in front) only the totals follow the edits.
    """

    nodeActivated = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.model = SummaryModel(self)
        self._row_cache: dict[str, tuple[tuple, Row]] = {}
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setResizeContentsPrecision(ROW_SAMPLE)
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
        self.table.clicked.connect(self._clicked)
        document.analysisChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """The totals now; the rows now if shown, else when next shown."""
        trainable, frozen = totals(self.document)
        total = trainable + frozen
        self.totals.setText(
            f"<b>Total params: {total:,}</b> ({format_bytes(total * BYTES_PER_PARAM)})"
            f" &nbsp;·&nbsp; Trainable: {trainable:,}"
            f" &nbsp;·&nbsp; Non-trainable: {frozen:,}"
            + ("" if self.document.analysis.ok else " &nbsp;·&nbsp; <i>graph incomplete</i>")
        )
        self.copy_button.setEnabled(self.document.analysis.ok)
        self.follow()

    def refresh_rows(self) -> None:
        self.model.set_rows(summary_rows(self.document, self._row_cache))

    def showEvent(self, event: QShowEvent) -> None:
        self.catch_up()
        super().showEvent(event)

    def cell(self, row: int, column: int) -> str:
        """The text shown in a cell (rows as of the last refresh)."""
        return self.model.index(row, column).data()

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

    def _clicked(self, index: QModelIndex) -> None:
        node_id = index.data(NODE_ROLE)
        if node_id:
            self.nodeActivated.emit(node_id)


class ProblemsModel(QAbstractListModel):
    """The problems of the last analysis (or one "no problems" row), reset only on change."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: list[tuple[str, str | None, str]] = []  # (text, node, tooltip)
        self._icon: QIcon | None = None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        text, node, tip = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return text
        if role == NODE_ROLE:
            return node
        if role == Qt.ItemDataRole.ToolTipRole:
            return tip or None
        if role == Qt.ItemDataRole.DecorationRole and tip:
            return self._icon
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if index.isValid() and index.row() < len(self.rows) and self.rows[index.row()][2]:
            return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return Qt.ItemFlag.NoItemFlags

    def set_rows(self, rows: list[tuple[str, str | None, str]], icon: QIcon) -> None:
        self._icon = icon
        if rows != self.rows:
            self.beginResetModel()
            self.rows = rows
            self.endResetModel()


class ProblemsView(_Deferred, QListView):
    """Every problem of the graph; ``countChanged(n)`` after each analysis (shown or not)."""

    nodeActivated = Signal(str)
    countChanged = Signal(int)

    def __init__(self, document: Document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.model_ = ProblemsModel(self)
        self.setModel(self.model_)
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setAlternatingRowColors(True)
        self.clicked.connect(self._activate)
        self.activated.connect(self._activate)
        document.analysisChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.follow()
        self.countChanged.emit(len(self.document.analysis.problems))

    def refresh_rows(self) -> None:
        problems = self.document.analysis.problems
        rows = [
            (
                elide(str(p), TIP_CHARS),
                p.node,
                f"click to select {p.node}" if p.node else (p.field or "problem"),
            )
            for p in problems
        ]
        if not rows:
            rows = [("No problems: the graph is complete and every shape fits.", None, "")]
        warning = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        self.model_.set_rows(rows, warning)

    def showEvent(self, event: QShowEvent) -> None:
        self.catch_up()
        super().showEvent(event)

    def count(self) -> int:
        """Rows shown (the problems, or the one "no problems" row)."""
        return self.model_.rowCount()

    def row_text(self, row: int) -> str:
        return self.model_.index(row, 0).data()

    def row_rect(self, row: int):
        """Where a row is drawn, in viewport coordinates (for clicks in tests)."""
        return self.visualRect(self.model_.index(row, 0))

    def problem_count(self) -> int:
        return len(self.document.analysis.problems)

    def _activate(self, index: QModelIndex) -> None:
        node_id = index.data(NODE_ROLE)
        if node_id and self.document.project.has_node(node_id):
            self.nodeActivated.emit(node_id)

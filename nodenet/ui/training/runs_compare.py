"""Side-by-side settings of recorded runs, the values that differ highlighted.

A run's settings are what its project snapshot (``runs.project`` in the runs database)
says: every training and data setting and every block's parameters, flattened to dotted
keys (``training.optimizer.learning_rate``, ``nodes.hidden.units``) so that any two runs
line up row by row, whatever their graphs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

DIFFERENT = "#fff0b3"  # the background of a setting whose value differs between the runs
MISSING = "—"


def flat_settings(project: Mapping[str, Any] | None) -> dict[str, Any]:
    """A project snapshot's training and data settings and block parameters by dotted key
    (lists and other leaves stay whole values)."""
    project = project or {}
    out: dict[str, Any] = {}
    for section in ("training", "data"):
        _flatten(project.get(section) or {}, section, out)
    for node in project.get("nodes") or []:
        if not isinstance(node, Mapping):
            continue
        prefix = f"nodes.{node.get('id')}"
        out[f"{prefix}.type"] = node.get("type")
        _flatten(node.get("params") or {}, prefix, out)
        if node.get("trainable") is False:
            out[f"{prefix}.trainable"] = False
    return out


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}", out)
    else:
        out[prefix] = value


def compare_rows(settings: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Any], bool]]:
    """``(key, values per run, differ)`` for every key any run has, in first-seen order
    (a run without the key has :data:`MISSING`)."""
    keys: dict[str, None] = {}
    for flat in settings:
        keys.update(dict.fromkeys(flat))
    rows = []
    for key in keys:
        values = [flat.get(key, MISSING) for flat in settings]
        texts = {_text(v) for v in values}
        rows.append((key, values, len(texts) > 1))
    return rows


def _text(value: Any) -> str:
    if value is MISSING:
        return MISSING
    if isinstance(value, str):
        return value
    return json.dumps(value)


class CompareTable(QTableWidget):
    """One row per setting, one column per compared run; differing rows highlighted and
    listed first."""

    def __init__(self, parent=None):
        super().__init__(0, 1, parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(False)
        self.verticalHeader().hide()
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setStretchLastSection(True)
        self.setHorizontalHeaderLabels(["setting"])
        self.setToolTip("Settings of the compared runs; the values that differ are highlighted")
        self.differing: list[str] = []  # the keys highlighted, in order

    def show_runs(self, titles: Sequence[str], projects: Sequence[Mapping[str, Any] | None]):
        rows = compare_rows([flat_settings(p) for p in projects])
        rows.sort(key=lambda row: not row[2])  # differences first, each group in its order
        self.differing = [key for key, _, differ in rows if differ]
        self.clear()
        self.setColumnCount(1 + len(titles))
        self.setHorizontalHeaderLabels(["setting", *titles])
        self.setRowCount(len(rows))
        bold = QFont(self.font())
        bold.setBold(True)
        for r, (key, values, differ) in enumerate(rows):
            cells = [QTableWidgetItem(key)] + [QTableWidgetItem(_text(v)) for v in values]
            for c, cell in enumerate(cells):
                if differ:
                    cell.setBackground(QBrush(QColor(DIFFERENT)))
                    cell.setFont(bold)
                self.setItem(r, c, cell)
        self.resizeColumnToContents(0)

    def row_of(self, key: str) -> int | None:
        for row in range(self.rowCount()):
            if self.item(row, 0).text() == key:
                return row
        return None

    def highlighted(self, key: str) -> bool:
        """Whether the row of ``key`` is shown as differing."""
        row = self.row_of(key)
        return row is not None and self.item(row, 0).background().color() == QColor(DIFFERENT)

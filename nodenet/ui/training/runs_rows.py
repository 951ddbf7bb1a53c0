"""How a recorded run reads in the Runs table: its cells (sorted by value, not by text),
which validation and test metric the table shows, durations as text."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from PySide6.QtWidgets import QTableWidgetItem

from nodenet.runs_query import number


class SortCell(QTableWidgetItem):
    """A table cell sorted by ``key`` (numbers as numbers; cells without one last)."""

    def __init__(self, text: str, key: Any):
        super().__init__(text)
        self.key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.key, getattr(other, "key", None)
        if mine is None or theirs is None:
            return mine is not None and theirs is None  # ascending: missing values last
        return mine < theirs


def display_name(run: dict[str, Any]) -> str:
    return run.get("name") or f"Run {run['id']}"


def row_cells(run: dict[str, Any], val_key: str, test_key: str) -> list[SortCell]:
    """A run's row: id, name, status, when, duration, backend, then the two metrics."""
    started, duration = run.get("started"), number(run.get("duration"))
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else ""
    val = number((run.get("final_metrics") or {}).get(val_key))
    test = number((run.get("test_metrics") or {}).get(test_key.removeprefix("test_")))
    name = SortCell(run.get("name") or "", (run.get("name") or "").lower())
    name.setToolTip(run.get("note") or "")
    status = SortCell(run["status"], run["status"])
    if run.get("message"):
        status.setToolTip(run["message"])
    return [
        SortCell(str(run["id"]), run["id"]),
        name,
        status,
        SortCell(when, started),
        SortCell(duration_text(duration), duration),
        SortCell(run.get("backend") or "", run.get("backend") or ""),
        SortCell("" if val is None else f"{val:.4g}", val),
        SortCell("" if test is None else f"{test:.4g}", test),
    ]


def metric_keys(runs: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """The validation metric the table shows (the most common ``val_*`` besides
    ``val_loss``, else ``val_loss``) and the matching test metric."""
    counts: Counter[str] = Counter()
    for run in runs:
        counts.update(k for k in run.get("final_metrics") or {} if k.startswith("val_"))
    counts.pop("val_loss", None)
    val = counts.most_common(1)[0][0] if counts else "val_loss"
    base = val.removeprefix("val_")
    tests = {k for run in runs for k in run.get("test_metrics") or {}}
    return val, f"test_{base}" if base in tests or not tests else "test_loss"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

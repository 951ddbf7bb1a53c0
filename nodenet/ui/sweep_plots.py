"""The sweep dialog's plots: parallel coordinates of the trials and parameter importances.

Both take the plain data of :func:`nodenet.sweep_report.summarize`.
:func:`parallel_coordinates` draws one polyline per finished trial across one axis per
swept parameter (normalized to its range of the trials; log axes for log ranges) and a
last axis for the objective; the better a trial, the warmer its colour.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt


def _position(values: list[Any]) -> list[float]:
    """Each value's place on a 0..1 axis: numbers by value (log when all positive and
    spread over more than a decade), other values by their order of appearance."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != len(values):
        order = list(dict.fromkeys(map(repr, values)))
        top = max(1, len(order) - 1)
        return [order.index(repr(v)) / top for v in values]
    if numbers and min(numbers) > 0 and max(numbers) / min(numbers) > 10:
        numbers = [math.log10(v) for v in numbers]
    low, high = min(numbers), max(numbers)
    span = high - low
    return [0.5 if span == 0 else (v - low) / span for v in numbers]


def parallel_lines(summary: dict[str, Any]) -> tuple[list[str], list[tuple[list[float], int]]]:
    """The axes' names and, per finished trial, its points (0..1 on each axis) and number."""
    rows = [r for r in summary["trials"] if r["value"] is not None and r["state"] == "complete"]
    keys = list(dict.fromkeys(k for r in rows for k in r["params"]))
    if not rows:
        return [*keys, summary["objective"]], []
    columns = [_position([r["params"].get(k) for r in rows]) for k in keys]
    columns.append(_position([r["value"] for r in rows]))
    lines = [([col[i] for col in columns], r["number"]) for i, r in enumerate(rows)]
    return [*keys, summary["objective"]], lines


def parallel_coordinates(plot: pg.PlotWidget, summary: dict[str, Any]) -> int:
    """Draw the trials on ``plot``; the number of polylines drawn."""
    plot.clear()
    names, lines = parallel_lines(summary)
    axis = plot.getAxis("bottom")
    axis.setTicks([[(i, name.split(".")[-1]) for i, name in enumerate(names)]])
    plot.setYRange(0, 1)
    ranked = summary["ranked"]
    for points, number in lines:
        rank = ranked.index(number) if number in ranked else len(ranked)
        warmth = 1 - rank / max(1, len(ranked) - 1) if len(ranked) > 1 else 1.0
        colour = pg.mkColor(int(60 + 195 * warmth), 90, int(60 + 195 * (1 - warmth)))
        width = 3 if number == (ranked[0] if ranked else None) else 1
        plot.plot(list(range(len(points))), points, pen=pg.mkPen(colour, width=width))
    for i in range(len(names)):
        plot.addItem(pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen("#888", style=Qt.DashLine)))
    return len(lines)


def importance_bars(plot: pg.PlotWidget, importances: dict[str, float]) -> int:
    """Draw the importances as bars, most important first; the number of bars."""
    plot.clear()
    names = list(importances)
    if names:
        bars = pg.BarGraphItem(
            x=list(range(len(names))), height=list(importances.values()), width=0.6, brush="#4a7"
        )
        plot.addItem(bars)
    plot.getAxis("bottom").setTicks([[(i, n.split(".")[-1]) for i, n in enumerate(names)]])
    plot.setYRange(0, 1)
    return len(names)

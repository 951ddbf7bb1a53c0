"""Live training curves (pyqtgraph): loss, each metric, learning rate, several runs overlaid.

Each curve is created once, the first time its quantity is logged, and only
ever updated with ``setData`` on a growing numpy buffer from a GUI timer
(~20 Hz): signal handlers merely append to buffers, so plotting never slows
training. Curves downsample (``peak``) and clip to the view.

A *run* is one press of Run: its colour, its settings and its history. Runs of
the same project stay overlaid until the project is replaced; the run list
shows or hides each one. A model with several outputs logs each head's loss and
metrics with the Output's id in front (``digit_accuracy``): each quantity goes on
the plot of its metric (every head's accuracy on the Accuracy plot, every head's
loss beside the total on the Loss plot), drawn in a lighter shade of the run's
colour per head. The learning-rate strip shows only once a run's rate changes.
The newest :data:`MAX_RUNS` (one per colour) are kept: each run's curves cost
memory and drawing time, so a long session drops its oldest finished runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGridLayout,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from nodenet.backend import EPOCH_SECONDS, BatchEnd, EpochEnd
from nodenet.ui.plot_widget import PlotWidget

REFRESH_MS = 50  # ~20 Hz, slower only when drawing is expensive (see ``flush``)
SLOWEST_MS = 1000
DRAW_SHARE = 0.03  # at most this share of the GUI thread's time goes to the curves
RUN_COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)
# runs kept, one per colour: a new run drops the oldest finished ones beyond this
MAX_RUNS = len(RUN_COLOURS)
SMOOTHING = 0.9  # weight of the past in the batch curve's moving average
LOSS, LEARNING_RATE, BATCH = "loss", "learning_rate", "batch_loss"
TEXT_COLOUR = "#303030"
MARKER_LIMIT = 60  # a finished run of at most this many epochs shows a marker per epoch
RISING = ("acc", "auc", "precision", "recall")


class _TimedPlotWidget(PlotWidget):
    """A plot that adds the time its paints take to ``owner.draw_seconds``."""

    def __init__(self, owner: TrainingPlots):
        super().__init__(background="w")
        self._owner = owner

    def paintEvent(self, event) -> None:
        start = time.perf_counter()
        super().paintEvent(event)
        self._owner.draw_seconds += time.perf_counter() - start


class Series:
    """Points appended one at a time into numpy buffers that double when full."""

    def __init__(self, capacity: int = 64):
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self.size = 0

    def append(self, x: float, y: float) -> None:
        if self.size == len(self._x):
            self._x = np.concatenate([self._x, np.empty_like(self._x)])
            self._y = np.concatenate([self._y, np.empty_like(self._y)])
        self._x[self.size] = x
        self._y[self.size] = y
        self.size += 1

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """Views of the points so far, shape ``(size,)`` each."""
        return self._x[: self.size], self._y[: self.size]


class BatchSmoothing:
    """The batch curve's value: a debiased exponential moving average of the batch loss,
    one step per batch, as if every batch since the previous point had that point's
    ``batch_loss``; so sparse points lag no more than dense ones."""

    def __init__(self) -> None:
        self.average = 0.0
        self.step = 0

    def add(self, event: BatchEnd) -> float:
        keep = SMOOTHING ** (event.step - self.step)
        self.step = event.step
        self.average = keep * self.average + (1 - keep) * event.batch_loss
        return self.average / (1 - SMOOTHING**event.step)


@dataclass
class RunRecord:
    """One training run: identity, settings, history as it grows, and its outcome."""

    id: int
    name: str
    colour: str
    settings: dict[str, Any]
    heads: tuple[str, ...] = ()  # the Output ids, when the model has several
    series: dict[str, Series] = field(default_factory=dict)  # epoch key (or BATCH) -> points
    curves: dict[str, pg.PlotDataItem] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    marked: set[str] = field(default_factory=set)  # curves showing epoch markers
    visible: bool = True
    status: str = "running"
    result: dict[str, Any] | None = None
    smooth: BatchSmoothing = field(default_factory=BatchSmoothing)
    db_id: int | None = None  # the run's id in the project's runs database, once recorded

    def history(self) -> dict[str, list[float]]:
        """Per-epoch values by key (the batch curve left out)."""
        return {k: s.data()[1].tolist() for k, s in self.series.items() if k != BATCH}


def split_key(log_key: str, heads: Sequence[str] = ()) -> tuple[str, str | None]:
    """The plot a logged quantity goes on, and the Output (head) it belongs to.

    ``val_accuracy`` shares ``accuracy``'s plot; with ``heads`` (the Output ids of
    a model with several outputs) ``val_digit_accuracy`` goes on the accuracy plot
    as head ``digit``, and ``ink_loss`` on the loss plot as head ``ink``.
    """
    if log_key == BATCH:
        return LOSS, None
    base = log_key[4:] if log_key.startswith("val_") else log_key
    if len(heads) > 1:
        for head in sorted(heads, key=len, reverse=True):  # the longest id that fits
            if base.startswith(head + "_") and len(base) > len(head) + 1:
                return base[len(head) + 1 :], head
    return base, None


def plot_key(log_key: str, heads: Sequence[str] = ()) -> str:
    """The plot a logged quantity goes on (see :func:`split_key`)."""
    return split_key(log_key, heads)[0]


ACRONYMS = {"mae", "mse", "rmse", "mape", "msle", "auc", "iou"}


def _title(key: str) -> str:
    """``accuracy`` -> "Accuracy", ``mae`` -> "MAE", ``top_k_accuracy`` -> "Top k accuracy"."""
    if key in ACRONYMS:
        return key.upper()
    return {LOSS: "Loss", LEARNING_RATE: "Learning rate"}.get(
        key, key.replace("_", " ").capitalize()
    )


class TrainingPlots(QWidget):
    """A grid of plots (loss first, learning rate last) beside the list of runs."""

    runToggled = Signal(int, bool)
    settingsRequested = Signal(int)  # "use this run's settings" on a run

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.runs: dict[int, RunRecord] = {}
        self.max_runs = MAX_RUNS
        self.plots: dict[str, pg.PlotItem] = {}
        self._widgets: dict[str, pg.PlotWidget] = {}
        self._next_id = 1
        self._x_max = 0  # epochs of the longest run in progress: a fixed x range meanwhile
        self.draw_seconds = 0.0  # spent drawing since the last flush
        self._frame_cost = 0.0  # moving average of a refresh's cost, in seconds
        self._grid = QGridLayout()
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(4)
        grid_host = QWidget()
        grid_host.setLayout(self._grid)
        self.run_list = QListWidget()
        self.run_list.setIconSize(QSize(14, 14))
        self.run_list.itemChanged.connect(self._item_changed)
        self.run_list.setMinimumWidth(225)
        self.run_list.setWordWrap(True)
        self.run_list.setToolTip(
            "Tick a run to show its curves; hover for its settings; right-click to reuse "
            "its settings or remove it"
        )
        self.run_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.run_list.customContextMenuRequested.connect(self._run_menu)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(grid_host)
        splitter.addWidget(self.run_list)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        for key in (LOSS, LEARNING_RATE):
            self._plot(key)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.flush)
        self.timer.start()

    # -- runs ---------------------------------------------------------------------

    def new_run(
        self,
        settings: dict[str, Any],
        name: str | None = None,
        epochs: int | None = None,
        heads: Sequence[str] = (),
    ) -> int:
        """Start a run (its curves appear as values arrive); returns its id.

        With ``epochs``, the x axes span the whole run while it trains, so they stay
        still (and cheap to draw) and show how far along it is. ``heads``: the
        model's Output ids, whose per-output logs then share their metric's plot.
        """
        if epochs:
            self._x_max = max(self._x_max, epochs)
            for plot in self.plots.values():
                self._fix_x_range(plot)
        run_id = self._next_id
        self._next_id += 1
        colour = RUN_COLOURS[(run_id - 1) % len(RUN_COLOURS)]
        record = RunRecord(run_id, name or f"Run {run_id}", colour, settings, tuple(heads))
        self.runs[run_id] = record
        item = QListWidgetItem(_swatch(colour), self._item_text(record))
        item.setData(Qt.ItemDataRole.UserRole, run_id)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked)
        item.setToolTip(describe_settings(settings))
        self.run_list.blockSignals(True)
        self.run_list.addItem(item)
        self.run_list.blockSignals(False)
        self._drop_old_runs()
        return run_id

    def add_past_run(
        self,
        settings: dict[str, Any],
        name: str,
        epochs: Sequence[dict[str, Any]],
        status: str,
        heads: Sequence[str] = (),
        db_id: int | None = None,
    ) -> int:
        """Show a recorded run (its per-epoch metrics, ``{"epoch": n, key: value}``) as a
        finished one; returns its id in the plots."""
        run_id = self.new_run(settings, name, heads=heads)
        record = self.runs[run_id]
        record.db_id = db_id
        for logs in epochs:
            for key, value in logs.items():
                if key != "epoch" and isinstance(value, int | float):
                    self._append(record, key, logs["epoch"], float(value))
        self.finish_run(run_id, status)
        return run_id

    def _drop_old_runs(self) -> None:
        """Keep the newest ``max_runs`` runs (runs still training are never dropped)."""
        finished = [i for i, record in self.runs.items() if record.status != "running"]
        for run_id in finished[: max(0, len(self.runs) - self.max_runs)]:
            self.remove_run(run_id)

    def add_batch(self, run_id: int, event: BatchEnd) -> None:
        """Record a batch's smoothed loss (:class:`BatchSmoothing`) at its fractional epoch."""
        record = self.runs[run_id]
        x = event.epoch - 1 + event.batch / event.batches
        self._append(record, BATCH, x, record.smooth.add(event))

    def add_epoch(self, run_id: int, event: EpochEnd) -> None:
        """Record every metric of an epoch (what the event carries) and the epoch's
        duration at ``x = epoch``: a run's curves as the runs database keeps them, so a
        run shows the same plots while it trains and when it is read back."""
        record = self.runs[run_id]
        for key, value in event.metrics.items():
            self._append(record, key, event.epoch, float(value))
        if event.epoch_seconds > 0:
            self._append(record, EPOCH_SECONDS, event.epoch, float(event.epoch_seconds))

    def finish_run(self, run_id: int, status: str, result: dict[str, Any] | None = None) -> None:
        """Mark a run done (``finished``, ``stopped``, ``failed``) and draw it fully."""
        record = self.runs[run_id]
        record.status, record.result = status, result
        self._update_item(record)
        self.flush()
        for key in record.curves:
            self._show_markers(record, key)
        self._x_max = 0
        for plot in self.plots.values():
            plot.enableAutoRange(x=True)

    def clear(self) -> None:
        """Forget every run (a different project was opened)."""
        for record in self.runs.values():
            for key, curve in record.curves.items():
                self.plots[plot_key(key, record.heads)].removeItem(curve)
        self.runs.clear()
        self.run_list.clear()
        self._next_id = 1

    def remove_run(self, run_id: int) -> None:
        """Take a finished run's curves off the plots and out of the list."""
        record = self.runs.pop(run_id)
        for key, curve in record.curves.items():
            self.plots[plot_key(key, record.heads)].removeItem(curve)
        item = self._item(run_id)
        if item is not None:
            self.run_list.takeItem(self.run_list.row(item))

    def set_run_visible(self, run_id: int, visible: bool) -> None:
        record = self.runs[run_id]
        record.visible = visible
        for curve in record.curves.values():
            curve.setVisible(visible)
        self.runToggled.emit(run_id, visible)

    def rename_run(self, run_id: int, name: str) -> None:
        """Call a run ``name`` in the run list and in the legends."""
        record = self.runs[run_id]
        old, record.name = record.name, name
        self._update_item(record)
        for key, curve in record.curves.items():
            label = curve.name() or ""
            if not label.startswith(old):
                continue
            curve.opts["name"] = name + label[len(old) :]
            legend = self.plots[plot_key(key, record.heads)].legend
            for sample, text in legend.items if legend is not None else ():
                if sample.item is curve:
                    text.setText(curve.opts["name"])

    def show_only(self, run_ids: Sequence[int]) -> None:
        """Tick the runs ``run_ids`` in the run list and untick the others."""
        self.run_list.blockSignals(True)
        for run_id in self.runs:
            item, shown = self._item(run_id), run_id in run_ids
            if item is not None:
                item.setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)
        self.run_list.blockSignals(False)
        for run_id in list(self.runs):
            self.set_run_visible(run_id, run_id in run_ids)

    def main_plot(self) -> pg.PlotWidget:
        """The loss plot, there from the start: the one the others share a row with."""
        return self._widgets[LOSS]

    def curve(self, run_id: int, key: str) -> pg.PlotDataItem | None:
        """The curve of ``key`` (``loss``, ``val_accuracy``, ``batch_loss`` ...) of a run."""
        return self.runs[run_id].curves.get(key)

    # -- drawing ------------------------------------------------------------------

    def _fix_x_range(self, plot: pg.PlotItem) -> None:
        if self._x_max:
            plot.setXRange(0, self._x_max, padding=0.02)

    @Slot()
    def flush(self) -> None:
        """Push new points of every changed series to its curve (the timer calls this).

        The next refresh comes after ~50 ms, or later when this flush and the paints
        since the last one took more than :data:`DRAW_SHARE` of that time.
        """
        start = time.perf_counter()
        curves = self._curve_count()
        self._flush()
        cost = self.draw_seconds + time.perf_counter() - start
        self.draw_seconds = 0.0
        if self._curve_count() != curves:
            return  # creating curves is a one-off: it says nothing of the next frames
        self._frame_cost = 0.7 * self._frame_cost + 0.3 * cost
        interval = round(min(max(REFRESH_MS, 1000 * self._frame_cost / DRAW_SHARE), SLOWEST_MS))
        if interval != self.timer.interval():
            self.timer.setInterval(interval)

    def _curve_count(self) -> int:
        return sum(len(record.curves) for record in self.runs.values())

    def _flush(self) -> None:
        if not self.isVisible():
            return  # a hidden tab draws nothing; showEvent catches up
        for record in self.runs.values():
            for key in [k for k in record.series if k in record.dirty]:  # stable legend order
                curve = record.curves.get(key) or self._make_curve(record, key)
                curve.setData(*record.series[key].data())
                self._show_markers(record, key)
            if record.dirty:
                if LEARNING_RATE in record.dirty:
                    self._fit_learning_rate_range()
                    self._show_learning_rate_if_it_varies(record)
                record.dirty.clear()
                self._update_item(record)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.flush()

    def _show_markers(self, record: RunRecord, key: str) -> None:
        """Epoch markers on a lone first point and on finished runs of few epochs; none
        while training (a scatter of markers costs more to redraw than the line)."""
        curve = record.curves.get(key)
        if curve is None or key == BATCH:
            return
        size = record.series[key].size
        wanted = size <= 1 or (record.status != "running" and size <= MARKER_LIMIT)
        if wanted == (key in record.marked):
            return
        if wanted:
            val = key.startswith("val_")
            colour = QColor(record.colour)
            curve.setSymbol("s" if val else "o")
            curve.setSymbolSize(5)
            curve.setSymbolPen(pg.mkPen(colour, width=1.5))
            curve.setSymbolBrush(pg.mkBrush("w") if val else pg.mkBrush(colour))
            record.marked.add(key)
        else:
            curve.setSymbol(None)
            record.marked.discard(key)

    def _show_learning_rate_if_it_varies(self, record: RunRecord) -> None:
        """The learning-rate strip takes room only once some run's rate changes."""
        widget = self._widgets.get(LEARNING_RATE)
        if widget is None or not widget.isHidden():
            return
        rates = record.series[LEARNING_RATE].data()[1]
        if rates.size > 1 and rates.max() > rates.min():
            widget.show()
            self._relayout()

    def _fit_learning_rate_range(self) -> None:
        """From 0 to just above the largest rate (autorange fails on a constant rate)."""
        highest = [
            float(r.series[LEARNING_RATE].data()[1].max())
            for r in self.runs.values()
            if r.visible and LEARNING_RATE in r.series and r.series[LEARNING_RATE].size
        ]
        if highest and max(highest) > 0:
            self.plots[LEARNING_RATE].setYRange(0, max(highest) * 1.1, padding=0)

    def _append(self, record: RunRecord, key: str, x: float, y: float) -> None:
        series = record.series.get(key)
        if series is None:
            series = record.series[key] = Series()
        series.append(x, y)
        record.dirty.add(key)

    def _make_curve(self, record: RunRecord, key: str) -> pg.PlotDataItem:
        name, head = split_key(key, record.heads)
        plot = self._plot(name)
        colour = QColor(record.colour)
        if head is not None:  # one shade per output; on the loss plot the total is darkest
            shade = record.heads.index(head) + (name == LOSS)
            colour = colour.lighter(100 + 45 * shade)
        if key == BATCH:
            colour.setAlpha(110)
            pen = pg.mkPen(colour, width=1)
            options: dict[str, Any] = {"name": f"{record.name} batches (smoothed)"}
        else:
            val = key.startswith("val_")
            style = Qt.PenStyle.DashLine if val else Qt.PenStyle.SolidLine
            width = 1.5 if head is not None and name == LOSS else 2
            pen = pg.mkPen(colour, width=width, style=style)
            label = "validation" if val else "train"
            if key in (LEARNING_RATE, EPOCH_SECONDS):  # one per run, neither train nor validation
                label = ""
            options = {"name": " ".join(filter(None, (record.name, head, label)))}
        curve = plot.plot([], [], pen=pen, **options)
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        curve.setVisible(record.visible)
        if key == BATCH:
            curve.setZValue(-1)
        record.curves[key] = curve
        return curve

    def _plot(self, key: str) -> pg.PlotItem:
        plot = self.plots.get(key)
        if plot is not None:
            return plot
        widget = _TimedPlotWidget(self)
        widget.setMinimumSize(240, 110 if key == LEARNING_RATE else 170)
        if key == LEARNING_RATE:
            widget.setMaximumHeight(170)
            widget.hide()  # until a run's rate changes (a constant rate says nothing)
        plot = widget.getPlotItem()
        plot.setTitle(_title(key), color=TEXT_COLOUR, size="11pt")
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen(pg.mkPen("#909090"))
            axis.setTextPen(pg.mkPen(TEXT_COLOUR))
        plot.setLabel("bottom", "epoch", color=TEXT_COLOUR)
        plot.setLabel("left", _title(key).lower(), color=TEXT_COLOUR)
        plot.getAxis("left").enableAutoSIPrefix(False)  # 0.001, not 1.0 (x0.001): no units
        if key == LEARNING_RATE:
            plot.setTitle(None)
        if key != LEARNING_RATE:  # there, the run list's colours say which run is which
            rising = any(word in key for word in RISING)  # climbing curves: legend low
            legend = plot.addLegend(offset=(-8, -8 if rising else 8), labelTextColor=TEXT_COLOUR)
            legend.setBrush(pg.mkBrush(255, 255, 255, 200))
        plot.getViewBox().setMouseEnabled(x=True, y=True)
        self._cache_decorations(plot)
        self._fix_x_range(plot)
        self.plots[key], self._widgets[key] = plot, widget
        self._relayout()
        return plot

    @staticmethod
    def _cache_decorations(plot: pg.PlotItem) -> None:
        """Axes, legend and title drawn once into pixmaps, redrawn only when they change:
        a refresh then repaints little more than the curves."""
        cached = [plot.getAxis(side) for side in ("left", "bottom")]
        cached += [item for item in (plot.legend, plot.titleLabel) if item is not None]
        for item in cached:
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def _relayout(self) -> None:
        """Loss first, then metrics in order of appearance (at most three a row); the
        learning rate as a low strip across the bottom."""
        main = [LOSS, *(k for k in self._widgets if k not in (LOSS, LEARNING_RATE))]
        for widget in self._widgets.values():
            self._grid.removeWidget(widget)
        columns = min(len(main), 3) if len(main) != 4 else 2
        for column in range(3):  # plots of a row share its width equally
            self._grid.setColumnStretch(column, 1 if column < columns else 0)
        for i, key in enumerate(main):
            self._grid.addWidget(self._widgets[key], i // columns, i % columns)
            self._grid.setRowStretch(i // columns, 3)
        if LEARNING_RATE in self._widgets:
            rows = -(-len(main) // columns)
            strip = self._widgets[LEARNING_RATE]
            self._grid.addWidget(strip, rows, 0, 1, columns)
            self._grid.setRowStretch(rows, 0 if strip.isHidden() else 1)

    # -- the run list ---------------------------------------------------------------

    def _item(self, run_id: int) -> QListWidgetItem | None:
        for row in range(self.run_list.count()):
            item = self.run_list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == run_id:
                return item
        return None

    def _item_text(self, record: RunRecord) -> str:
        details = []
        epochs = record.series.get(LOSS)
        if epochs is not None and epochs.size:
            details.append(f"{epochs.size} epoch{'s' if epochs.size > 1 else ''}")
        val = record.series.get("val_loss") or record.series.get(LOSS)
        if val is not None and val.size:
            name = "val_loss" if "val_loss" in record.series else "loss"
            details.append(f"{name} {val.data()[1][-1]:.4g}")
        return f"{record.name} — {record.status}\n" + " · ".join(details)

    def _update_item(self, record: RunRecord) -> None:
        item = self._item(record.id)
        if item is not None:
            self.run_list.blockSignals(True)
            item.setText(self._item_text(record))
            self.run_list.blockSignals(False)

    def _run_menu(self, pos) -> None:
        item = self.run_list.itemAt(pos)
        if item is None:
            return
        run_id = item.data(Qt.ItemDataRole.UserRole)
        menu = QMenu(self)
        menu.addAction("Use this run's settings", lambda: self.settingsRequested.emit(run_id))
        remove = menu.addAction("Remove from the plots", lambda: self.remove_run(run_id))
        remove.setEnabled(self.runs[run_id].status != "running")
        menu.exec(self.run_list.viewport().mapToGlobal(pos))

    @Slot(QListWidgetItem)
    def _item_changed(self, item: QListWidgetItem) -> None:
        run_id = item.data(Qt.ItemDataRole.UserRole)
        if run_id in self.runs:
            self.set_run_visible(run_id, item.checkState() == Qt.CheckState.Checked)


def _swatch(colour: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


def describe_settings(settings: dict[str, Any]) -> str:
    """A few lines naming the optimizer, batch size, epochs and data of a run."""
    training = settings.get("training", {})
    optimizer = dict(training.get("optimizer") or {})
    name = optimizer.pop("name", "adam")
    lr = optimizer.pop("learning_rate", None)
    lr_text = lr.get("schedule", "schedule") if isinstance(lr, dict) else f"{lr:g}" if lr else ""
    lines = [f"optimizer: {name}" + (f", learning rate {lr_text}" if lr_text else "")]
    lines.append(
        f"epochs {training.get('epochs', '?')}, batch size {training.get('batch_size', '?')}, "
        f"seed {training.get('seed')}"
    )
    source = settings.get("data", {}).get("source") or {}
    if source:
        lines.append(f"data: {source.get('name') or source.get('path') or source.get('kind')}")
    return "\n".join(lines)

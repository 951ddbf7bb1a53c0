"""Looking at a dataset before training: shapes, first rows, images, class balance.

:class:`DataLoader` reads the project's data source off the GUI thread (a
plain Python thread; results come back as queued Qt signals), describes it, and
runs the engine's own ``prepare`` against the graph's Input and Output shapes,
so a mismatch (``pixels: the data ('x') gives 64 values but the Input has
shape (784,)``) is shown while the user edits, before any training starts.
:class:`DataPreview` shows the description.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QGridLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nodenet.engine import FOLDER_KINDS, describe_folder, load_source, prepare
from nodenet.errors import NodenetError
from nodenet.ui.plot_widget import PlotWidget
from nodenet.ui.training.results import image_shape

PREVIEW_ROWS = 6
PREVIEW_COLUMNS = 10
THUMBNAILS = 12
THUMB_SIZE = 44


def describe(dataset) -> dict[str, Any]:
    """Plain facts about a loaded dataset: arrays (shape, dtype, range), class balance,
    the first rows (flattened, at most :data:`PREVIEW_COLUMNS` values) and, for image
    arrays, the first images ``(h, w)`` or ``(h, w, 3)``."""
    meta = dataset.meta
    arrays, balance, rows, images = {}, {}, {}, {}
    for name, array in dataset.arrays.items():
        text = array.dtype.kind == "U"  # a CSV column of texts, for a string Input
        arrays[name] = {
            "shape": tuple(array.shape),
            "dtype": str(array.dtype),
            "min": None if text else float(array.min()),
            "max": None if text else float(array.max()),
        }
        if dataset.is_test_name(name):
            continue
        labelled = name in meta.classes or (meta.task == "classification" and name == "y")
        if labelled and array.ndim == 1 and array.dtype.kind in "iu" and array.min() >= 0:
            counts = np.bincount(array)
            names = meta.classes.get(name) or [str(i) for i in range(len(counts))]
            balance[name] = (list(names), np.pad(counts, (0, max(len(names) - len(counts), 0))))
        flat = array[:PREVIEW_ROWS].reshape(min(len(array), PREVIEW_ROWS), -1)
        rows[name] = flat[:, :PREVIEW_COLUMNS] if text else flat[:, :PREVIEW_COLUMNS].astype(float)
        shape = image_shape(array.shape[1:], meta.description)
        if shape is not None:
            images[name] = [array[i].reshape(shape) for i in range(min(len(array), THUMBNAILS))]
    labels = dataset.arrays.get("y")
    captions = []
    if labels is not None and labels.ndim == 1:
        names = meta.classes.get("y")
        for value in labels[:THUMBNAILS]:
            index = int(value) if float(value).is_integer() else None
            known = names is not None and index is not None and 0 <= index < len(names)
            captions.append(str(names[index]) if known else f"{float(value):g}")
    return {
        "name": meta.name,
        "task": meta.task,
        "description": meta.description,
        "arrays": arrays,
        "names": dataset.names(),
        "balance": balance,
        "rows": rows,
        "images": images,
        "captions": captions,
        "columns": list(meta.extra.get("features") or []),
    }


def to_pixmap(image: np.ndarray, size: int = THUMB_SIZE) -> QPixmap:
    """A grey (``(h, w)``) or colour (``(h, w, 3)``) array as a pixmap ``size`` pixels high."""
    image = np.asarray(image, dtype=np.float64)
    low, high = float(np.nanmin(image)), float(np.nanmax(image))
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    pixels = np.ascontiguousarray(np.clip(scaled * 255, 0, 255).astype(np.uint8))
    h, w = pixels.shape[:2]
    if pixels.ndim == 3:
        qimage = QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    else:
        qimage = QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8)
    pixmap = QPixmap.fromImage(qimage.copy())
    return pixmap.scaledToHeight(size, Qt.TransformationMode.FastTransformation)


def signal_pixmap(values: np.ndarray, width: int = 96, height: int = 30) -> QPixmap:
    """A 1-D signal ``(steps,)`` as a small line drawing."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    pixmap = QPixmap(width, height)
    pixmap.fill(QColor("white"))
    low, high = float(values.min()), float(values.max())
    span = high - low if high > low else 1.0
    xs = np.linspace(1, width - 2, len(values))
    ys = height - 2 - (values - low) / span * (height - 4)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor("#1f77b4"), 1.3))
    painter.drawPolyline(QPolygonF([QPointF(x, y) for x, y in zip(xs, ys, strict=True)]))
    painter.end()
    return pixmap


def graph_specs(project, analysis) -> tuple[dict, dict]:
    """``(input_specs, output_specs)`` for ``prepare``: shapes from the graph's analysis."""
    inputs, outputs = {}, {}
    for node in project.inputs():
        if node.id in analysis.shapes:
            inputs[node.id] = (analysis.shapes[node.id], node.params.get("dtype", "float32"))
    for node in project.outputs():
        if node.id in analysis.shapes:
            loss = node.params.get("loss", "categorical_crossentropy")
            outputs[node.id] = (analysis.shapes[node.id], loss)
    return inputs, outputs


class DataLoader(QObject):
    """Loads and checks the data in a background thread; the newest request wins."""

    described = Signal(object)  # describe(...) dict
    checked = Signal(object)  # {"ok": bool, "message": str, "sizes": {...}}
    failed = Signal(str)  # the source could not be read

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._generation = 0
        self._cache: tuple[str, Any, dict] | None = None  # (source key, dataset, description)

    def request(self, project, analysis) -> None:
        """Describe and check ``project``'s data against its graph (asynchronously)."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        data = json.loads(json.dumps(project.data))
        specs = graph_specs(project, analysis)
        base = Path(project.path).parent if project.path is not None else None
        seed = project.training.get("seed") or 0
        args = (generation, data, specs, base, seed)
        threading.Thread(target=self._work, args=args, daemon=True, name="nodenet-data").start()

    def _current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation

    def _work(self, generation: int, data: dict, specs: tuple, base, seed: int) -> None:
        source = data.get("source")
        if not source:
            self._emit(generation, self.checked, {"ok": False, "message": "", "sizes": {}})
            return
        split = data.get("split") if source.get("kind") in FOLDER_KINDS else None  # in its summary
        key = json.dumps([source, str(base), seed, split], sort_keys=True)
        cache = self._cache
        try:
            if cache is not None and cache[0] == key:
                dataset, description = cache[1], cache[2]
            elif source.get("kind") in FOLDER_KINDS:  # read batch by batch: only a summary
                summary = describe_folder(source, base, seed, data.get("split"))
                dataset, description = None, {"folder": dict(vars(summary)), "names": []}
                self._cache = (key, dataset, description)
            else:
                dataset = load_source(source, base, seed)
                description = describe(dataset)
                self._cache = (key, dataset, description)
        except (NodenetError, OSError, ValueError) as err:
            self._emit(generation, self.failed, str(err))
            return
        self._emit(generation, self.described, description)
        self._check(generation, data, specs, base, seed, dataset)

    def _check(self, generation, data, specs, base, seed, dataset) -> None:
        inputs, outputs = specs
        try:
            prepared = prepare(data, inputs, outputs, base, seed, dataset=dataset)
        except (NodenetError, ValueError) as err:
            result = {"ok": False, "message": str(err), "sizes": {}}
        else:
            meta = prepared.meta
            result = {"ok": True, "message": "", "sizes": dict(meta.sizes), "mapping": meta.mapping}
        self._emit(generation, self.checked, result)

    def _emit(self, generation: int, signal, value) -> None:
        """Emit unless a newer request was made or the receiver is gone (window closed)."""
        if self._current(generation):
            with contextlib.suppress(RuntimeError):
                signal.emit(value)


class DataPreview(QWidget):
    """The description of a dataset: summary, first rows or images, class balance."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.summary = QLabel("No data chosen yet.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMaximumHeight(170)
        self.images = QWidget()
        self._image_grid = QGridLayout(self.images)
        self._image_grid.setContentsMargins(0, 0, 0, 0)
        self._image_grid.setHorizontalSpacing(6)
        self._image_grid.setVerticalSpacing(1)
        self.balance = PlotWidget(background="w")
        self.balance.setMaximumHeight(150)
        self.balance.setMinimumHeight(110)
        self.balance.getPlotItem().setTitle("class balance", color="#303030", size="9pt")
        self.balance.getPlotItem().setMouseEnabled(x=False, y=False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.summary, self.images, self.table, self.balance):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.show_description(None)

    def show_description(self, info: dict[str, Any] | None) -> None:
        if info is None:
            for widget in (self.table, self.images, self.balance):
                widget.hide()
            return
        arrays = ", ".join(
            f"<b>{name}</b> {_shape(a['shape'])} {a['dtype']}" for name, a in info["arrays"].items()
        )
        self.summary.setText(
            f"<b>{info['name']}</b> ({info['task']}): {info['description']}<br>arrays: {arrays}"
        )
        self._show_rows(info)
        self._show_images(info)
        self._show_balance(info)

    def _show_rows(self, info: dict[str, Any]) -> None:
        names = [n for n in info["names"] if n in info["rows"]]
        columns: list[tuple[str, str, int]] = []
        for name in names:
            width = info["rows"][name].shape[1]
            features = info["columns"] if name == "x" else []
            for j in range(width):
                label = features[j] if j < len(features) else f"{name}[{j}]" if width > 1 else name
                columns.append((label, name, j))
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setRowCount(max((len(info["rows"][n]) for n in names), default=0))
        self.table.setHorizontalHeaderLabels([c[0] for c in columns])
        for col, (_, name, j) in enumerate(columns):
            for row, values in enumerate(info["rows"][name]):
                value = values[j]
                item = QTableWidgetItem(value[:80] if isinstance(value, str) else f"{value:.4g}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self.table.setVisible(bool(columns) and not info["images"])

    def _show_images(self, info: dict[str, Any]) -> None:
        while self._image_grid.count():
            self._image_grid.takeAt(0).widget().deleteLater()
        name = next(iter(info["images"]), None)
        if name is None:
            self.images.hide()
            return
        captions = info["captions"]
        for i, image in enumerate(info["images"][name]):
            thumb = QLabel()
            thumb.setPixmap(to_pixmap(image))
            caption = QLabel(captions[i] if i < len(captions) else "")
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self._image_grid.addWidget(thumb, 0, i)
            self._image_grid.addWidget(caption, 1, i)
        self._image_grid.setColumnStretch(len(info["images"][name]), 1)
        self.images.show()

    def _show_balance(self, info: dict[str, Any]) -> None:
        plot = self.balance.getPlotItem()
        plot.clear()
        if not info["balance"]:
            self.balance.hide()
            return
        names, counts = next(iter(info["balance"].values()))
        bars = pg.BarGraphItem(
            x=np.arange(len(counts)), height=counts, width=0.7, brush="#5b8fc7", pen="#3d6b9e"
        )
        plot.addItem(bars)
        ticks = [(i, str(n)) for i, n in enumerate(names)]
        step = max(1, len(ticks) // 12)
        plot.getAxis("bottom").setTicks([ticks[::step]])
        self.balance.show()


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")

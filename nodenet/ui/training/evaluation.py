"""After training: test metrics, confusion matrix or predicted-vs-true, per-class metrics,
a browser over every test sample with what the network looks at, ROC / precision-recall
curves or residuals, and histograms of weights and gradients.

Everything shown comes from the worker's ``finished`` dict (see
:func:`nodenet.reports.summarize`); only the explanations of a chosen sample compute on the
model (:mod:`nodenet.ui.training.evaluation_explain`, on a worker thread).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from nodenet.ui.training.evaluation_browser import SampleBrowser
from nodenet.ui.training.evaluation_curves import CurvesView, PerClassTable, make_plot
from nodenet.ui.training.evaluation_explain import ExplanationView

TEXT = "#303030"
HEAT = pg.ColorMap([0.0, 1.0], [(255, 255, 255), (31, 78, 156)])
CELL_TEXT_LIMIT = 15  # classes up to which each cell shows its count
HIST_BRUSH = {"weights": (91, 143, 199, 150), "gradients": (214, 39, 40, 130)}


_plot = make_plot  # the plots of the tab look alike


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.verticalHeader().hide()
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


class EvaluationView(QWidget):
    """The results of the latest run, or the histograms of weights loaded from disk."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.result: dict[str, Any] | None = None
        self.confusion: np.ndarray | None = None  # of the head shown
        self._pending: tuple | None = None
        self._weights: dict[str, dict] = {}
        self._gradients: dict[str, dict] = {}
        self.header = QLabel("Train a model to see its evaluation here.")
        self.header.setWordWrap(True)
        self.metrics = _table(["metric", "value"])
        self.metrics.setMaximumWidth(260)
        self.head = QComboBox()
        self.head.setToolTip("The output whose test results the plot shows")
        self.head.currentTextChanged.connect(self._show_head)
        self.head_plot = _plot("", "", "")
        self.per_class = PerClassTable()
        self.browser = SampleBrowser()
        self.explanation = ExplanationView()
        self.browser.sampleChosen.connect(self._explain_sample)
        self.curves = CurvesView()
        self.details = QTabWidget()
        self.weight_key = QComboBox()
        self.weight_key.setToolTip("The weight whose values and gradients the histograms show")
        self.weight_key.currentTextChanged.connect(self._show_histograms)
        self.weight_plot = _plot("weights", "value", "count")
        self.grad_plot = _plot("gradients (last batch)", "value", "count")
        self._layout()

    def _layout(self) -> None:
        results = QGroupBox("Test split")
        grid = QGridLayout(results)
        grid.addWidget(self.metrics, 0, 0, 2, 1)
        head_row = QHBoxLayout()
        head_row.addWidget(QLabel("Output"))
        head_row.addWidget(self.head, 1)
        grid.addLayout(head_row, 0, 1)
        grid.addWidget(self.head_plot, 1, 1)
        grid.addWidget(QLabel("Per class"), 0, 2)
        grid.addWidget(self.per_class, 1, 2)
        grid.setColumnStretch(1, 3)
        grid.setColumnStretch(2, 2)
        samples = QSplitter()
        samples.addWidget(self.browser)
        samples.addWidget(self.explanation)
        samples.setSizes([420, 580])
        self.details.addTab(samples, "Test samples")
        self.details.addTab(self.curves, "Curves")
        self.details.setMinimumHeight(360)
        histograms = QGroupBox("Weights and gradients of each layer (end of training)")
        hist_layout = QGridLayout(histograms)
        key_row = QHBoxLayout()
        key_row.addWidget(QLabel("weight"))
        key_row.addWidget(self.weight_key, 1)
        key_row.addStretch(2)
        hist_layout.addLayout(key_row, 0, 0, 1, 2)
        hist_layout.addWidget(self.weight_plot, 1, 0)
        hist_layout.addWidget(self.grad_plot, 1, 1)
        results.setMinimumHeight(340)  # a readable confusion matrix; the tab scrolls
        histograms.setMinimumHeight(240)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(results, 3)
        layout.addWidget(self.details, 3)
        layout.addWidget(histograms, 2)

    # -- showing ----------------------------------------------------------------------

    def clear(self, text: str = "Train a model to see its evaluation here.") -> None:
        self.result, self.confusion, self._pending = None, None, None
        self.header.setText(text)
        self.metrics.setRowCount(0)
        self.per_class.setRowCount(0)
        self.browser.clear()
        self.explanation.set_model(None, {}, "", [])
        self.curves.show_report(None)
        self.head.clear()
        self.head_plot.getPlotItem().clear()
        self.weight_key.clear()
        self.weight_plot.getPlotItem().clear()
        self.grad_plot.getPlotItem().clear()

    def show_result(self, result: dict[str, Any], title: str = "") -> None:
        """Show a worker's ``finished`` dict (drawn when the view is next shown)."""
        self._later(self._draw_result, result, title)
        first = next(iter(result.get("heads", {}).values()), None)
        self.confusion = first["confusion"] if first is not None else None

    def show_histograms(self, weights: dict[str, dict], gradients: dict | None = None) -> None:
        """Per-weight histograms (``{"counts", "edges", ...}`` per ``node/name``)."""
        self._later(self._draw_histograms, weights, gradients)

    def _later(self, draw, *args) -> None:
        """Draw now if visible, else on the next show: a hidden tab costs nothing."""
        self._pending = (draw, args)
        if self.isVisible():
            self._draw_pending()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._draw_pending()

    def _draw_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[0](*pending[1])

    def _draw_result(self, result: dict[str, Any], title: str) -> None:
        self.clear()
        self.result = result
        test = result.get("test")
        if test is None:
            self.header.setText(
                f"{title}: no test split. Set a test fraction under Data → Split "
                "(or use a dataset with its own test split) to evaluate."
            )
        else:
            self.header.setText(f"{title}: evaluated on the test split ({test['size']:,} samples)")
            self._fill_metrics(test["metrics"])
            self.head.addItems(list(result["heads"]))
        self._draw_histograms(
            result.get("weight_histograms", {}), result.get("gradient_histograms")
        )

    def _draw_histograms(self, weights: dict[str, dict], gradients: dict | None) -> None:
        self._weights, self._gradients = weights, gradients or {}
        self.weight_key.blockSignals(True)
        self.weight_key.clear()
        self.weight_key.addItems(list(weights))
        self.weight_key.blockSignals(False)
        self._show_histograms(self.weight_key.currentText())

    def _fill_metrics(self, metrics: dict[str, float]) -> None:
        self.metrics.setRowCount(len(metrics))
        for row, (name, value) in enumerate(metrics.items()):
            self.metrics.setItem(row, 0, QTableWidgetItem(name))
            item = QTableWidgetItem(f"{value:.4f}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.metrics.setItem(row, 1, item)

    @Slot(str)
    def _show_head(self, head_id: str) -> None:
        plot = self.head_plot.getPlotItem()
        plot.clear()
        self.confusion = None
        if not head_id or self.result is None:
            return
        report = self.result["heads"][head_id]
        if report["task"] == "classification":
            self._draw_confusion(report["confusion"], report["classes"])
        elif report["task"] == "regression":
            self._draw_scatter(report["true"], report["pred"])
        self.per_class.show_report(report)
        self.curves.show_report(report)
        self._fill_browser(head_id, report)

    def _fill_browser(self, head_id: str, report: dict[str, Any]) -> None:
        """Every test sample of the head in the browser; the model behind it explains them."""
        tests = self.result.get("test_inputs") if self.result else None
        if not tests or not tests["inputs"] or "table" not in report:
            self.browser.clear()
            self.explanation.set_model(None, {}, head_id, [])
            return
        input_id, inputs = next(iter(tests["inputs"].items()))
        if len(inputs) != len(next(iter(report["table"].values()))):  # files left unread
            self.browser.show_head(report, None, None, None)
            self.explanation.set_model(None, {}, head_id, [])
            return
        shapes = (self.result.get("samples") or {}).get("image_shapes", {})
        stats = tests["normalization"].get(input_id)
        self.browser.show_head(report, inputs, stats, shapes.get(input_id))
        classes = report["classes"] if report["task"] == "classification" else []
        explainer = self.result.get("explainer")
        self.explanation.set_model(explainer, tests["inputs"], head_id, classes or [], shapes)

    @Slot(int)
    def _explain_sample(self, sample: int) -> None:
        table = self.browser.model.table
        predicted = int(table["pred"][sample]) if "correct" in table else None
        self.explanation.show_sample(sample, predicted)

    def _draw_confusion(self, matrix: np.ndarray, classes: list[str]) -> None:
        self.confusion = np.asarray(matrix)
        plot = self.head_plot.getPlotItem()
        plot.setTitle("confusion matrix (rows: true, columns: predicted)", color=TEXT, size="10pt")
        k = len(classes)
        image = pg.ImageItem(self.confusion.astype(float), axisOrder="row-major")
        image.setColorMap(HEAT)
        image.setLevels((0, max(float(self.confusion.max()), 1.0)))
        plot.addItem(image)
        peak = self.confusion.max() or 1
        if k <= CELL_TEXT_LIMIT:
            for (i, j), count in np.ndenumerate(self.confusion):
                colour = "w" if count > peak / 2 else TEXT
                label = pg.TextItem(str(count), color=colour, anchor=(0.5, 0.5))
                label.setPos(j + 0.5, i + 0.5)
                plot.addItem(label)
        ticks = [[(i + 0.5, str(name)) for i, name in enumerate(classes)]]
        plot.getAxis("bottom").setTicks(ticks)
        plot.getAxis("left").setTicks(ticks)
        plot.setLabel("bottom", "predicted", color=TEXT)
        plot.setLabel("left", "true", color=TEXT)
        plot.invertY(True)
        plot.setAspectLocked(True)
        plot.setRange(xRange=(0, k), yRange=(0, k), padding=0.02)

    def _draw_scatter(self, true: np.ndarray, pred: np.ndarray) -> None:
        plot = self.head_plot.getPlotItem()
        plot.setTitle("predicted vs true", color=TEXT, size="10pt")
        plot.invertY(False)
        plot.setAspectLocked(False)
        for side in ("bottom", "left"):
            plot.getAxis(side).setTicks(None)
        plot.setLabel("bottom", "true", color=TEXT)
        plot.setLabel("left", "predicted", color=TEXT)
        low = float(min(true.min(), pred.min()))
        high = float(max(true.max(), pred.max()))
        plot.plot([low, high], [low, high], pen=pg.mkPen("#909090", style=Qt.PenStyle.DashLine))
        plot.addItem(
            pg.ScatterPlotItem(true, pred, size=5, pen=None, brush=pg.mkBrush(31, 119, 180, 120))
        )

    @Slot(str)
    def _show_histograms(self, key: str) -> None:
        for widget, table, name in (
            (self.weight_plot, self._weights, "weights"),
            (self.grad_plot, self._gradients, "gradients"),
        ):
            plot = widget.getPlotItem()
            plot.clear()
            entry = table.get(key)
            if entry is None:
                continue
            plot.plot(
                entry["edges"],
                entry["counts"],
                stepMode="center",
                fillLevel=0,
                brush=HIST_BRUSH[name],
                pen=pg.mkPen(HIST_BRUSH[name][:3], width=1),
            )
            title = "weights" if name == "weights" else "gradients (last batch)"
            plot.setTitle(
                f"{title}: mean {entry['mean']:.3g}, std {entry['std']:.3g}", color=TEXT, size="9pt"
            )

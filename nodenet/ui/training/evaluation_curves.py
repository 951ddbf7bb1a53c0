"""Per-class precision, recall and F1, ROC and precision-recall curves, and residual plots of
one head's test predictions, drawn from a head report (:mod:`nodenet.reports_metrics`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nodenet.reports_metrics import CURVE_CLASSES
from nodenet.ui.plot_widget import PlotWidget

TEXT = "#303030"
CURVES_SHOWN = 10  # classes drawn at once when "every class" is chosen
EVERY = "every class"


def make_plot(title: str, x_label: str, y_label: str) -> PlotWidget:
    """A white plot with dark labels, as every plot of the Evaluation tab."""
    widget = PlotWidget(background="w")
    plot = widget.getPlotItem()
    plot.setTitle(title, color=TEXT, size="10pt")
    plot.setLabel("bottom", x_label, color=TEXT)
    plot.setLabel("left", y_label, color=TEXT)
    for side in ("left", "bottom"):
        plot.getAxis(side).setTextPen(pg.mkPen(TEXT))
        plot.getAxis(side).setPen(pg.mkPen("#909090"))
        plot.getAxis(side).enableAutoSIPrefix(False)
    widget.setMinimumSize(220, 180)
    return widget


class PerClassTable(QTableWidget):
    """Precision, recall, F1 and support of each class, then the macro and weighted means."""

    HEADERS = ("class", "precision", "recall", "F1", "support")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, len(self.HEADERS), parent)
        self.setHorizontalHeaderLabels(list(self.HEADERS))
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.verticalHeader().hide()
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)

    def show_report(self, report: dict[str, Any] | None) -> None:
        per_class = (report or {}).get("per_class")
        self.setRowCount(0)
        if per_class is None:
            return
        rows = [
            (name, per_class["precision"][i], per_class["recall"][i], per_class["f1"][i], s)
            for i, (name, s) in enumerate(zip(report["classes"], per_class["support"], strict=True))
        ]
        total = int(np.sum(per_class["support"]))
        for average in ("macro", "weighted"):
            means = per_class[average]
            rows.append(
                (f"{average} mean", means["precision"], means["recall"], means["f1"], total)
            )
        self.setRowCount(len(rows))
        for r, (name, *values) in enumerate(rows):
            self.setItem(r, 0, QTableWidgetItem(str(name)))
            for c, value in enumerate(values, start=1):
                text = f"{int(value):,}" if c == 4 else f"{float(value):.3f}"
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(r, c, item)


class CurvesView(QWidget):
    """ROC and precision-recall curves (one class against the rest) of a classifier, or the
    residuals of a regression head."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.report: dict[str, Any] | None = None
        self.which = QComboBox()
        self.which.setToolTip("The class whose curves (one against the rest) are drawn")
        self.which.currentTextChanged.connect(self._draw)
        self.left = make_plot("ROC", "false positive rate", "true positive rate")
        self.right = make_plot("precision-recall", "recall", "precision")
        self.note = QLabel("")
        row = QHBoxLayout()
        row.addWidget(QLabel("Class"))
        row.addWidget(self.which, 1)
        row.addWidget(self.note, 2)
        plots = QHBoxLayout()
        plots.addWidget(self.left)
        plots.addWidget(self.right)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addLayout(plots, 1)

    def show_report(self, report: dict[str, Any] | None) -> None:
        self.report = report
        self.which.blockSignals(True)
        self.which.clear()
        if report is not None and report.get("curves") is not None:
            self.which.addItems([EVERY, *report["classes"]])
        self.which.setEnabled(self.which.count() > 0)
        self.which.blockSignals(False)
        self._draw()

    def _draw(self, *_args) -> None:
        for widget in (self.left, self.right):
            widget.getPlotItem().clear()
            legend = widget.getPlotItem().legend
            if legend is not None:
                legend.clear()
        self.note.setText("")
        report = self.report
        if report is None:
            return
        if report.get("curves") is not None:
            self._draw_curves(report)
        elif report.get("residuals") is not None:
            self._draw_residuals(report["residuals"])

    def _draw_curves(self, report: dict[str, Any]) -> None:
        roc, pr = self.left.getPlotItem(), self.right.getPlotItem()
        roc.setTitle("ROC (one class against the rest)", color=TEXT, size="10pt")
        roc.setLabel("bottom", "false positive rate", color=TEXT)
        roc.setLabel("left", "true positive rate", color=TEXT)
        pr.setTitle("precision-recall", color=TEXT, size="10pt")
        pr.setLabel("bottom", "recall", color=TEXT)
        pr.setLabel("left", "precision", color=TEXT)
        roc.addLegend(offset=(-5, -5), labelTextColor=TEXT)  # bottom right: ROC's empty corner
        pr.addLegend(offset=(5, -5), labelTextColor=TEXT)  # bottom left
        roc.plot([0, 1], [0, 1], pen=pg.mkPen("#b0b0b0", style=Qt.PenStyle.DashLine))
        choice = self.which.currentText()
        names = report["classes"]
        chosen = range(len(names)) if choice in ("", EVERY) else [names.index(choice)]
        drawn, skipped = 0, []
        for k in chosen:
            curves = report["curves"][k]
            if curves is None:
                skipped.append(names[k])
                continue
            if drawn >= CURVES_SHOWN:
                continue
            pen = pg.mkPen(pg.intColor(k, hues=max(len(names), 2)), width=1.5)
            r, p = curves["roc"], curves["pr"]
            roc.plot(r["fpr"], r["tpr"], pen=pen, name=f"{names[k]} (AUC {r['auc']:.3f})")
            pr.plot(p["recall"], p["precision"], pen=pen, name=f"{names[k]} (AP {p['ap']:.3f})")
            drawn += 1
        notes = []
        if len(chosen) > CURVES_SHOWN:
            notes.append(f"the first {CURVES_SHOWN} classes drawn; choose one to see it")
        if skipped:
            notes.append(
                f"no curve for {', '.join(skipped[:3])}{' …' if len(skipped) > 3 else ''}: "
                f"absent from the test split or beyond the first {CURVE_CLASSES} classes"
            )
        self.note.setText("; ".join(notes))
        for plot in (roc, pr):
            plot.setRange(xRange=(0, 1), yRange=(0, 1.02), padding=0.02)

    def _draw_residuals(self, residuals: dict[str, np.ndarray]) -> None:
        left, right = self.left.getPlotItem(), self.right.getPlotItem()
        true, pred, residual = residuals["true"], residuals["pred"], residuals["residual"]
        left.setTitle("residuals (true − predicted) vs predicted", color=TEXT, size="10pt")
        left.setLabel("bottom", "predicted", color=TEXT)
        left.setLabel("left", "residual", color=TEXT)
        if len(pred):
            left.plot(
                [float(pred.min()), float(pred.max())],
                [0, 0],
                pen=pg.mkPen("#909090", style=Qt.PenStyle.DashLine),
            )
        brush = pg.mkBrush(31, 119, 180, 120)
        left.addItem(pg.ScatterPlotItem(pred, residual, size=5, pen=None, brush=brush))
        right.setTitle("residuals", color=TEXT, size="10pt")
        right.setLabel("bottom", "residual", color=TEXT)
        right.setLabel("left", "count", color=TEXT)
        if len(residual):
            counts, edges = np.histogram(residual, bins=30)
            right.plot(edges, counts, stepMode="center", fillLevel=0, brush=(91, 143, 199, 150))
        self.note.setText(f"{len(true):,} values shown")

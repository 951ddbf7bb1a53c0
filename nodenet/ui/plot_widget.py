"""pyqtgraph's plot widget, with everything it creates owned by the widget.

A pyqtgraph plot makes two context menus (the view box's and the plot's options) as
parentless ``QMenu`` trees, and ``QObject`` state groups beside them, all owned by Python.
They are freed only when the garbage collector breaks the reference cycles they sit in,
long after their plot is gone: the collector then deletes whole widget trees from a
wrapper's deallocation, in the middle of whatever the GUI thread was doing. The UI tests
crashed there (a use after free under ``QWidget::~QWidget``, inside ``gc.collect``).
Here they are children of the plot widget, so Qt deletes them with it, and the collector
only frees wrappers Qt has already invalidated.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget


class PlotWidget(pg.PlotWidget):
    """A ``pg.PlotWidget`` whose menus and state groups are its children."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        adopt_plot_objects(self, self.getPlotItem())


def adopt_plot_objects(owner: QWidget, plot: pg.PlotItem) -> None:
    """Make ``plot``'s parentless menus and state groups children of ``owner``."""
    menus = [plot.ctrlMenu, plot.getViewBox().menu]
    groups: list[QObject] = [plot.stateGroup]
    groups += getattr(plot.getViewBox().menu, "widgetGroups", [])
    for menu in menus:
        if menu is not None and menu.parent() is None:
            menu.setParent(owner, menu.windowFlags())  # keeps it a popup
    for group in groups:
        if group is not None and group.parent() is None:
            group.setParent(owner)

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


class PlotWidget(pg.PlotWidget):
    """A ``pg.PlotWidget`` whose menus and state groups are its children."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        plot = self.getPlotItem()
        menu = plot.getViewBox().menu  # pyqtgraph's ViewBoxMenu, with its state groups
        for group in (plot.stateGroup, *menu.widgetGroups):
            group.setParent(self)
        for popup in (plot.ctrlMenu, menu):
            popup.setParent(self, popup.windowFlags())  # keeps it a popup

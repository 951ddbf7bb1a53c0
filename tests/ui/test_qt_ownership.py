"""Qt deletes the widgets it shows; the garbage collector only frees their dead wrappers.

Widgets freed by the collector are deleted from a wrapper's deallocation, in the middle
of a collection: the UI tests crashed there (use after free under ``QWidget::~QWidget``
inside ``gc.collect``) while pyqtgraph's parentless menus were left for the collector.
"""

from __future__ import annotations

import gc

import shiboken6
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMenu, QWidget

from nodenet.ui.main_window import MainWindow
from nodenet.ui.plot_widget import PlotWidget
from nodenet.ui.training.panel import TABS


def widgets_left_for_the_collector() -> list[str]:
    """The live widgets in garbage cycles: the ones a collection would delete."""
    gc.set_debug(gc.DEBUG_SAVEALL)  # unreachable objects kept in gc.garbage, not freed
    try:
        gc.collect()
        return sorted(
            type(obj).__name__
            for obj in gc.garbage
            if isinstance(obj, QWidget) and shiboken6.isValid(obj)
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_a_plot_widget_owns_the_menus_pyqtgraph_makes_for_it(qtbot):
    plot = PlotWidget()
    qtbot.addWidget(plot)
    menus = [plot.getPlotItem().ctrlMenu, plot.getPlotItem().getViewBox().menu]
    assert all(isinstance(menu, QMenu) and menu.parent() is plot for menu in menus)
    assert all(menu.isWindow() for menu in menus)  # still popups, not embedded in the plot


def test_a_closed_main_window_leaves_no_widget_for_the_garbage_collector(qapp, qtbot):
    gc.collect()  # what earlier tests left
    window = MainWindow()  # not left to pytest-qt: this test deletes it
    window.show()
    qtbot.waitExposed(window)
    for tab in TABS:  # every plot of the Run panel shown
        window.training_panel.show_tab(tab)
        qapp.processEvents()
    window.document.undo_stack.setClean()
    window.close()
    window.deleteLater()
    qapp.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    del window
    assert widgets_left_for_the_collector() == []


def test_a_right_click_on_a_plot_still_pops_up_its_menu(qtbot):
    plot = PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(400, 300)
    plot.show()
    qtbot.waitExposed(plot)
    plot.plot([1, 2, 3], [3, 1, 2])
    shown = []

    def look() -> None:
        menu = QApplication.activePopupWidget()
        shown.append(menu)
        if menu is not None:
            shown.append([action.text() for action in menu.actions()])
            menu.close()

    QTimer.singleShot(200, look)  # the popup runs its own event loop until closed
    centre = plot.viewport().rect().center()
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.RightButton, pos=centre)
    qtbot.waitUntil(lambda: len(shown) > 0, timeout=5000)
    assert shown[0] is plot.getPlotItem().getViewBox().menu
    assert {"View All", "Plot Options", "Export..."} <= set(shown[1])

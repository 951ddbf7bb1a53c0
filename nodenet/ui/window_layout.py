"""Where the main window sits and how much room the Run panel gets.

Two jobs, both about what a person sees first:

- :func:`fit_to_screen` sizes the window to the screen it opens on. A first start
  takes :data:`DEFAULT_SIZE` where that fits with room to spare and the whole
  available area (maximized) where it does not, so a 1366x768 laptop sees every
  dock and the status bar; a saved geometry from a bigger screen is pulled back
  inside the available area.
- :func:`grow_run_area` gives the bottom dock area, where the Run panel lives,
  the height its curves need to be :data:`PLOT_HEIGHT` pixels tall, taking it
  from the canvas (which keeps at least :data:`MIN_CANVAS_HEIGHT`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QScrollArea, QTabBar

if TYPE_CHECKING:
    from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

DEFAULT_SIZE = QSize(1440, 880)
SPARE = 80  # the default size is used when the screen has this much more room on each axis
PLOT_HEIGHT = 300  # the loss and accuracy plots are at least this tall while training
MIN_CANVAS_HEIGHT = 110  # what the Run panel leaves of the canvas when it grows
VERTICAL = Qt.Orientation.Vertical


def available_geometry(window: QWidget) -> QRect:
    """The screen area the window may use (the work area, without panels and docks)."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect(QPoint(), DEFAULT_SIZE)


def first_geometry(available: QRect) -> tuple[QRect, bool]:
    """The window's geometry on a first start in ``available``, and whether to maximize.

    A screen with room to spare gets :data:`DEFAULT_SIZE`, centred; a smaller one
    gets all of its available area.
    """
    roomy = (
        available.width() >= DEFAULT_SIZE.width() + SPARE
        and available.height() >= DEFAULT_SIZE.height() + SPARE
    )
    if not roomy:
        return QRect(available), True
    rect = QRect(QPoint(), DEFAULT_SIZE)
    rect.moveCenter(available.center())
    return rect, False


def clamp_into(frame: QRect, available: QRect) -> QRect:
    """``frame`` shrunk to fit ``available`` and moved inside it."""
    rect = QRect(frame)
    rect.setWidth(min(rect.width(), available.width()))
    rect.setHeight(min(rect.height(), available.height()))
    rect.moveLeft(min(max(rect.left(), available.left()), available.right() - rect.width() + 1))
    rect.moveTop(min(max(rect.top(), available.top()), available.bottom() - rect.height() + 1))
    return rect


def fit_to_screen(window: QMainWindow, restored: bool) -> bool:
    """Size ``window`` for its screen; returns whether it should open maximized.

    ``restored``: a saved geometry was applied, to be kept unless it overflows the
    available area (a window saved on a larger screen, or one now unplugged).
    """
    available = available_geometry(window)
    if not restored:
        rect, maximize = first_geometry(available)
        window.setGeometry(rect)
        return maximize
    frame = window.frameGeometry()
    if available.contains(frame):
        return window.isMaximized()
    margins = frame.size() - window.geometry().size()  # the window manager's frame
    inside = clamp_into(frame, available)
    window.resize(inside.size() - margins)
    window.move(inside.topLeft())
    return False


def grow_run_area(window: QMainWindow, dock: QDockWidget, plot: QWidget) -> bool:
    """Make ``dock`` (in the bottom area) tall enough for ``plot`` to be
    :data:`PLOT_HEIGHT` high, as far as the canvas can give the room.

    The dock's widget may be a scroll area around the panel holding ``plot``: the
    panel then has to fit its viewport once the plot has grown. Returns whether the dock
    was asked to grow.
    """
    if dock.isHidden() or dock.isFloating() or not plot.isVisible():
        return False
    missing = PLOT_HEIGHT - plot.height()
    central = window.centralWidget()
    if missing <= 0 or central is None:
        return False
    scroll = dock.widget()
    if isinstance(scroll, QScrollArea) and scroll.widget() is not None:
        missing = scroll.widget().height() + missing - scroll.viewport().height()
    grow = min(missing, max(0, central.height() - MIN_CANVAS_HEIGHT))
    if grow <= 0:
        return False
    window.resizeDocks([dock], [dock.height() + _tab_bar_height(window, dock) + grow], VERTICAL)
    return True


def _tab_bar_height(window: QMainWindow, dock: QDockWidget) -> int:
    """The height of the tab bar under ``dock`` when it shares its place with other docks:
    :meth:`QMainWindow.resizeDocks` sizes the place, tab bar included."""
    if not window.tabifiedDockWidgets(dock):
        return 0
    bottom = dock.geometry().bottom()
    for bar in window.findChildren(QTabBar):
        if bar.parent() is window and bar.isVisible() and abs(bar.y() - bottom) <= 4:
            return bar.height()
    return 0

"""Starting the GUI: the application object and the first window.

``run(path)`` is what ``nodenet`` and ``nodenet FILE`` call: ``nodenet`` opens
the welcome page (new project, recent files, the samples), ``nodenet FILE``
that file, ``nodenet --new`` an empty project. The settings and recent files
are :mod:`nodenet.ui.settings`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication

from nodenet.ui.gui_thread_gc import collect_in_gui_thread
from nodenet.ui.settings import APPLICATION, ORGANIZATION

if TYPE_CHECKING:
    from nodenet.ui.main_window import MainWindow


def start_window(path: str | None, new: bool = False) -> MainWindow:
    """The main window as ``nodenet [FILE] [--new]`` opens it (not yet shown).

    ``path``: that project (when it cannot be read, the error is shown and the
    welcome page follows); ``new``: an empty canvas with one Input and one
    Output; neither: the welcome page.
    """
    from nodenet.ui.main_window import MainWindow

    window = MainWindow()
    if new:
        window.new_project(ask=False)
    elif path is None:
        window.welcome.show(returnable=False)
    elif not window.open_file(path, ask=False):
        print(f"nodenet: {path} could not be opened", file=sys.stderr)
        window.welcome.show(returnable=False)
    return window


def run(path: str | None, new: bool = False) -> int:
    """Start Qt, open the window as :func:`start_window` says, run the event loop.

    Returns the exit code of the event loop.
    """
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    collect_in_gui_thread()  # a cycle of Qt objects collected in a worker thread freezes the app
    window = start_window(path, new)
    if window.start_maximized:  # a small screen: all of it
        window.showMaximized()
    else:
        window.show()
    return app.exec()

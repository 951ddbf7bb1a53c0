"""Starting the GUI: the application object, its settings, recent files.

``run(path)`` is what ``nodenet`` and ``nodenet FILE`` call: ``nodenet`` opens
the welcome page (new project, recent files, the samples), ``nodenet FILE``
that file, ``nodenet --new`` an empty project. Settings (window
layout, recent files) live in an INI file under the user's configuration
directory, organization and application both ``nodenet``; tests point Qt's
INI path elsewhere or pass their own :class:`QSettings`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

if TYPE_CHECKING:
    from nodenet.ui.main_window import MainWindow

ORGANIZATION = "nodenet"
APPLICATION = "nodenet"
MAX_RECENT = 10
RECENT_KEY = "files/recent"


def app_settings() -> QSettings:
    """The user's nodenet settings (INI format, user scope)."""
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
    )


class RecentFiles:
    """Most recently used project files, newest first, kept in the settings."""

    def __init__(self, settings: QSettings, limit: int = MAX_RECENT):
        self.settings = settings
        self.limit = limit

    def paths(self) -> list[str]:
        value = self.settings.value(RECENT_KEY, [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(v) for v in value or []]

    def add(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        self._store([path, *(p for p in self.paths() if p != path)])

    def remove(self, path: str | Path) -> None:
        self._store([p for p in self.paths() if p != str(path)])

    def clear(self) -> None:
        self._store([])

    def _store(self, paths: list[str]) -> None:
        self.settings.setValue(RECENT_KEY, paths[: self.limit])
        self.settings.sync()


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
    window = start_window(path, new)
    if window.start_maximized:  # a small screen: all of it
        window.showMaximized()
    else:
        window.show()
    return app.exec()

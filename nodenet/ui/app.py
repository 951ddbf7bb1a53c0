"""Starting the GUI: the application object, its settings, the bundled samples, recent files.

``run(path)`` is what ``nodenet`` and ``nodenet FILE`` call. Settings (window
layout, recent files) live in an INI file under the user's configuration
directory, organization and application both ``nodenet``; tests point Qt's
INI path elsewhere or pass their own :class:`QSettings`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from nodenet.samples import sample_dir

ORGANIZATION = "nodenet"
APPLICATION = "nodenet"
DEFAULT_SAMPLE = "digits_mlp.json"
MAX_RECENT = 10
RECENT_KEY = "files/recent"


def app_settings() -> QSettings:
    """The user's nodenet settings (INI format, user scope)."""
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
    )


def sample_files() -> list[Path]:
    folder = sample_dir()
    return sorted(folder.glob("*.json")) if folder is not None else []


def default_sample() -> Path | None:
    folder = sample_dir()
    path = folder / DEFAULT_SAMPLE if folder is not None else None
    return path if path is not None and path.is_file() else None


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


def run(path: str | None, new: bool = False) -> int:
    """Open the main window on ``path`` (or the bundled sample, or a new project); run Qt.

    ``new`` starts from an empty canvas with one Input and one Output. Returns
    the exit code of the event loop.
    """
    from nodenet.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    window = MainWindow()
    opened = False
    if path is not None and not new:
        opened = window.open_file(path, ask=False)
        if not opened:
            print(f"nodenet: {path} could not be opened", file=sys.stderr)
    elif not new and default_sample() is not None:
        opened = window.open_sample(default_sample(), ask=False)
    if not opened:
        window.new_project(ask=False)
    window.show()
    return app.exec()

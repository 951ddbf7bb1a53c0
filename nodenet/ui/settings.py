"""The user's nodenet settings and the recent files kept in them.

Settings (window layout, recent files) live in an INI file under the user's
configuration directory, organization and application both ``nodenet``; tests
point Qt's INI path elsewhere or pass their own :class:`QSettings`. The window
takes its settings from here, not from the bootstrap module
(:mod:`nodenet.ui.app`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

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

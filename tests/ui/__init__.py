"""GUI tests (pytest-qt, offscreen)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

SAMPLE = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"


def isolated_settings(folder: Path) -> None:
    """Point every nodenet QSettings (INI, user scope) into ``folder``: tests never touch
    the user's settings."""
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))


def double_click(widget: QWidget, pos: QPoint) -> None:
    """What a person does: a click, then the second click that Qt reports as a double-click."""
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mouseClick(widget, left, none, pos)
    QTest.mouseDClick(widget, left, none, pos)

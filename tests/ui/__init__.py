"""GUI tests (pytest-qt, offscreen)."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

SAMPLE = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"
SCREEN = (1920, 1080)  # the offscreen screen the GUI tests run on (Qt's own default: 800x800)


def offscreen_platform(width: int, height: int, folder: Path) -> str:
    """A ``QT_QPA_PLATFORM`` value for Qt's offscreen platform with one screen of
    ``width`` x ``height`` pixels (its configuration file is written into ``folder``)."""
    screen = {"name": f"screen_{width}x{height}", "x": 0, "y": 0, "width": width}
    screen |= {"height": height, "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}
    config = folder / f"offscreen_{width}x{height}.json"
    config.write_text(json.dumps({"screens": [screen]}))
    return f"offscreen:configfile={config}"


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

"""Regenerate the screenshots in docs/images from the real app, offscreen.

    python docs/screenshots.py

Each picture is the main window (or a panel of it) rendered with
``QWidget.grab()`` on the offscreen Qt platform, so the script runs on a machine
without a display.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
SIZE = (1920, 1080)


def _app():
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    # never touch the user's settings
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    return app


def settle(app, rounds: int = 5) -> None:
    for _ in range(rounds):
        app.processEvents()


def editor(app) -> Path:
    """The editor on the two-input, two-output sample, one block selected."""
    from nodenet.ui.main_window import MainWindow

    window = MainWindow()
    window.resize(*SIZE)
    window.open_file(str(ROOT / "sample_projects" / "two_in_two_out.json"))
    window.docks["history"].hide()
    window.show()
    settle(app)
    window.canvas.fit_to_view()
    window.canvas.select_ids(["merged"])
    settle(app)
    path = IMAGES / "editor.png"
    window.grab().save(str(path))
    window.close()
    return path


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    app = _app()
    for shot in (editor,):
        print(f"wrote {shot(app).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

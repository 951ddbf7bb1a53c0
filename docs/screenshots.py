"""Regenerate the screenshots in docs/images from the real app, offscreen.

    QT_QPA_PLATFORM=offscreen python docs/screenshots.py [NAME ...]

NAME is one of the picture functions below (``editor``, ``tutorial``, ...); none
means all.
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


def _part(window, kind: str):
    """The picture of one part of the window (see ``tutorial_steps.Step.shot``)."""
    from PySide6.QtCore import QRect

    central = window.centralWidget().geometry()
    if kind == "export":
        return window.export_dialog.grab()
    if kind == "editor":  # menus, toolbar, palette, canvas, inspector: not the bottom docks
        return window.grab(QRect(0, 0, window.width(), central.bottom() + 1))
    if kind == "canvas":
        return window.grab(central)
    if kind == "run":
        return window.grab(window.docks["training"].geometry())
    if kind == "evaluation":  # all of the Evaluation tab, also what is scrolled out of view
        return window.training_panel.evaluation.grab()
    return window.grab()


def tutorial(app) -> Path:
    """docs/tutorial.md: every step run with real gestures (docs/tutorial_steps.py), a
    picture after each, and the project it ends with as docs/tutorial/two_branch.json."""
    import shutil

    import tutorial_steps as steps

    folder = IMAGES / "tutorial"
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    window = steps.start_window()
    window.show()
    settle(app)
    bot = steps.ScriptBot()
    for step in steps.STEPS:
        step.run(bot, window, work)
        settle(app, 20)
        if step.shot is not None:
            _part(window, step.shot).save(str(folder / f"{step.name}.png"))
    steps.PROJECT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / "two_branch.json", steps.PROJECT)
    window.document.undo_stack.setClean()
    window.close()
    return folder


def welcome(app) -> Path:
    """The welcome page as ``nodenet`` opens it, with two recent projects."""
    import shutil

    from nodenet.ui.app import start_window

    folder = Path(tempfile.gettempdir()) / "nodenet-docs" / "projects"
    folder.mkdir(parents=True, exist_ok=True)
    window = start_window(None)
    for sample, name in (("two_in_two_out", "image_and_metadata"), ("digits_mlp", "digits")):
        shutil.copyfile(ROOT / "sample_projects" / f"{sample}.json", folder / f"{name}.json")
        window.recent.add(folder / f"{name}.json")
    window.welcome.show(returnable=False)  # the recent list as it is now
    window.resize(1400, 900)
    window.show()
    settle(app)
    path = IMAGES / "welcome.png"
    window.grab().save(str(path))
    window.close()
    return path


def open_sample(app) -> Path:
    """File → Open Sample: every sample as a card with the thumbnail of its graph."""
    from nodenet.ui.app import start_window

    window = start_window(None, new=True)
    window.resize(1400, 900)
    window.show()
    dialog = window.welcome.choose_sample()
    settle(app)
    path = IMAGES / "open_sample.png"
    dialog.grab().save(str(path))
    dialog.reject()
    window.close()
    return path


SHOTS = (editor, tutorial, welcome, open_sample)


def main(argv: list[str] | None = None) -> int:
    """Regenerate the pictures named in ``argv`` (function names), or all of them."""
    shots = {shot.__name__: shot for shot in SHOTS}
    names = (sys.argv[1:] if argv is None else argv) or list(shots)
    unknown = [name for name in names if name not in shots]
    if unknown:
        print(f"unknown: {', '.join(unknown)}; choose from {', '.join(shots)}", file=sys.stderr)
        return 2
    IMAGES.mkdir(parents=True, exist_ok=True)
    app = _app()
    for name in names:
        print(f"wrote {shots[name](app).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

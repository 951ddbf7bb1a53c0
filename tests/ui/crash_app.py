"""A nodenet window that edits a project, waits for its autosave, then idles until killed.

Run by tests/ui/test_recovery.py in a subprocess: ``python -m tests.ui.crash_app PROJECT
SETTINGS_DIR``, with ``NODENET_RECOVERY_DIR`` and ``NODENET_AUTOSAVE_SECONDS`` set. It
prints ``autosaved <file>`` once the recovery file is written; the test then kills it
with SIGKILL. It quits by itself after three minutes, should the test never kill it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from tests.ui import isolated_settings

GIVE_UP_MS = 180_000


def make_edits(document) -> None:
    """The edits the test expects to recover (it applies them to the JSON itself)."""
    node = document.project.node("hidden_1")
    document.set_params("hidden_1", {**node.params, "units": 48})
    document.move_nodes({"hidden_2": (600.5, -40.0)})
    training = dict(document.project.training, epochs=7)
    document.set_section("training", training)
    document.rename("probs", "class_probs")


def main(project: str, settings_dir: str) -> int:
    isolated_settings(Path(settings_dir))
    app = QApplication(sys.argv[:1])
    from nodenet.ui.main_window import MainWindow

    window = MainWindow()
    if not window.open_file(project, ask=False):
        return 2
    make_edits(window.document)
    autosave = window.work_guard.autosave
    autosave.written.connect(lambda file: print(f"autosaved {file}", flush=True))
    window.show()
    QTimer.singleShot(GIVE_UP_MS, app.quit)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

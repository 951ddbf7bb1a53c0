"""A Qt application training a saved project with the GUI's TrainingWorker until killed.

Run by tests/ui/test_runs_worker.py in a subprocess: ``python -m tests.ui.runs_crash_app
PROJECT``; the test kills it with SIGKILL once the runs database holds a finished epoch.
It quits by itself after three minutes, should the test never kill it.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from nodenet.graph.project import load
from nodenet.ui.training.worker import TrainingController

GIVE_UP_MS = 180_000


def main(project_file: str) -> int:
    app = QApplication(sys.argv[:1])
    project = load(project_file)
    project.training.update(epochs=500, early_stopping=None)
    controller = TrainingController()
    controller.start(project)
    QTimer.singleShot(GIVE_UP_MS, app.quit)
    code = app.exec()
    controller.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

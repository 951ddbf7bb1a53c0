"""The Run panel: data and training settings, background training, live curves, evaluation.

``TrainingPanel(document)`` is the widget the main window docks; its
``run_action`` and ``stop_action`` belong in the Run menu, ``shutdown()`` in the
window's close handler and ``on_project_saved()`` after a save.
"""

from nodenet.ui.training.panel import TrainingPanel
from nodenet.ui.training.worker import TrainingController, TrainingWorker

__all__ = ["TrainingController", "TrainingPanel", "TrainingWorker"]

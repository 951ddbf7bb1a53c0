"""Where a run trains: the Run panel's "Run on" choice.

The nodenet engine (numpy, on the CPU, in the app's process), or PyTorch in a process of
its own (nodenet.torch_backend): on the CPU, on each GPU PyTorch finds, or on N processes
(torchrun). The choice belongs to the machine, not to the project: it is kept in the app's
settings (``run/backend``), and the project file stays the same. The GPUs are looked for
only when the list is opened (asking PyTorch takes a moment); without PyTorch, choosing it
says how to install it and goes back to the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QComboBox, QWidget

from nodenet.backend import NumpyBackend

SETTING = "run/backend"
ENGINE = "numpy"
PROCESSES = 2  # the torchrun entry's process count


def choice_text(choice: str) -> str:
    """The list's text for a stored choice: ``numpy``, ``torch:cpu``, ``torch:cuda:0``,
    ``torch:mps``, ``torchrun:N``."""
    if choice == ENGINE:
        return "nodenet engine (CPU)"
    kind, _, rest = choice.partition(":")
    if kind == "torchrun":
        return f"PyTorch on {rest} processes (torchrun, CPU)"
    if rest == "cpu":
        return "PyTorch CPU"
    if rest == "mps":
        return "PyTorch on Apple GPU (mps)"
    return f"PyTorch GPU {rest}"


class RunOnChooser(QComboBox):
    """The "Run on" list (see the module's text); ``message`` when a choice cannot be served."""

    message = Signal(str)

    def __init__(self, settings: QSettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.setToolTip(
            "Where Run trains: the nodenet engine in this process, or PyTorch in a process of "
            "its own (CPU, a GPU, or several processes). A choice of this machine, not saved "
            "in the project"
        )
        self._devices_found = False
        for choice in (ENGINE, "torch:cpu", f"torchrun:{PROCESSES}"):
            self.addItem(choice_text(choice), choice)
        stored = str(settings.value(SETTING, ENGINE))
        if self.findData(stored) < 0 and stored.startswith("torch:"):
            self.addItem(choice_text(stored), stored)  # a GPU seen last time
        self.setCurrentIndex(max(self.findData(stored), 0))
        self.activated.connect(self._chosen)

    @property
    def choice(self) -> str:
        return str(self.currentData())

    def showPopup(self) -> None:
        self._add_devices()
        super().showPopup()

    def _add_devices(self) -> None:
        """Each GPU PyTorch finds, once (importing PyTorch takes a moment)."""
        if self._devices_found:
            return
        self._devices_found = True
        from nodenet.torch_backend import available_devices, torch_installed

        if not torch_installed():
            return
        for device in available_devices():
            choice = f"torch:{device}"
            if device != "cpu" and self.findData(choice) < 0:
                self.insertItem(self.count() - 1, choice_text(choice), choice)

    def _chosen(self, _index: int) -> None:
        from nodenet.torch_backend import INSTALL, torch_installed

        if self.choice != ENGINE and not torch_installed():
            self.message.emit(f"PyTorch is not installed: {INSTALL}")
            self.setCurrentIndex(self.findData(ENGINE))
        self.settings.setValue(SETTING, self.choice)

    def factory(self) -> Callable[[], Any]:
        """What makes the chosen backend, for the training worker."""
        choice = self.choice
        if choice == ENGINE:
            return NumpyBackend
        kind, _, rest = choice.partition(":")

        def make() -> Any:
            from nodenet.torch_backend import TorchBackend

            if kind == "torchrun":
                return TorchBackend("cpu", int(rest))
            return TorchBackend(rest)

        return make

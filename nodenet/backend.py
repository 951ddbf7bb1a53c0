"""The seam between a project and what trains it: the :class:`Backend` protocol.

A backend builds one project's model, trains it with the project's settings
(reporting the typed events of :mod:`nodenet.engine.events` and calling callbacks
of :mod:`nodenet.engine.callbacks`), evaluates, predicts, and moves weights in and
out in Keras layouts (``node_id/weight_name`` -> array, the weights file's keys).
The command line and the GUI's worker go through it, so a second backend
(PyTorch, in its own process) changes neither. :class:`NumpyBackend`, the embedded
numpy engine, is the first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nodenet.engine.callbacks import Callback, GradientProbe
from nodenet.engine.events import (
    EPOCH_SECONDS,
    BatchEnd,
    EpochEnd,
    Event,
    Failed,
    Finished,
    History,
    Prepared,
    Sink,
)
from nodenet.runner import Run, build_run, write_predictions

Arrays = dict[str, np.ndarray]

__all__ = [
    "EPOCH_SECONDS",
    "Backend",
    "BatchEnd",
    "Callback",
    "EpochEnd",
    "Event",
    "Failed",
    "Finished",
    "GradientProbe",
    "History",
    "NumpyBackend",
    "Prepared",
    "hold_weights",
]


@runtime_checkable
class Backend(Protocol):
    """One project's model on one training backend.

    After :meth:`build`: ``data`` is the prepared data (``None`` when built without
    it), ``training`` the resolved training settings, ``outputs`` each Output id's
    loss name.
    """

    name: str
    data: Any  # nodenet.engine.data.PreparedData | None
    training: dict[str, Any]
    outputs: dict[str, str]

    def build(
        self,
        project: Any,
        *,
        seed: int | None = None,
        load_data: bool = True,
        allow_outside_data: bool = False,
    ) -> None:
        """Validate ``project``, build its model (seeded weights) and prepare its data."""

    def fit(
        self,
        *,
        on_event: Sink | None = None,
        callbacks: Sequence[Callback] = (),
        should_stop: Callable[[], bool] | None = None,
        epochs: int | None = None,
        progress_interval: float = 0.0,
    ) -> History:
        """Train on the training split; events in the order :mod:`nodenet.engine.events`
        states, ``should_stop`` polled before every batch."""

    def evaluate(
        self, inputs: Arrays | None = None, targets: Arrays | None = None
    ) -> dict[str, float] | None:
        """Loss and metrics (Keras names) on ``inputs``/``targets``, by default the test
        split (``None`` when there is none)."""

    def predict(self, inputs: Arrays, batch_size: int = 256) -> Arrays:
        """Outputs keyed by Output id, inference mode."""

    def get_weights(self) -> dict[str, np.ndarray]:
        """A copy of every weight, ``node_id/weight_name`` keys, Keras layouts."""

    def set_weights(self, weights: dict[str, np.ndarray], source: str = "weights") -> None:
        """Weights in, Keras layouts; :class:`WeightsError` naming ``source`` and the key."""

    def count_params(self) -> tuple[int, int]:
        """(trainable, non-trainable) scalar counts, as Keras counts them."""

    def save_weights(self, path: str | Path) -> Path:
        """Write the weights file (``.npz``, ``node_id/weight_name`` keys)."""

    def load_weights(self, path: str | Path) -> None:
        """Read a weights file written by :meth:`save_weights` (or by nodenet)."""


class NumpyBackend:
    """The embedded numpy engine (:mod:`nodenet.engine`) behind the :class:`Backend` seam."""

    name = "numpy"

    def __init__(self) -> None:
        self.run: Run | None = None

    # -- Backend -----------------------------------------------------------------------

    def build(
        self,
        project: Any,
        *,
        seed: int | None = None,
        load_data: bool = True,
        allow_outside_data: bool = False,
    ) -> None:
        self.run = build_run(
            project, load_data=load_data, seed=seed, allow_outside_data=allow_outside_data
        )

    @property
    def data(self) -> Any:
        return self._run.data

    @property
    def training(self) -> dict[str, Any]:
        return self._run.training

    @property
    def outputs(self) -> dict[str, str]:
        return {head.id: head.loss for head in self._run.model.heads}

    def fit(
        self,
        *,
        on_event: Sink | None = None,
        callbacks: Sequence[Callback] = (),
        should_stop: Callable[[], bool] | None = None,
        epochs: int | None = None,
        progress_interval: float = 0.0,
    ) -> History:
        return self._run.fit(
            on_event=on_event,
            callbacks=callbacks,
            should_stop=should_stop,
            epochs=epochs,
            progress_interval=progress_interval,
        )

    def evaluate(
        self, inputs: Arrays | None = None, targets: Arrays | None = None
    ) -> dict[str, float] | None:
        if inputs is None:
            return self._run.evaluate_test()
        from nodenet.engine.training import evaluate

        batch_size = max(self._run.training["batch_size"], 256)
        return evaluate(self._run.model, inputs, targets or {}, batch_size=batch_size)

    def predict(self, inputs: Arrays, batch_size: int = 256) -> Arrays:
        from nodenet.engine.training import predict  # arrays, or a folder read batch by batch

        return predict(self._run.model, inputs, batch_size)

    def get_weights(self) -> dict[str, np.ndarray]:
        return self._run.model.get_weights()

    def set_weights(self, weights: dict[str, np.ndarray], source: str = "weights") -> None:
        self._run.model.set_weights(weights, source=source)

    def count_params(self) -> tuple[int, int]:
        return self._run.model.count_params()

    def save_weights(self, path: str | Path) -> Path:
        return self._run.model.save_weights(path)

    def load_weights(self, path: str | Path) -> None:
        self._run.model.load_weights(path)

    # -- numpy only ------------------------------------------------------------------------

    @property
    def input_ids(self) -> list[str]:
        return list(self._run.model.input_ids)

    def write_predictions(
        self, inputs: Arrays, path: str | Path, batch_size: int = 256
    ) -> dict[str, tuple[int, ...]]:
        """Outputs for ``inputs`` streamed batch by batch into the ``.npz`` file ``path``
        (:func:`nodenet.runner.write_predictions`); each Output's array shape."""
        return write_predictions(self._run.model, inputs, path, batch_size)

    @property
    def _run(self) -> Run:
        if self.run is None:
            raise RuntimeError("build() the backend first")
        return self.run


def hold_weights(backend: Backend, project: Any, held: Arrays) -> list[str]:
    """Start blocks of ``project`` from the ``held`` weights that fit them (same
    ``node/name`` key and shape), imported or trained before: the frozen blocks
    (``Node.trainable`` false), which training then leaves as they are, and with the
    ``warm_start`` training setting every block, to fine-tune. The others start fresh.
    Returns the keys set."""
    nodes = list(project.nodes)
    if getattr(project, "groups", None):  # the frozen blocks inside instances too
        from nodenet.graph.groups import flatten

        nodes += flatten(project).project.nodes
    if project.training.get("warm_start"):
        chosen = {n.id for n in nodes}
    else:
        chosen = {n.id for n in nodes if not n.trainable}
    start = backend.get_weights()
    kept = {
        key: value
        for key, value in held.items()
        if _held_by(key, chosen) and key in start and np.shape(value) == start[key].shape
    }
    if kept:
        backend.set_weights({**start, **kept}, source="the frozen blocks' weights")
    return sorted(kept)


def _held_by(key: str, chosen: set[str]) -> bool:
    """Whether weight ``key`` (``node/name``, or ``instance/inner/.../name`` inside a group)
    belongs to a chosen block: the block itself or any group instance holding it (a frozen
    instance freezes everything inside; ``chosen`` may hold flattened ids too)."""
    parts = key.split("/")
    return any("/".join(parts[:k]) in chosen for k in range(1, len(parts)))

"""What a training run reports, as typed, frozen events, and the one place they are throttled.

:func:`nodenet.engine.training.fit` produces them, in this order::

    Prepared, (BatchEnd..., EpochEnd)..., then Finished or Failed

and hands each to one callable (``on_event``). The command line, the GUI's
worker (which forwards them as Qt signals), the panel and the plots consume
them. Metrics are named as Keras names its logs: ``loss``, ``accuracy``,
``val_loss``, ``<output>_loss`` for a model with several outputs,
``learning_rate``. Every value in ``metrics`` is a float meant to be shown:
consumers print or plot all of them, no deny-list.

Throttling happens here, in :class:`Throttle`, and nowhere else: ``fit``
builds a :class:`BatchEnd` only when the throttle asks for one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """Per-epoch logs (``loss``, metrics, ``val_*``, ``learning_rate``, ``epoch_seconds``) and
    how training ended."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    stopped: str | None = None  # None (ran every epoch), "early_stopping", "user"
    best_epoch: int | None = None
    restored_best: bool = False

    def series(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs if key in e]

    def to_dict(self) -> dict[str, Any]:
        keys = list(dict.fromkeys(k for e in self.epochs for k in e))
        return {
            "history": {k: self.series(k) for k in keys},
            "epochs": len(self.epochs),
            "stopped": self.stopped,
            "best_epoch": self.best_epoch,
            "restored_best": self.restored_best,
        }


@dataclass(frozen=True)
class Prepared:
    """The model is built and the data checked: training starts.

    ``train`` / ``val`` / ``test``: sample counts (``train`` after a
    ``validation_split``); ``batches``: batches per epoch; ``params``: all weights'
    scalar count; ``outputs``: the Output ids.
    """

    train: int
    val: int
    test: int
    epochs: int
    batches: int
    batch_size: int
    params: int
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class BatchEnd:
    """A batch was trained (throttled: not every batch is reported).

    ``epoch`` and ``batch`` count from 1; ``step`` counts every batch of the run.
    ``metrics``: running means over the epoch so far (``loss``, the metrics) and
    the ``learning_rate``; ``batch_loss``: the mean loss of the batches trained since
    the previous ``BatchEnd`` of the epoch (this batch's when every batch is reported).
    """

    epoch: int
    epochs: int
    batch: int
    batches: int
    step: int
    metrics: Mapping[str, float]
    batch_loss: float
    samples_per_sec: float

    @property
    def loss(self) -> float:
        return self.metrics["loss"]


EPOCH_SECONDS = "epoch_seconds"  # the log key of an epoch's duration (an EpochEnd field)


@dataclass(frozen=True)
class EpochEnd:
    """An epoch ended: its logs as Keras names them (``val_*`` included), every one a value
    to show, and how long it took."""

    epoch: int
    epochs: int
    metrics: Mapping[str, float]
    step: int = 0
    epoch_seconds: float = 0.0


@dataclass(frozen=True)
class Finished:
    """Training ended normally (every epoch, early stopping, or a stop request).

    ``steps``: batches trained; ``samples``: samples trained over all epochs;
    ``seconds``: the time inside ``fit``.
    """

    history: History
    steps: int = 0
    samples: int = 0
    seconds: float = 0.0

    @property
    def samples_per_sec(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Failed:
    """Training stopped on an error; ``message`` names what went wrong."""

    message: str


Event = Prepared | BatchEnd | EpochEnd | Finished | Failed
Sink = Callable[[Event], None]


class Throttle:
    """Hands events to ``sink`` at most every ``interval`` seconds, in order, losing none
    but the batches it never asks for.

    ``wants_batch(last)`` tells ``fit`` whether to build a :class:`BatchEnd`: when
    ``interval`` has passed since the previous delivery, or for the last batch of an
    epoch. Events that are not due (that last batch, an epoch's end) are held and
    delivered with the next due one, so a run of short epochs wakes a GUI once per
    interval, not once per epoch; :meth:`flush` delivers what is held (the end of a run).
    With ``interval`` 0 every event goes out at once.
    """

    def __init__(self, sink: Sink | None, interval: float = 0.0):
        self.sink = sink
        self.interval = interval
        self._last = -math.inf
        self._due = False
        self._held: list[Event] = []

    def wants_batch(self, last: bool) -> bool:
        if self.sink is None:
            return False
        self._due = time.perf_counter() - self._last >= self.interval
        return self._due or last

    def batch(self, event: BatchEnd) -> None:
        """A batch ``wants_batch`` asked for."""
        if self._due:
            self._deliver(event)
        else:
            self._held.append(event)

    def epoch(self, event: EpochEnd) -> None:
        if self.sink is None:
            return
        if time.perf_counter() - self._last >= self.interval:
            self._deliver(event)
        else:
            self._held.append(event)

    def now(self, event: Event) -> None:
        """Deliver at once, after everything held (Prepared, Finished, Failed); the first
        batch after it is still due."""
        if self.sink is not None:
            self.flush()
            self.sink(event)

    def flush(self) -> None:
        held, self._held = self._held, []
        for event in held:
            self.sink(event)

    def _deliver(self, event: Event) -> None:
        self.flush()
        self._last = time.perf_counter()
        self.sink(event)

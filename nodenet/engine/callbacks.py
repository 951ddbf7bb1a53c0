"""Callbacks with the shape of ``keras.callbacks.Callback``, and the ones training uses.

``fit`` calls, in order: ``on_train_begin``; per epoch ``on_epoch_begin(epoch)``, per
batch ``on_gradients(batch, grads)`` (nodenet's addition: the weight gradients of the
batch, regularization included, before the optimizer step) and
``on_train_batch_end(batch, logs)``, then ``on_epoch_end(epoch, logs)``; finally
``on_train_end``. ``epoch`` and ``batch`` count from 0, as in Keras. A callback sees the
run through ``self.state`` (:class:`TrainingState`: the model, the optimizer, the
history) and ends training by setting ``state.stop_training``, like Keras's
``model.stop_training``.

:class:`EarlyStopping` and :class:`ReduceLROnPlateau` reproduce Keras's;
:class:`GradientProbe` keeps the latest gradients for the GUI's histograms.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nodenet.engine.events import History
from nodenet.engine.metrics import direction_of
from nodenet.engine.schedules import REDUCE_LR_PARAMS, check_fields
from nodenet.errors import ParamError, TrainingError

_F32 = np.float32
Logs = dict[str, float]


@dataclass
class TrainingState:
    """What a callback may read and change during ``fit``."""

    model: Any  # nodenet.engine.model.Model
    optimizer: Any
    history: History
    stop_training: bool = False


class Callback:
    """Does nothing; subclasses override the hooks they need (Keras's names and arguments)."""

    state: TrainingState | None = None

    def set_state(self, state: TrainingState) -> None:
        self.state = state

    def on_train_begin(self, logs: Logs | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        pass

    def on_gradients(self, batch: int, grads: dict[str, np.ndarray]) -> None:
        pass

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        pass

    def on_train_end(self, logs: Logs | None = None) -> None:
        pass


def _overrides(callback: Callback, hook: str) -> bool:
    return getattr(type(callback), hook) is not getattr(Callback, hook)


class CallbackList:
    """Calls every callback's hook in order; the per-batch hooks only of those that have one,
    and the batch logs are computed only when one of them wants them."""

    def __init__(self, callbacks: Iterable[Callback], state: TrainingState):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_state(state)
        self._gradients = [c for c in self.callbacks if _overrides(c, "on_gradients")]
        self._batch_end = [c for c in self.callbacks if _overrides(c, "on_train_batch_end")]

    def on_train_begin(self) -> None:
        for callback in self.callbacks:
            callback.on_train_begin()

    def on_epoch_begin(self, epoch: int) -> None:
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch)

    def on_gradients(self, batch: int, grads: dict[str, np.ndarray]) -> None:
        for callback in self._gradients:
            callback.on_gradients(batch, grads)

    def on_train_batch_end(self, batch: int, logs: Callable[[], Logs]) -> None:
        """``logs`` is called (once) only if some callback has this hook."""
        if self._batch_end:
            values = logs()
            for callback in self._batch_end:
                callback.on_train_batch_end(batch, values)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_train_end(self) -> None:
        for callback in self.callbacks:
            callback.on_train_end()


def from_settings(
    early_stopping: dict[str, Any] | None, reduce_lr_on_plateau: dict[str, Any] | None
) -> list[Callback]:
    """The callbacks a project's ``training`` settings ask for (plateau first, as Keras
    would be given them by nodenet's exported code)."""
    callbacks: list[Callback] = []
    if reduce_lr_on_plateau:
        callbacks.append(ReduceLROnPlateau(**reduce_lr_on_plateau))
    if early_stopping:
        callbacks.append(EarlyStopping(early_stopping))
    return callbacks


class EarlyStopping(Callback):
    """keras.callbacks.EarlyStopping: monitor, min_delta, patience, mode, restore_best.

    Stops when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs (never after the first epoch). At the end of training, with
    ``restore_best``, the weights of the best epoch come back; the history records
    the best epoch (from 1) and whether its weights were restored.
    """

    def __init__(self, config: dict[str, Any]):
        self.monitor = config.get("monitor", "val_loss")
        self.patience = int(config.get("patience", 0))
        self.min_delta = abs(float(config.get("min_delta", 0.0)))
        self.restore = bool(config.get("restore_best", config.get("restore_best_weights", False)))
        mode = config.get("mode", "auto")
        if mode == "auto":
            mode = "max" if direction_of(self.monitor) == "up" else "min"
        self.sign = 1.0 if mode == "max" else -1.0
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.best = -math.inf
        self.best_epoch: int | None = None
        self.best_weights: dict[str, np.ndarray] | None = None
        self.wait = 0

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise TrainingError(
                f"early_stopping monitors {self.monitor!r}, which training does not report "
                f"(it reports: {', '.join(sorted(logs))})"
            )
        model = self.state.model
        current = self.sign * logs[self.monitor]
        if self.restore and self.best_weights is None:
            self.best_weights = model.get_weights()
        self.wait += 1
        if current - self.min_delta > self.best:
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore:
                self.best_weights = model.get_weights()
            return
        if self.wait >= self.patience and epoch > 0:
            self.state.stop_training = True
            self.state.history.stopped = "early_stopping"

    def on_train_end(self, logs: Logs | None = None) -> None:
        history = self.state.history
        history.best_epoch = None if self.best_epoch is None else self.best_epoch + 1
        if self.restore and self.best_weights is not None:
            self.state.model.set_weights(self.best_weights)
            history.restored_best = True


class ReduceLROnPlateau(Callback):
    """Divide the learning rate when a monitored quantity stops improving.

    Like ``keras.callbacks.ReduceLROnPlateau``: after ``patience`` epochs
    without an improvement larger than ``min_delta`` the rate becomes
    ``max(rate * factor, min_lr)`` (if it is still above ``min_lr``), then
    ``cooldown`` epochs pass before counting again. ``mode="auto"`` minimizes
    losses, errors and maximizes accuracies, precision, recall, AUC.

    Settings come as a dict, as keywords (``ReduceLROnPlateau(patience=3)``) or
    both. Give the ``optimizer`` to read and set its ``learning_rate`` (inside
    ``fit``, the run's optimizer is used); without one, ``logs["learning_rate"]``
    is read and the caller sets the returned rate. Like Keras, ``on_epoch_end``
    writes the rate in use into ``logs["learning_rate"]``.
    """

    def __init__(
        self,
        config: dict | None = None,
        /,
        *,
        optimizer: Any = None,
        field: str = "training.reduce_lr_on_plateau",
        **settings: Any,
    ):
        config = {**(config or {}), **settings}
        values, errors = check_fields(REDUCE_LR_PARAMS, config, field)
        if errors:
            raise errors[0]
        self.config = values
        self.optimizer = optimizer
        mode = values["mode"]
        if mode == "auto":
            direction = direction_of(values["monitor"])
            if direction is None:
                raise ParamError(
                    f"{field}.mode: cannot tell whether {values['monitor']!r} should fall or"
                    ' rise; set mode to "min" or "max"',
                    f"{field}.mode",
                )
            mode = "max" if direction == "up" else "min"
        self.maximize = mode == "max"
        self.reset()

    def set_state(self, state: TrainingState) -> None:
        super().set_state(state)
        if self.optimizer is None:
            self.optimizer = state.optimizer

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the best value and the counters (Keras's ``on_train_begin``)."""
        self.best: float | None = None
        self.wait = 0
        self.cooldown_counter = 0

    def _improved(self, current: float) -> bool:
        if self.best is None:
            return True
        delta = self.config["min_delta"]
        if self.maximize:
            return current - delta > self.best
        return current + delta < self.best

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> float | None:
        """The new learning rate when it is reduced after this epoch, else ``None``."""
        logs = {} if logs is None else logs
        source = self.optimizer.learning_rate if self.optimizer is not None else None
        old_lr = float(logs["learning_rate"] if source is None else source)
        logs["learning_rate"] = old_lr
        current = logs.get(self.config["monitor"])
        if current is None:
            warnings.warn(
                f"ReduceLROnPlateau watches {self.config['monitor']!r}, which is not logged"
                f" (logged: {', '.join(logs)})",
                stacklevel=2,
            )
            return None
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(float(current)):
            self.best = float(current)
            self.wait = 0
            return None
        if self.cooldown_counter > 0:
            return None
        self.wait += 1
        if self.wait < self.config["patience"] or not old_lr > _F32(self.config["min_lr"]):
            return None
        new_lr = float(_F32(max(old_lr * self.config["factor"], self.config["min_lr"])))
        if self.optimizer is not None:
            self.optimizer.learning_rate = new_lr
        self.cooldown_counter = self.config["cooldown"]
        self.wait = 0
        return new_lr


class GradientProbe(Callback):
    """Keeps the weight gradients of the latest training batch (``node/name`` keys)."""

    def __init__(self) -> None:
        self.latest: dict[str, np.ndarray] | None = None

    def on_gradients(self, batch: int, grads: dict[str, np.ndarray]) -> None:
        self.latest = grads

"""fit / evaluate / predict: one training loop for the GUI, the command line and the tests.

Progress goes to plain callables receiving plain dicts; ``should_stop`` is polled
before every batch, so a stop request ends training within one batch and leaves
the model usable. Nothing here knows about Qt or terminals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nodenet.engine.losses import get_loss
from nodenet.engine.metrics import direction_of, make_metric
from nodenet.engine.model import Model, _length
from nodenet.engine.optimizers import make_optimizer
from nodenet.engine.runtime import tune_allocator
from nodenet.engine.schedules import ReduceLROnPlateau
from nodenet.errors import DataError, TrainingError

Arrays = dict[str, np.ndarray]
Callback = Callable[[dict[str, Any]], None]


@dataclass
class History:
    """Per-epoch logs (``loss``, metrics, ``val_*``, ``learning_rate``) and how training ended."""

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


class _Scorer:
    """Losses and metrics of every head over a pass, Keras-named."""

    def __init__(self, model: Model, targets: Arrays):
        self.model = model
        self.multi = len(model.heads) > 1
        self.losses = {h.id: get_loss(h.loss) for h in model.heads}
        self.metrics = {}
        for h in model.heads:
            y_shape = targets[h.id].shape
            out_shape = (None, *model.shapes[h.id])
            for name in h.metrics:
                self.metrics[self.key(h.id, name)] = make_metric(name, h.loss, y_shape, out_shape)
        self.reset()

    def key(self, head_id: str, name: str) -> str:
        return f"{head_id}_{name}" if self.multi else name

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0
        for metric in self.metrics.values():
            metric.reset()

    def score(
        self, outputs: Arrays, targets: Arrays, weights: np.ndarray | None, want_grads: bool
    ) -> tuple[float, Arrays]:
        """The weighted total loss of a batch and dL/d(output) per head; updates metrics."""
        total, grads = 0.0, {}
        n = len(next(iter(targets.values())))
        for h in self.model.heads:
            loss, y_true, y_pred = self.losses[h.id], targets[h.id], outputs[h.id]
            if h.fused_activation and want_grads:
                value, grad = loss.fused(y_true, y_pred, h.fused_activation, weights)
            else:
                value, grad = loss(y_true, y_pred, weights)
            total += h.loss_weight * value
            if want_grads:
                grads[h.id] = (
                    grad
                    if h.loss_weight == 1.0
                    else grad * np.asarray(h.loss_weight, dtype=grad.dtype)
                )
            if self.multi:
                self._add(f"{h.id}_loss", value, n)
            for name in h.metrics:
                self.metrics[self.key(h.id, name)].update(y_true, y_pred, weights)
        return total, grads

    def _add(self, key: str, value: float, n: int) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + value * n

    def add_total(self, value: float, n: int) -> None:
        self._add("loss", value, n)
        self.count += n

    def results(self, prefix: str = "") -> dict[str, float]:
        out = {prefix + k: v / max(self.count, 1) for k, v in self.sums.items()}
        out.update({prefix + k: float(m.result()) for k, m in self.metrics.items()})
        return out


def _sample_weights(model: Model, targets: Arrays, class_weight: dict | None):
    if not class_weight:
        return None
    if len(model.heads) != 1:
        raise TrainingError("class_weight needs a model with exactly one Output")
    y = targets[model.heads[0].id]
    labels = y.argmax(axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y))
    labels = np.rint(labels).astype(int)
    table = {int(k): float(v) for k, v in class_weight.items()}
    return np.array([table.get(int(c), 1.0) for c in labels], dtype=np.float32)


def split_validation(x: Arrays, y: Arrays, fraction: float):
    """The last ``fraction`` of the samples, as Keras's ``validation_split`` takes them."""
    n = _length({**x, **y})
    cut = n - math.floor(n * fraction) if fraction > 0 else n
    if fraction > 0 and (cut == n or cut == 0):
        raise DataError(f"validation_split {fraction} of {n} samples leaves a split empty")
    head = ({k: v[:cut] for k, v in x.items()}, {k: v[:cut] for k, v in y.items()})
    tail = ({k: v[cut:] for k, v in x.items()}, {k: v[cut:] for k, v in y.items()})
    return head, (tail if fraction > 0 else None)


class _EarlyStopping:
    """keras.callbacks.EarlyStopping: monitor, min_delta, patience, mode, restore_best."""

    def __init__(self, config: dict[str, Any], model: Model):
        self.monitor = config.get("monitor", "val_loss")
        self.patience = int(config.get("patience", 0))
        self.min_delta = abs(float(config.get("min_delta", 0.0)))
        self.restore = bool(config.get("restore_best", config.get("restore_best_weights", False)))
        mode = config.get("mode", "auto")
        if mode == "auto":
            mode = "max" if direction_of(self.monitor) == "up" else "min"
        self.sign = 1.0 if mode == "max" else -1.0
        self.model = model
        self.best = -math.inf
        self.best_epoch: int | None = None
        self.best_weights: dict[str, np.ndarray] | None = None
        self.wait = 0

    def update(self, epoch: int, logs: dict[str, float]) -> bool:
        """Record an epoch; True when training should stop."""
        if self.monitor not in logs:
            raise TrainingError(
                f"early_stopping monitors {self.monitor!r}, which training does not report "
                f"(it reports: {', '.join(sorted(logs))})"
            )
        current = self.sign * logs[self.monitor]
        if self.restore and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if current - self.min_delta > self.best:
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore:
                self.best_weights = self.model.get_weights()
            return False
        return self.wait >= self.patience and epoch > 0


def fit(
    model: Model,
    x: Arrays,
    y: Arrays,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    optimizer: dict[str, Any] | Any = None,
    validation_data: tuple[Arrays, Arrays] | None = None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    seed: int | None = None,
    class_weight: dict | None = None,
    early_stopping: dict[str, Any] | None = None,
    reduce_lr_on_plateau: dict[str, Any] | None = None,
    on_batch: Callback | None = None,
    on_epoch: Callback | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress_interval: float = 0.0,
) -> History:
    """Train ``model`` on inputs ``x`` and targets ``y`` (keyed by Input / Output id).

    ``on_batch`` receives ``{"epoch", "batch", "batches", "loss", <metrics>,
    "learning_rate", "samples_per_sec"}`` after each batch (running means over
    the epoch), at most every ``progress_interval`` seconds but always for an
    epoch's last batch; ``on_epoch`` receives the epoch's logs, ``val_*`` included.
    Raises :class:`TrainingError` when the loss becomes NaN or infinite (the
    weights stay those of the last finite step).
    """
    tune_allocator()
    x = model.check_inputs(x)
    y = {k: np.asarray(v) for k, v in y.items()}
    missing = [h.id for h in model.heads if h.id not in y]
    if missing:
        raise DataError(f"no targets for the Output {missing[0]!r}")
    if validation_data is None and validation_split:
        (x, y), validation_data = split_validation(x, y, validation_split)
    if validation_data is not None:
        validation_data = (model.check_inputs(validation_data[0]), validation_data[1])
    n = _length({**x, **y})
    if n == 0:
        raise DataError("there are no training samples")
    opt = (
        optimizer if hasattr(optimizer, "apply") else make_optimizer(optimizer or {"name": "adam"})
    )
    params, _ = model.trainable()
    weights_all = _sample_weights(model, y, class_weight)
    stopper = _EarlyStopping(early_stopping, model) if early_stopping else None
    plateau = ReduceLROnPlateau(**reduce_lr_on_plateau) if reduce_lr_on_plateau else None
    order_rng = np.random.default_rng(seed)
    dropout_rng = np.random.default_rng(None if seed is None else [seed, 1])
    scorer = _Scorer(model, y)
    history = History()
    batches = math.ceil(n / batch_size)
    last_report = -math.inf
    for epoch in range(epochs):
        scorer.reset()
        order = order_rng.permutation(n) if shuffle else np.arange(n)
        start_time = time.perf_counter()
        for b in range(batches):
            if should_stop is not None and should_stop():
                history.stopped = "user"
                break
            idx = order[b * batch_size : (b + 1) * batch_size]
            if shuffle:
                idx = np.sort(idx)  # sorted gathers are cache-friendlier; the set is the same
            xb = {k: v[idx] for k, v in x.items()}
            yb = {k: v[idx] for k, v in y.items()}
            wb = None if weights_all is None else weights_all[idx]
            outputs = model.forward(xb, training=True, rng=dropout_rng)
            loss, out_grads = scorer.score(outputs, yb, wb, want_grads=True)
            grads = model.backward(out_grads)
            loss += model.regularization(grads)
            if not math.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss} at epoch {epoch + 1}, batch {b + 1}: training "
                    "stopped (try a lower learning rate, or check the data for extreme values)"
                )
            opt.apply(params, grads)
            scorer.add_total(loss, len(idx))
            now = time.perf_counter()
            due = now - last_report >= progress_interval or b == batches - 1
            if on_batch is not None and due:
                last_report = now
                elapsed = now - start_time
                on_batch(
                    {
                        "epoch": epoch + 1,
                        "batch": b + 1,
                        "batches": batches,
                        **scorer.results(),
                        "learning_rate": float(opt.learning_rate),
                        "samples_per_sec": scorer.count / max(elapsed, 1e-9),
                    }
                )
        if history.stopped == "user" and scorer.count == 0:
            break
        logs = scorer.results()
        if validation_data is not None:
            logs.update(evaluate(model, *validation_data, batch_size=batch_size, prefix="val_"))
        logs["learning_rate"] = float(opt.learning_rate)
        logs["epoch_seconds"] = time.perf_counter() - start_time
        history.epochs.append(logs)
        if on_epoch is not None:
            on_epoch({"epoch": epoch + 1, "epochs": epochs, **logs})
        if history.stopped == "user":
            break
        if plateau is not None:
            new_lr = plateau.on_epoch_end(epoch, logs)
            if new_lr is not None:
                opt.learning_rate = new_lr
        if stopper is not None and stopper.update(epoch, logs):
            history.stopped = "early_stopping"
            break
    if stopper is not None:
        history.best_epoch = None if stopper.best_epoch is None else stopper.best_epoch + 1
        if stopper.restore and stopper.best_weights is not None:
            model.set_weights(stopper.best_weights)
            history.restored_best = True
    return history


def evaluate(
    model: Model, x: Arrays, y: Arrays, batch_size: int = 256, prefix: str = ""
) -> dict[str, float]:
    """Loss and metrics over all samples, in inference mode (Keras ``evaluate``).

    The batch is made smaller than ``batch_size`` when its forward pass would not
    fit the memory budget (:meth:`Model.inference_batch`).
    """
    x = model.check_inputs(x, cast=False)
    n = _length({**x, **y})
    if n == 0:
        raise DataError("there are no samples to evaluate")
    batch_size = model.inference_batch(batch_size)
    scorer = _Scorer(model, y)
    for start in range(0, n, batch_size):
        xb = model.cast_batch({k: v[start : start + batch_size] for k, v in x.items()})
        yb = {k: v[start : start + batch_size] for k, v in y.items()}
        loss, _ = scorer.score(model.forward(xb, training=False), yb, None, want_grads=False)
        scorer.add_total(loss + model.regularization(), len(next(iter(yb.values()))))
    return scorer.results(prefix)


def predict(model: Model, x: Arrays, batch_size: int = 256) -> Arrays:
    """Outputs keyed by Output id (inference mode)."""
    return model.predict(x, batch_size)

"""fit / evaluate / predict: one training loop for the GUI, the command line and the tests.

Progress goes out as typed events (:mod:`nodenet.engine.events`) to one callable,
throttled in one place (:class:`~nodenet.engine.events.Throttle`); early stopping,
the learning-rate plateau and any other hook are callbacks with Keras's shape
(:mod:`nodenet.engine.callbacks`). ``should_stop`` is polled before every batch, so a
stop request ends training within one batch and leaves the model usable. Nothing
here knows about Qt or terminals.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nodenet.engine.adapt import adapt
from nodenet.engine.callbacks import Callback, CallbackList, TrainingState, from_settings
from nodenet.engine.data.stream import is_streamed
from nodenet.engine.events import (
    EPOCH_SECONDS,
    BatchEnd,
    EpochEnd,
    Failed,
    Finished,
    History,
    Prepared,
    Sink,
    Throttle,
)
from nodenet.engine.losses import get_loss
from nodenet.engine.metrics import make_metric
from nodenet.engine.model import Model, _length
from nodenet.engine.optimizers import make_optimizer
from nodenet.engine.runtime import tune_allocator
from nodenet.errors import DataError, NodenetError, TrainingError

Arrays = dict[str, np.ndarray]
__all__ = ["History", "evaluate", "fit", "predict", "split_validation"]


class _Scorer:
    """Losses and metrics of every head over a pass, Keras-named."""

    def __init__(self, model: Model, targets: Arrays):
        self.model = model
        self.multi = len(model.heads) > 1
        self.losses = {
            h.id: get_loss(h.loss, h.from_logits, h.label_smoothing) for h in model.heads
        }
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


def validation_cut(n: int, fraction: float) -> int:
    """How many of ``n`` samples stay for training under ``validation_split=fraction``.

    Keras's rule exactly (``train_validation_split``): ``floor(n * (1.0 - fraction))``
    in float64, so 1797 samples at 0.1 keep 1617 for training (``1797 * 0.9`` is
    1617.29…) and validate on 180, one more than ``floor(1797 * 0.1)``. Raises
    :class:`DataError` when a part would be empty, as Keras does.
    """
    if not fraction:
        return n
    cut = math.floor(n * (1.0 - fraction))
    if cut <= 0 or cut >= n:
        raise DataError(
            f"validation_split {fraction} of {n} samples leaves {cut} for training and "
            f"{n - cut} for validation: provide more data or another validation_split"
        )
    return cut


def split_validation(x: Arrays, y: Arrays, fraction: float):
    """The last samples, as Keras's ``validation_split`` takes them (:func:`validation_cut`)."""
    n = _length({**x, **y})
    cut = validation_cut(n, fraction)
    head = (
        {k: _rows(v, slice(None, cut)) for k, v in x.items()},
        {k: v[:cut] for k, v in y.items()},
    )
    tail = (
        {k: _rows(v, slice(cut, None)) for k, v in x.items()},
        {k: v[cut:] for k, v in y.items()},
    )
    return head, (tail if fraction > 0 else None)


def _rows(values, rows: slice):
    """Rows of an array, or of a streamed column (still streamed)."""
    return values.subset(rows) if getattr(values, "streamed", False) else values[rows]


def _checked(model: Model, x, cast: bool = True):
    """``model.check_inputs``, or for streamed inputs a check of their sample shapes."""
    if not is_streamed(x):
        return model.check_inputs(x, cast=cast)
    if set(x) != set(model.input_ids) or len(x) != 1:
        raise DataError(
            "a streamed folder dataset feeds a model with exactly one Input "
            f"(this one has {', '.join(model.input_ids)})"
        )
    for node_id, column in x.items():
        shape = model.shapes[node_id]
        sample = column.shape[1:]
        if len(sample) != len(shape) or any(
            d is not None and d != a for d, a in zip(shape, sample, strict=False)
        ):
            raise DataError(
                f"{node_id}: the data has shape {list(sample)} but the Input has shape "
                f"{list(shape)}"
            )
    return x


def _batches(model: Model, x, y: Arrays, order: np.ndarray, batch_size: int, sort: bool, weights):
    """``(positions, inputs, targets, weights)`` per batch of ``order``; streamed inputs are
    read ahead in a background thread, and their unreadable files left out of the batch."""
    if is_streamed(x):
        ((key, column),) = x.items()
        for positions, batch in column.batches(order, batch_size, sort=sort):
            yield (
                positions,
                model.cast_batch({key: batch}),
                {k: v[positions] for k, v in y.items()},
                None if weights is None else weights[positions],
            )
        return
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if sort:
            idx = np.sort(idx)  # sorted gathers are cache-friendlier; the set is the same
        yield (
            idx,
            {k: v[idx] for k, v in x.items()},
            {k: v[idx] for k, v in y.items()},
            None if weights is None else weights[idx],
        )


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
    callbacks: Sequence[Callback] = (),
    on_event: Sink | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress_interval: float = 0.0,
    test_samples: int = 0,
) -> History:
    """Train ``model`` on inputs ``x`` and targets ``y`` (keyed by Input / Output id).

    ``x`` (and the validation inputs) may be a folder dataset's streamed column
    (:class:`nodenet.engine.data.stream.StreamedColumn`) instead of an array: its
    batches are then decoded ahead in a background thread, in the same shuffled order
    an array would be gathered in, and a file that cannot be read leaves its batch.

    ``on_event`` receives :class:`Prepared`, then :class:`BatchEnd` (at most every
    ``progress_interval`` seconds, and each epoch's last batch) and :class:`EpochEnd`
    events, then :class:`Finished` or :class:`Failed`; see :class:`Throttle` for
    when they go out. ``early_stopping`` and ``reduce_lr_on_plateau`` (the project's
    settings) become callbacks run before ``callbacks``. ``test_samples`` is only
    reported in :class:`Prepared`. First, blocks whose weights are statistics of the
    data (Normalization) and were not given weights adapt to the training samples
    (:mod:`nodenet.engine.adapt`), the validation split left out.
    Raises :class:`TrainingError` when the loss becomes NaN or infinite (the
    weights stay those of the last finite step).
    """
    tune_allocator()
    x = _checked(model, x)
    y = {k: np.asarray(v) for k, v in y.items()}
    missing = [h.id for h in model.heads if h.id not in y]
    if missing:
        raise DataError(f"no targets for the Output {missing[0]!r}")
    if validation_data is None and validation_split:
        (x, y), validation_data = split_validation(x, y, validation_split)
    if validation_data is not None:
        validation_data = (_checked(model, validation_data[0]), validation_data[1])
    n = _length({**x, **y})
    if n == 0:
        raise DataError("there are no training samples")
    adapt(model, x)  # Normalization blocks learn their statistics (unless given weights)
    opt = (
        optimizer if hasattr(optimizer, "apply") else make_optimizer(optimizer or {"name": "adam"})
    )
    history = History()
    state = TrainingState(model, opt, history)
    hooks = CallbackList([*from_settings(early_stopping, reduce_lr_on_plateau), *callbacks], state)
    loop = _Loop(model, x, y, batch_size, _sample_weights(model, y, class_weight))
    report = Throttle(on_event, progress_interval)
    val = 0 if validation_data is None else _length({**validation_data[0], **validation_data[1]})
    report.now(
        Prepared(
            train=n,
            val=val,
            test=test_samples,
            epochs=epochs,
            batches=loop.batches,
            batch_size=batch_size,
            params=sum(model.count_params()),
            outputs=tuple(h.id for h in model.heads),
        )
    )
    try:
        start = time.perf_counter()
        hooks.on_train_begin()
        order_rng = np.random.default_rng(seed)
        dropout_rng = np.random.default_rng(None if seed is None else [seed, 1])
        for epoch in range(epochs):
            hooks.on_epoch_begin(epoch)
            order = order_rng.permutation(n) if shuffle else np.arange(n)
            logs = loop.epoch(
                epoch, epochs, order, shuffle, opt, dropout_rng, hooks, report, should_stop
            )
            if logs is None:  # stopped before the epoch's first batch
                history.stopped = "user"
                break
            if validation_data is not None:
                logs.update(evaluate(model, *validation_data, batch_size=batch_size, prefix="val_"))
            logs["learning_rate"] = float(opt.learning_rate)
            logs[EPOCH_SECONDS] = time.perf_counter() - loop.epoch_start
            history.epochs.append(logs)
            shown = {k: v for k, v in logs.items() if k != EPOCH_SECONDS}
            report.epoch(EpochEnd(epoch + 1, epochs, shown, loop.step, logs[EPOCH_SECONDS]))
            if loop.stopped:
                history.stopped = "user"
                break
            hooks.on_epoch_end(epoch, logs)
            if state.stop_training:
                history.stopped = history.stopped or "callback"
                break
        hooks.on_train_end()
        seconds = time.perf_counter() - start
    except NodenetError as err:
        report.now(Failed(str(err)))
        raise
    report.now(Finished(history, loop.step, loop.samples, seconds))
    return history


class _Loop:
    """The batches of one epoch after another: forward, loss, backward, optimizer step."""

    def __init__(self, model: Model, x: Arrays, y: Arrays, batch_size: int, weights):
        self.model, self.x, self.y, self.weights = model, x, y, weights
        self.n = _length({**x, **y})
        self.batch_size = batch_size
        self.batches = math.ceil(self.n / batch_size)
        self.flat = model.flat_trainable()  # all weights in one array: one optimizer pass
        self.scorer = _Scorer(model, y)
        self.step = 0  # batches trained in the run
        self.samples = 0  # samples trained in the run
        self.stopped = False
        self.epoch_start = 0.0

    def epoch(
        self, epoch, epochs, order, shuffle, opt, dropout_rng, hooks, report, should_stop
    ) -> dict[str, float] | None:
        """Train one epoch; its running logs, or None when stopped before any batch."""
        scorer, model = self.scorer, self.model
        scorer.reset()
        self.epoch_start = time.perf_counter()
        feed = _batches(model, self.x, self.y, order, self.batch_size, shuffle, self.weights)
        with contextlib.closing(feed):
            self._train(feed, epoch, epochs, opt, dropout_rng, hooks, report, should_stop)
        if self.stopped and scorer.count == 0:
            return None
        return scorer.results()

    def _train(self, feed, epoch, epochs, opt, dropout_rng, hooks, report, should_stop) -> None:
        """Train on each batch of ``feed`` (``_batches``'s tuples) until it ends or a stop."""
        scorer, model, batches = self.scorer, self.model, self.batches
        since_loss, since_count = 0.0, 0  # loss sum and samples since the previous BatchEnd
        for b, (idx, xb, yb, wb) in enumerate(feed):
            if should_stop is not None and should_stop():
                self.stopped = True
                break
            if not len(idx):  # every file of a streamed batch was unreadable
                continue
            outputs = model.forward(xb, training=True, rng=dropout_rng)
            loss, out_grads = scorer.score(outputs, yb, wb, want_grads=True)
            grads = model.backward(out_grads, into=self.flat)
            loss += model.regularization(grads)
            if not math.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss} at epoch {epoch + 1}, batch {b + 1}: training "
                    "stopped (try a lower learning rate, or check the data for extreme values)"
                )
            if hooks._gradients:  # the buffer's views change next batch: hand over copies
                hooks.on_gradients(b, {k: v.copy() for k, v in grads.items()})
            if hasattr(opt, "apply_flat"):
                opt.apply_flat(self.flat, grads)
            else:  # an optimizer object of the caller's with only ``apply``
                opt.apply(self.flat.params, grads)
            scorer.add_total(loss, len(idx))
            self.step += 1
            self.samples += len(idx)
            since_loss, since_count = since_loss + loss * len(idx), since_count + len(idx)
            hooks.on_train_batch_end(b, scorer.results)
            if report.wants_batch(last=b == batches - 1):
                elapsed = time.perf_counter() - self.epoch_start
                report.batch(
                    BatchEnd(
                        epoch=epoch + 1,
                        epochs=epochs,
                        batch=b + 1,
                        batches=batches,
                        step=self.step,
                        metrics={**scorer.results(), "learning_rate": float(opt.learning_rate)},
                        batch_loss=since_loss / since_count,
                        samples_per_sec=scorer.count / max(elapsed, 1e-9),
                    )
                )
                since_loss, since_count = 0.0, 0


def evaluate(
    model: Model, x: Arrays, y: Arrays, batch_size: int = 256, prefix: str = ""
) -> dict[str, float]:
    """Loss and metrics over all samples, in inference mode (Keras ``evaluate``).

    The batch is made smaller than ``batch_size`` when its forward pass would not
    fit the memory budget (:meth:`Model.inference_batch`).
    """
    x = _checked(model, x, cast=False)
    n = _length({**x, **y})
    if n == 0:
        raise DataError("there are no samples to evaluate")
    batch_size = model.inference_batch(batch_size)
    scorer = _Scorer(model, y)
    feed = (
        _batches(model, x, y, np.arange(n), batch_size, False, None)
        if is_streamed(x)
        else _slices(x, y, n, batch_size)
    )
    with contextlib.closing(feed):
        for idx, xb, yb, _ in feed:
            if not len(idx):
                continue
            outputs = model.forward(model.cast_batch(xb), training=False)
            loss, _ = scorer.score(outputs, yb, None, want_grads=False)
            scorer.add_total(loss + model.regularization(), len(idx))
    if scorer.count == 0:
        raise DataError("none of the samples to evaluate could be read")
    return scorer.results(prefix)


def _slices(x: Arrays, y: Arrays, n: int, batch_size: int):
    """``_batches``'s tuples for arrays in sample order, as views (no copies)."""
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield (
            range(start, stop),
            {k: v[start:stop] for k, v in x.items()},
            {k: v[start:stop] for k, v in y.items()},
            None,
        )


def predict(model: Model, x: Arrays, batch_size: int = 256) -> Arrays:
    """Outputs keyed by Output id (inference mode).

    For streamed inputs, the rows of files that could not be read are NaN, so the
    outputs stay aligned with the samples.
    """
    if not is_streamed(x):
        return model.predict(x, batch_size)
    x = _checked(model, x, cast=False)
    n = _length(x)
    out = {h.id: np.full((n, *model.shapes[h.id]), np.nan, model.dtype) for h in model.heads}
    batch_size = model.inference_batch(batch_size)
    with contextlib.closing(_batches(model, x, {}, np.arange(n), batch_size, False, None)) as feed:
        for idx, xb, _, _ in feed:
            if len(idx):
                for key, value in model.forward(xb, training=False).items():
                    out[key][idx] = value
    return out

"""Epoch metrics with Keras 3 semantics: stateful accumulators over batches.

``metric = resolve_metric(name, loss_name, y_true_shape, y_pred_shape)`` gives a
fresh :class:`Metric`; per epoch call ``reset()``, then ``update(y_true, y_pred,
sample_weight)`` for every batch, then ``result()``. Each equals the Keras
object that ``model.compile(metrics=[name])`` creates:

- ``accuracy`` resolves, as Keras 3 does, from the shapes alone (the loss plays
  no part): ``BinaryAccuracy`` when ``y_pred`` has a last axis of 1,
  ``SparseCategoricalAccuracy`` when ``y_true`` has fewer axes than ``y_pred``
  or a last axis of 1 against several classes, else ``CategoricalAccuracy``.
- ``mae``, ``mse``: ``MeanAbsoluteError``, ``MeanSquaredError``.
- ``precision``, ``recall``: threshold 0.5 (``y_pred > 0.5``, labels cast to bool).
- ``auc``: ROC curve over 200 evenly spaced thresholds, trapezoidal
  ("interpolation") summation.

Mean metrics follow ``keras.metrics.Mean``: each sample's value is the mean of
its per-position values, weighted by its sample weight, and the epoch result
is ``sum(w * value) / sum(w)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nodenet.engine.losses import EPSILON, squeeze_or_expand
from nodenet.engine.registry import Registry

Shape = tuple  # a shape with the batch dimension: (batch, ...); batch may be None

METRICS: Registry = Registry("metric")
"""Metric name -> factory ``(y_true_shape, y_pred_shape) -> Metric``."""


def resolve_metric(
    name: str, loss_name: str | None, y_true_shape: Shape, y_pred_shape: Shape
) -> Metric:
    """A fresh metric for ``name``, resolved like Keras 3's ``compile(metrics=[name])``.

    Shapes include the batch dimension, as Keras sees the first batch:
    ``(32,)`` labels against ``(32, 10)`` predictions. ``loss_name`` does not
    change the choice (Keras 3 resolves ``"accuracy"`` from the shapes only);
    it is accepted so callers need not know that.
    """
    metric = METRICS.get(name)(tuple(y_true_shape), tuple(y_pred_shape))
    metric.name = name
    return metric


make_metric = resolve_metric  # the name the training loop uses


def is_binary_or_sparse(y_true_shape: Shape, y_pred_shape: Shape) -> tuple[bool, bool]:
    """Keras 3's ``is_binary_or_sparse_categorical`` on shapes (batch included)."""
    t_last, p_last = y_true_shape[-1], y_pred_shape[-1]
    is_binary = p_last == 1
    wide = p_last is not None and p_last > 1
    is_sparse = len(y_true_shape) < len(y_pred_shape) or (t_last == 1 and wide)
    return is_binary, is_sparse


class Metric:
    """An epoch accumulator. ``direction`` is ``"up"`` when higher is better."""

    kind: str = ""  # the Keras class this metric reproduces
    direction: str = "up"

    def __init__(self, name: str = ""):
        self.name = name or self.kind
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def update(
        self, y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, kind={self.kind!r})"


def _divide_no_nan(a, b):
    """``a / b`` with 0 where ``b == 0``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    safe = np.where(b == 0, 1.0, b)
    return np.where(b == 0, 0.0, a / safe)


# -- mean metrics (keras.metrics.MeanMetricWrapper) -------------------------------


def samplewise(values: np.ndarray, sample_weight) -> tuple[np.ndarray, np.ndarray | None]:
    """Keras's ``reduce_to_samplewise_values`` with a mean: ``(batch,)`` values and weights."""
    values = np.asarray(values, np.float64)
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, np.float64)
        values, weights = squeeze_or_expand(values, weights)
        if values.ndim > weights.ndim:
            values = values.mean(axis=tuple(range(weights.ndim, values.ndim)))
        weights = np.broadcast_to(weights, values.shape)
        values = values * weights
        if weights.ndim > 1:
            weights = weights.mean(axis=tuple(range(1, weights.ndim)))
    if values.ndim > 1:
        values = values.mean(axis=tuple(range(1, values.ndim)))
    return values, weights


class MeanMetric(Metric):
    """The weighted mean over samples of ``fn(y_true, y_pred)`` (per-position values)."""

    def __init__(self, kind: str, fn: Callable, direction: str, name: str = ""):
        self.kind, self.fn, self.direction = kind, fn, direction
        super().__init__(name)

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update(self, y_true, y_pred, sample_weight=None) -> None:
        values, weights = samplewise(self.fn(np.asarray(y_true), np.asarray(y_pred)), sample_weight)
        self.total += float(values.sum())
        if weights is not None:
            self.count += float(weights.sum())
        else:
            self.count += values.shape[0] if values.ndim >= 1 else 1

    def result(self) -> float:
        return float(_divide_no_nan(self.total, self.count))


def binary_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``y_true == (y_pred > 0.5)`` elementwise, shapes aligned like Keras."""
    t, p = squeeze_or_expand(y_true, y_pred)
    return (t == (p > 0.5).astype(t.dtype)).astype(np.float32)


def categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``argmax(y_true) == argmax(y_pred)`` per position: ``(batch, ...)``."""
    t = np.argmax(y_true, axis=-1)
    shape = t.shape
    if t.ndim == y_pred.ndim:
        t = t[..., 0]
    matches = (t == np.argmax(y_pred, axis=-1)).astype(np.float32)
    return matches.reshape(shape) if t.shape != shape else matches


def sparse_categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``label == argmax(y_pred)`` per position; labels ``(batch,)`` or ``(batch, 1)``."""
    t = np.asarray(y_true, np.float32)
    shape = t.shape
    squeezed = t.ndim == y_pred.ndim and t.shape[-1] == 1
    if squeezed:
        t = t[..., 0]
    matches = (t == np.argmax(y_pred, axis=-1)).astype(np.float32)
    if squeezed:
        matches = matches.reshape(shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches[..., 0]
    return matches


def _error(y_true, y_pred) -> np.ndarray:
    t, p = squeeze_or_expand(np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64))
    return t - p


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``mean(|y_true - y_pred|, axis=-1)``."""
    return np.abs(_error(y_true, y_pred)).mean(axis=-1)


def mean_squared_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``mean((y_true - y_pred)**2, axis=-1)``."""
    return np.square(_error(y_true, y_pred)).mean(axis=-1)


@METRICS.register("accuracy")
def _accuracy(y_true_shape: Shape, y_pred_shape: Shape) -> Metric:
    is_binary, is_sparse = is_binary_or_sparse(y_true_shape, y_pred_shape)
    if is_binary:
        return MeanMetric("binary_accuracy", binary_accuracy, "up")
    if is_sparse:
        return MeanMetric("sparse_categorical_accuracy", sparse_categorical_accuracy, "up")
    return MeanMetric("categorical_accuracy", categorical_accuracy, "up")


@METRICS.register("mae")
def _mae(y_true_shape: Shape, y_pred_shape: Shape) -> Metric:
    return MeanMetric("mean_absolute_error", mean_absolute_error, "down")


@METRICS.register("mse")
def _mse(y_true_shape: Shape, y_pred_shape: Shape) -> Metric:
    return MeanMetric("mean_squared_error", mean_squared_error, "down")


# -- confusion metrics (keras.metrics.Precision, Recall, AUC) ----------------------


def _confusion_inputs(y_true, y_pred, sample_weight):
    """Labels as bools, predictions and weights aligned like Keras's confusion metrics."""
    p, t = squeeze_or_expand(np.asarray(y_pred, np.float32), np.asarray(y_true, np.float32))
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, np.float32)[..., None]
        _, weights = squeeze_or_expand(t, weights, expand_rank_1=False)
        weights = np.broadcast_to(weights, p.shape)
    return t.astype(bool), p, weights


class _ThresholdMetric(Metric):
    """True / false positive / negative counts at the threshold 0.5 (``y_pred > 0.5``)."""

    THRESHOLD = 0.5

    def reset(self) -> None:
        self.tp = self.fp = self.fn = 0.0

    def update(self, y_true, y_pred, sample_weight=None) -> None:
        label, p, weights = _confusion_inputs(y_true, y_pred, sample_weight)
        label, p = np.broadcast_arrays(label, p)
        w = np.ones(p.shape, np.float64) if weights is None else weights.astype(np.float64)
        predicted = p > self.THRESHOLD
        self.tp += float(w[label & predicted].sum())
        self.fp += float(w[~label & predicted].sum())
        self.fn += float(w[label & ~predicted].sum())


class Precision(_ThresholdMetric):
    """``tp / (tp + fp)`` (0 when nothing was predicted positive)."""

    kind = "precision"

    def result(self) -> float:
        return float(_divide_no_nan(self.tp, self.tp + self.fp))


class Recall(_ThresholdMetric):
    """``tp / (tp + fn)`` (0 when there was no positive label)."""

    kind = "recall"

    def result(self) -> float:
        return float(_divide_no_nan(self.tp, self.tp + self.fn))


class AUC(Metric):
    """Area under the ROC curve, Keras's default ``AUC()``.

    Thresholds: ``-eps``, ``i / 199`` for ``i = 1..198``, ``1 + eps``. A prediction
    ``p`` (clipped to [0, 1], float32) falls in bucket ``max(ceil(199 p) - 1, 0)``
    and counts as positive at every threshold up to its bucket. The area sums
    ``(fpr[i] - fpr[i + 1]) * (tpr[i] + tpr[i + 1]) / 2``.
    """

    kind = "auc"
    NUM_THRESHOLDS = 200

    def reset(self) -> None:
        n = self.NUM_THRESHOLDS
        self.tp, self.fp, self.tn, self.fn = (np.zeros(n) for _ in range(4))

    @property
    def thresholds(self) -> np.ndarray:
        n = self.NUM_THRESHOLDS
        inner = [(i + 1) / (n - 1) for i in range(n - 2)]
        return np.array([-EPSILON, *inner, 1 + EPSILON])

    def update(self, y_true, y_pred, sample_weight=None) -> None:
        label, p, weights = _confusion_inputs(y_true, y_pred, sample_weight)
        label, p = (a.reshape(-1) for a in np.broadcast_arrays(label, p))
        w = 1.0 if weights is None else weights.reshape(-1).astype(np.float64)
        positives = label * w
        negatives = (1.0 - label) * w
        n = self.NUM_THRESHOLDS
        scaled = np.clip(p, 0, 1) * np.float32(n - 1)
        bucket = np.maximum(np.ceil(scaled) - 1, 0).astype(np.intp)
        tp = np.bincount(bucket, weights=np.broadcast_to(positives, bucket.shape), minlength=n)
        fp = np.bincount(bucket, weights=np.broadcast_to(negatives, bucket.shape), minlength=n)
        tp = np.cumsum(tp[::-1])[::-1]
        fp = np.cumsum(fp[::-1])[::-1]
        self.tp += tp
        self.fp += fp
        self.tn += np.sum(np.broadcast_to(negatives, bucket.shape)) - fp
        self.fn += np.sum(np.broadcast_to(positives, bucket.shape)) - tp

    def result(self) -> float:
        tpr = _divide_no_nan(self.tp, self.tp + self.fn)
        fpr = _divide_no_nan(self.fp, self.fp + self.tn)
        heights = (tpr[:-1] + tpr[1:]) / 2
        return float(np.sum((fpr[:-1] - fpr[1:]) * heights))


METRICS.register("precision")(lambda y_true_shape, y_pred_shape: Precision())
METRICS.register("recall")(lambda y_true_shape, y_pred_shape: Recall())
METRICS.register("auc")(lambda y_true_shape, y_pred_shape: AUC())

NAMES: tuple[str, ...] = tuple(METRICS.names())

DIRECTIONS: dict[str, str] = {
    "loss": "down",
    "accuracy": "up",
    "mae": "down",
    "mse": "down",
    "precision": "up",
    "recall": "up",
    "auc": "up",
}
"""Whether each reported quantity improves upward or downward (Keras's ``_direction``)."""


def direction_of(monitor: str) -> str | None:
    """``"up"``, ``"down"`` or ``None`` for a logged name such as ``val_loss``.

    ``val_`` is dropped; ``loss`` and the metric names of :data:`DIRECTIONS`
    match exactly or as the suffix of a per-output name (``digit_accuracy``).
    """
    name = monitor.removeprefix("val_")
    for known, direction in DIRECTIONS.items():
        if name == known or name.endswith("_" + known):
            return direction
    return None

"""Losses with Keras 3 semantics: the batch value and its gradient together.

``loss = get_loss(name)``; ``value, grad = loss(y_true, y_pred, sample_weight)``
gives what ``keras.losses.<Name>()(y_true, y_pred, sample_weight)`` gives with
the default ``reduction="sum_over_batch_size"``, and ``grad = dvalue/dy_pred``
with the shape and dtype of ``y_pred``.

How Keras computes the value (and so do we):

1. ``y_true`` and ``y_pred`` are brought to the same rank when they differ by
   a trailing axis of size 1 (:func:`squeeze_or_expand`): ``(batch,)`` labels
   against a ``(batch, 1)`` prediction become ``(batch, 1)``.
2. Each loss reduces the last axis, giving one value per position: shape
   ``(batch,)`` for ``(batch, features)``, ``(batch, steps)`` for
   ``(batch, steps, features)``.
3. ``sample_weight`` (usually ``(batch,)``) is aligned with those values by the
   same rule and multiplied in; the total is divided by the number of
   positions (not by the sum of the weights).

Cross-entropies on probabilities clip like Keras's torch backend: categorical
ones first renormalize ``p / sum(p)``, then clip to ``[1e-7, 1 - 1e-7]``; the
gradient is zero where clipping is active, as autograd gives it.

The fused path, for a prediction that comes out of a softmax (categorical and
sparse cross-entropy) or a sigmoid (binary cross-entropy),
``value, grad_z = loss.fused(y_true, probs, activation, sample_weight)``, keeps
the value on the clipped probabilities but returns the gradient with respect
to the pre-activation ``z``: ``c * (p * sum(t) - t)`` for softmax and
``c * (p - t)`` for sigmoid, ``c`` the reduction's weight of each position,
where no probability is clipped; where one is, the exact gradient of the
clipped loss (0 through the clipped entries), as Keras's torch and JAX
backends give it (:mod:`nodenet.engine.loss_saturation`).

Options, as Keras's loss classes take them (``get_loss(name, from_logits=True)``):

- ``from_logits`` (the three cross-entropies): ``y_pred`` is a logit, computed stably
  as Keras does: ``-sum(t * log_softmax(z))``, ``-log_softmax(z)[label]`` and
  ``max(z, 0) - z t + log(1 + exp(-|z|))``, with no renormalizing or clipping; the
  gradients are ``softmax(z) sum(t) - t``, ``softmax(z) - onehot`` and
  ``sigmoid(z) - t`` (over the features for binary).
- ``label_smoothing`` (categorical and binary, not sparse, as Keras): targets become
  ``t (1 - s) + s / classes`` (binary: ``t (1 - s) + s / 2``) before the loss.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from nodenet.engine.registry import Registry
from nodenet.errors import DataError

EPSILON = 1e-7  # keras.backend.epsilon()

LOSSES: Registry = Registry("loss")


def _register(cls):
    LOSSES.register(cls.NAME)(cls())
    return cls


def get_loss(name: str, from_logits: bool = False, label_smoothing: float = 0.0) -> Loss:
    """The loss registered as ``name``, with Keras's options; raises
    :class:`UnknownNameError` for an unknown name and :class:`ValueError` for an option
    the loss does not take (see :func:`check_options`)."""
    loss = LOSSES.get(name)
    if not from_logits and not label_smoothing:
        return loss
    problem = check_options(name, from_logits, label_smoothing)
    if problem:
        raise ValueError(problem)
    return type(loss)(from_logits=from_logits, label_smoothing=label_smoothing)


def check_options(name: str, from_logits: bool, label_smoothing: float) -> str | None:
    """Why ``name`` cannot take these options (a sentence), or None when it can."""
    loss = LOSSES.get(name)
    if from_logits and "from_logits" not in loss.OPTIONS:
        takes = ", ".join(n for n, v in LOSSES.items() if "from_logits" in v.OPTIONS)
        return f"from_logits applies to the cross-entropy losses ({takes}), not to {name}"
    if label_smoothing and "label_smoothing" not in loss.OPTIONS:
        takes = ", ".join(n for n, v in LOSSES.items() if "label_smoothing" in v.OPTIONS)
        return f"label_smoothing applies to {takes} (as in Keras), not to {name}"
    return None


# -- shape alignment and reduction (keras.src.losses.loss) -------------------


def squeeze_or_expand(
    x1: np.ndarray, x2: np.ndarray, expand_rank_1: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Keras's ``squeeze_or_expand_to_same_rank``: fix a rank gap of one trailing 1.

    When one array has one more axis than the other and that axis has size 1,
    it is squeezed, except that a rank-1 partner is expanded instead
    (``expand_rank_1``): ``(batch,)`` and ``(batch, 1)`` become two ``(batch, 1)``.
    """
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes along which an array of ``shape`` was broadcast."""
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    if lead > 0:
        grad = grad.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


def reduce_weighted(
    values: np.ndarray, sample_weight: np.ndarray | None
) -> tuple[float, np.ndarray]:
    """Keras's ``sum_over_batch_size`` of per-position ``values`` and its gradient.

    Returns ``(value, coef)`` with ``coef = dvalue/dvalues``, shaped like ``values``:
    ``value = sum(values * w) / n``, ``n`` the size of the weighted array
    (0 when it is empty, like ``divide_no_nan``); a scalar is returned as is.
    """
    dtype = values.dtype
    if sample_weight is None and values.size:  # the common case, without broadcasting
        n = dtype.type(values.size)
        return float(values.sum(dtype=dtype) / n), np.full(values.shape, dtype.type(1) / n, dtype)
    if sample_weight is None:
        w = np.ones((), dtype)
        shaped = values
    else:
        w = np.asarray(sample_weight, dtype=dtype)
        shaped, w = squeeze_or_expand(values, w)
    try:
        weighted = shaped * w
    except ValueError:
        raise DataError(
            f"sample weights of shape {w.shape} do not fit per-position losses of shape"
            f" {values.shape}; give one weight per sample as (batch, 1)"
        ) from None
    if weighted.ndim == 0:  # nothing to reduce
        value, coef = weighted, np.broadcast_to(w, weighted.shape)
    elif weighted.size == 0:
        value, coef = np.zeros((), dtype), np.zeros(weighted.shape, dtype)
    else:
        n = dtype.type(weighted.size)
        value = weighted.sum(dtype=dtype) / n
        coef = np.broadcast_to(w / n, weighted.shape)
    coef = unbroadcast(np.asarray(coef, dtype), shaped.shape).reshape(values.shape)
    return float(value), coef


def _float_dtype(array: np.ndarray) -> np.dtype:
    return array.dtype if array.dtype.kind == "f" else np.dtype(np.float32)


# -- the Loss base -----------------------------------------------------------


class Loss:
    """A loss: subclasses give the per-position values and their gradient.

    Hooks, on aligned arrays ``t`` and ``p`` (``p`` possibly a reshaped view of
    ``y_pred``): ``_values(t, p) -> (values, cache)`` reduces the last axis;
    ``_grad(t, p, coef, cache)`` is ``dvalue/dp`` given ``coef = dvalue/dvalues``;
    ``_fused_grad`` the same with respect to the pre-activation.
    """

    NAME: ClassVar[str] = ""
    FUSES: ClassVar[str | None] = None  # the activation the fused path accepts
    OPTIONS: ClassVar[tuple[str, ...]] = ()  # the Keras options it takes

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0):
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing

    def __call__(
        self, y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """``(value, dvalue/dy_pred)`` for a batch; ``grad`` is shaped like ``y_pred``."""
        return self._run(y_true, y_pred, sample_weight, self._grad)

    def can_fuse(self, activation: str | None) -> bool:
        """Whether :meth:`fused` accepts a prediction that comes out of ``activation``."""
        return self.FUSES is not None and activation == self.FUSES and not self.from_logits

    def fused(
        self,
        y_true: np.ndarray,
        probs: np.ndarray,
        activation: str,
        sample_weight: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray]:
        """``(value, dvalue/dz)`` where ``probs = activation(z)``; see the module notes."""
        from nodenet.engine.loss_saturation import fused_grad  # exact where the clip saturates

        if not self.can_fuse(activation):
            raise ValueError(f"{self.NAME} cannot be fused with activation {activation!r}")
        return self._run(y_true, probs, sample_weight, fused_grad(self))

    def _run(self, y_true, y_pred, sample_weight, grad_fn):
        y_pred = np.asarray(y_pred)
        dtype = _float_dtype(y_pred)
        t, p = self._align(np.asarray(y_true), y_pred.astype(dtype, copy=False))
        if self.label_smoothing:
            t = self._smooth(t, p.dtype.type(self.label_smoothing))
        values, cache = self._values(t, p)
        value, coef = reduce_weighted(values, sample_weight)
        grad = unbroadcast(grad_fn(t, p, coef, cache), p.shape)
        return value, grad.reshape(y_pred.shape).astype(dtype, copy=False)

    def _align(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return squeeze_or_expand(y_true.astype(y_pred.dtype, copy=False), y_pred)

    def _smooth(self, t, s):
        raise NotImplementedError

    def _values(self, t, p):
        raise NotImplementedError

    def _grad(self, t, p, coef, cache):
        raise NotImplementedError

    def _fused_grad(self, t, p, coef, cache):
        raise NotImplementedError


def _per_feature(coef: np.ndarray, n: int) -> np.ndarray:
    """``coef`` spread over a last axis of ``n`` features that were averaged."""
    return coef[..., None] / coef.dtype.type(n)


# -- regression losses ---------------------------------------------------------


@_register
class MeanSquaredError(Loss):
    """``mean((y_pred - y_true)**2, axis=-1)``; gradient ``2 (p - t) / features``."""

    NAME = "mean_squared_error"

    def _values(self, t, p):
        d = p - t
        return np.mean(d * d, axis=-1), d

    def _grad(self, t, p, coef, d):
        return (2 * _per_feature(coef, d.shape[-1])) * d


@_register
class MeanAbsoluteError(Loss):
    """``mean(|y_pred - y_true|, axis=-1)``; gradient ``sign(p - t) / features``."""

    NAME = "mean_absolute_error"

    def _values(self, t, p):
        d = p - t
        return np.mean(np.abs(d), axis=-1), d

    def _grad(self, t, p, coef, d):
        return _per_feature(coef, d.shape[-1]) * np.sign(d)


@_register
class Huber(Loss):
    """Huber with ``delta = 1``: ``e = p - t``, ``0.5 e**2`` where ``|e| <= delta``,
    else ``delta |e| - 0.5 delta**2``, averaged over the last axis.

    Gradient: ``e`` in the quadratic zone, ``delta sign(e)`` outside, ``/ features``.
    """

    NAME = "huber"
    DELTA = 1.0

    def _values(self, t, p):
        e = p - t
        a = np.abs(e)
        delta = e.dtype.type(self.DELTA)
        inside = a <= delta
        per = np.where(inside, 0.5 * e * e, delta * a - 0.5 * delta * delta)
        return np.mean(per, axis=-1), (e, inside)

    def _grad(self, t, p, coef, cache):
        e, inside = cache
        slope = np.where(inside, e, e.dtype.type(self.DELTA) * np.sign(e))
        return _per_feature(coef, e.shape[-1]) * slope


# -- cross-entropies -------------------------------------------------------------


def _clip_mask(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``clip(q, eps, 1 - eps)`` and where the clip passes the gradient (bounds included)."""
    lo, hi = q.dtype.type(EPSILON), q.dtype.type(1 - EPSILON)
    return np.clip(q, lo, hi), (q >= lo) & (q <= hi)


@_register
class BinaryCrossentropy(Loss):
    """``-(t log p + (1 - t) log(1 - p))`` on clipped ``p``, averaged over the last axis.

    Shapes: ``y_true`` and ``y_pred`` equal after alignment, e.g. ``(batch, 1)``.
    Gradient: ``(p - t) / (p (1 - p)) / features`` where ``p`` is not clipped.
    Fused with a sigmoid: ``(p - t) / features``.
    """

    NAME = "binary_crossentropy"
    FUSES = "sigmoid"
    OPTIONS = ("from_logits", "label_smoothing")

    def _align(self, y_true, y_pred):
        t, p = super()._align(y_true, y_pred)
        if t.shape != p.shape:
            raise DataError(
                f"{self.NAME}: targets of shape {t.shape} do not match predictions {p.shape}"
            )
        return t, p

    def _smooth(self, t, s):
        return t * (1 - s) + s / 2

    def _values(self, t, p):
        if self.from_logits:  # binary_cross_entropy_with_logits, stable for any z
            per = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))
            return np.mean(per, axis=-1), None
        pc, mask = _clip_mask(p)
        per = -(t * np.log(pc) + (1 - t) * np.log1p(-pc))
        return np.mean(per, axis=-1), (pc, mask)

    def _grad(self, t, p, coef, cache):
        if self.from_logits:
            return _per_feature(coef, p.shape[-1]) * (_sigmoid(p) - t)
        pc, mask = cache
        return _per_feature(coef, p.shape[-1]) * np.where(mask, (pc - t) / (pc * (1 - pc)), 0)

    def _fused_grad(self, t, p, coef, cache):
        return _per_feature(coef, p.shape[-1]) * (p - t)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))  # no overflow for any z


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _normalized(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(p / s, s)`` with ``s = sum(p, axis=-1, keepdims=True)``, as Keras renormalizes."""
    s = p.sum(axis=-1, keepdims=True)
    return p / s, s


@_register
class CategoricalCrossentropy(Loss):
    """``-sum(t log q, axis=-1)``, ``q = clip(p / sum(p))``; one value per position.

    Shapes: ``y_true`` one-hot (or soft) like ``y_pred``: ``(batch, classes)``.
    Gradient through the clip and the renormalization:
    ``g = -t / q`` (0 where clipped), ``dL/dp = (g - sum(g q)) / sum(p)``.
    Fused with a softmax: ``p sum(t) - t``.
    """

    NAME = "categorical_crossentropy"
    FUSES = "softmax"
    OPTIONS = ("from_logits", "label_smoothing")

    def _align(self, y_true, y_pred):
        t, p = super()._align(y_true, y_pred)
        if t.shape != p.shape:
            raise DataError(
                f"{self.NAME}: targets of shape {t.shape} do not match predictions {p.shape}"
                " (one-hot targets are expected; integer labels need"
                " sparse_categorical_crossentropy)"
            )
        return t, p

    def _smooth(self, t, s):
        return t * (1 - s) + s / t.dtype.type(t.shape[-1])

    def _values(self, t, p):
        if self.from_logits:
            log_q = _log_softmax(p)
            return -np.sum(t * log_q, axis=-1), np.exp(log_q)
        q, s = _normalized(p)
        qc, mask = _clip_mask(q)
        return -np.sum(t * np.log(qc), axis=-1), (q, qc, s, mask)

    def _grad(self, t, p, coef, cache):
        if self.from_logits:
            return self._fused_grad(t, cache, coef, None)
        q, qc, s, mask = cache
        g = np.where(mask, -t / qc, 0)
        return coef[..., None] * (g - np.sum(g * q, axis=-1, keepdims=True)) / s

    def _fused_grad(self, t, p, coef, cache):
        return coef[..., None] * (p * t.sum(axis=-1, keepdims=True) - t)


@_register
class SparseCategoricalCrossentropy(Loss):
    """``-log q[label]``, ``q = clip(p / sum(p))``; integer labels.

    Shapes: ``y_true`` ``(batch,)`` or ``(batch, 1)`` labels for ``y_pred``
    ``(batch, classes)`` (and likewise with extra middle axes).
    Gradient: ``g = -1 / q[label]`` (0 where clipped),
    ``dL/dp_j = (g [j == label] - g q[label]) / sum(p)``.
    Fused with a softmax: ``p - onehot(label)``.
    """

    NAME = "sparse_categorical_crossentropy"
    FUSES = "softmax"
    OPTIONS = ("from_logits",)

    def _align(self, y_true, y_pred):
        t, p = squeeze_or_expand(y_true, y_pred)
        if t.ndim == p.ndim and t.shape[-1] == 1:
            t = t[..., 0]
        if t.shape != p.shape[:-1]:
            raise DataError(
                f"{self.NAME}: labels of shape {t.shape} do not fit predictions {p.shape}"
            )
        labels = t.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= p.shape[-1]):
            bad = labels.min() if labels.min() < 0 else labels.max()
            raise DataError(f"{self.NAME}: label {bad} is out of range for {p.shape[-1]} classes")
        return labels[..., None], p

    def _values(self, t, p):
        if self.from_logits:
            log_q = _log_softmax(p)
            return -np.take_along_axis(log_q, t, axis=-1)[..., 0], np.exp(log_q)
        q, s = _normalized(p)
        ql = np.take_along_axis(q, t, axis=-1)
        qc, mask = _clip_mask(ql)
        return -np.log(qc[..., 0]), (ql, qc, s, mask)

    def _grad(self, t, p, coef, cache):
        if self.from_logits:
            return self._fused_grad(t, cache, coef, None)
        ql, qc, s, mask = cache
        g = np.where(mask, -1 / qc, 0)
        grad = np.zeros_like(p)
        np.put_along_axis(grad, t, g, axis=-1)
        return coef[..., None] * (grad - g * ql) / s

    def _fused_grad(self, t, p, coef, cache):
        grad = p.copy()
        np.put_along_axis(grad, t, np.take_along_axis(p, t, axis=-1) - 1, axis=-1)
        return coef[..., None] * grad


NAMES: tuple[str, ...] = tuple(LOSSES.names())
LOGITS_LOSSES: tuple[str, ...] = tuple(n for n, v in LOSSES.items() if "from_logits" in v.OPTIONS)

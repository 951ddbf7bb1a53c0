"""Per-class metrics, ROC and precision-recall curves, residuals and the per-sample table
of one Output's test predictions, for :func:`nodenet.reports.head_report`.

The numbers come from scikit-learn (``precision_recall_fscore_support``, ``roc_curve``,
``precision_recall_curve``, ``average_precision_score``); this module only arranges
them: curves are thinned to at most :data:`CURVE_POINTS` points, and the per-sample table
is a few compact arrays (one entry per test sample), never a dict per sample, so a test
split of tens of thousands of samples stays cheap to keep and to draw. Plain numpy, no Qt.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CURVE_POINTS = 300  # at most this many points per ROC or precision-recall curve
CURVE_CLASSES = 50  # curves for the first this many classes (each costs a sort of the split)
RESIDUAL_POINTS = 2000  # at most this many points in a residual plot


def classifier_details(
    true: np.ndarray, pred: np.ndarray, scores: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """What a classifier head adds to its confusion matrix.

    ``true``, ``pred``: labels ``(n,)``; ``scores``: each class's probability ``(n, k)``.
    Returns ``per_class`` (``precision``, ``recall``, ``f1``, ``support``: arrays ``(k,)``;
    ``macro`` and ``weighted`` averages), ``curves`` (one-vs-rest per class: ``roc``
    ``{"fpr", "tpr", "auc"}`` and ``pr`` ``{"recall", "precision", "ap"}``, ``None`` for a
    class the test split holds no positive or no negative sample of, beyond the first
    :data:`CURVE_CLASSES`, or when the scores are not all finite) and ``table``
    (``true``, ``pred``, ``confidence``: the predicted class's probability, ``correct``).
    """
    from sklearn.metrics import precision_recall_fscore_support

    k = len(classes)
    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=labels, zero_division=0
    )
    averages = {}
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            true, pred, labels=labels, average=average, zero_division=0
        )
        averages[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    per_class = {
        "precision": np.asarray(precision, dtype=np.float64),
        "recall": np.asarray(recall, dtype=np.float64),
        "f1": np.asarray(f1, dtype=np.float64),
        "support": np.asarray(support, dtype=np.int64),
        **averages,
    }
    finite = bool(np.isfinite(scores).all())  # a diverged run predicts NaN: no curves
    curves = [
        _class_curves(true == c, scores[:, c]) if finite and c < CURVE_CLASSES else None
        for c in labels
    ]
    table = {
        "true": np.asarray(true, dtype=np.int32),
        "pred": np.asarray(pred, dtype=np.int32),
        "confidence": scores[np.arange(len(pred)), pred].astype(np.float32),
        "correct": np.asarray(true == pred),
    }
    return {"per_class": per_class, "curves": curves, "table": table}


def class_scores(y_pred: np.ndarray) -> np.ndarray:
    """Each class's probability ``(n, k)`` from a head's outputs ``(n, k)``; one sigmoid unit
    ``(n, 1)`` gives the two classes ``1 - p`` and ``p``."""
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_pred.shape[1] == 1:
        return np.concatenate([1.0 - y_pred, y_pred], axis=1)
    return y_pred


def _class_curves(positive: np.ndarray, score: np.ndarray) -> dict[str, Any] | None:
    """ROC and precision-recall curves of one class against the rest, thinned."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    if positive.all() or not positive.any():
        return None  # one of the two curves is undefined without both kinds of sample
    fpr, tpr, _ = roc_curve(positive, score)
    precision, recall, _ = precision_recall_curve(positive, score)
    return {
        "roc": {"fpr": thin(fpr), "tpr": thin(tpr), "auc": float(auc(fpr, tpr))},
        "pr": {
            "recall": thin(recall),
            "precision": thin(precision),
            "ap": float(average_precision_score(positive, score)),
        },
    }


def thin(values: np.ndarray, points: int = CURVE_POINTS) -> np.ndarray:
    """At most ``points`` evenly spaced entries of ``values``, the first and last kept."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) <= points:
        return values
    return values[np.linspace(0, len(values) - 1, points).round().astype(int)]


def regression_details(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """A regression head's residuals (``true - predicted``) and per-sample table.

    ``residuals``: ``{"true", "pred", "residual"}`` thinned to :data:`RESIDUAL_POINTS`
    values (every output value of every sample, flattened); ``table``: per sample its first
    true and predicted values and ``error``, the mean absolute error over its values.
    """
    n = len(y_true)
    true = np.asarray(y_true, dtype=np.float64).reshape(n, -1)
    pred = np.asarray(y_pred, dtype=np.float64).reshape(n, -1)
    flat_true, flat_pred = true.reshape(-1), pred.reshape(-1)
    keep = (
        np.linspace(0, len(flat_true) - 1, RESIDUAL_POINTS).astype(int)
        if len(flat_true) > RESIDUAL_POINTS
        else slice(None)
    )
    residuals = {
        "true": flat_true[keep],
        "pred": flat_pred[keep],
        "residual": (flat_true - flat_pred)[keep],
    }
    table = {
        "true": true[:, 0].astype(np.float32) if true.shape[1] else np.zeros(n, np.float32),
        "pred": pred[:, 0].astype(np.float32) if pred.shape[1] else np.zeros(n, np.float32),
        "error": np.abs(true - pred).mean(axis=1).astype(np.float32),
    }
    return {"residuals": residuals, "table": table}


def details_json(report: dict[str, Any]) -> dict[str, Any]:
    """The entries above of a head report as JSON-ready lists (for ``nodenet evaluate
    --json``): ``per_class``, ``curves``, ``residuals``, ``table``, where present."""
    out: dict[str, Any] = {}
    if "per_class" in report:
        out["per_class"] = {k: _listed(v) for k, v in report["per_class"].items()}
    if "curves" in report:
        out["curves"] = [
            None
            if c is None
            else {part: {k: _listed(v) for k, v in c[part].items()} for part in ("roc", "pr")}
            for c in report["curves"]
        ]
    if "residuals" in report:
        out["residuals"] = {k: _listed(v) for k, v in report["residuals"].items()}
    if "table" in report:
        out["table"] = {k: _listed(v) for k, v in report["table"].items()}
    return out


def _listed(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _listed(v) for k, v in value.items()}
    return value

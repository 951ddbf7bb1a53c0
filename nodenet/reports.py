"""Evaluation reports of a trained model: test metrics, confusion matrices or
predicted-vs-true values, per-class metrics, ROC and precision-recall curves or residuals
and a table of every test sample (:mod:`nodenet.reports_metrics`), the first test samples
with their predictions, and histograms of weights and gradients.

Plain numpy, no Qt: the GUI's worker computes them after training (the Evaluation
tab draws them) and ``nodenet evaluate --json`` prints them (:func:`to_json`).
They read a :class:`nodenet.backend.Backend`, so any backend's run reports alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nodenet.reports_metrics import (
    class_scores,
    classifier_details,
    details_json,
    regression_details,
)

HISTOGRAM_BINS = 30
SAMPLE_COUNT = 8  # test samples shown with their predictions
SCATTER_POINTS = 2000  # at most this many points in a predicted-vs-true plot
CLASSIFICATION_LOSSES = (
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_crossentropy",
)


def summarize(
    backend: Any,
    gradients: dict[str, np.ndarray] | None,
    metrics: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The evaluation of a built (and trained) ``backend``, as plain data.

    ``test``: ``None`` or ``{"size", "metrics"}`` (``metrics`` computed unless given);
    ``heads``: per Output id, ``{"task", "classes", "confusion" (k, k) counts | None,
    "true", "pred"}`` (regression values subsampled) with the entries of
    :mod:`nodenet.reports_metrics` (per-class metrics, ROC and precision-recall curves or
    residuals, and a per-sample ``table`` of every test sample); ``samples``: the first test
    samples' ``inputs``, ``targets`` and ``outputs`` (dicts of arrays, axis 0 the
    sample) and ``image_shapes``; ``test_inputs``: every test sample's inputs (the prepared
    arrays, not copies) and each Input's ``normalization``; ``explainer``: an
    :class:`nodenet.explain.Explainer` of the model when the backend is numpy's, else None;
    ``weight_histograms`` / ``gradient_histograms``: per ``node/name`` key
    ``{"counts", "edges", "mean", "std"}``.
    """
    data = backend.data
    test = data.test if data is not None else None
    out: dict[str, Any] = {
        "test": None,
        "heads": {},
        "samples": None,
        "test_inputs": None,
        "explainer": None,
    }
    if test and test["inputs"] and len(next(iter(test["inputs"].values()))):
        metrics = (backend.evaluate() or {}) if metrics is None else metrics
        outputs = backend.predict(test["inputs"])
        size = len(next(iter(outputs.values())))
        out["test"] = {"size": size, "metrics": metrics}
        for head_id, loss in backend.outputs.items():
            classes = data.meta.classes.get(head_id)
            out["heads"][head_id] = head_report(
                loss, test["targets"][head_id], outputs[head_id], classes
            )
        out["samples"] = {
            "inputs": {
                k: _unnormalized(v[:SAMPLE_COUNT], data.meta.normalization.get(k))
                for k, v in test["inputs"].items()
            },
            "targets": {k: v[:SAMPLE_COUNT].copy() for k, v in test["targets"].items()},
            "outputs": {k: v[:SAMPLE_COUNT].copy() for k, v in outputs.items()},
            "image_shapes": {
                k: image_shape(v.shape[1:], data.meta.dataset.description)
                for k, v in test["inputs"].items()
            },
        }
        # every test sample, for the sample browser: the arrays themselves, not copies
        out["test_inputs"] = {
            "inputs": dict(test["inputs"]),
            "normalization": {k: data.meta.normalization.get(k) for k in test["inputs"]},
        }
        out["explainer"] = explainer_of(backend)
    out["weight_histograms"] = histograms(backend.get_weights())
    out["gradient_histograms"] = histograms(gradients or {})
    return out


def explainer_of(backend: Any) -> Any:
    """An :class:`nodenet.explain.Explainer` of the backend's numpy model, if it has one
    (saliency, Grad-CAM and activations for the sample browser), else None."""
    from nodenet.engine.model import Model
    from nodenet.explain import Explainer

    model = getattr(getattr(backend, "run", None), "model", None)
    return Explainer(model) if isinstance(model, Model) else None


def unnormalized(x: np.ndarray, stats: dict[str, Any] | None) -> np.ndarray:
    """Samples ``(n, ...)`` with the Input's normalization undone, for display."""
    return _unnormalized(x, stats)


def _unnormalized(x: np.ndarray, stats: dict[str, Any] | None) -> np.ndarray:
    """Samples ``(n, ...)`` with the Input's normalization undone, for display."""
    x = np.array(x, dtype=np.float64 if x.dtype.kind == "f" else x.dtype)
    method = (stats or {}).get("method")
    if method not in ("standard", "minmax"):
        return x
    low, spread = (
        (stats["mean"], stats["std"])
        if method == "standard"
        else (stats["min"], stats["max"] - stats["min"])
    )
    if np.size(low) != np.prod(x.shape[1:]):
        return x
    spread = np.where(spread > 0, spread, 1.0).reshape(x.shape[1:])
    return x * spread + np.reshape(low, x.shape[1:])


def head_report(
    loss: str, y_true: np.ndarray, y_pred: np.ndarray, classes: list[str] | None
) -> dict[str, Any]:
    """Confusion matrix for a classifier head, else predicted-vs-true values.

    ``y_true``: targets as prepared (one-hot ``(n, k)``, labels ``(n,)`` or
    ``(n, 1)``, or values); ``y_pred``: the head's outputs ``(n, ...)``.
    """
    labels = predicted_labels(loss, y_true, y_pred)
    if labels is not None:
        true, pred, k = labels
        names = list(classes) if classes and len(classes) == k else [str(i) for i in range(k)]
        matrix = np.zeros((k, k), dtype=np.int64)
        np.add.at(matrix, (true, pred), 1)
        details = classifier_details(true, pred, class_scores(y_pred), names)
        return {"task": "classification", "classes": names, "confusion": matrix, **details}
    true, pred = y_true.reshape(-1).astype(np.float64), y_pred.reshape(-1).astype(np.float64)
    if len(true) != len(pred):
        return {"task": "other", "classes": None, "confusion": None}
    details = regression_details(y_true, y_pred) if len(y_true) == len(y_pred) else {}
    if len(true) > SCATTER_POINTS:
        keep = np.linspace(0, len(true) - 1, SCATTER_POINTS).astype(int)
        true, pred = true[keep], pred[keep]
    return {
        "task": "regression",
        "classes": None,
        "confusion": None,
        "true": true,
        "pred": pred,
        **details,
    }


def predicted_labels(
    loss: str, y_true: np.ndarray, y_pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """``(true labels, predicted labels, classes)`` of a single-label classifier, else None."""
    if loss not in CLASSIFICATION_LOSSES or y_pred.ndim != 2:
        return None
    n, width = y_pred.shape
    if width == 1:  # one sigmoid unit
        pred = (y_pred[:, 0] > 0.5).astype(np.int64)
        true = (y_true.reshape(n) > 0.5).astype(np.int64)
        return true, pred, 2
    if loss == "binary_crossentropy":
        return None  # several independent labels: no single confusion matrix
    pred = y_pred.argmax(axis=1)
    true = y_true.argmax(axis=1) if y_true.ndim == 2 and y_true.shape[1] == width else y_true
    true = np.rint(np.asarray(true).reshape(n)).astype(np.int64)
    if true.min(initial=0) < 0 or true.max(initial=0) >= width:
        return None
    return true, pred, width


def histograms(arrays: dict[str, np.ndarray], bins: int = HISTOGRAM_BINS) -> dict[str, dict]:
    """Per key: ``counts`` (bins,), ``edges`` (bins + 1,), ``mean`` and ``std`` (finite values)."""
    out = {}
    for key, array in arrays.items():
        if np.asarray(array).dtype.kind not in "biuf":  # a vocabulary: no histogram
            continue
        values = np.asarray(array, dtype=np.float64).reshape(-1)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        low, high = float(values.min()), float(values.max())
        if low == high:
            low, high = low - 0.5, high + 0.5
        counts, edges = np.histogram(values, bins=bins, range=(low, high))
        out[key] = {
            "counts": counts,
            "edges": edges,
            "mean": float(values.mean()),
            "std": float(values.std()),
        }
    return out


def image_shape(sample: tuple, description: str = "") -> tuple[int, ...] | None:
    """The picture shape of samples shaped ``sample``, if they look like images.

    ``(h, w)`` and ``(h, w, 1 | 3)`` with sides of at least 5; a flat square of at
    least 64 values when the description speaks of images or pixels.
    """
    if len(sample) == 2 and min(sample) >= 5:
        return tuple(sample)
    if len(sample) == 3 and min(sample[:2]) >= 5 and sample[2] in (1, 3):
        return tuple(sample) if sample[2] == 3 else tuple(sample[:2])
    words = description.lower()
    if len(sample) == 1 and ("image" in words or "pixel" in words):
        side = math.isqrt(sample[0])
        if side * side == sample[0] and side >= 8:
            return (side, side)
    return None


def sample_prediction(report: dict, target: np.ndarray, output: np.ndarray) -> dict[str, Any]:
    """One test sample of a head: ``{"true", "predicted", "p", "right"}``.

    For a classifier: class names, the predicted class's probability and whether it
    is right; otherwise the first true and predicted values (``p``, ``right``: None).
    """
    if report["task"] != "classification":
        true = np.asarray(target).reshape(-1)
        pred = np.asarray(output).reshape(-1)
        return {"true": float(true[0]), "predicted": float(pred[0]), "p": None, "right": None}
    classes = report["classes"]
    output = np.asarray(output).reshape(-1)
    target = np.asarray(target).reshape(-1)
    if output.size == 1:
        label, p = int(output[0] > 0.5), float(output[0] if output[0] > 0.5 else 1 - output[0])
        truth = int(target[0] > 0.5)
    else:
        label, p = int(output.argmax()), float(output.max())
        truth = int(target.argmax()) if target.size == output.size else round(float(target[0]))
    return {"true": classes[truth], "predicted": classes[label], "p": p, "right": truth == label}


def to_json(summary: dict[str, Any]) -> dict[str, Any]:
    """A :func:`summarize` result as JSON-ready data (lists, no arrays), for
    ``nodenet evaluate --json``: ``test_size``; ``heads`` (task, classes, confusion
    matrix as rows of counts, the first test samples' predictions, and as lists
    ``per_class``, ``curves``, ``residuals`` and the every-sample ``table`` of
    :func:`nodenet.reports_metrics.details_json`); weight histograms.
    """
    samples = summary.get("samples") or {}
    heads = {}
    for head_id, report in summary["heads"].items():
        targets = samples.get("targets", {}).get(head_id, [])
        outputs = samples.get("outputs", {}).get(head_id, [])
        confusion = report.get("confusion")
        heads[head_id] = {
            "task": report["task"],
            "classes": report["classes"],
            "confusion": None if confusion is None else np.asarray(confusion).tolist(),
            "samples": (
                [sample_prediction(report, t, o) for t, o in zip(targets, outputs, strict=True)]
                if report["task"] != "other"
                else []
            ),
            **details_json(report),
        }
    return {
        "test_size": (summary.get("test") or {}).get("size", 0),
        "heads": heads,
        "weight_histograms": _histograms_json(summary.get("weight_histograms", {})),
    }


def _histograms_json(table: dict[str, dict]) -> dict[str, dict]:
    return {
        key: {
            "counts": np.asarray(h["counts"]).tolist(),
            "edges": np.asarray(h["edges"]).tolist(),
            "mean": h["mean"],
            "std": h["std"],
        }
        for key, h in table.items()
    }

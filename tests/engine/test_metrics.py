"""Metrics against the Keras 3 metric objects, accumulated over several batches."""

import numpy as np
import pytest

from nodenet.engine.layers.io import METRIC_NAMES
from nodenet.engine.metrics import NAMES, direction_of, make_metric, resolve_metric
from nodenet.errors import UnknownNameError

KERAS_KIND = {
    "binary_accuracy": "BinaryAccuracy",
    "categorical_accuracy": "CategoricalAccuracy",
    "sparse_categorical_accuracy": "SparseCategoricalAccuracy",
    "mean_absolute_error": "MeanAbsoluteError",
    "mean_squared_error": "MeanSquaredError",
    "precision": "Precision",
    "recall": "Recall",
    "auc": "AUC",
}


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("torch")
    return pytest.importorskip("keras")


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def test_names_equal_the_output_block_choices():
    assert set(NAMES) == set(METRIC_NAMES)
    assert len(NAMES) == len(METRIC_NAMES)


def test_make_metric_is_resolve_metric():
    assert make_metric is resolve_metric


def test_unknown_metric_is_a_clear_error():
    with pytest.raises(UnknownNameError, match="unknown metric 'f1'"):
        resolve_metric("f1", None, (4, 1), (4, 1))


# (y_true shape, y_pred shape), batch included, as Keras sees them
RESOLUTION_SHAPES = [
    ((8, 3), (8, 3)),  # one-hot
    ((8,), (8, 3)),  # integer labels
    ((8, 1), (8, 3)),  # integer labels in a column
    ((8, 1), (8, 1)),  # binary
    ((8,), (8, 1)),  # binary, flat labels
    ((8, 2), (8, 2)),  # two classes one-hot (categorical, not binary)
    ((8, 5), (8, 5, 3)),  # sequence labels
    ((8, 5, 3), (8, 5, 3)),
]


@pytest.mark.parametrize("shapes", RESOLUTION_SHAPES)
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "binary_crossentropy", None])
def test_accuracy_resolves_like_keras_compile(keras, shapes, loss):
    from keras.src.trainers import compile_utils

    y_true_shape, y_pred_shape = shapes
    expected = compile_utils.get_metric("accuracy", np.zeros(y_true_shape), np.zeros(y_pred_shape))
    metric = resolve_metric("accuracy", loss, y_true_shape, y_pred_shape)
    assert KERAS_KIND[metric.kind] == type(expected).__name__
    assert metric.name == "accuracy" and metric.direction == "up"


def batches(kind, rng, n=4, batch=16):
    """Random batches (y_true, y_pred) suited to the metric ``kind``."""
    out = []
    for _ in range(n):
        if kind == "categorical":
            labels = rng.integers(0, 4, size=batch)
            out.append((np.eye(4, dtype=np.float32)[labels], softmax(rng.normal(size=(batch, 4)))))
        elif kind == "sparse":
            out.append(
                (
                    rng.integers(0, 4, size=batch).astype(np.float32),
                    softmax(rng.normal(size=(batch, 4))),
                )
            )
        elif kind == "sparse_column":
            out.append(
                (
                    rng.integers(0, 4, size=(batch, 1)).astype(np.float32),
                    softmax(rng.normal(size=(batch, 4))),
                )
            )
        elif kind == "sequence":
            out.append(
                (
                    rng.integers(0, 4, size=(batch, 5)).astype(np.float32),
                    softmax(rng.normal(size=(batch, 5, 4))),
                )
            )
        elif kind == "binary":
            out.append(
                (
                    (rng.random((batch, 1)) > 0.5).astype(np.float32),
                    rng.random((batch, 1)).astype(np.float32),
                )
            )
        elif kind == "binary_flat":
            out.append(
                (
                    (rng.random(batch) > 0.5).astype(np.float32),
                    rng.random((batch, 1)).astype(np.float32),
                )
            )
        elif kind == "multilabel":
            out.append(
                (
                    (rng.random((batch, 3)) > 0.5).astype(np.float32),
                    rng.random((batch, 3)).astype(np.float32),
                )
            )
        elif kind == "regression_sequence":
            out.append(
                (
                    rng.normal(size=(batch, 5, 3)).astype(np.float32),
                    rng.normal(size=(batch, 5, 3)).astype(np.float32),
                )
            )
        else:  # regression
            out.append(
                (
                    rng.normal(size=(batch, 3)).astype(np.float32),
                    rng.normal(size=(batch, 3)).astype(np.float32),
                )
            )
    return out


CASES = [
    ("accuracy", "categorical"),
    ("accuracy", "sparse"),
    ("accuracy", "sparse_column"),
    ("accuracy", "sequence"),
    ("accuracy", "binary"),
    ("accuracy", "binary_flat"),
    ("accuracy", "multilabel"),
    ("mae", "regression"),
    ("mse", "regression"),
    ("mae", "regression_sequence"),
    ("mse", "regression_sequence"),
    ("precision", "binary"),
    ("precision", "binary_flat"),
    ("precision", "multilabel"),
    ("recall", "binary"),
    ("recall", "binary_flat"),
    ("recall", "multilabel"),
    ("auc", "binary"),
    ("auc", "binary_flat"),
    ("auc", "multilabel"),
]


@pytest.mark.parametrize("name,kind", CASES)
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_keras_over_several_batches(keras, name, kind, weighted):
    rng = np.random.default_rng(abs(hash((name, kind, weighted))) % 2**32)
    data = batches(kind, rng)
    metric = resolve_metric(name, None, data[0][0].shape, data[0][1].shape)
    reference = getattr(keras.metrics, KERAS_KIND[metric.kind])()
    for y_true, y_pred in data:
        sw = rng.uniform(0, 2, size=len(y_true)).astype(np.float32) if weighted else None
        metric.update(y_true, y_pred, sw)
        reference.update_state(y_true, y_pred, sample_weight=sw)
        assert metric.result() == pytest.approx(float(reference.result()), rel=1e-5, abs=1e-7)
    metric.reset()
    reference.reset_state()
    y_true, y_pred = data[0]
    metric.update(y_true, y_pred)
    reference.update_state(y_true, y_pred)
    assert metric.result() == pytest.approx(float(reference.result()), rel=1e-5, abs=1e-7)


def test_auc_edges_of_the_threshold_grid(keras):
    """Predictions exactly on thresholds, at 0 and 1 and outside [0, 1]."""
    y_pred = np.array(
        [0.0, 1.0, 0.5, 1 / 199, 2 / 199, 198 / 199, -0.2, 1.3, 0.5, 0.25], np.float32
    )[:, None]
    y_true = np.array([0, 1, 1, 0, 1, 0, 0, 1, 0, 1], np.float32)[:, None]
    metric = resolve_metric("auc", None, y_true.shape, y_pred.shape)
    metric.update(y_true, y_pred)
    reference = keras.metrics.AUC()
    reference.update_state(y_true, y_pred)
    assert metric.result() == pytest.approx(float(reference.result()), rel=1e-6)


def test_hand_computed_results():
    acc = resolve_metric("accuracy", None, (2, 3), (2, 3))
    acc.update([[0, 0, 1], [0, 1, 0]], np.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]]), [0.7, 0.3])
    assert acc.result() == pytest.approx(0.3)  # the Keras docstring example
    mae = resolve_metric("mae", None, (2, 2), (2, 2))
    mae.update([[0, 1], [0, 0]], np.array([[1, 1], [0, 0]]), [1, 0])
    assert mae.result() == pytest.approx(0.5)
    precision = resolve_metric("precision", None, (4,), (4,))
    precision.update([0, 1, 1, 1], np.array([1, 0, 1, 1]))
    assert precision.result() == pytest.approx(2 / 3)
    assert resolve_metric("recall", None, (4,), (4,)).result() == 0.0  # nothing seen yet


def test_a_perfect_ranking_has_auc_one():
    auc = resolve_metric("auc", None, (6, 1), (6, 1))
    auc.update(
        np.array([[0], [0], [0], [1], [1], [1]]),
        np.array([[0.1], [0.2], [0.3], [0.7], [0.8], [0.9]]),
    )
    assert auc.result() == pytest.approx(1.0)


def test_directions():
    assert direction_of("val_loss") == "down"
    assert direction_of("loss") == "down"
    assert direction_of("val_accuracy") == "up"
    assert direction_of("digit_auc") == "up"
    assert direction_of("val_mae") == "down"
    assert direction_of("val_weird") is None

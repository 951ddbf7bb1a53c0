"""Losses against Keras 3 (values), torch autograd and finite differences (gradients)."""

import numpy as np
import pytest

from nodenet.engine.layers.io import LOSS_NAMES
from nodenet.engine.losses import NAMES, get_loss
from nodenet.errors import DataError, UnknownNameError

KERAS_CLASS = {
    "mean_squared_error": "MeanSquaredError",
    "mean_absolute_error": "MeanAbsoluteError",
    "binary_crossentropy": "BinaryCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "huber": "Huber",
}


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("torch")
    return pytest.importorskip("keras")


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def make_case(name, shape, rng, dtype=np.float32):
    """(y_true, y_pred) for ``name`` with predictions of ``shape``; probabilities stay
    away from the clipping bounds so autograd and finite differences are smooth."""
    if name in ("mean_squared_error", "mean_absolute_error", "huber"):
        return (rng.normal(size=shape).astype(dtype), (2 * rng.normal(size=shape)).astype(dtype))
    if name == "binary_crossentropy":
        return (
            (rng.random(shape) > 0.5).astype(dtype),
            rng.uniform(0.05, 0.95, size=shape).astype(dtype),
        )
    probs = softmax(rng.normal(size=shape)).astype(dtype)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    if name == "categorical_crossentropy":
        return np.eye(shape[-1], dtype=dtype)[labels], probs
    return labels, probs


def weights(shape, rng):
    """One weight per sample: (batch,), or (batch, 1) when each sample has several positions
    (Keras, like nodenet, refuses (batch,) weights against (batch, steps) losses)."""
    size = shape[:1] if len(shape) == 2 else (shape[0], 1)
    return rng.uniform(0, 2, size=size).astype(np.float32)


SHAPES = [(6, 4), (3, 5, 4), (5, 1)]
CASES = [
    (n, s, w)
    for n in LOSS_NAMES
    for s in SHAPES
    for w in (False, True)
    if not (s[-1] == 1 and "categorical" in n)
]


def test_names_equal_the_output_block_choices():
    assert set(NAMES) == set(LOSS_NAMES)
    assert len(NAMES) == len(LOSS_NAMES)


def test_unknown_loss_is_a_clear_error():
    with pytest.raises(UnknownNameError, match="unknown loss 'hinge'"):
        get_loss("hinge")


@pytest.mark.parametrize("name,shape,weighted", CASES)
def test_value_and_gradient_match_keras_and_autograd(keras, name, shape, weighted):
    import torch

    rng = np.random.default_rng(len(name) + len(shape))
    y_true, y_pred = make_case(name, shape, rng)
    sw = weights(shape, rng) if weighted else None

    value, grad = get_loss(name)(y_true, y_pred, sw)

    pred = torch.tensor(y_pred, requires_grad=True)
    ref_loss = getattr(keras.losses, KERAS_CLASS[name])()
    ref = ref_loss(torch.tensor(y_true), pred, None if sw is None else torch.tensor(sw))
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-6)
    assert grad.shape == y_pred.shape and grad.dtype == np.float32
    expected = pred.grad.numpy()
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_label_and_weight_shapes_are_aligned_like_keras(keras, name):
    """(batch,) targets against (batch, 1) predictions, (batch, 1) sample weights."""
    import torch

    rng = np.random.default_rng(7)
    if "categorical" in name:
        y_true, y_pred = make_case(name, (6, 3), rng)
        if name == "sparse_categorical_crossentropy":
            y_true = y_true[:, None]  # (batch, 1) labels
    else:
        y_true, y_pred = make_case(name, (6, 1), rng)
        y_true = y_true[:, 0]
    sw = rng.uniform(0, 2, size=(6, 1)).astype(np.float32)
    value, grad = get_loss(name)(y_true, y_pred, sw)
    pred = torch.tensor(y_pred, requires_grad=True)
    ref = getattr(keras.losses, KERAS_CLASS[name])()(torch.tensor(y_true), pred, torch.tensor(sw))
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-6)
    np.testing.assert_allclose(grad, pred.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,shape,weighted", CASES)
def test_gradient_matches_finite_differences_in_float64(name, shape, weighted):
    rng = np.random.default_rng(3)
    y_true, y_pred = make_case(name, shape, rng, dtype=np.float64)
    sw = weights(shape, rng).astype(np.float64) if weighted else None
    loss = get_loss(name)
    _, grad = loss(y_true, y_pred, sw)
    assert grad.dtype == np.float64
    eps = 1e-6
    flat = y_pred.reshape(-1)
    numeric = np.empty_like(flat)
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + eps
        up = loss(y_true, y_pred, sw)[0]
        flat[j] = old - eps
        down = loss(y_true, y_pred, sw)[0]
        flat[j] = old
        numeric[j] = (up - down) / (2 * eps)
    np.testing.assert_allclose(grad.reshape(-1), numeric, rtol=1e-5, atol=1e-8)


def test_cross_entropy_clips_like_keras(keras):
    """Probabilities of exactly 0 and 1: Keras clips to [1e-7, 1 - 1e-7]; no gradient there."""
    import torch

    y_true = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    y_pred = np.array([[0.0, 0.5, 0.5], [0.0, 1.0, 0.0]], np.float32)
    value, grad = get_loss("categorical_crossentropy")(y_true, y_pred)
    pred = torch.tensor(y_pred, requires_grad=True)
    ref = keras.losses.CategoricalCrossentropy()(torch.tensor(y_true), pred)
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-6)
    np.testing.assert_allclose(grad, pred.grad.numpy(), rtol=1e-5)

    bt = np.array([[1.0], [0.0], [1.0]], np.float32)
    bp = np.array([[0.0], [1.0], [1.0]], np.float32)
    value, grad = get_loss("binary_crossentropy")(bt, bp)
    pred = torch.tensor(bp, requires_grad=True)
    ref = keras.losses.BinaryCrossentropy()(torch.tensor(bt), pred)
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-6)
    np.testing.assert_allclose(grad, pred.grad.numpy(), rtol=1e-5)


FUSED = [
    ("categorical_crossentropy", "softmax"),
    ("sparse_categorical_crossentropy", "softmax"),
    ("binary_crossentropy", "sigmoid"),
]


def test_can_fuse():
    for name in LOSS_NAMES:
        for activation in ("softmax", "sigmoid", "relu", "linear", None):
            assert get_loss(name).can_fuse(activation) == ((name, activation) in FUSED)
    with pytest.raises(ValueError, match="cannot be fused"):
        get_loss("mean_squared_error").fused(np.zeros((2, 2)), np.zeros((2, 2)), "softmax")


@pytest.mark.parametrize("name,activation", FUSED)
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_gradient_is_autograd_through_the_activation(keras, name, activation, weighted):
    import torch

    rng = np.random.default_rng(11)
    shape = (7, 4) if activation == "softmax" else (7, 3)
    y_true, _ = make_case(name, shape, rng)
    z = rng.normal(size=shape).astype(np.float32)
    probs = softmax(z) if activation == "softmax" else sigmoid(z)
    sw = rng.uniform(0, 2, size=shape[0]).astype(np.float32) if weighted else None

    value, grad_z = get_loss(name).fused(y_true, probs.astype(np.float32), activation, sw)

    zt = torch.tensor(z, requires_grad=True)
    act = torch.softmax(zt, dim=-1) if activation == "softmax" else torch.sigmoid(zt)
    ref = getattr(keras.losses, KERAS_CLASS[name])()(
        torch.tensor(y_true), act, None if sw is None else torch.tensor(sw)
    )
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-5)
    assert grad_z.shape == z.shape and grad_z.dtype == np.float32
    np.testing.assert_allclose(grad_z, zt.grad.numpy(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name,activation", FUSED)
def test_fused_gradient_is_zero_through_saturated_probabilities(keras, name, activation):
    """Logits of +-40 saturate the clip: value and gradient are Keras's (torch autograd
    through the activation and the clipped loss), zero through the clipped entries."""
    import torch

    shape = (4, 3)
    rng = np.random.default_rng(5)
    y_true, _ = make_case(name, shape, rng)
    z = np.where(rng.random(shape) > 0.5, 40.0, -40.0).astype(np.float32)
    probs = (softmax(z) if activation == "softmax" else sigmoid(z)).astype(np.float32)

    value, grad_z = get_loss(name).fused(y_true, probs, activation)

    cls = getattr(keras.losses, KERAS_CLASS[name])
    on_probs = cls()(torch.tensor(y_true), torch.tensor(probs))
    assert value == pytest.approx(float(on_probs), rel=1e-5)
    zt = torch.tensor(z, requires_grad=True)
    act = torch.softmax(zt, dim=-1) if activation == "softmax" else torch.sigmoid(zt)
    cls()(torch.tensor(y_true), act).backward()
    np.testing.assert_allclose(grad_z, zt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_float64_in_float64_out():
    y_true, y_pred = make_case("mean_squared_error", (3, 2), np.random.default_rng(0), np.float64)
    value, grad = get_loss("mean_squared_error")(y_true, y_pred)
    assert isinstance(value, float) and grad.dtype == np.float64


def test_hand_computed_values():
    # MSE: mean of (0-1)^2, (1-1)^2, (0-0)^2, (0-0)^2 = 0.25 (the Keras docstring example)
    value, grad = get_loss("mean_squared_error")(
        [[0, 1], [0, 0]], np.array([[1, 1], [0, 0]], np.float32)
    )
    assert value == pytest.approx(0.25)
    np.testing.assert_allclose(grad, [[0.5, 0], [0, 0]])
    # Huber, Keras docstring: 0.155
    value, _ = get_loss("huber")([[0, 1], [0, 0]], np.array([[0.6, 0.4], [0.4, 0.6]], np.float32))
    assert value == pytest.approx(0.155)
    # sample weight [1, 0] halves the weighted sum, still divided by the batch size
    value, _ = get_loss("mean_absolute_error")(
        [[0, 1], [0, 0]], np.array([[1, 1], [0, 1]], np.float32), [1, 0]
    )
    assert value == pytest.approx(0.25)


def test_sample_weights_that_do_not_fit_are_a_data_error():
    y_true, y_pred = make_case("mean_squared_error", (3, 5, 2), np.random.default_rng(0))
    with pytest.raises(DataError, match=r"sample weights of shape \(3,\) do not fit"):
        get_loss("mean_squared_error")(y_true, y_pred, np.ones(3))


def test_bad_targets_are_data_errors():
    probs = softmax(np.zeros((2, 3))).astype(np.float32)
    with pytest.raises(DataError, match="label 3 is out of range for 3 classes"):
        get_loss("sparse_categorical_crossentropy")(np.array([0, 3]), probs)
    with pytest.raises(DataError, match="one-hot targets are expected"):
        get_loss("categorical_crossentropy")(np.array([0, 2]), probs)

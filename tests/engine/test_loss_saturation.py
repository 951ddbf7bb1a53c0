"""The fused cross-entropy gradient where Keras's probability clip saturates, against
Keras's own losses differentiated by torch autograd and by jax.grad, hand-computed
values and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from nodenet.engine.losses import get_loss
from nodenet.engine.training import fit
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model

KERAS_NAME = {
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
}
FUSED = [
    ("categorical_crossentropy", "softmax"),
    ("sparse_categorical_crossentropy", "softmax"),
    ("binary_crossentropy", "sigmoid"),
]


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def activate(z, activation):
    return softmax(z) if activation == "softmax" else sigmoid(z)


def mixed_case(name, rng, dtype=np.float32):
    """Logits (8, 4) with saturated rows (+-30, some target classes clipped, some not)
    and ordinary rows; targets for ``name``."""
    z = rng.normal(size=(8, 4))
    z[:4] = np.where(rng.random((4, 4)) > 0.5, 30.0, -30.0)
    z[4, :] = [12.0, 0.0, -25.0, 1.0]  # one tiny entry clipped, the target's not
    labels = np.array([0, 1, 2, 3, 1, 2, 0, 3])
    if name == "sparse_categorical_crossentropy":
        t = labels
    elif name == "categorical_crossentropy":
        t = np.eye(4, dtype=dtype)[labels]
    else:
        t = (rng.random((8, 4)) > 0.5).astype(dtype)
    return z.astype(dtype), t


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("torch")
    return pytest.importorskip("keras")


def test_hand_computed_saturated_example():
    """x = 1, Dense(2, softmax) with kernel [[20, -20]], target [0, 1]: the probabilities
    [1, 4.2e-18] clip, so the loss is -log(1e-7) and its gradient 0 (not p - t = [1, -1])."""
    z = np.array([[20.0, -20.0]], np.float32)
    probs = softmax(z).astype(np.float32)
    for name, t in (
        ("categorical_crossentropy", np.array([[0.0, 1.0]], np.float32)),
        ("sparse_categorical_crossentropy", np.array([1])),
    ):
        value, grad = get_loss(name).fused(t, probs, "softmax")
        assert value == pytest.approx(-np.log(1e-7), rel=1e-5)
        np.testing.assert_array_equal(grad, [[0.0, 0.0]])
    value, grad = get_loss("binary_crossentropy").fused(
        np.array([[0.0, 1.0]], np.float32), sigmoid(z).astype(np.float32), "sigmoid"
    )
    np.testing.assert_array_equal(grad, [[0.0, 0.0]])


def test_training_step_leaves_a_saturated_softmax_kernel_alone():
    """The same example through fit: one SGD step (learning rate 1) changes nothing."""
    project = Project(
        "saturated",
        [
            Node("x", "Input", {"shape": [1]}),
            Node("d", "Dense", {"units": 2, "activation": "softmax", "use_bias": False}),
            Node("y", "Output", {"loss": "categorical_crossentropy"}),
        ],
        [Edge("x", "d"), Edge("d", "y")],
    )
    model = build_model(project)
    model.set_weights({"d/kernel": np.array([[20.0, -20.0]], np.float32)})
    fit(
        model,
        {"x": np.ones((1, 1), np.float32)},
        {"y": np.array([[0.0, 1.0]], np.float32)},
        epochs=1,
        batch_size=1,
        shuffle=False,
        optimizer={"name": "sgd", "learning_rate": 1.0},
    )
    np.testing.assert_array_equal(model.get_weights()["d/kernel"], [[20.0, -20.0]])


@pytest.mark.parametrize("name,activation", FUSED)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_matches_keras_torch_autograd(keras, name, activation, smoothing):
    import torch

    if smoothing and name == "sparse_categorical_crossentropy":
        pytest.skip("Keras's sparse cross-entropy has no label_smoothing")
    z, t = mixed_case(name, np.random.default_rng(3))
    options = {"label_smoothing": smoothing} if smoothing else {}
    value, grad = get_loss(name, **options).fused(
        t, activate(z, activation).astype(np.float32), activation
    )
    zt = torch.tensor(z, requires_grad=True)
    act = torch.softmax(zt, dim=-1) if activation == "softmax" else torch.sigmoid(zt)
    ref = getattr(keras.losses, KERAS_NAME[name])(**options)(torch.tensor(t), act)
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-5)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-4, atol=1e-7)
    assert np.abs(grad[:4]).max() < np.abs(grad).max()  # some saturated entries are zero


@pytest.mark.parametrize("name,activation", FUSED)
def test_matches_keras_jax_backend_gradient(keras, name, activation):
    """Keras's JAX backend losses (keras.src.backend.jax.nn), differentiated by jax.grad."""
    pytest.importorskip("jax")
    import jax
    import jax.numpy as jnp
    from keras.src.backend.jax import nn as jax_nn

    z, t = mixed_case(name, np.random.default_rng(4))
    _, grad = get_loss(name).fused(t, activate(z, activation).astype(np.float32), activation)

    def loss(logits):
        probs = jax.nn.softmax(logits) if activation == "softmax" else jax.nn.sigmoid(logits)
        per = getattr(jax_nn, name)(jnp.asarray(t), probs)
        return per.mean()

    np.testing.assert_allclose(grad, np.asarray(jax.grad(loss)(jnp.asarray(z))), atol=1e-7)


@pytest.mark.parametrize("name,activation", FUSED)
def test_matches_finite_differences_where_smooth(name, activation):
    """float64, logits chosen so no entry crosses a clip bound under the step: the
    clipped loss is smooth there and its central differences are the gradient."""
    z, t = mixed_case(name, np.random.default_rng(5), np.float64)
    options = {"label_smoothing": 0.1} if name != "sparse_categorical_crossentropy" else {}
    loss = get_loss(name, **options)
    _, grad = loss.fused(t, activate(z, activation), activation)
    h, numeric = 1e-6, np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        value_up = loss(t, activate(up, activation))[0]
        value_down = loss(t, activate(down, activation))[0]
        numeric[idx] = (value_up - value_down) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_rows_without_clipping_keep_p_minus_t():
    """Unsaturated positions give exactly the cheap fused value ``p - t`` (mean over 3)."""
    rng = np.random.default_rng(6)
    probs = softmax(rng.normal(size=(3, 4))).astype(np.float32)
    t = np.eye(4, dtype=np.float32)[[0, 2, 3]]
    _, grad = get_loss("categorical_crossentropy").fused(t, probs, "softmax")
    np.testing.assert_allclose(grad, (probs - t) / 3, rtol=1e-6, atol=1e-9)

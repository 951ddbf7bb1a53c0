"""Keras's loss options on the Output: ``from_logits`` for the three cross-entropies
(stable, as Keras computes them) and ``label_smoothing`` (categorical and binary), against
Keras values, torch autograd and finite differences; the MNIST MLP of the Keras guide
with a linear last layer evaluates to Keras's loss."""

from __future__ import annotations

import numpy as np
import pytest

from nodenet.engine import block_class
from nodenet.engine.losses import LOGITS_LOSSES, get_loss
from nodenet.engine.training import evaluate, predict
from nodenet.errors import ParamError
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model

KERAS_CLASS = {
    "binary_crossentropy": "BinaryCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
}
OPTIONS = [  # (loss, from_logits, label_smoothing)
    (name, True, 0.0) for name in KERAS_CLASS
] + [
    ("categorical_crossentropy", True, 0.2),
    ("categorical_crossentropy", False, 0.1),
    ("binary_crossentropy", True, 0.3),
    ("binary_crossentropy", False, 0.1),
]
SHAPES = [(6, 4), (3, 5, 4), (5, 1)]


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("torch")
    return pytest.importorskip("keras")


def make_case(name, from_logits, shape, rng, dtype=np.float32):
    """Targets and predictions: logits of both signs, or probabilities."""
    z = (3 * rng.normal(size=shape)).astype(dtype)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    if name == "binary_crossentropy":
        y_true = (rng.random(shape) > 0.5).astype(dtype)
        pred = z if from_logits else (1 / (1 + np.exp(-z / 3))).astype(dtype)
        return y_true, pred
    if not from_logits:
        e = np.exp(z / 3)
        z = (e / e.sum(axis=-1, keepdims=True)).astype(dtype)
    if name == "categorical_crossentropy":
        return np.eye(shape[-1], dtype=dtype)[labels], z
    return labels, z


CASES = [
    (*option, shape, weighted)
    for option in OPTIONS
    for shape in SHAPES
    for weighted in (False, True)
    if not (shape[-1] == 1 and "categorical" in option[0])
]


@pytest.mark.ref
@pytest.mark.parametrize("name, from_logits, smoothing, shape, weighted", CASES)
def test_value_and_gradient_match_keras(keras, name, from_logits, smoothing, shape, weighted):
    import torch

    rng = np.random.default_rng(len(shape) + int(10 * smoothing))
    y_true, y_pred = make_case(name, from_logits, shape, rng)
    size = shape[:1] if len(shape) == 2 else (shape[0], 1)
    sw = rng.uniform(0, 2, size=size).astype(np.float32) if weighted else None
    value, grad = get_loss(name, from_logits, smoothing)(y_true, y_pred, sw)

    options = {"from_logits": from_logits}
    if smoothing:
        options["label_smoothing"] = smoothing
    ref_loss = getattr(keras.losses, KERAS_CLASS[name])(**options)
    pred = torch.tensor(y_pred, requires_grad=True)
    ref = ref_loss(torch.tensor(y_true), pred, None if sw is None else torch.tensor(sw))
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-6)
    expected = pred.grad.numpy()
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("name, from_logits, smoothing, shape, weighted", CASES)
def test_gradient_matches_finite_differences_in_float64(
    name, from_logits, smoothing, shape, weighted
):
    rng = np.random.default_rng(5)
    y_true, y_pred = make_case(name, from_logits, shape, rng, np.float64)
    sw = rng.uniform(0, 2, size=(shape[0], 1)) if weighted else None
    loss = get_loss(name, from_logits, smoothing)
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


@pytest.mark.parametrize("name", LOGITS_LOSSES)
def test_huge_logits_stay_finite_and_exact(name):
    """No overflow where exp(z) would: the loss of a confident right answer is ~0, of a
    confident wrong one ~|z|."""
    z = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]], np.float32)
    if name == "binary_crossentropy":
        t = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
        expected = 500.0  # row 1 right (0), row 2 wrong (1000 per feature, averaged)
    elif name == "categorical_crossentropy":
        t, expected = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32), 1000.0
    else:
        t, expected = np.array([0, 0]), 1000.0
    value, grad = get_loss(name, from_logits=True)(t, z)
    assert value == pytest.approx(expected) and np.isfinite(grad).all()


def test_an_option_a_loss_does_not_take_is_refused_by_name():
    with pytest.raises(ValueError, match="from_logits applies to the cross-entropy losses"):
        get_loss("mean_squared_error", from_logits=True)
    with pytest.raises(ValueError, match="label_smoothing applies to"):
        get_loss("sparse_categorical_crossentropy", label_smoothing=0.1)
    output = block_class("Output")
    with pytest.raises(ParamError, match="from_logits applies") as info:
        output.from_config({"loss": "huber", "from_logits": True})
    assert info.value.param == "from_logits"
    with pytest.raises(ParamError, match="label_smoothing applies") as info:
        output.from_config({"loss": "mean_absolute_error", "label_smoothing": 0.5})
    assert info.value.param == "label_smoothing"
    with pytest.raises(ParamError, match="label_smoothing"):
        output.from_config({"loss": "binary_crossentropy", "label_smoothing": 1.5})


def test_a_probability_head_still_fuses_and_a_logits_head_does_not():
    assert get_loss("categorical_crossentropy").can_fuse("softmax")
    assert not get_loss("categorical_crossentropy", from_logits=True).can_fuse("softmax")


# -- the guide's MNIST MLP with logits ----------------------------------------------------


def mnist_mlp(loss: str, from_logits: bool, units: int = 10) -> Project:
    output = {"loss": loss, "metrics": ["accuracy"], "from_logits": from_logits}
    return Project(
        name="mnist-mlp",
        nodes=[
            Node("digits", "Input", {"shape": [784]}),
            Node("dense_1", "Dense", {"units": 64, "activation": "relu"}),
            Node("dense_2", "Dense", {"units": 64, "activation": "relu"}),
            Node("predictions", "Dense", {"units": units}),
            Node("out", "Output", output),
        ],
        edges=[
            Edge("digits", "dense_1"),
            Edge("dense_1", "dense_2"),
            Edge("dense_2", "predictions"),
            Edge("predictions", "out"),
        ],
    )


def keras_twin(keras, model, units: int = 10):
    inputs = keras.Input((784,))
    h = keras.layers.Dense(64, activation="relu", name="dense_1")(inputs)
    h = keras.layers.Dense(64, activation="relu", name="dense_2")(h)
    twin = keras.Model(inputs, keras.layers.Dense(units, name="predictions")(h))
    for name in ("dense_1", "dense_2", "predictions"):
        w = model.weights[name]
        twin.get_layer(name).set_weights([w["kernel"], w["bias"]])
    return twin


@pytest.mark.ref
@pytest.mark.parametrize(
    "loss, keras_loss, units",
    [
        ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy", 10),
        ("categorical_crossentropy", "CategoricalCrossentropy", 10),
        ("binary_crossentropy", "BinaryCrossentropy", 1),
    ],
)
def test_the_mnist_mlp_with_logits_evaluates_as_keras(keras, loss, keras_loss, units):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(300, 784)).astype(np.float32)
    labels = rng.integers(0, 10, size=300)
    y = {
        "sparse_categorical_crossentropy": labels,
        "categorical_crossentropy": np.eye(10, dtype=np.float32)[labels],
        "binary_crossentropy": (labels[:, None] > 4).astype(np.float32),
    }[loss]
    model = build_model(mnist_mlp(loss, True, units), seed=3)
    ours = evaluate(model, {"digits": x}, {"out": y}, batch_size=64)

    twin = keras_twin(keras, model, units)
    twin.compile(loss=getattr(keras.losses, keras_loss)(from_logits=True), metrics=["accuracy"])
    theirs = twin.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-5)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=1e-6)
    logits = predict(model, {"digits": x})["out"]  # predictions stay the raw logits
    np.testing.assert_allclose(logits, twin.predict(x, verbose=0), atol=1e-5)

    # the bug: the same linear head scored as probabilities is far from Keras's loss
    probability_head = build_model(mnist_mlp(loss, False, units), seed=3)
    wrong = evaluate(probability_head, {"digits": x}, {"out": y}, batch_size=64)
    assert abs(wrong["loss"] - theirs["loss"]) > 0.5


def test_training_a_logits_head_lowers_its_loss():
    from nodenet.engine.training import fit

    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 784)).astype(np.float32)
    labels = (x[:, :10].argmax(axis=1)).astype(np.int64)
    model = build_model(mnist_mlp("sparse_categorical_crossentropy", True), seed=0)
    before = evaluate(model, {"digits": x}, {"out": labels})["loss"]
    fit(model, {"digits": x}, {"out": labels}, epochs=3, batch_size=32, seed=0)
    assert evaluate(model, {"digits": x}, {"out": labels})["loss"] < before / 2

"""Frozen blocks (``Node.trainable=False``, Keras's ``layer.trainable = False``).

A frozen block's weights get no update and count as non-trainable, its regularizers add
nothing to the loss (Keras sums them over trainable weights only), a frozen
BatchNormalization runs in inference mode while training (Keras 3: ``training and
self.trainable``), and gradients still flow through frozen blocks to earlier ones. Checked
against finite differences and, one training step from the same weights, against Keras.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nodenet.engine.training import fit
from nodenet.graph.project import Edge, Node, Project, analyze
from nodenet.runner import build_model

FROZEN = ("body", "norm")
L2 = {"l1": 0.0, "l2": 0.05}


def transfer(frozen=FROZEN) -> Project:
    """Input -> Dense -> Dense (frozen) -> BatchNormalization (frozen) -> BatchNormalization
    -> Dense softmax: the earliest Dense learns through the frozen body."""
    nodes = [
        Node("x", "Input", {"shape": [6]}),
        Node("stem", "Dense", {"units": 5, "activation": "tanh", "kernel_regularizer": L2}),
        Node("body", "Dense", {"units": 4, "activation": "relu", "kernel_regularizer": L2}),
        Node("norm", "BatchNormalization", {"momentum": 0.5}),
        Node("norm2", "BatchNormalization", {"momentum": 0.5}),
        Node("head", "Dense", {"units": 3, "activation": "softmax"}),
        Node("y", "Output", {"loss": "categorical_crossentropy", "metrics": []}),
    ]
    for node in nodes:
        node.trainable = node.id not in frozen
    chain = [n.id for n in nodes]
    edges = [Edge(a, b) for a, b in itertools.pairwise(chain)]
    return Project("transfer", nodes, edges)


def batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=n)]
    return {"x": x}, {"y": y}


def perturbed(model, seed=1):
    """Weights off their initial values (non-unit gammas, moving statistics not 0/1)."""
    rng = np.random.default_rng(seed)
    for weights in model.weights.values():
        for name, w in weights.items():
            w += rng.normal(0.0, 0.3, size=w.shape).astype(w.dtype)
            if name == "moving_variance":
                np.abs(w, out=w)
    return model.get_weights()


def test_frozen_weights_count_as_non_trainable_in_the_analysis_and_the_model():
    project = transfer()
    analysis = analyze(project)
    assert analysis.params["body"] == (0, 5 * 4 + 4)
    assert analysis.params["norm"] == (0, 4 * 4)
    assert analysis.params["norm2"] == (2 * 4, 2 * 4)
    model = build_model(project)
    assert model.count_params() == (6 * 5 + 5 + 8 + 4 * 3 + 3, 24 + 16 + 8)
    keys = {key for key, _, _ in model.trainable()[1]}
    assert not any(k.startswith(("body/", "norm/")) for k in keys)
    assert analysis.blueprint(project).frozen == frozenset(FROZEN)


def test_a_step_leaves_frozen_weights_and_statistics_and_trains_the_rest():
    model = build_model(transfer(), seed=0)
    before = perturbed(model)
    x, y = batch()
    fit(model, x, y, epochs=1, batch_size=8, optimizer={"name": "adam"}, shuffle=False)
    after = model.get_weights()
    for key, value in before.items():
        frozen = key.split("/")[0] in FROZEN
        assert np.array_equal(after[key], value) == frozen, key


def test_gradients_are_those_of_a_model_whose_frozen_weights_are_constants():
    """Finite differences of the training loss (frozen BatchNormalization normalising with
    its moving statistics) over every trainable weight; frozen ones get no gradient."""
    from nodenet.engine.training import _Scorer

    model = build_model(transfer(), dtype=np.float64, seed=2)
    perturbed(model)
    x, y = batch(6)
    x = model.check_inputs(x)

    def loss():
        scorer = _Scorer(model, y)
        value, grads = scorer.score(model.forward(x, training=True), y, None, want_grads=True)
        return value + model.regularization(), grads

    _, out_grads = loss()
    grads = model.backward(out_grads)
    model.regularization(grads)
    params, keys = model.trainable()
    assert set(grads) == set(params)
    eps = 1e-6
    for key, _, _ in keys:
        w = params[key].reshape(-1)
        for j in range(min(w.size, 6)):
            old = w[j]
            w[j] = old + eps
            up = loss()[0]
            w[j] = old - eps
            down = loss()[0]
            w[j] = old
            numeric = (up - down) / (2 * eps)
            assert grads[key].reshape(-1)[j] == pytest.approx(numeric, rel=1e-5, abs=1e-8), key


def test_a_frozen_batch_normalization_normalises_with_its_moving_statistics_in_training():
    model = build_model(transfer(), seed=0)
    perturbed(model)
    x, _ = batch()
    trained = model.forward(model.check_inputs(x), training=True)
    inferred = model.forward(model.check_inputs(x), training=False)
    frozen_only = build_model(transfer(frozen=()), seed=0)
    frozen_only.set_weights(model.get_weights())
    unfrozen = frozen_only.forward(frozen_only.check_inputs(x), training=True)
    # norm2 (trainable) still uses batch statistics, so training and inference differ;
    # norm (frozen) alone would not change the output between them
    assert not np.allclose(trained["y"], inferred["y"])
    assert not np.allclose(trained["y"], unfrozen["y"])


def test_nothing_trainable_upstream_means_no_backward_work_there():
    model = build_model(transfer(frozen=("stem", "body", "norm")), seed=0)
    assert model._backprop == {"norm2", "head", "y"}
    assert not model.layers["norm2"].needs_input_grad
    assert model.layers["head"].needs_input_grad


def keras_twin(keras, weights: dict):
    """The same model in Keras, frozen layers ``trainable=False``, with ``weights``."""
    layers = keras.layers
    reg = keras.regularizers.L2(L2["l2"])
    inputs = keras.Input((6,))
    built = {
        "stem": layers.Dense(5, activation="tanh", kernel_regularizer=reg, name="stem"),
        "body": layers.Dense(4, activation="relu", kernel_regularizer=reg, name="body"),
        "norm": layers.BatchNormalization(momentum=0.5, name="norm"),
        "norm2": layers.BatchNormalization(momentum=0.5, name="norm2"),
        "head": layers.Dense(3, activation="softmax", name="head"),
    }
    h = inputs
    for layer in built.values():
        h = layer(h)
    model = keras.Model(inputs, h)
    for name, layer in built.items():
        layer.set_weights([weights[f"{name}/{w.name}"] for w in layer.weights])
        layer.trainable = name not in FROZEN
    return model


def twin_weights(twin) -> tuple[list, list]:
    return twin.trainable_weights, twin.non_trainable_weights


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_one_training_step_equals_keras(optimizer, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # before keras is first imported
    pytest.importorskip("torch", reason="the `ref` extra (torch) runs Keras")
    keras = pytest.importorskip("keras", reason="the `ref` extra (keras) is the reference")
    model = build_model(transfer(), seed=0)
    before = perturbed(model)
    twin = keras_twin(keras, before)
    counts = [sum(int(np.prod(w.shape)) for w in ws) for ws in twin_weights(twin)]
    assert tuple(counts) == model.count_params()
    x, y = batch()
    settings = {"name": optimizer, "learning_rate": 0.05}
    history = fit(model, x, y, epochs=1, batch_size=8, optimizer=settings, shuffle=False)
    opt = keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": 0.05}})
    twin.compile(optimizer=opt, loss="categorical_crossentropy")
    logs = twin.train_on_batch(x["x"], y["y"], return_dict=True)
    assert history.epochs[0]["loss"] == pytest.approx(logs["loss"], rel=1e-5)
    after = model.get_weights()
    for layer in twin.layers[1:]:
        for w in layer.weights:
            key = f"{layer.name}/{w.name}"
            np.testing.assert_allclose(after[key], np.asarray(w), rtol=1e-5, atol=1e-5, err_msg=key)
            if layer.name in FROZEN:
                np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def test_the_summary_counts_frozen_weights_as_keras_prints_them(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    pytest.importorskip("torch", reason="the `ref` extra (torch) runs Keras")
    keras = pytest.importorskip("keras", reason="the `ref` extra (keras) is the reference")
    from nodenet.graph.summary import summarize

    model = build_model(transfer(), seed=0)
    twin = keras_twin(keras, model.get_weights())
    printed: list[str] = []
    twin.summary(print_fn=lambda line, **_: printed.append(line))
    ours = summarize(transfer())
    assert (ours.trainable, ours.non_trainable) == model.count_params()
    wanted = ("Total params", "Trainable params", "Non-trainable params")
    text = "\n".join(printed).splitlines()
    keras_lines = [_plain(x) for x in text if _plain(x).startswith(wanted)]
    our_lines = [x.strip() for x in ours.to_text().splitlines() if x.strip().startswith(wanted)]
    assert len(our_lines) == 3 and our_lines == keras_lines


def _plain(line: str) -> str:
    """A Keras summary line without its rich-text markup."""
    import re

    return re.sub(r"\[[^\]]*\]|\x1b\[[0-9;]*m", "", line).strip()

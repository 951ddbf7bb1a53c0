"""All weights in one array, one optimizer update for all: against Keras 3 and the per-array
update, and the model's weights staying views of that array."""

import numpy as np
import pytest

from nodenet.engine import optimizer_base
from nodenet.engine.callbacks import GradientProbe
from nodenet.engine.flat_params import FlatParams
from nodenet.engine.layers import windows
from nodenet.engine.optimizers import NAMES, make_optimizer
from nodenet.engine.training import fit
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model
from tests.engine.test_optimizers import KERAS_CLASS

SHAPES = {"d1/kernel": (6, 4), "d1/bias": (4,), "bn/gamma": (3, 2, 2)}
CONFIGS = [
    *({"name": name} for name in NAMES),
    {"name": "sgd", "momentum": 0.9, "nesterov": True, "learning_rate": 0.05},
    {"name": "rmsprop", "centered": True, "momentum": 0.3},
    {"name": "adam", "amsgrad": True},
    {"name": "adamw", "weight_decay": 0.1, "learning_rate": 0.01},
    {"name": "adam", "clipvalue": 0.5},
    {"name": "adam", "global_clipnorm": 2.0},
    {"name": "adam", "clipnorm": 1.0},  # a norm per array: the per-array update runs
]


def small_mlp() -> Project:
    nodes = [
        Node("x", "Input", {"shape": [4]}),
        Node("d1", "Dense", {"units": 5, "activation": "relu"}),
        Node("d2", "Dense", {"units": 3, "activation": "softmax"}),
        Node("y", "Output", {"loss": "categorical_crossentropy", "metrics": ["accuracy"]}),
    ]
    edges = [Edge("x", "d1"), Edge("d1", "d2"), Edge("d2", "y")]
    return Project("small", nodes, edges)


def ids(config):
    return "-".join(str(v) for v in config.values())


def steps(config, seed=0, count=5):
    """Start arrays and ``count`` gradient dicts."""
    rng = np.random.default_rng(seed)
    start = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    grads = [
        {k: (3 * rng.normal(size=s)).astype(np.float32) for k, s in SHAPES.items()}
        for _ in range(count)
    ]
    return start, grads


@pytest.mark.parametrize("config", CONFIGS, ids=ids)
def test_flat_update_matches_keras(config):
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    start, grads = steps(config)
    flat = FlatParams(start, np.float32)
    variables = [keras.Variable(start[k]) for k in SHAPES]
    kwargs = {k: v for k, v in config.items() if k != "name"}
    reference = getattr(keras.optimizers, KERAS_CLASS[config["name"]])(**kwargs)
    optimizer = make_optimizer(config)
    for g in grads:
        optimizer.apply_flat(flat, g)
        reference.apply([torch.tensor(g[k]) for k in SHAPES], variables)
        for key, variable in zip(SHAPES, variables, strict=True):
            expected = variable.numpy()
            scale = np.abs(expected).max()
            np.testing.assert_allclose(flat.params[key], expected, rtol=1e-6, atol=1e-6 * scale)
    assert optimizer.iterations == len(grads) == int(reference.iterations)


@pytest.mark.parametrize("piece", [7, 65536])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("config", CONFIGS, ids=ids)
def test_flat_update_is_the_per_array_update_bit_for_bit(config, piece, threads, monkeypatch):
    monkeypatch.setattr(optimizer_base, "FLAT_PIECE", piece)  # the update runs piece by piece
    monkeypatch.setenv("OMP_NUM_THREADS", str(threads))  # two: the pieces on two threads
    monkeypatch.setattr(windows, "_PARALLEL_MIN", 0)  # however small the arrays
    start, grads = steps(config, seed=1)
    flat = FlatParams(start, np.float32)
    apart = {k: v.copy() for k, v in start.items()}
    one, each = make_optimizer(config), make_optimizer(config)
    for g in grads:
        one.apply_flat(flat, g)
        each.apply(apart, g)
    for key in SHAPES:
        assert np.array_equal(flat.params[key], apart[key]), key
        for name, slot in each.slots[key].items():
            assert np.array_equal(one.slots[key][name], slot), (key, name)


def test_a_weight_without_gradient_is_left_alone():
    start, (g, *_) = steps({})
    flat = FlatParams(start, np.float32)
    optimizer = make_optimizer({"name": "adam"})
    optimizer.apply_flat(flat, {k: v for k, v in g.items() if k != "d1/bias"})
    assert np.array_equal(flat.params["d1/bias"], start["d1/bias"])
    assert not np.array_equal(flat.params["d1/kernel"], start["d1/kernel"])
    assert optimizer.iterations == 1


def test_per_array_steps_carry_over_into_the_flat_update():
    start, grads = steps({}, seed=2)
    flat = FlatParams(start, np.float32)
    mixed, apart = make_optimizer({"name": "adam"}), make_optimizer({"name": "adam"})
    separate = {k: v.copy() for k, v in start.items()}
    mixed.apply(flat.params, grads[0])  # first per array, then flat
    for g in grads[1:]:
        mixed.apply_flat(flat, g)
    for g in grads:
        apart.apply(separate, g)
    assert all(np.array_equal(flat.params[k], separate[k]) for k in SHAPES)


def test_model_weights_are_views_of_one_array_and_fit_keeps_them():
    model = build_model(small_mlp(), seed=7)
    before = model.get_weights()
    flat = model.flat_trainable()
    assert flat.weights.flags.c_contiguous and flat.weights.ndim == 1
    params, keys = model.trainable()
    for key, node_id, name in keys:
        assert np.shares_memory(model.weights[node_id][name], flat.weights)
        np.testing.assert_array_equal(params[key], before[key])
    rng = np.random.default_rng(0)
    x = {"x": rng.normal(size=(40, 4)).astype(np.float32)}
    y = {"y": np.eye(3, dtype=np.float32)[rng.integers(0, 3, 40)]}
    probe = GradientProbe()
    fit(model, x, y, epochs=1, batch_size=8, seed=1, callbacks=[probe])
    assert model.flat_trainable() is flat  # the same array, updated in place
    kept = {k: v.copy() for k, v in probe.latest.items()}
    assert not any(np.shares_memory(v, flat.grads) for v in probe.latest.values())
    fit(model, x, y, epochs=1, batch_size=8, seed=2)
    assert all(np.array_equal(probe.latest[k], kept[k]) for k in kept)
    model.set_weights(before)  # copied into the views
    assert model.flat_trainable() is flat
    np.testing.assert_array_equal(flat.params[keys[0][0]], before[keys[0][0]])


def test_a_large_flat_update_on_two_threads_is_the_per_array_update(monkeypatch):
    """Pieces big enough that their updates overlap in time: each thread keeps its own
    temporaries."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    rng = np.random.default_rng(3)
    start = {f"d{i}/kernel": rng.normal(size=(300, 400)).astype(np.float32) for i in range(3)}
    grads = [{k: rng.normal(size=v.shape).astype(np.float32) for k, v in start.items()}]
    grads *= 4
    flat = FlatParams(start, np.float32)
    apart = {k: v.copy() for k, v in start.items()}
    one, each = make_optimizer({"name": "adam"}), make_optimizer({"name": "adam"})
    for g in grads:
        one.apply_flat(flat, g)
        each.apply(apart, g)
    for key in start:
        assert np.array_equal(flat.params[key], apart[key]), key

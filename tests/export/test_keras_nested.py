"""Nested Keras models come in flattened, ids saying where each block came from.

A Sequential or functional model used as a layer becomes its blocks, with ids
``outer.inner`` (deeper models add their names), wired to the tensors it is called
on and read by the layers after it; its weights come from under its group in
``model.weights.h5``, so ``nodenet predict`` equals Keras. A frozen nested model
freezes its blocks. A shared layer (called more than once) is refused, with advice,
in the grouped refusal.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nodenet.backend import NumpyBackend
from nodenet.errors import NodenetError
from nodenet.export import import_keras_archive, import_keras_config
from tests.export.test_keras_weights_import import assert_predicts_as_keras, randomized

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) writes the configs")
layers = keras.layers

pytestmark = pytest.mark.ref


def sequential_in_functional():
    inner = keras.Sequential(
        [
            keras.Input((5,)),
            layers.Dense(4, activation="tanh", name="hidden"),
            layers.Dense(3, name="code"),
        ],
        name="encoder",
    )
    x = keras.Input((5,), name="x")
    h = inner(x)
    return keras.Model(x, layers.Dense(2, name="head")(h), name="outer")


def functional_in_functional():
    a = keras.Input((6,), name="a")
    b = keras.Input((6,), name="b")
    s = layers.Add(name="sum")([layers.Dense(4, name="left")(a), layers.Dense(4, name="right")(b)])
    inner = keras.Model([a, b], layers.Dense(3, activation="relu", name="mix")(s), name="block")
    p = keras.Input((6,), name="p")
    q = keras.Input((6,), name="q")
    h = inner([layers.Dense(6, name="pre")(p), q])
    return keras.Model([p, q], layers.Dense(2, name="head")(h))


def twice_nested():
    core = keras.Sequential([keras.Input((4,)), layers.Dense(4, name="d")], name="core")
    x = keras.Input((4,))
    mid = keras.Model(x, layers.Dense(3, name="e")(core(x)), name="mid")
    y = keras.Input((4,))
    return keras.Model(y, mid(y))


def edges(project) -> set[tuple[str, str, int]]:
    return {(e.src, e.dst, e.port) for e in project.edges}


def test_a_sequential_inside_a_functional_comes_in_flattened():
    project = import_keras_config(json.loads(sequential_in_functional().to_json()))
    assert {n.id for n in project.nodes} == {
        "x",
        "encoder.hidden",
        "encoder.code",
        "head",
        "output",
    }
    assert edges(project) == {
        ("x", "encoder.hidden", 0),
        ("encoder.hidden", "encoder.code", 0),
        ("encoder.code", "head", 0),
        ("head", "output", 0),
    }


def test_a_functional_inside_a_functional_comes_in_flattened():
    project = import_keras_config(json.loads(functional_in_functional().to_json()))
    assert {n.id for n in project.nodes} >= {"block.left", "block.right", "block.sum", "block.mix"}
    assert not any(n.type == "Input" and n.id.startswith("block.") for n in project.nodes)
    assert edges(project) >= {
        ("pre", "block.left", 0),
        ("q", "block.right", 0),
        ("block.left", "block.sum", 0),
        ("block.right", "block.sum", 1),
        ("block.sum", "block.mix", 0),
        ("block.mix", "head", 0),
    }


def test_models_nested_twice_say_both_names():
    project = import_keras_config(json.loads(twice_nested().to_json()))
    assert {n.id for n in project.nodes if n.type == "Dense"} == {"mid.core.d", "mid.e"}


@pytest.mark.parametrize(
    "build", [sequential_in_functional, functional_in_functional, twice_nested]
)
def test_nested_weights_come_in_and_predict_as_keras(build, tmp_path):
    model = build()
    if len(model.inputs) == 1:
        assert_predicts_as_keras(model, tmp_path)
        return
    archive = tmp_path / "m.keras"
    randomized(model).save(archive)
    project, weights = import_keras_archive(archive)
    backend = NumpyBackend()
    backend.build(project, load_data=False)
    backend.set_weights(weights)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(3, 6)).astype("float32") for _ in model.inputs]
    expected = np.asarray(model.predict(inputs, verbose=0))
    got = backend.predict(dict(zip(backend.input_ids, inputs, strict=True)))
    np.testing.assert_allclose(next(iter(got.values())), expected, atol=1e-5)


def test_a_frozen_nested_model_freezes_its_blocks():
    model = sequential_in_functional()
    model.get_layer("encoder").trainable = False
    project = import_keras_config(json.loads(model.to_json()))
    frozen = {n.id for n in project.nodes if not n.trainable}
    assert frozen == {"encoder.hidden", "encoder.code"}


def test_a_shared_layer_is_refused_with_advice():
    x = keras.Input((4,))
    dense = layers.Dense(4, name="shared")
    model = keras.Model(x, dense(dense(x)))
    with pytest.raises(NodenetError, match="'shared' is shared") as info:
        import_keras_config(json.loads(model.to_json()))
    assert "give each call a layer of its own" in str(info.value)


def test_a_nested_model_used_twice_is_refused_as_shared():
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(4)], name="inner")
    x = keras.Input((4,))
    model = keras.Model(x, inner(inner(x)))
    with pytest.raises(NodenetError, match="'inner' is shared"):
        import_keras_config(json.loads(model.to_json()))


def test_blocks_without_weights_in_a_frozen_model_stay_unfrozen():
    inner = keras.Sequential(
        [keras.Input((4,)), layers.Dense(4, name="d"), layers.Dropout(0.5, name="drop")],
        name="frozen",
    )
    inner.trainable = False
    x = keras.Input((4,))
    project = import_keras_config(json.loads(keras.Model(x, inner(x)).to_json()))
    assert {n.id: n.trainable for n in project.nodes if n.id.startswith("frozen.")} == {
        "frozen.d": False,
        "frozen.drop": True,
    }

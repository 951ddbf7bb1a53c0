"""Nested Keras models come in as groups.

A Sequential or functional model used as a layer becomes a group definition named after
it (its layers under their Keras names, its inputs and output the definition's ports) and
one instance of the same name, wired to the tensors it is called on and read by the layers
after it; models nested deeper become groups inside groups. Its weights come from under
its group in ``model.weights.h5``, keyed ``instance/inner/weight``, so ``nodenet predict``
equals Keras. A frozen nested model is a frozen instance. A shared layer or nested model
(called more than once) is refused, saying why, in the grouped refusal (several outputs and
shared nested models: tests/export/test_keras_nested_outputs.py).
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
            keras.Input((5,), name="features"),
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


def inner_edges(project, name) -> set[tuple[str, str, int]]:
    return {(e.src, e.dst, e.port) for e in project.groups[name].edges}


def test_a_sequential_inside_a_functional_comes_in_as_a_group():
    project = import_keras_config(json.loads(sequential_in_functional().to_json()))
    assert [(n.id, n.type) for n in project.nodes] == [
        ("x", "Input"),
        ("encoder", "Group"),
        ("head", "Dense"),
        ("output", "Output"),
    ]
    assert project.node("encoder").params == {"group": "encoder"}
    assert edges(project) == {("x", "encoder", 0), ("encoder", "head", 0), ("head", "output", 0)}
    encoder = project.groups["encoder"]
    assert [n.id for n in encoder.nodes] == ["hidden", "code"]
    assert inner_edges(project, "encoder") == {("hidden", "code", 0)}
    assert [(p.name, p.to) for p in encoder.inputs] == [("features", [("hidden", 0)])]
    assert [(p.node, p.port) for p in encoder.outputs] == [("code", 0)]


def test_a_functional_inside_a_functional_comes_in_as_a_group():
    project = import_keras_config(json.loads(functional_in_functional().to_json()))
    block = project.groups["block"]
    assert {n.id for n in block.nodes} == {"left", "right", "sum", "mix"}
    assert not any(n.type == "Input" for n in block.nodes)
    assert [(p.name, p.to) for p in block.inputs] == [("a", [("left", 0)]), ("b", [("right", 0)])]
    assert inner_edges(project, "block") == {
        ("left", "sum", 0),
        ("right", "sum", 1),
        ("sum", "mix", 0),
    }
    assert edges(project) >= {("pre", "block", 0), ("q", "block", 1), ("block", "head", 0)}
    assert [(p.node, p.port) for p in block.outputs] == [("mix", 0)]


def test_models_nested_twice_become_groups_inside_groups():
    project = import_keras_config(json.loads(twice_nested().to_json()))
    assert [n.type for n in project.nodes if n.id == "mid"] == ["Group"]
    assert {n.id: n.type for n in project.groups["mid"].nodes} == {"core": "Group", "e": "Dense"}
    assert [n.id for n in project.groups["core"].nodes] == ["d"]
    reread = type(project).from_json(project.to_json(), "reread")
    assert set(reread.groups) == {"core", "mid"}
    from nodenet.graph.validation import analyze

    analysis = analyze(project)
    assert not analysis.problems
    assert {"mid/core/d", "mid/e"} <= {n.id for n in analysis.flat.nodes}


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


def test_a_frozen_nested_model_is_a_frozen_instance():
    model = sequential_in_functional()
    model.get_layer("encoder").trainable = False
    project = import_keras_config(json.loads(model.to_json()))
    assert not project.node("encoder").trainable
    assert {n.id for n in project.nodes if not n.trainable} == {"encoder"}
    assert {n.id for n in project.groups["encoder"].nodes if not n.trainable} == {"hidden", "code"}


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
    with pytest.raises(NodenetError, match="'inner' is a nested model called 2 times"):
        import_keras_config(json.loads(model.to_json()))


def test_blocks_without_weights_in_a_frozen_model_stay_unfrozen():
    inner = keras.Sequential(
        [keras.Input((4,)), layers.Dense(4, name="d"), layers.Dropout(0.5, name="drop")],
        name="frozen",
    )
    inner.trainable = False
    x = keras.Input((4,))
    project = import_keras_config(json.loads(keras.Model(x, inner(x)).to_json()))
    assert {n.id: n.trainable for n in project.groups["frozen"].nodes} == {
        "d": False,
        "drop": True,
    }


def test_nested_weights_are_keyed_instance_inner_weight(tmp_path):
    archive = tmp_path / "m.keras"
    randomized(twice_nested()).save(archive)
    _, weights = import_keras_archive(archive)
    assert set(weights) == {"mid/core/d/kernel", "mid/core/d/bias", "mid/e/kernel", "mid/e/bias"}


def autoencoder():
    encoder = keras.Sequential([keras.Input((6,)), layers.Dense(3, name="down")], name="encoder")
    decoder = keras.Sequential([keras.Input((3,)), layers.Dense(6, name="up")], name="decoder")
    x = keras.Input((6,), name="x")
    return keras.Model(x, decoder(encoder(x)), name="autoencoder")


def test_a_model_called_on_another_s_output_reads_its_instance(tmp_path):
    project = import_keras_config(json.loads(autoencoder().to_json()))
    assert edges(project) == {
        ("x", "encoder", 0),
        ("encoder", "decoder", 0),
        ("decoder", "output", 0),
    }
    assert set(project.groups) == {"encoder", "decoder"}
    assert_predicts_as_keras(autoencoder(), tmp_path)


def test_a_nested_model_whose_output_is_a_nested_model_s():
    core = keras.Sequential([keras.Input((4,)), layers.Dense(4, name="d")], name="core")
    x = keras.Input((4,))
    mid = keras.Model(x, core(layers.Dense(4, name="e")(x)), name="mid")
    y = keras.Input((4,))
    project = import_keras_config(
        json.loads(keras.Model(y, layers.Dense(2, name="h")(mid(y))).to_json())
    )
    assert [(p.node, p.port) for p in project.groups["mid"].outputs] == [("core", 0)]
    assert edges(project) >= {("mid", "h", 0)}

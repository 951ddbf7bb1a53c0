"""import-keras bugs of issue 15, each on a config Keras itself wrote.

Losses, loss weights and metrics keyed by output name stay per output; a
loss ``from_logits=True`` (and ``label_smoothing``) comes in as the Output's
setting of that name; a learning-rate schedule becomes nodenet's schedule of the same name or
is refused; Keras ops between tensors (``h + x``) become two-input merges or
are refused; a keyword input (``Dense(3)(inputs=h)``) keeps its edge; a refusal
is short, grouped by class with counts; a frozen layer (``trainable=False``) imports
frozen.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nodenet.cli import main
from nodenet.errors import NodenetError
from nodenet.export import import_keras_config
from nodenet.graph.project import analyze
from nodenet.runner import build_model

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) writes the configs")
layers, ops, schedules = keras.layers, keras.ops, keras.optimizers.schedules

pytestmark = pytest.mark.ref


def config_of(model) -> dict:
    config = json.loads(model.to_json())
    if model.compiled:
        config["compile_config"] = model.get_compile_config()
    return config


def two_heads(outputs_as_dict: bool = False):
    x = keras.Input((4,), name="x")
    a = layers.Dense(2, activation="softmax", name="a")(x)
    b = layers.Dense(1, activation="sigmoid", name="b")(x)
    return keras.Model(x, {"a": a, "b": b} if outputs_as_dict else [a, b])


def heads(project) -> dict:
    return {
        next(e.src for e in project.edges if e.dst == n.id): n.params
        for n in project.nodes
        if n.type == "Output"
    }


@pytest.mark.parametrize("outputs_as_dict", [False, True])
def test_losses_weights_and_metrics_by_output_name_stay_per_output(outputs_as_dict):
    model = two_heads(outputs_as_dict)
    model.compile(
        loss={"a": "categorical_crossentropy", "b": "binary_crossentropy"},
        loss_weights={"a": 0.5, "b": 2.0},
        metrics={"a": ["mae"], "b": ["accuracy"]},
    )
    project = import_keras_config(config_of(model))
    assert heads(project) == {
        "a": {"loss": "categorical_crossentropy", "loss_weight": 0.5, "metrics": ["mae"]},
        "b": {"loss": "binary_crossentropy", "loss_weight": 2.0, "metrics": ["accuracy"]},
    }


def test_a_loss_for_an_output_the_model_lacks_is_refused():
    config = config_of(two_heads())
    config["compile_config"] = {"loss": {"a": "mse", "nope": "mse"}}
    with pytest.raises(NodenetError, match="'nope'"):
        import_keras_config(config)


def test_a_loss_from_logits_comes_in_as_the_outputs_setting():
    x = keras.Input((4,), name="x")
    model = keras.Model(x, layers.Dense(3, name="logits")(x))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    project = import_keras_config(config_of(model))
    assert heads(project) == {
        "logits": {"loss": "sparse_categorical_crossentropy", "from_logits": True}
    }
    assert analyze(project).ok
    model.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1))
    (params,) = heads(import_keras_config(config_of(model))).values()
    assert params == {
        "loss": "categorical_crossentropy",
        "from_logits": True,
        "label_smoothing": 0.1,
    }


@pytest.mark.parametrize(
    "schedule, expected",
    [
        (
            schedules.ExponentialDecay(0.01, 100, 0.9, staircase=True),
            {
                "schedule": "ExponentialDecay",
                "initial_learning_rate": 0.01,
                "decay_steps": 100,
                "decay_rate": 0.9,
                "staircase": True,
            },
        ),
        (
            schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001]),
            {
                "schedule": "PiecewiseConstantDecay",
                "boundaries": [10, 20],
                "values": [0.1, 0.01, 0.001],
            },
        ),
        (
            schedules.CosineDecay(0.1, 50, alpha=0.1, warmup_target=0.2, warmup_steps=5),
            {
                "schedule": "CosineDecay",
                "initial_learning_rate": 0.1,
                "decay_steps": 50,
                "alpha": 0.1,
                "warmup_target": 0.2,
                "warmup_steps": 5,
            },
        ),
    ],
    ids=lambda v: getattr(v, "__name__", type(v).__name__),
)
def test_a_learning_rate_schedule_becomes_the_same_schedule(schedule, expected):
    model = two_heads()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="mse")
    project = import_keras_config(config_of(model))
    rate = project.training["optimizer"]["learning_rate"]
    assert {k: pytest.approx(v) for k, v in rate.items()} == expected
    assert analyze(project).ok


def test_a_schedule_nodenet_lacks_is_refused_by_name():
    model = two_heads()
    schedule = schedules.PolynomialDecay(0.1, 10)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss="mse")
    with pytest.raises(NodenetError, match="PolynomialDecay"):
        import_keras_config(config_of(model))


@pytest.mark.parametrize(
    "op, merge",
    [
        (lambda h, x: h + x, "Add"),
        (lambda h, x: h * x, "Multiply"),
        (lambda h, x: h - x, "Subtract"),
        (ops.maximum, "Maximum"),
        (ops.minimum, "Minimum"),
        (lambda h, x: ops.concatenate([h, x], axis=-1), "Concatenate"),
        (lambda h, x: layers.Add()([h, x]), "Add"),
    ],
    ids=["add", "multiply", "subtract", "maximum", "minimum", "concatenate", "layer"],
)
def test_ops_between_tensors_become_two_input_merges(op, merge):
    x = keras.Input((4,), name="x")
    h = layers.Dense(4, name="h")(x)
    project = import_keras_config(config_of(keras.Model(x, op(h, x))))
    (node,) = [n for n in project.nodes if n.type == merge]
    assert sorted((e.src, e.port) for e in project.edges if e.dst == node.id) == [
        ("h", 0),
        ("x", 1),
    ]
    assert analyze(project).ok


@pytest.mark.parametrize(
    "op, scale, offset",
    [
        (lambda h: h + 3.0, 1.0, 3.0),
        (lambda h: 3.0 + h, 1.0, 3.0),
        (lambda h: h - 0.5, 1.0, -0.5),
        (lambda h: 1.0 - h, -1.0, 1.0),
        (lambda h: h * (1.0 / 6.0), 1.0 / 6.0, 0.0),
        (lambda h: 2 * h, 2.0, 0.0),
        (lambda h: h / 4.0, 0.25, 0.0),
    ],
    ids=["add", "radd", "subtract", "rsubtract", "multiply", "rmultiply", "divide"],
)
def test_an_op_between_a_tensor_and_a_number_becomes_a_rescaling(op, scale, offset):
    """MobileNetV3's hard sigmoid writes ``(x + 3.0) * (1.0 / 6.0)`` between layers."""
    x = keras.Input((4,), name="x")
    h = layers.Dense(4, name="h")(x)
    model = keras.Model(x, op(h))
    project = import_keras_config(config_of(model))
    (node,) = [n for n in project.nodes if n.type == "Rescaling"]
    assert node.params.get("scale", 1.0) == pytest.approx(scale)
    assert node.params.get("offset", 0.0) == pytest.approx(offset)
    assert [(e.src, e.port) for e in project.edges if e.dst == node.id] == [("h", 0)]
    weights = {f"h/{w.name}": keras.ops.convert_to_numpy(w) for w in model.layers[1].weights}
    net = build_model(project)
    net.set_weights({**net.get_weights(), **weights})
    data = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    (ours,) = net.predict({"x": data}).values()
    np.testing.assert_allclose(ours, model.predict(data, verbose=0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "op, what",
    [
        (lambda h, x: h / x, "true_divide"),
        (lambda h, x: 1.0 / h, "true_divide"),
        (lambda h, x: ops.maximum(h, 0.5), "constant"),
        (lambda h, x: ops.dot(h, ops.transpose(x)), "dot"),
    ],
    ids=["divide", "reciprocal", "constant", "numpy_dot"],
)
def test_ops_nodenet_cannot_represent_are_refused(op, what, tmp_path, capsys):
    x = keras.Input((4,), name="x")
    h = layers.Dense(4, name="h")(x)
    source = tmp_path / "model.json"
    source.write_text(json.dumps(config_of(keras.Model(x, op(h, x)))))
    assert main(["import-keras", str(source), "-o", str(tmp_path / "out.json")]) == 1
    assert what in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_an_op_nodenet_merges_cannot_compute_is_refused(tmp_path, capsys):
    x = keras.Input((4, 3), name="x")
    h = layers.Dense(4, name="h")(x)
    source = tmp_path / "model.json"
    config = config_of(keras.Model(x, ops.concatenate([h, x], axis=-1)))
    config["config"]["layers"][-1]["config"]["axis"] = 1  # (4, 4) and (4, 3) cannot join on 1
    source.write_text(json.dumps(config))
    assert main(["import-keras", str(source), "-o", str(tmp_path / "out.json")]) == 1
    assert "ops.concatenate" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_tensorflow_ops_of_keras_2_are_refused_by_function():
    layer = {
        "class_name": "TFOpLambda",
        "name": "tf.__operators__.add",
        "config": {"name": "tf.__operators__.add", "function": "__operators__.add"},
        "inbound_nodes": [[["h", 0, 0, {"y": ["x", 0, 0], "name": None}]]],
    }
    x = keras.Input((4,), name="x")
    config = config_of(keras.Model(x, layers.Dense(4, name="h")(x)))
    config["config"]["layers"].append(layer)
    config["config"]["output_layers"] = [["tf.__operators__.add", 0, 0]]
    with pytest.raises(NodenetError, match=r"tf\.__operators__\.add"):
        import_keras_config(config)


def test_a_keyword_input_keeps_its_edge():
    x = keras.Input((4,), name="x")
    h = layers.Dense(4, name="h")(x)
    project = import_keras_config(config_of(keras.Model(x, layers.Dense(3, name="d")(inputs=h))))
    assert ("h", "d", 0) in [(e.src, e.dst, e.port) for e in project.edges]
    assert analyze(project).ok


def test_metrics_given_as_keras_classes_come_in():
    """``AUC`` (snake_cased ``a_u_c``) and the accuracy classes were dropped silently."""
    x = keras.Input((4,), name="x")
    model = keras.Model(x, layers.Dense(1, activation="sigmoid", name="p")(x))
    model.compile(
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(), keras.metrics.BinaryAccuracy(), "mae"],
    )
    assert heads(import_keras_config(config_of(model)))["p"]["metrics"] == [
        "auc",
        "accuracy",
        "mae",
    ]


def test_a_frozen_layer_imports_frozen():
    """Bug 3: a frozen Embedding (transfer learning's frozen word vectors) came in trainable."""
    x = keras.Input((7,), dtype="int32", name="tokens")
    vectors = layers.Embedding(1000, 16, name="vectors", trainable=False)(x)
    pooled = layers.GlobalAveragePooling1D(name="pool")(vectors)
    model = keras.Model(x, layers.Dense(2, activation="softmax", name="head")(pooled))
    project = import_keras_config(config_of(model))
    trainable = {n.id: n.trainable for n in project.nodes if n.type in ("Embedding", "Dense")}
    assert trainable == {"vectors": False, "head": True}
    assert '"trainable": false' in project.to_json()


def test_a_refusal_is_short_and_grouped_by_class(tmp_path, capsys):
    x = keras.Input((4,), name="x")
    h = x
    for i in range(300):
        h = layers.GaussianNoise(0.1, name=f"noise_{i}")(h)
        h = layers.Dense(4, kernel_constraint=keras.constraints.NonNeg(), name=f"d_{i}")(h)
    h = layers.Dense(4, name="last")(h)
    config = json.loads(keras.Model(x, h).to_json())
    for layer in config["config"]["layers"]:  # classes nodenet will never have
        if layer["class_name"] == "GaussianNoise":
            layer["class_name"] = "CustomNoise"
        elif layer["name"] == "last":
            layer["class_name"], layer["config"] = "Lambda", {"name": "last"}
    source = tmp_path / "model.json"
    source.write_text(json.dumps(config))
    assert main(["import-keras", str(source), "-o", str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") <= 10 and len(err) < 1200, err
    assert "CustomNoise x300 (noise_0" in err and "Lambda (last)" in err
    assert err.count("noise_") <= 5 and err.count("kernel_constraint") == 1
    assert "can" in err.splitlines()[-1]  # names what the user can do


def test_a_users_own_class_named_like_a_keras_layer_is_refused_not_read_as_keras():
    """``mine>Dense`` runs its own code; reading it as Keras's Dense would import a
    different model without a word."""

    @keras.saving.register_keras_serializable(package="mine")
    class Dense(layers.Layer):
        def __init__(self, units: int = 2, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def call(self, x):
            return x * 2.0

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    x = keras.Input((3,), name="x")
    model = keras.Model(x, layers.Dense(2, name="head")(Dense(3, name="own")(x)))
    with pytest.raises(NodenetError, match="mine>Dense"):
        import_keras_config(config_of(model))

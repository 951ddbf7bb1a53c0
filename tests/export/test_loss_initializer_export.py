"""Initializers with arguments and the Output's loss options through both exporters and
the Keras importer: Keras code writes ``keras.initializers.VarianceScaling(...)`` and
``keras.losses.CategoricalCrossentropy(from_logits=True)``; PyTorch code draws each
weight as the initializer does and trains with the logits loss; a Keras model using
VarianceScaling and Constant (as EfficientNet does) imports and exports back equal."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from nodenet.export import export_keras, export_pytorch, import_keras_config
from nodenet.graph.project import Edge, Node, Project, analyze
from tests.support.generated import Case, check_keras, check_torch, import_source

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) runs the exports")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.ref

VS = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out"},  # distribution: Keras's default
}
CONSTANT = {"class_name": "Constant", "config": {"value": 0.1}}


def chain(*blocks, input_shape=(6,), output=None) -> Project:
    """Input -> blocks -> Output, blocks given as (type, params)."""
    nodes = [Node("x", "Input", {"shape": list(input_shape)})]
    for i, (kind, params) in enumerate(blocks):
        nodes.append(Node(f"b{i}", kind, params))
    nodes.append(Node("y", "Output", output or {"loss": "mean_squared_error", "metrics": []}))
    edges = [Edge(a.id, b.id) for a, b in itertools.pairwise(nodes)]
    return Project(name="options", nodes=nodes, edges=edges)


@pytest.mark.parametrize(
    "loss, from_logits, smoothing, units",
    [
        ("categorical_crossentropy", True, 0.0, 4),
        ("sparse_categorical_crossentropy", True, 0.0, 4),
        ("binary_crossentropy", True, 0.0, 3),
        ("categorical_crossentropy", True, 0.2, 4),
        ("categorical_crossentropy", False, 0.1, 4),
        ("binary_crossentropy", True, 0.3, 1),
    ],
)
def test_a_logits_or_smoothed_head_trains_the_same_in_both_exports(
    tmp_path, loss, from_logits, smoothing, units
):
    activation = "linear" if from_logits else ("sigmoid" if "binary" in loss else "softmax")
    output = {"loss": loss, "metrics": ["accuracy"], "from_logits": from_logits}
    if smoothing:
        output["label_smoothing"] = smoothing
    project = chain(("Dense", {"units": units, "activation": activation}), output=output)
    source = export_keras(project).source
    name = {"categorical_crossentropy": "Categorical", "binary_crossentropy": "Binary"}
    if smoothing and from_logits:
        expected = f"{name[loss]}Crossentropy(from_logits=True, label_smoothing={smoothing})"
        assert f"keras.losses.{expected}" in source
    case = Case(project, seed=4)
    check_keras(case, tmp_path)
    check_torch(case, tmp_path)


def test_initializers_with_arguments_are_written_as_keras_objects(tmp_path):
    orthogonal = {"class_name": "Orthogonal", "config": {"gain": 2.0}}
    identity = {"class_name": "Identity", "config": {"gain": 0.5}}
    truncated = {"class_name": "TruncatedNormal", "config": {"stddev": 0.2}}
    uniform = {"class_name": "RandomUniform", "config": {"minval": 0.0, "maxval": 1.0}}
    project = chain(
        ("Dense", {"units": 30, "kernel_initializer": VS, "bias_initializer": CONSTANT}),
        ("Reshape", {"target_shape": [5, 6]}),
        ("LSTM", {"units": 4, "recurrent_initializer": orthogonal}),
        ("Dense", {"units": 4, "kernel_initializer": identity}),
        ("Dense", {"units": 3, "kernel_initializer": truncated, "bias_initializer": uniform}),
    )
    assert analyze(project).ok
    source = export_keras(project).source
    assert 'keras.initializers.VarianceScaling(scale=2.0, mode="fan_out")' in source
    assert "keras.initializers.Constant(value=0.1)" in source
    model = import_source(source, tmp_path, "inits").build_model()
    layer = model.get_layer("b0")
    config = layer.get_config()
    assert config["kernel_initializer"]["config"]["scale"] == 2.0
    assert config["kernel_initializer"]["config"]["mode"] == "fan_out"
    assert np.allclose(keras.ops.convert_to_numpy(layer.bias), 0.1)
    identity = keras.ops.convert_to_numpy(model.get_layer("b3").kernel)
    np.testing.assert_array_equal(identity, 0.5 * np.eye(4))

    net = import_source(export_pytorch(project).source, tmp_path, "torch_inits").build_model()
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    bias = next(v for k, v in state.items() if k.startswith("b0") and k.endswith("bias"))
    np.testing.assert_allclose(bias, 0.1, rtol=1e-6)
    identity = next(v for k, v in state.items() if k.startswith("b3") and k.endswith("weight"))
    np.testing.assert_array_equal(identity, 0.5 * np.eye(4))
    case = Case(project, seed=1)
    check_keras(case, tmp_path)
    check_torch(case, tmp_path)


def test_a_constant_initializer_at_its_default_builds_in_keras(tmp_path):
    """EfficientNetV2's heads write ``Constant(0.0)``, which comes in as the name
    "constant"; Keras 3.15 cannot build that name alone (its config lacks ``value``)."""
    project = chain(("Dense", {"units": 3, "bias_initializer": "constant"}))
    source = export_keras(project).source
    model = import_source(source, tmp_path, "constant").build_model()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.get_layer("b0").bias), 0.0)


def test_pytorch_draws_variance_scaling_as_keras_does(tmp_path):
    for distribution in ("truncated_normal", "untruncated_normal", "uniform"):
        value = {"class_name": "VarianceScaling", "config": {**VS["config"], "scale": 3.0}}
        value["config"]["distribution"] = distribution
        project = chain(("Dense", {"units": 300, "kernel_initializer": value}), input_shape=(400,))
        source = export_pytorch(project).source
        net = import_source(source, tmp_path, "torch_vs").build_model()
        kernel = next(v for k, v in net.state_dict().items() if k.endswith("weight")).numpy()
        std = np.sqrt(3.0 / 300)  # fan_out
        assert kernel.std() == pytest.approx(std, rel=0.02), distribution
        bound = {"uniform": np.sqrt(3), "truncated_normal": 2 / 0.87962566103423978}
        if distribution in bound:
            assert np.abs(kernel).max() <= bound[distribution] * std * (1 + 1e-6)


def efficientnet_like():
    """A stem and a head as keras.applications.EfficientNet initializes them."""
    conv_init = keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")
    dense_init = keras.initializers.VarianceScaling(1.0 / 3.0, "fan_out", "uniform")
    inputs = keras.Input((8, 8, 3), name="image")
    h = keras.layers.Conv2D(4, 3, use_bias=False, kernel_initializer=conv_init, name="stem_conv")(
        inputs
    )
    h = keras.layers.GlobalAveragePooling2D(name="avg_pool")(h)
    outputs = keras.layers.Dense(
        5,
        activation="softmax",
        kernel_initializer=dense_init,
        bias_initializer=keras.initializers.Constant(0.1),
        name="predictions",
    )(h)
    model = keras.Model(inputs, outputs)
    model.compile(loss="categorical_crossentropy")
    return model


def initializers_of(model) -> dict:
    out = {}
    for layer in model.layers:
        for key, value in layer.get_config().items():
            if key.endswith("_initializer") and isinstance(value, dict):
                out[f"{layer.name}.{key}"] = (value["class_name"], value["config"])
    return out


def test_efficientnets_initializers_import_and_export_back_equal(tmp_path):
    original = efficientnet_like()
    config = json.loads(original.to_json())
    config["compile_config"] = original.get_compile_config()
    project = import_keras_config(config)
    params = {n.id: n.params for n in project.nodes}
    assert params["stem_conv"]["kernel_initializer"] == {
        "class_name": "VarianceScaling",
        "config": {"scale": 2.0, "mode": "fan_out"},
    }
    assert params["predictions"]["bias_initializer"] == CONSTANT
    module = import_source(export_keras(project).source, tmp_path, "effnet")
    exported = module.build_model()
    assert initializers_of(exported) == initializers_of(original)


def test_an_initializer_nodenet_cannot_keep_is_refused_by_name():
    inputs = keras.Input((3,), name="x")
    dense = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant([1.0, 2.0]))
    model = keras.Model(inputs, dense(inputs))
    with pytest.raises(Exception, match=r"kernel_initializer Constant value must be a finite"):
        import_keras_config(json.loads(model.to_json()))


def test_the_guides_mnist_mlp_with_logits_imports_and_evaluates_as_keras():
    """Bug 1 of issue 15: from_logits=True was dropped, so a linear head kept a
    probability loss (6.75 where Keras gives 2.54)."""
    from nodenet.engine.training import evaluate
    from nodenet.runner import build_model

    inputs = keras.Input((784,), name="digits")
    h = keras.layers.Dense(64, activation="relu", name="dense_1")(inputs)
    h = keras.layers.Dense(64, activation="relu", name="dense_2")(h)
    model = keras.Model(inputs, keras.layers.Dense(10, name="predictions")(h))
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],
    )
    config = json.loads(model.to_json())
    config["compile_config"] = model.get_compile_config()
    project = import_keras_config(config)
    nodenet_model = build_model(project)
    nodenet_model.set_weights(
        {
            f"{layer.name}/{name}": value
            for layer in model.layers[1:]
            for name, value in zip(("kernel", "bias"), layer.get_weights(), strict=True)
        }
    )
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, size=(200, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=200)
    (output,) = nodenet_model.heads
    ours = evaluate(nodenet_model, {"digits": x}, {output.id: y}, batch_size=50)
    theirs = model.evaluate(x, y, batch_size=50, verbose=0, return_dict=True)
    assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-5)
    assert ours["accuracy"] == pytest.approx(theirs["sparse_categorical_accuracy"], abs=1e-6)

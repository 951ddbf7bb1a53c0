"""import-keras of Keras's activation names and activation layers (issue 15).

A Keras model with ``ReLU(max_value=6.0)`` (MobileNet's ReLU6), ``PReLU``,
``LeakyReLU``, ``ELU``, ``Softmax``, ``Identity`` and the activations Keras 3 writes
(``silu``, ``hard_silu``) imports with every setting and Keras's parameter counts; and
nodenet's own Keras export of ``swish`` imports back (Keras writes it as ``silu``:
bug 7).
"""

from __future__ import annotations

import json

import pytest

from nodenet.export import export_keras, import_keras_config
from nodenet.graph.project import analyze
from tests.support.generated import import_source

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) writes the configs")
layers = keras.layers

pytestmark = pytest.mark.ref


def _model():
    inputs = keras.Input((6, 6, 3))
    h = layers.Conv2D(4, 3, activation="hard_swish", name="conv")(inputs)
    h = layers.ReLU(max_value=6.0, name="relu6")(h)
    h = layers.PReLU(shared_axes=[1, 2], name="prelu")(h)
    h = layers.Flatten(name="flat")(h)
    h = layers.Dense(8, activation="silu", name="dense")(h)
    h = layers.LeakyReLU(name="leaky")(h)
    h = layers.ReLU(negative_slope=0.1, threshold=0.2, name="relu_t")(h)
    h = layers.ELU(alpha=0.5, name="elu")(h)
    h = layers.Identity(name="same")(h)
    h = layers.Dense(3, name="logits")(h)
    return keras.Model(inputs, layers.Softmax(axis=-1, name="probs")(h))


def test_activation_layers_and_keras_3_names_import():
    model = _model()
    project = import_keras_config(json.loads(model.to_json()))
    analysis = analyze(project)
    assert analysis.ok, analysis.problems
    params = {n.id: (n.type, n.params) for n in project.nodes}
    assert params["conv"][1]["activation"] == "hard_silu"  # Keras writes the alias's name
    assert params["dense"][1]["activation"] == "silu"
    assert params["relu6"] == ("ReLU", {"max_value": 6.0})
    assert params["prelu"] == ("PReLU", {"shared_axes": [1, 2]})
    assert params["leaky"] == ("LeakyReLU", {})
    assert params["relu_t"] == ("ReLU", {"negative_slope": 0.1, "threshold": 0.2})
    assert params["elu"] == ("ELU", {"alpha": 0.5})
    assert params["same"] == ("Identity", {})
    assert params["probs"] == ("Softmax", {})
    for layer in model.layers[1:]:
        assert sum(analysis.params[layer.name]) == layer.count_params(), layer.name
        assert analysis.shapes[layer.name] == tuple(layer.output.shape[1:]), layer.name


def test_nodenets_swish_export_imports_back(tmp_path):
    """Bug 7: Keras serializes ``activation="swish"`` as ``"silu"``; both are nodenet's."""
    model = keras.Sequential(
        [keras.Input((4,)), layers.Dense(3, activation="swish", name="d")], name="m"
    )
    project = import_keras_config(json.loads(model.to_json()))
    project.nodes[[n.id for n in project.nodes].index("d")].params["activation"] = "swish"
    assert analyze(project).ok
    module = import_source(export_keras(project).source, tmp_path, "swish_roundtrip")
    exported = module.build_model()
    config = json.loads(exported.to_json())
    back = import_keras_config(config)
    assert analyze(back).ok
    (dense,) = [n for n in back.nodes if n.type == "Dense"]
    assert dense.params["activation"] == "silu"

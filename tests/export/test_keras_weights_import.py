"""import-keras brings a .keras archive's trained weights: ``nodenet predict`` equals Keras.

Each model is built by Keras with every weight set at random (moving statistics too),
saved as a ``.keras`` archive, imported by the CLI (``P.json`` and ``P.weights.npz``), and
``nodenet predict`` on the imported project is compared with ``model.predict``. A weight
that does not fit its block is refused naming the layer; ``--no-weights`` writes none;
without h5py the config still comes in with ``--no-weights``.
"""

from __future__ import annotations

import io
import sys
import zipfile

import numpy as np
import pytest

from nodenet.cli import main
from nodenet.errors import NodenetError, WeightsError
from nodenet.export import import_keras_archive
from nodenet.graph.project import load

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) writes the archives")
h5py = pytest.importorskip("h5py", reason="the `keras` extra (h5py) reads their weights")
layers = keras.layers

pytestmark = pytest.mark.ref

TOLERANCE = 1e-5


def randomized(model, seed: int = 0):
    """``model`` with every weight drawn at random (variances positive)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        arrays = []
        for weight in layer.weights:
            value = rng.normal(0.0, 0.5, size=tuple(weight.shape))
            if "variance" in weight.path:
                value = rng.uniform(0.5, 2.0, size=tuple(weight.shape))
            arrays.append(value.astype("float32"))
        layer.set_weights(arrays)
    return model


def mlp():
    return keras.Sequential(
        [
            keras.Input((6,)),
            layers.Dense(8, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(3, activation="softmax"),
        ]
    )


def cnn():
    x = keras.Input((8, 8, 3))
    h = layers.Conv2D(4, 3, padding="same")(x)
    h = layers.BatchNormalization()(h)
    h = layers.Activation("relu")(h)
    h = layers.MaxPooling2D()(h)
    h = layers.Flatten()(h)
    return keras.Model(x, layers.Dense(2)(h))


def lstm():
    x = keras.Input((5, 3))
    h = layers.LSTM(4, return_sequences=True)(x)
    h = layers.LSTM(3)(h)
    return keras.Model(x, layers.Dense(2)(h))


def bidirectional_gru():
    x = keras.Input((6, 3))
    h = layers.Bidirectional(layers.GRU(4))(x)
    return keras.Model(x, layers.Dense(2, activation="sigmoid")(h))


def depthwise_separable():
    x = keras.Input((9, 9, 3))
    h = layers.DepthwiseConv2D(3, depth_multiplier=2)(x)
    h = layers.SeparableConv2D(4, 3, padding="same")(h)
    h = layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, layers.Dense(2)(h))


MODELS = [mlp, cnn, lstm, bidirectional_gru, depthwise_separable]


def save(model, tmp_path, name: str = "model"):
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return path


def predict(project_path, inputs: np.ndarray, tmp_path) -> np.ndarray:
    project = load(project_path)
    (input_id,) = [n.id for n in project.nodes if n.type == "Input"]
    np.savez(tmp_path / "x.npz", **{input_id: inputs})
    weights = project_path.with_name(project_path.stem + ".weights.npz")
    files = ["--input", str(tmp_path / "x.npz"), "--output", str(tmp_path / "y.npz")]
    assert main(["predict", str(project_path), "--weights", str(weights), *files]) == 0
    with np.load(tmp_path / "y.npz") as out:
        return out[out.files[0]]


def assert_predicts_as_keras(model, tmp_path, seed: int = 1) -> None:
    archive = save(randomized(model), tmp_path)
    project_path = tmp_path / "imported.json"
    assert main(["import-keras", str(archive), "-o", str(project_path)]) == 0
    assert project_path.with_name("imported.weights.npz").exists()
    shape = (4, *model.inputs[0].shape[1:])
    inputs = np.random.default_rng(seed).normal(size=shape).astype("float32")
    expected = np.asarray(model.predict(inputs, verbose=0))
    np.testing.assert_allclose(predict(project_path, inputs, tmp_path), expected, atol=TOLERANCE)


@pytest.mark.parametrize("build", MODELS, ids=lambda f: f.__name__)
def test_predict_on_the_imported_project_equals_keras(build, tmp_path):
    assert_predicts_as_keras(build(), tmp_path)


def test_the_weights_are_keyed_by_node_in_weight_spec_order(tmp_path):
    model = randomized(cnn())
    project, weights = import_keras_archive(save(model, tmp_path))
    norm = next(n.id for n in project.nodes if n.type == "BatchNormalization")
    layer = next(la for la in model.layers if la.name == norm)
    for name, expected in zip(
        ("gamma", "beta", "moving_mean", "moving_variance"), layer.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(weights[f"{norm}/{name}"], expected)


def test_no_weights_writes_the_project_only(tmp_path):
    archive = save(mlp(), tmp_path)
    out = tmp_path / "p.json"
    assert main(["import-keras", str(archive), "-o", str(out), "--no-weights"]) == 0
    assert out.exists() and not (tmp_path / "p.weights.npz").exists()


def test_a_config_file_has_no_weights(tmp_path):
    config = tmp_path / "model.json"
    config.write_text(mlp().to_json())
    assert import_keras_archive(config)[1] is None
    assert main(["import-keras", str(config), "-o", str(tmp_path / "p.json")]) == 0
    assert not (tmp_path / "p.weights.npz").exists()


def rewritten(archive, tmp_path, change) -> object:
    """A copy of ``archive`` whose model.weights.h5 ``change(h5 file)`` has edited."""
    with zipfile.ZipFile(archive) as source:
        members = {name: source.read(name) for name in source.namelist()}
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "r+") as h5:
        change(h5)
    members["model.weights.h5"] = buffer.getvalue()
    target = tmp_path / "edited.keras"
    with zipfile.ZipFile(target, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    return target


def test_a_weight_of_the_wrong_shape_is_refused_naming_the_layer(tmp_path):
    model = keras.Sequential([keras.Input((6,)), layers.Dense(3, name="head")])
    archive = save(model, tmp_path)

    def change(h5):
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars/0"] = np.zeros((6, 4), "float32")

    with pytest.raises(WeightsError, match=r"Dense 'head'.*kernel.*\(6, 4\).*\(6, 3\)"):
        import_keras_archive(rewritten(archive, tmp_path, change))


def test_a_missing_weight_is_refused_naming_the_layer(tmp_path):
    model = keras.Sequential([keras.Input((6,)), layers.Dense(3, name="head")])
    archive = save(model, tmp_path)
    edited = rewritten(archive, tmp_path, lambda h5: h5.__delitem__("layers/dense/vars/1"))
    with pytest.raises(WeightsError, match=r"Dense 'head'.*holds 1 weights.*has 2"):
        import_keras_archive(edited)


def test_a_link_to_another_file_is_not_followed(tmp_path):
    model = keras.Sequential([keras.Input((6,)), layers.Dense(3, name="head")])
    archive = save(model, tmp_path)

    def change(h5):
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars/0"] = h5py.ExternalLink("/etc/passwd", "/x")

    with pytest.raises(WeightsError, match="link"):
        import_keras_archive(rewritten(archive, tmp_path, change))


def test_without_h5py_the_weights_ask_for_it_and_the_config_still_comes_in(
    tmp_path, monkeypatch, capsys
):
    archive = save(mlp(), tmp_path)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(NodenetError, match="pip install h5py"):
        import_keras_archive(archive)
    out = tmp_path / "p.json"
    assert main(["import-keras", str(archive), "-o", str(out)]) != 0
    assert "pip install h5py" in capsys.readouterr().err
    assert main(["import-keras", str(archive), "-o", str(out), "--no-weights"]) == 0
    assert out.exists()


def test_weights_of_a_graph_with_problems_are_refused_with_advice(tmp_path):
    model = keras.Sequential(
        [keras.Input((6,)), layers.Reshape((2, 3), name="fold"), layers.Dense(2, name="head")]
    )
    archive = save(model, tmp_path)
    with zipfile.ZipFile(archive) as source:
        members = {name: source.read(name) for name in source.namelist()}
    members["config.json"] = members["config.json"].replace(b"[2, 3]", b"[4, 3]")
    edited = tmp_path / "edited.keras"
    with zipfile.ZipFile(edited, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    with pytest.raises(WeightsError, match=r"problem.*without weights"):
        import_keras_archive(edited)
    assert import_keras_archive(edited, weights=False)[1] is None

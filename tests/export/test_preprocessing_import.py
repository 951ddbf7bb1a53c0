"""A Keras model with its preprocessing inside (Rescaling, an adapted Normalization,
Resizing, CenterCrop) imports whole: same shapes and counts, the adapted statistics come
in as weights, and ``predict`` equals Keras's. The exported Keras script adapts an
unadapted Normalization before ``fit`` as nodenet does."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported anywhere

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from nodenet.cli import main  # noqa: E402
from nodenet.graph.project import load  # noqa: E402
from nodenet.runner import build_model  # noqa: E402

SAMPLES = Path(__file__).parent.parent.parent / "sample_projects"


def keras_model(x: np.ndarray):
    inp = keras.Input(x.shape[1:])
    h = keras.layers.Rescaling(1 / 255.0)(inp)
    norm = keras.layers.Normalization(name="norm")
    h = norm(h)
    h = keras.layers.Resizing(8, 8, crop_to_aspect_ratio=True)(h)
    h = keras.layers.CenterCrop(6, 6)(h)
    h = keras.layers.Normalization(axis=None, mean=0.5, variance=2.0, invert=True)(h)
    h = keras.layers.Resizing(9, 7, interpolation="nearest")(h)
    h = keras.layers.CenterCrop(10, 5)(h)  # taller than its input: cropped and resized
    h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(3, activation="softmax")(h)
    model = keras.Model(inp, out)
    norm.adapt(x / 255.0)
    model.compile("adam", "categorical_crossentropy")
    return model


def test_a_model_with_its_preprocessing_imports_and_predicts_as_keras(tmp_path, capsys):
    x = np.random.default_rng(0).uniform(0, 255, size=(32, 12, 10, 3)).astype("f")
    model = keras_model(x)
    model.save(tmp_path / "pre.keras")
    assert (
        main(["import-keras", str(tmp_path / "pre.keras"), "-o", str(tmp_path / "pre.json")]) == 0
    )
    project = load(tmp_path / "pre.json")
    ours = build_model(project)
    ours.load_weights(tmp_path / "pre.weights.npz")
    assert not ours.to_adapt, "imported statistics are not adapted again"
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert ours.count_params() == (trainable, 7)  # mean and variance (3 each), count: 7
    adapted = model.get_layer("norm").get_weights()[0]
    np.testing.assert_array_equal(ours.weights["norm"]["mean"], adapted)
    for layer in model.layers[1:]:
        assert ours.shapes[layer.name] == tuple(layer.output.shape[1:]), layer.name
    got = ours.predict({ours.input_ids[0]: x})
    (head,) = got
    np.testing.assert_allclose(got[head], model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_the_keras_script_adapts_normalization_as_nodenet_does(tmp_path):
    from nodenet.engine.training import split_validation
    from nodenet.export.keras import export_keras
    from nodenet.graph.project import Project
    from nodenet.runner import build_run
    from tests.support.generated import import_source

    doc = json.loads((SAMPLES / "diabetes_regression.json").read_text())
    doc["nodes"].insert(1, {"id": "norm", "type": "Normalization", "params": {}, "pos": [0, 0]})
    doc["edges"][0] = {"from": "features", "to": "norm", "port": 0}
    doc["edges"].insert(1, {"from": "norm", "to": "hidden_1", "port": 0})
    doc["data"]["preprocess"]["normalize"] = "none"
    project = Project.from_dict(doc)
    module = import_source(export_keras(project).source, tmp_path, "keras_adapt")
    data = module.load_data()
    model = module.build_model()
    x, _ = data["train"]
    module.adapt_normalization(model, x, module.VALIDATION_SPLIT)
    assert "adapt_normalization(model, x, VALIDATION_SPLIT)" in export_keras(project).source

    run = build_run(project)
    train = run.data.train
    (ours, _), _ = split_validation(train["inputs"], train["targets"], 0.15)
    features = ours["features"]
    mean, variance, _ = model.get_layer("norm").get_weights()
    np.testing.assert_allclose(mean, features.mean(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(variance, features.var(axis=0), rtol=1e-5)
    # with trained weights exported, they carry the statistics: no adapt step
    weights = run.model.get_weights()
    assert "adapt_normalization" not in export_keras(project, weights).source


def test_the_pytorch_script_adapts_normalization_as_nodenet_does(tmp_path):
    import torch

    from nodenet.engine.training import split_validation
    from nodenet.export.pytorch import export_pytorch
    from nodenet.graph.project import Project
    from nodenet.runner import build_run
    from tests.support.generated import import_source

    doc = json.loads((SAMPLES / "diabetes_regression.json").read_text())
    doc["nodes"].insert(1, {"id": "norm", "type": "Normalization", "params": {}, "pos": [0, 0]})
    doc["edges"][0] = {"from": "features", "to": "norm", "port": 0}
    doc["edges"].insert(1, {"from": "norm", "to": "hidden_1", "port": 0})
    doc["data"]["preprocess"]["normalize"] = "none"
    project = Project.from_dict(doc)
    source = export_pytorch(project).source
    assert "adapt_normalization(model, data, device)" in source
    module = import_source(source, tmp_path, "torch_adapt")
    model = module.build_model()
    module.adapt_normalization(model, module.load_data(), torch.device("cpu"))

    train = build_run(project).data.train
    (ours, _), _ = split_validation(train["inputs"], train["targets"], 0.15)
    features = ours["features"]
    np.testing.assert_allclose(model.norm.mean.numpy(), features.mean(axis=0), atol=1e-7)
    np.testing.assert_allclose(model.norm.variance.numpy(), features.var(axis=0), rtol=1e-5)

"""Normalization's mean and variance are set by adapting to the training split before fit,
as ``layer.adapt(x_train)`` sets them in Keras (nodenet/engine/adapt.py)."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from nodenet.engine.adapt import Moments, adapt, inputs_of
from nodenet.engine.training import fit
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model

SAMPLES = Path(__file__).parent.parent.parent / "sample_projects"


def chain(*blocks: tuple[str, str, dict], shape=(3, 4)) -> Project:
    """Input -> blocks... -> Output (mean squared error), wired in order."""
    nodes = [Node("x", "Input", {"shape": list(shape)})]
    nodes += [Node(node_id, kind, params) for node_id, kind, params in blocks]
    nodes.append(Node("y", "Output", {"loss": "mean_squared_error", "metrics": []}))
    edges = [Edge(a.id, b.id) for a, b in itertools.pairwise(nodes)]
    return Project("adapt", nodes, edges)


def data(n=300, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, *shape)) * rng.uniform(0.5, 4, size=shape[-1]) + 7).astype("f")
    return x


@pytest.mark.parametrize("keep", [(), (2,), (1, 2), (1,)])
def test_streamed_moments_equal_numpy_over_the_whole_array(keep):
    x = data(257).astype(np.float64)
    moments = Moments(keep)
    for start in range(0, len(x), 50):
        moments.add(x[start : start + 50])
    reduce = tuple(a for a in range(x.ndim) if a not in keep)
    mean, var = moments.result(np.float64)
    np.testing.assert_allclose(mean, x.mean(axis=reduce), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=reduce), rtol=1e-10)


@pytest.mark.parametrize("axis", [-1, None, [1, 2], 1])
def test_fit_adapts_normalization_to_the_training_samples(axis):
    project = chain(
        ("norm", "Normalization", {"axis": axis}),
        ("flat", "Flatten", {}),
        ("out", "Dense", {"units": 1}),
    )
    model = build_model(project, seed=0)
    assert model.to_adapt == {"norm"}
    x = data()
    y = {"y": np.zeros((len(x), 1), "f")}
    fit(model, {"x": x}, y, epochs=1, batch_size=64, validation_split=0.25)
    train = x[: len(x) - 75]  # the validation tail is not looked at
    keep = model.layers["norm"].keep_axes(3)
    reduce = tuple(a for a in range(3) if a not in keep)
    weights = model.weights["norm"]
    np.testing.assert_allclose(weights["mean"], train.mean(axis=reduce), rtol=1e-6)
    np.testing.assert_allclose(weights["variance"], train.var(axis=reduce), rtol=1e-5)
    assert weights["count"] == 0 and not model.to_adapt
    out = model.predict({"x": train})  # normalized features feed the Dense
    assert np.isfinite(out["y"]).all()


def test_adapt_sees_its_input_through_the_blocks_before_it_in_inference_mode():
    project = chain(
        ("dense", "Dense", {"units": 5, "activation": "tanh"}),
        ("drop", "Dropout", {"rate": 0.5}),
        ("norm", "Normalization", {}),
        ("norm_2", "Normalization", {"axis": None}),
    )
    model = build_model(project, seed=1)
    x = data(130)
    assert adapt(model, {"x": x}, batch_size=32) == ["norm", "norm_2"]
    w = model.weights["dense"]
    h = np.tanh(x @ w["kernel"] + w["bias"])  # dropout is off: inference mode
    np.testing.assert_allclose(model.weights["norm"]["mean"], h.mean(axis=(0, 1)), atol=1e-6)
    np.testing.assert_allclose(model.weights["norm"]["variance"], h.var(axis=(0, 1)), rtol=1e-5)
    # the second one sees the first already adapted: mean 0, variance 1 per feature
    fed = inputs_of(model, "norm_2", {"x": x})[0]
    np.testing.assert_allclose(model.weights["norm_2"]["mean"], fed.mean(), atol=1e-6)
    np.testing.assert_allclose(model.weights["norm_2"]["variance"], 1.0, rtol=1e-4)


def test_given_weights_are_kept_and_given_constants_have_no_weights():
    project = chain(("norm", "Normalization", {}), ("out", "Dense", {"units": 1}))
    model = build_model(project, seed=0)
    loaded = model.get_weights()
    loaded["norm/mean"] = np.full(4, 3.0, "f")
    loaded["norm/variance"] = np.full(4, 9.0, "f")
    model.set_weights(model.get_weights())  # its own fresh statistics back: still to adapt
    assert model.to_adapt == {"norm"}
    model.set_weights(loaded)  # from a file or an import: nothing to adapt
    assert not model.to_adapt
    x = data()
    fit(model, {"x": x}, {"y": np.zeros((len(x), 3, 1), "f")}, epochs=1)
    np.testing.assert_array_equal(model.weights["norm"]["mean"], 3.0)
    np.testing.assert_array_equal(model.weights["norm"]["variance"], 9.0)

    constants = {"mean": [1.0, 2.0, 3.0, 4.0], "variance": [1.0, 4.0, 9.0, 16.0]}
    model = build_model(chain(("norm", "Normalization", constants)), seed=0)
    assert model.weights["norm"] == {} and not model.to_adapt and model.count_params() == (0, 0)
    out = model.predict({"x": np.ones((2, 3, 4), "f")})["y"]
    np.testing.assert_allclose(out[0, 0], [0.0, -0.5, -2 / 3, -0.75], rtol=1e-6)


def test_adapted_weights_equal_keras_adapt_on_the_same_array():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    x = data(500, shape=(6, 5, 3))
    for axis in (-1, None, [1, 3]):
        model = build_model(
            chain(("norm", "Normalization", {"axis": axis}), shape=(6, 5, 3)), seed=0
        )
        adapt(model, {"x": x}, batch_size=77)
        layer = keras.layers.Normalization(axis=axis)
        layer.adapt(x)
        ours = [model.weights["norm"][k] for k in ("mean", "variance", "count")]
        # Keras sums the float32 array in float32, nodenet in float64: within 1e-5
        for mine, theirs in zip(ours, layer.get_weights(), strict=True):
            assert mine.shape == theirs.shape
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_nodenet_train_adapts_normalization_on_a_bundled_sample(tmp_path):
    from nodenet.cli import main
    from nodenet.engine.training import split_validation
    from nodenet.graph.project import load
    from nodenet.runner import build_run

    doc = json.loads((SAMPLES / "diabetes_regression.json").read_text())
    doc["nodes"].insert(1, {"id": "norm", "type": "Normalization", "params": {}, "pos": [0, 0]})
    doc["edges"][0] = {"from": "features", "to": "norm", "port": 0}
    doc["edges"].insert(1, {"from": "norm", "to": "hidden_1", "port": 0})
    doc["data"]["preprocess"]["normalize"] = "none"  # the Normalization block does it
    doc["training"]["epochs"] = 3
    path = tmp_path / "diabetes_norm.json"
    path.write_text(json.dumps(doc))
    assert main(["train", str(path), "--quiet"]) == 0

    run = build_run(load(path))
    train = run.data.train
    (x, _), _ = split_validation(train["inputs"], train["targets"], 0.15)
    with np.load(tmp_path / "diabetes_norm.weights.npz") as saved:
        np.testing.assert_allclose(saved["norm/mean"], x["features"].mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(saved["norm/variance"], x["features"].var(axis=0), rtol=1e-5)
    history = json.loads((tmp_path / "diabetes_norm.history.json").read_text())
    assert history["test"]["loss"] < 30000  # it learns: the raw targets' variance is ~6,000

"""The Keras model file (``export --to keras-model``): ``keras.models.load_model`` of it
predicts what nodenet predicts (1e-5) and keeps the project's compile settings.

The reference is nodenet's own engine (itself checked against Keras layer by layer in
tests/engine); the file is read by Keras alone, in safe mode.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) writes the model file")

from nodenet.cli import main  # noqa: E402
from nodenet.errors import NodenetError  # noqa: E402
from nodenet.export.keras_model_file import save_keras_model  # noqa: E402
from nodenet.graph.project import load  # noqa: E402
from nodenet.runner import build_model  # noqa: E402
from tests.support.generated import SAMPLES, perturbed_model  # noqa: E402

TOL = {"rtol": 1e-5, "atol": 1e-5}
NEEDS_TENSORFLOW = {"TextVectorization"}  # Keras runs these layers on TensorFlow only


def _inputs(model, rng) -> dict[str, np.ndarray]:
    arrays = {}
    for node_id in model.input_ids:
        shape = tuple(5 if d is None else d for d in model.shapes[node_id])
        dtype = model.layers[node_id].config["dtype"]
        if dtype == "int32":
            arrays[node_id] = rng.integers(0, 5, size=(7, *shape)).astype(np.int32)
        else:
            arrays[node_id] = rng.normal(size=(7, *shape)).astype(np.float32)
    return arrays


def _head(got, model, head: str) -> np.ndarray:
    """Output ``head`` of ``Model.predict``: a dict by output name, or the one array."""
    return np.asarray(got[head] if isinstance(got, dict) else got)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_load_model_predicts_what_nodenet_predicts(path, tmp_path):
    project = load(path)
    needs = {n.type for n in project.nodes} & NEEDS_TENSORFLOW
    if needs and importlib.util.find_spec("tensorflow") is None:
        pytest.skip(f"Keras runs {', '.join(sorted(needs))} on TensorFlow, not installed")
    model = perturbed_model(project, seed=1)
    out = save_keras_model(project, model.get_weights(), tmp_path / "model.keras")
    loaded = keras.models.load_model(out)
    x = _inputs(model, np.random.default_rng(1))
    want = model.predict(x)
    got = loaded.predict(x, verbose=0, batch_size=7)
    for head in model.heads:
        np.testing.assert_allclose(
            _head(got, model, head.id), want[head.id], **TOL, err_msg=head.id
        )


def test_the_file_keeps_the_compile_settings(tmp_path):
    project = load(SAMPLES[0].parent / "mnist_mlp_rmsprop.json")
    out = save_keras_model(project, None, tmp_path / "m.keras")
    loaded = keras.models.load_model(out)
    optimizer = project.training["optimizer"]
    assert type(loaded.optimizer).__name__ == "RMSprop"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(optimizer["learning_rate"])
    assert loaded.loss == {"digit": "categorical_crossentropy"} or loaded.loss in (
        "categorical_crossentropy",
        ["categorical_crossentropy"],
    )


def test_without_weights_the_file_holds_the_initial_weights_predict_starts_from(tmp_path):
    project = load(SAMPLES[0].parent / "digits_mlp.json")
    out = save_keras_model(project, None, tmp_path / "m.keras")
    from nodenet.engine import settings

    model = build_model(project, seed=settings.resolved(project.training)["seed"])
    x = _inputs(model, np.random.default_rng(0))
    got = keras.models.load_model(out).predict(x, verbose=0)
    want = model.predict(x)["digit"]
    np.testing.assert_allclose(_head(got, model, "digit"), want, **TOL)


def test_export_to_keras_model_on_the_command_line(tmp_path):
    project_path = SAMPLES[0].parent / "mnist_cnn.json"
    model = perturbed_model(load(project_path), seed=4)
    weights = tmp_path / "w.npz"
    np.savez(weights, **model.get_weights())
    out = tmp_path / "cnn.keras"
    args = ["export", str(project_path), "--to", "keras-model", "--weights", str(weights)]
    code = main([*args, "-o", str(out)])
    assert code == 0
    x = _inputs(model, np.random.default_rng(2))
    got = keras.models.load_model(out).predict(x, verbose=0)
    np.testing.assert_allclose(_head(got, model, "digit"), model.predict(x)["digit"], **TOL)


def test_a_destination_not_ending_in_keras_is_refused(tmp_path):
    with pytest.raises(NodenetError, match=r"must end in \.keras"):
        save_keras_model(load(SAMPLES[0]), None, tmp_path / "model.h5")
    assert not list(tmp_path.iterdir())


def test_the_file_imports_back_with_its_weights(tmp_path):
    """nodenet -> model.keras -> ``nodenet import``: the same predictions (the archive's
    weights are read with h5py)."""
    pytest.importorskip("h5py", reason="the `keras` extra (h5py) reads a .keras archive's weights")
    project = load(SAMPLES[0].parent / "two_in_two_out.json")
    model = perturbed_model(project, seed=5)
    out = save_keras_model(project, model.get_weights(), tmp_path / "two.keras")
    assert main(["import", str(out), "-o", str(tmp_path / "back.json")]) == 0
    back = build_model(load(tmp_path / "back.json"), seed=0)
    back.load_weights(tmp_path / "back.weights.npz")
    x = _inputs(model, np.random.default_rng(3))
    want, got = model.predict(x), back.predict(x)
    for head in model.heads:
        np.testing.assert_allclose(got[head.id], want[head.id], **TOL, err_msg=head.id)


def test_import_reads_a_keras_json_config_too(tmp_path):
    """``nodenet import`` takes a ``model.to_json()`` file as ``import-keras`` does."""
    project = load(SAMPLES[0].parent / "mnist_cnn.json")
    loaded = keras.models.load_model(save_keras_model(project, None, tmp_path / "m.keras"))
    (tmp_path / "m.json").write_text(loaded.to_json())
    assert main(["import", str(tmp_path / "m.json"), "-o", str(tmp_path / "back.json")]) == 0
    back = load(tmp_path / "back.json")
    assert [(n.id, n.type) for n in back.nodes] == [(n.id, n.type) for n in project.nodes]
    assert not (tmp_path / "back.weights.npz").exists()  # a config holds no weights

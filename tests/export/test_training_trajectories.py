"""Two epochs of training from the same weights, in file order, three ways: nodenet's fit,
the exported Keras module's ``model.fit(shuffle=False)`` and the exported PyTorch module's
``run_epoch`` twice. The final weights agree to 1e-5, for SGD with momentum, Adam and
RMSprop on an MLP, a small CNN, an LSTM and a model with two inputs."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) runs the Keras export")
torch = pytest.importorskip("torch", reason="the `ref` extra (torch) runs the PyTorch export")

from nodenet.engine.training import fit  # noqa: E402
from nodenet.export import export_keras, export_pytorch  # noqa: E402
from nodenet.export._common import read_graph, split_weights  # noqa: E402
from nodenet.export.pytorch import torch_state  # noqa: E402
from nodenet.graph.project import Edge, Node, Project  # noqa: E402
from nodenet.runner import build_model  # noqa: E402
from tests.support.generated import import_source  # noqa: E402

pytestmark = pytest.mark.ref

SAMPLES, BATCH, EPOCHS, TOL = 64, 16, 2, 1e-5
OPTIMIZERS = {
    "sgd_momentum": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
    "adam": {"name": "adam", "learning_rate": 0.01},
    "rmsprop": {"name": "rmsprop", "learning_rate": 0.005},
}


def graph(name: str, spec: list[tuple]) -> Project:
    """A project from (id, type, params, sources) rows."""
    project = Project(name)
    for node_id, type_name, params, sources in spec:
        project.nodes.append(Node(node_id, type_name, params))
        project.edges += [Edge(s, node_id, port) for port, s in enumerate(sources)]
    return project


MODELS = {
    "mlp": graph(
        "mlp",
        [
            ("x", "Input", {"shape": [8]}, []),
            ("hidden", "Dense", {"units": 12, "activation": "relu"}, ["x"]),
            ("probs", "Dense", {"units": 3, "activation": "softmax"}, ["hidden"]),
            ("out", "Output", {"loss": "categorical_crossentropy"}, ["probs"]),
        ],
    ),
    "cnn": graph(
        "cnn",
        [
            ("x", "Input", {"shape": [8, 8, 1]}, []),
            ("conv", "Conv2D", {"filters": 4, "kernel_size": 3, "activation": "relu"}, ["x"]),
            ("pool", "MaxPooling2D", {"pool_size": 2}, ["conv"]),
            ("flat", "Flatten", {}, ["pool"]),
            ("probs", "Dense", {"units": 3, "activation": "softmax"}, ["flat"]),
            ("out", "Output", {"loss": "sparse_categorical_crossentropy"}, ["probs"]),
        ],
    ),
    "lstm": graph(
        "lstm",
        [
            ("x", "Input", {"shape": [6, 3]}, []),
            ("lstm", "LSTM", {"units": 5}, ["x"]),
            ("value", "Dense", {"units": 1}, ["lstm"]),
            ("out", "Output", {"loss": "mean_squared_error"}, ["value"]),
        ],
    ),
    "two_inputs": graph(
        "two_inputs",
        [
            ("a", "Input", {"shape": [5]}, []),
            ("b", "Input", {"shape": [4, 2]}, []),
            ("da", "Dense", {"units": 6, "activation": "tanh"}, ["a"]),
            ("fb", "Flatten", {}, ["b"]),
            ("joined", "Concatenate", {}, ["da", "fb"]),
            ("flags", "Dense", {"units": 2, "activation": "sigmoid"}, ["joined"]),
            ("out", "Output", {"loss": "binary_crossentropy"}, ["flags"]),
        ],
    ),
}
HEAVY = {("cnn", "sgd_momentum"), ("cnn", "adam"), ("lstm", "sgd_momentum"), ("lstm", "rmsprop")}
CASES = [
    pytest.param(m, o, marks=pytest.mark.slow) if (m, o) in HEAVY else (m, o)
    for m in MODELS
    for o in OPTIMIZERS
]


def data(model, rng) -> tuple[dict, dict]:
    """Random inputs and targets fitting each head's loss, SAMPLES of them."""
    x = {
        i: rng.normal(size=(SAMPLES, *model.shapes[i])).astype(np.float32) for i in model.input_ids
    }
    y = {}
    for head in model.heads:
        shape = model.shapes[head.id]
        if head.loss == "categorical_crossentropy":
            y[head.id] = np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], SAMPLES)]
        elif head.loss == "sparse_categorical_crossentropy":
            y[head.id] = rng.integers(0, shape[-1], SAMPLES).astype(np.int64)
        elif head.loss == "binary_crossentropy":
            y[head.id] = (rng.random((SAMPLES, *shape)) > 0.5).astype(np.float32)
        else:
            y[head.id] = rng.normal(size=(SAMPLES, *shape)).astype(np.float32)
    return x, y


def keras_after(project, weights, x, y, tmp_path) -> list:
    code = export_keras(project, weights)
    module = import_source(code.source, tmp_path, "keras_trajectory")
    model = module.build_model()
    (tmp_path / "k.npz").write_bytes(code.weights)
    module.load_weights(model, tmp_path / "k.npz")
    module.compile_model(model)
    model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, shuffle=False, verbose=0)
    return model.layers


def torch_after(project, weights, x, y, tmp_path) -> dict:
    code = export_pytorch(project, weights)
    module = import_source(code.source, tmp_path, "torch_trajectory")
    net = module.build_model()
    (tmp_path / "t.npz").write_bytes(code.weights)
    module.load_weights(net, tmp_path / "t.npz")
    loader = torch.utils.data.DataLoader(module.to_dataset(x, y), batch_size=BATCH)
    optimizer, step = module.make_optimizer(net), 0
    for _ in range(EPOCHS):
        _, step = module.run_epoch(net, loader, torch.device("cpu"), optimizer, step)
    assert step == EPOCHS * SAMPLES // BATCH
    return {k: v.detach().numpy() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("model_name,optimizer", CASES)
def test_two_epochs_end_on_the_same_weights(model_name, optimizer, tmp_path):
    project = MODELS[model_name].copy()
    project.training.update(optimizer=OPTIMIZERS[optimizer], shuffle=False)
    model = build_model(project, seed=7)
    start = model.get_weights()
    x, y = data(model, np.random.default_rng(7))
    fit(
        model,
        x,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        shuffle=False,
        optimizer=project.training["optimizer"],
    )
    after = model.get_weights()
    moved = max(float(np.abs(after[k] - start[k]).max()) for k in start)
    assert moved > 1e-3  # the training did change the weights

    for layer in keras_after(project, start, x, y, tmp_path):
        keys = [k for k in after if k.split("/", 1)[0] == layer.name]
        for key, value in zip(keys, layer.get_weights(), strict=True):
            np.testing.assert_allclose(value, after[key], rtol=0, atol=TOL, err_msg=f"keras {key}")

    state = torch_after(project, start, x, y, tmp_path)
    graph_ = read_graph(project)
    for key, expected in torch_state(graph_, split_weights(graph_, after)).items():
        np.testing.assert_allclose(state[key], expected, rtol=0, atol=TOL, err_msg=f"torch {key}")

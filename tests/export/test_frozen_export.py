"""Frozen blocks in the exports and the Keras import (bug 3 of issue 15).

The Keras export writes ``trainable=False`` on a frozen layer; the PyTorch export turns off
its parameters' gradients, leaves them out of the optimizer and keeps a frozen
BatchNormalization in eval mode while training. One training step of either export, from
the same weights, equals nodenet's and leaves the frozen weights as they were. A Keras
layer with ``"trainable": false`` imports as a frozen block.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) runs the Keras export")
torch = pytest.importorskip("torch", reason="the `ref` extra (torch) runs the PyTorch export")

from nodenet.engine.training import fit  # noqa: E402
from nodenet.export import export_keras, export_pytorch  # noqa: E402
from nodenet.export._common import read_graph, split_weights  # noqa: E402
from nodenet.export.keras_import import import_keras_config  # noqa: E402
from nodenet.export.pytorch import torch_state  # noqa: E402
from nodenet.graph.project import Edge, Node, Project, analyze  # noqa: E402
from tests.support.generated import (  # noqa: E402
    TOL,
    Case,
    check_keras,
    check_torch,
    import_source,
    perturbed_model,
    random_inputs,
    random_targets,
)

pytestmark = pytest.mark.ref

FROZEN = ("body", "norm")


def transfer(optimizer: dict | None = None) -> Project:
    """Input -> Dense -> Dense (frozen) -> BatchNormalization (frozen) -> Dense softmax."""
    reg = {"l1": 0.0, "l2": 0.05}
    nodes = [
        Node("x", "Input", {"shape": [6]}),
        Node("stem", "Dense", {"units": 5, "activation": "tanh", "kernel_regularizer": reg}),
        Node("body", "Dense", {"units": 4, "activation": "relu", "kernel_regularizer": reg}),
        Node("norm", "BatchNormalization", {"momentum": 0.5}),
        Node("head", "Dense", {"units": 3, "activation": "softmax"}),
        Node("y", "Output", {"loss": "categorical_crossentropy", "metrics": []}),
    ]
    for node in nodes:
        node.trainable = node.id not in FROZEN
    edges = [Edge(a.id, b.id) for a, b in itertools.pairwise(nodes)]
    project = Project("transfer", nodes, edges)
    if optimizer is not None:
        project.training = {**project.training, "optimizer": optimizer}
    return project


def test_the_exports_train_as_nodenet_and_leave_frozen_weights(tmp_path):
    case = Case(transfer(), seed=3)
    for key, value in case.weights.items():
        changed = not np.array_equal(case.after[key], value)
        assert changed == (key.split("/")[0] not in FROZEN), key
    check_torch(case, tmp_path)  # the state after the step equals nodenet's, frozen included
    check_keras(case, tmp_path)


def test_the_keras_export_writes_trainable_false_on_frozen_layers_only(tmp_path):
    source = export_keras(transfer()).source
    assert source.count("trainable=False") == 2
    model = import_source(source, tmp_path, "keras_frozen").build_model()
    assert {layer.name for layer in model.layers if not layer.trainable} == set(FROZEN)


def test_the_pytorch_export_freezes_parameters_and_keeps_frozen_normalization_in_eval(tmp_path):
    module = import_source(export_pytorch(transfer()).source, tmp_path, "torch_frozen")
    net = module.build_model()
    net.train()
    assert not net.norm.training and net.body.training and net.stem.training
    assert not any(p.requires_grad for p in net.body.parameters())
    assert not any(p.requires_grad for p in net.norm.parameters())
    optimizer = module.make_optimizer(net)
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for p in [*net.stem.parameters(), *net.head.parameters()]}
    net.eval()
    assert not net.norm.training


@pytest.mark.parametrize(
    "optimizer",
    [
        {"name": "adam", "learning_rate": 0.01},
        {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "weight_decay": 0.1},
    ],
)
def test_a_pytorch_step_with_momentum_and_weight_decay_equals_nodenet(optimizer, tmp_path):
    project = transfer(optimizer)
    model = perturbed_model(project, seed=4)
    before = model.get_weights()
    rng = np.random.default_rng(4)
    x = random_inputs(model, rng)
    y = random_targets(model, model.predict(x), rng)
    fit(model, x, y, epochs=1, batch_size=len(x["x"]), optimizer=optimizer, shuffle=False)
    after = model.get_weights()

    code = export_pytorch(project, before)
    module = import_source(code.source, tmp_path, "torch_frozen_step")
    net = module.build_model()
    path = tmp_path / "weights.npz"
    path.write_bytes(code.weights)
    module.load_weights(net, path)
    loader = module.DataLoader(module.to_dataset(x, y), batch_size=len(x["x"]))
    module.run_epoch(net, loader, torch.device("cpu"), module.make_optimizer(net))
    state = net.state_dict()
    graph = read_graph(project)
    unchanged = torch_state(graph, split_weights(graph, before))
    for key, expected in torch_state(graph, split_weights(graph, after)).items():
        np.testing.assert_allclose(state[key].numpy(), expected, **TOL, err_msg=key)
        if key.split(".")[0] in FROZEN:
            np.testing.assert_array_equal(state[key].numpy(), unchanged[key], err_msg=key)


def test_a_keras_layer_with_trainable_false_imports_frozen():
    layers = keras.layers
    inputs = keras.Input((5,), dtype="int32")
    h = layers.Embedding(50, 8, trainable=False, name="words")(inputs)
    h = layers.GlobalAveragePooling1D(name="pool")(h)
    h = layers.BatchNormalization(trainable=False, name="norm")(h)
    outputs = layers.Dense(2, activation="softmax", name="head")(h)
    model = keras.Model(inputs, outputs)
    project = import_keras_config(json.loads(model.to_json()))
    frozen = {n.id for n in project.nodes if not n.trainable}
    assert frozen == {"words", "norm"}
    analysis = analyze(project)
    counts = [sum(int(np.prod(w.shape)) for w in ws) for ws in _weights(model)]
    total = tuple(map(sum, zip(*analysis.params.values(), strict=True)))
    assert total == tuple(counts)
    assert analysis.params["words"] == (0, 400)


def _weights(model) -> tuple[list, list]:
    return model.trainable_weights, model.non_trainable_weights

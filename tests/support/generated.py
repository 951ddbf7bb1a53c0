"""Running exported code against nodenet: import the generated modules, compare with the engine.

Each check exports a project with weights (nodenet's own initial weights,
perturbed so that zero biases and unit gammas are exercised), imports the
generated module from a file, and compares with nodenet's :class:`Model`:
parameter counts, ``predict`` on random inputs, and one SGD training step
(the loss of the step and the weights after it). nodenet is itself checked
against Keras in tests/engine; here Keras and PyTorch run the exported code.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np

from nodenet.engine.catalog import block_class
from nodenet.engine.model import Model
from nodenet.engine.training import fit
from nodenet.export import export_keras, export_pytorch
from nodenet.export._common import read_graph, split_weights
from nodenet.export.pytorch import torch_state
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model

SAMPLES = sorted((Path(__file__).parents[2] / "sample_projects").glob("*.json"))
TOL = {"rtol": 1e-4, "atol": 1e-4}
BATCH = 4
SGD = {"name": "sgd", "learning_rate": 0.01}
_count = itertools.count()


def import_source(source: str, directory: Path, stem: str):
    """The module of ``source`` written to ``directory/stem_N.py`` and imported.

    It is in ``sys.modules`` only while it runs: hundreds of them left there would stay
    alive for the rest of the suite, and hypothesis (tests/fuzz) parses every module it
    finds there for constants.
    """
    path = directory / f"{stem}_{next(_count)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[path.stem]
    return module


def example_graph(type_name: str, index: int) -> Project:
    """Inputs of the example's shapes -> the block -> an Output scored by MSE (one per
    output of a block with several)."""
    example = block_class(type_name).EXAMPLES[index]
    nodes, edges = [], []
    for port, shape in enumerate(example.input_shapes):
        params = {"shape": list(shape)}
        if example.input_dtype != "float32":  # int32 indices, string text
            params["dtype"] = example.input_dtype
        nodes.append(Node(f"input_{port}", "Input", params))
        edges.append(Edge(f"input_{port}", "block", port))
    nodes.append(Node("block", type_name, copy.deepcopy(example.params)))
    nodes.append(Node("out", "Output", {"loss": "mean_squared_error", "metrics": []}))
    edges.append(Edge("block", "out", 0))
    outputs = block_class(type_name)(example.params).n_outputs()
    for k in range(1, outputs):  # a block with several outputs: an Output reads each
        nodes.append(Node(f"out_{k}", "Output", {"loss": "mean_squared_error", "metrics": []}))
        edges.append(Edge("block", f"out_{k}", 0, k))
    return Project(f"{type_name.lower()}_{index}", nodes, edges)


# blocks that draw random numbers while training -> the setting that turns the draws off
RANDOM_IN_TRAINING = {
    "Dropout": "rate",
    "SpatialDropout1D": "rate",
    "SpatialDropout2D": "rate",
    "SpatialDropout3D": "rate",
    "GaussianDropout": "rate",
    "AlphaDropout": "rate",
    "GaussianNoise": "stddev",
}


def for_training(project: Project) -> Project:
    """The project with plain SGD and no dropout or noise: a step nodenet and the exports
    share (their random draws differ)."""
    project = project.copy()
    for node in project.nodes:
        node.params = copy.deepcopy(node.params)  # a wrapper's inner params are shared
        if node.type in RANDOM_IN_TRAINING:
            node.params[RANDOM_IN_TRAINING[node.type]] = 0.0
        values = node.params.values()
        nested = [v["params"] for v in values if isinstance(v, dict) and "params" in v]
        for params in (node.params, *nested):  # a wrapper's inner block too
            for key in ("dropout", "recurrent_dropout"):
                if params.get(key):
                    params[key] = 0.0
    project.training = {**project.training, "optimizer": dict(SGD)}
    return project


def perturbed_model(project: Project, seed: int) -> Model:
    model = build_model(project, seed=seed)
    rng = np.random.default_rng(seed)
    for weights in model.weights.values():
        for w in weights.values():
            w += rng.normal(0.0, 0.1, size=w.shape).astype(w.dtype)
    return model


def random_inputs(model: Model, rng, int_high: int = 5) -> dict[str, np.ndarray]:
    """A batch for every Input: normal floats, or indices below ``int_high``; None sizes 5."""
    arrays = {}
    for node_id in model.input_ids:
        shape = tuple(5 if d is None else d for d in model.shapes[node_id])
        if model.layers[node_id].config["dtype"] == "int32":
            arrays[node_id] = rng.integers(0, int_high, size=(BATCH, *shape)).astype(np.int32)
        else:
            arrays[node_id] = rng.normal(size=(BATCH, *shape)).astype(np.float32)
    return arrays


def random_targets(model: Model, outputs: dict, rng) -> dict[str, np.ndarray]:
    """Targets each head's loss accepts: one-hot, labels, 0/1 or real values."""
    targets = {}
    for head in model.heads:
        shape = outputs[head.id].shape
        if head.loss == "categorical_crossentropy":
            labels = rng.integers(0, shape[-1], size=shape[:-1])
            targets[head.id] = np.eye(shape[-1], dtype=np.float32)[labels]
        elif head.loss == "sparse_categorical_crossentropy":
            targets[head.id] = rng.integers(0, shape[-1], size=shape[:-1])
        elif head.loss == "binary_crossentropy":
            targets[head.id] = rng.integers(0, 2, size=shape).astype(np.float32)
        else:
            targets[head.id] = rng.normal(size=shape).astype(np.float32)
    return targets


class Case:
    """A project, nodenet's weights, a batch, and what nodenet computes for them."""

    def __init__(self, project: Project, seed: int, int_high: int = 5, train: bool = True):
        self.project = for_training(project) if train else project
        self.model = perturbed_model(self.project, seed)
        rng = np.random.default_rng(seed)
        self.weights = self.model.get_weights()
        self.x = random_inputs(self.model, rng, int_high)
        self.predicted = self.model.predict(self.x)
        self.trainable = self.model.count_params()[0] > 0
        if train and self.trainable:
            self.y = random_targets(self.model, self.predicted, rng)
            history = fit(
                self.model, self.x, self.y, epochs=1, batch_size=BATCH, optimizer=SGD, shuffle=False
            )
            self.loss = history.epochs[0]["loss"]
            self.after = self.model.get_weights()
            self.model.set_weights(self.weights)

    def counts(self) -> tuple[int, int]:
        return self.model.count_params()


def check_torch(case: Case, directory: Path) -> None:
    """Parameter counts, predictions and one SGD step of the PyTorch export."""
    import torch

    code = export_pytorch(case.project, case.weights)
    module = import_source(code.source, directory, "torch_export")
    net = module.build_model()
    path = directory / f"weights_{next(_count)}.npz"
    path.write_bytes(code.weights)
    module.load_weights(net, path)
    trainable, frozen = case.counts()
    learned = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert learned == trainable  # a frozen block's parameters do not require gradients
    every = sum(p.numel() for p in net.parameters()) + sum(b.numel() for b in net.buffers())
    assert every - learned == frozen
    net.eval()
    inputs = [torch.from_numpy(case.x[i]) for i in case.model.input_ids]
    with torch.no_grad():
        outputs = _by_head(case, net(*inputs))
    for head in case.model.heads:
        np.testing.assert_allclose(
            outputs[head.id], case.predicted[head.id], **TOL, err_msg=head.id
        )
    if not hasattr(case, "loss"):
        return
    net.train()
    targets = {k: torch.as_tensor(v) for k, v in case.y.items()}
    loss = module.compute_loss(net(*inputs), targets)
    if hasattr(module, "regularization"):
        loss = loss + module.regularization(net)
    optimizer = module.make_optimizer(net)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    np.testing.assert_allclose(loss.item(), case.loss, **TOL, err_msg="loss of the step")
    graph = read_graph(case.project)
    state = net.state_dict()
    for key, expected in torch_state(graph, split_weights(graph, case.after)).items():
        np.testing.assert_allclose(state[key].numpy(), expected, **TOL, err_msg=key)


def _by_head(case: Case, outputs) -> dict[str, np.ndarray]:
    if len(case.model.heads) == 1:
        outputs = {case.model.heads[0].id: outputs}
    return {k: v.detach().numpy() for k, v in outputs.items()}


def check_keras(case: Case, directory: Path) -> None:
    """Parameter counts, predictions and one SGD step of the Keras export."""
    code = export_keras(case.project, case.weights)
    module = import_source(code.source, directory, "keras_export")
    model = module.build_model()
    path = directory / f"weights_{next(_count)}.npz"
    path.write_bytes(code.weights)
    module.load_weights(model, path)
    trainable, frozen = case.counts()
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == frozen
    outputs = model.predict(case.x, verbose=0, batch_size=BATCH)
    for head in case.model.heads:
        np.testing.assert_allclose(
            np.asarray(outputs[head.id]), case.predicted[head.id], **TOL, err_msg=head.id
        )
    if not hasattr(case, "loss"):
        return
    module.compile_model(model)
    logs = model.train_on_batch(case.x, case.y, return_dict=True)
    np.testing.assert_allclose(logs["loss"], case.loss, **TOL, err_msg="loss of the step")
    for layer in model.layers:
        keys = [k for k in case.after if k.split("/", 1)[0] == layer.name]
        for key, value in zip(keys, layer.get_weights(), strict=True):
            np.testing.assert_allclose(value, case.after[key], **TOL, err_msg=key)

"""Checking an imported Keras model layer for layer: shapes, counts, outputs and exports.

:func:`check_model` saves a Keras model as a ``.keras`` archive, imports it as
``nodenet import-keras`` does and raises ``AssertionError`` at the first layer
whose output shape, trainable or non-trainable parameter count, or output on a
random batch (with the archive's weights) differs from Keras's, or when the
exported Keras or PyTorch code predicts differently from nodenet. Nested models are
checked as the group instances they come in as (output shapes, inside totals, and the
Keras export nesting the same sub-models and layer names). Used by
tests/export/test_keras_corpus.py and scripts/keras_corpus.py.
"""

from __future__ import annotations

import copy
from pathlib import Path

import keras
import numpy as np

from nodenet.export import export_keras, export_pytorch
from nodenet.export.keras_import import import_keras_archive
from nodenet.graph.project import Edge, Node, Project, analyze
from nodenet.runner import build_model
from tests.support.generated import import_source

BATCH = 2
TOL = 1e-4
UNKNOWN_LENGTH = 30  # steps given to a sequence of unknown length


def perturb(kmodel, seed: int) -> None:
    """Zero biases, unit gammas and fresh moving statistics would hide mistakes."""
    rng = np.random.default_rng(seed)
    for variable in kmodel.weights:
        value = keras.ops.convert_to_numpy(variable)
        leaf = variable.path.rsplit("/", 1)[-1]
        if leaf in ("moving_variance", "variance"):
            value = rng.uniform(0.5, 1.5, size=value.shape)
        elif leaf in ("bias", "beta", "moving_mean", "mean", "gamma"):
            value = value + rng.normal(0.0, 0.1, size=value.shape)
        else:
            continue
        variable.assign(value.astype(variable.dtype))


def keras_inputs(kmodel, project: Project, rng) -> dict[str, np.ndarray]:
    """A batch for every input, by input layer name; indices where an Embedding reads it
    (the guide feeds float inputs of word indices)."""
    indices = {e.src for e in project.edges if project.node(e.dst).type == "Embedding"}
    arrays = {}
    for tensor in kmodel.inputs:
        name = tensor._keras_history[0].name
        shape = (BATCH, *(UNKNOWN_LENGTH if d is None else d for d in tensor.shape[1:]))
        if "int" in str(tensor.dtype) or name in indices:
            dtype = np.int32 if "int" in str(tensor.dtype) else np.float32
            arrays[name] = rng.integers(1, 12, size=shape).astype(dtype)
        else:
            arrays[name] = rng.normal(size=shape).astype(np.float32)
    return arrays


def layer_outputs(kmodel) -> list[tuple[str, int, object]]:
    """(node id, output index, symbolic tensor) for every top-level computing layer; a
    nested model's are those of its group instance (of the same name)."""
    found = []
    for layer in kmodel.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        # the tensors of the layer's call in this model (a nested model's ``output`` is
        # its own graph's)
        outputs = layer._inbound_nodes[-1].output_tensors
        for index, tensor in enumerate(outputs):
            found.append((_node_id(layer, index), index, tensor))
    return found


def _node_id(layer, index: int) -> str:
    """The id of the block computing output ``index`` of ``layer`` (a nested model: its
    group instance)."""
    return layer.name


def nested_counts(kmodel, prefix: str = "") -> dict[str, tuple[int, int]]:
    """(trainable, non-trainable) per nested model of ``kmodel``, deeper ones too, by the
    prefix of their inner blocks' flattened ids (``encoder/``, ``encoder/core/``)."""
    found = {}
    for layer in kmodel.layers:
        if isinstance(layer, keras.Model):
            inner = f"{prefix}{layer.name}/"
            found[inner] = counts(layer)
            found.update(nested_counts(layer, inner))
    return found


def nested_models(kmodel) -> list[str]:
    """The names of the models nested in ``kmodel``, at any depth."""
    return [name.rstrip("/").rsplit("/", 1)[-1] for name in nested_counts(kmodel)]


def counts(layer) -> tuple[int, int]:
    def size(weights):
        return sum(int(np.prod(w.shape)) for w in weights)

    return size(layer.trainable_weights), size(layer.non_trainable_weights)


def close(ours: np.ndarray, theirs, what: str) -> None:
    theirs = np.asarray(theirs, dtype=np.float64)
    scale = max(1.0, float(np.abs(theirs).max(initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=TOL * scale, err_msg=what)


def imported(kmodel, directory: Path) -> tuple[Project, dict[str, np.ndarray]]:
    """The project and weights nodenet reads from the saved archive, as `import-keras` does."""
    path = directory / "model.keras"
    kmodel.save(path)
    project, weights = import_keras_archive(path)
    assert weights is not None, "the archive's weights did not come in"
    return project, weights


def check_model(kmodel, directory: Path, what: str, seed: int = 7) -> None:
    """Import ``kmodel`` and compare it with Keras layer for layer, then its exports."""
    perturb(kmodel, seed)
    project, weights = imported(kmodel, directory)
    analysis = analyze(project)
    assert not analysis.problems, analysis.problems[:3]

    probes = layer_outputs(kmodel)
    missing = [n for n, _, _ in probes if n not in analysis.shapes]
    assert not missing, f"layers that did not come in under their own names: {missing[:5]}"
    by_name = {layer.name: layer for layer in kmodel.layers}
    for name, index, tensor in probes:
        assert analysis.shape_of(name, index) == tuple(tensor.shape[1:]), name
        if name in by_name:
            assert analysis.params[name] == counts(by_name[name]), name
    nested = nested_counts(kmodel)
    assert set(nested_models(kmodel)) <= set(project.groups), "nested models not grouped"
    for prefix, expected in nested.items():
        assert analysis.inside is not None, "nested models came in without groups"
        inside = [c for i, c in analysis.inside.params.items() if i.startswith(prefix)]
        assert tuple(map(sum, zip(*inside, strict=True))) == expected, prefix
    assert sum(sum(c) for c in analysis.params.values()) == kmodel.count_params()

    inputs = keras_inputs(kmodel, project, np.random.default_rng(seed))
    probe = keras.Model(kmodel.inputs, [t for _, _, t in probes])
    x = [inputs[t._keras_history[0].name] for t in kmodel.inputs]
    theirs = probe.predict(x, batch_size=BATCH, verbose=0)
    theirs = theirs if isinstance(theirs, list) else [theirs]

    watched = copy.deepcopy(project)
    for k, (name, index, _) in enumerate(probes):
        watched.nodes.append(Node(f"probe_{k}", "Output", {"loss": "mean_squared_error"}))
        watched.edges.append(Edge(name, f"probe_{k}", 0, index))
    model = build_model(watched, fuse=False)
    model.set_weights(weights)
    ours = model.predict(inputs, batch_size=BATCH)
    for k, (name, index, _) in enumerate(probes):
        close(ours[f"probe_{k}"], theirs[k], f"{what}: layer {name!r} output {index}")

    exported = check_exports(project, weights, inputs, directory, what)
    same_nesting(kmodel, exported, what)


def same_nesting(kmodel, exported, what: str) -> None:
    """The Keras export nests models as ``kmodel`` does: the same sub-model names, each
    with the same layer names, at every depth."""
    for layer in kmodel.layers:
        if not isinstance(layer, keras.Model):
            continue
        ours = exported.get_layer(layer.name)
        assert isinstance(ours, keras.Model), f"{what}: {layer.name!r} is not a nested model"
        names = [x.name for x in layer.layers if not isinstance(x, keras.layers.InputLayer)]
        got = [x.name for x in ours.layers if not isinstance(x, keras.layers.InputLayer)]
        assert sorted(got) == sorted(names), f"{what}: the layers of {layer.name!r}"
        same_nesting(layer, ours, what)


def check_exports(project, weights, inputs, directory: Path, what: str):
    """The exported Keras and PyTorch modules predict what nodenet predicts (a project with
    groups exported as it is: nested Keras models, nested modules); the Keras model."""
    import torch

    model = build_model(project)
    model.set_weights(weights)
    expected = model.predict(inputs, batch_size=BATCH)
    heads = [h.id for h in model.heads]

    code = export_keras(project, weights)
    module = import_source(code.source, directory, "keras_export")
    exported = module.build_model()
    (directory / "k.npz").write_bytes(code.weights)
    module.load_weights(exported, directory / "k.npz")
    outputs = exported.predict(inputs, batch_size=BATCH, verbose=0)
    outputs = outputs if isinstance(outputs, dict) else {heads[0]: outputs}
    for head in heads:
        close(np.asarray(outputs[head]), expected[head], f"{what}: Keras export, {head}")

    code = export_pytorch(project, weights)
    module = import_source(code.source, directory, "torch_export")
    net = module.build_model()
    (directory / "t.npz").write_bytes(code.weights)
    module.load_weights(net, directory / "t.npz")
    net.eval()
    with torch.no_grad():
        outputs = net(*[torch.from_numpy(inputs[i]) for i in model.input_ids])
    outputs = outputs if isinstance(outputs, dict) else {heads[0]: outputs}
    for head in heads:
        close(outputs[head].numpy(), expected[head], f"{what}: PyTorch export, {head}")
    return exported

"""The PyTorch code the training process runs, and the weights between the two layouts.

The child process builds its model from the module :func:`nodenet.export.export_pytorch`
generates for the project (exact, parity-tested against the engine; every string of the
project in it is a Python literal), plus one function of its own, :data:`STEP`: the
optimizer step of the generated ``run_epoch`` (schedule, clipping, weight decay) as a
function, from the same generator (:func:`nodenet.export._torch_training._step_lines`).

:func:`torch_arrays` and :func:`keras_arrays` move every weight between nodenet's Keras
layouts (``node/name`` keys) and the module's ``state_dict`` (torch layouts), through each
block exporter's ``torch_state`` and its exact inverse ``keras_weights``.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.optimizers import check_optimizer
from nodenet.export._code import block, docstring
from nodenet.export._common import Graph, read_graph, split_weights
from nodenet.export._torch_training import RESERVED, _step_lines
from nodenet.export.blocks import exporter
from nodenet.export.pytorch import export_pytorch, torch_state
from nodenet.export.snippets import TORCH_HELPERS
from nodenet.graph.project import Project

STEP = "nodenet_train_step"  # snake case: no class the exporter names can be called so


def graph_of(project: Project) -> Graph:
    """The project's graph as the PyTorch exporter reads it (same reserved names)."""
    return read_graph(project, reserved=(*RESERVED, *TORCH_HELPERS))


def child_source(project: Project) -> str:
    """The module the child process executes: the PyTorch export of ``project`` (without
    weights: they come from nodenet) and :data:`STEP`."""
    graph = graph_of(project)
    return export_pytorch(project).source + "\n\n" + step_function(graph) + "\n"


def step_function(graph: Graph) -> str:
    """``nodenet_train_step(net, optimizer, loss, step) -> step``: backward and one optimizer
    step as the exported ``run_epoch`` takes it, returning the optimizer's step count."""
    optimizer = check_optimizer(graph.training["optimizer"])[0]
    lines = [*_step_lines(graph, optimizer), "return step"]
    doc = docstring("One optimizer step on the loss of a batch, as the exported fit takes it.", 4)
    return "\n".join([f"def {STEP}(net, optimizer, loss, step):", *doc, block(lines, 4)])


def torch_arrays(graph: Graph, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The module's ``state_dict`` arrays from Keras-layout ``weights`` (checked)."""
    return torch_state(graph, split_weights(graph, weights))


def keras_arrays(graph: Graph, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keras-layout weights (``node/name`` keys) from the module's ``state_dict`` arrays:
    the inverse of :func:`torch_arrays`."""
    weights: dict[str, np.ndarray] = {}
    for node_id in graph.computing():
        export, shapes = exporter(graph.layers[node_id]), graph.input_shapes(node_id)
        if export.torch_module(shapes) is None:
            continue
        prefix = graph.attr(node_id) + "."
        own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        specs = {s.name: s.shape for s in graph.specs(node_id)}
        for name, array in export.keras_weights(own, shapes).items():
            array = np.asarray(array, dtype=np.float32)
            weights[f"{node_id}/{name}"] = np.ascontiguousarray(array).reshape(specs[name])
    return weights

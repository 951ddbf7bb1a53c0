"""Export a project to a PyTorch module and training script, layer for layer as in Keras.

The generated ``nn.Module`` owns one submodule per weighted block (named
after the node) and its ``forward`` takes the Inputs and returns the Outputs
(a dict keyed by Output id when there are several), computing every block as
Keras 3 does: tensors stay channels-last and are moved around torch's
channels-first convolutions and pools, "same" padding goes where Keras puts
it, recurrent gates and biases are Keras's. ``reset_parameters`` draws every
weight as its Keras initializer would. Exported with weights, the arrays go to
``<module>_weights.npz`` in torch layouts, keyed like ``state_dict()``. A project
with groups gets an ``nn.Module`` class per definition and an attribute per instance
(:mod:`nodenet.export.torch_groups`), keys ``b1.d1.weight``.

The rest of the module trains it as the project says (see
:mod:`nodenet.export._torch_training`), on one device or under ``torchrun``.
"""

from __future__ import annotations

import numpy as np

from nodenet.export._code import (
    LINE,
    block,
    class_name,
    doc_text,
    docstring,
    global_names,
    import_block,
    py_str,
)
from nodenet.export._common import (
    ExportedCode,
    Graph,
    Weights,
    banner,
    npz_bytes,
    read_graph,
    split_weights,
)
from nodenet.export._torch_training import RESERVED, training_code
from nodenet.export.blocks import exporter
from nodenet.export.blocks.text_vectorization import state_as_params
from nodenet.export.snippets import TORCH_HELPERS, torch_init
from nodenet.export.torch_groups import (
    group_classes,
    group_forward,
    group_modules,
    group_sources,
)
from nodenet.graph.project import Project


def export_pytorch(project: Project, weights: Weights | None = None) -> ExportedCode:
    """A PyTorch module and training script for ``project``; with ``weights``
    (``node/name`` -> Keras-layout array) also the ``.npz`` of its ``state_dict``.

    Raises :class:`nodenet.errors.ValidationError` for an invalid project and
    :class:`nodenet.errors.WeightsError` for weights that do not fit it.
    """
    project, weights = state_as_params(project, weights)  # a learned vocabulary
    graph = read_graph(project, reserved=(*RESERVED, *TORCH_HELPERS))
    grouped = split_weights(graph, weights) if weights is not None else None
    name = class_name(project.name, taken=(*TORCH_HELPERS, *RESERVED, *graph.names.values()))
    constants, *training = training_code(graph, name, grouped is not None)
    body = "\n\n\n".join([module_class(graph, name), *training])
    code = "\n\n\n".join([constants, *_helpers(body), body])
    head = "\n\n".join([_docstring(graph, name, grouped is not None), import_block(code)])
    source = f"{head}\n\n{code}"
    npz = npz_bytes(torch_state(graph, grouped)) if grouped is not None else None
    return ExportedCode(source.rstrip("\n") + "\n", npz)


def _docstring(graph: Graph, name: str, with_weights: bool) -> str:
    text = (
        f"{banner(graph.project, 'a PyTorch model and its training')}\n\n"
        f"{name} mirrors the nodenet graph layer for layer with Keras 3 semantics: tensors "
        "stay channels-last, convolutions and pools are padded where Keras pads, recurrent "
        "layers keep Keras's gates and biases, and reset_parameters() draws each weight as "
        "its Keras initializer does."
    )
    if with_weights:
        text += (
            " The weights nodenet exported sit beside this file in <this file's name>"
            "_weights.npz (torch layouts, state_dict keys); main() loads them."
        )
    text += "\n\nRun it on one device, or with DistributedDataParallel on several:"
    lines = docstring(text)[:-1]
    return "\n".join([*lines, "", *_USAGE, '"""'])


_USAGE = (
    "    python THIS_FILE.py [--epochs N] [--device cpu|cuda]",
    "    torchrun --nproc_per_node N THIS_FILE.py [--device cpu|cuda]",
)


def _helpers(code: str) -> list[str]:
    """The helper sources ``code`` calls, with the helpers they call in turn."""
    wanted: set[str] = set()
    pending = [code]
    while pending:
        used = global_names(pending.pop())
        for name, source in TORCH_HELPERS.items():
            if name not in wanted and name in used:
                wanted.add(name)
                pending.append(source)
    return [source.rstrip("\n") for name, source in TORCH_HELPERS.items() if name in wanted]


def module_class(graph: Graph, name: str) -> str:
    """The ``nn.Module`` of the graph: submodules, Keras's initial weights, forward.

    With groups, the classes of the definitions come first and the graph's class holds an
    instance of one per ``Group`` block; its ``reset_parameters`` draws every weight."""
    modules, inits, classes = [], [], {}
    if graph.groups is not None:
        classes = group_classes(graph, name)
    for node_id in graph.computing():
        layer, attr = graph.layers[node_id], f"self.{graph.attr(node_id)}"
        shapes, export = graph.input_shapes(node_id), exporter(layer)
        constructor = export.torch_module(shapes)
        if constructor is None:
            continue
        if "/" not in node_id:
            modules.append(f"{attr} = {constructor}")
        refs = export.torch_weights(attr, shapes)
        for spec in layer.weight_specs(shapes):
            for target in refs.get(spec.name, []):
                inits += _commented(torch_init(spec.initializer, target, spec.shape))
    if graph.groups is not None:
        modules = group_modules(graph, classes, modules)
    doc = f"The nodenet graph {doc_text(graph.project.name)}, computed as Keras computes it."
    lines = [f"class {name}(nn.Module):", *docstring(doc, 4), ""]
    lines += ["    def __init__(self) -> None:", "        super().__init__()"]
    lines += [block(modules, 8)] if modules else []
    lines += _frozen_lines(graph)
    if inits:
        lines += ["        self.reset_parameters()", "", "    def reset_parameters(self) -> None:"]
        lines += docstring("Every weight drawn as its Keras initializer draws it.", 8)
        lines.append(block(inits, 8))
    lines += [*_inference_when_frozen(graph), "", *_forward(graph)]
    own = "\n".join(lines)
    if graph.groups is None:
        return own
    return "\n\n\n".join([*group_sources(graph, classes), own])


def _frozen_lines(graph: Graph) -> list[str]:
    """``requires_grad_(False)`` for every frozen block (Keras's ``trainable=False``)."""
    lines = []
    for node_id in graph.frozen():
        if exporter(graph.layers[node_id]).torch_module(graph.input_shapes(node_id)):
            lines.append(f"        self.{graph.attr(node_id)}.requires_grad_(False)  # frozen")
    return lines


def _inference_when_frozen(graph: Graph) -> list[str]:
    """A ``train`` that keeps frozen BatchNormalization blocks in eval mode, as Keras 3
    runs them in inference mode while training."""
    frozen = [i for i in graph.frozen() if graph.layers[i].INFERENCE_WHEN_FROZEN]
    if not frozen:
        return []
    doc = (
        "Training mode, except for the frozen blocks that normalize: they keep their moving "
        "statistics, as Keras 3 runs them."
    )
    lines = ["", "    def train(self, mode: bool = True) -> nn.Module:", *docstring(doc, 8)]
    lines.append("        super().train(mode)")
    lines += [f"        self.{graph.attr(i)}.eval()" for i in frozen]
    return [*lines, "        return self"]


def _commented(lines: list[str]) -> list[str]:
    """Lines with their trailing comment dropped where it would make them too long."""
    return [line if len(line) + 8 <= 100 else line.split("  # ")[0] for line in lines]


def _forward(graph: Graph) -> list[str]:
    params = ", ".join(f"{graph.names[i]}: torch.Tensor" for i in graph.inputs)
    multi = len(graph.outputs) > 1
    returns = "dict[str, torch.Tensor]" if multi else "torch.Tensor"
    lines = []
    if graph.groups is not None:
        lines = group_forward(graph)
    for node_id in graph.computing() if graph.groups is None else []:
        export = exporter(graph.layers[node_id])
        attr = f"self.{graph.names[node_id]}"
        expr = export.torch_forward(attr, graph.args(node_id), graph.input_shapes(node_id))
        lines.append(f"{graph.targets(node_id)} = {expr}")  # several outputs: a tuple
    results = [graph.args(o)[0] for o in graph.outputs]
    if multi:
        pairs = ", ".join(f"{py_str(o)}: {r}" for o, r in zip(graph.outputs, results, strict=True))
        lines.append(f"return {{{pairs}}}")
    else:
        lines.append(f"return {results[0]}")
    head = f"    def forward(self, {params}) -> {returns}:"
    if len(head) > LINE:  # as ruff splits a signature: the parameters first
        inner = f"        self, {params}"
        if len(inner) > LINE:
            inner = ",\n".join(f"        {p}" for p in ["self", *params.split(", ")]) + ","
        head = f"    def forward(\n{inner}\n    ) -> {returns}:"
    return [head, block(lines, 8)]


def torch_state(graph: Graph, grouped: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The module's ``state_dict`` arrays (torch layouts) from Keras-layout weights per node."""
    state = {}
    for node_id in graph.computing():
        export, weights = exporter(graph.layers[node_id]), grouped[node_id]
        shapes = graph.input_shapes(node_id)
        if export.torch_module(shapes) is None:
            continue
        for key, array in export.torch_state(weights, shapes).items():
            array = np.asarray(array)  # reshaped below: a scalar weight (shape ()) stays 0-D
            state[f"{graph.attr(node_id)}.{key}"] = np.ascontiguousarray(array, np.float32).reshape(
                array.shape
            )
    return state

"""A project as an ONNX model: the graph walked in topological order, one mapping per block.

Groups are flattened first (the analysis's blueprint), so the ONNX graph holds the blocks a
model runs. Graph inputs and outputs are named after the Input and Output ids, with a dynamic
batch axis ``batch``; every tensor keeps Keras's channels-last layout, as the metadata says.
The weights are the given ones (Keras layouts, ``node/name``) or, without any, the seeded
initial weights ``nodenet predict``'s model starts from.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from nodenet import __version__
from nodenet.engine import settings
from nodenet.engine.model import Model
from nodenet.errors import ExportError
from nodenet.export.onnx.builder import DEFAULT_OPSET, OnnxBuilder
from nodenet.export.onnx.registry import ONNX_BLOCKS
from nodenet.graph.validation import analyze

LAYOUT = "channels_last (batch, ..., channels), as Keras"
MAX_FILE_BYTES = 2**31 - 2**24  # protobuf's 2 GiB limit, less room for the graph itself
_DTYPES = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32, "string": TensorProto.STRING}


def load_mappings() -> None:
    """Import every ``ops_*`` module of this package (each registers its block mappings)."""
    folder = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        if info.name.startswith("ops_"):
            importlib.import_module(f"{__package__}.{info.name}")


def initial_model(project) -> Model:
    """The model ``project`` builds with the seeded initial weights of its training settings
    (what ``nodenet predict`` and ``train --epochs 0`` start from)."""
    blueprint = analyze(project).blueprint(project)
    return Model(blueprint, seed=settings.resolved(project.training)["seed"], fuse=False)


def export_onnx(
    project, weights: dict | None = None, opset: int | None = DEFAULT_OPSET
) -> onnx.ModelProto:
    """The ONNX model of ``project`` with ``weights`` (``node/name`` -> Keras-layout array).

    ``opset`` None is the default, 17. Raises :class:`ExportError` for a block without an
    ONNX equivalent or an opset outside 13..21,
    :class:`WeightsError` for weights that do not fit the graph.
    """
    load_mappings()
    b = OnnxBuilder(DEFAULT_OPSET if opset is None else opset)
    model = initial_model(project)
    if weights is not None:
        model.set_weights(weights)
    tensors: dict[str, list[str]] = {}
    graph_inputs, graph_outputs = [], []
    for node_id in model.order:  # the graph's names first: no block tensor takes one
        if model.layers[node_id].TYPE in ("Input", "Output"):
            b.reserve(node_id)
    for node_id in model.order:
        layer = model.layers[node_id]
        if layer.TYPE == "Input":
            name = node_id
            tensors[node_id] = [name]
            if layer.config["dtype"] == "int32":
                b.int_tensors.add(name)
            graph_inputs.append(_value_info(name, layer.config["dtype"], model.shapes[node_id]))
            continue
        inputs = [tensors[src][port] for src, port in model.feeds[node_id]]
        shapes = model.input_shapes(node_id)
        if layer.TYPE == "Output":
            name = node_id
            b.nodes.append(helper.make_node("Identity", inputs, [name], name=name))
            graph_outputs.append((name, model.shapes[node_id]))
            continue
        if layer.TYPE not in ONNX_BLOCKS:
            raise ExportError(f"{node_id}: the block type {layer.TYPE} has no ONNX mapping yet")
        b.scope(node_id)
        arrays = {k: np.asarray(v) for k, v in model.weights[node_id].items()}
        outs = ONNX_BLOCKS.get(layer.TYPE)(b, layer, inputs, shapes, arrays)
        b.scope("")
        if len(outs) != layer.n_outputs():
            raise ExportError(
                f"{node_id}: the ONNX mapping of {layer.TYPE} gave {len(outs)} outputs, "
                f"the block has {layer.n_outputs()}"
            )
        tensors[node_id] = list(outs)
    if b.weight_bytes() > MAX_FILE_BYTES:
        raise ExportError(
            f"{project.name}: the weights take {b.weight_bytes() / 2**30:.1f} GiB, more than "
            "the 2 GiB one ONNX file can hold"
        )
    ends = [*model.input_ids, *(h.id for h in model.heads)]
    place = {node_id: i for i, node_id in enumerate(ends)}
    graph_inputs.sort(key=lambda v: place[v.name])  # the project's order, not the walk's
    graph_outputs.sort(key=lambda pair: place[pair[0]])
    types = _inferred_types(b, graph_inputs)  # float32, or int32 where an Input's ints go
    graph_outputs = [
        _value_info(name, types.get(name, TensorProto.FLOAT), shape)
        for name, shape in graph_outputs
    ]
    graph = helper.make_graph(
        b.nodes, _graph_name(project), graph_inputs, graph_outputs, b.initializers
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", b.opset)],
        producer_name="nodenet",
        producer_version=__version__,
        doc_string=f"{project.name}: exported by nodenet {__version__}",
    )
    onnx_model.ir_version = helper.find_min_ir_version_for([onnx_model.opset_import[0]])
    helper.set_model_props(
        onnx_model,
        {
            "project": str(project.name),
            "nodenet_version": __version__,
            "layout": LAYOUT,
            "input_layout": LAYOUT,
            "output_layout": LAYOUT,
            "opset": str(b.opset),
            "inputs": ", ".join(n.name for n in graph_inputs),
            "outputs": ", ".join(n.name for n in graph_outputs),
        },
    )
    check(onnx_model)
    return onnx_model


def check(model: onnx.ModelProto) -> None:
    """``onnx.checker`` with full shape inference, then strict shape inference; a failure is
    an :class:`ExportError` (a mapping bug, so its message is the checker's)."""
    try:
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f"the exported ONNX graph does not check: {err}") from None


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write ``model`` to ``path`` atomically (one file, weights inside)."""
    from nodenet.atomic import write_file

    return Path(write_file(path, model.SerializeToString(), ExportError))


def _value_info(name: str, dtype: str | int, shape) -> onnx.ValueInfoProto:
    dims = ["batch", *(f"{name}_{i + 1}" if d is None else int(d) for i, d in enumerate(shape))]
    elem = _DTYPES[dtype] if isinstance(dtype, str) else dtype
    return helper.make_tensor_value_info(name, elem, dims)


def _inferred_types(b: OnnxBuilder, graph_inputs: list) -> dict[str, int]:
    """The element type ONNX infers for every tensor of the graph built so far."""
    probe = helper.make_graph(b.nodes, "probe", graph_inputs, [], b.initializers)
    opsets = [helper.make_opsetid("", b.opset)]
    inferred = onnx.shape_inference.infer_shapes(helper.make_model(probe, opset_imports=opsets))
    return {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}


def _graph_name(project) -> str:
    return str(project.name or "nodenet") or "nodenet"


__all__ = ["LAYOUT", "check", "export_onnx", "initial_model", "load_mappings", "save_onnx"]

"""Import an ONNX model (``torch.onnx.export``'s files, nodenet's own) as a project and weights.

The file is read without trust (:mod:`nodenet.export.onnx_import_read`): its size, every
initializer's claimed size and every external-data path are checked before data is read, and
nothing in it is executed. The graph is walked in topological order (a cycle is refused); each
operator becomes a block (:mod:`nodenet.export.onnx_import_ops`) or is absorbed where it only
moves axes (Transpose, Squeeze, Unsqueeze, Identity, Dropout).

Layouts: nodenet's blocks are channels-last, as Keras. Every ONNX tensor is tracked as a
view of a nodenet tensor: ``axes[k]`` is the nodenet axis that ONNX axis ``k`` is (``None``
for an inserted axis of size 1). A Conv reads ``(N, C, H, W)``, the channels-first view of a
channels-last ``(N, H, W, C)`` tensor, so a Transpose between layouts costs no block, an Input
read by a Conv, a pooling or a BatchNormalization becomes channels-last (``(H, W, C)``: feed
it channels-last data), and a Flatten of channels-first features gets a Permute first so that
it flattens in ONNX's order. Weights are transposed to Keras's layouts.

Afterwards a Relu (Sigmoid, ...) following a Dense or a convolution is folded into its
activation, a MatMul's Add into its bias, the last step taken from a recurrent layer's
sequence into ``return_sequences=False``, and a Flatten of a global pooling into
``keepdims=False``. Everything else is refused in one short message grouped by operator,
with counts.
"""

from __future__ import annotations

import heapq
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.errors import NodenetError, ProjectFileError, shorten
from nodenet.export.keras_fields import layout
from nodenet.export.keras_refusal import _grouped_missing, _grouped_problems
from nodenet.export.onnx_import_read import (
    check_budget,
    claimed_shape,
    load_model,
    tensor_array,
    value_dtype,
    value_shape,
)
from nodenet.graph.project import DEFAULT_TRAINING, Edge, Node, Project
from nodenet.safeio import check_size

MAX_NODES = 100_000
# what a handler reading a malformed operator can raise; each becomes a refusal naming it
_MALFORMED = (
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    ZeroDivisionError,
    AttributeError,
    StopIteration,
)
_ADVICE = (
    "What you can do: export the model with only the operators docs/export.md lists, or "
    "build the missing parts in the editor."
)


@dataclass(frozen=True)
class View:
    """An ONNX tensor as a view of output ``port`` of nodenet block ``node``: ONNX axis k is
    nodenet axis ``axes[k]`` (``None``: an inserted axis of size 1)."""

    node: str
    port: int
    axes: tuple[int | None, ...]

    @property
    def plain(self) -> bool:
        return self.axes == tuple(range(len(self.axes)))


class Refused(Exception):
    """An operator nodenet cannot represent as it is used here; the message says why."""


def channels_first(rank: int) -> tuple[int, ...]:
    """The axes of the channels-first view of a channels-last tensor of ``rank``."""
    return (0, rank - 1, *range(1, rank - 1))


def import_onnx(path: str | os.PathLike) -> tuple[Project, dict[str, np.ndarray]]:
    """The project of the ONNX model at ``path`` and its weights (``node/name``, Keras layouts).

    Raises :class:`ProjectFileError` for a file that cannot be read safely and
    :class:`NodenetError` listing every operator nodenet cannot represent.
    """
    path = Path(path)
    try:
        model = load_model(path)
        return Importer(model, path.parent, path.stem).run()
    except NodenetError as err:
        raise type(err)(f"{shorten(str(path))}: {err}") from None


class Importer:
    """Walks an ONNX graph, building nodes, edges and weights and collecting refusals."""

    def __init__(self, model, folder: Path, default_name: str):
        self.model, self.graph, self.folder = model, model.graph, folder
        self.name = _identifier(self.graph.name) or _identifier(default_name) or "imported"
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13
        )
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.weights: dict[str, np.ndarray] = {}
        self.tensors: dict[str, View] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.symbolic: dict[str, Any] = {}  # shapes computed in the graph (onnx_import_shapes)
        self.shapes: dict[str, list[int | None]] = {}
        self.users: dict[str, int] = {}  # tensor -> how many nodes (and outputs) read it
        self.missing: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self.taken: set[str] = set()
        self.counts: dict[str, int] = {}  # the next suffix to try for an id

    # -- the walk ----------------------------------------------------------------------

    def run(self) -> tuple[Project, dict[str, np.ndarray]]:
        from nodenet.export.onnx_import_ops import HANDLERS
        from nodenet.export.onnx_import_shapes import SYMBOLIC, symbolic

        graph = self.graph
        if len(graph.node) > MAX_NODES:
            raise ProjectFileError(f"more than {MAX_NODES:,} operators")
        check_budget(list(graph.initializer), self.folder)
        order = _live(self.sorted_nodes(), {o.name for o in graph.output})
        self.read_shapes()
        for tensor in graph.initializer:
            self.consts[tensor.name] = tensor_array(tensor, self.folder)
        for node in order:
            for name in node.input:
                self.users[name] = self.users.get(name, 0) + 1
        for out in graph.output:
            self.users[out.name] = self.users.get(out.name, 0) + 1
        self.add_inputs(order)
        for node in order:
            label = f"{node.op_type} {shorten(node.name or node.output[0], 40)!r}"
            handler = HANDLERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
            if node.op_type in SYMBOLIC and symbolic(node, self):
                handler = SYMBOLIC[node.op_type]
            if handler is None:
                self.missing.append((shorten(node.op_type, 40), node.name or "?"))
                continue
            if any(
                n and n not in self.tensors and n not in self.consts and n not in self.symbolic
                for n in node.input
            ):
                continue  # reads what an earlier refusal left undefined (already reported)
            try:
                results = handler(self, node)
            except Refused as why:
                self.problems.append(f"{label}: {why}")
                continue
            except _MALFORMED as err:
                self.problems.append(f"{label}: malformed ({shorten(str(err), 120)})")
                continue
            for out, result in zip(node.output, results, strict=False):
                if out and result is not None:
                    if isinstance(result, np.ndarray):
                        self.consts[out] = result
                    elif not isinstance(result, View):
                        self.symbolic[out] = result
                    else:
                        self.tensors[out] = result
        self.add_outputs()
        self.fail_on_problems()
        from nodenet.export.onnx_import_fuse import fuse

        fuse(self)
        self.fail_on_problems()
        return self.project(), self.weights

    def sorted_nodes(self) -> list:
        """The graph's nodes in a topological order; a cycle or an undefined input is refused."""
        known = {t.name for t in self.graph.initializer} | {i.name for i in self.graph.input}
        known.add("")
        waiting: dict[str, list[int]] = {}
        missing = []
        for index, node in enumerate(self.graph.node):
            needs = {n for n in node.input if n not in known}
            missing.append(len(needs))
            for n in needs:
                waiting.setdefault(n, []).append(index)
        ready = [i for i, m in enumerate(missing) if m == 0]  # a heap: the file's order first
        heapq.heapify(ready)
        produced: set[str] = set()
        order = []
        while ready:
            index = heapq.heappop(ready)
            node = self.graph.node[index]
            order.append(node)
            for out in node.output:
                if not out or out in produced or out in known:
                    if out:
                        raise ProjectFileError(f"the tensor {shorten(out, 40)!r} is written twice")
                    continue
                produced.add(out)
                for reader in waiting.pop(out, []):
                    missing[reader] -= 1
                    if missing[reader] == 0:
                        heapq.heappush(ready, reader)
        if len(order) < len(self.graph.node):
            stuck = next(n for i, n in enumerate(self.graph.node) if missing[i] > 0)
            raise ProjectFileError(
                f"the graph has a cycle or reads an undefined tensor at operator "
                f"{shorten(stuck.name or stuck.op_type, 40)!r}"
            )
        return order

    def read_shapes(self) -> None:
        """The shapes of the graph's tensors, from ONNX shape inference where it succeeds."""
        import onnx

        graph = self.graph
        try:
            inferred = onnx.shape_inference.infer_shapes(self.model).graph
        except Exception:  # inference is a help: a model it cannot handle keeps what it says
            inferred = graph
        for info in [*inferred.input, *inferred.value_info, *inferred.output]:
            shape = value_shape(info)
            if shape is not None:
                self.shapes[info.name] = shape

    def add_inputs(self, order: list) -> None:
        from nodenet.export.onnx_import_ops import CHANNEL_OPS

        inits = {t.name for t in self.graph.initializer}
        for info in self.graph.input:
            if info.name in inits:
                continue
            node_id = self.fresh(info.name, "input")
            shape = value_shape(info)
            where = f"input {shorten(info.name, 40)!r}"
            if shape is None or len(shape) < 2:
                raise ProjectFileError(f"{where}: needs a shape with a batch axis and more")
            check_size(where, tuple(shape[1:]), 4, ProjectFileError)
            rank = len(shape)
            readers = {n.op_type for n in order if info.name in n.input}
            axes = tuple(range(rank))
            if rank >= 3 and readers & CHANNEL_OPS:
                axes = channels_first(rank)
            inner = [shape[axes.index(k)] for k in range(1, rank)]
            params: dict[str, Any] = {"shape": inner}
            if value_dtype(info) in (6, 7):
                params["dtype"] = "int32"
            self.nodes.append(Node(node_id, "Input", params))
            self.tensors[info.name] = View(node_id, 0, axes)

    def add_outputs(self) -> None:
        for info in self.graph.output:
            view = self.tensors.get(info.name)
            if view is None:
                if info.name in self.consts:
                    self.problems.append(f"output {shorten(info.name, 40)!r} is a constant")
                continue  # a refusal above already says why
            try:
                view = self.arrange(view, tuple(range(len(view.axes))), info.name)
            except Refused as why:
                self.problems.append(f"output {shorten(info.name, 40)!r}: {why}")
                continue
            node_id = self.fresh(info.name, "output")
            head = {"loss": "mean_squared_error", "metrics": []}
            self.nodes.append(Node(node_id, "Output", head))
            self.edges.append(Edge(view.node, node_id, 0, view.port))

    # -- building blocks ---------------------------------------------------------------

    def fresh(self, hint: str, fallback: str, suffix: str = "", op_type: str = "") -> str:
        """A new node id from an ONNX name (``/fc1/Gemm`` -> ``fc1``), unique in the project."""
        parts = [p for p in re.split(r"[/.:]", hint or "") if p]
        if len(parts) > 1:
            parts = parts[:-1]  # torch names nodes /module/path/OpType
        elif parts and op_type and re.fullmatch(rf"{re.escape(op_type)}(_\d+)?", parts[0]):
            parts = []  # /Relu_1: an operator outside any module, named after its type
        base = (_identifier("_".join(parts)) or fallback) + suffix
        node_id, k = base, self.counts.get(base, 1)
        while node_id in self.taken:
            node_id, k = f"{base}_{k}", k + 1
        self.counts[base] = k
        self.taken.add(node_id)
        return node_id

    def block(
        self,
        onnx_node,
        kind: str,
        params: dict,
        sources: list[View],
        weights: dict[str, np.ndarray] | None = None,
        suffix: str = "",
    ) -> str:
        """Add a block reading ``sources`` (each as the plain tensor it views); its id."""
        hint = onnx_node.name or onnx_node.output[0]
        node_id = self.fresh(hint, kind.lower(), suffix, onnx_node.op_type)
        self.nodes.append(Node(node_id, kind, _without_defaults(kind, params)))
        for port, source in enumerate(sources):
            self.edges.append(Edge(source.node, node_id, port, source.port))
        for key, array in (weights or {}).items():
            self.weights[f"{node_id}/{key}"] = np.ascontiguousarray(array, dtype=np.float32)
        return node_id

    def arrange(self, view: View, wanted: tuple[int, ...], hint: str) -> View:
        """``view`` as a view with ``wanted`` axes, through a Permute block when needed."""
        if view.axes == wanted:
            return view
        if None in view.axes or len(view.axes) != len(wanted):
            raise Refused("its input has axes nodenet cannot rearrange")
        inverse = {w: k for k, w in enumerate(wanted)}
        order = [view.axes[inverse[j]] for j in range(len(wanted))]
        if order[0] != 0:
            raise Refused("it moves the batch axis")
        node_id = self.fresh(hint, "permute", "_permute")
        self.nodes.append(Node(node_id, "Permute", {"dims": [int(a) for a in order[1:]]}))
        self.edges.append(Edge(view.node, node_id, 0, view.port))
        return View(node_id, 0, wanted)

    def const(self, name: str, what: str) -> np.ndarray:
        """The constant (initializer or Constant output) named ``name``."""
        if name not in self.consts:
            raise Refused(f"its {what} is computed, not a constant")
        return self.consts[name]

    def view(self, name: str) -> View:
        if name not in self.tensors:
            raise Refused("it computes on constants only" if name in self.consts else "no input")
        return self.tensors[name]

    def shape(self, name: str) -> list[int | None]:
        if name not in self.shapes:
            raise Refused(f"the shape of {shorten(name, 40)!r} is unknown")
        return self.shapes[name]

    # -- result ------------------------------------------------------------------------

    def fail_on_problems(self) -> None:
        lines = []
        if self.missing:
            lines.append("it uses operators nodenet lacks: " + _grouped_missing(self.missing))
        lines += _grouped_problems(self.problems)
        if not lines:
            return
        if len(lines) > 8:
            lines[7:] = [f"... and {len(lines) - 7} more problems"]
        body = "\n".join(f"  {shorten(line, 400)}" for line in lines)
        raise NodenetError(f"nodenet cannot represent this ONNX model:\n{body}\n{_ADVICE}")

    def project(self) -> Project:
        training = json.loads(json.dumps(DEFAULT_TRAINING))
        project = Project(self.name, self.nodes, self.edges, training)
        layout(project)
        try:
            Project.from_json(project.to_json(), "the imported project")
        except ProjectFileError as err:
            raise ProjectFileError(f"the model cannot become a nodenet project: {err}") from None
        from nodenet.graph.validation import analyze

        analysis = analyze(project)
        if analysis.problems:
            raise NodenetError(
                "the imported graph is not valid in nodenet: "
                + "; ".join(shorten(str(p), 160) for p in analysis.problems[:4])
            )
        _check_weights(analysis.blueprint(project), self.weights)
        return project


def attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def f32(value: float) -> float:
    """A float attribute (stored as float32) as the decimal it was written as: 1e-05."""
    return float(str(np.float32(value)))


def drop_axis(axes: tuple, k: int) -> tuple:
    """``axes`` without ONNX axis ``k``; a real nodenet axis removed renumbers those after."""
    gone = axes[k]
    rest = axes[:k] + axes[k + 1 :]
    if gone is None:
        return rest
    return tuple(a if a is None or a < gone else a - 1 for a in rest)


def axes_arg(imp: Importer, node, rank: int) -> list[int]:
    a = attrs(node)
    if "axes" in a:
        axes = list(a["axes"])
    elif len(node.input) > 1 and node.input[1]:
        axes = [int(x) for x in np.asarray(imp.const(node.input[1], "axes")).ravel()]
    else:
        axes = []
    return sorted(x % rank for x in axes)


def _check_weights(blueprint, weights: dict[str, np.ndarray]) -> None:
    """Refuse weights that do not fit the blocks (shapes from the specs, nothing allocated)."""
    from nodenet.errors import WeightsError

    expected = {}
    for node_id in blueprint.order:
        shapes = []
        for src, port in blueprint.sources.get(node_id, ()):
            several = blueprint.output_shapes.get(src)
            shapes.append(several[port] if several else blueprint.shapes[src])
        for spec in blueprint.layers[node_id].weight_specs(shapes):
            expected[f"{node_id}/{spec.name}"] = tuple(spec.shape)
    for key in sorted(set(expected) ^ set(weights)):
        raise WeightsError(f"the weight {key!r} does not fit the imported blocks")
    for key, shape in expected.items():
        if weights[key].shape != shape:
            raise WeightsError(f"{key} has shape {weights[key].shape}, the block needs {shape}")


def _without_defaults(kind: str, params: dict) -> dict:
    """``params`` without those at the block's default (as nodenet writes projects)."""
    from nodenet.engine.catalog import LAYERS

    if kind not in LAYERS:
        return params
    defaults = {p.name: p.default for p in LAYERS.get(kind).PARAMS}
    return {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}


def _live(order: list, needed: set[str]) -> list:
    """The nodes of ``order`` that an output depends on (dead branches are not imported)."""
    live = []
    for node in reversed(order):
        if any(out in needed for out in node.output):
            live.append(node)
            needed.update(node.input)
    return live[::-1]


def _identifier(text: str) -> str:
    text = re.sub(r"\W+", "_", text or "").strip("_")
    return text[:60] if text else ""


__all__ = [
    "Importer",
    "Refused",
    "View",
    "attrs",
    "axes_arg",
    "channels_first",
    "claimed_shape",
    "drop_axis",
    "f32",
    "import_onnx",
]

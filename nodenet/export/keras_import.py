"""Import a Keras model config (``model.to_json()``, or a ``.keras`` archive) as a project.

Sequential and functional models are read from their JSON config only: the
``.keras`` zip is opened with :mod:`zipfile` and only ``config.json`` is read;
nothing is unpickled or executed. Each Keras layer becomes the block of the
same name (``InputLayer`` an Input), each model output an Output node (named
by the output's key, with the loss, loss weight and metrics of
``compile_config`` when the archive has one), and the nodes are laid out in
layers from left to right.

Keras ops between tensors (``h + x``, ``ops.maximum(h, x)``) become the merge
of the same name with every operand an input (:mod:`nodenet.export.keras_calls`);
a keyword input (``Dense(3)(inputs=h)``) keeps its edge. Losses, loss weights and
metrics keyed by output name stay with that output; a learning-rate schedule
becomes nodenet's schedule of the same name.

A nested model (a Sequential or functional model used as a layer) comes in as a group
(:mod:`nodenet.export.keras_import_groups`): a definition holding its layers under their
Keras names, an output port per output, and one instance named after it (a nested model
used in two places shares weights, which instances cannot: refused), so its weights are
keyed ``inner/dense_1/kernel``; a layer's ``"trainable": false`` freezes its block. From a
``.keras`` archive, :func:`import_keras_archive` also reads the trained weights
(:mod:`nodenet.export.keras_weights`).

Everything nodenet cannot represent is reported, all at once, in one
:class:`~nodenet.errors.NodenetError`, short whatever the model's size
(:mod:`nodenet.export.keras_refusal`): layer classes and ops it lacks (grouped
by class, with counts), settings it does not support (``kernel_constraint``,
``stateful=True``, a loss ``from_logits=True``, a schedule it lacks, ...) and shared
layers. Nothing is silently dropped, except metrics nodenet does not compute.
"""

from __future__ import annotations

import copy
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.engine.catalog import LAYERS, Layer
from nodenet.engine.initializers import KINDS as INITIALIZER_KINDS
from nodenet.engine.initializers import resolve as resolve_initializer
from nodenet.engine.params import Int, NestedBlock, Param, Regularizer
from nodenet.errors import NodenetError, ParamError, ProjectFileError, brief, shorten
from nodenet.export.keras_calls import (
    MERGE_OPS,
    TENSOR_ARGUMENTS,
    call_inputs,
    call_keywords,
    custom_class,
    is_op,
    op_name,
    scalar_op,
    tensor_index,
)
from nodenet.export.keras_compile import SKIP as _SKIP
from nodenet.export.keras_compile import CompileReader
from nodenet.export.keras_fields import (
    _first_shape,
    _layer_name,
    _list_field,
    _neutral,
    _read_member,
    _ref,
    _shape,
    _short,
    _text,
    _why,
    layout,
)
from nodenet.export.keras_import_groups import Nested, regroup, rekey
from nodenet.export.keras_nested import (
    Scope,
    nested_inputs,
    nested_model,
    nested_outputs,
    reads_input,
    repeated,
    shared,
    unfreeze_weightless,
)
from nodenet.export.keras_refusal import refusal
from nodenet.export.keras_weights import (
    WEIGHTS_MEMBER,
    Located,
    h5py_module,
    read_weights,
    saved_name,
)
from nodenet.graph.project import (
    DEFAULT_TRAINING,
    Edge,
    Node,
    Project,
    _check_depth,
    parse_json,
    read_bounded,
)
from nodenet.safeio import memory_budget

MAX_CONFIG_BYTES = 64 * 1024 * 1024
# what reading a malformed config can raise; each becomes a typed error naming the layer
_MALFORMED = (AttributeError, IndexError, KeyError, TypeError, ValueError, OverflowError)

# Keras settings that change nothing nodenet computes
_IGNORED = {
    "name",
    "trainable",
    "dtype",
    "autocast",
    "build_config",
    "batch_input_shape",
    "input_shape",
    "input_length",
    "implementation",
    "unroll",
    "use_cudnn",
    "zero_output_for_mask",
    "time_major",
    "seed",
    "ragged",
    "renorm_momentum",  # used only with renorm=True, which is refused
    "backward_layer",  # a wrapper's backward copy: nodenet builds it from the wrapped layer
}
_INITIALIZERS = INITIALIZER_KINDS  # Keras's built-in initializers, by class name


def import_keras(path: str | os.PathLike) -> Project:
    """A project from a ``model.to_json()`` file or a ``.keras`` archive (its config only).

    Raises :class:`ProjectFileError` when the file cannot be read and
    :class:`NodenetError` listing whatever nodenet cannot represent.
    """
    return import_keras_archive(path, weights=False)[0]


def import_keras_archive(
    path: str | os.PathLike, weights: bool = True
) -> tuple[Project, dict[str, np.ndarray] | None]:
    """The project of a ``model.to_json()`` file or a ``.keras`` archive, and, with
    ``weights``, the archive's trained weights keyed ``node_id/weight_name`` (``None``
    for a config file, which has none).

    Raises what :func:`import_keras` raises, and :class:`WeightsError` naming the layer
    whose weights do not fit its block (a :class:`NodenetError` when h5py is missing).
    """
    path = Path(path)
    name = shorten(str(path))
    archive = path.is_file() and zipfile.is_zipfile(path)
    try:
        if archive:
            raw = _read_member(path, "config.json", MAX_CONFIG_BYTES)
        else:
            raw = read_bounded(path, MAX_CONFIG_BYTES, "a Keras model config")
    except KeyError:
        raise ProjectFileError(f"{name}: a .keras archive without config.json") from None
    except (OSError, zipfile.BadZipFile, EOFError, NotImplementedError) as err:
        raise ProjectFileError(f"{name}: cannot be read ({shorten(str(err))})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ProjectFileError(f"{name}: not UTF-8 text (byte {err.start})") from None
    config = parse_json(text, name)
    try:
        project, reader = _import_config(config, default_name=path.stem)
        if not (weights and archive):
            return project, None
        h5py_module()  # before reading the member: a missing h5py says so first
        try:
            raw = _read_member(path, WEIGHTS_MEMBER, memory_budget())
        except KeyError:
            raise ProjectFileError(f"the archive has no {WEIGHTS_MEMBER}") from None
        except (OSError, zipfile.BadZipFile, EOFError, NotImplementedError) as err:
            raise ProjectFileError(f"cannot be read ({shorten(str(err))})") from None
        flat = read_weights(raw, reader.located, reader.flat)
        return project, rekey(flat, reader.renamed)
    except NodenetError as err:
        raise type(err)(f"{name}: {err}") from None


def import_keras_config(config: dict, default_name: str = "imported") -> Project:
    """A project from a parsed Keras model config (Sequential or functional).

    Raises :class:`NodenetError` listing every layer class, setting, shared
    layer or loss nodenet cannot represent.
    """
    return _import_config(config, default_name)[0]


def _import_config(config: Any, default_name: str) -> tuple[Project, _Reader]:
    if isinstance(config, str):
        config = parse_json(config, "the Keras model config")
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ProjectFileError("not a Keras model config (no class_name and config object)")
    _check_depth(config, "the Keras model config")
    kind, body = config.get("class_name"), config["config"]
    name = body.get("name") or default_name
    if not isinstance(name, str):
        raise ProjectFileError(f"the model's name must be a string (got {brief(name)})")
    reader = _Reader(name)
    if kind == "Sequential":
        reader.sequential(body)
    elif kind in ("Functional", "Model"):
        reader.functional(body)
    else:
        raise ProjectFileError(
            f"a {brief(kind)} config is not a Keras Sequential or functional model"
        )
    compile_config = config.get("compile_config") or {}
    if not isinstance(compile_config, dict):
        raise ProjectFileError(f"compile_config must be an object (got {brief(compile_config)})")
    try:
        reader.compile(compile_config)
    except _MALFORMED as err:
        reader.problems.append(f"compile_config: malformed ({_why(err)})")
    reader.fail_on_problems()
    project = _checked(reader.project())
    reader.check_ops(project)
    unfreeze_weightless(project)
    reader.flat = project
    if reader.nested_models:
        project = copy.deepcopy(project)
        reader.renamed = regroup(project, reader.nested_models)
        layout(project)
        project = _checked(project)
    return project, reader


def _checked(project: Project) -> Project:
    """``project`` if the loader would open what it saves; otherwise a clear refusal."""
    try:
        Project.from_json(project.to_json(), "the imported project")
    except ProjectFileError as err:
        raise ProjectFileError(f"the model cannot become a nodenet project: {err}") from None
    return project


class _Reader(CompileReader):
    """Turns Keras layer configs into nodes and edges, collecting every problem."""

    def __init__(self, name: str):
        self.name = name
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.outputs: list[tuple[str, str]] = []  # (Output id, source node id)
        self.output_ports: dict[str, int] = {}  # Output id -> the source's output it reads
        self.problems: list[str] = []
        self.missing: list[tuple[str, str]] = []  # (class, layer name)
        self.ops: dict[str, str] = {}  # node id -> the Keras op it came from
        self.training = json.loads(json.dumps(DEFAULT_TRAINING))
        self.located: list[Located] = []  # where each block's weights are in the archive
        self.scope = Scope()  # the (nested) model being read
        # a nested model's output k (or its input) -> the (node, output) it stands for
        self.tensors: dict[tuple[str, int], tuple[str, int]] = {}
        self.feeds: dict[str, list[tuple[str, int]]] = {}  # a nested input -> what reads it
        self.shared: set[str] = set()  # layers called more than once (refused)
        self.objects: set[str] = set()  # the shared_object_ids of layers saved repeatedly
        self.nested_models: list[Nested] = []  # the nested models read, innermost first
        self.flat: Project | None = None  # the project before its nested models were grouped
        self.renamed: dict[str, str] = {}  # flat block id -> its flattened id once grouped

    def resolve(self, tensor: tuple[str, int]) -> tuple[str, int]:
        """The (block, output) that output ``tensor[1]`` of layer ``tensor[0]`` is (a nested
        model's: that of the block inside computing it)."""
        seen = set()
        while tensor in self.tensors and tensor not in seen:
            seen.add(tensor)
            tensor = self.tensors[tensor]
        return tensor

    def edge(self, source: tuple[str, int], node_id: str, port: int) -> Edge:
        """The edge from the tensor ``source`` into input ``port`` of ``node_id``, noted
        among those reading a nested model's input when ``source`` is one."""
        reads_input(self, source, node_id, port)
        src, src_port = self.resolve(source)
        return Edge(src, node_id, port, src_port)

    # -- models ------------------------------------------------------------------------

    def sequential(
        self, body: dict, inputs: list[tuple[str, int]] | None = None
    ) -> tuple[str, int] | None:
        """Read a Sequential model; nested (``inputs`` given), its output tensor."""
        previous = inputs[0] if inputs else None
        for index, layer in enumerate(_list_field(body, "layers")):
            try:
                if not isinstance(layer, dict):
                    raise TypeError(f"a layer must be an object (got {brief(layer)})")
                if inputs is not None and layer.get("class_name") == "InputLayer":
                    continue  # a nested model's input is the tensor it is called on
                if index == 0 and previous is None and layer.get("class_name") != "InputLayer":
                    shape = _first_shape(layer, body)
                    if shape is None:
                        self.problems.append("the Sequential model has no input shape")
                        return
                    previous = (self.add_input("input", shape, "float32"), 0)
                node_id = self.add_layer(layer, [previous] if previous else [])
            except _MALFORMED as err:
                self.malformed(layer, index, err)
                continue
            previous = (node_id, 0) if node_id else previous
        if previous is not None and inputs is None:
            self.outputs.append(("output", previous[0]))
        return previous

    def functional(
        self, body: dict, inputs: list[tuple[str, int]] | None = None
    ) -> list[tuple[str, int]]:
        """Read a functional model; nested (``inputs`` given), its output tensors."""
        if inputs is not None:
            nested_inputs(self, body, inputs)
        for index, layer in enumerate(_list_field(body, "layers")):
            try:
                self.functional_layer(layer)
            except _MALFORMED as err:
                self.malformed(layer, index, err)
        if inputs is not None:
            return nested_outputs(self, body)
        try:
            self.output_layers(body.get("output_layers"))
        except _MALFORMED as err:
            self.problems.append(f"output_layers: malformed ({_why(err)})")
        return []

    def functional_layer(self, layer: Any) -> None:
        if not isinstance(layer, dict):
            raise TypeError(f"a layer must be an object (got {brief(layer)})")
        layer = scalar_op(layer) or layer  # x + 3.0, x * (1 / 6): a Rescaling
        config = layer.get("config") or {}
        name = layer.get("name") or (config.get("name") if isinstance(config, dict) else None)
        _text(name, "name")
        inbound = layer.get("inbound_nodes") or []
        if not isinstance(inbound, list):
            raise TypeError(f"inbound_nodes must be a list (got {brief(inbound)})")
        if len(inbound) > 1:  # later layers reading its other calls are not reported again
            self.shared.add(self.scope.prefix + name)
            self.problems.append(shared(layer, self.scope.prefix + name, len(inbound)))
        op = is_op(layer)
        if self.missing_op(layer, config, name, op):
            return
        kind = layer.get("class_name")
        names = TENSOR_ARGUMENTS.get(kind, ()) if isinstance(kind, str) else ()
        sources, constants, keywords = (
            call_inputs(inbound[0], op, names) if inbound else ([], 0, [])
        )
        if inbound and isinstance(kind, str) and kind in LAYERS and isinstance(config, dict):
            # call arguments that are block parameters (use_causal_mask) join the config
            called = call_keywords(inbound[0], LAYERS.get(kind).CALL_ARGS)
            layer = {**layer, "config": {**config, **called}} if called else layer
        for source, node_index, _ in sources:
            if node_index and self.scope.prefix + source not in self.shared:
                self.problems.append(f"layer {name!r} reads call {brief(node_index)} of {source!r}")
        if constants:
            self.problems.append(f"layer {name!r} combines a tensor with a constant")
        for keyword in keywords:
            self.problems.append(f"layer {name!r} takes a tensor as {shorten(keyword)}=")
        # (layer, output) of each input: [lstm, 0, 1] reads the LSTM's h
        tensors = [(self.scope.prefix + s, k) for s, _, k in sources]
        node_id = self.add_layer(layer, tensors, name)
        if op and node_id is not None:
            self.ops[node_id] = op_name(layer)

    def missing_op(self, layer: dict, config: Any, name: str, op: bool) -> bool:
        """Whether ``layer`` is an op between tensors that is no nodenet block (recorded as
        missing): a Keras 3 op other than :data:`MERGE_OPS`, or a Keras 2 TensorFlow op."""
        config = config if isinstance(config, dict) else {}
        if op and layer.get("class_name") not in MERGE_OPS:
            called = _text(config.get("name") or name, "name")
            self.missing.append((f"the op ops.{op_name(layer)}", called))
            return True
        if layer.get("class_name") in ("TFOpLambda", "SlicingOpLambda"):
            function = config.get("function")
            called = shorten(function, 40) if isinstance(function, str) else "?"
            self.missing.append((f"the TensorFlow op tf.{called}", name))
            return True
        return False

    def output_layers(self, outputs: Any) -> None:
        if isinstance(outputs, dict):
            named = list(outputs.items())
        else:
            if outputs is not None and not isinstance(outputs, list):
                raise TypeError(f"a list of layer references (got {brief(outputs)})")
            refs = [outputs] if outputs and isinstance(outputs[0], str) else outputs or []
            named = [("output" if len(refs) == 1 else f"{_ref(r)}_output", r) for r in refs]
        for output_id, ref in named:
            self.outputs.append((_text(output_id, "output name"), _ref(ref)))
            self.output_ports[output_id] = tensor_index(ref)

    def malformed(self, layer: Any, index: int, err: BaseException) -> None:
        self.problems.append(f"layer {_layer_name(layer, index)}: malformed config ({_why(err)})")

    # -- layers ------------------------------------------------------------------------

    def add_input(self, node_id: str, shape: list, dtype: str) -> str:
        params: dict[str, Any] = {"shape": list(shape)}
        if dtype in ("int32", "int64"):
            params["dtype"] = "int32"
        self.nodes.append(Node(node_id, "Input", params))
        return node_id

    def add_layer(
        self, layer: dict, sources: list[tuple[str, int]], name: str | None = None
    ) -> str | None:
        kind, config = _text(layer.get("class_name"), "class_name"), layer.get("config") or {}
        if not isinstance(config, dict):
            raise TypeError(f"config must be an object (got {brief(config)})")
        keras_name = _text(name or config.get("name") or kind.lower(), "name")
        name = self.scope.prefix + keras_name
        if repeated(self, layer, name):
            return None
        group = "" if is_op(layer) else saved_name(kind, self.scope.used)  # its h5 group
        if kind == "InputLayer":
            if (name, 0) in self.tensors:  # a nested model's input: the tensor it is called on
                return None
            batch_shape = config.get("batch_shape") or config.get("batch_input_shape")
            shape = _shape(batch_shape, "batch_shape")
            dtype = config.get("dtype", "float32")
            return self.add_input(name, shape, dtype if isinstance(dtype, str) else "float32")
        if kind in ("Functional", "Sequential", "Model"):
            return nested_model(self, kind, config, name, group, sources)
        custom = custom_class(layer)
        if custom or kind not in LAYERS or kind in ("Input", "Output"):
            self.missing.append((custom or kind, name))
            return None
        params = self.params(LAYERS.get(kind), config, name)
        frozen = config.get("trainable", True) is False or self.scope.frozen  # Keras's frozen layer
        self.nodes.append(Node(name, kind, params, trainable=not frozen))
        self.edges += [self.edge(s, name, port) for port, s in enumerate(sources)]
        self.located.append(Located(name, kind, keras_name, self.scope.container, group))
        return name

    def params(self, cls: type[Layer], config: dict, name: str) -> dict:
        specs = {p.name: p for p in cls.PARAMS}
        for key, value in config.items():
            if key not in specs and key not in _IGNORED and not _neutral(value):
                self.problems.append(
                    f"{cls.TYPE} {name!r}: {shorten(key)}={_short(value)} is not supported"
                )
        params = {}
        for key, spec in specs.items():
            if key in config:
                where = f"{cls.TYPE} {name!r}"
                if isinstance(spec, NestedBlock):
                    value = self.nested(cls, spec, config[key], name)
                else:
                    value = self.value(spec, config[key], where)
                if value is not _SKIP and value != spec.default:
                    params[key] = value
        pool = params.get("pool_size", specs["pool_size"].default) if "pool_size" in specs else 0
        if params.get("strides") == pool:  # Keras writes a pool's default strides out
            del params["strides"]
        try:
            cls(params, name)
        except NodenetError as err:
            self.problems.append(f"{cls.TYPE} {name!r}: {err}")
        return params

    def nested(self, wrapper: type[Layer], spec: NestedBlock, layer: Any, name: str) -> Any:
        """A wrapper's inner Keras layer (``{"class_name", "config"}``) as the parameter
        ``{"type", "params"}``, or _SKIP after a problem (the wrapper keeps its default)."""
        if not isinstance(layer, dict):
            raise TypeError(f"{spec.name} must be an object (got {brief(layer)})")
        kind = layer.get("class_name")
        inner = next((b for b in spec.blocks if b.TYPE == kind), None)
        if inner is None:
            self.missing.append((f"{wrapper.TYPE}({shorten(str(kind))})", name))
            return _SKIP
        config = layer.get("config") or {}
        if not isinstance(config, dict):
            raise TypeError(f"{spec.name}.config must be an object (got {brief(config)})")
        known = len(self.problems)
        params = self.params(inner, config, name)
        for owned in spec.owned:  # set by the wrapper itself (Keras writes them out)
            params.pop(owned, None)
        return {"type": kind, "params": params} if len(self.problems) == known else _SKIP

    def value(self, spec: Param, value: Any, where: str) -> Any:
        """A Keras config value as nodenet's parameter value, or _SKIP after a problem."""
        if isinstance(spec, Regularizer):
            return self.regularizer(value, where)
        if spec.name.endswith("initializer") and isinstance(value, dict):
            return self.initializer(spec, value, where)
        if isinstance(spec, Int) and isinstance(value, list) and len(value) == 1:
            return value[0]
        if isinstance(value, dict):  # a serialized object (a custom activation, ...)
            self.problems.append(f"{where}: {spec.name}={_short(value)} is not supported")
            return _SKIP
        return value

    def initializer(self, spec: Param, value: dict, where: str) -> Any:
        """A Keras initializer config as nodenet's value, its arguments kept (``seed`` is
        dropped: nodenet draws every weight from the run's seed)."""
        kind, config = value.get("class_name"), value.get("config") or {}
        if not isinstance(config, dict):
            raise TypeError(f"{spec.name}.config must be an object (got {brief(config)})")
        module, registered = value.get("module"), value.get("registered_name")
        custom = registered not in (None, kind) or (
            module is not None and not str(module).startswith("keras.")
        )
        if not isinstance(kind, str) or kind not in _INITIALIZERS or custom:
            self.problems.append(f"{where}: {spec.name}={_short(value)} is not supported")
            return _SKIP
        axes = ("input_axes", "output_axes")
        args = {k: v for k, v in config.items() if k != "seed" and not (k in axes and v is None)}
        try:
            converted = spec.coerce({"class_name": kind, "config": args})
        except ParamError as err:
            self.problems.append(f"{where}: {err}")
            return _SKIP
        if resolve_initializer(converted) == resolve_initializer(spec.default):
            return spec.default  # Embedding's "uniform" is RandomUniform at its defaults
        return converted

    def regularizer(self, value: Any, where: str) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise TypeError(f"a regularizer must be an object (got {brief(value)})")
        kind, config = value.get("class_name"), value.get("config") or {}
        if not isinstance(config, dict):
            raise TypeError(f"the regularizer's config must be an object (got {brief(config)})")
        if kind not in ("L1", "L2", "L1L2"):
            self.problems.append(f"{where}: the regularizer {brief(kind)} is not supported")
            return _SKIP
        return {"l1": config.get("l1", 0.0), "l2": config.get("l2", 0.0)}

    # -- result ------------------------------------------------------------------------

    def check_ops(self, project: Project) -> None:
        """Refuse a Keras op that became a merge nodenet cannot compute (operands of shapes
        the merge does not accept), rather than write an invalid project."""
        if not self.ops:
            return
        from nodenet.graph.validation import analyze

        for problem in analyze(project).problems:
            if problem.node in self.ops:
                op = self.ops[problem.node]
                self.problems.append(f"layer {problem.node!r} (ops.{op}): {problem.message}")
        self.fail_on_problems()

    def fail_on_problems(self) -> None:
        message = refusal(self.missing, self.problems)
        if message:
            raise NodenetError(message)

    def project(self) -> Project:
        taken = {n.id for n in self.nodes}
        for output_id, source in self.outputs:
            node_id = output_id
            while node_id in taken:
                node_id += "_output"
            taken.add(node_id)
            self.nodes.append(Node(node_id, "Output", self.heads.get(output_id, {})))
            src, port = self.resolve((source, self.output_ports.get(output_id, 0)))
            self.edges.append(Edge(src, node_id, 0, port))
        project = Project(self.name, self.nodes, self.edges, self.training)
        layout(project)
        return project

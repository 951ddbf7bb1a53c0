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

Everything nodenet cannot represent is reported, all at once, in one
:class:`~nodenet.errors.NodenetError`, short whatever the model's size
(:mod:`nodenet.export.keras_refusal`): layer classes and ops it lacks (grouped
by class, with counts), settings it does not support (``kernel_constraint``,
``stateful=True``, a loss ``from_logits=True``, a schedule it lacks, ...), shared
layers and nested models. Nothing is silently dropped, except metrics nodenet
does not compute.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from nodenet.engine.catalog import LAYERS, Layer
from nodenet.engine.optimizers import OPTIMIZERS
from nodenet.engine.params import Int, NestedBlock, Param, Regularizer
from nodenet.engine.schedules import SCHEDULES, check_schedule
from nodenet.errors import NodenetError, ProjectFileError, brief, shorten
from nodenet.export.keras_calls import MERGE_OPS, call_inputs, is_op, op_name, snake
from nodenet.export.keras_refusal import refusal
from nodenet.graph.layout import layered_layout
from nodenet.graph.project import (
    DEFAULT_TRAINING,
    MAX_DEPTH,
    Edge,
    Node,
    Project,
    _check_depth,
    parse_json,
    read_bounded,
)

MAX_CONFIG_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024  # a .keras member is inflated this much at a time
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
_NEUTRAL = (None, False, "channels_last", 1, "auto", {}, [])  # defaults of unsupported settings
_INITIALIZERS = {
    "GlorotUniform": "glorot_uniform",
    "GlorotNormal": "glorot_normal",
    "HeUniform": "he_uniform",
    "HeNormal": "he_normal",
    "LecunUniform": "lecun_uniform",
    "LecunNormal": "lecun_normal",
    "Zeros": "zeros",
    "Ones": "ones",
    "Orthogonal": "orthogonal",
}
_LOSSES = {
    "categorical_crossentropy": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "binary_crossentropy": "binary_crossentropy",
    "mean_squared_error": "mean_squared_error",
    "mse": "mean_squared_error",
    "mean_absolute_error": "mean_absolute_error",
    "mae": "mean_absolute_error",
    "huber": "huber",
    "huber_loss": "huber",
}
_METRICS = {
    "accuracy": "accuracy",
    "acc": "accuracy",
    "categorical_accuracy": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "binary_accuracy": "accuracy",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "mse": "mse",
    "mean_squared_error": "mse",
    "precision": "precision",
    "recall": "recall",
    "auc": "auc",
}


def import_keras(path: str | os.PathLike) -> Project:
    """A project from a ``model.to_json()`` file or a ``.keras`` archive.

    Raises :class:`ProjectFileError` when the file cannot be read and
    :class:`NodenetError` listing whatever nodenet cannot represent.
    """
    path = Path(path)
    name = shorten(str(path))
    try:
        if path.is_file() and zipfile.is_zipfile(path):
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
        return import_keras_config(config, default_name=path.stem)
    except NodenetError as err:
        raise type(err)(f"{name}: {err}") from None


def _read_member(path: Path, member: str, limit: int) -> bytes:
    """A zip member's bytes, inflated in chunks and refused past ``limit`` bytes, whatever
    size the archive claims for it (a lying header inflates no more than ``limit + 1``)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
        if info.file_size > limit:
            raise ProjectFileError(
                f"{shorten(str(path))}: its {member} is larger than {limit // 2**20} MiB"
            )
        chunks, total = [], 0
        with archive.open(info) as f:
            while chunk := f.read(CHUNK_BYTES):
                total += len(chunk)
                if total > limit:
                    raise ProjectFileError(
                        f"{shorten(str(path))}: its {member} inflates past {limit // 2**20} MiB"
                    )
                chunks.append(chunk)
    return b"".join(chunks)


def import_keras_config(config: dict, default_name: str = "imported") -> Project:
    """A project from a parsed Keras model config (Sequential or functional).

    Raises :class:`NodenetError` listing every layer class, setting, shared
    layer or loss nodenet cannot represent.
    """
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
    return project


def _checked(project: Project) -> Project:
    """``project`` if the loader would open what it saves; otherwise a clear refusal."""
    try:
        Project.from_json(project.to_json(), "the imported project")
    except ProjectFileError as err:
        raise ProjectFileError(f"the model cannot become a nodenet project: {err}") from None
    return project


def _why(err: BaseException) -> str:
    return shorten(f"{type(err).__name__}: {err}", 120)


def _layer_name(layer: Any, index: int) -> str:
    """A layer's name for messages, whatever its config holds."""
    if isinstance(layer, dict):
        config = layer.get("config")
        name = layer.get("name") or (config.get("name") if isinstance(config, dict) else None)
        if isinstance(name, str):
            return repr(shorten(name))
    return f"#{index}"


def _list_field(body: dict, key: str) -> list:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise ProjectFileError(f"{key} must be a list (got {brief(value)})")
    return value


class _Reader:
    """Turns Keras layer configs into nodes and edges, collecting every problem."""

    def __init__(self, name: str):
        self.name = name
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.outputs: list[tuple[str, str]] = []  # (Output id, source node id)
        self.problems: list[str] = []
        self.missing: list[tuple[str, str]] = []  # (class, layer name)
        self.ops: dict[str, str] = {}  # node id -> the Keras op it came from
        self.training = json.loads(json.dumps(DEFAULT_TRAINING))

    # -- models ------------------------------------------------------------------------

    def sequential(self, body: dict) -> None:
        previous = None
        for index, layer in enumerate(_list_field(body, "layers")):
            try:
                if not isinstance(layer, dict):
                    raise TypeError(f"a layer must be an object (got {brief(layer)})")
                if index == 0 and layer.get("class_name") != "InputLayer":
                    shape = _first_shape(layer, body)
                    if shape is None:
                        self.problems.append("the Sequential model has no input shape")
                        return
                    previous = self.add_input("input", shape, "float32")
                node_id = self.add_layer(layer, [previous] if previous else [])
            except _MALFORMED as err:
                self.malformed(layer, index, err)
                continue
            previous = node_id or previous
        if previous is not None:
            self.outputs.append(("output", previous))

    def functional(self, body: dict) -> None:
        for index, layer in enumerate(_list_field(body, "layers")):
            try:
                self.functional_layer(layer)
            except _MALFORMED as err:
                self.malformed(layer, index, err)
        try:
            self.output_layers(body.get("output_layers"))
        except _MALFORMED as err:
            self.problems.append(f"output_layers: malformed ({_why(err)})")

    def functional_layer(self, layer: Any) -> None:
        if not isinstance(layer, dict):
            raise TypeError(f"a layer must be an object (got {brief(layer)})")
        config = layer.get("config") or {}
        name = layer.get("name") or (config.get("name") if isinstance(config, dict) else None)
        _text(name, "name")
        inbound = layer.get("inbound_nodes") or []
        if not isinstance(inbound, list):
            raise TypeError(f"inbound_nodes must be a list (got {brief(inbound)})")
        if len(inbound) > 1:
            self.problems.append(f"layer {name!r} is shared ({len(inbound)} calls)")
        op = is_op(layer)
        if self.missing_op(layer, config, name, op):
            return
        sources, constants, keywords = call_inputs(inbound[0], op) if inbound else ([], 0, [])
        for source, node_index in sources:
            if node_index:
                self.problems.append(f"layer {name!r} reads call {brief(node_index)} of {source!r}")
        if constants:
            self.problems.append(f"layer {name!r} combines a tensor with a constant")
        for keyword in keywords:
            self.problems.append(f"layer {name!r} takes a tensor as {shorten(keyword)}=")
        node_id = self.add_layer(layer, [s for s, _ in sources], name)
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

    def malformed(self, layer: Any, index: int, err: BaseException) -> None:
        self.problems.append(f"layer {_layer_name(layer, index)}: malformed config ({_why(err)})")

    # -- layers ------------------------------------------------------------------------

    def add_input(self, node_id: str, shape: list, dtype: str) -> str:
        params: dict[str, Any] = {"shape": list(shape)}
        if dtype in ("int32", "int64"):
            params["dtype"] = "int32"
        self.nodes.append(Node(node_id, "Input", params))
        return node_id

    def add_layer(self, layer: dict, sources: list[str], name: str | None = None) -> str | None:
        kind, config = _text(layer.get("class_name"), "class_name"), layer.get("config") or {}
        if not isinstance(config, dict):
            raise TypeError(f"config must be an object (got {brief(config)})")
        name = _text(name or config.get("name") or kind.lower(), "name")
        if kind == "InputLayer":
            batch_shape = config.get("batch_shape") or config.get("batch_input_shape")
            shape = _shape(batch_shape, "batch_shape")
            dtype = config.get("dtype", "float32")
            return self.add_input(name, shape, dtype if isinstance(dtype, str) else "float32")
        if kind in ("Functional", "Sequential", "Model"):
            self.problems.append(f"layer {name!r} is a nested model")
            return None
        if kind not in LAYERS or kind in ("Input", "Output"):
            self.missing.append((kind, name))
            return None
        params = self.params(LAYERS.get(kind), config, name)
        self.nodes.append(Node(name, kind, params))
        self.edges += [Edge(s, name, port) for port, s in enumerate(sources)]
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
        kind, config = value.get("class_name"), value.get("config") or {}
        if not isinstance(config, dict):
            raise TypeError(f"{spec.name}.config must be an object (got {brief(config)})")
        name = _INITIALIZERS.get(kind) if isinstance(kind, str) else None
        if kind == "RandomUniform" and (config.get("minval"), config.get("maxval")) == (
            -0.05,
            0.05,
        ):
            name = "uniform" if spec.default == "uniform" else "random_uniform"
        elif kind == "RandomNormal" and (config.get("mean"), config.get("stddev")) == (0.0, 0.05):
            name = "random_normal"
        elif kind == "Orthogonal" and config.get("gain", 1.0) != 1.0:
            name = None
        if name is None:
            self.problems.append(f"{where}: {spec.name}={_short(value)} is not supported")
            return _SKIP
        return name

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

    # -- compile settings --------------------------------------------------------------

    def compile(self, compile_config: dict) -> None:
        self.heads = {output_id: {} for output_id, _ in self.outputs}
        for key, field, convert in (
            ("loss", "loss", self.loss),
            ("loss_weights", "loss_weight", float),
            ("metrics", "metrics", self.metrics),
        ):
            for output_id, value in self.per_output(compile_config.get(key)).items():
                converted = convert(value)
                if converted is not _SKIP:
                    self.heads[output_id][field] = converted
        optimizer = compile_config.get("optimizer")
        if optimizer:
            self.optimizer(optimizer)

    def per_output(self, value: Any) -> dict[str, Any]:
        """A compile setting given once, per output (dict) or as a list, by Output id.

        A dict is keyed by output name: the model's output key or its output layer's name.
        """
        ids = [output_id for output_id, _ in self.outputs]
        if value is None:
            return {}
        if isinstance(value, dict) and not {"class_name", "config"} <= set(value):
            by_name = {source: output_id for output_id, source in self.outputs}
            by_name.update((output_id, output_id) for output_id in ids)
            unknown = [k for k in value if k not in by_name]
            if unknown:
                self.problems.append(
                    f"compile_config names {brief(unknown[0])}, which is not an output "
                    f"(outputs: {shorten(', '.join(by_name), 120)})"
                )
            return {by_name[k]: v for k, v in value.items() if k in by_name}
        if isinstance(value, list) and len(value) == len(ids) and len(ids) > 1:
            return dict(zip(ids, value, strict=True))
        return dict.fromkeys(ids, value)

    def loss(self, value: Any) -> Any:
        name = value.get("class_name") if isinstance(value, dict) else value
        key = snake(name) if isinstance(name, str) else None
        if key not in _LOSSES:
            self.problems.append(f"the loss {brief(name)} is not one nodenet has")
            return _SKIP
        config = (value.get("config") or {}) if isinstance(value, dict) else {}
        if not isinstance(config, dict):
            raise TypeError(f"the loss's config must be an object (got {brief(config)})")
        if config.get("from_logits"):
            self.problems.append(
                f"the loss {name} has from_logits=True, but nodenet's losses take "
                "probabilities: give the output layer a softmax (or sigmoid) activation "
                "and compile with from_logits=False"
            )
            return _SKIP
        if config.get("label_smoothing"):
            smoothing = brief(config["label_smoothing"])
            self.problems.append(f"the loss {name}: label_smoothing={smoothing} is not supported")
            return _SKIP
        return _LOSSES[key]

    def metrics(self, value: Any) -> Any:
        names = value if isinstance(value, list) else [value]
        found = []
        for item in names:
            name = item.get("class_name") if isinstance(item, dict) else item
            metric = _METRICS.get(snake(name)) if isinstance(name, str) else None
            if metric and metric not in found:
                found.append(metric)
        return found

    def optimizer(self, value: Any) -> None:
        kind = value.get("class_name") if isinstance(value, dict) else value
        name = kind.lower() if isinstance(kind, str) else ""
        if name not in OPTIMIZERS:
            self.problems.append(f"the optimizer {brief(kind)} is not one nodenet has")
            return
        config = value.get("config", {}) if isinstance(value, dict) else {}
        if not isinstance(config, dict):
            raise TypeError(f"the optimizer's config must be an object (got {brief(config)})")
        known = {p.name for p in OPTIMIZERS.get(name).PARAMS}
        settings = {k: v for k, v in config.items() if k in known and v is not None}
        if isinstance(settings.get("learning_rate"), dict):
            schedule = self.schedule(settings["learning_rate"])
            if schedule is _SKIP:
                return
            settings["learning_rate"] = schedule
        self.training["optimizer"] = {"name": name, **settings}

    def schedule(self, value: dict) -> Any:
        """A ``keras.optimizers.schedules`` object as nodenet's schedule of the same name,
        or _SKIP after a problem (never a silent default rate)."""
        kind, config = value.get("class_name"), value.get("config") or {}
        if not isinstance(config, dict):
            raise TypeError(f"the schedule's config must be an object (got {brief(config)})")
        if kind not in SCHEDULES:
            self.problems.append(
                f"the learning-rate schedule {brief(kind)} is not one nodenet has "
                f"(it has: {', '.join(SCHEDULES)})"
            )
            return _SKIP
        known = {p.name for p in SCHEDULES.get(kind).PARAMS}
        extra = [k for k in config if k not in known and k != "name"]
        settings, errors = check_schedule(
            {"schedule": kind, **{k: v for k, v in config.items() if k in known}},
            "learning_rate",
        )
        problems = [f"{k}={brief(config[k])} is not supported" for k in extra]
        problems += [str(err) for err in errors]
        if problems:
            self.problems.append(f"the learning-rate schedule {kind}: {'; '.join(problems)}")
            return _SKIP
        return settings

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
            self.edges.append(Edge(source, node_id, 0))
        project = Project(self.name, self.nodes, self.edges, self.training)
        layout(project)
        return project


_SKIP = object()


def _neutral(value: Any) -> bool:
    return any(value == n and type(value) is type(n) for n in _NEUTRAL)


def _short(value: Any) -> str:
    return brief(value.get("class_name", "an object") if isinstance(value, dict) else value)


def _text(value: Any, field: str) -> str:
    """``value`` if it is a string, else a TypeError naming ``field``."""
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a string (got {brief(value)})")
    return value


def _ref(ref: Any) -> str:
    """The layer name of an output reference ``[name, node_index, tensor_index]``."""
    if not isinstance(ref, list | tuple) or not ref or not isinstance(ref[0], str):
        raise TypeError(f"a layer reference must be [name, index, index] (got {brief(ref)})")
    return ref[0]


def _shape(batch_shape: Any, field: str) -> list:
    """The shape without its batch dimension, from a ``[None, d1, d2, ...]`` batch shape."""
    if not isinstance(batch_shape, list | tuple) or not 2 <= len(batch_shape) <= MAX_DEPTH:
        raise TypeError(f"{field} must be a list [batch, dims...] (got {brief(batch_shape)})")
    return list(batch_shape[1:])


def _first_shape(layer: dict, body: dict) -> list | None:
    """The input shape (no batch) a Sequential's first layer was built with."""
    config = layer.get("config") or {}
    for shape in (
        config.get("batch_input_shape"),
        config.get("batch_shape"),
        (layer.get("build_config") or {}).get("input_shape"),
        body.get("build_input_shape"),
    ):
        if shape:
            return _shape(shape, "input shape")
    return None


def layout(project: Project) -> None:
    """Place the nodes as the editor's auto-layout does (:func:`layered_layout`)."""
    positions = layered_layout(project)
    for node in project.nodes:
        node.pos = list(positions[node.id])

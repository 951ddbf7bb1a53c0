"""Import a Keras model config (``model.to_json()``, or a ``.keras`` archive) as a project.

Sequential and functional models are read from their JSON config only: the
``.keras`` zip is opened with :mod:`zipfile` and only ``config.json`` is read;
nothing is unpickled or executed. Each Keras layer becomes the block of the
same name (``InputLayer`` an Input), each model output an Output node (named
by the output's key, with the loss, loss weight and metrics of
``compile_config`` when the archive has one), and the nodes are laid out in
layers from left to right.

Everything nodenet cannot represent is reported, all at once, in one
:class:`~nodenet.errors.NodenetError`: layer classes it lacks (by class and
layer name), settings it does not support (``groups=2``, ``stateful=True``,
a custom initializer, ...), shared layers and nested models. Nothing is
silently dropped, except metrics nodenet does not compute.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from nodenet.engine.catalog import LAYERS, Layer
from nodenet.engine.optimizers import OPTIMIZERS
from nodenet.engine.params import Int, Param, Regularizer
from nodenet.errors import NodenetError, ParamError, ProjectFileError
from nodenet.project import DEFAULT_TRAINING, Edge, Node, Project

MAX_CONFIG_BYTES = 64 * 1024 * 1024
COLUMN, ROW = 240, 120  # layout spacing, as the sample projects use

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
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                info = archive.getinfo("config.json")
                if info.file_size > MAX_CONFIG_BYTES:
                    raise ProjectFileError(f"{path}: its config.json is too large")
                raw = archive.read(info)
        else:
            if path.stat().st_size > MAX_CONFIG_BYTES:
                raise ProjectFileError(f"{path}: too large for a Keras model config")
            raw = path.read_bytes()
    except KeyError:
        raise ProjectFileError(f"{path}: a .keras archive without config.json") from None
    except (OSError, zipfile.BadZipFile) as err:
        raise ProjectFileError(f"{path}: cannot be read ({err})") from None
    try:
        config = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ProjectFileError(f"{path}: not a JSON Keras model config ({err})") from None
    try:
        return import_keras_config(config, default_name=path.stem)
    except NodenetError as err:
        raise type(err)(f"{path}: {err}") from None


def import_keras_config(config: dict, default_name: str = "imported") -> Project:
    """A project from a parsed Keras model config (Sequential or functional).

    Raises :class:`NodenetError` listing every layer class, setting, shared
    layer or loss nodenet cannot represent.
    """
    if isinstance(config, str):
        config = json.loads(config)
    if not isinstance(config, dict) or "config" not in config:
        raise ProjectFileError("not a Keras model config (no class_name and config)")
    kind, body = config.get("class_name"), config["config"]
    reader = _Reader(body.get("name") or default_name)
    if kind == "Sequential":
        reader.sequential(body)
    elif kind in ("Functional", "Model"):
        reader.functional(body)
    else:
        raise ProjectFileError(f"a {kind!r} config is not a Keras Sequential or functional model")
    reader.compile(config.get("compile_config") or {})
    reader.fail_on_problems()
    return reader.project()


class _Reader:
    """Turns Keras layer configs into nodes and edges, collecting every problem."""

    def __init__(self, name: str):
        self.name = name
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.outputs: list[tuple[str, str]] = []  # (Output id, source node id)
        self.problems: list[str] = []
        self.missing: list[str] = []
        self.training = json.loads(json.dumps(DEFAULT_TRAINING))

    # -- models ------------------------------------------------------------------------

    def sequential(self, body: dict) -> None:
        previous = None
        for index, layer in enumerate(body.get("layers", [])):
            if index == 0 and layer.get("class_name") != "InputLayer":
                shape = _first_shape(layer, body)
                if shape is None:
                    self.problems.append("the Sequential model has no input shape")
                    return
                previous = self.add_input("input", shape, "float32")
            node_id = self.add_layer(layer, [previous] if previous else [])
            previous = node_id or previous
        if previous is not None:
            self.outputs.append(("output", previous))

    def functional(self, body: dict) -> None:
        for layer in body.get("layers", []):
            name = layer.get("name") or layer.get("config", {}).get("name")
            inbound = layer.get("inbound_nodes") or []
            if len(inbound) > 1:
                self.problems.append(f"layer {name!r} is shared ({len(inbound)} calls)")
            sources = _sources(inbound[0]) if inbound else []
            for source, node_index in sources:
                if node_index:
                    self.problems.append(f"layer {name!r} reads call {node_index} of {source!r}")
            self.add_layer(layer, [s for s, _ in sources], name)
        outputs = body.get("output_layers")
        if isinstance(outputs, dict):
            named = list(outputs.items())
        else:
            refs = [outputs] if outputs and isinstance(outputs[0], str) else outputs or []
            named = [("output" if len(refs) == 1 else f"{r[0]}_output", r) for r in refs]
        for output_id, ref in named:
            self.outputs.append((output_id, ref[0]))

    # -- layers ------------------------------------------------------------------------

    def add_input(self, node_id: str, shape: list, dtype: str) -> str:
        params: dict[str, Any] = {"shape": list(shape)}
        if dtype in ("int32", "int64"):
            params["dtype"] = "int32"
        self.nodes.append(Node(node_id, "Input", params))
        return node_id

    def add_layer(self, layer: dict, sources: list[str], name: str | None = None) -> str | None:
        kind, config = layer.get("class_name"), layer.get("config") or {}
        name = name or config.get("name") or kind.lower()
        if kind == "InputLayer":
            shape = (config.get("batch_shape") or config.get("batch_input_shape"))[1:]
            return self.add_input(name, shape, config.get("dtype", "float32"))
        if kind in ("Functional", "Sequential", "Model"):
            self.problems.append(f"layer {name!r} is a nested model")
            return None
        if kind not in LAYERS or kind in ("Input", "Output"):
            self.missing.append(f"{kind} ({name})")
            return None
        params = self.params(LAYERS.get(kind), config, name)
        self.nodes.append(Node(name, kind, params))
        self.edges += [Edge(s, name, port) for port, s in enumerate(sources)]
        return name

    def params(self, cls: type[Layer], config: dict, name: str) -> dict:
        if cls.TYPE == "Bidirectional":
            return self.bidirectional(config, name)
        specs = {p.name: p for p in cls.PARAMS}
        for key, value in config.items():
            if key not in specs and key not in _IGNORED and not _neutral(value):
                self.problems.append(f"{cls.TYPE} {name!r}: {key}={value!r} is not supported")
        params = {}
        for key, spec in specs.items():
            if key in config:
                value = self.value(spec, config[key], f"{cls.TYPE} {name!r}")
                if value is not _SKIP and value != spec.default:
                    params[key] = value
        pool = params.get("pool_size", specs["pool_size"].default) if "pool_size" in specs else 0
        if params.get("strides") == pool:  # Keras writes a pool's default strides out
            del params["strides"]
        try:
            cls(params, name)
        except ParamError as err:
            self.problems.append(f"{cls.TYPE} {name!r}: {err}")
        return params

    def bidirectional(self, config: dict, name: str) -> dict:
        inner = config.get("layer") or {}
        kind = inner.get("class_name")
        if kind not in ("SimpleRNN", "LSTM", "GRU"):
            self.missing.append(f"Bidirectional({kind}) ({name})")
            return {}
        if config.get("merge_mode") is None:
            self.problems.append(f"Bidirectional {name!r}: merge_mode=None is not supported")
        params = self.params(LAYERS.get(kind), inner.get("config") or {}, name)
        params.pop("go_backwards", None)
        params["layer"] = kind
        if config.get("merge_mode", "concat") != "concat":
            params["merge_mode"] = config["merge_mode"]
        return params

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
        name = _INITIALIZERS.get(kind)
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
        kind, config = value.get("class_name"), value.get("config") or {}
        if kind not in ("L1", "L2", "L1L2"):
            self.problems.append(f"{where}: the regularizer {kind} is not supported")
            return _SKIP
        return {"l1": float(config.get("l1", 0.0)), "l2": float(config.get("l2", 0.0))}

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
        """A compile setting given once, per output (dict) or as a list, by Output id."""
        ids = [output_id for output_id, _ in self.outputs]
        if value is None:
            return {}
        if isinstance(value, dict) and not {"class_name", "config"} <= set(value):
            return {k: v for k, v in value.items() if k in ids}
        if isinstance(value, list) and len(value) == len(ids) and len(ids) > 1:
            return dict(zip(ids, value, strict=True))
        return dict.fromkeys(ids, value)

    def loss(self, value: Any) -> Any:
        name = value.get("class_name") if isinstance(value, dict) else value
        key = _snake(name) if isinstance(name, str) else None
        if key not in _LOSSES:
            self.problems.append(f"the loss {name!r} is not one nodenet has")
            return _SKIP
        return _LOSSES[key]

    def metrics(self, value: Any) -> Any:
        names = value if isinstance(value, list) else [value]
        found = []
        for item in names:
            name = item.get("class_name") if isinstance(item, dict) else item
            metric = _METRICS.get(_snake(name)) if isinstance(name, str) else None
            if metric and metric not in found:
                found.append(metric)
        return found

    def optimizer(self, value: Any) -> None:
        kind = value.get("class_name") if isinstance(value, dict) else value
        name = str(kind).lower()
        if name not in OPTIMIZERS:
            self.problems.append(f"the optimizer {kind!r} is not one nodenet has")
            return
        config = value.get("config", {}) if isinstance(value, dict) else {}
        known = {p.name for p in OPTIMIZERS.get(name).PARAMS}
        settings = {k: v for k, v in config.items() if k in known and v is not None}
        if isinstance(settings.get("learning_rate"), dict):
            settings.pop("learning_rate")  # a schedule object: left at nodenet's default rate
        self.training["optimizer"] = {"name": name, **settings}

    # -- result ------------------------------------------------------------------------

    def fail_on_problems(self) -> None:
        lines = []
        if self.missing:
            lines.append("it uses blocks nodenet lacks: " + ", ".join(self.missing))
        lines += self.problems
        if lines:
            raise NodenetError("; ".join(lines))

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
    return value.get("class_name", "an object") if isinstance(value, dict) else repr(value)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


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
            return list(shape)[1:]
    return None


def _sources(call: Any) -> list[tuple[str, int]]:
    """(layer name, call index) of each tensor a layer call reads, in order."""
    if isinstance(call, dict):  # Keras 3: {"args": [tensor or [tensors]], "kwargs": {}}
        args = call.get("args") or []
        tensors = args[0] if args and isinstance(args[0], list) else args[:1]
        refs = []
        for tensor in tensors:
            history = (tensor.get("config") or {}).get("keras_history") or []
            if history:
                refs.append((history[0], history[1]))
        return refs
    return [(ref[0], ref[1]) for ref in call]  # Keras 2: [[name, node, tensor, kwargs], ...]


def layout(project: Project) -> None:
    """Place nodes in columns by depth from the Inputs, rows in file order."""
    depth: dict[str, int] = {}
    for node in project.nodes:
        sources = [e.src for e in project.incoming(node.id)]
        depth[node.id] = 1 + max((depth.get(s, 0) for s in sources), default=-1)
    rows: dict[int, int] = {}
    for node in project.nodes:
        column = depth[node.id]
        node.pos = [float(column * COLUMN), float(rows.get(column, 0) * ROW)]
        rows[column] = rows.get(column, 0) + 1

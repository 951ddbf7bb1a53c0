"""Export a project to a Keras 3 module: the functional graph, compile, fit and the weights.

The module reads like hand-written Keras: ``keras.Input`` per Input node, one
layer call per block in topological order (variables and layer names from the
node ids; a block with several outputs binds one variable each,
``lstm, lstm_h, lstm_c = layers.LSTM(..., return_state=True)(x)``),
``keras.Model(inputs=[...], outputs={output id: tensor})``, then
``compile`` with the project's optimizer (and schedule), a loss, loss weight
and metrics per output, and a ``main`` that loads the data and calls ``fit``
with the project's settings and early stopping. Exported with weights, the
arrays go to ``<module>_weights.npz`` (Keras layouts, keys ``layer/weight`` in
Keras order) and ``load_weights`` puts them in with ``layer.set_weights``.

A project with groups gets a builder per definition and a nested functional model per
instance (:mod:`nodenet.export.keras_group_export`), weights keyed ``b1/d1/kernel``.
"""

from __future__ import annotations

from nodenet.export._code import (
    block,
    doc_text,
    import_block,
    keras_class,
    py_arguments,
    py_list,
    py_str,
    py_value,
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
from nodenet.export._data_code import describe_data, holds_validation, load_data_source
from nodenet.export.blocks import exporter
from nodenet.export.blocks.preprocessing import KERAS_ADAPT, adapting
from nodenet.export.blocks.text_vectorization import state_as_params
from nodenet.export.keras_group_export import LOAD_NESTED_WEIGHTS, NESTED_FUNCTIONS, build_grouped
from nodenet.export.snippets import Source, keras_loss
from nodenet.graph.project import Project
from nodenet.keras_backend import PREFERENCE, backend_choice_source

OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "Nadam",
}
_FUNCTIONS = (
    "build_model",
    "compile_model",
    "load_weights",
    "load_data",
    "main",
    "prepare",
    "class_weights",
    "adapt_normalization",
    *NESTED_FUNCTIONS,
)
_CONSTANTS = ("SEED", "EPOCHS", "BATCH_SIZE", "VALIDATION_SPLIT", "WEIGHTS", "DATA", "CLASS_WEIGHT")


def export_keras(project: Project, weights: Weights | None = None) -> ExportedCode:
    """A Keras 3 module for ``project``; with ``weights`` (``node/name`` -> Keras-layout
    array, as :meth:`nodenet.engine.model.Model.get_weights` gives) also their ``.npz``.

    Raises :class:`nodenet.errors.ValidationError` for an invalid project and
    :class:`nodenet.errors.WeightsError` for weights that do not fit it.
    """
    project, weights = state_as_params(project, weights)  # a learned vocabulary
    graph = read_graph(project, reserved=(*_FUNCTIONS, *_CONSTANTS))
    grouped = split_weights(graph, weights) if weights is not None else None
    parts = [
        _constants(graph, grouped is not None),
        _build_model(graph),
        _compile_model(graph),
    ]
    if grouped is not None:
        parts.append(_LOAD_WEIGHTS if graph.groups is None else LOAD_NESTED_WEIGHTS)
    elif adapting(graph.layers.values()):
        parts.append(KERAS_ADAPT)
    parts.append(block(load_data_source(graph)))
    if class_weighted(graph):
        parts.append(_CLASS_WEIGHTS)
    parts.append(_main(graph, grouped is not None))
    body = "\n\n\n".join(parts)
    source = f"{_docstring(graph, grouped is not None)}\n\n{_imports(body)}\n\n{body}\n"
    npz = None
    if grouped is not None:
        npz = npz_bytes(
            {
                f"{weights_path(graph, i)}/{name}": array
                for i in graph.order
                for name, array in grouped[i].items()
            }
        )
    return ExportedCode(source, npz)


def _imports(body: str) -> str:
    """The imports ``body`` needs, the backend choice between the standard library's and
    Keras's: Keras reads KERAS_BACKEND once, when it is imported."""
    choice = backend_choice_source()
    stdlib, third_party = import_block(f"{body}\n{choice}").split("\n\n")
    lines = [*stdlib.splitlines(), "import importlib.util"]
    plain = sorted((line for line in lines if line.startswith("import ")), key=_module)
    froms = [line for line in lines if line.startswith("from ")]
    return "\n".join([*plain, *froms]) + f"\n\n{choice}\n\n{third_party}"


def _module(import_line: str) -> str:
    return import_line.split()[1]


def _docstring(graph: Graph, with_weights: bool) -> str:
    lines = [
        f'"""{banner(graph.project, "a Keras 3 model")}',
        "",
        "build_model() is the nodenet graph as a functional model, compile_model() its",
        "loss, metrics and optimizer; running this file trains it on the project's data.",
        "It runs on any Keras 3 backend: the one KERAS_BACKEND names, else the first",
        f"installed of {', '.join(PREFERENCE)} (main() prints which).",
    ]
    if with_weights:
        lines += [
            "The trained weights nodenet exported sit beside this file in",
            "<this file's name>_weights.npz; load_weights() puts them in the model.",
        ]
    return "\n".join([*lines, '"""'])


def _constants(graph: Graph, with_weights: bool) -> str:
    t = graph.training
    lines = [
        f"SEED = {py_value(t['seed'])}",
        f"EPOCHS = {py_value(t['epochs'])}",
        f"BATCH_SIZE = {py_value(t['batch_size'])}",
        f"VALIDATION_SPLIT = {py_value(t['validation_split'])}",
    ]
    if not describe_data(graph)["sklearn"]:  # the .npz loader names the nodes
        lines += [f"INPUTS = {py_value(graph.inputs)}", f"OUTPUTS = {py_value(graph.outputs)}"]
    if class_weighted(graph):
        table = {int(k): float(v) for k, v in t["class_weight"].items()}
        lines.append(f"CLASS_WEIGHT = {py_value(table)}")
    if with_weights:
        lines.append('WEIGHTS = Path(__file__).with_name(Path(__file__).stem + "_weights.npz")')
    return block(lines)


def weights_path(graph: Graph, node_id: str) -> str:
    """The layer names from the model down to a block: ``dense``, ``b1/d1`` in a group."""
    if graph.groups is None or "/" not in node_id:
        return _layer_name(graph, node_id)
    top = node_id.split("/", 1)[0]
    return graph.groups.keras_path(node_id, _layer_name(graph, top))


def _layer_name(graph: Graph, node_id: str) -> str:
    """The Keras layer name of a node: its id, or its variable name when the id holds a
    character Keras refuses in a name ("/") or its torch backend in a module name ("."),
    as the ids of an imported nested model's blocks do (``encoder.dense``)."""
    return graph.names[node_id] if "/" in node_id or "." in node_id else node_id


def _build_model(graph: Graph) -> str:
    if graph.groups is not None:
        return build_grouped(graph)
    lines, frozen = [], set(graph.frozen())
    for node_id in graph.order:
        layer = graph.layers[node_id]
        if layer.TYPE == "Output":
            continue
        if layer.TYPE == "Input":
            lines.append(input_line(graph, node_id))
            continue
        name = _layer_name(graph, node_id)
        if getattr(exporter(layer), "KERAS_COMMENT", None):  # what the layer needs to run
            lines.append(f"# {exporter(layer).KERAS_COMMENT}")
        lines.append(layer_line(graph, node_id, name, graph.args(node_id), node_id in frozen))
    return model_function(graph, lines)


def model_function(graph: Graph, lines: list[str]) -> str:
    inputs = ", ".join(graph.names[i] for i in graph.inputs)
    outputs = ", ".join(f"{py_str(o)}: {graph.args(o)[0]}" for o in graph.outputs)
    lines.append(
        f"return keras.Model(inputs=[{inputs}], outputs={{{outputs}}}, "
        f"name={py_str(graph.project.name)})"
    )
    doc = f'"""The nodenet graph {doc_text(graph.project.name)} as a Keras functional model."""'
    return "def build_model() -> keras.Model:\n" + block([doc, *lines], 4)


def input_line(graph: Graph, node_id: str) -> str:
    """``x = keras.Input(shape=..., name=...)`` for an Input node."""
    _, args = exporter(graph.layers[node_id]).keras_layer()
    shape = Source(py_value(list(args.pop("shape"))))
    options = {"shape": shape, **args, "name": _layer_name(graph, node_id)}
    return f"{graph.names[node_id]} = keras.Input({py_arguments([], options)})"


def layer_line(
    graph: Graph,
    node_id: str,
    name: str,
    tensors: list[str],
    frozen: bool,
    targets: str | None = None,
) -> str:
    """``a = layers.Dense(..., name=...)(x)`` (``a, a_h, a_c = ...`` for several outputs)."""
    layer = graph.layers[node_id]
    export = exporter(layer)
    shapes = graph.input_shapes(node_id)
    class_name, args = export.keras_layer_for(shapes)
    positional = [args.pop(k) for k in export.KERAS_REQUIRED if k in args]
    if frozen:  # Keras's trainable=False: no update, BatchNormalization in inference
        args["trainable"] = False
    call = f"{keras_class(class_name)}({py_arguments(positional, {**args, 'name': name})})"
    targets = targets or graph.targets(node_id)
    return f"{targets} = {export.keras_value(call, tensors, shapes)}"


def _compile_model(graph: Graph) -> str:
    heads = {o: graph.layers[o].config for o in graph.outputs}
    options = {
        "optimizer": Source(_optimizer(graph.training["optimizer"])),
        "loss": {o: keras_loss(c) for o, c in heads.items()},
    }
    if any(c["loss_weight"] != 1.0 for c in heads.values()):
        options["loss_weights"] = {o: c["loss_weight"] for o, c in heads.items()}
    metrics = {o: Source(py_list(c["metrics"])) for o, c in heads.items() if c["metrics"]}
    if metrics:
        options["metrics"] = metrics
    call = ["model.compile("] + [f"    {k}={py_value(v)}," for k, v in options.items()] + [")"]
    doc = '"""The project\'s optimizer, and per output its loss, loss weight and metrics."""'
    return "def compile_model(model: keras.Model) -> None:\n" + block([doc, *call], 4)


def _known(name: str) -> str:
    """A Keras class name from nodenet's own tables, written as a name in code."""
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"{name!r} is not a Keras class name")
    return name


def _optimizer(config: dict) -> str:
    """``keras.optimizers.Adam(learning_rate=...)``: the arguments that differ from Keras's
    defaults, a schedule written in full."""
    from nodenet.engine.optimizers import OPTIMIZERS as NODENET_OPTIMIZERS
    from nodenet.engine.optimizers import check_optimizer

    values, _ = check_optimizer(config)
    name = values.pop("name")
    defaults = {p.name: p.default for p in NODENET_OPTIMIZERS.get(name).PARAMS}
    args = {}
    for key, value in values.items():
        if key == "learning_rate":
            args[key] = Source(_schedule(value)) if isinstance(value, dict) else value
        elif value != defaults[key]:
            args[key] = value
    return f"keras.optimizers.{OPTIMIZERS[name]}({py_arguments([], args)})"


def _schedule(config: dict) -> str:
    config = dict(config)
    name = config.pop("schedule")
    return f"keras.optimizers.schedules.{_known(name)}({py_arguments([], config)})"


_LOAD_WEIGHTS = '''def load_weights(model: keras.Model, path: Path) -> None:
    """Set each layer's weights from the .npz nodenet wrote (keys "layer/weight", in the
    layer's own order, Keras layouts)."""
    with np.load(path, allow_pickle=False) as arrays:
        for layer in model.layers:
            keys = [key for key in arrays.files if key.split("/", 1)[0] == layer.name]
            if keys:
                layer.set_weights([arrays[key] for key in keys])'''


def class_weighted(graph: Graph) -> bool:
    """Whether training weighs samples by class (class_weight, for one output only)."""
    return bool(graph.training["class_weight"]) and len(graph.outputs) == 1


_CLASS_WEIGHTS = '''def class_weights(target: np.ndarray) -> np.ndarray:
    """Keras's class_weight as one weight per sample, from one-hot or integer targets."""
    if target.ndim > 1 and target.shape[-1] > 1:
        labels = target.argmax(axis=-1)
    else:
        labels = target.reshape(len(target)).round()
    return np.array([CLASS_WEIGHT.get(int(c), 1.0) for c in labels], dtype=np.float32)'''


def _callbacks(graph: Graph) -> list[str]:
    t, callbacks = graph.training, []
    stop = t["early_stopping"]
    if stop:
        options = {"monitor": stop["monitor"], "patience": stop["patience"]}
        if stop["min_delta"]:
            options["min_delta"] = stop["min_delta"]
        if stop["mode"] != "auto":
            options["mode"] = stop["mode"]
        options["restore_best_weights"] = stop["restore_best"]
        callbacks.append(f"keras.callbacks.EarlyStopping({py_arguments([], options)})")
    plateau = t["reduce_lr_on_plateau"]
    if plateau:
        from nodenet.engine.schedules import REDUCE_LR_PARAMS

        defaults = {p.name: p.default for p in REDUCE_LR_PARAMS}
        options = {k: v for k, v in plateau.items() if v != defaults[k]}
        callbacks.append(f"keras.callbacks.ReduceLROnPlateau({py_arguments([], options)})")
    return callbacks


def _main(graph: Graph, with_weights: bool) -> str:
    t = graph.training
    fit = ["x", "y", "epochs=args.epochs", "batch_size=BATCH_SIZE"]
    held_out = holds_validation(graph)  # True, False, or None: known only from the data file
    if t["validation_split"] and not held_out:
        fit.append("validation_split=VALIDATION_SPLIT")
    if held_out is not False:
        fit.append('validation_data=data.get("validation")')
    fit.append(f"shuffle={py_value(bool(t['shuffle']))}")
    if class_weighted(graph):  # as sample weights: fit refuses class_weight for named outputs
        (output_id,) = graph.outputs
        key = py_str(output_id)
        fit.append(f"sample_weight={{{key}: class_weights(y[{key}])}}")
    callbacks = _callbacks(graph)
    if callbacks:
        fit.append(f"callbacks=[{', '.join(callbacks)}]")
    lines = [
        "parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])",
        'parser.add_argument("--epochs", type=int, default=EPOCHS)',
        "args = parser.parse_args()",
        'print(f"Keras {keras.__version__} on the {keras.backend.backend()} backend")',
        "keras.utils.set_random_seed(SEED)",
        "data = load_data()",
        "model = build_model()",
        "compile_model(model)",
    ]
    if with_weights:
        lines.append("load_weights(model, WEIGHTS)")
    lines += ["model.summary()", 'x, y = data["train"]']
    if not with_weights and adapting(graph.layers.values()):  # Normalization: adapt first
        split = "VALIDATION_SPLIT" if "validation_split=VALIDATION_SPLIT" in fit else "0.0"
        if split != "0.0" and held_out is None:  # Keras ignores the split given validation data
            split = f'{split} if data.get("validation") is None else 0.0'
        lines.append(f"adapt_normalization(model, x, {split})")
    lines.append("model.fit(")
    lines += [*(f"    {a}," for a in fit), ")"]
    lines += ['if "test" in data:', '    model.evaluate(*data["test"], batch_size=BATCH_SIZE)']
    doc = '"""Train as nodenet would: seed, epochs, batch size, validation, callbacks."""'
    body = "def main() -> None:\n" + block([doc, *lines], 4)
    return body + '\n\n\nif __name__ == "__main__":\n    main()'

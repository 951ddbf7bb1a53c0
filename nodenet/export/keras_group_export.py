"""The Keras export of a project with groups: a builder per definition that makes a nested
functional ``keras.Model`` (its layers named after the definition's inner ids), and one
model per instance (its own weights, named after the instance), called on the instance's
input tensors, so ``model.summary()`` shows each instance as Keras shows a nested model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nodenet.export._code import LINE, block, doc_text, docstring, identifiers, py_str
from nodenet.export._groups import Scope, layer_name, scope_vars

if TYPE_CHECKING:
    from nodenet.export._common import Graph

NESTED_FUNCTIONS = ("set_layer_weights",)

LOAD_NESTED_WEIGHTS = '''def load_weights(model: keras.Model, path: Path) -> None:
    """Set each layer's weights from the .npz nodenet wrote (keys "layer/weight", and
    "model/layer/weight" inside a nested model, in the layer's own order, Keras layouts)."""
    with np.load(path, allow_pickle=False) as arrays:
        set_layer_weights(model, arrays, "")


def set_layer_weights(model: keras.Model, arrays: np.lib.npyio.NpzFile, prefix: str) -> None:
    """The weights of ``model``'s layers, keyed under ``prefix``; nested models' in turn."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            set_layer_weights(layer, arrays, f"{prefix}{layer.name}/")
            continue
        keys = [key for key in arrays.files if key.startswith(f"{prefix}{layer.name}/")]
        if keys:
            layer.set_weights([arrays[key] for key in keys])'''


def build_grouped(graph: Graph) -> str:
    """The builders of the definitions, then ``build_model``."""
    from nodenet.export.keras import input_line, layer_line, model_function

    groups = graph.groups
    assert groups is not None
    taken = {*graph.names.values(), *(v for p in graph.ports.values() for v in p)}
    taken |= set(groups.aliases.values())
    builders = identifiers(list(groups.scopes), (*taken, "build_model", "compile_model"))
    frozen = set(graph.frozen())
    top = groups.top
    lines = []
    for node_id in top.items:
        node = top.nodes[node_id]
        if node_id in top.instances:
            outs = groups.targets[node_id]
            tensors = [graph.var(*groups.flat(top, s, p)) for s, p in top.feeds[node_id]]
            builder = builders[top.instances[node_id]]
            lines.append(_call(builder, node_id, tensors, outs, not node.trainable))
        elif node.type == "Input":
            lines.append(input_line(graph, node_id))
        elif node.type != "Output":
            from nodenet.export.keras import _layer_name

            args = [graph.var(*groups.flat(top, s, p)) for s, p in top.feeds[node_id]]
            name = _layer_name(graph, node_id)
            lines.append(layer_line(graph, node_id, name, args, node_id in frozen))
    parts = [_builder(graph, scope, builders) for scope in groups.scopes.values()]
    return "\n\n\n".join([*parts, model_function(graph, lines)])


def _call(builder: str, name: str, tensors: list[str], outs: list[str], frozen: bool) -> str:
    """``b1 = res(x, name="b1")(x)``: an instance built and called."""
    options = f"name={py_str(name)}" + (", trainable=False" if frozen else "")
    given = tensors[0] if len(tensors) == 1 else f"[{', '.join(tensors)}]"
    return f"{', '.join(outs)} = {builder}({', '.join(tensors)}, {options})({given})"


def _builder(graph: Graph, scope: Scope, builders: dict[str, str]) -> str:
    """``def res(x, name, trainable=True) -> keras.Model``: a definition as a nested model."""
    from nodenet.export.keras import layer_line

    groups = graph.groups
    assert groups is not None and scope.definition is not None
    names = scope_vars(groups, scope, graph.layers)
    lines = [f"{v} = keras.Input(shape={v}.shape[1:], dtype={v}.dtype)" for v in scope.inputs]
    for node_id in scope.items:
        node = scope.nodes[node_id]
        tensors = [names[s, p] for s, p in scope.feeds[node_id]]
        outs = [names[node_id, j] for j in range(_count(names, node_id))]
        if node_id in scope.instances:
            builder = builders[scope.instances[node_id]]
            lines.append(_call(builder, node_id, tensors, outs, not node.trainable))
        else:
            flat_id = scope.prefix + node_id
            name = layer_name(scope, node_id)
            frozen = not node.trainable
            lines.append(layer_line(graph, flat_id, name, tensors, frozen, ", ".join(outs)))
    ins = scope.inputs[0] if len(scope.inputs) == 1 else f"[{', '.join(scope.inputs)}]"
    results = [names[s, p] for s, p in scope.outputs]
    outputs = results[0] if len(results) == 1 else f"[{', '.join(results)}]"
    lines += [
        f"model = keras.Model(inputs={ins}, outputs={outputs}, name=name)",
        "if not trainable:  # frozen: every layer inside, BatchNormalization in inference",
        "    model.trainable = False",
        "return model",
    ]
    params = [f"{v}: keras.KerasTensor" for v in scope.inputs]
    params += ["name: str", "trainable: bool = True"]
    head = f"def {builders[scope.definition]}({', '.join(params)}) -> keras.Model:"
    if len(head) > LINE:  # as ruff splits a signature
        head = (
            f"def {builders[scope.definition]}(\n"
            + "".join(f"    {p},\n" for p in params)
            + ") -> keras.Model:"
        )
    doc = docstring(
        f"The group {doc_text(scope.definition)} as a nested functional model named `name`, "
        "for inputs like the tensors given.",
        4,
    )
    return "\n".join([head, *doc, block(lines, 4)])


def _count(names: dict[tuple[str, int], str], node_id: str) -> int:
    count = 0
    while (node_id, count) in names:
        count += 1
    return count

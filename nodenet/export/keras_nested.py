"""Nested Keras models (a Sequential or functional model used as a layer), read flat.

The reader first reads them flat, then :mod:`nodenet.export.keras_import_groups` makes
each one a group (definition and instance); :class:`Nested` records what it needs. Read
flat, the inner model's blocks join the graph with ids that say where they came from: the
nested model's name, a dot, the layer's name (``encoder.dense_1``; deeper models add their
names in turn). Its inputs are the tensors it is called on, and the layer name of the
nested model stands for its output block (:meth:`_Reader.resolve`), so the layers after it
read that block. A frozen nested model (``"trainable": false``) freezes every block in it
(and its instance). Its weights are under the nested model's group in ``model.weights.h5``
(``layers/sequential/layers/dense/vars``), which :class:`Scope` tracks.

A nested model with more than one output, or called more than once (shared), is refused.
Blocks without weights are never frozen (:func:`unfreeze_weightless`): Keras writes
``"trainable": false`` on every layer of a frozen model, where it changes nothing for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodenet.errors import brief
from nodenet.export.keras_import_groups import Nested

SHARED = (
    "is shared (called more than once): nodenet has no shared weights yet, so give each "
    "call a layer of its own in Keras"
)


@dataclass
class Scope:
    """The model being read: its id prefix and where its layers' weights are saved."""

    prefix: str = ""  # "" for the model itself, "inner." inside the nested model "inner"
    container: str = "layers"  # its layers' group in model.weights.h5
    used: dict[str, int] = field(default_factory=dict)  # h5 group names taken, per class
    frozen: bool = False  # inside a nested model with "trainable": false


def nested_model(
    reader: Any, kind: str, config: dict, node_id: str, group: str, sources: list[str]
) -> str | None:
    """Read the nested model ``node_id`` called on ``sources`` into ``reader``: the id of
    the block that stands for its output, or ``None`` after a problem."""
    if not isinstance(config.get("layers"), list):
        raise TypeError(f"the nested model's layers must be a list (got {brief(config)})")
    outer = reader.scope
    reader.scope = Scope(
        prefix=node_id + ".",
        container=f"{outer.container}/{group}/layers",
        frozen=outer.frozen or config.get("trainable", True) is False,
    )
    try:
        if kind == "Sequential":
            output = reader.sequential(config, sources)
            outputs = [output] if output is not None else []
        else:
            outputs = reader.functional(config, sources)
    finally:
        reader.scope = outer
    if len(outputs) != 1:
        reader.problems.append(
            f"layer {node_id!r} is a nested model with {len(outputs)} outputs; nodenet "
            "flattens nested models with one output"
        )
        return None
    reader.aliases[node_id] = outputs[0]
    output = reader.resolve(outputs[0])
    name = config.get("name")
    reader.nested_models.append(
        Nested(
            node_id,
            name if isinstance(name, str) and name else node_id.rpartition(".")[2],
            [(source, 0) for source in sources],
            (output, 0),
            config.get("trainable", True) is False,
            _input_names(kind, config, len(sources)),
        )
    )
    return output


def _input_names(kind: str, config: dict, count: int) -> list[str]:
    """The names of a nested model's inputs (its input layers'), ``input`` when unnamed."""
    names: list[str] = []
    if kind != "Sequential":
        names = [ref_name(r) for r in refs(config.get("input_layers") or [])]
    elif config["layers"] and isinstance(config["layers"][0], dict):
        first = config["layers"][0]
        if first.get("class_name") == "InputLayer":
            name = (first.get("config") or {}).get("name")
            names = [name] if isinstance(name, str) else []
    if len(names) != count or len(set(names)) != count:
        return ["input" if not i else f"input_{i}" for i in range(count)]
    return names


def nested_inputs(reader: Any, body: dict, sources: list[str]) -> None:
    """Let a nested functional model's inputs stand for the tensors it is called on."""
    names = [ref_name(r) for r in refs(body.get("input_layers"))]
    if len(names) != len(sources):
        reader.problems.append(
            f"the nested model {reader.scope.prefix[:-1]!r} takes {len(names)} inputs but is "
            f"called on {len(sources)}"
        )
    for name, source in zip(names, sources, strict=False):
        reader.aliases[reader.scope.prefix + name] = source


def nested_outputs(reader: Any, body: dict) -> list[str]:
    """The node ids of a nested functional model's outputs."""
    return [reader.resolve(reader.scope.prefix + ref_name(r)) for r in refs(body["output_layers"])]


def refs(value: Any) -> list:
    """A functional config's ``input_layers``/``output_layers`` as a list of references:
    one reference, a list of them, or a dict of them by name."""
    if isinstance(value, dict):
        return list(value.values())
    if not isinstance(value, list):
        raise TypeError(f"a list of layer references (got {brief(value)})")
    return [value] if value and isinstance(value[0], str) else value


def ref_name(ref: Any) -> str:
    """The layer name of a reference ``[name, node_index, tensor_index]``."""
    if not isinstance(ref, list | tuple) or not ref or not isinstance(ref[0], str):
        raise TypeError(f"a layer reference must be [name, index, index] (got {brief(ref)})")
    return ref[0]


def unfreeze_weightless(project: Any) -> None:
    """Keep ``trainable=False`` only on blocks with weights, as the editor freezes them."""
    from nodenet.graph.validation import analyze

    frozen = [node for node in project.nodes if not node.trainable]
    if frozen:
        params = analyze(project).params
        for node in frozen:
            if sum(params.get(node.id, (0, 0))) == 0:
                node.trainable = True

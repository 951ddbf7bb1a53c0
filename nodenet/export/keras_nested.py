"""Nested Keras models (a Sequential or functional model used as a layer), read flat.

The reader first reads them flat, then :mod:`nodenet.export.keras_import_groups` makes
each one a group (definition and instance); :class:`Nested` records what it needs. Read
flat, the inner model's blocks join the graph with ids that say where they came from: the
nested model's name, a dot, the layer's name (``encoder.dense_1``; deeper models add their
names in turn). Its inputs stand for the tensors it is called on (and the blocks reading
them are noted, per input), and output ``k`` of the nested model stands for the (block,
output) computing its ``k``-th output (:meth:`_Reader.resolve`), so the layers after it
read that block's output. A frozen nested model (``"trainable": false``) freezes every block
in it (and its instance). Its weights are under the nested model's group in
``model.weights.h5`` (``layers/sequential/layers/dense/vars``), which :class:`Scope` tracks.

A nested model called more than once shares its weights between the calls, which group
instances (each with its own weights) cannot keep: it is refused (:func:`shared`), as a
shared layer is. Blocks without weights are never frozen (:func:`unfreeze_weightless`):
Keras writes ``"trainable": false`` on every layer of a frozen model, where it changes
nothing for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodenet.errors import brief
from nodenet.export.keras_calls import tensor_index
from nodenet.export.keras_import_groups import Nested

SHARED = (
    "is shared (called more than once): nodenet has no shared weights yet, so give each "
    "call a layer of its own in Keras"
)
NESTED_KINDS = ("Functional", "Sequential", "Model")
SEQUENTIAL_INPUT = "\x00input"  # a nested Sequential's input: no layer can be named so


def shared(layer: dict, node_id: str, calls: int) -> str:
    """The refusal of the layer or nested model ``node_id`` called ``calls`` times (0: used
    in several nested models)."""
    if layer.get("class_name") not in NESTED_KINDS:
        return f"layer {node_id!r} {SHARED}"
    used = f"called {calls} times" if calls else "also used in another nested model"
    return (
        f"layer {node_id!r} is a nested model {used}; nodenet's group instances each have "
        "their own weights, so shared weights cannot be kept"
    )


@dataclass
class Scope:
    """The model being read: its id prefix and where its layers' weights are saved."""

    prefix: str = ""  # "" for the model itself, "inner." inside the nested model "inner"
    container: str = "layers"  # its layers' group in model.weights.h5
    used: dict[str, int] = field(default_factory=dict)  # h5 group names taken, per class
    frozen: bool = False  # inside a nested model with "trainable": false


def repeated(reader: Any, layer: dict, node_id: str) -> bool:
    """Whether ``layer`` is one object saved in several models of the archive (Keras marks
    it with a ``shared_object_id``: a layer or nested model two nested models share). It is
    refused once, and not read."""
    if "shared_object_id" not in layer or layer.get("class_name") == "InputLayer":
        return False  # an InputLayer has no weights to share
    key = repr(layer["shared_object_id"])
    if key not in reader.objects:
        reader.objects.add(key)
        reader.problems.append(shared(layer, node_id, 0))
    return True


def reads_input(reader: Any, source: tuple[str, int], node_id: str, port: int) -> None:
    """Note input ``port`` of ``node_id`` among the readers of the input of the nested model
    being read when ``source`` is that input (directly, or returned as it is by a model
    nested in it)."""
    seen = set()
    while source not in seen:
        if source[0] in reader.feeds:  # the first is the innermost model's
            reader.feeds[source[0]].append((node_id, port))
            return
        seen.add(source)
        if source not in reader.tensors:
            return
        source = reader.tensors[source]


def nested_model(
    reader: Any,
    kind: str,
    config: dict,
    node_id: str,
    group: str,
    sources: list[tuple[str, int]],
) -> str:
    """Read the nested model ``node_id`` called on the tensors ``sources`` (layer, output)
    into ``reader``; ``node_id``, whose output ``k`` then stands for the nested model's."""
    if not isinstance(config.get("layers"), list):
        raise TypeError(f"the nested model's layers must be a list (got {brief(config)})")
    for port, source in enumerate(sources):
        reads_input(reader, source, node_id, port)
    names = _input_names(kind, config, len(sources))
    if kind == "Sequential":
        keys = [node_id + "." + SEQUENTIAL_INPUT]
    else:
        keys = [node_id + "." + ref_name(r) for r in refs(config.get("input_layers") or [])]
    for key in keys:  # each input's readers, noted as they are read
        reader.feeds[key] = []
    outer = reader.scope
    reader.scope = Scope(
        prefix=node_id + ".",
        container=f"{outer.container}/{group}/layers",
        frozen=outer.frozen or config.get("trainable", True) is False,
    )
    try:
        if kind == "Sequential":
            if sources:
                reader.tensors[keys[0], 0] = sources[0]
            output = reader.sequential(config, [(keys[0], 0)])
            outputs = [output] if output is not None else []
        else:
            outputs = reader.functional(config, sources)
    finally:
        reader.scope = outer
    for k, output in enumerate(outputs):
        reader.tensors[node_id, k] = output
    name = config.get("name")
    to = [reader.feeds.pop(key) for key in keys]
    reader.nested_models.append(
        Nested(
            node_id,
            name if isinstance(name, str) and name else node_id.rpartition(".")[2],
            [reader.resolve(source) for source in sources],
            [reader.resolve(output) for output in outputs],
            config.get("trainable", True) is False,
            names,
            to if len(to) == len(sources) else [],
        )
    )
    return node_id


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


def nested_inputs(reader: Any, body: dict, sources: list[tuple[str, int]]) -> None:
    """Let a nested functional model's inputs stand for the tensors it is called on."""
    names = [ref_name(r) for r in refs(body.get("input_layers"))]
    if len(names) != len(sources):
        reader.problems.append(
            f"the nested model {reader.scope.prefix[:-1]!r} takes {len(names)} inputs but is "
            f"called on {len(sources)}"
        )
    for name, source in zip(names, sources, strict=False):
        reader.tensors[reader.scope.prefix + name, 0] = source


def nested_outputs(reader: Any, body: dict) -> list[tuple[str, int]]:
    """A nested functional model's outputs: (layer id, output) of each."""
    prefix = reader.scope.prefix
    return [(prefix + ref_name(r), tensor_index(r)) for r in refs(body["output_layers"])]


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

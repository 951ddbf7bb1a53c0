"""Nested Keras models as groups: the flat graph the reader builds, regrouped.

The reader (:mod:`nodenet.export.keras_nested`) first reads a nested model's layers into
the outer graph with ids ``outer.inner`` and records each nested model it met
(:class:`Nested`). :func:`regroup` then turns each one, innermost first, into a group
definition (named after the nested model) whose inner nodes are its layers under their
Keras names, whose inputs are the tensors it is called on and whose output is its output
layer, and puts one ``Group`` instance named after the nested model in its place; a frozen
nested model (``"trainable": false``) gives a frozen instance. Models nested in nested
models become groups inside groups.

The weights read from the flat graph (``encoder.dense/kernel``) are then keyed as a
grouped project's are (``encoder/dense/kernel``) by :func:`rekey`. Each nested model is
grouped in one pass over the graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nodenet.errors import NodenetError, shorten
from nodenet.graph.groups import SEPARATOR, GroupDef, GroupInput, GroupOutput, instance
from nodenet.graph.project import Edge, Project, unique_name


@dataclass
class Nested:
    """A nested model as the reader met it."""

    node_id: str  # its flat id ("encoder", "mid.core")
    name: str  # the nested model's own name (the definition's)
    sources: list[tuple[str, int]]  # the (node, output) each of its inputs is called on
    output: tuple[str, int] | None = None  # the (node, output) that is its output
    frozen: bool = False
    inputs: list[str] = field(default_factory=list)  # its inputs' names


def regroup(project: Project, nested: list[Nested]) -> dict[str, str]:
    """Group ``project``'s nested models in place (``nested`` innermost first, as the
    reader finishes them); the grouped flattened id of each flat block id that changed."""
    paths: dict[str, list[str]] = {}  # top-level id -> the flat block ids it stands for
    renamed: dict[str, str] = {}  # flat block id -> its id once grouped
    stands: dict[str, str] = {}  # a grouped model's output block -> its instance
    for record in nested:
        record.sources = [(_now(stands, node), port) for node, port in record.sources]
        if record.output is not None:
            record.output = (_now(stands, record.output[0]), record.output[1])
        if _group_one(project, record, paths, renamed):
            stands[record.output[0]] = record.node_id
    for definition in project.groups.values():
        _layout(definition)
    return renamed


def _now(stands: dict[str, str], node: str) -> str:
    """The top-level id that ``node``'s output is read from once its models are grouped."""
    seen = set()
    while node in stands and node not in seen:
        seen.add(node)
        node = stands[node]
    return node


def _group_one(
    project: Project, record: Nested, paths: dict[str, list[str]], renamed: dict[str, str]
) -> bool:
    """Group one nested model; whether it became a group."""
    prefix = record.node_id + "."
    members = [n for n in project.nodes if n.id.startswith(prefix)]
    if not members or record.output is None or not record.output[0].startswith(prefix):
        return False
    chosen = {n.id for n in members}
    objects = {id(n) for n in members}
    strip = len(prefix)
    name = record.name
    if name in project.groups:
        name = unique_name(name, set(project.groups))
    inputs = [GroupInput(port) for port in record.inputs]
    inner_edges, outer_edges = [], []
    read: dict[int, int] = {}  # input -> the output of its source it reads
    for edge in project.edges:
        inside_dst, inside_src = edge.dst in chosen, edge.src in chosen
        if inside_src and inside_dst:
            inner_edges.append(Edge(edge.src[strip:], edge.dst[strip:], edge.port, edge.src_port))
        elif inside_dst:
            index = _input_index(record.sources, (edge.src, edge.src_port))
            inputs[index].to.append((edge.dst[strip:], edge.port))
            read[index] = edge.src_port
        elif inside_src:
            outer_edges.append(Edge(record.node_id, edge.dst, edge.port, 0))
        else:
            outer_edges.append(edge)
    wired = [
        Edge(src, record.node_id, port, read.get(port, src_port))
        for port, (src, src_port) in enumerate(record.sources)
    ]
    out_node, out_port = record.output
    outputs = [GroupOutput(out_node[strip:], out_node[strip:], out_port)]
    collected = []
    for node in members:
        flats = paths.pop(node.id, [node.id])
        inner_id = node.id[strip:]
        for flat in flats:
            below = renamed.get(flat, flat)[len(node.id) :]
            renamed[flat] = record.node_id + SEPARATOR + inner_id + below
        collected += flats
        node.id = inner_id
    paths[record.node_id] = collected
    project.groups[name] = GroupDef(members, inner_edges, inputs, outputs)
    group = instance(record.node_id, name, members[0].pos)
    group.trainable = not record.frozen
    first = next(i for i, n in enumerate(project.nodes) if id(n) in objects)
    kept = [n for n in project.nodes if id(n) not in objects]
    kept.insert(min(first, len(kept)), group)
    project.nodes[:] = kept
    project.edges[:] = wired + outer_edges
    return True


def _input_index(sources: list[tuple[str, int]], source: tuple[str, int]) -> int:
    """The nested model's input fed by ``source`` (the first, when called twice on it)."""
    for index, candidate in enumerate(sources):
        if candidate == source:
            return index
    for index, candidate in enumerate(sources):
        if candidate[0] == source[0]:
            return index
    raise NodenetError(
        f"a nested model's block reads {shorten(source[0])!r}, which the model is not called on"
    )


def _layout(definition: GroupDef) -> None:
    """Place a definition's nodes as the editor's auto-layout would."""
    from nodenet.export.keras_fields import layout

    inner = Project("inner", definition.nodes, definition.edges)
    layout(inner)


def rekey(weights: dict[str, np.ndarray], renamed: dict[str, str]) -> dict[str, np.ndarray]:
    """Weights keyed ``flat_id/weight`` keyed by the grouped project's flattened ids."""
    out = {}
    for key, value in weights.items():
        node, _, weight = key.rpartition("/")
        out[f"{renamed.get(node, node)}/{weight}"] = value
    return out

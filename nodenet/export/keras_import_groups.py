"""Nested Keras models as groups: the flat graph the reader builds, regrouped.

The reader (:mod:`nodenet.export.keras_nested`) first reads a nested model's layers into
the outer graph with ids ``outer.inner`` and records each nested model it met
(:class:`Nested`). :func:`regroup` then turns each one, innermost first, into a group
definition (named after the nested model) whose inner nodes are its layers under their
Keras names, whose inputs are the tensors it is called on (feeding the blocks the reader
saw reading them) and whose outputs are its outputs, each the (block, output) computing
it, and puts one ``Group`` instance named after the nested model in its place, the edges
after it reading its output ``k`` where they read the model's ``k``-th output; a frozen
nested model (``"trainable": false``) gives a frozen instance. Models nested in nested
models become groups inside groups.

The weights read from the flat graph (``encoder.dense/kernel``) are then keyed as a
grouped project's are (``encoder/dense/kernel``) by :func:`rekey`. Each nested model is
grouped in one pass over the graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nodenet.graph.groups import SEPARATOR, GroupDef, GroupInput, GroupOutput, instance
from nodenet.graph.project import Edge, Project, unique_name

Tensor = tuple[str, int]  # (node id, output)


@dataclass
class Nested:
    """A nested model as the reader met it."""

    node_id: str  # its flat id ("encoder", "mid.core")
    name: str  # the nested model's own name (the definition's)
    sources: list[Tensor]  # the (node, output) each of its inputs is called on
    outputs: list[Tensor]  # the (node, output) that is each of its outputs
    frozen: bool = False
    inputs: list[str] = field(default_factory=list)  # its inputs' names
    # the (block, input port)s each of its inputs feeds, by flat id (a nested model's id
    # for one nested in it)
    to: list[list[Tensor]] = field(default_factory=list)


def regroup(project: Project, nested: list[Nested]) -> dict[str, str]:
    """Group ``project``'s nested models in place (``nested`` innermost first, as the
    reader finishes them); the grouped flattened id of each flat block id that changed."""
    paths: dict[str, list[str]] = {}  # top-level id -> the flat block ids it stands for
    renamed: dict[str, str] = {}  # flat block id -> its id once grouped
    stands: dict[Tensor, Tensor] = {}  # a grouped model's output -> its instance's
    flat: dict[str, list[list[Tensor]]] = {}  # a model left flat -> what its inputs feed
    for record in nested:
        record.sources = [_now(stands, source) for source in record.sources]
        record.outputs = [_now(stands, output) for output in record.outputs]
        record.to = [_opened(to, flat) for to in record.to]
        if _group_one(project, record, paths, renamed):
            for k, output in enumerate(record.outputs):
                stands.setdefault(output, (record.node_id, k))
        else:
            flat[record.node_id] = record.to
    for definition in project.groups.values():
        _layout(definition)
    return renamed


def _now(stands: dict[Tensor, Tensor], tensor: Tensor) -> Tensor:
    """The top-level (node, output) that ``tensor`` is read from once its models are
    grouped."""
    seen = set()
    while tensor in stands and tensor not in seen:
        seen.add(tensor)
        tensor = stands[tensor]
    return tensor


def _opened(to: list[Tensor], flat: dict[str, list[list[Tensor]]]) -> list[Tensor]:
    """``to`` with each input of a nested model left flat replaced by what it feeds."""
    out: list[Tensor] = []
    for node, port in to:
        inner = flat.get(node)
        if inner is not None and port < len(inner):
            out += inner[port]
        else:
            out.append((node, port))
    return out


def _group_one(
    project: Project, record: Nested, paths: dict[str, list[str]], renamed: dict[str, str]
) -> bool:
    """Group one nested model; whether it became a group. One whose outputs are not all
    computed inside it (an input returned as it is) or whose inputs' readers do not add up
    stays flat (its blocks ``outer.inner``), which computes the same."""
    prefix = record.node_id + "."
    members = [n for n in project.nodes if n.id.startswith(prefix)]
    chosen = {n.id for n in members}
    if not members or not record.outputs or len(record.to) != len(record.sources):
        return False
    if not all(node in chosen for node, _ in record.outputs):
        return False
    strip = len(prefix)
    outputs_at: dict[Tensor, int] = {}
    for k, output in enumerate(record.outputs):
        outputs_at.setdefault(output, k)
    inner_edges, outer_edges, fed = [], [], []
    for edge in project.edges:
        inside_dst, inside_src = edge.dst in chosen, edge.src in chosen
        if inside_src and inside_dst:
            inner_edges.append(Edge(edge.src[strip:], edge.dst[strip:], edge.port, edge.src_port))
        elif inside_dst:  # read through one of the instance's inputs
            fed.append((edge.dst, edge.port))
        elif inside_src:
            k = outputs_at.get((edge.src, edge.src_port))
            if k is None:
                return False
            outer_edges.append(Edge(record.node_id, edge.dst, edge.port, k))
        else:
            outer_edges.append(edge)
    if sorted(fed) != sorted(t for to in record.to for t in to):
        return False
    name = record.name
    if name in project.groups:
        name = unique_name(name, set(project.groups))
    inputs = [
        GroupInput(port, [(node[strip:], p) for node, p in to])
        for port, to in zip(record.inputs, record.to, strict=True)
    ]
    wired = [
        Edge(src, record.node_id, port, src_port)
        for port, (src, src_port) in enumerate(record.sources)
    ]
    outputs: list[GroupOutput] = []
    for node, port in record.outputs:
        taken = {p.name for p in outputs}
        outputs.append(GroupOutput(unique_name(node[strip:], taken), node[strip:], port))
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
    objects = {id(n) for n in members}
    first = next(i for i, n in enumerate(project.nodes) if id(n) in objects)
    kept = [n for n in project.nodes if id(n) not in objects]
    kept.insert(min(first, len(kept)), group)
    project.nodes[:] = kept
    project.edges[:] = wired + outer_edges
    return True


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

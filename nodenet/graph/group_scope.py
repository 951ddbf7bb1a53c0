"""A group definition opened for editing: its inside as a project of its own, and back.

:func:`open_definition` shows a definition as a small project the editor can work on with
its usual edits: the inner blocks and edges (copies), an ``Input`` block per group input
(its shape the one reaching the instance the group was opened from) and an ``Output``
block per group output. :func:`fold` reads such a project back into a
:class:`~nodenet.graph.groups.GroupDef`: ``Input`` blocks are the group's inputs (their
ids its port names, their edges what each feeds), ``Output`` blocks its outputs, in the
order they stand. ``fold(open_definition(...))`` gives the definition back unchanged when
no port name is also an inner block's id; an ``Output`` left unwired keeps its port and
reads nothing (the analysis names it), so the instance's other ports keep their numbers.
Both are linear in the size of the definition.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from nodenet.graph.groups import GroupDef, GroupInput, GroupOutput
from nodenet.graph.project import Edge, Node, Project, unique_name

INPUT_TYPE = "Input"
OUTPUT_TYPE = "Output"
PORT_TYPES = (INPUT_TYPE, OUTPUT_TYPE)
PORT_GAP = 280.0  # how far left (right) of the blocks it feeds (reads) a port block stands
UNKNOWN_SHAPE = [1]  # an input's shape when nothing reaches the instance's port yet

Shape = Sequence[int | None]


def open_definition(project: Project, name: str, input_shapes: Sequence[Shape | None]) -> Project:
    """Definition ``name`` of ``project`` as a project: its blocks, one ``Input`` block per
    group input (shape ``input_shapes[i]``, ``[1]`` when unknown) and one ``Output`` block
    per group output. The result shares ``project.groups`` (instances inside it need them)."""
    group: GroupDef = project.groups[name]
    nodes = [copy.deepcopy(n) for n in group.nodes]
    edges = [copy.deepcopy(e) for e in group.edges]
    taken = {n.id for n in nodes}
    where = {n.id: n.pos for n in nodes}
    inputs: list[Node] = []
    for i, port in enumerate(group.inputs):
        port_id = unique_name(port.name or f"input_{i}", taken)
        taken.add(port_id)
        shape = input_shapes[i] if i < len(input_shapes) else None
        params = {"shape": list(shape) if shape is not None else list(UNKNOWN_SHAPE)}
        fed = [where[n] for n, _ in port.to if n in where]
        pos = _beside(fed, -PORT_GAP, len(inputs))
        inputs.append(Node(port_id, INPUT_TYPE, params, pos))
        edges.extend(Edge(port_id, node, p, 0) for node, p in port.to)
    outputs: list[Node] = []
    for j, port in enumerate(group.outputs):
        port_id = unique_name(port.name or f"output_{j}", taken)
        taken.add(port_id)
        read = [where[port.node]] if port.node in where else []
        outputs.append(Node(port_id, OUTPUT_TYPE, {}, _beside(read, PORT_GAP, len(outputs))))
        if port.node in where:
            edges.append(Edge(port.node, port_id, 0, port.port))
    return Project(name=name, nodes=[*inputs, *nodes, *outputs], edges=edges, groups=project.groups)


def fold(scope: Project) -> GroupDef:
    """The definition an opened project stands for (see the module's text)."""
    ports = {n.id for n in scope.nodes if n.type in PORT_TYPES}
    feeds: dict[str, list[tuple[str, int]]] = {}
    reads: dict[str, tuple[str, int]] = {}
    edges: list[Edge] = []
    for e in scope.edges:
        if e.src in ports:
            feeds.setdefault(e.src, []).append((e.dst, e.port))
        elif e.dst in ports:
            reads.setdefault(e.dst, (e.src, e.src_port))
        else:
            edges.append(copy.deepcopy(e))
    group = GroupDef(edges=edges)
    for n in scope.nodes:
        if n.type == INPUT_TYPE:
            fed = [t for t in feeds.get(n.id, []) if t[0] not in ports]
            group.inputs.append(GroupInput(n.id, fed))
        elif n.type == OUTPUT_TYPE:
            src, port = reads.get(n.id, ("", 0))
            group.outputs.append(GroupOutput(n.id, src, port))
        else:
            group.nodes.append(copy.deepcopy(n))
    return group


def _beside(anchors: list[list[float]], dx: float, k: int) -> list[float]:
    """A port block's position: ``dx`` beside the mean of ``anchors`` (stacked by ``k``
    when there are none)."""
    if not anchors:
        return [dx if dx > 0 else 0.0, 120.0 * k]
    x = min(a[0] for a in anchors) if dx < 0 else max(a[0] for a in anchors)
    y = sum(a[1] for a in anchors) / len(anchors)
    return [float(x + dx), float(y)]

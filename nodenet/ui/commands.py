"""Undo commands: every edit of the document is one :class:`Command` on its undo stack.

A command is a list of small, exactly invertible operations on the project
(insert or delete a node or an edge at an index, set parameters, a position,
whether a block trains, an edge's port, a settings section, rename a node). ``redo`` applies them in
order and ``undo`` reverts them in reverse, so undoing restores the project
byte for byte, list order included. Operations touch only the document's
project and queue the document's signals; the document emits them, with a
fresh analysis, once the whole command is done.

Below the operations: the pure rules the document uses to plan compound
edits (renumbering merge ports, data mappings that follow a node). Whether an
edge may be made, and the port it takes, is :mod:`nodenet.graph.topology`'s rule.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtGui import QUndoCommand

from nodenet.graph.project import Edge, Node, Project

if TYPE_CHECKING:
    from nodenet.ui.document import Document


class Op(Protocol):
    """One invertible change of a project; ``emit`` queues a signal on the document."""

    def apply(self, doc: Document) -> None: ...

    def revert(self, doc: Document) -> None: ...


@dataclass
class InsertNode:
    index: int
    node: Node

    def apply(self, doc: Document) -> None:
        doc.project.nodes.insert(self.index, self.node)
        doc.emit_later("nodeAdded", self.node.id)

    def revert(self, doc: Document) -> None:
        removed = doc.project.nodes.pop(self.index)
        doc.emit_later("nodeRemoved", removed.id)


@dataclass
class DeleteNode:
    index: int
    node: Node

    def apply(self, doc: Document) -> None:
        InsertNode(self.index, self.node).revert(doc)

    def revert(self, doc: Document) -> None:
        InsertNode(self.index, self.node).apply(doc)


@dataclass
class InsertEdge:
    index: int
    edge: Edge

    def apply(self, doc: Document) -> None:
        doc.project.edges.insert(self.index, self.edge)
        e = self.edge
        doc.emit_later("edgeAdded", e.src, e.dst, e.port)

    def revert(self, doc: Document) -> None:
        e = doc.project.edges.pop(self.index)
        doc.emit_later("edgeRemoved", e.src, e.dst, e.port)


@dataclass
class DeleteEdge:
    index: int
    edge: Edge

    def apply(self, doc: Document) -> None:
        InsertEdge(self.index, self.edge).revert(doc)

    def revert(self, doc: Document) -> None:
        InsertEdge(self.index, self.edge).apply(doc)


@dataclass
class SetEdgePort:
    """Renumber one edge's target port (merge ports stay 0..k-1)."""

    edge: Edge
    old: int
    new: int

    def _set(self, doc: Document, frm: int, to: int) -> None:
        e = self.edge
        e.port = to
        doc.emit_later("edgeRemoved", e.src, e.dst, frm)
        doc.emit_later("edgeAdded", e.src, e.dst, to)

    def apply(self, doc: Document) -> None:
        self._set(doc, self.old, self.new)

    def revert(self, doc: Document) -> None:
        self._set(doc, self.new, self.old)


@dataclass
class SetParams:
    node: Node
    old: dict[str, Any]
    new: dict[str, Any]

    def apply(self, doc: Document) -> None:
        self.node.params = copy.deepcopy(self.new)
        doc.emit_later("nodeChanged", self.node.id)

    def revert(self, doc: Document) -> None:
        self.node.params = copy.deepcopy(self.old)
        doc.emit_later("nodeChanged", self.node.id)


@dataclass
class SetTrainable:
    """Freeze (``False``) or unfreeze a block's weights: :attr:`Node.trainable`."""

    node: Node
    old: bool
    new: bool

    def apply(self, doc: Document) -> None:
        self.node.trainable = self.new
        doc.emit_later("nodeChanged", self.node.id)

    def revert(self, doc: Document) -> None:
        self.node.trainable = self.old
        doc.emit_later("nodeChanged", self.node.id)


@dataclass
class SetPos:
    node: Node
    old: tuple[float, float]
    new: tuple[float, float]

    def apply(self, doc: Document) -> None:
        self.node.pos = [float(self.new[0]), float(self.new[1])]
        doc.emit_later("nodeMoved", self.node.id)

    def revert(self, doc: Document) -> None:
        self.node.pos = [float(self.old[0]), float(self.old[1])]
        doc.emit_later("nodeMoved", self.node.id)


@dataclass
class RenameNode:
    """Rename a node; its edges follow (the data section is a separate :class:`SetSection`)."""

    old: str
    new: str

    def _rename(self, doc: Document, frm: str, to: str) -> None:
        project = doc.project
        project.node(frm).id = to
        for e in project.edges:
            if e.src == frm:
                e.src = to
            if e.dst == frm:
                e.dst = to
        doc.emit_later("nodeRenamed", frm, to)

    def apply(self, doc: Document) -> None:
        self._rename(doc, self.old, self.new)

    def revert(self, doc: Document) -> None:
        self._rename(doc, self.new, self.old)


@dataclass
class SetSection:
    """Replace the project's ``training`` or ``data`` section."""

    section: str
    old: dict[str, Any]
    new: dict[str, Any]

    def _set(self, doc: Document, value: dict[str, Any]) -> None:
        setattr(doc.project, self.section, copy.deepcopy(value))
        doc.emit_later("settingsChanged", self.section)

    def apply(self, doc: Document) -> None:
        self._set(doc, self.new)

    def revert(self, doc: Document) -> None:
        self._set(doc, self.old)


@dataclass
class ReplaceGraph:
    """Swap the nodes, edges and group definitions (a group operation's result): the
    lists keep their identity, unchanged nodes and edges their objects (earlier commands
    hold them), and the canvas hears only what came, went or changed."""

    old: tuple[list[Node], list[Edge], dict[str, Any]]
    new: tuple[list[Node], list[Edge], dict[str, Any]]

    def _set(self, doc: Document, frm: tuple, to: tuple) -> None:
        project = doc.project
        project.nodes[:] = to[0]
        project.edges[:] = to[1]
        project.groups = to[2]
        before = {n.id: n for n in frm[0]}
        after = {n.id: n for n in to[0]}
        edges_before = {(e.src, e.dst, e.port): e for e in frm[1]}
        edges_after = {(e.src, e.dst, e.port): e for e in to[1]}
        for key, e in edges_before.items():
            if edges_after.get(key) is not e:
                doc.emit_later("edgeRemoved", *key)
        for node_id in before:
            if node_id not in after:
                doc.emit_later("nodeRemoved", node_id)
        for node_id, node in after.items():
            if node_id not in before:
                doc.emit_later("nodeAdded", node_id)
            elif before[node_id] is not node:
                doc.emit_later("nodeChanged", node_id)
                doc.emit_later("nodeMoved", node_id)
        for key, e in edges_after.items():
            if edges_before.get(key) is not e:
                doc.emit_later("edgeAdded", *key)

    def apply(self, doc: Document) -> None:
        self._set(doc, self.old, self.new)

    def revert(self, doc: Document) -> None:
        self._set(doc, self.new, self.old)


@dataclass
class SetGroups:
    """Replace the group definitions (an edit made inside an opened group): every group
    block is told, its shape and counts may have changed."""

    old: dict[str, Any]
    new: dict[str, Any]

    def _set(self, doc: Document, groups: dict[str, Any]) -> None:
        doc.project.groups = groups
        for n in doc.project.nodes:
            if n.type == "Group":
                doc.emit_later("nodeChanged", n.id)

    def apply(self, doc: Document) -> None:
        self._set(doc, self.new)

    def revert(self, doc: Document) -> None:
        self._set(doc, self.old)


def replace_graph_ops(project: Project, result: Project) -> list[Op]:
    """The operation turning ``project``'s graph into ``result``'s (a group operation's
    output, a changed deep copy): unchanged nodes and edges keep ``project``'s objects."""
    nodes = {n.id: n for n in project.nodes}
    edges = {(e.src, e.dst, e.port, e.src_port): e for e in project.edges}
    new_nodes = [nodes[n.id] if n.id in nodes and nodes[n.id] == n else n for n in result.nodes]
    new_edges = [edges.get((e.src, e.dst, e.port, e.src_port), e) for e in result.edges]
    kept = project.groups
    groups = {k: kept[k] if k in kept and kept[k] == g else g for k, g in result.groups.items()}
    old = (list(project.nodes), list(project.edges), project.groups)
    return [ReplaceGraph(old, (new_nodes, new_edges, groups))]


class Command(QUndoCommand):
    """One undoable edit: a named list of operations applied in order, reverted in reverse."""

    def __init__(self, doc: Document, text: str, ops: list[Op]):
        super().__init__(text)
        self.doc = doc
        self.ops = ops

    def redo(self) -> None:
        with self.doc.editing():
            for op in self.ops:
                op.apply(self.doc)

    def undo(self) -> None:
        with self.doc.editing():
            for op in reversed(self.ops):
                op.revert(self.doc)


# -- building the operations of compound edits ---------------------------------


def remove_edges_ops(project: Project, doomed: list[Edge], variadic: set[str]) -> list[Op]:
    """Delete ``doomed`` edges, then renumber the ports of merges that lost one to 0..k-1.

    ``variadic`` names the nodes whose ports are renumbered (merge blocks).
    Deletions run from the highest list index down so each index stays valid;
    renumbering runs upwards so no two edges ever share a port.
    """
    doomed_ids = {id(e) for e in doomed}
    ops: list[Op] = [
        DeleteEdge(i, e)
        for i, e in sorted(
            ((i, e) for i, e in enumerate(project.edges) if id(e) in doomed_ids),
            key=lambda pair: -pair[0],
        )
    ]
    touched = {e.dst for e in doomed if e.dst in variadic}
    for dst in sorted(touched):
        kept = sorted(
            (e for e in project.edges if e.dst == dst and id(e) not in doomed_ids),
            key=lambda e: e.port,
        )
        ops.extend(SetEdgePort(e, e.port, new) for new, e in enumerate(kept) if e.port != new)
    return ops


def remove_nodes_ops(project: Project, ids: set[str], variadic: set[str]) -> list[Op]:
    """Delete nodes with every edge touching them (merge ports renumbered) and their data
    mappings."""
    doomed = [e for e in project.edges if e.src in ids or e.dst in ids]
    ops = remove_edges_ops(project, doomed, variadic - ids)
    indexed = [(i, n) for i, n in enumerate(project.nodes) if n.id in ids]
    ops.extend(DeleteNode(i, n) for i, n in reversed(indexed))
    data = mapped_data(project.data, lambda node_id: None if node_id in ids else node_id)
    if data != project.data:
        ops.append(SetSection("data", copy.deepcopy(project.data), data))
    return ops


def rename_ops(project: Project, old: str, new: str) -> list[Op]:
    """Rename a node; the data section's mappings of ``old`` now name ``new``."""
    ops: list[Op] = [RenameNode(old, new)]
    data = mapped_data(project.data, lambda node_id: new if node_id == old else node_id)
    if data != project.data:
        ops.append(SetSection("data", copy.deepcopy(project.data), data))
    return ops


def mapped_data(data: dict[str, Any], rename: Callable[[str], str | None]) -> dict[str, Any]:
    """``data`` with the node ids of ``inputs`` / ``targets`` renamed (``None`` drops one).

    Keys keep their order; a rename onto a key already present is skipped.
    """
    out = copy.deepcopy(data)
    for key in ("inputs", "targets"):
        mapping = data.get(key)
        if not isinstance(mapping, dict):
            continue
        renamed: dict[str, Any] = {}
        for node_id, array in mapping.items():
            target = rename(node_id)
            if target is not None and target != node_id and target in mapping:
                target = node_id
            if target is not None:
                renamed[target] = array
        out[key] = renamed
    return out


# -- rules of the graph used to plan edits ------------------------------------------
# (which port an edge takes and the cycles it would close: nodenet.graph.topology)


def compact_ports(edges: list[Edge], variadic: set[str]) -> list[Edge]:
    """Renumber the ports of merges to 0..k-1 (a fragment may have lost some inputs)."""
    for dst in variadic:
        into = sorted((e for e in edges if e.dst == dst), key=lambda e: e.port)
        for new, e in enumerate(into):
            e.port = new
    return edges


# -- editing at scale: insert on an edge, delete and reconnect, rename many ----------------


def edge_index(project: Project, key: tuple[str, str, int]) -> int | None:
    """The list index of the edge ``(src, dst, port)``, or ``None``."""
    for i, e in enumerate(project.edges):
        if (e.src, e.dst, e.port) == key:
            return i
    return None


def insert_on_edge_ops(project: Project, node_id: str, index: int) -> list[Op]:
    """Put ``node_id`` (one input, one output, no edges) on the edge at ``index``:
    ``a → b`` becomes ``a → node → b``; ``b`` keeps its port, so no merge is renumbered."""
    edge = project.edges[index]
    return [
        DeleteEdge(index, edge),
        InsertEdge(index, Edge(node_id, edge.dst, edge.port, 0)),
        InsertEdge(len(project.edges), Edge(edge.src, node_id, 0, edge.src_port)),
    ]


def reconnect_ops(project: Project, node_id: str) -> list[Op]:
    """Delete ``node_id`` (exactly one input edge) and feed its consumers from its source:
    each outgoing edge is replaced where it stands (same index, same port)."""
    edges = project.edges
    (i_in,) = [i for i, e in enumerate(edges) if e.dst == node_id]
    source = edges[i_in]
    ops: list[Op] = []
    for i, e in enumerate(edges):
        if e.src == node_id:
            fed = Edge(source.src, e.dst, e.port, source.src_port)
            ops += [DeleteEdge(i, e), InsertEdge(i, fed)]
    ops.append(DeleteEdge(i_in, source))
    index = next(i for i, n in enumerate(project.nodes) if n.id == node_id)
    ops.append(DeleteNode(index, project.nodes[index]))
    data = mapped_data(project.data, lambda i: None if i == node_id else i)
    if data != project.data:
        ops.append(SetSection("data", copy.deepcopy(project.data), data))
    return ops


def rename_order(mapping: dict[str, str]) -> list[str] | None:
    """The old ids of ``mapping`` in an order where no rename lands on an id still in use
    (``a → b`` after ``b → c``); ``None`` when the renames go round in a circle."""
    order: list[str] = []
    state: dict[str, bool] = {}  # False: on the chain being followed, True: placed
    for start in mapping:
        chain: list[str] = []
        current = start
        while current in mapping and current not in state:
            state[current] = False
            chain.append(current)
            current = mapping[current]
        if current in mapping and state[current] is False:
            return None
        for old in chain:
            state[old] = True
        order.extend(reversed(chain))
    return order


def rename_many_ops(project: Project, mapping: dict[str, str], order: list[str]) -> list[Op]:
    """Rename every node of ``mapping`` (in ``order``); the data section follows at once."""
    ops: list[Op] = [RenameNode(old, mapping[old]) for old in order]
    data = copy.deepcopy(project.data)
    for key in ("inputs", "targets"):
        section = data.get(key)
        if isinstance(section, dict):
            data[key] = {mapping.get(k, k): v for k, v in section.items()}
    if data != project.data:
        ops.append(SetSection("data", copy.deepcopy(project.data), data))
    return ops

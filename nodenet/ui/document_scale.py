"""Edits for big graphs, mixed into :class:`~nodenet.ui.document.Document`.

Put a block on an edge (``a → b`` becomes ``a → new → b``), delete a block and
feed its consumers from its source, rename many blocks at once. Each is one
command (:mod:`nodenet.ui.commands`); each is refused, with one sentence naming
the block, when the shapes or the ids would not allow it, and then nothing changes.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from nodenet.engine import Shape, block_class
from nodenet.errors import NodenetError, ShapeError
from nodenet.graph.project import Node, Project
from nodenet.ui.commands import (
    InsertNode,
    Op,
    SetPos,
    edge_index,
    insert_on_edge_ops,
    reconnect_ops,
    rename_many_ops,
    rename_order,
)

if TYPE_CHECKING:
    from nodenet.graph.project import Analysis

EdgeKey = tuple[str, str, int]


class ScaleEdits:
    """Insert on an edge, delete and reconnect, rename many (needs the Document's
    ``project``, ``analysis``, ``_push``, ``_writable``, ``_node``, ``check_id``)."""

    project: Project
    analysis: Analysis

    # -- drop a block on an edge ---------------------------------------------------------

    def insertion_refusal(
        self, block_type: str, params: dict | None, edge: EdgeKey, node_id: str = "the block"
    ) -> str | None:
        """Why a ``block_type`` block cannot sit on ``edge`` (``None`` if it can)."""
        index = edge_index(self.project, edge)
        if index is None:
            return f"there is no edge from {edge[0]} to port {edge[2]} of {edge[1]}"
        cls = block_class(block_type)
        name = node_id if node_id == block_type else f"{node_id} ({block_type})"
        if block_type in ("Input", "Output") or not cls.accepts_inputs(1):
            return f"{name} cannot go on an edge: it does not take one input"
        layer = cls.from_config(copy.deepcopy(params or {}), node_id)
        if layer.n_outputs() != 1:
            return f"{name} cannot go on an edge: it has several outputs"
        e = self.project.edges[index]
        shape = self.analysis.shape_of(e.src, e.src_port)
        if shape is None:
            return None
        try:
            out = layer.infer_shape([shape])
        except ShapeError as err:
            return f"{node_id} cannot take the output of {e.src}: {err}"
        return self._refusal_with_inputs(e.dst, {e.port: out})

    def add_on_edge(
        self, block_type: str, pos: tuple[float, float], edge: EdgeKey, params: dict | None = None
    ) -> str:
        """Add a block on ``edge`` as one command; its id, or :class:`NodenetError` why not
        (nothing changes then)."""
        from nodenet.ui.document import _point, default_id, unique_name

        self._writable()
        params = copy.deepcopy(params) if params is not None else {}
        block_class(block_type).from_config(params)
        node_id = unique_name(default_id(block_type), {n.id for n in self.project.nodes})
        reason = self.insertion_refusal(block_type, params, edge, node_id)
        if reason is not None:
            raise NodenetError(reason)
        node = Node(node_id, block_type, params, list(_point(pos)))
        ops: list[Op] = [InsertNode(len(self.project.nodes), node)]
        ops += insert_on_edge_ops(self.project, node_id, edge_index(self.project, edge))
        self._push(f"Insert {block_type} {node_id} on {edge[0]} → {edge[1]}", ops)
        return node_id

    def insert_on_edge(
        self, node_id: str, edge: EdgeKey, pos: tuple[float, float] | None = None
    ) -> None:
        """Put the unconnected block ``node_id`` on ``edge`` (and move it to ``pos``) as one
        command, or raise :class:`NodenetError` why not."""
        from nodenet.ui.document import _point

        self._writable()
        node = self._node(node_id)
        if any(node_id in (e.src, e.dst) for e in self.project.edges):
            raise NodenetError(f"{node_id} is connected already: only a free block goes on an edge")
        reason = self.insertion_refusal(node.type, node.params, edge, node_id)
        if reason is not None:
            raise NodenetError(reason)
        ops: list[Op] = []
        if pos is not None and tuple(node.pos) != _point(pos):
            ops.append(SetPos(node, (node.pos[0], node.pos[1]), _point(pos)))
        ops += insert_on_edge_ops(self.project, node_id, edge_index(self.project, edge))
        self._push(f"Insert {node_id} on {edge[0]} → {edge[1]}", ops)

    # -- delete and reconnect -----------------------------------------------------------

    def reconnect_refusal(self, node_id: str) -> str | None:
        """Why ``node_id`` cannot be deleted with its source wired to its consumers."""
        self._node(node_id)
        into = [e for e in self.project.edges if e.dst == node_id]
        out_of = [e for e in self.project.edges if e.src == node_id]
        if len(into) != 1:
            return f"{node_id} has {len(into)} input edges: only a block with one is reconnected"
        if not out_of:
            return f"{node_id} feeds no block: there is nothing to reconnect"
        if any(e.src_port for e in out_of):
            return f"{node_id} has several outputs: its consumers cannot all take its input"
        source = into[0]
        shape = self.analysis.shape_of(source.src, source.src_port)
        if shape is None:
            return None
        for dst in dict.fromkeys(e.dst for e in out_of):
            ports = {e.port: shape for e in out_of if e.dst == dst}
            reason = self._refusal_with_inputs(dst, ports)
            if reason is not None:
                return f"{source.src} cannot feed {dst} in place of {node_id}: {reason}"
        return None

    def remove_and_reconnect(self, node_id: str) -> None:
        """Delete ``node_id`` and feed its consumers from its source (one command), or
        raise :class:`NodenetError` why not."""
        self._writable()
        reason = self.reconnect_refusal(node_id)
        if reason is not None:
            raise NodenetError(reason)
        self._push(f"Delete {node_id} and reconnect", reconnect_ops(self.project, node_id))

    # -- rename many ---------------------------------------------------------------------

    def rename_many(self, mapping: dict[str, str]) -> int:
        """Rename several blocks at once (one command); how many changed. Refused, naming
        the id, when a new id is invalid, repeated or used by a block not renamed."""
        self._writable()
        for old in mapping:
            self._node(old)
        mapping = {old: new for old, new in mapping.items() if new != old}
        if not mapping:
            return 0
        seen: dict[str, str] = {}
        for old, new in mapping.items():
            if new in seen:
                raise NodenetError(f"{seen[new]} and {old} would both be named {new!r}")
            seen[new] = old
            if new not in mapping:
                self.check_id(new)
        order = rename_order(mapping)
        if order is None:
            raise NodenetError("the new ids swap names in a circle: rename in two steps")
        count = len(mapping)
        text = f"Rename {order[0]}" if count == 1 else f"Rename {count} blocks"
        self._push(text, rename_many_ops(self.project, mapping, order))
        return count

    # -- shapes --------------------------------------------------------------------------

    def _refusal_with_inputs(self, dst: str, replaced: dict[int, Shape]) -> str | None:
        """The shape error ``dst`` would raise with these inputs in place of its own."""
        layer = self.analysis.layers.get(dst)
        if layer is None:
            return None
        by_port = {
            e.port: self.analysis.shape_of(e.src, e.src_port) for e in self.project.incoming(dst)
        }
        by_port.update(replaced)
        if any(shape is None for shape in by_port.values()):
            return None
        shapes = [by_port[p] for p in sorted(by_port)]
        if not layer.accepts_inputs(len(shapes)):
            return None
        try:
            layer.infer_shape(shapes)
        except ShapeError as err:
            return f"{dst}: {err}"
        return None


def batch_names(
    ids: list[str], prefix: str = "", suffix: str = "", find: str = "", replace: str = ""
) -> dict[str, str]:
    """The new id of each of ``ids``: ``find`` replaced by ``replace``, then the prefix and
    the suffix added."""
    out = {}
    for old in ids:
        new = old.replace(find, replace) if find else old
        out[old] = f"{prefix}{new}{suffix}"
    return out

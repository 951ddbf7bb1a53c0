"""Group edits, mixed into :class:`~nodenet.ui.document.Document`.

Group a selection into one block, ungroup an instance, repeat an instance N times, add
an instance of a project's definition. Each wraps a pure function of
:mod:`nodenet.graph.group_ops` in one command (:func:`nodenet.ui.commands.replace_graph_ops`),
so undo restores the project exactly; a refused operation raises
:class:`~nodenet.graph.group_ops.GroupError` naming the block or group, and nothing changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nodenet.errors import NodenetError, shorten
from nodenet.graph import group_ops
from nodenet.graph.groups import GROUP_TYPE, definition_of, instance
from nodenet.graph.project import Node, Project, unique_name
from nodenet.ui.commands import InsertNode, Op, replace_graph_ops

if TYPE_CHECKING:
    from nodenet.graph.project import Analysis

DEFAULT_GROUP_NAME = "group"


class GroupEdits:
    """Group, ungroup, repeat, instantiate (needs the Document's ``project``, ``_push``,
    ``_writable`` and ``_node``)."""

    project: Project
    analysis: Analysis

    def group_names(self) -> list[str]:
        """The project's group definitions, in file order."""
        return list(self.project.groups)

    def fresh_group_name(self, base: str = DEFAULT_GROUP_NAME) -> str:
        """A definition name not yet used by a group or a block."""
        taken = set(self.project.groups) | {n.id for n in self.project.nodes}
        return unique_name(base, taken)

    def group(self, ids: list[str], name: str | None = None) -> str:
        """Make the blocks ``ids`` one group instance (a new definition ``name``); returns
        the instance's id."""
        self._writable()
        name = name or self.fresh_group_name()
        result, instance_id = group_ops.group_nodes(self.project, list(ids), name)
        self._push(f"Group {len(ids)} blocks as {name}", replace_graph_ops(self.project, result))
        return instance_id

    def ungroup(self, instance_id: str) -> list[str]:
        """Replace a group instance by its inside; returns the inner blocks' new ids."""
        self._writable()
        result, ids = group_ops.ungroup(self.project, instance_id)
        self._push(f"Ungroup {instance_id}", replace_graph_ops(self.project, result))
        return ids

    def repeatable(self, instance_id: str) -> str | None:
        """Why the block ``instance_id`` cannot be repeated, or ``None``."""
        node = self._node(instance_id)
        if node.type != GROUP_TYPE:
            return f"{shorten(instance_id)} is not a group block"
        group = self.project.groups.get(definition_of(node) or "")
        if group is None:
            return f"{shorten(instance_id)}: its group is unknown"
        if len(group.inputs) != 1 or len(group.outputs) != 1:
            return (
                f"{shorten(instance_id)}: its group has {len(group.inputs)} input(s) and "
                f"{len(group.outputs)} output(s); only one of each can be repeated"
            )
        return None

    def repeat(self, instance_id: str, times: int) -> list[str]:
        """Make ``instance_id`` the first of ``times`` chained instances of its group (each
        with its own weights), inserted where it stands; returns the new instances' ids."""
        self._writable()
        reason = self.repeatable(instance_id)
        if reason is not None:
            raise group_ops.GroupError(reason)
        if times <= 1:
            return []
        name = definition_of(self._node(instance_id))
        assert name is not None
        result, ids = group_ops.repeat(self.project, name, times - 1, after=instance_id)
        text = f"Repeat {instance_id} ×{times}"
        self._push(text, replace_graph_ops(self.project, result))
        return ids

    def add_group_instance(self, definition: str, pos: tuple[float, float]) -> str:
        """Add an instance of the project's group ``definition`` (its own weights)."""
        self._writable()
        if definition not in self.project.groups:
            raise NodenetError(f"the project has no group named {shorten(definition)!r}")
        node_id = unique_name(definition, {n.id for n in self.project.nodes})
        node: Node = instance(node_id, definition, [float(pos[0]), float(pos[1])])
        ops: list[Op] = [InsertNode(len(self.project.nodes), node)]
        self._push(f"Add {definition} {node_id}", ops)
        return node_id

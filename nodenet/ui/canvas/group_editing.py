"""Groups from the canvas: Group (Ctrl+G), Ungroup (Ctrl+Alt+G), Repeat ×N…, Open Group
(double-click, Ctrl+Alt+O) and Back (Alt+Up), and a "Project blocks" entry of the
palette dropped on the canvas.

:class:`CanvasGroupEditing` is mixed into :class:`~nodenet.ui.canvas.view.CanvasView`
before :class:`~nodenet.ui.canvas.editing.CanvasEditing`; each method is one Document
edit (one undo command) and a refusal becomes a ``message`` for the status bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QInputDialog

from nodenet.errors import NodenetError
from nodenet.graph.groups import GROUP_TYPE
from nodenet.ui.canvas import style
from nodenet.ui.palette import group_of

if TYPE_CHECKING:
    from nodenet.ui.canvas.scene import CanvasScene

MAX_REPEAT = 100  # the largest N the Repeat dialog offers


class CanvasGroupEditing:
    """The group slots of the canvas view (a mixin: it needs ``document``,
    ``canvas_scene``, ``message``, ``select_ids`` and ``_editable``)."""

    canvas_scene: CanvasScene

    def add_block(self, block_type: str, scene_pos: QPointF) -> str | None:
        """A palette entry dropped or activated: a "Project blocks" group adds an instance
        of it, any other block is added as usual."""
        name = group_of(block_type)
        if name is None:
            return super().add_block(block_type, scene_pos)  # type: ignore[misc]
        if not self._editable():
            return None
        x = scene_pos.x() - style.NODE_WIDTH / 2
        y = scene_pos.y() - style.node_height(1) / 2
        try:
            node_id = self.document.add_group_instance(name, (round(x), round(y)))
        except NodenetError as err:
            self.message.emit(str(err))
            return None
        self.select_ids([node_id])
        self.message.emit(f"Added {name} {node_id}")
        return node_id

    def group_selection(self) -> str | None:
        """Make the selected blocks one group block (one undo step); its id."""
        ids = self.canvas_scene.selected_ids()
        if not ids:
            self.message.emit("Select the blocks to group")
            return None
        if not self._editable():
            return None
        try:
            node_id = self.document.group(ids)
        except NodenetError as err:
            self.message.emit(f"Cannot group: {err}")
            return None
        self.select_ids([node_id])
        self.message.emit(self.document.undo_stack.undoText())
        return node_id

    def open_group(self, node_id: str | None = None) -> str | None:
        """Ask to show the inside of group block ``node_id`` (the selected one by default):
        ``openGroupRequested``, which the window's group navigator answers."""
        if node_id is None:
            ids = self.canvas_scene.selected_ids()
            nodes = self.canvas_scene._graph_maps()[0]
            groups = [i for i in ids if nodes[i].type == GROUP_TYPE]
            if len(groups) != 1:
                self.message.emit("Select one group block to open it")
                return None
            node_id = groups[0]
        self.openGroupRequested.emit(node_id)
        return node_id

    def close_group(self) -> None:
        """Ask to go back to the graph around the group on show (``closeGroupRequested``)."""
        self.closeGroupRequested.emit()

    def _selected_group(self, verb: str) -> str | None:
        ids = self.canvas_scene.selected_ids()
        nodes = self.canvas_scene._graph_maps()[0]
        groups = [i for i in ids if nodes[i].type == GROUP_TYPE]
        if len(ids) != 1 or len(groups) != 1:
            self.message.emit(f"Select one group block to {verb} it")
            return None
        return groups[0] if self._editable() else None

    def ungroup_selection(self) -> list[str]:
        """Replace the selected group block by its inside (one undo step); the new ids."""
        node_id = self._selected_group("ungroup")
        if node_id is None:
            return []
        try:
            ids = self.document.ungroup(node_id)
        except NodenetError as err:
            self.message.emit(f"Cannot ungroup: {err}")
            return []
        self.select_ids(ids)
        self.message.emit(self.document.undo_stack.undoText())
        return ids

    def repeat_selection(self) -> list[str]:
        """Ask N and make the selected single-input, single-output group block the first of
        N chained instances (one undo step); the new instances' ids."""
        node_id = self._selected_group("repeat")
        if node_id is None:
            return []
        reason = self.document.repeatable(node_id)
        if reason is not None:
            self.message.emit(f"Cannot repeat: {reason}")
            return []
        times, ok = QInputDialog.getInt(
            self,  # type: ignore[arg-type]
            "Repeat",
            f"How many {node_id} blocks in a row (each with its own weights)?",
            3,
            2,
            MAX_REPEAT,
        )
        if not ok:
            return []
        try:
            ids = self.document.repeat(node_id, times)
        except NodenetError as err:
            self.message.emit(f"Cannot repeat: {err}")
            return []
        self.select_ids([node_id, *ids])
        self.message.emit(self.document.undo_stack.undoText())
        return ids

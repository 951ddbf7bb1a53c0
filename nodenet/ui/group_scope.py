"""The inside of a group opened for editing, as a document of its own.

A :class:`ScopeDocument` shows one definition (through
:func:`nodenet.graph.group_scope.open_definition`: its blocks, an ``Input`` per group
input with the shape reaching the instance it was opened from, an ``Output`` per group
output) and offers every edit a :class:`~nodenet.ui.document.Document` does. It keeps no
history of its own: an edit is applied to the opened project, folded back into a
definition (:func:`~nodenet.graph.group_scope.fold`) and pushed on the project's undo stack
as one command replacing the definitions (:class:`~nodenet.ui.commands.SetGroups`). So
the project is always up to date (a save or a run sees the edit at once), one history
holds the edits made outside and inside groups, and undo or redo, wherever it is done,
restores definitions exactly: after any change of the history the scope compares its
definition with the project's and shows the project's again when they differ, or says it
is :attr:`gone` when the definition or the instance it was opened from no longer exists.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, Signal

from nodenet.errors import NodenetError, shorten
from nodenet.graph.group_scope import PORT_TYPES, fold, open_definition
from nodenet.graph.groups import GROUP_TYPE, definition_of
from nodenet.graph.project import Node
from nodenet.ui.canvas.node_item import NodeFace
from nodenet.ui.commands import Op, SetGroups
from nodenet.ui.document import Document, _safe_analysis

PORT_PARAMS_TEXT = (
    "{id} is a port of the group: its shape comes from where the group is used, "
    "and it has no parameters of its own"
)


class ScopeDocument(Document):
    """Definition ``definition`` opened from instance ``instance_id`` of ``parent`` (the
    project's document, or another scope); every edit lands in ``root``'s project."""

    gone = Signal()  # the definition or the instance was undone or deleted

    def __init__(self, root: Document, parent: Document, instance_id: str, owner: QObject | None):
        node = parent.project.node(instance_id)
        definition = definition_of(node)
        if node.type != GROUP_TYPE or definition not in root.project.groups:
            raise NodenetError(f"{shorten(instance_id)} is not a group block")
        self.root, self.parent_document = root, parent
        self.instance_id, self.definition = instance_id, definition
        self._shown = root.project.groups[definition]  # the definition on show
        super().__init__(self._opened(), owner)
        self.undo_stack.deleteLater()
        self.undo_stack = root.undo_stack  # one history for the project
        self.read_only = root.read_only
        root.readOnlyChanged.connect(self.set_read_only)
        root.undo_stack.indexChanged.connect(self.sync)
        root.projectReplaced.connect(self.gone)

    def _opened(self):
        """The definition on show as a project, its inputs shaped as the instance's."""
        analysis = self.parent_document.analysis
        edges = analysis.index.incoming(self.instance_id) if analysis.index else []
        width = len(self._shown.inputs)
        shapes: list[Any] = [None] * width
        for e in edges:
            if e.port < width:
                shapes[e.port] = analysis.shape_of(e.src, e.src_port)
        return open_definition(self.root.project, self.definition, shapes)

    def title(self) -> str:
        """The breadcrumb's text for this level: ``instance (definition)``."""
        if self.instance_id == self.definition:
            return self.instance_id
        return f"{self.instance_id} ({self.definition})"

    # -- edits go to the project's history -----------------------------------------------

    def _push(self, text: str, ops: list[Op]) -> None:
        if not ops:
            return
        with self.editing():
            for op in ops:
                op.apply(self)
        group = fold(self.project)
        old = self.root.project.groups
        if group == old.get(self.definition) and self.project.groups is old:
            return  # a port block moved: nothing the project keeps
        new = dict(self.project.groups)
        new[self.definition] = group
        self._shown = group
        self.root._push(f"{text} in {self.definition}", [SetGroups(old, new)])

    def set_params(self, node_id: str, params: dict) -> None:
        self._refuse_port(node_id)
        super().set_params(node_id, params)

    def set_param_many(self, ids: list[str], name: str, value: Any) -> int:
        for node_id in ids:
            self._refuse_port(node_id)
        return super().set_param_many(ids, name, value)

    def _refuse_port(self, node_id: str) -> None:
        if self._node(node_id).type in PORT_TYPES:
            raise NodenetError(PORT_PARAMS_TEXT.format(id=shorten(node_id)))

    def port_face(self, node: Node, face: NodeFace) -> NodeFace:
        """A port block's card says which port of the group it is, not a block's settings."""
        if node.type not in PORT_TYPES:
            return face
        kind = "input" if node.type == PORT_TYPES[0] else "output"
        ports = [n.id for n in self.project.nodes if n.type == node.type]
        return replace(face, title=f"Group {kind} {ports.index(node.id)}", params_text="")

    def save(self, path=None):
        return self.root.save(path)

    def is_dirty(self) -> bool:
        return self.root.is_dirty()

    # -- following the project ------------------------------------------------------------

    def sync(self, *_: Any) -> None:
        """Show the project's definition again if the history changed it (undo, redo),
        or say :attr:`gone` when it or the instance no longer exists."""
        groups = self.root.project.groups
        current = groups.get(self.definition)
        parent_nodes = {n.id: n for n in self.parent_document.project.nodes}
        instance = parent_nodes.get(self.instance_id)
        if current is None or instance is None or definition_of(instance) != self.definition:
            self.gone.emit()
            return
        if current is not self._shown:
            self._shown = current
            self.project = self._opened()
            self.analysis = _safe_analysis(self.project)
            self.projectReplaced.emit()
            self.analysisChanged.emit()
        elif self.project.groups is not groups:  # another definition changed
            self.project.groups = groups
            self.analysis = _safe_analysis(self.project)
            for n in self.project.nodes:
                if n.type == GROUP_TYPE:
                    self.nodeChanged.emit(n.id)
            self.analysisChanged.emit()

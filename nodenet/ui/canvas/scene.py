"""The scene: node cards and edges mirroring the document, updated from its signals.

Like orange-canvas-core's scene, it keeps an item-for-node map keyed by id (and
an item-for-edge map keyed by ``(src, dst, port)``) and never edits the
document. Each signal touches only the items it names: an edge signal
reconciles the incoming edges of its target node; ``analysisChanged`` recomputes
every card's plain :class:`NodeFace` and repaints only the cards whose face
changed, so a 300-node graph stays fast.
"""

from __future__ import annotations

import math
from collections import defaultdict

from PySide6.QtCore import QLineF, QPointF, QRectF, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsScene

from nodenet.project import Problem
from nodenet.ui.canvas import style
from nodenet.ui.canvas.edge_item import EdgeItem, LabelSpace
from nodenet.ui.canvas.node_item import NodeFace, NodeItem, describe

SCENE_EXTENT = 1.0e5  # the scene is far bigger than any graph, so panning is free


class CanvasScene(QGraphicsScene):
    """Items for the nodes and edges of ``document.project``.

    ``nodes`` maps node id to :class:`NodeItem`, ``edges`` maps
    ``(src, dst, port)`` to :class:`EdgeItem`. ``itemsChanged`` fires after
    cards or edges were added, removed or moved (the minimap listens).
    """

    itemsChanged = Signal()

    def __init__(self, document, parent=None):
        super().__init__(parent)
        self.document = document
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[tuple[str, str, int], EdgeItem] = {}
        self.label_space = LabelSpace(self)
        self.detailed = True  # False when zoomed out past style.DETAIL_ZOOM: ports not drawn
        self.moving_many = False  # True while document signals move cards (labels wait)
        self._moved: list[NodeItem] = []
        self.setSceneRect(-SCENE_EXTENT, -SCENE_EXTENT, 2 * SCENE_EXTENT, 2 * SCENE_EXTENT)
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.setBackgroundBrush(QColor(style.BACKGROUND))
        document.nodeAdded.connect(self._node_added)
        document.nodeRemoved.connect(self._node_removed)
        document.nodeChanged.connect(self._node_changed)
        document.nodeMoved.connect(self._node_moved)
        document.nodeRenamed.connect(self._node_renamed)
        document.edgeAdded.connect(self._edge_touched)
        document.edgeRemoved.connect(self._edge_touched)
        document.analysisChanged.connect(self.refresh_analysis)
        document.projectReplaced.connect(self.rebuild)
        document.readOnlyChanged.connect(self._read_only_changed)
        self.rebuild()

    # -- queries -------------------------------------------------------------------------

    def selected_ids(self) -> list[str]:
        """Selected node ids, in document order."""
        chosen = {item.node_id for item in self.selectedItems() if isinstance(item, NodeItem)}
        return [n.id for n in self.document.project.nodes if n.id in chosen]

    def selected_edges(self) -> list[tuple[str, str, int]]:
        return [item.key for item in self.selectedItems() if isinstance(item, EdgeItem)]

    def set_detailed(self, flag: bool) -> None:
        """Draw the ports (zoomed in) or not (zoomed out, where they are specks)."""
        if flag != self.detailed:
            self.detailed = flag
            for item in self.nodes.values():
                for port in (*item.inputs, item.output):
                    port.set_drawn(flag)

    def graph_rect(self) -> QRectF:
        """The bounding rectangle of every card (empty when there is none)."""
        rect = QRectF()
        for item in self.nodes.values():
            rect = rect.united(item.sceneBoundingRect())
        return rect

    # -- building ----------------------------------------------------------------------

    def rebuild(self) -> None:
        """Drop every item and mirror the document from scratch (new / open)."""
        for edge in list(self.edges.values()):
            self._drop_edge(edge)
        for item in list(self.nodes.values()):
            self.removeItem(item)
        self.nodes.clear()
        self.label_space = LabelSpace(self)
        project = self.document.project
        faces = self._faces()
        for node in project.nodes:
            self._add_node_item(faces[node.id])
        for e in project.edges:
            self._add_edge_item(e.src, e.dst, e.port)
        self._refresh_edge_labels()
        self._read_only_changed(self.document.read_only)
        self.itemsChanged.emit()

    def _faces(self, only: set[str] | None = None) -> dict[str, NodeFace]:
        """Faces of every node (or of ``only``), from one pass over edges and problems."""
        project, analysis = self.document.project, self.document.analysis
        filled: dict[str, list[int]] = defaultdict(list)
        for e in project.edges:
            filled[e.dst].append(e.port)
        problems: dict[str | None, list[Problem]] = defaultdict(list)
        for p in analysis.problems:
            problems[p.node].append(p)
        return {
            n.id: describe(n, analysis, filled[n.id], problems[n.id])
            for n in project.nodes
            if only is None or n.id in only
        }

    def _add_node_item(self, face: NodeFace) -> NodeItem:
        item = NodeItem(face)
        for port in (*item.inputs, item.output):
            port.set_drawn(self.detailed)
        node = self.document.project.node(face.node_id)
        item.setPos(node.pos[0], node.pos[1])
        item.set_editable(not self.document.read_only)
        self.addItem(item)
        self.nodes[face.node_id] = item
        self.label_space.cards_moved()
        return item

    def _add_edge_item(self, src: str, dst: str, port: int) -> EdgeItem | None:
        if src not in self.nodes or dst not in self.nodes or (src, dst, port) in self.edges:
            return None
        edge = EdgeItem(self.nodes[src], self.nodes[dst], port)
        self.addItem(edge)
        self.edges[(src, dst, port)] = edge
        edge.update_path()
        self.nodes[src].output.set_connected(True)
        return edge

    def _drop_edge(self, edge: EdgeItem) -> None:
        self.edges.pop(edge.key, None)
        edge.detach()
        self.removeItem(edge)
        src = edge.src_item
        src.output.set_connected(any(e.src_item is src for e in src.edges))

    # -- document signals ------------------------------------------------------------------

    def _node_added(self, node_id: str) -> None:
        if node_id in self.nodes or not self.document.project.has_node(node_id):
            return
        self._add_node_item(self._faces({node_id})[node_id])
        self.itemsChanged.emit()

    def _node_removed(self, node_id: str) -> None:
        item = self.nodes.pop(node_id, None)
        if item is None:
            return
        for edge in list(item.edges):
            self._drop_edge(edge)
        self.removeItem(item)
        self.label_space.cards_moved()
        self.itemsChanged.emit()

    def _node_changed(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is not None and self.document.project.has_node(node_id):
            item.set_face(self._faces({node_id})[node_id])
            for edge in item.edges:
                edge.update_path()

    def _node_moved(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is None or not self.document.project.has_node(node_id):
            return
        x, y = self.document.project.node(node_id).pos
        if item.pos() != QPointF(x, y):
            self.moving_many = True
            try:
                item.setPos(x, y)
            finally:
                self.moving_many = False
        self._moved.append(item)

    def _node_renamed(self, old: str, new: str) -> None:
        item = self.nodes.pop(old, None)
        if item is None:
            return
        self.nodes[new] = item
        for edge in item.edges:
            for key, value in list(self.edges.items()):
                if value is edge:
                    del self.edges[key]
        item.set_face(self._faces({new})[new])
        for edge in item.edges:
            self.edges[edge.key] = edge

    def _edge_touched(self, src: str, dst: str, port: int) -> None:
        """An edge into ``dst`` came or went: make ``dst``'s incoming edges match the document."""
        wanted = {(e.src, e.dst, e.port) for e in self.document.project.edges if e.dst == dst}
        item = self.nodes.get(dst)
        current = {e.key for e in item.edges if e.dst_item is item} if item else set()
        current |= {(src, dst, port)} & set(self.edges)
        for key in current - wanted:
            self._drop_edge(self.edges[key])
        for key in sorted(wanted - current, key=lambda k: k[2]):
            self._add_edge_item(*key)
        self.itemsChanged.emit()

    def refresh_analysis(self) -> None:
        """Repaint the cards whose face changed, then the edges whose label changed."""
        touched = [
            item
            for node_id, face in self._faces().items()
            if (item := self.nodes.get(node_id)) is not None and item.set_face(face)
        ]
        for item in touched:
            for edge in item.edges:
                edge.update_path()
        self._refresh_edge_labels()
        moved, self._moved = self._moved, []
        if moved:
            self._replace_labels_near(moved)
            self.itemsChanged.emit()

    def _refresh_edge_labels(self) -> None:
        shapes = self.document.analysis.shapes
        for (src, dst, port), edge in self.edges.items():
            shape = shapes.get(src)
            text = style.compact_shape(shape) if shape is not None else ""
            shape_text = edge.src_item.face.shape_text
            edge.set_label(text, f"{src} → {dst} (input {port})\n{shape_text}")

    def _replace_labels_near(self, cards: list[NodeItem]) -> None:
        """Place again the labels of these cards' edges and the labels they may now cover."""
        edges: set[EdgeItem] = set()
        for item in cards:
            if item.scene() is self:
                edges |= item.edges
                edges |= self.label_space.labels_near(item.sceneBoundingRect())
        for edge in edges:
            if edge.scene() is self:
                edge.place_label()

    def _read_only_changed(self, flag: bool) -> None:
        for item in self.nodes.values():
            item.set_editable(not flag)

    # -- background ----------------------------------------------------------------------

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, QColor(style.BACKGROUND))
        scale = painter.worldTransform().m11()
        step = style.GRID
        while step * scale < 16:
            step *= 5
        major = step * 5
        for spacing, colour in ((step, style.GRID_MINOR), (major, style.GRID_MAJOR)):
            painter.setPen(QPen(QColor(colour), 0))
            painter.drawLines(_grid_lines(rect, spacing))


def _grid_lines(rect: QRectF, spacing: float) -> list[QLineF]:
    left = math.floor(rect.left() / spacing) * spacing
    top = math.floor(rect.top() / spacing) * spacing
    lines = []
    x = left
    while x <= rect.right():
        lines.append(QLineF(x, rect.top(), x, rect.bottom()))
        x += spacing
    y = top
    while y <= rect.bottom():
        lines.append(QLineF(rect.left(), y, rect.right(), y))
        y += spacing
    return lines

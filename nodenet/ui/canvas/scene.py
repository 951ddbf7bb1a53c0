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

from nodenet.engine import fmt_shape
from nodenet.graph.project import Problem
from nodenet.ui.canvas import style
from nodenet.ui.canvas.edge_item import EdgeItem, LabelSpace
from nodenet.ui.canvas.node_item import NodeFace, NodeItem, describe

SCENE_EXTENT = 1.0e5  # the scene is far bigger than any graph, so panning is free


class CanvasScene(QGraphicsScene):
    """Items for the nodes and edges of ``document.project``.

    ``nodes`` maps node id to :class:`NodeItem`, ``edges`` maps
    ``(src, dst, port)`` to :class:`EdgeItem`. ``itemsChanged`` fires after
    cards or edges were added, removed, moved or recoloured (the minimap listens).
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
        self.removing = False  # True while a removed node's card leaves the scene
        self._moved: list[NodeItem] = []
        self._graph_rect: QRectF | None = None  # graph_rect() until a card moves or changes
        self._unlabelled: set[EdgeItem] = set()  # edges whose label may be out of date
        self._maps: tuple | None = None  # _graph_maps() of the current analysis
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
                for port in (*item.inputs, *item.outputs):
                    port.set_drawn(flag)

    def graph_rect(self) -> QRectF:
        """The bounding rectangle of every card (empty when there is none)."""
        if self._graph_rect is None:
            rect = QRectF()
            for item in self.nodes.values():
                rect = rect.united(item.scene_rect())
            self._graph_rect = rect
        return QRectF(self._graph_rect)

    def cards_moved(self) -> None:
        """A card came, went, moved or changed size: labels and the graph's extent follow."""
        self._graph_rect = None
        self.label_space.cards_moved()

    # -- building ----------------------------------------------------------------------

    def rebuild(self) -> None:
        """Drop every item and mirror the document from scratch (new / open)."""
        for edge in list(self.edges.values()):
            self._drop_edge(edge)
        for item in list(self.nodes.values()):
            self.removeItem(item)
        self.nodes.clear()
        self._graph_rect = None
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
        analysis = self.document.analysis
        nodes, filled, _, problems = self._graph_maps()
        ids = nodes if only is None else [i for i in only if i in nodes]
        none: list = []
        groups = getattr(self.document.project, "groups", None)
        faces = {
            i: describe(nodes[i], analysis, filled.get(i, none), problems.get(i, none), groups)
            for i in ids
        }
        port_face = getattr(self.document, "port_face", None)  # inside a group: its ports
        if port_face is not None:
            for i, face in faces.items():
                faces[i] = port_face(nodes[i], face)
        return faces

    def _graph_maps(self) -> tuple[dict, dict, dict, dict]:
        """Nodes by id, connected ports and incoming edge keys by target, problems by node.

        Built once per analysis: the document emits an edit's signals after analysing it,
        so a paste of 2,000 blocks costs one pass, not one per block.
        """
        project, analysis = self.document.project, self.document.analysis
        sizes = (len(project.nodes), len(project.edges))
        if self._maps is None or self._maps[0] is not analysis or self._maps[1] != sizes:
            filled: dict[str, list[int]] = defaultdict(list)
            into: dict[str, set[tuple[str, str, int]]] = defaultdict(set)
            for e in project.edges:
                filled[e.dst].append(e.port)
                into[e.dst].add((e.src, e.dst, e.port))
            problems: dict[str | None, list[Problem]] = defaultdict(list)
            for p in analysis.problems:
                problems[p.node].append(p)
            nodes = {n.id: n for n in project.nodes}
            self._maps = (analysis, sizes, (nodes, dict(filled), dict(into), dict(problems)))
        return self._maps[2]

    def _add_node_item(self, face: NodeFace) -> NodeItem:
        item = NodeItem(face)
        for port in (*item.inputs, *item.outputs):
            port.set_drawn(self.detailed)
        node = self._graph_maps()[0][face.node_id]
        item.setPos(node.pos[0], node.pos[1])
        item.set_editable(not self.document.read_only)
        self.addItem(item)
        self.nodes[face.node_id] = item
        self.cards_moved()
        return item

    def _add_edge_item(self, src: str, dst: str, port: int) -> EdgeItem | None:
        if src not in self.nodes or dst not in self.nodes or (src, dst, port) in self.edges:
            return None
        edge = EdgeItem(self.nodes[src], self.nodes[dst], port, self._src_port(src, dst, port))
        self.addItem(edge)
        self.edges[(src, dst, port)] = edge
        self._unlabelled.add(edge)
        edge.update_path()
        self.nodes[src].sync_outputs_connected()
        return edge

    def _src_port(self, src: str, dst: str, port: int) -> int:
        """Which output of ``src`` the document's edge into input ``port`` of ``dst`` reads."""
        index = self.document.analysis.index
        edges = index.incoming(dst) if index is not None else self.document.project.edges
        for e in edges:
            if (e.src, e.dst, e.port) == (src, dst, port):
                return e.src_port
        return 0

    def _drop_edge(self, edge: EdgeItem) -> None:
        self._unlabelled.discard(edge)
        self.edges.pop(edge.key, None)
        edge.detach()
        self.removeItem(edge)
        edge.src_item.sync_outputs_connected()

    # -- document signals ------------------------------------------------------------------

    def _node_added(self, node_id: str) -> None:
        if node_id in self.nodes or node_id not in self._graph_maps()[0]:
            return
        self._add_node_item(self._faces({node_id})[node_id])
        self.itemsChanged.emit()

    def _node_removed(self, node_id: str) -> None:
        item = self.nodes.pop(node_id, None)
        if item is None:
            return
        self.removing = True  # the selection follows the document, not this removal
        try:
            for edge in list(item.edges):
                self._drop_edge(edge)
            self.removeItem(item)
        finally:
            self.removing = False
        self.cards_moved()
        self.itemsChanged.emit()

    def _node_changed(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is not None and node_id in self._graph_maps()[0]:
            item.set_face(self._faces({node_id})[node_id])
            for edge in item.edges:
                edge.update_path()
            self._unlabelled |= item.edges

    def _node_moved(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        node = self._graph_maps()[0].get(node_id)
        if item is None or node is None:
            return
        x, y = node.pos
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
        for edge in item.edges:  # keyed by the old id until the card shows the new one
            if self.edges.get(edge.key) is edge:
                del self.edges[edge.key]
        item.set_face(self._faces({new})[new])
        for edge in item.edges:
            self.edges[edge.key] = edge
            self._unlabelled.add(edge)

    def _edge_touched(self, src: str, dst: str, port: int) -> None:
        """An edge into ``dst`` came or went: make ``dst``'s incoming edges match the document."""
        wanted = self._graph_maps()[2].get(dst, set())
        item = self.nodes.get(dst)
        current = {e.key for e in item.edges if e.dst_item is item} if item else set()
        if (src, dst, port) in self.edges:
            current.add((src, dst, port))
        for key in current & wanted:  # the same wire, from another output of its source
            edge = self.edges.get(key)
            if edge is not None and edge.src_port != self._src_port(*key):
                self._drop_edge(edge)
                current.discard(key)
        for key in current - wanted:
            self._drop_edge(self.edges[key])
        for key in sorted(wanted - current, key=lambda k: k[2]):
            self._add_edge_item(*key)
        self.itemsChanged.emit()

    def refresh_analysis(self) -> None:
        """Repaint the cards whose face changed, then the edges whose label changed.

        A card's face is described again only when what it shows from the analysis
        (shape, count, problems, connected ports) changed: parameter edits and renames
        already set their card's face, so an edit costs a dict lookup per card.
        """
        touched = [
            item
            for node_id, face in self._faces(self._stale_faces()).items()
            if (item := self.nodes.get(node_id)) is not None and item.set_face(face)
        ]
        for item in touched:
            for edge in item.edges:
                edge.update_path()
            self._unlabelled |= item.edges
        self._refresh_edge_labels()
        moved, self._moved = self._moved, []
        if moved:
            self._replace_labels_near(moved)
        if moved or touched:
            self.itemsChanged.emit()

    def _stale_faces(self) -> set[str]:
        """The nodes whose card may show something else after the last analysis."""
        analysis = self.document.analysis
        shapes, params, layers = analysis.shapes, analysis.params, analysis.layers
        _, filled, _, problems = self._graph_maps()
        stale = set()
        nodes, none = self.nodes, ()
        for node in self.document.project.nodes:
            node_id = node.id
            key = (
                node.type,
                shapes.get(node_id),
                analysis.output_shapes.get(node_id),
                params.get(node_id),
                node_id in layers,
                tuple(filled.get(node_id, none)),
                tuple(p.message for p in problems.get(node_id, none)),
            )
            item = nodes.get(node_id)
            if item is None or item.face_key != key:
                stale.add(node_id)
                if item is not None:
                    item.face_key = key
        return stale

    def _refresh_edge_labels(self) -> None:
        """Label each new edge, and each edge of a card whose face changed, with its
        source's shape (a label shows only what the source's face shows)."""
        analysis = self.document.analysis
        edges, self._unlabelled = self._unlabelled, set()
        for edge in edges:
            if edge.scene() is not self:
                continue
            key = edge.key
            src, dst, port = key
            shape = analysis.shape_of(src, edge.src_port)
            shape_text = edge.src_item.face.shape_text
            if edge.src_port:  # another output than 0: its own shape
                shape_text = "unknown shape" if shape is None else fmt_shape(shape)
            source = (key, shape, shape_text)
            if edge.label_source == source:
                continue
            edge.label_source = source
            text = style.compact_shape(shape) if shape is not None else ""
            origin = f"{src}[{edge.src_port}]" if edge.src_port else src
            edge.set_label(text, f"{origin} → {dst} (input {port})\n{shape_text}")

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

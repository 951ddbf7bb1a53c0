"""A node card: type, id, key parameters, output shape and parameter count.

The card is a dumb view of a :class:`NodeFace`, the plain description the scene
computes from the document and its analysis. Comparing faces tells the scene
which cards really changed after an edit, so only those repaint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from nodenet.engine import LAYERS, block_class, fmt_shape
from nodenet.errors import NodenetError
from nodenet.graph.groups import GROUP_TYPE, GroupDef, definition_of
from nodenet.graph.project import Analysis, Node, Problem
from nodenet.ui.canvas import style
from nodenet.ui.canvas.port_item import PortItem

if TYPE_CHECKING:
    from nodenet.ui.canvas.edge_item import EdgeItem


@dataclass(frozen=True)
class NodeFace:
    """Everything a node card shows, as plain values."""

    node_id: str
    block_type: str
    category: str
    params_text: str
    shape_text: str
    count: int | None
    count_detail: str
    problems: tuple[str, ...]
    n_ports: int
    filled: frozenset[int]
    variadic: bool = False
    output_shapes: tuple[str, ...] = ()  # a block with several outputs: each one's shape
    frozen: bool = False  # Node.trainable false: training leaves its weights as they are
    title: str = ""  # the header when not the block type (a group: its definition's name)


def _params_text(cls, config: dict) -> str:
    """The card's key parameters; a wrapped block shows its type and its own key parameters."""
    return style.key_params_text(cls.KEY_PARAMS, config, nested=_wrapped_text)


def _wrapped_text(value: dict) -> str:
    name = str(value["type"])
    try:
        inner = block_class(name)
        text = _params_text(inner, inner(value.get("params") or {}).config)
    except (KeyError, NodenetError):  # not a block, or settings the inspector flags
        return name
    return f"{name} · {text}" if text else name


def describe(
    node: Node,
    analysis: Analysis,
    filled: Iterable[int],
    problems: list[Problem],
    groups: Mapping[str, GroupDef] | None = None,
) -> NodeFace:
    """The face of ``node`` given the analysis, its connected input ports and its problems
    (``groups``: the project's definitions, for a ``Group`` instance's ports)."""
    if node.type == GROUP_TYPE:
        return _describe_group(node, analysis, frozenset(filled), problems, groups or {})
    known = node.type in LAYERS
    cls = block_class(node.type) if known else None
    layer = analysis.layers.get(node.id)
    config = layer.config if layer is not None else node.params
    params_text = _params_text(cls, config) if cls else ""
    shape = analysis.shapes.get(node.id)
    every = analysis.output_shapes.get(node.id, ())  # a block with several outputs
    if layer is not None and layer.n_outputs() > 1 and not every:
        every = (None,) * layer.n_outputs()  # ports even while the shapes are unknown
    counts = analysis.params.get(node.id)
    filled = frozenset(filled)
    if cls is None:
        n_ports = 1
    elif cls.N_INPUTS is None:
        n_ports = min(len(filled) + 1, cls.MAX_INPUTS or len(filled) + 1)
    else:
        n_ports = cls.N_INPUTS
    detail = ""
    if counts is not None:
        detail = f"{counts[0]:,} trainable, {counts[1]:,} non-trainable parameters"
    if not node.trainable:
        detail = "\n".join(filter(None, [style.FROZEN_TIP, detail]))
    return NodeFace(
        node_id=node.id,
        block_type=node.type,
        category=cls.CATEGORY if cls else "",
        params_text=params_text,
        shape_text="unknown shape" if shape is None else fmt_shape(shape),
        count=None if counts is None else sum(counts),
        count_detail=detail,
        problems=tuple(p.message for p in problems),
        n_ports=n_ports,
        filled=filled,
        variadic=cls is not None and cls.N_INPUTS is None,
        output_shapes=tuple("unknown shape" if s is None else fmt_shape(s) for s in every),
        frozen=not node.trainable,
    )


def _describe_group(
    node: Node,
    analysis: Analysis,
    filled: frozenset[int],
    problems: list[Problem],
    groups: Mapping[str, GroupDef],
) -> NodeFace:
    """A group instance's face: its definition's name, one input port per definition input,
    one output port per definition output, its output shape and its inside's totals."""
    name = definition_of(node)
    group = groups.get(name) if name is not None else None
    n_in = len(group.inputs) if group is not None else max(filled, default=-1) + 1
    n_out = len(group.outputs) if group is not None else 1
    shape = analysis.shapes.get(node.id)
    every = analysis.output_shapes.get(node.id, ())
    if n_out > 1 and len(every) != n_out:
        every = (None,) * n_out
    counts = analysis.params.get(node.id)
    detail = ""
    if counts is not None:
        detail = f"{counts[0]:,} trainable, {counts[1]:,} non-trainable parameters"
    if not node.trainable:
        detail = "\n".join(filter(None, [style.FROZEN_TIP, detail]))
    size = f"{len(group.nodes)} blocks" if group is not None else "unknown group"
    return NodeFace(
        node_id=node.id,
        block_type=GROUP_TYPE,
        category=GROUP_TYPE,
        params_text=f"group · {size}",
        shape_text="unknown shape" if shape is None else fmt_shape(shape),
        count=None if counts is None else sum(counts),
        count_detail=detail,
        problems=tuple(p.message for p in problems),
        n_ports=n_in,
        filled=filled,
        output_shapes=tuple("unknown shape" if s is None else fmt_shape(s) for s in every),
        frozen=not node.trainable,
        title=name or GROUP_TYPE,
    )


_HEADER: list[QPainterPath] = []


def _header_path() -> QPainterPath:
    """The coloured band atop every card: rounded top corners, square bottom."""
    if not _HEADER:
        tall = QRectF(0, 0, style.NODE_WIDTH, style.HEADER_HEIGHT + 2 * style.RADIUS + 1)
        card = QPainterPath()
        card.addRoundedRect(tall, style.RADIUS, style.RADIUS)
        band = QPainterPath()
        band.addRect(QRectF(0, 0, style.NODE_WIDTH, style.HEADER_HEIGHT))
        _HEADER.append(card.intersected(band))
    return _HEADER[0]


class _Fonts:
    """Fonts shared by every card, built once (QFont needs a running application)."""

    _instance: _Fonts | None = None

    def __init__(self) -> None:
        families = [f.strip() for f in style.FONT_FAMILY.split(",")]
        self.title = QFont()
        self.title.setFamilies(families)
        self.title.setPointSizeF(style.TITLE_PT)
        self.title.setBold(True)
        self.name = QFont(self.title)
        self.name.setPointSizeF(style.BODY_PT + 0.5)
        self.name.setBold(True)
        self.body = QFont(self.title)
        self.body.setBold(False)
        self.body.setPointSizeF(style.BODY_PT)
        self.mono = QFont()
        self.mono.setFamilies([f.strip() for f in style.MONO_FAMILY.split(",")])
        self.mono.setPointSizeF(style.BODY_PT - 0.5)
        self.metrics = {
            id(f): QFontMetricsF(f) for f in (self.title, self.name, self.body, self.mono)
        }

    @classmethod
    def get(cls) -> _Fonts:
        if cls._instance is None:
            cls._instance = _Fonts()
        return cls._instance

    def elide(self, font: QFont, text: str, width: float) -> str:
        return self.metrics[id(font)].elidedText(text, Qt.TextElideMode.ElideRight, width)


class NodeItem(QGraphicsItem):
    """The card of one document node; ``node_id`` keys it in the scene's map."""

    def __init__(self, face: NodeFace):
        super().__init__()
        self.face = face
        self.face_key: tuple | None = None  # what the scene last described the face from
        self.edges: set[EdgeItem] = set()
        self.inputs: list[PortItem] = []
        self.outputs: list[PortItem] = [PortItem(self, None)]  # one per output of the block
        self.height = style.node_height(max(face.n_ports, len(face.output_shapes)))
        self._bounds = self._outer_rect()
        self.editable = True
        self.setFlags(
            QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
            | QGraphicsItem.GraphicsItemFlag.ItemIsMovable
            | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
        )
        self.set_face(face, force=True)

    @property
    def node_id(self) -> str:
        return self.face.node_id

    # -- content ---------------------------------------------------------------------

    def set_face(self, face: NodeFace, force: bool = False) -> bool:
        """Show ``face``; returns whether anything changed."""
        if face == self.face and not force:
            return False
        self.face = face
        height = style.node_height(max(face.n_ports, len(face.output_shapes)))
        if height != self.height:
            self.prepareGeometryChange()
            self.height = height
            self._bounds = self._outer_rect()
            self._cards_moved()
        self._sync_ports()
        self._texts()
        self.setToolTip(self._tooltip())
        self.update()
        return True

    def _sync_ports(self) -> None:
        n_ports = self.face.n_ports if self.face.block_type != "Input" else 0
        while len(self.inputs) > n_ports:
            port = self.inputs.pop()
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        while len(self.inputs) < n_ports:
            self.inputs.append(PortItem(self, len(self.inputs)))
        for i, port in enumerate(self.inputs):
            port.setPos(0, style.port_y(i, n_ports, self.height))
            port.set_connected(i in self.face.filled)
        n_outputs = max(1, len(self.face.output_shapes))
        while len(self.outputs) > n_outputs:
            port = self.outputs.pop()
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        while len(self.outputs) < n_outputs:
            self.outputs.append(PortItem(self, None, len(self.outputs)))
        for k, port in enumerate(self.outputs):
            port.setPos(style.NODE_WIDTH, style.port_y(k, n_outputs, self.height))
            port.setVisible(self.face.block_type != "Output")
            if n_outputs > 1:
                port.setToolTip(f"output {k}: {self.face.output_shapes[k]}")
        self.sync_outputs_connected()

    @property
    def output(self) -> PortItem:
        """Output port 0 (the only one of most blocks)."""
        return self.outputs[0]

    def sync_outputs_connected(self) -> None:
        """Mark each output port connected when an edge leaves from it."""
        used = {e.src_port for e in self.edges if e.src_item is self}
        for k, port in enumerate(self.outputs):
            port.set_connected(k in used)

    def _texts(self) -> None:
        fonts = _Fonts.get()
        inner = style.NODE_WIDTH - 2 * style.PADDING
        face = self.face
        badge = (22.0 if face.problems else 0.0) + (18.0 if face.frozen else 0.0)
        self._title = fonts.elide(fonts.title, face.title or face.block_type, inner - badge)
        self._name = fonts.elide(fonts.name, face.node_id, inner)
        self._params = fonts.elide(fonts.body, face.params_text, inner)
        self._count, self._shape = self._footer(fonts, inner)

    def _footer(self, fonts: _Fonts, inner: float) -> tuple[str, str]:
        """The parameter count in its longest form that leaves the output shape whole."""
        face = self.face
        options = ("",) if face.count is None else style.count_texts(face.count)
        mono, body = fonts.metrics[id(fonts.mono)], fonts.metrics[id(fonts.body)]
        gap = body.horizontalAdvance("  ")
        shape_w = mono.horizontalAdvance(face.shape_text)
        for text in options:
            if shape_w + gap + body.horizontalAdvance(text) <= inner:
                return text, face.shape_text
        count = options[-1]
        room = inner - gap - body.horizontalAdvance(count)
        return count, fonts.elide(fonts.mono, face.shape_text, room)

    def _tooltip(self) -> str:
        face = self.face
        kind = f"{face.title} group" if face.block_type == GROUP_TYPE else face.block_type
        lines = [f"{face.node_id} ({kind})"]
        if face.params_text:
            lines.append(face.params_text)
        if face.output_shapes:
            lines += [f"output {k}: {text}" for k, text in enumerate(face.output_shapes)]
        else:
            lines.append(f"output {face.shape_text}")
        if face.count_detail:
            lines.append(face.count_detail)
        if face.problems:
            lines.append("")
            lines.extend(f"⚠ {p}" for p in face.problems)
        return "\n".join(lines)

    def _cards_moved(self) -> None:
        moved = getattr(self.scene(), "cards_moved", None)
        if moved is not None:
            moved()

    def set_editable(self, flag: bool) -> None:
        self.editable = flag
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, flag)

    # -- geometry ----------------------------------------------------------------------

    def card_rect(self) -> QRectF:
        return QRectF(0, 0, style.NODE_WIDTH, self.height)

    def _outer_rect(self) -> QRectF:
        """The card with room for the selection ring and the shadow."""
        return self.card_rect().adjusted(-4, -4, 4, 5)

    def name_rect(self) -> QRectF:
        """Where the id is drawn (double-click there renames)."""
        top = style.HEADER_HEIGHT + style.BODY_MARGIN
        return QRectF(style.PADDING, top, style.NODE_WIDTH - 2 * style.PADDING, style.LINE_HEIGHT)

    def input_anchor(self, port: int) -> QPointF:
        if 0 <= port < len(self.inputs):
            return self.inputs[port].scenePos()
        return self.mapToScene(QPointF(0, self.height / 2))

    def output_anchor(self, port: int = 0) -> QPointF:
        if 0 <= port < len(self.outputs):
            return self.outputs[port].scenePos()
        return self.output.scenePos()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def scene_rect(self) -> QRectF:
        """``sceneBoundingRect()`` without Qt calling back into Python (cards never rotate)."""
        return self._bounds.translated(self.pos())

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.card_rect(), style.RADIUS, style.RADIUS)
        return path

    def itemChange(self, change, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            # the scene places labels once a whole document edit has moved its cards
            self._cards_moved()
            place = not getattr(self.scene(), "moving_many", False)
            for edge in self.edges:
                edge.update_path(place)
        return super().itemChange(change, value)

    # -- painting ----------------------------------------------------------------------

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        rect = self.card_rect()
        colour = QColor(style.category_color(self.face.category, muted=self.face.frozen))
        if lod < style.OVERVIEW_ZOOM:  # a speck: one flat rectangle
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(style.PROBLEM) if self.face.problems else colour)
            painter.drawRect(rect)
            if self.isSelected():
                painter.setPen(QPen(QColor(style.SELECTED), 0))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(rect.adjusted(-24, -24, 24, 24))
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._paint_card(painter, rect, colour, lod)
        if lod >= style.DETAIL_ZOOM:
            self._paint_text(painter, rect)
        else:
            self._paint_overview(painter, rect, lod)
        self._paint_outline(painter, rect)

    def _paint_card(self, painter: QPainter, rect: QRectF, colour: QColor, lod: float) -> None:
        radius = style.RADIUS
        painter.setPen(Qt.PenStyle.NoPen)
        if lod >= style.DETAIL_ZOOM:
            shadow = QColor(style.SHADOW)
            shadow.setAlpha(22)
            painter.setBrush(shadow)
            painter.drawRoundedRect(rect.translated(0, 2), radius, radius)
        painter.setBrush(QColor(style.CARD))
        painter.drawRoundedRect(rect, radius, radius)
        painter.setBrush(colour)
        painter.drawPath(_header_path())

    def _paint_text(self, painter: QPainter, rect: QRectF) -> None:
        fonts = _Fonts.get()
        pad, line = style.PADDING, style.LINE_HEIGHT
        left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        width = rect.width() - 2 * pad
        painter.setPen(QColor(style.TEXT_ON_COLOR))
        painter.setFont(fonts.title)
        painter.drawText(QRectF(pad, 0, width, style.HEADER_HEIGHT), left, self._title)
        top = style.HEADER_HEIGHT + style.BODY_MARGIN
        painter.setPen(QColor(style.TEXT))
        painter.setFont(fonts.name)
        painter.drawText(QRectF(pad, top, width, line), left, self._name)
        painter.setPen(QColor(style.DETAIL_TEXT))
        painter.setFont(fonts.body)
        painter.drawText(QRectF(pad, top + line, width, line), left, self._params)
        painter.drawText(QRectF(pad, top + 2 * line, width, line), right, self._count)
        painter.setFont(fonts.mono)
        painter.drawText(QRectF(pad, top + 2 * line, width, line), left, self._shape)
        if self.face.problems:
            self._paint_badge(painter, rect)
        if self.face.frozen:  # a snowflake left of the problem badge
            right = rect.right() - (26 if self.face.problems else 4)
            box = QRectF(right - 18, 0, 18, style.HEADER_HEIGHT)
            painter.setPen(QColor(style.TEXT_ON_COLOR))
            painter.setFont(fonts.title)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, style.FROZEN_BADGE)

    def _paint_overview(self, painter: QPainter, rect: QRectF, lod: float) -> None:
        """Zoomed out: only the id, drawn big enough to stay readable on screen."""
        font = QFont(_Fonts.get().name)
        body = rect.adjusted(style.PADDING, style.HEADER_HEIGHT, -style.PADDING, 0)
        font.setPointSizeF(min(style.OVERVIEW_PT / lod, body.height() * 0.45))
        text = QFontMetricsF(font).elidedText(
            self.face.node_id, Qt.TextElideMode.ElideRight, body.width()
        )
        painter.setFont(font)
        painter.setPen(QColor(style.TEXT))
        painter.drawText(body, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_badge(self, painter: QPainter, rect: QRectF) -> None:
        centre = QPointF(rect.right() - 13, style.HEADER_HEIGHT / 2)
        painter.setPen(QPen(QColor(style.TEXT_ON_COLOR), 1.5))
        painter.setBrush(QColor(style.PROBLEM))
        painter.drawEllipse(centre, 7.5, 7.5)
        painter.setFont(_Fonts.get().title)
        box = QRectF(centre.x() - 7.5, centre.y() - 7.5, 15, 15)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "!")

    def _paint_outline(self, painter: QPainter, rect: QRectF) -> None:
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self.face.problems:
            painter.setPen(QPen(QColor(style.PROBLEM), style.PROBLEM_PEN))
        elif self.isSelected():
            painter.setPen(QPen(QColor(style.SELECTED), style.SELECTED_PEN))
        else:
            painter.setPen(QPen(QColor(style.CARD_BORDER), 1.0))
        inset = rect.adjusted(0.5, 0.5, -0.5, -0.5)
        painter.drawRoundedRect(inset, style.RADIUS, style.RADIUS)
        if self.face.problems and self.isSelected():
            painter.setPen(QPen(QColor(style.SELECTED), style.SELECTED_PEN))
            outer = rect.adjusted(-2.5, -2.5, 2.5, 2.5)
            painter.drawRoundedRect(outer, style.RADIUS + 2, style.RADIUS + 2)

"""A port: the round handle on a node card where an edge starts or ends."""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from nodenet.ui.canvas import style

_BOUNDS = QRectF(
    -style.PORT_HIT_RADIUS,
    -style.PORT_HIT_RADIUS,
    2 * style.PORT_HIT_RADIUS,
    2 * style.PORT_HIT_RADIUS,
)


class PortState(Enum):
    """How a port is drawn while a new link is being dragged."""

    NORMAL = 0
    COMPATIBLE = 1  # the link may end here
    REFUSED = 2  # hovered, but the link would be refused
    TARGET = 3  # hovered and accepted


class PortItem(QGraphicsItem):
    """An input port (``index`` 0, 1, ...) or an output port (``index`` None) of a node;
    ``src_port`` says which output (0, or 1, 2, ... of a block with several outputs).

    A dumb view: the node item places it and says whether it is connected.
    """

    def __init__(self, parent: QGraphicsItem, index: int | None, src_port: int = 0):
        super().__init__(parent)
        self.index = index
        self.src_port = src_port
        self.connected = False
        self.state = PortState.NORMAL
        self._hovered = False
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setZValue(1)
        self.set_drawn(getattr(parent.scene(), "detailed", True))

    @property
    def is_output(self) -> bool:
        return self.index is None

    @property
    def node_id(self) -> str:
        return self.parentItem().node_id

    def scene_center(self) -> QPointF:
        return self.scenePos()

    def set_connected(self, flag: bool) -> None:
        if flag != self.connected:
            self.connected = flag
            self.update()

    def set_drawn(self, flag: bool) -> None:
        """Zoomed far out ports are not drawn (they stay where edges attach)."""
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, not flag)

    def set_state(self, state: PortState) -> None:
        if state != self.state:
            self.state = state
            self.update()

    # -- QGraphicsItem -----------------------------------------------------------

    def boundingRect(self) -> QRectF:
        return _BOUNDS

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(_BOUNDS)
        return path

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        radius = style.PORT_RADIUS
        if self._hovered or self.state in (PortState.TARGET, PortState.REFUSED):
            radius += 1.5
        ring = QColor(style.PORT_CONNECTED)
        fill = QColor(style.PORT_CONNECTED if self.connected else style.PORT_FILL)
        if self.state is PortState.COMPATIBLE:
            ring, fill = QColor(style.PORT_OK), QColor(style.PORT_FILL)
        elif self.state is PortState.TARGET:
            ring = fill = QColor(style.PORT_OK)
        elif self.state is PortState.REFUSED:
            ring = fill = QColor(style.PORT_REFUSED)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.state is PortState.COMPATIBLE:
            halo = QColor(style.PORT_OK)
            halo.setAlpha(60)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(halo)
            painter.drawEllipse(QPointF(0, 0), radius + 4, radius + 4)
        painter.setPen(QPen(ring, 1.6))
        painter.setBrush(fill)
        painter.drawEllipse(QPointF(0, 0), radius, radius)

    def hoverEnterEvent(self, event) -> None:
        self._hovered = True
        self.update()
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        self._hovered = False
        self.update()
        super().hoverLeaveEvent(event)

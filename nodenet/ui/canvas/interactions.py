"""Canvas gestures, one small class each (as orange-canvas-core's interactions).

The view hands mouse events to the active interaction until it finishes:
:class:`NewLinkDrag` (port to port), :class:`RubberBandSelect`, :class:`Pan`,
and :class:`RenameEditor`, the inline editor of a node's id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QPointF, QRectF, QSignalBlocker, Qt
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem, QLabel, QLineEdit

from nodenet.errors import NodenetError
from nodenet.ui.canvas import style
from nodenet.ui.canvas.edge_item import bezier
from nodenet.ui.canvas.node_item import NodeItem
from nodenet.ui.canvas.port_item import PortItem, PortState

if TYPE_CHECKING:
    from nodenet.ui.canvas.view import CanvasView

VISIBLE_CHECK_LIMIT = 120  # ports checked up front when a drag starts; others on hover


class Interaction:
    """A gesture in progress: it receives mouse moves and the release that ends it."""

    def __init__(self, view: CanvasView):
        self.view = view
        self.scene = view.canvas_scene

    def move(self, event: QMouseEvent) -> None:
        """The mouse moved with the gesture active."""

    def release(self, event: QMouseEvent) -> None:
        """The button was released: finish (the view then drops the interaction)."""

    def cancel(self) -> None:
        """Escape or focus loss: undo any visual trace."""


class NewLinkDrag(Interaction):
    """Drag a new edge from an output port to an input port (or the other way round).

    A live bezier follows the mouse; ports the link may end on are highlighted
    (checked with ``document.check_connection``). Held over a port that refuses
    it, the port turns red and the reason shows at once next to the cursor
    (:attr:`hint`); releasing there changes nothing and says it in the status bar.
    """

    def __init__(self, view: CanvasView, port: PortItem):
        super().__init__(view)
        self.anchor = port
        self.target: tuple[str, str, int | None, int] | None = None
        self.hovered: PortItem | None = None
        self._checked: dict[PortItem, str | None] = {}
        self.draft = QGraphicsPathItem()
        pen = QPen(QColor(style.LINK_DRAFT), 2.0, Qt.PenStyle.DashLine)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.draft.setPen(pen)
        self.draft.setZValue(10)
        self.scene.addItem(self.draft)
        self.hint = _hint_label(view)
        self._highlight_visible()
        self._draw_to(port.scenePos())

    def connection(self, port: PortItem) -> tuple[str, str, int | None, int]:
        """(src, dst, input port, output port) for ending the drag on ``port``."""
        if self.anchor.is_output:
            return self.anchor.node_id, port.node_id, port.index, self.anchor.src_port
        return port.node_id, self.anchor.node_id, self.anchor.index, port.src_port

    def _port_of(self, node: NodeItem) -> PortItem | None:
        """Where a link dropped on a card body attaches: a merge's free port, a block's
        first empty input (or its first, to be refused as taken), or the output."""
        if not self.anchor.is_output:
            return node.output if node.output.isVisible() else None
        if not node.inputs:
            return None
        free = [p for p in node.inputs if not p.connected]
        return free[-1] if node.face.variadic else (free[0] if free else node.inputs[0])

    def _reason(self, port: PortItem) -> str | None:
        if port not in self._checked:
            src, dst, index, src_port = self.connection(port)
            self._checked[port] = self.view.document.check_connection(src, dst, index, src_port)
        return self._checked[port]

    def _is_candidate(self, port: PortItem) -> bool:
        """A port of the other kind, on another card, where this link could end."""
        return (
            port.is_output != self.anchor.is_output
            and port.isVisible()
            and port.parentItem() is not self.anchor.parentItem()
        )

    def _candidates(self, area: QRectF) -> list[PortItem]:
        mode = Qt.ItemSelectionMode.IntersectsItemBoundingRect
        items = self.scene.items(area, mode)
        return [item for item in items if isinstance(item, PortItem) and self._is_candidate(item)]

    def _highlight_visible(self) -> None:
        area = self.view.mapToScene(self.view.viewport().rect()).boundingRect()
        for port in self._candidates(area)[:VISIBLE_CHECK_LIMIT]:
            if self._reason(port) is None:
                port.set_state(PortState.COMPATIBLE)

    def _draw_to(self, point: QPointF) -> None:
        start = self.anchor.scenePos()
        path = bezier(start, point) if self.anchor.is_output else bezier(point, start)
        self.draft.setPath(path)

    def _under(self, scene_pos: QPointF) -> PortItem | None:
        """The port the link would end on: the one under the mouse, or the card's."""
        for item in self.scene.items(scene_pos):
            if isinstance(item, PortItem) and self._is_candidate(item):
                return item
            if isinstance(item, NodeItem) and item is not self.anchor.parentItem():
                return self._port_of(item)
        return None

    def move(self, event: QMouseEvent) -> None:
        scene_pos = self.view.mapToScene(event.position().toPoint())
        port = self._under(scene_pos)
        if self.hovered is not None and self.hovered is not port:
            ok = self._reason(self.hovered) is None
            self.hovered.set_state(PortState.COMPATIBLE if ok else PortState.NORMAL)
        self.hovered = port
        self.target = None
        if port is None:
            self.hint.hide()
            self._draw_to(scene_pos)
            return
        reason = self._reason(port)
        port.set_state(PortState.TARGET if reason is None else PortState.REFUSED)
        self._draw_to(port.scenePos())
        self.target = self.connection(port)
        self._show_reason(reason, event.position().toPoint())

    def _show_reason(self, reason: str | None, at: QPoint) -> None:
        """The refusal next to the cursor, kept inside the viewport."""
        if reason is None:
            self.hint.hide()
            return
        src, dst, _, src_port = self.target
        origin = f"{src}[{src_port}]" if src_port else src
        text = f"Cannot connect {origin} → {dst}: {reason}"
        if self.hint.text() != text:
            self.hint.setText(text)
            self.hint.adjustSize()
        viewport = self.view.viewport().rect()
        x = min(at.x() + 16, max(0, viewport.right() - self.hint.width()))
        y = at.y() + 20 if at.y() + 20 + self.hint.height() < viewport.bottom() else at.y() - 40
        self.hint.move(x, y)
        self.hint.show()

    def release(self, event: QMouseEvent) -> None:
        self.move(event)
        target = self.target
        self.cancel()
        if target is None:
            return
        src, dst, port, src_port = target
        reason = self.view.document.connect(src, dst, port, src_port)
        origin = f"{src}[{src_port}]" if src_port else src  # output 1 of an LSTM: ``lstm[1]``
        if reason:
            self.view.message.emit(f"Cannot connect {origin} → {dst}: {reason}")
        else:
            self.view.message.emit(f"Connected {origin} → {dst}")

    def cancel(self) -> None:
        for port in self._checked:
            port.set_state(PortState.NORMAL)
        if self.draft.scene() is not None:
            self.scene.removeItem(self.draft)
        self.hint.hide()
        self.hint.deleteLater()


class RubberBandSelect(Interaction):
    """Drag on the background: select every card the band touches (Ctrl adds)."""

    def __init__(self, view: CanvasView, event: QMouseEvent):
        super().__init__(view)
        self.origin = view.mapToScene(event.position().toPoint())
        self.additive = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        self.before = set(self.scene.selectedItems()) if self.additive else set()
        colour = QColor(style.RUBBER_BAND)
        self.band = QGraphicsRectItem()
        self.band.setPen(QPen(colour, 0))
        colour.setAlpha(30)
        self.band.setBrush(colour)
        self.band.setZValue(20)
        self.scene.addItem(self.band)
        self._select(QRectF(self.origin, self.origin))

    def move(self, event: QMouseEvent) -> None:
        corner = self.view.mapToScene(event.position().toPoint())
        rect = QRectF(self.origin, corner).normalized()
        self.band.setRect(rect)
        self._select(rect)

    def _select(self, rect: QRectF) -> None:
        inside = {item for item in self.scene.items(rect) if isinstance(item, NodeItem)}
        wanted = inside | self.before
        with QSignalBlocker(self.scene):
            for item in self.scene.selectedItems():
                if item not in wanted:
                    item.setSelected(False)
            for item in wanted:
                item.setSelected(True)
        self.scene.selectionChanged.emit()

    def release(self, event: QMouseEvent) -> None:
        self.move(event)
        self.cancel()

    def cancel(self) -> None:
        if self.band.scene() is not None:
            self.scene.removeItem(self.band)


class Pan(Interaction):
    """Middle-button drag, or Space + drag: scroll the view with the hand."""

    def __init__(self, view: CanvasView, event: QMouseEvent):
        super().__init__(view)
        self.last = event.position().toPoint()
        view.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def move(self, event: QMouseEvent) -> None:
        point = event.position().toPoint()
        delta = point - self.last
        self.last = point
        self.view.scroll_by(-delta.x(), -delta.y())

    def release(self, event: QMouseEvent) -> None:
        self.cancel()

    def cancel(self) -> None:
        self.view.viewport().unsetCursor()


class RenameEditor(QLineEdit):
    """An inline editor over a card's id: Enter (or leaving it) renames, Escape cancels."""

    def __init__(self, view: CanvasView, item: NodeItem):
        super().__init__(item.node_id, view.viewport())
        self.view = view
        self.node_id = item.node_id
        self._done = False
        rect = item.mapRectToScene(item.name_rect().adjusted(-3, -2, 3, 2))
        top_left = view.mapFromScene(rect.topLeft())
        bottom_right = view.mapFromScene(rect.bottomRight())
        self.setGeometry(top_left.x(), top_left.y(), *_size(top_left, bottom_right))
        self.setStyleSheet(
            f"QLineEdit {{ border: 2px solid {style.SELECTED}; border-radius: 4px;"
            " padding: 0 3px; background: white; }"
        )
        self.selectAll()
        self.returnPressed.connect(self.commit)
        self.show()
        self.setFocus(Qt.FocusReason.OtherFocusReason)

    def commit(self) -> None:
        if self._done:
            return
        self._done = True
        new = self.text().strip()
        if new and new != self.node_id:
            try:
                self.view.document.rename(self.node_id, new)
            except NodenetError as err:
                self.view.message.emit(str(err))
            else:
                self.view.message.emit(f"Renamed {self.node_id} to {new}")
        self._close()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self._done = True
            self._close()
            return
        super().keyPressEvent(event)

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.commit()

    def _close(self) -> None:
        self.hide()
        self.deleteLater()
        self.view.setFocus(Qt.FocusReason.OtherFocusReason)


def _hint_label(view: CanvasView) -> QLabel:
    """The red note that says, while a link is held over a port, why it would be refused."""
    hint = QLabel(view.viewport())
    hint.setObjectName("link_refusal")
    hint.setWordWrap(True)
    hint.setMaximumWidth(420)
    hint.setStyleSheet(
        f"QLabel {{ background: white; color: {style.PORT_REFUSED}; border: 1px solid"
        f" {style.PORT_REFUSED}; border-radius: 4px; padding: 3px 6px; }}"
    )
    hint.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    hint.hide()
    return hint


def _size(top_left: QPoint, bottom_right: QPoint) -> tuple[int, int]:
    return max(80, bottom_right.x() - top_left.x()), max(22, bottom_right.y() - top_left.y())

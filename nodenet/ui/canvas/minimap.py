"""An overview of the whole graph in the corner of the canvas; click or drag to navigate.

It draws each card as a small rectangle in its category colour (from the
scene's node map, never by rendering the scene), so it stays cheap for big
graphs. It shows itself only when part of the graph is out of view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QApplication, QWidget

from nodenet.ui.canvas import style

if TYPE_CHECKING:
    from nodenet.ui.canvas.view import CanvasView

WIDTH = 220
HEIGHT_RANGE = (70, 170)  # the height follows the graph's aspect ratio within this range
MIN_WIDTH = 120  # narrower than this, the minimap is not shown
MARGIN = 8.0
CORNER = 12  # distance from the view's bottom-right corner


class Minimap(QWidget):
    """The overview widget, a child of the canvas view."""

    def __init__(self, view: CanvasView):
        super().__init__(view)
        self.view = view
        self.enabled = True
        self._cards: list[tuple[QColor, list[QRectF]]] | None = None  # mapped rects by colour
        self._world_rect: QRectF | None = None
        self.setFixedSize(WIDTH, HEIGHT_RANGE[1])
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview: click or drag to move the view")
        self._timer = QTimer(self, singleShot=True, interval=40)
        self._timer.timeout.connect(self.refresh)
        view.canvas_scene.itemsChanged.connect(self.cards_changed)
        view.canvas_scene.changed.connect(self._scene_repainted)
        view.horizontalScrollBar().valueChanged.connect(self.schedule)
        view.verticalScrollBar().valueChanged.connect(self.schedule)
        self.hide()

    def schedule(self, *args) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _scene_repainted(self, *args) -> None:
        """While a mouse button is down cards may be dragged: follow them live. Otherwise
        a repaint alone (a selection, a hover) leaves the cards where they are."""
        if QApplication.mouseButtons() != Qt.MouseButton.NoButton:
            self.cards_changed()

    def cards_changed(self, *args) -> None:
        """The scene changed (cards added, moved, recoloured): redraw them on the next refresh."""
        self._cards = None
        self._world_rect = None
        self.schedule()

    def _card_rects(self) -> list[tuple[QColor, list[QRectF]]]:
        """The cards as minimap rectangles, grouped by colour (kept until the scene changes)."""
        if self._cards is None:
            world = self._world()
            scale, offset = self._scale(world)
            dx, dy = offset.x() - world.left() * scale, offset.y() - world.top() * scale
            groups: dict[str, list[QRectF]] = {}
            for item in self.view.canvas_scene.nodes.values():
                face = item.face
                colour = style.PROBLEM if face.problems else style.category_color(face.category)
                r = item.scene_rect()
                groups.setdefault(colour, []).append(
                    QRectF(
                        r.x() * scale + dx,
                        r.y() * scale + dy,
                        r.width() * scale,
                        r.height() * scale,
                    )
                )
            self._cards = [(QColor(c), rects) for c, rects in groups.items()]
        return self._cards

    def _mapped(self, rect: QRectF) -> QRectF:
        world = self._world()
        scale, offset = self._scale(world)
        top_left = (rect.topLeft() - world.topLeft()) * scale + offset
        return QRectF(top_left.x(), top_left.y(), rect.width() * scale, rect.height() * scale)

    def refresh(self) -> None:
        """Show (and repaint) when part of the graph is out of view; hide otherwise, and
        while the canvas is too small to spare the room (the Run panel has taken it)."""
        graph = self.view.canvas_scene.graph_rect()
        visible = self.view.visible_scene_rect()
        viewport = self.view.viewport()
        # a fifth of the canvas's width at most (a small canvas keeps its cards in view)
        shrink = min(1.0, viewport.width() / (5 * WIDTH), viewport.height() / (3 * HEIGHT_RANGE[1]))
        width = round(WIDTH * shrink)
        roomy = width >= MIN_WIDTH
        wanted = self.enabled and roomy and not graph.isEmpty() and not visible.contains(graph)
        self.setVisible(wanted)
        if wanted:
            world = self._world()
            aspect = world.height() / max(world.width(), 1.0)
            low, high = (round(h * shrink) for h in HEIGHT_RANGE)
            height = round(min(max((width - 2 * MARGIN) * aspect + 2 * MARGIN, low), high))
            if (width, height) != (self.width(), self.height()):
                self.setFixedSize(width, height)
                self._cards = None
            self.place()
            self.update()

    def place(self) -> None:
        viewport = self.view.viewport().geometry()
        self.move(
            viewport.right() - self.width() - CORNER, viewport.bottom() - self.height() - CORNER
        )

    # -- mapping -----------------------------------------------------------------------

    def _world(self) -> QRectF:
        """The scene area shown: the graph, with a margin (kept until the scene changes)."""
        if self._world_rect is None:
            self._world_rect = self.view.canvas_scene.graph_rect().adjusted(-80, -80, 80, 80)
        return self._world_rect

    def _scale(self, world: QRectF) -> tuple[float, QPointF]:
        inner_w, inner_h = self.width() - 2 * MARGIN, self.height() - 2 * MARGIN
        scale = min(inner_w / max(world.width(), 1.0), inner_h / max(world.height(), 1.0))
        offset = QPointF(
            MARGIN + (inner_w - world.width() * scale) / 2,
            MARGIN + (inner_h - world.height() * scale) / 2,
        )
        return scale, offset

    def to_scene(self, point: QPointF) -> QPointF:
        world = self._world()
        scale, offset = self._scale(world)
        return world.topLeft() + (point - offset) / scale

    # -- painting and mouse ------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(style.CARD_BORDER), 1))
        background = QColor(style.CARD)
        background.setAlpha(235)
        painter.setBrush(background)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 8, 8)
        painter.setPen(Qt.PenStyle.NoPen)
        for colour, rects in self._card_rects():
            painter.setBrush(colour)
            painter.drawRects(rects)
        frame = QColor(style.SELECTED)
        painter.setPen(QPen(frame, 1.5))
        frame.setAlpha(25)
        painter.setBrush(frame)
        inner = QRectF(self.rect()).adjusted(MARGIN / 2, MARGIN / 2, -MARGIN / 2, -MARGIN / 2)
        painter.drawRect(self._mapped(self.view.visible_scene_rect()).intersected(inner))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.view.centerOn(self.to_scene(event.position()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.view.centerOn(self.to_scene(event.position()))

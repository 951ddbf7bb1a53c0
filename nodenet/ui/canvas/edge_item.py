"""An edge: a bezier curve from an output port to an input port, labelled with its shape."""

from __future__ import annotations

import math
from collections import defaultdict

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QStyleOptionGraphicsItem, QWidget

from nodenet.ui.canvas import style
from nodenet.ui.canvas.node_item import NodeItem

LABEL_PLACES = (0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74, 0.18, 0.82)
LABEL_PAD = QPointF(6.0, 2.5)


Box = tuple[float, float, float, float]  # x0, y0, x1, y1


class LabelSpace:
    """What an edge label must not cover (cards, other labels), in a coarse grid.

    Placing a label asks a few grid cells instead of the scene, and stops at the
    first card it hits, so even 300 cards stacked at one spot (a project without
    positions) cost little. The cards' grid is rebuilt lazily after any card moved.
    """

    CELL = 240.0

    def __init__(self, scene: QGraphicsScene):
        self.scene = scene
        self._cards: dict[tuple[int, int], list[Box]] | None = None
        self._labels: dict[tuple[int, int], dict[EdgeItem, Box]] = defaultdict(dict)
        self._label_cells: dict[EdgeItem, list[tuple[int, int]]] = {}

    def cards_moved(self) -> None:
        self._cards = None

    def _cells(self, box: Box) -> list[tuple[int, int]]:
        c = self.CELL
        xs = range(math.floor(box[0] / c), math.floor(box[2] / c) + 1)
        ys = range(math.floor(box[1] / c), math.floor(box[3] / c) + 1)
        return [(x, y) for x in xs for y in ys]

    def _card_grid(self) -> dict[tuple[int, int], list[Box]]:
        if self._cards is None:
            self._cards = defaultdict(list)
            for item in self.scene.nodes.values():
                r = item.sceneBoundingRect()
                box = (r.left(), r.top(), r.right(), r.bottom())
                for cell in self._cells(box):
                    self._cards[cell].append(box)
        return self._cards

    def is_free(self, box: Box, edge: EdgeItem) -> bool:
        cells = self._cells(box)
        cards = self._card_grid()
        for cell in cells:
            for other in cards.get(cell, ()):
                if _overlap(box, other):
                    return False
        for cell in cells:
            for owner, other in self._labels.get(cell, {}).items():
                if owner is not edge and _overlap(box, other):
                    return False
        return True

    def labels_near(self, rect: QRectF) -> set[EdgeItem]:
        """Edges whose label lies in the grid cells around ``rect``."""
        box = (rect.left(), rect.top(), rect.right(), rect.bottom())
        return {edge for cell in self._cells(box) for edge in self._labels.get(cell, {})}

    def set_label(self, edge: EdgeItem, rect: QRectF | None) -> None:
        for cell in self._label_cells.pop(edge, ()):
            self._labels[cell].pop(edge, None)
        if rect is not None:
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            cells = self._cells(box)
            for cell in cells:
                self._labels[cell][edge] = box
            self._label_cells[edge] = cells


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


_FONT: list[tuple[QFont, QFontMetricsF]] = []


def _label_font() -> tuple[QFont, QFontMetricsF]:
    """The edge labels' font and its metrics, made once (fonts need a running application)."""
    if not _FONT:
        font = QFont()
        font.setFamilies([f.strip() for f in style.FONT_FAMILY.split(",")])
        font.setPointSizeF(style.LABEL_PT)
        _FONT.append((font, QFontMetricsF(font)))
    return _FONT[0]


def bezier(start: QPointF, end: QPointF) -> QPainterPath:
    """The curve an edge draws: it leaves ``start`` rightwards and enters ``end`` from the left."""
    dx = end.x() - start.x()
    reach = max(abs(dx) * 0.5, 50.0) if dx >= 0 else max(-dx * 0.35, 80.0)
    path = QPainterPath(start)
    path.cubicTo(start + QPointF(reach, 0), end - QPointF(reach, 0), end)
    return path


WRAP_RADIUS = 24.0  # the corners of a wire wrapping to a lower row
WRAP_OUT = 28.0  # how far right of its port (left of its target) the wrap turns


def wrapped(start: QPointF, end: QPointF, gap_y: float) -> QPainterPath:
    """The wire into a lower row that starts left of ``start`` (a layout folded into rows):
    out to the right, down into the gap above the target's row at ``gap_y``, left along
    it, down into the target: it runs between the rows, not across their cards."""
    right, left = start.x() + WRAP_OUT, end.x() - WRAP_OUT
    points = [start, QPointF(right, start.y()), QPointF(right, gap_y)]
    points += [QPointF(left, gap_y), QPointF(left, end.y()), end]
    path = QPainterPath(start)
    for before, corner, after in zip(points, points[1:], points[2:], strict=False):
        radius = min(WRAP_RADIUS, _length(before, corner) / 2, _length(corner, after) / 2)
        path.lineTo(_toward(corner, before, radius))
        path.quadTo(corner, _toward(corner, after, radius))
    path.lineTo(end)
    return path


def _length(a: QPointF, b: QPointF) -> float:
    return abs(a.x() - b.x()) + abs(a.y() - b.y())  # the segments are horizontal or vertical


def _toward(corner: QPointF, other: QPointF, distance: float) -> QPointF:
    length = _length(corner, other)
    if length == 0:
        return QPointF(corner)
    return corner + (other - corner) * (distance / length)


class EdgeItem(QGraphicsItem):
    """The wire from output ``src_port`` of ``src`` to input ``port`` of ``dst``; lives at
    the scene origin."""

    def __init__(self, src: NodeItem, dst: NodeItem, port: int, src_port: int = 0):
        super().__init__()
        self.src_item = src
        self.dst_item = dst
        self.port = port
        self.src_port = src_port
        self.label = ""
        self.label_source: tuple | None = None  # what the scene last labelled it from
        self._tooltip = ""
        self.highlighted = False  # a block held over it would be inserted here
        self.refused = False  # ... or would be refused (highlighted red)
        self._path = QPainterPath()
        self._label_rect: QRectF | None = None
        self._shape: QPainterPath | None = None  # the clickable outline, built when asked
        self._bounds = QRectF()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(-1)
        self.setAcceptHoverEvents(True)
        src.edges.add(self)
        dst.edges.add(self)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.src_item.node_id, self.dst_item.node_id, self.port)

    def detach(self) -> None:
        """Forget both nodes and free the label's spot (before the item leaves the scene)."""
        self.src_item.edges.discard(self)
        self.dst_item.edges.discard(self)
        space = getattr(self.scene(), "label_space", None)
        if space is not None:
            space.set_label(self, None)

    def set_label(self, text: str, tooltip: str) -> None:
        """Show ``text`` on the curve (placed anew only when it changed) and ``tooltip``."""
        if text != self.label:
            self.label = text
            self.place_label()
        if tooltip != self._tooltip:
            self._tooltip = tooltip
            self.setToolTip(tooltip)

    def set_highlighted(self, flag: bool, refused: bool = False) -> None:
        """Show (or stop showing) that a block dropped now would go on this edge (green),
        or would be refused there (red)."""
        if (flag, refused) != (self.highlighted, self.refused):
            self.highlighted, self.refused = flag, refused and flag
            self.update()

    # -- geometry --------------------------------------------------------------------

    def update_path(self, place_label: bool = True) -> None:
        """Follow the ports; with ``place_label=False`` the label waits for :meth:`place_label`."""
        start = self.src_item.output_anchor(self.src_port)
        end = self.dst_item.input_anchor(self.port)
        self.prepareGeometryChange()
        self._path = self._route(start, end)
        self._shape = None
        if place_label:
            self._place(self._path)
        self._update_bounds()

    def _route(self, start: QPointF, end: QPointF) -> QPainterPath:
        """A curve, or a wrap between the rows when the target is left of the source in a
        lower row (Layout folds long graphs into rows)."""
        if end.x() < start.x() - WRAP_OUT:
            above = self.src_item.sceneBoundingRect().bottom()
            below = self.dst_item.sceneBoundingRect().top()
            if below > above + 2 * WRAP_RADIUS:
                gap_y = below - min(style.LAYER_GAP / 2, (below - above) / 2)
                return wrapped(start, end, gap_y)
        return bezier(start, end)

    def place_label(self) -> None:
        """Find a spot on the curve where the label covers no node and no other label."""
        self.prepareGeometryChange()
        self._shape = None
        self._place(self._path)
        self._update_bounds()
        self.update()

    def label_rect(self) -> QRectF | None:
        return self._label_rect

    def _place(self, path: QPainterPath) -> None:
        self._label_rect = None
        space = getattr(self.scene(), "label_space", None)
        if space is None:
            return
        if self.label:
            metrics = _label_font()[1]
            width = metrics.horizontalAdvance(self.label) + 2 * LABEL_PAD.x()
            height = metrics.height() + 2 * LABEL_PAD.y()
            for t in LABEL_PLACES:
                centre = path.pointAtPercent(t)
                x, y = centre.x() - width / 2, centre.y() - height / 2
                if space.is_free((x - 3, y - 3, x + width + 3, y + height + 3), self):
                    self._label_rect = QRectF(x, y, width, height)
                    break
        space.set_label(self, self._label_rect)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def _update_bounds(self) -> None:
        rect = self._path.boundingRect().adjusted(-4, -4, 4, 4)
        if self._label_rect is not None:
            rect = rect.united(self._label_rect.adjusted(-1, -1, 1, 1))
        self._bounds = rect

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(12)
            self._shape = stroker.createStroke(self._path)
            if self._label_rect is not None:
                self._shape.addRect(self._label_rect)
        return self._shape

    # -- painting -----------------------------------------------------------------------

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, lod >= style.OVERVIEW_ZOOM)
        colour = QColor(style.EDGE_SELECTED if self.isSelected() else style.EDGE)
        width = style.EDGE_PEN * (1.5 if self.isSelected() else 1.0)
        if self.highlighted:
            colour = QColor(style.PORT_REFUSED if self.refused else style.PORT_OK)
            width = style.EDGE_PEN * 2.5
        pen = QPen(colour, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        if lod < style.OVERVIEW_ZOOM:
            pen.setWidthF(1.0)
            pen.setCosmetic(True)  # one pixel wide however far out
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._path)
        if self._label_rect is not None and lod >= style.DETAIL_ZOOM:
            rect = self._label_rect
            painter.setPen(QPen(colour if self.isSelected() else QColor(style.CARD_BORDER), 1))
            painter.setBrush(QColor(style.LABEL_BACKGROUND))
            painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
            painter.setPen(QColor(style.TEXT_MUTED))
            painter.setFont(_label_font()[0])
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.label)

"""The canvas widget: a QGraphicsView over the document's scene, with every gesture and key.

Gestures become Document edits (each one undo command); the view never touches
the project itself. Refusals and confirmations go out through ``message``,
which the main window shows in its status bar.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFontInfo,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QResizeEvent,
    QShowEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsView, QLabel, QWidget

from nodenet.graph.bands import VIEW, auto_layout
from nodenet.ui.actions import canvas_keys, key_of
from nodenet.ui.canvas import menus, style
from nodenet.ui.canvas.edge_item import EdgeItem
from nodenet.ui.canvas.editing import READ_ONLY_BANNER, CanvasEditing
from nodenet.ui.canvas.group_editing import CanvasGroupEditing
from nodenet.ui.canvas.interactions import (
    Interaction,
    NewLinkDrag,
    Pan,
    RubberBandSelect,
)
from nodenet.ui.canvas.minimap import Minimap
from nodenet.ui.canvas.node_item import NodeItem, _Fonts
from nodenet.ui.canvas.port_item import PortItem
from nodenet.ui.canvas.scene import CanvasScene
from nodenet.ui.document import BLOCK_MIME

ZOOM_STEP = 1.2


class CanvasView(CanvasGroupEditing, CanvasEditing, QGraphicsView):
    """The node editor canvas for ``document``, sharing ``selection`` with the other views.

    Public slots (for menus and toolbars): :meth:`copy_selection`,
    :meth:`cut_selection`, :meth:`paste`, :meth:`duplicate_selection`,
    :meth:`delete_selection`, :meth:`select_all`, :meth:`rename_node`,
    :meth:`zoom_in`, :meth:`zoom_out`, :meth:`reset_zoom`, :meth:`fit_to_view`,
    :meth:`auto_layout`.
    """

    message = Signal(str)
    openGroupRequested = Signal(str)  # a group block's id: show its inside
    closeGroupRequested = Signal()  # back to the graph around the group on show

    def __init__(self, document, selection, parent: QWidget | None = None):
        super().__init__(parent)
        self.canvas_scene = CanvasScene(document, self)
        self.setScene(self.canvas_scene)
        self.document = document
        self.selection = selection
        self.interaction: Interaction | None = None
        self._space_held = False
        self._syncing = False
        self._press_positions: dict[str, QPointF] = {}
        self._paste_count = 0
        self._fitted = False
        self._untouched = False  # as show_start left it: a resize shows the graph again
        self._starting = False
        document.layout_engine = self._layout
        self._setup_view()
        self.minimap = Minimap(self)
        self.banner = self._make_banner()
        self.canvas_scene.selectionChanged.connect(self._selection_to_model)
        selection.changed.connect(self._selection_from_model)
        document.readOnlyChanged.connect(self._read_only_changed)
        document.projectReplaced.connect(self._project_replaced)
        document.undo_stack.indexChanged.connect(self._touched)
        # the shared selection follows a rename before the scene does: select again after
        document.nodeRenamed.connect(self._after_rename)
        self._read_only_changed(document.read_only)
        # the commands' keys (nodenet.ui.actions), then the view's own: Esc ends a gesture
        # or clears the selection, Ctrl+0 resets the zoom
        self.keys = canvas_keys(self)
        self.keys.update(
            {
                key_of(QKeySequence("Esc")[0]): self._escape,
                key_of(QKeySequence("Ctrl+0")[0]): self.reset_zoom,
            }
        )

    def _setup_view(self) -> None:
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().grabGesture(Qt.GestureType.PinchGesture)
        self.centerOn(0, 0)

    def _make_banner(self) -> QLabel:
        banner = QLabel(READ_ONLY_BANNER, self)
        banner.setStyleSheet(
            f"QLabel {{ background: {style.BANNER}; color: {style.BANNER_TEXT};"
            " border-radius: 12px; padding: 5px 16px; font-weight: 600; }"
        )
        banner.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        banner.hide()
        return banner

    # -- queries -----------------------------------------------------------------------

    def visible_scene_rect(self) -> QRectF:
        return self.mapToScene(self.viewport().rect()).boundingRect()

    def zoom(self) -> float:
        return self.transform().m11()

    def node_item(self, node_id: str) -> NodeItem:
        return self.canvas_scene.nodes[node_id]

    # -- selection ------------------------------------------------------------------------

    def _selection_to_model(self) -> None:
        # a card leaving with its node: the Selection forgets the id itself (no O(N) scan
        # per removed card, which made deleting 2,000 selected blocks quadratic)
        if not self._syncing and not self.canvas_scene.removing:
            self._syncing = True
            try:
                self.selection.set(self.canvas_scene.selected_ids())
            finally:
                self._syncing = False

    def _selection_from_model(self) -> None:
        if not self._syncing:
            # chosen elsewhere (the problems dock, the inspector): show it
            self._apply_selection(reveal=True)

    def _apply_selection(self, reveal: bool) -> None:
        self._syncing = True
        try:
            wanted = set(self.selection.ids())
            for node_id, item in self.canvas_scene.nodes.items():
                item.setSelected(node_id in wanted)
            for edge in self.canvas_scene.edges.values():
                edge.setSelected(False)
        finally:
            self._syncing = False
        shown = [self.canvas_scene.nodes[i] for i in wanted if i in self.canvas_scene.nodes]
        if reveal and len(shown) == 1:
            self.ensureVisible(shown[0], 40, 40)

    def _after_rename(self, old: str, new: str) -> None:
        self._apply_selection(reveal=False)

    def select_ids(self, ids: list[str]) -> None:
        """Select these nodes (in the shared selection too) without moving the view."""
        self._syncing = True
        try:
            self.selection.set([i for i in ids if i in self.canvas_scene.nodes])
        finally:
            self._syncing = False
        self._apply_selection(reveal=False)

    def select_all(self) -> None:
        self.select_ids(list(self.canvas_scene.nodes))

    # -- zoom and pan ----------------------------------------------------------------------

    def _touched(self, *_) -> None:
        if not self._starting:
            self._untouched = False

    def zoom_by(self, factor: float, anchor_under_mouse: bool = True) -> None:
        self._touched()
        current = self.zoom()
        target = min(max(current * factor, style.MIN_ZOOM), style.MAX_ZOOM)
        if abs(target - current) < 1e-9:
            return
        anchor = (
            QGraphicsView.ViewportAnchor.AnchorUnderMouse
            if anchor_under_mouse
            else QGraphicsView.ViewportAnchor.AnchorViewCenter
        )
        self.setTransformationAnchor(anchor)
        self.scale(target / current, target / current)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.minimap.schedule()

    def zoom_in(self) -> None:
        self.zoom_by(ZOOM_STEP, anchor_under_mouse=False)

    def zoom_out(self) -> None:
        self.zoom_by(1 / ZOOM_STEP, anchor_under_mouse=False)

    def reset_zoom(self) -> None:
        self.zoom_by(1 / self.zoom(), anchor_under_mouse=False)

    def detail_text_px(self, zoom: float | None = None) -> float:
        """On-screen height (font pixel size) of a card's smallest detail line at ``zoom``
        (default: the current zoom); 0 below the zoom where cards draw no details."""
        zoom = self.zoom() if zoom is None else zoom
        if zoom < style.DETAIL_ZOOM:
            return 0.0
        fonts = _Fonts.get()
        sizes = [f.pointSizeF() * self.logicalDpiY() / 72 for f in (fonts.body, fonts.mono)]
        sizes += [QFontInfo(f).pixelSize() for f in (fonts.body, fonts.mono)]  # as rendered
        return min(sizes) * zoom

    def legible_zoom(self) -> float:
        """The zoom-out limit of Fit: cards' detail lines :data:`style.LEGIBLE_PX` high."""
        return max(style.DETAIL_ZOOM, style.LEGIBLE_PX / self.detail_text_px(1.0))

    def _layout(self, project):
        """The Layout action's engine: folded for this view's size at the legible zoom."""
        size = self.viewport().size()
        shown = self.isVisible() and size.width() >= 200 and size.height() >= 150
        view = (float(size.width()), float(size.height())) if shown else VIEW
        return auto_layout(project, view, legible_zoom=self.legible_zoom())

    def fit_to_view(self) -> None:
        """Everything in view, unless its card text would be too small to read: then the
        start of the graph (top left: its inputs, its first band) at :meth:`legible_zoom`,
        the minimap showing the rest (zooming out still shows all of it)."""
        rect = self.canvas_scene.graph_rect()
        if rect.isEmpty():
            self.centerOn(0, 0)
            return
        self.fitInView(rect.adjusted(-48, -48, 48, 48), Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom() > 1.25:
            self.zoom_by(1.25 / self.zoom(), anchor_under_mouse=False)
        elif self.zoom() < style.MIN_ZOOM:
            self.zoom_by(style.MIN_ZOOM / self.zoom(), anchor_under_mouse=False)
        self.centerOn(rect.center())
        if self.zoom() < self.legible_zoom():
            self._show_rect_start(rect, self.legible_zoom())
        self.minimap.schedule()

    def _show_rect_start(self, rect: QRectF, zoom: float) -> None:
        """``rect``'s top left (its inputs, the first band) at ``zoom``."""
        self.zoom_by(zoom / self.zoom(), anchor_under_mouse=False)
        visible = self.visible_scene_rect()
        fits_x = rect.width() + 96 <= visible.width()
        fits_y = rect.height() + 96 <= visible.height()
        x = rect.center().x() if fits_x else rect.left() - 48 + visible.width() / 2
        y = rect.center().y() if fits_y else rect.top() - 48 + visible.height() / 2
        self.centerOn(x, y)

    def show_start(self) -> None:
        """A newly opened graph: all of it if it fits readably, else its inputs' end.

        Below :meth:`legible_zoom` card text is too small to read, so a big graph
        opens at that zoom with its start (the inputs) in view; the minimap
        and F show the rest.
        """
        self._starting = True
        try:
            self._show_start()
        finally:
            self._starting = False
        self._untouched = True

    def _show_start(self) -> None:
        self.fit_to_view()

    def scroll_by(self, dx: float, dy: float) -> None:
        self._touched()
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(dx))
        v.setValue(v.value() + round(dy))

    def wheelEvent(self, event: QWheelEvent) -> None:
        pixels = event.pixelDelta()
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if not pixels.isNull() and not ctrl:  # a touchpad scrolls
            self.scroll_by(-pixels.x(), -pixels.y())
            return
        delta = event.angleDelta().y() or event.angleDelta().x()
        self.zoom_by(1.0015**delta)

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Gesture:
            pinch = event.gesture(Qt.GestureType.PinchGesture)
            if pinch is not None:
                self.zoom_by(pinch.scaleFactor())
                event.accept()
                return True
        native = event.type() == QEvent.Type.NativeGesture
        if native and event.gestureType() == Qt.NativeGestureType.ZoomNativeGesture:
            self.zoom_by(1.0 + event.value())
            return True
        return super().viewportEvent(event)

    def paintEvent(self, event) -> None:
        # before painting: ports are drawn only at a zoom where they can be seen
        self.canvas_scene.set_detailed(self.zoom() >= style.DETAIL_ZOOM)
        super().paintEvent(event)

    # -- mouse ---------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.interaction is not None:
            return
        button = event.button()
        left = button == Qt.MouseButton.LeftButton
        if button == Qt.MouseButton.MiddleButton or (left and self._space_held):
            self.interaction = Pan(self, event)
            return
        item = self.itemAt(event.position().toPoint())
        if left and isinstance(item, PortItem):
            if self._editable():
                self.interaction = NewLinkDrag(self, item)
            return
        if left and item is None:
            self.interaction = RubberBandSelect(self, event)
            return
        super().mousePressEvent(event)
        if left:
            self._press_positions = {
                i: self.canvas_scene.nodes[i].pos() for i in self.canvas_scene.selected_ids()
            }

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self.interaction is not None:
            self.interaction.move(event)
            return
        super().mouseMoveEvent(event)
        if event.buttons() & Qt.MouseButton.LeftButton and self._press_positions:
            self.track_insert(self.mapToScene(event.position().toPoint()))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self.interaction is not None:
            interaction, self.interaction = self.interaction, None
            interaction.release(event)
            return
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self._commit_move()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        item = self.itemAt(event.position().toPoint())
        if isinstance(item, NodeItem):
            local = item.mapFromScene(self.mapToScene(event.position().toPoint()))
            if item.name_rect().adjusted(0, -2, 0, 2).contains(local):  # on the id: rename
                self.select_ids([item.node_id])
                self.rename_node(item.node_id)
                return
            if self.canvas_scene._graph_maps()[0][item.node_id].type == "Group":
                self.open_group(item.node_id)
                return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = self.context_menu_at(event.pos())
        menu.exec(event.globalPos())
        menu.deleteLater()

    def context_menu_at(self, point) -> menus.QMenu:
        """The menu for what lies under viewport ``point`` (node, edge or background)."""
        item = self.itemAt(point)
        if isinstance(item, PortItem):
            item = item.parentItem()
        if isinstance(item, NodeItem):
            if not item.isSelected():
                self.select_ids([item.node_id])
            return menus.node_menu(self, item.node_id, self)
        if isinstance(item, EdgeItem):
            return menus.edge_menu(self, item.key, self)
        return menus.background_menu(self, self.mapToScene(point), self)

    # -- drag and drop from the palette -------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasFormat(BLOCK_MIME) and not self.document.read_only:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        self.dragEnterEvent(event)
        if not event.isAccepted():
            self.highlight_edge(None)
            return
        block_type = bytes(event.mimeData().data(BLOCK_MIME)).decode("utf-8", "replace")
        over = self.edge_at(self.mapToScene(event.position().toPoint()))
        self.highlight_edge(over, (block_type, None, block_type))

    def dragLeaveEvent(self, event) -> None:
        self.highlight_edge(None)
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        if not event.mimeData().hasFormat(BLOCK_MIME):
            event.ignore()
            return
        block_type = bytes(event.mimeData().data(BLOCK_MIME)).decode("utf-8")
        scene_pos = self.mapToScene(event.position().toPoint())
        if self.add_block(block_type, scene_pos):
            event.acceptProposedAction()
        self.setFocus(Qt.FocusReason.OtherFocusReason)

    # -- keys ------------------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        # keys the canvas handles itself win over window shortcuts while it has focus
        if event.type() == QEvent.Type.ShortcutOverride and self._key_action(event) is not None:
            event.accept()
            return True
        return super().event(event)

    def _key_action(self, event: QKeyEvent):
        """The canvas's own handler of this key press (see :attr:`keys`), or None."""
        return self.keys.get(key_of(event.keyCombination()))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        action = self._key_action(event)
        if action is not None:
            action()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self.viewport().unsetCursor()
            return
        super().keyReleaseEvent(event)

    def _escape(self) -> None:
        if self.interaction is not None:
            self.interaction.cancel()
            self.interaction = None
        else:
            self.select_ids([])

    # -- document state -----------------------------------------------------------------------

    def _read_only_changed(self, flag: bool) -> None:
        if flag and self.interaction is not None:
            self._escape()
        self.banner.setVisible(flag)
        self._place_overlays()

    def _project_replaced(self) -> None:
        if self.interaction is not None:
            self.interaction.cancel()
            self.interaction = None
        self._paste_count = 0
        self.show_start()

    def _place_overlays(self) -> None:
        self.banner.adjustSize()
        self.banner.move((self.width() - self.banner.width()) // 2, 12)
        self.minimap.refresh()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fitted and self._untouched:  # the window or a dock moved, not the user
            self.show_start()
        self._place_overlays()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._fitted:
            self._fitted = True
            self.show_start()
        self._place_overlays()

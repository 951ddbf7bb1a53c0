"""The block palette: every block of the catalog, grouped by category, with a search box.

Generated from the catalog (``block_types``, ``CATEGORIES``, each class's
``doc()`` and ``PARAMS``), so a new block appears here with no code. Dragging
a block starts a ``QDrag`` whose MIME data is :data:`BLOCK_MIME` with the block
type; double-click or Enter asks the window to add it at the view centre. A search
that matches nothing says so ("No block matches").
"""

from __future__ import annotations

import html
import re

from PySide6.QtCore import QMimeData, QPoint, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDrag,
    QFont,
    QFontMetrics,
    QIcon,
    QKeyEvent,
    QPainter,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nodenet.engine import CATEGORIES, block_class, block_types
from nodenet.engine.params import json_repr
from nodenet.ui.canvas.style import CATEGORY_COLORS, TEXT_MUTED, UNKNOWN_COLOR
from nodenet.ui.document import BLOCK_MIME

TYPE_ROLE = Qt.ItemDataRole.UserRole
GROUP_PREFIX = "Group:"  # a "Project blocks" entry drags "Group:NAME": an instance of NAME
PROJECT_BLOCKS = "Project blocks"


def group_of(block_type: str) -> str | None:
    """The definition a dragged ``Group:NAME`` names, ``None`` for a catalog block."""
    return block_type[len(GROUP_PREFIX) :] if block_type.startswith(GROUP_PREFIX) else None


def block_tooltip(block_type: str) -> str:
    """Rich-text help for a block: its one-line doc, ports and key parameters."""
    cls = block_class(block_type)
    doc = html.escape(cls.doc(), quote=False)
    doc = re.sub(r"``(.+?)``", r"<code>\1</code>", doc)
    if cls.N_INPUTS == 0:
        ports = "no input (data enters here)"
    elif cls.N_INPUTS is None and cls.MAX_INPUTS is not None:
        ports = f"{cls.MIN_INPUTS} to {cls.MAX_INPUTS} inputs (a port per input)"
    elif cls.N_INPUTS is None:
        ports = f"{cls.MIN_INPUTS} or more inputs (a port per input)"
    else:
        ports = f"{cls.N_INPUTS} input{'s' if cls.N_INPUTS > 1 else ''}"
    lines = [f"<b>{block_type}</b> <span style='color:#667085'>· {cls.CATEGORY}</span>", doc]
    lines.append(f"<span style='color:#667085'>{ports}</span>")
    shown = [p for p in cls.PARAMS if p.name in cls.KEY_PARAMS] or list(cls.PARAMS[:3])
    if shown:
        params = ", ".join(
            f"{p.name}={html.escape(json_repr(p.default), quote=False)}" for p in shown
        )
        lines.append(f"<code>{params}</code>")
    return "<br>".join(lines)


def category_icon(category: str, size: int = 12) -> QIcon:
    """A small rounded swatch in the category's canvas colour."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(CATEGORY_COLORS.get(category, UNKNOWN_COLOR)))
    painter.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
    painter.end()
    return QIcon(pixmap)


def drag_chip(block_type: str, font: QFont) -> QPixmap:
    """The picture under the cursor while a block is dragged."""
    name = group_of(block_type)
    category = "Group" if name is not None else block_class(block_type).CATEGORY
    colour = QColor(CATEGORY_COLORS.get(category, UNKNOWN_COLOR))
    block_type = name if name is not None else block_type
    font = QFont(font)
    font.setBold(True)
    width = QFontMetrics(font).horizontalAdvance(block_type) + 24
    pixmap = QPixmap(width, 24)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawRoundedRect(0, 0, width, 24, 7, 7)
    painter.setFont(font)
    painter.setPen(QColor("#ffffff"))
    painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, block_type)
    painter.end()
    return pixmap


class BlockTree(QTreeWidget):
    """The tree of blocks; dragging a block carries its type as :data:`BLOCK_MIME`."""

    activated_type = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setRootIsDecorated(False)
        self.setIndentation(10)
        self.setIconSize(QSize(12, 12))
        self.setUniformRowHeights(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.itemDoubleClicked.connect(self._activate)

    def mimeTypes(self) -> list[str]:
        return [BLOCK_MIME]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        mime = QMimeData()
        types = [item.data(0, TYPE_ROLE) for item in items if item.data(0, TYPE_ROLE)]
        if types:
            mime.setData(BLOCK_MIME, types[0].encode("utf-8"))
            mime.setText(types[0])
        return mime

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def startDrag(self, supported: Qt.DropAction) -> None:
        """Drag the current block as a chip in its category colour."""
        item = self.currentItem()
        block_type = item.data(0, TYPE_ROLE) if item is not None else None
        if not block_type:
            return
        drag = QDrag(self)
        drag.setMimeData(self.mimeData([item]))
        drag.setPixmap(drag_chip(block_type, self.font()))
        drag.setHotSpot(QPoint(12, 12))
        drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        item = self.currentItem()
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and item is not None:
            self._activate(item)
            return
        super().keyPressEvent(event)

    def _activate(self, item: QTreeWidgetItem) -> None:
        block_type = item.data(0, TYPE_ROLE)
        if block_type:
            self.activated_type.emit(block_type)


class Palette(QWidget):
    """Search box over the block tree. ``blockActivated(type)``: add this block."""

    blockActivated = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search blocks…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip(
            "Filter the blocks by name, category or help; Enter adds the best match"
        )
        self.tree = BlockTree(self)
        self.no_match = QLabel("No block matches.", self)
        self.no_match.setObjectName("no_match")
        self.no_match.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.no_match.setWordWrap(True)
        self.no_match.setStyleSheet(f"color: {TEXT_MUTED}; padding: 8px;")
        self.no_match.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.no_match)
        layout.addWidget(self.tree)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._groups: dict[str, QTreeWidgetItem] = {}  # definition name -> its entry
        self._group_header: QTreeWidgetItem | None = None
        self._document = None
        self._build()
        self.search.textChanged.connect(self.set_filter)
        self.search.returnPressed.connect(self._activate_first)
        self.tree.activated_type.connect(self.blockActivated)

    def _build(self) -> None:
        categories: dict[str, QTreeWidgetItem] = {}
        for category in CATEGORIES:
            header = QTreeWidgetItem(self.tree, [category])
            header.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = header.font(0)
            font.setBold(True)
            header.setFont(0, font)
            header.setIcon(0, category_icon(category))
            categories[category] = header
        for block_type in block_types():
            cls = block_class(block_type)
            parent = categories[cls.CATEGORY]
            item = QTreeWidgetItem(parent, [block_type])
            item.setData(0, TYPE_ROLE, block_type)
            item.setToolTip(0, block_tooltip(block_type))
            item.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsDragEnabled
            )
            self._items[block_type] = item
        for header in categories.values():
            header.setHidden(header.childCount() == 0)
        self.tree.expandAll()

    def item(self, block_type: str) -> QTreeWidgetItem:
        """The entry of a catalog block, or of a project's group (``Group:NAME``)."""
        name = group_of(block_type)
        return self._items[block_type] if name is None else self._groups[name]

    # -- the project's own blocks: its group definitions ----------------------------------

    def attach(self, document) -> None:
        """List ``document``'s group definitions under "Project blocks", kept up to date."""
        self._document = document
        document.analysisChanged.connect(self._sync_groups)
        document.projectReplaced.connect(self._sync_groups)
        self._sync_groups()

    def group_names(self) -> list[str]:
        """The definitions listed under "Project blocks"."""
        return list(self._groups)

    def group_item(self, name: str) -> QTreeWidgetItem:
        return self._groups[name]

    def _sync_groups(self) -> None:
        names = list(getattr(self._document.project, "groups", None) or {})
        if names == list(self._groups):
            return
        if self._group_header is None:
            header = QTreeWidgetItem([PROJECT_BLOCKS])
            self.tree.insertTopLevelItem(0, header)
            header.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = header.font(0)
            font.setBold(True)
            header.setFont(0, font)
            header.setIcon(0, category_icon("Group"))
            header.setToolTip(
                0, "This project's groups: drag one onto the canvas to add an instance"
            )
            self._group_header = header
        header = self._group_header
        header.takeChildren()
        self._groups = {}
        for name in names:
            item = QTreeWidgetItem(header, [name])
            item.setData(0, TYPE_ROLE, GROUP_PREFIX + name)
            item.setToolTip(
                0,
                f"<b>{html.escape(name)}</b> — a group of this project: drag it "
                "onto the canvas to add an instance with its own weights",
            )
            item.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsDragEnabled
            )
            self._groups[name] = item
        self._filter_groups(self.search.text().lower().split())
        header.setExpanded(True)

    def block_types(self) -> list[str]:
        return list(self._items)

    def visible_types(self) -> list[str]:
        return [t for t, item in self._items.items() if not item.isHidden()]

    def set_filter(self, text: str) -> None:
        """Show the blocks whose name, category or help contains every word of ``text``."""
        words = text.lower().split()
        for block_type, item in self._items.items():
            cls = block_class(block_type)
            haystack = f"{block_type} {cls.CATEGORY} {cls.doc()}".lower()
            item.setHidden(not all(w in haystack for w in words))
        for i in range(self.tree.topLevelItemCount()):
            header = self.tree.topLevelItem(i)
            children = [header.child(j) for j in range(header.childCount())]
            header.setHidden(all(c.isHidden() for c in children))
        self._filter_groups(words)
        self.tree.expandAll()
        entries = [*self._items.values(), *self._groups.values()]
        none = bool(words) and all(item.isHidden() for item in entries)
        if none:
            self.no_match.setText(f"No block matches “{text.strip()}”.")
        self.no_match.setVisible(none)

    def _filter_groups(self, words: list[str]) -> None:
        for name, item in self._groups.items():
            item.setHidden(not all(w in f"{name} group".lower() for w in words))
        if self._group_header is not None:
            self._group_header.setHidden(all(i.isHidden() for i in self._groups.values()))

    def _activate_first(self) -> None:
        """Enter in the search box adds the best match: an exact name, a name prefix, any."""
        visible = self.visible_types()
        text = self.search.text().strip().lower()
        if visible:
            best = min(visible, key=lambda t: (t.lower() != text, not t.lower().startswith(text)))
            self.blockActivated.emit(best)

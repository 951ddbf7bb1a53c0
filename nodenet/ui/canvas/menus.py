"""Context menus of the canvas: on a node, on an edge, on the background.

Each builder returns a ready :class:`QMenu` whose actions call the view's
editing methods; the view shows it with ``exec``. Editing actions are disabled
while the document is read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from nodenet.engine import CATEGORIES, block_class, block_types

if TYPE_CHECKING:
    from nodenet.ui.canvas.view import CanvasView


def node_menu(view: CanvasView, node_id: str, parent: QWidget | None = None) -> QMenu:
    """Rename, duplicate, delete, disconnect all (for the node and the rest of the selection)."""
    menu = QMenu(parent)
    editable = not view.document.read_only
    has_edges = any(node_id in (e.src, e.dst) for e in view.document.project.edges)
    _action(menu, "Rename…", lambda: view.rename_node(node_id), "F2", editable)
    _action(menu, "Duplicate", view.duplicate_selection, "Ctrl+D", editable)
    _action(menu, "Copy", view.copy_selection, "Ctrl+C")
    _action(menu, "Cut", view.cut_selection, "Ctrl+X", editable)
    menu.addSeparator()
    _action(
        menu, "Disconnect all", lambda: view.disconnect_all(node_id), None, editable and has_edges
    )
    _action(menu, "Delete", view.delete_selection, "Del", editable)
    return menu


def edge_menu(view: CanvasView, key: tuple[str, str, int], parent: QWidget | None = None) -> QMenu:
    """Delete the edge."""
    menu = QMenu(parent)
    src, dst, _ = key
    menu.addSection(f"{src} → {dst}")
    editable = not view.document.read_only
    _action(menu, "Delete edge", lambda: view.delete_edges([key]), "Del", editable)
    return menu


def background_menu(view: CanvasView, scene_pos: QPointF, parent: QWidget | None = None) -> QMenu:
    """Add a block (by category) where the menu opened, paste there, lay out, fit."""
    menu = QMenu(parent)
    editable = not view.document.read_only
    add = menu.addMenu("Add block")
    add.setEnabled(editable)
    by_category: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    for name in block_types():
        by_category.setdefault(block_class(name).CATEGORY, []).append(name)
    for category, names in by_category.items():
        if not names:
            continue
        sub = add.addMenu(category)
        for name in names:
            action = sub.addAction(name)
            action.setToolTip(block_class(name).doc())
            action.triggered.connect(lambda _=False, n=name: view.add_block(n, scene_pos))
    _action(menu, "Paste", lambda: view.paste(at=scene_pos), "Ctrl+V", editable)
    menu.addSeparator()
    _action(menu, "Select all", view.select_all, "Ctrl+A")
    _action(menu, "Auto layout", view.auto_layout, "L", editable)
    _action(menu, "Fit to view", view.fit_to_view, "F")
    return menu


def _action(menu: QMenu, text: str, slot, shortcut: str | None, enabled: bool = True) -> None:
    action = menu.addAction(text)
    action.triggered.connect(lambda _=False: slot())
    if shortcut:
        # shown as a hint only: the view handles the keys itself
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutVisibleInContextMenu(True)
    action.setEnabled(enabled)

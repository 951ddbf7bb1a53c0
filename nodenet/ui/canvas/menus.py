"""Context menus of the canvas: on a node, on an edge, on the background.

Each builder returns a ready :class:`QMenu` whose actions are the commands of
:data:`nodenet.ui.actions.COMMANDS` (their context text and key hint) bound to
what the menu opened on; the view shows it with ``exec``. Editing commands are
disabled while the document is read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QMenu, QWidget

from nodenet.engine import CATEGORIES, block_class, block_types
from nodenet.ui.actions import context_action

if TYPE_CHECKING:
    from nodenet.ui.canvas.view import CanvasView


def node_menu(view: CanvasView, node_id: str, parent: QWidget | None = None) -> QMenu:
    """Rename, duplicate, delete, disconnect all (for the node and the rest of the selection);
    group (ungroup and repeat a Group); delete and reconnect (one node), batch rename
    (several)."""
    menu = QMenu(parent)
    read_only = view.document.read_only
    has_edges = any(node_id in (e.src, e.dst) for e in view.document.project.edges)
    context_action(menu, "rename", lambda: view.rename_node(node_id), read_only)
    context_action(menu, "duplicate", view.duplicate_selection, read_only)
    context_action(menu, "copy", view.copy_selection, read_only)
    context_action(menu, "cut", view.cut_selection, read_only)
    if view.document.freezable(view.canvas_scene.selected_ids() or [node_id]):
        context_action(menu, "freeze", view.toggle_frozen_selection, read_only)
    context_action(menu, "group", view.group_selection, read_only)
    if view.document.project.node(node_id).type == "Group":
        context_action(menu, "open_group", lambda: view.open_group(node_id), False)
        context_action(menu, "ungroup", view.ungroup_selection, read_only)
        context_action(menu, "repeat", view.repeat_selection, read_only)
    menu.addSeparator()
    disconnect = menu.addAction("Disconnect all")  # the node's own command: no key, no menu
    disconnect.triggered.connect(lambda _=False: view.disconnect_all(node_id))
    disconnect.setEnabled(not read_only and has_edges)
    context_action(menu, "delete", view.delete_selection, read_only)
    if len(view.canvas_scene.selected_ids()) > 1:
        context_action(menu, "batch_rename", view.batch_rename, read_only)
    else:
        reconnect = context_action(menu, "delete_reconnect", view.delete_and_reconnect, read_only)
        reason = view.document.reconnect_refusal(node_id)
        if reason is not None:
            reconnect.setEnabled(False)
            reconnect.setToolTip(reason)
            menu.setToolTipsVisible(True)
    return menu


def edge_menu(view: CanvasView, key: tuple[str, str, int], parent: QWidget | None = None) -> QMenu:
    """Delete the edge."""
    menu = QMenu(parent)
    src, dst, _ = key
    menu.addSection(f"{src} → {dst}")
    read_only = view.document.read_only
    context_action(menu, "delete", lambda: view.delete_edges([key]), read_only, "Delete edge")
    return menu


def background_menu(view: CanvasView, scene_pos: QPointF, parent: QWidget | None = None) -> QMenu:
    """Add a block (by category) where the menu opened, paste there (with a prefix),
    lay out, fit."""
    menu = QMenu(parent)
    read_only = view.document.read_only
    add = menu.addMenu("Add block")
    add.setEnabled(not read_only)
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
    context_action(menu, "paste", lambda: view.paste(at=scene_pos), read_only)
    context_action(menu, "paste_prefix", lambda: view.paste_with_prefix(at=scene_pos), read_only)
    menu.addSeparator()
    context_action(menu, "select_all", view.select_all, read_only)
    context_action(menu, "layout", view.auto_layout, read_only)
    context_action(menu, "fit", view.fit_to_view, read_only)
    return menu

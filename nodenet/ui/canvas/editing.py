"""Editing from the canvas: every gesture and key that changes the document.

:class:`CanvasEditing` is mixed into :class:`~nodenet.ui.canvas.view.CanvasView`;
each method is one Document edit (one undo command, or one macro when a
gesture needs several), and a refusal becomes a ``message`` for the status bar.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QMimeData, QPointF
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QApplication, QDialog, QInputDialog

from nodenet.errors import NodenetError
from nodenet.graph.project import MAX_FILE_BYTES, parse_json
from nodenet.ui.canvas import style
from nodenet.ui.canvas.batch_rename import BatchRenameDialog
from nodenet.ui.canvas.edge_item import EdgeItem
from nodenet.ui.canvas.interactions import RenameEditor
from nodenet.ui.document import FRAGMENT_MIME

if TYPE_CHECKING:
    from nodenet.ui.canvas.scene import CanvasScene

READ_ONLY_BANNER = "Training — the graph is read-only"
PASTE_STEP = 40.0
NO_BLOCKS = "The clipboard holds no nodenet blocks"


class CanvasEditing:
    """The editing slots of the canvas view (a mixin: it needs ``document``,
    ``canvas_scene``, ``message``, ``select_ids`` and ``fit_to_view``)."""

    canvas_scene: CanvasScene
    _press_positions: dict
    _paste_count: int
    _paste_anchor: tuple[float, float] | None = None
    _insert_edge: EdgeItem | None = None  # highlighted: a block dropped now goes on it
    _last_prefix: str = ""

    def _editable(self) -> bool:
        if self.document.read_only:
            self.message.emit(READ_ONLY_BANNER)
            return False
        return True

    def _attempt(self, action, *args):
        """Run a document edit; a refusal becomes a status message. Returns its result."""
        try:
            return action(*args)
        except NodenetError as err:
            self.message.emit(str(err))
            return None

    def add_block(self, block_type: str, scene_pos: QPointF) -> str | None:
        """Add ``block_type`` centred on ``scene_pos`` and select it."""
        if not self._editable():
            return None
        top_left = (scene_pos.x() - style.NODE_WIDTH / 2, scene_pos.y() - style.node_height(1) / 2)
        edge = self.edge_at(scene_pos)
        self.highlight_edge(None)
        if edge is not None:  # dropped on an edge: a → new → b, or why not
            try:
                node_id = self.document.add_on_edge(block_type, _snap(top_left), edge.key)
            except NodenetError as err:
                refusal = f"Not inserted on {edge.key[0]} → {edge.key[1]}: {err}"
            else:
                self.select_ids([node_id])
                self.message.emit(self.document.undo_stack.undoText())
                return node_id
        else:
            refusal = ""
        node_id = self._attempt(self.document.add_node, block_type, _snap(top_left))
        if node_id:
            self.select_ids([node_id])
            self.message.emit(refusal or f"Added {block_type} {node_id}")
        return node_id

    # -- drop on an edge -------------------------------------------------------------------

    def edge_at(self, scene_pos: QPointF) -> EdgeItem | None:
        """The edge under ``scene_pos`` (a block dropped there would go on it), or None."""
        for item in self.canvas_scene.items(scene_pos):
            if isinstance(item, EdgeItem):
                return item
        return None

    def highlight_edge(self, edge: EdgeItem | None, block: tuple | None = None) -> None:
        """Show which edge a block held here would go on (``None``: none): green, or red
        with the reason in the status bar when ``block`` (type, parameters, name) could
        not go there."""
        if edge is self._insert_edge:
            return
        if self._insert_edge is not None and self._insert_edge.scene() is not None:
            self._insert_edge.set_highlighted(False)
        self._insert_edge = edge
        if edge is None:
            return
        reason = None
        if block is not None:
            try:
                reason = self.document.insertion_refusal(block[0], block[1], edge.key, block[2])
            except NodenetError as err:
                reason = str(err)
        edge.set_highlighted(True, refused=reason is not None)
        src, dst, _ = edge.key
        self.message.emit(
            f"Drop to insert on {src} → {dst}"
            if reason is None
            else f"Not insertable on {src} → {dst}: {reason}"
        )

    def _free_block_held(self) -> str | None:
        """The one block being dragged, if it is free (no edges) and takes one input."""
        if len(self._press_positions) != 1:
            return None
        node_id = next(iter(self._press_positions))
        item = self.canvas_scene.nodes.get(node_id)
        if item is None or item.edges or len(item.inputs) != 1 or not item.output.isVisible():
            return None
        return node_id

    def track_insert(self, scene_pos: QPointF) -> None:
        """While one free block is dragged: highlight the edge under the cursor."""
        held = self._free_block_held()
        if held is None or self.document.read_only:
            self.highlight_edge(None)
            return
        edge = self.edge_at(scene_pos)
        if edge is not self._insert_edge:  # the block is looked up only when the edge changes
            node = self.document.project.node(held)
            self.highlight_edge(edge, (node.type, node.params, held))

    def delete_selection(self) -> None:
        ids = self.canvas_scene.selected_ids()
        edges = [k for k in self.canvas_scene.selected_edges() if k[0] not in ids]
        edges = [k for k in edges if k[1] not in ids]
        if not (ids or edges) or not self._editable():
            return
        self._macro("Delete", lambda: self._delete(ids, edges), len(edges) + bool(ids) > 1)

    def _delete(self, ids: list[str], edges: list[tuple[str, str, int]]) -> None:
        self.delete_edges(edges)
        if ids:
            self._attempt(self.document.remove_nodes, ids)

    def delete_and_reconnect(self) -> bool:
        """Delete the selected block and wire its source to its consumers (one undo step)."""
        ids = self.canvas_scene.selected_ids()
        if len(ids) != 1:
            self.message.emit("Select one block with one input to delete it and reconnect")
            return False
        if not self._editable():
            return False
        (node_id,) = ids
        try:
            self.document.remove_and_reconnect(node_id)
        except NodenetError as err:
            self.message.emit(f"Cannot reconnect: {err}")
            return False
        self.message.emit(self.document.undo_stack.undoText())
        return True

    def delete_edges(self, keys: list[tuple[str, str, int]]) -> None:
        """Disconnect edges, highest port first so merge renumbering leaves the rest valid."""
        if not keys or not self._editable():
            return
        ordered = sorted(keys, key=lambda k: -k[2])
        self._macro(
            "Delete edges",
            lambda: [self._attempt(self.document.disconnect, *k) for k in ordered],
            len(keys) > 1,
        )

    def disconnect_all(self, node_id: str) -> None:
        if not self._editable():
            return

        def run() -> None:
            while True:
                touching = [e for e in self.document.project.edges if node_id in (e.src, e.dst)]
                if not touching:
                    return
                e = max(touching, key=lambda e: e.port)
                self._attempt(self.document.disconnect, e.src, e.dst, e.port)

        self._macro(f"Disconnect {node_id}", run, True)

    def _macro(self, text: str, run, wrap: bool) -> None:
        stack = self.document.undo_stack
        if wrap:
            stack.beginMacro(text)
        try:
            run()
        finally:
            if wrap:
                stack.endMacro()

    def copy_selection(self) -> bool:
        ids = self.canvas_scene.selected_ids()
        if not ids:
            self.message.emit("Nothing selected to copy")
            return False
        fragment = self.document.copy(ids)
        text = json.dumps(fragment, ensure_ascii=False)
        mime = QMimeData()
        mime.setText(text)
        mime.setData(FRAGMENT_MIME, text.encode("utf-8"))
        QApplication.clipboard().setMimeData(mime)
        self._paste_count, self._paste_anchor = 0, None
        self.message.emit(f"Copied {len(ids)} block(s)")
        return True

    def cut_selection(self) -> None:
        if self._editable() and self.copy_selection():
            self._attempt(self.document.remove_nodes, self.canvas_scene.selected_ids())

    def paste(self, at: QPointF | None = None, prefix: str = "") -> list[str]:
        """Paste the clipboard's blocks with their top-left corner at ``at``, else at the
        mouse (centred on the view when the mouse is elsewhere); pasting again at the same
        spot lands a step further. ``prefix`` starts the new ids (else ``_1`` suffixes)."""
        if not self._editable():
            return []
        fragment, reason = _clipboard_fragment()
        if fragment is None:
            self.message.emit(reason)
            return []
        left, top, right, bottom = _fragment_box(fragment)
        if at is None:
            at = self._cursor_scene_pos()
            if at is None:  # centred on the view
                centre = self.mapToScene(self.viewport().rect().center())
                at = QPointF(centre.x() - (right - left) / 2, centre.y() - (bottom - top) / 2)
        anchor = _snap((at.x(), at.y()))
        self._paste_count = self._paste_count + 1 if anchor == self._paste_anchor else 0
        self._paste_anchor = anchor
        step = PASTE_STEP * self._paste_count
        offset = (anchor[0] - left + step, anchor[1] - top + step)
        ids = self._attempt(self.document.paste, fragment, _snap(offset), prefix) or []
        if ids:
            self.select_ids(ids)
            self.message.emit(f"Pasted {len(ids)} block(s)")
        return ids

    def _cursor_scene_pos(self) -> QPointF | None:
        """Where the mouse is on the canvas, or None when it is outside it."""
        point = self.viewport().mapFromGlobal(QCursor.pos())
        if not self.viewport().rect().contains(point) or not self.viewport().underMouse():
            return None
        return self.mapToScene(point)

    def paste_with_prefix(self, at: QPointF | None = None) -> list[str]:
        """Ask for a prefix for the new ids (``r2_``), then paste (see :meth:`paste`)."""
        if not self._editable():
            return []
        if _clipboard_fragment()[0] is None:
            return self.paste(at)
        if at is None:  # where the mouse is now, not after the dialog
            at = self._cursor_scene_pos()
        dialog = QInputDialog(self)
        dialog.setObjectName("paste_prefix")
        dialog.setWindowTitle("Paste with prefix")
        dialog.setLabelText("Prefix for the new ids (e.g. r2_):")
        dialog.setTextValue(_next_prefix(self._last_prefix))
        dialog.setToolTip("The pasted blocks' ids start with this text instead of ending in _1")
        accepted = dialog.exec() == QDialog.DialogCode.Accepted
        prefix = dialog.textValue().strip()
        dialog.deleteLater()
        if not accepted:
            return []
        self._last_prefix = prefix
        return self.paste(at, prefix)

    def batch_rename(self) -> int:
        """Rename the selected blocks at once (prefix, suffix, replace): one undo step."""
        ids = self.canvas_scene.selected_ids()
        if not ids:
            self.message.emit("Select the blocks to rename")
            return 0
        if not self._editable():
            return 0
        dialog = BatchRenameDialog(self.document, ids, self)
        dialog.exec()
        count = dialog.renamed
        dialog.deleteLater()
        if count:
            self.message.emit(f"Renamed {count} block(s)")
        return count

    def duplicate_selection(self) -> list[str]:
        ids = self.canvas_scene.selected_ids()
        if not ids or not self._editable():
            return []
        fragment = self.document.copy(ids)
        new = self._attempt(self.document.paste, fragment, (PASTE_STEP, PASTE_STEP)) or []
        if new:
            self.select_ids(new)
        return new

    def toggle_frozen_selection(self) -> int:
        """Freeze the selected blocks with weights, or unfreeze them if any is frozen
        (one undo command); how many changed."""
        ids = self.canvas_scene.selected_ids()
        if not self.document.freezable(ids):
            self.message.emit("Select blocks with weights to freeze or unfreeze them")
            return 0
        if not self._editable():
            return 0
        count = self._attempt(self.document.toggle_trainable, ids) or 0
        if count:
            self.message.emit(self.document.undo_stack.undoText())
        return count

    def rename_node(self, node_id: str | None = None) -> RenameEditor | None:
        """Open the inline id editor on ``node_id`` (default: the one selected node)."""
        if node_id is None:
            ids = self.canvas_scene.selected_ids()
            node_id = ids[0] if len(ids) == 1 else None
        if node_id is None or node_id not in self.canvas_scene.nodes or not self._editable():
            return None
        item = self.canvas_scene.nodes[node_id]
        self.ensureVisible(item, 40, 40)
        return RenameEditor(self, item)

    def auto_layout(self) -> None:
        if self._editable():
            self._attempt(self.document.layout)
            self.fit_to_view()

    def _commit_move(self) -> None:
        edge, held = self._insert_edge, self._free_block_held()
        self.highlight_edge(None)
        if edge is not None and held is not None and edge.scene() is not None:
            item = self.canvas_scene.nodes[held]
            pos = _snap((item.pos().x(), item.pos().y()))
            try:
                self.document.insert_on_edge(held, edge.key, pos)
            except NodenetError as err:
                self.message.emit(f"Not inserted on {edge.key[0]} → {edge.key[1]}: {err}")
            else:
                self._press_positions = {}
                self.message.emit(self.document.undo_stack.undoText())
                return
        moved = {}
        for node_id, before in self._press_positions.items():
            item = self.canvas_scene.nodes.get(node_id)
            if item is not None and item.pos() != before:
                moved[node_id] = _snap((item.pos().x(), item.pos().y()))
        self._press_positions = {}
        if not moved:
            return
        try:
            self.document.move_nodes(moved)
        except NodenetError as err:
            self.message.emit(str(err))
            for node_id in moved:  # refused: the cards go back where the document has them
                x, y = self.document.project.node(node_id).pos
                self.canvas_scene.nodes[node_id].setPos(x, y)


def _snap(point: tuple[float, float]) -> tuple[float, float]:
    """Round a position to whole scene units (positions are saved in the file).

    A coordinate that is not a finite number becomes 0 (the document refuses nothing
    then); the document clamps the rest to what a project file may hold.
    """
    return _whole(point[0]), _whole(point[1])


def _whole(value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return float(round(value)) if math.isfinite(value) else 0.0


def _clipboard_fragment() -> tuple[dict | None, str]:
    """The clipboard's fragment, read through the project reader's checked JSON parser,
    or ``None`` and why (for the status bar). Never raises on what the clipboard holds."""
    mime = QApplication.clipboard().mimeData()
    if mime is None:
        return None, NO_BLOCKS
    if mime.hasFormat(FRAGMENT_MIME):
        raw = bytes(mime.data(FRAGMENT_MIME))
    else:
        raw = mime.text().encode("utf-8", "replace") if mime.hasText() else b""
    if not raw.strip():
        return None, NO_BLOCKS
    if len(raw) > MAX_FILE_BYTES:
        return None, f"The clipboard holds {len(raw) / 1e6:.0f} MB: too much to paste as blocks"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return None, f"The clipboard's blocks are not UTF-8 text (byte {err.start})"
    if text.lstrip()[:1] != "{":
        return None, NO_BLOCKS
    try:
        fragment = parse_json(text, "the clipboard")
    except NodenetError as err:
        return None, _clip(f"Cannot paste: {err}")
    except (ValueError, RecursionError, MemoryError):  # in case a bound is missed
        return None, "The clipboard cannot be read as nodenet blocks"
    if not isinstance(fragment, dict) or "nodes" not in fragment:
        return None, NO_BLOCKS
    return fragment, ""


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fragment_box(fragment: dict) -> tuple[float, float, float, float]:
    """Left, top, right, bottom of the copied cards (about: one-line cards), all 0 if the
    fragment has no usable positions."""
    nodes = fragment.get("nodes")
    xs, ys = [], []
    for node in nodes if isinstance(nodes, list) else []:
        pos = node.get("pos") if isinstance(node, dict) else None
        if isinstance(pos, list) and len(pos) == 2 and all(_finite(v) for v in pos):
            xs.append(float(pos[0]))
            ys.append(float(pos[1]))
    if not xs:
        return 0.0, 0.0, 0.0, 0.0
    return min(xs), min(ys), max(xs) + style.NODE_WIDTH, max(ys) + style.node_height(1)


def _next_prefix(last: str) -> str:
    """The prefix offered next: the last one with its number one higher (``r2_`` → ``r3_``)."""
    if not last:
        return "copy_"
    head = last.rstrip("_.-")
    tail = last[len(head) :]
    digits = len(head) - len(head.rstrip("0123456789"))
    if not digits:
        return last
    return f"{head[:-digits]}{int(head[-digits:]) + 1}{tail}"


def _finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False

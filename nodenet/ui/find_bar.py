"""Find on the canvas (Ctrl+F): a bar that finds blocks by id, type or parameter value.

Typing finds the blocks whose id, type or one of whose parameter values contains every
word typed (case-insensitive), in the project's order, and frames the first: it is
selected, centred and brought to a zoom where its card reads. Enter or F3 goes to
the next match, Shift+Enter or Shift+F3 to the previous one; Escape closes the bar.
"Select all" selects every match (to edit their shared parameters at once).
Searching is one pass over the blocks (a 1,000-block graph answers at once).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QGraphicsView, QLabel, QLineEdit, QToolButton, QWidget

from nodenet.engine.params import json_repr
from nodenet.graph.project import Node
from nodenet.ui.document import Document, Selection
from nodenet.ui.notice import WindowBar

FRAME_ZOOM = 0.8  # a found block is shown at least this large (its card's text reads)
KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape)  # the field's own keys


def matches(node: Node, words: list[str]) -> bool:
    """Whether every word is in the block's id, type or one of its parameter values."""
    values = " ".join(json_repr(v) for v in node.params.values()) if node.params else ""
    haystack = f"{node.id} {node.type} {values}".lower()
    return all(w in haystack for w in words)


class FindField(QLineEdit):
    """The search text: Enter finds the next match, Shift+Enter the previous, Esc closes."""

    step = Signal(int)
    closed = Signal()

    def event(self, event: QEvent) -> bool:
        # Esc is also the window's Stop key: while typing here it closes the bar
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in KEYS:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            back = event.modifiers() & Qt.KeyboardModifier.ShiftModifier
            self.step.emit(-1 if back else 1)
            return
        if event.key() == Qt.Key.Key_Escape:
            self.closed.emit()
            return
        super().keyPressEvent(event)


class FindBar(WindowBar):
    """Find blocks on the canvas; ``found`` is the list of matches, ``current`` the one shown."""

    def __init__(
        self,
        document: Document,
        selection: Selection,
        canvas: QWidget,
        parent: QWidget | None = None,
    ):
        super().__init__("Find", "toolbar_find", parent)
        self.set_kind("info")
        self.document = document
        self.selection = selection
        self.canvas = canvas
        self.found: list[str] = []
        self.current = -1
        self.row.addWidget(QLabel("Find block:"))
        self.field = FindField()
        self.field.setObjectName("find_field")
        self.field.setPlaceholderText("id, type or parameter value…")
        self.field.setClearButtonEnabled(True)
        self.field.setToolTip(
            "Find blocks on the canvas by id, type or parameter value; Enter / F3: next, "
            "Shift+Enter / Shift+F3: previous, Esc: close"
        )
        self.field.setMinimumWidth(240)
        self.row.addWidget(self.field)
        self.count = QLabel("")
        self.count.setObjectName("find_count")
        self.row.addWidget(self.count)
        for text, tip, slot in (
            ("▲", "Previous match (Shift+Enter, Shift+F3)", self.previous),
            ("▼", "Next match (Enter, F3)", self.next),
            ("Select all", "Select every matching block", self.select_all),
            ("✕", "Close the find bar (Esc)", self.close_bar),
        ):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setAutoRaise(True)
            button.clicked.connect(slot)
            self.row.addWidget(button)
        self.row.addStretch(1)
        self.field.textChanged.connect(self._search)
        self.field.step.connect(self.step)
        self.field.closed.connect(self.close_bar)
        document.analysisChanged.connect(self._graph_changed)
        self.hide()

    # -- opening and closing ----------------------------------------------------------

    def open(self) -> None:
        """Show the bar with the cursor in it, the last search selected."""
        self.show()
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def close_bar(self) -> None:
        self.hide()
        if isinstance(self.canvas, QGraphicsView):
            self.canvas.setFocus()

    # -- searching ----------------------------------------------------------------------

    def _search(self, _text: str = "") -> None:
        self._find()
        if self.found:
            self.current = 0
            self._frame()
        self._show_count()

    def _find(self) -> None:
        words = self.field.text().lower().split()
        nodes = self.document.project.nodes
        self.found = [n.id for n in nodes if matches(n, words)] if words else []
        self.current = min(self.current, len(self.found) - 1)

    def _graph_changed(self) -> None:
        if self.isVisible() and self.field.text().strip():
            shown = self.found[self.current] if 0 <= self.current < len(self.found) else None
            self._find()
            if shown in self.found:
                self.current = self.found.index(shown)
            self._show_count()

    def step(self, delta: int) -> None:
        """Frame the next (``delta`` 1) or previous (-1) match, wrapping around."""
        if not self.isVisible():
            self.open()
        self._find()
        if not self.found:
            self._show_count()
            return
        self.current = (self.current + delta) % len(self.found)
        self._frame()
        self._show_count()

    def next(self) -> None:
        self.step(1)

    def previous(self) -> None:
        self.step(-1)

    def select_all(self) -> None:
        self._find()
        if self.found:
            self._select(self.found)

    def _show_count(self) -> None:
        if not self.field.text().strip():
            self.count.setText("")
        elif not self.found:
            self.count.setText("No block matches")
        else:
            self.count.setText(f"{self.current + 1} of {len(self.found)}")

    # -- framing ------------------------------------------------------------------------

    def _select(self, ids: list[str]) -> None:
        select = getattr(self.canvas, "select_ids", None)
        if select is not None:
            select(ids)
        else:
            self.selection.set(ids)

    def _frame(self) -> None:
        """Select the current match and centre it, zoomed in enough for its card to read."""
        node_id = self.found[self.current]
        self._select([node_id])
        canvas = self.canvas
        nodes = getattr(getattr(canvas, "canvas_scene", None), "nodes", {})
        if not isinstance(canvas, QGraphicsView) or node_id not in nodes:
            return
        zoom = canvas.transform().m11()
        if zoom < FRAME_ZOOM and hasattr(canvas, "zoom_by"):
            canvas.zoom_by(FRAME_ZOOM / zoom, anchor_under_mouse=False)
        canvas.centerOn(nodes[node_id])

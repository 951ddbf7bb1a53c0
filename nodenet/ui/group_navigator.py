"""The canvas area of the window: the project's canvas, and the inside of the groups opened
from it, one level above the other, with a breadcrumb bar to go back.

Opening a group block (double-click, Open Group, Ctrl+Alt+O) makes a level: a
:class:`~nodenet.ui.group_scope.ScopeDocument` for its definition, with its own selection,
canvas and inspector (shown in the Inspector dock while the level is on show). Every edit
made there is one command of the project's history. The bar names the levels, project
first; a click on one (or Back, Alt+Up) closes the levels above it. A level closes by
itself when its group is undone, ungrouped or deleted, or another project is opened.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from nodenet.errors import NodenetError
from nodenet.graph.groups import SEPARATOR
from nodenet.ui.document import Document, Selection
from nodenet.ui.group_scope import ScopeDocument
from nodenet.ui.inspector import Inspector

if TYPE_CHECKING:
    from nodenet.ui.main_window import MainWindow

BAR_STYLE = "QToolButton { padding: 2px 6px; } QLabel { color: palette(mid); }"


@dataclass
class Level:
    """One graph on show: the project, or a group's inside."""

    document: Document
    selection: Selection
    canvas: Any  # a CanvasView
    inspector: Inspector


class ActiveCanvas:
    """The window's commands' ``canvas`` target: each call goes to the canvas on show."""

    def __init__(self, navigator: GroupNavigator):
        self._navigator = navigator

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._navigator.levels[0].canvas, name)  # AttributeError if none
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(self._navigator.current.canvas, name)(*args, **kwargs)

        return call


class GroupNavigator(QWidget):
    """The window's central canvas area (see the module's text)."""

    levelChanged = Signal()

    def __init__(self, window: MainWindow):
        super().__init__()
        self.window = window
        top = Level(window.document, window.selection, window.canvas, window.inspector)
        self.levels: list[Level] = [top]
        self.bar = QWidget()
        self.bar.setObjectName("group_bar")
        self.bar.setStyleSheet(BAR_STYLE)
        self.crumbs = QHBoxLayout(self.bar)
        self.crumbs.setContentsMargins(6, 2, 6, 2)
        self.bar.hide()
        self.stack = QStackedWidget()
        self.stack.addWidget(window.canvas)
        self.inspectors = QStackedWidget()  # the Inspector dock's widget
        self.inspectors.addWidget(window.inspector)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.bar)
        layout.addWidget(self.stack)
        self._listen(top)
        window.document.projectReplaced.connect(lambda: self.close_to(0))

    @property
    def current(self) -> Level:
        return self.levels[-1]

    def _listen(self, level: Level) -> None:
        canvas = level.canvas
        for name in ("openGroupRequested", "closeGroupRequested"):
            if not hasattr(canvas, name):  # the placeholder shown without a canvas
                return
        canvas.openGroupRequested.connect(lambda node_id: self.open_group(node_id, level))
        canvas.closeGroupRequested.connect(self.back)

    # -- going in and out --------------------------------------------------------------------

    def open_group(self, node_id: str, level: Level | None = None) -> Level | None:
        """Show the inside of group block ``node_id`` of ``level`` (the one on show)."""
        from nodenet.ui.canvas import CanvasView

        level = level or self.current
        if level is not self.current:
            return None
        try:
            document = ScopeDocument(self.window.document, level.document, node_id, self)
        except NodenetError as err:
            self.window.show_message(f"Cannot open: {err}")
            return None
        selection = Selection(document, document)
        canvas = CanvasView(document, selection)
        inspector = Inspector(document, selection)
        inner = Level(document, selection, canvas, inspector)
        for action in self.window.actions.values():  # the canvas-only one-letter keys
            if action in level.canvas.actions():
                canvas.addAction(action)
        canvas.message.connect(self.window.show_message)
        document.gone.connect(lambda: self._gone(inner))
        self._listen(inner)
        self.levels.append(inner)
        self.stack.addWidget(canvas)
        self.inspectors.addWidget(inspector)
        self._show()
        self.window.show_message(
            f"Inside {document.title()}: edits here change every {document.definition} "
            "block · Alt+Up goes back"
        )
        return inner

    def open_path(self, flat_id: str) -> str:
        """Open the groups a flattened id ``a/b/inner`` lies in, from the project's level;
        the id of the block in the level it ends on."""
        self.close_to(0)
        parts = flat_id.split(SEPARATOR)
        for part in parts[:-1]:
            if self.open_group(part) is None:
                return part
        return parts[-1]

    def back(self) -> None:
        """Go back to the graph around the group on show (Alt+Up)."""
        if len(self.levels) > 1:
            self.close_to(len(self.levels) - 2)

    def close_to(self, depth: int) -> None:
        """Close every level above ``depth`` (0: the project's)."""
        if depth >= len(self.levels) - 1:
            return
        while len(self.levels) > depth + 1:
            level = self.levels.pop()
            self.stack.removeWidget(level.canvas)
            self.inspectors.removeWidget(level.inspector)
            for obj in (level.canvas, level.inspector, level.document):
                obj.deleteLater()
            _disconnect(level.document)
        self._show()

    def _gone(self, level: Level) -> None:
        if level in self.levels:
            self.close_to(self.levels.index(level) - 1)

    def _show(self) -> None:
        level = self.current
        self.stack.setCurrentWidget(level.canvas)
        self.inspectors.setCurrentWidget(level.inspector)
        self._fill_bar()
        level.canvas.setFocus()
        self.levelChanged.emit()

    def _fill_bar(self) -> None:
        while self.crumbs.count():
            item = self.crumbs.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.bar.setVisible(len(self.levels) > 1)
        if len(self.levels) == 1:
            return
        back = QToolButton()
        back.setText("◀ Back")
        back.setObjectName("group_back")
        back.setToolTip("Back to the enclosing graph (Alt+Up)")
        back.clicked.connect(self.back)
        self.crumbs.addWidget(back)
        for depth, level in enumerate(self.levels):
            if depth:
                self.crumbs.addWidget(QLabel("›"))
            doc = level.document
            text = doc.title() if isinstance(doc, ScopeDocument) else doc.project.name
            if depth == len(self.levels) - 1:  # the level on show
                here = QLabel(text)
                here.setObjectName(f"group_crumb_{depth}")
                here.setStyleSheet("font-weight: bold; color: palette(window-text);")
                self.crumbs.addWidget(here)
                continue
            crumb = QToolButton()
            crumb.setText(text)
            crumb.setObjectName(f"group_crumb_{depth}")
            crumb.setAutoRaise(True)
            crumb.setToolTip(f"Go back to {text}")
            crumb.clicked.connect(lambda _=False, d=depth: self.close_to(d))
            self.crumbs.addWidget(crumb)
        self.crumbs.addStretch(1)


def _disconnect(document: QObject) -> None:
    """A closed level no longer follows the project's history."""
    if isinstance(document, ScopeDocument):
        root = document.root
        for signal, slot in (
            (root.undo_stack.indexChanged, document.sync),
            (root.readOnlyChanged, document.set_read_only),
            (root.projectReplaced, document.gone),
        ):
            with contextlib.suppress(RuntimeError, TypeError):  # already gone
                signal.disconnect(slot)

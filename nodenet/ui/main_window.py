"""The main window: palette, canvas, inspector, summary, problems and history around one Document.

Menus, the toolbar, the canvas's keys and its context menus are built from one
table of commands, :data:`nodenet.ui.actions.COMMANDS` (so a key on the canvas and
a menu item do the same thing). The file commands (New, Open, Save, Import,
Export, with a prompt before unsaved work is lost) are
:class:`nodenet.ui.project_files.ProjectFiles`. Run, Evaluate and Ctrl+R bring the
Run panel forward with room for its curves. Window layout and recent files persist
in :class:`QSettings` (:mod:`nodenet.ui.settings`).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QGraphicsView,
    QLabel,
    QMainWindow,
    QMenu,
    QScrollArea,
    QToolBar,
    QUndoView,
    QWidget,
)

from nodenet.errors import NodenetError
from nodenet.ui import actions as table
from nodenet.ui import autosave
from nodenet.ui.document import Document, Selection, new_project
from nodenet.ui.export_dialog import ExportDialog
from nodenet.ui.find_bar import FindBar
from nodenet.ui.group_navigator import ActiveCanvas, GroupNavigator
from nodenet.ui.inspector import Inspector
from nodenet.ui.notice import NoticeBar
from nodenet.ui.palette import Palette
from nodenet.ui.project_files import ProjectFiles
from nodenet.ui.settings import RecentFiles, app_settings
from nodenet.ui.summary import ProblemsView, SummaryView
from nodenet.ui.training import TrainingPanel
from nodenet.ui.welcome import Welcome
from nodenet.ui.window_layout import fit_to_screen, grow_run_area

STATUS_TIMEOUT_MS = 6000
CASCADE = 40.0  # blocks added at the view centre step this far from one already there


def make_canvas(document: Document, selection: Selection) -> QWidget:
    """The canvas view, or a placeholder label when the canvas package is missing."""
    try:
        from nodenet.ui.canvas import CanvasView
    except ImportError:
        label = QLabel("The canvas is not available.")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return label
    return CanvasView(document, selection)


class MainWindow(ProjectFiles, QMainWindow):
    """The nodenet editor window. ``settings`` defaults to the user's nodenet settings."""

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings if settings is not None else app_settings()
        self.recent = RecentFiles(self.settings)
        self.document = Document(new_project(), self)
        self.selection = Selection(self.document, self)
        self.canvas = make_canvas(self.document, self.selection)  # the project's canvas
        self.palette = Palette()
        self.inspector = Inspector(self.document, self.selection)
        self.navigator = GroupNavigator(self)  # the canvas area: the project, opened groups
        self.setCentralWidget(self.navigator)
        self.summary = SummaryView(self.document)
        self.problems = ProblemsView(self.document)
        self.history = QUndoView(self.document.undo_stack)
        self.history.setEmptyLabel("<opened>")
        self.docks: dict[str, QDockWidget] = {}
        self._make_docks()
        self.export_dialog: ExportDialog | None = None
        self.welcome = Welcome(self)  # the welcome page (File → Open Sample…, Help → Welcome)
        self.actions: dict[str, QAction] = self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self.status_label = QLabel()
        self.statusBar().addPermanentWidget(self.status_label)
        self._connect()
        restored = self._restore_window_state()
        self.notice.clear()  # a notice belongs to the project it was about
        self.start_maximized = fit_to_screen(self, restored)  # show() honours it
        self._placed = False
        self._document_changed()
        self._update_title()
        self.work_guard = autosave.install(self)  # autosave; offer what a crash left

    # -- construction ------------------------------------------------------------------

    def _make_docks(self) -> None:
        area = Qt.DockWidgetArea
        self._dock("palette", "Blocks", self.palette, area.LeftDockWidgetArea)
        self._dock("inspector", "Inspector", self.navigator.inspectors, area.RightDockWidgetArea)
        self._dock("history", "History", self.history, area.RightDockWidgetArea)
        self._dock("summary", "Summary", self.summary, area.BottomDockWidgetArea)
        self._dock("problems", "Problems", self.problems, area.BottomDockWidgetArea)
        self.training_panel = TrainingPanel(self.document)
        scroll = QScrollArea()  # the panel's forms are tall: let small screens scroll them
        scroll.setWidget(self.training_panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self._dock("training", "Run", scroll, area.BottomDockWidgetArea)
        self.splitDockWidget(
            self.docks["inspector"], self.docks["history"], Qt.Orientation.Vertical
        )
        self.tabifyDockWidget(self.docks["summary"], self.docks["problems"])
        self.tabifyDockWidget(self.docks["summary"], self.docks["training"])
        self.docks["summary"].raise_()
        for name in ("summary", "problems"):  # behind another tab: no refresh until shown
            self.docks[name].visibilityChanged.connect(getattr(self, name).set_shown)
        self.resizeDocks(
            [self.docks["palette"], self.docks["inspector"]], [210, 330], Qt.Orientation.Horizontal
        )
        self.resizeDocks(
            [self.docks["inspector"], self.docks["history"]], [520, 160], Qt.Orientation.Vertical
        )
        self.resizeDocks([self.docks["summary"]], [250], Qt.Orientation.Vertical)

    def _dock(self, name: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")  # saveState needs names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[name] = dock

    def _make_actions(self) -> dict[str, QAction]:
        """One action per command of the table, each bound to its method once, here."""
        canvas = self.canvas if isinstance(self.canvas, QLabel) else ActiveCanvas(self.navigator)
        targets = {"window": self, "canvas": canvas, "welcome": self.welcome}
        actions = {}
        for command in table.COMMANDS.values():
            if command.target == "canvas" and isinstance(self.canvas, QLabel):
                slot = self._no_canvas  # the placeholder: say so
            else:
                slot = table.resolve(command, targets)
            actions[command.name] = table.build_action(command, slot, self, self.style())
            if command.canvas_only:  # one-letter keys: only while the canvas has the focus
                actions[command.name].setShortcutContext(
                    Qt.ShortcutContext.WidgetWithChildrenShortcut
                )
                self.canvas.addAction(actions[command.name])
        return actions

    def _no_canvas(self) -> None:
        self.show_message("The canvas is not available")

    def _make_menus(self) -> None:
        parts = {
            table.RECENT: self._add_recent_menu,
            table.RUN: lambda menu: menu.addActions(self._run_actions()),
            table.DOCKS: self._add_dock_toggles,
        }
        for title, items in table.MENUS:
            menu = self.menuBar().addMenu(title)
            self._fill_menu(menu, items, parts)
            if title == "&Run":
                menu.aboutToShow.connect(self.docks["training"].raise_)
            if title == "&View":
                self.view_menu = menu

    def _fill_menu(self, menu: QMenu, items, parts) -> None:
        for item in items:
            if item is None:
                menu.addSeparator()
            elif isinstance(item, tuple):
                self._fill_menu(menu.addMenu(item[0]), item[1], parts)
            elif item in parts:
                parts[item](menu)
            else:
                menu.addAction(self.actions[item])

    def _run_actions(self) -> list[QAction]:
        return [self.training_panel.run_action, self.training_panel.stop_action]

    def _add_recent_menu(self, menu: QMenu) -> None:
        self.recent_menu = menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)

    def _add_dock_toggles(self, menu: QMenu) -> None:
        """Show / hide each dock, Alt+1 … Alt+6 in dock order."""
        for number, (name, dock) in enumerate(self.docks.items(), 1):
            toggle = dock.toggleViewAction()
            toggle.setShortcut(QKeySequence(f"Alt+{number}"))
            toggle.setStatusTip(f"Show or hide the {dock.windowTitle()} panel")
            toggle.setToolTip(table.tooltip(toggle.text(), toggle.shortcuts()))
            toggle.setObjectName(f"toggle_{name}")
            menu.addAction(toggle)

    def _make_toolbar(self) -> None:
        bar = QToolBar("Main", self)
        bar.setObjectName("toolbar_main")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.setMovable(False)
        for name in table.TOOLBAR:
            if name is None:
                bar.addSeparator()
            elif name == table.RUN:
                bar.addActions(self._run_actions())
            else:
                bar.addAction(self.actions[name])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.toolbar = bar
        self.addToolBarBreak()
        self.notice = NoticeBar(self)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.notice)
        self.addToolBarBreak()
        self.find_bar = FindBar(self.document, self.selection, self.canvas, self)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.find_bar)

    def _connect(self) -> None:
        doc = self.document
        doc.dirtyChanged.connect(self._update_title)
        doc.projectReplaced.connect(self._update_title)
        doc.projectReplaced.connect(self.notice.clear)
        self.training_panel.revealRequested.connect(self.show_run_view)
        doc.analysisChanged.connect(self._document_changed)
        doc.readOnlyChanged.connect(self._read_only_changed)
        stack = doc.undo_stack
        for signal in (stack.canUndoChanged, stack.canRedoChanged, stack.undoTextChanged):
            signal.connect(self._update_undo_actions)
        self.palette.blockActivated.connect(self.add_block)
        self.palette.attach(doc)
        self.summary.nodeActivated.connect(self.show_node)
        self.problems.nodeActivated.connect(self.show_node)
        self.problems.countChanged.connect(self._problem_count_changed)
        message = getattr(self.canvas, "message", None)
        if message is not None:
            message.connect(self.show_message)

    # -- editing ------------------------------------------------------------------------------

    def undo(self) -> None:
        self._guarded(self.document.undo)

    def redo(self) -> None:
        self._guarded(self.document.redo)

    def _guarded(self, edit) -> None:
        try:
            edit()
        except NodenetError as err:
            self.show_message(str(err))

    def select_all_blocks(self) -> None:
        level = self.navigator.current
        level.selection.set([n.id for n in level.document.project.nodes])

    def rename_selected(self) -> None:
        """Rename the selected block on the canvas (in the inspector without a canvas)."""
        level = self.navigator.current
        if level.selection.current() is None:
            self.show_message("Select one block to rename it")
        elif isinstance(level.canvas, QLabel) or level.canvas.rename_node() is None:
            self.docks["inspector"].raise_()
            level.inspector.focus_id()

    def open_sweep(self) -> None:
        """Run → Sweep…: the Sweep dialog (Optuna)."""
        from nodenet.ui.sweep_dialog import open_sweep_dialog

        self._sweep_dialog = open_sweep_dialog(self)

    def find_block(self) -> None:
        """Open the find bar: blocks on the canvas by id, type or parameter (Ctrl+F)."""
        self.welcome.leave()
        self.find_bar.open()

    def find_next(self) -> None:
        self.welcome.leave()
        self.find_bar.next()

    def find_previous(self) -> None:
        self.welcome.leave()
        self.find_bar.previous()

    def view_centre(self) -> QPointF:
        """The scene point at the centre of the canvas (the origin without a canvas)."""
        canvas = self.navigator.current.canvas
        if isinstance(canvas, QGraphicsView):
            return canvas.mapToScene(canvas.viewport().rect().center())
        return QPointF(0, 0)

    def add_block(self, block_type: str) -> str | None:
        """Add a block centred in the view, stepping aside from a block already there."""
        centre = self.view_centre()
        busy = self._block_centres()
        while any(abs(x - centre.x()) < 8 and abs(y - centre.y()) < 8 for x, y in busy):
            centre += QPointF(CASCADE, CASCADE)
        canvas = self.navigator.current.canvas
        if hasattr(canvas, "add_block"):
            return canvas.add_block(block_type, centre)
        try:
            node_id = self.document.add_node(block_type, (centre.x(), centre.y()))
        except NodenetError as err:
            self.show_message(str(err))
            return None
        self.selection.set([node_id])
        return node_id

    def _block_centres(self) -> list[tuple[float, float]]:
        level = self.navigator.current
        nodes = getattr(getattr(level.canvas, "canvas_scene", None), "nodes", None)
        if nodes is None:
            return [(n.pos[0], n.pos[1]) for n in level.document.project.nodes]
        centres = [item.sceneBoundingRect().center() for item in nodes.values()]
        return [(c.x(), c.y()) for c in centres]

    def show_run_view(self) -> None:
        """Bring the Run panel forward, with room for its curves (Run, Evaluate, Ctrl+R)."""
        dock = self.docks["training"]
        dock.show()
        dock.raise_()
        QTimer.singleShot(0, self._grow_run_area)  # once the raised panel has its layout

    def _grow_run_area(self, tries: int = 3) -> None:
        """Grow the Run dock until its curves have their height; a resize settles over a
        few layout passes, so look again after each (at most ``tries`` times)."""
        panel = self.training_panel
        if panel.tabs.currentWidget() is not panel.plots:
            return
        if grow_run_area(self, self.docks["training"], panel.plots.main_plot()) and tries > 1:
            QTimer.singleShot(0, lambda: self._grow_run_area(tries - 1))

    def show_node(self, node_id: str) -> None:
        """Select a block and bring it into view (from the summary or the problems); a
        block inside groups (``instance/inner``) is shown with its groups opened."""
        depth = len(self.navigator.levels)
        node_id = self.navigator.open_path(node_id)
        level = self.navigator.current
        level.selection.set([node_id])
        nodes = getattr(getattr(level.canvas, "canvas_scene", None), "nodes", {})
        if node_id in nodes and isinstance(level.canvas, QGraphicsView):
            level.canvas.ensureVisible(nodes[node_id], 60, 60)
            if len(self.navigator.levels) != depth:  # a canvas just shown: once it is laid out
                QTimer.singleShot(0, lambda: level.canvas.ensureVisible(nodes[node_id], 60, 60))

    # -- state shown by the window ----------------------------------------------------------------

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, STATUS_TIMEOUT_MS)

    def _update_title(self, *_) -> None:
        dirty = "*" if self.document.is_dirty() else ""
        self.setWindowTitle(f"{self.document.project.name}{dirty} — nodenet")

    def _update_undo_actions(self, *_) -> None:
        stack, writable = self.document.undo_stack, not self.document.read_only
        self.actions["undo"].setEnabled(stack.canUndo() and writable)
        self.actions["redo"].setEnabled(stack.canRedo() and writable)
        for name, text in (("undo", stack.undoText()), ("redo", stack.redoText())):
            self.actions[name].setText(f"&{name.capitalize()} {text}".rstrip())
            self.actions[name].setToolTip(f"{name.capitalize()} {text}".rstrip())

    def _document_changed(self) -> None:
        analysis, nodes = self.document.analysis, self.document.project.nodes
        total = sum(sum(c) for c in analysis.params.values())
        state = "ready" if analysis.ok else f"{len(analysis.problems)} problem(s)"
        self.status_label.setText(f"{len(nodes)} blocks · {total:,} params · {state}")
        self._update_undo_actions()

    def _problem_count_changed(self, count: int) -> None:
        self.docks["problems"].setWindowTitle(f"Problems ({count})" if count else "Problems")

    def _read_only_changed(self, flag: bool) -> None:
        for command in table.COMMANDS.values():
            if command.editing:
                self.actions[command.name].setEnabled(not flag)
        self.history.setEnabled(not flag)
        self._update_undo_actions()

    # -- window life ------------------------------------------------------------------------------

    def _restore_window_state(self) -> bool:
        """The saved window geometry and dock layout; False when none was saved."""
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        restored = geometry is not None and self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        return bool(restored)

    def save_window_state(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._placed:  # the frame is known now: keep all of it on the screen
            self._placed = True
            if not self.isMaximized():
                fit_to_screen(self, restored=True)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.maybe_save():
            self.training_panel.shutdown()  # stop a run and wait for its thread
            self.save_window_state()
            self.work_guard.finish()  # saved or discarded: no recovery file left
            event.accept()
        else:
            event.ignore()

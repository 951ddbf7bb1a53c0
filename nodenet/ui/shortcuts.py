"""The last touches on the main window's actions: status tips, the missing shortcuts, Find.

Every menu action gets a status tip (what it does, shown in the status bar as
the pointer rests on it) and a tooltip naming its shortcut; Quit and Import get
their usual keys, the docks Alt+1 … Alt+6 (View menu), and Edit → Find Block
(Ctrl+F) puts the cursor in the palette's search box.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

if TYPE_CHECKING:
    from nodenet.ui.main_window import MainWindow

STATUS_TIPS: dict[str, str] = {
    "new": "Start a new project: an empty canvas with one Input and one Output",
    "open": "Open a project file",
    "save": "Save the project to its file (asks for a name the first time)",
    "save_as": "Save the project under a new name",
    "import_keras": "Read a Keras model (a model.to_json() file or a .keras file) as a project",
    "export_keras": "Preview the project as Keras 3 code and save it, with the trained weights",
    "export_pytorch": "Preview the project as PyTorch code and save it, with the trained weights",
    "quit": "Close nodenet (asks before unsaved work is lost)",
    "undo": "Undo the last edit",
    "redo": "Redo the edit just undone",
    "cut": "Move the selected blocks to the clipboard",
    "copy": "Copy the selected blocks and the edges between them",
    "paste": "Paste the blocks on the clipboard",
    "duplicate": "Copy and paste the selected blocks in one step",
    "delete": "Delete the selected blocks and edges",
    "select_all": "Select every block",
    "rename": "Rename the selected block",
    "find": "Search the block palette: type a name, Enter adds the best match",
    "zoom_in": "Zoom in on the canvas",
    "zoom_out": "Zoom out of the canvas",
    "fit": "Zoom to show the whole graph",
    "layout": "Arrange the blocks in layers, inputs on the left, outputs on the right",
}
SHORTCUTS: dict[str, str] = {"quit": "Ctrl+Q", "import_keras": "Ctrl+I"}


def finish_actions(window: MainWindow) -> None:
    """Status tips, shortcuts and tooltips on ``window``'s actions; Edit → Find Block."""
    _add_find(window)
    for name, key in SHORTCUTS.items():
        window.actions[name].setShortcut(QKeySequence(key))
    for name, action in window.actions.items():
        if not action.statusTip():
            action.setStatusTip(STATUS_TIPS.get(name, ""))
        if name in SHORTCUTS or name == "find":
            action.setToolTip(tooltip(action))
    for number, (name, dock) in enumerate(window.docks.items(), 1):
        toggle = dock.toggleViewAction()
        toggle.setShortcut(QKeySequence(f"Alt+{number}"))
        toggle.setStatusTip(f"Show or hide the {dock.windowTitle()} panel")
        toggle.setToolTip(tooltip(toggle))
        toggle.setObjectName(f"toggle_{name}")


def tooltip(action: QAction) -> str:
    """``Text (Shortcut)``: the action's text without its mnemonic or ellipsis."""
    text = action.text().replace("&", "").rstrip("…")
    key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    return f"{text} ({key})" if key else text


def _add_find(window: MainWindow) -> None:
    find = QAction("&Find Block…", window)
    find.setShortcut(QKeySequence(QKeySequence.StandardKey.Find))
    find.triggered.connect(lambda: find_block(window))
    window.actions["find"] = find
    select_all = window.actions["select_all"]
    menu = next((m for m in select_all.associatedObjects() if isinstance(m, QMenu)), None)
    if menu is not None:
        following = menu.actions()[menu.actions().index(select_all) + 1 :]
        menu.insertAction(following[0] if following else None, find)


def find_block(window: MainWindow) -> None:
    """Show the palette and put the cursor in its search box, the old search selected."""
    welcome = getattr(window, "welcome", None)
    if welcome is not None:
        welcome.leave()
    dock = window.docks["palette"]
    dock.show()
    dock.raise_()
    window.palette.search.setFocus()
    window.palette.search.selectAll()

"""The editor's commands, each defined once: name, text, keys, status tip and what it calls.

:data:`COMMANDS` is the one table. The main window builds its menu and toolbar
actions from it (:func:`build_action`, in the order of :data:`MENUS` and
:data:`TOOLBAR`), the canvas its own keys (:func:`canvas_keys`: the keys it
handles itself while it has the focus, so they win over window shortcuts) and
its context menus (:func:`context_action`, with the command's context-menu
text and key hint). A command's ``call`` is ``"target.method"``, resolved once
when the actions are built (:func:`resolve`); a missing method is an
:class:`ActionTableError` naming the command, never a silent no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QKeyCombination, QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QStyle

KEY = QKeySequence.StandardKey
ICON = QStyle.StandardPixmap
Shortcut = str | QKeySequence.StandardKey


class ActionTableError(LookupError):
    """A command of the table names a target or method that does not exist."""


@dataclass(frozen=True)
class Command:
    """One editor command.

    ``call``: ``"target.method"`` run by the menu and toolbar action (``args`` passed);
    ``canvas``: the canvas method its keys and context menus run (default: ``call``'s
    method when ``call`` targets the canvas); ``canvas_keys``: further keys the
    canvas alone handles; ``editing``: disabled while the graph is read-only;
    ``canvas_only``: its shortcut works only while the canvas has the focus (a
    one-letter key); ``context``: its text in the canvas's context menus.
    """

    name: str
    text: str
    call: str
    tip: str
    shortcuts: tuple[Shortcut, ...] = ()
    args: tuple[Any, ...] = ()
    icon: QStyle.StandardPixmap | None = None
    icon_text: str | None = None
    tooltip: str | None = None
    canvas: str | None = None
    canvas_keys: tuple[str, ...] = ()
    editing: bool = False
    canvas_only: bool = False
    context: str | None = None

    @property
    def target(self) -> str:
        return self.call.partition(".")[0]

    @property
    def canvas_method(self) -> str | None:
        if self.canvas is not None:
            return self.canvas
        return self.call.partition(".")[2] if self.target == "canvas" else None

    def key_sequences(self) -> list[QKeySequence]:
        """The shortcuts as Qt sequences (a standard key: its first binding)."""
        return [QKeySequence(key) for key in self.shortcuts]


def _commands(*commands: Command) -> dict[str, Command]:
    table: dict[str, Command] = {}
    for command in commands:
        if command.name in table:
            raise ActionTableError(f"command {command.name!r} is defined twice")
        table[command.name] = command
    return table


COMMANDS: dict[str, Command] = _commands(
    # File
    Command(
        "new",
        "&New",
        "window.new_project",
        "Start a new project: an empty canvas with one Input and one Output",
        (KEY.New,),
        icon=ICON.SP_FileIcon,
    ),
    Command(
        "open",
        "&Open…",
        "window.open_dialog",
        "Open a project file",
        (KEY.Open,),
        icon=ICON.SP_DialogOpenButton,
    ),
    Command(
        "open_sample",
        "Open Sa&mple…",
        "welcome.choose_sample",
        "Choose a bundled sample project; it opens as an untitled copy",
        ("Ctrl+Shift+O",),
    ),
    Command(
        "save",
        "&Save",
        "window.save",
        "Save the project to its file (asks for a name the first time)",
        (KEY.Save,),
        icon=ICON.SP_DialogSaveButton,
    ),
    Command(
        "save_as",
        "Save &As…",
        "window.save_as",
        "Save the project under a new name",
        ("Ctrl+Shift+S",),
    ),
    Command(
        "import_keras",
        "&Import Model…",
        "window.import_keras_dialog",
        "Read a model as a project: a Keras .keras file or model.to_json() file, or an ONNX "
        "file, with its weights",
        ("Ctrl+I",),
    ),
    Command(
        "export_keras",
        "&Keras 3 code…",
        "window.export_code",
        "Preview the project as Keras 3 code and save it, with the trained weights",
        ("Ctrl+E",),
        args=("keras",),
    ),
    Command(
        "export_pytorch",
        "&PyTorch code…",
        "window.export_code",
        "Preview the project as PyTorch code and save it, with the trained weights",
        ("Ctrl+Shift+E",),
        args=("pytorch",),
    ),
    Command(
        "export_onnx",
        "&ONNX file…",
        "window.export_model_file",
        "Write the model with its weights as an ONNX file (for onnxruntime, Netron and other "
        "tools)",
        ("Ctrl+Alt+E",),
        args=("onnx",),
    ),
    Command(
        "export_keras_model",
        "Keras &model file…",
        "window.export_model_file",
        "Write the model with its weights as a .keras file (keras.models.load_model reads it)",
        ("Ctrl+Alt+K",),
        args=("keras-model",),
    ),
    Command(
        "quit",
        "&Quit",
        "window.close",
        "Close nodenet (asks before unsaved work is lost)",
        ("Ctrl+Q",),
    ),
    # Edit
    Command(
        "undo",
        "&Undo",
        "window.undo",
        "Undo the last edit",
        ("Ctrl+Z",),
        icon=ICON.SP_ArrowBack,
        icon_text="Undo",  # the menu says what; the toolbar stays short
    ),
    Command(
        "redo",
        "&Redo",
        "window.redo",
        "Redo the edit just undone",
        ("Ctrl+Shift+Z", "Ctrl+Y"),
        icon=ICON.SP_ArrowForward,
        icon_text="Redo",
    ),
    Command(
        "cut",
        "Cu&t",
        "canvas.cut_selection",
        "Move the selected blocks to the clipboard",
        (KEY.Cut,),
        editing=True,
        context="Cut",
    ),
    Command(
        "copy",
        "&Copy",
        "canvas.copy_selection",
        "Copy the selected blocks and the edges between them",
        (KEY.Copy,),
        context="Copy",
    ),
    Command(
        "paste",
        "&Paste",
        "canvas.paste",
        "Paste the blocks on the clipboard",
        (KEY.Paste,),
        editing=True,
        context="Paste",
    ),
    Command(
        "duplicate",
        "&Duplicate",
        "canvas.duplicate_selection",
        "Copy and paste the selected blocks in one step",
        ("Ctrl+D",),
        editing=True,
        context="Duplicate",
    ),
    Command(
        "delete",
        "De&lete",
        "canvas.delete_selection",
        "Delete the selected blocks and edges",
        (KEY.Delete,),
        icon=ICON.SP_TrashIcon,
        canvas_keys=("Backspace",),
        editing=True,
        context="Delete",
    ),
    Command(
        "delete_reconnect",
        "Delete and Rec&onnect",
        "canvas.delete_and_reconnect",
        "Delete the selected block and wire its input to the blocks it fed",
        ("Ctrl+Del",),  # Shift is ignored on the canvas: Ctrl+Shift+Del does this too
        canvas_keys=("Ctrl+Backspace",),
        editing=True,
        context="Delete and reconnect",
    ),
    Command(
        "paste_prefix",
        "Paste with Pr&efix…",
        "canvas.paste_with_prefix",
        "Paste the blocks on the clipboard, their new ids starting with a prefix you choose",
        ("Ctrl+Alt+V",),
        editing=True,
        context="Paste with prefix…",
    ),
    Command(
        "batch_rename",
        "Batch Rena&me…",
        "canvas.batch_rename",
        "Rename the selected blocks at once: add a prefix or a suffix, replace text",
        ("Ctrl+F2",),
        editing=True,
        context="Batch rename…",
    ),
    Command(
        "select_all",
        "Select &All",
        "window.select_all_blocks",
        "Select every block",
        (KEY.SelectAll,),
        canvas="select_all",
        context="Select all",
    ),
    Command(
        "find",
        "&Find Block…",
        "window.find_block",
        "Find blocks on the canvas by id, type or parameter value and show them",
        (KEY.Find,),
    ),
    Command(
        "find_next",
        "Find &Next",
        "window.find_next",
        "Show the next block that matches the search",
        ("F3",),
    ),
    Command(
        "find_previous",
        "Find Pre&vious",
        "window.find_previous",
        "Show the previous block that matches the search",
        ("Shift+F3",),
    ),
    Command(
        "rename",
        "Re&name…",
        "window.rename_selected",
        "Rename the selected block",
        ("F2",),
        canvas="rename_node",
        editing=True,
        context="Rename…",
    ),
    Command(
        "freeze",
        "Free&ze / Unfreeze",
        "canvas.toggle_frozen_selection",
        "Freeze the selected blocks' weights (training leaves them as they are), or "
        "unfreeze them if any is frozen",
        ("Ctrl+K",),  # no Shift: the canvas ignores it, so Ctrl+Shift+F would take Ctrl+F
        editing=True,
        context="Freeze / unfreeze",
    ),
    Command(
        "group",
        "&Group",
        "canvas.group_selection",
        "Make the selected blocks one group block: their incoming and outgoing wires "
        "become its ports",
        ("Ctrl+G",),
        editing=True,
        context="Group",
    ),
    Command(
        "ungroup",
        "&Ungroup",
        "canvas.ungroup_selection",
        "Replace the selected group block by the blocks inside it",
        ("Ctrl+Alt+G",),  # not Ctrl+Shift+G: the canvas ignores Shift, that would be Ctrl+G
        editing=True,
        context="Ungroup",
    ),
    Command(
        "repeat",
        "Repeat ×&N…",
        "canvas.repeat_selection",
        "Chain N copies of the selected group block (one input, one output), each with "
        "its own weights",
        ("Ctrl+Alt+R",),
        editing=True,
        context="Repeat ×N…",
    ),
    Command(
        "open_group",
        "&Open Group",
        "canvas.open_group",
        "Show the inside of the selected group block to edit it (or double-click it)",
        ("Ctrl+Alt+O",),
        context="Open group",
    ),
    Command(
        "close_group",
        "&Back to Enclosing Graph",
        "canvas.close_group",
        "Leave the group on show and go back to the graph around it",
        ("Alt+Up",),
    ),
    # View
    Command(
        "zoom_in",
        "Zoom &In",
        "canvas.zoom_in",
        "Zoom in on the canvas",
        ("Ctrl++",),
        icon_text="Zoom in",
        canvas_keys=("Ctrl+=",),
    ),
    Command(
        "zoom_out",
        "Zoom &Out",
        "canvas.zoom_out",
        "Zoom out of the canvas",
        ("Ctrl+-",),
        icon_text="Zoom out",
    ),
    Command(
        "fit",
        "&Fit to View",
        "canvas.fit_to_view",
        "Zoom to show the whole graph",
        ("F",),
        icon_text="Fit",
        canvas_only=True,
        context="Fit to view",
    ),
    Command(
        "layout",
        "Auto &Layout",
        "canvas.auto_layout",
        "Arrange the blocks in layers, inputs on the left, outputs on the right",
        ("L",),
        icon_text="Layout",
        editing=True,
        canvas_only=True,
        context="Auto layout",
    ),
    Command(
        "sweep",
        "S&weep…",
        "window.open_sweep",
        "Search hyperparameters with Optuna: every trial is a run recorded beside the project",
        ("Ctrl+Alt+W",),
    ),
    # Help
    Command(
        "welcome",
        "&Welcome",
        "welcome.show",
        "Show the welcome page: new project, recent files and the samples",
        ("Alt+Home",),
        tooltip="Welcome page (Alt+Home)",
    ),
)

# Menu layout: command names, None for a separator, (title, items) for a submenu and
# "@part" for the parts the window fills itself (recent files, the Run panel's
# actions, the docks' toggles).
RECENT, RUN, DOCKS = "@recent", "@run", "@docks"
MenuItem = str | None | tuple[str, tuple]
# fmt: off
FILE_MENU: tuple[MenuItem, ...] = (
    "new", "open", RECENT, "open_sample", None, "save", "save_as", None,
    "import_keras",
    ("&Export", ("export_keras", "export_pytorch", None, "export_onnx", "export_keras_model")),
    None, "quit",
)
EDIT_MENU: tuple[MenuItem, ...] = (
    "undo", "redo", None, "cut", "copy", "paste", "paste_prefix", "duplicate", "delete",
    "delete_reconnect", None, "select_all", "find", "find_next",
    "find_previous", "rename", "batch_rename", "freeze", None, "group", "ungroup", "repeat",
    "open_group", "close_group",
)
VIEW_MENU: tuple[MenuItem, ...] = ("zoom_in", "zoom_out", "fit", "layout", None, DOCKS)
MENUS: tuple[tuple[str, tuple[MenuItem, ...]], ...] = (
    ("&File", FILE_MENU), ("&Edit", EDIT_MENU), ("&Run", (RUN, None, "sweep")),
    ("&View", VIEW_MENU), ("&Help", ("welcome",)),
)
TOOLBAR: tuple[str | None, ...] = (
    "new", "open", "save", None, "undo", "redo", "delete", None,
    "zoom_in", "zoom_out", "fit", "layout", None, RUN,
)
# fmt: on


def menu_commands(items: Iterable[MenuItem] | None = None) -> list[str]:
    """Every command name :data:`MENUS` places (submenus included), in menu order."""
    names: list[str] = []
    for item in items if items is not None else (i for _, m in MENUS for i in m):
        if isinstance(item, tuple):
            names.extend(menu_commands(item[1]))
        elif item is not None and not item.startswith("@"):
            names.append(item)
    return names


def tooltip(text: str, keys: list[QKeySequence]) -> str:
    """``Text (Shortcut)``: ``text`` without its mnemonic or ellipsis, and the first key."""
    plain = text.replace("&", "").rstrip("…")
    key = keys[0].toString(QKeySequence.SequenceFormat.NativeText) if keys else ""
    return f"{plain} ({key})" if key else plain


def resolve(command: Command, targets: Mapping[str, object]) -> Callable[[], Any]:
    """``command.call`` bound to its target (``args`` applied): looked up once, here."""
    target_name, _, method_name = command.call.partition(".")
    if target_name not in targets:
        raise ActionTableError(
            f"command {command.name!r} calls {command.call!r}, but there is no "
            f"{target_name!r} (known: {', '.join(targets)})"
        )
    method = getattr(targets[target_name], method_name, None)
    if not callable(method):
        raise ActionTableError(
            f"command {command.name!r} calls {command.call!r}, but "
            f"{type(targets[target_name]).__name__} has no method {method_name!r}"
        )
    args = command.args
    return (lambda: method(*args)) if args else (lambda: method())


def build_action(
    command: Command, slot: Callable[[], Any], parent: QObject, icons: QStyle | None = None
) -> QAction:
    """The menu / toolbar action of ``command``, running ``slot``."""
    action = QAction(command.text, parent)
    action.setObjectName(f"action_{command.name}")
    keys = command.key_sequences()
    if keys:
        action.setShortcuts(keys)
    if command.icon is not None and icons is not None:
        action.setIcon(icons.standardIcon(command.icon))
    if command.icon_text:
        action.setIconText(command.icon_text)
    action.setStatusTip(command.tip)
    action.setToolTip(command.tooltip or tooltip(command.text, keys))
    action.setData(command.name)
    action.triggered.connect(lambda _=False: slot())
    return action


# -- the canvas: its own keys and its context menus ------------------------------------------

# Modifiers a canvas key ignores: the keypad's, and Shift (Ctrl++ is typed with Shift on many
# layouts; Shift+Del deletes as Del does).
IGNORED_MODIFIERS = Qt.KeyboardModifier.KeypadModifier | Qt.KeyboardModifier.ShiftModifier


def key_of(combination: QKeyCombination) -> tuple[int, int]:
    """``(key, modifiers)`` of a key press, the ignored modifiers dropped."""
    modifiers = combination.keyboardModifiers() & ~IGNORED_MODIFIERS
    return int(combination.key().value), int(modifiers.value)


def canvas_keys(view: object) -> dict[tuple[int, int], Callable[[], Any]]:
    """The keys the canvas handles itself: for every command with a canvas method, its
    shortcuts and ``canvas_keys``, mapped (by :func:`key_of`) to ``view``'s method."""
    keys: dict[tuple[int, int], Callable[[], Any]] = {}
    for command in COMMANDS.values():
        method_name = command.canvas_method
        if method_name is None:
            continue
        method = getattr(view, method_name, None)
        if not callable(method):
            raise ActionTableError(
                f"command {command.name!r}: the canvas has no method {method_name!r}"
            )
        sequences = [*command.key_sequences(), *(QKeySequence(k) for k in command.canvas_keys)]
        for sequence in sequences:
            key = key_of(sequence[0])
            if key in keys:
                raise ActionTableError(f"command {command.name!r}: {sequence.toString()} is taken")
            keys[key] = method
    return keys


def context_action(
    menu: QMenu, name: str, slot: Callable[[], Any], read_only: bool, text: str | None = None
) -> QAction:
    """Command ``name`` in a canvas context menu: its context text (or ``text``), its key
    shown as a hint (the canvas handles the key itself), disabled while read-only when
    it edits. ``slot`` is the command bound to what the menu opened on."""
    command = COMMANDS[name]
    action = menu.addAction(text or command.context or command.text.replace("&", ""))
    action.setData(name)
    action.triggered.connect(lambda _=False: slot())
    keys = command.key_sequences()
    if keys:
        action.setShortcut(keys[0])
        action.setShortcutVisibleInContextMenu(True)
    action.setEnabled(not (command.editing and read_only))
    return action


__all__ = [
    "COMMANDS",
    "DOCKS",
    "MENUS",
    "RECENT",
    "RUN",
    "TOOLBAR",
    "ActionTableError",
    "Command",
    "build_action",
    "canvas_keys",
    "context_action",
    "key_of",
    "menu_commands",
    "resolve",
    "tooltip",
]

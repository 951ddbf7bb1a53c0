"""The tutorial (docs/tutorial.md) as real gestures on the real nodenet window.

Each step is a function ``step(bot, window, folder)``: ``bot`` is pytest-qt's
``qtbot`` in tests/ui/test_tutorial.py, or :class:`ScriptBot` in
docs/screenshots.py (both give ``waitSignal`` and ``waitUntil``), ``window`` a
shown :class:`~nodenet.ui.main_window.MainWindow`, ``folder`` where the
project and the exported code are saved. The steps only press, move and release
the mouse, type keys and click buttons, as a person would: blocks come from the
palette by a drag, links from a press on an output port released on an input
port, parameters from typing into the inspector. File dialogs are the one thing
answered without a person (:func:`answering_file_dialogs`).

:data:`STEPS` lists them in the tutorial's order with the screenshot each one
ends with (``docs/images/tutorial/NN-name.png``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QEvent, QEventLoop, QMimeData, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QDrag, QDragEnterEvent, QDragMoveEvent, QDropEvent, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from nodenet.ui.canvas import style

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "tutorial" / "two_branch.json"  # the project the tutorial ends with
WINDOW_SIZE = (1700, 1150)
TRAIN_TIMEOUT_MS = 300_000
LEFT, NO_MOD = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier

# Where each block goes (scene coordinates of the card's top-left corner, on the canvas's
# 20-unit grid): five columns, as the auto-layout would place them.
COLUMN = 280.0
PLACES = {
    "pixels": (-240.0, 0.0),
    "wide": (-240.0 + COLUMN, -100.0),
    "narrow": (-240.0 + COLUMN, 100.0),
    "concatenate": (-240.0 + 2 * COLUMN, 0.0),
    "probs": (-240.0 + 3 * COLUMN, 0.0),
    "digit": (-240.0 + 4 * COLUMN, 0.0),
}


class ScriptBot:
    """``waitSignal`` and ``waitUntil`` as pytest-qt's ``qtbot`` gives them, for scripts."""

    @contextlib.contextmanager
    def waitSignal(self, signal, timeout: int = 5000) -> Iterator[object]:
        loop = QEventLoop()
        result = type("Blocker", (), {"args": None, "signal_triggered": False})()

        def fired(*args) -> None:
            result.args, result.signal_triggered = list(args), True
            loop.quit()

        signal.connect(fired)
        try:
            yield result
            if not result.signal_triggered:
                QTimer.singleShot(timeout, loop.quit)
                loop.exec()
        finally:
            signal.disconnect(fired)
        if not result.signal_triggered:
            raise TimeoutError(f"no signal within {timeout} ms")

    def waitUntil(self, callback: Callable[[], object], timeout: int = 5000) -> None:
        deadline = time.monotonic() + timeout / 1000
        while True:
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            try:
                if callback() is not False:
                    return
            except AssertionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} ms")
            time.sleep(0.02)


def start_window():
    """The main window as ``nodenet`` (no argument) opens it, sized for the screenshots."""
    try:
        from nodenet.ui.app import start_window as start
    except ImportError:  # before the welcome page existed
        from nodenet.ui.main_window import MainWindow

        window = MainWindow()
    else:
        window = start(None)
    window.resize(*WINDOW_SIZE)
    return window


# -- gestures ------------------------------------------------------------------------------


def settle(rounds: int = 3) -> None:
    for _ in range(rounds):
        QApplication.processEvents()


def click(widget: QWidget, pos: QPoint | None = None) -> None:
    QTest.mouseClick(widget, LEFT, NO_MOD, pos if pos is not None else widget.rect().center())
    settle()


def type_into(widget: QWidget, text: str) -> None:
    """Click into a field, select what is there (End, Shift+Home), type ``text``, Enter."""
    widget.setFocus(Qt.FocusReason.MouseFocusReason)
    QTest.keyClick(widget, Qt.Key.Key_End)
    QTest.keyClick(widget, Qt.Key.Key_Home, Qt.KeyboardModifier.ShiftModifier)
    QTest.keyClicks(widget, text)
    QTest.keyClick(widget, Qt.Key.Key_Return)
    settle()


def choose(combo: QComboBox, text: str) -> None:
    """Open a drop-down with a click and click the entry ``text`` in its list."""
    index = combo.findText(text, Qt.MatchFlag.MatchStartsWith)
    if index < 0:
        raise AssertionError(f"{text!r} is not offered: {combo.itemText(0)!r}, ...")
    click(combo)
    view = combo.view()
    if not view.isVisible():
        raise AssertionError(f"clicking the {combo.currentText()!r} drop-down opened nothing")
    item = view.model().index(index, combo.modelColumn())
    view.scrollTo(item)
    # a drop-down ignores a release that comes sooner than a double-click after it opened
    QTest.qWait(QApplication.doubleClickInterval() + 50)
    point = view.visualRect(item).center()
    QTest.mouseMove(view.viewport(), point)
    click(view.viewport(), point)
    if combo.currentIndex() != index:
        raise AssertionError(f"clicking {text!r} picked {combo.currentText()!r}")


def toolbar_click(window, action_name: str) -> None:
    """Click the toolbar button of one of the window's actions."""
    click(window.toolbar.widgetForAction(window.actions[action_name]))


def on_show(window):
    """The graph on show: the project's, or a group opened inside it (its ``canvas``,
    ``document`` and ``inspector``)."""
    return window.navigator.current


def shortcut(bot, window, key: Qt.Key, modifiers=NO_MOD) -> None:
    """A keyboard shortcut typed on the canvas, with the window active (shortcuts go to
    the active window; after a dialog closes, its parent becomes active again)."""
    window.activateWindow()
    bot.waitUntil(window.isActiveWindow)
    QTest.keyClick(on_show(window).canvas, key, modifiers)
    settle()


def scene_to_view(window, point: QPointF) -> QPoint:
    return on_show(window).canvas.mapFromScene(point)


def card(window, node_id: str):
    return on_show(window).canvas.canvas_scene.nodes[node_id]


def header_point(window, node_id: str) -> QPoint:
    item = card(window, node_id)
    return scene_to_view(window, item.mapToScene(QPointF(60, 13)))


def select_block(window, node_id: str) -> None:
    """Click a block's title bar: it becomes the selection and the inspector shows it."""
    click(on_show(window).canvas.viewport(), header_point(window, node_id))
    if on_show(window).inspector.node_id != node_id:
        raise AssertionError(f"clicking {node_id} selected {on_show(window).inspector.node_id}")


def mouse_drag(widget: QWidget, start: QPoint, end: QPoint) -> None:
    """Press, move in a few steps with the button held, release."""
    QTest.mousePress(widget, LEFT, NO_MOD, start)
    for fraction in (0.25, 0.5, 0.75, 1.0):
        point = start + (end - start) * fraction
        move = QMouseEvent(
            QEvent.Type.MouseMove,
            QPointF(point),
            QPointF(widget.mapToGlobal(point)),
            Qt.MouseButton.NoButton,
            LEFT,
            NO_MOD,
        )
        QApplication.sendEvent(widget, move)
    QTest.mouseRelease(widget, LEFT, NO_MOD, end)
    settle()


def move_block(window, node_id: str, top_left: tuple[float, float]) -> None:
    """Drag a block by its title bar so its top-left corner lands on ``top_left``."""
    item = card(window, node_id)
    start = header_point(window, node_id)
    target = QPointF(*top_left) - item.scenePos() + item.mapToScene(QPointF(60, 13))
    mouse_drag(on_show(window).canvas.viewport(), start, scene_to_view(window, target))


def drag_from_palette(window, block_type: str, top_left: tuple[float, float]) -> str:
    """Drag ``block_type`` from the palette and drop it so its card's top-left corner is at
    ``top_left`` (scene coordinates). Returns the new block's id.

    The press and moves on the palette start the palette's own ``QDrag``; its
    ``exec`` (a platform drag loop, which an offscreen screen lacks) is replaced
    for the moment of the drag by what the platform does: drag-enter, drag-move
    and drop events on the canvas, carrying the palette's MIME data.
    """
    palette, canvas = window.palette, on_show(window).canvas
    item = palette.item(block_type)
    palette.tree.scrollToItem(item)
    start = palette.tree.visualItemRect(item).center()
    centre = QPointF(top_left[0] + style.NODE_WIDTH / 2, top_left[1] + style.node_height(1) / 2)
    target = scene_to_view(window, centre)
    before = {n.id for n in on_show(window).document.project.nodes}

    def deliver(drag: QDrag, *args) -> Qt.DropAction:
        mime: QMimeData = drag.mimeData()
        copy = Qt.DropAction.CopyAction
        viewport = canvas.viewport()
        enter = QDragEnterEvent(target, copy, mime, LEFT, NO_MOD)
        QApplication.sendEvent(viewport, enter)
        QApplication.sendEvent(viewport, QDragMoveEvent(target, copy, mime, LEFT, NO_MOD))
        drop = QDropEvent(QPointF(target), copy, mime, LEFT, NO_MOD)
        QApplication.sendEvent(viewport, drop)
        return copy if drop.isAccepted() else Qt.DropAction.IgnoreAction

    original = QDrag.exec
    QDrag.exec = deliver
    try:
        distance = QApplication.startDragDistance() + 4
        mouse_drag(palette.tree.viewport(), start, start + QPoint(4 * distance, 0))
    finally:
        QDrag.exec = original
    added = [n.id for n in on_show(window).document.project.nodes if n.id not in before]
    if len(added) != 1:
        raise AssertionError(f"dragging {block_type} from the palette added {added}")
    return added[0]


def connect(window, src: str, dst: str, port: int = 0) -> None:
    """Press on ``src``'s output port, drag, release on ``dst``'s input ``port``."""
    viewport = on_show(window).canvas.viewport()
    start = scene_to_view(window, card(window, src).output.scenePos())
    end = scene_to_view(window, card(window, dst).inputs[port].scenePos())
    QTest.mousePress(viewport, LEFT, NO_MOD, start)
    QTest.mouseMove(viewport, (start + end) / 2)
    QTest.mouseMove(viewport, end)
    QTest.mouseRelease(viewport, LEFT, NO_MOD, end)
    settle()
    edges = {(e.src, e.dst, e.port) for e in on_show(window).document.project.edges}
    if (src, dst, port) not in edges:
        raise AssertionError(f"dragging {src} → {dst}:{port} made no link")


def set_param(window, name: str, value: str) -> None:
    """Type (or pick) a value for the selected block's parameter ``name`` in the inspector."""
    widget = on_show(window).inspector.editors[name].widget
    if isinstance(widget, QComboBox):
        choose(widget, value)
    elif isinstance(widget, QSpinBox | QLineEdit):
        type_into(widget, value)
    else:
        raise TypeError(f"no gesture for a {type(widget).__name__}")


def rename(window, new_id: str) -> None:
    """Type a new id into the inspector's id field."""
    type_into(on_show(window).inspector.id_field, new_id)


def show_run_tab(window, title: str) -> None:
    """Raise the Run dock and click one of its tabs (Data, Settings, Curves, Evaluation)."""
    window.docks["training"].raise_()
    panel = window.training_panel
    bar = panel.tabs.tabBar()
    index = [panel.tabs.tabText(i) for i in range(panel.tabs.count())].index(title)
    click(bar, bar.tabRect(index).center())


def make_room_for_the_run_panel(window, share: float = 0.6) -> None:
    """What a person does by dragging the border above the Run panel upwards: give the
    panel ``share`` of the window's height (the one step done without the mouse: Qt's
    dock separators take no synthesized drag)."""
    window.docks["training"].raise_()
    height = round(window.height() * share)
    window.resizeDocks([window.docks["training"]], [height], Qt.Orientation.Vertical)
    settle()


@contextlib.contextmanager
def answering_file_dialogs(path: Path) -> Iterator[None]:
    """While inside, a "save file" dialog answers ``path`` (the one thing a person types)."""
    original = QFileDialog.getSaveFileName
    QFileDialog.getSaveFileName = staticmethod(lambda *args, **kwargs: (str(path), ""))
    try:
        yield
    finally:
        QFileDialog.getSaveFileName = original


# -- the steps -------------------------------------------------------------------------------


def new_project(bot, window, folder: Path) -> None:
    """New project (the welcome page's button, or File → New): an Input and an Output. Zoom
    out twice to make room, drag the Input to the left and the Output to the right, Fit."""
    welcome = getattr(window, "welcome", None)
    if welcome is not None and welcome.active:
        click(welcome.page.new_button)
    else:
        toolbar_click(window, "new")
    toolbar_click(window, "zoom_out")
    toolbar_click(window, "zoom_out")
    move_block(window, "input", PLACES["pixels"])
    move_block(window, "output", PLACES["digit"])
    toolbar_click(window, "fit")


def input_shape(bot, window, folder: Path) -> None:
    """Select the Input; name it ``pixels`` and give it the digits' shape, 64 values."""
    select_block(window, "input")
    rename(window, "pixels")
    set_param(window, "shape", "64")


def two_branches(bot, window, folder: Path) -> None:
    """Two Dense blocks from the palette, both fed by ``pixels``."""
    for node_id, units, activation in (("wide", "128", "relu"), ("narrow", "16", "tanh")):
        drag_from_palette(window, "Dense", PLACES[node_id])
        rename(window, node_id)
        set_param(window, "units", units)
        set_param(window, "activation", activation)
        connect(window, "pixels", node_id)


def merge(bot, window, folder: Path) -> None:
    """A Concatenate joins the branches: wide on port 0, narrow on port 1."""
    node_id = drag_from_palette(window, "Concatenate", PLACES["concatenate"])
    connect(window, "wide", node_id, 0)
    connect(window, "narrow", node_id, 1)


def head(bot, window, folder: Path) -> None:
    """A Dense softmax of 10 units, then the Output, renamed ``digit``."""
    drag_from_palette(window, "Dense", PLACES["probs"])
    rename(window, "probs")
    set_param(window, "units", "10")
    set_param(window, "activation", "softmax")
    connect(window, "concatenate", "probs")
    connect(window, "probs", "output")
    select_block(window, "output")
    rename(window, "digit")


def data(bot, window, folder: Path) -> None:
    """Run panel → Data: the built-in digits, x → pixels, y → digit, standardized, 20% test."""
    make_room_for_the_run_panel(window)
    show_run_tab(window, "Data")
    panel = window.training_panel.data_panel
    choose(panel.dataset, "digits")
    bot.waitUntil(lambda: panel.mapping_combos[("inputs", "pixels")].findData("x") >= 0)
    choose(panel.mapping_combos[("inputs", "pixels")], "x")
    choose(panel.mapping_combos[("targets", "digit")], "y")
    choose(panel.preprocess_form.editor("normalize"), "standard")
    type_into(panel.split_form.editor("test"), "0.2")
    # the data is checked against the graph in the background: wait for its verdict
    text = panel.status.text
    bot.waitUntil(
        lambda: text().startswith("✓ Ready") and text().endswith(" test."), timeout=60_000
    )


def settings(bot, window, folder: Path, epochs: int = 30) -> None:
    """Run panel → Settings: 30 epochs (Adam, batch 32 and 20% validation are the defaults)."""
    show_run_tab(window, "Settings")
    type_into(window.training_panel.settings_panel.training_form.editor("epochs"), str(epochs))


def train(bot, window, folder: Path) -> None:
    """Run: the curves grow live; wait for the run to finish."""
    panel = window.training_panel
    with bot.waitSignal(panel.trainingFinished, timeout=TRAIN_TIMEOUT_MS):
        click(panel.run_button)
    settle()


def evaluate(bot, window, folder: Path) -> None:
    """The Evaluation tab: test metrics, confusion matrix, predictions, histograms."""
    show_run_tab(window, "Evaluation")


def save(bot, window, folder: Path) -> None:
    """File → Save (Ctrl+S): the project has no file yet, so it asks where."""
    with answering_file_dialogs(folder / "two_branch.json"):
        shortcut(bot, window, Qt.Key.Key_S, CTRL)
    if window.document.project.path is None:
        raise AssertionError("Ctrl+S did not save the project")


def export(bot, window, folder: Path) -> None:
    """File → Export → Keras 3 code… (Ctrl+E): Save…, Close; then PyTorch code…
    (Ctrl+Shift+E): Save…. The PyTorch preview stays open."""
    shift = CTRL | Qt.KeyboardModifier.ShiftModifier
    for modifiers, target, suffix in ((CTRL, "keras", "keras"), (shift, "pytorch", "torch")):
        shortcut(bot, window, Qt.Key.Key_E, modifiers)
        dialog = window.export_dialog
        bot.waitUntil(lambda dialog=dialog: dialog is not None and dialog.isVisible())
        if dialog.target != target:
            raise AssertionError(f"the shortcut opened the {dialog.target} export, not {target}")
        with answering_file_dialogs(folder / f"two_branch_{suffix}.py"):
            click(dialog.save_button)
        if not (folder / f"two_branch_{suffix}.py").exists():
            raise AssertionError(f"Save… in the export dialog wrote no {suffix} module")
        if target == "keras":
            close = next(b for b in dialog.findChildren(QPushButton) if b.text() == "Close")
            click(close)


@dataclass(frozen=True)
class Step:
    """One step of the tutorial and the screenshot that ends it.

    ``shot``: the part of the window pictured: "window", "editor" (palette, canvas
    and inspector), "canvas", "run" (the Run panel), "export" (the export dialog),
    or None for no picture.
    """

    name: str
    run: Callable[..., None]
    shot: str | None


STEPS: tuple[Step, ...] = (
    Step("01-new-project", new_project, "editor"),
    Step("02-input", input_shape, "editor"),
    Step("03-branches", two_branches, "editor"),
    Step("04-merge", merge, "canvas"),
    Step("05-head", head, "window"),
    Step("06-data", data, "run"),
    Step("07-settings", settings, "run"),
    Step("08-curves", train, "run"),
    Step("09-evaluation", evaluate, "evaluation"),
    Step("10-save", save, None),
    Step("11-export", export, "export"),
)

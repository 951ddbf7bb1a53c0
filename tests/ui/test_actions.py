"""The one action table (nodenet.ui.actions): every command in the menus, no shared keys,
the canvas's keys and context menus taken from the table, missing methods named."""

from __future__ import annotations

from collections import defaultdict

import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMenu

from nodenet.ui.actions import (
    COMMANDS,
    ActionTableError,
    Command,
    canvas_keys,
    key_of,
    menu_commands,
    resolve,
)
from nodenet.ui.main_window import MainWindow
from tests.ui import SAMPLE


@pytest.fixture
def window(qtbot) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window, before_close_func=lambda w: w.document.undo_stack.setClean())
    window.open_sample(SAMPLE, ask=False)
    return window


def menu_bar_actions(menu: QMenu) -> list:
    found = []
    for action in menu.actions():
        if action.menu() is not None:
            found.extend(menu_bar_actions(action.menu()))
        elif not action.isSeparator():
            found.append(action)
    return found


def test_every_command_of_the_table_is_in_the_menus_once(window):
    placed = [a for top in window.menuBar().actions() for a in menu_bar_actions(top.menu())]
    names = [a.data() for a in placed if a.data() in COMMANDS]
    assert sorted(names) == sorted(COMMANDS)  # each one, once
    assert sorted(menu_commands()) == sorted(COMMANDS)
    for action in placed:
        if action.data() in COMMANDS:
            assert action is window.actions[action.data()]
            command = COMMANDS[action.data()]
            assert action.statusTip() == command.tip and command.tip
            assert action.shortcuts() == command.key_sequences()


def test_no_two_commands_share_a_key(window):
    owners = defaultdict(list)
    for command in COMMANDS.values():
        for key in [*command.key_sequences(), *map(QKeySequence, command.canvas_keys)]:
            owners[key.toString()].append(command.name)
    panel = window.training_panel
    for action in (panel.run_action, panel.stop_action):
        for key in action.shortcuts():
            owners[key.toString()].append(action.text())
    for dock in window.docks.values():
        owners[dock.toggleViewAction().shortcut().toString()].append(dock.windowTitle())
    clashes = {key: names for key, names in owners.items() if len(names) > 1}
    assert not clashes


def test_the_canvas_keys_are_the_commands_keys(window):
    view = window.canvas
    expected = {}
    for command in COMMANDS.values():
        if command.canvas_method is None:
            continue
        method = getattr(view, command.canvas_method)
        for key in [*command.key_sequences(), *map(QKeySequence, command.canvas_keys)]:
            expected[key_of(key[0])] = method
    own = {key_of(QKeySequence(k)[0]) for k in ("Esc", "Ctrl+0")}  # the view's own keys
    assert {k: v for k, v in view.keys.items() if k not in own} == expected
    assert set(view.keys) == set(expected) | own
    # the menu action and the canvas key reach the same command
    assert view.keys[key_of(QKeySequence("L")[0])] == view.auto_layout
    assert COMMANDS["layout"].call == "canvas.auto_layout"


def test_context_menus_show_the_commands_text_and_keys(window):
    view = window.canvas
    node_id = window.document.project.nodes[1].id
    card = view.canvas_scene.nodes[node_id]
    node_menu = view.context_menu_at(view.mapFromScene(card.sceneBoundingRect().center()))
    background = view.context_menu_at(view.mapFromScene(QPointF(9000, 9000)))
    seen = set()
    for menu in (node_menu, background):
        for action in menu.actions():
            name = action.data()
            if name is None:
                continue
            command = COMMANDS[name]
            seen.add(name)
            assert action.text() == command.context
            assert action.shortcut() == command.key_sequences()[0]
    assert seen == {"rename", "duplicate", "copy", "cut", "delete", "paste", "select_all"} | {
        "layout",
        "fit",
        "freeze",  # the node has weights
        "group",  # ungroup and repeat only on a Group block
        "delete_reconnect",  # one node: delete it and reconnect (batch rename for several)
        "paste_prefix",
    }
    assert window.document.has_weights(node_id)
    window.document.set_read_only(True)
    node_menu = view.context_menu_at(view.mapFromScene(card.sceneBoundingRect().center()))
    enabled = {a.data(): a.isEnabled() for a in node_menu.actions() if a.data()}
    assert enabled == {name: not COMMANDS[name].editing for name in enabled}


def test_a_command_naming_a_missing_method_is_refused_with_its_name():
    command = Command("frobnicate", "&Frobnicate", "canvas.frobnicate", "Frobnicate it")
    with pytest.raises(ActionTableError, match=r"'frobnicate'.*no method 'frobnicate'"):
        resolve(command, {"canvas": object()})
    with pytest.raises(ActionTableError, match="no 'canvas'"):
        resolve(command, {"window": object()})


def test_a_canvas_without_a_commands_method_is_refused():
    class Partial:
        def __getattr__(self, name):
            if name == "zoom_in":
                raise AttributeError(name)
            return lambda: None

    with pytest.raises(ActionTableError, match="'zoom_in'"):
        canvas_keys(Partial())

"""Every menu action can be reached from the keyboard or the toolbar and says what it does;
every control of the window (docks, welcome page) and every palette block has a tooltip.

The walks print their offenders, one per line, so a failure names what to fix.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

import pytest
from PySide6.QtGui import QAction, QKeySequence, QTextDocument
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QMenu,
    QTabBar,
    QToolBar,
    QWidget,
)

from nodenet.engine import block_class, block_types
from nodenet.ui.main_window import MainWindow
from nodenet.ui.sample_gallery import ClickableCard
from tests.ui import SAMPLE

INTERACTIVE = (QAbstractButton, QComboBox, QAbstractSpinBox, QLineEdit, ClickableCard)
# parts Qt builds inside other widgets (a combo's or spin box's line edit, a line edit's
# clear button, a tab bar's scroll arrows): the owning widget carries the tooltip
INNER_PARENTS = (QLineEdit, QComboBox, QAbstractSpinBox, QTabBar)
KEY = QKeySequence.StandardKey


@pytest.fixture
def window(qtbot) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window, before_close_func=lambda w: w.document.undo_stack.setClean())
    window.open_sample(SAMPLE, ask=False)
    for dock in window.docks.values():
        dock.show()
    window.show()
    qtbot.waitExposed(window)
    return window


def menu_actions(menu: QMenu, path: str = "") -> Iterator[tuple[str, QAction]]:
    """``("File › Save", action)`` for every command of ``menu`` and its submenus.

    Open Recent is filled when it opens: its entries are files (numbered &1 … &9).
    """
    for action in menu.actions():
        if action.isSeparator():
            continue
        name = f"{path} › {action.text().replace('&', '')}" if path else action.text()
        if action.menu() is not None:
            yield from menu_actions(action.menu(), name)
        else:
            yield name.replace("&", ""), action


def all_menu_actions(window: MainWindow) -> list[tuple[str, QAction]]:
    found = []
    for top in window.menuBar().actions():
        found.extend(menu_actions(top.menu(), top.text().replace("&", "")))
    return found


def report(title: str, offenders: list[str]) -> None:
    if offenders:
        print(f"{title}:\n  " + "\n  ".join(offenders))


def test_every_menu_action_has_a_shortcut_or_a_toolbar_button(window):
    on_toolbar = {a for bar in window.findChildren(QToolBar) for a in bar.actions()}
    actions = all_menu_actions(window)
    assert len(actions) >= 30
    offenders = [name for name, a in actions if a.shortcut().isEmpty() and a not in on_toolbar]
    report("menu actions with neither a shortcut nor a toolbar button", offenders)
    assert not offenders


def test_every_menu_action_has_a_status_tip_and_a_tooltip(window):
    offenders = [
        name for name, a in all_menu_actions(window) if not a.statusTip() or not a.toolTip()
    ]
    report("menu actions without a status tip", offenders)
    assert not offenders


def test_no_two_actions_share_a_key(window):
    owners = defaultdict(list)
    for name, action in all_menu_actions(window):
        for key in action.shortcuts():
            owners[key.toString()].append(name)
    clashes = [f"{key}: {', '.join(names)}" for key, names in owners.items() if len(names) > 1]
    report("keys bound to several actions", clashes)
    assert not clashes


def test_the_usual_keys_do_the_usual_things(window):
    expected = {
        "new": KEY.New,
        "open": KEY.Open,
        "save": KEY.Save,
        "undo": "Ctrl+Z",
        "cut": KEY.Cut,
        "copy": KEY.Copy,
        "paste": KEY.Paste,
        "delete": KEY.Delete,
        "select_all": KEY.SelectAll,
        "find": KEY.Find,
        "save_as": "Ctrl+Shift+S",
        "quit": "Ctrl+Q",
        "zoom_in": "Ctrl++",
        "zoom_out": "Ctrl+-",
        "rename": "F2",
    }
    for name, key in expected.items():
        assert window.actions[name].shortcut() == QKeySequence(key), name
    assert QKeySequence("Ctrl+Y") in window.actions["redo"].shortcuts()
    panel = window.training_panel
    assert {"Ctrl+R", "F5"} <= {k.toString() for k in panel.run_action.shortcuts()}
    assert {"Esc", "Shift+F5"} <= {k.toString() for k in panel.stop_action.shortcuts()}
    docks = [dock.toggleViewAction().shortcut().toString() for dock in window.docks.values()]
    assert docks == [f"Alt+{i}" for i in range(1, len(docks) + 1)]


def controls_without_tooltip(root: QWidget) -> set[str]:
    """The interactive widgets under ``root`` (shown or not) that have no tooltip."""
    offenders = set()
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, INTERACTIVE) or widget.toolTip():
            continue
        if widget.objectName().startswith("qt_") or isinstance(widget.parent(), INNER_PARENTS):
            continue
        chain, parent, in_menu = [], widget.parentWidget(), False
        while parent is not None and parent is not root:
            chain.append(parent.objectName() or type(parent).__name__)
            in_menu = in_menu or isinstance(parent, QMenu)
            parent = parent.parentWidget()
        if in_menu:  # pyqtgraph's plot options, in the context menus of its plots
            continue
        text = getattr(widget, "text", lambda: "")() or getattr(widget, "placeholderText", str)()
        offenders.add(f"{type(widget).__name__} {text!r} in {' < '.join(chain[:4])}")
    return offenders


def test_every_control_of_the_window_has_a_tooltip(window):
    offenders = controls_without_tooltip(window)
    panel = window.training_panel
    for combo in (panel.data_panel.kind, panel.settings_panel.optimizer_name):
        for index in range(combo.count()):  # each choice builds its own form
            combo.setCurrentIndex(index)
            offenders |= controls_without_tooltip(window)
    window.welcome.show()
    offenders |= controls_without_tooltip(window)
    window.welcome.leave()
    report("controls without a tooltip", sorted(offenders))
    assert not offenders


def test_every_inspector_editor_has_a_tooltip(window):
    offenders = set()
    for i, block_type in enumerate(block_types()):
        node_id = window.document.add_node(block_type, (0.0, 200.0 * i))
        window.selection.set([node_id])
        assert window.inspector.node_id == node_id
        offenders |= {f"{block_type}: {o}" for o in controls_without_tooltip(window.inspector)}
    report("inspector editors without a tooltip", sorted(offenders))
    assert not offenders


def plain(html: str) -> str:
    document = QTextDocument()
    document.setHtml(html)
    return " ".join(document.toPlainText().split())


def test_every_palette_block_shows_its_catalog_description(window):
    palette, missing = window.palette, []
    assert set(palette.block_types()) == set(block_types())
    for block_type in block_types():
        tip = plain(palette.item(block_type).toolTip(0))
        description = " ".join(re.sub(r"``(.+?)``", r"\1", block_class(block_type).doc()).split())
        if not description or block_type not in tip or description not in tip:
            missing.append(block_type)
    report("palette blocks whose tooltip lacks the catalog description", missing)
    assert not missing


def test_resting_on_a_menu_item_shows_its_status_tip(window, qtbot):
    action = window.actions["layout"]
    menu = window.view_menu
    menu.popup(window.mapToGlobal(window.rect().center()))
    qtbot.waitExposed(menu)
    QTest.mouseMove(menu, menu.actionGeometry(action).center())
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == action.statusTip())
    menu.close()

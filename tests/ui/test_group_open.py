"""Opening a group to edit its inside, with real gestures: double-click the group card,
edit the blocks inside (inspector, palette drag, drop on an edge), go back with the
breadcrumb bar, and undo / redo the whole sequence exactly; a problem inside a group
opens it from the Problems view."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolButton

from docs.tutorial_steps import (
    card,
    drag_from_palette,
    on_show,
    select_block,
    set_param,
    settle,
    shortcut,
)
from nodenet.graph.project import load
from nodenet.ui.canvas import style
from nodenet.ui.group_scope import ScopeDocument
from tests.ui.test_groups_gui import chain, group_d1_d2

CTRL, ALT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.AltModifier
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def window(make_window):
    window = make_window()
    window.welcome.leave()
    window.document.replace_project(chain())
    window.canvas.fit_to_view()
    settle()
    return window


def state(window) -> str:
    return json.dumps(window.document.project.to_dict(), sort_keys=True)


def double_click(window, node_id: str) -> None:
    """Double-click a block's title bar (a double-click on its id renames it)."""
    item = card(window, node_id)
    point = on_show(window).canvas.mapFromScene(item.mapToScene(QPointF(60, 13)))
    QTest.mouseDClick(on_show(window).canvas.viewport(), LEFT, Qt.KeyboardModifier(0), point)
    settle()


def click_back(window) -> None:
    button = window.navigator.bar.findChild(QToolButton, "group_back")
    QTest.mouseClick(button, LEFT)
    settle()


def open_group(window, qtbot) -> str:
    node_id = group_d1_d2(window, qtbot)
    double_click(window, node_id)
    assert len(window.navigator.levels) == 2
    return node_id


def test_double_click_opens_the_inside_with_its_ports_and_shapes(window, qtbot):
    node_id = open_group(window, qtbot)
    inside = on_show(window).document
    assert isinstance(inside, ScopeDocument)
    kinds = {n.id: n.type for n in inside.project.nodes}
    assert kinds == {"input_0": "Input", "d1": "Dense", "d2": "Dense", "output_0": "Output"}
    assert inside.analysis.ok
    # the input port has the shape reaching the instance: inp's (4,)
    assert inside.analysis.shapes["input_0"] == (4,)
    assert inside.analysis.shapes["d2"] == (4,)
    assert window.navigator.bar.isVisible()
    assert window.navigator.stack.currentWidget() is on_show(window).canvas
    assert window.docks["inspector"].widget().currentWidget() is on_show(window).inspector
    assert window.document.project.node(node_id).type == "Group"


def test_edits_inside_change_the_definition_and_undo_redo_replays_them_exactly(window, qtbot):
    states = [state(window)]
    node_id = open_group(window, qtbot)
    states.append(state(window))
    definition = on_show(window).document.definition
    # 1. a parameter in the inspector
    select_block(window, "d1")
    set_param(window, "units", "16")
    settle()
    states.append(state(window))
    group = window.document.project.groups[definition]
    assert {n.id: n.params.get("units") for n in group.nodes}["d1"] == 16
    # the card outside counts the new weights: 4*16+16 + 16*4+4
    assert window.document.analysis.params[node_id] == (4 * 16 + 16 + 16 * 4 + 4, 0)
    # 2. a Dropout from the palette, dropped on the edge d1 -> d2: inserted there
    edge = on_show(window).canvas.canvas_scene.edges[("d1", "d2", 0)]
    point = edge._path.pointAtPercent(0.5)
    top_left = (point.x() - style.NODE_WIDTH / 2, point.y() - style.node_height(1) / 2)
    dropout = drag_from_palette(window, "Dropout", top_left)
    group = window.document.project.groups[definition]
    edges = {(e.src, e.dst) for e in group.edges}
    assert edges == {("d1", dropout), (dropout, "d2")}, edges
    states.append(state(window))
    # 3. back to the project
    click_back(window)
    assert len(window.navigator.levels) == 1
    assert not window.navigator.bar.isVisible()
    assert window.document.analysis.ok
    # undo everything (the last edit first) and redo it: each state exactly
    stack = window.document.undo_stack
    seen = [state(window)]
    while stack.canUndo():
        shortcut(qtbot, window, Qt.Key.Key_Z, CTRL)
        seen.append(state(window))
    assert seen[-1] == states[0]
    for earlier in states:
        assert earlier in seen
    replayed = [state(window)]
    while stack.canRedo():
        window.redo()
        settle()
        replayed.append(state(window))
    assert replayed == list(reversed(seen))


def test_undo_inside_shows_the_definition_again_and_undoing_the_group_closes_it(window, qtbot):
    open_group(window, qtbot)
    select_block(window, "d2")
    set_param(window, "units", "3")
    settle()
    inside = on_show(window).document
    assert inside.project.node("d2").params["units"] == 3
    shortcut(qtbot, window, Qt.Key.Key_Z, CTRL)  # the edit inside
    assert on_show(window).document is inside
    assert inside.project.node("d2").params["units"] == 4
    assert set(on_show(window).canvas.canvas_scene.nodes) == {"input_0", "d1", "d2", "output_0"}
    shortcut(qtbot, window, Qt.Key.Key_Z, CTRL)  # the Group itself: its inside is gone
    assert len(window.navigator.levels) == 1
    assert {n.id for n in window.document.project.nodes} == {"inp", "d1", "d2", "head", "out"}


def test_alt_up_goes_back_and_port_blocks_refuse_parameters(window, qtbot):
    open_group(window, qtbot)
    inside = on_show(window).document
    with pytest.raises(Exception, match="port of the group"):
        inside.set_params("input_0", {"shape": [9]})
    shortcut(qtbot, window, Qt.Key.Key_Up, ALT)
    assert len(window.navigator.levels) == 1


def test_a_group_edited_inside_saves_and_reopens(window, qtbot, tmp_path):
    open_group(window, qtbot)
    select_block(window, "d1")
    set_param(window, "units", "5")
    settle()
    path = tmp_path / "edited.json"
    window.document.save(path)
    reopened = load(path)
    (group,) = reopened.groups.values()
    assert {n.id: n.params.get("units") for n in group.nodes} == {"d1": 5, "d2": 4}
    assert not window.document.is_dirty()


def test_a_shape_mistake_inside_a_group_is_shown_from_the_problems_view(window, qtbot):
    node_id = open_group(window, qtbot)
    click_back(window)
    # a Reshape left unconnected inside: a problem of an inner block
    double_click(window, node_id)
    reshape = drag_from_palette(window, "Reshape", (300.0, 400.0))
    inside = on_show(window).document
    inside.set_params(reshape, {"target_shape": [3]})
    click_back(window)
    problems = [p for p in window.document.analysis.problems if p.node]
    assert problems, "the unconnected Reshape inside should be a problem"
    inner = next(p.node for p in problems if p.node.startswith(f"{node_id}/"))
    window.show_node(inner)
    assert len(window.navigator.levels) == 2
    assert on_show(window).selection.ids() == [inner.split("/", 1)[1]]

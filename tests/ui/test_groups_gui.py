"""Groups in the editor, with real gestures: rubber-band selection and Ctrl+G, the group
card and its ports, undo/redo, Ungroup, Repeat ×N, a "Project blocks" palette drag,
port-to-port wiring to an instance, freezing, saving and reopening, training."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog

from docs.tutorial_steps import (
    connect,
    drag_from_palette,
    header_point,
    mouse_drag,
    scene_to_view,
    select_block,
    settle,
    shortcut,
)
from nodenet.engine.training import fit
from nodenet.graph.groups import GROUP_TYPE
from nodenet.graph.project import Edge, Node, Project, load
from nodenet.runner import build_model

CTRL, ALT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.AltModifier


def chain() -> Project:
    nodes = [
        Node("inp", "Input", {"shape": [4]}, [0.0, 0.0]),
        Node("d1", "Dense", {"units": 8, "activation": "relu"}, [260.0, 0.0]),
        Node("d2", "Dense", {"units": 4}, [520.0, 0.0]),
        Node("head", "Dense", {"units": 2}, [780.0, 0.0]),
        Node("out", "Output", {"loss": "mean_squared_error"}, [1040.0, 0.0]),
    ]
    ids = [n.id for n in nodes]
    return Project("chain", nodes, [Edge(a, b) for a, b in itertools.pairwise(ids)])


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


def rubber_band(window, top_left: tuple[float, float], bottom_right: tuple[float, float]):
    """Drag on the empty canvas from one scene point to another: a rubber-band selection."""
    viewport = window.canvas.viewport()
    start = scene_to_view(window, QPointF(*top_left))
    end = scene_to_view(window, QPointF(*bottom_right))
    mouse_drag(viewport, start, end)


def group_d1_d2(window, qtbot) -> str:
    rubber_band(window, (240.0, -60.0), (760.0, 260.0))
    assert window.canvas.canvas_scene.selected_ids() == ["d1", "d2"]
    shortcut(qtbot, window, Qt.Key.Key_G, CTRL)
    groups = [n for n in window.document.project.nodes if n.type == GROUP_TYPE]
    assert len(groups) == 1
    return groups[0].id


def test_ctrl_g_groups_a_selection_into_one_card_and_undo_restores_it(window, qtbot):
    doc = window.document
    before = state(window)
    node_id = group_d1_d2(window, qtbot)
    after = state(window)
    assert list(doc.project.groups) == ["group"]
    assert [n.id for n in doc.project.nodes] == ["inp", node_id, "head", "out"]
    assert doc.analysis.ok, doc.analysis.problems
    card = window.canvas.canvas_scene.nodes[node_id]
    assert card.face.title == "group" and card.face.block_type == GROUP_TYPE
    assert card.face.shape_text == "(None, 4)"
    assert card.face.count == 4 * 8 + 8 + 8 * 4 + 4
    assert len(card.inputs) == 1 and len(card.outputs) == 1
    assert "group" in card.toolTip() and "76 trainable" in card.toolTip()
    assert doc.undo_stack.count() == 1  # one command
    doc.undo()
    settle()
    assert state(window) == before
    assert set(window.canvas.canvas_scene.nodes) == {"inp", "d1", "d2", "head", "out"}
    assert set(window.canvas.canvas_scene.edges) == {(e.src, e.dst, e.port) for e in chain().edges}
    doc.redo()
    settle()
    assert state(window) == after
    assert (
        node_id in window.canvas.canvas_scene.nodes and "d1" not in window.canvas.canvas_scene.nodes
    )


def test_ungroup_reverses_a_group(window, qtbot):
    before = state(window)
    node_id = group_d1_d2(window, qtbot)
    select_block(window, node_id)
    shortcut(qtbot, window, Qt.Key.Key_G, CTRL | ALT)
    doc = window.document
    assert {n.id for n in doc.project.nodes} == {"inp", "d1", "d2", "head", "out"}
    assert {(e.src, e.dst) for e in doc.project.edges} == {(e.src, e.dst) for e in chain().edges}
    assert doc.analysis.ok
    doc.undo()
    doc.undo()
    assert state(window) == before


def answer_int(value: int) -> None:
    """Answer the next integer dialog with ``value`` (typed into it), then OK."""

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QInputDialog):
            QTimer.singleShot(20, answer)
            return
        dialog.setIntValue(value)
        dialog.accept()

    QTimer.singleShot(20, answer)


def test_repeat_three_stacks_three_instances_in_one_undo_step(window, qtbot):
    doc = window.document
    node_id = group_d1_d2(window, qtbot)
    grouped = state(window)
    select_block(window, node_id)
    answer_int(3)
    shortcut(qtbot, window, Qt.Key.Key_R, CTRL | ALT)
    instances = [n.id for n in doc.project.nodes if n.type == GROUP_TYPE]
    assert len(instances) == 3
    chain_edges = {(e.src, e.dst) for e in doc.project.edges}
    assert {("inp", node_id), (node_id, instances[1]), (instances[1], instances[2])} <= chain_edges
    assert (instances[2], "head") in chain_edges
    assert doc.analysis.ok, doc.analysis.problems
    assert doc.analysis.params[instances[2]] == doc.analysis.params[node_id]
    doc.undo()
    assert state(window) == grouped


def test_a_project_block_dragged_from_the_palette_is_wired_port_to_port(window, qtbot):
    doc = window.document
    node_id = group_d1_d2(window, qtbot)
    assert window.palette.group_names() == ["group"]
    new = drag_from_palette(window, "Group:group", (300.0, 300.0))
    assert doc.project.node(new).type == GROUP_TYPE and new != node_id
    connect(window, "inp", new)
    assert doc.check_connection("inp", new, None) is not None  # its one input is taken
    card = window.canvas.canvas_scene.nodes[new]
    assert card.face.shape_text == "(None, 4)" and 0 in card.face.filled


def test_freezing_an_instance_freezes_its_inside(window, qtbot):
    doc = window.document
    node_id = group_d1_d2(window, qtbot)
    select_block(window, node_id)
    shortcut(qtbot, window, Qt.Key.Key_K, CTRL)
    assert doc.project.node(node_id).trainable is False
    assert doc.analysis.params[node_id] == (0, 76)
    assert window.canvas.canvas_scene.nodes[node_id].face.frozen


def renamed(weights: dict, instance: str) -> dict:
    prefix = instance + "/"
    return {k.removeprefix(prefix): v for k, v in weights.items()}


def test_a_grouped_project_saves_reopens_and_trains_as_the_flat_one(window, qtbot, tmp_path):
    node_id = group_d1_d2(window, qtbot)
    path = window.document.save(tmp_path / "grouped.json")
    reopened = load(path)
    assert list(reopened.groups) == ["group"]
    assert json.loads(path.read_text())["groups"]["group"]["outputs"]
    rng = np.random.default_rng(0)
    x, y = {"inp": rng.normal(size=(32, 4))}, {"out": rng.normal(size=(32, 2))}
    group_model = build_model(reopened, dtype=np.float64, seed=3)
    flat_model = build_model(chain(), dtype=np.float64, seed=4)
    flat_model.set_weights(renamed(group_model.get_weights(), node_id))
    settings = {"epochs": 2, "batch_size": 8, "optimizer": {"name": "adam"}, "seed": 5}
    first = fit(group_model, x, y, **settings)
    second = fit(flat_model, x, y, **settings)
    assert first.series("loss") == pytest.approx(second.series("loss"), abs=1e-10)
    np.testing.assert_allclose(
        group_model.predict(x)["out"], flat_model.predict(x)["out"], rtol=0, atol=1e-10
    )


def test_group_commands_are_in_the_edit_menu_with_free_keys(window):
    texts = {a.text() for a in window.menuBar().actions()}
    assert any("Edit" in t for t in texts)
    assert window.actions["group"].shortcut().toString() == "Ctrl+G"
    assert window.actions["ungroup"].shortcut().toString() == "Ctrl+Alt+G"
    assert "Repeat" in window.actions["repeat"].text()


def test_the_palette_lists_project_blocks_and_filters_them(window, qtbot):
    palette = window.palette
    assert palette.group_names() == []
    group_d1_d2(window, qtbot)
    assert palette.group_names() == ["group"]
    assert not palette.group_item("group").isHidden()
    palette.set_filter("grou")
    assert not palette.group_item("group").isHidden() and not palette.no_match.isVisible()
    palette.set_filter("Conv2D")
    assert palette.group_item("group").isHidden()
    palette.set_filter("")
    window.document.undo()
    settle()
    assert palette.group_names() == []


def test_the_right_click_menu_groups_and_ungroups(window, qtbot):
    """Group on any block's menu; Ungroup and Repeat only on a Group block's."""
    view = window.canvas
    plain = view.context_menu_at(header_point(window, "d1"))
    names = {a.data() for a in plain.actions() if a.data()}
    assert "group" in names and not {"ungroup", "repeat"} & names
    node_id = group_d1_d2(window, qtbot)
    menu = view.context_menu_at(header_point(window, node_id))
    actions = {a.data(): a for a in menu.actions() if a.data()}
    assert {"group", "ungroup", "repeat"} <= set(actions)
    select_block(window, node_id)
    actions["ungroup"].trigger()
    assert {n.id for n in window.document.project.nodes} == {"inp", "d1", "d2", "head", "out"}

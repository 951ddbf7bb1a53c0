"""Editing big graphs with real gestures (issue 16): drop a block on an edge to insert
it, delete a block and reconnect, paste at the mouse with a prefix, rename many blocks
at once, and see why a link would be refused while it is held over the port.

Each edit is one undo step; undo restores the project exactly, redo again."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QCursor, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QInputDialog, QLabel, QLineEdit

from nodenet.errors import NodenetError
from nodenet.ui.canvas.port_item import PortState
from nodenet.ui.document import BLOCK_MIME, Document
from tests.ui.test_canvas import CTRL, LEFT, NO_MOD, Editor, drag_enter_event

SHIFT = Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier


@pytest.fixture
def ed(qtbot) -> Editor:
    return Editor(qtbot)


def snapshot(doc: Document) -> str:
    return json.dumps(doc.project.to_dict(), sort_keys=True)


def undo_redo_exact(ed: Editor, before: str, steps: int = 1) -> None:
    """Undo ``steps`` times: the project is as it was; redo: as it is now."""
    after = snapshot(ed.doc)
    for _ in range(steps):
        ed.doc.undo()
    assert snapshot(ed.doc) == before
    for _ in range(steps):
        ed.doc.redo()
    assert snapshot(ed.doc) == after


def chain(ed: Editor) -> None:
    """x (Input [8]) → d1 (Dense 16) → d2 (Dense 4) → out, in a row."""
    ed.add("Input", 0, 0, "x", shape=[8])
    ed.add("Dense", 280, 0, "d1", units=16)
    ed.add("Dense", 560, 0, "d2", units=4)
    ed.add("Output", 840, 0, "out")
    for src, dst in (("x", "d1"), ("d1", "d2"), ("d2", "out")):
        assert ed.doc.connect(src, dst) is None


def on_edge(ed: Editor, key: tuple[str, str, int], at: float = 0.3) -> QPoint:
    """A viewport point on the drawn wire of ``key``."""
    edge = ed.view.canvas_scene.edges[key]
    return ed.at(edge._path.pointAtPercent(at))


def palette_drag(ed: Editor, block_type: str, point: QPoint, during=None) -> bool:
    """A palette drag entering the canvas, moving to ``point`` and dropping there."""
    mime = QMimeData()
    mime.setData(BLOCK_MIME, block_type.encode("utf-8"))
    copy = Qt.DropAction.CopyAction
    enter = drag_enter_event(QPoint(5, 5), mime)
    QApplication.sendEvent(ed.viewport, enter)
    try:
        move = QDragMoveEvent(QPointF(point), copy, mime, LEFT, NO_MOD)
    except TypeError:  # PySide6 before 6.12 takes a QPoint
        move = QDragMoveEvent(point, copy, mime, LEFT, NO_MOD)
    QApplication.sendEvent(ed.viewport, move)
    if during is not None:
        during()
    drop = QDropEvent(QPointF(point), copy, mime, LEFT, NO_MOD)
    QApplication.sendEvent(ed.viewport, drop)
    return drop.isAccepted()


def answer_modal(callback) -> list:
    """Run ``callback(dialog)`` on the next modal dialog once it shows (it must close it)."""
    seen: list = []

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None or not dialog.isVisible():
            QTimer.singleShot(20, poll)
            return
        seen.append(dialog)
        callback(dialog)

    QTimer.singleShot(20, poll)
    return seen


# -- drop a block on an edge --------------------------------------------------------------


def test_dropping_a_palette_block_on_an_edge_inserts_it_in_one_undo_step(ed):
    chain(ed)
    before = snapshot(ed.doc)
    count = ed.doc.undo_stack.count()
    key = ("d1", "d2", 0)
    point = on_edge(ed, key)
    lit = []
    edge = ed.view.canvas_scene.edges[key]
    palette_drag(ed, "Dropout", point, lambda: lit.append(edge.highlighted))
    assert lit == [True], "the edge is highlighted while the block is held over it"
    assert not edge.refused and "Drop to insert on d1 → d2" in ed.messages
    assert ed.edges() == {
        ("x", "d1", 0),
        ("d1", "dropout", 0),
        ("dropout", "d2", 0),
        ("d2", "out", 0),
    }
    assert ed.selection.ids() == ["dropout"]
    assert ed.doc.undo_stack.count() == count + 1
    assert not any(e.highlighted for e in ed.view.canvas_scene.edges.values())
    assert not ed.doc.analysis.problems
    undo_redo_exact(ed, before)


def test_a_block_that_cannot_take_the_edges_shape_is_only_dropped(ed):
    chain(ed)
    point = on_edge(ed, ("x", "d1", 0))
    edge = ed.view.canvas_scene.edges[("x", "d1", 0)]
    held = []

    def during() -> None:
        held.append((edge.highlighted, edge.refused, ed.messages[-1]))

    assert palette_drag(ed, "LSTM", point, during)  # an LSTM needs (steps, features), not (8,)
    assert held == [(True, True, held[0][2])], "red while held over the edge"
    assert held[0][2].startswith("Not insertable on x → d1: LSTM cannot take the output of x")
    assert ed.doc.project.has_node("lstm")
    assert ("x", "d1", 0) in ed.edges()
    assert not any("lstm" in (e.src, e.dst) for e in ed.doc.project.edges)
    assert ed.messages[-1].startswith("Not inserted on x → d1: lstm cannot take the output of x")


def test_dragging_a_free_block_onto_an_edge_inserts_it(ed):
    chain(ed)
    ed.add("BatchNormalization", 280, 300, "bn")
    before = snapshot(ed.doc)
    target = on_edge(ed, ("x", "d1", 0), 0.5)
    lit = []
    edge = ed.view.canvas_scene.edges[("x", "d1", 0)]
    ed.drag(ed.header("bn"), target, during=lambda: lit.append(edge.highlighted))
    assert lit == [True]
    assert ("x", "bn", 0) in ed.edges() and ("bn", "d1", 0) in ed.edges()
    assert ("x", "d1", 0) not in ed.edges()
    assert ed.doc.project.node("bn").pos != [280.0, 300.0]
    assert ed.doc.undo_stack.undoText() == "Insert bn on x → d1"
    undo_redo_exact(ed, before)  # the move and the insertion are one step


def test_a_free_block_that_cannot_go_on_the_edge_is_only_moved(ed):
    chain(ed)
    ed.add("Reshape", 280, 300, "grid", target_shape=[3, 3])  # 9 values, x gives 8
    edge = ed.view.canvas_scene.edges[("x", "d1", 0)]
    held = []
    ed.drag(
        ed.header("grid"),
        on_edge(ed, ("x", "d1", 0), 0.5),
        during=lambda: held.append((edge.highlighted, edge.refused)),
    )
    assert held == [(True, True)], "red while held over the edge"
    assert ("x", "d1", 0) in ed.edges()
    assert ed.doc.project.node("grid").pos != [280.0, 300.0]
    assert ed.doc.undo_stack.undoText() == "Move grid"
    assert ed.messages[-1].startswith("Not inserted on x → d1: grid cannot take the output of x")


def test_a_connected_block_moved_over_an_edge_is_only_moved(ed):
    chain(ed)
    ed.add("Dense", 280, 300, "side", units=2)
    ed.doc.connect("x", "side")
    edges = ed.edges()
    ed.drag(ed.header("side"), on_edge(ed, ("d2", "out", 0), 0.5))
    assert ed.edges() == edges
    assert ed.doc.project.node("side").pos != [280.0, 300.0]


def test_insertion_refusals_name_the_block(ed):
    chain(ed)
    doc = ed.doc
    reason = doc.insertion_refusal("Concatenate", {}, ("x", "d1", 0), "cat")
    assert reason and "does not take one input" in reason
    assert "does not take one input" in doc.insertion_refusal(
        "Input", {"shape": [3]}, ("x", "d1", 0)
    )
    assert "no edge" in doc.insertion_refusal("Dense", {"units": 2}, ("x", "d2", 0))
    with pytest.raises(NodenetError, match="connected already"):
        doc.insert_on_edge("d1", ("d2", "out", 0))


# -- delete and reconnect -------------------------------------------------------------------


def test_ctrl_delete_deletes_a_block_and_reconnects_in_one_undo_step(ed):
    chain(ed)
    ed.add("Dense", 560, 300, "d3", units=4)
    ed.add("Add", 840, 300, "add")
    ed.doc.connect("d1", "d3")
    ed.doc.connect("d3", "add")
    ed.doc.connect("d2", "add")
    ed.doc.set_params("d2", {"units": 4})
    before = snapshot(ed.doc)
    QTest.mouseClick(ed.viewport, LEFT, NO_MOD, ed.header("d1"))
    assert ed.selection.ids() == ["d1"]
    ed.key(Qt.Key.Key_Delete, CTRL)
    assert not ed.doc.project.has_node("d1")
    assert {("x", "d2", 0), ("x", "d3", 0)} <= ed.edges()
    assert ed.doc.undo_stack.undoText() == "Delete d1 and reconnect"
    undo_redo_exact(ed, before)


def test_ctrl_shift_delete_and_the_context_menu_do_it_too(ed):
    chain(ed)
    before = snapshot(ed.doc)
    QTest.mouseClick(ed.viewport, LEFT, NO_MOD, ed.header("d2"))
    ed.key(Qt.Key.Key_Delete, CTRL | SHIFT)
    assert ("d1", "out", 0) in ed.edges() and not ed.doc.project.has_node("d2")
    ed.doc.undo()
    assert snapshot(ed.doc) == before
    menu = ed.view.context_menu_at(ed.header("d1"))
    action = next(a for a in menu.actions() if a.data() == "delete_reconnect")
    assert action.isEnabled() and action.text() == "Delete and reconnect"
    action.trigger()
    assert ("x", "d2", 0) in ed.edges() and not ed.doc.project.has_node("d1")


def test_delete_and_reconnect_is_refused_when_the_shapes_do_not_allow_it(ed):
    ed.add("Input", 0, 0, "x", shape=[8])
    ed.add("Reshape", 280, 0, "seq", target_shape=[2, 4])
    ed.add("LSTM", 560, 0, "lstm", units=3)
    ed.doc.connect("x", "seq")
    ed.doc.connect("seq", "lstm")
    before = snapshot(ed.doc)
    QTest.mouseClick(ed.viewport, LEFT, NO_MOD, ed.header("seq"))
    ed.key(Qt.Key.Key_Delete, CTRL)
    assert snapshot(ed.doc) == before
    assert ed.messages[-1].startswith("Cannot reconnect: x cannot feed lstm in place of seq: lstm")
    menu = ed.view.context_menu_at(ed.header("seq"))
    action = next(a for a in menu.actions() if a.data() == "delete_reconnect")
    assert not action.isEnabled() and "cannot feed lstm" in action.toolTip()
    QTest.mouseClick(ed.viewport, LEFT, NO_MOD, ed.header("x"))
    ed.key(Qt.Key.Key_Delete, CTRL)
    assert ed.messages[-1] == (
        "Cannot reconnect: x has 0 input edges: only a block with one is reconnected"
    )
    assert snapshot(ed.doc) == before


# -- paste at the mouse, with a prefix ---------------------------------------------------------


def copy_two(ed: Editor) -> None:
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Dense", 300, 0, "b", units=2)
    ed.doc.connect("a", "b")
    ed.key(Qt.Key.Key_A, CTRL)
    ed.key(Qt.Key.Key_C, CTRL)


def test_paste_with_prefix_lands_at_the_mouse_with_the_chosen_ids(ed):
    copy_two(ed)
    before = snapshot(ed.doc)
    QTest.mouseMove(ed.viewport, ed.at(QPointF(200, 400)))

    def answer(dialog: QInputDialog) -> None:
        field = dialog.findChild(QLineEdit)
        assert field.text() == "copy_"
        field.selectAll()
        QTest.keyClicks(field, "r2_")
        QTest.keyClick(field, Qt.Key.Key_Return)

    seen = answer_modal(answer)
    ed.key(Qt.Key.Key_V, CTRL | ALT)
    assert seen and isinstance(seen[0], QInputDialog)
    assert ed.selection.ids() == ["r2_a", "r2_b"]
    assert ed.doc.project.node("r2_a").pos == [200.0, 400.0]
    assert ed.doc.project.node("r2_b").pos == [500.0, 400.0]
    assert ("r2_a", "r2_b", 0) in ed.edges()
    undo_redo_exact(ed, before)
    # the next prefix offered counts on; a taken id still gets a suffix
    answer_modal(
        lambda d: (d.textValue() == "r3_" or d.reject(), d.setTextValue("r2_"), d.accept())
    )
    ed.key(Qt.Key.Key_V, CTRL | ALT)
    assert sorted(ed.selection.ids()) == ["r2_a_1", "r2_b_1"]


def test_an_invalid_prefix_is_refused(ed):
    copy_two(ed)
    before = snapshot(ed.doc)
    answer_modal(lambda d: (d.setTextValue("9 "), d.accept()))
    ed.key(Qt.Key.Key_V, CTRL | ALT)
    assert snapshot(ed.doc) == before
    assert "the prefix '9' makes '9a' an invalid id" in ed.messages[-1]


def test_paste_with_the_mouse_outside_lands_at_the_view_centre(ed):
    copy_two(ed)
    QCursor.setPos(ed.view.mapToGlobal(QPoint(-300, -300)))  # the mouse left the canvas
    assert ed.view._cursor_scene_pos() is None
    ed.key(Qt.Key.Key_V, CTRL)
    centre = ed.view.mapToScene(ed.viewport.rect().center())
    rect = ed.item("a_1").sceneBoundingRect().united(ed.item("b_1").sceneBoundingRect())
    assert abs(rect.center().x() - centre.x()) < 30 and abs(rect.center().y() - centre.y()) < 30


# -- batch rename -------------------------------------------------------------------------------


def test_batch_rename_adds_a_prefix_in_one_undo_step(ed):
    chain(ed)
    before = snapshot(ed.doc)
    ed.drag(ed.at(QPointF(-20, -20)), ed.at(QPointF(820, 200)))  # rubber band: x, d1, d2
    assert ed.selection.ids() == ["x", "d1", "d2"]

    def answer(dialog: QDialog) -> None:
        QTest.keyClicks(dialog.prefix, "r1_")
        QTest.keyClicks(dialog.find, "d")
        QTest.keyClicks(dialog.replace, "dense")
        assert dialog.preview.text().splitlines()[1] == "d1 → r1_dense1"
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

    answer_modal(answer)
    ed.key(Qt.Key.Key_F2, CTRL)
    ids = [n.id for n in ed.doc.project.nodes]
    assert ids == ["r1_x", "r1_dense1", "r1_dense2", "out"]
    assert ("r1_dense2", "out", 0) in ed.edges()
    assert ed.selection.ids() == ["r1_x", "r1_dense1", "r1_dense2"]
    undo_redo_exact(ed, before)


def test_batch_rename_refuses_a_taken_id_and_stays_open(ed):
    chain(ed)
    ed.add("Dense", 0, 400, "r_d1", units=2)
    before = snapshot(ed.doc)
    ed.view.select_ids(["d1", "d2"])
    errors = []

    def answer(dialog: QDialog) -> None:
        QTest.keyClicks(dialog.prefix, "r_")
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
        errors.append((dialog.isVisible(), dialog.findChild(QLabel, "batch_rename_error").text()))
        dialog.reject()

    answer_modal(answer)
    ed.key(Qt.Key.Key_F2, CTRL)
    assert errors == [(True, "Cannot rename: the id 'r_d1' is already used by another block")]
    assert snapshot(ed.doc) == before


def test_rename_many_orders_chains_and_refuses_circles():
    from nodenet.graph.project import Project

    doc = Document(Project(name="t"))
    for i, name in enumerate(("a", "b", "c")):
        doc.add_node("Dense", (0, 100 * i), {"units": 2}, name)
    doc.connect("a", "b")
    doc.connect("b", "c")
    before = json.dumps(doc.project.to_dict())
    assert doc.rename_many({"a": "b", "b": "c", "c": "d"}) == 3
    assert [n.id for n in doc.project.nodes] == ["b", "c", "d"]
    assert {(e.src, e.dst) for e in doc.project.edges} == {("b", "c"), ("c", "d")}
    doc.undo()
    assert json.dumps(doc.project.to_dict()) == before
    with pytest.raises(NodenetError, match="circle"):
        doc.rename_many({"a": "b", "b": "a"})
    with pytest.raises(NodenetError, match="a and b would both be named 'x'"):
        doc.rename_many({"a": "x", "b": "x"})
    assert json.dumps(doc.project.to_dict()) == before


# -- a held link says why it would be refused ----------------------------------------------------


def test_a_link_held_over_a_refusing_port_shows_why_before_release(ed):
    ed.add("Input", 0, 0, "x", shape=[8])
    ed.add("LSTM", 400, 0, "lstm", units=3)
    ed.add("Dense", 400, 300, "ok", units=3)
    seen = {}

    def during() -> None:
        port = ed.item("lstm").inputs[0]
        hint = ed.view.interaction.hint
        seen.update(state=port.state, visible=hint.isVisible(), text=hint.text())
        QTest.mouseMove(ed.viewport, ed.in_port("ok"))
        seen.update(after=hint.isVisible(), ok=ed.item("ok").inputs[0].state)

    ed.drag(ed.out_port("x"), ed.in_port("lstm"), during=during)
    assert seen["state"] is PortState.REFUSED
    assert seen["visible"] and seen["text"].startswith("Cannot connect x → lstm: lstm:")
    assert "x → lstm" in seen["text"] and len(seen["text"]) > 30
    assert not seen["after"] and seen["ok"] is PortState.TARGET
    assert not ed.edges()  # released back over the refusing port: nothing connected
    assert ed.messages[-1] == seen["text"]
    assert ed.view.interaction is None


# -- the document's edits: merge ports kept, undo exact over many edits ---------------------------


def merge_graph() -> Document:
    from nodenet.graph.project import Project

    doc = Document(Project(name="merge"))
    doc.add_node("Input", (0, 0), {"shape": [8]}, "x")
    doc.add_node("Dense", (200, 0), {"units": 4}, "a")
    doc.add_node("Dense", (200, 200), {"units": 4}, "b")
    doc.add_node("Dense", (200, 400), {"units": 4}, "c")
    doc.add_node("Concatenate", (400, 200), {}, "cat")
    doc.add_node("Output", (600, 200), {}, "out")
    for src in ("a", "b", "c"):
        doc.connect("x", src)
        doc.connect(src, "cat")
    doc.connect("cat", "out")
    return doc


def test_inserting_and_reconnecting_keep_a_merges_ports():
    doc = merge_graph()
    before = json.dumps(doc.project.to_dict())
    node_id = doc.add_on_edge("Dropout", (300, 200), ("b", "cat", 1))
    assert node_id == "dropout"
    ports = {(e.src, e.port) for e in doc.project.edges if e.dst == "cat"}
    assert ports == {("a", 0), ("dropout", 1), ("c", 2)}
    doc.remove_and_reconnect("dropout")
    ports = {(e.src, e.port) for e in doc.project.edges if e.dst == "cat"}
    assert ports == {("a", 0), ("b", 1), ("c", 2)}
    doc.remove_and_reconnect("a")  # x now feeds cat's port 0 directly: (8,) + (4,) + (4,)
    ports = {(e.src, e.port) for e in doc.project.edges if e.dst == "cat"}
    assert ports == {("x", 0), ("b", 1), ("c", 2)}
    assert not doc.analysis.problems
    for _ in range(3):
        doc.undo()
    assert json.dumps(doc.project.to_dict()) == before


def test_many_edits_undo_and_redo_exactly():
    import random

    rng = random.Random(16)
    doc = merge_graph()
    first = json.dumps(doc.project.to_dict())
    states = [first]
    for step in range(40):
        nodes = [n.id for n in doc.project.nodes]
        edges = [(e.src, e.dst, e.port) for e in doc.project.edges]
        kind = rng.choice(["insert", "reconnect", "rename"])
        try:
            if kind == "insert" and edges:
                block = rng.choice(["Dropout", "Dense", "BatchNormalization", "LayerNormalization"])
                params = {"units": 4} if block == "Dense" else None
                doc.add_on_edge(block, (step, step), rng.choice(edges), params)
            elif kind == "reconnect":
                doc.remove_and_reconnect(rng.choice(nodes))
            else:
                chosen = rng.sample(nodes, min(3, len(nodes)))
                doc.rename_many({i: f"s{step}_{i}"[:60] for i in chosen})
        except NodenetError:
            assert json.dumps(doc.project.to_dict()) == states[-1], "a refusal changes nothing"
            continue
        states.append(json.dumps(doc.project.to_dict()))
    assert len(states) > 15
    for state in reversed(states[:-1]):
        doc.undo()
        assert json.dumps(doc.project.to_dict()) == state
    for state in states[1:]:
        doc.redo()
        assert json.dumps(doc.project.to_dict()) == state


# -- the window's Edit menu ---------------------------------------------------------------------


def test_the_edit_menu_offers_the_new_commands_with_their_keys(qtbot):
    from nodenet.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window, before_close_func=lambda w: w.document.undo_stack.setClean())
    window.show()
    qtbot.waitExposed(window)
    doc = window.document
    doc.replace_project(Document().project)
    doc.add_node("Input", (0, 0), {"shape": [8]}, "x")
    doc.add_node("Dense", (280, 0), {"units": 4}, "hidden")
    doc.add_node("Output", (560, 0), {}, "out")
    doc.connect("x", "hidden")
    doc.connect("hidden", "out")
    keys = {
        name: window.actions[name].shortcut().toString()
        for name in ("delete_reconnect", "paste_prefix", "batch_rename")
    }
    assert keys == {
        "delete_reconnect": "Ctrl+Del",
        "paste_prefix": "Ctrl+Alt+V",
        "batch_rename": "Ctrl+F2",
    }
    window.selection.set(["hidden"])
    window.actions["delete_reconnect"].trigger()
    assert [(e.src, e.dst) for e in doc.project.edges] == [("x", "out")]
    window.actions["undo"].trigger()
    assert [(e.src, e.dst) for e in doc.project.edges] == [("x", "hidden"), ("hidden", "out")]

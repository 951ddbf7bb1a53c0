"""The canvas driven by real gestures: QTest mouse presses, moves and releases on the
viewport at the ports' mapped positions, key presses, and synthesized drops of
palette MIME data. Every expectation is read back from the Document.
"""

from __future__ import annotations

import itertools
import json

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit

from nodenet.engine import block_class, block_types
from nodenet.graph.layout import layered_layout
from nodenet.graph.project import Project
from nodenet.ui.canvas import CanvasView, style
from nodenet.ui.canvas.port_item import PortState
from nodenet.ui.document import BLOCK_MIME, Document, Selection

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier


def drag_enter_event(point: QPoint, mime: QMimeData) -> QDragEnterEvent:
    """A palette drag entering the canvas (PySide6 6.12 takes a QPointF, older a QPoint)."""
    copy = Qt.DropAction.CopyAction
    try:
        return QDragEnterEvent(QPointF(point), copy, mime, LEFT, NO_MOD)
    except TypeError:
        return QDragEnterEvent(point, copy, mime, LEFT, NO_MOD)


class Editor:
    """A document, its selection and a shown canvas, with gesture helpers."""

    def __init__(self, qtbot):
        self.qtbot = qtbot
        self.doc = Document(Project(name="canvas-test"))
        self.selection = Selection(self.doc)
        self.view = CanvasView(self.doc, self.selection)
        self.messages: list[str] = []
        self.view.message.connect(self.messages.append)
        qtbot.addWidget(self.view)
        self.view.resize(1200, 800)
        self.view.show()
        qtbot.waitExposed(self.view)
        self.home()

    def home(self) -> None:
        """Zoom 1, scene (0, 0) near the top-left corner of the viewport."""
        self.view.resetTransform()
        self.view.centerOn(560, 360)

    @property
    def viewport(self):
        return self.view.viewport()

    def add(self, block_type, x, y, node_id, **params) -> str:
        return self.doc.add_node(block_type, (x, y), params, node_id)

    def item(self, node_id):
        return self.view.canvas_scene.nodes[node_id]

    def at(self, scene_point: QPointF) -> QPoint:
        return self.view.mapFromScene(scene_point)

    def out_port(self, node_id) -> QPoint:
        return self.at(self.item(node_id).output.scenePos())

    def in_port(self, node_id, port=0) -> QPoint:
        return self.at(self.item(node_id).inputs[port].scenePos())

    def header(self, node_id) -> QPoint:
        return self.at(self.item(node_id).mapToScene(QPointF(60, style.HEADER_HEIGHT / 2)))

    def name(self, node_id) -> QPoint:
        return self.at(self.item(node_id).mapToScene(self.item(node_id).name_rect().center()))

    def drag(self, start: QPoint, end: QPoint, during=None, modifiers=NO_MOD, button=LEFT):
        QTest.mousePress(self.viewport, button, modifiers, start)
        QTest.mouseMove(self.viewport, (start + end) / 2)
        QTest.mouseMove(self.viewport, end)
        if during is not None:
            during()
        QTest.mouseRelease(self.viewport, button, modifiers, end)

    def key(self, key, modifiers=NO_MOD) -> None:
        QTest.keyClick(self.view, key, modifiers)

    def drop(self, block_type: str, point: QPoint) -> bool:
        mime = QMimeData()
        mime.setData(BLOCK_MIME, block_type.encode("utf-8"))
        copy = Qt.DropAction.CopyAction
        enter = drag_enter_event(point, mime)
        QApplication.sendEvent(self.viewport, enter)
        if not enter.isAccepted():
            return False
        drop = QDropEvent(QPointF(point), copy, mime, LEFT, NO_MOD)
        QApplication.sendEvent(self.viewport, drop)
        return drop.isAccepted()

    def edges(self) -> set[tuple[str, str, int]]:
        return {(e.src, e.dst, e.port) for e in self.doc.project.edges}


@pytest.fixture
def ed(qtbot) -> Editor:
    return Editor(qtbot)


def two_input_graph(ed: Editor) -> None:
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Input", 0, 200, "b", shape=[4])
    ed.add("Dense", 260, 0, "enc", units=16)
    ed.add("Concatenate", 520, 100, "concat")
    ed.add("Dense", 780, 0, "head_1", units=3, activation="softmax")
    ed.add("Dense", 780, 220, "head_2", units=1)
    ed.add("Output", 1000, 0, "out_1")
    ed.add("Output", 1000, 220, "out_2", loss="mean_squared_error", metrics=["mae"])


# -- dropping blocks -------------------------------------------------------------------


def test_dropping_every_block_type_adds_it_where_it_lands(ed):
    types = block_types()
    for i, block_type in enumerate(types):
        point = QPoint(120 + (i % 6) * 170, 80 + (i // 6) * 100)
        assert ed.drop(block_type, point), block_type
        node = ed.doc.project.nodes[-1]
        assert node.type == block_type
        card = ed.item(node.id)
        assert card.face.block_type == block_type
        # the card is centred on the drop point (within the one-unit rounding)
        centre = ed.at(card.mapToScene(QPointF(style.NODE_WIDTH / 2, style.node_height(1) / 2)))
        assert abs(centre.x() - point.x()) <= 1 and abs(centre.y() - point.y()) <= 1
        assert ed.selection.ids() == [node.id]
    assert [n.type for n in ed.doc.project.nodes] == types
    assert ed.doc.undo_stack.count() == len(types)


def test_a_drop_of_something_else_is_ignored(ed):
    mime = QMimeData()
    mime.setText("Dense")
    enter = drag_enter_event(QPoint(100, 100), mime)
    QApplication.sendEvent(ed.viewport, enter)
    assert not enter.isAccepted()
    assert ed.doc.project.nodes == []


# -- connecting --------------------------------------------------------------------------


def test_connect_a_two_input_two_output_graph_through_a_concatenate(ed):
    two_input_graph(ed)
    concat = ed.item("concat")
    assert len(concat.inputs) == 1  # an empty merge offers one port

    def compatible_ports_light_up():
        assert ed.item("head_1").inputs[0].state is PortState.COMPATIBLE
        assert ed.item("out_2").inputs[0].state is PortState.COMPATIBLE
        assert ed.item("enc").inputs[0].state is PortState.NORMAL  # its own input
        assert ed.item("concat").inputs[0].state is PortState.TARGET  # under the mouse
        assert ed.view.interaction.draft.path().elementCount() > 0  # the live bezier

    ed.drag(ed.out_port("a"), ed.in_port("enc"))
    ed.drag(ed.out_port("enc"), ed.in_port("concat", 0), during=compatible_ports_light_up)
    assert len(concat.inputs) == 2  # filled one, plus a new empty one
    ed.drag(ed.out_port("b"), ed.in_port("concat", 1))
    assert len(concat.inputs) == 3 and [p.connected for p in concat.inputs] == [True, True, False]
    ed.drag(ed.out_port("concat"), ed.in_port("head_1"))
    ed.drag(ed.out_port("concat"), ed.in_port("head_2"))
    ed.drag(ed.out_port("head_1"), ed.in_port("out_1"))
    ed.drag(ed.out_port("head_2"), ed.in_port("out_2"))

    assert ed.edges() == {
        ("a", "enc", 0), ("enc", "concat", 0), ("b", "concat", 1), ("concat", "head_1", 0),
        ("concat", "head_2", 0), ("head_1", "out_1", 0), ("head_2", "out_2", 0),
    }  # fmt: skip
    assert ed.doc.analysis.problems == []
    assert ed.doc.undo_stack.count() == 8 + 7
    # 16 features from enc and 4 from b: (None, 20); head_1 has 20*3+3 weights
    assert ed.item("concat").face.shape_text == "(None, 20)"
    assert ed.item("head_1").face.count == 63
    labels = {key: edge.label for key, edge in ed.view.canvas_scene.edges.items()}
    assert labels[("enc", "concat", 0)] == "16" and labels[("b", "concat", 1)] == "4"
    assert labels[("concat", "head_2", 0)] == "20"
    assert set(ed.view.canvas_scene.edges) == ed.edges()


def test_dropping_a_link_on_a_merge_card_takes_its_next_port(ed):
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Input", 0, 200, "b", shape=[8])
    ed.add("Add", 300, 100, "add")
    card_body = ed.at(ed.item("add").mapToScene(QPointF(100, 60)))
    ed.drag(ed.out_port("a"), card_body)
    ed.drag(ed.out_port("b"), card_body)
    assert ed.edges() == {("a", "add", 0), ("b", "add", 1)}
    ed.add("Dense", 600, 100, "d", units=2)
    ed.drag(ed.out_port("add"), ed.header("d"))  # a one-input card takes it on port 0
    assert ("add", "d", 0) in ed.edges()


def test_a_link_can_be_dragged_backwards_from_an_input_port(ed):
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Dense", 300, 0, "d", units=2)
    ed.drag(ed.in_port("d"), ed.out_port("a"))
    assert ed.edges() == {("a", "d", 0)}


def test_an_incompatible_connection_is_refused_with_the_reason(ed):
    ed.add("Input", 0, 0, "vec", shape=[8])
    ed.add("Conv2D", 300, 0, "conv", filters=4, kernel_size=3)

    def hovered_port_turns_red():
        assert ed.item("conv").inputs[0].state is PortState.REFUSED

    with ed.qtbot.waitSignal(ed.view.message) as blocker:
        ed.drag(ed.out_port("vec"), ed.in_port("conv"), during=hovered_port_turns_red)
    assert "cannot connect vec → conv" in blocker.args[0].lower()
    assert "expects a 4-D input" in blocker.args[0]
    assert ed.edges() == set()
    assert ed.item("conv").inputs[0].state is PortState.NORMAL


def test_a_connection_that_makes_a_cycle_is_refused(ed):
    ed.add("Input", 0, 0, "x", shape=[8])
    ed.add("Add", 260, 0, "add")
    ed.add("Dense", 520, 0, "d1", units=8)
    ed.add("Dense", 780, 0, "d2", units=8)
    ed.drag(ed.out_port("x"), ed.in_port("add", 0))
    ed.drag(ed.out_port("add"), ed.in_port("d1"))
    ed.drag(ed.out_port("d1"), ed.in_port("d2"))
    before = ed.edges()
    with ed.qtbot.waitSignal(ed.view.message) as blocker:
        ed.drag(ed.out_port("d2"), ed.in_port("add", 1))
    assert "cycle" in blocker.args[0]
    assert ed.edges() == before


def test_a_taken_single_input_port_is_refused(ed):
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Input", 0, 200, "b", shape=[8])
    ed.add("Dense", 300, 100, "d", units=2)
    ed.drag(ed.out_port("a"), ed.in_port("d"))
    ed.drag(ed.out_port("b"), ed.in_port("d"))
    assert ed.edges() == {("a", "d", 0)}
    assert "already has an input" in ed.messages[-1]


# -- selecting, moving, deleting ------------------------------------------------------------


def test_rubber_band_and_ctrl_a_select(ed):
    ed.add("Dense", 0, 0, "a", units=2)
    ed.add("Dense", 300, 0, "b", units=2)
    ed.add("Dense", 0, 300, "c", units=2)
    ed.drag(ed.at(QPointF(-30, -30)), ed.at(QPointF(560, 120)))
    assert ed.selection.ids() == ["a", "b"]
    assert ed.view.canvas_scene.items(QPointF(250, 40)) == []  # the band is gone
    ed.key(Qt.Key.Key_A, CTRL)
    assert ed.selection.ids() == ["a", "b", "c"]
    QTest.mouseClick(ed.viewport, LEFT, NO_MOD, ed.header("c"))
    assert ed.selection.ids() == ["c"]
    ed.key(Qt.Key.Key_Escape)
    assert ed.selection.ids() == []


def test_moving_cards_is_one_undoable_command(ed):
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Dense", 300, 0, "b", units=2)
    ed.doc.connect("a", "b")
    ed.key(Qt.Key.Key_A, CTRL)
    count = ed.doc.undo_stack.count()
    start = ed.header("b")
    ed.drag(start, start + QPoint(120, 80))
    assert ed.doc.undo_stack.count() == count + 1
    assert ed.doc.project.node("a").pos == [120.0, 80.0]
    assert ed.doc.project.node("b").pos == [420.0, 80.0]
    edge = ed.view.canvas_scene.edges[("a", "b", 0)]
    assert edge.boundingRect().contains(ed.item("b").inputs[0].scenePos())
    ed.doc.undo_stack.undo()
    assert ed.doc.project.node("b").pos == [300.0, 0.0]
    assert ed.item("b").pos() == QPointF(300, 0)
    assert edge.boundingRect().contains(ed.item("b").inputs[0].scenePos())


def test_delete_key_removes_the_selection_with_its_edges(ed):
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Dense", 300, 0, "b", units=2)
    ed.add("Output", 600, 0, "c")
    ed.doc.connect("a", "b")
    ed.doc.connect("b", "c")
    QTest.mouseClick(ed.viewport, LEFT, NO_MOD, ed.header("b"))
    ed.key(Qt.Key.Key_Delete)
    assert [n.id for n in ed.doc.project.nodes] == ["a", "c"]
    assert ed.edges() == set() and ed.view.canvas_scene.edges == {}
    assert set(ed.view.canvas_scene.nodes) == {"a", "c"}
    ed.doc.undo_stack.undo()
    assert ed.edges() == {("a", "b", 0), ("b", "c", 0)}
    assert set(ed.view.canvas_scene.edges) == ed.edges()


def test_selected_edges_into_a_merge_are_deleted_in_one_step(ed):
    for i in range(3):
        ed.add("Input", 0, i * 150, f"i{i}", shape=[4])
    ed.add("Add", 300, 150, "add")
    for i in range(3):
        ed.doc.connect(f"i{i}", "add")
    count = ed.doc.undo_stack.count()
    for key in [("i0", "add", 0), ("i2", "add", 2)]:
        ed.view.canvas_scene.edges[key].setSelected(True)
    ed.key(Qt.Key.Key_Delete)
    assert ed.edges() == {("i1", "add", 0)}  # ports renumbered
    assert ed.doc.undo_stack.count() == count + 1
    assert len(ed.item("add").inputs) == 2


# -- clipboard, rename -------------------------------------------------------------------------


def test_copy_paste_cut_and_duplicate_keys(ed):
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Dense", 300, 0, "b", units=2)
    ed.doc.connect("a", "b")
    ed.key(Qt.Key.Key_A, CTRL)
    ed.key(Qt.Key.Key_C, CTRL)
    fragment = json.loads(QApplication.clipboard().text())
    assert [n["id"] for n in fragment["nodes"]] == ["a", "b"]
    QTest.mouseMove(ed.viewport, ed.at(QPointF(600, 400)))  # paste lands at the mouse
    ed.key(Qt.Key.Key_V, CTRL)
    assert ed.selection.ids() == ["a_1", "b_1"]
    assert ed.doc.project.node("a_1").pos == [600.0, 400.0]
    assert ed.doc.project.node("b_1").pos == [900.0, 400.0]
    assert ("a_1", "b_1", 0) in ed.edges()
    ed.key(Qt.Key.Key_V, CTRL)  # a second paste at the same spot lands a step further
    assert ed.doc.project.node("b_2").pos == [940.0, 440.0]
    ed.key(Qt.Key.Key_D, CTRL)  # duplicate the selection (a_2, b_2)
    assert ed.selection.ids() == ["a_3", "b_3"]
    assert ed.doc.project.node("b_3").pos == [980.0, 480.0]
    ed.key(Qt.Key.Key_X, CTRL)
    assert not ed.doc.project.has_node("a_3")
    ed.key(Qt.Key.Key_V, CTRL)
    assert ed.selection.ids() == ["a_3", "b_3"]
    assert ed.doc.project.node("a_3").pos == [600.0, 400.0]
    assert ("a_3", "b_3", 0) in ed.edges()


def test_canvas_keys_win_over_window_shortcuts_while_it_has_focus(ed):
    from PySide6.QtGui import QAction, QKeySequence

    ed.add("Dense", 0, 0, "a", units=2)
    stolen = []
    action = QAction("Delete everything", ed.view)
    action.setShortcut(QKeySequence("Del"))
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.triggered.connect(lambda: stolen.append(True))
    ed.view.addAction(action)
    ed.view.activateWindow()
    ed.view.setFocus()
    ed.key(Qt.Key.Key_A, CTRL)
    ed.key(Qt.Key.Key_Delete)
    assert stolen == [] and ed.doc.project.nodes == []


def test_paste_from_the_background_menu_lands_at_the_click(ed):
    ed.add("Input", 100, 100, "a", shape=[8])
    ed.add("Dense", 400, 140, "b", units=2)
    ed.key(Qt.Key.Key_A, CTRL)
    ed.key(Qt.Key.Key_C, CTRL)
    menu = ed.view.context_menu_at(ed.at(QPointF(300, 600)))
    next(a for a in menu.actions() if a.text() == "Paste").trigger()
    assert ed.doc.project.node("a_1").pos == [300.0, 600.0]
    assert ed.doc.project.node("b_1").pos == [600.0, 640.0]


def test_paste_of_foreign_text_is_refused(ed):
    QApplication.clipboard().setText("not json at all")
    ed.key(Qt.Key.Key_V, CTRL)
    assert ed.doc.project.nodes == []
    assert "no nodenet blocks" in ed.messages[-1]


def test_rename_with_f2_and_double_click(ed):
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Dense", 300, 0, "dense", units=2)
    ed.doc.connect("a", "dense")
    QTest.mouseClick(ed.viewport, LEFT, NO_MOD, ed.header("dense"))
    ed.key(Qt.Key.Key_F2)
    editor = ed.viewport.findChild(QLineEdit)
    assert editor is not None and editor.text() == "dense"
    QTest.keyClicks(editor, "encoder")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    assert [n.id for n in ed.doc.project.nodes] == ["a", "encoder"]
    assert ed.edges() == {("a", "encoder", 0)}
    assert set(ed.view.canvas_scene.nodes) == {"a", "encoder"}
    assert set(ed.view.canvas_scene.edges) == {("a", "encoder", 0)}
    assert ed.selection.ids() == ["encoder"] and ed.item("encoder").isSelected()

    QTest.mouseDClick(ed.viewport, LEFT, NO_MOD, ed.header("encoder"))  # not on the id
    assert not [e for e in ed.viewport.findChildren(QLineEdit) if e.isVisible()]
    QTest.mouseDClick(ed.viewport, LEFT, NO_MOD, ed.name("encoder"))
    editor = next(e for e in ed.viewport.findChildren(QLineEdit) if e.isVisible())
    QTest.keyClicks(editor, "a")  # taken
    QTest.keyClick(editor, Qt.Key.Key_Return)
    assert "already used" in ed.messages[-1]
    assert ed.doc.project.has_node("encoder")

    QTest.mouseDClick(ed.viewport, LEFT, NO_MOD, ed.name("encoder"))
    editor = next(e for e in ed.viewport.findChildren(QLineEdit) if e.isVisible())
    QTest.keyClicks(editor, "other")
    QTest.keyClick(editor, Qt.Key.Key_Escape)
    assert ed.doc.project.has_node("encoder")


# -- zoom, pan, fit, layout ------------------------------------------------------------------------


def test_zoom_keys_wheel_pinch_and_fit(ed):
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Output", 2400, 1200, "b")
    ed.key(Qt.Key.Key_Plus, CTRL)
    assert ed.view.zoom() == pytest.approx(1.2)
    ed.key(Qt.Key.Key_Minus, CTRL)
    ed.key(Qt.Key.Key_Minus, CTRL)
    assert ed.view.zoom() == pytest.approx(1 / 1.2)
    ed.key(Qt.Key.Key_0, CTRL)
    assert ed.view.zoom() == pytest.approx(1.0)

    centre = QPointF(600, 400)
    wheel = QWheelEvent(
        centre, ed.viewport.mapToGlobal(centre), QPoint(), QPoint(0, 120),
        Qt.MouseButton.NoButton, NO_MOD, Qt.ScrollPhase.NoScrollPhase, False,
    )  # fmt: skip
    QApplication.sendEvent(ed.viewport, wheel)
    assert ed.view.zoom() == pytest.approx(1.0015**120)

    ed.key(Qt.Key.Key_F)  # all of it would leave card text unreadable: Fit stops at legible
    assert ed.view.zoom() == pytest.approx(ed.view.legible_zoom())
    assert ed.view.detail_text_px() >= style.LEGIBLE_PX - 1e-6
    assert ed.view.visible_scene_rect().contains(ed.item("a").sceneBoundingRect())  # the start
    ed.doc.move_nodes({"b": (900.0, 300.0)})
    ed.key(Qt.Key.Key_F)
    visible = ed.view.visible_scene_rect()
    for node_id in ("a", "b"):
        assert visible.contains(ed.item(node_id).sceneBoundingRect())
    assert ed.view.legible_zoom() <= ed.view.zoom() <= 1.25
    for _ in range(40):
        ed.key(Qt.Key.Key_Minus, CTRL)
    assert ed.view.zoom() == pytest.approx(style.MIN_ZOOM)


def test_pinch_gesture_zooms(ed):
    from PySide6.QtGui import QNativeGestureEvent, QPointingDevice

    centre = QPointF(600, 400)
    event = QNativeGestureEvent(
        Qt.NativeGestureType.ZoomNativeGesture, QPointingDevice.primaryPointingDevice(), 2,
        centre, centre, ed.viewport.mapToGlobal(centre), 0.5, QPointF(), 1,
    )  # fmt: skip
    QApplication.sendEvent(ed.viewport, event)
    assert ed.view.zoom() == pytest.approx(1.5)


def test_middle_drag_and_space_drag_pan(ed):
    ed.add("Dense", 0, 0, "a", units=2)
    before = ed.view.mapToScene(QPoint(600, 400))
    ed.drag(QPoint(600, 400), QPoint(500, 300), button=Qt.MouseButton.MiddleButton)
    after = ed.view.mapToScene(QPoint(600, 400))
    assert (after - before) == QPointF(100, 100)
    QTest.keyPress(ed.view, Qt.Key.Key_Space)
    ed.drag(QPoint(600, 400), QPoint(700, 500))  # over the background: no rubber band
    QTest.keyRelease(ed.view, Qt.Key.Key_Space)
    assert ed.view.mapToScene(QPoint(600, 400)) == before
    assert ed.doc.project.node("a").pos == [0.0, 0.0] and ed.selection.ids() == []


def test_layout_key_lays_out_the_graph_in_one_command(ed):
    two_input_graph(ed)
    for src, dst in [("a", "enc"), ("enc", "concat"), ("b", "concat"), ("concat", "head_1"),
                     ("concat", "head_2"), ("head_1", "out_1"), ("head_2", "out_2")]:  # fmt: skip
        ed.doc.connect(src, dst)
    ed.doc.move_nodes({"out_1": (-900.0, 40.0), "a": (700.0, 700.0)})
    count = ed.doc.undo_stack.count()
    ed.key(Qt.Key.Key_L)
    assert ed.doc.undo_stack.count() == count + 1
    expected = layered_layout(ed.doc.project)
    assert {n.id: tuple(n.pos) for n in ed.doc.project.nodes} == expected
    for node_id, (x, y) in expected.items():
        assert ed.item(node_id).pos() == QPointF(x, y)
    visible = ed.view.visible_scene_rect()
    assert visible.contains(ed.view.canvas_scene.graph_rect())


def test_edge_labels_cover_no_card_and_no_other_label(ed):
    two_input_graph(ed)
    for src, dst in [("a", "enc"), ("enc", "concat"), ("b", "concat"), ("concat", "head_1"),
                     ("concat", "head_2"), ("head_1", "out_1"), ("head_2", "out_2")]:  # fmt: skip
        ed.doc.connect(src, dst)
    ed.key(Qt.Key.Key_L)
    scene = ed.view.canvas_scene
    labels = [edge.label_rect() for edge in scene.edges.values()]
    assert all(rect is not None for rect in labels)  # the laid-out graph leaves room
    cards = [item.sceneBoundingRect() for item in scene.nodes.values()]
    for i, rect in enumerate(labels):
        assert not any(rect.intersects(card) for card in cards)
        assert not any(rect.intersects(other) for other in labels[i + 1 :])
    # a card dragged onto a label pushes it elsewhere (or hides it), never under the card
    label = scene.edges[("concat", "head_2", 0)].label_rect()
    start = ed.header("out_1")
    target = ed.at(label.center() - QPointF(40, style.HEADER_HEIGHT / 2 + 20))
    ed.drag(start, target)
    card = ed.item("out_1").sceneBoundingRect()
    assert card.intersects(label)
    moved = scene.edges[("concat", "head_2", 0)].label_rect()
    assert moved is None or not moved.intersects(card)


# -- problems, read-only, menus, incremental updates ----------------------------------------


def test_a_node_with_problems_has_a_red_outline_and_the_messages_as_tooltip(ed):
    ed.add("Dense", 0, 0, "lonely", units=2)
    card = ed.item("lonely")
    assert "input port 0 is not connected" in card.toolTip()
    image = ed.view.grab().toImage()
    bottom = ed.at(card.mapToScene(QPointF(style.NODE_WIDTH / 2, card.height - 1)))
    colour = image.pixelColor(bottom)
    assert colour.red() > 180 and colour.green() < 120 and colour.blue() < 120
    ed.add("Input", -300, 0, "x", shape=[4])
    ed.add("Output", 300, 0, "y")
    ed.doc.connect("x", "lonely")
    ed.doc.connect("lonely", "y")
    assert card.face.problems == () and "⚠" not in card.toolTip()


def test_read_only_shows_a_banner_and_refuses_edits(ed):
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Dense", 300, 0, "b", units=2)
    ed.doc.set_read_only(True)
    assert ed.view.banner.isVisible()
    assert ed.view.banner.text() == "Training — the graph is read-only"
    ed.drag(ed.out_port("a"), ed.in_port("b"))
    assert ed.edges() == set() and ed.view.interaction is None
    ed.key(Qt.Key.Key_A, CTRL)
    ed.key(Qt.Key.Key_Delete)
    assert len(ed.doc.project.nodes) == 2
    assert ed.messages[-1] == "Training — the graph is read-only"
    start = ed.header("b")
    ed.drag(start, start + QPoint(100, 0))
    assert ed.doc.project.node("b").pos == [300.0, 0.0]
    assert not ed.drop("Dense", QPoint(400, 400))
    ed.doc.set_read_only(False)
    assert not ed.view.banner.isVisible()


def test_context_menus(ed):
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Dense", 300, 0, "b", units=2)
    ed.doc.connect("a", "b")

    def actions(menu):
        return {a.text(): a for a in menu.actions() if a.text()}

    node = actions(ed.view.context_menu_at(ed.header("b")))
    assert {"Rename…", "Duplicate", "Delete", "Disconnect all"} <= set(node)
    assert ed.selection.ids() == ["b"]
    node["Disconnect all"].trigger()
    assert ed.edges() == set()
    node["Duplicate"].trigger()
    assert ed.doc.project.has_node("b_1")

    ed.doc.connect("a", "b")
    edge_rect = ed.view.canvas_scene.edges[("a", "b", 0)].label_rect()
    edge = actions(ed.view.context_menu_at(ed.at(edge_rect.center())))
    edge["Delete edge"].trigger()
    assert ed.edges() == set()

    background = ed.view.context_menu_at(ed.at(QPointF(200, 500)))
    add_menu = actions(background)["Add block"].menu()
    categories = [a.text() for a in add_menu.actions()]
    assert categories == [c for c in dict.fromkeys(block_class(t).CATEGORY for t in block_types())]
    core = {a.text(): a for a in actions(add_menu)["Core"].menu().actions()}
    core["Dense"].trigger()
    added = ed.doc.project.nodes[-1]
    assert added.type == "Dense" and ed.selection.ids() == [added.id]
    assert {"Paste", "Auto layout", "Fit to view"} <= set(actions(background))


def test_updates_touch_only_the_cards_that_change(ed):
    ids = [f"d{i}" for i in range(30)]
    ed.add("Input", -300, 0, "x", shape=[4])
    for i, node_id in enumerate(ids):
        ed.add("Dense", i * 300, 0, node_id, units=8)
    ed.doc.connect("x", "d0")
    for a, b in itertools.pairwise(ids):
        ed.doc.connect(a, b)
    faces = {node_id: ed.item(node_id).face for node_id in ["x", *ids]}
    ed.doc.set_params("d20", {"units": 5})
    changed = [i for i, face in faces.items() if ed.item(i).face is not face]
    # d20 shows new units and count; only d21's parameter count depends on it
    assert changed == ["d20", "d21"]
    assert ed.view.canvas_scene.edges[("d20", "d21", 0)].label == "5"


def test_a_replaced_project_is_mirrored_from_scratch(ed):
    ed.add("Dense", 0, 0, "old", units=2)
    project = Project.from_json(
        json.dumps(
            {
                "format": "nodenet-project",
                "version": 1,
                "nodes": [
                    {"id": "in", "type": "Input", "params": {"shape": [3]}, "pos": [0, 0]},
                    {"id": "out", "type": "Output", "params": {}, "pos": [300, 0]},
                ],
                "edges": [{"from": "in", "to": "out", "port": 0}],
            }
        )
    )
    ed.doc.replace_project(project)
    assert set(ed.view.canvas_scene.nodes) == {"in", "out"}
    assert set(ed.view.canvas_scene.edges) == {("in", "out", 0)}


def test_minimap_appears_for_big_graphs_and_navigates(ed, qtbot):
    ed.add("Input", 0, 0, "a", shape=[8])
    ed.add("Output", 6000, 3000, "b")
    ed.view.minimap.refresh()
    assert ed.view.minimap.isVisible()
    target = ed.view.minimap.to_scene(QPointF(ed.view.minimap.width() - 20, 40))
    QTest.mouseClick(ed.view.minimap, LEFT, NO_MOD, QPoint(ed.view.minimap.width() - 20, 40))
    centre = ed.view.visible_scene_rect().center()
    assert abs(centre.x() - target.x()) < 2 and abs(centre.y() - target.y()) < 2
    ed.key(Qt.Key.Key_F)  # the start of the graph at a legible zoom: the minimap stays
    ed.view.minimap.refresh()
    assert ed.view.minimap.isVisible()
    for _ in range(12):  # zoomed out until all of it shows
        ed.key(Qt.Key.Key_Minus, CTRL)
    ed.view.minimap.refresh()
    assert not ed.view.minimap.isVisible()


def test_a_wrapper_card_names_its_inner_block_and_its_key_parameters():
    from nodenet.ui.canvas.node_item import _params_text

    bidirectional = block_class("Bidirectional")
    wrapped = {"layer": {"type": "GRU", "params": {"units": 8}}, "merge_mode": "sum"}
    assert _params_text(bidirectional, bidirectional(wrapped).config) == "GRU · units 8 · sum"
    broken = {"layer": {"type": "GRU", "params": {"units": -1}}, "merge_mode": "sum"}
    assert _params_text(bidirectional, broken) == "GRU · sum"  # the inspector flags it

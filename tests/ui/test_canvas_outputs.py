"""A block with several outputs on the canvas: one port per output, wired by real drags.

An LSTM with ``return_state`` has three outputs (its sequence or last output, h and c):
its card shows three output ports, a drag from output 1 makes an edge that reads output
1 (``Edge.src_port``), the edge's label and the inspector show that output's shape.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint

from nodenet.graph.project import Edge
from nodenet.ui.canvas import style
from tests.ui.test_canvas import Editor


@pytest.fixture
def ed(qtbot) -> Editor:
    return Editor(qtbot)


def port_point(ed: Editor, node_id: str, k: int) -> QPoint:
    return ed.at(ed.item(node_id).outputs[k].scenePos())


def seq2states(ed: Editor) -> None:
    ed.add("Input", 0, 0, "x", shape=[5, 3])
    ed.add("LSTM", 260, 0, "lstm", units=4, return_sequences=True, return_state=True)
    ed.add("Dense", 560, 0, "head", units=2)
    ed.add("Output", 820, 0, "out")
    ed.drag(ed.out_port("x"), ed.in_port("lstm"))


def test_a_block_with_three_outputs_shows_three_output_ports(ed):
    seq2states(ed)
    card = ed.item("lstm")
    assert len(card.outputs) == 3
    ys = [port.pos().y() for port in card.outputs]
    assert ys == sorted(ys) and len(set(ys)) == 3  # one under the other
    assert all(port.pos().x() == style.NODE_WIDTH for port in card.outputs)
    assert card.face.output_shapes == ("(None, 5, 4)", "(None, 4)", "(None, 4)")
    assert "output 1: (None, 4)" in card.toolTip()
    assert len(ed.item("head").outputs) == 1  # one output, one port


def test_dragging_from_output_one_reads_output_one(ed):
    seq2states(ed)
    ed.drag(port_point(ed, "lstm", 1), ed.in_port("head"))
    ed.drag(ed.out_port("head"), ed.in_port("out"))
    assert Edge("lstm", "head", 0, 1) in ed.doc.project.edges
    assert ed.doc.analysis.problems == []
    assert ed.doc.analysis.shapes["head"] == (2,)  # h (None, 4), not the sequence
    card = ed.item("lstm")
    assert [p.connected for p in card.outputs] == [False, True, False]
    edge = ed.view.canvas_scene.edges[("lstm", "head", 0)]
    assert edge.src_port == 1 and edge.label == "4"
    assert "lstm[1] → head" in edge.toolTip()
    start = edge._path.elementAt(0)  # the wire leaves from output 1
    assert (start.x, start.y) == (card.outputs[1].scenePos().x(), card.outputs[1].scenePos().y())
    assert ed.messages[-2] == "Connected lstm[1] → head"


def test_dragging_from_an_input_port_back_to_output_two(ed):
    seq2states(ed)
    ed.drag(ed.in_port("head"), port_point(ed, "lstm", 2))
    assert Edge("lstm", "head", 0, 2) in ed.doc.project.edges
    ed.doc.undo_stack.undo()
    assert not any(e.dst == "head" for e in ed.doc.project.edges)
    assert [p.connected for p in ed.item("lstm").outputs] == [False, False, False]
    ed.doc.undo_stack.redo()
    assert ed.view.canvas_scene.edges[("lstm", "head", 0)].src_port == 2


def test_turning_return_state_off_leaves_one_output_port(ed):
    seq2states(ed)
    assert len(ed.item("lstm").outputs) == 3
    ed.doc.set_params("lstm", {"units": 4, "return_sequences": True})
    assert len(ed.item("lstm").outputs) == 1


def test_the_inspector_lists_every_output_shape(ed, qtbot):
    from nodenet.ui.inspector import Inspector

    seq2states(ed)
    inspector = Inspector(ed.doc, ed.selection)
    qtbot.addWidget(inspector)
    ed.selection.set(["lstm"])
    text = inspector.shape_label.text()
    assert text.splitlines() == ["0: (None, 5, 4)", "1: (None, 4)", "2: (None, 4)"]


def test_wiring_an_encoders_states_into_a_decoder_as_its_initial_states(ed):
    seq2states(ed)
    ed.add("Input", 0, 300, "y", shape=[6, 2])
    ed.add("LSTM", 560, 300, "decoder", units=4)
    ed.drag(ed.out_port("y"), ed.in_port("decoder", 0))
    assert len(ed.item("decoder").inputs) == 2  # the sequence, and a free port for h
    ed.drag(port_point(ed, "lstm", 1), ed.in_port("decoder", 1))
    waiting = [p.message for p in ed.doc.analysis.problems if p.node == "decoder"]
    assert any("initial state(s) h and c (3 inputs); got 2 inputs" in m for m in waiting)
    ed.drag(port_point(ed, "lstm", 2), ed.in_port("decoder", 2))
    assert {(e.src, e.port, e.src_port) for e in ed.doc.project.edges if e.dst == "decoder"} == {
        ("y", 0, 0),
        ("lstm", 1, 1),
        ("lstm", 2, 2),
    }
    assert ed.doc.analysis.shapes["decoder"] == (4,)
    problems = [p.message for p in ed.doc.analysis.problems if p.node == "decoder"]
    assert problems == ["does not reach any Output (its result is unused)"]


def test_removing_an_initial_state_keeps_the_other_on_its_port(ed):
    test_wiring_an_encoders_states_into_a_decoder_as_its_initial_states(ed)
    (h_edge,) = [e for e in ed.doc.project.edges if e.dst == "decoder" and e.port == 1]
    ed.doc.disconnect(h_edge.src, h_edge.dst, h_edge.port)
    ports = {(e.src, e.port, e.src_port) for e in ed.doc.project.edges if e.dst == "decoder"}
    assert ports == {("y", 0, 0), ("lstm", 2, 2)}  # c stays input 2: it is not renumbered

"""Hostile input in the GUI (issue 13): a clipboard holding huge numbers, deep nesting,
bytes that are not UTF-8 or ``"nan"`` positions; positions past what a file may hold;
files whose numbers or analysis overflow; an export that fails. Each is a status-bar
message or a "Cannot open project" box, never an exception in a slot, and whatever the
app saves (or autosaves) opens again. Also the big-graph behaviour of the Summary and
Problems views: rows update in place, hidden views wait, long cells are elided.
"""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QMimeData, QPointF
from PySide6.QtWidgets import QApplication

import nodenet.ui.document as document_module
from nodenet.errors import NodenetError, ProjectFileError
from nodenet.graph.project import Edge, Node, Project, load
from nodenet.ui import autosave
from nodenet.ui.document import FRAGMENT_MIME, POS_LIMIT, Document, new_project
from nodenet.ui.summary import CELL_CHARS
from tests.ui import SAMPLE

NO_BLOCKS = "The clipboard holds no nodenet blocks"


@pytest.fixture
def window(make_window, no_prompts):
    return make_window()


def set_clipboard(data: bytes | None = None, text: str | None = None) -> None:
    mime = QMimeData()
    if data is not None:
        mime.setData(FRAGMENT_MIME, data)
    if text is not None:
        mime.setText(text)
    QApplication.clipboard().setMimeData(mime)


def fragment(nodes: list[dict], edges: list[dict] | None = None) -> str:
    return json.dumps({"format": "nodenet-fragment", "nodes": nodes, "edges": edges or []})


def dense(node_id: str = "d", pos=(0, 0), **params) -> dict:
    return {"id": node_id, "type": "Dense", "params": params, "pos": list(pos)}


def status(window) -> str:
    return window.statusBar().currentMessage()


def assert_reopens(window, tmp_path, name: str = "saved.json") -> Project:
    """Save the document and the recovery file; both open again with the same nodes."""
    path = tmp_path / name
    assert window.save_as(path)
    project = load(path)
    assert [n.id for n in project.nodes] == [n.id for n in window.document.project.nodes]
    assert window.work_guard.autosave.write_now()
    recovered, _ = autosave.read_recovery(window.work_guard.autosave.file)
    assert recovered.to_dict()["nodes"] == window.document.project.to_dict()["nodes"]
    return project


# -- the clipboard -------------------------------------------------------------------------


def test_paste_of_a_5000_digit_number_is_a_message(window):
    before = window.document.project.to_json()
    text = fragment([dense(units=12345)]).replace("12345", "9" * 5000)
    set_clipboard(text.encode())
    window.actions["paste"].trigger()
    assert window.document.project.to_json() == before
    assert status(window) and status(window) != NO_BLOCKS  # says what is wrong
    set_clipboard(text='{"format": "nodenet-fragment", "nodes": [' + "1" * 5000 + "]}")
    window.actions["paste"].trigger()
    assert window.document.project.to_json() == before


def test_paste_of_deeply_nested_json_is_a_message(window):
    before = window.document.project.to_json()
    deep = '{"nodes": ' + "[" * 100_000 + "]" * 100_000 + "}"
    set_clipboard(deep.encode())
    window.actions["paste"].trigger()
    set_clipboard(text=deep)
    window.actions["paste"].trigger()
    assert window.document.project.to_json() == before
    assert status(window)


def test_paste_of_bytes_that_are_not_utf8_is_a_message(window):
    set_clipboard(b'{"nodes": [\xff\xfe\x80]}')
    window.actions["paste"].trigger()
    assert "UTF-8" in status(window)
    assert len(window.document.project.nodes) == 2


def test_paste_of_nan_positions_at_a_point_is_a_message(window):
    before = window.document.project.to_json()
    set_clipboard(fragment([dense(pos=("nan", "nan")), dense("e", pos=("inf", 1e400))]).encode())
    assert window.canvas.paste(at=QPointF(100, 100)) == []
    window.actions["paste"].trigger()
    assert window.document.project.to_json() == before
    assert status(window)


def test_paste_far_away_is_clamped_so_the_file_reopens(window, tmp_path):
    set_clipboard(fragment([dense(pos=(999_999_990, -999_999_990))]).encode())
    window.actions["paste"].trigger()
    window.actions["paste"].trigger()  # the paste offset grows each time
    pasted = [n for n in window.document.project.nodes if n.type == "Dense"]
    assert len(pasted) == 2
    for node in pasted:
        assert all(abs(v) <= POS_LIMIT for v in node.pos)
    project = assert_reopens(window, tmp_path)
    assert all(abs(v) < 1e9 for n in project.nodes for v in n.pos)


def test_moves_and_adds_past_the_file_bounds_are_clamped(window, tmp_path):
    doc = window.document
    doc.move_nodes({"input": (5e12, -5e12)})
    assert doc.project.node("input").pos == [POS_LIMIT, -POS_LIMIT]
    node_id = doc.add_node("Dense", (1e300, 3.0))
    assert doc.project.node(node_id).pos == [POS_LIMIT, 3.0]
    with pytest.raises(NodenetError, match="finite"):
        doc.move_nodes({"input": (float("nan"), 0)})
    with pytest.raises(NodenetError, match="finite"):
        doc.add_node("Dense", (10**400, 0))
    assert_reopens(window, tmp_path)


# -- opening files -----------------------------------------------------------------------


def test_open_of_a_5000_digit_number_says_cannot_open(window, tmp_path, no_prompts):
    before = window.document.project.to_json()
    path = tmp_path / "huge.json"
    doc = new_project().to_dict()
    doc["nodes"][0]["pos"] = [0, 0]
    text = json.dumps(doc).replace('"pos": [0, 0]', '"pos": [' + "7" * 5000 + ", 0]", 1)
    path.write_text(text)
    assert not window.open_file(path, ask=False)
    assert [title for title, _ in no_prompts] == ["Cannot open project"]
    assert window.document.project.to_json() == before


def test_a_project_whose_analysis_overflows_never_replaces_the_document(
    window, tmp_path, monkeypatch, no_prompts
):
    """Learning rate 10**400: the loader refuses it (engineer B's boundary); if any analysis
    still fails, the document keeps the open project and later edits work."""
    path = tmp_path / "overflow.json"
    project = new_project("overflow")
    project.training = {**project.training, "optimizer": {"name": "adam", "learning_rate": 1e-3}}
    path.write_text(project.to_json())
    real = document_module.analyze

    def overflowing(p):
        if p.name == "overflow":
            raise OverflowError("int too large to convert to float")
        return real(p)

    monkeypatch.setattr(document_module, "analyze", overflowing)
    window.document.add_node("Dense", (0, 200), node_id="kept")
    before = window.document.project.to_json()
    assert not window.open_file(path, ask=False)
    assert no_prompts and no_prompts[0][0] == "Cannot open project"
    assert "OverflowError" in no_prompts[0][1]
    assert window.document.project.to_json() == before
    with pytest.raises(NodenetError, match="cannot be analysed"):
        window.document.replace_project(Project.from_json(path.read_text()))
    window.document.rename("kept", "still_editable")
    window.document.undo()
    assert window.document.project.has_node("kept")


def test_an_edit_whose_analysis_fails_becomes_a_problem_and_undoes(window, monkeypatch):
    real = document_module.analyze

    def failing(p):
        if p.has_node("boom"):
            raise OverflowError("int too large to convert to float")
        return real(p)

    monkeypatch.setattr(document_module, "analyze", failing)
    doc = window.document
    doc.add_node("Dense", (0, 0), node_id="boom")  # no exception in the undo command
    assert [p.field for p in doc.analysis.problems] == ["nodes"]
    assert "cannot be analysed" in doc.analysis.problems[0].message
    doc.undo()
    assert not doc.project.has_node("boom") and doc.analysis.problems


def test_a_recovery_file_that_cannot_be_read_is_skipped(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "nodenet-recovery", "version": 1, "x": ' + "9" * 5000 + "}")
    assert autosave.find_recoveries(tmp_path) == []


# -- export ------------------------------------------------------------------------------


def test_a_failed_export_does_not_break_later_exports(window, monkeypatch):
    window.open_sample(SAMPLE, ask=False)
    first = window.export_code("keras")
    assert first is not None and first.isVisible()
    real_copy = Project.copy

    def broken_copy(self):
        raise ProjectFileError("project: pos must be two finite numbers [x, y]")

    monkeypatch.setattr(Project, "copy", broken_copy)
    assert window.export_code("pytorch") is None  # a status message, not an exception
    assert "Cannot export" in status(window)
    assert window.export_code("pytorch") is None  # again: no deleted C++ object
    monkeypatch.setattr(Project, "copy", real_copy)
    again = window.export_code("keras")
    assert again is not None and again.isVisible() and again.code is not None


def test_an_exporter_crash_is_shown_in_the_preview(window, monkeypatch):
    from nodenet.ui import export_dialog

    def crash(project, weights=None):
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setitem(export_dialog.TARGETS, "keras", ("Keras 3", crash, "keras"))
    dialog = window.export_code("keras")
    assert dialog is not None and dialog.code is None
    assert "OverflowError" in dialog.error.text()


# -- big graphs: the Summary and Problems views ----------------------------------------------


def fan_in(n: int) -> Project:
    nodes = [Node("input", "Input", {"shape": [4]}, [0.0, 0.0])]
    nodes += [Node(f"dense_{i}", "Dense", {"units": 4}, [300.0, 60.0 * i]) for i in range(n)]
    nodes += [Node("add", "Add", {}, [600.0, 0.0]), Node("output", "Output", {}, [900.0, 0.0])]
    edges = [Edge("input", f"dense_{i}", 0) for i in range(n)]
    edges += [Edge(f"dense_{i}", "add", i) for i in range(n)]
    edges.append(Edge("add", "output", 0))
    return Project(name="fan", nodes=nodes, edges=edges)


def test_a_long_connected_to_cell_is_elided_with_the_list_in_its_tooltip(window):
    window.document.replace_project(fan_in(300))
    summary = window.summary
    row = next(r for r in range(summary.model.rowCount()) if summary.cell(r, 0) == "add (Add)")
    text = summary.cell(row, 3)
    assert len(text) <= CELL_CHARS and text.endswith("…") and text.startswith("dense_0, dense_1")
    tip = summary.model.index(row, 3).data(3)  # ToolTipRole
    assert "dense_20" in tip


def test_an_edit_updates_only_the_rows_it_touched(window):
    window.document.replace_project(fan_in(200))
    model = window.summary.model
    resets, changed = [], []
    model.modelReset.connect(lambda: resets.append(1))
    model.dataChanged.connect(lambda a, b, *_: changed.append((a.row(), b.row())))
    window.document.set_params("dense_7", {"units": 5})
    assert not resets
    rows = {model.rows[r][0] for first, last in changed for r in range(first, last + 1)}
    assert "dense_7" in rows and rows <= {"dense_7", "add", "output"}
    row = next(r for r in range(model.rowCount()) if model.rows[r][0] == "dense_7")
    assert window.summary.cell(row, 1) == "(None, 5)"


def test_a_hidden_summary_catches_up_when_shown(window, qtbot):
    window.docks["problems"].raise_()  # the Summary tab is hidden behind it
    qtbot.waitUntil(lambda: not window.summary._shown)
    rows_before = window.summary.model.rowCount()
    window.document.add_node("Dense", (0, 300), node_id="late")
    assert window.summary.model.rowCount() == rows_before  # no work while hidden
    assert window.docks["problems"].windowTitle().startswith("Problems (")  # counts follow
    window.docks["summary"].raise_()
    qtbot.waitUntil(lambda: window.summary._shown)
    assert window.summary.model.rowCount() == rows_before + 1
    assert any(window.summary.cell(r, 0) == "late (Dense)" for r in range(rows_before + 1))


def test_checked_analysis_leaves_a_good_project_alone():
    project = new_project()
    assert Document.checked_analysis(project).order

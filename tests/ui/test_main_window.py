"""The main window: docks, menus, files, dirty title, prompts, recent files, undo of everything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QFileDialog, QMessageBox

from nodenet.engine import block_types
from nodenet.graph.project import load
from nodenet.ui import app as app_module
from nodenet.ui.app import run
from nodenet.ui.document import new_project
from nodenet.ui.main_window import MainWindow
from tests.ui import SAMPLE, double_click, isolated_settings

LEFT, NO_MOD = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


@pytest.fixture
def config(tmp_path) -> Path:
    folder = tmp_path / "config"
    isolated_settings(folder)
    return folder


@pytest.fixture
def make_window(make_window, config):
    """Windows sharing one settings folder, ``config``."""
    return make_window


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


def answer(monkeypatch, button: QMessageBox.StandardButton) -> list:
    asked = []

    def question(parent, title, text, *args):
        asked.append(text)
        return button

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def build_two_in_two_out(window: MainWindow) -> None:
    """Two inputs, a Concatenate merge, two output heads, through document edits."""
    doc = window.document
    doc.set_params("input", {"shape": [8]})
    doc.add_node("Input", (0, 200), {"shape": [4]}, node_id="side")
    doc.add_node("Concatenate", (240, 100), node_id="merge")
    doc.add_node("Dense", (480, 0), {"units": 3, "activation": "softmax"}, node_id="cls")
    doc.add_node("Dense", (480, 200), {"units": 1}, node_id="reg")
    doc.add_node("Output", (720, 200), {"loss": "mean_squared_error", "metrics": ["mae"]}, "value")
    for src, dst in [
        ("input", "merge"),
        ("side", "merge"),
        ("merge", "cls"),
        ("merge", "reg"),
        ("cls", "output"),
        ("reg", "value"),
    ]:
        assert doc.connect(src, dst) is None
    assert doc.analysis.ok, doc.analysis.problems


def test_window_has_its_docks_menus_and_shortcuts(window):
    areas = {name: window.dockWidgetArea(dock) for name, dock in window.docks.items()}
    assert areas == {
        "palette": Qt.DockWidgetArea.LeftDockWidgetArea,
        "inspector": Qt.DockWidgetArea.RightDockWidgetArea,
        "history": Qt.DockWidgetArea.RightDockWidgetArea,
        "summary": Qt.DockWidgetArea.BottomDockWidgetArea,
        "problems": Qt.DockWidgetArea.BottomDockWidgetArea,
        "training": Qt.DockWidgetArea.BottomDockWidgetArea,
    }
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus == ["&File", "&Edit", "&Run", "&View", "&Help"]
    assert window.training_panel.run_action.shortcut().toString() == "Ctrl+R"
    shortcuts = {n: a.shortcut().toString() for n, a in window.actions.items()}
    assert shortcuts["new"] == QKeySequence("Ctrl+N").toString()
    assert shortcuts["open"] == QKeySequence("Ctrl+O").toString()
    assert shortcuts["save"] == "Ctrl+S" and shortcuts["save_as"] == "Ctrl+Shift+S"
    assert shortcuts["undo"] == "Ctrl+Z" and shortcuts["redo"] == "Ctrl+Shift+Z"
    assert shortcuts["rename"] == "F2" and shortcuts["fit"] == "F" and shortcuts["layout"] == "L"
    toggles = [a.text() for a in window.view_menu.actions() if a.isCheckable()]
    assert toggles == ["Blocks", "Inspector", "History", "Summary", "Problems", "Run"]


def test_title_shows_the_project_name_and_a_star_while_dirty(window, tmp_path, no_prompts):
    assert window.windowTitle() == "untitled — nodenet"
    window.document.add_node("Dense", (0, 0))
    assert window.windowTitle() == "untitled* — nodenet"
    window.document.undo()
    assert window.windowTitle() == "untitled — nodenet"
    window.document.redo()
    assert window.save_as(tmp_path / "model")  # .json is added; the project takes its name
    assert window.windowTitle() == "model — nodenet"
    assert load(tmp_path / "model.json").name == "model"
    window.save_as(tmp_path / "copy.json")  # a named project keeps its name
    assert load(tmp_path / "copy.json").name == "model"


def test_one_letter_canvas_keys_do_not_fire_while_another_control_has_the_focus(window, qtbot):
    window.open_file(str(SAMPLE))
    first = window.document.project.nodes[1].id
    window.document.move_nodes({first: (900.0, 900.0)})  # out of its layer
    window.selection.set([first])
    combo = window.inspector.findChild(QComboBox)
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus)
    qtbot.keyClick(combo, Qt.Key.Key_L)  # "L" is Auto Layout, but only on the canvas
    assert list(window.document.project.node(first).pos) == [900.0, 900.0]
    window.canvas.setFocus()
    qtbot.waitUntil(window.canvas.hasFocus)
    qtbot.keyClick(window.canvas, Qt.Key.Key_L)
    assert window.document.undo_stack.undoText() == "Auto layout"
    assert list(window.document.project.node(first).pos) != [900.0, 900.0]


def test_double_clicking_the_palette_adds_every_block_then_undo_and_redo_all(window):
    empty = window.document.project.to_json()
    tree = window.palette.tree
    for block_type in block_types():
        item = window.palette.item(block_type)
        tree.scrollToItem(item)
        double_click(tree.viewport(), tree.visualItemRect(item).center())
        selected = window.selection.current()
        assert selected is not None and window.document.project.node(selected).type == block_type
    full = window.document.project.to_json()
    positions = [tuple(n.pos) for n in window.document.project.nodes]
    assert len(set(positions)) == len(positions), "blocks added at the centre step aside"
    stack = window.document.undo_stack
    assert stack.count() == len(block_types())
    while window.actions["undo"].isEnabled():
        window.actions["undo"].trigger()
    assert window.document.project.to_json() == empty
    while window.actions["redo"].isEnabled():
        window.actions["redo"].trigger()
    assert window.document.project.to_json() == full


def test_copy_paste_and_delete_from_the_edit_menu(window):
    build_two_in_two_out(window)
    window.selection.set(["merge", "cls"])
    window.actions["copy"].trigger()
    window.actions["paste"].trigger()
    pasted = window.selection.ids()
    assert sorted(pasted) == ["cls_1", "merge_1"]
    assert ("merge_1", "cls_1", 0) in [
        (e.src, e.dst, e.port) for e in window.document.project.edges
    ]
    window.actions["delete"].trigger()
    assert not window.document.project.has_node("merge_1")
    assert window.selection.ids() == []
    window.actions["undo"].trigger()
    assert window.document.project.has_node("merge_1")


def test_everything_undoes_back_to_the_new_project_and_redoes(window):
    empty = new_project().to_json()
    assert window.document.project.to_json() == empty
    build_two_in_two_out(window)
    window.document.layout()
    window.document.rename("cls", "classes")
    full = window.document.project.to_json()
    while window.document.undo_stack.canUndo():
        QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.document.project.to_json() == empty
    assert window.windowTitle() == "untitled — nodenet"
    shift_ctrl = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    while window.document.undo_stack.canRedo():
        QTest.keyClick(window, Qt.Key.Key_Z, shift_ctrl)
    assert window.document.project.to_json() == full


def test_save_and_reopen_give_the_identical_document(window, make_window, tmp_path, no_prompts):
    build_two_in_two_out(window)
    path = tmp_path / "two_heads.json"
    assert window.save_as(path)
    saved = window.document.project.to_json()
    assert json.loads(path.read_text()) == json.loads(saved)
    other = make_window()
    assert other.open_file(path)
    assert other.document.project.to_json() == saved
    assert other.windowTitle() == "two_heads — nodenet"  # named after its file when saved
    assert not other.document.is_dirty()


def test_a_broken_file_is_reported_and_leaves_the_document_intact(window, tmp_path, no_prompts):
    build_two_in_two_out(window)
    before, count = window.document.project.to_json(), window.document.undo_stack.count()
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "nodenet-project", "version": 1, "nodes": [{"id": 3}], ')
    assert not window.open_file(broken)
    bad_nodes = tmp_path / "bad_nodes.json"
    bad_nodes.write_text(
        json.dumps({"format": "nodenet-project", "version": 1, "nodes": [{"id": ""}, 5]})
    )
    assert not window.open_file(bad_nodes)
    assert [title for title, _ in no_prompts] == ["Cannot open project"] * 2
    assert "not valid JSON" in no_prompts[0][1] and "line 1" in no_prompts[0][1]
    assert "nodes[0]: id must be a non-empty string" in no_prompts[1][1]
    assert "nodes[1]: a node must be an object" in no_prompts[1][1]
    assert window.document.project.to_json() == before
    assert window.document.undo_stack.count() == count and window.document.is_dirty()


def test_unsaved_work_prompts_save_discard_or_cancel(window, tmp_path, monkeypatch):
    window.document.add_node("Dense", (0, 0))
    edited = window.document.project.to_json()
    asked = answer(monkeypatch, QMessageBox.StandardButton.Cancel)
    assert not window.new_project()
    assert asked == ["Save the changes to untitled?"]
    assert window.document.project.to_json() == edited
    answer(monkeypatch, QMessageBox.StandardButton.Save)
    target = tmp_path / "kept.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: (str(target), ""))
    assert window.open_file(SAMPLE)
    assert load(target).to_json() == edited.replace('"name": "untitled"', '"name": "kept"')
    assert window.document.project.name == "digits_mlp"
    window.document.remove_nodes(["probs"])
    answer(monkeypatch, QMessageBox.StandardButton.Discard)
    assert window.new_project()
    assert window.document.project.to_json() == new_project().to_json()


def test_closing_with_unsaved_work_can_be_cancelled(window, monkeypatch):
    window.document.add_node("Dense", (0, 0))
    answer(monkeypatch, QMessageBox.StandardButton.Cancel)
    assert not window.close() and window.isVisible()
    answer(monkeypatch, QMessageBox.StandardButton.Discard)
    assert window.close()


def test_recent_files_and_window_layout_persist(window, make_window, tmp_path, no_prompts):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    for path in (first, second):
        path.write_text(SAMPLE.read_text())
        assert window.open_file(path)
    window.resize(760, 560)  # the offscreen screen is 800 x 600
    window.docks["history"].hide()
    assert window.close()
    again = make_window()
    assert again.recent.paths() == [str(second.resolve()), str(first.resolve())]
    assert (again.width(), again.height()) == (760, 560)
    assert again.docks["history"].isHidden()
    again.recent_menu.aboutToShow.emit()
    entries = [a for a in again.recent_menu.actions() if a.toolTip().endswith(".json")]
    assert [a.text() for a in entries] == ["&1  second.json", "&2  first.json"]
    entries[1].trigger()
    assert again.document.project.path == first
    assert again.recent.paths()[0] == str(first.resolve())


def test_open_sample_opens_an_unsaved_copy(window, monkeypatch, tmp_path):
    window.actions["open_sample"].trigger()
    card = window.welcome.sample_dialog.gallery.card("digits_mlp")
    QTest.mouseClick(card, LEFT, NO_MOD, card.rect().center())
    assert window.document.project.name == "digits_mlp"
    assert window.document.project.path is None, "Save must not overwrite the bundled sample"
    target = tmp_path / "mine.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: (str(target), ""))
    window.document.move_nodes({"probs": (700, 40)})
    QTest.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert target.is_file() and window.document.project.path == target


def test_clicking_a_problem_selects_its_block(window):
    window.document.add_node("Dense", (0, 300), node_id="loose")
    window.docks["problems"].raise_()
    view = window.problems
    assert window.docks["problems"].windowTitle() == f"Problems ({view.problem_count()})"
    row = next(i for i in range(view.count()) if view.row_text(i).startswith("loose: input port 0"))
    QTest.mouseClick(view.viewport(), LEFT, NO_MOD, view.row_rect(row).center())
    assert window.selection.ids() == ["loose"]
    assert window.inspector.node_id == "loose"


def test_summary_dock_shows_the_keras_table_and_totals(window):
    window.open_sample(SAMPLE, ask=False)
    table = window.summary.table
    rows = [[window.summary.cell(r, c) for c in range(4)] for r in range(table.model().rowCount())]
    assert rows[1] == ["hidden_1 (Dense)", "(None, 128)", "8,320", "pixels"]
    # 64*128+128 + 128*128+128 + 128*10+10
    assert "Total params: 26,122</b> (102.04 KB)" in window.summary.totals.text()
    assert window.summary.text().splitlines()[0] == 'Model: "digits_mlp"'
    QTest.mouseClick(
        table.viewport(), LEFT, NO_MOD, table.visualRect(table.model().index(3, 0)).center()
    )
    assert window.selection.ids() == ["probs"]


def test_read_only_disables_editing_actions(window):
    window.document.set_read_only(True)
    for name in ("undo", "redo", "cut", "paste", "delete", "layout"):
        assert not window.actions[name].isEnabled(), name
    assert not window.history.isEnabled()
    window.document.set_read_only(False)
    assert window.actions["paste"].isEnabled()


def test_docks_can_be_toggled_from_the_view_menu(window):
    toggle = window.docks["summary"].toggleViewAction()
    toggle.trigger()
    assert window.docks["summary"].isHidden()
    toggle.trigger()
    assert not window.docks["summary"].isHidden()


def test_screenshot_of_the_window_with_a_sample(window, tmp_path):
    window.open_sample(SAMPLE, ask=False)
    window.selection.set(["hidden_1"])
    path = tmp_path / "main_window.png"
    assert window.grab().save(str(path))
    assert path.stat().st_size > 10_000
    assert window.grab().size().width() >= 1000


def test_palette_double_click_cascades_from_the_centre(window):
    tree = window.palette.tree
    item = window.palette.item("Dense")
    for _ in range(2):
        double_click(tree.viewport(), tree.visualItemRect(item).center())
    a, b = (window.document.project.node(i) for i in ("dense", "dense_1"))
    assert (b.pos[0] - a.pos[0], b.pos[1] - a.pos[1]) == (40.0, 40.0)


@pytest.mark.parametrize(
    ("path", "new", "expected"),
    [(None, False, "untitled"), (None, True, "untitled"), (SAMPLE, False, "digits_mlp")],
)
def test_run_opens_the_welcome_page_a_new_project_or_the_given_file(
    config, path, new, expected, monkeypatch
):
    seen, started = [], []
    start_window = app_module.start_window

    def recording_start_window(*args, **kwargs):
        started.append(start_window(*args, **kwargs))
        return started[-1]

    # the window run() makes, taken from its factory: walking QApplication.topLevelWidgets()
    # would also wrap widgets of earlier tests that Qt is still deleting, which can crash
    monkeypatch.setattr(app_module, "start_window", recording_start_window)

    def close_the_window():
        for widget in started:
            project = widget.document.project
            seen.append((project.name, project.path, [n.type for n in project.nodes]))
            assert widget.isVisible()
            assert widget.welcome.active == (path is None and not new)
            widget.close()

    QTimer.singleShot(0, close_the_window)
    assert run(None if path is None else str(path), new=new) == 0
    assert len(seen) == 1
    name, opened_path, types = seen[0]
    assert name == expected
    assert opened_path == (SAMPLE if path else None)
    if new:
        assert types == ["Input", "Output"]

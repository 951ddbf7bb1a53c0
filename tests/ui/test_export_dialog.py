"""File → Export (the code preview, Copy, Save, trained weights) and File → Import Keras model."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase, QFontInfo, QTextCharFormat, QTextDocument
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from nodenet.export import export_keras, export_pytorch
from nodenet.graph.project import load
from nodenet.runner import build_run
from nodenet.ui.export_dialog import NO_WEIGHTS_TIP, ExportDialog, PythonHighlighter
from nodenet.ui.main_window import MainWindow
from tests.ui import SAMPLE

ROOT = Path(__file__).parents[2]
TWO_HEADS = ROOT / "sample_projects" / "two_in_two_out.json"
LEFT, CTRL = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier
TIMEOUT = 180_000


@pytest.fixture
def window(qtbot, tmp_path):
    path = tmp_path / SAMPLE.name
    shutil.copy(SAMPLE, path)
    window = MainWindow()
    qtbot.addWidget(window, before_close_func=lambda w: w.document.undo_stack.setClean())
    window.show()
    qtbot.waitExposed(window)
    assert window.open_file(path, ask=False)
    yield window
    window.training_panel.shutdown()


@pytest.fixture
def messages(monkeypatch):
    """Message boxes the code shows, recorded instead of blocking."""
    shown = []

    def critical(parent, title, text, *args):
        shown.append((title, text))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "critical", critical)
    return shown


def save_to(monkeypatch, path: Path) -> list:
    """Answer the next Save dialog with ``path``; the suggested names are recorded."""
    asked = []

    def chooser(parent, caption, suggested, *args, **kwargs):
        asked.append(suggested)
        return str(path), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", chooser)
    return asked


def open_from(monkeypatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))


def import_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def dialog_for(qtbot, project, target: str, weights=None) -> ExportDialog:
    dialog = ExportDialog(project, target, weights)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def assert_system_fixed_font(font: QFont) -> None:
    """``font`` is the system's fixed-width font, as Qt reports it (offscreen: fontconfig's
    ``monospace``), and renders as it does. Fixed pitch is checked only where Qt says the
    system font has it: Qt reports Noto Sans Mono, fontconfig's ``monospace`` on many
    systems, as not fixed-pitch."""
    fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    assert font.family() == fixed.family()
    assert QFontInfo(font).family() == QFontInfo(fixed).family()
    assert font.pointSizeF() == fixed.pointSizeF()
    if QFontInfo(fixed).fixedPitch():
        assert QFontInfo(font).fixedPitch()


def graph_of(project):
    nodes = sorted((n.id, n.type, json.dumps(n.params, sort_keys=True)) for n in project.nodes)
    edges = sorted((e.src, e.dst, e.port) for e in project.edges)
    return nodes, edges


# -- the preview ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["keras", "pytorch"])
def test_shortcut_opens_the_preview_of_the_export(qtbot, window, target):
    modifiers = CTRL | Qt.KeyboardModifier.ShiftModifier if target == "pytorch" else CTRL
    QTest.keyClick(window, Qt.Key.Key_E, modifiers)
    dialog = window.export_dialog
    assert dialog is not None and dialog.isVisible() and dialog.target == target
    exporter = export_keras if target == "keras" else export_pytorch
    assert dialog.preview.toPlainText() == exporter(load(SAMPLE)).source
    assert dialog.preview.isReadOnly()
    assert_system_fixed_font(dialog.preview.font())
    # nothing trained yet: no weights to offer, and the reason is on the checkbox
    assert not dialog.with_weights.isEnabled() and not dialog.with_weights.isChecked()
    assert dialog.with_weights.toolTip() == NO_WEIGHTS_TIP


def test_menu_has_export_and_import(window):
    file_menu = window.menuBar().actions()[0].menu()
    texts = [a.text() for a in file_menu.actions()]
    assert "&Import Model…" in texts and "&Export" in texts
    export_menu = next(a.menu() for a in file_menu.actions() if a.text() == "&Export")
    texts = [a.text() for a in export_menu.actions()]
    assert texts == ["&Keras 3 code…", "&PyTorch code…", "", "&ONNX file…", "Keras &model file…"]
    assert window.actions["export_keras"].shortcut().toString() == "Ctrl+E"
    assert window.actions["export_pytorch"].shortcut().toString() == "Ctrl+Shift+E"


def formats_at(document: QTextDocument, line: int, column: int) -> QTextCharFormat | None:
    """The highlighter's format at a line and column, None where the text is plain."""
    block = document.findBlockByNumber(line)
    ranges = block.layout().formats()
    for r in ranges:
        if r.start <= column < r.start + r.length:
            return QTextCharFormat(r.format)  # a copy: the range list is temporary
    return None


def test_highlighter_colours_python(qtbot):
    document = QTextDocument()
    highlighter = PythonHighlighter(document)
    document.setPlainText(
        'def f(x):\n    """A docstring\n    over lines, with def # inside."""\n'
        '    return x + 0.5  # a comment\ny = "it\'s # not a comment"\n'
    )
    highlighter.rehighlight()  # at once, not when the event loop gets to it
    keyword, string = highlighter.formats["keyword"], highlighter.formats["string"]
    comment, number = highlighter.formats["comment"], highlighter.formats["number"]
    fmt = formats_at(document, 0, 0)  # "def"
    assert fmt is not None and fmt.foreground().color() == keyword.foreground().color()
    assert fmt.fontWeight() == QFont.Weight.Bold
    assert formats_at(document, 0, 4) is None  # "f" is a plain name
    # the docstring is a string on every one of its lines, "def" and "#" inside too
    for line, column in ((1, 4), (2, 4), (2, 17), (2, 28)):
        fmt = formats_at(document, line, column)
        assert fmt.foreground().color() == string.foreground().color(), (line, column)
    assert formats_at(document, 3, 4).foreground().color() == keyword.foreground().color()
    assert formats_at(document, 3, 15).foreground().color() == number.foreground().color()
    assert formats_at(document, 3, 24).foreground().color() == comment.foreground().color()
    assert formats_at(document, 3, 24).fontItalic()
    fmt = formats_at(document, 4, 12)  # "#" inside a string
    assert fmt.foreground().color() == string.foreground().color()
    assert formats_at(document, 4, 0) is None  # the string closed: "y" is plain


def test_copy_puts_the_source_on_the_clipboard(qtbot):
    dialog = dialog_for(qtbot, load(SAMPLE), "keras")
    QApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button, LEFT)
    assert QApplication.clipboard().text() == export_keras(load(SAMPLE)).source
    assert "copied" in dialog.intro.text()


# -- saving -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["keras", "pytorch"])
def test_save_writes_a_module_that_ruff_passes_and_that_imports(
    qtbot, monkeypatch, tmp_path, target
):
    pytest.importorskip("torch" if target == "pytorch" else "keras")
    ruff = shutil.which("ruff") or pytest.skip("ruff is not installed")
    project = load(TWO_HEADS)
    dialog = dialog_for(qtbot, project, target)
    asked = save_to(monkeypatch, tmp_path / "out" / "two_heads")  # no suffix: .py is added
    (tmp_path / "out").mkdir()
    qtbot.mouseClick(dialog.save_button, LEFT)
    assert Path(asked[0]).name == f"two_in_two_out_{'keras' if target == 'keras' else 'torch'}.py"
    written = tmp_path / "out" / "two_heads.py"
    assert written.read_text() == dialog.code.source
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["two_heads.py"]
    for command in (["check"], ["format", "--check"]):
        run = subprocess.run(
            [ruff, *command, "--config", str(ROOT / "pyproject.toml"), "--no-cache", str(written)],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stdout + run.stderr
    module = import_module(written)
    model = module.build_model()
    count = sum(build_run(project, load_data=False).model.count_params())
    if target == "keras":
        assert model.count_params() == count
    else:
        total = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
        assert total == count


def test_a_file_that_cannot_be_written_is_reported(qtbot, monkeypatch, tmp_path, messages):
    dialog = dialog_for(qtbot, load(SAMPLE), "pytorch")
    save_to(monkeypatch, tmp_path / "missing" / "model.py")
    qtbot.mouseClick(dialog.save_button, LEFT)
    assert len(messages) == 1 and "model.py: cannot be saved: No such file" in messages[0][1]
    assert dialog.isVisible() and not (tmp_path / "missing").exists()


def test_trained_weights_are_exported_and_predict_as_nodenet(qtbot, monkeypatch, window, tmp_path):
    torch = pytest.importorskip("torch")
    panel = window.training_panel
    training = copy.deepcopy(window.document.project.training)
    training.update(epochs=1, early_stopping=None)
    window.document.set_section("training", training)
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT):
        qtbot.mouseClick(panel.run_button, LEFT)
    trained = panel.trained_weights
    QTest.keyClick(window, Qt.Key.Key_E, CTRL | Qt.KeyboardModifier.ShiftModifier)
    dialog = window.export_dialog
    assert dialog.with_weights.isEnabled() and dialog.with_weights.isChecked()
    save_to(monkeypatch, tmp_path / "digits_torch.py")
    qtbot.mouseClick(dialog.save_button, LEFT)
    weights_file = tmp_path / "digits_torch_weights.npz"
    assert weights_file.exists() and "digits_torch_weights.npz" in dialog.intro.text()
    # nodenet with the trained weights, against the saved module with the saved weights
    run = build_run(window.document.project)
    run.model.set_weights(trained)
    x = {k: v[:64] for k, v in run.data.test["inputs"].items()}
    expected = run.model.predict(x)
    module = import_module(tmp_path / "digits_torch.py")
    net = module.build_model()
    module.load_weights(net, weights_file)
    net.eval()
    with torch.no_grad():
        got = net(*[torch.from_numpy(x[i]) for i in run.model.input_ids])
    (head,) = run.model.heads
    np.testing.assert_allclose(got.numpy(), expected[head.id], rtol=1e-4, atol=1e-5)
    # unchecking exports the module alone
    dialog.with_weights.click()
    assert dialog.code.weights is None and "WEIGHTS" not in dialog.preview.toPlainText()


# -- problems shown, never raised -------------------------------------------------------------


def test_an_invalid_graph_is_explained_and_nothing_can_be_saved(qtbot, window):
    edge = window.document.project.edges[1]
    window.document.disconnect(edge.src, edge.dst, edge.port)
    dialog = window.export_code("keras")
    assert not dialog.error.isHidden() and edge.dst in dialog.error.text()
    assert dialog.preview.toPlainText() == ""
    assert not dialog.copy_button.isEnabled() and not dialog.save_button.isEnabled()


def test_weights_that_no_longer_fit_are_explained(qtbot, window):
    project = window.document.project
    weights = build_run(project, load_data=False).model.get_weights()
    hidden = next(n for n in project.nodes if n.type == "Dense")
    window.document.set_params(hidden.id, {**hidden.params, "units": hidden.params["units"] + 1})
    dialog = dialog_for(qtbot, window.document.project, "keras", weights)
    assert dialog.with_weights.isChecked() and not dialog.error.isHidden()
    assert f"{hidden.id}/kernel" in dialog.error.text() and "train again" in dialog.error.text()
    dialog.with_weights.click()  # without the weights, the graph itself exports
    assert dialog.error.isHidden() and dialog.save_button.isEnabled()


# -- import ------------------------------------------------------------------------------------


def test_import_of_a_keras_model_replaces_the_document(qtbot, monkeypatch, window, tmp_path):
    pytest.importorskip("keras")
    sample = load(TWO_HEADS)
    source = tmp_path / "two_heads_keras.py"
    source.write_text(export_keras(sample).source)
    config = tmp_path / "model.json"
    config.write_text(import_module(source).build_model().to_json())
    window.document.rename("hidden_1", "first")  # unsaved work: the window asks first
    asked = []

    def question(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.Discard

    monkeypatch.setattr(QMessageBox, "question", question)
    open_from(monkeypatch, config)
    window.actions["import_keras"].trigger()
    assert asked and "digits_mlp" in asked[0]
    project = window.document.project
    assert graph_of(project)[1] == graph_of(sample)[1]
    assert {n.id: n.type for n in project.nodes} == {n.id: n.type for n in sample.nodes}
    assert project.path is None and not window.document.is_dirty()
    assert not window.document.undo_stack.canUndo()


def test_a_broken_import_leaves_the_document_untouched(qtbot, monkeypatch, window, tmp_path):
    project, before = window.document.project, graph_of(window.document.project)
    window.document.rename("hidden_1", "first")
    unknown = {
        "class_name": "Sequential",
        "config": {
            "name": "odd",
            "layers": [
                {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "x"}},
                {"class_name": "FancyWarp", "config": {"name": "warp"}},
                {"class_name": "Dense", "config": {"name": "out", "units": 2}},
            ],
        },
    }
    files = {"unknown.json": json.dumps(unknown), "garbage.json": "{not json", "empty.keras": ""}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda p, t, text, *a: shown.append(text))
    monkeypatch.setattr(QMessageBox, "question", pytest.fail)  # nothing to save for nothing
    for name in files:
        open_from(monkeypatch, tmp_path / name)
        window.actions["import_keras"].trigger()
        assert window.document.project is project and window.document.undo_stack.canUndo()
    assert len(shown) == 3
    assert "FancyWarp" in shown[0]
    assert "garbage.json" in shown[1] and "empty.keras" in shown[2]
    window.document.undo()
    assert graph_of(window.document.project) == before

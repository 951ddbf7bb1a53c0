"""The welcome page and File → Open Sample, driven by clicks: first start, samples, new, recent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox, QWidget

from nodenet.graph.project import load, save
from nodenet.samples import list_samples, load_sample, read_sample
from nodenet.ui.app import start_window
from nodenet.ui.canvas.style import CATEGORY_COLORS
from nodenet.ui.main_window import MainWindow
from nodenet.ui.sample_gallery import THUMB_SIZE, sample_thumbnail
from tests.ui import SAMPLE

LEFT, NO_MOD = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
INPUT_COLOUR = QColor(CATEGORY_COLORS["Input / Output"])


@pytest.fixture
def start(qtbot):
    """``start(path, new)``: the window as ``nodenet [FILE] [--new]`` opens it, shown."""

    def make(path: str | None = None, new: bool = False) -> MainWindow:
        window = start_window(path, new)
        qtbot.addWidget(window, before_close_func=lambda w: w.document.undo_stack.setClean())
        window.resize(1400, 900)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()  # keyboard shortcuts go to the active window
        qtbot.waitUntil(window.isActiveWindow)
        return window

    return make


def click(widget: QWidget) -> None:
    QTest.mouseClick(widget, LEFT, NO_MOD, widget.rect().center())


def shown_docks(window: MainWindow) -> set[str]:
    return {name for name, dock in window.docks.items() if not dock.isHidden()}


def has_colour(image: QImage, colour: QColor, tolerance: int = 6) -> bool:
    """True if some pixel of ``image`` is ``colour`` (within ``tolerance`` per channel)."""
    step = max(1, image.width() // 200)
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            pixel = image.pixelColor(x, y)
            if pixel.alpha() == 255 and all(
                abs(a - b) <= tolerance
                for a, b in zip(pixel.getRgb()[:3], colour.getRgb()[:3], strict=True)
            ):
                return True
    return False


def test_first_start_shows_the_welcome_page(start):
    window = start()
    welcome = window.welcome
    assert welcome.active and window.centralWidget().currentWidget() is welcome.page
    assert shown_docks(window) == set() and window.toolbar.isHidden()
    assert window.windowTitle() == "Welcome — nodenet"
    titles = [card.title.text() for card in welcome.page.gallery.cards]
    assert titles == [s.title for s in list_samples()] and "Digits: a small MLP" in titles
    assert welcome.page.new_button.isVisible() and welcome.page.open_button.isVisible()
    assert not welcome.page.back_button.isVisible()  # nothing to go back to at start


def test_clicking_a_sample_card_opens_that_sample(start):
    window = start()
    card = window.welcome.page.gallery.card("digits_mlp")
    click(card.thumbnail)  # a click anywhere on the card opens it
    assert not window.welcome.active
    assert window.centralWidget().currentWidget() is window.navigator
    expected = load_sample("digits_mlp")
    project = window.document.project
    assert [(n.id, n.type) for n in project.nodes] == [(n.id, n.type) for n in expected.nodes]
    assert len(project.edges) == len(expected.edges)
    assert project.path is None and not window.document.is_dirty()  # an untitled copy
    assert {"palette", "inspector", "summary"} <= shown_docks(window)
    assert not window.toolbar.isHidden()
    assert window.windowTitle() == "digits_mlp — nodenet"


def test_a_sample_copy_reads_its_data_files_from_the_sample_folder(start):
    with_files = [
        s
        for s in list_samples()
        if isinstance(load(s.path).data.get("source", {}).get("path"), str)
    ]
    if not with_files:
        pytest.skip("no sample reads a data file")
    sample = with_files[0]
    window = start()
    click(window.welcome.page.gallery.card(sample.name))
    source = window.document.project.data["source"]
    written = load(sample.path).data["source"]["path"]
    assert Path(source["path"]) == (sample.path.parent / written).resolve()
    assert Path(source["path"]).exists()


def test_new_project_gives_an_empty_canvas(start):
    window = start()
    click(window.welcome.page.new_button)
    assert not window.welcome.active
    assert [n.type for n in window.document.project.nodes] == ["Input", "Output"]
    assert window.centralWidget().currentWidget() is window.navigator
    assert "palette" in shown_docks(window)


def test_recent_files_are_listed_and_clickable(start, tmp_path, qtbot):
    kept, gone = tmp_path / "kept.json", tmp_path / "gone.json"
    shutil.copy(SAMPLE, kept)
    shutil.copy(SAMPLE, gone)
    window = start(str(kept))  # opening a file puts it in the recent list
    window.recent.add(gone)
    gone.unlink()
    window.actions["welcome"].trigger()
    entries = window.welcome.page.entries
    assert [Path(e.path).name for e in entries] == ["gone.json", "kept.json"]
    missing = entries[0]
    assert missing.missing and not missing.isEnabled() and "moved or deleted" in missing.toolTip()
    click(missing)  # greyed out: nothing happens
    assert window.welcome.active
    forget = window.welcome.page.forget_button
    assert forget.isVisible()
    click(forget)
    assert [Path(e.path).name for e in window.welcome.page.entries] == ["kept.json"]
    assert not forget.isVisible()
    window.document.replace_project(load_sample("digits_mlp"))  # something else is open
    window.actions["welcome"].trigger()
    click(window.welcome.page.entries[0])
    assert not window.welcome.active and window.document.project.path == kept


def test_open_sample_shows_every_sample_with_a_thumbnail(start, qtbot):
    window = start(new=True)
    QTest.keyClick(
        window,
        Qt.Key.Key_O,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    dialog = window.welcome.sample_dialog
    assert dialog is not None and dialog.isVisible()
    samples = list_samples()
    assert [c.sample.name for c in dialog.gallery.cards] == [s.name for s in samples]
    for card in dialog.gallery.cards:
        image = card.thumbnail.pixmap().toImage()
        assert not image.isNull()
        assert image.width() >= THUMB_SIZE.width() and image.height() >= THUMB_SIZE.height()
        assert has_colour(image, INPUT_COLOUR), f"{card.sample.name}: no Input block drawn"
        assert card.description.text() == card.sample.description
    last = dialog.gallery.cards[-1]
    with qtbot.waitSignal(dialog.finished):
        click(last.title)
    assert [n.id for n in window.document.project.nodes] == [
        n.id for n in load_sample(last.sample).nodes
    ]


def test_thumbnails_are_cached_until_the_file_changes(tmp_path):
    path = tmp_path / "mine.json"
    shutil.copy(SAMPLE, path)
    sample = read_sample(path)
    first = sample_thumbnail(sample)
    assert sample_thumbnail(sample).cacheKey() == first.cacheKey()  # drawn once
    project = load(path)
    project.nodes[0].pos = (project.nodes[0].pos[0], project.nodes[0].pos[1] + 300)
    save(project, path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    again = sample_thumbnail(sample)
    assert again.cacheKey() != first.cacheKey() and again != first  # the file changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.json"]  # no image files


def test_a_broken_sample_file_is_left_out_of_the_gallery(start, tmp_path, monkeypatch):
    shutil.copy(SAMPLE, tmp_path / "good.json")
    (tmp_path / "broken.json").write_text('{"format": "nodenet", "nodes": [')
    monkeypatch.setattr("nodenet.samples.sample_dir", lambda: tmp_path)
    window = start()
    assert [card.sample.name for card in window.welcome.page.gallery.cards] == ["good"]


def test_help_welcome_returns_and_back_restores_the_editor(start):
    window = start(str(SAMPLE))
    assert not window.welcome.active
    window.docks["history"].hide()
    before = shown_docks(window)
    QTest.keyClick(window, Qt.Key.Key_Home, Qt.KeyboardModifier.AltModifier)
    assert window.welcome.active and shown_docks(window) == set()
    back = window.welcome.page.back_button
    assert back.isVisible() and "digits_mlp" in back.text()
    click(back)
    assert not window.welcome.active and shown_docks(window) == before
    assert window.document.project.path == SAMPLE
    assert window.windowTitle() == "digits_mlp — nodenet"


def test_find_block_leaves_the_welcome_page_for_the_find_bar(start):
    window = start()
    QTest.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert not window.welcome.active
    assert window.find_bar.field.hasFocus()


def test_closing_on_the_welcome_page_keeps_the_editor_layout(start, qtbot):
    window = start(str(SAMPLE))
    window.docks["history"].hide()
    before = shown_docks(window)
    window.actions["welcome"].trigger()
    assert window.close()
    again = start()  # the welcome page again; the editor's layout behind it
    assert again.welcome.active
    click(again.welcome.page.new_button)
    assert shown_docks(again) == before


def test_a_file_that_cannot_be_read_at_start_leads_to_the_welcome_page(
    start, tmp_path, monkeypatch
):
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: shown.append(args[1]))
    window = start(str(tmp_path / "nowhere.json"))
    assert shown == ["Cannot open project"]
    assert window.welcome.active

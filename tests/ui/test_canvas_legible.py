"""Layout + Fit keep card text legible: a deep chain is folded into bands and Fit stops
zooming out where the cards' detail lines would fall under 9 px on screen."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontInfo
from PySide6.QtTest import QTest

from nodenet.ui.canvas import CanvasView, style
from nodenet.ui.canvas.node_item import _Fonts
from nodenet.ui.document import Document, Selection
from tests.test_layout import chain


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two ``#rrggbb`` colours."""

    def luminance(colour: str) -> float:
        rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def view(qtbot):
    doc = Document(chain(175))
    canvas = CanvasView(doc, Selection(doc))
    qtbot.addWidget(canvas)
    canvas.resize(1366, 768)
    canvas.show()
    qtbot.waitExposed(canvas)
    return canvas


def test_layout_and_fit_of_a_175_block_chain_leave_detail_text_at_least_9_px(view):
    QTest.keyClick(view, Qt.Key.Key_L)  # Layout, then Fit (what the L key does)
    QTest.keyClick(view, Qt.Key.Key_F)
    zoom = view.zoom()
    fonts = _Fonts.get()
    for font in (fonts.body, fonts.mono):  # the 2nd and 3rd lines of a card
        assert QFontInfo(font).pixelSize() * zoom >= style.LEGIBLE_PX - 1e-6
    assert view.detail_text_px() >= style.LEGIBLE_PX - 1e-6
    assert zoom >= style.DETAIL_ZOOM  # cards draw their detail lines at this zoom
    # folded into bands that fill the view's width: the user scrolls down only
    nodes = view.canvas_scene.nodes
    visible = view.visible_scene_rect()
    first_band = [n for n in nodes.values() if n.pos().y() == nodes["n0"].pos().y()]
    assert len(first_band) >= 3
    for item in first_band:
        assert visible.contains(item.sceneBoundingRect())
    rows = {round(item.pos().y()) for item in nodes.values()}
    assert len(rows) >= 10
    view.minimap.refresh()
    assert view.minimap.isVisible()  # the rest of the graph, one click away
    # zooming out still shows all of it; Fit comes back to the legible zoom
    for _ in range(12):
        QTest.keyClick(view, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    view.centerOn(view.canvas_scene.graph_rect().center())
    assert view.visible_scene_rect().contains(view.canvas_scene.graph_rect())
    QTest.keyClick(view, Qt.Key.Key_F)
    assert view.zoom() == pytest.approx(zoom)


def test_the_layout_is_one_undoable_command(view):
    before = {n.id: tuple(n.pos) for n in view.document.project.nodes}
    QTest.keyClick(view, Qt.Key.Key_L)
    after = {n.id: tuple(n.pos) for n in view.document.project.nodes}
    assert after != before
    view.document.undo_stack.undo()
    assert {n.id: tuple(n.pos) for n in view.document.project.nodes} == before
    view.document.undo_stack.redo()
    assert {n.id: tuple(n.pos) for n in view.document.project.nodes} == after


def test_detail_lines_have_enough_contrast_on_the_card():
    assert contrast(style.DETAIL_TEXT, style.CARD) >= 7.0  # WCAG AAA for small text
    assert contrast(style.TEXT, style.CARD) >= 7.0

"""The block palette: generated from the catalog, searchable, draggable, double-clickable."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QDrag, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from nodenet.engine import CATEGORIES, block_class, block_types
from nodenet.ui.document import BLOCK_MIME
from nodenet.ui.palette import Palette
from tests.ui import double_click


@pytest.fixture
def palette(qtbot) -> Palette:
    widget = Palette()
    qtbot.addWidget(widget)
    widget.resize(240, 900)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def item_centre(palette: Palette, block_type: str) -> QPoint:
    item = palette.item(block_type)
    palette.tree.scrollToItem(item)
    return palette.tree.visualItemRect(item).center()


def test_every_catalog_block_is_listed_under_its_category(palette):
    assert palette.block_types() == block_types()
    headers = [
        palette.tree.topLevelItem(i).text(0) for i in range(palette.tree.topLevelItemCount())
    ]
    assert headers == list(CATEGORIES)
    for block_type in block_types():
        item = palette.item(block_type)
        assert item.parent().text(0) == block_class(block_type).CATEGORY
        assert item.text(0) == block_type


def test_tooltips_carry_the_blocks_help_and_key_parameters(palette):
    tip = palette.item("Dense").toolTip(0)
    assert "<b>Dense</b>" in tip
    assert "Densely connected layer" in tip
    assert "units=32" in tip and 'activation="linear"' in tip
    assert "2 or more inputs" in palette.item("Concatenate").toolTip(0)
    assert "1 to 3 inputs" in palette.item("LSTM").toolTip(0)  # the sequence, h and c
    assert "2 to 3 inputs" in palette.item("MultiHeadAttention").toolTip(0)
    assert "no input" in palette.item("Input").toolTip(0)


def test_search_box_filters_blocks_and_hides_empty_categories(palette, qtbot):
    QTest.keyClicks(palette.search, "conv")  # names, help texts and the Convolution category
    assert palette.visible_types() == [
        "LayerScale",  # Core: "ConvNeXt's layer scale"
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "ZeroPadding3D",
        "Cropping1D",
        "Cropping2D",
        "Cropping3D",
        "UpSampling1D",
        "UpSampling2D",
        "UpSampling3D",
    ]
    hidden = {
        palette.tree.topLevelItem(i).text(0): palette.tree.topLevelItem(i).isHidden()
        for i in range(palette.tree.topLevelItemCount())
    }
    assert hidden["Convolution"] is False and hidden["Recurrent"] is True
    palette.search.clear()
    QTest.keyClicks(palette.search, "max pool")  # every word must match
    assert palette.visible_types() == [
        "MaxPooling1D",
        "MaxPooling2D",
        "MaxPooling3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
    ]
    palette.search.clear()
    assert palette.visible_types() == block_types()


def test_enter_in_the_search_box_adds_the_best_match(palette, qtbot):
    QTest.keyClicks(palette.search, "dense")  # Dense, and Embedding ("dense vectors")
    assert set(palette.visible_types()) == {"Dense", "Embedding"}
    with qtbot.waitSignal(palette.blockActivated) as signal:
        QTest.keyClick(palette.search, Qt.Key.Key_Return)
    assert signal.args == ["Dense"]


def test_double_click_asks_to_add_each_block(palette, qtbot):
    for block_type in block_types():
        with qtbot.waitSignal(palette.blockActivated) as signal:
            double_click(palette.tree.viewport(), item_centre(palette, block_type))
        assert signal.args == [block_type]


def test_category_headers_are_not_blocks(palette, qtbot):
    header = palette.tree.topLevelItem(0)
    with qtbot.assertNotEmitted(palette.blockActivated):
        double_click(palette.tree.viewport(), palette.tree.visualItemRect(header).center())
    assert not palette.tree.mimeData([header]).hasFormat(BLOCK_MIME)


def test_dragging_a_block_starts_a_drag_with_the_block_mime_type(palette, monkeypatch):
    dragged = []

    def fake_exec(drag: QDrag, *args):
        data = drag.mimeData()
        dragged.append((bytes(data.data(BLOCK_MIME)).decode("utf-8"), drag.pixmap().isNull()))
        return Qt.DropAction.CopyAction

    monkeypatch.setattr(QDrag, "exec", fake_exec)
    viewport = palette.tree.viewport()
    start = item_centre(palette, "LSTM")
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    distance = QApplication.startDragDistance() + 5
    for step in range(1, 4):
        point = start + QPoint(step * distance, 0)
        move = QMouseEvent(
            QEvent.Type.MouseMove,
            point,
            viewport.mapToGlobal(point),
            Qt.MouseButton.NoButton,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(viewport, move)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    assert dragged == [("LSTM", False)]

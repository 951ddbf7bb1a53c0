"""A 24-block ResNet-style CNN (stem, two residual blocks, head) built as a user would with
groups: the first residual block by hand, then Group (Ctrl+G) and Repeat ×2 instead of
copying, pasting and renaming it. Every gesture goes through :class:`Gestures`, which
counts them; the count is printed (``-s``) for the documentation of the workflow."""

from __future__ import annotations

import itertools

import pytest
from PySide6.QtCore import Qt

from docs.tutorial_steps import (
    connect,
    drag_from_palette,
    select_block,
    set_param,
    settle,
    shortcut,
)
from nodenet.graph.groups import GROUP_TYPE
from tests.ui.test_groups_gui import answer_int, rubber_band

CTRL, ALT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.AltModifier


class Gestures:
    """The gestures of one build, each counted once: a palette drag, a port-to-port wire,
    a click on a block, a value typed or picked, a rubber band, a key, a dialog answer."""

    def __init__(self, window, qtbot):
        self.window, self.qtbot, self.count = window, qtbot, 0

    def drag(self, block_type: str, x: float, y: float) -> str:
        self.count += 1
        return drag_from_palette(self.window, block_type, (x, y))

    def wire(self, src: str, dst: str, port: int = 0) -> None:
        self.count += 1
        connect(self.window, src, dst, port)

    def chain(self, ids: list[str]) -> None:
        for src, dst in itertools.pairwise(ids):
            self.wire(src, dst)

    def select(self, node_id: str) -> None:
        self.count += 1
        select_block(self.window, node_id)

    def value(self, name: str, text: str) -> None:
        self.count += 1
        set_param(self.window, name, text)
        settle()

    def band(self, top_left, bottom_right) -> None:
        self.count += 1
        rubber_band(self.window, top_left, bottom_right)

    def key(self, key: Qt.Key, modifiers) -> None:
        self.count += 1
        shortcut(self.qtbot, self.window, key, modifiers)

    def answer(self, value: int) -> None:
        self.count += 1
        answer_int(value)


@pytest.fixture
def window(make_window):
    window = make_window()
    window.welcome.leave()  # a new project: one Input, one Output
    window.canvas.fit_to_view()
    settle()
    return window


def test_a_resnet_style_cnn_with_group_and_repeat(window, qtbot):
    g = Gestures(window, qtbot)
    doc = window.document
    g.select("input")
    g.value("shape", "32, 32, 3")
    # the stem, a row below the Input
    stem = [
        g.drag(t, 260.0 * (i + 1), 300.0)
        for i, t in enumerate(("Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D"))
    ]
    g.chain(["input", *stem])
    # the first residual block, by hand, on its own row
    block = [
        g.drag(t, 260.0 * i, 600.0)
        for i, t in enumerate(
            ("Conv2D", "BatchNormalization", "ReLU", "Conv2D", "BatchNormalization", "Add", "ReLU")
        )
    ]
    conv_a, _, _, conv_b, bn_b, add, relu_b = block
    for conv in (conv_a, conv_b):  # same size in and out: the Add needs it
        g.select(conv)
        g.value("padding", "same")
    g.chain([stem[-1], *block[:5]])
    g.wire(bn_b, add, 0)
    g.wire(stem[-1], add, 1)  # the skip connection
    g.wire(add, relu_b)
    # the head, wired to the block and to the Output
    head = [
        g.drag(t, 260.0 * i, 900.0)
        for i, t in enumerate(("GlobalAveragePooling2D", "Dropout", "Dense", "Dense"))
    ]
    g.chain([relu_b, *head, "output"])
    g.select(head[-1])
    g.value("units", "10")
    g.value("activation", "softmax")
    assert doc.analysis.ok, doc.analysis.problems
    # group the residual block and repeat it: two blocks, each with its own weights
    g.band((-40.0, 560.0), (1900.0, 820.0))
    assert window.canvas.canvas_scene.selected_ids() == block
    g.key(Qt.Key.Key_G, CTRL)
    g.answer(2)
    g.key(Qt.Key.Key_R, CTRL | ALT)

    assert doc.analysis.ok, doc.analysis.problems
    instances = [n for n in doc.project.nodes if n.type == GROUP_TYPE]
    assert len(instances) == 2 and len(doc.project.groups) == 1
    flat = doc.analysis.flat
    assert flat is not None and len(flat.nodes) == 24
    # the two residual blocks have the same counts, and the head reads the second one
    first, second = (n.id for n in instances)
    assert doc.analysis.params[first] == doc.analysis.params[second]
    assert (second, head[0]) in {(e.src, e.dst) for e in doc.project.edges}
    assert doc.analysis.shapes[head[-1]] == (10,)
    print(f"\n24-block ResNet-style CNN built with Group and Repeat: {g.count} gestures")
    assert g.count < 115  # copying, pasting and renaming the second block took 115

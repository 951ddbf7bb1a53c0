"""Problems in the order that helps, with real gestures: a shape mistake made mid-build is
listed first among 13 problems, the blocks around it say what is wrong in the inspector, and
the Run panel's "Cannot run" banner follows the graph until it is valid."""

from __future__ import annotations

import itertools

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolButton

from docs.tutorial_steps import click, select_block, settle, type_into
from nodenet.graph.project import Edge, Node, Project
from nodenet.graph.validation import UNUSED, analyze
from tests.ui.test_scale_editing import conv_project

CTRL = Qt.KeyboardModifier.ControlModifier
SPARES = 6  # blocks dropped but not wired yet: 2 problems each


def mid_build() -> Project:
    project = conv_project()
    for i in range(SPARES):
        project.nodes.append(Node(f"spare_{i}", "Dense", {"units": 4}, [260.0 * i, 320.0]))
    return project


@pytest.fixture
def window(make_window):
    window = make_window()
    window.welcome.leave()
    window.document.replace_project(mid_build())
    window.canvas.fit_to_view()
    settle()
    return window


def test_parameter_and_shape_problems_come_before_unfinished_wiring():
    project = mid_build()
    project.node("conv_b").params["kernel_size"] = [40, 40]  # bigger than its input
    project.node("probs").params["units"] = 0  # a parameter out of range
    problems = analyze(project).problems
    assert len(problems) == 2 + 2 * SPARES
    assert {p.node for p in problems[:2]} == {"conv_b", "probs"}
    assert [p.message for p in problems[-SPARES:]] == [UNUSED] * SPARES
    assert all("not connected" in p.message for p in problems[2:-SPARES])


def test_ordering_stays_linear_on_a_long_chain():
    nodes = [Node("x", "Input", {"shape": [4]}, [0.0, 0.0])]
    nodes += [Node(f"d{i}", "Dense", {"units": 4}, [0.0, 0.0]) for i in range(2000)]
    ids = [n.id for n in nodes]
    project = Project(nodes=nodes, edges=[Edge(a, b) for a, b in itertools.pairwise(ids)])
    problems = analyze(project).problems
    assert problems[0].field == "nodes" and "Output" in problems[0].message


def test_a_shape_mistake_mid_build_is_listed_first_and_explained_around_it(window, qtbot):
    doc, panel, inspector = window.document, window.training_panel, window.inspector
    assert len(doc.analysis.problems) == 2 * SPARES
    select_block(window, "conv_b")
    type_into(inspector.editors["kernel_size"].widget, "40, 40")  # the mistake
    problems = doc.analysis.problems
    assert len(problems) == 13
    assert problems[0].node == "conv_b" and problems[0].message != UNUSED
    assert inspector.problems_label.isVisible()
    assert problems[0].message in inspector.problems_label.text()

    window.activateWindow()
    QTest.keyClick(window.canvas, Qt.Key.Key_R, CTRL)  # Run: refused, with the reasons
    settle()
    assert panel.banner.isVisible()
    lines = panel.message.text().splitlines()
    assert "13 problems" in lines[0] and lines[1].startswith("• conv_b:")

    select_block(window, "flat")  # downstream: its input comes from the block at fault
    text = inspector.problems_label.text()
    assert inspector.problems_label.isVisible()
    assert "its input comes from conv_b, which has a problem" in text
    select_block(window, "probs")  # two blocks down: the nearest block at fault
    assert "depends on conv_b, which has a problem" in inspector.problems_label.text()
    select_block(window, "conv_a")  # upstream: the block its output feeds
    assert "its output goes to conv_b, which has a problem" in inspector.problems_label.text()

    select_block(window, "conv_b")  # the fix: the banner follows, still listing the rest
    type_into(inspector.editors["kernel_size"].widget, "3, 3")
    assert panel.banner.isVisible() and "12 problems" in panel.message.text()
    assert not inspector.problems_label.isVisible()

    bar = window.find_bar  # finish: remove the spare blocks; the graph becomes valid
    QTest.keyClick(window.canvas, Qt.Key.Key_F, CTRL)
    QTest.keyClicks(bar.field, "spare")
    settle()
    click(next(b for b in bar.findChildren(QToolButton) if b.text() == "Select all"))
    assert len(window.selection.ids()) == SPARES
    window.activateWindow()
    QTest.keyClick(window.canvas, Qt.Key.Key_Delete)
    settle()
    assert doc.analysis.ok
    assert not panel.banner.isVisible() and not panel.running
    QTest.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)  # problems again: no banner until Run
    settle()
    assert not doc.analysis.ok and not panel.banner.isVisible()

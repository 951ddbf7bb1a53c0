"""The Evaluation tab's sample browser, per-class table, curves and explanations, clicked.

A small CNN (the MNIST CNN sample on scikit-learn's 8x8 digits, its own fallback data) is
trained from the Run panel; the browser's "mistakes only" count is checked against the
confusion matrix drawn beside it, a clicked sample shows its saliency (the engine's, as
:class:`nodenet.explain.Explainer` computes it, itself checked against PyTorch in
tests/test_explain.py), and choosing another class changes its Grad-CAM. A regression run
shows its residuals.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from nodenet.backend import NumpyBackend
from nodenet.explain import saliency_map
from nodenet.graph.project import load
from nodenet.reports import summarize
from nodenet.ui.document import Document
from nodenet.ui.training import TrainingPanel
from nodenet.ui.training.evaluation import EvaluationView

SAMPLES = Path(__file__).parents[2] / "sample_projects"
TIMEOUT = 180_000
EXPLAINED = 30_000
LEFT = Qt.MouseButton.LeftButton
TEST_SIZE = round(1797 * 0.2)


@pytest.fixture
def document(tmp_path):
    """The MNIST CNN on the 8x8 digits, 2 epochs."""
    raw = json.loads((SAMPLES / "mnist_cnn.json").read_text())
    raw["data"] = raw["sample"]["fallback"]["data"]
    raw["nodes"][0]["params"]["shape"] = [8, 8, 1]
    raw["training"].update(epochs=2, early_stopping=None)
    del raw["sample"]
    path = tmp_path / "digits_cnn.json"
    path.write_text(json.dumps(raw))
    return Document(load(path))


@pytest.fixture
def panel(qtbot, document):
    panel = TrainingPanel(document, batch_interval=0.0)
    qtbot.addWidget(panel)
    panel.resize(1200, 900)
    panel.show()
    qtbot.waitExposed(panel)
    yield panel
    panel.shutdown()


def choose(qtbot, combo, text: str) -> None:
    """Pick the entry of a combo box starting with ``text`` with the arrow keys, as a user
    would (typing a space would open the list)."""
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    for _ in range(combo.count()):
        if combo.currentText().startswith(text):
            break
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentText().startswith(text), combo.currentText()


def click_row(qtbot, view, row: int) -> None:
    index = view.model().index(row, 1)
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), LEFT, pos=view.visualRect(index).center())


def test_browse_the_mistakes_and_explain_a_sample(qtbot, panel):
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.run_button, LEFT)
    result = finished.args[0]
    bar = panel.tabs.tabBar()
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(3).center())  # the Evaluation tab
    view = panel.evaluation
    browser = view.browser
    assert browser.model.rowCount() == TEST_SIZE == view.confusion.sum()
    assert browser.count.text() == f"{TEST_SIZE} of {TEST_SIZE} test samples"

    choose(qtbot, browser.filter, "mistakes")
    off_diagonal = int(view.confusion.sum() - np.trace(view.confusion))
    assert off_diagonal > 0  # two epochs leave some mistakes to look at
    assert browser.model.rowCount() == off_diagonal
    table = browser.model.table
    shown = browser.shown()
    assert (table["true"][shown] != table["pred"][shown]).all()
    choose(qtbot, browser.order, "confidence: lowest")
    confidence = table["confidence"][browser.shown()]
    assert (np.diff(confidence) >= 0).all()
    assert browser.model.data(browser.model.index(0, 0), Qt.ItemDataRole.DecorationRole)

    choose(qtbot, browser.filter, "class 3")
    threes = browser.shown()
    assert len(threes) == view.confusion[3].sum() and (table["true"][threes] == 3).all()

    assert view.per_class.rowCount() == 10 + 2  # the classes, then macro and weighted means
    support = [int(view.per_class.item(r, 4).text()) for r in range(10)]
    assert support == view.confusion.sum(axis=1).tolist()

    qtbot.mouseClick(view.details.tabBar(), LEFT, pos=view.details.tabBar().tabRect(0).center())
    explanation = view.explanation
    with qtbot.waitSignal(explanation.explained, timeout=EXPLAINED):
        click_row(qtbot, browser.view, 2)
    sample = int(threes[2])
    predicted = int(table["pred"][sample])
    assert explanation.cls.currentIndex() == predicted  # the predicted class first
    explainer = result["explainer"]
    x = {"image": result["test_inputs"]["inputs"]["image"][sample : sample + 1]}
    expected = saliency_map(explainer.saliency(x, predicted)["image"])[0]
    np.testing.assert_allclose(explanation.result["saliency"], expected)
    assert not explanation.pictures["saliency"].pixmap().isNull()
    assert explanation.cam_block.currentText() == "conv_2"  # the last convolution
    first = explanation.result["grad_cam"]
    other = "0" if predicted != 0 else "1"
    with qtbot.waitSignal(explanation.explained, timeout=EXPLAINED):
        choose(qtbot, explanation.cls, other)
    assert explanation.result["grad_cam"].shape == (8, 8)
    assert not np.allclose(explanation.result["grad_cam"], first)
    with qtbot.waitSignal(explanation.explained, timeout=EXPLAINED):
        choose(qtbot, explanation.act_block, "pool_1")
    assert explanation.result["activations"].shape == (4, 4, 16)

    qtbot.mouseClick(view.details.tabBar(), LEFT, pos=view.details.tabBar().tabRect(1).center())
    assert view.curves.isVisible()
    items = view.curves.left.getPlotItem().listDataItems()
    assert len(items) == 1 + 10  # the diagonal, then one ROC curve per class


def test_a_regression_run_shows_residuals_and_its_samples(qtbot):
    backend = NumpyBackend()
    backend.build(load(SAMPLES / "diabetes_regression.json"))
    result = summarize(backend, None)
    view = EvaluationView()
    qtbot.addWidget(view)
    view.resize(1000, 900)
    view.show()
    view.show_result(result, "regression")
    qtbot.waitExposed(view)
    report = next(iter(result["heads"].values()))
    size = result["test"]["size"]
    assert view.browser.model.rowCount() == size
    choose(qtbot, view.browser.order, "error: largest")
    errors = report["table"]["error"][view.browser.shown()]
    assert (np.diff(errors) <= 0).all()
    first = view.browser.model.index(0, 4).data()
    assert first == f"{errors[0]:.4g}"
    assert view.per_class.rowCount() == 0
    (scatter,) = [i for i in view.curves.left.getPlotItem().items if hasattr(i, "points")]
    residual = report["residuals"]["residual"]
    np.testing.assert_allclose(scatter.getData()[1], residual)
    np.testing.assert_allclose(residual, report["residuals"]["true"] - report["residuals"]["pred"])
    text = view.browser.model.index(0, 0).data()  # a table's values, as text
    assert text and "," in text


def test_a_flat_image_model_shows_its_saliency_as_a_picture(qtbot):
    backend = NumpyBackend()
    backend.build(load(SAMPLES / "digits_mlp.json"))
    result = summarize(backend, None)
    view = EvaluationView()
    qtbot.addWidget(view)
    view.resize(1000, 900)
    view.show()
    view.show_result(result, "digits")
    qtbot.waitExposed(view)
    assert view.explanation.cam_block.count() == 0  # no feature maps: no Grad-CAM
    with qtbot.waitSignal(view.explanation.explained, timeout=EXPLAINED):
        click_row(qtbot, view.browser.view, 0)
    shown = view.explanation.result
    pixels = result["test_inputs"]["inputs"]["pixels"][:1]
    predicted = int(result["heads"]["digit"]["table"]["pred"][0])
    gradient = result["explainer"].saliency({"pixels": pixels}, predicted)["pixels"]
    np.testing.assert_allclose(shown["saliency"], np.abs(gradient).reshape(8, 8))
    assert shown["grad_cam"] is None and not view.explanation.pictures["input"].pixmap().isNull()


def test_text_token_and_table_inputs_are_listed_as_text(qtbot):
    from nodenet.ui.training.evaluation_browser import SampleTable

    table = SampleTable()
    report = {
        "task": "classification",
        "classes": ["neg", "pos"],
        "table": {
            "true": np.array([0, 1]),
            "pred": np.array([1, 1]),
            "confidence": np.array([0.75, 0.5], dtype=np.float32),
            "correct": np.array([False, True]),
        },
    }
    table.reset(report, np.array(["a fine film", "x" * 200]), None, None)
    assert table.index(0, 0).data() == "a fine film"
    assert table.index(1, 0).data() == "x" * 79 + "…"
    assert [table.index(0, c).data() for c in (1, 2, 3, 4)] == ["0", "neg", "pos", "0.750"]
    table.reset(report, np.array([[4, 8, 15, 16, 23, 42, 7], [1, 2, 3, 0, 0, 0, 0]]), None, None)
    assert table.index(0, 0).data() == "4, 8, 15, 16, 23, 42 …"
    stats = {"method": "standard", "mean": np.array([10.0, 0.0]), "std": np.array([2.0, 1.0])}
    table.reset(report, np.array([[1.0, 0.5], [0.0, 0.0]]), stats, None)
    assert table.index(0, 0).data() == "12, 0.5"  # the normalization undone

"""The user's own image folder in the Run panel's Data tab, with real clicks and typing:
choose "Image folder", type its path and the image size, see thumbnails with their
classes, the files per class and split, the unreadable file named; "Use for the graph"
sets the Input and the head in one undo step; Run trains on it."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from docs.tutorial_steps import choose, type_into
from nodenet.graph.project import Edge, Node, Project, save
from nodenet.ui.document import Document
from nodenet.ui.training import TrainingPanel

Image = pytest.importorskip("PIL.Image", reason="Pillow reads the images of folder datasets")

TIMEOUT = 120_000
LEFT = Qt.MouseButton.LeftButton
CLASSES = ("circle", "square")


def make_folder(root) -> None:
    """Two classes of 12 small images each (a bright disc or a bright square on black),
    and one file that is not an image."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16]
    for label, name in enumerate(CLASSES):
        folder = root / "shapes" / name
        folder.mkdir(parents=True)
        for i in range(12):
            cy, cx = rng.integers(6, 10, size=2)
            if label == 0:
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= 16
            else:
                mask = (abs(yy - cy) <= 3) & (abs(xx - cx) <= 3)
            pixels = np.zeros((16, 16, 3), np.uint8)
            pixels[mask] = (230, 200, 40)
            Image.fromarray(pixels).save(folder / f"{name}_{i:02d}.png")
    (root / "shapes" / "square" / "broken.png").write_bytes(b"not a png at all")


def project() -> Project:
    nodes = [
        Node("pixels", "Input", {"shape": [4]}, [0.0, 0.0]),
        Node("flat", "Flatten", {}, [260.0, 0.0]),
        Node("head", "Dense", {"units": 7}, [520.0, 0.0]),
        Node("label", "Output", {"loss": "mean_squared_error"}, [780.0, 0.0]),
    ]
    edges = [Edge("pixels", "flat"), Edge("flat", "head"), Edge("head", "label")]
    p = Project("shapes", nodes, edges)
    p.training.update(epochs=3, batch_size=8, early_stopping=None)
    p.data = {"source": {"kind": "builtin", "name": "digits"}}
    return p


def _test_files(data) -> set[str]:
    """The test split's file names the preview shows (a few per class)."""
    samples = data.folder_preview.summary["samples"]
    return {s["file"].rsplit("/", 1)[-1] for s in samples if s["split"] == "test"}


@pytest.fixture
def panel(qtbot, tmp_path):
    make_folder(tmp_path)
    path = tmp_path / "shapes.json"
    save(project(), path)
    from nodenet.graph.project import load

    document = Document(load(path))
    panel = TrainingPanel(document, batch_interval=0.0)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    qtbot.waitExposed(panel)
    panel.tabs.setCurrentWidget(panel.tabs.widget(0))
    yield panel
    panel.shutdown()


def test_an_image_folder_is_previewed_applied_to_the_graph_and_trained(qtbot, panel):
    data = panel.data_panel
    document = panel.document
    with qtbot.waitSignal(data.loader.failed, timeout=TIMEOUT) as failed:
        choose(data.kind, "Image folder")
    assert "path" in failed.args[0]  # no folder chosen yet: said, not a crash
    with qtbot.waitSignal(data.loader.described, timeout=TIMEOUT):
        type_into(data.path, "shapes")
    with qtbot.waitSignal(data.loader.checked, timeout=TIMEOUT):
        type_into(data.folder_forms["image_directory"].editor("image_size"), "16, 16")
    source = document.project.data["source"]
    assert source == {"kind": "image_directory", "path": "shapes", "image_size": [16, 16]}
    preview = data.folder_preview
    assert preview.isVisible() and not data.preview.isVisible()
    assert "25 files" in preview.header.text() and "2 classes" in preview.header.text()
    captions = [w.text() for w in preview.samples.findChildren(QLabel) if w.text() in CLASSES]
    assert sorted(set(captions)) == list(CLASSES)
    thumbnails = [w for w in preview.samples.findChildren(QLabel) if w.pixmap() is not None]
    assert thumbnails and not thumbnails[0].pixmap().isNull()
    assert preview.counts.rowCount() == 2  # a row per class
    # the graph does not fit the folder yet: the status says so, naming the Input
    assert "pixels" in data.status.text()
    assert "(16, 16, 3)" in preview.suggestion.text()
    before = document.undo_stack.count()
    with qtbot.waitSignal(data.loader.checked, timeout=TIMEOUT) as checked:
        qtbot.mouseClick(preview.apply_button, LEFT)
    assert checked.args[0]["ok"], checked.args[0]
    assert document.undo_stack.count() == before + 1  # one undo step
    nodes = {n.id: n.params for n in document.project.nodes}
    assert nodes["pixels"]["shape"] == [16, 16, 3]
    assert nodes["head"]["units"] == 2 and nodes["head"]["activation"] == "softmax"
    assert nodes["label"]["loss"] == "sparse_categorical_crossentropy"
    with qtbot.waitSignal(data.loader.checked, timeout=TIMEOUT):
        type_into(data.split_form.editor("test"), "0.25")
    with qtbot.waitSignal(panel.trainingFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(panel.run_button, LEFT)
    history = finished.args[0]["history"]
    assert len(history["loss"]) == 3 and np.isfinite(history["loss"]).all()
    bar = panel.tabs.tabBar()
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(3).center())  # the Evaluation tab
    confusion = panel.evaluation.confusion
    test_files = sum(panel.data_panel.folder_preview.summary["counts"]["test"].values())
    readable = test_files - ("broken.png" in _test_files(data))
    assert confusion.shape == (2, 2) and confusion.sum() == readable
    # the unreadable file was skipped and named, not a crash
    assert "broken.png" in preview.problems.text() or "broken.png" in panel.message.text()
    document.undo()  # the split
    document.undo()  # the graph edit, as one step
    assert {n.id: n.params for n in document.project.nodes}["pixels"]["shape"] == [4]

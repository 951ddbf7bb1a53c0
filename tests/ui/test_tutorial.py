"""docs/tutorial.md works as written: its steps (docs/tutorial_steps.py, the same code that
takes the tutorial's screenshots) run through the real window with real gestures, and end
with the project the tutorial offers for download, trained and exported."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[2] / "docs"


def load_steps():
    spec = importlib.util.spec_from_file_location("tutorial_steps", DOCS / "tutorial_steps.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("tutorial_steps", module)
    spec.loader.exec_module(module)
    return module


steps = load_steps()


def comparable(project: dict) -> dict:
    """What the tutorial builds: blocks with their types and parameters, links, settings
    (positions left out: they follow the screen the steps ran on)."""
    return {
        "name": project["name"],
        "nodes": sorted(
            (n["id"], n["type"], json.dumps(n["params"], sort_keys=True)) for n in project["nodes"]
        ),
        "edges": sorted((e["from"], e["to"], e["port"]) for e in project["edges"]),
        "training": project["training"],
        "data": project["data"],
    }


@pytest.fixture
def window(qtbot):
    window = steps.start_window()
    qtbot.addWidget(window, before_close_func=lambda w: w.document.undo_stack.setClean())
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.training_panel.shutdown()


@pytest.mark.slow
def test_the_tutorial_builds_trains_saves_and_exports_the_documented_project(
    qtbot, window, tmp_path
):
    finished = []
    window.training_panel.trainingFinished.connect(finished.append)
    for step in steps.STEPS:
        step.run(qtbot, window, tmp_path)

    saved = json.loads((tmp_path / "two_branch.json").read_text())
    documented = json.loads(steps.PROJECT.read_text())
    assert comparable(saved) == comparable(documented)
    assert window.document.analysis.ok and not window.document.is_dirty()

    # the tutorial's real settings: 30 epochs; it promises about 97% on the test split
    (result,) = finished
    assert result["epochs"] == 30
    assert result["test"]["metrics"]["accuracy"] >= 0.95
    assert window.training_panel.evaluation.confusion.sum() == 359  # 20% of 1,797
    for name in ("two_branch.weights.npz", "two_branch_keras.py", "two_branch_torch.py"):
        assert (tmp_path / name).is_file(), name
    for suffix in ("keras", "torch"):
        assert (tmp_path / f"two_branch_{suffix}_weights.npz").is_file(), suffix
    assert "import keras" in (tmp_path / "two_branch_keras.py").read_text()
    assert "import torch" in (tmp_path / "two_branch_torch.py").read_text()


def test_the_tutorial_shows_the_picture_of_every_step():
    text = (DOCS / "tutorial.md").read_text()
    shown = set(re.findall(r"\(images/tutorial/([\w-]+)\.png\)", text))
    pictured = {step.name for step in steps.STEPS if step.shot is not None}
    assert shown == pictured
    for name in pictured:
        assert (DOCS / "images" / "tutorial" / f"{name}.png").is_file(), name
    assert "tutorial/two_branch.json" in text  # offered for download

"""The first minutes of a new user: the window fits the screen, the graph is in view,
Ctrl+R on the canvas brings the Run panel forward with curves a person can read.

Each screen size runs in its own process (:mod:`tests.ui.run_view_probe`): Qt fixes
the screen when the application starts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nodenet.graph.project import load
from nodenet.ui.window_layout import PLOT_HEIGHT

ROOT = Path(__file__).parents[2]
SAMPLES = ROOT / "sample_projects"


def probe(width: int, height: int, sample: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.ui.run_view_probe", str(width), str(height), str(sample)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only: the probe takes seconds
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def inside(rect: list[int], outer: list[int]) -> bool:
    x, y, w, h = rect
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh


@pytest.fixture(scope="module", params=[(1920, 1080), (1366, 768)], ids=["1920x1080", "1366x768"])
def report(request, tmp_path_factory) -> dict:
    sample = tmp_path_factory.mktemp("run_view") / "digits_mlp.json"
    shutil.copy(SAMPLES / "digits_mlp.json", sample)  # the trained weights land beside it
    return probe(*request.param, sample)


def test_the_window_fits_the_available_screen(report):
    assert inside(report["frame"], report["available"]), report
    width, height = report["window"]
    whole = [0, 0, width, height]
    for name in ("palette", "inspector", "summary"):
        assert report["docks"][name] is not None, f"the {name} dock is not on screen"
        assert inside(report["docks"][name], whole), name
    assert report["status_bar"] is not None and inside(report["status_bar"], whole)


def test_the_graph_opens_with_every_block_in_view(report):
    expected = sorted(n.id for n in load(SAMPLES / "digits_mlp.json").nodes)
    assert report["blocks_in_view"] == expected
    assert report["zoom"] >= 0.6  # cards show their type, id, settings and shape


def test_ctrl_r_on_the_canvas_brings_the_run_view_forward_with_tall_curves(report):
    assert report["started"] and report["trained_an_epoch"] and report["finished"]
    width, height = report["window"]
    for moment in ("during", "after"):
        view = report[moment]
        assert view["dock"] is not None, f"{moment}: the Run panel is hidden behind another tab"
        assert view["curves_tab"], moment
        assert {"loss", "accuracy"} <= set(view["plots"]), view["plots"]
        for key, plot in view["plots"].items():
            if key != "learning_rate":
                assert plot["shown"], (moment, key)
                assert plot["height"] >= PLOT_HEIGHT, (moment, key, plot)
        # the canvas gave the Run panel its room and still shows the whole graph
        assert view["blocks_in_view"] == report["blocks_in_view"], moment
        for control in ("run_button", "stop_button", "evaluate_button", "progress"):
            assert view[control] is not None, (moment, control)
            assert inside(view[control], [0, 0, width, height]), (moment, control)

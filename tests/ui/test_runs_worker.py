"""The GUI's training worker records each run of a saved project in NAME.runs.sqlite, as its
signals reported it; an unsaved project is not recorded."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject, Slot

from nodenet.graph.project import load
from nodenet.runs_db import RunsDB, runs_path
from nodenet.ui.training.worker import TrainingController

SAMPLE = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"
TIMEOUT = 180_000


class Signals(QObject):
    """The worker's epochEnd and finished signals, received on the GUI thread."""

    def __init__(self):
        super().__init__()
        self.epochs, self.result, self.error = [], None, None

    def attach(self, worker) -> None:
        worker.epochEnd.connect(self.on_epoch)
        worker.finished.connect(self.on_finished)
        worker.failed.connect(self.on_failed)

    @Slot(object)
    def on_epoch(self, event):
        self.epochs.append(event)

    @Slot(object)
    def on_finished(self, result):
        self.result = result

    @Slot(str)
    def on_failed(self, message):
        self.error = message


def train(qtbot, project) -> Signals:
    controller = TrainingController()
    signals = Signals()
    controller.start(project, connect=signals.attach, batch_interval=0.0)
    with qtbot.waitSignal(controller.threadFinished, timeout=TIMEOUT):
        pass
    assert signals.error is None
    return signals


@pytest.fixture
def project(tmp_path):
    path = tmp_path / "digits_mlp.json"
    shutil.copy(SAMPLE, path)
    project = load(path)
    project.training["epochs"] = 2
    project.training["early_stopping"] = None
    return project


def test_each_gui_run_is_recorded_as_its_signals_reported_it(qtbot, project):
    first = train(qtbot, project)
    project.training["optimizer"] = {"name": "sgd", "learning_rate": 0.05}
    second = train(qtbot, project)
    assert (first.result["run_id"], second.result["run_id"]) == (1, 2)
    assert first.result["runs_error"] is None
    with RunsDB(runs_path(project.path)) as db:  # as a reopened project reads them
        runs = [db.get(1), db.get(2)]
        kept = [db.weights_file(run) for run in runs]
    for run, signals, weights in zip(runs, (first, second), kept, strict=True):
        assert run["status"] == "finished" and run["source"] == "gui"
        assert [e["epoch"] for e in run["epochs"]] == [1, 2]
        for stored, event in zip(run["epochs"], signals.epochs, strict=True):
            assert {k: stored[k] for k in event.metrics} == dict(event.metrics)
        assert run["test_metrics"] == signals.result["test"]["metrics"]
        with np.load(weights) as saved:
            for key, value in signals.result["weights"].items():
                np.testing.assert_array_equal(saved[key], value)
    assert (
        runs[0]["project"]["training"].get("optimizer")
        != runs[1]["project"]["training"]["optimizer"]
    )
    assert runs[1]["project"]["training"]["optimizer"]["name"] == "sgd"


def test_an_unsaved_project_is_not_recorded(qtbot, project, tmp_path):
    project.path = None
    signals = train(qtbot, project)
    assert signals.result["run_id"] is None and signals.result["runs_error"] is None
    assert not list(tmp_path.glob("*.sqlite"))


@pytest.mark.slow
def test_a_gui_run_killed_mid_run_is_kept_up_to_its_last_epoch_as_interrupted(tmp_path):
    path = tmp_path / "digits_mlp.json"
    shutil.copy(SAMPLE, path)
    db_path = runs_path(path)
    root = Path(__file__).parents[2]
    app = subprocess.Popen(
        [sys.executable, "-m", "tests.ui.runs_crash_app", str(path)],
        cwd=root,
        stderr=subprocess.PIPE,
        text=True,
    )
    epochs, deadline = 0, time.monotonic() + 180
    while epochs < 2 and time.monotonic() < deadline and app.poll() is None:
        time.sleep(0.2)
        if db_path.exists():
            with RunsDB(db_path) as db:
                epochs = len(db.get(1)["epochs"]) if db.list() else 0
    assert epochs >= 2, app.stderr.read() if app.poll() is not None else "no epoch in 180 s"
    os.kill(app.pid, signal.SIGKILL)
    app.wait()
    with RunsDB(db_path) as db:  # as the app reopening the project reads it
        run = db.get(1)
    assert run["status"] == "interrupted" and run["source"] == "gui"
    finished = [e["epoch"] for e in run["epochs"]]
    assert finished == list(range(1, len(finished) + 1)) and len(finished) >= epochs
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

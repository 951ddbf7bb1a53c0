"""`nodenet train` records its runs; `nodenet runs` lists, shows, exports, renames and deletes
them; concurrent writers leave the database whole; a killed run is kept as interrupted."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nodenet.cli import main
from nodenet.runs_db import RunsDB

SAMPLES = Path(__file__).parent.parent / "sample_projects"


def copy_sample(tmp_path: Path, **training) -> Path:
    doc = json.loads((SAMPLES / "digits_mlp.json").read_text())
    doc["training"].update(training)
    path = tmp_path / "digits_mlp.json"
    path.write_text(json.dumps(doc))
    return path


def run_json(capsys, *argv: str):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """Two recorded 2-epoch runs of the digits sample, and the second's history file."""
    folder = tmp_path_factory.mktemp("trained")
    path = copy_sample(folder, epochs=2)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["train", str(path), "--quiet"]) == 0
        out.seek(0)
        out.truncate()
        assert main(["train", str(path), "--quiet", "--json"]) == 0
    return folder, json.loads(out.getvalue())


@pytest.fixture
def trained(trained_once, tmp_path):
    """A copy of those runs' folder, to change at will."""
    folder, history = trained_once
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    return tmp_path / "digits_mlp.json", history


def test_train_records_the_run_as_its_history_file_tells_it(trained, capsys):
    path, history = trained
    runs = run_json(capsys, "runs", str(path), "--json")
    assert [r["id"] for r in runs] == [1, 2]
    assert all(r["status"] == "finished" and r["source"] == "cli" for r in runs)
    run = run_json(capsys, "runs", str(path), "show", "2", "--json")
    for key, values in history["history"].items():  # what train wrote in the history JSON
        assert [e[key] for e in run["epochs"]] == values, key
    assert run["test_metrics"] == history["test"]
    assert run["final_metrics"]["val_accuracy"] == history["history"]["val_accuracy"][-1]
    assert run["backend"] == "numpy" and run["seed"] == 1671
    assert run["project"]["training"]["epochs"] == 2
    assert run["prepared"]["test"] == 359
    kept = path.parent / run["weights"]
    assert kept.read_bytes() == (path.parent / "digits_mlp.weights.npz").read_bytes()
    assert 0 < len(run["batches"]) <= 2 * run["prepared"]["batches"]


def test_the_table_rename_annotate_delete(trained, capsys):
    path, history = trained
    assert main(["runs", str(path), "rename", "1", "baseline"]) == 0
    assert main(["runs", str(path), "annotate", "1", "the first"]) == 0
    capsys.readouterr()
    assert main(["runs", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "id", "name", "status", "when", "duration", "backend", "val_accuracy", "test", "accuracy"
    ]  # fmt: skip
    assert lines[1].split()[:3] == ["1", "baseline", "finished"]
    assert f"{history['test']['accuracy']:.4g}" in lines[2]
    assert main(["runs", str(path), "show", "1"]) == 0
    shown = capsys.readouterr().out
    assert "run 1: baseline" in shown and "note: the first" in shown
    assert main(["runs", str(path), "delete", "1"]) == 0
    assert [r["id"] for r in run_json(capsys, "runs", str(path), "--json")] == [2]
    assert not (path.parent / "digits_mlp.runs" / "1.weights.npz").exists()
    assert main(["runs", str(path), "show", "1"]) == 1
    assert "no run 1" in capsys.readouterr().err


def test_export_csv_holds_every_epoch(trained, capsys, tmp_path):
    path, history = trained
    out = tmp_path / "runs.csv"
    assert main(["runs", str(path), "export", "--csv", "-o", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["run"], r["epoch"]) for r in rows] == [
        ("1", "1"),
        ("1", "2"),
        ("2", "1"),
        ("2", "2"),
    ]
    second = [r for r in rows if r["run"] == "2"]
    assert [float(r["val_loss"]) for r in second] == history["history"]["val_loss"]


def test_tensorboard_export_says_what_it_needs(trained, capsys, tmp_path):
    path, _ = trained
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorboardX is installed: the event files are written")
    assert main(["runs", str(path), "export", "--tensorboard", str(tmp_path / "tb")]) == 1
    assert "pip install tensorboardX" in capsys.readouterr().err


def test_no_record_and_no_database_yet(tmp_path, capsys):
    path = copy_sample(tmp_path, epochs=1)
    assert main(["train", str(path), "--quiet", "--no-record"]) == 0
    assert not (tmp_path / "digits_mlp.runs.sqlite").exists()
    capsys.readouterr()
    assert main(["runs", str(path)]) == 0
    assert "no runs recorded yet" in capsys.readouterr().err
    assert run_json(capsys, "runs", str(path), "--json") == []
    assert not (tmp_path / "digits_mlp.runs.sqlite").exists()


def test_a_database_file_another_process_has_only_just_created_lists_no_runs(tmp_path, capsys):
    """Between a trainer creating the file and writing its first page the file is empty: a
    reader listing the runs then sees none, not an error (nor does it write the file)."""
    path = copy_sample(tmp_path, epochs=1)
    db = tmp_path / "digits_mlp.runs.sqlite"
    db.touch()
    assert run_json(capsys, "runs", str(path), "--json") == []
    assert main(["runs", str(path)]) == 0
    assert "no runs recorded yet" in capsys.readouterr().err
    assert db.stat().st_size == 0
    assert main(["train", str(path), "--quiet"]) == 0
    capsys.readouterr()
    assert [r["status"] for r in run_json(capsys, "runs", str(path), "--json")] == ["finished"]


def test_a_damaged_database_is_refused_and_training_goes_on_unrecorded(tmp_path, capsys):
    path = copy_sample(tmp_path, epochs=1)
    db = tmp_path / "digits_mlp.runs.sqlite"
    db.write_bytes(b"not a database at all")
    assert main(["runs", str(path)]) == 1
    assert "digits_mlp.runs.sqlite: not an SQLite database" in capsys.readouterr().err
    assert main(["train", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "the run is not recorded" in err and "not an SQLite database" in err
    assert (tmp_path / "digits_mlp.weights.npz").exists()
    assert db.read_bytes() == b"not a database at all"


# -- processes --------------------------------------------------------------------------------


def nodenet(*argv: str, **options) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nodenet", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


@pytest.mark.slow
def test_two_trainers_and_a_reader_leave_a_whole_database(tmp_path):
    """Over 200 writes from two processes training at once (4 runs of 60 epochs, each epoch
    its own transaction) while a third lists the runs in a loop."""
    path = copy_sample(tmp_path, epochs=60, batch_size=512, early_stopping=None)

    def runs_of(trainer: int) -> list[str]:
        return [
            shlex.join(
                [
                    sys.executable,
                    "-m",
                    "nodenet",
                    "train",
                    str(path),
                    "--quiet",
                    "--weights-out",
                    str(tmp_path / f"t{trainer}_{k}.weights.npz"),
                ]
            )
            for k in range(2)
        ]

    trainers = [
        subprocess.Popen(["sh", "-c", " && ".join(runs_of(t))], stderr=subprocess.PIPE)
        for t in range(2)
    ]
    reads = 0
    while any(t.poll() is None for t in trainers):
        reader = nodenet("runs", str(path), "--json")
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err
        assert isinstance(json.loads(out), list)
        reads += 1
    for trainer in trainers:
        assert trainer.wait() == 0, trainer.stderr.read()
    assert reads >= 2
    conn = sqlite3.connect(tmp_path / "digits_mlp.runs.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    with RunsDB(tmp_path / "digits_mlp.runs.sqlite") as db:
        runs = [db.get(r["id"]) for r in db.list()]
    assert len(runs) == 4 and all(r["status"] == "finished" for r in runs)
    assert all([e["epoch"] for e in r["epochs"]] == list(range(1, 61)) for r in runs)
    assert all(r["test_metrics"] for r in runs)


@pytest.mark.slow
def test_a_killed_run_is_kept_up_to_its_last_finished_epoch(tmp_path, capsys):
    path = copy_sample(tmp_path, epochs=500, early_stopping=None)
    db_path = tmp_path / "digits_mlp.runs.sqlite"
    proc = nodenet("train", str(path), "--quiet")
    deadline = time.monotonic() + 180
    epochs = 0
    while epochs < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db_path.exists():
            with RunsDB(db_path) as db:
                runs = db.list()
                epochs = len(db.get(1)["epochs"]) if runs else 0
                assert not runs or runs[0]["status"] == "running"
    assert epochs >= 1, proc.stderr.read() if proc.poll() is not None else "no epoch in 180 s"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    runs = run_json(capsys, "runs", str(path), "--json")
    assert [r["status"] for r in runs] == ["interrupted"]
    assert f"pid {proc.pid}" in runs[0]["message"]
    with RunsDB(db_path) as db:
        run = db.get(1)
    finished = [e["epoch"] for e in run["epochs"]]
    assert finished == list(range(1, len(finished) + 1)) and len(finished) >= epochs
    assert all(np.isfinite(e["loss"]) for e in run["epochs"])
    assert run["ended"] >= run["started"] and run["weights"] is None
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@pytest.mark.slow
def test_a_pytorch_run_is_recorded_by_its_events_as_a_numpy_one(tmp_path, capsys):
    pytest.importorskip("torch", reason="the torch backend needs PyTorch")
    path = copy_sample(tmp_path, epochs=2)
    history = run_json(capsys, "train", str(path), "--quiet", "--json", "--backend", "torch")
    run = run_json(capsys, "runs", str(path), "show", "1", "--json")
    assert run["backend"] == "torch" and run["device"] == "cpu" and run["status"] == "finished"
    for key, values in history["history"].items():
        assert [e[key] for e in run["epochs"]] == values, key
    assert run["test_metrics"] == history["test"] and run["batches"]

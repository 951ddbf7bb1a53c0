"""The runs database: schema and migrations, refusals that leave the file as it was, what a
run keeps (epochs, thinned batches, how it ended), retention, interrupted runs, and the
Recorder fed by typed events."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nodenet import runs_schema
from nodenet.engine.events import BatchEnd, EpochEnd, Failed, Finished, History, Prepared
from nodenet.graph.project import load
from nodenet.runs_db import MAX_BATCH_POINTS, RunsDB, RunsDBError, runs_path, weights_folder
from nodenet.runs_recorder import Recorder, start_recording

SAMPLE = Path(__file__).parent.parent / "sample_projects" / "digits_mlp.json"


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "p.runs.sqlite"


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection, as another tool would open the file."""
    return sqlite3.connect(path, isolation_level=None)


# -- the file and its schema --------------------------------------------------------------------


def test_a_new_database_has_the_documented_schema_in_wal_mode(db_path):
    RunsDB(db_path).close()
    conn = raw(db_path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "runs", "epochs", "batches"} <= tables
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == "1" and meta["keep_weights"] == "20"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x4E4E5255
    columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    for column in ("study", "trial", "pid", "heartbeat", "project", "test_metrics", "weights"):
        assert column in columns
    assert runs_path("/x/digits.json") == Path("/x/digits.runs.sqlite")
    assert weights_folder(Path("/x/digits.runs.sqlite")) == Path("/x/digits.runs")


def test_an_older_schema_is_migrated_and_keeps_its_runs(db_path, monkeypatch):
    with RunsDB(db_path) as db:
        run = db.start_run(name="before")
        db.epoch(run, 1, {"loss": 0.5})
    monkeypatch.setattr(runs_schema, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(runs_schema, "MIGRATIONS", {1: ["ALTER TABLE runs ADD COLUMN tags TEXT"]})
    with RunsDB(db_path) as db:
        assert db.get(run)["name"] == "before" and db.get(run)["epochs"][0]["loss"] == 0.5
        assert "tags" in db.get(run)
    conn = raw(db_path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("2",)


def test_a_newer_schema_is_refused_and_the_file_left_as_it_was(db_path):
    with RunsDB(db_path) as db:
        db.start_run(name="from the future")
    conn = raw(db_path)
    conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(RunsDBError, match=r"p\.runs\.sqlite: written by a newer nodenet .*7"):
        RunsDB(db_path)
    assert db_path.read_bytes() == before


def test_a_file_that_is_no_database_is_refused_untouched(db_path):
    db_path.write_bytes(b"this is a text file, not SQLite\n" * 100)
    before = db_path.read_bytes()
    with pytest.raises(RunsDBError, match="not an SQLite database"):
        RunsDB(db_path)
    assert db_path.read_bytes() == before


def test_a_damaged_database_is_refused_untouched(db_path):
    with RunsDB(db_path) as db:
        for n in range(40):
            run = db.start_run(name=f"run {n}", project={"nodes": ["x" * 500]})
            db.epoch(run, 1, {"loss": n})
    conn = raw(db_path)
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute("PRAGMA journal_mode = DELETE")  # everything in the main file
    conn.close()
    data = bytearray(db_path.read_bytes())
    assert len(data) > 6 * page
    data[2 * page : 5 * page] = b"\xa5" * (3 * page)  # three b-tree pages overwritten
    db_path.write_bytes(bytes(data))
    before = db_path.read_bytes()
    with pytest.raises(RunsDBError, match=r"damaged|not a usable"):
        RunsDB(db_path)
    assert db_path.read_bytes() == before


def test_another_programs_database_is_refused_untouched(db_path):
    conn = raw(db_path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(RunsDBError, match="not nodenet's runs database"):
        RunsDB(db_path)
    assert db_path.read_bytes() == before


def test_a_file_holding_an_optuna_study_gets_the_runs_tables_beside_it(db_path):
    conn = raw(db_path)  # the tables Optuna's storage creates first, by name
    conn.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)")
    conn.execute("CREATE TABLE alembic_version (version_num TEXT)")
    conn.execute("INSERT INTO studies VALUES (1, 'lr')")
    conn.close()
    with RunsDB(db_path) as db:
        run = db.start_run(study="lr", trial=0)
        assert db.get(run)["study"] == "lr"
    assert raw(db_path).execute("SELECT study_name FROM studies").fetchall() == [("lr",)]


def test_optuna_and_the_runs_share_one_file(db_path):
    optuna = pytest.importorskip("optuna", reason="Optuna is the sweeps' optional extra")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{db_path}"
    study = optuna.create_study(study_name="lr", storage=url)
    study.optimize(lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=2)
    with RunsDB(db_path) as db:
        db.start_run(study="lr", trial=1)
    assert len(optuna.load_study(study_name="lr", storage=url).trials) == 2
    with RunsDB(db_path) as db:
        assert [r["trial"] for r in db.list()] == [1]


def test_a_missing_database_is_not_created_when_not_asked(db_path):
    with pytest.raises(RunsDBError, match="no run of this project was recorded"):
        RunsDB(db_path, create=False)
    assert not db_path.exists()


# -- what a run keeps -----------------------------------------------------------------------


def test_a_run_round_trips_its_epochs_end_and_metrics(db_path):
    with RunsDB(db_path) as db:
        run = db.start_run(name="a", backend="numpy", seed=7, project={"training": {"epochs": 2}})
        db.epoch(run, 1, {"loss": 1.5, "val_loss": float("nan")})
        db.epoch(run, 2, {"loss": np.float32(0.25), "accuracy": np.float64(0.5)})
        db.finish(run, "early_stopped", final_metrics={"loss": 0.25}, best_epoch=2)
        db.set_test_metrics(run, {"accuracy": 0.75})
    with RunsDB(db_path) as db:
        got = db.get(run)
    assert got["epochs"] == [
        {"epoch": 1, "loss": 1.5, "val_loss": None},  # NaN is stored as null
        {"epoch": 2, "loss": 0.25, "accuracy": 0.5},
    ]
    assert got["status"] == "early_stopped" and got["best_epoch"] == 2
    assert got["final_metrics"] == {"loss": 0.25} and got["test_metrics"] == {"accuracy": 0.75}
    assert got["seed"] == 7 and got["project"] == {"training": {"epochs": 2}}
    assert got["duration"] == pytest.approx(got["ended"] - got["started"])
    assert got["pid"] == os.getpid()


def test_batch_losses_are_thinned_to_evenly_spaced_points(db_path):
    total = 5000
    with RunsDB(db_path) as db:
        run = db.start_run()
        for start in range(0, total, 250):  # in chunks, as the recorder flushes them
            db.batches(run, [(s + 1, 1, 1.0 / (s + 1)) for s in range(start, start + 250)])
        points = db.get(run)["batches"]
    steps = [p[0] for p in points]
    assert total // 8 <= len(steps) <= MAX_BATCH_POINTS
    gaps = set(np.diff(steps))
    assert len(gaps) == 1  # every k-th point, k a power of two
    (k,) = gaps
    assert k & (k - 1) == 0 and steps[0] == 1 and steps[-1] > total - k
    assert all(p[2] == pytest.approx(1.0 / p[0]) for p in points)


def test_list_sorts_and_filters_by_metric_and_text(db_path):
    with RunsDB(db_path) as db:
        for name, acc, status in [("lr 0.1", 0.7, "finished"), ("lr 0.01", 0.9, "finished")]:
            run = db.start_run(name=name)
            db.finish(run, status, final_metrics={"val_accuracy": acc})
        failed = db.start_run(name="broken")
        db.finish(failed, "failed", message="NaN loss")
        assert [r["name"] for r in db.list(sort_by="val_accuracy", descending=True)] == [
            "lr 0.01",
            "lr 0.1",
            "broken",  # without the metric: last
        ]
        assert [r["name"] for r in db.list(filter="val_accuracy>0.8")] == ["lr 0.01"]
        assert [r["name"] for r in db.list(filter="name~LR,status=finished")] == [
            "lr 0.1",
            "lr 0.01",
        ]
        assert db.list(filter="status=failed")[0]["message"] == "NaN loss"
        with pytest.raises(Exception, match="KEY=VALUE"):
            db.list(filter="what is this")


def test_rename_annotate_and_delete(db_path, tmp_path):
    weights = tmp_path / "w.npz"
    np.savez(weights, k=np.arange(3))
    with RunsDB(db_path) as db:
        run = db.start_run()
        db.epoch(run, 1, {"loss": 1.0})
        db.batch(run, 1, 1.0, epoch=1)
        db.finish(run, "finished", final_metrics={"loss": 1.0})
        kept = db.keep_weights(run, weights)
        assert kept == tmp_path / "p.runs" / "1.weights.npz" and kept.read_bytes() == (
            weights.read_bytes()
        )
        db.rename(run, "baseline")
        db.annotate(run, "first try")
        assert (db.get(run)["name"], db.get(run)["note"]) == ("baseline", "first try")
        db.delete(run)
        assert db.list() == [] and not kept.exists()
        with pytest.raises(Exception, match="no run 1"):
            db.rename(run, "gone")
    conn = raw(db_path)
    assert conn.execute("SELECT COUNT(*) FROM epochs").fetchone() == (0,)
    assert conn.execute("SELECT COUNT(*) FROM batches").fetchone() == (0,)


def test_retention_keeps_the_latest_runs_weights_and_the_best(db_path, tmp_path):
    weights = tmp_path / "w.npz"
    np.savez(weights, k=np.zeros(2))
    val_losses = [0.1, 0.9, 0.8, 0.7, 0.6, 0.5]  # run 1 is the best
    with RunsDB(db_path) as db:
        db.set_keep(3)
        for loss in val_losses:
            run = db.start_run()
            db.finish(run, "finished", final_metrics={"val_loss": loss})
            db.keep_weights(run, weights)
        kept = {r["id"] for r in db.list() if r["weights"]}
        assert len(db.list()) == 6  # the rows all stay
    assert kept == {1, 4, 5, 6}
    files = sorted(p.name for p in (tmp_path / "p.runs").iterdir())
    assert files == ["1.weights.npz", "4.weights.npz", "5.weights.npz", "6.weights.npz"]


# -- runs whose process died -------------------------------------------------------------------


def test_a_run_of_a_process_that_is_gone_is_shown_interrupted(db_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with RunsDB(db_path) as db:
        dead = db.start_run(pid=gone.pid)
        db.epoch(dead, 1, {"loss": 1.0})
        alive = db.start_run()  # this process
        reused = db.start_run()
        db.conn.execute("UPDATE runs SET pid_started = 'another process' WHERE id = ?", (reused,))
    with RunsDB(db_path) as db:
        runs = {r["id"]: r for r in db.list()}
    assert runs[dead]["status"] == "interrupted" and f"pid {gone.pid}" in runs[dead]["message"]
    assert runs[reused]["status"] == "interrupted"
    assert runs[alive]["status"] == "running"
    assert runs[dead]["ended"] == runs[dead]["heartbeat"]


# -- the recorder --------------------------------------------------------------------------------


def events(stopped=None):
    history = History(
        epochs=[{"loss": 2.0, "epoch_seconds": 0.1}, {"loss": 1.0, "epoch_seconds": 0.1}],
        stopped=stopped,
    )
    out = [Prepared(90, 10, 0, 2, 3, 32, 100, ("y",))]
    for epoch in (1, 2):
        for batch in (1, 2, 3):
            step = (epoch - 1) * 3 + batch
            out.append(BatchEnd(epoch, 2, batch, 3, step, {"loss": 9.0}, 10.0 - step, 1.0))
        out.append(EpochEnd(epoch, 2, {"loss": 3.0 - epoch}, epoch * 3, 0.1))
    return out, history


@pytest.mark.parametrize(
    ("stopped", "status"),
    [(None, "finished"), ("early_stopping", "early_stopped"), ("user", "stopped")],
)
def test_the_recorder_records_a_run_from_its_events(db_path, stopped, status):
    seen = []
    stream, history = events(stopped)
    with RunsDB(db_path) as db:
        run = db.start_run()
        recorder = Recorder(RunsDB(db_path), run)
        sink = recorder.wrap(seen.append)
        for event in [*stream, Finished(history, 6, 540, 0.2)]:
            sink(event)
        recorder.done(test={"loss": 1.25})
        got = db.get(run)
    assert len(seen) == len(stream) + 1  # every event goes on to the caller's sink
    assert got["status"] == status and got["final_metrics"] == {"loss": 1.0}
    assert [e["loss"] for e in got["epochs"]] == [2.0, 1.0]
    assert got["epochs"][0]["epoch_seconds"] == 0.1
    assert got["batches"] == [[s, 1 + (s > 3), 10.0 - s] for s in range(1, 7)]
    assert got["prepared"]["train"] == 90 and got["test_metrics"] == {"loss": 1.25}


def test_a_failed_run_keeps_its_message_and_finished_epochs(db_path):
    stream, _ = events()
    with RunsDB(db_path) as db:
        run = db.start_run()
        recorder = Recorder(RunsDB(db_path), run)
        for event in [*stream[:5], Failed("the loss became NaN at epoch 2")]:
            recorder(event)
        recorder.done()
        got = db.get(run)
    assert got["status"] == "failed" and got["message"] == "the loss became NaN at epoch 2"
    assert [e["epoch"] for e in got["epochs"]] == [1]


def test_an_exception_leaving_the_run_marks_it(db_path):
    with RunsDB(db_path) as db:
        run = db.start_run()
    recorder = Recorder(RunsDB(db_path), run)
    with pytest.raises(KeyboardInterrupt):
        try:
            raise KeyboardInterrupt
        finally:
            recorder.abandon()
    with RunsDB(db_path) as db:
        assert db.get(run)["status"] == "interrupted"


def test_recording_a_saved_project_and_not_an_unsaved_one(tmp_path):
    path = tmp_path / "digits_mlp.json"
    path.write_text(SAMPLE.read_text())
    project = load(path)

    class Built:  # what start_recording reads of a built backend
        name, device, training = "numpy", "cpu", {"seed": 5}

    recorder = start_recording(project, Built(), source="test")
    assert recorder.on and recorder.run_id == 1
    recorder.close()
    with RunsDB(runs_path(path)) as db:
        run = db.get(1)
    assert run["status"] == "failed" and run["seed"] == 5 and run["source"] == "test"
    assert run["project"] == json.loads(project.to_json())
    assert run["machine"]["cores"] == os.cpu_count() and run["project_file"] == str(path)
    project.path = None
    assert not start_recording(project, Built(), source="test").on


def test_an_unusable_database_turns_recording_off_with_the_reason(tmp_path):
    path = tmp_path / "digits_mlp.json"
    path.write_text(SAMPLE.read_text())
    runs_path(path).write_bytes(b"garbage")
    recorder = start_recording(load(path), object(), source="test")
    assert not recorder.on and "digits_mlp.runs.sqlite" in recorder.error
    recorder(Failed("x"))  # a recorder that is off takes events and does nothing
    assert runs_path(path).read_bytes() == b"garbage"

"""`nodenet sweep`: specs parsed and checked against the project's descriptors, trials
recorded as runs linked to the Optuna study in the same file, pruning, parallel trials,
the best trial applied, and the comparison with the project's own settings."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna", reason="sweeps need the optional optuna extra")

from nodenet.cli import main
from nodenet.engine.catalog import LAYERS, block_class
from nodenet.engine.settings import TRAINING_PARAMS
from nodenet.graph.project import Node, Project, load
from nodenet.runs_db import RunsDB
from nodenet.sweep import _quotas, objective_of, require_optuna, thread_count
from nodenet.sweep_space import (
    SweepError,
    apply_trial,
    descriptor,
    parse_spec,
    resolve_spec,
    suggested_range,
    sweepable,
)

SAMPLES = Path(__file__).parent.parent / "sample_projects"
LR = "training.optimizer.learning_rate"


def copy_sample(tmp_path: Path, **training) -> Path:
    doc = json.loads((SAMPLES / "digits_mlp.json").read_text())
    doc["training"].update(training)
    path = tmp_path / "digits_mlp.json"
    path.write_text(json.dumps(doc))
    return path


def digits() -> Project:
    return load(SAMPLES / "digits_mlp.json")


def run_json(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def runs_of(path: Path) -> list[dict]:
    with RunsDB(path.with_name(path.stem + ".runs.sqlite")) as db:
        return [db.get(r["id"]) for r in db.list()]


# -- specs ------------------------------------------------------------------------------------


def test_specs_parse_each_kind():
    lr = parse_spec(f"{LR}=loguniform:1e-4:1e-1")
    assert (lr.key, lr.kind, lr.low, lr.high) == (LR, "loguniform", 1e-4, 0.1)
    units = parse_spec("nodes.hidden.units=int:16:256:16")
    assert (units.kind, units.low, units.high, units.step) == ("int", 16, 256, 16)
    assert units.grid() == list(range(16, 257, 16))
    assert parse_spec("nodes.d.rate=uniform:0:0.5").high == 0.5
    act = parse_spec("nodes.h.activation=categorical:relu,tanh,1,2.5,true,null")
    assert act.choices == ("relu", "tanh", 1, 2.5, True, None)
    assert parse_spec(units.text()) == units  # the spec round-trips through its text


@pytest.mark.parametrize(
    "text, says",
    [
        ("nodes.h.units", "KEY=KIND:ARGS"),
        ("nodes.h.units=normal:1:2", "one of uniform, loguniform, int, categorical"),
        ("nodes.h.units=int:8:4", "LOW (8) is above HIGH (4)"),
        (f"{LR}=loguniform:0:1", "loguniform needs LOW > 0"),
        ("nodes.h.units=int:1:8:0", "STEP must be at least 1"),
        ("nodes.h.units=int:1.5:8", "'1.5' is not a whole number"),
        ("nodes.h.rate=uniform:0", "expected uniform:LOW:HIGH"),
        ("nodes.h.activation=categorical:", "comma-separated values"),
        ("nodes.h.activation=categorical:relu,relu", "listed twice"),
        ("nodes.h.rate=uniform:0:nan", "not a finite number"),
    ],
)
def test_spec_syntax_errors_name_the_spec(text, says):
    with pytest.raises(SweepError) as err:
        parse_spec(text)
    assert says in str(err.value)
    assert text.split("=")[0] in str(err.value)


@pytest.mark.parametrize(
    "text, says",
    [
        ("nodes.hidden.units=int:16:256", "no node 'hidden' (blocks: hidden_1, hidden_2, probs)"),
        ("nodes.hidden_1.unitz=int:1:3", "'unitz' is not one of a Dense block's parameters"),
        ("nodes.hidden_1.units=int:0:3", "units must be an integer >= 1 (got 0)"),
        ("nodes.hidden_1.units=uniform:1:3", "integer setting; use int:LOW:HIGH"),
        ("nodes.hidden_1.activation=int:1:3", "use categorical"),
        ("nodes.hidden_1.activation=categorical:relu,nope", "activation must be one of"),
        ("training.validation_split=uniform:0.1:1", "validation_split must be a finite number"),
        (f"{LR}=uniform:-1:1", "learning_rate must be a finite number >= 0"),
        ("training.optimizer.nope=uniform:0:1", "not one of the adam optimizer's settings"),
        ("training.reduce_lr_on_plateau.factor=uniform:0.1:0.5", "no training.reduce_lr"),
        ("graph.x=int:1:2", "not a setting"),
    ],
)
def test_specs_are_checked_against_the_project(text, says):
    with pytest.raises(SweepError) as err:
        resolve_spec(digits(), text)
    assert says in str(err.value)
    assert text.split("=")[0] in str(err.value)


def test_a_valid_spec_resolves():
    project = digits()
    assert resolve_spec(project, f"{LR}=loguniform:1e-4:1e-1").kind == "loguniform"
    assert resolve_spec(project, "nodes.hidden_1.units=int:16:256").high == 256
    assert resolve_spec(project, "training.early_stopping.patience=int:1:8").low == 1
    assert resolve_spec(project, "training.batch_size=categorical:16,32,64").choices[2] == 64


def test_suggested_ranges_come_from_the_descriptor():
    project = digits()
    assert suggested_range(descriptor(project, "nodes.hidden_1.units"), 128) == "int:32:512"
    assert suggested_range(descriptor(project, LR), 0.001) == "loguniform:0.0001:0.01"
    assert suggested_range(descriptor(project, "nodes.hidden_1.use_bias")) == (
        "categorical:true,false"
    )


def test_every_suggested_range_is_one_its_descriptor_accepts():
    """For every block type's every sweepable parameter and every training setting, the
    suggested range resolves: the GUI's default never fails its own check."""
    checked = 0
    for type_name in LAYERS.names():
        project = Project(nodes=[Node(id="b", type=type_name)])
        for param in block_class(type_name).PARAMS:
            if not sweepable(param):
                continue
            rng = suggested_range(param, param.default)
            resolve_spec(project, f"nodes.b.{param.name}={rng}")
            checked += 1
    for param in TRAINING_PARAMS:
        resolve_spec(digits(), f"training.{param.name}={suggested_range(param, param.default)}")
    assert checked > 100


def test_apply_trial_sets_values_on_a_copy():
    project = digits()
    out = apply_trial(project, {LR: 0.01, "nodes.hidden_1.units": 64})
    assert out.node("hidden_1").params["units"] == 64
    assert out.training["optimizer"] == {"name": "adam", "learning_rate": 0.01}
    assert out.path == project.path
    assert project.node("hidden_1").params["units"] == 128  # the original is untouched
    with pytest.raises(SweepError, match=r"nodes\.hidden_1\.units: units must be an integer"):
        apply_trial(project, {"nodes.hidden_1.units": -3})


def test_objective_follows_the_early_stopping_monitor_as_keras_auto_mode():
    project = digits()
    assert objective_of(project) == ("val_loss", "minimize")
    project.training["early_stopping"]["monitor"] = "val_accuracy"
    assert objective_of(project) == ("val_accuracy", "maximize")
    project.training["early_stopping"]["mode"] = "min"  # an explicit mode wins
    assert objective_of(project) == ("val_accuracy", "minimize")
    project.training.pop("early_stopping")
    assert objective_of(project) == ("val_loss", "minimize")
    assert objective_of(project, "val_digit_accuracy") == ("val_digit_accuracy", "maximize")


def test_cores_are_shared_between_jobs():
    assert thread_count(2, cores=2) == 1
    assert thread_count(1, cores=8) == 8
    assert thread_count(3, cores=8) == 2
    assert thread_count(4, cores=2) == 1
    assert _quotas(5, 2) == [3, 2]
    assert _quotas(1, 3) == [1]


def test_without_optuna_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(SweepError, match=r"pip install 'nodenet\[optuna\]'"):
        require_optuna()


def test_grid_needs_a_finite_space(tmp_path, capsys):
    path = copy_sample(tmp_path)
    code = main(["sweep", str(path), "--param", f"{LR}=uniform:0.001:0.1", "--sampler", "grid"])
    assert code == 1
    assert "the grid sampler needs a finite range" in capsys.readouterr().err
    assert not path.with_name("digits_mlp.runs.sqlite").exists()  # refused before any trial


# -- sweeping -------------------------------------------------------------------------------


def test_a_tiny_sweep_records_every_trial_as_a_run_of_the_study(tmp_path, capsys):
    path = copy_sample(tmp_path)
    out = tmp_path / "best.json"
    doc = run_json(
        capsys,
        *("sweep", str(path), "--trials", "3", "--epochs", "2", "--seed", "3", "--json"),
        *("--param", f"{LR}=loguniform:1e-4:1e-1", "--param", "nodes.hidden_1.units=int:16:64"),
        *("--study", "tiny", "--apply", "-o", str(out)),
    )
    assert [t["number"] for t in doc["trials"]] == [0, 1, 2]
    assert doc["trials"][0]["defaults"]
    assert doc["trials"][0]["params"] == {LR: 0.001, "nodes.hidden_1.units": 128}
    runs = {r["id"]: r for r in runs_of(path)}
    assert len(runs) == 3
    for trial in doc["trials"]:
        run = runs[trial["run"]]
        assert (run["study"], run["trial"], run["source"]) == ("tiny", trial["number"], "sweep")
        assert run["status"] == "finished"
        # the run's own record of what it trained and how it ended
        nodes = {n["id"]: n for n in run["project"]["nodes"]}
        assert nodes["hidden_1"]["params"]["units"] == trial["params"]["nodes.hidden_1.units"]
        assert run["project"]["training"]["optimizer"]["learning_rate"] == trial["params"][LR]
        assert run["final_metrics"]["val_loss"] == pytest.approx(trial["value"])
        assert len(run["epochs"]) == 2
    # the study lives in the same file, in Optuna's tables
    conn = sqlite3.connect(path.with_name("digits_mlp.runs.sqlite"))
    names = [r[0] for r in conn.execute("SELECT study_name FROM studies")]
    conn.close()
    assert names == ["tiny"]
    best = doc["best"]
    assert best["value"] == min(t["value"] for t in doc["trials"])
    written = load(out)
    assert written.node("hidden_1").params["units"] == best["params"]["nodes.hidden_1.units"]
    assert written.training["optimizer"]["learning_rate"] == best["params"][LR]
    assert set(doc["importances"]) == {LR, "nodes.hidden_1.units"}
    assert doc["comparison"]["metric"] == "val_accuracy"
    ours, theirs = doc["comparison"]["best"], doc["comparison"]["defaults"]
    assert ours == runs[best["run"]]["final_metrics"]["val_accuracy"]
    assert theirs == runs[doc["trials"][0]["run"]]["final_metrics"]["val_accuracy"]
    assert doc["comparison"]["beats"] == (ours > theirs)
    assert ("beats the project's own settings" in doc["comparison"]["text"]) == (ours > theirs)


def test_pruned_trials_stop_early_and_are_recorded_as_pruned(tmp_path, capsys):
    path = copy_sample(tmp_path)
    doc = run_json(
        capsys,
        *("sweep", str(path), "--trials", "7", "--epochs", "2", "--seed", "2", "--json"),
        *("--param", f"{LR}=loguniform:1e-5:1e-1", "--sampler", "random", "--prune", "median"),
    )
    pruned = [t for t in doc["trials"] if t["state"] == "pruned"]
    assert pruned, "the median pruner stopped no trial"
    runs = {r["id"]: r for r in runs_of(path)}
    assert len(runs) == 7
    for trial in pruned:
        run = runs[trial["run"]]
        assert run["status"] == "stopped"
        assert run["message"] == (
            f"pruned by the sweep's median pruner after epoch {trial['pruned_at']}"
        )
        assert len(run["epochs"]) == trial["pruned_at"] < 2  # stopped before its last epoch
    assert doc["counts"]["pruned"] == len(pruned)


@pytest.mark.slow
def test_parallel_trials_share_the_study(tmp_path, capsys):
    path = copy_sample(tmp_path)
    doc = run_json(
        capsys,
        *("sweep", str(path), "--trials", "4", "--jobs", "2", "--epochs", "2", "--json"),
        *("--param", f"{LR}=loguniform:1e-4:1e-1", "--seed", "5"),
    )
    assert sorted(t["number"] for t in doc["trials"]) == [0, 1, 2, 3]
    assert all(t["state"] == "complete" for t in doc["trials"])
    runs = runs_of(path)
    assert sorted(r["trial"] for r in runs) == [0, 1, 2, 3]  # each trial ran exactly once
    assert len({r["pid"] for r in runs}) == 2  # in two processes
    assert {r["id"] for r in runs} == {t["run"] for t in doc["trials"]}


@pytest.mark.slow
def test_twenty_trials_with_pruning_on_the_digits_mlp(tmp_path, capsys):
    """The acceptance sweep: learning rate and units, 20 trials, median pruning, the
    sample's own epochs and early stopping; the best is compared with trial 0."""
    path = copy_sample(tmp_path)
    assert (
        main(
            [
                *("sweep", str(path), "--trials", "20", "--prune", "median", "--seed", "7"),
                *("--param", f"{LR}=loguniform:1e-4:1e-1"),
                *("--param", "nodes.hidden_1.units=int:16:256"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    runs = runs_of(path)
    assert len(runs) == 20
    assert all(r["study"] and r["trial"] is not None for r in runs)
    by_trial = {r["trial"]: r for r in runs}
    defaults = by_trial[0]["final_metrics"]["val_accuracy"]
    done = [r for r in runs if r["status"] != "stopped"]
    best = min(done, key=lambda r: r["final_metrics"]["val_loss"])
    ours = best["final_metrics"]["val_accuracy"]
    if ours > defaults:
        assert f"beats the project's own settings (trial 0, val_accuracy {defaults:.4g})" in text
    else:
        assert any(s in text for s in ("does not beat", "only equals", "no trial beat them"))
    assert "parameter importances:" in text

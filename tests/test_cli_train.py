"""`nodenet train / evaluate / predict`: files written, JSON on stdout, Ctrl-C is clean."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nodenet.cli import main
from nodenet.graph.project import load
from nodenet.runner import build_model

SAMPLES = Path(__file__).parent.parent / "sample_projects"


def copy_sample(tmp_path: Path, name: str = "digits_mlp", **training) -> Path:
    doc = json.loads((SAMPLES / f"{name}.json").read_text())
    doc["training"].update(training)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def test_train_json_prints_one_document_and_writes_weights_and_history(tmp_path, capsys):
    path = copy_sample(tmp_path, epochs=2)
    assert main(["train", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)  # stdout holds exactly one JSON document
    assert doc["epochs"] == 2
    assert len(doc["history"]["loss"]) == 2 and "val_accuracy" in doc["history"]
    assert 0.0 <= doc["test"]["accuracy"] <= 1.0
    weights = tmp_path / "digits_mlp.weights.npz"
    assert doc["weights"] == str(weights) and weights.exists()
    assert json.loads((tmp_path / "digits_mlp.history.json").read_text()) == doc
    assert "Epoch 2/2" in err, "progress goes to stderr"


def test_train_with_zero_epochs_writes_the_initial_weights(tmp_path, capsys):
    path = copy_sample(tmp_path)
    out_file = tmp_path / "init.npz"
    assert (
        main(["train", str(path), "--epochs", "0", "--weights-out", str(out_file), "--quiet"]) == 0
    )
    project = load(path)
    expected = build_model(project, seed=project.training["seed"]).get_weights()
    with np.load(out_file) as saved:
        assert sorted(saved.files) == sorted(expected)
        assert all(np.array_equal(saved[k], expected[k]) for k in expected)


def test_evaluate_and_predict_use_the_trained_weights(tmp_path, capsys):
    path = copy_sample(tmp_path, epochs=3)
    assert main(["train", str(path), "--quiet", "--json"]) == 0
    trained = json.loads(capsys.readouterr()[0])
    assert main(["evaluate", str(path), "--weights", trained["weights"], "--json"]) == 0
    evaluated = json.loads(capsys.readouterr()[0])
    assert evaluated["accuracy"] == trained["test"]["accuracy"]

    inputs = tmp_path / "x.npz"
    x = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    np.savez(inputs, pixels=x)
    outputs = tmp_path / "y.npz"
    assert (
        main(
            [
                "predict",
                str(path),
                "--weights",
                trained["weights"],
                "--input",
                str(inputs),
                "--output",
                str(outputs),
            ]
        )
        == 0
    )
    with np.load(outputs) as y:
        assert y.files == ["digit"]
        assert y["digit"].shape == (5, 10)
        np.testing.assert_allclose(y["digit"].sum(axis=1), 1.0, rtol=1e-5)


def test_evaluate_json_includes_the_evaluation_reports(tmp_path, capsys):
    path = copy_sample(tmp_path, epochs=1)
    assert main(["train", str(path), "--quiet", "--json"]) == 0
    trained = json.loads(capsys.readouterr()[0])
    assert main(["evaluate", str(path), "--weights", trained["weights"], "--json"]) == 0
    evaluated = json.loads(capsys.readouterr()[0])
    assert set(evaluated) == {"loss", "accuracy", "reports"}  # the metrics' keys stay
    reports = evaluated["reports"]
    digit = reports["heads"]["digit"]
    confusion = np.array(digit["confusion"])
    assert digit["task"] == "classification" and confusion.shape == (10, 10)
    assert confusion.sum() == reports["test_size"] == round(1797 * 0.2)
    assert np.trace(confusion) / confusion.sum() == pytest.approx(evaluated["accuracy"])
    samples = digit["samples"]
    assert len(samples) == 8 and all(s["predicted"] in digit["classes"] for s in samples)
    assert all(s["right"] == (s["true"] == s["predicted"]) and 0 < s["p"] <= 1 for s in samples)
    kernel = reports["weight_histograms"]["hidden_1/kernel"]
    assert sum(kernel["counts"]) == 64 * 128 and len(kernel["edges"]) == len(kernel["counts"]) + 1


def test_a_weights_file_for_another_graph_is_refused_by_name(tmp_path, capsys):
    path = copy_sample(tmp_path)
    wrong = tmp_path / "wrong.npz"
    flat = build_model(load(path)).get_weights()
    flat["hidden_1/kernel"] = np.zeros((64, 3), np.float32)
    np.savez(wrong, **flat)
    assert main(["evaluate", str(path), "--weights", str(wrong)]) == 1
    err = capsys.readouterr()[1]
    assert "wrong.npz" in err and "'hidden_1/kernel' has shape (64, 3)" in err
    assert "Traceback" not in err


def test_a_project_without_data_says_so(tmp_path, capsys):
    doc = json.loads((SAMPLES / "digits_mlp.json").read_text())
    doc["data"] = {}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    assert main(["train", str(path)]) == 1
    err = capsys.readouterr()[1]
    assert err.startswith(f"nodenet: {path}: ") and "no data source" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("epochs", ["-3", "100001", "x", "1.5"])
def test_out_of_range_epochs_are_a_usage_error_naming_the_option(tmp_path, capsys, epochs):
    path = copy_sample(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(path), "--epochs", epochs])
    assert exit_info.value.code == 2
    err = capsys.readouterr()[1]
    assert f"argument --epochs: must be an integer from 0 to 100000 (got '{epochs}')" in err
    assert not (tmp_path / "digits_mlp.weights.npz").exists()


@pytest.mark.slow
def test_ctrl_c_stops_training_cleanly_and_saves_complete_files(tmp_path):
    path = copy_sample(tmp_path, epochs=500, early_stopping=None)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nodenet", "train", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    # wait for the first finished epoch, then press Ctrl-C once
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if line.startswith("Epoch 1/500"):
            break
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(lines) + err
    assert "stopped by Ctrl-C" in err
    assert "Traceback" not in err
    weights = tmp_path / "digits_mlp.weights.npz"
    build_model(load(path)).load_weights(weights)  # complete and matching
    history = json.loads((tmp_path / "digits_mlp.history.json").read_text())
    assert history["stopped"] == "user" and 1 <= history["epochs"] < 500
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers


@pytest.mark.slow
def test_train_runs_on_a_copy_of_the_sample_folder(tmp_path):
    """Relative data paths resolve against the project file, wherever it is run from."""
    target = tmp_path / "copy"
    shutil.copytree(SAMPLES, target)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nodenet",
            "train",
            str(target / "digits_mlp.json"),
            "--epochs",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def test_inputs_that_do_not_fit_name_the_input_file(tmp_path, capsys):
    path = copy_sample(tmp_path)
    weights = tmp_path / "w.npz"
    build_model(load(path)).save_weights(weights)
    wrong = tmp_path / "wrong_inputs.npz"
    np.savez(wrong, a=np.zeros((2, 64), np.float32), b=np.zeros((2, 3), np.float32))
    out = tmp_path / "y.npz"
    argv = ["predict", str(path), "--weights", str(weights), "--input", str(wrong)]
    assert main([*argv, "--output", str(out)]) == 1
    err = capsys.readouterr()[1]
    assert err == f"nodenet: {wrong}: no data for the Input 'pixels'\n"
    assert not out.exists()

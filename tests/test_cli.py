"""The `nodenet` command: validate and summary, with exact Keras parameter counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodenet.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "models"

# Parameter counts as Keras 3 reports them for these classic models.
KERAS_COUNTS = {
    "simple_rnn_mnist": 75_530,
    "mlp_100_128_256_10": 48_522,
    "imdb_bilstm": 586_369,
    "cnn_480x680": 167_141_409,
    "otto_logistic": 846,
    "otto_mlp": 10_309,
    "lstm_mnist": 81_674,
    "gru_mnist": 61_962,
}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name,count", sorted(KERAS_COUNTS.items()))
def test_summary_json_gives_keras_parameter_counts(capsys, name, count):
    code, out, err = run(capsys, "summary", str(FIXTURES / f"{name}.json"), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["total_params"] == count
    assert doc["trainable_params"] + doc["non_trainable_params"] == count
    assert sum(layer["params"] for layer in doc["layers"]) == count
    assert all(layer["output_shape"][0] is None for layer in doc["layers"])


def test_summary_json_shapes_of_the_cnn(capsys):
    _, out, _ = run(capsys, "summary", str(FIXTURES / "cnn_480x680.json"), "--json")
    shapes = {layer["id"]: layer["output_shape"] for layer in json.loads(out)["layers"]}
    # Keras 3: "same" convs keep the size, 2x2 pools floor it: 480x680 -> ... -> 60x85
    assert shapes["conv_1"] == [None, 480, 680, 16]
    assert shapes["pool_3"] == [None, 60, 85, 64]
    assert shapes["flatten"] == [None, 60 * 85 * 64]


def test_summary_text_is_a_keras_style_table(capsys):
    code, out, _ = run(capsys, "summary", str(FIXTURES / "simple_rnn_mnist.json"))
    assert code == 0
    assert "Layer (type)" in out and "Output Shape" in out and "Param #" in out
    assert "rnn (SimpleRNN)" in out and "(None, 256)" in out and "72,960" in out
    assert "Total params: 75,530" in out


def test_validate_reports_every_problem_one_per_line(capsys, tmp_path):
    doc = json.loads((FIXTURES / "otto_mlp.json").read_text())
    doc["nodes"][1]["params"]["units"] = 0
    doc["nodes"].append({"id": "stray", "type": "Nope", "params": {}, "pos": [0, 0]})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 1
    lines = out.strip().splitlines()
    assert "dense_1: units must be an integer >= 1 (got 0)" in lines
    assert "stray: unknown block type 'Nope'" in lines


def test_validate_says_no_problems_and_exits_0(capsys):
    code, out, _ = run(capsys, "validate", str(FIXTURES / "otto_mlp.json"))
    assert code == 0 and "no problems" in out


BAD_FILES = {
    "not_json.json": "{ nope",
    "empty.json": "",
    "list.json": "[1, 2]",
    "binary.json": b"\xff\xfe\x00garbage",
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "wrong_types.json": json.dumps(
        {
            "format": "nodenet-project",
            "version": 1,
            "nodes": [{"id": 3, "type": None}],
            "edges": "x",
        }
    ),
    "huge_shape.json": json.dumps(
        {
            "format": "nodenet-project",
            "version": 1,
            "nodes": [
                {"id": "x", "type": "Input", "params": {"shape": [10**12, 10**12]}},
                {"id": "d", "type": "Dense", "params": {"units": 10**9}},
                {"id": "y", "type": "Output", "params": {}},
            ],
            "edges": [{"from": "x", "to": "d"}, {"from": "d", "to": "y"}],
        }
    ),
}


@pytest.mark.parametrize("command", ["validate", "summary"])
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_never_print_a_traceback(capsys, tmp_path, command, name):
    path = tmp_path / name
    content = BAD_FILES[name]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, out, err = run(capsys, command, str(path))
    assert "Traceback" not in out + err
    if name != "huge_shape.json":
        assert code == 1
        assert name in err, "the message names the file"


def test_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "summary", str(tmp_path / "missing.json"))
    assert code == 1 and "missing.json: cannot be read" in err


@pytest.mark.slow
def test_console_script_runs_as_a_separate_process():
    result = subprocess.run(
        [sys.executable, "-m", "nodenet", "summary", str(FIXTURES / "otto_mlp.json"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total_params"] == 10_309


@pytest.fixture
def gui_calls(monkeypatch):
    """The GUI command replaced by a recorder: which file it would open."""
    import nodenet.cli

    calls = []

    def fake_gui(args):
        calls.append((args.file, args.new))
        return 0

    monkeypatch.setattr(nodenet.cli, "cmd_gui", fake_gui)
    return calls


def test_a_first_word_that_is_a_file_opens_the_gui(gui_calls, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").write_text("{}")  # an existing file, whatever its name
    for argv in (["some/file.json"], ["missing.json"], ["model"], ["x.json", "--new"], []):
        assert main(argv) == 0, capsys.readouterr().err
    assert main(["--new"]) == 0
    assert gui_calls == [
        ("some/file.json", False),
        ("missing.json", False),
        ("model", False),
        ("x.json", True),
        (None, False),
        (None, True),
    ]


def test_a_mistyped_command_is_named_with_the_closest_one(gui_calls, capsys):
    assert main(["trian", "x.json"]) == 2
    out, err = capsys.readouterr()
    assert err == "nodenet: 'trian' is not a nodenet command; did you mean 'train'?\n"
    assert out == "" and gui_calls == []
    assert main(["sumary", "x.json"]) == 2
    assert "did you mean 'summary'?" in capsys.readouterr().err


def test_a_word_like_no_command_lists_the_commands(gui_calls, capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'frobnicate' is neither a nodenet command nor a file" in err
    assert "train" in err and "import-keras" in err and gui_calls == []


def test_an_unknown_word_never_reaches_qt_without_a_display():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    result = subprocess.run(
        [sys.executable, "-m", "nodenet", "trian", "x.json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == "nodenet: 'trian' is not a nodenet command; did you mean 'train'?\n"


def test_errors_name_the_file_they_are_about(capsys, tmp_path):
    doc = json.loads((FIXTURES / "otto_mlp.json").read_text())
    doc["nodes"][1]["params"]["units"] = 0
    path = tmp_path / "bad_units.json"
    path.write_text(json.dumps(doc))
    code, _, err = run(capsys, "summary", str(path))
    assert code == 1
    assert err.splitlines() == [f"{path}: dense_1: units must be an integer >= 1 (got 0)"]
    # a message that already names a file the command was given is left as it is
    code, _, err = run(capsys, "summary", str(tmp_path / "missing.json"))
    assert err.count("missing.json") == 1

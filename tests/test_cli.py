"""The `nodenet` command: validate and summary, with exact Keras parameter counts."""

from __future__ import annotations

import json
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


def test_console_script_runs_as_a_separate_process():
    result = subprocess.run(
        [sys.executable, "-m", "nodenet", "summary", str(FIXTURES / "otto_mlp.json"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total_params"] == 10_309

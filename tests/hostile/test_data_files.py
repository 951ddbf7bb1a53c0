"""Hostile data files: every allocation is within the memory budget, nothing hangs on a
file, and a killed write leaves nothing that a later run pairs wrongly.

Issue 13, findings 3 (``predict`` on text), 4 (budgets: gathered predictions, evaluation
batches, CSV cells, preparation copies, gzip, devices), 5 (FIFOs, megabyte paths),
7 (``StopIteration`` in the data preview) and 8 (stale temporary files, weights paired
with the wrong history). Each case runs through the API and the command line, which
exits 1 with one short line naming the file, never 70 (an internal error).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from nodenet.cli import main
from nodenet.engine.data import NothingToPrepareError, prepare, read_idx
from nodenet.engine.training import evaluate
from nodenet.errors import DataError
from nodenet.graph.project import Project, load
from nodenet.runner import build_model, build_run, history_matches, write_predictions

SAMPLES = Path(__file__).parent.parent.parent / "sample_projects"
DIGITS = SAMPLES / "digits_mlp.json"
HANG_GUARD = 120  # seconds; a hang fails the test instead of blocking the suite


def wide(units: int, batch_size: int = 32) -> Project:
    """Input (4,) -> Dense(units) -> Output: small inputs, wide outputs."""
    return Project.from_dict(
        {
            "format": "nodenet-project",
            "version": 1,
            "name": "wide",
            "nodes": [
                {"id": "x", "type": "Input", "params": {"shape": [4]}},
                {"id": "wide", "type": "Dense", "params": {"units": units}},
                {"id": "y", "type": "Output", "params": {"loss": "mean_squared_error"}},
            ],
            "edges": [{"from": "x", "to": "wide"}, {"from": "wide", "to": "y"}],
            "training": {"batch_size": batch_size},
            "data": {"source": {"kind": "builtin", "name": "sine"}},
        }
    )


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """``nodenet ARGV`` in a thread with a hang guard: (exit code, stderr)."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(main(list(argv))), daemon=True)
    thread.start()
    thread.join(HANG_GUARD)
    assert not thread.is_alive(), f"nodenet {' '.join(argv)} hangs"
    return result[0], capsys.readouterr().err


def predict(project: Path, weights: Path, inputs: Path, out: Path) -> list[str]:
    """The argv of ``nodenet predict``."""
    return ["predict", str(project), "--weights", str(weights), "--input", str(inputs),
            "--output", str(out)]  # fmt: skip


def refused(code: int, err: str, *fragments: str) -> None:
    """Exit 1, one short line led by ``nodenet:``, holding every fragment."""
    assert code == 1, err
    assert err.startswith("nodenet: ") and err.count("\n") == 1, err
    assert len(err) < 600 and "internal error" not in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def digits_project(folder: Path, source: dict) -> Path:
    """The digits sample in ``folder``, reading ``source``."""
    doc = json.loads(DIGITS.read_text())
    doc["data"]["source"] = source
    path = folder / "p.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def wide_files(tmp_path):
    """A saved ``wide(512)`` project with seeded weights and 2,000 input samples."""
    project = wide(512)
    path = tmp_path / "wide.json"
    path.write_text(project.to_json())
    weights = tmp_path / "wide.weights.npz"
    build_model(load(path), seed=0).save_weights(weights)
    inputs = tmp_path / "in.npz"
    x = np.random.default_rng(0).normal(size=(2000, 4)).astype(np.float32)
    np.savez(inputs, x=x)
    return path, weights, inputs, x


# -- predict: outputs streamed to the file, text refused (findings 3, 4) -----------------


def test_predict_streams_outputs_larger_than_the_budget(wide_files, capsys, monkeypatch):
    path, weights, inputs, x = wide_files
    model = build_model(load(path), seed=0)
    model.load_weights(weights)
    expected = model.predict({"x": x})["y"]  # 4 MB of outputs, under the default budget
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "1M")
    with pytest.raises(DataError, match=r"the outputs for 2,000 samples would take 3\.9 MiB"):
        model.predict({"x": x})  # the API gathers: refused before computing
    out = path.with_name("out.npz")
    code, err = run_cli(capsys, *predict(path, weights, inputs, out))
    assert code == 0, err
    assert err.strip() == f"{out}: y (2000, 512)"
    with np.load(out, allow_pickle=False) as saved:
        assert saved["y"].shape == (2000, 512) and saved["y"].dtype == np.float32
        np.testing.assert_allclose(saved["y"], expected, rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []


def test_predictions_stream_batch_by_batch_within_the_budget(wide_files, monkeypatch):
    path, weights, _, x = wide_files
    model = build_model(load(path), seed=0)
    model.load_weights(weights)
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "1M")
    tracemalloc.start()
    try:
        shapes = write_predictions(model, {"x": x}, path.with_name("out.npz"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert shapes == {"y": (2000, 512)}
    assert peak < 2**20, peak  # the 3.9 MiB of outputs are never held at once


def test_predict_writes_every_output_of_a_two_headed_model(tmp_path, capsys):
    doc = json.loads(wide(8).to_json())
    doc["nodes"].append({"id": "z", "type": "Output", "params": {"loss": "mean_squared_error"}})
    doc["edges"].append({"from": "x", "to": "z"})
    path = tmp_path / "two.json"
    path.write_text(json.dumps(doc))
    model = build_model(load(path), seed=0)
    model.save_weights(tmp_path / "w.npz")
    x = np.arange(3000 * 4, dtype=np.float32).reshape(3000, 4)
    np.savez(tmp_path / "in.npz", x=x)
    argv = predict(path, tmp_path / "w.npz", tmp_path / "in.npz", tmp_path / "o.npz")
    code, err = run_cli(capsys, *argv)
    assert code == 0, err
    expected = model.predict({"x": x})
    with np.load(tmp_path / "o.npz", allow_pickle=False) as saved:
        assert sorted(saved.files) == ["y", "z"]
        for key in ("y", "z"):
            np.testing.assert_allclose(saved[key], expected[key], rtol=1e-6)


@pytest.mark.parametrize(
    ("array", "kind"),
    [(np.array([["a", "b", "c", "d"]] * 3), "<U1"), (np.zeros((3, 4), complex), "complex128")],
)
def test_predict_on_text_or_complex_is_refused_naming_file_and_array(
    wide_files, capsys, array, kind
):
    path, weights, _, _ = wide_files
    bad = path.with_name("text.npz")
    np.savez(bad, words=array)
    out = path.with_name("out.npz")
    code, err = run_cli(capsys, *predict(path, weights, bad, out))
    refused(code, err, f"{bad}: array 'words' holds {kind} values, not numbers")
    assert not out.exists()
    model = build_model(load(path), seed=0)
    with pytest.raises(DataError, match=rf"x: the data holds {kind} values .*not numbers"):
        model.predict({"x": array})


# -- evaluation batches within the budget (finding 4) -------------------------------------


def test_evaluation_takes_smaller_batches_when_256_would_not_fit(monkeypatch):
    model = build_model(wide(20_000), seed=0)
    rng = np.random.default_rng(1)
    x = {"x": rng.normal(size=(100, 4)).astype(np.float32)}
    y = {"y": rng.normal(size=(100, 20_000)).astype(np.float32)}
    reference = evaluate(model, x, y, batch_size=256)
    # one sample: (4 + 20,000 + 20,000) float32 = 160 KB, sized at 3 x: 256 would be 123 MB
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "4M")
    seen = []
    forward = model.forward
    monkeypatch.setattr(
        model, "forward", lambda b, **k: seen.append(len(b["x"])) or forward(b, **k)
    )
    result = evaluate(model, x, y, batch_size=256)
    assert max(seen) == 4_194_304 // (3 * model.sample_bytes()) == 8 and sum(seen) == 100
    assert result == pytest.approx(reference, rel=1e-5)
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "100K")
    with pytest.raises(DataError, match=r"one sample needs 156\.3 KiB .* budget of 100\.0 KiB"):
        evaluate(model, x, y)


# -- CSV parse cost per cell (finding 4) ---------------------------------------------------


def test_a_one_cell_per_row_csv_is_refused_before_its_cells_are_parsed(
    tmp_path, capsys, monkeypatch
):
    (tmp_path / "cells.csv").write_bytes(b"y\n" + b"1\n" * 200_000)  # 400 KB, 200,000 cells
    project = digits_project(tmp_path, {"kind": "csv", "path": "cells.csv"})
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "8M")
    document = load(project)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"cells\.csv: parsing its [\d,]+\+ cells .* more than "
                           r"the memory budget of 8\.0 MiB.*convert it to \.npz"):  # fmt: skip
            build_run(document)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, peak  # the file is scanned in chunks, not parsed
    refused(*run_cli(capsys, "train", str(project), "--quiet"), "cells.csv: parsing its")


def test_a_text_column_wider_than_the_budget_is_refused(tmp_path, monkeypatch):
    """numpy's text array is as wide as the longest label in every row."""
    rows = [f"{i},{'a' if i else 'b' * 100_000}" for i in range(2_000)]
    (tmp_path / "labels.csv").write_text("x,label\n" + "\n".join(rows) + "\n")
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "64M")  # 2,000 x 100,000 x 4 bytes = 763 MiB
    from nodenet.engine.data import load_source

    with pytest.raises(DataError, match=r"labels\.csv: column 'label': 2,000 labels of up to "):
        load_source({"kind": "csv", "path": "labels.csv"}, tmp_path)


# -- preparation copies (finding 4) --------------------------------------------------------


def test_preparation_copies_count_against_the_budget(tmp_path, capsys, monkeypatch):
    x = np.random.default_rng(0).integers(0, 16, (10_000, 64), dtype=np.uint8)  # 625 KiB
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(10_000) % 10)
    project = digits_project(tmp_path, {"kind": "npz", "path": "d.npz"})
    # each array alone fits 3 MiB (float32 x: 2.4 MiB); at the peak, the split copies, the
    # prepared arrays and the normalization's float64 chunks together (3.9 MiB) do not
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "3M")
    with pytest.raises(DataError, match=r"preparing the data \(703\.1 KiB read, 703\.1 KiB split "
                       r"into train/validation/test, 2\.8 MiB prepared for the model, 384\.0 KiB "
                       r"working space\) would take 3\.9 MiB, more than the memory budget of "
                       r"3\.0 MiB"):  # fmt: skip
        build_run(load(project))
    refused(*run_cli(capsys, "train", str(project), "--quiet"), "preparing the data")
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "5M")
    document = load(project)
    tracemalloc.start()
    try:
        run = build_run(document)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert run.data.meta.sizes["train"] > 0
    assert peak < 5 * 2**20, peak  # the budget holds (numpy's allocations are traced too)


# -- IDX gzip bombs and devices (finding 4) ------------------------------------------------


def test_an_idx_gzip_bomb_is_never_inflated_past_its_claimed_size(tmp_path, capsys):
    header = struct.pack(">BBBBIII", 0, 0, 8, 3, 10, 28, 28)  # claims 7,840 bytes
    bomb = gzip.compress(header + bytes(64 * 2**20), compresslevel=9)  # inflates to 64 MiB
    assert len(bomb) < 2**20
    (tmp_path / "bomb.gz").write_bytes(bomb)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"bomb\.gz: the header claims .* holds more bytes"):
            read_idx(tmp_path / "bomb.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak
    labels = gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + bytes(10))
    (tmp_path / "labels.gz").write_bytes(labels)
    source = {"kind": "idx", "images": "bomb.gz", "labels": "labels.gz"}
    refused(*run_cli(capsys, "train", str(digits_project(tmp_path, source)), "--quiet"), "bomb.gz")


@pytest.mark.parametrize("kind", ["npz", "csv", "idx"])
def test_a_device_behind_an_allowed_symlink_is_refused(tmp_path, capsys, kind):
    (tmp_path / "data").symlink_to("/dev/zero")
    field = {"idx": {"images": "data", "labels": "data"}}.get(kind, {"path": "data"})
    project = digits_project(tmp_path, {"kind": kind, **field})
    message = "data is a character device, not a regular file"
    with pytest.raises(DataError, match=message):
        build_run(load(project), allow_outside_data=True)
    code, err = run_cli(capsys, "train", str(project), "--quiet", "--allow-outside-data")
    refused(code, err, message)


# -- hangs: FIFOs and megabyte paths (finding 5) -------------------------------------------


@pytest.mark.parametrize("kind", ["npz", "csv", "idx"])
def test_a_fifo_in_the_project_folder_is_refused_without_hanging(tmp_path, capsys, kind):
    os.mkfifo(tmp_path / "pipe")
    field = {"idx": {"images": "pipe", "labels": "pipe"}}.get(kind, {"path": "pipe"})
    project = digits_project(tmp_path, {"kind": kind, **field})
    code, err = run_cli(capsys, "train", str(project), "--quiet")
    refused(code, err, "pipe is a named pipe (FIFO), not a regular file")


def test_a_fifo_as_predict_input_is_refused_without_hanging(wide_files, capsys):
    path, weights, _, _ = wide_files
    os.mkfifo(path.with_name("pipe.npz"))
    argv = predict(path, weights, path.with_name("pipe.npz"), path.with_name("o.npz"))
    code, err = run_cli(capsys, *argv)
    refused(code, err, "pipe.npz is a named pipe (FIFO)")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("a/" * 500_000 + "x.csv", "is longer than 4,096 characters"),  # 1 MB: resolve crawled
        ("n" * 300 + ".csv", "has a name longer than 255 characters"),
    ],
    ids=["1 MB path", "300-character name"],
)
def test_a_huge_data_path_is_refused_before_it_is_resolved(tmp_path, capsys, given, message):
    project = digits_project(tmp_path, {"kind": "csv", "path": given})
    with pytest.raises(DataError, match=message) as caught:
        build_run(load(project))
    assert len(str(caught.value)) < 400
    refused(*run_cli(capsys, "train", str(project), "--quiet"), message)


# -- the data preview with nothing to preview (finding 7) -----------------------------------


def test_preparing_for_a_graph_without_known_shapes_is_a_typed_error():
    data = json.loads(DIGITS.read_text())["data"]
    automatic = {"source": data["source"]}  # no data.inputs / data.targets: was StopIteration
    for config in (automatic, data):
        with pytest.raises(NothingToPrepareError, match="no Input or Output has a known shape"):
            prepare(config, {}, {})
    assert issubclass(NothingToPrepareError, DataError)  # what the preview thread catches
    unmapped = {**data, "inputs": {}, "targets": {}}
    with pytest.raises(DataError):
        prepare(unmapped, {}, {"digit": ((10,), "categorical_crossentropy")})


# -- killed writes (finding 8) --------------------------------------------------------------


@pytest.fixture
def trained(tmp_path, capsys):
    project = tmp_path / "digits_mlp.json"
    shutil.copy(DIGITS, project)
    assert main(["train", str(project), "--epochs", "0", "--quiet"]) == 0
    capsys.readouterr()
    return project


def test_temporary_files_of_killed_writes_are_removed_by_the_next_write(trained, capsys):
    folder = trained.parent
    old = time.time() - 3600
    stale = [
        folder / ".digits_mlp.weights.npz.k1ll3d.tmp",
        folder / ".digits_mlp.history.json.x.tmp",
    ]
    stale.append(folder / ".out.npz.abc.tmp")
    fresh = folder / ".digits_mlp.weights.npz.running.tmp"  # a write still under way
    for path in [*stale, fresh]:
        path.write_bytes(b"partial")
    for path in stale:
        os.utime(path, (old, old))
    assert main(["train", str(trained), "--epochs", "0", "--quiet"]) == 0
    np.savez(folder / "in.npz", pixels=np.zeros((2, 64), np.float32))
    weights = trained.with_name("digits_mlp.weights.npz")
    assert main(predict(trained, weights, folder / "in.npz", folder / "out.npz")) == 0
    assert not any(p.exists() for p in stale)
    assert fresh.exists()


def test_history_names_its_weights_so_a_kill_between_the_writes_is_detected(trained):
    weights = trained.with_name("digits_mlp.weights.npz")
    history = json.loads(trained.with_name("digits_mlp.history.json").read_text())
    assert history_matches(history, weights)
    # a kill after the weights' rename and before the history's: new weights, old history
    model = build_model(load(trained), seed=99)
    model.save_weights(weights)
    assert not history_matches(history, weights)
    assert not history_matches({"weights": str(weights)}, weights)  # no digest: no claim

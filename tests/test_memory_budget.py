"""A size claimed by a file (an Input shape, a layer's weights, an NPZ or IDX header) is
checked against the memory budget before anything is allocated, and refused with a
message naming the node or file and the size: in validate and summary as in build."""

from __future__ import annotations

import gzip
import io
import json
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nodenet.cli import main
from nodenet.engine.data import load_source, read_idx
from nodenet.errors import DataError, NodenetError, ValidationError, WeightsError
from nodenet.graph.project import Project, load, validate
from nodenet.graph.summary import summarize
from nodenet.runner import build_model, build_run
from nodenet.safeio import memory_budget

DIGITS = Path(__file__).parent.parent / "sample_projects" / "digits_mlp.json"
GIB = 2**30


def mlp(shape, units=4, batch_size=32) -> Project:
    return Project.from_dict(
        {
            "format": "nodenet-project",
            "version": 1,
            "nodes": [
                {"id": "pixels", "type": "Input", "params": {"shape": shape}},
                {"id": "hidden", "type": "Dense", "params": {"units": units}},
                {"id": "out", "type": "Output", "params": {"loss": "mean_squared_error"}},
            ],
            "edges": [{"from": "pixels", "to": "hidden"}, {"from": "hidden", "to": "out"}],
            "training": {"batch_size": batch_size},
            "data": {"source": {"kind": "builtin", "name": "digits"}},
        }
    )


@pytest.mark.parametrize(
    ("text", "size"), [("512M", 512 * 2**20), ("2G", 2 * GIB), ("1000", 1000), ("1.5k", 1536)]
)
def test_the_budget_variable(monkeypatch, text, size):
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", text)
    assert memory_budget() == size


def test_the_default_budget_is_at_most_4_gib_and_half_the_ram(monkeypatch):
    monkeypatch.delenv("NODENET_MEMORY_BUDGET", raising=False)
    import os

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_budget() == min(4 * GIB, ram // 2)


def test_a_bad_budget_variable_is_a_message(monkeypatch):
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "lots")
    with pytest.raises(NodenetError, match="NODENET_MEMORY_BUDGET must be a size like 512M"):
        memory_budget()


def test_a_10_gb_input_shape_is_refused_in_validate_summary_and_build(monkeypatch):
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "4G")
    project = mlp([50_000, 50_000])  # 2.5e9 float32 values: 9.3 GiB per sample
    messages = [str(p) for p in validate(project)]
    expected = (
        "pixels: one sample's output, of shape (None, 50000, 50000), would take 9.3 GiB, "
        "more than the memory budget of 4.0 GiB (set NODENET_MEMORY_BUDGET to change it)"
    )
    assert expected in messages
    tracemalloc.start()
    try:
        for step in (summarize, build_run, build_model):
            with pytest.raises(ValidationError) as caught:
                step(project)
            assert expected in [str(p) for p in caught.value.problems]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_huge_weights_are_refused_naming_the_layer(monkeypatch):
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "4G")
    project = mlp([100_000], units=20_000)  # 2,000,020,000 weights: 7.5 GiB
    problems = [str(p) for p in validate(project)]
    assert problems == [
        "hidden: its 2,000,020,000 weights would take 7.5 GiB, more than the memory budget "
        "of 4.0 GiB (set NODENET_MEMORY_BUDGET to change it)"
    ]


def test_a_batch_too_large_for_the_budget_names_the_batch_size(monkeypatch):
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "1G")
    # per sample: the Input's 1000 x 1000 and the Dense's 1000 x 4 float32 values, 4,016,000
    # bytes; times 512 samples: 2,056,192,000 bytes = 1.9 GiB
    project = mlp([1000, 1000], batch_size=512)
    (problem,) = validate(project)
    assert problem.field == "training.batch_size"
    assert str(problem).startswith(
        "training.batch_size: the outputs of every block for a batch of 512 samples would "
        "take 1.9 GiB, more than the memory budget of 1.0 GiB"
    )
    project = mlp([1000, 1000], batch_size=512)
    project.training["batch_size"] = 64
    assert validate(project) == []


def test_the_command_line_refuses_in_validate_and_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "4G")
    path = tmp_path / "huge.json"
    path.write_text(mlp([50_000, 50_000]).to_json())
    assert main(["validate", str(path)]) == 1
    assert "pixels: one sample's output, of shape (None, 50000, 50000), would take 9.3 GiB" in (
        capsys.readouterr().out
    )
    assert main(["summary", str(path)]) == 1
    assert "would take 9.3 GiB, more than the memory budget" in capsys.readouterr().err


# -- data and weights files ------------------------------------------------------------------


def lying_npz(path: Path, claim: tuple, key: str = "x", others: dict | None = None) -> None:
    """An ``.npz`` whose ``key`` member claims ``claim`` in its header but holds 8 values."""
    header = io.BytesIO()
    fields = {"descr": "<f4", "fortran_order": False, "shape": claim}
    np.lib.format.write_array_header_1_0(header, fields)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{key}.npy", header.getvalue() + np.zeros(8, np.float32).tobytes())
        for name, array in (others or {}).items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(f"{name}.npy", buffer.getvalue())


def test_a_10_gb_shape_in_an_npz_header_is_refused_before_allocating(tmp_path, monkeypatch):
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "4G")
    lying_npz(tmp_path / "d.npz", (50_000, 50_000), others={"y": np.zeros(3)})
    tracemalloc.start()
    try:
        with pytest.raises(
            DataError,
            match=r"d\.npz: array 'x' of shape \(50000, 50000\) would take 9\.3 GiB, more than "
            r"the memory budget of 4\.0 GiB",
        ):
            load_source({"kind": "npz", "path": "d.npz"}, tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def test_an_npz_header_larger_than_its_data_is_refused(tmp_path):
    lying_npz(tmp_path / "d.npz", (1000, 1000))
    with pytest.raises(DataError, match=r"claims shape \(1000, 1000\) \(4000000 bytes\) but"):
        load_source({"kind": "npz", "path": "d.npz"}, tmp_path)


def test_a_weights_file_claiming_a_huge_array_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "4G")
    model = build_model(load(DIGITS), seed=0)
    weights = model.get_weights()
    key = next(iter(weights))
    lying_npz(
        tmp_path / "w.npz", (2**20, 2**20), key, {k: v for k, v in weights.items() if k != key}
    )
    with pytest.raises(WeightsError, match=rf"w\.npz: array .{key}. of shape .* 4\.0 TiB, more"):
        model.load_weights(tmp_path / "w.npz")


def test_an_idx_header_beyond_the_budget_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "1M")
    data = struct.pack(">BBBBIII", 0, 0, 8, 3, 2000, 28, 28)  # 1.5 MiB claimed
    (tmp_path / "x.gz").write_bytes(gzip.compress(data))
    with pytest.raises(
        DataError,
        match=r"x\.gz: the header claims an array of shape \(2000, 28, 28\), which would take "
        r"1\.5 MiB, more than the memory budget of 1\.0 MiB",
    ):
        read_idx(tmp_path / "x.gz")


def test_prepared_arrays_are_checked_before_they_are_made(tmp_path, monkeypatch):
    np.savez(tmp_path / "d.npz", x=np.zeros((5000, 64), np.uint8), y=np.zeros(5000, np.int64))
    doc = json.loads(DIGITS.read_text())
    doc["data"] = {"source": {"kind": "npz", "path": "d.npz"}}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    project = load(tmp_path / "p.json")
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "1M")  # the uint8 file fits, float32 does not
    with pytest.raises(
        DataError,
        match=r"pixels: the data \('x', 5000 samples for shape \(64,\)\) would take 1\.2 MiB",
    ):
        build_run(project)

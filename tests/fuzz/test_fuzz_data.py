"""Fuzzed data and weights files: NPZ, IDX and CSV sources and ``.npz`` weights are read,
prepared and fed to a model with nodenet's own errors only (see the package docstring)."""

from __future__ import annotations

import io
import itertools
import json
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodenet.cli import _read_weights
from nodenet.engine.data import describe_source, load_source
from nodenet.errors import DataError, NodenetError, WeightsError
from nodenet.graph.project import Project
from nodenet.runner import build_model, build_run, load_arrays
from tests.fuzz.harness import attempt, examples, guarded
from tests.fuzz.strategies import (
    corrupt,
    csv_files,
    csv_options,
    idx_files,
    json_values,
    npy_bytes,
    npz_files,
    specs,
)

LOSSES = [
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "mse",
    "binary_crossentropy",
]


@st.composite
def small_projects(draw, source: dict, spec: tuple) -> dict:
    """Input -> Dense -> Output for ``spec`` reading ``source``, with random preprocessing."""
    shape, units, loss = spec
    layers = [{"id": "in", "type": "Input", "params": {"shape": shape}}]
    if len(shape) > 1:
        layers.append({"id": "flat", "type": "Flatten", "params": {}})
    activation = "softmax" if units > 1 else "sigmoid"
    layers += [
        {"id": "d", "type": "Dense", "params": {"units": units, "activation": activation}},
        {"id": "out", "type": "Output", "params": {"loss": loss}},
    ]
    ids = [n["id"] for n in layers]
    edges = [{"from": a, "to": b} for a, b in itertools.pairwise(ids)]
    data = {"source": source}
    if draw(st.booleans()):
        data["preprocess"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "normalize": st.sampled_from(["standard", "minmax", "none", "?"]),
                    "scale": st.one_of(st.none(), st.floats(allow_nan=True), json_values),
                    "reshape": st.one_of(st.just({"x": [-1]}), json_values),
                    "target_encoding": st.sampled_from(["auto", "onehot", "integer", "none"]),
                },
            )
        )
    if draw(st.booleans()):
        data["split"] = draw(st.one_of(st.just({"validation": 0.2, "test": 0.2}), json_values))
    if draw(st.integers(0, 3)) == 0:
        data["inputs"] = {"in": draw(st.sampled_from(["x", "a", "x_test", "é"]))}
    doc = {"format": "nodenet-project", "version": 1, "nodes": layers, "edges": edges}
    doc["data"] = data
    doc["training"] = {"batch_size": draw(st.sampled_from([1, 4, 32]))}
    return doc


def write(folder: Path, files: dict[str, bytes]) -> Path:
    """``files`` (relative path: content) written under ``folder``; ``folder``."""
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder


def run_source(folder: Path, source: dict, doc: dict) -> None:
    """The source read, described and prepared for a small project built on it."""
    attempt(load_source, source, folder)
    attempt(describe_source, source, folder)
    project = Project.from_dict(doc)
    project.path = folder / "project.json"
    run = attempt(build_run, project)
    if run is not None:  # prepared arrays are finite and float32 / int32
        for part in (run.data.train, run.data.val, run.data.test):
            for arrays in (part or {}).values():
                for array in arrays.values():
                    assert array.dtype in (np.float32, np.int32)
                    assert array.dtype == np.int32 or np.isfinite(array).all()


@pytest.mark.slow
@settings(max_examples=examples(100))
@given(specs(), st.data())
def test_npz_sources(spec, draw):
    files = {"d.npz": draw.draw(npz_files(spec))}
    source = {"kind": "npz", "path": "d.npz"}
    if draw.draw(st.integers(0, 4)) == 0:
        files["t.npz"] = draw.draw(npz_files(spec))
        source["test_path"] = "t.npz"
    if draw.draw(st.integers(0, 6)) == 0:
        source["classes"] = draw.draw(json_values)
    doc = draw.draw(small_projects(source, spec))
    with guarded("data files (NPZ)"), tempfile.TemporaryDirectory() as tmp:
        run_source(write(Path(tmp), files), source, doc)


@pytest.mark.slow
@settings(max_examples=examples(60))
@given(specs(), st.data())
def test_idx_sources(spec, draw):
    shape, _, _ = spec
    images_dims = [draw.draw(st.integers(1, 8)), *shape] if len(shape) == 2 else None
    images = draw.draw(idx_files(rank=3, dims=images_dims))
    rows = images_dims[0] if images_dims else draw.draw(st.integers(1, 8))
    labels = draw.draw(st.one_of(idx_files(dims=[rows]), idx_files()))
    files = {"mnist/train-images-idx3-ubyte": images, "mnist/train-labels-idx1-ubyte": labels}
    source = draw.draw(
        st.sampled_from(
            [
                {"kind": "idx", "path": "mnist"},
                {
                    "kind": "idx",
                    "images": "mnist/train-images-idx3-ubyte",
                    "labels": "mnist/train-labels-idx1-ubyte",
                },
            ]
        )
    )
    doc = draw.draw(small_projects(source, spec))
    with guarded("data files (IDX)"), tempfile.TemporaryDirectory() as tmp:
        run_source(write(Path(tmp), files), source, doc)


@pytest.mark.slow
@settings(max_examples=examples(100))
@given(specs(), csv_options, st.data())
def test_csv_sources(spec, options, draw):
    files = {"d.csv": draw.draw(csv_files(spec))}
    source = {"kind": "csv", "path": "d.csv", **options}
    if draw.draw(st.integers(0, 5)) == 0:
        files["t.csv"] = draw.draw(csv_files(spec))
        source["test_path"] = "t.csv"
    doc = draw.draw(small_projects(source, spec))
    with guarded("data files (CSV)"), tempfile.TemporaryDirectory() as tmp:
        run_source(write(Path(tmp), files), source, doc)


DIGITS = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"


@pytest.fixture(scope="module")
def digits_model():
    return build_model(Project.from_dict(json.loads(DIGITS.read_text())), seed=0)


@st.composite
def weights_files(draw, weights: dict) -> bytes:
    """The real weights of the digits model, with keys dropped, renamed, retyped, reshaped,
    made objects or a lying header, then maybe corrupted."""
    arrays = dict(weights)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            action = draw(
                st.sampled_from(
                    ["keep"] * 6 + ["drop", "rename", "dtype", "shape", "object", "huge", "nan"]
                )
            )
            name, claim = key, None
            if action == "drop":
                continue
            if action == "rename":
                name = key + draw(st.sampled_from(["_", "/x", ""]))
            elif action == "dtype":
                array = array.astype(draw(st.sampled_from(["<U3", "complex64", "int8", "bool"])))
            elif action == "shape":
                array = array.reshape(-1)[: draw(st.integers(0, 5))]
            elif action == "object":
                array = np.array([None, 1], dtype=object)
            elif action == "huge":
                claim = draw(st.sampled_from([(10**6, 10**6), (2**40,), (64, 10**7)]))
            elif action == "nan":
                array = array.copy()
                array.reshape(-1)[0] = np.nan
            archive.writestr(name + ".npy", npy_bytes(array, claim))
    return corrupt(draw, buffer.getvalue())


@pytest.mark.slow
@settings(max_examples=examples(40))
@given(st.data())
def test_weights_files(digits_model, draw):
    data = draw.draw(weights_files(digits_model.get_weights()))
    with guarded("weights files (NPZ)"), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.npz"
        path.write_bytes(data)
        for step in (digits_model.load_weights, _read_weights):
            try:
                step(path)
            except NodenetError as err:
                assert isinstance(err, WeightsError), type(err)
        try:
            load_arrays(path)
        except NodenetError as err:
            assert isinstance(err, DataError), type(err)


# -- regressions: each was a fuzzing failure, fixed in nodenet --------------------------------


def test_regression_text_labels_must_be_one_per_sample(tmp_path):
    """0-d and 2-D text arrays reached ``encode_labels``: TypeError (iteration over a 0-d
    array, an unhashable row)."""
    np.savez(tmp_path / "a.npz", x=np.zeros((2, 2)), y=np.array("ab"))
    with pytest.raises(DataError, match=r"a\.npz: array 'y' holds text of shape \(\); text"):
        load_source({"kind": "npz", "path": "a.npz"}, tmp_path)
    np.savez(tmp_path / "b.npz", x=np.zeros((2, 2)), y=np.array([["a", "b"], ["b", "a"]]))
    with pytest.raises(DataError, match=r"b\.npz: array 'y' holds text of shape \(2, 2\)"):
        load_source({"kind": "npz", "path": "b.npz"}, tmp_path)
    np.savez(tmp_path / "c.npz", x=np.zeros((2, 2)), y=np.array([["a"], ["b"]]))
    assert load_source({"kind": "npz", "path": "c.npz"}, tmp_path).arrays["y"].tolist() == [0, 1]


def test_regression_samples_without_values_are_refused(tmp_path):
    """An IDX file of shape (1, 0, 0) loaded; the preview's ``min()`` then raised ValueError."""
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte").write_bytes(
        b"\0\0\x08\x03" + struct.pack(">3I", 1, 0, 0)
    )
    (tmp_path / "mnist" / "train-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01\0\0\0\x01\x00")
    with pytest.raises(DataError, match=r"x: its samples hold no values \(shape \(1, 0, 0\)\)"):
        describe_source({"kind": "idx", "path": "mnist"}, tmp_path)


def test_regression_a_huge_label_gets_no_class_balance(tmp_path):
    """A CSV label of 10**12 made the preview's ``np.bincount`` try to allocate 8 TB (it
    hung, then would have run out of memory)."""
    (tmp_path / "d.csv").write_text("a,label\n1,0\n2,1000000000000\n")
    described = describe_source({"kind": "csv", "path": "d.csv"}, tmp_path)
    assert described["arrays"]["y"]["max"] == 1e12 and described["classes"] == {}
    (tmp_path / "e.csv").write_text("a,label\n1,0\n2,2\n")
    assert describe_source({"kind": "csv", "path": "e.csv"}, tmp_path)["classes"] == {
        "y": {"0": 1, "1": 0, "2": 1}
    }


def test_regression_npz_classes_must_be_lists_of_text(tmp_path):
    """``classes: {"y": 5}`` reached ``encode_labels``: TypeError (int is not iterable)."""
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 2)), y=np.array(["a", "b"]))
    with pytest.raises(DataError, match="option 'classes' must map array names to class lists"):
        load_source({"kind": "npz", "path": "d.npz", "classes": {"y": 5}}, tmp_path)


def test_regression_a_garbled_npy_header_is_a_weights_error(tmp_path, digits_model):
    """Found by the long profile: a header cut inside its dict made numpy's tokenize-based
    header parser raise tokenize.TokenError out of load_weights."""
    with zipfile.ZipFile(tmp_path / "w.npz", "w") as archive:
        archive.writestr(
            "probs/bias.npy", b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'shape': (\n"
        )
    with pytest.raises(WeightsError, match=r"w\.npz: array 'probs/bias' has a damaged header"):
        digits_model.load_weights(tmp_path / "w.npz")

"""The user's data files: CSV (Otto-like layout), NPZ (Keras mnist.npz layout), MNIST IDX.

Files are written here by hand (IDX byte by byte with ``struct``), so what is
read back is compared with what was written, not with the loaders' own output.
"""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from nodenet.engine.data import describe_source, load_source, prepare, read_idx
from nodenet.errors import DataError

CCE = "categorical_crossentropy"


# -- CSV ------------------------------------------------------------------------------


def write_otto(path, rows=27, classes=9, seed=0):
    """An Otto-like file: id, feat_1..feat_93 counts, target Class_1..Class_k."""
    rng = np.random.default_rng(seed)
    feats = rng.integers(0, 20, (rows, 93))
    labels = [f"Class_{i % classes + 1}" for i in range(rows)]
    header = ["id", *[f"feat_{j}" for j in range(1, 94)], "target"]
    lines = [",".join(header)]
    for i in range(rows):
        lines.append(",".join([str(i + 1), *map(str, feats[i]), labels[i]]))
    path.write_text("\n".join(lines) + "\n")
    return feats, labels


def csv_source(path, **options):
    return {"kind": "csv", "path": path.name, **options}


def test_csv_otto_layout(tmp_path):
    feats, labels = write_otto(tmp_path / "train.csv", classes=9)
    ds = load_source(
        csv_source(tmp_path / "train.csv", target="target", id_columns=["id"]), tmp_path
    )
    assert ds.arrays["x"].shape == (27, 93)
    np.testing.assert_array_equal(ds.arrays["x"], feats)
    classes = ds.meta.classes["y"]
    assert classes == [f"Class_{i}" for i in range(1, 10)]
    assert [classes[c] for c in ds.arrays["y"]] == labels
    assert ds.meta.extra["columns"][0] == "feat_1" and ds.meta.task == "classification"
    prepared = prepare(
        {
            "source": csv_source(tmp_path / "train.csv", target="target", id_columns=["id"]),
            "split": {"validation": 0.0, "test": 0.0},
        },
        {"features": ((93,), "float32")},
        {"product": ((9,), CCE)},
        tmp_path,
    )
    onehot = prepared.train["targets"]["product"]
    assert onehot.shape == (27, 9) and (onehot.sum(axis=1) == 1).all()
    assert prepared.meta.classes["product"] == classes


def test_csv_classes_sort_naturally_and_can_be_recorded(tmp_path):
    (tmp_path / "d.csv").write_text("a,label\n1,Class_10\n2,Class_2\n3,Class_1\n")
    ds = load_source(csv_source(tmp_path / "d.csv", target="label"), tmp_path)
    assert ds.meta.classes["y"] == ["Class_1", "Class_2", "Class_10"]
    assert ds.arrays["y"].tolist() == [2, 1, 0]
    recorded = ["Class_10", "Class_2", "Class_1"]
    ds = load_source(csv_source(tmp_path / "d.csv", classes=recorded), tmp_path)
    assert ds.arrays["y"].tolist() == [0, 1, 2] and ds.meta.classes["y"] == recorded
    with pytest.raises(DataError, match=r"d.csv: column 'label': line 2 has label 'Class_10'"):
        load_source(csv_source(tmp_path / "d.csv", classes=["Class_1", "Class_2"]), tmp_path)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("abc", r"line 4, column 'feat_2': 'abc' is not a number"),
        ("", r"line 4, column 'feat_2': the cell is empty"),
        ("nan", r"line 4, column 'feat_2': 'nan' is not a finite number"),
    ],
)
def test_csv_bad_cell_names_line_and_column(tmp_path, cell, message):
    rows = ["id,feat_1,feat_2,target", "1,1,2,A", "2,3,4,B", f"3,5,{cell},A"]
    (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=rf"bad.csv: {message}"):
        load_source(csv_source(tmp_path / "bad.csv", id_columns=["id"]), tmp_path)


def test_csv_structure_errors(tmp_path):
    (tmp_path / "d.csv").write_text("id,color,size,target\nx1,red,1,A\nx2,blue,2,B\n")
    with pytest.raises(DataError, match=r"column 'color'.*holds text.*id_columns"):
        load_source(csv_source(tmp_path / "d.csv", id_columns=["id"]), tmp_path)
    ds = load_source(csv_source(tmp_path / "d.csv", id_columns=["id", "color"]), tmp_path)
    assert ds.arrays["x"].tolist() == [[1.0], [2.0]]
    with pytest.raises(
        DataError,
        match=r"d.csv: option 'target': no column 'label' \(the 4 "
        r"columns are id, color, size, target\)",
    ):
        load_source(csv_source(tmp_path / "d.csv", target="label"), tmp_path)
    (tmp_path / "ragged.csv").write_text("a,b,target\n1,2,A\n3,B\n")
    with pytest.raises(DataError, match=r"ragged.csv: line 3 has 2 cells but there are 3"):
        load_source(csv_source(tmp_path / "ragged.csv"), tmp_path)
    with pytest.raises(DataError, match=r"missing.csv: no such file"):
        load_source(csv_source(tmp_path / "missing.csv"), tmp_path)


def test_csv_regression_no_header_and_test_file(tmp_path):
    (tmp_path / "r.csv").write_text("0.5;1;2.25\n1.5;2;3.75\n")
    (tmp_path / "r_test.csv").write_text("2.5;3;5.5\n")
    ds = load_source(
        csv_source(
            tmp_path / "r.csv", delimiter=";", header=False, target=2, test_path="r_test.csv"
        ),
        tmp_path,
    )
    assert ds.meta.task == "regression"
    assert ds.arrays["y"].tolist() == [2.25, 3.75] and ds.arrays["y_test"].tolist() == [5.5]
    assert ds.arrays["x"].tolist() == [[0.5, 1.0], [1.5, 2.0]]
    whole = load_source(
        csv_source(tmp_path / "r.csv", delimiter=";", header=False, target=1, task="regression"),
        tmp_path,
    )
    assert whole.meta.task == "regression" and whole.arrays["y"].dtype == np.float32


# -- NPZ ------------------------------------------------------------------------------


def write_mnist_npz(path, n_train=40, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    np.savez(path, **arrays)
    return arrays


def test_npz_keras_mnist_layout(tmp_path):
    raw = write_mnist_npz(tmp_path / "mnist.npz")
    ds = load_source({"kind": "npz", "path": "mnist.npz"}, tmp_path)
    assert sorted(ds.arrays) == ["x", "x_test", "y", "y_test"] and ds.names() == ["x", "y"]
    config = {
        "source": {"kind": "npz", "path": "mnist.npz"},
        "inputs": {"pixels": "x_train"},
        "targets": {"digit": "y"},
        "preprocess": {"scale": 1 / 255},
        "split": {"validation": 0.25, "seed": 3},
    }
    p = prepare(config, {"pixels": ((784,), "float32")}, {"digit": ((10,), CCE)}, tmp_path)
    assert p.meta.test_source == "dataset" and p.meta.sizes == {"train": 30, "val": 10, "test": 10}
    np.testing.assert_allclose(
        p.test["inputs"]["pixels"], raw["x_test"].reshape(10, 784) / 255, rtol=1e-6
    )
    np.testing.assert_array_equal(p.test["targets"]["digit"], np.eye(10)[raw["y_test"]])
    seen = np.concatenate([p.train["inputs"]["pixels"], p.val["inputs"]["pixels"]])
    assert sorted(map(bytes, seen)) == sorted(
        map(bytes, (raw["x_train"].reshape(40, 784) / 255).astype(np.float32))
    )


def test_npz_refuses_objects_and_pickles(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match=r"obj.npz: array 'x' holds Python objects"):
        load_source({"kind": "npz", "path": "obj.npz"}, tmp_path)
    (tmp_path / "p.npz").write_bytes(pickle.dumps({"x": [1, 2]}))
    with pytest.raises(DataError, match=r"p.npz: not an .npz archive"):
        load_source({"kind": "npz", "path": "p.npz"}, tmp_path)


def test_npz_text_labels_and_nan(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.ones((3, 2)), y=np.array(["cat", "dog", "cat"]))
    # an absolute path inside the project folder; from elsewhere only when allowed
    ds = load_source({"kind": "npz", "path": str(tmp_path / "t.npz")}, tmp_path)
    assert ds.arrays["y"].tolist() == [0, 1, 0]
    (tmp_path / "project").mkdir()
    with pytest.raises(DataError, match=r"data\.source\.path: .* outside the project folder"):
        load_source({"kind": "npz", "path": str(tmp_path / "t.npz")}, tmp_path / "project")
    ds = load_source(
        {"kind": "npz", "path": str(tmp_path / "t.npz")},
        tmp_path / "project",
        allow_outside_data=True,
    )
    assert ds.arrays["y"].tolist() == [0, 1, 0] and ds.meta.classes["y"] == ["cat", "dog"]
    np.savez(tmp_path / "n.npz", x=np.array([[1.0, 2.0], [np.nan, 1.0]]), y=np.zeros(2))
    with pytest.raises(DataError, match=r"x: sample 1 holds NaN"):
        load_source({"kind": "npz", "path": "n.npz"}, tmp_path)


# -- IDX ------------------------------------------------------------------------------


def idx_bytes(array, code=0x08, fmt="B"):
    """An IDX file written by hand: magic, big-endian dims, big-endian values."""
    head = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return head + struct.pack(f">{array.size}{fmt}", *array.ravel().tolist())


def test_idx_round_trip_plain_and_gzip_folder(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 6, dtype=np.uint8)
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images[:2])))
    (folder / "t10k-labels.idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels[:2])))
    ds = load_source({"kind": "idx", "path": "mnist"}, tmp_path)
    np.testing.assert_array_equal(ds.arrays["x"], images)
    np.testing.assert_array_equal(ds.arrays["y"], labels)
    np.testing.assert_array_equal(ds.arrays["x_test"], images[:2])
    np.testing.assert_array_equal(ds.arrays["y_test"], labels[:2])


def test_idx_big_endian_types(tmp_path):
    ints = np.array([[1, -2, 70000], [3, 2**30, -(2**31)]], dtype=np.int64)
    (tmp_path / "i.idx").write_bytes(idx_bytes(ints, 0x0C, "i"))
    np.testing.assert_array_equal(read_idx(tmp_path / "i.idx"), ints)
    floats = np.array([0.5, -1.25, 3e38])
    (tmp_path / "f.idx").write_bytes(idx_bytes(floats, 0x0D, "f"))
    got = read_idx(tmp_path / "f.idx")
    assert got.dtype == np.float32 and got.dtype.isnative
    np.testing.assert_array_equal(got, floats.astype(np.float32))


def test_idx_truncated_or_lying_headers_are_refused(tmp_path):
    images = np.zeros((10, 28, 28), np.uint8)
    good = idx_bytes(images)
    (tmp_path / "cut").write_bytes(good[:-100])
    with pytest.raises(
        DataError,
        match=r"cut: the header claims an array of shape \(10, 28, 28\)"
        r" \(7840 bytes\) but the file holds 7740 bytes",
    ):
        read_idx(tmp_path / "cut")
    liar = struct.pack(">BBBBIII", 0, 0, 8, 3, 4_000_000, 28, 28) + good[16:]
    (tmp_path / "liar.gz").write_bytes(gzip.compress(liar))
    with pytest.raises(DataError, match=r"liar.gz: the header claims .* only 7840 bytes"):
        read_idx(tmp_path / "liar.gz")
    huge = struct.pack(">BBBBIII", 0, 0, 8, 3, 2**31, 2**16, 28) + good[16:]
    (tmp_path / "huge.gz").write_bytes(gzip.compress(huge))
    with pytest.raises(DataError, match=r"huge.gz: the header claims .* more than the memory"):
        read_idx(tmp_path / "huge.gz")
    (tmp_path / "long").write_bytes(good + b"\0")
    with pytest.raises(DataError, match=r"long: the header claims"):
        read_idx(tmp_path / "long")
    (tmp_path / "magic").write_bytes(b"\x01\x00\x08\x01" + good[4:])
    with pytest.raises(DataError, match=r"magic: not an IDX file"):
        read_idx(tmp_path / "magic")
    (tmp_path / "type").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x00")
    with pytest.raises(DataError, match=r"type: unknown IDX value type 0x07"):
        read_idx(tmp_path / "type")


def test_idx_counts_must_agree(tmp_path):
    (tmp_path / "img").write_bytes(idx_bytes(np.zeros((3, 2, 2), np.uint8)))
    (tmp_path / "lab").write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DataError, match=r"img has 3 images but lab has 4 labels"):
        load_source({"kind": "idx", "images": "img", "labels": "lab"}, tmp_path)
    with pytest.raises(DataError, match=r"no labels file"):
        load_source({"kind": "idx", "images": "img"}, tmp_path)


def test_paths_are_relative_to_the_project_folder(tmp_path):
    (tmp_path / "data").mkdir()
    write_mnist_npz(tmp_path / "data" / "m.npz")
    project_dir = tmp_path
    ds = load_source({"kind": "npz", "path": "data/m.npz"}, project_dir)
    assert ds.arrays["x"].shape == (40, 28, 28)
    with pytest.raises(DataError, match=r"data/m.npz: no such file"):
        load_source({"kind": "npz", "path": "data/m.npz"}, tmp_path / "data")


def test_csv_quoted_cells_and_preview(tmp_path):
    (tmp_path / "q.csv").write_text(
        'name,"size",target\n"Smith, John",1.5,yes\n"Doe, Jane","2.5",no\n'
    )
    source = {"kind": "csv", "path": "q.csv", "id_columns": ["name"]}
    ds = load_source(source, tmp_path)
    assert ds.arrays["x"].tolist() == [[1.5], [2.5]] and ds.arrays["y"].tolist() == [1, 0]
    info = describe_source(source, tmp_path)
    assert info["extra"]["columns"] == ["size"] and info["classes"]["y"] == {"no": 1, "yes": 1}

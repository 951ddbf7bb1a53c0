"""Fuzzed image folders: corrupt, truncated and empty files, wrong extensions, empty and
hidden classes, PNG headers claiming huge images, links leaving the project folder.

Each folder is described, prepared, trained on for an epoch and evaluated. The only
outcomes allowed are nodenet's typed errors (with a message) or success; on success
every broken file the index keeps is counted as skipped, exactly once, and nothing
else is.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from nodenet.engine.data import describe_folder
from nodenet.graph.project import Project
from nodenet.runner import build_run
from tests.fuzz.harness import attempt, examples, guarded

# nodenet names an over-limit image as a skipped file; Pillow's own warning only repeats it
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


def png_bytes(height: int, width: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(side: int) -> bytes:
    """A well-formed PNG header claiming ``side`` x ``side`` pixels, with one tiny IDAT."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 16))
    return b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IEND", b"")


GOOD, BAD, IGNORED = "good", "bad", "ignored"
FILES = {  # kind -> (what the index and decoder make of it, name suffix, content maker)
    "png": (GOOD, ".png", lambda s: png_bytes(5, 4, s)),
    "png_upper": (GOOD, ".PNG", lambda s: png_bytes(3, 7, s)),
    "gif": (GOOD, ".gif", lambda s: _saved("GIF", s)),
    "bmp": (GOOD, ".bmp", lambda s: _saved("BMP", s)),
    "corrupt": (BAD, ".png", lambda s: bytes(np.random.default_rng(s).integers(0, 256, 60))),
    "truncated": (BAD, ".png", lambda s: png_bytes(5, 4, s)[:40]),
    "empty": (BAD, ".jpg", lambda s: b""),
    "text_as_png": (BAD, ".png", lambda s: b"just some words\n"),
    "huge_claim": (BAD, ".png", lambda s: huge_png(100_000)),
    "over_the_limit": (BAD, ".png", lambda s: huge_png(10_000)),
    "png_as_txt": (IGNORED, ".txt", lambda s: png_bytes(5, 4, s)),
}


def _saved(fmt: str, seed: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(
        out, format=fmt
    )
    return out.getvalue()


CLASSES = ["a", "b", "c", ".hidden", "é x"]
GOOD_KINDS = sorted(k for k, (fate, _, _) in FILES.items() if fate == GOOD)
file_kinds = st.one_of(st.sampled_from(GOOD_KINDS), st.sampled_from(sorted(FILES)))
folders = st.one_of(
    st.dictionaries(  # mostly usable folders, so that training is reached
        st.sampled_from(CLASSES[:3]), st.lists(file_kinds, min_size=2, max_size=6), min_size=2
    ),
    st.dictionaries(st.sampled_from(CLASSES), st.lists(file_kinds, max_size=6), max_size=4),
)
options = st.fixed_dictionaries(
    {
        "image_size": st.sampled_from([[4, 4], [3, 6], [5, 4]]),
        "color_mode": st.sampled_from(["grayscale", "rgb", "rgba"]),
        "label_mode": st.sampled_from(["int", "categorical", "binary"]),
    },
    optional={
        "interpolation": st.sampled_from(
            ["bilinear", "nearest", "NEAREST", "bilinear", "bicubic", 3]
        ),
        "crop_to_aspect_ratio": st.booleans(),
        "class_names": st.one_of(
            st.lists(st.sampled_from(CLASSES[:3]), min_size=2, max_size=3, unique=True),
            st.lists(st.sampled_from(CLASSES), max_size=3),
        ),
    },
)


def project_for(source: dict, classes: int) -> Project:
    height, width = source["image_size"]
    channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[source["color_mode"]]
    mode = source["label_mode"]
    units = 1 if mode == "binary" else max(classes, 1)
    activation = "sigmoid" if mode == "binary" else "softmax"
    loss = {
        "int": "sparse_categorical_crossentropy",
        "categorical": "categorical_crossentropy",
        "binary": "binary_crossentropy",
    }[mode]
    nodes = [
        {"id": "img", "type": "Input", "params": {"shape": [height, width, channels]}},
        {"id": "flat", "type": "Flatten", "params": {}},
        {"id": "dense", "type": "Dense", "params": {"units": units, "activation": activation}},
        {"id": "out", "type": "Output", "params": {"loss": loss}},
    ]
    edges = [{"from": a, "to": b, "port": 0} for a, b in [("img", "flat"), ("flat", "dense")]]
    edges.append({"from": "dense", "to": "out", "port": 0})
    doc = {"format": "nodenet-project", "version": 1, "nodes": nodes, "edges": edges}
    doc["training"] = {"batch_size": 2, "epochs": 1, "validation_split": 0.0}
    doc["data"] = {"source": source, "split": {"validation": 0.25, "test": 0.25}}
    return Project.from_dict(doc)


@settings(max_examples=examples(60))
@given(folders, options, st.integers(0, 3), st.integers(0, 2**16))
def test_broken_folders_give_typed_errors_or_skipped_counts(layout, opts, link, seed):
    with tempfile.TemporaryDirectory() as tmp:
        project_dir, outside = Path(tmp) / "project", Path(tmp) / "outside.png"
        root = project_dir / "images"
        root.mkdir(parents=True)
        outside.write_bytes(png_bytes(4, 4, seed))
        bad = set()
        for c, kinds in layout.items():
            (root / c).mkdir()
            for i, kind in enumerate(kinds):
                fate, suffix, make = FILES[kind]
                name = f"{c}/{i}{suffix}"
                (root / name).write_bytes(make(seed + i))
                if fate == BAD and not c.startswith("."):
                    bad.add(name)
        if link == 0 and layout:  # a link leaving the project folder: refused when indexed
            (root / sorted(layout)[0] / "link.png").symlink_to(outside)
        source = {"kind": "image_directory", "path": "images", **opts}
        project = project_for(source, len([c for c in layout if not c.startswith(".")]))
        project.path = project_dir / "project.json"
        with guarded("image folders"):
            attempt(describe_folder, source, project_dir)
            run = attempt(build_run, project)
            if run is None:
                return
            attempt(run.fit)
            attempt(run.evaluate_test)
            if run.data.val is not None:
                run.fit(epochs=1)  # validation too: every split read once at least
            log = run.data.meta.dataset.extra["skipped"].to_dict()
            chosen = opts.get("class_names") or None
            expected = {n for n in bad if chosen is None or n.split("/")[0] in chosen}
            assert {f["file"] for f in log["files"]} == expected
            assert log["count"] == len(expected)


@pytest.mark.parametrize("side", [100_000, 10_000])
def test_a_png_claiming_a_huge_image_is_skipped_from_its_header(tmp_path, side):
    from nodenet.engine.data.folder_decode import UnreadableFile, decode_image

    path = tmp_path / "bomb.png"
    path.write_bytes(huge_png(side))
    with pytest.raises(UnreadableFile, match="decompression-bomb"):
        decode_image(path, (4, 4), 3)


PATHS = [
    "ok.png",
    "bomb.png",
    "missing.png",
    "../outside.png",
    "/etc/hostname",
    "",
    "sub",
    "ok.PNG",
]
csv_rows = st.lists(
    st.tuples(st.sampled_from(PATHS), st.sampled_from(["x", "y", "", "z,w", '"q"'])),
    min_size=1,
    max_size=8,
)


@settings(max_examples=examples(40))
@given(csv_rows, st.sampled_from(["image", "file", 0]), st.integers(0, 2**16))
def test_image_csv_sources_give_typed_errors_or_skipped_counts(rows, column, seed):
    with tempfile.TemporaryDirectory() as tmp:
        project_dir = Path(tmp) / "project"
        (project_dir / "sub").mkdir(parents=True)
        (project_dir / "ok.png").write_bytes(png_bytes(4, 4, seed))
        (project_dir / "ok.PNG").write_bytes(png_bytes(3, 5, seed + 1))
        (project_dir / "bomb.png").write_bytes(huge_png(100_000))
        (Path(tmp) / "outside.png").write_bytes(png_bytes(4, 4, seed))
        lines = ["image,label"] + [f"{path},{label}" for path, label in rows]
        (project_dir / "list.csv").write_text("\n".join(lines) + "\n")
        source = {
            "kind": "image_csv",
            "path": "list.csv",
            "image_column": column,
            "image_size": [4, 4],
            "label_mode": "int",
        }
        project = project_for({**source, "color_mode": "rgb"}, 2)
        project.path = project_dir / "project.json"
        with guarded("image CSV files"):
            attempt(describe_folder, source, project_dir)
            run = attempt(build_run, project)
            if run is not None:
                attempt(run.fit)
                attempt(run.evaluate_test)

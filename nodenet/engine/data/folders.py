"""Folder datasets: one sub-folder per class, indexed as Keras's ``*_dataset_from_directory``.

Sources (the project's ``data.source``)::

    {"kind": "image_directory", "path": "data/pets", "image_size": [256, 256],
     "color_mode": "rgb", "labels": "inferred", "label_mode": "int",
     "class_names": null, "interpolation": "bilinear", "crop_to_aspect_ratio": false,
     "follow_links": false, "cache": false}
    {"kind": "text_directory", "path": ..., "label_mode": ..., "class_names": ...,
     "max_length": null, "max_tokens": null, "output_sequence_length": 200}
    (``output_sequence_length`` may be null when the texts feed a string Input)
    {"kind": "audio_directory", "path": ..., "label_mode": ..., "class_names": ...,
     "sampling_rate": null, "output_sequence_length": 16000, "cache": false}

Keras's rules: the classes are the sub-folders of ``path`` (hidden ones left
out) in sorted order, or ``class_names`` (a subset, in its order); each class's
files are found in its sub-folder and below (linked sub-folders are not entered
unless ``follow_links``), folder by folder in sorted order and file by file in
sorted order, keeping the allowed extensions (any letter case): ``.bmp .gif
.jpeg .jpg .png`` for images, ``.txt`` for text, ``.wav`` for audio. A class
folder without such files keeps its label (Keras does the same) and is reported.

Paths obey the outside-data rule of :mod:`.files`: the folder, and every linked
file or class folder in it, must resolve inside the project's folder unless
``allow_outside_data`` (else :class:`nodenet.errors.OutsideDataError`).

The split (:func:`split_ids`) hashes each file's path relative to the folder
with the split seed, so adding files never moves a file already there from one
split to another.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.engine.data.base import read_options
from nodenet.engine.data.files import resolve_path
from nodenet.engine.data.folder_decode import (
    AUDIO_FORMATS,
    CHANNELS,
    IMAGE_FORMATS,
    INTERPOLATIONS,
    TEXT_FORMATS,
)
from nodenet.engine.data.sample_folders import ensure_sample_folder
from nodenet.errors import DataError
from nodenet.safeio import inside_folder

FOLDER_KINDS = ("image_directory", "text_directory", "audio_directory", "image_csv")
IMAGE_KINDS = ("image_directory", "image_csv")
LABEL_MODES = ("int", "categorical", "binary")
MAX_FILES = 5_000_000  # an index of more file names than this is refused
FIELD = "data.source.path"
COMMON: dict[str, Any] = {
    "path": "",
    "labels": "inferred",
    "label_mode": "int",
    "class_names": None,
    "follow_links": False,
}
OPTIONS: dict[str, dict[str, Any]] = {
    "image_directory": {
        **COMMON,
        "image_size": [256, 256],
        "color_mode": "rgb",
        "interpolation": "bilinear",
        "crop_to_aspect_ratio": False,
        "cache": False,
    },
    "text_directory": {
        **COMMON,
        "max_length": None,
        "max_tokens": None,
        "output_sequence_length": None,
    },
    "audio_directory": {
        **COMMON,
        "sampling_rate": None,
        "output_sequence_length": None,
        "cache": False,
    },
    "image_csv": {  # a CSV file naming image files (folder_csv.py)
        "path": "",
        "image_column": "image",
        "target": "label",
        "delimiter": ",",
        "label_mode": "int",
        "class_names": None,
        "image_size": [256, 256],
        "color_mode": "rgb",
        "interpolation": "bilinear",
        "crop_to_aspect_ratio": False,
        "cache": False,
    },
}
FORMATS = {
    "image_directory": IMAGE_FORMATS,
    "text_directory": TEXT_FORMATS,
    "audio_directory": AUDIO_FORMATS,
    "image_csv": IMAGE_FORMATS,
}
WHAT = {
    "image_directory": "image",
    "text_directory": "text",
    "audio_directory": "wav",
    "image_csv": "image",
}


@dataclass
class FolderIndex:
    """The files of a folder dataset: paths relative to ``root``, their labels, the classes.

    ``names[i]`` has label ``labels[i]`` (an index into ``class_names``);
    ``empty`` lists the classes without a file.
    """

    kind: str
    root: Path
    options: dict[str, Any]
    names: list[str]
    labels: np.ndarray
    class_names: list[str]
    empty: list[str] = field(default_factory=list)

    def counts(self, ids: np.ndarray | None = None) -> dict[str, int]:
        """Files per class (of ``ids``, default all)."""
        labels = self.labels if ids is None else self.labels[ids]
        counts = np.bincount(labels, minlength=len(self.class_names))
        return {c: int(n) for c, n in zip(self.class_names, counts, strict=True)}


def read_folder_options(source: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(kind, options)`` of a folder source, defaults filled in and checked."""
    kind = source.get("kind")
    where = f"{kind} source"
    opts = read_options(where, {k: v for k, v in source.items() if k != "kind"}, OPTIONS[kind])
    if opts.get("labels", "inferred") != "inferred":
        raise DataError(
            f"{where}: option 'labels' must be \"inferred\" (the classes are the sub-folders)"
        )
    if opts["label_mode"] not in LABEL_MODES:
        raise DataError(
            f"{where}: option 'label_mode' must be one of {', '.join(LABEL_MODES)}, "
            f"got {opts['label_mode']!r}"
        )
    names = opts["class_names"]
    if names is not None and not (
        isinstance(names, list) and names and all(isinstance(c, str) for c in names)
    ):
        raise DataError(f"{where}: option 'class_names' must be a list of sub-folder names")
    if names is not None and len(set(names)) != len(names):
        raise DataError(f"{where}: option 'class_names' names a class twice")
    if kind in IMAGE_KINDS:
        _image_options(where, opts)
    else:
        _sequence_options(where, kind, opts)
    return kind, opts


def _image_options(where: str, opts: dict[str, Any]) -> None:
    size = opts["image_size"]
    if isinstance(size, int) and not isinstance(size, bool):
        size = opts["image_size"] = [size, size]  # Keras takes an int for a square
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 8192 for s in size)
    ):
        raise DataError(f"{where}: option 'image_size' must be [height, width], got {size!r}")
    if opts["color_mode"] not in CHANNELS:
        raise DataError(
            f"{where}: option 'color_mode' must be one of {', '.join(CHANNELS)}, "
            f"got {opts['color_mode']!r}"
        )
    interpolation = str(opts["interpolation"]).lower()
    if interpolation not in INTERPOLATIONS:
        raise DataError(
            f"{where}: option 'interpolation' must be one of {', '.join(INTERPOLATIONS)} "
            f"(nodenet reads these of Keras's), got {opts['interpolation']!r}"
        )
    opts["interpolation"] = interpolation


def _sequence_options(where: str, kind: str, opts: dict[str, Any]) -> None:
    length = opts["output_sequence_length"]
    if length is None and kind == "text_directory":
        pass  # the raw texts feed a string Input; token ids need the length (folder_prepare)
    elif not (isinstance(length, int) and not isinstance(length, bool) and 1 <= length <= 10**7):
        raise DataError(
            f"{where}: option 'output_sequence_length' must be set to a whole number of "
            f"{'tokens' if kind == 'text_directory' else 'samples'} (nodenet's Inputs have a "
            f"fixed length), got {length!r}"
        )
    for key in ("max_length", "max_tokens", "sampling_rate"):
        value = opts.get(key)
        if value is not None and not (
            isinstance(value, int) and not isinstance(value, bool) and value >= 1
        ):
            raise DataError(f"{where}: option {key!r} must be a positive whole number or null")
    if opts.get("max_tokens") is not None and opts["max_tokens"] < 3:
        raise DataError(f"{where}: option 'max_tokens' must leave room for a word (at least 3)")


def index_source(
    source: Mapping[str, Any], base_dir: Path | None, *, allow_outside_data: bool = False
) -> FolderIndex:
    """The files of a folder source, or of an ``image_csv`` source (:mod:`.folder_csv`)."""
    if source.get("kind") == "image_csv":
        from nodenet.engine.data.folder_csv import index_csv

        return index_csv(source, base_dir, allow_outside_data=allow_outside_data)
    return index_folder(source, base_dir, allow_outside_data=allow_outside_data)


def index_folder(
    source: Mapping[str, Any], base_dir: Path | None, *, allow_outside_data: bool = False
) -> FolderIndex:
    """List a folder source's files and labels by Keras's rules (see the module docstring)."""
    kind, opts = read_folder_options(source)
    where = f"{kind} source"
    if isinstance(opts["path"], str) and opts["path"].strip():  # a bundled sample's folder
        ensure_sample_folder(Path(base_dir or Path.cwd()) / Path(opts["path"]).expanduser())
    root = resolve_path(where, opts["path"], base_dir, allow_outside_data=allow_outside_data)
    shown = opts["path"]
    if not root.is_dir():
        raise DataError(f"{shown}: is a file, not a folder of class sub-folders")
    try:
        subdirs = sorted(e for e in os.listdir(root) if not e.startswith("."))
        subdirs = [d for d in subdirs if (root / d).is_dir()]
    except OSError as err:
        raise DataError(f"{shown}: cannot be listed ({err.strerror or err})") from None
    if opts["class_names"] is not None:
        missing = [c for c in opts["class_names"] if c not in subdirs]
        if missing:
            raise DataError(
                f"{shown}: option 'class_names' names {missing[0]!r}, which is not a sub-folder "
                f"(sub-folders: {', '.join(subdirs) or 'none'})"
            )
        subdirs = list(opts["class_names"])
    if not subdirs:
        raise DataError(
            f"{shown}: has no class sub-folders; put each class's files in a sub-folder "
            "named after the class"
        )
    names: list[str] = []
    labels: list[int] = []
    empty = []
    for label, subdir in enumerate(subdirs):
        found = _class_files(root, subdir, FORMATS[kind], opts, base_dir, allow_outside_data)
        if not found:
            empty.append(subdir)
        names += found
        labels += [label] * len(found)
        if len(names) > MAX_FILES:
            raise DataError(f"{shown}: holds more than {MAX_FILES:,} files")
    if not names:
        raise DataError(
            f"{shown}: no {WHAT[kind]} files in its class sub-folders "
            f"(allowed: {', '.join(FORMATS[kind])})"
        )
    return FolderIndex(kind, root, opts, names, np.array(labels, np.int64), subdirs, empty)


def _class_files(
    root: Path,
    subdir: str,
    formats: tuple[str, ...],
    opts: dict[str, Any],
    base_dir: Path | None,
    allow: bool,
) -> list[str]:
    """The allowed files under ``root/subdir``, relative to ``root`` (posix), Keras's order."""
    top = root / subdir
    if top.is_symlink():
        inside_folder(FIELD, f"{opts['path']}/{subdir}", top, base_dir, allow)
    folders: list[tuple[str, list[str]]] = []
    pending = [top]
    while pending:
        folder = pending.pop()
        files = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=opts["follow_links"]):
                        if entry.is_symlink():
                            given = f"{opts['path']}/{Path(entry.path).relative_to(root)}"
                            inside_folder(FIELD, given, Path(entry.path), base_dir, allow)
                        pending.append(Path(entry.path))
                    elif entry.name.lower().endswith(formats) and entry.is_file():
                        if entry.is_symlink():
                            rel = Path(entry.path).relative_to(root).as_posix()
                            given = f"{opts['path']}/{rel}"
                            inside_folder(FIELD, given, Path(entry.path), base_dir, allow)
                        files.append(entry.name)
        except OSError as err:
            raise DataError(
                f"{opts['path']}/{folder.relative_to(root).as_posix()}: cannot be listed "
                f"({err.strerror or err})"
            ) from None
        folders.append((str(folder), sorted(files)))
    out = []
    for folder, files in sorted(folders, key=lambda f: f[0]):
        prefix = Path(folder).relative_to(root).as_posix()
        out += [f"{prefix}/{name}" for name in files]
    return out


def split_ids(
    names: list[str], validation: float, test: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train, validation, test)`` file indices, each ordered by the files' shares.

    A file's share ``u`` in [0, 1) is the first 8 bytes of
    ``sha256(f"{seed}/{relative path}")``; it goes to test when ``u < test``, to
    validation when ``u < test + validation``, to training otherwise. The
    fractions are met on average (a binomial draw), and a file keeps its split
    whatever files are added or removed. Within a split the files are in the
    order of their shares, a seeded shuffle (Keras shuffles the file list too),
    so that a Keras-style ``validation_split`` (the last samples) draws from
    every class.
    """
    share = np.fromiter(
        (
            int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "big")
            for name in names
        ),
        np.float64,
        len(names),
    ) / float(2**64)
    order = np.argsort(share, kind="stable")  # a seeded shuffle, as Keras shuffles the paths
    ranked = share[order]
    in_test = ranked < test
    in_val = ~in_test & (ranked < test + validation)
    return order[~in_test & ~in_val], order[in_val], order[in_test]


def encode_labels_as(labels: np.ndarray, mode: str, classes: int) -> np.ndarray:
    """Keras's label encodings: ``int`` (n,) int64, ``categorical`` (n, k) float32 one-hot,
    ``binary`` (n, 1) float32."""
    if mode == "categorical":
        return np.eye(classes, dtype=np.float32)[labels]
    if mode == "binary":
        return labels.astype(np.float32)[:, None]
    return labels.astype(np.int64)

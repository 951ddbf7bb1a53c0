"""What a folder dataset holds, for the Data panel: :func:`describe_folder`.

Cheap: the folder is indexed (names only) and split; only the few sample files
shown are decoded. The summary gives the classes with their counts per split,
sample files with their labels and decoded previews, the files found
unreadable among those, and what the graph needs: the Input's shape and dtype,
the Output's units, activation and loss for the chosen ``label_mode``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.engine.data import preprocess
from nodenet.engine.data.folder_decode import UnreadableFile, read_text
from nodenet.engine.data.folder_prepare import file_samples, sample_spec
from nodenet.engine.data.folders import index_source, split_ids
from nodenet.engine.data.stream import SkipLog

PREVIEW_TEXT_CHARS = 300
WAVEFORM_POINTS = 400


@dataclass
class FolderSummary:
    """A folder dataset at a glance (see :func:`describe_folder`).

    ``counts``: ``{"train" | "val" | "test": {class: files}}``; ``samples``: a few
    files per class, each ``{"file", "class", "split", "preview"}`` where
    ``preview`` is the decoded image (h, w, c) float32 0..255, the text's
    beginning, or the waveform (points, channels), or ``None`` when unreadable;
    ``skipped``: ``{"count", "files": [{"file", "reason"}]}`` among the files
    decoded here; ``notes``: sentences for the user (empty classes).
    """

    kind: str
    path: str
    files: int
    class_names: list[str]
    counts: dict[str, dict[str, int]]
    samples: list[dict[str, Any]]
    skipped: dict[str, Any]
    input_shape: list[int]
    input_dtype: str
    output_units: int
    output_activation: str
    loss: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: previews as nested lists (images as 0..255 integers)."""
        out = dict(self.__dict__)
        out["samples"] = [{**s, "preview": _plain(s["preview"])} for s in self.samples]
        return out


def _plain(preview: Any) -> Any:
    if isinstance(preview, np.ndarray):
        return np.round(preview, 4).tolist()
    return preview


def suggested_head(label_mode: str, classes: int) -> tuple[int, str, str]:
    """``(units, activation, loss)`` Keras users pair with ``label_mode``."""
    if label_mode == "binary":
        return 1, "sigmoid", "binary_crossentropy"
    if label_mode == "categorical":
        return classes, "softmax", "categorical_crossentropy"
    return classes, "softmax", "sparse_categorical_crossentropy"


def describe_folder(
    source: Mapping[str, Any],
    base_dir: Path | None = None,
    seed: int = 1671,
    split: Mapping[str, Any] | None = None,
    *,
    per_class: int = 3,
    allow_outside_data: bool = False,
) -> FolderSummary:
    """Summarize the folder source ``source`` (paths relative to ``base_dir``).

    ``split`` is the project's ``data.split`` (default none); ``per_class`` sample
    files are decoded per class. Raises :class:`nodenet.errors.DataError` for a
    folder that cannot be used (no class sub-folders, no files, outside the
    project's folder).
    """
    index = index_source(source, base_dir, allow_outside_data=allow_outside_data)
    opts = index.options
    fractions = preprocess.read_split(dict(split or {}), seed)
    parts = split_ids(index.names, fractions["validation"], fractions["test"], fractions["seed"])
    where = np.zeros(len(index.names), np.int8)
    for code, ids in enumerate(parts):
        where[ids] = code
    counts = {p: index.counts(ids) for p, ids in zip(("train", "val", "test"), parts, strict=True)}
    skipped = SkipLog()
    if index.kind == "text_directory":
        # without output_sequence_length the texts themselves feed a string Input
        strings = opts["output_sequence_length"] is None
        shape, dtype = sample_spec(index, strings=strings)
        decode = None
    else:
        samples_source = file_samples(index, use_cache=False)  # a preview writes nothing
        samples_source.skipped = skipped
        shape, dtype = samples_source.sample_shape, "float32"
        decode = samples_source
    samples = []
    for label, name in enumerate(index.class_names):
        ids = np.flatnonzero(index.labels == label)[:per_class]
        for file_id in ids:
            samples.append(
                {
                    "file": index.names[file_id],
                    "class": name,
                    "split": ("train", "val", "test")[where[file_id]],
                    "preview": _preview(index, int(file_id), decode, skipped),
                }
            )
    units, activation, loss = suggested_head(opts["label_mode"], len(index.class_names))
    notes = [
        f"{opts['path']}/{c}: holds no file with an allowed extension (the class is kept, as in "
        "Keras)"
        for c in index.empty
    ]
    if sum(1 for n in index.counts().values() if n) < 2:
        notes.append(f"{opts['path']}: fewer than two classes have files; nothing to classify")
    return FolderSummary(
        index.kind,
        opts["path"],
        len(index.names),
        list(index.class_names),
        counts,
        samples,
        skipped.to_dict(),
        list(shape),
        dtype,
        units,
        activation,
        loss,
        notes,
    )


def _preview(index, file_id: int, decode, skipped: SkipLog) -> Any:
    name = index.names[file_id]
    if decode is None:
        try:
            return read_text(index.root / name, PREVIEW_TEXT_CHARS)
        except UnreadableFile as err:
            skipped.add(name, str(err))
            return None
    kept, batch = decode.load(np.array([file_id]))
    if not kept[0]:
        return None
    sample = batch[0]
    if index.kind == "audio_directory" and len(sample) > WAVEFORM_POINTS:
        step = len(sample) // WAVEFORM_POINTS
        sample = sample[: step * WAVEFORM_POINTS : step]
    return sample

"""The folder a PyTorch training process reads its work from and writes its results to.

Nothing in it is pickled and nothing executes: ``job.json`` (what to do, the project's
resolved settings, which array file holds which Input or Output), ``project.json`` (the
project, read by :func:`nodenet.graph.project.Project.from_json`, validated again), the
weights as ``.npz`` in Keras layouts, and every data array as its own ``.npy`` file, which
the child memory-maps (``np.load(mmap_mode="r", allow_pickle=False)``). Array files are
named by position (``train_x0.npy``); the ids they belong to are in ``job.json``. The
child writes ``trained.npz`` (Keras layouts) and, to predict, ``predicted_<k>.npy``; the
parent asks it to stop by creating ``stop``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.atomic import atomic_write

JOB, PROJECT, WEIGHTS, TRAINED, STOP = (
    "job.json",
    "project.json",
    "weights.npz",
    "trained.npz",
    "stop",
)
Arrays = dict[str, np.ndarray]


def write_split(folder: Path, name: str, inputs: Arrays, targets: Arrays | None) -> dict:
    """Each array of a split as ``.npy`` in ``folder``; its entry for ``job.json``:
    ``{"inputs": [[id, file], ...], "targets": [...]}`` (ids in the given order)."""
    entry: dict[str, list] = {"inputs": [], "targets": []}
    for kind, arrays in (("inputs", inputs), ("targets", targets or {})):
        for k, (key, array) in enumerate(arrays.items()):
            file = f"{name}_{kind[0]}{k}.npy"
            np.save(folder / file, np.ascontiguousarray(array), allow_pickle=False)
            entry[kind].append([key, file])
    return entry


def read_split(folder: Path, entry: dict) -> tuple[Arrays, Arrays]:
    """The arrays of a split written by :func:`write_split`, memory-mapped."""

    def load(file: str) -> np.ndarray:
        if Path(file).name != file:  # job.json names files of its own folder only
            raise ValueError(f"{file!r} is not a file name")
        return np.load(folder / file, mmap_mode="r", allow_pickle=False)

    return (
        {key: load(file) for key, file in entry["inputs"]},
        {key: load(file) for key, file in entry["targets"]},
    )


def write_job(folder: Path, job: dict[str, Any]) -> None:
    put_text(folder / JOB, json.dumps(job, allow_nan=False))


def put_text(path: Path, text: str) -> None:
    """A file of the hand-over folder (private to one run), written whole then renamed."""
    atomic_write(path, text)


def write_arrays(path: Path, arrays: dict[str, Any]) -> None:
    """Arrays as an ``.npz`` of the hand-over folder (no pickles), written whole then renamed."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, buffer.getvalue())


def read_job(folder: Path) -> dict[str, Any]:
    return json.loads((folder / JOB).read_text(encoding="utf-8"))

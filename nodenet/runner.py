"""From a project to a trained model: build, load data, fit, evaluate, save.

The one place where the document's settings become engine calls, shared by the
command line, the GUI's worker thread and the tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nodenet.atomic import atomic_stream
from nodenet.engine import settings
from nodenet.engine.callbacks import Callback
from nodenet.engine.events import Sink
from nodenet.engine.model import Model, _length
from nodenet.engine.model_io import NUMERIC_KINDS
from nodenet.engine.training import History, evaluate, fit
from nodenet.errors import DataError, brief
from nodenet.graph.project import analyze
from nodenet.safeio import open_regular, read_npz

HASH_CHUNK = 2**20


def weights_path(project) -> Path | None:
    """Where a project's trained weights live: ``NAME.weights.npz`` beside the file."""
    if project.path is None:
        return None
    path = Path(project.path)
    return path.with_name(path.stem + ".weights.npz")


def base_dir(project) -> Path:
    return Path(project.path).parent if project.path is not None else Path.cwd()


@dataclass
class Run:
    """A built model with its prepared data and resolved training settings."""

    project: Any
    model: Model
    data: Any  # nodenet.engine.data.PreparedData
    training: dict[str, Any]

    def fit(
        self,
        *,
        on_event: Sink | None = None,
        callbacks: Sequence[Callback] = (),
        should_stop: Callable[[], bool] | None = None,
        epochs: int | None = None,
        progress_interval: float = 0.0,
    ) -> History:
        """Train with the project's settings; events and callbacks as for
        :func:`nodenet.engine.training.fit`."""
        t = self.training
        train, val = self.data.train, self.data.val
        validation = (val["inputs"], val["targets"]) if val and _count(val) else None
        return fit(
            self.model,
            train["inputs"],
            train["targets"],
            epochs=t["epochs"] if epochs is None else epochs,
            batch_size=t["batch_size"],
            optimizer=t["optimizer"],
            validation_data=validation,
            validation_split=0.0 if validation else t["validation_split"],
            shuffle=t["shuffle"],
            seed=t["seed"],
            class_weight=t["class_weight"],
            early_stopping=t["early_stopping"],
            reduce_lr_on_plateau=t["reduce_lr_on_plateau"],
            callbacks=callbacks,
            on_event=on_event,
            should_stop=should_stop,
            progress_interval=progress_interval,
            test_samples=int(self.data.meta.sizes.get("test", 0) or 0),
        )

    def evaluate_test(self) -> dict[str, float] | None:
        """Loss and metrics on the test split, or None when there is none."""
        test = self.data.test
        if not test or not _count(test):
            return None
        return evaluate(
            self.model,
            test["inputs"],
            test["targets"],
            batch_size=max(self.training["batch_size"], 256),
        )


def _count(split: dict) -> int:
    arrays = split.get("inputs") or {}
    return len(next(iter(arrays.values()))) if arrays else 0


def build_model(project, dtype=np.float32, seed: int | None = None, fuse: bool = True) -> Model:
    """The engine's model of ``project`` (:class:`ValidationError` if it has problems)."""
    return Model(analyze(project).blueprint(project), dtype=dtype, seed=seed, fuse=fuse)


def build_run(
    project,
    *,
    load_data: bool = True,
    seed: int | None = None,
    allow_outside_data: bool = False,
) -> Run:
    """Validate the project, build its model (seeded weights) and prepare its data.

    Data paths must resolve inside the project's folder unless
    ``allow_outside_data``; otherwise :class:`nodenet.errors.OutsideDataError`
    (a :class:`DataError`) names the field and the path, and the caller may ask
    the user and call again with ``allow_outside_data=True``.
    """
    blueprint = analyze(project).blueprint(project)
    training = settings.resolved(project.training)
    if seed is not None:
        training["seed"] = seed
    model = Model(blueprint, seed=training["seed"])
    data = (
        prepare_data(project, model, training["seed"], allow_outside_data=allow_outside_data)
        if load_data
        else None
    )
    return Run(project, model, data, training)


def prepare_data(project, model: Model, seed: int | None, *, allow_outside_data: bool = False):
    """The project's data, prepared and checked against the model's Inputs and Outputs."""
    from nodenet.engine.data import prepare

    if not project.data or not project.data.get("source"):
        raise DataError("the project has no data source: choose a dataset (data.source)")
    input_specs = {i: (model.shapes[i], model.layers[i].config["dtype"]) for i in model.input_ids}
    output_specs = {h.id: (model.shapes[h.id], h.loss) for h in model.heads}
    return prepare(
        project.data,
        input_specs,
        output_specs,
        base_dir(project),
        seed if seed is not None else 0,
        allow_outside_data=allow_outside_data,
    )


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` file, never unpickling anything, within the memory budget.

    Every array must hold numbers (or booleans): text, bytes or complex numbers
    are refused with a :class:`DataError` naming the file and the array.
    """
    arrays = read_npz(path, DataError)
    for key, array in arrays.items():
        if array.dtype.kind not in NUMERIC_KINDS:
            raise DataError(
                f"{path}: array {brief(key)} holds {array.dtype} values, not numbers; "
                "a model takes numbers only"
            )
    return arrays


# -- predictions, streamed to the output file ------------------------------------------------


def write_predictions(
    model: Model, inputs: dict[str, np.ndarray], path: str | Path, batch_size: int = 256
) -> dict[str, tuple[int, ...]]:
    """Write the model's outputs for ``inputs`` to the ``.npz`` file ``path``, batch by batch.

    Nothing larger than one batch's outputs is held in memory: the first
    Output's array streams straight into its archive member (its ``.npy``
    header first, from the sample count and the first batch's shape); the others
    go through anonymous temporary files beside ``path`` that vanish when
    closed. The archive is written atomically (:func:`nodenet.safeio.atomic_stream`).
    Returns each Output's array shape.
    """
    n = _length(model.check_inputs(inputs, cast=False))
    heads = [h.id for h in model.heads]
    path = Path(path)
    with (
        atomic_stream(path) as f,
        zipfile.ZipFile(f, mode="w", allowZip64=True) as archive,
        contextlib.ExitStack() as spooled,
    ):
        spools = {
            h: _NpyStream(n, spooled.enter_context(tempfile.TemporaryFile(dir=path.parent)))
            for h in heads[1:]
        }
        with archive.open(f"{heads[0]}.npy", mode="w", force_zip64=True) as member:
            first = _NpyStream(n, member)
            for outputs in model.predict_batches(inputs, batch_size):
                first.write(outputs[heads[0]])
                for head, spool in spools.items():
                    spool.write(outputs[head])
            first.finish(model.shapes[heads[0]], model.dtype)
        for head, spool in spools.items():
            spool.finish(model.shapes[head], model.dtype)
            spool.stream.seek(0)
            with archive.open(f"{head}.npy", mode="w", force_zip64=True) as member:
                shutil.copyfileobj(spool.stream, member, HASH_CHUNK)
    return {heads[0]: first.shape, **{h: s.shape for h, s in spools.items()}}


class _NpyStream:
    """An ``.npy`` array of ``n`` samples written to ``stream`` one batch at a time."""

    def __init__(self, n: int, stream: BinaryIO):
        self.n, self.stream, self.done = n, stream, 0
        self.shape: tuple[int, ...] | None = None

    def write(self, batch: np.ndarray) -> None:
        batch = np.ascontiguousarray(batch)
        if self.shape is None:
            self._header((self.n, *batch.shape[1:]), batch.dtype)
        if batch.shape[1:] != self.shape[1:]:
            raise DataError(f"a batch of outputs has shape {batch.shape}, not {self.shape}")
        self.stream.write(memoryview(batch).cast("B"))
        self.done += len(batch)

    def finish(self, sample_shape: tuple, dtype: np.dtype) -> None:
        """Complete the array: the header of an empty one, or check every sample came."""
        if self.shape is None:
            self._header((self.n, *(0 if d is None else d for d in sample_shape)), dtype)
        if self.done != self.n:  # pragma: no cover - predict_batches covers every sample
            raise DataError(f"{self.done} outputs were computed for {self.n} samples")

    def _header(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.shape = tuple(int(d) for d in shape)
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False,
            "shape": self.shape,
        }
        np.lib.format.write_array_header_2_0(self.stream, header)


# -- weights and their history ---------------------------------------------------------------


def file_digest(path: str | Path) -> str:
    """The sha256 of a file's bytes (hex), read in chunks."""
    digest = hashlib.sha256()
    with open_regular(path) as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def history_matches(history: dict[str, Any], weights: str | Path) -> bool:
    """Whether a history (as ``train`` writes it) was written for the weights file ``weights``.

    ``train`` writes the weights, then the history with the weights' sha256
    (``weights_sha256``). A kill between the two leaves new weights beside the
    previous history; that history's digest then no longer matches, which a
    reader detects here. A history without a digest (older files) never matches.
    """
    expected = history.get("weights_sha256") if isinstance(history, dict) else None
    if not isinstance(expected, str):
        return False
    try:
        return file_digest(weights) == expected
    except (OSError, DataError):
        return False

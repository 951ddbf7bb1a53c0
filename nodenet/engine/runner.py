"""From a project to a trained model: build, load data, fit, evaluate, save.

The one place where the document's settings become engine calls, shared by the
command line, the GUI's worker thread and the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.engine import settings
from nodenet.engine.model import Model
from nodenet.engine.training import History, evaluate, fit
from nodenet.errors import DataError, ValidationError
from nodenet.safeio import read_npz


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
        on_batch: Callable | None = None,
        on_epoch: Callable | None = None,
        should_stop: Callable[[], bool] | None = None,
        epochs: int | None = None,
        progress_interval: float = 0.0,
    ) -> History:
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
            on_batch=on_batch,
            on_epoch=on_epoch,
            should_stop=should_stop,
            progress_interval=progress_interval,
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
    from nodenet.project import analyze

    analysis = analyze(project)
    if analysis.problems:
        raise ValidationError(analysis.problems)
    training = settings.resolved(project.training)
    if seed is not None:
        training["seed"] = seed
    model = Model(project, seed=training["seed"])
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
    """Arrays of an ``.npz`` file, never unpickling anything, within the memory budget."""
    return read_npz(path, DataError)

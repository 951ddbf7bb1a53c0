"""A project as a Keras model file (``.keras``): the model, its weights and compile settings.

The model is built by the Keras module :func:`nodenet.export.export_keras` generates for the
project: nodenet's own source, generated from a validated project (never code read from a
file), imported from a private temporary folder. Its ``build_model`` makes the functional
model, ``load_weights`` sets the given weights (or the seeded initial weights ``nodenet
predict`` starts from), ``compile_model`` the project's optimizer, losses and metrics; then
``model.save`` writes the file, which is read back once with ``keras.models.load_model``
(safe mode) before it replaces any file at the destination.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from nodenet.atomic import write_into_new_folder
from nodenet.errors import NodenetError, SaveError, shorten
from nodenet.graph.project import Project

NO_KERAS = 'the Keras model file needs Keras 3: pip install "nodenet[ref]"'


def require_keras():
    """The ``keras`` module on the backend nodenet picks (``KERAS_BACKEND``, else the first
    installed), or a :class:`NodenetError` saying how to install it."""
    from nodenet.keras_backend import load_keras

    try:
        return load_keras()
    except ImportError:
        raise NodenetError(NO_KERAS) from None


def initial_weights(project: Project) -> dict[str, np.ndarray]:
    """The seeded initial weights ``nodenet predict`` and ``train --epochs 0`` start from."""
    from nodenet.engine import settings
    from nodenet.runner import build_model

    return build_model(project, seed=settings.resolved(project.training)["seed"]).get_weights()


def keras_model(project: Project, weights: dict[str, np.ndarray] | None = None):
    """The compiled ``keras.Model`` of ``project`` holding ``weights`` (Keras layouts,
    ``node/name``; the seeded initial weights when ``None``).

    Raises :class:`ValidationError` for an invalid project, :class:`WeightsError` for
    weights that do not fit it, :class:`NodenetError` without Keras.
    """
    require_keras()
    from nodenet.export import export_keras

    if weights is None:
        weights = initial_weights(project)
    code = export_keras(project, weights)
    with tempfile.TemporaryDirectory(prefix="nodenet_keras_model_") as folder:
        source = Path(folder) / "nodenet_generated_model.py"
        write_into_new_folder(source, code.source)  # the folder is private and temporary
        weights_file = code.weights_path(source)
        write_into_new_folder(weights_file, code.weights or b"")
        module = _module_of(source)
        try:
            model = module.build_model()
        except ImportError as err:  # a layer needing a library Keras lacks (TensorFlow)
            raise NodenetError(f"Keras cannot build this model here: {err}") from None
        module.load_weights(model, weights_file)
        module.compile_model(model)
    model.optimizer.build(model.trainable_variables)  # its slots saved, as Keras reloads them
    return model


def save_keras_model(
    project: Project, weights: dict[str, np.ndarray] | None, path: str | os.PathLike
) -> Path:
    """Write the Keras model file of ``project`` to ``path`` (ending ``.keras``); the path.

    Raises what :func:`keras_model` raises, and :class:`SaveError` when the file cannot be
    written or read back.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise NodenetError(f"{shorten(str(path))}: a Keras model file must end in .keras")
    keras = require_keras()
    model = keras_model(project, weights)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.partial.keras")
    try:
        model.save(temporary)
        keras.models.load_model(temporary, safe_mode=True)  # what a reader will do
        os.replace(temporary, path)
    except OSError as err:
        raise SaveError(f"{shorten(str(path))}: cannot be written: {err.strerror or err}") from None
    except (ValueError, TypeError) as err:
        raise SaveError(
            f"{shorten(str(path))}: Keras cannot read the model back ({shorten(str(err), 200)})"
        ) from None
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _module_of(source: Path):
    """The generated module at ``source``, imported (and left out of ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(source.stem, source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[source.stem] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[source.stem]
    return module

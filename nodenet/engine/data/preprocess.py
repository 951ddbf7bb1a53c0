"""Preprocessing recorded in the project: split, scale, normalize, reshape, encode targets.

The project's ``data.preprocess``::

    {"normalize": "standard" | "minmax" | "none",   # or {Input id or array name: method}
     "scale": 0.00392 | null,                        # multiplies float inputs first
     "reshape": {"x": [28, 28, 1]},                  # per array, before anything else
     "target_encoding": "auto" | "onehot" | "integer" | "none"}  # or {Output id: ...}

Settings given per node (a dict) fall back to ``"none"`` / ``"auto"`` for the
nodes they leave out.

and ``data.split``: ``{"validation": 0.2, "test": 0.2, "seed": 1671}``, both
fractions of all samples (default 0: no split), drawn by a seeded shuffle; the
test fraction is taken only when the dataset has no test split of its own.
With no fraction to hold out the samples stay in the dataset's order.
Without ``seed`` the run's seed is used. A validation split made here is left
out of the normalization statistics; with ``validation`` 0 the training
settings' Keras-style ``validation_split`` (the last samples of the training
data, after preprocessing) applies instead.

Normalization acts on every element position of a sample separately, like
scikit-learn's ``StandardScaler`` / ``MinMaxScaler`` on flattened samples: the
mean and (population) standard deviation, or the minimum and maximum, come
from the **training split only**, and a constant position is left unscaled
(divisor 1). Integer (index) inputs are never scaled or normalized. Targets
are never normalized.

Target encoding ``auto`` follows the Output's loss: one-hot for
``categorical_crossentropy`` (unless the data is one-hot already), integer
labels for ``sparse_categorical_crossentropy``, the values as they are
otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from nodenet.engine.data.base import check_range, read_options
from nodenet.errors import DataError
from nodenet.safeio import memory_budget

NORMALIZATIONS = ("none", "standard", "minmax")
ENCODINGS = ("auto", "onehot", "integer", "none")
PREPROCESS_DEFAULTS: dict[str, Any] = {
    "normalize": "none",
    "scale": None,
    "reshape": {},
    "target_encoding": "auto",
}
SPLIT_DEFAULTS: dict[str, Any] = {"validation": 0.0, "test": 0.0, "seed": None}
ROWS_PER_CHUNK = 8192  # bounds the float64 temporaries on large arrays
CHUNK_SHARE = 32  # and a chunk takes at most this fraction of the memory budget
CHUNK_TEMPORARIES = 4  # float64 chunks alive at once while normalizing
LABEL_LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy")


def read_preprocess(config: Any) -> dict[str, Any]:
    """``data.preprocess`` with defaults filled in; bad values raise DataError."""
    if not isinstance(config, Mapping):
        raise DataError("data.preprocess must be an object")
    # normalize and target_encoding take a name or a per-node dict: checked below, not by type
    loose = {**PREPROCESS_DEFAULTS, "normalize": None, "target_encoding": None}
    opts = read_options("data.preprocess", config, loose)
    for key in ("normalize", "target_encoding"):
        opts[key] = PREPROCESS_DEFAULTS[key] if opts[key] is None else opts[key]
    _check_choice("data.preprocess.normalize", opts["normalize"], NORMALIZATIONS)
    _check_choice("data.preprocess.target_encoding", opts["target_encoding"], ENCODINGS)
    scale = opts["scale"]
    if scale is not None and (
        not isinstance(scale, int | float) or isinstance(scale, bool) or not math.isfinite(scale)
    ):
        raise DataError(f"data.preprocess.scale must be a number or null, got {scale!r}")
    for name, shape in opts["reshape"].items():
        if not (
            isinstance(shape, list)
            and shape
            and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
        ):
            raise DataError(
                f"data.preprocess.reshape.{name} must be a list of sizes like "
                f"[28, 28, 1], got {shape!r}"
            )
    return opts


def _check_choice(where: str, value: Any, choices: tuple[str, ...]) -> None:
    values = value.values() if isinstance(value, Mapping) else [value]
    for v in values:
        if v not in choices:
            raise DataError(f"{where} must be one of {', '.join(choices)}, got {v!r}")


def pick(setting: Any, keys: tuple[str, ...], default: str) -> Any:
    """A setting that is one value for all, or a dict keyed by node id or array name."""
    if not isinstance(setting, Mapping):
        return setting
    return next((setting[k] for k in keys if k in setting), default)


def read_split(config: Any, seed: int) -> dict[str, Any]:
    """``data.split`` with defaults filled in and the fractions checked."""
    if not isinstance(config, Mapping):
        raise DataError("data.split must be an object")
    opts = read_options("data.split", config, SPLIT_DEFAULTS)
    for key in ("validation", "test"):
        value = opts[key]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise DataError(f"data.split.{key} must be a fraction like 0.2, got {value!r}")
        check_range(f"data.split.{key}", value, 0.0, 0.9)
    if opts["validation"] + opts["test"] >= 1.0:
        raise DataError("data.split: validation and test together must leave training samples")
    if opts["seed"] is None:
        opts["seed"] = seed
    elif not isinstance(opts["seed"], int) or isinstance(opts["seed"], bool):
        raise DataError(f"data.split.seed must be an integer, got {opts['seed']!r}")
    return opts


def split_indices(
    n: int, validation: float, test: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train, validation, test)`` sample indices; fractions are of all ``n``.

    With both fractions 0 nothing is held out and the training samples keep the
    dataset's order (as Keras's ``fit`` receives them); otherwise one seeded
    permutation: its first ``round(test * n)`` test, the next ``round(validation * n)``
    validation, the rest training, in the permuted order.
    """
    if not (validation or test):
        return np.arange(n), np.arange(0), np.arange(0)
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = round(test * n), round(validation * n)
    if n - n_test - n_val < 1:
        raise DataError(f"data.split: {n} samples leave none for training")
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def reshape_samples(where: str, array: np.ndarray, shape: list[int]) -> np.ndarray:
    """``array`` (n, ...) reshaped to (n, *shape); one size may be -1."""
    try:
        return array.reshape(len(array), *shape)
    except ValueError:
        raise DataError(
            f"{where}: cannot reshape samples of shape {tuple(array.shape[1:])} "
            f"({math.prod(array.shape[1:])} values) to {tuple(shape)}"
        ) from None


# -- normalization ------------------------------------------------------------------


def fit_normalizer(method: str, train: np.ndarray, scale: float | None) -> dict[str, Any]:
    """Statistics of the training samples, each of the sample shape (float64).

    ``{"method": "standard", "mean", "std"}`` or ``{"method": "minmax", "min",
    "max"}``; ``{"method": "none"}`` for none. ``scale`` multiplies first.
    """
    if method == "standard":
        mean, std = _mean_std(train, scale)
        return {"method": method, "mean": mean, "std": std}
    if method == "minmax":
        low = train.min(axis=0).astype(np.float64) * (scale or 1.0)
        high = train.max(axis=0).astype(np.float64) * (scale or 1.0)
        low, high = np.minimum(low, high), np.maximum(low, high)  # a negative scale swaps them
        return {"method": method, "min": low, "max": high}
    return {"method": "none"}


def _mean_std(x: np.ndarray, scale: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-position mean and population std over axis 0, accumulated in float64."""
    total = np.zeros(x.shape[1:])
    rows = chunk_rows(x.shape[1:])
    for start in range(0, len(x), rows):
        total += _chunk(x, start, scale).sum(axis=0)
    mean = total / len(x)
    squares = np.zeros(x.shape[1:])
    for start in range(0, len(x), rows):
        squares += ((_chunk(x, start, scale) - mean) ** 2).sum(axis=0)
    return mean, np.sqrt(squares / len(x))


def chunk_rows(sample_shape: tuple) -> int:
    """Rows per float64 chunk: at most :data:`ROWS_PER_CHUNK`, and one chunk at most
    1/:data:`CHUNK_SHARE` of the memory budget (a few temporaries live at once)."""
    per_row = math.prod(int(d) for d in sample_shape) * 8
    return max(1, min(ROWS_PER_CHUNK, memory_budget() // CHUNK_SHARE // max(per_row, 1)))


def chunk_bytes(sample_shape: tuple) -> int:
    """Bytes of one float64 chunk of samples of ``sample_shape`` (see :func:`chunk_rows`)."""
    return chunk_rows(sample_shape) * math.prod(int(d) for d in sample_shape) * 8


def _chunk(x: np.ndarray, start: int, scale: float | None) -> np.ndarray:
    chunk = x[start : start + chunk_rows(x.shape[1:])].astype(np.float64)
    return chunk * scale if scale is not None else chunk


def transform(x: np.ndarray, scale: float | None, stats: Mapping[str, Any]) -> np.ndarray:
    """``x`` (n, ...) scaled then normalized with ``stats``, as float32 of the same shape.

    Computed in float64 chunk by chunk; a constant position (std or range 0)
    is divided by 1.
    """
    out = np.empty(x.shape, np.float32)
    method = stats.get("method", "none")
    if method == "standard":
        shift, divisor = stats["mean"], stats["std"]
    elif method == "minmax":
        shift, divisor = stats["min"], stats["max"] - stats["min"]
    else:
        shift, divisor = 0.0, np.ones(())
    constant = divisor <= 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(shift))
    divisor = np.where(constant, 1.0, divisor)
    rows = chunk_rows(x.shape[1:])
    for start in range(0, len(x), rows):
        out[start : start + rows] = (_chunk(x, start, scale) - shift) / divisor
    return out


# -- shapes and targets ---------------------------------------------------------------


def _matches(sample: tuple, shape: tuple) -> bool:
    """Whether a sample shape fits a block shape (None in the block shape fits any size)."""
    sample, shape = tuple(sample), tuple(shape)
    return len(sample) == len(shape) and all(
        s is None or s == d for d, s in zip(sample, shape, strict=True)
    )


def _describe(sample: tuple) -> str:
    if not sample:
        return "one value per sample"
    if len(sample) == 1:
        return f"{sample[0]} features per sample"
    return f"samples of shape {sample}"


def fit_shape(where: str, name: str, array: np.ndarray, shape: tuple, block: str) -> np.ndarray:
    """``array`` (n, ...) made to have samples of ``shape``, or a DataError naming both.

    Samples with as many values as the shape are reshaped (C order); with
    unknown sizes (None) in ``shape``, only a trailing axis of 1 is added or
    removed.
    """
    sample = tuple(array.shape[1:])
    shape = tuple(shape)
    if _matches(sample, shape):
        return array
    if None not in shape and math.prod(sample) == math.prod(shape):
        return array.reshape(len(array), *shape)
    if _matches((*sample, 1), shape):
        return array[..., None]
    if sample and sample[-1] == 1 and _matches(sample[:-1], shape):
        return array[..., 0]
    raise DataError(
        f"{where}: the data ({name!r}) gives {_describe(sample)} but the {block} has shape {shape}"
    )


def encode_target(
    node: str,
    name: str,
    y: np.ndarray,
    shape: tuple,
    loss: str,
    encoding: str,
    classes: list[str] | None,
) -> tuple[np.ndarray, str]:
    """Targets ``y`` (n, ...) for an Output of ``shape`` and ``loss``; returns ``(t, encoding)``.

    ``onehot`` gives float32 (n, *shape) from integer labels (n, *shape[:-1]);
    ``integer`` gives int32 labels (n, *shape[:-1]) for the sparse loss, float32
    fitted to ``shape`` otherwise; ``none`` gives float32 fitted to ``shape``.
    """
    shape = tuple(shape)
    label_shape = shape[:-1]
    sample = tuple(y.shape[1:])
    looks_like_labels = _matches(sample, label_shape) or _matches(sample, (*label_shape, 1))
    if encoding == "auto":
        encoding = "none"
        if loss == "sparse_categorical_crossentropy":
            encoding = "integer"
        elif loss == "categorical_crossentropy" and looks_like_labels and shape[-1:] != (1,):
            encoding = "onehot"
    if encoding == "none":
        target = fit_shape(node, name, y.astype(np.float32), shape, "Output")
        if loss == "binary_crossentropy" and ((target < 0) | (target > 1)).any():
            raise DataError(
                f"{node}: binary_crossentropy needs targets between 0 and 1, but "
                f"{name!r} holds values from {y.min():g} to {y.max():g}"
            )
        return target, encoding
    units = shape[-1] if shape else None
    if encoding == "integer" and loss == "categorical_crossentropy":
        raise DataError(
            f"{node}: integer targets need sparse_categorical_crossentropy; use "
            "onehot targets with categorical_crossentropy"
        )
    if encoding == "onehot" and loss == "sparse_categorical_crossentropy":
        raise DataError(
            f"{node}: sparse_categorical_crossentropy takes integer labels; use "
            "integer targets, or categorical_crossentropy with onehot"
        )
    if encoding == "onehot" or loss in LABEL_LOSSES:
        _check_classes(node, units, classes)
    limit = units if encoding == "onehot" or loss in LABEL_LOSSES else None
    labels = _labels(node, name, y, label_shape if limit else shape, limit)
    if encoding == "onehot":
        return np.eye(units, dtype=np.float32)[labels], encoding
    if loss == "sparse_categorical_crossentropy":
        return labels.astype(np.int32), encoding
    return fit_shape(node, name, labels.astype(np.float32), shape, "Output"), encoding


def _check_classes(node: str, units: int | None, classes: list[str] | None) -> None:
    if units is None:
        raise DataError(f"{node}: class labels need an Output with a known number of units")
    if classes and len(classes) != units and units > 1:
        names = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
        raise DataError(
            f"{node}: the dataset has {len(classes)} classes ({names}) but the "
            f"Output has {units} units"
        )


def _labels(node: str, name: str, y: np.ndarray, label_shape: tuple, limit: int | None):
    """Integer labels (n, *label_shape) from ``y``; whole numbers in ``0..limit-1``."""
    label_shape = tuple(label_shape)
    if _matches(tuple(y.shape[1:]), (*label_shape, 1)) and not _matches(y.shape[1:], label_shape):
        y = y[..., 0]
    if limit is not None and not _matches(tuple(y.shape[1:]), label_shape):
        raise DataError(
            f"{node}: class labels in {name!r} must be one whole number per "
            f"{'sample' if not label_shape else f'position of {label_shape}'}, but the data "
            f"gives {_describe(tuple(y.shape[1:]))}"
        )
    flat = y.reshape(len(y), -1)
    whole = flat == np.round(flat)
    if not whole.all():
        raise DataError(
            f"{node}: {name!r} sample {int(np.argmax(~whole.all(axis=1)))} holds "
            f"{float(flat[~whole][0]):g}, not a whole-number class label"
        )
    if limit is not None:
        bad = (flat < 0) | (flat >= limit)
        if bad.any():
            sample = int(np.argmax(bad.any(axis=1)))
            raise DataError(
                f"{node}: {name!r} sample {sample} has label {flat[bad][0]:g}, "
                f"outside 0..{limit - 1} for an Output of {limit} units"
            )
    return y.astype(np.int64)

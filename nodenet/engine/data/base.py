"""What every data source gives: a :class:`Dataset` of named arrays, and shared checks.

A dataset is a dict of numpy arrays, one sample per row (axis 0), plus
:class:`DatasetMeta`. Built-in datasets give ``x`` and ``y``; a dataset that
comes with its own test split also gives ``x_test`` and ``y_test`` (the rule
for any array ``NAME`` is ``NAME_test``). Files may give any names.

Built-in datasets are makers registered in :data:`BUILTINS` with
:func:`register_builtin`: a function ``make(seed, options) -> Dataset`` and the
options it takes, with their defaults.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nodenet.engine.registry import Registry
from nodenet.errors import DataError

TEST_SUFFIX = "_test"
TASKS = ("classification", "regression")
MAX_SAMPLES = 1_000_000  # bound on generated datasets, so a typo cannot fill the memory


@dataclass
class DatasetMeta:
    """What a dataset is: its name, task, class names per label array, a description.

    ``classes`` maps a label array's name (``"y"``) to its class names, in label
    order (label ``i`` is ``classes["y"][i]``). ``extra`` holds source-specific
    facts (a vocabulary, the CSV feature columns).
    """

    name: str = ""
    task: str = "classification"
    description: str = ""
    classes: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """Named arrays, each of shape ``(samples, ...)``, and their :class:`DatasetMeta`."""

    arrays: dict[str, np.ndarray]
    meta: DatasetMeta = field(default_factory=DatasetMeta)

    def names(self) -> list[str]:
        """The array names a project may map to nodes (test arrays left out)."""
        return [n for n in self.arrays if not self.is_test_name(n)]

    def is_test_name(self, name: str) -> bool:
        """Whether ``name`` is the own test split of another array (``x_test`` of ``x``)."""
        return name.endswith(TEST_SUFFIX) and name[: -len(TEST_SUFFIX)] in self.arrays

    def test_array(self, name: str) -> np.ndarray | None:
        """The own test split of array ``name``, if the dataset has one."""
        return self.arrays.get(name + TEST_SUFFIX)


@dataclass(frozen=True)
class Builtin:
    """A registered built-in dataset: its maker, options with defaults, and facts."""

    name: str
    make: Callable[[int, dict[str, Any]], Dataset]
    task: str
    description: str
    options: Mapping[str, Any]
    requires: str | None = None  # the importable package of an optional extra


BUILTINS: Registry[Builtin] = Registry("built-in dataset")


def register_builtin(
    name: str,
    *,
    task: str,
    description: str,
    options: Mapping[str, Any] | None = None,
    requires: str | None = None,
) -> Callable:
    """Decorator: register ``make(seed, options) -> Dataset`` as built-in dataset ``name``."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")

    def decorate(make: Callable[[int, dict[str, Any]], Dataset]) -> Callable:
        entry = Builtin(name, make, task, description, dict(options or {}), requires)
        BUILTINS.register(name)(entry)
        return make

    return decorate


# -- options ------------------------------------------------------------------


def read_options(where: str, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict:
    """``defaults`` updated with ``given``, each value checked against its default's type.

    Unknown names and ill-typed values raise :class:`DataError` naming ``where``
    and the option. A default of ``None`` accepts any value.
    """
    unknown = [k for k in given if k not in defaults]
    if unknown:
        known = ", ".join(defaults) or "none"
        raise DataError(f"{where}: unknown option {unknown[0]!r} (options: {known})")
    out = dict(defaults)
    for key, value in given.items():
        out[key] = _typed(f"{where}: option {key!r}", value, defaults[key])
    return out


def _typed(what: str, value: Any, default: Any) -> Any:
    if default is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise DataError(f"{what} must be {type(default).__name__} like {default!r}, got {value!r}")
    return value


def check_range(where: str, value: float, low: float, high: float | None = None) -> None:
    """Raise :class:`DataError` unless ``low <= value <= high``."""
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise DataError(f"{where} must be {bound}, got {value!r}")


def check_samples(where: str, samples: int) -> None:
    check_range(f"{where}: option 'samples'", samples, 1, MAX_SAMPLES)


# -- array checks ---------------------------------------------------------------


def check_array(name: str, array: np.ndarray) -> np.ndarray:
    """Refuse arrays nodenet cannot train on: objects, text, no sample axis, NaN, inf.

    Returns ``array`` unchanged (booleans become ``uint8``).
    """
    if array.dtype == bool:
        array = array.astype(np.uint8)
    text = array.dtype.kind == "U" and array.ndim == 2 and array.shape[1] == 1
    if array.dtype.kind not in "iuf" and not text:  # one text per sample: a string Input's
        raise DataError(f"{name}: holds {array.dtype} values; nodenet reads numbers only")
    if array.ndim == 0:
        raise DataError(f"{name}: is a single number, not an array of samples")
    if array.shape[0] == 0:
        raise DataError(f"{name}: has no samples")
    if array.size == 0:
        raise DataError(f"{name}: its samples hold no values (shape {array.shape})")
    if array.dtype.kind == "f":
        check_finite(name, array)
    return array


def check_finite(name: str, array: np.ndarray) -> None:
    """Raise :class:`DataError` naming ``name`` and the first bad sample on NaN or inf."""
    if array.dtype.kind != "f":
        return
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if bad.any():
        first = int(np.argmax(bad))
        what = "NaN" if np.isnan(array[first]).any() else "an infinite value"
        raise DataError(
            f"{name}: sample {first} holds {what} ({int(bad.sum())} sample(s) are affected); "
            "remove or fill missing values first"
        )


def check_dataset(dataset: Dataset) -> Dataset:
    """Apply :func:`check_array` to every array; each test array must match its pair."""
    for name, array in list(dataset.arrays.items()):
        dataset.arrays[name] = check_array(name, np.asarray(array))
    for name in dataset.names():
        test = dataset.test_array(name)
        if test is not None and test.shape[1:] != dataset.arrays[name].shape[1:]:
            raise DataError(
                f"{name}{TEST_SUFFIX}: samples have shape {tuple(test.shape[1:])} but {name}'s "
                f"have shape {tuple(dataset.arrays[name].shape[1:])}"
            )
    return dataset


def natural_key(text: str) -> list:
    """Sort key that puts ``Class_2`` before ``Class_10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def encode_labels(
    where: str,
    labels: np.ndarray,
    classes: list[str] | None = None,
    lines: list[int] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """String labels to integers ``0 .. k-1``, with the class list used.

    Without ``classes`` the class list is the sorted distinct labels (natural
    order: ``Class_2`` before ``Class_10``). With ``classes``, a label outside
    it raises :class:`DataError` naming ``where`` and the sample (or its file
    line, given ``lines``).

    Parameters
    ----------
    labels : array of str, shape ``(samples,)``

    Returns
    -------
    codes : int64 array, shape ``(samples,)``
    classes : list of str
    """
    labels = np.asarray(labels).astype(str)
    if classes is None:
        classes = sorted({str(v) for v in np.unique(labels)}, key=natural_key)
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != len(classes):
        raise DataError(f"{where}: the class list names a class twice")
    codes = np.fromiter((index.get(v, -1) for v in labels), np.int64, len(labels))
    if (codes < 0).any():
        first = int(np.argmax(codes < 0))
        at = f"line {lines[first]}" if lines is not None else f"sample {first}"
        raise DataError(
            f"{where}: {at} has label {str(labels[first])!r}, which is not one of the "
            f"classes {', '.join(classes)}"
        )
    return codes, list(classes)

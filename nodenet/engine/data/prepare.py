"""From the project's ``data`` section to arrays for each Input and Output node.

:func:`load_source` reads ``data.source`` into a :class:`Dataset`;
:func:`prepare` maps dataset arrays to nodes (``data.inputs`` / ``data.targets``,
or automatically when that is unambiguous), splits, preprocesses, and checks
every array against its node's shape and loss. :func:`describe_source` is a
cheap summary for a preview.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.engine.data import idx, preprocess
from nodenet.engine.data.base import (
    BUILTINS,
    Dataset,
    DatasetMeta,
    check_dataset,
    read_options,
)
from nodenet.engine.data.files import load_csv, load_npz
from nodenet.errors import DataError
from nodenet.safeio import fmt_bytes, over_budget, size_of

Shape = tuple
SOURCE_KINDS = ("builtin", "csv", "npz", "idx")
FOLDER_KINDS = ("image_directory", "text_directory", "audio_directory", "image_csv")  # folders.py
MAX_PREVIEW_CLASSES = 10_000  # larger labels get no class balance in the preview


class NothingToPrepareError(DataError):
    """The graph has no Input or Output the data could be prepared for (yet)."""


@dataclass
class PreparedMeta:
    """What :func:`prepare` did, so a run can be described and repeated.

    ``classes`` and ``encodings`` are per Output node id; ``normalization``
    per Input node id (``{"method": "standard", "mean": ..., "std": ...}``,
    float64 arrays of the sample shape); ``mapping`` is the node -> array map
    used; ``test_source`` is ``"dataset"`` (its own test split), ``"split"``
    or ``None`` (no test set).
    """

    dataset: DatasetMeta
    task: str
    classes: dict[str, list[str]] = field(default_factory=dict)
    encodings: dict[str, str] = field(default_factory=dict)
    normalization: dict[str, dict[str, Any]] = field(default_factory=dict)
    mapping: dict[str, dict[str, str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    test_source: str | None = None


@dataclass
class PreparedData:
    """Arrays ready for training: ``{"inputs": {node id: array}, "targets": {node id: array}}``.

    Inputs are float32, or int32 for int32 Inputs; targets are float32, or
    int32 labels for ``sparse_categorical_crossentropy``. Every array has the
    sample count on axis 0. ``val`` and ``test`` are ``None`` when empty.
    """

    train: dict[str, dict[str, np.ndarray]]
    val: dict[str, dict[str, np.ndarray]] | None
    test: dict[str, dict[str, np.ndarray]] | None
    meta: PreparedMeta


# -- sources ------------------------------------------------------------------------


def load_source(
    source: Any,
    base_dir: Path | None = None,
    seed: int = 1671,
    *,
    allow_outside_data: bool = False,
) -> Dataset:
    """Read ``data.source`` (``{"kind": "builtin", "name": "digits"}``, ...) into a Dataset.

    Paths are relative to ``base_dir`` (the project file's folder) and must
    resolve inside it unless ``allow_outside_data`` (else
    :class:`nodenet.errors.OutsideDataError`, naming the field). ``seed``
    drives the synthetic generators unless the source gives its own ``seed``.
    Raises :class:`DataError` naming the file, option or array at fault.
    """
    if not isinstance(source, Mapping) or not source:
        raise DataError(
            "data.source: the project has no data source; choose a dataset or a "
            "file in the data settings"
        )
    kind = source.get("kind")
    options = {k: v for k, v in source.items() if k != "kind"}
    if kind == "builtin":
        dataset = load_builtin(options.pop("name", None), options, seed)
    elif kind == "csv":
        dataset = load_csv(options, base_dir, allow_outside_data=allow_outside_data)
    elif kind == "npz":
        dataset = load_npz(options, base_dir, allow_outside_data=allow_outside_data)
    elif kind == "idx":
        dataset = idx.load_idx(options, base_dir, allow_outside_data=allow_outside_data)
    elif kind in FOLDER_KINDS:
        raise DataError(
            f"data.source: a {kind} is read batch by batch when the data is prepared, never "
            "loaded whole (nodenet.engine.data.describe_folder summarizes it)"
        )
    else:
        kinds = ", ".join((*SOURCE_KINDS, *FOLDER_KINDS))
        raise DataError(f"data.source.kind must be one of {kinds}, got {kind!r}")
    return check_dataset(dataset)


def load_builtin(name: Any, options: Mapping[str, Any], seed: int = 1671) -> Dataset:
    """Make built-in dataset ``name`` with ``options`` (and an optional ``seed`` option)."""
    if not isinstance(name, str) or name not in BUILTINS:
        known = ", ".join(BUILTINS.names())
        raise DataError(f"data.source: unknown built-in dataset {name!r} (known: {known})")
    entry = BUILTINS.get(name)
    options = dict(options)
    seed = options.pop("seed", seed)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise DataError(f"{name}: option 'seed' must be an integer, got {seed!r}")
    dataset = entry.make(seed, read_options(name, options, entry.options))
    meta = dataset.meta
    meta.name, meta.task = meta.name or name, entry.task
    meta.description = meta.description or entry.description
    return dataset


def builtin_datasets() -> list[dict[str, Any]]:
    """Every built-in dataset: name, task, description, options, whether it is installed."""
    return [
        {
            "name": name,
            "task": entry.task,
            "description": entry.description,
            "options": dict(entry.options),
            "available": entry.requires is None
            or importlib.util.find_spec(entry.requires) is not None,
        }
        for name, entry in BUILTINS.items()
    ]


def describe_source(
    source: Any,
    base_dir: Path | None = None,
    seed: int = 1671,
    rows: int = 5,
    *,
    allow_outside_data: bool = False,
) -> dict[str, Any]:
    """A plain-data summary for a preview: arrays (shape, dtype, range), class balance,
    the first ``rows`` samples (flattened, at most 12 values each). JSON-friendly.
    A folder source gives :func:`describe_folder`'s summary instead."""
    if isinstance(source, Mapping) and source.get("kind") in FOLDER_KINDS:
        from nodenet.engine.data.folder_summary import describe_folder

        summary = describe_folder(source, base_dir, seed, allow_outside_data=allow_outside_data)
        return summary.to_dict()
    ds = load_source(source, base_dir, seed, allow_outside_data=allow_outside_data)
    arrays = {
        name: {
            "shape": list(a.shape),
            "dtype": str(a.dtype),
            "min": float(a.min()) if a.dtype.kind != "U" else None,
            "max": float(a.max()) if a.dtype.kind != "U" else None,
        }
        for name, a in ds.arrays.items()
    }
    balance = {}
    for name, a in ds.arrays.items():
        stem = name[: -len("_test")] if ds.is_test_name(name) else name
        labelled = stem in ds.meta.classes or (ds.meta.task == "classification" and stem == "y")
        if (
            labelled
            and a.ndim == 1
            and a.dtype.kind in "iu"
            and a.min() >= 0
            and a.max() < MAX_PREVIEW_CLASSES  # a label of 10**12 must not allocate 8 TB
        ):
            counts = np.bincount(a).tolist()
            names = ds.meta.classes.get(stem) or [str(i) for i in range(len(counts))]
            balance[name] = dict(
                zip(names, counts + [0] * (len(names) - len(counts)), strict=False)
            )
    preview = {
        name: np.round(a[:rows].reshape(len(a[:rows]), -1)[:, :12].astype(float), 4).tolist()
        if a.dtype.kind != "U"
        else a[:rows, 0].tolist()  # texts, for a string Input
        for name, a in ds.arrays.items()
    }
    return {
        "name": ds.meta.name,
        "task": ds.meta.task,
        "description": ds.meta.description,
        "arrays": arrays,
        "classes": balance,
        "preview": preview,
        "extra": dict(ds.meta.extra),
    }


# -- mapping --------------------------------------------------------------------------


def map_nodes(
    ds: Dataset, given: Any, nodes: list[str], block: str, key: str, default: str
) -> dict[str, str]:
    """node id -> array name, from ``data.inputs`` / ``data.targets`` or automatically.

    Automatic: an array named like the node, else ``default`` (``x`` or ``y``)
    when the graph has a single such block.
    """
    arrays = ", ".join(ds.names())
    if given is None:
        given = {}
        for node in nodes:
            if node in ds.arrays:
                given[node] = node
            elif len(nodes) == 1 and default in ds.arrays:
                given[node] = default
            else:
                raise DataError(
                    f"{node}: choose the dataset array for this {block} in "
                    f"data.{key} (arrays: {arrays})"
                )
    if not isinstance(given, Mapping):
        raise DataError(f"data.{key} must map {block} node ids to dataset array names")
    for node in given:
        if node not in nodes:
            raise DataError(
                f"data.{key}: {node!r} is not an {block} node of the graph ({', '.join(nodes)})"
            )
    mapping = {}
    for node in nodes:
        name = given.get(node)
        if name is None:
            raise DataError(
                f"{node}: no dataset array is mapped to this {block} (data.{key}; arrays: {arrays})"
            )
        if isinstance(name, str) and name not in ds.arrays and name.endswith("_train"):
            name = name[: -len("_train")]
        if not isinstance(name, str) or name not in ds.arrays:
            raise DataError(f"{node}: the dataset has no array {given[node]!r} (arrays: {arrays})")
        mapping[node] = name
    return mapping


# -- prepare --------------------------------------------------------------------------


def prepare(
    data_config: Mapping[str, Any],
    input_specs: Mapping[str, tuple[Shape, str]],
    output_specs: Mapping[str, tuple[Shape, str]],
    base_dir: Path | None = None,
    seed: int = 1671,
    dataset: Dataset | None = None,
    *,
    allow_outside_data: bool = False,
) -> PreparedData:
    """Load, split and preprocess the data of a project for its Input and Output nodes.

    Parameters
    ----------
    data_config : the project's ``data`` section (``source``, ``inputs``,
        ``targets``, ``preprocess``, ``split``).
    input_specs : Input node id -> ``(shape, dtype)``, shape without the batch.
    output_specs : Output node id -> ``(shape, loss name)``.
    base_dir : the project file's folder, for relative paths.
    seed : the run's seed (synthetic data, and the split unless ``split.seed``).
    dataset : an already loaded dataset, instead of ``data_config["source"]``.
    allow_outside_data : read files outside ``base_dir`` too (default: refuse
        them with :class:`nodenet.errors.OutsideDataError`).

    Raises
    ------
    DataError
        naming the node, array, file or field at fault.
    """
    if not isinstance(data_config, Mapping):
        raise DataError("data must be an object")
    if not input_specs and not output_specs:
        raise NothingToPrepareError(
            "no Input or Output has a known shape yet: connect the graph to check the data "
            "against it"
        )
    source = data_config.get("source")
    if dataset is None and isinstance(source, Mapping) and source.get("kind") in FOLDER_KINDS:
        from nodenet.engine.data.folder_prepare import prepare_folder

        return prepare_folder(
            data_config,
            input_specs,
            output_specs,
            base_dir,
            seed,
            allow_outside_data=allow_outside_data,
        )
    if dataset is None:
        ds = load_source(
            data_config.get("source"), base_dir, seed, allow_outside_data=allow_outside_data
        )
    else:
        ds = check_dataset(Dataset(dict(dataset.arrays), dataset.meta))
    pre = preprocess.read_preprocess(data_config.get("preprocess") or {})
    split = preprocess.read_split(data_config.get("split") or {}, seed)
    inputs = map_nodes(ds, data_config.get("inputs"), list(input_specs), "Input", "inputs", "x")
    targets = map_nodes(
        ds, data_config.get("targets"), list(output_specs), "Output", "targets", "y"
    )
    names = list(dict.fromkeys([*inputs.values(), *targets.values()]))
    pool, own_test = _pools(ds, names, pre["reshape"])
    owned = dataset is None  # read here: its arrays can go once split
    _check_preparation(pool, own_test, inputs, targets, (input_specs, output_specs), owned)
    parts = _split(pool, own_test, split)
    if owned:  # drop the read arrays before the prepared ones are made (a lower peak)
        ds, pool = Dataset({}, ds.meta), None
    meta = PreparedMeta(ds.meta, ds.meta.task, mapping={"inputs": inputs, "targets": targets})
    meta.test_source = "dataset" if own_test else "split" if parts["test"] else None
    stats = _fit_stats(inputs, input_specs, pre, parts["train"], meta)
    out: dict[str, dict | None] = {}
    for part, arrays in parts.items():
        meta.sizes[part] = 0 if arrays is None else len(arrays[names[0]])
        if arrays is None:
            out[part] = None
            continue
        out[part] = {"inputs": {}, "targets": {}}
        for node, name in inputs.items():
            out[part]["inputs"][node] = _input(
                node, name, arrays[name], input_specs[node], pre["scale"], stats.get(node, {})
            )
        for node, name in targets.items():
            out[part]["targets"][node] = _target(
                node, name, arrays[name], output_specs[node], pre, ds, meta
            )
    return PreparedData(out["train"], out["val"], out["test"], meta)


def _split(pool: dict, own_test: dict | None, split: dict) -> dict[str, dict | None]:
    """``{"train", "val", "test"}`` -> {array name: samples}, or None for an empty part."""
    if not pool:
        raise NothingToPrepareError("no dataset array is mapped to an Input or Output")
    n = len(next(iter(pool.values())))
    test_fraction = 0.0 if own_test else split["test"]
    indices = preprocess.split_indices(n, split["validation"], test_fraction, split["seed"])
    parts = {
        part: {k: a[idx] for k, a in pool.items()} if len(idx) else None
        for part, idx in zip(("train", "val", "test"), indices, strict=True)
    }
    if own_test:
        parts["test"] = own_test
    return parts


def _pools(ds: Dataset, names: list[str], reshape: Mapping[str, list[int]]) -> tuple[dict, Any]:
    """The mapped arrays (reshaped as asked) and their own test split, lengths checked."""
    for name in reshape:
        if name not in ds.arrays:
            raise DataError(f"data.preprocess.reshape: the dataset has no array {name!r}")
    pool, test = {}, {}
    for name in names:
        pool[name] = ds.arrays[name]
        if ds.test_array(name) is not None:
            test[name] = ds.test_array(name)
        if name in reshape:
            where = f"data.preprocess.reshape.{name}"
            pool[name] = preprocess.reshape_samples(where, pool[name], reshape[name])
            if name in test:
                test[name] = preprocess.reshape_samples(where, test[name], reshape[name])
    if test and len(test) != len(names):
        missing = next(name for name in names if name not in test)
        raise DataError(
            f"{missing}: the dataset has a test split for {next(iter(test))!r} but "
            f"not for {missing!r} (no {missing}_test array)"
        )
    _same_length(pool, "")
    _same_length(test, " in the test split")
    return pool, test or None


def _same_length(arrays: Mapping[str, np.ndarray], where: str) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {count}" for name, count in lengths.items())
        raise DataError(f"the mapped arrays differ in their number of samples{where}: {listed}")


def _fit_stats(inputs, input_specs, pre, train, meta: PreparedMeta) -> dict[str, dict]:
    """Normalization statistics per float Input, from the training split only."""
    stats, by_array = {}, {}
    for node, name in inputs.items():
        method = preprocess.pick(pre["normalize"], (node, name), "none")
        if input_specs[node][1] in ("int32", "string") or method == "none":
            continue
        if name not in by_array:
            by_array[name] = preprocess.fit_normalizer(method, train[name], pre["scale"])
        stats[node] = meta.normalization[node] = by_array[name]
    return stats


def _check_preparation(
    pool: Mapping[str, np.ndarray],
    own_test: Mapping[str, np.ndarray] | None,
    inputs: Mapping[str, str],
    targets: Mapping[str, str],
    specs: tuple[Mapping[str, tuple[Shape, str]], Mapping[str, tuple[Shape, str]]],
    owned: bool,
) -> None:
    """Refuse, before any copy is made, a preparation whose peak memory exceeds the budget.

    Splitting copies every sample of the read arrays (shuffled into train,
    validation and test); then each Input and Output gets a prepared float32 (or
    int32) array. The read arrays are freed after the split when this
    preparation read them (``owned``); a dataset passed in stays alive. Each
    array alone is checked first, so the message names the node when it can.
    """
    input_specs, output_specs = specs
    held = sum(a.nbytes for a in pool.values())
    test = sum(a.nbytes for a in (own_test or {}).values())
    prepared = 0
    for part in (pool, own_test or {}):
        for node, name in (*inputs.items(), *targets.items()):
            if name in part:
                shape = (input_specs.get(node) or output_specs[node])[0]
                _check_budget(node, name, part[name], shape)  # one array alone, named
                prepared += max(size_of((len(part[name]), *shape), 4), part[name].size * 4)
    split = held  # the shuffled copy of every sample
    widest = max((a.shape[1:] for a in pool.values()), key=lambda s: size_of(s, 1), default=())
    chunks = preprocess.CHUNK_TEMPORARIES * preprocess.chunk_bytes(widest)  # normalizing
    peak = max(held + test + split, split + test + prepared + chunks + (0 if owned else held))
    reason = over_budget(peak)
    if reason is not None:
        raise DataError(
            f"preparing the data ({fmt_bytes(held + test)} read, {fmt_bytes(split)} split "
            f"into train/validation/test, {fmt_bytes(prepared)} prepared for the model, "
            f"{fmt_bytes(chunks)} working space) would take {reason}"
        )


def _check_budget(node: str, name: str, array: np.ndarray, shape: tuple) -> None:
    """Refuse, before allocating, prepared float32 arrays larger than the memory budget."""
    size = max(size_of((len(array), *shape), 4), array.size * 4)
    reason = over_budget(size)
    if reason is not None:
        raise DataError(
            f"{node}: the data ({name!r}, {len(array)} samples for shape {tuple(shape)}) "
            f"would take {reason}"
        )


def _input(node: str, name: str, array: np.ndarray, spec: tuple, scale, stats) -> np.ndarray:
    shape, dtype = spec
    _check_budget(node, name, array, shape)
    if dtype == "string" or array.dtype.kind == "U":
        return _text_input(node, name, array, shape, dtype)
    if dtype == "int32":
        if array.dtype.kind == "f" and not (array == np.round(array)).all():
            raise DataError(
                f"{node}: this int32 Input needs whole numbers (indices), but "
                f"{name!r} holds fractions"
            )
        if array.size and (array.min() < -(2**31) or array.max() >= 2**31):
            raise DataError(f"{node}: {name!r} holds values beyond the int32 range")
        return preprocess.fit_shape(node, name, array.astype(np.int32), shape, "Input")
    return preprocess.fit_shape(
        node, name, preprocess.transform(array, scale, stats), shape, "Input"
    )


def _text_input(node: str, name: str, array: np.ndarray, shape: tuple, dtype: str) -> np.ndarray:
    """Texts for a string Input, as given: ``(samples, 1)``, never normalized or cast."""
    if dtype != "string":
        raise DataError(
            f"{node}: {name!r} holds text; give the Input dtype string and shape [1] and "
            "connect it to a TextVectorization block"
        )
    if array.dtype.kind != "U":
        raise DataError(f"{node}: this string Input needs text, but {name!r} holds numbers")
    if tuple(shape) != (1,):
        raise DataError(f"{node}: {name!r} holds one text per sample; set the Input's shape to [1]")
    return array


def _target(
    node: str, name: str, array: np.ndarray, spec: tuple, pre, ds: Dataset, meta: PreparedMeta
) -> np.ndarray:
    shape, loss = spec
    _check_budget(node, name, array, shape)
    encoding = preprocess.pick(pre["target_encoding"], (node, name), "auto")
    classes = ds.meta.classes.get(name)
    target, meta.encodings[node] = preprocess.encode_target(
        node, name, array, shape, loss, encoding, classes
    )
    if classes:
        meta.classes[node] = list(classes)
    return target

"""The data side of the engine: built-in datasets, CSV / NPZ / IDX files, preprocessing.

Public API (no Qt, nothing from :mod:`nodenet.graph.project`)::

    ds = load_source({"kind": "builtin", "name": "digits"}, base_dir, seed)
    ds.arrays          # {"x": (1797, 64) float32, "y": (1797,) int64}
    prepared = prepare(project.data, {"pixels": ((64,), "float32")},
                       {"digit": ((10,), "categorical_crossentropy")}, base_dir, seed)
    prepared.train["inputs"]["pixels"], prepared.train["targets"]["digit"]

Modules: :mod:`.base` (Dataset, the built-in registry, checks),
:mod:`.synthetic` and :mod:`.real` (built-in datasets), :mod:`.files` (CSV,
NPZ), :mod:`.idx` (MNIST IDX), :mod:`.preprocess` (split, normalize, encode),
:mod:`.prepare` (sources, node mapping, :func:`prepare`); folder datasets streamed
from disk in :mod:`.folders` (index, split), :mod:`.folder_decode`, :mod:`.stream`,
:mod:`.folder_cache`, :mod:`.folder_prepare` and :mod:`.folder_summary`. Every problem a user
can cause raises :class:`nodenet.errors.DataError` naming the node, array,
file, line or option at fault.
"""

from nodenet.engine.data import real, synthetic  # noqa: F401  (register the built-ins)
from nodenet.engine.data.base import BUILTINS, Dataset, DatasetMeta, register_builtin
from nodenet.engine.data.folder_summary import FolderSummary, describe_folder
from nodenet.engine.data.idx import read_idx
from nodenet.engine.data.prepare import (
    NothingToPrepareError,
    PreparedData,
    PreparedMeta,
    builtin_datasets,
    describe_source,
    load_builtin,
    load_source,
    prepare,
)
from nodenet.errors import DataError

__all__ = [
    "BUILTINS",
    "DataError",
    "Dataset",
    "DatasetMeta",
    "FolderSummary",
    "NothingToPrepareError",
    "PreparedData",
    "PreparedMeta",
    "builtin_datasets",
    "describe_folder",
    "describe_source",
    "load_builtin",
    "load_source",
    "prepare",
    "read_idx",
    "register_builtin",
]

"""The numpy engine's public API, used by the GUI, the command line and the exporters.

Never imports Qt. The catalog of blocks, the built model and the training loop,
the settings the GUI builds its forms from, and the data pipeline. Parameter
descriptors are public in :mod:`nodenet.engine.params`.
"""

from nodenet.engine.catalog import (
    CATEGORIES,
    LAYERS,
    Layer,
    Shape,
    block_class,
    block_types,
    fmt_shape,
)
from nodenet.engine.data import (
    FolderSummary,
    builtin_datasets,
    describe_folder,
    describe_source,
    load_source,
    prepare,
)
from nodenet.engine.data.folders import FOLDER_KINDS
from nodenet.engine.data.folders import OPTIONS as FOLDER_OPTIONS
from nodenet.engine.data.preprocess import ENCODINGS, NORMALIZATIONS
from nodenet.engine.model import Model
from nodenet.engine.optimizers import NAMES as OPTIMIZER_NAMES
from nodenet.engine.optimizers import OPTIMIZER_PARAMS, make_optimizer
from nodenet.engine.schedules import SCHEDULES
from nodenet.engine.settings import (
    EARLY_STOPPING_PARAMS,
    REDUCE_LR_PARAMS,
    TRAINING_PARAMS,
    check_training,
)
from nodenet.engine.training import History, evaluate, fit, predict

__all__ = [
    "CATEGORIES",
    "EARLY_STOPPING_PARAMS",
    "ENCODINGS",
    "FOLDER_KINDS",
    "FOLDER_OPTIONS",
    "LAYERS",
    "NORMALIZATIONS",
    "OPTIMIZER_NAMES",
    "OPTIMIZER_PARAMS",
    "REDUCE_LR_PARAMS",
    "SCHEDULES",
    "TRAINING_PARAMS",
    "FolderSummary",
    "History",
    "Layer",
    "Model",
    "Shape",
    "block_class",
    "block_types",
    "builtin_datasets",
    "check_training",
    "describe_folder",
    "describe_source",
    "evaluate",
    "fit",
    "fmt_shape",
    "load_source",
    "make_optimizer",
    "predict",
    "prepare",
]

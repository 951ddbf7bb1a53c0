"""The numpy engine's public API, used by the GUI, the command line and the exporters.

Never imports Qt. The catalog of blocks, the built model, and the training loop.
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

__all__ = [
    "CATEGORIES",
    "LAYERS",
    "Layer",
    "Shape",
    "block_class",
    "block_types",
    "fmt_shape",
]

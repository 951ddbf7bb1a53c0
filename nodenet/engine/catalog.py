"""The block catalog: every registered block, and what the rest of nodenet asks of it."""

from __future__ import annotations

import nodenet.engine.layers  # noqa: F401  (registers every block)
from nodenet.engine.layer import (
    CATEGORIES,
    LAYERS,
    Context,
    Example,
    Layer,
    Shape,
    WeightSpec,
    fmt_shape,
)


def block_types() -> list[str]:
    """Every block type, in palette order (by category, then as registered)."""
    names = LAYERS.names()
    return sorted(names, key=lambda n: (CATEGORIES.index(LAYERS.get(n).CATEGORY), names.index(n)))


def block_class(type_name: str) -> type[Layer]:
    """The class of a block type; raises :class:`UnknownNameError` for an unknown one."""
    return LAYERS.get(type_name)


__all__ = [
    "CATEGORIES",
    "LAYERS",
    "Context",
    "Example",
    "Layer",
    "Shape",
    "WeightSpec",
    "block_class",
    "block_types",
    "fmt_shape",
]

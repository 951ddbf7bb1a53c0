"""A test-only block with several outputs (none of the catalog's has more than one yet).

``TestSplit`` cuts its input's last axis into ``pieces`` equal parts, each multiplied by
its part of a learned ``scale``: output ``i`` is part ``i``. :func:`registered` adds it
to the catalog for one test (the ``split_block`` fixture of the tests using it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from nodenet.engine.catalog import LAYERS
from nodenet.engine.layer import Layer, WeightSpec
from nodenet.engine.params import Int
from nodenet.errors import ShapeError


class Split(Layer):
    """Test only: the last axis cut into ``pieces`` scaled parts, one per output."""

    TYPE = "TestSplit"
    PARAMS = (Int("pieces", 2, "how many outputs", min=1),)

    def n_outputs(self) -> int:
        return self.config["pieces"]

    def infer_shape(self, input_shapes):
        return self.infer_shapes(input_shapes)[0]

    def infer_shapes(self, input_shapes):
        (shape,) = input_shapes
        pieces = self.config["pieces"]
        if shape[-1] is None or shape[-1] % pieces:
            raise ShapeError(f"cannot cut {shape[-1]} features into {pieces} equal parts")
        return [(*shape[:-1], shape[-1] // pieces)] * pieces

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        return [WeightSpec("scale", (shape[-1],), "ones")]

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        parts = np.split(x * weights["scale"], self.config["pieces"], axis=-1)
        return (parts if len(parts) > 1 else parts[0]), x

    def _backward(self, weights, x, grad):
        g = np.concatenate(grad, axis=-1) if isinstance(grad, list) else grad
        return [g * weights["scale"]], {"scale": (g * x).reshape(-1, x.shape[-1]).sum(0)}


@contextmanager
def registered() -> Iterator[type[Split]]:
    """The catalog with ``TestSplit`` in it, for the duration of the block."""
    LAYERS.register(Split.TYPE)(Split)
    try:
        yield Split
    finally:
        del LAYERS._items[Split.TYPE]

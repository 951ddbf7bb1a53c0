"""Zero padding and cropping: ZeroPadding1D/2D/3D and Cropping1D/2D/3D.

Channels-last, as every image block here: ``(batch, steps, channels)``, ``(batch, rows,
cols, channels)`` and ``(batch, dim1, dim2, dim3, channels)``. ``padding`` / ``cropping``
are taken in every form Keras accepts and kept in the form Keras normalizes them to:
``[before, after]`` for the 1D blocks, one ``[before, after]`` pair per spatial axis for
the others. Each block states its geometry once (:meth:`pads` / :meth:`crops`, (before,
after) per spatial axis); the exporters only translate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nodenet.engine.layer import Example, Layer, expect_rank, fmt_shape, register
from nodenet.engine.layers.windows import Pads, crop_spatial, pad_spatial
from nodenet.engine.params import INT_LIMIT, Param
from nodenet.errors import ShapeError


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT_LIMIT


@dataclass(frozen=True)
class Widths(Param):
    """How much to add or cut at both ends of each spatial axis, as Keras takes it.

    Rank 1: an int ``n`` or ``[before, after]``, kept as ``[before, after]``. Rank 2
    or 3: an int (every end of every axis), a list of one int per axis (both ends),
    or of one ``[before, after]`` pair per axis (ints and pairs may mix, as Keras
    allows), kept as one pair per axis.
    """

    rank: int = 2
    kind: ClassVar[str] = "any"  # edited as JSON: 1, [1, 2] or [[1, 2], [0, 1]]

    def coerce(self, value: Any) -> Any:
        if self.rank == 1:
            pair = self._pair(value)
            if pair is None:
                raise self.fail(self.describe(), value)
            return pair
        if _count(value):
            return [[value, value] for _ in range(self.rank)]
        pairs = None
        if isinstance(value, list | tuple) and len(value) == self.rank:
            pairs = [self._pair(v) for v in value]
        if pairs is None or None in pairs:
            raise self.fail(self.describe(), value)
        return pairs

    @staticmethod
    def _pair(value: Any) -> list[int] | None:
        if _count(value):
            return [value, value]
        if isinstance(value, list | tuple) and len(value) == 2 and all(map(_count, value)):
            return list(value)
        return None

    def describe(self) -> str:
        if self.rank == 1:
            return "an integer >= 0 or a list [before, after] of such integers"
        return (
            f"an integer >= 0, a list of {self.rank} such integers (one per axis), or a list "
            f"of {self.rank} [before, after] pairs"
        )


def pairs_of(value: list, rank: int) -> Pads:
    """A normalized ``padding`` / ``cropping`` as (before, after) per spatial axis."""
    return [tuple(value)] if rank == 1 else [tuple(pair) for pair in value]


def example(shape: tuple, **params) -> Example:
    return Example(params, (shape,))


class _Widths(Layer):
    """Shared by the six blocks: one (before, after) amount per spatial axis."""

    RANK: ClassVar[int] = 2
    FIELD: ClassVar[str] = "padding"
    CATEGORY = "Convolution"

    def widths(self) -> Pads:
        return pairs_of(self.config[self.FIELD], self.RANK)


class _ZeroPadding(_Widths):
    KEY_PARAMS = ("padding",)

    def pads(self) -> Pads:
        """Zeros added (before, after) per spatial axis."""
        return self.widths()

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, self.RANK + 1, self.TYPE)
        spatial = (
            None if n is None else n + b + a
            for n, (b, a) in zip(shape[:-1], self.pads(), strict=True)
        )
        return (*spatial, shape[-1])

    def _forward(self, weights, inputs, ctx):
        return pad_spatial(inputs[0], self.pads()), None

    def _backward(self, weights, cache, grad):
        return [np.ascontiguousarray(crop_spatial(grad, self.pads()))], {}


class _Cropping(_Widths):
    FIELD = "cropping"
    KEY_PARAMS = ("cropping",)

    def crops(self) -> Pads:
        """Positions cut (before, after) per spatial axis."""
        return self.widths()

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, self.RANK + 1, self.TYPE)
        out = []
        for n, (b, a) in zip(shape[:-1], self.crops(), strict=True):
            if n is not None and b + a >= n:
                raise ShapeError(
                    f"{self.TYPE}: cropping {self.config['cropping']} leaves nothing of the "
                    f"input {fmt_shape(shape)} (each axis must keep at least one position)"
                )
            out.append(None if n is None else n - b - a)
        return (*out, shape[-1])

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        self.infer_shape([x.shape[1:]])
        return np.ascontiguousarray(crop_spatial(x, self.crops())), None

    def _backward(self, weights, cache, grad):
        return [pad_spatial(grad, self.crops())], {}


# -- zero padding --------------------------------------------------------------------------


@register
class ZeroPadding1D(_ZeroPadding):
    """Adds zeros at the start and end of the steps axis.

    Input shape: (batch, steps, features). Output shape: (batch, before + steps + after,
    features).
    """

    TYPE = "ZeroPadding1D"
    RANK = 1
    PARAMS = (Widths("padding", [1, 1], "zeros added: n at both ends, or [before, after]", rank=1),)
    EXAMPLES = (
        example((4, 3)),
        example((5, 2), padding=2),
        example((3, 2), padding=[0, 3]),
        example((4, 1), padding=[2, 1]),
        example((None, 2), padding=[1, 2]),
    )


@register
class ZeroPadding2D(_ZeroPadding):
    """Adds rows and columns of zeros at the top, bottom, left and right of images.

    Input shape: (batch, rows, cols, channels). Output shape: (batch, top + rows + bottom,
    left + cols + right, channels).
    """

    TYPE = "ZeroPadding2D"
    RANK = 2
    PARAMS = (
        Widths(
            "padding",
            [[1, 1], [1, 1]],
            "zeros added: n everywhere, [rows, cols] at both ends, or "
            "[[top, bottom], [left, right]]",
            rank=2,
        ),
    )
    EXAMPLES = (
        example((3, 4, 2)),
        example((2, 3, 1), padding=2),
        example((3, 3, 2), padding=[1, 2]),
        example((4, 3, 2), padding=[[0, 1], [0, 1]]),  # keras.applications' stride-2 pads
        example((3, 2, 3), padding=[[2, 0], [1, 3]]),
        example((None, 3, 2), padding=[3, [0, 2]]),
    )


@register
class ZeroPadding3D(_ZeroPadding):
    """Adds zeros at both ends of the three spatial axes of volumes.

    Input shape: (batch, dim1, dim2, dim3, channels). Output shape: each spatial axis
    grown by its (before, after) padding.
    """

    TYPE = "ZeroPadding3D"
    RANK = 3
    PARAMS = (
        Widths(
            "padding",
            [[1, 1], [1, 1], [1, 1]],
            "zeros added: n everywhere, one n per axis, or one [before, after] per axis",
            rank=3,
        ),
    )
    EXAMPLES = (
        example((2, 3, 2, 2)),
        example((2, 2, 2, 1), padding=2),
        example((2, 3, 2, 2), padding=[1, 0, 2]),
        example((3, 2, 2, 1), padding=[[0, 1], [2, 0], [1, 1]]),
    )


# -- cropping ------------------------------------------------------------------------------


@register
class Cropping1D(_Cropping):
    """Cuts positions off the start and end of the steps axis.

    Input shape: (batch, steps, features). Output shape: (batch, steps - before - after,
    features).
    """

    TYPE = "Cropping1D"
    RANK = 1
    PARAMS = (Widths("cropping", [1, 1], "steps cut: n at both ends, or [before, after]", rank=1),)
    EXAMPLES = (
        example((5, 3)),
        example((7, 2), cropping=2),
        example((6, 2), cropping=[0, 3]),
        example((5, 1), cropping=[2, 0]),
        example((None, 2), cropping=[1, 2]),
    )


@register
class Cropping2D(_Cropping):
    """Cuts rows and columns off the top, bottom, left and right of images.

    Input shape: (batch, rows, cols, channels). Output shape: (batch, rows - top - bottom,
    cols - left - right, channels).
    """

    TYPE = "Cropping2D"
    RANK = 2
    PARAMS = (
        Widths(
            "cropping",
            [[0, 0], [0, 0]],
            "rows and columns cut: n everywhere, [rows, cols] at both ends, or "
            "[[top, bottom], [left, right]]",
            rank=2,
        ),
    )
    EXAMPLES = (
        example((3, 4, 2)),
        example((5, 6, 1), cropping=1),
        example((6, 5, 2), cropping=[2, 1]),
        example((5, 5, 2), cropping=[[0, 1], [2, 0]]),
        example((6, 7, 3), cropping=[[1, 2], [3, 1]]),
        example((None, 5, 2), cropping=[1, [0, 2]]),
    )


@register
class Cropping3D(_Cropping):
    """Cuts positions off both ends of the three spatial axes of volumes.

    Input shape: (batch, dim1, dim2, dim3, channels). Output shape: each spatial axis
    shrunk by its (before, after) cropping.
    """

    TYPE = "Cropping3D"
    RANK = 3
    PARAMS = (
        Widths(
            "cropping",
            [[1, 1], [1, 1], [1, 1]],
            "positions cut: n everywhere, one n per axis, or one [before, after] per axis",
            rank=3,
        ),
    )
    EXAMPLES = (
        example((3, 4, 3, 2)),
        example((3, 2, 4, 1), cropping=[1, 0, 1]),
        example((4, 3, 3, 2), cropping=[[0, 2], [1, 0], [1, 1]]),
        example((2, 3, 4, 1), cropping=[[0, 1], [0, 2], [3, 0]]),
    )

"""Pooling blocks: Max/Average pooling over windows, and their global versions.

Like Keras's ``base_pooling.py`` and ``base_global_pooling.py``, two small
bases do the work and each concrete block only names its rank and mode.
Windowed pooling works on one array per window offset (``prod(pool_size)``
of them), so no Python loop ever runs over pixels or samples. When windows
tile the input (``strides == pool_size``, the common case) the batch is
gathered window-major chunk by chunk, whole channel vectors at a time, and
every operation on a chunk runs on contiguous memory in cache; in training,
max pooling marks each window's first maximum there and then (the tile
helpers are in :mod:`nodenet.engine.layers.pool_windows`).
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import numpy as np

from nodenet.engine.layer import Example, Layer, expect_rank, fmt_shape, register
from nodenet.engine.layers.pool_windows import (
    first_max_mask,
    pool_tiles,
    reduce_windows,
    spread_tiles,
)
from nodenet.engine.layers.windows import (
    Pads,
    as_tuple,
    crop_spatial,
    offset_slices,
    output_length,
    pad_spatial,
    same_pads,
)
from nodenet.engine.params import Bool, Choice, Int, IntTuple
from nodenet.errors import ShapeError


class _Pooling(Layer):
    """Shared by the windowed pooling blocks; subclasses set ``RANK`` and ``MODE``."""

    RANK: ClassVar[int] = 2
    MODE: ClassVar[str] = "max"  # or "average"
    CATEGORY = "Pooling"
    KEY_PARAMS = ("pool_size",)

    def geometry(self, spatial) -> tuple[tuple[int, ...], tuple[int, ...], Pads | None]:
        """Window size, strides and (before, after) padding per spatial axis; the padding
        is None when it is "same" and a size is known only at run time (``None``)."""
        pool = as_tuple(self.config["pool_size"], self.RANK)
        strides = self.config["strides"]
        strides = pool if strides is None else as_tuple(strides, self.RANK)
        if self.config["padding"] == "valid":
            return pool, strides, [(0, 0)] * self.RANK
        if None in spatial:
            return pool, strides, None
        return (
            pool,
            strides,
            [same_pads(n, p, s) for n, p, s in zip(spatial, pool, strides, strict=True)],
        )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, self.RANK + 1, self.TYPE)
        pool, strides, _ = self.geometry(shape[:-1])
        padding = self.config["padding"]
        out = tuple(
            output_length(n, p, s, padding)
            for n, p, s in zip(shape[:-1], pool, strides, strict=True)
        )
        if any(n is not None and n < 1 for n in out):
            raise ShapeError(
                f"{self.TYPE}: pool_size {list(pool)} does not fit the input "
                f"{fmt_shape(shape)} with padding 'valid'"
            )
        return (*out, shape[-1])

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        pool, strides, pads = self.geometry(x.shape[1:-1])
        out = self.infer_shape([x.shape[1:]])[:-1]
        xp = pad_spatial(x, pads, -np.inf if self.MODE == "max" else 0.0)
        layout = (xp.shape, pool, pads, out)
        tiles = pool == strides  # else general windows: a strided view per offset
        windows = None if tiles else _window_slices(pool, strides, out)
        if self.MODE == "max":
            if not tiles:
                blocks = [xp[window] for window in windows]
                y = reduce_windows(np.maximum, blocks)
                return y, (layout, windows, (blocks, y))
            # training needs the first maxima: marked now, while the windows are in cache
            y, first = pool_tiles(xp, pool, out, np.maximum, first=ctx.training)
            return y, (layout, None, (first, None if ctx.training else xp))
        counts = _window_counts(x.shape[1:-1], pads, pool, strides, out, x.dtype)
        if tiles:
            y, _ = pool_tiles(xp, pool, out, np.add)
        else:
            y = reduce_windows(np.add, [xp[window] for window in windows])
        y /= counts
        return y, (layout, windows, counts)

    def _backward(self, weights, cache, grad):
        (padded_shape, pool, pads, out), windows, data = cache
        if windows is None:  # tiles
            if self.MODE == "average":
                dxp = spread_tiles(grad / data, padded_shape, pool, out)
            else:
                first, xp = data
                if first is None:  # forward ran in inference mode
                    _, first = pool_tiles(xp, pool, out, np.maximum, first=True)
                dxp = spread_tiles(grad, padded_shape, pool, out, first)
            return [crop_spatial(dxp, pads)], {}
        dxp = np.zeros(padded_shape, dtype=grad.dtype)
        if self.MODE == "max":
            blocks, y = data
            pieces = first_max_mask(blocks, y) * grad
        else:
            pieces = itertools.repeat(grad / data, len(windows))
        for window, piece in zip(windows, pieces, strict=True):
            dxp[window] += piece
        return [crop_spatial(dxp, pads)], {}


def _window_slices(pool, strides, out) -> list[tuple]:
    """Per window offset (row-major), the slices of the padded input it meets."""
    ones = (1,) * len(pool)
    return [(slice(None), *offset_slices(o, strides, ones, out)) for o in np.ndindex(*pool)]


def _window_counts(spatial, pads: Pads, pool, strides, out, dtype) -> np.ndarray | float:
    """How many real (unpadded) elements each window holds: (*out, 1), or one number."""
    if not any(b or a for b, a in pads):
        return float(math.prod(pool))
    inside = pad_spatial(np.ones((1, *spatial, 1), dtype=dtype), pads)
    windows = _window_slices(pool, strides, out)
    return reduce_windows(np.add, [inside[w] for w in windows])[0]


class _GlobalPooling(Layer):
    """Shared by the global pooling blocks: reduce every spatial axis."""

    RANK: ClassVar[int] = 2
    MODE: ClassVar[str] = "max"
    CATEGORY = "Pooling"
    PARAMS = (Bool("keepdims", False, "keep the reduced spatial axes with size 1"),)
    EXAMPLES = (Example({}, ((5, 3),)),)

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, self.RANK + 1, self.TYPE)
        return (*(1,) * self.RANK, shape[-1]) if self.config["keepdims"] else (shape[-1],)

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        axes = tuple(range(1, self.RANK + 1))
        keep = self.config["keepdims"]
        if self.MODE == "max":
            return x.max(axis=axes, keepdims=keep), x
        return x.mean(axis=axes, keepdims=keep), x.shape

    def _backward(self, weights, cache, grad):
        kept = (grad.shape[0], *(1,) * self.RANK, grad.shape[-1])
        grad = grad.reshape(kept)
        if self.MODE == "average":
            dx = np.empty(cache, dtype=grad.dtype)
            dx[...] = grad / math.prod(cache[1:-1])
            return [dx], {}
        # ties share the gradient evenly, like the gradient of keras.ops.max
        x = cache
        hit = x == x.max(axis=tuple(range(1, self.RANK + 1)), keepdims=True)
        return [hit * (grad / hit.sum(axis=tuple(range(1, self.RANK + 1)), keepdims=True))], {}


# -- the blocks ------------------------------------------------------------------

_PADDING = Choice(
    "padding",
    "valid",
    "valid: drop windows that would overhang; same: pad so that output = ceil(input / strides)",
    choices=("valid", "same"),
)


def _pool_params(rank: int):
    if rank == 1:
        return (
            Int("pool_size", 2, "size of the pooling window", min=1),
            Int("strides", None, "step of the window; null: pool_size", min=1, optional=True),
            _PADDING,
        )
    return (
        IntTuple("pool_size", [2] * rank, "size of the pooling window", length=rank),
        IntTuple(
            "strides", None, "step of the window; null: pool_size", length=rank, optional=True
        ),
        _PADDING,
    )


@register
class MaxPooling1D(_Pooling):
    """Max pooling over steps: the largest value of each window.

    Input shape: (batch, steps, features). Output shape: (batch, pooled_steps, features).
    """

    TYPE = "MaxPooling1D"
    RANK, MODE = 1, "max"
    PARAMS = _pool_params(1)
    EXAMPLES = (
        Example({}, ((7, 3),)),
        Example({"pool_size": 3, "strides": 2, "padding": "same"}, ((8, 2),)),
        Example({"pool_size": 3, "strides": 1}, ((6, 2),)),
        Example({"pool_size": 2, "padding": "same"}, ((5, 2),)),
    )


@register
class MaxPooling2D(_Pooling):
    """Max pooling over images: the largest value of each window.

    Input shape: (batch, rows, cols, channels). Output shape: (batch,
    pooled_rows, pooled_cols, channels).
    """

    TYPE = "MaxPooling2D"
    RANK, MODE = 2, "max"
    PARAMS = _pool_params(2)
    EXAMPLES = (
        Example({}, ((6, 5, 2),)),
        Example({"pool_size": 3, "strides": 2, "padding": "same"}, ((6, 7, 2),)),
        Example({"pool_size": [2, 3], "strides": [1, 2]}, ((5, 7, 1),)),
        Example({"padding": "same"}, ((5, 3, 2),)),
        Example({"pool_size": 3, "strides": 1, "padding": "same"}, ((4, 5, 1),)),
    )


@register
class MaxPooling3D(_Pooling):
    """Max pooling over volumes: the largest value of each window.

    Input shape: (batch, depth, rows, cols, channels). Output shape: (batch,
    pooled_depth, pooled_rows, pooled_cols, channels).
    """

    TYPE = "MaxPooling3D"
    RANK, MODE = 3, "max"
    PARAMS = _pool_params(3)
    EXAMPLES = (
        Example({}, ((4, 4, 3, 2),)),
        Example({"pool_size": [2, 3, 2], "strides": [1, 2, 1]}, ((3, 5, 3, 1),)),
        Example({"pool_size": 3, "strides": 2, "padding": "same"}, ((3, 4, 3, 2),)),
        Example({"padding": "same"}, ((3, 2, 3, 2),)),
    )


@register
class AveragePooling1D(_Pooling):
    """Average pooling over steps; with padding "same" only real elements are averaged.

    Input shape: (batch, steps, features). Output shape: (batch, pooled_steps, features).
    """

    TYPE = "AveragePooling1D"
    RANK, MODE = 1, "average"
    PARAMS = _pool_params(1)
    EXAMPLES = (
        Example({}, ((7, 3),)),
        Example({"pool_size": 3, "strides": 1, "padding": "same"}, ((6, 2),)),
        Example({"pool_size": 3, "strides": 2}, ((9, 2),)),
        Example({"pool_size": 2, "padding": "same"}, ((5, 2),)),
    )


@register
class AveragePooling2D(_Pooling):
    """Average pooling over images; with padding "same" only real elements are averaged.

    Input shape: (batch, rows, cols, channels). Output shape: (batch,
    pooled_rows, pooled_cols, channels).
    """

    TYPE = "AveragePooling2D"
    RANK, MODE = 2, "average"
    PARAMS = _pool_params(2)
    EXAMPLES = (
        Example({}, ((6, 5, 2),)),
        Example({"pool_size": 3, "strides": 1, "padding": "same"}, ((5, 4, 2),)),
        Example({"pool_size": [2, 3], "strides": [1, 2]}, ((5, 7, 1),)),
        Example({"padding": "same"}, ((5, 3, 2),)),
    )


@register
class AveragePooling3D(_Pooling):
    """Average pooling over volumes; with padding "same" only real elements are averaged.

    Input shape: (batch, depth, rows, cols, channels). Output shape: (batch,
    pooled_depth, pooled_rows, pooled_cols, channels).
    """

    TYPE = "AveragePooling3D"
    RANK, MODE = 3, "average"
    PARAMS = _pool_params(3)
    EXAMPLES = (
        Example({}, ((4, 4, 3, 2),)),
        Example({"pool_size": 3, "strides": 1, "padding": "same"}, ((3, 4, 3, 1),)),
        Example({"pool_size": [2, 3, 2], "strides": [1, 2, 1]}, ((3, 5, 3, 1),)),
        Example({"pool_size": 3, "strides": 2, "padding": "same"}, ((3, 5, 3, 1),)),
    )


@register
class GlobalMaxPooling1D(_GlobalPooling):
    """The largest value of each feature over all steps.

    Input shape: (batch, steps, features). Output shape: (batch, features),
    or (batch, 1, features) with ``keepdims``.
    """

    TYPE = "GlobalMaxPooling1D"
    RANK, MODE = 1, "max"
    EXAMPLES = (Example({}, ((5, 3),)), Example({"keepdims": True}, ((4, 2),)))


@register
class GlobalMaxPooling2D(_GlobalPooling):
    """The largest value of each channel over the whole image.

    Input shape: (batch, rows, cols, channels). Output shape: (batch, channels),
    or (batch, 1, 1, channels) with ``keepdims``.
    """

    TYPE = "GlobalMaxPooling2D"
    RANK, MODE = 2, "max"
    EXAMPLES = (Example({}, ((4, 3, 2),)), Example({"keepdims": True}, ((3, 5, 2),)))


@register
class GlobalMaxPooling3D(_GlobalPooling):
    """The largest value of each channel over the whole volume.

    Input shape: (batch, depth, rows, cols, channels). Output shape: (batch,
    channels), or (batch, 1, 1, 1, channels) with ``keepdims``.
    """

    TYPE = "GlobalMaxPooling3D"
    RANK, MODE = 3, "max"
    EXAMPLES = (Example({}, ((3, 4, 3, 2),)), Example({"keepdims": True}, ((2, 3, 2, 2),)))


@register
class GlobalAveragePooling1D(_GlobalPooling):
    """The mean of each feature over all steps.

    Input shape: (batch, steps, features). Output shape: (batch, features),
    or (batch, 1, features) with ``keepdims``.
    """

    TYPE = "GlobalAveragePooling1D"
    RANK, MODE = 1, "average"
    EXAMPLES = (Example({}, ((5, 3),)), Example({"keepdims": True}, ((4, 2),)))


@register
class GlobalAveragePooling2D(_GlobalPooling):
    """The mean of each channel over the whole image.

    Input shape: (batch, rows, cols, channels). Output shape: (batch, channels),
    or (batch, 1, 1, channels) with ``keepdims``.
    """

    TYPE = "GlobalAveragePooling2D"
    RANK, MODE = 2, "average"
    EXAMPLES = (Example({}, ((4, 3, 2),)), Example({"keepdims": True}, ((3, 5, 2),)))


@register
class GlobalAveragePooling3D(_GlobalPooling):
    """The mean of each channel over the whole volume.

    Input shape: (batch, depth, rows, cols, channels). Output shape: (batch,
    channels), or (batch, 1, 1, 1, channels) with ``keepdims``.
    """

    TYPE = "GlobalAveragePooling3D"
    RANK, MODE = 3, "average"
    EXAMPLES = (Example({}, ((3, 4, 3, 2),)), Example({"keepdims": True}, ((2, 3, 2, 2),)))

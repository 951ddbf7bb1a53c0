"""Pooling blocks: Max/Average pooling over windows, and their global versions.

Like Keras's ``base_pooling.py`` and ``base_global_pooling.py``, two small
bases do the work and each concrete block only names its rank and mode.
Windowed pooling works on one array per window offset (``prod(pool_size)``
of them), so no Python loop ever runs over pixels or samples. When windows
tile the input (``strides == pool_size``, the common case) the input is first
copied offset-major, which makes every later operation contiguous.
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import numpy as np

from nodenet.engine.layer import Example, Layer, expect_rank, fmt_shape, register
from nodenet.engine.layers.conv import (
    Pads,
    _as_tuple,
    crop_spatial,
    offset_slices,
    output_length,
    over_batch,
    pad_spatial,
    same_pads,
)
from nodenet.engine.params import Bool, Choice, Int, IntTuple
from nodenet.errors import ShapeError

_ALL = (slice(None),) * 8  # leading full slices, to index the axis after the window axes


class _Pooling(Layer):
    """Shared by the windowed pooling blocks; subclasses set ``RANK`` and ``MODE``."""

    RANK: ClassVar[int] = 2
    MODE: ClassVar[str] = "max"  # or "average"
    CATEGORY = "Pooling"
    KEY_PARAMS = ("pool_size",)

    def geometry(self, spatial) -> tuple[tuple[int, ...], tuple[int, ...], Pads]:
        """Window size, strides and (before, after) padding per spatial axis."""
        pool = _as_tuple(self.config["pool_size"], self.RANK)
        strides = self.config["strides"]
        strides = pool if strides is None else _as_tuple(strides, self.RANK)
        if self.config["padding"] == "valid":
            return pool, strides, [(0, 0)] * self.RANK
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
        if pool == strides:  # tiles: copy window-major once, then every op is contiguous
            windows = None
            blocks = to_tiles(xp, pool, out)
        else:  # general windows: one strided view per window offset
            windows = _window_slices(pool, strides, out)
            blocks = [xp[window] for window in windows]
        layout = (xp.shape, pool, pads, out, windows)
        if self.MODE == "max":
            y = _reduce(np.maximum, blocks)
            return y, (layout, blocks, y)
        counts = _window_counts(x.shape[1:-1], pads, pool, strides, out, x.dtype)
        return _reduce(np.add, blocks) / counts, (layout, counts)

    def _backward(self, weights, cache, grad):
        padded_shape, pool, pads, out, windows = cache[0]
        covered = windows is None and tuple(padded_shape[1:-1]) == tuple(
            o * p for o, p in zip(out, pool, strict=True)
        )
        dxp = (np.empty if covered else np.zeros)(padded_shape, dtype=grad.dtype)
        if windows is None:  # tiles: write through a window-major view of dxp
            tiles = tiles_of(dxp, pool, out)
            if self.MODE == "max":
                blocks, y = cache[1], cache[2]

                def route(part: slice) -> None:
                    target = tiles[(*_ALL[: len(pool)], part)]
                    first = _first_max_mask(blocks[:, part], y[part]).reshape(target.shape)
                    np.multiply(first, grad[part], out=target)

                over_batch(route, len(grad), dxp.size)
            else:
                tiles[...] = grad / cache[1]
        else:
            if self.MODE == "max":
                pieces = _first_max_mask(cache[1], cache[2]) * grad
            else:
                pieces = itertools.repeat(grad / cache[1], len(windows))
            for window, piece in zip(windows, pieces, strict=True):
                dxp[window] += piece
        return [crop_spatial(dxp, pads)], {}


def _window_slices(pool, strides, out) -> list[tuple]:
    """Per window offset (row-major), the slices of the padded input it meets."""
    ones = (1,) * len(pool)
    return [(slice(None), *offset_slices(o, strides, ones, out)) for o in np.ndindex(*pool)]


def _tiled_view(a: np.ndarray, pool, out) -> np.ndarray:
    """A view (batch, out_0, pool_0, out_1, pool_1, ..., channels) of the tiled part of ``a``."""
    region = a[(slice(None), *(slice(0, o * p) for o, p in zip(out, pool, strict=True)))]
    split = (d for o, p in zip(out, pool, strict=True) for d in (o, p))
    return region.reshape(a.shape[0], *split, a.shape[-1])  # splitting axes never copies


def _tile_order(rank: int) -> tuple[int, ...]:
    """Axes of :func:`_tiled_view` in window-major order: pool axes, batch, out axes, channels."""
    return (*range(2, 2 * rank + 1, 2), 0, *range(1, 2 * rank, 2), 2 * rank + 1)


def tiles_of(image: np.ndarray, pool, out) -> np.ndarray:
    """A writable window-major view (*pool, batch, *out, channels) of a tiling of ``image``."""
    return _tiled_view(image, pool, out).transpose(_tile_order(len(pool)))


def to_tiles(xp: np.ndarray, pool, out) -> np.ndarray:
    """Windows of a tiling (pool == strides), offset-major: (prod(pool), batch, *out, channels)."""
    blocks = np.empty((*pool, xp.shape[0], *out, xp.shape[-1]), dtype=xp.dtype)
    lead = _ALL[: len(pool)]

    def copy(part: slice) -> None:
        np.copyto(blocks[(*lead, part)], tiles_of(xp[part], pool, out))

    over_batch(copy, len(xp), blocks.size)
    return blocks.reshape(-1, *blocks.shape[len(pool) :])


def _reduce(op, blocks) -> np.ndarray:
    """``op`` (np.maximum or np.add) folded over the window blocks: (batch, *out, channels)."""
    y = np.empty(blocks[0].shape, dtype=blocks[0].dtype)

    def fold(part: slice) -> None:
        np.copyto(y[part], blocks[0][part])
        for block in blocks[1:]:
            op(y[part], block[part], out=y[part])

    over_batch(fold, len(y), y.size * len(blocks))
    return y


def _first_max_mask(blocks, y: np.ndarray) -> np.ndarray:
    """(windows, batch, *out, channels) bool: where each offset holds its window's first maximum.

    Offsets are visited in row-major order, so a tie sends the gradient to the
    first maximum only, as Keras does.
    """
    mask = np.empty((len(blocks), *y.shape), dtype=bool)
    for k, block in enumerate(blocks):
        np.equal(block, y, out=mask[k])
        if k == 0:
            seen = mask[0].copy()
            continue
        np.greater(mask[k], seen, out=mask[k])  # for booleans: hit and not seen before
        if k + 1 < len(blocks):
            seen |= mask[k]
    return mask


def _window_counts(spatial, pads: Pads, pool, strides, out, dtype) -> np.ndarray | float:
    """How many real (unpadded) elements each window holds: (*out, 1), or one number."""
    if not any(b or a for b, a in pads):
        return float(math.prod(pool))
    inside = pad_spatial(np.ones((1, *spatial, 1), dtype=dtype), pads)
    windows = _window_slices(pool, strides, out)
    return _reduce(np.add, [inside[w] for w in windows])[0]


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
        IntTuple("pool_size", [2, 2], "size of the pooling window", length=rank),
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

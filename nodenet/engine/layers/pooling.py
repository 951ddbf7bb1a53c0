"""Pooling blocks: Max/Average pooling over windows, and their global versions.

Like Keras's ``base_pooling.py`` and ``base_global_pooling.py``, two small
bases do the work and each concrete block only names its rank and mode.
Windowed pooling works on one array per window offset (``prod(pool_size)``
of them), so no Python loop ever runs over pixels or samples. When windows
tile the input (``strides == pool_size``, the common case) the batch is
gathered window-major chunk by chunk, whole channel vectors at a time, and
every operation on a chunk runs on contiguous memory in cache; in training,
max pooling marks each window's first maximum there and then.
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import numpy as np

from nodenet.engine.layer import Example, Layer, expect_rank, fmt_shape, register
from nodenet.engine.layers.windows import (
    Pads,
    as_tuple,
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
                y = _reduce(np.maximum, blocks)
                return y, (layout, windows, (blocks, y))
            # training needs the first maxima: marked now, while the windows are in cache
            y, first = pool_tiles(xp, pool, out, np.maximum, first=ctx.training)
            return y, (layout, None, (first, None if ctx.training else xp))
        counts = _window_counts(x.shape[1:-1], pads, pool, strides, out, x.dtype)
        if tiles:
            y, _ = pool_tiles(xp, pool, out, np.add)
        else:
            y = _reduce(np.add, [xp[window] for window in windows])
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


# -- tiles: windows that tile the input (pool == strides) ----------------------------

_CHUNK = 1 << 17  # output elements per chunk: its windows stay in a core's cache


def _vectors(a: np.ndarray) -> np.ndarray:
    """``a`` (..., channels) as (...) opaque channel vectors (its last axis is contiguous).

    Copies between window layouts then move whole vectors, about twice as
    fast as moving the numbers one by one.
    """
    return a.view(np.dtype((np.void, a.shape[-1] * a.itemsize)))[..., 0]


def _tile_view(a: np.ndarray, pool, out) -> np.ndarray:
    """Channel vectors of the tiled part of ``a`` window-major: (*pool, batch, *out)."""
    region = _vectors(a)[(slice(None), *(slice(0, o * p) for o, p in zip(out, pool, strict=True)))]
    split = (d for o, p in zip(out, pool, strict=True) for d in (o, p))
    tiled = region.reshape(len(a), *split)  # splitting axes never copies
    rank = len(pool)
    return tiled.transpose(*range(2, 2 * rank + 1, 2), 0, *range(1, 2 * rank, 2))


def _chunks(part: slice, step: int):
    """``part`` of the batch cut into slices of at most ``step`` samples."""
    for start in range(part.start, part.stop, step):
        yield slice(start, min(start + step, part.stop))


def pool_tiles(
    xp: np.ndarray, pool: tuple[int, ...], out: tuple[int, ...], op: np.ufunc, first: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Tiled windows of ``xp`` (batch, *spatial, channels) folded with ``op``.

    Returns y (batch, *out, channels) and, with ``first`` (max pooling), the
    mask (prod(pool), batch, *out, channels) of each window's first maximum.
    Each chunk of the batch is gathered window-major into a buffer that stays
    in cache for the fold and the mask.
    """
    if xp.strides[-1] != xp.itemsize:
        xp = np.ascontiguousarray(xp)
    batch, offsets, lead = len(xp), math.prod(pool), _ALL[: len(pool)]
    y = np.empty((batch, *out, xp.shape[-1]), dtype=xp.dtype)
    mask = np.empty((offsets, *y.shape), dtype=bool) if first else None
    windows = _tile_view(xp, pool, out)
    sample = math.prod(y.shape[1:])
    step = max(1, _CHUNK // max(1, sample))

    def work(part: slice) -> None:
        buffer = np.empty(offsets * min(step, part.stop - part.start) * sample, xp.dtype)
        for chunk in _chunks(part, step):
            shape = (*pool, chunk.stop - chunk.start, *y.shape[1:])
            tiles = buffer[: math.prod(shape)].reshape(shape)
            np.copyto(_vectors(tiles), windows[(*lead, chunk)])
            blocks = tiles.reshape(offsets, *shape[len(pool) :])
            np.copyto(y[chunk], blocks[0])
            for block in blocks[1:]:
                op(y[chunk], block, out=y[chunk])
            if mask is not None:
                first_max_mask(blocks, y[chunk], out=mask[:, chunk])

    over_batch(work, batch, xp.size)
    return y, mask


def spread_tiles(
    grad: np.ndarray,
    padded_shape: tuple[int, ...],
    pool: tuple[int, ...],
    out: tuple[int, ...],
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Backward of :func:`pool_tiles`: ``grad`` (batch, *out, channels) sent to the windows.

    With ``mask`` (max pooling) each window's gradient goes where the mask is
    set; without, every element of the window gets it (average pooling, the
    division already done). Returns the padded image gradient.
    """
    covered = tuple(padded_shape[1:-1]) == tuple(o * p for o, p in zip(out, pool, strict=True))
    dxp = (np.empty if covered else np.zeros)(padded_shape, dtype=grad.dtype)
    targets, lead, offsets = _tile_view(dxp, pool, out), _ALL[: len(pool)], math.prod(pool)
    if mask is None:
        source = _vectors(np.ascontiguousarray(grad))

        def copy(part: slice) -> None:
            np.copyto(targets[(*lead, part)], source[part])

        over_batch(copy, len(grad), dxp.size)
        return dxp
    sample = math.prod(grad.shape[1:])
    step = max(1, _CHUNK // max(1, sample))

    def work(part: slice) -> None:
        buffer = np.empty(offsets * min(step, part.stop - part.start) * sample, grad.dtype)
        for chunk in _chunks(part, step):
            shape = (offsets, chunk.stop - chunk.start, *grad.shape[1:])
            pieces = buffer[: math.prod(shape)].reshape(shape)
            np.multiply(mask[:, chunk], grad[chunk], out=pieces)
            np.copyto(targets[(*lead, chunk)], _vectors(pieces).reshape(*pool, *shape[1:-1]))

    over_batch(work, len(grad), dxp.size)
    return dxp


def _reduce(op, blocks) -> np.ndarray:
    """``op`` (np.maximum or np.add) folded over the window blocks: (batch, *out, channels)."""
    y = np.empty(blocks[0].shape, dtype=blocks[0].dtype)

    def fold(part: slice) -> None:
        np.copyto(y[part], blocks[0][part])
        for block in blocks[1:]:
            op(y[part], block[part], out=y[part])

    over_batch(fold, len(y), y.size * len(blocks))
    return y


def first_max_mask(blocks, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(windows, batch, *out, channels) bool: where each offset holds its window's first maximum.

    Offsets are visited in row-major order, so a tie sends the gradient to the
    first maximum only, as Keras does. Written to ``out`` when given.
    """
    mask = np.empty((len(blocks), *y.shape), dtype=bool) if out is None else out
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

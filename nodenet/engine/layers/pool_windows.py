"""Pooling windows that tile the input, and the folds over window blocks.

Helpers of :mod:`nodenet.engine.layers.pooling` (and of the fused convolution
and pooling, :mod:`nodenet.engine.layers.conv_pool`). When windows tile the
input (``strides == pool_size``) the batch is gathered window-major chunk by
chunk, whole channel vectors at a time, and every operation on a chunk runs on
contiguous memory in cache; max pooling marks each window's first maximum
there and then.
"""

from __future__ import annotations

import math

import numpy as np

from nodenet.engine.layers.windows import over_batch

_ALL = (slice(None),) * 8  # leading full slices, to index the axis after the window axes

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


def reduce_windows(op, blocks) -> np.ndarray:
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

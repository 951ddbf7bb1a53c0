"""A convolution's forward and backward run part by part of the batch, one core per part.

Used by :class:`nodenet.engine.layers.conv._Conv` (Conv1D, Conv2D, Conv3D) and by the
fused convolution and max pooling (:mod:`nodenet.engine.layers.conv_pool`). Each
part of the batch goes through the whole pass on one thread: gather its windows
(im2col), one matrix product with the kernel, the bias, then the relu or the max
pooling while the product's output is still in cache; the backward likewise
(pooling or relu mask, the part's share of the weight gradients, one product for
the input gradient's windows and their strided adds, col2im). Threads meet once
per pass, not at every block of every product: on a busy machine a multi-threaded
BLAS product waits at each block for a helper that is not running, which costs many
times its arithmetic. The products therefore run with one BLAS thread each.

The parts depend on the batch size only, and their weight gradients are summed in
a fixed order: the numbers never depend on the thread count.

Rows of the window matrix are batch-major: sample, then offset inside the pooling
window (``size``; all ones without pooling), then pooled position. A wide window
(many kernel taps times channels) is a row of ``cols`` (rows, width); a narrow one
(few channels, as in a first layer on gray images) is a column of ``cols``
(width [+ 1], rows) so that copies run along image rows, the bias riding in the
product as a last row of ones.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nodenet.engine import kernels
from nodenet.engine.layers.pool_windows import first_max_mask
from nodenet.engine.layers.windows import NARROW, over_parts, window_view

PARTS = 8  # parts of a batch: enough for a few cores, each part's windows stay in cache

# -- one BLAS thread while the parts run --------------------------------------------------

_blas: list = []  # the threadpoolctl controller of the BLAS libraries, once looked up


def one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS limited to one thread per call (the parts supply the parallelism)."""
    if not _blas:
        try:
            from threadpoolctl import ThreadpoolController  # installed with scikit-learn

            _blas.append(ThreadpoolController().select(user_api="blas"))
        except Exception:  # pragma: no cover (no threadpoolctl, or an unknown library)
            _blas.append(None)
    controller = _blas[0]
    if controller is None or not controller.lib_controllers:
        return contextlib.nullcontext()
    return controller.limit(limits=1)


def batch_parts(batch: int) -> list[slice]:
    """The parts of a batch, fixed by its size alone."""
    count = max(1, min(batch, PARTS))
    bounds = [batch * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def run_parts(work, parts: list[slice], size: int) -> None:
    """``work(i, part)`` for every part, on whichever thread is free, one BLAS thread each."""
    with one_blas_thread():
        over_parts(work, parts, size)


# -- geometry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """Where a convolution's windows lie in its padded input, and how they are pooled.

    ``window``, ``strides``, ``dilation``: the kernel's taps per spatial axis and
    their steps; ``size``: the pooling window (ones without pooling); ``pooled``:
    positions after pooling (the convolution's output without).
    """

    window: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    size: tuple[int, ...]
    pooled: tuple[int, ...]
    channels: int
    filters: int

    @property
    def width(self) -> int:
        """Kernel taps times input channels: one window's length."""
        return math.prod(self.window) * self.channels

    @property
    def narrow(self) -> bool:
        """Windows gathered as columns (few taps times channels)."""
        return self.width <= NARROW

    @property
    def rows(self) -> int:
        """Windows per sample: pooling offsets times pooled positions."""
        return math.prod(self.size) * math.prod(self.pooled)


def _gather(xp: np.ndarray, geo: Geometry, ones: bool, into: np.ndarray) -> np.ndarray:
    """The windows of ``xp`` (part, *spatial, channels), written to the flat buffer ``into``.

    (rows, width), or for narrow windows (width [+ 1 with ``ones``], rows).
    """
    n = len(xp)
    if geo.narrow:
        cols = into.reshape(geo.width + ones, n * geo.rows)
        if ones:
            cols[-1] = 1
        target = cols[: geo.width].reshape(*geo.window, geo.channels, n, *geo.size, *geo.pooled)
        np.copyto(target, _taps(xp, geo))  # one copy: few, long calls share cores well
        return cols
    cols = into.reshape(n * geo.rows, geo.width)
    target = cols.reshape(n, *geo.size, *geo.pooled, *geo.window, geo.channels)
    steps = tuple(s * p for s, p in zip(geo.strides, geo.size, strict=True))
    for corner in np.ndindex(*geo.size):
        starts = (q * s for q, s in zip(corner, geo.strides, strict=True))
        shifted = xp[(slice(None), *(slice(a, None) for a in starts))]
        view = window_view(shifted, geo.window, steps, geo.dilation, geo.pooled)
        np.copyto(target[(slice(None), *corner)], view)
    return cols


# -- window buffers, reused from one step to the next ----------------------------------------

_spare = threading.local()  # per thread: {(size, dtype): [buffers a finished backward gave back]}


def _take(size: int, dtype) -> np.ndarray:
    """A flat buffer of ``size`` elements: one given back by :func:`_give`, or a new one.

    Reusing the window matrix of the previous step spares the page faults of a
    fresh one of several megabytes.
    """
    spare = getattr(_spare, "buffers", None)
    if spare:
        found = spare.pop((size, np.dtype(dtype).str), None)
        if found is not None:
            return found
    return np.empty(size, dtype)


def _give(holder: list) -> None:
    """Hand a forward's window buffer back once its backward has read it (once only)."""
    if not holder:
        return
    buffer = holder.pop()
    spare = getattr(_spare, "buffers", None)
    if spare is None:
        spare = _spare.buffers = {}
    if len(spare) >= _SPARE_BUFFERS:
        spare.pop(next(iter(spare)))
    spare[(buffer.size, buffer.dtype.str)] = buffer


_SPARE_BUFFERS = 4  # window buffers kept per thread: one per convolution of a small model


def _taps(xp: np.ndarray, geo: Geometry) -> np.ndarray:
    """Every window of ``xp`` (part, *spatial, channels) as one read-only view
    (*window, channels, part, *size, *pooled): along a spatial axis, kernel tap ``o``,
    pooling offset ``q`` and pooled position ``j`` read ``q*s + o*d + j*s*p``."""
    sn, *ss, sc = xp.strides
    shape = (*geo.window, geo.channels, len(xp), *geo.size, *geo.pooled)
    steps = (
        *(st * d for st, d in zip(ss, geo.dilation, strict=True)),
        sc,
        sn,
        *(st * s for st, s in zip(ss, geo.strides, strict=True)),
        *(st * s * p for st, s, p in zip(ss, geo.strides, geo.size, strict=True)),
    )
    return as_strided(xp, shape, steps, writeable=False)


def _scatter(dcols: np.ndarray, geo: Geometry, dxp: np.ndarray) -> None:
    """Adjoint of :func:`_gather` (wide layout): add window gradients ``dcols`` into ``dxp``.

    One add per kernel tap: for a given tap, the pooling offsets and pooled positions
    meet distinct input positions (``s*(q + j*p)``, ``q < p``), so one strided view of
    ``dxp`` takes all of them without overlap.
    """
    contiguous = dxp.flags.c_contiguous and dcols.flags.c_contiguous
    kern = kernels.get() if len(geo.window) == 2 and contiguous else None
    if kern is not None:  # the same adds, in one loop (two spatial axes)
        kern.conv_scatter2d(dcols, dxp, geo.size, geo.pooled, geo.window, geo.strides, geo.dilation)
        return
    shares = dcols.reshape(len(dxp), *geo.size, *geo.pooled, *geo.window, geo.channels)
    dxp[...] = 0
    sn, *ss, sc = dxp.strides
    shape = (len(dxp), *geo.size, *geo.pooled, geo.channels)
    steps = (
        sn,
        *(st * s for st, s in zip(ss, geo.strides, strict=True)),
        *(st * s * p for st, s, p in zip(ss, geo.strides, geo.size, strict=True)),
        sc,
    )
    for offset in np.ndindex(*geo.window):
        share = shares[(Ellipsis, *offset, slice(None))]
        taps = zip(offset, geo.dilation, strict=True)
        start = dxp[(slice(None), *(slice(o * d, None) for o, d in taps))]
        target = as_strided(start, shape, steps)
        np.add(target, share, out=target)


# -- forward and backward ---------------------------------------------------------------


def forward(xp, kernel, bias, geo: Geometry, relu: bool, pool: bool, training: bool):
    """The convolution of the padded input ``xp``, then a relu and/or max pooling.

    Returns the output (batch, *pooled, filters) and the cache for :func:`backward`.
    Without ``pool`` the relu runs in place on the output, which then stands in for
    the pre-activation; with it the relu runs on the pooled output (it commutes with
    the maximum) and its mask joins the pooling's first-maximum mask.
    """
    batch, filters = len(xp), geo.filters
    narrow, ones = geo.narrow, geo.narrow and bias is not None
    matrix = kernel.reshape(-1, filters)
    if ones:
        matrix = np.vstack([matrix, bias])
    long_bias = None if bias is None or ones else np.tile(bias, math.prod(geo.pooled))
    y = np.empty((batch, *geo.pooled, filters), xp.dtype)
    blocks_shape = (batch, math.prod(geo.size), *geo.pooled, filters)
    mask = np.empty(blocks_shape, bool) if pool and training else None
    kept = np.empty(blocks_shape, xp.dtype) if pool and not training else None
    parts = batch_parts(batch)
    cols: list = [None] * len(parts)
    per_sample = geo.rows * (geo.width + ones)
    buffer = _take(batch * per_sample, xp.dtype)

    def work(i: int, part: slice) -> None:
        n = part.stop - part.start
        into = buffer[part.start * per_sample : part.stop * per_sample]
        c = cols[i] = _gather(xp[part], geo, ones, into)
        if pool:
            z = np.empty((n * geo.rows, filters), xp.dtype) if kept is None else kept[part]
            z = z.reshape(n * geo.rows, filters)
        else:
            z = y[part].reshape(n * geo.rows, filters)
        np.matmul(c.T if narrow else c, matrix, out=z)
        if long_bias is not None:  # added as long rows, not many short ones
            rows = z.reshape(-1, len(long_bias))
            rows += long_bias
        if not pool:
            if relu:
                np.maximum(z, 0, out=z)
            return
        blocks = z.reshape(n, math.prod(geo.size), *geo.pooled, filters)
        _pool(blocks, y[part], relu, None if mask is None else mask[part])

    run_parts(work, parts, y.size * (math.prod(geo.size) + geo.width))
    cache = (cols, [buffer], parts, geo, xp.shape, relu, pool, mask, kept)
    return y, cache


def _pool(blocks: np.ndarray, y: np.ndarray, relu: bool, mask: np.ndarray | None) -> None:
    """``y`` = the maximum of ``blocks`` (part, offsets, ...) over offsets, then a relu.

    ``mask`` (part, offsets, ...), when given, marks each window's first maximum
    (and, with a relu, only where that maximum is positive).
    """
    np.copyto(y, blocks[:, 0])
    for k in range(1, blocks.shape[1]):
        np.maximum(y, blocks[:, k], out=y)
    if mask is not None:
        first_max_mask(list(blocks.swapaxes(0, 1)), y, out=mask.swapaxes(0, 1))
        if relu:
            np.logical_and(mask, (y > 0)[:, None], out=mask)
    if relu:
        np.maximum(y, 0, out=y)


def backward(cache, kernel, has_bias: bool, grad, positive=None, input_grad: bool = True):
    """Gradients of :func:`forward`: the padded input's (or None) and ``kernel``/``bias``.

    ``grad`` is dL/d(output); ``positive``, a relu's output without pooling (the
    gradient passes where it is above zero).
    """
    cols, holder, parts, geo, padded_shape, relu, pool, mask, kept = cache
    filters, width = geo.filters, geo.width
    matrix_t = np.ascontiguousarray(kernel.reshape(width, filters).T)  # (filters, width)
    dxp = np.empty(padded_shape, grad.dtype) if input_grad else None
    sums: list = [None] * len(parts)

    def work(i: int, part: slice) -> None:
        n = part.stop - part.start
        g = grad[part]
        if pool:
            m = mask[part] if mask is not None else _mask_of(kept[part], relu)
            pieces = np.multiply(m, g[:, None], dtype=grad.dtype)
        elif positive is not None:
            pieces = np.greater(positive[part], 0).astype(grad.dtype)
            pieces *= g
        else:
            pieces = g
        g2 = pieces.reshape(n * geo.rows, filters)
        c = cols[i]
        # np.dot, not @: numpy's matmul keeps the GIL for outputs of 500 values or less,
        # as a first layer's (taps + 1) x filters often is, and the other parts wait
        if geo.narrow:  # the bias row of ones gives the bias gradient in the same product
            sums[i] = (np.dot(c, g2), None)
        else:
            bias = np.einsum("ab->b", g2) if has_bias else None  # 3x sum(axis=0)'s speed
            sums[i] = (np.dot(c.T, g2), bias)
        if dxp is not None:
            _scatter(g2 @ matrix_t, geo, dxp[part])

    run_parts(work, parts, grad.size * (math.prod(geo.size) + width))
    _give(holder)  # a backward of the same forward again still finds its windows
    both = sums[0][0].copy()
    for s, _ in sums[1:]:
        both += s
    grads = {"kernel": np.ascontiguousarray(both[:width]).reshape(kernel.shape)}
    if has_bias:
        if len(both) > width:
            grads["bias"] = both[width].copy()
        else:
            bias = sums[0][1].copy()
            for _, s in sums[1:]:
                bias += s
            grads["bias"] = bias
    return dxp, grads


def _mask_of(blocks: np.ndarray, relu: bool) -> np.ndarray:
    """The pooling mask of :func:`_pool` from kept blocks (a forward run in inference mode)."""
    y = blocks.max(axis=1)
    mask = np.empty(blocks.shape, bool)
    first_max_mask(list(blocks.swapaxes(0, 1)), y, out=mask.swapaxes(0, 1))
    if relu:
        np.logical_and(mask, (y > 0)[:, None], out=mask)
    return mask

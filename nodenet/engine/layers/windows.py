"""Sliding-window helpers shared by the convolution and pooling blocks.

Images are channels-last: ``(batch, *spatial, channels)``. Window geometry
follows Keras ("valid", "same", "causal" padding). im2col copies a strided
window view to a ``(batch * positions, kernel_positions * channels)`` matrix;
col2im is its adjoint, one slice-add per kernel offset (the convolutions
themselves run part by part of the batch: :mod:`nodenet.engine.layers.conv_parts`).
Element-wise work runs on parts of the batch in a few threads
(:func:`over_batch`, :func:`over_parts`); every split gives the same numbers.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import as_strided

Pads = list[tuple[int, int]]  # (before, after) per spatial axis

# -- element-wise work over parts of the batch, on several cores --------------------

_PARALLEL_MIN = 1 << 18  # elements: below this, starting threads costs more than it saves
_workers: dict[tuple[int, int], ThreadPoolExecutor] = {}  # by (process id, size)


def thread_count() -> int:
    """Threads for element-wise work: OMP_NUM_THREADS or OPENBLAS_NUM_THREADS, else the cores."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return min(os.cpu_count() or 1, 8)


class _Shares:
    """Parts of one :func:`over_batch` call, taken one at a time by whichever thread is free."""

    def __init__(self, work: Callable[[int], object], parts: list[int]):
        self.work, self.parts = work, parts
        self.taken = self.finished = 0
        self.error: BaseException | None = None
        self.lock = threading.Condition()

    def run(self) -> None:
        """Do parts until none is left."""
        while True:
            with self.lock:
                if self.taken == len(self.parts):
                    return
                part = self.parts[self.taken]
                self.taken += 1
            try:
                self.work(part)
            except BaseException as err:  # re-raised by the caller's thread
                self.error = err
            with self.lock:
                self.finished += 1
                self.lock.notify_all()

    def wait(self) -> None:
        """Block until every part taken has finished; re-raise a worker's error."""
        with self.lock:
            self.lock.wait_for(lambda: self.finished == self.taken)
        if self.error is not None:
            raise self.error


def over_batch(work: Callable[[slice], object], batch: int, size: int) -> None:
    """Run ``work(part)`` on slices ``part`` that split ``range(batch)``, in parallel.

    numpy releases the GIL inside copies and ufunc loops, so element-wise work
    on disjoint parts of the batch runs on several cores, like the matrix
    products do. The calling thread works too and takes every part no helper
    has started: a helper kept off its core (by BLAS threads that spin after a
    product, or by other programs) then costs nothing. ``size`` (elements
    touched) below a threshold, or one thread, runs ``work`` once on the whole
    batch. Results do not depend on the split.
    """
    threads = min(thread_count(), batch)
    if threads < 2 or size < _PARALLEL_MIN:
        work(slice(0, batch))
        return
    count = min(batch, 2 * threads)
    bounds = [batch * i // count for i in range(count + 1)]
    parts = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    _share_out(lambda i: work(parts[i]), len(parts), threads)


def over_parts(work: Callable[[int, slice], object], parts: list[slice], size: int) -> None:
    """Run ``work(i, parts[i])`` for every given part, in parallel as :func:`over_batch` does.

    The parts are the caller's (fixed by the batch alone, so that results summed
    over them never depend on the thread count); ``size`` below a threshold, or
    one thread, runs them one after the other in the calling thread.
    """
    threads = parallel_threads(len(parts), size)
    if threads < 2:
        for i, part in enumerate(parts):
            work(i, part)
        return
    _share_out(lambda i: work(i, parts[i]), len(parts), threads)


def parallel_threads(parts: int, size: int) -> int:
    """The threads :func:`over_parts` runs ``parts`` parts touching ``size`` elements on."""
    threads = min(thread_count(), parts)
    return 1 if threads < 2 or size < _PARALLEL_MIN else threads


def _share_out(work: Callable[[int], object], count: int, threads: int) -> None:
    """``work(i)`` for ``i < count`` on ``threads`` threads, the calling one among them."""
    key = (os.getpid(), threads - 1)  # a forked child needs threads of its own
    if key not in _workers:
        _workers[key] = ThreadPoolExecutor(threads - 1, thread_name_prefix="nodenet")
    shares = _Shares(work, list(range(count)))
    for _ in range(threads - 1):
        _workers[key].submit(shares.run)
    shares.run()
    shares.wait()


# -- window geometry -------------------------------------------------------------


def as_tuple(value, rank: int) -> tuple[int, ...]:
    """A size setting (one int, or a list of one per axis) as one int per spatial axis."""
    return tuple(value) if isinstance(value, list) else (value,) * rank


def output_length(
    length: int | None, window: int, stride: int, padding: str, dilation: int = 1
) -> int | None:
    """Positions of a (dilated) window along one axis, as Keras computes them.

    ``padding`` is ``"valid"``, ``"same"`` or ``"causal"``; ``None`` stays ``None``.
    A valid result below 1 means the window does not fit.
    """
    if length is None:
        return None
    span = (window - 1) * dilation + 1
    if padding == "valid":
        return (length - span) // stride + 1
    return (length - 1) // stride + 1


def same_pads(length: int, window: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras's "same" padding of one axis: split evenly, the odd one at the end."""
    span = (window - 1) * dilation + 1
    out = (length - 1) // stride + 1
    total = max(0, (out - 1) * stride + span - length)
    return total // 2, total - total // 2


def pad_spatial(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """``x`` (batch, *spatial, channels) padded with ``value``; ``x`` itself if no padding."""
    if not any(before or after for before, after in pads):
        return x
    spatial = [n + b + a for n, (b, a) in zip(x.shape[1:-1], pads, strict=True)]
    out = np.full((x.shape[0], *spatial, x.shape[-1]), value, dtype=x.dtype)
    inner = tuple(slice(b, b + n) for n, (b, _) in zip(x.shape[1:-1], pads, strict=True))
    out[(slice(None), *inner)] = x
    return out


def crop_spatial(x: np.ndarray, crops: Pads) -> np.ndarray:
    """``x`` (batch, *spatial, channels) cropped; a negative amount pads with zeros.

    ``crop_spatial(g, [(-b, -a), ...])`` is the adjoint of ``crop_spatial(x, [(b, a), ...])``,
    which makes it the backward of both padding and cropping.
    """
    x = pad_spatial(x, [(max(-b, 0), max(-a, 0)) for b, a in crops])
    inner = tuple(
        slice(max(b, 0), n - max(a, 0)) for n, (b, a) in zip(x.shape[1:-1], crops, strict=True)
    )
    return x[(slice(None), *inner)]


def transpose_crops(
    kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> tuple[int, int]:
    """How much to cut (negative: add) at each end of a full transposed convolution.

    The full output of one axis has ``(length - 1) * stride + span`` positions;
    Keras keeps the window its ``padding`` and ``output_padding`` define.
    """
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        before, after = span - 1, span - 1 + extra
    else:
        if output_padding is None:
            total = stride + span - 2
        else:
            total = span + span % 2 - 2 + output_padding
        before = min(total // 2 + total % 2, span - 1)
        after = total - before
    return span - 1 - before, span - 1 - after


def offset_slices(offset, strides, dilation, out) -> tuple[slice, ...]:
    """The spatial slices of a padded input that kernel ``offset`` meets at every position."""
    return tuple(
        slice(o * d, o * d + s * (m - 1) + 1, s)
        for o, s, d, m in zip(offset, strides, dilation, out, strict=True)
    )


def window_view(xp: np.ndarray, kernel, strides, dilation, out) -> np.ndarray:
    """A read-only view (batch, *out, *kernel, channels) of every window of ``xp``."""
    sn, *ss, sc = xp.strides
    shape = (xp.shape[0], *out, *kernel, xp.shape[-1])
    steps = (
        sn,
        *(s * st for s, st in zip(ss, strides, strict=True)),
        *(s * d for s, d in zip(ss, dilation, strict=True)),
        sc,
    )
    return as_strided(xp, shape, steps, writeable=False)


# -- im2col and its adjoint ------------------------------------------------------------


def im2col(xp: np.ndarray, kernel, strides, dilation, out) -> np.ndarray:
    """Windows of ``xp`` as a matrix (batch * prod(out), prod(kernel) * channels)."""
    view = window_view(xp, kernel, strides, dilation, out)
    width = math.prod(view.shape[1 + len(out) :])
    cols = np.empty((xp.shape[0] * math.prod(out), width), dtype=xp.dtype)
    target = cols.reshape(view.shape)  # splitting axes: a view, written in place
    over_batch(lambda part: np.copyto(target[part], view[part]), len(xp), cols.size)
    return cols


def col2im_product(
    a: np.ndarray, kernel: np.ndarray, padded_shape, strides, dilation
) -> np.ndarray:
    """Adjoint of :func:`im2col` applied to ``a @ kernel[offset].T`` for every offset.

    ``a`` is (batch * prod(out), k) and ``kernel`` (*window, n, k); returns the
    image ``padded_shape`` (batch, *spatial, n). Per kernel offset, one matrix
    product fills a block that stays in cache while it is added to the image.
    """
    window, n = kernel.shape[:-2], kernel.shape[-2]
    batch = padded_shape[0]
    out = tuple(
        (size - (w - 1) * d - 1) // s + 1
        for size, w, s, d in zip(padded_shape[1:-1], window, strides, dilation, strict=True)
    )
    image = np.zeros(padded_shape, dtype=np.result_type(a, kernel))
    block = np.empty((len(a), n), dtype=image.dtype)
    blocks = block.reshape(batch, *out, n)
    matrices = kernel.reshape(-1, n, kernel.shape[-1])
    for offset, matrix in zip(np.ndindex(*window), matrices, strict=True):
        np.matmul(a, matrix.T, out=block)
        target = image[(slice(None), *offset_slices(offset, strides, dilation, out))]

        def add(part: slice, target=target) -> None:
            np.add(target[part], blocks[part], out=target[part])

        over_batch(add, batch, block.size)
    return image


NARROW = 64  # window widths (kernel positions * channels) up to this count as narrow


def relu_masked(g: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """``g * (positive > 0)`` (batch, ...), computed on parts of the batch in parallel."""
    out = np.empty(g.shape, dtype=g.dtype)

    def work(part: slice) -> None:
        np.greater(positive[part], 0, out=out[part])
        np.multiply(out[part], g[part], out=out[part])

    over_batch(work, len(g), g.size)
    return out


def channel_sums(g2: np.ndarray) -> np.ndarray:
    """Column sums of (rows, channels) as one matrix-vector product (a bias gradient)."""
    return np.ones(g2.shape[0], dtype=g2.dtype) @ g2

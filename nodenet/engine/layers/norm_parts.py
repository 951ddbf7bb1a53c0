"""BatchNormalization over the last axis while training, part by part of the batch.

Helpers of :class:`nodenet.engine.layers.normalization.BatchNormalization` for
channels-last inputs (``axis=-1``), the common case after a Dense or a
convolution. Each pass runs on parts of the rows on several cores
(:func:`nodenet.engine.layers.windows.over_parts`), each part small enough to
stay in cache; the per-feature sums of the parts are added in a fixed order, so
the numbers do not depend on the thread count.
The statistics are those of :func:`nodenet.engine.layers.normalization.batch_moments`:
the mean summed in float64 (inputs far from zero keep their digits), the variance from the
centered values. Their squares, all positive, are summed in float32 within a part (about
1e-6 relative) and the parts' sums in float64; so are the backward pass's sums.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine import kernels
from nodenet.engine.layers.windows import over_batch, over_parts

_CHUNK = 1 << 16  # elements of a part: its rows of every array in a pass stay in a core's cache


def _rows(x: np.ndarray) -> tuple[np.ndarray, list[slice]]:
    """``x`` (batch, ..., features) as rows (batch * positions, features), and the parts' rows.

    The parts depend on the shape alone and are small enough for every pass over
    them (several arrays at once) to run in cache.
    """
    x2 = x.reshape(-1, x.shape[-1])
    step = max(1, _CHUNK // x2.shape[1])
    return x2, [slice(a, min(a + step, len(x2))) for a in range(0, len(x2), step)]


def _total(partials: list[np.ndarray]) -> np.ndarray:
    """The parts' sums added in order, in float64."""
    total = partials[0].astype(np.float64)
    for p in partials[1:]:
        total += p
    return total


def _long(vector: np.ndarray, rows: int) -> np.ndarray:
    """A per-feature vector repeated for ``rows`` rows: one long row, so that element-wise
    work on a part runs as one long loop instead of many short ones."""
    return np.tile(vector, rows)


def forward(x, gamma, beta, epsilon: float, relu: bool = False):
    """Normalized ``x`` (batch, ..., features) with batch statistics; returns out and the
    cache ``(centered, rstd, scale, mean, var)`` (mean and var for the moving averages).

    ``relu``: the relu of the normalized values, taken in the same pass (a relu
    Activation after the normalization, run with it; see :func:`backward`'s ``relu_out``).
    """
    x = np.ascontiguousarray(x)
    kern = kernels.get()
    if kern is not None:
        return _forward_fused(kern, x, gamma, beta, epsilon, relu)
    x2, rows = _rows(x)
    count, size, step = len(x2), x.size, rows[0].stop
    sums: list = [None] * len(rows)

    def first(i: int, r: slice) -> None:
        sums[i] = np.einsum("ab->b", x2[r], dtype=np.float64)

    over_parts(first, rows, size)
    mean = (_total(sums) / count).astype(x.dtype)
    centered = np.empty_like(x2)
    flat_x, flat_c, long_mean = x2.reshape(-1), centered.reshape(-1), _long(mean, step)

    def second(i: int, r: slice) -> None:
        a, b = r.start * x2.shape[1], r.stop * x2.shape[1]
        np.subtract(flat_x[a:b], long_mean[: b - a], out=flat_c[a:b])
        c = centered[r]
        sums[i] = np.einsum("ab,ab->b", c, c)

    over_parts(second, rows, size)
    var = (_total(sums) / count).astype(x.dtype)
    rstd = 1 / np.sqrt(var + epsilon)
    scale = rstd * gamma if gamma is not None else rstd
    out = np.empty_like(flat_x)
    long_scale = _long(scale, step)
    long_beta = None if beta is None else _long(beta, step)
    zeros = np.zeros(len(long_scale), x.dtype) if relu else None

    def third(i: int, r: slice) -> None:
        a, b = r.start * x2.shape[1], r.stop * x2.shape[1]
        o = np.multiply(flat_c[a:b], long_scale[: b - a], out=out[a:b])
        if long_beta is not None:
            o += long_beta[: b - a]
        if zeros is not None:  # against an array: numpy's fast loop (see activations)
            np.maximum(o, zeros[: b - a], out=o)

    over_parts(third, rows, size)
    return out.reshape(x.shape), (centered.reshape(x.shape), rstd, scale, mean, var)


def _forward_fused(kern, x, gamma, beta, epsilon: float, relu: bool):
    """:func:`forward` through :mod:`nodenet.engine.kernels`: the same parts and sums,
    three passes instead of six."""
    x2, rows, centered, stats = _statistics(kern, x, gamma, epsilon)
    scale = stats[1]
    out = np.empty_like(x2)
    shift = scale if beta is None else beta  # not read without beta

    def third(i: int, r: slice) -> None:
        kern.norm_scale(centered[r], scale, shift, beta is not None, relu, out[r])

    over_parts(third, rows, x.size)
    return out.reshape(x.shape), (centered.reshape(x.shape), *stats)


def _statistics(kern, x, gamma, epsilon: float, keep_centered: bool = True):
    """The first two passes of :func:`_forward_fused`: ``x`` as rows, the parts, the
    centered rows (None unless ``keep_centered``) and ``(rstd, scale, mean, var)``."""
    x2, rows = _rows(x)
    count, size, width = len(x2), x.size, x2.shape[1]
    sums = [np.zeros(width) for _ in rows]
    over_parts(lambda i, r: kern.norm_sums(x2[r], sums[i]), rows, size)
    mean = (_total(sums) / count).astype(x.dtype)
    squares = [np.zeros(width, x.dtype) for _ in rows]
    centered = np.empty_like(x2) if keep_centered else None

    def second(i: int, r: slice) -> None:
        if centered is None:
            kern.norm_squares(x2[r], mean, squares[i])
        else:
            kern.norm_center(x2[r], mean, centered[r], squares[i])

    over_parts(second, rows, size)
    var = (_total(squares) / count).astype(x.dtype)
    rstd = 1 / np.sqrt(var + epsilon)
    scale = rstd * gamma if gamma is not None else rstd
    return x2, rows, centered, (rstd, scale, mean, var)


def _coefficients(sum_g, sum_gc, rstd, scale, count: int, dtype):
    """From the parts' sums of g and g·x̂: beta's and gamma's gradients, and the slope and
    shift per feature of ``dx = g * scale + centered * slope + shift``."""
    grad_beta = _total(sum_g).astype(dtype)
    grad_gamma = (_total(sum_gc) * rstd).astype(dtype)
    slope = -scale * rstd * grad_gamma / count
    shift = -scale * grad_beta / count
    return grad_beta, grad_gamma, slope, shift


def forward_pool(x, gamma, beta, epsilon: float, pool: tuple[int, int]):
    """:func:`forward` with ``relu``, then max pooling over windows ``pool`` that tile
    ``x`` (batch, h, w, features) from its corner: the pooled output and the cache
    ``(x, mean, rstd, scale, first)`` for :func:`backward_pool`, ``first`` holding each
    window's first maximum; with the mean and var. None without the kernels.

    Only the pooled output is written: the centered and normalized values are computed
    where they are read (``x - mean``, as :func:`forward` computes it), never stored.
    ``x`` is kept for the backward: the block before must not change it in place.
    """
    kern = kernels.get()
    if kern is None:
        return None
    x = np.ascontiguousarray(x)
    _, _, _, (rstd, scale, mean, var) = _statistics(kern, x, gamma, epsilon, False)
    out = tuple(n // p for n, p in zip(x.shape[1:3], pool, strict=True))
    y = np.empty((len(x), *out, x.shape[-1]), x.dtype)
    first = np.empty(y.shape, np.int32)  # int8 would keep the loop from vectorizing
    shift = scale if beta is None else beta  # not read without beta

    def third(part: slice) -> None:
        args = (mean, scale, shift, beta is not None, pool, y[part], first[part])
        kern.norm_relu_pool2d(x[part], *args)

    over_batch(third, len(x), x.size)
    return y, (x, mean, rstd, scale, first), (mean, var)


def backward_pool(grad, x, mean, rstd, scale, first, pool: tuple[int, int]):
    """:func:`backward` of :func:`forward_pool`, from dL/d(pooled output) ``grad``: the
    gradient of each position is read from ``grad`` and ``first`` as the pooling and
    the relu would send it, never stored. The same parts and sums as :func:`backward`."""
    kern = kernels.get()
    grad = np.ascontiguousarray(grad)
    x2, rows = _rows(x)
    count, width, shape = len(x2), x2.shape[1], x.shape[1:3]
    sum_g = [np.zeros(width, grad.dtype) for _ in rows]
    sum_gc = [np.zeros(width, grad.dtype) for _ in rows]

    def first_pass(i: int, r: slice) -> None:
        args = (r.start, shape, pool, sum_g[i], sum_gc[i])
        kern.norm_pool_back_sums(grad, first, x2[r], mean, *args)

    over_parts(first_pass, rows, x.size)
    grad_beta, grad_gamma, slope, shift = _coefficients(
        sum_g, sum_gc, rstd, scale, count, grad.dtype
    )
    dx = np.empty_like(x2)

    def second(i: int, r: slice) -> None:
        args = (r.start, shape, pool, scale, slope, shift, dx[r])
        kern.norm_pool_back_dx(grad, first, x2[r], mean, *args)

    over_parts(second, rows, x.size)
    return dx.reshape(x.shape), grad_beta, grad_gamma


def backward(grad, centered, rstd, scale, relu_out=None):
    """dx = scale·(g - mean(g) - x̂·mean(g·x̂)), and the sums of g and of g·x̂ per feature.

    Returns ``dx``, ``sum(g)`` (beta's gradient) and ``sum(g·x̂)`` (gamma's).
    ``relu_out``: the output of a forward with ``relu``; ``grad`` is then dL/d(relu
    output) and passes where that output is positive (into a new array: ``grad`` may be
    another block's too).
    """
    grad = np.ascontiguousarray(grad)
    kern = kernels.get()
    if kern is not None:
        return _backward_fused(kern, grad, centered, rstd, scale, relu_out)
    g2, rows = _rows(grad)
    c2 = centered.reshape(g2.shape)
    count, size, step, width = len(g2), grad.size, rows[0].stop, g2.shape[1]
    sums: list = [None] * len(rows)
    if relu_out is not None:
        masked, positive = np.empty_like(g2), relu_out.reshape(g2.shape)

    def first(i: int, r: slice) -> None:
        g, c = g2[r], c2[r]
        if relu_out is not None:
            g = np.multiply(g, positive[r] > 0, out=masked[r])
        sums[i] = (np.einsum("ab->b", g), np.einsum("ab,ab->b", g, c))

    over_parts(first, rows, size)
    if relu_out is not None:
        g2 = masked
    grad_beta = _total([s for s, _ in sums]).astype(grad.dtype)
    grad_gamma = (_total([s for _, s in sums]) * rstd).astype(grad.dtype)
    # dx = g * scale + centered * slope + shift, per feature
    long_scale = _long(scale, step)
    long_slope = _long(-scale * rstd * grad_gamma / count, step)
    long_shift = _long(-scale * grad_beta / count, step)
    flat_g, flat_c = g2.reshape(-1), c2.reshape(-1)
    dx = np.empty_like(flat_g)

    def second(i: int, r: slice) -> None:
        a, b = r.start * width, r.stop * width
        d = np.multiply(flat_g[a:b], long_scale[: b - a], out=dx[a:b])
        along = np.multiply(flat_c[a:b], long_slope[: b - a])
        along += long_shift[: b - a]
        d += along

    over_parts(second, rows, size)
    return dx.reshape(grad.shape), grad_beta, grad_gamma


def _backward_fused(kern, grad, centered, rstd, scale, relu_out):
    """:func:`backward` through :mod:`nodenet.engine.kernels`: two passes instead of seven."""
    g2, rows = _rows(grad)
    c2 = centered.reshape(g2.shape)
    count, size, width = len(g2), grad.size, g2.shape[1]
    relu = relu_out is not None
    masked = np.empty_like(g2) if relu else g2
    positive = np.ascontiguousarray(relu_out).reshape(g2.shape) if relu else g2
    sum_g = [np.zeros(width, grad.dtype) for _ in rows]
    sum_gc = [np.zeros(width, grad.dtype) for _ in rows]

    def first(i: int, r: slice) -> None:
        kern.norm_back_sums(g2[r], c2[r], positive[r], relu, masked[r], sum_g[i], sum_gc[i])

    over_parts(first, rows, size)
    grad_beta, grad_gamma, slope, shift = _coefficients(
        sum_g, sum_gc, rstd, scale, count, grad.dtype
    )
    dx = np.empty_like(g2)

    def second(i: int, r: slice) -> None:
        kern.norm_back_dx(masked[r], c2[r], scale, slope, shift, dx[r])

    over_parts(second, rows, size)
    return dx.reshape(grad.shape), grad_beta, grad_gamma

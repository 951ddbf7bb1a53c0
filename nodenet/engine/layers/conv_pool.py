"""A convolution and the max pooling after it, computed as one step.

When a Conv1D / Conv2D / Conv3D with a relu (or no activation) feeds nothing but a
MaxPooling of its rank whose windows tile the input (``strides ==
pool_size``, nothing padded), :class:`nodenet.engine.model.Model` runs the
pair through this module. The windows are gathered pooling-window-major:
offset inside the pooling window first, then the sample, then the pooled
position. The convolution's product then comes out as ``prod(pool_size)``
contiguous blocks, and pooling is an element-wise maximum across them: no
gather of the convolution's output, no scatter of its gradient, and
positions no pooling window covers are never computed. The relu commutes
with the maximum, so it runs on the 4x smaller pooled output, and its mask
joins the pooling's first-maximum mask.

The results are those of the two blocks run one after the other (forward
values, and every gradient: a relu passes no gradient where the maximum is
not positive, so ties among non-positive values do not matter).
"""

from __future__ import annotations

import math

import numpy as np

from nodenet.engine.layer import Context, Layer
from nodenet.engine.layers.pool_windows import first_max_mask
from nodenet.engine.layers.windows import (
    NARROW,
    channel_sums,
    crop_spatial,
    over_batch,
    pad_spatial,
    window_view,
    window_weight_product,
    window_weight_product_t,
)

_CONVS = {"Conv1D": "MaxPooling1D", "Conv2D": "MaxPooling2D", "Conv3D": "MaxPooling3D"}


def fusable(conv: Layer, pool: Layer, input_shape: tuple) -> bool:
    """True if ``conv`` (input ``input_shape`` without the batch) and ``pool`` can run as one."""
    if _CONVS.get(conv.TYPE) != pool.TYPE or conv.config["activation"] not in ("relu", "linear"):
        return False
    out = conv.infer_shape([input_shape])[:-1]
    if any(n is None for n in out):
        return False
    size, strides, pads = pool.geometry(out)
    return size == strides and not any(b or a for b, a in pads)


def _geometry(conv: Layer, pool: Layer, x: np.ndarray):
    """Padding, strides, dilation, pool size and pooled positions of the pair on ``x``."""
    _, strides, dilation = conv.sizes()
    out = conv.infer_shape([x.shape[1:]])[:-1]
    size = pool.geometry(out)[0]
    pooled = tuple(n // p for n, p in zip(out, size, strict=True))
    return conv.pads(x.shape[1:-1]), strides, dilation, size, pooled


def _offset_slices(offset, corner, strides, dilation, size, pooled) -> tuple[slice, ...]:
    """Slices of the padded input that kernel ``offset`` meets at pool offset ``corner``."""
    return tuple(
        slice(q * s + o * d, q * s + o * d + s * p * (m - 1) + 1, s * p)
        for o, q, s, d, p, m in zip(offset, corner, strides, dilation, size, pooled, strict=True)
    )


# -- window gathering, pooling-window-major --------------------------------------------


def _im2col_t(xp, kernel, strides, dilation, size, pooled, ones: bool) -> np.ndarray:
    """Offset-major windows (kernel taps * channels [+ 1], prod(size) * batch * prod(pooled))."""
    channels, batch = xp.shape[-1], len(xp)
    width = math.prod(kernel) * channels
    cols = np.empty((width + ones, math.prod(size) * batch * math.prod(pooled)), xp.dtype)
    if ones:
        cols[-1] = 1
    target = cols[:width].reshape(*kernel, channels, *size, batch, *pooled)
    for offset in np.ndindex(*kernel):
        for corner in np.ndindex(*size):
            seen = xp[
                (slice(None), *_offset_slices(offset, corner, strides, dilation, size, pooled))
            ]
            np.copyto(target[offset][(slice(None), *corner)], np.moveaxis(seen, -1, 0))
    return cols


def _im2col(xp, kernel, strides, dilation, size, pooled) -> np.ndarray:
    """Windows as rows (prod(size) * batch * prod(pooled), kernel taps * channels)."""
    batch, width = len(xp), math.prod(kernel) * xp.shape[-1]
    cols = np.empty((math.prod(size) * batch * math.prod(pooled), width), xp.dtype)
    target = cols.reshape(*size, batch, *pooled, *kernel, xp.shape[-1])
    steps = tuple(s * p for s, p in zip(strides, size, strict=True))
    for corner in np.ndindex(*size):
        shifted = xp[
            (slice(None), *(slice(q * s, None) for q, s in zip(corner, strides, strict=True)))
        ]
        view, into = window_view(shifted, kernel, steps, dilation, pooled), target[corner]
        over_batch(lambda part, v=view, t=into: np.copyto(t[part], v[part]), batch, into.size)
    return cols


# -- forward and backward -----------------------------------------------------------------


def forward(conv: Layer, pool: Layer, weights, x: np.ndarray, ctx: Context):
    """``pool(conv(x))``: (batch, *pooled, filters), and the cache for :func:`backward`."""
    pads, strides, dilation, size, pooled = _geometry(conv, pool, x)
    xp = pad_spatial(x, pads)
    kernel = weights["kernel"]
    matrix = kernel.reshape(-1, kernel.shape[-1])
    narrow = len(matrix) <= NARROW
    window = kernel.shape[:-2]
    if narrow:  # the bias rides in the product as a row of ones
        if "bias" in weights:
            matrix = np.vstack([matrix, weights["bias"]])
        cols = _im2col_t(xp, window, strides, dilation, size, pooled, "bias" in weights)
        z = cols.T @ matrix
    else:
        cols = _im2col(xp, window, strides, dilation, size, pooled)
        z = cols @ matrix
        if "bias" in weights:  # one long row per (pool offset, sample)
            rows = z.reshape(-1, math.prod(pooled) * kernel.shape[-1])
            rows += np.tile(weights["bias"], math.prod(pooled))
    blocks = z.reshape(math.prod(size), len(x), *pooled, kernel.shape[-1])
    y, mask = _pool(blocks, conv.config["activation"] == "relu", ctx.training)
    kept = blocks if mask is None else None  # to find the maxima if a backward follows
    cache = (cols, narrow, xp.shape, pads, strides, dilation, size, mask, kept)
    return y, cache


def _pool(blocks: np.ndarray, relu: bool, training: bool):
    """Maximum over the first axis of ``blocks`` (then a relu); the gradient mask if training."""
    y = np.empty(blocks.shape[1:], blocks.dtype)
    mask = np.empty(blocks.shape, bool) if training else None

    def work(part: slice) -> None:
        np.copyto(y[part], blocks[0, part])
        for block in blocks[1:]:
            np.maximum(y[part], block[part], out=y[part])
        if mask is not None:
            _mask(blocks[:, part], y[part], relu, mask[:, part])
        if relu:
            np.maximum(y[part], 0, out=y[part])

    over_batch(work, len(y), blocks.size)
    return y, mask


def _mask(blocks, y, relu: bool, out: np.ndarray) -> None:
    """Each window's first maximum; with a relu, only where that maximum is positive."""
    first_max_mask(list(blocks), y, out=out)
    if relu:
        np.logical_and(out, y > 0, out=out)


def backward(conv: Layer, weights, cache, grad: np.ndarray):
    """Input and weight gradients of :func:`forward`, given dL/d(pooled output)."""
    cols, narrow, padded_shape, pads, strides, dilation, size, mask, blocks = cache
    relu = conv.config["activation"] == "relu"
    if mask is None:  # the forward ran in inference mode
        mask = np.empty(blocks.shape, bool)
        _mask(blocks, blocks.max(axis=0), relu, mask)
    kernel = weights["kernel"]
    pieces = np.empty(mask.shape, grad.dtype)
    over_batch(
        lambda part: np.multiply(mask[:, part], grad[part], out=pieces[:, part]),
        len(grad),
        pieces.size,
    )
    g2 = pieces.reshape(-1, kernel.shape[-1])
    width = kernel.size // kernel.shape[-1]
    if narrow:
        both = window_weight_product_t(cols, g2, math.prod(size) * len(grad))
    else:
        both = window_weight_product(cols, g2)
    grads = {"kernel": np.ascontiguousarray(both[:width]).reshape(kernel.shape)}
    if "bias" in weights:
        grads["bias"] = both[width].copy() if len(both) > width else channel_sums(g2)
    if not getattr(conv, "needs_input_grad", True):
        return [None], grads
    dxp = _col2im(pieces, kernel, padded_shape, strides, dilation, size)
    return [crop_spatial(dxp, pads)], grads


def _col2im(pieces, kernel, padded_shape, strides, dilation, size) -> np.ndarray:
    """The padded input's gradient from the window-major output gradient ``pieces``.

    ``pieces`` is (prod(size), batch, *pooled, filters); per kernel offset one
    product gives every window's share, added at that offset and pool corner.
    """
    window, n = kernel.shape[:-2], kernel.shape[-2]
    batch, pooled = pieces.shape[1], pieces.shape[2:-1]
    image = np.zeros(padded_shape, dtype=pieces.dtype)
    g2 = pieces.reshape(-1, pieces.shape[-1])
    block = np.empty((len(g2), n), dtype=image.dtype)
    shares = block.reshape(math.prod(size), batch, *pooled, n)
    corners = list(np.ndindex(*size))
    for offset, matrix in zip(
        np.ndindex(*window), kernel.reshape(-1, n, kernel.shape[-1]), strict=True
    ):
        np.matmul(g2, matrix.T, out=block)
        targets = [
            image[(slice(None), *_offset_slices(offset, c, strides, dilation, size, pooled))]
            for c in corners
        ]

        def add(part: slice, targets=targets) -> None:
            for share, target in zip(shares, targets, strict=True):
                np.add(target[part], share[part], out=target[part])

        over_batch(add, batch, block.size)
    return image

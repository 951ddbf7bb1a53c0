"""A convolution and the max pooling after it, computed as one step.

When a Conv1D / Conv2D / Conv3D with a relu (or no activation) feeds nothing but a
MaxPooling of its rank whose windows tile the input (``strides ==
pool_size``, nothing padded), :class:`nodenet.engine.model.Model` runs the
pair through this module, part by part of the batch
(:mod:`nodenet.engine.layers.conv_parts`). A sample's windows are gathered
pooling-window-major: offset inside the pooling window first, then the pooled
position. The convolution's product then comes out as ``prod(pool_size)``
contiguous blocks per sample, and pooling is an element-wise maximum across
them while they are in cache: no gather of the convolution's output, no
scatter of its gradient, and positions no pooling window covers are never
computed. The relu commutes with the maximum, so it runs on the 4x smaller
pooled output, and its mask joins the pooling's first-maximum mask.

The results are those of the two blocks run one after the other (forward
values, and every gradient: a relu passes no gradient where the maximum is
not positive, so ties among non-positive values do not matter).
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.layer import Context, Layer
from nodenet.engine.layers import conv_parts
from nodenet.engine.layers.windows import crop_spatial, pad_spatial

_CONVS = {"Conv1D": "MaxPooling1D", "Conv2D": "MaxPooling2D", "Conv3D": "MaxPooling3D"}


def fusable(conv: Layer, pool: Layer, input_shape: tuple) -> bool:
    """True if ``conv`` (input ``input_shape`` without the batch) and ``pool`` can run as one."""
    if _CONVS.get(conv.TYPE) != pool.TYPE or conv.config["activation"] not in ("relu", "linear"):
        return False
    if conv.config.get("groups", 1) != 1:
        return False
    out = conv.infer_shape([input_shape])[:-1]
    if any(n is None for n in out):
        return False
    size, strides, pads = pool.geometry(out)
    return size == strides and not any(b or a for b, a in pads)


def _geometry(conv: Layer, pool: Layer, x: np.ndarray, kernel: np.ndarray):
    """The pair's windows on ``x``, and the convolution's padding."""
    _, strides, dilation = conv.sizes()
    out = conv.infer_shape([x.shape[1:]])[:-1]
    size = pool.geometry(out)[0]
    pooled = tuple(n // p for n, p in zip(out, size, strict=True))
    geo = conv_parts.Geometry(
        kernel.shape[:-2], strides, dilation, size, pooled, x.shape[-1], kernel.shape[-1]
    )
    return geo, conv.pads(x.shape[1:-1])


def forward(conv: Layer, pool: Layer, weights, x: np.ndarray, ctx: Context):
    """``pool(conv(x))``: (batch, *pooled, filters), and the cache for :func:`backward`."""
    geo, pads = _geometry(conv, pool, x, weights["kernel"])
    relu = conv.config["activation"] == "relu"
    args = (weights["kernel"], weights.get("bias"), geo, relu, True, ctx.training)
    y, cache = conv_parts.forward(pad_spatial(x, pads), *args)
    return y, (cache, pads)


def backward(conv: Layer, weights, cache, grad: np.ndarray):
    """Input and weight gradients of :func:`forward`, given dL/d(pooled output)."""
    inner, pads = cache
    needed = getattr(conv, "needs_input_grad", True)  # fed by data: nobody reads dx
    args = (weights["kernel"], "bias" in weights, grad)
    dxp, grads = conv_parts.backward(inner, *args, input_grad=needed)
    return [None if dxp is None else crop_spatial(dxp, pads)], grads

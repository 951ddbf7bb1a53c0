"""Upsampling blocks: UpSampling1D, UpSampling2D, UpSampling3D.

Each spatial axis is enlarged by an integer factor, every value repeated
(nearest) or, for UpSampling2D, interpolated between pixel centres (bilinear,
as Keras's half-pixel, unaligned-corner resize). Repeating is one broadcast
view copied once; its gradient sums each block of copies.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from nodenet.engine.layer import Layer, expect_rank, register
from nodenet.engine.layers.conv import example
from nodenet.engine.layers.windows import as_tuple
from nodenet.engine.params import Choice, Int, IntTuple


def _linear_taps(size: int) -> list[tuple[int, int, float]]:
    """Per output phase p of an upsampled axis: the two source offsets and the far weight.

    Output ``size * i + p`` samples the input at ``i + (p + 0.5) / size - 0.5``
    (half-pixel centres, no corner alignment), clamped at the edges.
    """
    taps = []
    for p in range(size):
        f = (p + 0.5) / size - 0.5
        taps.append((0, 1, f) if f >= 0 else (-1, 0, 1.0 + f))
    return taps


def _linear_upsample(x: np.ndarray, size: int) -> np.ndarray:
    """Linear interpolation of axis 1: (batch, n, rest) -> (batch, n * size, rest)."""
    b, n, r = x.shape
    xp = np.concatenate([x[:, :1], x, x[:, -1:]], axis=1)  # edge values stand in for clamping
    out = np.empty((b, n, size, r), dtype=x.dtype)
    for p, (lo, hi, w) in enumerate(_linear_taps(size)):
        out[:, :, p] = (1.0 - w) * xp[:, 1 + lo : 1 + lo + n] + w * xp[:, 1 + hi : 1 + hi + n]
    return out.reshape(b, n * size, r)


def _linear_upsample_grad(grad: np.ndarray, size: int) -> np.ndarray:
    """Backward of :func:`_linear_upsample`: (batch, n * size, rest) -> (batch, n, rest)."""
    b, m, r = grad.shape
    n = m // size
    g4 = grad.reshape(b, n, size, r)
    gp = np.zeros((b, n + 2, r), dtype=grad.dtype)
    for p, (lo, hi, w) in enumerate(_linear_taps(size)):
        gp[:, 1 + lo : 1 + lo + n] += (1.0 - w) * g4[:, :, p]
        gp[:, 1 + hi : 1 + hi + n] += w * g4[:, :, p]
    gx = gp[:, 1:-1]
    gx[:, 0] += gp[:, 0]
    gx[:, -1] += gp[:, -1]
    return np.ascontiguousarray(gx)


class _UpSampling(Layer):
    """Shared by the upsampling blocks: each spatial axis repeated ``size`` times."""

    RANK: ClassVar[int] = 2
    CATEGORY = "Convolution"

    def factors(self) -> tuple[int, ...]:
        """``size`` as one int per spatial axis."""
        return as_tuple(self.config["size"], self.RANK)

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, self.RANK + 1, self.TYPE)
        return (
            *(
                None if n is None else n * f
                for n, f in zip(shape[:-1], self.factors(), strict=True)
            ),
            shape[-1],
        )

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        spatial, factors = x.shape[1:-1], self.factors()
        # (batch, n1, 1, n2, 1, ..., channels) broadcast to (batch, n1, f1, n2, f2, ..., channels)
        split = [d for n, f in zip(spatial, factors, strict=True) for d in (n, f)]
        view = x.reshape(len(x), *(d for n in spatial for d in (n, 1)), x.shape[-1])
        wide = np.broadcast_to(view, (len(x), *split, x.shape[-1]))
        out = (n * f for n, f in zip(spatial, factors, strict=True))
        return wide.reshape(len(x), *out, x.shape[-1]), None

    def _backward(self, weights, cache, grad):
        factors = self.factors()
        spatial = [m // f for m, f in zip(grad.shape[1:-1], factors, strict=True)]
        split = [d for n, f in zip(spatial, factors, strict=True) for d in (n, f)]
        blocks = grad.reshape(len(grad), *split, grad.shape[-1])
        return [blocks.sum(axis=tuple(range(2, 2 * self.RANK + 1, 2)))], {}


@register
class UpSampling1D(_UpSampling):
    """Repeats each step ``size`` times.

    Input shape: (batch, steps, features). Output shape: (batch, steps * size, features).
    """

    TYPE = "UpSampling1D"
    RANK = 1
    PARAMS = (Int("size", 2, "how many times each step is repeated", min=1),)
    KEY_PARAMS = ("size",)
    EXAMPLES = (example((4, 3)), example((5, 2), size=3))


@register
class UpSampling2D(_UpSampling):
    """Enlarges images by repeating rows and columns, or by bilinear interpolation.

    Input shape: (batch, rows, cols, channels). Output shape: (batch,
    rows * size[0], cols * size[1], channels).
    """

    TYPE = "UpSampling2D"
    RANK = 2
    PARAMS = (
        IntTuple("size", [2, 2], "upsampling factors for rows and columns", length=2),
        Choice(
            "interpolation",
            "nearest",
            "nearest: repeat pixels; bilinear: interpolate between pixel centres",
            choices=("nearest", "bilinear"),
        ),
    )
    KEY_PARAMS = ("size", "interpolation")
    EXAMPLES = (
        example((3, 4, 2)),
        example((3, 2, 1), size=[2, 3]),
        example((3, 4, 2), interpolation="bilinear"),
        example((3, 5, 2), size=[3, 2], interpolation="bilinear"),
        example((2, 3, 1), size=[1, 4], interpolation="bilinear"),
    )

    def _forward(self, weights, inputs, ctx):
        if self.config["interpolation"] == "nearest":
            return super()._forward(weights, inputs, ctx)
        (x,) = inputs
        n, h, w, c = x.shape
        sh, sw = self.config["size"]
        rows = _linear_upsample(x.reshape(n, h, w * c), sh)
        both = _linear_upsample(rows.reshape(n * h * sh, w, c), sw)
        return both.reshape(n, h * sh, w * sw, c), None

    def _backward(self, weights, cache, grad):
        if self.config["interpolation"] == "nearest":
            return super()._backward(weights, cache, grad)
        n, hh, ww, c = grad.shape
        sh, sw = self.config["size"]
        h, w = hh // sh, ww // sw
        cols = _linear_upsample_grad(grad.reshape(n * hh, ww, c), sw)
        rows = _linear_upsample_grad(cols.reshape(n, hh, w * c), sh)
        return [rows.reshape(n, h, w, c)], {}


@register
class UpSampling3D(_UpSampling):
    """Enlarges volumes by repeating each value along depth, rows and columns.

    Input shape: (batch, depth, rows, cols, channels). Output shape: (batch,
    depth * size[0], rows * size[1], cols * size[2], channels).
    """

    TYPE = "UpSampling3D"
    RANK = 3
    PARAMS = (
        IntTuple("size", [2, 2, 2], "upsampling factors for depth, rows and columns", length=3),
    )
    KEY_PARAMS = ("size",)
    EXAMPLES = (example((2, 3, 2, 2)), example((2, 2, 3, 1), size=[1, 3, 2]))

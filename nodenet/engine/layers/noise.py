"""Scaling and noise blocks: Rescaling, UnitNormalization, SpatialDropout1D/2D/3D,
GaussianNoise, GaussianDropout and AlphaDropout.

The noise blocks are the identity at inference, as in Keras; while training their
noise comes from the run's seeded generator (``ctx.rng``) and is kept in the cache,
so the backward is exact for the noise drawn. ``seed`` is carried to exported code.
"""

from __future__ import annotations

import math

import numpy as np

from nodenet.engine.layer import Example, Layer, expect_rank, fmt_shape, register
from nodenet.engine.layers.core import Dropout, check_noise_shape, concrete_noise_shape
from nodenet.engine.params import Float, FloatOrList, Int, NoiseShape
from nodenet.errors import ParamError, ShapeError

UNIT_NORM_EPSILON = 1e-12  # Keras's: the inverse norm is capped at 1 / epsilon

# SELU's constants: AlphaDropout keeps a SELU network's mean and variance
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _seed() -> Int:
    return Int("seed", None, "seed of the exported layer's random generator", min=0, optional=True)


def _rate(what: str, *, below_one: bool = False) -> Float:
    """A drop rate from 0 to 1 (below 1 where 1 would divide by zero)."""
    return Float("rate", 0.5, what, min=0.0, max=1.0, max_exclusive=below_one)


@register
class Rescaling(Layer):
    """Multiplies its input by ``scale`` and adds ``offset``: ``x * scale + offset``.

    Input shape: any. Output shape: the input shape. ``Rescaling(1 / 255)`` maps
    pixel values to [0, 1]; ``scale=1 / 127.5, offset=-1`` to [-1, 1]. A list
    holds one value per channel (the last axis), as Keras broadcasts it.
    """

    TYPE = "Rescaling"
    CATEGORY = "Core"
    PARAMS = (
        FloatOrList("scale", 1.0, "factor the input is multiplied by (a list: per channel)"),
        FloatOrList("offset", 0.0, "added after scaling (a list: per channel)"),
    )
    KEY_PARAMS = ("scale", "offset")
    EXAMPLES = (
        Example({"scale": 1 / 255}, ((4, 4, 3),)),
        Example({"scale": 1 / 127.5, "offset": -1.0}, ((5,),)),
        Example({"scale": -2.0, "offset": 0.5}, ((2, 3),)),
        Example({"scale": [0.5, 2.0, 1.5], "offset": [0.1, 0.0, -0.2]}, ((2, 2, 3),)),
        Example({"scale": [3.0], "offset": 1.0}, ((4,),)),
    )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        for key in ("scale", "offset"):
            value = self.config[key]
            if isinstance(value, list) and len(value) not in (1, shape[-1] or len(value)):
                raise ShapeError(
                    f"Rescaling {key} has {len(value)} values but the input {fmt_shape(shape)} "
                    f"has {shape[-1]} channels on its last axis"
                )
        return tuple(shape)

    def _factors(self, dtype) -> tuple[np.ndarray, np.ndarray]:
        return tuple(np.asarray(self.config[k], dtype=dtype) for k in ("scale", "offset"))

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        if x.dtype.kind != "f":  # integer pixels: Keras casts to its float dtype first
            x = x.astype(np.float32)
        scale, offset = self._factors(x.dtype)
        return x * scale + offset, None

    def _backward(self, weights, cache, grad):
        scale, _ = self._factors(grad.dtype)
        return [grad * scale], {}


@register
class UnitNormalization(Layer):
    """Scales every sample to unit L2 norm along ``axis``: ``x / ||x||``.

    Input shape: any. Output shape: the input shape. ``axis`` counts the batch as
    axis 0 (``-1`` is the last axis); like Keras, the inverse norm is capped at
    1e12 so an all-zero vector stays zero.
    """

    TYPE = "UnitNormalization"
    CATEGORY = "Normalization"
    PARAMS = (Int("axis", -1, "axis normalized to unit length (the batch axis is 0)"),)
    KEY_PARAMS = ("axis",)
    EXAMPLES = (
        Example({"axis": -1}, ((5,),)),
        Example({"axis": 1}, ((3, 4),)),
        Example({"axis": -2}, ((2, 3, 2),)),
    )

    def check_config(self):
        if self.config["axis"] == 0:
            raise ParamError("axis 0 is the batch axis and cannot be normalized over", "axis")

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        axis, ndim = self.config["axis"], len(shape) + 1
        if not (-ndim <= axis < ndim):
            raise ShapeError(
                f"UnitNormalization axis={axis} is out of range for the input {fmt_shape(shape)}"
            )
        if axis == -ndim:
            raise ShapeError(f"UnitNormalization axis={axis} is the batch axis of the input")
        return tuple(shape)

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        square_sum = np.sum(x * x, axis=self.config["axis"], keepdims=True)
        capped = square_sum < UNIT_NORM_EPSILON**2  # rsqrt beyond 1 / epsilon
        with np.errstate(divide="ignore"):
            inv = np.where(capped, 1.0 / UNIT_NORM_EPSILON, 1.0 / np.sqrt(square_sum))
        inv = inv.astype(x.dtype, copy=False)
        return x * inv, (x, inv, capped)

    def _backward(self, weights, cache, grad):
        x, inv, capped = cache
        along = np.sum(grad * x, axis=self.config["axis"], keepdims=True)
        dx = grad * inv - x * np.where(capped, 0.0, inv**3 * along).astype(x.dtype, copy=False)
        return [dx], {}


class _SpatialDropout(Dropout):
    """Dropout of whole channels: one mask entry per sample and channel (channels-last)."""

    CATEGORY = "Core"
    PARAMS = (_rate("fraction of the channels to drop while training"), _seed())
    RANK = 2  # input rank without the batch

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, self.RANK, self.TYPE)
        return tuple(shape)

    def mask_shape(self, shape):
        return (shape[0], *([1] * (len(shape) - 2)), shape[-1])


@register
class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of a sequence while training, scaling the rest by 1 / (1 - rate).

    Input shape: (steps, channels). Output shape: the same. Identity at inference.
    """

    TYPE = "SpatialDropout1D"
    RANK = 2
    EXAMPLES = (
        Example({"rate": 0.5}, ((4, 3),)),
        Example({"rate": 0.2, "seed": 3}, ((2, 5),)),
        Example({"rate": 1.0}, ((3, 2),)),
    )


@register
class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of an image while training, scaling the rest by 1 / (1 - rate).

    Input shape: (rows, cols, channels). Output shape: the same. Identity at inference.
    """

    TYPE = "SpatialDropout2D"
    RANK = 3
    EXAMPLES = (
        Example({"rate": 0.5}, ((3, 3, 4),)),
        Example({"rate": 0.25, "seed": 1}, ((2, 4, 3),)),
        Example({"rate": 0.0}, ((2, 2, 2),)),
    )


@register
class SpatialDropout3D(_SpatialDropout):
    """Drops whole feature volumes while training, scaling the rest by 1 / (1 - rate).

    Input shape: (dim1, dim2, dim3, channels). Output shape: the same. Identity at inference.
    """

    TYPE = "SpatialDropout3D"
    RANK = 4
    EXAMPLES = (
        Example({"rate": 0.5}, ((2, 2, 2, 3),)),
        Example({"rate": 0.3, "seed": 5}, ((3, 2, 2, 2),)),
    )


@register
class GaussianNoise(Layer):
    """Adds zero-centred Gaussian noise of ``stddev`` while training; identity at inference.

    Input shape: any. Output shape: the input shape.
    """

    TYPE = "GaussianNoise"
    CATEGORY = "Core"
    PARAMS = (
        Float("stddev", 0.1, "standard deviation of the added noise", min=0.0, max=1.0),
        _seed(),
    )
    KEY_PARAMS = ("stddev",)
    EXAMPLES = (
        Example({"stddev": 0.1}, ((5,),)),
        Example({"stddev": 0.5, "seed": 2}, ((3, 4),)),
        Example({"stddev": 0.0}, ((2, 2, 2),)),
    )

    def infer_shape(self, input_shapes):
        return tuple(input_shapes[0])

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        stddev = self.config["stddev"]
        if not ctx.training or stddev == 0.0:
            return x, None
        noise = ctx.rng.normal(0.0, stddev, size=x.shape).astype(x.dtype, copy=False)
        return x + noise, None

    def _backward(self, weights, cache, grad):
        return [grad], {}


@register
class GaussianDropout(Layer):
    """Multiplies its input by Gaussian noise of mean 1 and variance ``rate / (1 - rate)``
    while training; identity at inference.

    Input shape: any. Output shape: the input shape.
    """

    TYPE = "GaussianDropout"
    CATEGORY = "Core"
    PARAMS = (
        _rate("drop probability: the noise's variance is rate / (1 - rate)", below_one=True),
        _seed(),
    )
    KEY_PARAMS = ("rate",)
    EXAMPLES = (
        Example({"rate": 0.5}, ((5,),)),
        Example({"rate": 0.2, "seed": 4}, ((3, 4),)),
        Example({"rate": 0.0}, ((2, 3),)),
    )

    def infer_shape(self, input_shapes):
        return tuple(input_shapes[0])

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        rate = self.config["rate"]
        if not ctx.training or rate == 0.0:
            return x, None
        stddev = math.sqrt(rate / (1.0 - rate))
        noise = ctx.rng.normal(1.0, stddev, size=x.shape).astype(x.dtype, copy=False)
        return x * noise, noise

    def _backward(self, weights, noise, grad):
        return [grad if noise is None else grad * noise], {}


@register
class AlphaDropout(Layer):
    """Dropout that keeps a SELU network's mean and variance: dropped values are set to
    SELU's negative saturation, then everything is scaled and shifted back.

    Input shape: any. Output shape: the input shape. Identity at inference.
    ``noise_shape`` (batch first, ``null`` for the input's size) shares mask entries
    along its size-1 axes.
    """

    TYPE = "AlphaDropout"
    CATEGORY = "Core"
    PARAMS = (
        _rate("fraction of the inputs to drop while training", below_one=True),
        NoiseShape("noise_shape", None, "shape of the dropout mask, batch first (null: input's)"),
        _seed(),
    )
    KEY_PARAMS = ("rate",)
    EXAMPLES = (
        Example({"rate": 0.5}, ((6,),)),
        Example({"rate": 0.1, "seed": 3}, ((3, 4),)),
        Example({"rate": 0.3, "noise_shape": [None, 1, None]}, ((3, 2),)),
        Example({"rate": 0.0}, ((4,),)),
    )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        check_noise_shape(self.config["noise_shape"], shape, self.TYPE)
        return tuple(shape)

    def affine(self) -> tuple[float, float, float]:
        """``(a, b, alpha_p)``: dropped values become ``alpha_p``, then ``a * x + b``."""
        rate = self.config["rate"]
        alpha_p = -SELU_ALPHA * SELU_SCALE
        a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
        return a, -a * alpha_p * rate, alpha_p

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        rate = self.config["rate"]
        if not ctx.training or rate == 0.0:
            return x, None
        shape = concrete_noise_shape(self.config["noise_shape"], x.shape)
        keep = (ctx.rng.random(shape, dtype=np.float32) >= np.float32(rate)).astype(x.dtype)
        a, b, alpha_p = self.affine()
        kind = x.dtype.type
        out = kind(a) * (x * keep + kind(alpha_p) * (1 - keep)) + kind(b)
        return out, keep

    def _backward(self, weights, keep, grad):
        if keep is None:
            return [grad], {}
        a = grad.dtype.type(self.affine()[0])
        return [grad * (a * keep)], {}

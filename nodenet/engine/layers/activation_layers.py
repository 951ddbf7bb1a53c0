"""Activation layers with settings: ReLU, LeakyReLU, PReLU, ELU, Softmax and Identity.

Each is Keras 3's layer of the same name (``keras.layers.ReLU`` ...), element-wise or
along one axis; the output shape is the input shape. PReLU is the only one with a
weight (``alpha``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nodenet.engine.initializers import NAMES as INITS
from nodenet.engine.layer import Example, Layer, WeightSpec, fmt_shape, known, register
from nodenet.engine.params import MAX_RANK, Float, Initializer, Int, Param, Regularizer
from nodenet.errors import ParamError, ShapeError


@dataclass(frozen=True)
class SharedAxes(Param):
    """``null`` or the input axes (counted from 1, the batch is 0) that share one alpha."""

    optional: ClassVar[bool] = True
    kind: ClassVar[str] = "shape"

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None
        if _is_axis(value):
            value = [value]
        ok = isinstance(value, list | tuple) and 1 <= len(value) <= MAX_RANK
        if not ok or not all(_is_axis(d) for d in value):
            raise self.fail(self.describe(), value)
        return list(value)

    def describe(self) -> str:
        return "null or a list of input axes, counted from 1"


def _is_axis(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_RANK


class _Elementwise(Layer):
    """A block whose output has its input's shape."""

    CATEGORY = "Core"

    def infer_shape(self, input_shapes):
        return tuple(input_shapes[0])


@register
class ReLU(_Elementwise):
    """Rectified linear unit with Keras's ``max_value``, ``negative_slope`` and ``threshold``.

    ``f(x) = min(x, max_value)`` for ``x > threshold``, else ``0``, minus
    ``negative_slope * max(threshold - x, 0)`` (Keras 3's formula: with both a threshold
    and a slope, inputs between 0 and the threshold get the slope too).
    Input shape: any. Output shape: the same.
    """

    TYPE = "ReLU"
    PARAMS = (
        Float("max_value", None, "largest output (6.0 gives ReLU6)", min=0.0, optional=True),
        Float("negative_slope", 0.0, "slope below the threshold", min=0.0),
        Float("threshold", 0.0, "inputs at or below it give 0 (before the slope)", min=0.0),
    )
    KEY_PARAMS = ("max_value", "negative_slope", "threshold")
    EXAMPLES = (
        Example({}, ((4,),)),
        Example({"max_value": 6.0}, ((2, 3),)),
        Example({"max_value": 0.7}, ((3, 4),)),
        Example({"negative_slope": 0.1}, ((5,),)),
        Example({"threshold": 0.4}, ((2, 2, 3),)),
        Example({"max_value": 1.2, "negative_slope": 0.2, "threshold": 0.3}, ((6,),)),
    )

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        c = self.config
        threshold, slope, top = c["threshold"], c["negative_slope"], c["max_value"]
        if slope and top is None and threshold == 0:  # Keras's leaky_relu
            return np.where(x > 0, x, x * slope).astype(x.dtype, copy=False), x
        out = np.where(x > threshold, x, 0).astype(x.dtype, copy=False)
        if top is not None:
            np.minimum(out, top, out=out)
        if slope:
            out -= slope * np.maximum(threshold - x, 0).astype(x.dtype, copy=False)
        return out, x

    def _backward(self, weights, x, grad):
        c = self.config
        threshold, slope, top = c["threshold"], c["negative_slope"], c["max_value"]
        passed = x > threshold
        if top is not None:
            passed &= x < top
        dx = grad * passed
        if slope:
            dx += grad * (x < threshold) * np.asarray(slope, x.dtype)
        return [dx], {}


@register
class LeakyReLU(_Elementwise):
    """``x`` where ``x > 0``, else ``negative_slope * x``.

    Input shape: any. Output shape: the same.
    """

    TYPE = "LeakyReLU"
    PARAMS = (Float("negative_slope", 0.3, "slope of the negative part", min=0.0),)
    KEY_PARAMS = ("negative_slope",)
    EXAMPLES = (
        Example({}, ((4,),)),
        Example({"negative_slope": 0.01}, ((2, 3),)),
        Example({"negative_slope": 1.5}, ((2, 2, 2),)),
        Example({"negative_slope": 0.0}, ((5,),)),
    )

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        slope = np.asarray(self.config["negative_slope"], x.dtype)
        return np.where(x > 0, x, x * slope), x

    def _backward(self, weights, x, grad):
        slope = np.asarray(self.config["negative_slope"], x.dtype)
        return [np.where(x > 0, grad, grad * slope)], {}


@register
class PReLU(_Elementwise):
    """Leaky ReLU with a learned slope: ``max(x, 0) - alpha * max(-x, 0)``.

    ``alpha`` has the input's shape, size 1 on ``shared_axes`` (axes counted from 1;
    ``[1, 2]`` shares one slope per channel of an image). Input shape: any. Output
    shape: the same.
    """

    TYPE = "PReLU"
    PARAMS = (
        Initializer("alpha_initializer", "zeros", "how the slopes start", choices=INITS),
        Regularizer("alpha_regularizer", None, "L1/L2 penalty on alpha, added to the loss"),
        SharedAxes("shared_axes", None, "input axes (from 1) that share one slope"),
    )
    KEY_PARAMS = ("shared_axes",)
    EXAMPLES = (
        Example({}, ((4,),)),
        Example({"shared_axes": [1, 2]}, ((3, 3, 2),)),
        Example({"shared_axes": [2], "alpha_initializer": "ones"}, ((2, 3),)),
        Example({"shared_axes": [1], "alpha_initializer": "glorot_uniform"}, ((3, 2, 2),)),
    )

    def alpha_shape(self, shape) -> tuple[int, ...]:
        shared = self.config["shared_axes"] or []
        bad = [a for a in shared if a > len(shape)]
        if bad:
            raise ShapeError(
                f"PReLU's shared_axes {shared} name axis {bad[0]}, but the input "
                f"{fmt_shape(shape)} has axes 1 to {len(shape)}"
            )
        return tuple(
            1 if i + 1 in shared else known(d, "PReLU's unshared axes", shape)
            for i, d in enumerate(shape)
        )

    def weight_specs(self, input_shapes):
        c = self.config
        shape = self.alpha_shape(input_shapes[0])
        return [
            WeightSpec("alpha", shape, c["alpha_initializer"], regularizer=c["alpha_regularizer"])
        ]

    def infer_shape(self, input_shapes):
        self.alpha_shape(input_shapes[0])
        return tuple(input_shapes[0])

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        negative = np.minimum(x, 0)
        return np.maximum(x, 0) + weights["alpha"] * negative, (x, negative)

    def _backward(self, weights, cache, grad):
        x, negative = cache
        alpha = weights["alpha"]
        dx = np.where(x > 0, grad, grad * alpha)
        dalpha = (grad * negative).sum(axis=0)
        axes = tuple(i for i, n in enumerate(alpha.shape) if n == 1 and dalpha.shape[i] != 1)
        return [dx], {"alpha": dalpha.sum(axis=axes, keepdims=True)}


@register
class ELU(_Elementwise):
    """Exponential linear unit: ``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``.

    Input shape: any. Output shape: the same.
    """

    TYPE = "ELU"
    PARAMS = (Float("alpha", 1.0, "scale of the negative part"),)
    KEY_PARAMS = ("alpha",)
    EXAMPLES = (
        Example({}, ((4,),)),
        Example({"alpha": 0.5}, ((2, 3),)),
        Example({"alpha": 2.0}, ((2, 2, 2),)),
    )

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        alpha = np.asarray(self.config["alpha"], x.dtype)
        negative = alpha * np.expm1(np.minimum(x, 0))
        return np.where(x > 0, x, negative), (x, negative)

    def _backward(self, weights, cache, grad):
        x, negative = cache
        alpha = np.asarray(self.config["alpha"], x.dtype)
        return [np.where(x > 0, grad, grad * (negative + alpha))], {}


@register
class Softmax(_Elementwise):
    """Softmax along ``axis`` (counted with the batch as 0; -1 is the last).

    Input shape: any. Output shape: the same.
    """

    TYPE = "Softmax"
    PARAMS = (Int("axis", -1, "axis normalized to sum to 1 (batch is 0; -1 the last)"),)
    KEY_PARAMS = ("axis",)
    EXAMPLES = (
        Example({}, ((5,),)),
        Example({"axis": 1}, ((3, 4),)),
        Example({"axis": -2}, ((2, 3, 4),)),
        Example({"axis": 3}, ((2, 3, 2),)),
    )

    def check_config(self):
        if self.config["axis"] == 0:
            raise ParamError("axis 0 is the batch; Softmax normalizes within a sample", "axis")

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        axis = self.config["axis"]
        if not -len(shape) <= axis <= len(shape):
            raise ShapeError(
                f"Softmax's axis {axis} is not an axis of a sample of {fmt_shape(shape)} "
                f"(1 to {len(shape)}, or -{len(shape)} to -1)"
            )
        return tuple(shape)

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        axis = self.config["axis"]
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        return out, out

    def _backward(self, weights, a, grad):
        axis = self.config["axis"]
        return [a * (grad - (grad * a).sum(axis=axis, keepdims=True))], {}


@register
class Identity(_Elementwise):
    """Passes its input through unchanged (Keras's ``Identity``).

    Input shape: any. Output shape: the same.
    """

    TYPE = "Identity"
    EXAMPLES = (Example({}, ((4,),)), Example({}, ((2, 3),)))

    def _forward(self, weights, inputs, ctx):
        return inputs[0], None

    def _backward(self, weights, cache, grad):
        return [grad], {}

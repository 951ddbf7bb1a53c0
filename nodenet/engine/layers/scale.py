"""The scaling layers keras.applications defines for itself: LayerScale and CustomScaleLayer.

``LayerScale`` (ConvNeXt, ``keras.src.applications.convnext``) multiplies its input
by a learned vector on the last axis, started at ``init_values``. ``CustomScaleLayer``
(InceptionResNetV2, ``keras.src.applications.inception_resnet_v2``) adds a scaled
residual to a shortcut: ``inputs[0] + inputs[1] * scale``. Keras saves them under
these class names; nodenet imports and exports them as those classes.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.initializers import normalize
from nodenet.engine.layer import Example, Layer, WeightSpec, expect_rank, fmt_shape, register
from nodenet.engine.params import Float, Int
from nodenet.errors import ShapeError


def _broadcast_size(a: int | None, b: int | None) -> int | bool | None:
    """The size of two broadcast axes (a size of 1 stretches), None if unknown, False if
    they do not broadcast."""
    if a == 1 or b == 1:
        return b if a == 1 else a
    if a is None or b is None:
        return a if b is None else b
    return a if a == b else False


def _summed_to(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """``grad`` of a broadcast operand summed back to the operand's own ``shape`` (same rank)."""
    axes = tuple(k for k, n in enumerate(shape) if n == 1 and grad.shape[k] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


@register
class LayerScale(Layer):
    """Multiplies the input by a learned per-channel scale (ConvNeXt's layer scale).

    Output: ``x * gamma`` with ``gamma`` of shape (projection_dim,) on the last axis,
    started at ``init_values`` everywhere. Input shape: any whose last axis is
    ``projection_dim`` (or 1, or a ``projection_dim`` of 1: they broadcast as in
    Keras). Output shape: the input's, last axis broadcast. Weight: ``gamma``, the
    attribute ConvNeXt keeps it in (Keras creates it unnamed, as ``variable_<n>``).
    """

    TYPE = "LayerScale"
    CATEGORY = "Core"
    PARAMS = (
        Float("init_values", 1e-6, "the value every scale starts at (ConvNeXt: 1e-6)"),
        Int("projection_dim", 32, "the size of the scale vector: the input's channels", min=1),
    )
    KEY_PARAMS = ("projection_dim",)
    EXAMPLES = (
        Example({"projection_dim": 4}, ((4,),)),
        Example({"init_values": 0.5, "projection_dim": 3}, ((2, 2, 3),)),
        Example({"init_values": 1.0, "projection_dim": 3}, ((4, 1),)),
        Example({"init_values": 0.1, "projection_dim": 1}, ((3, 2),)),
    )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, tuple(range(1, 8)), "LayerScale")
        last = _broadcast_size(shape[-1], self.config["projection_dim"])
        if last is False:
            raise ShapeError(
                f"LayerScale projection_dim={self.config['projection_dim']} does not match "
                f"the last axis of {fmt_shape(shape)}"
            )
        return (*shape[:-1], last)

    def weight_specs(self, input_shapes):
        self.infer_shape(input_shapes)
        value = self.config["init_values"]
        init = normalize({"class_name": "Constant", "config": {"value": value}})
        return [WeightSpec("gamma", (self.config["projection_dim"],), init)]

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        return x * weights["gamma"], x

    def _backward(self, weights, cache, grad):
        x = cache
        gamma = weights["gamma"]
        dx = _summed_to(grad * gamma, x.shape)
        product = grad * x
        dgamma = product.reshape(-1, product.shape[-1]).sum(axis=0)
        if gamma.shape[0] == 1:
            dgamma = dgamma.sum(keepdims=True)
        return [dx], {"gamma": dgamma}


@register
class CustomScaleLayer(Layer):
    """Adds a scaled residual to a shortcut: ``inputs[0] + inputs[1] * scale``.

    InceptionResNetV2's residual merge. Input 0 is the shortcut, input 1 the
    residual branch; both of the same rank, their sizes equal or 1 (broadcast as in
    Keras). Output shape: the broadcast shape. No weights.
    """

    TYPE = "CustomScaleLayer"
    CATEGORY = "Merge"
    N_INPUTS = 2
    PARAMS = (Float("scale", 1.0, "the factor of the residual (input 1) before it is added"),)
    KEY_PARAMS = ("scale",)
    EXAMPLES = (
        Example({"scale": 0.17}, ((4,), (4,))),
        Example({"scale": 0.1}, ((3, 3, 2), (3, 3, 2))),
        Example({"scale": 2.0}, ((3, 1), (1, 4))),
        Example({}, ((5, 2), (5, 2))),
    )

    def infer_shape(self, input_shapes):
        a, b = input_shapes
        out = [_broadcast_size(i, j) for i, j in zip(a, b, strict=False)]
        if len(a) != len(b) or any(size is False for size in out):
            raise ShapeError(
                f"CustomScaleLayer cannot add {fmt_shape(a)} and {fmt_shape(b)} (the shortcut "
                "and the residual need the same rank and sizes, or sizes of 1)"
            )
        return tuple(out)

    def _forward(self, weights, inputs, ctx):
        shortcut, residual = inputs
        out = shortcut + residual * np.asarray(self.config["scale"], residual.dtype)
        return out, (shortcut.shape, residual.shape)

    def _backward(self, weights, cache, grad):
        shortcut, residual = cache
        scale = np.asarray(self.config["scale"], grad.dtype)
        return [_summed_to(grad, shortcut), _summed_to(grad * scale, residual)], {}

"""Normalization blocks: BatchNormalization and LayerNormalization.

Both learn a per-feature scale ``gamma`` and offset ``beta`` along ``axis``
(counted with the batch as axis 0, so ``-1`` is the last axis, channels-last).
BatchNormalization normalizes each feature over the batch (and every other
axis) while training and keeps moving averages for inference;
LayerNormalization normalizes each sample over ``axis``.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine import activations
from nodenet.engine.initializers import NAMES as INITS
from nodenet.engine.layer import Example, Layer, Shape, WeightSpec, fmt_shape, register
from nodenet.engine.layers import norm_parts
from nodenet.engine.params import Bool, Float, Initializer, Int, Regularizer
from nodenet.errors import ShapeError


def feature_axis(axis: int, ndim: int, what: str, shape: Shape) -> int:
    """``axis`` of an ``ndim``-D tensor (batch included) as a non-negative index.

    Raises :class:`ShapeError` for the batch axis or an axis out of range;
    ``shape`` (no batch) is only used in the message.
    """
    index = axis + ndim if axis < 0 else axis
    if not 1 <= index < ndim:
        raise ShapeError(
            f"{what} axis={axis} is not a feature axis of a {ndim}-D input {fmt_shape(shape)} "
            f"(use 1 to {ndim - 1}, or -1 to {1 - ndim})"
        )
    return index


def feature_size(axis: int, shape: Shape, what: str) -> int:
    """The known size of the normalized axis of ``shape`` (no batch)."""
    index = feature_axis(axis, len(shape) + 1, what, shape)
    size = shape[index - 1]
    if size is None:
        raise ShapeError(f"{what} needs a known size on axis {axis}, got {fmt_shape(shape)}")
    return size


def _affine_params(what: str) -> tuple:
    return (
        Bool("center", True, f"add the learned offset beta after {what}"),
        Bool("scale", True, f"multiply by the learned scale gamma after {what}"),
        Initializer("beta_initializer", "zeros", "how beta starts", choices=INITS),
        Initializer("gamma_initializer", "ones", "how gamma starts", choices=INITS),
    )


def _affine_regularizers() -> tuple:
    return (
        Regularizer("beta_regularizer", None, "L1/L2 penalty on beta, added to the loss"),
        Regularizer("gamma_regularizer", None, "L1/L2 penalty on gamma, added to the loss"),
    )


def _affine_specs(config: dict, size: int) -> list[WeightSpec]:
    """gamma (if ``scale``) then beta (if ``center``), Keras's order."""
    specs = []
    if config["scale"]:
        specs.append(
            WeightSpec(
                "gamma",
                (size,),
                config["gamma_initializer"],
                regularizer=config["gamma_regularizer"],
            )
        )
    if config["center"]:
        specs.append(
            WeightSpec(
                "beta", (size,), config["beta_initializer"], regularizer=config["beta_regularizer"]
            )
        )
    return specs


def _along(vector: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """A (features,) vector shaped to broadcast along ``axis`` of an ``ndim``-D tensor."""
    shape = [1] * ndim
    shape[axis] = vector.shape[0]
    return vector.reshape(shape)


def _sum_per_feature(axis: int, *factors: np.ndarray, dtype=None) -> np.ndarray:
    """Sum of the product of ``factors`` over every axis but ``axis``: shape (features,).

    One fused pass (``einsum``) without a full-size temporary.
    """
    letters = "abcdefghijklmnopqrstuvwxyz"[: factors[0].ndim]
    spec = ",".join([letters] * len(factors)) + "->" + letters[axis]
    return np.einsum(spec, *factors, dtype=dtype)


def _mean_per_sample(axis: int, *factors: np.ndarray, dtype=None) -> np.ndarray:
    """Mean of the product of ``factors`` over ``axis``, kept as a size-1 axis.

    ``dtype=np.float64`` accumulates in float64; the result has the factors' dtype.
    """
    letters = "abcdefghijklmnopqrstuvwxyz"[: factors[0].ndim]
    spec = ",".join([letters] * len(factors)) + "->" + letters.replace(letters[axis], "")
    total = np.einsum(spec, *factors, dtype=dtype) / factors[0].shape[axis]
    return np.expand_dims(total.astype(factors[0].dtype, copy=False), axis)


def batch_moments(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (features,), ``x - mean`` (x's shape) and biased variance (features,).

    Statistics are taken over every axis but ``axis``. The variance divides
    by the count, as Keras does (torch's own BatchNorm tracks the unbiased
    one). Keras's torch backend takes it as ``mean(x**2) - mean(x)**2``; the
    same quantity is computed here from the centered values, with float64
    sums, so that inputs far from zero (raw pixel values, say) give the true
    variance instead of a cancellation error, which can go negative and make
    Keras's output NaN.
    """
    count = x.size // x.shape[axis]
    mean = (_sum_per_feature(axis, x, dtype=np.float64) / count).astype(x.dtype)
    centered = x - _along(mean, axis, x.ndim)
    var = _sum_per_feature(axis, centered, centered, dtype=np.float64) / count
    return mean, centered, var.astype(x.dtype)


@register
class BatchNormalization(Layer):
    """Normalizes each feature with batch statistics while training, moving averages after.

    Output: ``(x - mean) / sqrt(var + epsilon) * gamma + beta`` per feature of
    ``axis``. Training uses the batch's mean and variance and updates
    ``moving_mean`` / ``moving_variance`` in place (``moving * momentum +
    batch * (1 - momentum)``); inference uses the moving statistics, and so does a
    frozen block while training (Keras 3: ``training and self.trainable``).
    Input shape: any with a known size on ``axis``. Output shape: the same.
    """

    TYPE = "BatchNormalization"
    CATEGORY = "Normalization"
    INFERENCE_WHEN_FROZEN = True
    PARAMS = (
        Int("axis", -1, "the feature axis (batch is 0, -1 is the last axis)"),
        Float("momentum", 0.99, "weight of the old value in the moving averages", min=0.0, max=1.0),
        Float(
            "epsilon",
            1e-3,
            "added to the variance to avoid dividing by zero",
            min=0.0,
            min_exclusive=True,
        ),
        *_affine_params("normalizing"),
        Initializer(
            "moving_mean_initializer", "zeros", "how the moving mean starts", choices=INITS
        ),
        Initializer(
            "moving_variance_initializer", "ones", "how the moving variance starts", choices=INITS
        ),
        *_affine_regularizers(),
    )
    EXAMPLES = (
        Example({}, ((4,),)),
        Example({"momentum": 0.9, "epsilon": 0.01, "center": False}, ((3, 2),)),
        Example({"axis": 1, "scale": False}, ((3, 4),)),
        Example({"axis": -2, "center": False, "scale": False}, ((2, 3, 4),)),
        Example({"momentum": 0.5}, ((4, 4, 3),)),
    )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        feature_size(self.config["axis"], shape, "BatchNormalization")
        return tuple(shape)

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        size = feature_size(self.config["axis"], shape, "BatchNormalization")
        c = self.config
        return [
            *_affine_specs(c, size),
            WeightSpec("moving_mean", (size,), c["moving_mean_initializer"], trainable=False),
            WeightSpec(
                "moving_variance", (size,), c["moving_variance_initializer"], trainable=False
            ),
        ]

    def forward_relu(self, weights, inputs, ctx):
        """``relu(forward)``: a relu Activation fed by this block alone, run with it
        (:class:`nodenet.engine.model.Model`); the cache for :meth:`backward_relu`."""
        out, inner = self._forward(weights, inputs, ctx, relu=True)
        return out, (inner, out)

    def backward_relu(self, weights, cache, grad):
        """:meth:`backward` of :meth:`forward_relu`, from dL/d(the relu's output)."""
        inner, out = cache
        return self._backward(weights, inner, grad, relu_out=out)

    def forward_relu_pool(self, weights, inputs, ctx, pool: Layer):
        """``pool(relu(forward))``: as :meth:`forward_relu`, the relu then feeding a max
        pooling alone (:func:`fusable_pool`); the cache for :meth:`backward_relu_pool`.

        In training, channels-last and with the kernels, one pass after the statistics
        writes the pooled output (:func:`norm_parts.forward_pool`); otherwise the blocks
        run one after the other.
        """
        (x,) = inputs
        axis = feature_axis(self.config["axis"], x.ndim, "BatchNormalization", x.shape[1:])
        if ctx.training and axis == x.ndim - 1:
            size = pool.geometry(x.shape[1:-1])[0]
            args = (weights.get("gamma"), weights.get("beta"), self.config["epsilon"], size)
            fused = norm_parts.forward_pool(x, *args)
            if fused is not None:
                y, cache, (mean, var) = fused
                self._update_moving(weights, mean, var)
                return y, (True, (*cache, size))
        out, inner = self.forward_relu(weights, inputs, ctx)
        y, pooled = pool.forward({}, [out], ctx)
        return y, (False, (inner, pool, pooled))

    def backward_relu_pool(self, weights, cache, grad):
        """:meth:`backward` of :meth:`forward_relu_pool`, from dL/d(the pooling's output)."""
        fused, inner = cache
        if fused:
            dx, grad_beta, grad_gamma = norm_parts.backward_pool(grad, *inner)
            grads = {"gamma": grad_gamma, "beta": grad_beta}
            return [dx], {k: v for k, v in grads.items() if k in weights}
        inner, pool, pooled = inner
        (grad,), _ = pool.backward({}, pooled, grad)
        return self.backward_relu(weights, inner, grad)

    def _forward(self, weights, inputs, ctx, relu: bool = False):
        (x,) = inputs
        axis = feature_axis(self.config["axis"], x.ndim, "BatchNormalization", x.shape[1:])
        if ctx.training and axis == x.ndim - 1:  # channels-last: by parts of the batch
            args = (weights.get("gamma"), weights.get("beta"), self.config["epsilon"])
            out, (centered, rstd, scale, mean, var) = norm_parts.forward(x, *args, relu)
            self._update_moving(weights, mean, var)
            return out, (centered, rstd, scale, axis, True)
        if ctx.training:
            mean, centered, var = batch_moments(x, axis)
            self._update_moving(weights, mean, var)
        else:
            var = weights["moving_variance"]
            centered = x - _along(weights["moving_mean"], axis, x.ndim)
        rstd = 1 / np.sqrt(var + self.config["epsilon"])
        scale = rstd * weights["gamma"] if "gamma" in weights else rstd
        out = centered * _along(scale, axis, x.ndim)
        if "beta" in weights:
            out += _along(weights["beta"], axis, x.ndim)
        if relu:
            activations.relu_inplace(out)
        return out, (centered, rstd, scale, axis, ctx.training)

    def _backward(self, weights, cache, grad, relu_out=None):
        """dx = scale·(g - mean(g) - x̂·mean(g·x̂)) with batch statistics, scale·g without.

        ``relu_out``: the output of a forward with a relu; ``grad`` is taken after it.
        """
        centered, rstd, scale, axis, training = cache
        if training and axis == grad.ndim - 1:
            args = (grad, centered, rstd, scale, relu_out)
            dx, grad_beta, grad_gamma = norm_parts.backward(*args)
            grads = {"gamma": grad_gamma, "beta": grad_beta}
            return [dx], {k: v for k, v in grads.items() if k in weights}
        if relu_out is not None:
            grad = activations.grad("relu", grad, relu_out, relu_out)
        grad_beta = _sum_per_feature(axis, grad)
        grad_gamma = _sum_per_feature(axis, grad, centered) * rstd  # sum(g * x_hat)
        dx = grad * _along(scale, axis, grad.ndim)
        if training:
            count = grad.size // grad.shape[axis]
            dx -= _along(scale * grad_beta / count, axis, grad.ndim)
            dx -= centered * _along(scale * rstd * grad_gamma / count, axis, grad.ndim)
        grads = {}
        if "gamma" in weights:
            grads["gamma"] = grad_gamma
        if "beta" in weights:
            grads["beta"] = grad_beta
        return [dx], grads

    def _update_moving(self, weights, mean: np.ndarray, var: np.ndarray) -> None:
        """Keras's update, in place: ``moving * momentum + batch * (1 - momentum)``."""
        momentum = self.config["momentum"]
        for name, batch in (("moving_mean", mean), ("moving_variance", var)):
            moving = weights[name]
            moving *= momentum
            moving += batch * (1.0 - momentum)


def fusable_pool(pool: Layer, input_shape: tuple) -> bool:
    """True if ``pool`` (input ``input_shape`` without the batch) can run in one step with
    the BatchNormalization and relu before it: a max pooling of images whose windows tile
    them from the corner (:meth:`BatchNormalization.forward_relu_pool`)."""
    if pool.TYPE != "MaxPooling2D" or len(input_shape) != 3 or None in input_shape:
        return False
    size, strides, pads = pool.geometry(input_shape[:-1])
    return size == strides and not any(b or a for b, a in pads)


@register
class LayerNormalization(Layer):
    """Normalizes each sample over ``axis``: ``(x - mean) / sqrt(var + epsilon) * gamma + beta``.

    Mean and (biased) variance are taken per sample over ``axis``; gamma and
    beta have the size of that axis. Input shape: any with a known size on
    ``axis``. Output shape: the same.
    """

    TYPE = "LayerNormalization"
    CATEGORY = "Normalization"
    PARAMS = (
        Int("axis", -1, "the axis normalized over (batch is 0, -1 is the last axis)"),
        Float(
            "epsilon",
            1e-3,
            "added to the variance to avoid dividing by zero",
            min=0.0,
            min_exclusive=True,
        ),
        *_affine_params("normalizing"),
        *_affine_regularizers(),
    )
    EXAMPLES = (
        Example({}, ((4,),)),
        Example({"epsilon": 1e-5, "center": False}, ((3, 5),)),
        Example({"scale": False}, ((2, 2, 3),)),
        Example({"axis": 1, "gamma_initializer": "glorot_uniform"}, ((6,),)),
        Example({"center": False, "scale": False}, ((3,),)),
    )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        feature_size(self.config["axis"], shape, "LayerNormalization")
        return tuple(shape)

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        return _affine_specs(
            self.config, feature_size(self.config["axis"], shape, "LayerNormalization")
        )

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        axis = feature_axis(self.config["axis"], x.ndim, "LayerNormalization", x.shape[1:])
        x_hat = x - _mean_per_sample(axis, x, dtype=np.float64)  # precise far from zero
        var = _mean_per_sample(axis, x_hat, x_hat)
        rstd = 1 / np.sqrt(var + self.config["epsilon"])
        x_hat *= rstd
        gamma = weights.get("gamma")
        out = x_hat * _along(gamma, axis, x.ndim) if gamma is not None else x_hat.copy()
        if "beta" in weights:
            out += _along(weights["beta"], axis, x.ndim)
        return out, (x_hat, rstd, axis)

    def _backward(self, weights, cache, grad):
        """With h = g·gamma: dx = rstd·(h - mean(h) - x̂·mean(h·x̂)), means per sample."""
        x_hat, rstd, axis = cache
        grads = {}
        if "gamma" in weights:
            grads["gamma"] = _sum_per_feature(axis, grad, x_hat)
            dx = grad * _along(weights["gamma"], axis, grad.ndim)
        else:
            dx = grad.copy()
        if "beta" in weights:
            grads["beta"] = _sum_per_feature(axis, grad)
        mean_h = _mean_per_sample(axis, dx)
        mean_hx = _mean_per_sample(axis, dx, x_hat)
        dx -= mean_h
        dx -= x_hat * mean_hx
        dx *= rstd
        return [dx], grads

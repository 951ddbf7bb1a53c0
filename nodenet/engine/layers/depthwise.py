"""Depthwise and separable convolutions: DepthwiseConv1D/2D, SeparableConv1D/2D.

A depthwise convolution convolves every input channel with its own
``depth_multiplier`` kernels: channel ``c`` gives the output channels
``c * depth_multiplier + m``, as in Keras. There is no sum over channels, so
instead of im2col and one matrix product it is one broadcast product per
kernel offset over the padded image (the offset's strided slice), and its
input gradient one slice-add per offset. A separable convolution is a
depthwise one followed by a pointwise (1x1) convolution: one matrix product.
The padding geometry is :class:`nodenet.engine.layers.conv._Conv`'s.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine import activations
from nodenet.engine.initializers import NAMES as INITS
from nodenet.engine.layer import WeightSpec, known, register
from nodenet.engine.layers.conv import _Conv, example
from nodenet.engine.layers.windows import (
    channel_sums,
    crop_spatial,
    offset_slices,
    pad_spatial,
    relu_masked,
)
from nodenet.engine.params import Bool, Choice, Initializer, Int, IntTuple, Param, Regularizer

# -- the depthwise product and its gradients ------------------------------------------


def depthwise(xp: np.ndarray, kernel: np.ndarray, strides, dilation, out) -> np.ndarray:
    """``xp`` (batch, *spatial, C) convolved per channel with ``kernel`` (*window, C, M).

    Returns (batch, *out, C, M).
    """
    z = np.zeros((len(xp), *out, *kernel.shape[-2:]), dtype=np.result_type(xp, kernel))
    for offset in np.ndindex(*kernel.shape[:-2]):
        seen = xp[(slice(None), *offset_slices(offset, strides, dilation, out))]
        z += seen[..., None] * kernel[offset]
    return z


def depthwise_grads(
    xp: np.ndarray, kernel: np.ndarray, g: np.ndarray, strides, dilation, input_grad: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """Gradients of :func:`depthwise` for ``g`` (batch, *out, C, M): the padded input's
    (None unless ``input_grad``) and the kernel's."""
    out = g.shape[1:-2]
    channels, multiplier = kernel.shape[-2:]
    g2 = g.reshape(-1, channels, multiplier)
    dkernel = np.empty_like(kernel)
    dxp = np.zeros(xp.shape, dtype=g.dtype) if input_grad else None
    for offset in np.ndindex(*kernel.shape[:-2]):
        where = (slice(None), *offset_slices(offset, strides, dilation, out))
        seen = xp[where].reshape(-1, channels)
        dkernel[offset] = np.einsum("pc,pcm->cm", seen, g2)
        if dxp is not None:
            dxp[where] += np.einsum("...cm,cm->...c", g, kernel[offset])
    return dxp, dkernel


# -- parameters ---------------------------------------------------------------------------


def _depthwise_step(layer: _Conv, x: np.ndarray, kernel: np.ndarray):
    """The depthwise stage shared by DepthwiseConv and SeparableConv: ``x`` padded as the
    layer pads, convolved per channel. Returns the output (batch, *out, channels, M), the
    padded input and the pads (what the backward stage needs)."""
    pads = layer.pads(x.shape[1:-1])
    xp = pad_spatial(x, pads)
    _, strides, dilation = layer.sizes()
    out = layer.infer_shape([x.shape[1:]])[:-1]
    return depthwise(xp, kernel, strides, dilation, out), xp, pads


def _depthwise_step_grads(layer: _Conv, xp, pads, kernel, g):
    """The gradients of :func:`_depthwise_step` given ``g`` (batch, *out, channels, M): the
    input's (None when the layer needs none) and the kernel's."""
    _, strides, dilation = layer.sizes()
    input_grad = getattr(layer, "needs_input_grad", True)
    dxp, dkernel = depthwise_grads(xp, kernel, g, strides, dilation, input_grad)
    return (None if dxp is None else crop_spatial(dxp, pads)), dkernel


def _size(rank: int, name: str, default: int, text: str) -> Param:
    if rank == 1:
        return Int(name, default, text, min=1)
    return IntTuple(name, [default] * rank, text, length=rank)


def _init(name: str, default: str, text: str) -> Param:
    return Initializer(name, default, text, choices=INITS)


def _depthwise_params(rank: int, separable: bool) -> tuple[Param, ...]:
    """Keras's arguments of DepthwiseConv1D/2D (``separable``: SeparableConv1D/2D), in order."""
    multiplier = Int(
        "depth_multiplier", 1, "output channels per input channel (depthwise step)", min=1
    )
    head = (
        _size(rank, "kernel_size", 3, "size of the convolution window"),
        _size(rank, "strides", 1, "step of the window"),
        Choice(
            "padding",
            "valid",
            "valid: no padding; same: output size = ceil(input / strides)",
            choices=("valid", "same"),
        ),
    )
    dilation = _size(rank, "dilation_rate", 1, "spacing between kernel taps (atrous convolution)")
    tail = (
        Choice("activation", "linear", "applied to the output", choices=activations.NAMES),
        Bool("use_bias", True, "add a learned bias per output channel"),
    )
    if not separable:
        return (
            *head,
            multiplier,
            dilation,
            *tail,
            _init("depthwise_initializer", "glorot_uniform", "how the depthwise kernel starts"),
            _init("bias_initializer", "zeros", "how the bias starts"),
            Regularizer("depthwise_regularizer", None, "L1/L2 penalty on the depthwise kernel"),
            Regularizer("bias_regularizer", None, "L1/L2 penalty on the bias"),
        )
    return (
        Int("filters", 32, "number of output channels (pointwise step)", min=1),
        *head,
        dilation,
        multiplier,
        *tail,
        _init("depthwise_initializer", "glorot_uniform", "how the depthwise kernel starts"),
        _init("pointwise_initializer", "glorot_uniform", "how the pointwise kernel starts"),
        _init("bias_initializer", "zeros", "how the bias starts"),
        Regularizer("depthwise_regularizer", None, "L1/L2 penalty on the depthwise kernel"),
        Regularizer("pointwise_regularizer", None, "L1/L2 penalty on the pointwise kernel"),
        Regularizer("bias_regularizer", None, "L1/L2 penalty on the bias"),
    )


# -- depthwise convolution ------------------------------------------------------------------


class _DepthwiseConv(_Conv):
    """Shared by DepthwiseConv1D and DepthwiseConv2D: ``activation(depthwise(x) + bias)``."""

    KEY_PARAMS = ("kernel_size", "depth_multiplier", "activation")

    def out_channels(self, channels):
        return None if channels is None else channels * self.config["depth_multiplier"]

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        n_in = known(shape[-1], f"{self.TYPE}'s channel axis", shape)
        c = self.config
        kernel = (*self.sizes()[0], n_in, c["depth_multiplier"])
        specs = [
            WeightSpec(
                "kernel", kernel, c["depthwise_initializer"], True, c["depthwise_regularizer"]
            )
        ]
        if c["use_bias"]:
            bias = (n_in * c["depth_multiplier"],)
            specs.append(
                WeightSpec("bias", bias, c["bias_initializer"], True, c["bias_regularizer"])
            )
        return specs

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        z, xp, pads = _depthwise_step(self, x, weights["kernel"])
        z = z.reshape(*z.shape[:-2], -1)
        if "bias" in weights:
            z += weights["bias"]
        return z, (xp, pads)

    def _backward(self, weights, cache, grad, positive=None):
        """``positive``: a relu's output; the gradient passes only where it is above zero."""
        xp, pads = cache
        kernel = weights["kernel"]
        if positive is not None:
            grad = relu_masked(grad, positive)
        g = grad.reshape(*grad.shape[:-1], *kernel.shape[-2:])
        dx, dkernel = _depthwise_step_grads(self, xp, pads, kernel, g)
        grads = {"kernel": dkernel}
        if "bias" in weights:
            grads["bias"] = channel_sums(grad.reshape(-1, grad.shape[-1]))
        return [dx], grads


@register
class DepthwiseConv1D(_DepthwiseConv):
    """Depthwise 1D convolution: each channel convolved over steps with its own kernels.

    Input shape: (batch, steps, channels). Output shape: (batch, new_steps,
    channels * depth_multiplier). Kernel (kernel_size, channels,
    depth_multiplier), bias (channels * depth_multiplier,).
    """

    TYPE = "DepthwiseConv1D"
    RANK = 1
    PARAMS = _depthwise_params(1, separable=False)
    EXAMPLES = (
        example((7, 2), kernel_size=3),
        example((9, 3), kernel_size=4, strides=2, padding="same", depth_multiplier=2),
        example((8, 2), kernel_size=3, dilation_rate=2, padding="same", activation="tanh"),
        example((10, 1), kernel_size=2, strides=3, depth_multiplier=3, use_bias=False),
        example((6, 3), kernel_size=2, activation="relu"),
    )


@register
class DepthwiseConv2D(_DepthwiseConv):
    """Depthwise 2D convolution: each channel convolved over the image with its own kernels.

    Input shape: (batch, rows, cols, channels). Output shape: (batch, new_rows,
    new_cols, channels * depth_multiplier). Kernel (kh, kw, channels,
    depth_multiplier), bias (channels * depth_multiplier,).
    """

    TYPE = "DepthwiseConv2D"
    RANK = 2
    PARAMS = _depthwise_params(2, separable=False)
    EXAMPLES = (
        example((6, 5, 2), kernel_size=3, activation="relu"),
        example((7, 6, 3), kernel_size=[3, 2], strides=[2, 1], padding="same"),
        example((8, 8, 2), kernel_size=3, strides=2, padding="same", depth_multiplier=2),
        example(
            (5, 6, 2),
            kernel_size=[2, 3],
            dilation_rate=[2, 1],
            padding="same",
            use_bias=False,
        ),
        example((7, 5, 1), kernel_size=2, strides=[3, 2], depth_multiplier=3, activation="tanh"),
        example((7, 7, 2), kernel_size=3, dilation_rate=2),
    )


# -- separable convolution ------------------------------------------------------------------


class _SeparableConv(_Conv):
    """Shared by SeparableConv1D and SeparableConv2D:
    ``activation(pointwise(depthwise(x)) + bias)``."""

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        n_in = known(shape[-1], f"{self.TYPE}'s channel axis", shape)
        c = self.config
        depth = (*self.sizes()[0], n_in, c["depth_multiplier"])
        point = (*[1] * self.RANK, n_in * c["depth_multiplier"], c["filters"])
        specs = [
            WeightSpec(
                "depthwise_kernel",
                depth,
                c["depthwise_initializer"],
                True,
                c["depthwise_regularizer"],
            ),
            WeightSpec(
                "pointwise_kernel",
                point,
                c["pointwise_initializer"],
                True,
                c["pointwise_regularizer"],
            ),
        ]
        if c["use_bias"]:
            bias = (c["filters"],)
            specs.append(
                WeightSpec("bias", bias, c["bias_initializer"], True, c["bias_regularizer"])
            )
        return specs

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        point = weights["pointwise_kernel"]
        d, xp, pads = _depthwise_step(self, x, weights["depthwise_kernel"])
        d2 = d.reshape(-1, point.shape[-2])
        z = d2 @ point.reshape(point.shape[-2:])
        if "bias" in weights:
            z += weights["bias"]
        return z.reshape(*d.shape[:-2], point.shape[-1]), (xp, pads, d2)

    def _backward(self, weights, cache, grad, positive=None):
        """``positive``: a relu's output; the gradient passes only where it is above zero."""
        xp, pads, d2 = cache
        depth, point = weights["depthwise_kernel"], weights["pointwise_kernel"]
        if positive is not None:
            grad = relu_masked(grad, positive)
        g2 = grad.reshape(-1, point.shape[-1])
        point2 = point.reshape(point.shape[-2:])
        grads = {"pointwise_kernel": (d2.T @ g2).reshape(point.shape)}
        if "bias" in weights:
            grads["bias"] = channel_sums(g2)
        gd = (g2 @ point2.T).reshape(*grad.shape[:-1], *depth.shape[-2:])
        dx, grads["depthwise_kernel"] = _depthwise_step_grads(self, xp, pads, depth, gd)
        return [dx], grads


@register
class SeparableConv1D(_SeparableConv):
    """Depthwise separable 1D convolution: a depthwise convolution, then a pointwise one.

    Input shape: (batch, steps, channels). Output shape: (batch, new_steps,
    filters). Depthwise kernel (kernel_size, channels, depth_multiplier),
    pointwise kernel (1, channels * depth_multiplier, filters), bias (filters,).
    """

    TYPE = "SeparableConv1D"
    RANK = 1
    PARAMS = _depthwise_params(1, separable=True)
    EXAMPLES = (
        example((7, 2), filters=3, kernel_size=3),
        example((9, 3), filters=2, kernel_size=4, strides=2, padding="same", depth_multiplier=2),
        example((8, 2), filters=2, kernel_size=3, dilation_rate=2, activation="tanh"),
        example((10, 1), filters=4, kernel_size=2, strides=3, use_bias=False),
        example((6, 3), filters=2, kernel_size=3, padding="same", activation="relu"),
    )


@register
class SeparableConv2D(_SeparableConv):
    """Depthwise separable 2D convolution: a depthwise convolution, then a pointwise one.

    Input shape: (batch, rows, cols, channels). Output shape: (batch, new_rows,
    new_cols, filters). Depthwise kernel (kh, kw, channels, depth_multiplier),
    pointwise kernel (1, 1, channels * depth_multiplier, filters), bias (filters,).
    """

    TYPE = "SeparableConv2D"
    RANK = 2
    PARAMS = _depthwise_params(2, separable=True)
    EXAMPLES = (
        example((6, 5, 2), filters=3, kernel_size=3, activation="relu"),
        example((7, 6, 3), filters=2, kernel_size=[3, 2], strides=[2, 1], padding="same"),
        example((8, 8, 1), filters=2, kernel_size=3, strides=2, padding="same", depth_multiplier=2),
        example(
            (5, 6, 2),
            filters=2,
            kernel_size=[2, 3],
            dilation_rate=[2, 1],
            padding="same",
            use_bias=False,
        ),
        example((7, 5, 2), filters=3, kernel_size=2, strides=[3, 2], activation="tanh"),
    )

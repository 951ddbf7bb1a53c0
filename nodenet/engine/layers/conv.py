"""Convolution blocks: Conv1D, Conv2D, Conv3D, and the base the other convolutions share.

Images are channels-last: ``(batch, steps, channels)``, ``(batch, rows, cols,
channels)`` and ``(batch, depth, rows, cols, channels)``. A convolution is
im2col (every window copied to a row of a matrix) and one matrix product; its
input gradient is one product for every window's share, each kernel offset's
share added into the image (col2im). Narrow windows (few input channels, as in a
first layer on gray images) are copied offset-major instead, the bias riding in
the product as a row of ones. Both passes run part by part of the batch, the relu
applied to each part in place
(:mod:`nodenet.engine.layers.conv_parts`). With ``groups``, each group of input
channels is convolved into its share of the filters on its own, and the
outputs are concatenated. The window helpers live in
:mod:`nodenet.engine.layers.windows`; the transposed convolutions in
:mod:`nodenet.engine.layers.conv_transpose`, upsampling in
:mod:`nodenet.engine.layers.upsampling`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from nodenet.engine import activations
from nodenet.engine.layer import (
    Example,
    Layer,
    WeightSpec,
    expect_rank,
    fmt_shape,
    kernel_params,
    known,
    register,
)
from nodenet.engine.layers import conv_parts
from nodenet.engine.layers.conv_parts import Geometry
from nodenet.engine.layers.windows import (
    Pads,
    as_tuple,
    crop_spatial,
    output_length,
    pad_spatial,
    relu_masked,
    same_pads,
)
from nodenet.engine.params import Bool, Choice, Int, IntTuple
from nodenet.errors import ParamError, ShapeError

# -- convolutions ---------------------------------------------------------------


def example(shape: tuple, **params) -> Example:
    """An :class:`Example` of a one-input block: its input shape, then its settings."""
    return Example(params, (shape,))


class _Conv(Layer):
    """Shared by Conv1D, Conv2D and Conv3D: ``activation(conv(x, kernel) + bias)``."""

    RANK: ClassVar[int] = 2
    CATEGORY = "Convolution"
    KEY_PARAMS = ("filters", "kernel_size", "activation")
    POST_ACTIVATION = True

    def sizes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """kernel_size, strides and dilation_rate, each as one int per spatial axis."""
        c = self.config
        return tuple(as_tuple(c[k], self.RANK) for k in ("kernel_size", "strides", "dilation_rate"))

    def check_config(self):
        _, strides, dilation = self.sizes()
        if max(strides) > 1 and max(dilation) > 1:
            raise ParamError(
                f"{self.TYPE}: strides > 1 cannot be combined with dilation_rate > 1",
                "dilation_rate",
            )
        groups = self.config.get("groups", 1)
        if self.config.get("filters", groups) % groups:
            raise ParamError(
                f"{self.TYPE}: filters ({self.config['filters']}) must be a multiple of "
                f"groups ({groups})",
                "groups",
            )

    def groups(self, channels: int | None) -> int:
        """``groups``, checked against the input's ``channels``: each group convolves
        ``channels / groups`` of them into ``filters / groups`` outputs."""
        groups = self.config.get("groups", 1)
        if channels is not None and channels % groups:
            raise ShapeError(
                f"{self.TYPE}: the input's {channels} channels cannot be split into groups={groups}"
            )
        return groups

    def pads(self, spatial) -> Pads | None:
        """(before, after) zero padding per spatial axis, as Keras applies it.

        A size known only at run time (``None``) needs no value where the stride
        is 1 (the padding is the window's span less one, whatever the size);
        with a larger stride "same" padding depends on it, and the result is None.
        """
        kernel, strides, dilation = self.sizes()
        padding = self.config["padding"]
        if padding == "valid":
            return [(0, 0)] * self.RANK
        if padding == "causal":
            return [((kernel[0] - 1) * dilation[0], 0)]
        if None in spatial and max(strides) > 1:
            return None
        axes = zip(spatial, kernel, strides, dilation, strict=True)
        return [same_pads(n or 1, k, s, d) for n, k, s, d in axes]

    def out_channels(self, channels: int | None) -> int | None:
        """Channels of the output from those of the input: ``filters`` here."""
        return self.config["filters"]

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, self.RANK + 1, self.TYPE)
        padding = self.config["padding"]
        kernel, strides, dilation = self.sizes()
        out = tuple(
            output_length(n, *a, padding, d)
            for n, *a, d in zip(shape[:-1], kernel, strides, dilation, strict=True)
        )
        if any(n is not None and n < 1 for n in out):
            raise ShapeError(
                f"{self.TYPE}: kernel_size {list(kernel)} does not fit the input "
                f"{fmt_shape(shape)} with padding 'valid'"
            )
        self.groups(shape[-1])
        return (*out, self.out_channels(shape[-1]))

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        n_in = known(shape[-1], f"{self.TYPE}'s channel axis", shape)
        c = self.config
        kernel = (*self.sizes()[0], n_in // self.groups(n_in), c["filters"])
        specs = [
            WeightSpec("kernel", kernel, c["kernel_initializer"], True, c["kernel_regularizer"])
        ]
        if c["use_bias"]:
            bias = (c["filters"],)
            specs.append(
                WeightSpec("bias", bias, c["bias_initializer"], True, c["bias_regularizer"])
            )
        return specs

    def forward(self, weights, inputs, ctx):
        """As :meth:`Layer.forward`, with a relu applied in place.

        The relu's gradient needs only where the output is positive, so the
        output stands in for the pre-activation in the cache. A convolution
        without groups applies it to each part of the batch right after its product.
        """
        if self.config["activation"] != "relu":
            return super().forward(weights, inputs, ctx)
        if self._by_parts(inputs[0]):
            a, cache = self._forward_one(weights, inputs[0], relu=True)
        else:
            z, cache = self._forward(weights, inputs, ctx)
            a = activations.relu_inplace(z)
        return a, (cache, a, a)

    def backward(self, weights, cache, grad, from_logits=False):
        """As :meth:`Layer.backward`; a relu's gradient is taken inside :meth:`_backward`."""
        if self.config["activation"] != "relu" or from_logits:
            return super().backward(weights, cache, grad, from_logits)
        inner, _, a = cache
        return self._backward(weights, inner, grad, positive=a)

    def _by_parts(self, x: np.ndarray) -> bool:
        """True where :meth:`_forward_one` runs the whole block (no groups, not a subclass's)."""
        return type(self)._forward is _Conv._forward and self.groups(x.shape[-1]) == 1

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        groups = self.groups(x.shape[-1])
        if groups == 1:
            return self._forward_one(weights, x)
        parts = [
            self._forward_one(_group(weights, g, groups), _group_of(x, g, groups))
            for g in range(groups)
        ]
        return np.concatenate([z for z, _ in parts], axis=-1), _Groups(c for _, c in parts)

    def _backward(self, weights, cache, grad, positive=None):
        """``positive``: a relu's output; the gradient passes only where it is above zero."""
        if not isinstance(cache, _Groups):
            return self._backward_one(weights, cache, grad, positive)
        if positive is not None:
            grad = relu_masked(grad, positive)
        groups = len(cache)
        parts = [
            self._backward_one(_group(weights, g, groups), c, _group_of(grad, g, groups))
            for g, c in enumerate(cache)
        ]
        grads = {k: np.concatenate([p[1][k] for p in parts], axis=-1) for k in parts[0][1]}
        if parts[0][0][0] is None:
            return [None], grads
        return [np.concatenate([p[0][0] for p in parts], axis=-1)], grads

    def _forward_one(self, weights, x, relu: bool = False):
        """The convolution of one group (all of ``x`` without ``groups``), then a relu."""
        kernel = weights["kernel"]
        pads = self.pads(x.shape[1:-1])
        _, strides, dilation = self.sizes()
        out = self.infer_shape([(*x.shape[1:-1], None)])[:-1]  # a group's channels: any
        rank = len(out)
        geo = Geometry(
            kernel.shape[:-2], strides, dilation, (1,) * rank, out, x.shape[-1], kernel.shape[-1]
        )
        xp = pad_spatial(x, pads)
        z, cache = conv_parts.forward(xp, kernel, weights.get("bias"), geo, relu, False, False)
        return z, (cache, pads)

    def _backward_one(self, weights, cache, grad, positive=None):
        """The gradients of one group; ``positive`` as in :meth:`_backward`."""
        inner, pads = cache
        needed = getattr(self, "needs_input_grad", True)  # fed by data: nobody reads dx
        args = (weights["kernel"], "bias" in weights, grad, positive)
        dxp, grads = conv_parts.backward(inner, *args, input_grad=needed)
        return [None if dxp is None else crop_spatial(dxp, pads)], grads


class _Groups(list):
    """The caches of a grouped convolution's groups."""


def _group_of(a: np.ndarray, g: int, groups: int) -> np.ndarray:
    """Group ``g``'s share of the last axis of ``a``, contiguous."""
    n = a.shape[-1] // groups
    return np.ascontiguousarray(a[..., g * n : (g + 1) * n])


def _group(weights: dict, g: int, groups: int) -> dict:
    """Group ``g``'s kernel and bias: its share of their last (filters) axis."""
    return {name: _group_of(w, g, groups) for name, w in weights.items()}


def _conv_params(
    rank: int, paddings: tuple[str, ...], padding_help: str, *extra, groups: bool = False
):
    """Keras's convolution arguments in Keras order; ``extra`` goes after ``padding``,
    ``groups`` (Conv1D/2D/3D) after ``dilation_rate``."""
    if rank == 1:

        def size(name, default, text):
            return Int(name, default, text, min=1)
    else:

        def size(name, default, text):
            return IntTuple(name, [default] * rank, text, length=rank)

    return (
        Int("filters", 32, "number of output channels (filters)", min=1),
        size("kernel_size", 3, "size of the convolution window"),
        size("strides", 1, "step of the window"),
        Choice("padding", "valid", padding_help, choices=paddings),
        *extra,
        size("dilation_rate", 1, "spacing between kernel taps (atrous convolution)"),
        *(
            [Int("groups", 1, "split channels into groups convolved separately", min=1)]
            if groups
            else []
        ),
        Choice("activation", "linear", "applied to the output", choices=activations.NAMES),
        Bool("use_bias", True, "add a learned bias per filter"),
        *kernel_params(),
    )


@register
class Conv1D(_Conv):
    """1D convolution over steps (temporal convolution).

    Input shape: (batch, steps, channels). Output shape: (batch, new_steps,
    filters). Kernel (kernel_size, channels, filters), bias (filters,).
    """

    TYPE = "Conv1D"
    RANK = 1
    PARAMS = _conv_params(
        1,
        ("valid", "same", "causal"),
        "valid: no padding; same: output steps = ceil(steps / strides); "
        "causal: pad on the left only, so output[t] never sees input[t + 1:]",
        groups=True,
    )
    EXAMPLES = (
        example((7, 2), filters=3, kernel_size=3),
        example((9, 3), filters=2, kernel_size=4, strides=2, padding="same"),
        example(
            (8, 2), filters=2, kernel_size=3, dilation_rate=2, padding="causal", activation="tanh"
        ),
        example((10, 1), filters=4, kernel_size=2, strides=3, use_bias=False),
        example((6, 3), filters=2, kernel_size=3, padding="same", dilation_rate=2),
        example((7, 6), filters=3, kernel_size=2, groups=3, strides=2, use_bias=False),
    )


@register
class Conv2D(_Conv):
    """2D convolution over images (spatial convolution).

    Input shape: (batch, rows, cols, channels). Output shape: (batch, new_rows,
    new_cols, filters). Kernel (kh, kw, channels, filters), bias (filters,).
    """

    TYPE = "Conv2D"
    RANK = 2
    PARAMS = _conv_params(
        2,
        ("valid", "same"),
        "valid: no padding; same: output size = ceil(input / strides)",
        groups=True,
    )
    EXAMPLES = (
        example((6, 5, 2), filters=3, kernel_size=3, activation="relu"),
        example((7, 6, 3), filters=2, kernel_size=[3, 2], strides=[2, 1], padding="same"),
        example((8, 8, 1), filters=2, kernel_size=3, strides=2, padding="same"),
        example(
            (5, 6, 2),
            filters=2,
            kernel_size=[2, 3],
            dilation_rate=[2, 1],
            padding="same",
            use_bias=False,
        ),
        example((7, 5, 2), filters=3, kernel_size=2, strides=[3, 2], activation="tanh"),
        example((7, 7, 1), filters=2, kernel_size=3, dilation_rate=2),
        example((6, 5, 4), filters=6, kernel_size=3, groups=2, padding="same", activation="relu"),
    )


@register
class Conv3D(_Conv):
    """3D convolution over volumes (spatial convolution over depth, rows and columns).

    Input shape: (batch, depth, rows, cols, channels). Output shape: (batch,
    new_depth, new_rows, new_cols, filters). Kernel (kd, kh, kw, channels, filters),
    bias (filters,).
    """

    TYPE = "Conv3D"
    RANK = 3
    PARAMS = _conv_params(
        3,
        ("valid", "same"),
        "valid: no padding; same: output size = ceil(input / strides)",
        groups=True,
    )
    EXAMPLES = (
        example((4, 4, 3, 2), filters=2, kernel_size=2, activation="relu"),
        example((4, 5, 3, 2), filters=3, kernel_size=[3, 2, 2], strides=[2, 1, 2], padding="same"),
        example((5, 4, 3, 1), filters=2, kernel_size=2, dilation_rate=[2, 1, 1], use_bias=False),
        example((3, 4, 4, 4), filters=4, kernel_size=[1, 3, 2], groups=2, activation="tanh"),
    )

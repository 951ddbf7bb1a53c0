"""Transposed convolutions: Conv1DTranspose, Conv2DTranspose, Conv3DTranspose.

Each is the pair of operations of :class:`nodenet.engine.layers.conv._Conv`
the other way round: the forward stamps every input position's ``x @
kernel[offset].T`` into the full output (col2im) and crops it as Keras's
``padding`` and ``output_padding`` define; the input gradient is im2col of
the output gradient and one matrix product. Only the rank differs between
the three blocks.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.layer import WeightSpec, expect_rank, fmt_shape, register
from nodenet.engine.layers.conv import _Conv, _conv_params, example
from nodenet.engine.layers.windows import (
    Pads,
    as_tuple,
    channel_sums,
    col2im_product,
    crop_spatial,
    im2col,
    relu_masked,
    transpose_crops,
)
from nodenet.engine.params import Int, IntTuple
from nodenet.errors import ParamError, ShapeError

_PADDING_HELP = "valid: every window placement; same: output = input * strides"


def _transpose_params(rank: int):
    """Keras's arguments of a transposed convolution: output_padding after padding."""
    text = "extra positions at the end of the output (each < strides); null: Keras's default"
    if rank == 1:
        extra = Int("output_padding", None, text, min=0, optional=True)
    else:
        extra = IntTuple("output_padding", None, text, length=rank, min=0, optional=True)
    return _conv_params(rank, ("valid", "same"), _PADDING_HELP, extra)


class _ConvTranspose(_Conv):
    """Shared by the transposed convolutions: ``activation(conv_transpose(x, kernel) + bias)``.

    Kernel (*window, filters, channels) as in Keras: the last two axes swapped
    from a convolution's.
    """

    def output_padding(self) -> tuple[int | None, ...]:
        """``output_padding`` as one int (or None) per spatial axis."""
        extra = self.config["output_padding"]
        return (None,) * self.RANK if extra is None else as_tuple(extra, self.RANK)

    def check_config(self):
        super().check_config()
        extra, strides = self.output_padding(), self.sizes()[1]
        if any(e is not None and e >= s for e, s in zip(extra, strides, strict=True)):
            raise ParamError(
                f"{self.TYPE}: each output_padding must be smaller than its strides",
                "output_padding",
            )

    def crops(self) -> Pads:
        """(before, after) crop of the full output per spatial axis (negative: zeros added)."""
        padding = self.config["padding"]
        return [
            transpose_crops(k, s, d, padding, e)
            for k, s, d, e in zip(*self.sizes(), self.output_padding(), strict=True)
        ]

    def full_shape(self, spatial) -> tuple[int | None, ...]:
        """Spatial size of the uncropped output: every window placement of every input."""
        return tuple(
            None if n is None else (n - 1) * s + (k - 1) * d + 1
            for n, k, s, d in zip(spatial, *self.sizes(), strict=True)
        )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, self.RANK + 1, self.TYPE)
        full = self.full_shape(shape[:-1])
        out = tuple(
            None if n is None else n - b - a for n, (b, a) in zip(full, self.crops(), strict=True)
        )
        if any(n is not None and n < 1 for n in out):
            raise ShapeError(
                f"{self.TYPE}: these settings give an empty output for the input {fmt_shape(shape)}"
            )
        return (*out, self.config["filters"])

    def weight_specs(self, input_shapes):
        specs = super().weight_specs(input_shapes)
        k = specs[0]
        kernel = (*k.shape[:-2], k.shape[-1], k.shape[-2])  # (*window, filters, channels)
        return [WeightSpec(k.name, kernel, k.initializer, True, k.regularizer), *specs[1:]]

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        kernel = weights["kernel"]  # (*window, filters, channels)
        n_in, n_out = kernel.shape[-1], kernel.shape[-2]
        x2 = x.reshape(-1, n_in)
        # per offset, the stamp of every input position: x @ kernel[offset].T
        full = (x.shape[0], *self.full_shape(x.shape[1:-1]), n_out)
        _, strides, dilation = self.sizes()
        z = crop_spatial(col2im_product(x2, kernel, full, strides, dilation), self.crops())
        z = z + weights["bias"] if "bias" in weights else np.ascontiguousarray(z)
        return z, (x2, x.shape)

    def _backward(self, weights, cache, grad, positive=None):
        if positive is not None:
            grad = relu_masked(grad, positive)
        x2, x_shape = cache
        kernel = weights["kernel"]
        taps = np.moveaxis(kernel, -1, 0).reshape(kernel.shape[-1], -1)  # (in, window * filters)
        gfull = crop_spatial(grad, [(-b, -a) for b, a in self.crops()])
        _, strides, dilation = self.sizes()
        gcols = im2col(gfull, kernel.shape[:-2], strides, dilation, x_shape[1:-1])
        dtaps = (x2.T @ gcols).reshape(kernel.shape[-1], *kernel.shape[:-1])
        grads = {"kernel": np.ascontiguousarray(np.moveaxis(dtaps, 0, -1))}
        if "bias" in weights:
            grads["bias"] = channel_sums(grad.reshape(-1, kernel.shape[-2]))
        return [(gcols @ taps.T).reshape(x_shape)], grads


@register
class Conv1DTranspose(_ConvTranspose):
    """Transposed 1D convolution (sometimes called deconvolution): upsamples sequences.

    Input shape: (batch, steps, channels). Output shape: (batch, new_steps,
    filters), ``steps * strides`` with padding "same". Kernel (kernel_size,
    filters, channels) as in Keras, bias (filters,).
    """

    TYPE = "Conv1DTranspose"
    RANK = 1
    PARAMS = _transpose_params(1)
    EXAMPLES = (
        example((4, 2), filters=3, kernel_size=3, strides=2, padding="same"),
        example((3, 2), filters=2, kernel_size=2, strides=3, activation="tanh"),
        example((4, 3), filters=2, kernel_size=3, dilation_rate=2, padding="same", use_bias=False),
        example((3, 2), filters=2, kernel_size=3, strides=2, output_padding=1),
        example((3, 1), filters=2, kernel_size=4, strides=3, padding="same", output_padding=2),
        example((5, 2), filters=2, kernel_size=3, activation="relu"),
    )


@register
class Conv2DTranspose(_ConvTranspose):
    """Transposed 2D convolution (sometimes called deconvolution): upsamples images.

    Input shape: (batch, rows, cols, channels). Output shape: (batch, new_rows,
    new_cols, filters), ``rows * strides`` with padding "same". Kernel
    (kh, kw, filters, channels) as in Keras, bias (filters,).
    """

    TYPE = "Conv2DTranspose"
    RANK = 2
    PARAMS = _transpose_params(2)
    EXAMPLES = (
        example((3, 4, 2), filters=2, kernel_size=3, strides=2, padding="same"),
        example((3, 2, 2), filters=3, kernel_size=[3, 2], strides=[2, 3]),
        example((2, 3, 1), filters=2, kernel_size=2, strides=3, activation="tanh"),
        example(
            (4, 3, 2),
            filters=2,
            kernel_size=[2, 3],
            dilation_rate=2,
            padding="same",
            use_bias=False,
        ),
        example((3, 3, 2), filters=2, kernel_size=3, strides=2, output_padding=[1, 0]),
        example((3, 2, 3), filters=1, kernel_size=4, strides=2, padding="same", output_padding=1),
    )


@register
class Conv3DTranspose(_ConvTranspose):
    """Transposed 3D convolution (sometimes called deconvolution): upsamples volumes.

    Input shape: (batch, depth, rows, cols, channels). Output shape: (batch,
    new_depth, new_rows, new_cols, filters), ``depth * strides`` with padding
    "same". Kernel (kd, kh, kw, filters, channels) as in Keras, bias (filters,).
    """

    TYPE = "Conv3DTranspose"
    RANK = 3
    PARAMS = _transpose_params(3)
    EXAMPLES = (
        example((2, 3, 2, 2), filters=2, kernel_size=2, strides=2, padding="same"),
        example((2, 2, 3, 1), filters=3, kernel_size=[2, 3, 2], strides=[1, 2, 2]),
        example((3, 2, 2, 2), filters=2, kernel_size=2, dilation_rate=[2, 1, 1], activation="relu"),
        example(
            (2, 2, 2, 2),
            filters=2,
            kernel_size=3,
            strides=2,
            output_padding=[1, 0, 1],
            use_bias=False,
        ),
        example(
            (2, 3, 2, 1),
            filters=1,
            kernel_size=3,
            strides=2,
            padding="same",
            output_padding=[1, 0, 1],
        ),
    )

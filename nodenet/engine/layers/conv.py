"""Convolution blocks: Conv1D, Conv2D, Conv2DTranspose, UpSampling1D, UpSampling2D.

Images are channels-last: ``(batch, steps, channels)`` and ``(batch, rows,
cols, channels)``. A convolution is im2col (every window copied to a row of a
matrix) and one matrix product; its input gradient is one product per kernel
offset, each block added into the image (col2im). Narrow windows (few input
channels, as in a first layer on gray images) are copied offset-major instead,
the bias riding in the product as a row of ones. A relu is applied in place.
The transposed convolution is the same pair of operations the other way round.
With ``groups`` (Conv1D/2D), each group of input channels is convolved into its
share of the filters on its own, and the outputs are concatenated.
The window helpers live in :mod:`nodenet.engine.layers.windows`.
"""

from __future__ import annotations

import math
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
from nodenet.engine.layers.windows import (
    NARROW,
    Pads,
    as_tuple,
    channel_sums,
    col2im_product,
    crop_spatial,
    im2col,
    im2col_t,
    output_length,
    pad_spatial,
    relu_masked,
    same_pads,
    transpose_crops,
    window_weight_product,
    window_weight_product_t,
)
from nodenet.engine.params import Bool, Choice, Int, IntTuple
from nodenet.errors import ParamError, ShapeError

# -- convolutions ---------------------------------------------------------------


def example(shape: tuple, **params) -> Example:
    """An :class:`Example` of a one-input block: its input shape, then its settings."""
    return Example(params, (shape,))


class _Conv(Layer):
    """Shared by Conv1D and Conv2D: ``activation(conv(x, kernel) + bias)``."""

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
        output stands in for the pre-activation in the cache.
        """
        if self.config["activation"] != "relu":
            return super().forward(weights, inputs, ctx)
        z, cache = self._forward(weights, inputs, ctx)
        a = activations.relu_inplace(z)
        return a, (cache, a, a)

    def backward(self, weights, cache, grad, from_logits=False):
        """As :meth:`Layer.backward`; a relu's gradient is taken inside :meth:`_backward`."""
        if self.config["activation"] != "relu" or from_logits:
            return super().backward(weights, cache, grad, from_logits)
        inner, _, a = cache
        return self._backward(weights, inner, grad, positive=a)

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

    def _forward_one(self, weights, x):
        """The convolution of one group (all of ``x`` without ``groups``)."""
        kernel = weights["kernel"]
        pads = self.pads(x.shape[1:-1])
        xp = pad_spatial(x, pads)
        _, strides, dilation = self.sizes()
        out = self.infer_shape([(*x.shape[1:-1], None)])[:-1]  # a group's channels: any
        matrix = kernel.reshape(-1, kernel.shape[-1])  # (kh * kw * in, out)
        if len(matrix) <= NARROW:  # few channels: offset-major windows, the bias rides along
            if "bias" in weights:
                matrix = np.vstack([matrix, weights["bias"]])
            cols = im2col_t(xp, kernel.shape[:-2], strides, dilation, out, ones="bias" in weights)
            z = cols.T @ matrix
        else:
            cols = im2col(xp, kernel.shape[:-2], strides, dilation, out)
            z = cols @ matrix
            if "bias" in weights:  # added per sample: one long row, not many short ones
                per_sample = z.reshape(len(x), math.prod(out) * len(weights["bias"]))
                per_sample += np.tile(weights["bias"], math.prod(out))
        return z.reshape(x.shape[0], *out, kernel.shape[-1]), (cols, xp.shape, pads)

    def _backward_one(self, weights, cache, grad, positive=None):
        """The gradients of one group; ``positive`` as in :meth:`_backward`."""
        cols, padded_shape, pads = cache
        kernel = weights["kernel"]
        width = kernel.size // kernel.shape[-1]
        if positive is not None:
            grad = relu_masked(grad, positive)
        g2 = grad.reshape(-1, kernel.shape[-1])
        if width <= NARROW:  # cols is offset-major, with a row of ones for a bias
            both = window_weight_product_t(cols, g2, len(grad))
        else:
            both = window_weight_product(cols, g2)
        grads = {"kernel": np.ascontiguousarray(both[:width]).reshape(kernel.shape)}
        if "bias" in weights:
            grads["bias"] = both[width].copy() if len(both) > width else channel_sums(g2)
        if not getattr(self, "needs_input_grad", True):  # fed by data: nobody reads dx
            return [None], grads
        _, strides, dilation = self.sizes()
        dxp = col2im_product(g2, kernel, padded_shape, strides, dilation)
        return [crop_spatial(dxp, pads)], grads


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
    ``groups`` (Conv1D/2D) after ``dilation_rate``."""
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


# -- transposed convolution -----------------------------------------------------


@register
class Conv2DTranspose(_Conv):
    """Transposed 2D convolution (sometimes called deconvolution): upsamples images.

    Input shape: (batch, rows, cols, channels). Output shape: (batch, new_rows,
    new_cols, filters), ``rows * strides`` with padding "same". Kernel
    (kh, kw, filters, channels) as in Keras, bias (filters,).
    """

    TYPE = "Conv2DTranspose"
    RANK = 2
    PARAMS = _conv_params(
        2,
        ("valid", "same"),
        "valid: every window placement; same: output = input * strides",
        IntTuple(
            "output_padding",
            None,
            "extra rows/cols at the end of the output (each < strides); null: Keras's default",
            length=2,
            min=0,
            optional=True,
        ),
    )
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

    def check_config(self):
        super().check_config()
        extra, strides = self.config["output_padding"], self.sizes()[1]
        if extra is not None and any(e >= s for e, s in zip(extra, strides, strict=True)):
            raise ParamError(
                f"{self.TYPE}: each output_padding must be smaller than its strides",
                "output_padding",
            )

    def crops(self) -> Pads:
        """(before, after) crop of the full output per spatial axis (negative: zeros added)."""
        extra = self.config["output_padding"] or [None] * self.RANK
        padding = self.config["padding"]
        return [
            transpose_crops(k, s, d, padding, e)
            for k, s, d, e in zip(*self.sizes(), extra, strict=True)
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
        kernel = (*k.shape[:-2], k.shape[-1], k.shape[-2])  # (kh, kw, filters, channels)
        return [WeightSpec(k.name, kernel, k.initializer, True, k.regularizer), *specs[1:]]

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        kernel = weights["kernel"]  # (kh, kw, filters, channels)
        n_in, n_out = kernel.shape[-1], kernel.shape[-2]
        x2 = x.reshape(-1, n_in)
        # per offset, the stamp of every input pixel: x @ kernel[offset].T
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
        taps = np.moveaxis(kernel, -1, 0).reshape(kernel.shape[-1], -1)  # (in, kh * kw * filters)
        gfull = crop_spatial(grad, [(-b, -a) for b, a in self.crops()])
        _, strides, dilation = self.sizes()
        gcols = im2col(gfull, kernel.shape[:-2], strides, dilation, x_shape[1:-1])
        dtaps = (x2.T @ gcols).reshape(kernel.shape[-1], *kernel.shape[:-1])
        grads = {"kernel": np.ascontiguousarray(np.moveaxis(dtaps, 0, -1))}
        if "bias" in weights:
            grads["bias"] = channel_sums(grad.reshape(-1, kernel.shape[-2]))
        return [(gcols @ taps.T).reshape(x_shape)], grads


# -- upsampling -----------------------------------------------------------------


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


def _scaled(dim: int | None, factor: int) -> int | None:
    return None if dim is None else dim * factor


@register
class UpSampling1D(Layer):
    """Repeats each step ``size`` times.

    Input shape: (batch, steps, features). Output shape: (batch, steps * size, features).
    """

    TYPE = "UpSampling1D"
    CATEGORY = "Convolution"
    PARAMS = (Int("size", 2, "how many times each step is repeated", min=1),)
    KEY_PARAMS = ("size",)
    EXAMPLES = (example((4, 3)), example((5, 2), size=3))

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, 2, self.TYPE)
        return (_scaled(shape[0], self.config["size"]), shape[1])

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        return np.repeat(x, self.config["size"], axis=1), None

    def _backward(self, weights, cache, grad):
        n, m, c = grad.shape
        size = self.config["size"]
        return [grad.reshape(n, m // size, size, c).sum(axis=2)], {}


@register
class UpSampling2D(Layer):
    """Enlarges images by repeating rows and columns, or by bilinear interpolation.

    Input shape: (batch, rows, cols, channels). Output shape: (batch,
    rows * size[0], cols * size[1], channels).
    """

    TYPE = "UpSampling2D"
    CATEGORY = "Convolution"
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

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, 3, self.TYPE)
        sh, sw = self.config["size"]
        return (_scaled(shape[0], sh), _scaled(shape[1], sw), shape[2])

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        n, h, w, c = x.shape
        sh, sw = self.config["size"]
        if self.config["interpolation"] == "nearest":
            wide = np.broadcast_to(x[:, :, None, :, None, :], (n, h, sh, w, sw, c))
            return wide.reshape(n, h * sh, w * sw, c), None
        rows = _linear_upsample(x.reshape(n, h, w * c), sh)
        both = _linear_upsample(rows.reshape(n * h * sh, w, c), sw)
        return both.reshape(n, h * sh, w * sw, c), None

    def _backward(self, weights, cache, grad):
        n, hh, ww, c = grad.shape
        sh, sw = self.config["size"]
        h, w = hh // sh, ww // sw
        if self.config["interpolation"] == "nearest":
            return [grad.reshape(n, h, sh, w, sw, c).sum(axis=(2, 4))], {}
        cols = _linear_upsample_grad(grad.reshape(n * hh, ww, c), sw)
        rows = _linear_upsample_grad(cols.reshape(n, hh, w * c), sh)
        return [rows.reshape(n, h, w, c)], {}

"""Convolution blocks: Conv1D, Conv2D, Conv2DTranspose, UpSampling1D, UpSampling2D.

Images are channels-last: ``(batch, steps, channels)`` and ``(batch, rows,
cols, channels)``. A convolution is im2col (a strided window view copied to a
``(batch * positions, kernel_positions * channels)`` matrix) and one matrix
product; its input gradient is col2im, one slice-add per kernel offset. The
transposed convolution is the same pair of operations the other way round.
The copies and slice-adds around the products run on parts of the batch in a
few threads (:func:`over_batch`), as the products do inside BLAS. The window
helpers here are shared with :mod:`nodenet.engine.layers.pooling`.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import as_strided

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
from nodenet.engine.params import Bool, Choice, Int, IntTuple
from nodenet.errors import ParamError, ShapeError

Pads = list[tuple[int, int]]  # (before, after) per spatial axis

# -- element-wise work over parts of the batch, on several cores --------------------

_PARALLEL_MIN = 1 << 18  # elements: below this, starting threads costs more than it saves
_workers: dict[tuple[int, int], ThreadPoolExecutor] = {}  # by (process id, size)


def thread_count() -> int:
    """Threads for element-wise work: OMP_NUM_THREADS or OPENBLAS_NUM_THREADS, else the cores."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return min(os.cpu_count() or 1, 8)


def over_batch(work: Callable[[slice], object], batch: int, size: int) -> None:
    """Run ``work(part)`` on slices ``part`` that split ``range(batch)``, in parallel.

    numpy releases the GIL inside copies and ufunc loops, so element-wise work
    on disjoint parts of the batch runs on several cores, like the matrix
    products do. ``size`` (elements touched) below a threshold, or one thread,
    runs ``work`` once here on the whole batch. Results do not depend on the split.
    """
    threads = min(thread_count(), batch)
    if threads < 2 or size < _PARALLEL_MIN:
        work(slice(0, batch))
        return
    key = (os.getpid(), threads - 1)  # a forked child needs threads of its own
    if key not in _workers:
        _workers[key] = ThreadPoolExecutor(threads - 1, thread_name_prefix="nodenet")
    bounds = [batch * i // threads for i in range(threads + 1)]
    parts = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    pending = [_workers[key].submit(work, part) for part in parts[1:]]
    work(parts[0])
    for future in pending:
        future.result()


# -- window geometry, shared with pooling ------------------------------------


def output_length(
    length: int | None, window: int, stride: int, padding: str, dilation: int = 1
) -> int | None:
    """Positions of a (dilated) window along one axis, as Keras computes them.

    ``padding`` is ``"valid"``, ``"same"`` or ``"causal"``; ``None`` stays ``None``.
    A valid result below 1 means the window does not fit.
    """
    if length is None:
        return None
    span = (window - 1) * dilation + 1
    if padding == "valid":
        return (length - span) // stride + 1
    return (length - 1) // stride + 1


def same_pads(length: int, window: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras's "same" padding of one axis: split evenly, the odd one at the end."""
    span = (window - 1) * dilation + 1
    out = (length - 1) // stride + 1
    total = max(0, (out - 1) * stride + span - length)
    return total // 2, total - total // 2


def pad_spatial(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """``x`` (batch, *spatial, channels) padded with ``value``; ``x`` itself if no padding."""
    if not any(before or after for before, after in pads):
        return x
    spatial = [n + b + a for n, (b, a) in zip(x.shape[1:-1], pads, strict=True)]
    out = np.full((x.shape[0], *spatial, x.shape[-1]), value, dtype=x.dtype)
    inner = tuple(slice(b, b + n) for n, (b, _) in zip(x.shape[1:-1], pads, strict=True))
    out[(slice(None), *inner)] = x
    return out


def crop_spatial(x: np.ndarray, crops: Pads) -> np.ndarray:
    """``x`` (batch, *spatial, channels) cropped; a negative amount pads with zeros.

    ``crop_spatial(g, [(-b, -a), ...])`` is the adjoint of ``crop_spatial(x, [(b, a), ...])``,
    which makes it the backward of both padding and cropping.
    """
    x = pad_spatial(x, [(max(-b, 0), max(-a, 0)) for b, a in crops])
    inner = tuple(
        slice(max(b, 0), n - max(a, 0)) for n, (b, a) in zip(x.shape[1:-1], crops, strict=True)
    )
    return x[(slice(None), *inner)]


def offset_slices(offset, strides, dilation, out) -> tuple[slice, ...]:
    """The spatial slices of a padded input that kernel ``offset`` meets at every position."""
    return tuple(
        slice(o * d, o * d + s * (m - 1) + 1, s)
        for o, s, d, m in zip(offset, strides, dilation, out, strict=True)
    )


def window_view(xp: np.ndarray, kernel, strides, dilation, out) -> np.ndarray:
    """A read-only view (batch, *out, *kernel, channels) of every window of ``xp``."""
    sn, *ss, sc = xp.strides
    shape = (xp.shape[0], *out, *kernel, xp.shape[-1])
    steps = (
        sn,
        *(s * st for s, st in zip(ss, strides, strict=True)),
        *(s * d for s, d in zip(ss, dilation, strict=True)),
        sc,
    )
    return as_strided(xp, shape, steps, writeable=False)


def im2col(xp: np.ndarray, kernel, strides, dilation, out, ones: bool = False) -> np.ndarray:
    """Windows of ``xp`` as a matrix (batch * prod(out), prod(kernel) * channels).

    With ``ones`` a last column of ones is appended, so that one matrix product
    with ``[kernel; bias]`` also adds the bias.
    """
    view = window_view(xp, kernel, strides, dilation, out)
    width = math.prod(view.shape[1 + len(out) :])
    cols = np.empty((xp.shape[0] * math.prod(out), width + ones), dtype=xp.dtype)
    if ones:
        cols[:, -1] = 1
    target = cols[:, :width].reshape(view.shape)  # splitting axes: a view, written in place
    over_batch(lambda part: np.copyto(target[part], view[part]), len(xp), cols.size)
    return cols


def col2im(blocks: np.ndarray, padded_shape, kernel, strides, dilation) -> np.ndarray:
    """Adjoint of :func:`im2col`: sum per-offset blocks into an image.

    ``blocks`` is (prod(kernel), batch, *out, channels): what each kernel
    offset contributes at every output position, in row-major offset order.
    Each block is contiguous, so each of the prod(kernel) slice-adds is fast.
    """
    out = blocks.shape[2:-1]
    image = np.zeros(padded_shape, dtype=blocks.dtype)
    wheres = [(slice(None), *offset_slices(o, strides, dilation, out)) for o in np.ndindex(*kernel)]

    def add(part: slice) -> None:
        part_image = image[part]
        for block, where in zip(blocks, wheres, strict=True):
            part_image[where] += block[part]

    over_batch(add, padded_shape[0], blocks.size)
    return image


def per_offset_product(a: np.ndarray, kernel: np.ndarray, shape) -> np.ndarray:
    """``a`` (rows, k) times each offset's (k, n) matrix of ``kernel`` (*window, n, k).

    Returns (prod(window), *shape, n): one contiguous block per kernel offset.
    """
    window, n, k = kernel.shape[:-2], kernel.shape[-2], kernel.shape[-1]
    stack = kernel.reshape(-1, n, k).transpose(0, 2, 1)  # (offsets, k, n)
    return np.matmul(a, stack).reshape(math.prod(window), *shape, n)


def channel_sums(g2: np.ndarray) -> np.ndarray:
    """Column sums of (rows, channels) as one matrix-vector product (a bias gradient)."""
    return np.ones(g2.shape[0], dtype=g2.dtype) @ g2


# -- convolutions ---------------------------------------------------------------


def _as_tuple(value, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, list) else (value,) * rank


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
        return tuple(
            _as_tuple(c[k], self.RANK) for k in ("kernel_size", "strides", "dilation_rate")
        )

    def check_config(self):
        _, strides, dilation = self.sizes()
        if max(strides) > 1 and max(dilation) > 1:
            raise ParamError(
                f"{self.TYPE}: strides > 1 cannot be combined with dilation_rate > 1",
                "dilation_rate",
            )

    def pads(self, spatial) -> Pads:
        """(before, after) zero padding per spatial axis, as Keras applies it."""
        kernel, strides, dilation = self.sizes()
        padding = self.config["padding"]
        if padding == "valid":
            return [(0, 0)] * self.RANK
        if padding == "causal":
            return [((kernel[0] - 1) * dilation[0], 0)]
        return [same_pads(*a) for a in zip(spatial, kernel, strides, dilation, strict=True)]

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
        return (*out, self.config["filters"])

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        n_in = known(shape[-1], f"{self.TYPE}'s channel axis", shape)
        c = self.config
        kernel = (*self.sizes()[0], n_in, c["filters"])
        specs = [
            WeightSpec("kernel", kernel, c["kernel_initializer"], True, c["kernel_regularizer"])
        ]
        if c["use_bias"]:
            bias = (c["filters"],)
            specs.append(
                WeightSpec("bias", bias, c["bias_initializer"], True, c["bias_regularizer"])
            )
        return specs

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        kernel = weights["kernel"]
        pads = self.pads(x.shape[1:-1])
        xp = pad_spatial(x, pads)
        _, strides, dilation = self.sizes()
        out = self.infer_shape([x.shape[1:]])[:-1]
        # with a bias, cols gets a column of ones and the matrix a last row: the bias
        matrix = kernel.reshape(-1, kernel.shape[-1])  # (kh * kw * in, out)
        if "bias" in weights:
            matrix = np.vstack([matrix, weights["bias"]])
        cols = im2col(xp, kernel.shape[:-2], strides, dilation, out, ones="bias" in weights)
        z = cols @ matrix
        return z.reshape(x.shape[0], *out, kernel.shape[-1]), (cols, xp.shape, pads)

    def _backward(self, weights, cache, grad):
        cols, padded_shape, pads = cache
        kernel = weights["kernel"]
        g2 = grad.reshape(-1, kernel.shape[-1])
        both = cols.T @ g2  # (kh * kw * in [+ 1], out): the bias row comes with the ones column
        grads = {"kernel": both[: kernel.size // kernel.shape[-1]].reshape(kernel.shape)}
        if "bias" in weights:
            grads["bias"] = both[-1].copy()
        # (kh, kw, in, out): per offset, dx = grad @ kernel[offset].T
        blocks = per_offset_product(g2, kernel, grad.shape[:-1])
        _, strides, dilation = self.sizes()
        dxp = col2im(blocks, padded_shape, kernel.shape[:-2], strides, dilation)
        return [crop_spatial(dxp, pads)], grads


def _conv_params(rank: int, paddings: tuple[str, ...], padding_help: str, *extra):
    """Keras's convolution arguments in Keras order; ``extra`` goes after ``padding``."""
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
    )
    EXAMPLES = (
        example((7, 2), filters=3, kernel_size=3),
        example((9, 3), filters=2, kernel_size=4, strides=2, padding="same"),
        example(
            (8, 2), filters=2, kernel_size=3, dilation_rate=2, padding="causal", activation="tanh"
        ),
        example((10, 1), filters=4, kernel_size=2, strides=3, use_bias=False),
        example((6, 3), filters=2, kernel_size=3, padding="same", dilation_rate=2),
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
        2, ("valid", "same"), "valid: no padding; same: output size = ceil(input / strides)"
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
    )


# -- transposed convolution -----------------------------------------------------


def transpose_crops(
    kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> tuple[int, int]:
    """How much to cut (negative: add) at each end of a full transposed convolution.

    The full output of one axis has ``(length - 1) * stride + span`` positions;
    Keras keeps the window its ``padding`` and ``output_padding`` define.
    """
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        before, after = span - 1, span - 1 + extra
    else:
        if output_padding is None:
            total = stride + span - 2
        else:
            total = span + span % 2 - 2 + output_padding
        before = min(total // 2 + total % 2, span - 1)
        after = total - before
    return span - 1 - before, span - 1 - after


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
        blocks = per_offset_product(x2, kernel, x.shape[:-1])
        full = (x.shape[0], *self.full_shape(x.shape[1:-1]), n_out)
        _, strides, dilation = self.sizes()
        z = crop_spatial(col2im(blocks, full, kernel.shape[:-2], strides, dilation), self.crops())
        z = z + weights["bias"] if "bias" in weights else np.ascontiguousarray(z)
        return z, (x2, x.shape)

    def _backward(self, weights, cache, grad):
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

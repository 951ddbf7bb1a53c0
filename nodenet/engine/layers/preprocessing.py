"""Keras's preprocessing blocks that models carry inside: Normalization, Resizing, CenterCrop.

Normalization shifts and scales features by a mean and variance, either given as
numbers (constants, no weights) or learned from the training data: its
non-trainable weights ``mean``, ``variance`` and ``count`` are set before training
by :func:`nodenet.engine.adapt.adapt`, as ``layer.adapt(x_train)`` sets them in Keras.
Resizing and CenterCrop change the height and width of channels-last images with
Keras's half-pixel-centre interpolation (its TensorFlow/JAX behaviour, which its
torch backend shares for these modes), written as one interpolation matrix per axis
so the backward is the transposed product.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nodenet.engine.layer import (
    Example,
    Layer,
    Shape,
    WeightSpec,
    expect_rank,
    fmt_shape,
    register,
)
from nodenet.engine.params import Bool, Choice, Float, Int, Param, _as_float, _is_int
from nodenet.errors import ParamError, ShapeError

EPSILON = 1e-7  # Keras's backend.epsilon(): the smallest standard deviation divided by
MAX_AXES = 8


# -- parameter descriptors ---------------------------------------------------------------------


class Axes(Param):
    """Normalization's ``axis``: one axis, a list of them, or ``null`` (one scalar mean and
    variance). Counted with the batch as axis 0; a one-element list is written as its axis
    and an empty one as ``null`` (Keras writes ``axis`` out as a list)."""

    kind: ClassVar[str] = "any"

    def coerce(self, value: Any) -> Any:
        if value is None or _is_int(value):
            return value
        if (
            isinstance(value, list | tuple)
            and len(value) <= MAX_AXES
            and all(_is_int(v) and abs(v) <= MAX_AXES for v in value)
            and len(set(value)) == len(value)
        ):
            return None if not value else value[0] if len(value) == 1 else list(value)
        raise self.fail(self.describe(), value)

    def describe(self) -> str:
        return "an integer axis, a list of distinct integer axes, or null"


class Statistic(Param):
    """``null`` or a number, or a (nested, rectangular) list of numbers: Normalization's given
    ``mean`` / ``variance``."""

    kind: ClassVar[str] = "any"

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None
        number = _as_float(value)
        if number is not None:
            return number
        if isinstance(value, list | tuple) and value:
            try:
                array = np.array(value, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                raise self.fail(self.describe(), value) from None
            if array.size and array.ndim <= MAX_AXES and np.isfinite(array).all():
                nested = _nested_numbers(value)
                if nested:
                    return array.tolist()
        raise self.fail(self.describe(), value)

    def describe(self) -> str:
        return "null, a finite number or a (nested) list of them"


def _nested_numbers(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return bool(value) and all(_nested_numbers(v) for v in value)
    return _as_float(value) is not None


# -- Normalization -----------------------------------------------------------------------------


@register
class Normalization(Layer):
    """Normalizes features: ``(x - mean) / max(sqrt(variance), 1e-7)``, per index of ``axis``.

    ``mean`` and ``variance`` given as numbers are constants (the block has no
    weights). Left ``null``, they are the block's non-trainable weights ``mean`` and
    ``variance`` (shaped like the kept axes; plus ``count``, kept for Keras), set before
    training from the training split as ``layer.adapt(data)`` sets them in Keras,
    unless loaded from a weights file. ``invert`` applies the inverse:
    ``mean + x * max(sqrt(variance), 1e-7)``. Input shape: any with known sizes on
    ``axis``. Output shape: the input shape.
    """

    TYPE = "Normalization"
    CATEGORY = "Normalization"
    PARAMS = (
        Axes("axis", -1, "axes with their own mean and variance (null: one for all)"),
        Statistic("mean", None, "the mean to subtract (null: learned from the training data)"),
        Statistic("variance", None, "the variance to divide by (null: learned with the mean)"),
        Bool("invert", False, "apply the inverse: turn normalized values back"),
    )
    KEY_PARAMS = ("axis",)
    EXAMPLES = (
        Example({}, ((4,),)),
        Example({"axis": None}, ((3, 2),)),
        Example({"axis": [1, 2]}, ((2, 3, 2),)),
        Example({"axis": -2, "invert": True}, ((3, 4),)),
        Example({"mean": [0.5, -1.0, 2.0], "variance": [4.0, 0.25, 1.0]}, ((2, 3),)),
        Example({"axis": None, "mean": 3.0, "variance": 2.0, "invert": True}, ((5,),)),
        Example({"axis": [1, 2], "mean": [1.0, 2.0], "variance": [0.5, 3.0]}, ((3, 2),)),
    )

    def check_config(self):
        c = self.config
        if (c["mean"] is None) != (c["variance"] is None):
            raise ParamError("give both mean and variance, or neither (to learn them)", "mean")
        if c["mean"] is None:
            return
        mean, variance = np.asarray(c["mean"]), np.asarray(c["variance"])
        if mean.shape != variance.shape:
            raise ParamError(
                f"mean has shape {mean.shape} but variance has shape {variance.shape}", "variance"
            )
        if mean.ndim > len(self._axes()):
            raise ParamError(
                f"mean has {mean.ndim} dimensions, more than the {len(self._axes())} axes "
                "normalized over",
                "mean",
            )
        if (variance < 0).any():
            raise ParamError("variance must not be negative", "variance")

    def _axes(self) -> tuple[int, ...]:
        axis = self.config["axis"]
        return () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)

    def keep_axes(self, ndim: int) -> tuple[int, ...]:
        """The kept axes of an ``ndim``-D input (batch included), non-negative and sorted."""
        return tuple(sorted(a + ndim if a < 0 else a for a in self._axes()))

    def adapts(self) -> bool:
        """Whether the mean and variance are weights learned from data (not given)."""
        return self.config["mean"] is None

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        ndim = len(shape) + 1
        for axis in self._axes():
            if not -ndim <= axis < ndim:
                raise ShapeError(
                    f"Normalization axis={axis} is out of range for the input {fmt_shape(shape)}"
                )
        keep = self.keep_axes(ndim)
        if len(set(keep)) != len(keep):
            raise ShapeError(f"Normalization axis names an axis twice: {list(self._axes())}")
        if 0 in keep:
            raise ShapeError("Normalization cannot keep the batch axis (axis 0) apart")
        self._kept_shape(shape)  # Keras needs every kept axis's size
        if not self.adapts():
            self._broadcast(shape, np.float64)
        return tuple(shape)

    def _kept_shape(self, shape: Shape) -> tuple[int, ...]:
        keep = self.keep_axes(len(shape) + 1)
        sizes = tuple(shape[a - 1] for a in keep)
        if None in sizes:
            raise ShapeError(
                f"Normalization needs known sizes on axis {list(self._axes())}, "
                f"got {fmt_shape(shape)}"
            )
        return sizes

    def _broadcast_shape(self, shape: Shape) -> list[int]:
        keep = self.keep_axes(len(shape) + 1)
        sizes = self._kept_shape(shape)
        full = [1] * (len(shape) + 1)
        for axis, size in zip(keep, sizes, strict=True):
            full[axis] = size
        return full

    def _broadcast(self, shape: Shape, dtype) -> tuple[np.ndarray, np.ndarray]:
        """The given mean and variance, shaped to broadcast over a batch (as Keras aligns
        them with the kept axes from the right)."""
        full = self._broadcast_shape(shape)
        keep = self.keep_axes(len(shape) + 1)
        out = []
        for key in ("mean", "variance"):
            value = np.asarray(self.config[key], dtype=dtype)
            expanded = [1] * len(full)
            for i in range(1, value.ndim + 1):
                expanded[keep[-i]] = value.shape[-i]
            try:
                out.append(np.broadcast_to(value.reshape(expanded), full))
            except ValueError:
                raise ShapeError(
                    f"Normalization {key} of shape {value.shape} does not fit the sizes "
                    f"{list(self._kept_shape(shape))} of axis {list(self._axes())} of the input "
                    f"{fmt_shape(shape)}"
                ) from None
        return out[0], out[1]

    def weight_specs(self, input_shapes):
        if not self.adapts():
            return []
        sizes = self._kept_shape(input_shapes[0])
        return [
            WeightSpec("mean", sizes, "zeros", trainable=False),
            WeightSpec("variance", sizes, "ones", trainable=False),
            WeightSpec("count", (), "zeros", trainable=False),
        ]

    def adapted(self, mean: np.ndarray, variance: np.ndarray) -> dict[str, np.ndarray]:
        """The weights after adapting to data of this ``mean`` and ``variance`` (kept-axes
        shape). ``count`` stays 0, as Keras 3's adapt leaves it."""
        return {"mean": mean, "variance": variance, "count": np.zeros((), mean.dtype)}

    def _statistics(self, weights, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape = x.shape[1:]
        if self.adapts():
            full = self._broadcast_shape(shape)
            return weights["mean"].reshape(full), weights["variance"].reshape(full)
        return self._broadcast(shape, x.dtype)

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        if x.dtype.kind != "f":  # Keras casts to its float dtype first
            x = x.astype(np.float32)
        mean, variance = self._statistics(weights, x)
        std = np.maximum(np.sqrt(variance.astype(x.dtype)), x.dtype.type(EPSILON))
        if self.config["invert"]:
            return mean.astype(x.dtype) + x * std, std
        return (x - mean.astype(x.dtype)) / std, std

    def _backward(self, weights, std, grad):
        return [grad * std if self.config["invert"] else grad / std], {}


# -- Resizing and CenterCrop -------------------------------------------------------------------


def crop_to_aspect(height: int, width: int, target_h: int, target_w: int) -> tuple[int, ...]:
    """The largest centred box of the target's aspect ratio: (top, left, height, width), by
    Keras's formula (``int(float(...))``, at least one pixel)."""
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    return int(float(height - crop_h) / 2), int(float(width - crop_w) / 2), crop_h, crop_w


def pad_to_aspect(height: int, width: int, target_h: int, target_w: int) -> tuple[int, int]:
    """Rows and columns of fill added on each side to reach the target's aspect ratio, by
    Keras's formula (the same amount before and after)."""
    pad_h = max(height, int(float(width * target_h) / target_w))
    pad_w = max(width, int(float(height * target_w) / target_h))
    return int(float(pad_h - height) / 2), int(float(pad_w - width) / 2)


def interpolation_matrix(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """(n_out, n_in) weights of one axis resized with half-pixel centres.

    ``bilinear``: output ``o`` samples ``(o + 0.5) * n_in / n_out - 0.5``, clamped at 0,
    between its two neighbours. ``nearest``: ``floor((o + 0.5) * n_in / n_out)``, computed
    exactly on integers (Keras's torch backend, ``nearest-exact``, and JAX agree).
    """
    out = np.arange(n_out)
    matrix = np.zeros((n_out, n_in))
    if mode == "nearest":
        matrix[out, np.minimum((2 * out + 1) * n_in // (2 * n_out), n_in - 1)] = 1.0
        return matrix
    source = np.maximum((out + 0.5) * (n_in / n_out) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(int), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = source - low
    np.add.at(matrix, (out, low), 1.0 - frac)
    np.add.at(matrix, (out, high), frac)
    return matrix


def resize_images(x: np.ndarray, height: int, width: int, mode: str) -> tuple[np.ndarray, Any]:
    """(batch, h, w, c) -> (batch, height, width, c), and the matrices for the backward."""
    b, h, w, c = x.shape
    rows = interpolation_matrix(h, height, mode).astype(x.dtype)
    cols = interpolation_matrix(w, width, mode).astype(x.dtype)
    out = (rows @ x.reshape(b, h, w * c)).reshape(b * height, w, c)  # matrix products (BLAS)
    out = cols @ out
    return out.reshape(b, height, width, c), (rows, cols)


def resize_grad(grad: np.ndarray, matrices: Any) -> np.ndarray:
    """Backward of :func:`resize_images`: the transposed products."""
    rows, cols = matrices
    b, height, width, c = grad.shape
    w = cols.shape[1]
    g = (cols.T @ grad.reshape(b * height, width, c)).reshape(b, height, w * c)
    return (rows.T @ g).reshape(b, rows.shape[1], w, c)


class _ImageSize(Layer):
    """Shared by Resizing and CenterCrop: ``height`` and ``width`` of channels-last images."""

    CATEGORY = "Core"
    KEY_PARAMS = ("height", "width")

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, 3, self.TYPE)
        return (self.config["height"], self.config["width"], shape[2])

    def window(self, height: int, width: int) -> tuple[int, int, int, int]:
        """The box (top, left, rows, columns) taken from an image of ``height`` x ``width``
        (after any padding) and resized to the output."""
        raise NotImplementedError

    def pads(self, height: int, width: int) -> tuple[int, int]:
        """Rows and columns of fill added on each side before the box is taken."""
        return 0, 0

    def _mode(self) -> str:
        return "bilinear"

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        if x.dtype.kind != "f":
            x = x.astype(np.float32)
        h, w = x.shape[1:3]
        pad_h, pad_w = self.pads(h, w)
        if pad_h or pad_w:
            fill = self.config.get("fill_value", 0.0)
            x = np.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)), constant_values=fill)
        top, left, rows, cols = self.window(*x.shape[1:3])
        box = x[:, top : top + rows, left : left + cols]
        target = (self.config["height"], self.config["width"])
        geometry = (x.shape, top, left, pad_h, pad_w)
        if (rows, cols) == target:  # nothing to interpolate: the identity
            return np.ascontiguousarray(box), (geometry, None)
        out, matrices = resize_images(box, *target, self._mode())
        return out, (geometry, matrices)

    def _backward(self, weights, cache, grad):
        (shape, top, left, pad_h, pad_w), matrices = cache
        g = grad if matrices is None else resize_grad(grad, matrices)
        dx = np.zeros(shape, dtype=grad.dtype)
        dx[:, top : top + g.shape[1], left : left + g.shape[2]] = g
        return [dx[:, pad_h : shape[1] - pad_h, pad_w : shape[2] - pad_w]], {}


@register
class Resizing(_ImageSize):
    """Resizes images to ``height`` x ``width`` (half-pixel centres, as Keras).

    ``crop_to_aspect_ratio`` first takes the largest centred box of the target's
    aspect ratio; ``pad_to_aspect_ratio`` instead pads both sides with ``fill_value``
    to it. Input shape: (h, w, channels). Output shape: (height, width, channels).
    Keras's other interpolations (bicubic, lanczos, area), ``antialias=True`` and
    channels-first data are not supported.
    """

    TYPE = "Resizing"
    PARAMS = (
        Int("height", 32, "output height", min=1),
        Int("width", 32, "output width", min=1),
        Choice("interpolation", "bilinear", "how pixels are sampled", ("bilinear", "nearest")),
        Bool("crop_to_aspect_ratio", False, "crop to the output's aspect ratio first"),
        Bool("pad_to_aspect_ratio", False, "pad to the output's aspect ratio first"),
        Choice("fill_mode", "constant", "how the padding is filled", ("constant",)),
        Float("fill_value", 0.0, "the value padding is filled with"),
    )
    KEY_PARAMS = ("height", "width", "interpolation")
    EXAMPLES = (
        Example({"height": 5, "width": 3}, ((3, 4, 2),)),
        Example({"height": 2, "width": 3, "interpolation": "nearest"}, ((5, 7, 1),)),
        Example({"height": 4, "width": 4, "crop_to_aspect_ratio": True}, ((3, 6, 2),)),
        Example(
            {"height": 3, "width": 2, "interpolation": "nearest", "crop_to_aspect_ratio": True},
            ((4, 5, 1),),
        ),
        Example({"height": 4, "width": 4, "pad_to_aspect_ratio": True}, ((2, 5, 1),)),
        Example(
            {"height": 6, "width": 3, "pad_to_aspect_ratio": True, "fill_value": 0.5},
            ((3, 3, 2),),
        ),
        Example({"height": 7, "width": 6, "interpolation": "nearest"}, ((3, 4, 1),)),
    )

    def check_config(self):
        if self.config["crop_to_aspect_ratio"] and self.config["pad_to_aspect_ratio"]:
            raise ParamError(
                "crop_to_aspect_ratio and pad_to_aspect_ratio cannot both be true",
                "pad_to_aspect_ratio",
            )

    def _mode(self) -> str:
        return self.config["interpolation"]

    def pads(self, height, width):
        if not self.config["pad_to_aspect_ratio"]:
            return 0, 0
        return pad_to_aspect(height, width, self.config["height"], self.config["width"])

    def window(self, height, width):
        if self.config["crop_to_aspect_ratio"]:
            return crop_to_aspect(height, width, self.config["height"], self.config["width"])
        return 0, 0, height, width


@register
class CenterCrop(_ImageSize):
    """Takes the centred ``height`` x ``width`` box of each image.

    An image smaller than the box on either side is instead cropped to the box's
    aspect ratio and resized to it (bilinear), as Keras does. Input shape:
    (h, w, channels). Output shape: (height, width, channels).
    """

    TYPE = "CenterCrop"
    PARAMS = (
        Int("height", 32, "height of the box kept", min=1),
        Int("width", 32, "width of the box kept", min=1),
    )
    EXAMPLES = (
        Example({"height": 2, "width": 3}, ((4, 5, 2),)),
        Example({"height": 3, "width": 3}, ((3, 6, 1),)),
        Example({"height": 4, "width": 2}, ((3, 5, 2),)),
        Example({"height": 5, "width": 6}, ((3, 4, 1),)),
    )

    def window(self, height, width):
        target_h, target_w = self.config["height"], self.config["width"]
        if height >= target_h and width >= target_w:
            return (height - target_h) // 2, (width - target_w) // 2, target_h, target_w
        return crop_to_aspect(height, width, target_h, target_w)

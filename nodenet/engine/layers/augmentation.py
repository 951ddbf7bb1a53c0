"""Keras's image augmentation blocks: RandomFlip, RandomRotation, RandomZoom,
RandomTranslation, RandomContrast, RandomBrightness and RandomCrop.

They take channels-last images (batch, height, width, channels) and, as in Keras,
change them only while training: at inference they pass the images on (RandomCrop
then takes the centred box of the target's aspect ratio, resized to it). While
training each image's transform is drawn from the run's seeded generator
(``ctx.rng``) with Keras's distributions and kept in the cache, so the backward is
exact for the transform drawn. ``seed`` is carried to exported code.

Rotation, zoom and translation resample with Keras's ``affine_transform`` (its
JAX and torch backends: ``map_coordinates`` with per-neighbour fill), written here
as a gather of up to four weighted taps per output pixel; the backward scatters the
gradient back through the same taps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nodenet.engine.layer import Example, Layer, expect_rank, register
from nodenet.engine.layers.augment_affine import (
    FILL_MODES,
    INTERPOLATIONS,
    affine_apply,
    affine_grad,
    affine_matrices,
    affine_taps,
)
from nodenet.engine.layers.preprocessing import crop_to_aspect, resize_grad, resize_images
from nodenet.engine.params import Choice, Float, Int, Param, _as_float
from nodenet.errors import ParamError


@dataclass(frozen=True)
class Factor(Param):
    """A number or a pair ``[lower, upper]`` (Keras's augmentation ``factor``); ``null``
    where the descriptor is optional. Bounds are checked by each block, as Keras does."""

    optional: bool = False
    kind: ClassVar[str] = "any"

    def coerce(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        number = _as_float(value)
        if number is not None:
            return number
        if isinstance(value, list | tuple) and len(value) == 2:
            pair = [_as_float(v) for v in value]
            if None not in pair:
                return pair
        raise self.fail(self.describe(), value)

    def describe(self) -> str:
        return "a finite number or a list of two" + (", or null" if self.optional else "")


@dataclass(frozen=True)
class ValueRange(Factor):
    """``[low, high]``: the range of the pixel values (Keras's ``value_range``)."""

    def coerce(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return super().coerce(value)
        raise self.fail(self.describe(), value)

    def describe(self) -> str:
        return "a list of two finite numbers [low, high]"


def _seed() -> Int:
    return Int("seed", None, "seed of the exported layer's random generator", min=0, optional=True)


def _value_range() -> ValueRange:
    return ValueRange("value_range", [0.0, 255.0], "[low, high] range of the pixel values")


def _check_images(layer: Layer, input_shapes) -> tuple:
    (shape,) = input_shapes
    expect_rank(shape, 3, layer.TYPE)
    return tuple(shape)


def _as_float_images(x: np.ndarray) -> np.ndarray:
    return x if x.dtype.kind == "f" else x.astype(np.float32)  # Keras casts to its float dtype


def _bounds(layer: Layer, key: str, low: float, high: float, *, open_low: bool = False):
    """``(lower, upper)`` of a factor checked against [low, high] as Keras checks it: a
    number ``f`` gives ``[-|f|, |f|]``, a pair is sorted."""
    value = layer.config[key]
    values = value if isinstance(value, list) else [value]
    for v in values:
        if v > high or v < low or (open_low and v == low):
            interval = f"{'(' if open_low else '['}{low:g}, {high:g}]"
            raise ParamError(f"{key} values must lie in {interval} (got {value})", key)
    if isinstance(value, list):
        return tuple(sorted(value))
    return -abs(value), abs(value)


class _AffineAugmentation(Layer):
    """Shared by the rotation, zoom and translation blocks: resampled while training."""

    CATEGORY = "Augmentation"

    def infer_shape(self, input_shapes):
        return _check_images(self, input_shapes)

    def draw(self, rng: np.random.Generator, b: int, h: int, w: int) -> np.ndarray:
        """The (b, 6) matrices of one batch's transforms."""
        raise NotImplementedError

    def _forward(self, weights, inputs, ctx):
        x = _as_float_images(inputs[0])
        if not ctx.training:
            return x, None
        b, h, w, _ = x.shape
        c = self.config
        taps = affine_taps(x.shape, self.draw(ctx.rng, b, h, w), c["interpolation"], c["fill_mode"])
        return affine_apply(x, taps, c["fill_value"]), taps

    def _backward(self, weights, taps, grad):
        return [grad if taps is None else affine_grad(grad, taps)], {}


def _fill_params() -> tuple:
    return (
        Choice("fill_mode", "reflect", "how points outside the image are filled", FILL_MODES),
        Choice("interpolation", "bilinear", "how pixels are sampled", INTERPOLATIONS),
        _seed(),
        Float("fill_value", 0.0, "the value outside the image when fill_mode is constant"),
    )


# -- the blocks ------------------------------------------------------------------------------


@register
class RandomFlip(Layer):
    """Flips images at random while training: left-right, top-bottom, or both.

    Input shape: (h, w, channels). Output shape: the same. Identity at inference.
    Each image is flipped with probability 0.5; with ``horizontal_and_vertical`` the
    one draw flips it both ways at once (a half-turn), as Keras's code does.
    """

    TYPE = "RandomFlip"
    CATEGORY = "Augmentation"
    PARAMS = (
        Choice(
            "mode",
            "horizontal_and_vertical",
            "which flips: left-right, top-bottom or both",
            ("horizontal", "vertical", "horizontal_and_vertical"),
        ),
        _seed(),
    )
    KEY_PARAMS = ("mode",)
    EXAMPLES = (
        Example({}, ((4, 5, 2),)),
        Example({"mode": "horizontal", "seed": 3}, ((3, 4, 1),)),
        Example({"mode": "vertical"}, ((4, 3, 3),)),
    )

    def infer_shape(self, input_shapes):
        return _check_images(self, input_shapes)

    def axes(self) -> tuple[int, ...]:
        """The image axes flipped (1: rows, top-bottom; 2: columns, left-right)."""
        mode = self.config["mode"]
        return {"horizontal": (2,), "vertical": (1,)}.get(mode, (1, 2))

    def _forward(self, weights, inputs, ctx):
        x = _as_float_images(inputs[0])
        if not ctx.training:
            return x, None
        flips = ctx.rng.random(x.shape[0]) <= 0.5  # Keras: uniform() <= 0.5
        out = x.copy()
        out[flips] = np.flip(x[flips], axis=self.axes())
        return out, flips

    def _backward(self, weights, flips, grad):
        if flips is None:
            return [grad], {}
        dx = grad.copy()
        dx[flips] = np.flip(grad[flips], axis=self.axes())
        return [dx], {}


@register
class RandomRotation(_AffineAugmentation):
    """Rotates images about their centre by a random angle while training.

    ``factor`` is a fraction of a full turn: ``0.1`` draws angles uniformly in
    [-36°, 36°], ``[-0.2, 0.3]`` in [-72°, 108°] (positive: counter-clockwise).
    Input shape: (h, w, channels). Output shape: the same. Identity at inference.
    """

    TYPE = "RandomRotation"
    PARAMS = (Factor("factor", 0.1, "largest rotation, as a fraction of a turn, or [low, high]"),)
    PARAMS += _fill_params()
    KEY_PARAMS = ("factor",)
    EXAMPLES = (
        Example({"factor": 0.1}, ((5, 4, 2),)),
        Example({"factor": [-0.2, 0.3], "fill_mode": "constant", "fill_value": 0.5}, ((4, 4, 1),)),
        Example({"factor": 0.5, "fill_mode": "wrap", "seed": 7}, ((3, 5, 2),)),
        Example({"factor": 0.25, "fill_mode": "nearest", "interpolation": "nearest"}, ((4, 3, 1),)),
    )

    def check_config(self):
        _bounds(self, "factor", -1.0, 1.0)

    def draw(self, rng, b, h, w):
        lower, upper = _bounds(self, "factor", -1.0, 1.0)
        degrees = rng.uniform(lower * 360.0, upper * 360.0, size=b)
        ones, zeros = np.ones(b), np.zeros(b)
        return affine_matrices(np.deg2rad(degrees), ones, ones, zeros, zeros, h, w)


@register
class RandomZoom(_AffineAugmentation):
    """Zooms images about their centre by a random factor while training.

    ``height_factor`` 0.2 scales the sampled height by a factor drawn in [0.8, 1.2]
    (above 1: zoomed out, showing more); ``[-0.3, -0.1]`` zooms in only.
    ``width_factor`` ``null`` keeps the aspect ratio (the height's draw is used).
    Input shape: (h, w, channels). Output shape: the same. Identity at inference.
    """

    TYPE = "RandomZoom"
    PARAMS = (
        Factor("height_factor", 0.1, "zoom range of the height (a fraction), or [low, high]"),
        Factor(
            "width_factor",
            None,
            "zoom range of the width, or null: the height's",
            optional=True,
        ),
    )
    PARAMS += _fill_params()
    KEY_PARAMS = ("height_factor", "width_factor")
    EXAMPLES = (
        Example({"height_factor": 0.2}, ((5, 4, 2),)),
        Example({"height_factor": [-0.3, -0.1], "width_factor": 0.4, "seed": 1}, ((4, 5, 1),)),
        Example(
            {"height_factor": 0.5, "fill_mode": "constant", "fill_value": -1.0},
            ((4, 4, 2),),
        ),
        Example(
            {"height_factor": [0.1, 0.5], "fill_mode": "wrap", "interpolation": "nearest"},
            ((3, 4, 1),),
        ),
    )

    def check_config(self):
        for key in ("height_factor", "width_factor"):
            if self.config[key] is not None:
                _bounds(self, key, -1.0, 1.0, open_low=True)

    def draw(self, rng, b, h, w):
        low, high = _bounds(self, "height_factor", -1.0, 1.0, open_low=True)
        zoom_y = rng.uniform(1.0 + low, 1.0 + high, size=b)
        zoom_x = zoom_y
        if self.config["width_factor"] is not None:
            low, high = _bounds(self, "width_factor", -1.0, 1.0, open_low=True)
            zoom_x = rng.uniform(1.0 + low, 1.0 + high, size=b)
        zeros = np.zeros(b)
        return affine_matrices(zeros, zoom_x, zoom_y, zeros, zeros, h, w)


@register
class RandomTranslation(_AffineAugmentation):
    """Shifts images by a random fraction of their height and width while training.

    ``height_factor`` 0.2 shifts by up to 20% of the height up or down; ``[-0.2, 0.1]``
    by 20% up to 10% down (positive: down, right). Input shape: (h, w, channels).
    Output shape: the same. Identity at inference.
    """

    TYPE = "RandomTranslation"
    PARAMS = (
        Factor("height_factor", 0.1, "largest vertical shift (fraction of the height)"),
        Factor("width_factor", 0.1, "largest horizontal shift (fraction of the width)"),
    )
    PARAMS += _fill_params()
    KEY_PARAMS = ("height_factor", "width_factor")
    EXAMPLES = (
        Example({"height_factor": 0.2, "width_factor": 0.2}, ((5, 4, 2),)),
        Example({"height_factor": [-0.5, 0.1], "width_factor": 0.0, "seed": 2}, ((4, 5, 1),)),
        Example(
            {"height_factor": 0.3, "width_factor": [0.2, 0.6], "fill_mode": "constant"},
            ((4, 4, 2),),
        ),
        Example(
            {"height_factor": 1.0, "width_factor": 0.5, "interpolation": "nearest"},
            ((3, 4, 1),),
        ),
    )

    def check_config(self):
        for key in ("height_factor", "width_factor"):
            _bounds(self, key, -1.0, 1.0)

    def draw(self, rng, b, h, w):
        low, high = _bounds(self, "height_factor", -1.0, 1.0)
        shift_y = rng.uniform(low, high, size=b) * h
        low, high = _bounds(self, "width_factor", -1.0, 1.0)
        shift_x = rng.uniform(low, high, size=b) * w
        zeros, ones = np.zeros(b), np.ones(b)
        return affine_matrices(zeros, ones, ones, -shift_x, -shift_y, h, w)


class _ColourAugmentation(Layer):
    """Shared by RandomContrast and RandomBrightness: one random draw per image, the
    result clipped to ``value_range`` while training."""

    CATEGORY = "Augmentation"
    KEY_PARAMS = ("factor",)

    def infer_shape(self, input_shapes):
        return _check_images(self, input_shapes)

    def check_config(self):
        self.factor_range()

    def factor_range(self) -> tuple[float, float]:
        raise NotImplementedError

    def clip_range(self) -> tuple[float, float]:
        low, high = self.config["value_range"]
        return low, high

    def _clip(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``y`` clipped to the value range, and where the gradient passes (inside it)."""
        low, high = (y.dtype.type(v) for v in self.clip_range())
        inside = (y >= low) & (y <= high)
        return np.clip(y, low, high), inside


@register
class RandomContrast(_ColourAugmentation):
    """Scales each image's contrast by a random factor while training.

    Every channel moves away from (or towards) its mean over the image:
    ``(x - mean) * f + mean``, clipped to ``value_range``. Keras draws ``f`` in
    [1 - lower, 1 + upper]: a number ``factor`` gives lower 0 (contrast is only
    raised, up to 1 + factor, as Keras's code does); ``[a, b]`` gives [1 - a, 1 + b].
    Input shape: (h, w, channels). Output shape: the same. Identity at inference.
    """

    TYPE = "RandomContrast"
    PARAMS = (
        Factor("factor", 0.2, "contrast change, in [0, 1], or [lower, upper]"),
        _value_range(),
        _seed(),
    )
    EXAMPLES = (
        Example({"factor": 0.5, "value_range": [-10.0, 10.0]}, ((4, 5, 2),)),
        Example({"factor": [0.4, 0.3], "value_range": [-3.0, 3.0], "seed": 5}, ((3, 3, 3),)),
        Example({"factor": 0.2}, ((4, 4, 1),)),
    )

    def factor_range(self):
        value = self.config["factor"]
        values = value if isinstance(value, list) else [value]
        if any(not 0.0 <= v <= 1.0 for v in values):
            raise ParamError(f"factor values must lie in [0, 1] (got {value})", "factor")
        return tuple(sorted(value)) if isinstance(value, list) else (0.0, value)

    def _forward(self, weights, inputs, ctx):
        x = _as_float_images(inputs[0])
        if not ctx.training:
            return x, None
        lower, upper = self.factor_range()
        f = ctx.rng.uniform(1.0 - lower, 1.0 + upper, size=(x.shape[0], 1, 1, 1))
        f = f.astype(x.dtype)
        mean = np.mean(np.mean(x, axis=1, keepdims=True), axis=2, keepdims=True)
        out, inside = self._clip((x - mean) * f + mean)
        return out, (f, inside)

    def _backward(self, weights, cache, grad):
        if cache is None:
            return [grad], {}
        f, inside = cache
        g = grad * inside
        return [g * f + (1 - f) * np.mean(g, axis=(1, 2), keepdims=True)], {}


@register
class RandomBrightness(_ColourAugmentation):
    """Adds a random brightness shift to each image while training.

    The shift is a fraction of ``value_range``'s width drawn in [-factor, factor]
    (or [low, high] for a pair), and the result is clipped to ``value_range``.
    Input shape: (h, w, channels). Output shape: the same. Identity at inference.
    """

    TYPE = "RandomBrightness"
    PARAMS = (
        Factor("factor", 0.2, "largest shift as a fraction of the range, or [low, high]"),
        _value_range(),
        _seed(),
    )
    EXAMPLES = (
        Example({"factor": 0.2, "value_range": [-10.0, 10.0]}, ((4, 5, 2),)),
        Example({"factor": [-0.1, 0.3], "value_range": [5.0, -5.0], "seed": 4}, ((3, 3, 3),)),
        Example({"factor": 0.5}, ((4, 4, 1),)),
    )

    def factor_range(self):
        return _bounds(self, "factor", -1.0, 1.0)

    def clip_range(self):
        low, high = sorted(self.config["value_range"])  # Keras sorts it
        return low, high

    def _forward(self, weights, inputs, ctx):
        x = _as_float_images(inputs[0])
        if not ctx.training:
            return x, None
        lower, upper = self.factor_range()
        low, high = self.clip_range()
        delta = ctx.rng.uniform(lower, upper, size=(x.shape[0], 1, 1, 1)) * (high - low)
        out, inside = self._clip(x + delta.astype(x.dtype))
        return out, inside

    def _backward(self, weights, inside, grad):
        return [grad if inside is None else grad * inside], {}


@register
class RandomCrop(Layer):
    """Crops a random ``height`` x ``width`` box out of the images while training.

    One box per batch, as Keras draws it; an image not larger than the box on both
    sides is instead cropped towards the box's aspect ratio and resized (bilinear),
    by Keras's code. At inference it takes the centred box of the target's aspect
    ratio, resized to ``height`` x ``width`` (Keras's documented behaviour, the
    ``Resizing`` block with ``crop_to_aspect_ratio``; Keras 3.15's own layer passes
    the images on uncropped there, keras-team/keras#21868).
    Input shape: (h, w, channels). Output shape: (height, width, channels).
    """

    TYPE = "RandomCrop"
    CATEGORY = "Augmentation"
    PARAMS = (
        Int("height", 32, "height of the box kept", min=1),
        Int("width", 32, "width of the box kept", min=1),
        _seed(),
    )
    KEY_PARAMS = ("height", "width")
    # the examples keep the input's size: there Keras's inference (the identity) and the
    # block's agree; larger inputs are checked in tests/engine/test_augmentation.py. Each
    # has a seed: Keras's RandomCrop draws one into its config when given none
    EXAMPLES = (
        Example({"height": 4, "width": 3, "seed": 1}, ((4, 3, 2),)),
        Example({"height": 2, "width": 5, "seed": 6}, ((2, 5, 1),)),
    )

    def infer_shape(self, input_shapes):
        shape = _check_images(self, input_shapes)
        return (self.config["height"], self.config["width"], shape[2])

    def box(self, h: int, w: int, training: bool, rng: np.random.Generator | None):
        """(top, left, rows, columns) of the box taken before any resize."""
        height, width = self.config["height"], self.config["width"]
        if not training:
            return crop_to_aspect(h, w, height, width)
        if h > height and w > width:
            top, left = (int(v) for v in rng.integers(0, (h - height + 1, w - width + 1)))
            return top, left, height, width
        top, left, _, _ = crop_to_aspect(h, w, height, width)  # Keras keeps only the corner
        return top, left, min(height, h - top), min(width, w - left)

    def _forward(self, weights, inputs, ctx):
        x = _as_float_images(inputs[0])
        top, left, rows, cols = self.box(*x.shape[1:3], ctx.training, ctx.rng)
        box = np.ascontiguousarray(x[:, top : top + rows, left : left + cols])
        geometry = (x.shape, top, left)
        if (rows, cols) == (self.config["height"], self.config["width"]):
            return box, (geometry, None)
        out, matrices = resize_images(box, self.config["height"], self.config["width"], "bilinear")
        return out, (geometry, matrices)

    def _backward(self, weights, cache, grad):
        (shape, top, left), matrices = cache
        g = grad if matrices is None else resize_grad(grad, matrices)
        dx = np.zeros(shape, dtype=grad.dtype)
        dx[:, top : top + g.shape[1], left : left + g.shape[2]] = g
        return [dx], {}

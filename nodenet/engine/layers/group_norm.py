"""GroupNormalization: each sample's features normalized in groups of channels.

The ``axis`` features (counted with the batch as axis 0, so ``-1`` is the last
axis, channels-last) are split into ``groups`` equal groups of consecutive
channels; each sample is normalized per group over the group's channels and
every other axis, then scaled by ``gamma`` and offset by ``beta`` per channel.
``groups=-1`` is one group per channel (instance normalization), as in Keras.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.layer import Example, Layer, fmt_shape, register
from nodenet.engine.layers.normalization import (
    _affine_params,
    _affine_regularizers,
    _affine_specs,
    feature_axis,
    feature_size,
)
from nodenet.engine.params import Float, Int
from nodenet.errors import ParamError, ShapeError


@register
class GroupNormalization(Layer):
    """Normalizes each sample per group of channels: ``(x - mean) / sqrt(var + epsilon)``.

    Mean and (biased) variance are taken per sample and per group, over the
    group's ``channels / groups`` channels of ``axis`` and every other axis; then
    ``* gamma + beta`` per channel. Input shape: any with a known size on
    ``axis`` that ``groups`` divides. Output shape: the same.
    """

    TYPE = "GroupNormalization"
    CATEGORY = "Normalization"
    PARAMS = (
        Int(
            "groups",
            32,
            "how many groups the channels are split into (-1: one per channel)",
            min=-1,
        ),
        Int("axis", -1, "the channel axis (batch is 0, -1 is the last axis)"),
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
    KEY_PARAMS = ("groups",)
    EXAMPLES = (
        Example({"groups": 2}, ((4,),)),
        Example({"groups": 3, "epsilon": 1e-5}, ((3, 6),)),
        Example({"groups": -1, "center": False}, ((4, 3, 2),)),
        Example({"groups": 2, "axis": 1, "scale": False}, ((4, 3),)),
        Example({"groups": 1, "axis": -2, "gamma_initializer": "glorot_uniform"}, ((4, 2, 3),)),
        Example({"groups": 4, "center": False, "scale": False}, ((2, 2, 8),)),
    )

    def check_config(self) -> None:
        if self.config["groups"] == 0:
            raise ParamError(
                "groups must be a positive integer, or -1 for one group per channel (got 0)",
                "groups",
            )

    def n_groups(self, shape: tuple) -> int:
        """The number of groups for an input of ``shape`` (no batch): ``groups``, or the
        channel count for -1. Raises :class:`ShapeError` if it does not divide the channels."""
        channels = feature_size(self.config["axis"], shape, "GroupNormalization")
        groups = self.config["groups"]
        groups = channels if groups == -1 else groups
        if groups > channels or channels % groups:
            raise ShapeError(
                f"GroupNormalization groups={groups} must divide the {channels} channels "
                f"of axis {self.config['axis']} of {fmt_shape(shape)}"
            )
        return groups

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        self.n_groups(shape)
        return tuple(shape)

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        self.n_groups(shape)
        return _affine_specs(
            self.config, feature_size(self.config["axis"], shape, "GroupNormalization")
        )

    def _grouped(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """``x`` with its channel axis last, as (batch, positions, groups, channels per group),
        and the channel axis."""
        axis = feature_axis(self.config["axis"], x.ndim, "GroupNormalization", x.shape[1:])
        moved = np.moveaxis(x, axis, -1)
        groups = self.n_groups(x.shape[1:])
        return moved.reshape(x.shape[0], -1, groups, x.shape[axis] // groups), axis

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        grouped, axis = self._grouped(x)
        mean = grouped.mean(axis=(1, 3), keepdims=True, dtype=np.float64).astype(x.dtype)
        x_hat = grouped - mean  # centered first: precise far from zero
        var = np.mean(x_hat * x_hat, axis=(1, 3), keepdims=True)
        rstd = 1 / np.sqrt(var + self.config["epsilon"])
        x_hat *= rstd
        out = x_hat * _per_channel(weights["gamma"], x_hat) if "gamma" in weights else x_hat.copy()
        if "beta" in weights:
            out += _per_channel(weights["beta"], x_hat)
        return _ungrouped(out, x.shape, axis), (x_hat, rstd, axis, x.shape)

    def _backward(self, weights, cache, grad):
        """With h = g·gamma: dx = rstd·(h - mean(h) - x̂·mean(h·x̂)), means per sample and group."""
        x_hat, rstd, axis, shape = cache
        g = np.moveaxis(grad, axis, -1).reshape(x_hat.shape)
        grads = {}
        if "gamma" in weights:
            grads["gamma"] = np.einsum("bpgc,bpgc->gc", g, x_hat).reshape(-1)
            h = g * _per_channel(weights["gamma"], x_hat)
        else:
            h = g.copy()
        if "beta" in weights:
            grads["beta"] = g.sum(axis=(0, 1)).reshape(-1)
        h -= h.mean(axis=(1, 3), keepdims=True)
        h -= x_hat * np.mean(h * x_hat, axis=(1, 3), keepdims=True)
        h *= rstd
        return [_ungrouped(h, shape, axis)], grads


def _per_channel(vector: np.ndarray, grouped: np.ndarray) -> np.ndarray:
    """A (channels,) vector shaped (groups, channels per group) to broadcast on ``grouped``."""
    return vector.reshape(grouped.shape[2:])


def _ungrouped(grouped: np.ndarray, shape: tuple, axis: int) -> np.ndarray:
    """The inverse of ``GroupNormalization._grouped``: an array of ``shape`` again."""
    moved = (*shape[:axis], *shape[axis + 1 :], shape[axis])
    return np.ascontiguousarray(np.moveaxis(grouped.reshape(moved), -1, axis))

"""ONNX mappings of the normalization blocks, in inference mode.

BatchNormalization uses its moving statistics; LayerNormalization and GroupNormalization
normalize each sample as nodenet does (centred first, then the variance of the centred
values), on any axis, so they are spelled with Reduce operators rather than ONNX's
LayerNormalization (which normalizes trailing axes only).
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.layers.normalization import feature_axis
from nodenet.export.onnx.builder import OnnxBuilder
from nodenet.export.onnx.registry import onnx_block


def along(b: OnnxBuilder, hint: str, vector: np.ndarray, axis: int, rank: int) -> str:
    """``vector`` as an initializer shaped to broadcast along ``axis`` of a rank-``rank``
    tensor (batch included)."""
    shape = [1] * (rank - 1)
    shape[axis - 1] = -1
    return b.init(hint, np.asarray(vector, np.float32).reshape(shape))


def affine(b: OnnxBuilder, x: str, weights: dict, axis: int, rank: int) -> str:
    """``x * gamma + beta`` for the parts the block has."""
    if "gamma" in weights:
        x = b.op("Mul", [x, along(b, "gamma", weights["gamma"], axis, rank)], "scaled")
    if "beta" in weights:
        x = b.op("Add", [x, along(b, "beta", weights["beta"], axis, rank)], "shifted")
    return x


def standardized(b: OnnxBuilder, x: str, axes: list[int], epsilon: float) -> str:
    """``(x - mean) / sqrt(var + epsilon)`` with both moments over ``axes`` of each sample."""
    centred = b.op("Sub", [x, b.reduce("ReduceMean", x, axes)], "centred")
    var = b.reduce("ReduceMean", b.op("Mul", [centred, centred]), axes)
    std = b.op("Sqrt", [b.add(var, float(epsilon))])
    return b.op("Div", [centred, std], "normalized")


@onnx_block("BatchNormalization")
def batch_normalization(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    rank = len(input_shapes[0]) + 1
    axis = feature_axis(layer.config["axis"], rank, "BatchNormalization", input_shapes[0])
    var = weights["moving_variance"].astype(np.float64)
    rstd = 1 / np.sqrt(var + layer.config["epsilon"])
    scale = rstd * weights["gamma"] if "gamma" in weights else rstd
    x = b.op("Sub", [inputs[0], along(b, "moving_mean", weights["moving_mean"], axis, rank)])
    x = b.op("Mul", [x, along(b, "scale", scale, axis, rank)], "scaled")
    if "beta" in weights:
        x = b.op("Add", [x, along(b, "beta", weights["beta"], axis, rank)], "shifted")
    return [x]


@onnx_block("LayerNormalization")
def layer_normalization(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    rank = len(input_shapes[0]) + 1
    axis = feature_axis(layer.config["axis"], rank, "LayerNormalization", input_shapes[0])
    x = standardized(b, inputs[0], [axis], layer.config["epsilon"])
    return [affine(b, x, weights, axis, rank)]


@onnx_block("GroupNormalization")
def group_normalization(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    shape = tuple(input_shapes[0])
    rank = len(shape) + 1
    axis = feature_axis(layer.config["axis"], rank, "GroupNormalization", shape)
    groups = layer.n_groups(shape)
    channels = shape[axis - 1]
    x = inputs[0]
    perm = [p for p in range(rank) if p != axis] + [axis]
    moved = b.op("Transpose", [x], "channels_last", perm=perm) if axis != rank - 1 else x
    grouped = b.reshape(moved, [0, -1, groups, channels // groups])
    normal = standardized(b, grouped, [1, 3], layer.config["epsilon"])
    out = b.op("Reshape", [normal, b.op("Shape", [moved])], "ungrouped")
    out = affine(b, out, weights, rank - 1, rank)
    if axis != rank - 1:
        back = [perm.index(p) for p in range(rank)]
        out = b.op("Transpose", [out], "channels_back", perm=back)
    return [out]

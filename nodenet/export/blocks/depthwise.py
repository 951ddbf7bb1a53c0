"""Exporters of the depthwise and separable convolutions.

A depthwise convolution is torch's grouped convolution with one group per input
channel: output channel ``c * depth_multiplier + m`` is channel ``c``'s ``m``-th
kernel in both. The padding is the block's own, as for Conv1D/2D (:mod:`.conv`).
"""

from __future__ import annotations

import numpy as np

from nodenet.export._code import py_arguments
from nodenet.export.blocks.base import exports
from nodenet.export.blocks.conv import ConvExporter, _with_bias
from nodenet.export.snippets import one_or_tuple


@exports("DepthwiseConv1D", "DepthwiseConv2D")
class DepthwiseConvExporter(ConvExporter):
    KERAS_REQUIRED = ("kernel_size",)

    def torch_groups(self, shape) -> int:
        return shape[-1]

    def torch_state(self, weights, input_shapes):
        kernel = weights["kernel"]  # (*window, in, multiplier) -> (in * multiplier, 1, *window)
        weight = np.moveaxis(kernel, (-2, -1), (0, 1))
        weight = weight.reshape(-1, 1, *kernel.shape[:-2])
        return _with_bias({"weight": weight}, weights)

    def keras_weights(self, state, input_shapes):
        channels = input_shapes[0][-1]
        weight = state["weight"]
        kernel = weight.reshape(channels, -1, *weight.shape[2:])
        return _with_bias({"kernel": np.moveaxis(kernel, (0, 1), (-2, -1))}, state)


@exports("SeparableConv1D", "SeparableConv2D")
class SeparableConvExporter(ConvExporter):
    """torch: a grouped (depthwise) convolution, then a 1x1 one, in an ``nn.Sequential``."""

    def torch_module(self, input_shapes):
        (shape,) = input_shapes
        channels, rank = shape[-1], self.layer.RANK
        wide = channels * self.config["depth_multiplier"]
        kernel = one_or_tuple(self.layer.sizes()[0])
        options = {**self.window_options(shape), "groups": channels, "bias": False}
        depth = f"nn.Conv{rank}d({py_arguments([channels, wide, kernel], options)})"
        point_options = {} if self.config["use_bias"] else {"bias": False}
        args = [wide, self.config["filters"], 1]
        point = f"nn.Conv{rank}d({py_arguments(args, point_options)})"
        return f"nn.Sequential({depth}, {point})"

    def torch_state(self, weights, input_shapes):
        depth = weights["depthwise_kernel"]  # (*window, in, multiplier)
        point = weights["pointwise_kernel"]  # (*ones, in * multiplier, filters)
        state = {
            "0.weight": np.moveaxis(depth, (-2, -1), (0, 1)).reshape(-1, 1, *depth.shape[:-2]),
            "1.weight": np.moveaxis(point, (-1, -2), (0, 1)),
        }
        if "bias" in weights:
            state["1.bias"] = weights["bias"]
        return state

    def keras_weights(self, state, input_shapes):
        channels = input_shapes[0][-1]
        depth = state["0.weight"]
        depth = depth.reshape(channels, -1, *depth.shape[2:])
        weights = {
            "depthwise_kernel": np.moveaxis(depth, (0, 1), (-2, -1)),
            "pointwise_kernel": np.moveaxis(state["1.weight"], (0, 1), (-1, -2)),
        }
        if "1.bias" in state:
            weights["bias"] = state["1.bias"]
        return weights

    def torch_weights(self, module, input_shapes):
        return {
            "depthwise_kernel": [f"{module}[0].weight"],
            "pointwise_kernel": [f"{module}[1].weight"],
            "bias": [f"{module}[1].bias"],
        }

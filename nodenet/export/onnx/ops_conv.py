"""ONNX mappings of the convolution blocks: Conv1D/2D/3D, their transposes, depthwise and
separable convolutions.

Every one transposes its channels-last input to channels-first, runs ONNX's ``Conv`` or
``ConvTranspose`` (which read NCHW), transposes back and applies the block's activation.
Kernels are rearranged from Keras's layouts to ONNX's: a convolution's ``(*window, in,
out)`` becomes ``(out, in, *window)``; a transposed one's ``(*window, filters, channels)``
becomes ``(channels, filters, *window)``; a depthwise kernel ``(*window, channels,
multiplier)`` becomes a grouped convolution's ``(channels * multiplier, 1, *window)``
(output channel ``c * multiplier + m``, as in Keras). Padding is Keras's, written as
explicit ``pads`` (``causal``: the whole span on the left); only "same" with a stride over
an axis whose size is known at run time alone uses ``auto_pad="SAME_UPPER"``, which splits
the padding as Keras does (the odd one at the end).
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.layer import Layer, Shape
from nodenet.export.onnx.registry import onnx_block


def _channels_first(kernel: np.ndarray) -> np.ndarray:
    """A Keras kernel ``(*window, a, b)`` as ONNX's ``(b, a, *window)``."""
    rank = kernel.ndim - 2
    return np.ascontiguousarray(np.transpose(kernel, (rank + 1, rank, *range(rank))))


def _geometry(layer: Layer, shape: Shape) -> dict:
    """``kernel_shape``, ``strides``, ``dilations`` and ``pads`` (or ``auto_pad``) of a
    convolution-like ``layer`` on an input of ``shape`` (no batch, channels last)."""
    kernel, strides, dilation = layer.sizes()
    attrs = {
        "kernel_shape": list(kernel),
        "strides": list(strides),
        "dilations": list(dilation),
    }
    pads = layer.pads(shape[:-1])
    if pads is None:  # "same" with a stride over a size known only at run time
        attrs["auto_pad"] = "SAME_UPPER"
    else:
        attrs["pads"] = [b for b, _ in pads] + [a for _, a in pads]
    return attrs


def _bias(b, layer: Layer, weights: dict, name: str = "bias") -> list[str]:
    """The bias initializer as an optional ONNX input (none without a bias)."""
    if name not in weights:
        return []
    return [b.init(f"{layer.name}_{name}", np.asarray(weights[name], np.float32))]


def _finish(b, layer: Layer, y: str) -> list[str]:
    """Back to channels-last, then the block's activation."""
    y = b.to_nhwc(y, layer.RANK)
    return [b.activation(y, layer.config["activation"])]


@onnx_block("Conv1D", "Conv2D", "Conv3D")
def conv(b, layer: Layer, inputs: list[str], input_shapes: list[Shape], weights: dict):
    """``Conv`` with ``group`` for a grouped convolution."""
    x = b.to_nchw(inputs[0], layer.RANK)
    w = b.init("kernel", _channels_first(weights["kernel"]))
    y = b.op(
        "Conv",
        [x, w, *_bias(b, layer, weights)],
        hint=layer.name,
        group=int(layer.config.get("groups", 1)),
        **_geometry(layer, input_shapes[0]),
    )
    return _finish(b, layer, y)


@onnx_block("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
def conv_transpose(b, layer, inputs: list[str], input_shapes: list[Shape], weights: dict):
    """``ConvTranspose``: Keras's crops of the full output are ``pads``; a negative crop at
    the end (positions added beyond every window, holding the bias alone) is
    ``output_padding``. A crop at the start is never negative."""
    kernel, strides, dilation = layer.sizes()
    crops = layer.crops()
    x = b.to_nchw(inputs[0], layer.RANK)
    w = b.init("kernel", _channels_first(weights["kernel"]))
    attrs = {
        "kernel_shape": list(kernel),
        "strides": list(strides),
        "dilations": list(dilation),
        "pads": [before for before, _ in crops] + [max(after, 0) for _, after in crops],
    }
    extra = [max(-after, 0) for _, after in crops]
    if any(extra):
        attrs["output_padding"] = extra
    y = b.op("ConvTranspose", [x, w, *_bias(b, layer, weights)], hint=layer.name, **attrs)
    return _finish(b, layer, y)


def _depthwise_kernel(kernel: np.ndarray) -> np.ndarray:
    """A depthwise kernel ``(*window, channels, multiplier)`` as a grouped ``Conv``'s weight
    ``(channels * multiplier, 1, *window)``."""
    rank = kernel.ndim - 2
    flat = kernel.reshape(*kernel.shape[:rank], -1)  # (*window, channels * multiplier)
    return np.ascontiguousarray(np.moveaxis(flat, -1, 0)[:, None])


def _depthwise(b, layer, x: str, shape: Shape, kernel: np.ndarray, bias: list[str]) -> str:
    """The depthwise stage on channels-first ``x``: one group per input channel."""
    w = b.init("depthwise", _depthwise_kernel(kernel))
    return b.op(
        "Conv",
        [x, w, *bias],
        hint="depthwise",
        group=int(kernel.shape[-2]),
        **_geometry(layer, shape),
    )


@onnx_block("DepthwiseConv1D", "DepthwiseConv2D")
def depthwise_conv(b, layer, inputs: list[str], input_shapes: list[Shape], weights: dict):
    """A grouped ``Conv`` with as many groups as input channels."""
    x = b.to_nchw(inputs[0], layer.RANK)
    y = _depthwise(b, layer, x, input_shapes[0], weights["kernel"], _bias(b, layer, weights))
    return _finish(b, layer, y)


@onnx_block("SeparableConv1D", "SeparableConv2D")
def separable_conv(b, layer, inputs: list[str], input_shapes: list[Shape], weights: dict):
    """The depthwise ``Conv`` (no bias), then a pointwise (1x1) ``Conv`` with the bias."""
    x = b.to_nchw(inputs[0], layer.RANK)
    d = _depthwise(b, layer, x, input_shapes[0], weights["depthwise_kernel"], [])
    point = weights["pointwise_kernel"]
    w = b.init("pointwise", _channels_first(point))
    y = b.op(
        "Conv",
        [d, w, *_bias(b, layer, weights)],
        hint="pointwise",
        kernel_shape=[1] * layer.RANK,
    )
    return _finish(b, layer, y)

"""ONNX mappings of pooling, padding, cropping and upsampling blocks.

Windowed pooling runs ONNX's channels-first MaxPool / AveragePool between two transposes,
with the padding the block computes (averages count real values only, as nodenet's).
Global pooling, padding, cropping and nearest upsampling act on the channels-last tensor
directly; bilinear upsampling is a channels-first half-pixel Resize.
"""

from __future__ import annotations

import numpy as np

from nodenet.export.onnx.builder import OnnxBuilder
from nodenet.export.onnx.registry import onnx_block

_END = np.iinfo(np.int64).max  # Slice's "to the end"

POOLING = [f"{kind}Pooling{r}D" for kind in ("Max", "Average") for r in (1, 2, 3)]
GLOBAL = [f"Global{kind}Pooling{r}D" for kind in ("Max", "Average") for r in (1, 2, 3)]


@onnx_block(*POOLING)
def pooling(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    rank = layer.RANK
    pool, strides, pads = layer.geometry(tuple(input_shapes[0][:-1]))
    attrs: dict = {"kernel_shape": list(pool), "strides": list(strides)}
    if pads is None:  # "same" on a size known only at run time: the extra pad at the end
        attrs["auto_pad"] = "SAME_UPPER"
    else:
        attrs["pads"] = [p for p, _ in pads] + [a for _, a in pads]
    if layer.MODE == "average":
        attrs["count_include_pad"] = 0
    op = "MaxPool" if layer.MODE == "max" else "AveragePool"
    y = b.op(op, [b.to_nchw(inputs[0], rank)], op.lower(), **attrs)
    return [b.to_nhwc(y, rank)]


@onnx_block(*GLOBAL)
def global_pooling(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    op = "ReduceMax" if layer.MODE == "max" else "ReduceMean"
    axes = list(range(1, layer.RANK + 1))
    return [b.reduce(op, inputs[0], axes, keepdims=layer.config["keepdims"])]


@onnx_block("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
def zero_padding(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    pads = layer.pads()
    amounts = [0, *(p for p, _ in pads), 0, 0, *(a for _, a in pads), 0]
    return [b.op("Pad", [inputs[0], b.ints("pads", amounts)], "padded", mode="constant")]


@onnx_block("Cropping1D", "Cropping2D", "Cropping3D")
def cropping(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    crops = layer.crops()
    starts = [before for before, _ in crops]
    ends = [-after if after else _END for _, after in crops]
    axes = list(range(1, len(crops) + 1))
    args = [inputs[0], b.ints("starts", starts), b.ints("ends", ends), b.ints("axes", axes)]
    return [b.op("Slice", args, "cropped")]


@onnx_block("UpSampling1D", "UpSampling2D", "UpSampling3D")
def upsampling(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    factors = [float(f) for f in layer.factors()]
    rank = layer.RANK
    if layer.config.get("interpolation", "nearest") == "nearest":
        scales = b.init("scales", np.asarray([1.0, *factors, 1.0], np.float32))
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric"}
        y = b.op("Resize", [inputs[0], "", scales], "upsampled", nearest_mode="floor", **attrs)
        return [y]
    scales = b.init("scales", np.asarray([1.0, 1.0, *factors], np.float32))
    x = b.to_nchw(inputs[0], rank)
    y = b.op(
        "Resize",
        [x, "", scales],
        "upsampled",
        mode="linear",
        coordinate_transformation_mode="half_pixel",
    )
    return [b.to_nhwc(y, rank)]

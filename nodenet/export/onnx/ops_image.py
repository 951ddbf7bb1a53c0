"""ONNX mappings of the preprocessing and augmentation blocks, in inference mode.

Augmentations pass the images on at inference (as float), except RandomCrop, which takes
the centred box of the target's aspect ratio and resizes it. Resizing is spelled as the
block computes it: a pad, a slice of the box, then one interpolation matrix per axis
(half-pixel centres) applied with ``Einsum``, so ONNX gives nodenet's numbers exactly.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.layers.preprocessing import EPSILON as NORM_EPSILON
from nodenet.engine.layers.preprocessing import interpolation_matrix
from nodenet.errors import ExportError
from nodenet.export.onnx.builder import OnnxBuilder
from nodenet.export.onnx.registry import onnx_block

FLOAT = 1  # onnx.TensorProto.FLOAT


def as_float(b: OnnxBuilder, x: str) -> str:
    """``x`` as float32 (integer pixels are cast, as Keras casts them)."""
    return b.op("Cast", [x], "float", to=FLOAT) if x in b.int_tensors else x


@onnx_block(
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
)
def augmentation(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    """The identity at inference (the images as float)."""
    return [b.op("Identity", [as_float(b, inputs[0])], "images")]


def image_size(layer, shape) -> tuple[int, int]:
    height, width = shape[0], shape[1]
    if height is None or width is None:
        raise ExportError(
            f"{layer.name}: {layer.TYPE} needs known image sizes to export to ONNX, "
            f"got {tuple(shape)}"
        )
    return int(height), int(width)


def boxed_resize(b: OnnxBuilder, x: str, shape, box, pads, fill: float, target, mode: str) -> str:
    """Pad (``pads`` rows and columns on each side, with ``fill``), take the box
    ``(top, left, rows, cols)`` and resize it to ``target`` with ``mode``."""
    pad_h, pad_w = pads
    if pad_h or pad_w:
        amounts = b.ints("pads", [0, pad_h, pad_w, 0, 0, pad_h, pad_w, 0])
        x = b.op("Pad", [x, amounts, b.scalar("fill", fill)], "padded", mode="constant")
    top, left, rows, cols = box
    height, width = shape[0] + 2 * pad_h, shape[1] + 2 * pad_w
    if (top, left, rows, cols) != (0, 0, height, width):
        args = [
            x,
            b.ints("starts", [top, left]),
            b.ints("ends", [top + rows, left + cols]),
            b.ints("axes", [1, 2]),
        ]
        x = b.op("Slice", args, "box")
    if (rows, cols) == tuple(target):
        return b.op("Identity", [x], "resized")
    rows_m = b.init("rows", interpolation_matrix(rows, target[0], mode))
    cols_m = b.init("cols", interpolation_matrix(cols, target[1], mode))
    x = b.op("Einsum", [rows_m, x], "resized_rows", equation="Hh,bhwc->bHwc")
    return b.op("Einsum", [cols_m, x], "resized", equation="Ww,bhwc->bhWc")


@onnx_block("Resizing", "CenterCrop")
def resizing(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    shape = input_shapes[0]
    height, width = image_size(layer, shape)
    pads = layer.pads(height, width)
    box = layer.window(height + 2 * pads[0], width + 2 * pads[1])
    target = (layer.config["height"], layer.config["width"])
    fill = float(layer.config.get("fill_value", 0.0))
    x = as_float(b, inputs[0])
    return [boxed_resize(b, x, (height, width), box, pads, fill, target, layer._mode())]


@onnx_block("RandomCrop")
def random_crop(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    height, width = image_size(layer, input_shapes[0])
    box = layer.box(height, width, False, None)
    target = (layer.config["height"], layer.config["width"])
    x = as_float(b, inputs[0])
    return [boxed_resize(b, x, (height, width), box, (0, 0), 0.0, target, "bilinear")]


@onnx_block("Normalization")
def normalization(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    shape = tuple(input_shapes[0])
    if layer.adapts():
        full = layer._broadcast_shape(shape)
        mean = np.asarray(weights["mean"], np.float64).reshape(full)
        variance = np.asarray(weights["variance"], np.float64).reshape(full)
    else:
        mean, variance = layer._broadcast(shape, np.float64)
    mean, variance = mean[0], variance[0]  # no batch axis: broadcasts from the right
    std = np.maximum(np.sqrt(variance.astype(np.float32)), np.float32(NORM_EPSILON))
    x = as_float(b, inputs[0])
    mean_t, std_t = b.init("mean", mean), b.init("std", std)
    if layer.config["invert"]:
        return [b.op("Add", [mean_t, b.op("Mul", [x, std_t])], "denormalized")]
    return [b.op("Div", [b.op("Sub", [x, mean_t]), std_t], "normalized")]

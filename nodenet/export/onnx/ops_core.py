"""ONNX mappings of the core blocks: Dense, activations, reshapes, merges, noise, embeddings.

Dropout and noise blocks are the identity at inference, as in Keras. Element-wise merges
broadcast as Keras's do: an input of lower rank gets new axes right after the batch axis
before ONNX's numpy broadcasting takes over.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.layers.merge import EPSILON as DOT_EPSILON
from nodenet.engine.layers.noise import UNIT_NORM_EPSILON
from nodenet.errors import ExportError
from nodenet.export.onnx.builder import OnnxBuilder
from nodenet.export.onnx.registry import onnx_block


def batch_axis_free(axis: int, rank: int) -> int:
    """A Keras axis (batch counted, negative from the end) as an index of the full tensor."""
    return axis if axis >= 0 else axis + rank + 1


def static_shape(shape, what: str) -> list[int]:
    """``shape`` with the batch as 0 for Reshape; one unknown size becomes -1."""
    dims = [-1 if d is None else int(d) for d in shape]
    if dims.count(-1) > 1:
        raise ExportError(f"{what}: more than one variable size cannot be reshaped in ONNX")
    return [0, *dims]


@onnx_block("Input", "Output")
def io_block(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    """Inputs and Outputs are the graph's named inputs and outputs (the export names them)."""
    return list(inputs[:1])


@onnx_block("Dense")
def dense(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    y = b.op("MatMul", [inputs[0], b.init("kernel", weights["kernel"])], "matmul")
    if "bias" in weights:
        y = b.op("Add", [y, b.init("bias", weights["bias"])], "bias")
    return [b.activation(y, layer.config["activation"])]


@onnx_block("Activation")
def activation(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    return [b.activation(inputs[0], layer.config["activation"])]


@onnx_block(
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Identity",
)
def identity(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    """The identity at inference (dropout and noise act only while training)."""
    return [b.op("Identity", [inputs[0]], "identity")]


@onnx_block("Flatten")
def flatten(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    return [b.op("Flatten", [inputs[0]], "flatten", axis=1)]


@onnx_block("Reshape")
def reshape(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    target = [int(d) for d in layer.config["target_shape"]]
    known = [d for d in input_shapes[0]]
    if None not in known and -1 in target:  # resolved here: shape inference sees it exactly
        rest = int(np.prod([d for d in target if d != -1]))
        target = [int(np.prod(known)) // rest if d == -1 else d for d in target]
    return [b.reshape(inputs[0], [0, *target])]


@onnx_block("Permute")
def permute(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    perm = [0, *(int(d) for d in layer.config["dims"])]
    return [b.op("Transpose", [inputs[0]], "permute", perm=perm)]


@onnx_block("RepeatVector")
def repeat_vector(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    x = b.op("Unsqueeze", [inputs[0], b.ints("axes", [1])])
    return [b.op("Tile", [x, b.ints("repeats", [1, layer.config["n"], 1])], "repeat")]


# -- activation layers ---------------------------------------------------------------


@onnx_block("ReLU")
def relu(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    c = layer.config
    x = inputs[0]
    threshold, slope, top = c["threshold"], c["negative_slope"], c["max_value"]
    if slope and top is None and threshold == 0:
        return [b.op("LeakyRelu", [x], alpha=float(slope))]
    # where(x > threshold, x, 0), capped, minus slope * max(threshold - x, 0)
    above = b.op("Greater", [x, b.scalar("threshold", threshold)])
    out = b.op("Where", [above, x, b.scalar("zero", 0.0)], "relu")
    if top is not None:
        out = b.op("Min", [out, b.scalar("max_value", top)])
    if slope:
        below = b.op("Relu", [b.op("Sub", [b.scalar("threshold", threshold), x])])
        out = b.op("Sub", [out, b.mul(below, slope)], "relu")
    return [out]


@onnx_block("LeakyReLU")
def leaky_relu(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    return [b.op("LeakyRelu", [inputs[0]], alpha=float(layer.config["negative_slope"]))]


@onnx_block("PReLU")
def prelu(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    x = inputs[0]
    negative = b.op("Min", [x, b.scalar("zero", 0.0)])
    scaled = b.op("Mul", [negative, b.init("alpha", weights["alpha"])])
    return [b.op("Add", [b.op("Relu", [x]), scaled], "prelu")]


@onnx_block("ELU")
def elu(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    return [b.op("Elu", [inputs[0]], alpha=float(layer.config["alpha"]))]


@onnx_block("Softmax")
def softmax(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    return [b.op("Softmax", [inputs[0]], axis=int(layer.config["axis"]))]


# -- merges ----------------------------------------------------------------------------


def aligned(b: OnnxBuilder, inputs: list[str], shapes: list) -> list[str]:
    """The inputs with new axes after the batch for those of lower rank (Keras's rule)."""
    rank = max(len(s) for s in shapes)
    out = []
    for name, shape in zip(inputs, shapes, strict=True):
        missing = rank - len(shape)
        if missing:
            name = b.op("Unsqueeze", [name, b.ints("axes", range(1, missing + 1))])
        out.append(name)
    return out


@onnx_block("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
def elementwise(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    xs = aligned(b, inputs, input_shapes)
    kind = layer.TYPE
    if kind == "Subtract":
        return [b.op("Sub", xs, "subtract")]
    if kind == "Multiply":
        out = xs[0]
        for x in xs[1:]:
            out = b.op("Mul", [out, x], "multiply")
        return [out]
    op = {"Add": "Sum", "Average": "Mean", "Maximum": "Max", "Minimum": "Min"}[kind]
    return [b.op(op, xs, kind.lower())]


@onnx_block("Concatenate")
def concatenate(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    return [b.op("Concat", list(inputs), "concat", axis=int(layer.config["axis"]))]


def l2_normalized(b: OnnxBuilder, x: str, axis: int, epsilon: float) -> str:
    """``x * min(1 / ||x||, 1 / epsilon)`` along ``axis`` (Keras's L2 normalize)."""
    square_sum = b.reduce("ReduceSum", b.op("Mul", [x, x]), [axis])
    norm = b.op("Max", [b.op("Sqrt", [square_sum]), b.scalar("epsilon", epsilon)])
    return b.op("Div", [x, norm], "normalized")


@onnx_block("Dot")
def dot(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    a_shape, b_shape = (tuple(s) for s in input_shapes)
    i, j = layer.contracted_axes([a_shape, b_shape])
    x, y = inputs
    if layer.config["normalize"]:
        x = l2_normalized(b, x, i + 1, DOT_EPSILON)
        y = l2_normalized(b, y, j + 1, DOT_EPSILON)
    ra, rb = len(a_shape) + 1, len(b_shape) + 1
    perm_x = [p for p in range(ra) if p != i + 1] + [i + 1]
    perm_y = [0, j + 1] + [p for p in range(1, rb) if p != j + 1]
    x_rest = [d for k, d in enumerate(a_shape) if k != i]
    y_rest = [d for k, d in enumerate(b_shape) if k != j]
    k = a_shape[i]
    xm = b.op("Transpose", [x], "dot_x", perm=perm_x)
    ym = b.op("Transpose", [y], "dot_y", perm=perm_y)
    x3 = b.reshape(xm, [0, -1 if None in x_rest else int(np.prod(x_rest)), k])
    y3 = b.reshape(ym, [0, k, -1 if None in y_rest else int(np.prod(y_rest))])
    z = b.op("MatMul", [x3, y3], "dot")
    target = [*x_rest, *y_rest] or [1]
    return [b.reshape(z, static_shape(target, f"Dot {layer.name!r}"))]


@onnx_block("CustomScaleLayer")
def custom_scale(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    residual = b.mul(inputs[1], float(layer.config["scale"]))
    return [b.op("Add", [inputs[0], residual], "scaled_sum")]


# -- scaling and normalizing --------------------------------------------------------


@onnx_block("Rescaling")
def rescaling(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    x = inputs[0]
    if x in b.int_tensors:  # integer pixels: Keras casts to its float dtype first
        x = b.op("Cast", [x], "float", to=1)
    scale = b.init("scale", np.asarray(layer.config["scale"], np.float32))
    offset = b.init("offset", np.asarray(layer.config["offset"], np.float32))
    return [b.op("Add", [b.op("Mul", [x, scale]), offset], "rescaled")]


@onnx_block("UnitNormalization")
def unit_normalization(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    return [l2_normalized(b, inputs[0], int(layer.config["axis"]), UNIT_NORM_EPSILON)]


@onnx_block("LayerScale")
def layer_scale(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    return [b.op("Mul", [inputs[0], b.init("gamma", weights["gamma"])], "scaled")]


@onnx_block("Embedding")
def embedding(b: OnnxBuilder, layer, inputs, input_shapes, weights):
    indices = inputs[0]
    if indices not in b.int_tensors:  # float indices (from another block): whole numbers
        indices = b.op("Cast", [indices], "indices", to=7)  # INT64
    return [b.op("Gather", [b.init("embeddings", weights["embeddings"]), indices], axis=0)]

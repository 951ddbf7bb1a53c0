"""ONNX mappings of the attention blocks: Attention, AdditiveAttention, MultiHeadAttention.

Attention and AdditiveAttention score the query against the key with ``MatMul`` (dot) or
a broadcast ``tanh(query + key)`` summed over the features (concat, additive), take a
``Softmax`` over the key steps and weigh the values with a ``MatMul``. MultiHeadAttention
is Keras's computation operator for operator: ``Einsum`` projections with the kernels in
Keras's layouts ((features, heads, size), the output's (heads, size, *output_shape)), the
query scaled by ``1 / sqrt(key_dim)``, Keras's own einsum equations for the scores and the
weighted values over any ``attention_axes``, a softmax over the key's attention axes.

``use_causal_mask`` masks as nodenet and Keras do: masked scores become -1e9 before the
softmax and their weights 0 after it. The lower-triangular mask is a constant when both
step counts are known, else ``Trilu`` of ones shaped from the inputs at run time. Dropout
does nothing in inference; ``return_attention_scores`` returns the weights as a second
output.
"""

from __future__ import annotations

import math
import string

import numpy as np
from onnx import TensorProto, numpy_helper

from nodenet.engine.layer import Layer, Shape
from nodenet.engine.layers.attention import LARGE_NEGATIVE, take_inputs
from nodenet.engine.layers.multi_head_attention import equations
from nodenet.errors import ExportError
from nodenet.export.onnx.registry import onnx_block

# -- the causal mask and the masked softmax ------------------------------------------------


def _causal(b, q: str, v: str, t_query: int | None, t_value: int | None, axis: int) -> str:
    """A bool (Tq, Tv) mask, True where query step i may see key step j (j <= i); the step
    counts are axis ``axis`` of ``q`` and ``v`` (batch included)."""
    if t_query is not None and t_value is not None:
        return b.init("causal_mask", np.tril(np.ones((t_query, t_value), dtype=bool)))
    if b.opset < 14:
        raise ExportError("a causal mask over steps known only at run time needs ONNX opset 14")
    sizes = [
        b.op("Slice", [b.op("Shape", [t]), b.ints("s", [axis]), b.ints("e", [axis + 1])])
        for t in (q, v)
    ]
    ones = b.op(
        "ConstantOfShape",
        [b.op("Concat", sizes, axis=0)],
        "ones",
        value=numpy_helper.from_array(np.ones(1, np.int64)),
    )
    lower = b.op("Trilu", [ones], "tril", upper=0)
    return b.op("Cast", [lower], "causal_mask", to=TensorProto.BOOL)


def _masked_softmax(b, scores: str, mask: str | None, axes: list[int]) -> str:
    """Softmax of ``scores`` over ``axes`` (negative), masked positions weighing 0."""
    if mask is not None:
        scores = b.op("Where", [mask, scores, b.scalar("masked", -LARGE_NEGATIVE)])
    if axes == [-1]:
        probs = b.op("Softmax", [scores], "softmax", axis=-1)
    else:
        shifted = b.op("Sub", [scores, b.reduce("ReduceMax", scores, axes)])
        exp = b.op("Exp", [shifted])
        probs = b.op("Div", [exp, b.reduce("ReduceSum", exp, axes)], "softmax")
    if mask is not None:
        probs = b.op("Where", [mask, probs, b.scalar("zero", 0.0)], "weights")
    return probs


def _unsqueeze(b, x: str, axes: list[int]) -> str:
    return b.op("Unsqueeze", [x, b.ints("axes", axes)])


# -- Attention and AdditiveAttention ------------------------------------------------------


def _pairwise_tanh(b, q: str, k: str, scale: str | None) -> str:
    """tanh(scale * (query[..., i, None, :] + key[..., None, j, :])): (..., Tq, Tv, dim)."""
    summed = b.op("Add", [_unsqueeze(b, q, [-2]), _unsqueeze(b, k, [-3])], "pairs")
    if scale is not None:
        summed = b.op("Mul", [summed, scale])
    return b.op("Tanh", [summed])


def _attend(b, layer, inputs: list[str], input_shapes: list[Shape], scores: str) -> list[str]:
    """The masked softmax over the key steps and the weighted values (and the weights)."""
    query, _, key = take_inputs(layer, input_shapes)
    mask = None
    if layer.config["use_causal_mask"]:
        axis = len(query) - 1  # the steps axis, batch included
        mask = _causal(b, inputs[0], inputs[1], query[-2], key[-2], axis)
    probs = _masked_softmax(b, scores, mask, [-1])
    out = b.op("MatMul", [probs, inputs[1]], "attended")
    return [out, probs] if layer.config["return_attention_scores"] else [out]


@onnx_block("Attention")
def attention(b, layer: Layer, inputs: list[str], input_shapes: list[Shape], weights: dict):
    """Luong's dot-product scores (or Keras's ``concat`` scores)."""
    q, v = inputs[0], inputs[1]
    k = inputs[2] if len(inputs) == 3 else v
    rank = len(input_shapes[0]) + 1
    scale = b.init("scale", weights["scale"]) if "scale" in weights else None
    if layer.config["score_mode"] == "dot":
        perm = [*range(rank - 2), rank - 1, rank - 2]
        scores = b.op("MatMul", [q, b.op("Transpose", [k], "key_t", perm=perm)], "scores")
        if scale is not None:
            scores = b.op("Mul", [scores, scale], "scores")
    else:
        tsum = b.reduce("ReduceSum", _pairwise_tanh(b, q, k, scale), [-1], keepdims=False)
        weight = b.init("concat_score_weight", weights["concat_score_weight"])
        scores = b.op("Mul", [tsum, weight], "scores")
    return _attend(b, layer, inputs, input_shapes, scores)


@onnx_block("AdditiveAttention")
def additive_attention(b, layer, inputs: list[str], input_shapes: list[Shape], weights: dict):
    """Bahdanau's scores: sum(scale * tanh(query + key)) over the features."""
    q, v = inputs[0], inputs[1]
    k = inputs[2] if len(inputs) == 3 else v
    t = _pairwise_tanh(b, q, k, None)
    if "scale" in weights:
        t = b.op("Mul", [t, b.init("scale", weights["scale"])])
    scores = b.reduce("ReduceSum", t, [-1], keepdims=False)
    return _attend(b, layer, inputs, input_shapes, scores)


# -- MultiHeadAttention -----------------------------------------------------------------------


def _project(b, layer, x: str, rank: int, weights: dict, name: str) -> str:
    """(batch, ..., features) through the (features, heads, size) kernel ``name``."""
    lead = string.ascii_lowercase[: rank - 1]
    out = b.op(
        "Einsum",
        [x, b.init(f"{name}_kernel", weights[f"{name}/kernel"])],
        name,
        equation=f"{lead}x,xyz->{lead}yz",
    )
    if f"{name}/bias" in weights:
        out = b.op("Add", [out, b.init(f"{name}_bias", weights[f"{name}/bias"])], name)
    return out


def _mha_mask(b, layer, inputs: list[str], query: Shape, value: Shape, key: Shape) -> str:
    """The causal mask shaped as Keras expands it against the scores."""
    scores = layer._scores_shape(query, key)
    shape = layer._mask_shape(query, value, scores)  # checks it fits, as Keras does
    tril = _causal(b, inputs[0], inputs[1], query[0], value[0], 1)
    # the positions Keras inserts ones at (as _mask_shape does), then [1, Tq, Tv] around them
    marks = ["1", "q", "v"]
    axis = -len(layer.axes(query)) * 2 - 1
    while len(marks) < len(shape):
        marks.insert(axis + len(marks) + 1, "1")
    return _unsqueeze(b, tril, [i for i, m in enumerate(marks) if m == "1"])


@onnx_block("MultiHeadAttention")
def multi_head_attention(b, layer, inputs: list[str], input_shapes: list[Shape], weights: dict):
    """Keras's einsum computation: projections, scaled scores, softmax, output projection."""
    query_shape, value_shape, key_shape = take_inputs(layer, input_shapes)
    xq, xv = inputs[0], inputs[1]
    xk = inputs[2] if len(inputs) == 3 else xv
    rank = len(query_shape) + 1
    query = _project(b, layer, xq, rank, weights, "query")
    key = _project(b, layer, xk, rank, weights, "key")
    value = _project(b, layer, xv, rank, weights, "value")
    axes = layer.axes(query_shape)
    dot, combine = equations(rank + 1, axes)
    scaled = b.mul(query, float(np.float32(1.0 / math.sqrt(float(layer.config["key_dim"])))))
    scores = b.op("Einsum", [key, scaled], "scores", equation=dot)
    mask = None
    if layer.config["use_causal_mask"]:
        mask = _mha_mask(b, layer, inputs, query_shape, value_shape, key_shape)
    probs = _masked_softmax(b, scores, mask, list(range(-len(axes), 0)))
    combined = b.op("Einsum", [probs, value], "combined", equation=combine)
    kernel = weights["attention_output/kernel"]
    lead = string.ascii_lowercase[: rank - 1]
    tail = "uvw"[: kernel.ndim - 2]
    out = b.op(
        "Einsum",
        [combined, b.init("output_kernel", kernel)],
        "output",
        equation=f"{lead}yz,yz{tail}->{lead}{tail}",
    )
    if "attention_output/bias" in weights:
        bias = b.init("output_bias", weights["attention_output/bias"])
        out = b.op("Add", [out, bias], "output")
    return [out, probs] if layer.config["return_attention_scores"] else [out]

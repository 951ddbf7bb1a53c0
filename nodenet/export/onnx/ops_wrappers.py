"""ONNX mappings of TimeDistributed (a wrapper of any block) and the refusal of
TextVectorization.

TimeDistributed folds the time axis into the batch, ``(batch, time, ...)`` to ``(batch *
time, ...)``, maps its inner block through the registry as if alone, and unfolds the result
back to ``(batch, time, ...)``: the same computation as the block's, which runs every
sample on its own. The shapes come from the graph when every axis after the batch is known,
else from the tensors at run time.

TextVectorization turns strings into token ids. Its standardizing, splitting and n-gram
rules (Keras's) have no standard ONNX operators (``StringNormalizer`` and
``TfIdfVectorizer`` do not split or lower-case as Keras does), and the graph's inputs are
float or integer tensors, so the block is refused even when its vocabulary is known: the
exported model should start from the token ids, vectorized before it as in training.
"""

from __future__ import annotations

from nodenet.engine.layer import Layer, Shape
from nodenet.errors import ExportError
from nodenet.export.onnx.registry import ONNX_BLOCKS, onnx_block


def _dims(b, x: str, start: int, end: int | None = None) -> str:
    """Axes ``start:end`` of ``x``'s shape, as an int64 1-D tensor (Slice of Shape: opset 13
    has no ``start`` / ``end`` on Shape)."""
    ends = b.ints("end", [end if end is not None else 2**62])
    return b.op("Slice", [b.op("Shape", [x]), b.ints("start", [start]), ends], "dims")


@onnx_block("TimeDistributed")
def time_distributed(b, layer: Layer, inputs: list[str], input_shapes: list[Shape], weights):
    """Fold time into the batch, run the inner block's mapping, unfold."""
    inner = layer.inner
    (shape,) = input_shapes
    step = tuple(shape[1:])
    if inner.TYPE not in ONNX_BLOCKS:
        raise ExportError(
            f"{layer.name}: TimeDistributed wraps {inner.TYPE}, which has no ONNX mapping"
        )
    if None in step:
        folded_shape = b.op("Concat", [b.ints("batch_time", [-1]), _dims(b, inputs[0], 2)], axis=0)
        folded = b.op("Reshape", [inputs[0], folded_shape], "fold")
    else:
        folded = b.reshape(inputs[0], [-1, *step])
    (out,) = ONNX_BLOCKS.get(inner.TYPE)(b, inner, [folded], [step], weights)
    out_step = tuple(inner.infer_shape([step]))
    if shape[0] is not None and None not in out_step:
        return [b.reshape(out, [-1, shape[0], *out_step])]
    unfolded = b.op("Concat", [_dims(b, inputs[0], 0, 2), _dims(b, out, 1)], axis=0)
    return [b.op("Reshape", [out, unfolded], "unfold")]


@onnx_block("TextVectorization")
def text_vectorization(b, layer: Layer, inputs, input_shapes, weights):
    """Refused: strings and Keras's tokenizing rules have no standard ONNX operators."""
    raise ExportError(
        f"{layer.name}: TextVectorization turns strings into tokens with Keras's rules, which "
        "standard ONNX operators do not compute; export the model from the token ids "
        "(an int32 Input after the vectorization) and vectorize the text before it"
    )

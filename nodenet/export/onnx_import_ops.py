"""ONNX operators as nodenet blocks: one handler per operator, weights in Keras layouts.

A handler takes the :class:`~nodenet.export.onnx_import.Importer` and the ONNX node and
returns, per output, a :class:`~nodenet.export.onnx_import.View` (or a constant array, or
``None`` for an output nothing reads); it raises :class:`Refused` saying why when the
operator is used in a way nodenet cannot represent. Convolutions, pooling and
normalization are in :mod:`nodenet.export.onnx_import_conv`, recurrent layers in
:mod:`nodenet.export.onnx_import_rnn`.
"""

from __future__ import annotations

import math

import numpy as np

from nodenet.export.onnx_import import (
    Importer,
    Refused,
    View,
    attrs,
    axes_arg,
    drop_axis,
    f32,
)
from nodenet.export.onnx_import_conv import batch_norm, conv, global_pool, pool, reduce_pool
from nodenet.export.onnx_import_rnn import gru, lstm, rnn

# operators that read channels-first (N, C, ...) tensors: an Input they read becomes
# channels-last
CHANNEL_OPS = {
    "Conv",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
}


# -- shapes and constants ------------------------------------------------------------


def constant(imp: Importer, node) -> list:
    a = attrs(node)
    if "value" not in a:
        raise Refused("only a tensor value is supported")
    from nodenet.export.onnx_import_read import tensor_array

    return [tensor_array(a["value"], imp.folder)]


def identity(imp: Importer, node) -> list:
    if node.input[0] in imp.consts:
        return [imp.consts[node.input[0]]]
    return [imp.view(node.input[0])]


def dropout(imp: Importer, node) -> list:
    if len(node.output) > 1 and node.output[1] and imp.users.get(node.output[1]):
        raise Refused("its mask is read")
    return [imp.view(node.input[0])]


def transpose(imp: Importer, node) -> list:
    view = imp.view(node.input[0])
    perm = attrs(node).get("perm") or list(reversed(range(len(view.axes))))
    return [View(view.node, view.port, tuple(view.axes[p] for p in perm))]


def squeeze(imp: Importer, node) -> list:
    view = imp.view(node.input[0])
    axes = axes_arg(imp, node, len(view.axes))
    if not axes:
        axes = [k for k, a in enumerate(view.axes) if a is None]
    result = view.axes
    for k in reversed(axes):
        if result[k] is not None:
            raise Refused("it removes an axis of the data (only inserted ones)")
        result = drop_axis(result, k)
    return [View(view.node, view.port, result)]


def unsqueeze(imp: Importer, node) -> list:
    view = imp.view(node.input[0])
    rank = len(view.axes) + len(axes_arg(imp, node, 10**6))
    result = list(view.axes)
    for k in axes_arg(imp, node, rank):
        result.insert(k, None)
    return [View(view.node, view.port, tuple(result))]


def _in_order(imp: Importer, node, view: View) -> View:
    """``view`` as a tensor whose data axes are in ONNX's order (inserted axes dropped), so
    that flattening or reshaping it in nodenet reads values in ONNX's order."""
    real = [a for a in view.axes if a is not None]
    if real == sorted(real):
        if len(real) == len(view.axes):
            return view
        return View(view.node, view.port, tuple(range(len(real))))
    shape = imp.shape(node.input[0])
    sizes = {a: shape[k] for k, a in enumerate(view.axes) if a is not None}
    moving = [a for a in real if sizes.get(a) != 1]  # axes of size 1 do not change the order
    if moving == sorted(moving):
        return View(view.node, view.port, tuple(range(len(real))))
    compact = View(view.node, view.port, tuple(real))
    return imp.arrange(compact, tuple(range(len(real))), node.name or node.output[0])


def flatten(imp: Importer, node) -> list:
    view = imp.view(node.input[0])
    if attrs(node).get("axis", 1) != 1:
        raise Refused("only axis=1 (keep the batch axis) is supported")
    if len(view.axes) == 2 and view.plain:
        return [view]
    view = _in_order(imp, node, view)
    return [View(imp.block(node, "Flatten", {}, [view]), 0, (0, 1))]


def reshape(imp: Importer, node) -> list:
    view = imp.view(node.input[0])
    given = imp.symbolic.get(node.input[1])
    if given is None:
        given = imp.const(node.input[1], "shape")
    target = [
        0 if d is None else int(d)
        for d in (given if isinstance(given, tuple) else np.asarray(given).ravel())
    ]
    source = imp.shape(node.input[0])
    if len(target) < 2:
        raise Refused("it reshapes away the batch axis")
    if attrs(node).get("allowzero", 0):
        raise Refused("allowzero=1 is not supported")
    inner = [source[k] if d == 0 and k < len(source) else d for k, d in enumerate(target)][1:]
    if any(d is None for d in inner):
        raise Refused("its target shape depends on an unknown size")
    flat = len(inner) == 1 and (inner[0] == -1 or inner[0] == math.prod(source[1:]))
    view = _in_order(imp, node, view)
    if flat:
        return [View(imp.block(node, "Flatten", {}, [view]), 0, (0, 1))]
    node_id = imp.block(node, "Reshape", {"target_shape": inner}, [view])
    return [View(node_id, 0, tuple(range(len(target))))]


# -- dense and convolution -----------------------------------------------------------


def gemm(imp: Importer, node) -> list:
    a = attrs(node)
    view = imp.view(node.input[0])
    if a.get("transA", 0) or len(view.axes) != 2:
        raise Refused("only a batch of vectors times a constant matrix is supported")
    kernel = np.asarray(imp.const(node.input[1], "weight matrix"), np.float32)
    kernel = (kernel.T if a.get("transB", 0) else kernel) * a.get("alpha", 1.0)
    units = kernel.shape[1]
    weights = {"kernel": kernel}
    params: dict = {"units": int(units)}
    if len(node.input) > 2 and node.input[2]:
        bias = np.asarray(imp.const(node.input[2], "bias"), np.float32) * a.get("beta", 1.0)
        weights["bias"] = np.broadcast_to(bias.reshape(-1)[-units:], (units,)).copy()
        if bias.size not in (1, units):
            raise Refused("its bias is not one value per unit")
    else:
        params["use_bias"] = False
    return [View(imp.block(node, "Dense", params, [view], weights), 0, (0, 1))]


def matmul(imp: Importer, node) -> list:
    view = imp.view(node.input[0])
    kernel = np.asarray(imp.const(node.input[1], "second operand"), np.float32)
    if kernel.ndim != 2:
        raise Refused("only a constant matrix as the second operand is supported")
    view = imp.arrange(view, tuple(range(len(view.axes))), node.name or node.output[0])
    params = {"units": int(kernel.shape[1]), "use_bias": False}
    node_id = imp.block(node, "Dense", params, [view], {"kernel": kernel})
    return [View(node_id, 0, view.axes)]


# -- activations and merges ----------------------------------------------------------

_ACTIVATIONS = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Elu": "elu",
    "Selu": "selu",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Exp": "exponential",
}


def activation(imp: Importer, node) -> list:
    a = attrs(node)
    if node.op_type == "Elu" and a.get("alpha", 1.0) != 1.0:
        raise Refused("only alpha=1 is supported")
    view = imp.view(node.input[0])
    name = _ACTIVATIONS[node.op_type]
    return [View(imp.block(node, "Activation", {"activation": name}, [view]), 0, view.axes)]


def leaky_relu(imp: Importer, node) -> list:
    view = imp.view(node.input[0])
    slope = f32(attrs(node).get("alpha", 0.01))
    node_id = imp.block(node, "LeakyReLU", {"negative_slope": slope}, [view])
    return [View(node_id, 0, view.axes)]


def softmax(imp: Importer, node) -> list:
    view = imp.view(node.input[0])
    rank = len(view.axes)
    axis = attrs(node).get("axis", -1 if imp.opset >= 13 else 1) % rank
    if imp.opset < 13 and axis != rank - 1:
        raise Refused("a softmax over flattened axes (opset < 13) is not supported")
    real = view.axes[axis]
    if real is None or real == 0:
        raise Refused("a softmax over the batch or an inserted axis")
    if real == rank - 1 - sum(a is None for a in view.axes):
        node_id = imp.block(node, "Activation", {"activation": "softmax"}, [view])
    else:
        node_id = imp.block(node, "Softmax", {"axis": int(real)}, [view])
    return [View(node_id, 0, view.axes)]


_MERGES = {"Add": "Add", "Sub": "Subtract", "Mul": "Multiply", "Max": "Maximum", "Min": "Minimum"}


def merge(imp: Importer, node) -> list:
    names = [n for n in node.input if n]
    if node.op_type == "Add" and len(names) == 2 and any(n in imp.consts for n in names):
        constant = names[0] if names[0] in imp.consts else names[1]
        return [bias_add(imp, node, next(n for n in names if n != constant), constant)]
    if any(n in imp.consts for n in names):
        raise Refused("combining a tensor with a constant is not supported")
    views = [imp.view(n) for n in names]
    shapes = [imp.shapes.get(n) for n in names]
    if any(s != shapes[0] for s in shapes) or len(views) < 2:
        raise Refused("only operands of the same shape are supported (no broadcasting)")
    if node.op_type == "Sub" and len(views) != 2:
        raise Refused("Sub takes two operands")
    if node.op_type == "Sum":
        kind = "Add"
    elif node.op_type == "Mean":
        kind = "Average"
    else:
        kind = _MERGES[node.op_type]
    first = views[0]
    views = [first, *(imp.arrange(v, first.axes, node.name or "merge") for v in views[1:])]
    return [View(imp.block(node, kind, {}, views), 0, first.axes)]


def bias_add(imp: Importer, node, tensor: str, constant: str) -> View:
    """``x + b`` for a constant ``b`` along the last axis: the bias of the Dense before it
    (folded in afterwards, or refused)."""
    view = imp.view(tensor)
    bias = np.asarray(imp.consts[constant], np.float32)
    if view.axes and view.axes[-1] is None:
        raise Refused("adding a constant along an inserted axis is not supported")
    bias = bias.reshape(-1) if bias.ndim <= 1 or bias.shape[:-1] == (1,) * (bias.ndim - 1) else None
    if bias is None:
        raise Refused("adding a constant that is not one value per feature is not supported")
    node_id = imp.block(node, "_Bias", {}, [view], {"bias": bias})
    return View(node_id, 0, view.axes)


def concat(imp: Importer, node) -> list:
    views = [imp.view(n) for n in node.input if n]
    first = views[0]
    axis = attrs(node)["axis"] % len(first.axes)
    real = first.axes[axis]
    if real is None or real == 0:
        raise Refused("concatenating along the batch or an inserted axis")
    views = [first, *(imp.arrange(v, first.axes, node.name or "concat") for v in views[1:])]
    rank = sum(a is not None for a in first.axes)  # nodenet's rank, batch included
    params = {} if real == rank - 1 else {"axis": int(real)}
    return [View(imp.block(node, "Concatenate", params, views), 0, first.axes)]


def gather(imp: Importer, node) -> list:
    """``x[:, -1]`` on a recurrent layer's sequence (its last step), or an index into an
    inserted axis."""
    if node.input[0] in imp.consts:
        return [embedding(imp, node)]
    view = imp.view(node.input[0])
    index = np.asarray(imp.const(node.input[1], "index"))
    axis = attrs(node).get("axis", 0) % len(view.axes)
    if index.ndim != 0:
        raise Refused("only a single index is supported")
    real = view.axes[axis]
    if real is None:
        return [View(view.node, view.port, drop_axis(view.axes, axis))]
    size = imp.shape(node.input[0])[axis]
    last = int(index) == -1 or (size is not None and int(index) == size - 1)
    if real != 1 or not last:
        raise Refused("only the last step of a sequence is supported")
    node_id = imp.block(node, "_LastStep", {}, [view])
    return [View(node_id, 0, drop_axis(view.axes, axis))]


def shape_of(imp: Importer, node) -> list:
    from nodenet.export.onnx_import_shapes import shape

    return shape(imp, node)


def embedding(imp: Importer, node) -> View:
    """Rows of a constant table picked by integer indices: an Embedding."""
    table = np.asarray(imp.consts[node.input[0]], np.float32)
    if table.ndim != 2 or attrs(node).get("axis", 0) != 0:
        raise Refused("only rows of a constant matrix (an embedding) are supported")
    view = imp.view(node.input[1])
    view = imp.arrange(view, tuple(range(len(view.axes))), node.name or node.output[0])
    params = {"input_dim": int(table.shape[0]), "output_dim": int(table.shape[1])}
    node_id = imp.block(node, "Embedding", params, [view], {"embeddings": table})
    return View(node_id, 0, tuple(range(len(view.axes) + 1)))


HANDLERS = {
    "Constant": constant,
    "Identity": identity,
    "Dropout": dropout,
    "Transpose": transpose,
    "Squeeze": squeeze,
    "Unsqueeze": unsqueeze,
    "Flatten": flatten,
    "Reshape": reshape,
    "Gemm": gemm,
    "MatMul": matmul,
    "Conv": conv,
    "MaxPool": pool,
    "AveragePool": pool,
    "GlobalAveragePool": global_pool,
    "GlobalMaxPool": global_pool,
    "ReduceMean": reduce_pool,
    "ReduceMax": reduce_pool,
    "BatchNormalization": batch_norm,
    "LeakyRelu": leaky_relu,
    "Softmax": softmax,
    "Concat": concat,
    "Gather": gather,
    "Sum": merge,
    "Shape": shape_of,
    "Mean": merge,
    "LSTM": lstm,
    "GRU": gru,
    "RNN": rnn,
    **{op: activation for op in _ACTIVATIONS},
    **{op: merge for op in _MERGES},
}

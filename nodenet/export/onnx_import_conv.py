"""ONNX convolutions, pooling and BatchNormalization as channels-last nodenet blocks.

ONNX computes them on channels-first ``(N, C, ...)`` tensors: each handler reads its input as
the channels-first view of a channels-last nodenet tensor (a Permute block first when it is
not one) and gives such a view back. Kernels go from ``(out, in, *window)`` to Keras's
``(*window, in, out)``; pads that are Keras's ``"same"`` become ``padding="same"``, other
zero pads a ZeroPadding block before a ``"valid"`` block.
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
    channels_first,
    f32,
)


def _padding(imp: Importer, node, kernel, strides, dilations) -> tuple[str, list | None]:
    """``("valid"|"same", None)``, or ``("valid", pads)`` when the pads are neither: a
    ZeroPadding block then goes first."""
    a = attrs(node)
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "SAME_UPPER":
        return "same", None
    if auto == "VALID":
        return "valid", None
    if auto not in ("NOTSET", ""):
        raise Refused(f"auto_pad={auto} is not supported")
    n = len(kernel)
    pads = list(a.get("pads", [0] * 2 * n))
    if not any(pads):
        return "valid", None
    spatial = imp.shape(node.input[0])[2:]
    same = []
    for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
        if size is None:
            raise Refused("padding over a dimension of unknown size")
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        same.append((total // 2, total - total // 2))
    given = [(pads[i], pads[i + n]) for i in range(n)]
    return ("same", None) if given == same else ("valid", given)


def _channels_first(imp: Importer, node, rank: int) -> View:
    view = imp.view(node.input[0])
    return imp.arrange(view, channels_first(rank), node.name or node.output[0])


def _spatial(value: list[int], n: int):
    return int(value[0]) if n == 1 else [int(v) for v in value]


def _zero_pad(imp: Importer, node, view: View, pads: list) -> View:
    n = len(pads)
    padding = list(pads[0]) if n == 1 else [list(p) for p in pads]
    node_id = imp.block(node, f"ZeroPadding{n}D", {"padding": padding}, [view], suffix="_pad")
    return View(node_id, 0, view.axes)


def conv(imp: Importer, node) -> list:
    a = attrs(node)
    w = np.asarray(imp.const(node.input[1], "kernel"), np.float32)
    n = w.ndim - 2
    if n not in (1, 2, 3) or a.get("group", 1) != 1:
        raise Refused("only 1D, 2D and 3D convolutions with group=1 are supported")
    kernel = list(w.shape[2:])
    strides = list(a.get("strides", [1] * n))
    dilations = list(a.get("dilations", [1] * n))
    view = _channels_first(imp, node, n + 2)
    padding, pads = _padding(imp, node, kernel, strides, dilations)
    if pads is not None:
        view = _zero_pad(imp, node, view, pads)
    params: dict = {"filters": int(w.shape[0]), "kernel_size": _spatial(kernel, n)}
    if any(s != 1 for s in strides):
        params["strides"] = _spatial(strides, n)
    if any(d != 1 for d in dilations):
        params["dilation_rate"] = _spatial(dilations, n)
    if padding != "valid":
        params["padding"] = padding
    weights = {"kernel": w.transpose(*range(2, n + 2), 1, 0)}
    if len(node.input) > 2 and node.input[2]:
        weights["bias"] = np.asarray(imp.const(node.input[2], "bias"), np.float32)
    else:
        params["use_bias"] = False
    node_id = imp.block(node, f"Conv{n}D", params, [view], weights)
    return [View(node_id, 0, channels_first(n + 2))]


def pool(imp: Importer, node) -> list:
    a = attrs(node)
    kernel = list(a["kernel_shape"])
    n = len(kernel)
    if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1] * n)):
        raise Refused("ceil_mode and dilations are not supported")
    if len(node.output) > 1 and node.output[1] and imp.users.get(node.output[1]):
        raise Refused("its indices are read")
    strides = list(a.get("strides", [1] * n))
    view = _channels_first(imp, node, n + 2)
    padding, pads = _padding(imp, node, kernel, strides, [1] * n)
    kind = "Max" if node.op_type == "MaxPool" else "Average"
    if pads is not None:
        if kind == "Max" or not a.get("count_include_pad", 0):
            raise Refused(f"pads {pads} differ from Keras's 'same'")
        view = _zero_pad(imp, node, view, pads)
    elif padding == "same" and kind == "Average" and a.get("count_include_pad", 0):
        raise Refused("count_include_pad=1 with 'same' padding is not supported")
    params: dict = {"pool_size": _spatial(kernel, n), "strides": _spatial(strides, n)}
    if padding != "valid":
        params["padding"] = padding
    if strides == kernel:
        del params["strides"]
    node_id = imp.block(node, f"{kind}Pooling{n}D", params, [view])
    return [View(node_id, 0, channels_first(n + 2))]


def global_pool(imp: Importer, node) -> list:
    rank = len(imp.view(node.input[0]).axes)
    if rank not in (3, 4, 5):
        raise Refused("only 1D, 2D and 3D inputs are supported")
    view = _channels_first(imp, node, rank)
    kind = "Max" if node.op_type == "GlobalMaxPool" else "Average"
    node_id = imp.block(node, f"Global{kind}Pooling{rank - 2}D", {"keepdims": True}, [view])
    return [View(node_id, 0, channels_first(rank))]


def reduce_pool(imp: Importer, node) -> list:
    """ReduceMean/ReduceMax over every spatial axis of a channels-last tensor: a global pool."""
    view = imp.view(node.input[0])
    rank = len(view.axes)
    axes = axes_arg(imp, node, rank)
    if None in view.axes or rank not in (3, 4, 5):
        raise Refused("only a reduction over the spatial axes is supported")
    if sorted(view.axes[k] for k in axes) != list(range(1, rank - 1)):
        raise Refused("only a reduction over the spatial axes is supported")
    keep = bool(attrs(node).get("keepdims", 1))
    kind = "Max" if node.op_type == "ReduceMax" else "Average"
    node_id = imp.block(node, f"Global{kind}Pooling{rank - 2}D", {"keepdims": keep}, [view])
    if keep:
        return [View(node_id, 0, view.axes)]
    kept = [view.axes[k] for k in range(rank) if k not in axes]
    if kept != [0, rank - 1]:
        raise Refused("the reduced tensor's axes are in an order nodenet cannot follow")
    return [View(node_id, 0, (0, 1))]


def batch_norm(imp: Importer, node) -> list:
    a = attrs(node)
    if a.get("training_mode", 0) or (len(node.output) > 1 and any(node.output[1:])):
        raise Refused("training mode is not supported")
    view = imp.view(node.input[0])
    rank = len(view.axes)
    if rank > 2:
        view = _channels_first(imp, node, rank)
    gamma, beta, mean, var = (
        np.asarray(imp.const(name, "statistics"), np.float32) for name in node.input[1:5]
    )
    params = {"epsilon": f32(a.get("epsilon", 1e-5)), "momentum": f32(a.get("momentum", 0.9))}
    weights = {"gamma": gamma, "beta": beta, "moving_mean": mean, "moving_variance": var}
    node_id = imp.block(node, "BatchNormalization", params, [view], weights)
    return [View(node_id, 0, view.axes)]

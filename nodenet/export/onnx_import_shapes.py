"""Shape arithmetic in an ONNX graph: what ``torch.onnx.export`` writes for a dynamic batch.

A zero initial state of a recurrent layer comes out as ``Shape(x) -> Gather -> Unsqueeze ->
Concat -> ConstantOfShape(0)``, and ``x.view(x.size(0), -1)`` as ``Shape -> Gather ->
Unsqueeze -> Concat -> Reshape``. These operators are followed symbolically: a shape is a
:class:`Dims` (``None`` for the batch size, known only when the model runs), a tensor of
zeros of such a shape is :data:`ZEROS`, and arithmetic on constants alone is done with
numpy. Nothing here becomes a block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nodenet.errors import ProjectFileError
from nodenet.export.onnx_import import Importer, Refused, View, attrs, axes_arg
from nodenet.safeio import check_size


class Dims(tuple):
    """A 1-D integer tensor holding sizes, ``None`` where only the running model knows."""


ZEROS = "zeros"  # a tensor of zeros whose shape depends on the batch size


@dataclass(frozen=True)
class Directions:
    """The final states ``(2, N, H)`` of a Bidirectional block ``node`` (forward, backward)."""

    node: str


@dataclass(frozen=True)
class Half:
    """One direction's final state ``(1, N, H)``, or ``(N, H)`` once squeezed."""

    node: str
    direction: int
    squeezed: bool = False


def _value(imp: Importer, name: str):
    if name in imp.symbolic:
        return imp.symbolic[name]
    if name in imp.consts:
        return imp.consts[name]
    return None


def symbolic(node, imp: Importer) -> bool:
    """Whether ``node`` computes on shapes and constants only (no data tensor)."""
    names = [n for n in node.input if n]
    return bool(names) and all(n in imp.symbolic or n in imp.consts for n in names)


def shape(imp: Importer, node) -> list:

    dims = list(imp.shape(node.input[0]))
    dims[0] = None
    a = attrs(node)
    start, end = a.get("start", 0), a.get("end", len(dims))
    return [Dims(dims[start:end])]


def constant_of_shape(imp: Importer, node) -> list:
    from nodenet.export.onnx_import_read import tensor_array

    value = attrs(node).get("value")
    fill = tensor_array(value, imp.folder).ravel() if value is not None else np.zeros(1)
    if fill.size != 1 or fill[0] != 0:
        raise Refused("only a tensor of zeros is supported")
    dims = _value(imp, node.input[0])
    if isinstance(dims, Dims) and None in dims:
        return [ZEROS]
    sizes = tuple(int(d) for d in np.asarray(dims).ravel())
    if any(d < 0 for d in sizes):
        raise Refused(f"a negative size in {sizes}")
    check_size("ConstantOfShape", sizes, 4, ProjectFileError)
    return [np.zeros(sizes, np.float32)]


def _as_list(value) -> list:
    if isinstance(value, Dims):
        return list(value)
    return [int(v) for v in np.asarray(value).ravel()]


def gather(imp: Importer, node) -> list:

    data, index = _value(imp, node.input[0]), _value(imp, node.input[1])
    if isinstance(data, Directions):  # h[0], h[-1]: one direction's final state
        k = int(np.asarray(index)) if np.asarray(index).ndim == 0 else None
        if k not in (0, 1, -1, -2) or attrs(node).get("axis", 0) != 0:
            raise Refused("only one direction of a bidirectional layer's states is supported")
        return [Half(data.node, k % 2, squeezed=True)]
    if not isinstance(data, Dims):
        data, index = np.asarray(data), np.asarray(index)
        axis = attrs(node).get("axis", 0)
        rest = data.shape[: axis % max(data.ndim, 1)] + data.shape[axis % max(data.ndim, 1) + 1 :]
        check_size("Gather", (*index.shape, *rest), data.itemsize, ProjectFileError)
        return [np.take(data, index, axis=axis)]
    picked = np.asarray(index)
    values = [data[int(k)] for k in picked.ravel()]
    return [Dims(values) if picked.ndim else Dims(values[:1])]


def unsqueeze(imp: Importer, node) -> list:

    data = _value(imp, node.input[0])
    if isinstance(data, Dims):
        return [data]  # a scalar size becomes a 1-element shape: the same list here
    array = np.asarray(data)
    for k in axes_arg(imp, node, array.ndim + 1):
        array = np.expand_dims(array, k)
    return [array]


def split(imp: Importer, node) -> list:
    """A Bidirectional block's final states split into its two directions."""
    data = _value(imp, node.input[0])
    if not isinstance(data, Directions) or attrs(node).get("axis", 0) != 0:
        raise Refused("only a bidirectional layer's states split by direction are supported")
    if len(node.output) != 2:
        raise Refused("only a split into the two directions is supported")
    return [Half(data.node, 0), Half(data.node, 1)]


def squeeze(imp: Importer, node) -> list:

    data = _value(imp, node.input[0])
    if isinstance(data, Half):
        if axes_arg(imp, node, 3) not in ([0], []):
            raise Refused("only the direction axis of a state can be squeezed")
        return [Half(data.node, data.direction, squeezed=True)]
    if isinstance(data, Dims):
        return [data]
    array = np.asarray(data)
    axes = axes_arg(imp, node, array.ndim) or [k for k, d in enumerate(array.shape) if d == 1]
    return [np.squeeze(array, tuple(axes))]


def concat(imp: Importer, node) -> list:

    parts = [_value(imp, n) for n in node.input if n]
    if any(isinstance(p, Half) for p in parts):
        return [_merged(node, parts)]
    if any(isinstance(p, Dims) for p in parts):
        return [Dims([d for p in parts for d in _as_list(p)])]
    axis = attrs(node)["axis"]
    return [np.concatenate([np.asarray(p) for p in parts], axis=axis)]


def _merged(node, parts: list):
    """Forward and backward final states concatenated along the features: the Bidirectional
    block's own (``merge_mode="concat"``) output."""

    first = parts[0]
    expected = [Half(first.node, 0, True), Half(first.node, 1, True)]
    if parts != expected or attrs(node).get("axis") not in (-1, 1):
        raise Refused("only forward then backward states concatenated are supported")
    return View(first.node, 0, (0, 1))


def cast(imp: Importer, node) -> list:
    data = _value(imp, node.input[0])
    if isinstance(data, Dims):
        return [data]
    from nodenet.export.onnx_import_read import DTYPES

    to = attrs(node).get("to")
    if to not in DTYPES:
        raise Refused(f"casting to element type {to} is not supported")
    return [np.asarray(data).astype(DTYPES[to])]


def identity(imp: Importer, node) -> list:
    return [_value(imp, node.input[0])]


SYMBOLIC: dict[str, Callable] = {
    "Gather": gather,
    "Unsqueeze": unsqueeze,
    "Squeeze": squeeze,
    "Concat": concat,
    "Cast": cast,
    "Identity": identity,
    "ConstantOfShape": constant_of_shape,
    "Split": split,
}

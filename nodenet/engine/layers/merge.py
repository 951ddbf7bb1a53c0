"""Merge blocks: Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Dot.

Like Keras's ``base_merge.py``, the element-wise merges share one base,
:class:`ElementwiseMerge`: it works out the output shape and caches the inputs,
so ``Add`` only supplies its merge function and its gradient. Inputs broadcast
as Keras's do: sizes of 1 stretch, and an input of lower rank gets new axes right
after the batch axis (``(batch, 2)`` meets ``(batch, 7, 7, 2)`` as
``(batch, 1, 1, 2)``); a ``None`` size makes the output's size ``None``.

Axes count the batch axis, as in Keras: on arrays of shape ``(batch, steps,
features)`` axis ``1`` is ``steps``, axis ``-1`` is ``features`` and axis ``0``
(the batch) is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nodenet.engine.layer import Example, Layer, Shape, fmt_shape, register
from nodenet.engine.params import Bool, Int, IntTuple
from nodenet.errors import ParamError, ShapeError

EPSILON = 1e-7  # keras.config.epsilon(), the floor of Dot's L2 norm


def _sizes_match(a: int | None, b: int | None) -> bool:
    return a is None or b is None or a == b


def _first_conflict(shapes: list[Shape], skip: int | None = None) -> tuple[Shape, Shape] | None:
    """The first pair of ``shapes`` whose ranks differ or whose sizes disagree at a position
    (``None`` matches any size; position ``skip`` is not compared), in one linear pass."""
    first = shapes[0]
    known: list = [None] * len(first)
    source: list = [first] * len(first)
    for b in shapes:
        if len(b) != len(first):
            return first, b
        for k, size in enumerate(b):
            if k == skip or size is None:
                continue
            if known[k] is None:
                known[k], source[k] = size, b
            elif known[k] != size:
                return source[k], b
    return None


def _broadcast(a: Shape, b: Shape) -> Shape | None:
    """The element-wise output shape of two batch-free shapes, as Keras's
    ``Merge._compute_elemwise_op_output_shape`` works it out; None if they do not broadcast."""
    if len(a) < len(b):
        a, b = b, a
    lead = len(a) - len(b)
    out = list(a[:lead])
    for i, j in zip(a[lead:], b, strict=True):
        if i is None or j is None:
            out.append(None)
        elif i == 1 or j == 1 or i == j:
            out.append(j if i == 1 else i)
        else:
            return None
    return tuple(out)


def _expanded(shape: tuple, rank: int) -> tuple:
    """An array shape ``(batch, ...)`` with axes of size 1 after the batch up to ``rank``."""
    return shape[:1] + (1,) * (rank - len(shape)) + shape[1:]


def _unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """``grad`` of a broadcast input summed back to the input's own ``shape``."""
    expanded = _expanded(shape, grad.ndim)
    axes = tuple(k for k in range(1, grad.ndim) if expanded[k] == 1 and grad.shape[k] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _shape_axis(axis: int, rank: int) -> int | None:
    """Index into a batch-free shape of ``rank`` for a Keras ``axis``; None if out of range."""
    ndim = rank + 1  # the batch axis counts
    full = axis + ndim if axis < 0 else axis
    return full - 1 if 1 <= full < ndim else None


class Merge(Layer):
    """Base of the merge blocks: variadic, no weights, every input gets a gradient.

    ``VERB`` completes the error sentence "cannot VERB (None, 128) and (None, 64)".
    """

    CATEGORY = "Merge"
    N_INPUTS = None
    MIN_INPUTS = 2
    VERB = "merge"

    def mismatch(self, a: Shape, b: Shape, tail: str = "") -> ShapeError:
        return ShapeError(f"cannot {self.VERB} {fmt_shape(a)} and {fmt_shape(b)}{tail}")


class ElementwiseMerge(Merge):
    """An element-wise merge of inputs that broadcast to one shape, as Keras's do.

    Subclasses supply ``_merge(inputs) -> output`` and
    ``_merge_grads(inputs, output, grad) -> [grad per input]``, all arrays of
    the output's shape ``(batch, *shape)`` (inputs of other shapes are broadcast
    views, their gradients summed back here).
    """

    EXAMPLES = (
        Example({}, ((4,), (4,))),
        Example({}, ((3, 2), (3, 2), (3, 2))),
        Example({}, ((None, 3), (None, 3))),
        Example({}, ((3, 3, 2), (2,))),  # Keras: (batch, 2) meets (batch, 3, 3, 2)
        Example({}, ((3, 1), (1, 4), (3, 4))),
    )

    def infer_shape(self, input_shapes):
        shapes = [tuple(s) for s in input_shapes]
        out = shapes[0]
        for k, shape in enumerate(shapes[1:], start=1):
            merged = _broadcast(out, shape)
            if merged is None:
                other = next((s for s in shapes[:k] if _broadcast(s, shape) is None), out)
                raise self.mismatch(other, shape)
            out = merged
        return out

    def _forward(self, weights, inputs, ctx):
        shapes = [x.shape for x in inputs]
        if any(shape != shapes[0] for shape in shapes):
            rank = max(x.ndim for x in inputs)
            expanded = [x.reshape(_expanded(x.shape, rank)) for x in inputs]
            full = np.broadcast_shapes(*(x.shape for x in expanded))
            inputs = [np.broadcast_to(x, full) for x in expanded]
        out = self._merge(inputs)
        return out, (inputs, out, shapes)

    def _backward(self, weights, cache, grad):
        inputs, out, shapes = cache
        grads = self._merge_grads(inputs, out, grad)
        if any(shape != shapes[0] for shape in shapes):
            grads = [_unbroadcast(g, shape) for g, shape in zip(grads, shapes, strict=True)]
        return grads, {}

    def _merge(self, inputs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _merge_grads(self, inputs, out, grad) -> list[np.ndarray]:
        raise NotImplementedError


def _copies(grad: np.ndarray, count: int) -> list[np.ndarray]:
    """``grad`` for the first input, fresh copies for the others (callers may add in place)."""
    return [grad] + [grad.copy() for _ in range(count - 1)]


@register
class Add(ElementwiseMerge):
    """Element-wise sum of its inputs, broadcast to one shape.

    Input shapes: N × (batch, ...). Output shape: the same (batch, ...).
    """

    TYPE = "Add"
    VERB = "add"

    def _merge(self, inputs):
        out = inputs[0] + inputs[1]
        for x in inputs[2:]:
            out += x
        return out

    def _merge_grads(self, inputs, out, grad):
        return _copies(grad, len(inputs))


@register
class Subtract(ElementwiseMerge):
    """Element-wise difference ``inputs[0] - inputs[1]`` of exactly two inputs.

    Input shapes: 2 × (batch, ...). Output shape: the same (batch, ...).
    """

    TYPE = "Subtract"
    VERB = "subtract"
    N_INPUTS = 2
    EXAMPLES = (
        Example({}, ((4,), (4,))),
        Example({}, ((3, 2), (3, 2))),
        Example({}, ((1,), (4, 1))),  # Keras: (batch, 1) meets (batch, 4, 1)
    )

    def _merge(self, inputs):
        return inputs[0] - inputs[1]

    def _merge_grads(self, inputs, out, grad):
        return [grad, -grad]


@register
class Multiply(ElementwiseMerge):
    """Element-wise product of its inputs, broadcast to one shape.

    Input shapes: N × (batch, ...). Output shape: the same (batch, ...).
    """

    TYPE = "Multiply"
    VERB = "multiply"

    def _merge(self, inputs):
        out = inputs[0] * inputs[1]
        for x in inputs[2:]:
            out *= x
        return out

    def _merge_grads(self, inputs, out, grad):
        # d out / d x_i = product of the others: prefix[i] * suffix[i], no division by x_i
        n = len(inputs)
        grads = [grad.copy() for _ in range(n)]
        prefix = inputs[0]
        for i in range(1, n):
            grads[i] *= prefix
            if i < n - 1:
                prefix = prefix * inputs[i]
        suffix = inputs[-1]
        for i in range(n - 2, -1, -1):
            grads[i] *= suffix
            if i > 0:
                suffix = suffix * inputs[i]
        return grads


@register
class Average(ElementwiseMerge):
    """Element-wise mean of its inputs, broadcast to one shape.

    Input shapes: N × (batch, ...). Output shape: the same (batch, ...).
    """

    TYPE = "Average"
    VERB = "average"

    def _merge(self, inputs):
        total = inputs[0] + inputs[1]
        for x in inputs[2:]:
            total += x
        return total / len(inputs)

    def _merge_grads(self, inputs, out, grad):
        return _copies(grad / len(inputs), len(inputs))


class _Extremum(ElementwiseMerge):
    """Maximum or Minimum: the gradient goes to the input that won.

    On a tie the earliest input (lowest port) takes the whole gradient, as
    ``np.argmax`` would pick it.
    """

    REDUCE: Any = None  # np.maximum or np.minimum

    def _merge(self, inputs):
        out = self.REDUCE(inputs[0], inputs[1])
        for x in inputs[2:]:
            self.REDUCE(out, x, out=out)
        return out

    def _merge_grads(self, inputs, out, grad):
        open_ = np.ones(out.shape, dtype=bool)  # elements no earlier input has won
        grads = []
        for x in inputs:
            won = (x == out) & open_
            grads.append(np.where(won, grad, 0).astype(grad.dtype, copy=False))
            open_ &= ~won
        return grads


@register
class Maximum(_Extremum):
    """Element-wise maximum of its inputs, broadcast to one shape.

    Input shapes: N × (batch, ...). Output shape: the same (batch, ...). The
    gradient flows to the largest input (the earliest one on a tie).
    """

    TYPE = "Maximum"
    VERB = "take the maximum of"
    REDUCE = np.maximum


@register
class Minimum(_Extremum):
    """Element-wise minimum of its inputs, broadcast to one shape.

    Input shapes: N × (batch, ...). Output shape: the same (batch, ...). The
    gradient flows to the smallest input (the earliest one on a tie).
    """

    TYPE = "Minimum"
    VERB = "take the minimum of"
    REDUCE = np.minimum


@register
class Concatenate(Merge):
    """Joins its inputs along ``axis``; every other size must agree.

    Input shapes: N × (batch, ..., d_i, ...) with ``d_i`` on ``axis``.
    Output shape: (batch, ..., sum of d_i, ...). The other sizes are the first
    input's, as in Keras.
    """

    TYPE = "Concatenate"
    VERB = "concatenate"
    PARAMS = (Int("axis", -1, "axis to join along; the batch axis is 0 and cannot be used"),)
    KEY_PARAMS = ("axis",)
    EXAMPLES = (
        Example({}, ((3,), (5,))),
        Example({"axis": 1}, ((2, 4), (3, 4), (1, 4))),
        Example({"axis": 2}, ((2, 3), (2, 5))),
        Example({"axis": -2}, ((2, 3, 4), (2, 1, 4), (2, 2, 4))),
        Example({"axis": -1}, ((None, 4), (None, 2))),
    )

    def check_config(self):
        if self.config["axis"] == 0:
            raise ParamError("axis 0 is the batch axis and cannot be concatenated on", "axis")

    def infer_shape(self, input_shapes):
        shapes = [tuple(s) for s in input_shapes]
        axis = self.config["axis"]
        where = _shape_axis(axis, len(shapes[0]))
        if where is None:
            rank = len(shapes[0])
            tail = f" on axis {axis}: their axes are 1 to {rank} or -{rank} to -1"
            raise self.mismatch(shapes[0], shapes[-1], tail)
        conflict = _first_conflict(shapes, skip=where)
        if conflict is not None:
            raise self.mismatch(*conflict, f" on axis {axis}")
        sizes = [s[where] for s in shapes]
        total = None if None in sizes else sum(sizes)
        return (*shapes[0][:where], total, *shapes[0][where + 1 :])

    def _forward(self, weights, inputs, ctx):
        axis = self.config["axis"]
        ends = np.cumsum([x.shape[axis] for x in inputs])[:-1]
        return np.concatenate(inputs, axis=axis), ends

    def _backward(self, weights, ends, grad):
        return [np.ascontiguousarray(g) for g in np.split(grad, ends, axis=self.config["axis"])], {}


class DotAxes(IntTuple):
    """Dot's ``axes``: one axis for both inputs, or ``[axis of input 0, axis of input 1]``.

    Kept as given (an int stays an int); 0 (the batch axis) is refused.
    """

    def coerce(self, value: Any) -> Any:
        ok_int = isinstance(value, int) and not isinstance(value, bool) and value != 0
        if ok_int:
            return value
        pair = super().coerce(value) if isinstance(value, list | tuple) else None
        if pair is None or 0 in pair:
            raise self.fail(self.describe(), value)
        return pair

    def describe(self) -> str:
        return "a non-zero integer or a list of 2 non-zero integers (0 is the batch axis)"


@register
class Dot(Merge):
    """Dot product of two inputs along one axis of each, per sample (Keras ``batch_dot``).

    Input shapes: (batch, *a) and (batch, *b) with ``a[axes[0]] == b[axes[1]]``.
    Output shape: (batch, *a without its axis, *b without its axis), and
    (batch, 1) when both inputs are (batch, n). With ``normalize`` each input
    is first L2-normalized along its axis (the output is a cosine similarity).
    """

    TYPE = "Dot"
    VERB = "take the dot product of"
    N_INPUTS = 2
    PARAMS = (
        DotAxes("axes", -1, "axis of each input to multiply and sum over", length=2, min=None),
        Bool("normalize", False, "L2-normalize each input along its axis first (cosine)"),
    )
    KEY_PARAMS = ("axes",)
    EXAMPLES = (
        Example({"axes": 1}, ((4,), (4,))),
        Example({"axes": -1}, ((3, 4), (5, 4))),
        Example({"axes": [1, 2]}, ((3, 4), (5, 3))),
        Example({"axes": [1, 1]}, ((4,), (4, 6))),
        Example({"axes": [2, 1], "normalize": True}, ((3, 4), (4,))),
        Example({"axes": 1, "normalize": True}, ((3, 4), (3, 5))),
        Example({"axes": [1, 1]}, ((2, 3, 4), (2, 6))),
    )

    def contracted_axes(self, shapes: list[Shape]) -> tuple[int, int]:
        """Dot's axes as indices into the batch-free shapes."""
        axes = self.config["axes"]
        pair = (axes, axes) if isinstance(axes, int) else tuple(axes)
        found = [_shape_axis(a, len(s)) for a, s in zip(pair, shapes, strict=True)]
        if None in found:
            a, b = shapes
            raise self.mismatch(a, b, f" on axes {pair}: an axis is out of range")
        return found[0], found[1]

    def infer_shape(self, input_shapes):
        a, b = (tuple(s) for s in input_shapes)
        i, j = self.contracted_axes([a, b])
        if a[i] != b[j]:  # Keras refuses a None size against a known one here
            raise self.mismatch(a, b, f" on axes {(i + 1, j + 1)}: sizes {a[i]} and {b[j]} differ")
        out = (*a[:i], *a[i + 1 :], *b[:j], *b[j + 1 :])
        return out or (1,)

    def _forward(self, weights, inputs, ctx):
        x, y = inputs
        i, j = self.contracted_axes([x.shape[1:], y.shape[1:]])
        xn, x_cache = self._normalized(x, i + 1)
        yn, y_cache = self._normalized(y, j + 1)
        # (batch, M, K) @ (batch, K, N): x's axis moved last, y's axis moved first
        xm = np.moveaxis(xn, i + 1, -1)
        ym = np.moveaxis(yn, j + 1, 1)
        x_rest, y_rest = xm.shape[1:-1], ym.shape[2:]
        k = xm.shape[-1]
        batch = x.shape[0]
        z = xm.reshape(batch, -1, k) @ ym.reshape(batch, k, -1)
        out = z.reshape(batch, *x_rest, *y_rest) if x_rest or y_rest else z.reshape(batch, 1)
        return out, (xm, ym, i, j, x_cache, y_cache)

    def _backward(self, weights, cache, grad):
        xm, ym, i, j, x_cache, y_cache = cache
        batch, k = xm.shape[0], xm.shape[-1]
        x3, y3 = xm.reshape(batch, -1, k), ym.reshape(batch, k, -1)
        g3 = grad.reshape(batch, x3.shape[1], y3.shape[2])
        gx = (g3 @ y3.transpose(0, 2, 1)).reshape(xm.shape)
        gy = (x3.transpose(0, 2, 1) @ g3).reshape(ym.shape)
        gx = self._normalized_grad(np.moveaxis(gx, -1, i + 1), i + 1, x_cache)
        gy = self._normalized_grad(np.moveaxis(gy, 1, j + 1), j + 1, y_cache)
        return [np.ascontiguousarray(gx), np.ascontiguousarray(gy)], {}

    def _normalized(self, x: np.ndarray, axis: int) -> tuple[np.ndarray, Any]:
        """``x * min(1 / ||x||, 1 / eps)`` along ``axis`` (Keras's L2 normalize) if asked."""
        if not self.config["normalize"]:
            return x, None
        square_sum = np.sum(x * x, axis=axis, keepdims=True)
        with np.errstate(divide="ignore"):
            inv = 1 / np.sqrt(square_sum)
        clipped = inv > 1 / EPSILON
        inv = np.minimum(inv, 1 / EPSILON).astype(x.dtype, copy=False)
        out = x * inv
        return out, (out, inv, clipped)

    @staticmethod
    def _normalized_grad(grad: np.ndarray, axis: int, cache: Any) -> np.ndarray:
        """dL/dx from dL/d(normalized x); where the norm was floored, the scale is constant."""
        if cache is None:
            return grad
        out, inv, clipped = cache
        radial = np.sum(grad * out, axis=axis, keepdims=True) * out
        return inv * (grad - np.where(clipped, 0, radial))

"""The ONNX graph under construction: nodes, initializers and unique tensor names.

Block mappings (``ops_*.py``) call :class:`OnnxBuilder` only: ``init`` / ``ints`` add
constants, ``op`` appends a node and returns its output name, ``to_nchw`` / ``to_nhwc``
transpose between Keras's channels-last layout and ONNX's channels-first operators, and
``activation`` spells a Keras activation name in ONNX operators. Every tensor a mapping
receives or returns is batch-first and channels-last, as Keras has it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from onnx import NodeProto, TensorProto, helper, numpy_helper

from nodenet.errors import ExportError

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax on one axis, ReduceSum/Split/Squeeze/Unsqueeze with tensor inputs
MAX_OPSET = 21

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_LEAKY_SLOPE = 0.2  # keras.activations.leaky_relu's default negative_slope
_SQRT_HALF = 0.7071067811865476


def _clean(hint: str) -> str:
    """A hint reduced to characters that read well in Netron (letters, digits, ``_./-``)."""
    return re.sub(r"[^A-Za-z0-9_./-]+", "_", hint)[:80] or "t"


class OnnxBuilder:
    """Collects the nodes and initializers of one ONNX graph for one opset."""

    def __init__(self, opset: int = DEFAULT_OPSET):
        if not MIN_OPSET <= int(opset) <= MAX_OPSET:
            raise ExportError(f"ONNX opset {opset} is not supported (use {MIN_OPSET}..{MAX_OPSET})")
        self.opset = int(opset)
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._used: set[str] = set()
        self._next: dict[str, int] = {}
        self._prefix = ""
        self.int_tensors: set[str] = set()  # tensors holding integers (int32 graph inputs)

    # -- names ---------------------------------------------------------------

    def reserve(self, name: str) -> str:
        """Claim ``name`` exactly (a graph input or output); refuses a name already taken."""
        if name in self._used:
            raise ExportError(f"ONNX tensor name {name!r} is used twice")
        self._used.add(name)
        return name

    def fresh(self, hint: str = "") -> str:
        """A tensor name not used before, built from the current block's prefix and ``hint``."""
        base = _clean(f"{self._prefix}/{hint}" if self._prefix and hint else self._prefix or hint)
        k = self._next.get(base, 1)  # the next suffix to try: linear in the names made
        name = base if k == 1 else f"{base}_{k}"
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._next[base] = k + 1
        self._used.add(name)
        return name

    def scope(self, prefix: str) -> None:
        """Name the tensors created from now on after ``prefix`` (the block id)."""
        self._prefix = _clean(prefix) if prefix else ""

    # -- constants -----------------------------------------------------------

    def init(self, hint: str, array: Any) -> str:
        """An initializer holding ``array``: float32, or int64 when an integer array is given."""
        arr = np.asarray(array)
        if arr.dtype == np.bool_:
            pass
        elif np.issubdtype(arr.dtype, np.integer):
            arr = arr.astype(np.int64)
        else:
            arr = arr.astype(np.float32)
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def ints(self, hint: str, values: Sequence[int]) -> str:
        """An int64 1-D initializer (shapes, axes, pads, starts/ends)."""
        return self.init(hint, np.asarray([int(v) for v in values], dtype=np.int64).reshape(-1))

    def weight_bytes(self) -> int:
        """Bytes of every initializer so far."""
        return sum(len(t.raw_data) or 8 for t in self.initializers)

    def scalar(self, hint: str, value: float) -> str:
        """A float32 scalar initializer (broadcasts against any tensor)."""
        return self.init(hint, np.asarray(value, dtype=np.float32))

    # -- nodes ---------------------------------------------------------------

    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        hint: str = "",
        outputs: int = 1,
        **attributes: Any,
    ) -> Any:
        """Append an ``op_type`` node; its output name, or a list of names when ``outputs > 1``.

        An input given as ``""`` is an omitted optional input; attributes set to ``None``
        are left out.
        """
        hint = hint or op_type.lower()
        names = [self.fresh(hint if outputs == 1 else f"{hint}_{i}") for i in range(outputs)]
        attrs = {k: v for k, v in attributes.items() if v is not None}
        node = helper.make_node(op_type, list(inputs), names, name=names[0], **attrs)
        self.nodes.append(node)
        return names[0] if outputs == 1 else names

    # -- layout --------------------------------------------------------------

    def to_nchw(self, x: str, rank: int) -> str:
        """``x`` (batch, *spatial, channels) as (batch, channels, *spatial); ``rank`` is the
        number of spatial axes (1, 2 or 3)."""
        return self.op("Transpose", [x], "to_nchw", perm=[0, rank + 1, *range(1, rank + 1)])

    def to_nhwc(self, x: str, rank: int) -> str:
        """``x`` (batch, channels, *spatial) back to (batch, *spatial, channels)."""
        return self.op("Transpose", [x], "to_nhwc", perm=[0, *range(2, rank + 2), 1])

    # -- helpers shared by mappings -----------------------------------------------

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool = True) -> str:
        """A ``Reduce*`` over ``axes``: axes as an attribute or an input, as the opset wants."""
        keep = int(bool(keepdims))
        as_input = op_type == "ReduceSum" or self.opset >= 18
        if as_input:
            return self.op(op_type, [x, self.ints("axes", axes)], keepdims=keep)
        return self.op(op_type, [x], axes=[int(a) for a in axes], keepdims=keep)

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        """``x`` reshaped to ``shape`` (0 keeps an axis, -1 is inferred; the batch is ``0``)."""
        return self.op("Reshape", [x, self.ints("shape", shape)], "reshape")

    def mul(self, x: str, value: float) -> str:
        return self.op("Mul", [x, self.scalar("k", value)])

    def add(self, x: str, value: float) -> str:
        return self.op("Add", [x, self.scalar("k", value)])

    def clip(self, x: str, low: float | None, high: float | None) -> str:
        lo = self.scalar("min", low) if low is not None else ""
        hi = self.scalar("max", high) if high is not None else ""
        return self.op("Clip", [x, lo, hi] if hi else [x, lo])

    def softplus(self, x: str) -> str:
        """log(1 + exp(x)) computed without overflow: relu(x) + log(1 + exp(-|x|))."""
        neg_abs = self.op("Neg", [self.op("Abs", [x])])
        tail = self.op("Log", [self.add(self.op("Exp", [neg_abs]), 1.0)])
        return self.op("Add", [self.op("Relu", [x]), tail], "softplus")

    def sigmoid(self, x: str) -> str:
        return self.op("Sigmoid", [x])

    def activation(self, x: str, name: str) -> str:
        """``x`` through the Keras activation ``name`` (softmax-like ones on the last axis)."""
        fn = _ACTIVATIONS.get(name)
        if fn is None:
            raise ExportError(f"activation {name!r} has no ONNX mapping")
        return fn(self, x)


def _sparsemax(b: OnnxBuilder, x: str) -> str:
    """Keras 3's sparsemax on the last axis: relu(x - tau), tau from the sorted values."""
    n = b.op("Gather", [b.op("Shape", [x]), b.ints("last", [-1])])
    ranked = b.op("TopK", [x, n], "sorted", outputs=2, axis=-1, largest=1, sorted=1)[0]
    cumsum = b.op("CumSum", [ranked, b.init("axis", np.asarray(-1, dtype=np.int64))])
    ones = b.op(
        "ConstantOfShape",
        [b.op("Shape", [ranked])],
        value=numpy_helper.from_array(np.ones(1, np.float32)),
    )
    r = b.op("CumSum", [ones, b.init("axis", np.asarray(-1, dtype=np.int64))])
    gap = b.op("Sub", [ranked, b.op("Div", [b.add(cumsum, -1.0), r])])
    support = b.op("Cast", [b.op("Greater", [gap, b.scalar("zero", 0.0)])], to=TensorProto.FLOAT)
    k = b.reduce("ReduceSum", support, [-1])
    total = b.reduce("ReduceSum", b.op("Mul", [support, cumsum]), [-1])
    tau = b.op("Div", [b.add(total, -1.0), k])
    return b.op("Relu", [b.op("Sub", [x, tau])], "sparsemax")


def _sparse_plus(b: OnnxBuilder, x: str) -> str:
    near = b.add(b.clip(x, -1.0, 1.0), 1.0)
    mid = b.mul(b.op("Mul", [near, near]), 0.25)
    return b.op("Where", [b.op("Less", [x, b.scalar("one", 1.0)]), mid, x], "sparse_plus")


def _gelu(b: OnnxBuilder, x: str) -> str:
    cdf = b.mul(b.add(b.op("Erf", [b.mul(x, _SQRT_HALF)]), 1.0), 0.5)
    return b.op("Mul", [x, cdf], "gelu")


def _squareplus(b: OnnxBuilder, x: str) -> str:
    root = b.op("Sqrt", [b.add(b.op("Mul", [x, x]), 4.0)])
    return b.mul(b.op("Add", [x, root]), 0.5)


_ACTIVATIONS: dict[str, Any] = {
    "linear": lambda b, x: x,
    "relu": lambda b, x: b.op("Relu", [x]),
    "sigmoid": lambda b, x: b.op("Sigmoid", [x]),
    "tanh": lambda b, x: b.op("Tanh", [x]),
    "softmax": lambda b, x: b.op("Softmax", [x], axis=-1),
    "log_softmax": lambda b, x: b.op("LogSoftmax", [x], axis=-1),
    "elu": lambda b, x: b.op("Elu", [x], alpha=1.0),
    "selu": lambda b, x: b.op("Selu", [x], alpha=_SELU_ALPHA, gamma=_SELU_SCALE),
    "softplus": lambda b, x: b.softplus(x),
    "softsign": lambda b, x: b.op("Softsign", [x]),
    "leaky_relu": lambda b, x: b.op("LeakyRelu", [x], alpha=_LEAKY_SLOPE),
    "gelu": _gelu,
    "swish": lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])], "swish"),
    "silu": lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])], "silu"),
    "relu6": lambda b, x: b.clip(x, 0.0, 6.0),
    "celu": lambda b, x: b.op("Celu", [x], alpha=1.0),
    "squareplus": _squareplus,
    "soft_shrink": lambda b, x: b.op("Shrink", [x], bias=0.5, lambd=0.5),
    "hard_shrink": lambda b, x: b.op("Shrink", [x], bias=0.0, lambd=0.5),
    "sparse_plus": _sparse_plus,
    "tanh_shrink": lambda b, x: b.op("Sub", [x, b.op("Tanh", [x])]),
    "sparse_sigmoid": lambda b, x: b.clip(b.mul(b.add(x, 1.0), 0.5), 0.0, 1.0),
    "exponential": lambda b, x: b.op("Exp", [x]),
    "hard_sigmoid": lambda b, x: b.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5),
    "hard_silu": lambda b, x: b.op("Mul", [x, b.op("HardSigmoid", [x], alpha=1 / 6, beta=0.5)]),
    "hard_swish": lambda b, x: b.op("Mul", [x, b.op("HardSigmoid", [x], alpha=1 / 6, beta=0.5)]),
    "hard_tanh": lambda b, x: b.clip(x, -1.0, 1.0),
    "log_sigmoid": lambda b, x: b.op("Neg", [b.softplus(b.op("Neg", [x]))]),
    "mish": lambda b, x: b.op("Mul", [x, b.op("Tanh", [b.softplus(x)])], "mish"),
    "sparsemax": _sparsemax,
}

ACTIVATION_NAMES: tuple[str, ...] = tuple(_ACTIVATIONS)

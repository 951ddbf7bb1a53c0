"""MultiHeadAttention, as Keras 3's ``keras/src/layers/attention/multi_head_attention.py``.

The query, key and value are projected to ``num_heads`` heads (``query/kernel`` of shape
(query features, heads, key_dim), and so on), the projected query scaled by
``1 / sqrt(key_dim)`` is dotted with the projected key over ``attention_axes``, a softmax
over the key's attention axes weighs the projected values, and ``attention_output``
projects (heads, value_dim) back to ``output_shape`` (the query's features when not
given). The products are the einsum equations Keras builds (:func:`equations`), so
attention over several axes (``attention_axes=(1, 2)`` on (batch, 4, 5, 8) inputs) is
the same computation as Keras's.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from nodenet.engine.initializers import normalize, resolve, variance_scaling_config
from nodenet.engine.layer import (
    Example,
    Layer,
    Shape,
    WeightSpec,
    fmt_shape,
    kernel_params,
    known,
    register,
)
from nodenet.engine.layers.attention import (
    call_params,
    drop,
    masked_softmax,
    same,
    softmax_grad,
    take_inputs,
)
from nodenet.engine.params import MAX_RANK, Bool, Float, Int, Param, _in_limit, _is_int
from nodenet.errors import ParamError, ShapeError


class _Cache(NamedTuple):
    """What the backward pass of MultiHeadAttention reads from its forward pass."""

    inputs: list
    n_inputs: int
    query: Any  # the projections (batch, ..., heads, dim)
    key: Any
    value: Any
    scaled: Any  # the scaled query
    scale: float
    axes: tuple
    probs: Any  # softmax of the scores
    dropped: Any  # probs after dropout
    keep: Any  # the dropout mask, or None
    combined: Any  # the heads' weighted values
    norm: tuple  # the axes the softmax normalizes over


@dataclass(frozen=True)
class IntList(Param):
    """``null`` or a list of integers (one integer is a list of one); ``min`` bounds them."""

    min: int | None = None
    optional: ClassVar[bool] = True
    kind: ClassVar[str] = "ints"

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None
        if _is_int(value):
            value = [value]
        ok = isinstance(value, list | tuple) and 1 <= len(value) <= MAX_RANK
        if not ok or not all(_is_int(v) and _in_limit(v) for v in value):
            raise self.fail(self.describe(), value)
        if self.min is not None and any(v < self.min for v in value):
            raise self.fail(self.describe(), value)
        return list(value)

    def describe(self) -> str:
        bound = "" if self.min is None else f" >= {self.min}"
        return f"null, an integer{bound} or a list of such integers"


def equations(rank: int, axes: tuple[int, ...]) -> tuple[str, str]:
    """Keras's einsum equations (``_build_attention_equation``) for projected tensors of
    ``rank`` (batch, ..., heads, channels) attending over ``axes``: the key-query dot
    product and the combination of weights and values."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch = [i for i in range(rank) if i not in axes and i != rank - 1]
    source, offset = "", rank
    for i in range(rank):
        if i in batch or i == rank - 1:
            source += target[i]
        else:
            source += letters[offset]
            offset += 1
    product = "".join(
        [target[i] for i in batch] + [target[i] for i in axes] + [source[i] for i in axes]
    )
    return f"{source},{target}->{product}", f"{product},{source}->{target}"


def _grad_equation(equation: str, keep: int, wanted: int) -> str:
    """The einsum giving dL/d(operand ``wanted``) from operand ``keep`` and dL/d(output)."""
    ins, out = equation.split("->")
    parts = ins.split(",")
    return f"{parts[keep]},{out}->{parts[wanted]}"


def einsum_initializer(value: Any, contracted: int, rank: int) -> Any:
    """A kernel initializer as Keras's EinsumDense gives it: a VarianceScaling one (glorot,
    he, lecun) without axes takes its fans from the contracted (input) axes and the others
    (``query/kernel`` (dim, heads, key_dim): fan in ``dim``, fan out ``heads * key_dim``)."""
    config = variance_scaling_config(value)
    if config is None or config["input_axes"] is not None:
        return value
    kind, _ = resolve(value)
    given = value.get("config", {}) if isinstance(value, dict) else {}
    axes = {"input_axes": list(range(contracted)), "output_axes": list(range(contracted, rank))}
    return normalize({"class_name": kind.class_name, "config": {**given, **axes}})


def _project(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """(batch, ..., features) through a (features, heads, size) kernel: (batch, ..., heads,
    size)."""
    z = np.tensordot(x, kernel, axes=([-1], [0]))
    if bias is not None:
        z += bias
    return z


def _project_grads(x, kernel, dz, has_bias: bool) -> tuple[np.ndarray, dict]:
    """dL/dx and the kernel's (and bias's) gradients of :func:`_project`."""
    dz2 = dz.reshape(-1, math.prod(kernel.shape[1:]))
    grads = {"kernel": (x.reshape(-1, kernel.shape[0]).T @ dz2).reshape(kernel.shape)}
    if has_bias:
        grads["bias"] = dz2.sum(axis=0).reshape(kernel.shape[1:])
    dx = np.tensordot(dz, kernel, axes=([-2, -1], [1, 2]))
    return dx, grads


@register
class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al., 2017) of a query over a value (and optional key).

    Inputs: query (..., Tq, dim), value (..., Tv, vdim), optional key (..., Tv, kdim),
    in that port order (the key is the value when not given). Output: the query's shape,
    its last axis ``output_shape`` when given. ``attention_axes`` (batch counted as 0)
    defaults to every axis but the batch and features.
    """

    TYPE = "MultiHeadAttention"
    CATEGORY = "Attention"
    N_INPUTS = None
    MIN_INPUTS = 2
    MAX_INPUTS = 3  # query, value and an optional key
    CALL_ARGS = ("use_causal_mask", "return_attention_scores")
    PARAMS = (
        Int("num_heads", 2, "number of attention heads", min=1),
        Int("key_dim", 8, "size of each head for query and key", min=1),
        Int("value_dim", None, "size of each head for value (null: key_dim)", min=1, optional=True),
        Float(
            "dropout",
            0.0,
            "fraction of the attention weights dropped while training",
            min=0.0,
            max=1.0,
        ),
        Bool("use_bias", True, "the projections add learned biases"),
        IntList(
            "output_shape",
            None,
            "output features after the batch and steps (null: the query's features)",
            min=1,
        ),
        IntList(
            "attention_axes",
            None,
            "axes attention runs over, batch counted as 0 (null: "
            "every axis but the batch and features)",
        ),
        *kernel_params(),
        Int("seed", None, "seed of the exported layer's dropout", min=0, optional=True),
        *call_params(),
    )
    KEY_PARAMS = ("num_heads", "key_dim")
    EXAMPLES = (
        Example({"num_heads": 2, "key_dim": 3}, ((4, 3), (4, 3))),
        Example({"num_heads": 2, "key_dim": 2, "value_dim": 3}, ((3, 4), (2, 3), (2, 2))),
        Example(
            {"num_heads": 1, "key_dim": 2, "output_shape": [3], "use_bias": False}, ((3, 2), (4, 3))
        ),
        Example({"num_heads": 2, "key_dim": 2, "use_causal_mask": True}, ((4, 3), (4, 3))),
        Example({"num_heads": 2, "key_dim": 2, "use_causal_mask": True}, ((3, 2), (4, 2))),
        Example({"num_heads": 2, "key_dim": 2, "attention_axes": [1, 2]}, ((3, 2, 4), (3, 2, 4))),
        Example(
            {"num_heads": 1, "key_dim": 3, "attention_axes": [2], "output_shape": [2, 2]},
            ((2, 3, 4), (2, 4, 3)),
        ),
        Example({"num_heads": 2, "key_dim": 2, "dropout": 0.25, "seed": 3}, ((3, 2), (3, 2))),
        # (no causal mask with scores here: Keras's Softmax then masks the scores output,
        # and a loss on it fails to broadcast that mask in Keras's training)
        Example(
            {"num_heads": 2, "key_dim": 2, "return_attention_scores": True},
            ((3, 2), (3, 4), (3, 2)),
        ),
    )

    def n_outputs(self) -> int:
        return 2 if self.config["return_attention_scores"] else 1

    def infer_shapes(self, input_shapes):
        """The output and, with ``return_attention_scores``, the attention weights before
        dropout: (heads, Tq, Tv) for (batch, T, features) inputs; in general the axes
        that are not attended, the heads, the query's attention axes, the key's. (Keras's
        symbolic shape says (heads, Tq, Tq) whatever the key; its arrays are these.)"""
        out = self.infer_shape(input_shapes)
        if not self.config["return_attention_scores"]:
            return [out]
        query, _, key = take_inputs(self, input_shapes)
        return [out, self._scores_shape(query, key)[1:]]

    def check_config(self):
        axes = self.config["attention_axes"]
        if axes is not None and len(set(axes)) != len(axes):
            raise ParamError(f"attention_axes repeats an axis (got {axes})", "attention_axes")

    @property
    def head_value_dim(self) -> int:
        return self.config["value_dim"] or self.config["key_dim"]

    def axes(self, query: Shape) -> tuple[int, ...]:
        """The attention axes counted with the batch as 0, as Keras normalizes them."""
        rank = len(query) + 1
        given = self.config["attention_axes"]
        if given is None:
            return tuple(range(1, rank - 1))
        axes = tuple(a + rank if a < 0 else a for a in given)
        if any(not 1 <= a < rank - 1 for a in axes) or len(set(axes)) != len(axes):
            raise ShapeError(
                f"MultiHeadAttention attention_axes {given} must name axes between the batch "
                f"and the features of the query {fmt_shape(query)} (1 to {rank - 2})"
            )
        return axes

    def _scores_shape(self, query: Shape, key: Shape) -> tuple:
        axes = self.axes(query)
        rank = len(query) + 2
        batch = [i for i in range(rank) if i not in axes and i != rank - 1]
        full_q = (None, *query[:-1], self.config["num_heads"])
        full_k = (None, *key[:-1], self.config["num_heads"])
        return tuple(
            [full_q[i] for i in batch] + [full_q[i] for i in axes] + [full_k[i] for i in axes]
        )

    def _mask_shape(self, query: Shape, value: Shape, scores: tuple) -> list:
        """The causal mask's shape as Keras expands it to the scores' rank; raises the
        ShapeError Keras raises (as a ValueError) when it does not fit the scores."""
        shape = [1, query[0], value[0]]
        axis = -len(self.axes(query)) * 2 - 1
        while len(shape) < len(scores):
            pos = axis + len(shape) + 1
            if pos < 0:
                raise self._mask_error(query, value)
            shape.insert(pos, 1)
        for m, s in zip(shape, scores, strict=True):
            if m is not None and s is not None and m != 1 and m != s:
                raise self._mask_error(query, value)
        return shape

    def _mask_error(self, query: Shape, value: Shape) -> ShapeError:
        return ShapeError(
            f"MultiHeadAttention's causal mask (axis 1 of the query {fmt_shape(query)} by "
            f"axis 1 of the value {fmt_shape(value)}, as Keras builds it) does not fit "
            f"attention over axes {list(self.axes(query))}; Keras refuses it too"
        )

    def infer_shape(self, input_shapes):
        query, value, key = take_inputs(self, input_shapes)
        for shape in (query, value, key):
            if len(shape) < 2:
                raise ShapeError(
                    "MultiHeadAttention expects inputs of 3 or more dimensions (batch, steps, "
                    f"features), got {fmt_shape(shape)}"
                )
        if len(value) != len(query) or len(key) != len(query):
            raise ShapeError(
                "MultiHeadAttention needs query, value and key of one rank, got "
                f"{fmt_shape(query)}, {fmt_shape(value)} and {fmt_shape(key)}"
            )
        if not all(same(a, b) for a, b in zip(value[:-1], key[:-1], strict=True)):
            raise ShapeError(
                "MultiHeadAttention needs value and key equal on every axis but the last, got "
                f"{fmt_shape(value)} and {fmt_shape(key)}"
            )
        axes = self.axes(query)
        for a in range(1, len(query)):
            if a not in axes and not same(query[a - 1], key[a - 1]):
                raise ShapeError(
                    f"MultiHeadAttention needs query and key equal on axis {a} (not an "
                    f"attention axis), got {fmt_shape(query)} and {fmt_shape(key)}"
                )
        if self.config["use_causal_mask"]:
            self._mask_shape(query, value, self._scores_shape(query, key))
        out = self.config["output_shape"]
        return (*query[:-1], *out) if out else tuple(query)

    def weight_specs(self, input_shapes):
        query, value, key = take_inputs(self, input_shapes)
        c = self.config
        heads, kd, vd = c["num_heads"], c["key_dim"], self.head_value_dim
        out = tuple(c["output_shape"] or (known(query[-1], "the query's features", query),))
        sizes = {
            "query": (known(query[-1], "the query's features", query), heads, kd),
            "key": (known(key[-1], "the key's features", key), heads, kd),
            "value": (known(value[-1], "the value's features", value), heads, vd),
            "attention_output": (heads, vd, *out),
        }
        specs = []
        for name, shape in sizes.items():
            bias = shape[1:] if name != "attention_output" else out
            contracted = 2 if name == "attention_output" else 1
            specs.append(
                WeightSpec(
                    f"{name}/kernel",
                    shape,
                    einsum_initializer(c["kernel_initializer"], contracted, len(shape)),
                    regularizer=c["kernel_regularizer"],
                )
            )
            if c["use_bias"]:
                specs.append(
                    WeightSpec(
                        f"{name}/bias",
                        bias,
                        c["bias_initializer"],
                        regularizer=c["bias_regularizer"],
                    )
                )
        return specs

    # -- computation ---------------------------------------------------------------------

    def _forward(self, weights, inputs, ctx):
        xq, xv = inputs[0], inputs[1]
        xk = inputs[2] if len(inputs) == 3 else xv
        query = self._proj(weights, "query", xq)
        key = self._proj(weights, "key", xk)
        value = self._proj(weights, "value", xv)
        axes = self.axes(xq.shape[1:])
        dot, combine = equations(query.ndim, axes)
        scale = query.dtype.type(1.0 / math.sqrt(float(self.config["key_dim"])))
        scaled = query * scale
        scores = np.einsum(dot, key, scaled)
        mask = None
        if self.config["use_causal_mask"]:
            shape = self._mask_shape(xq.shape[1:], xv.shape[1:], scores.shape)
            mask = np.tril(np.ones((xq.shape[1], xv.shape[1]), dtype=bool)).reshape(shape)
        norm = tuple(range(scores.ndim - len(axes), scores.ndim))
        probs = masked_softmax(scores, mask, norm)
        dropped, keep = drop(probs, self.config["dropout"], ctx)
        combined = np.einsum(combine, dropped, value)
        out = np.tensordot(combined, weights["attention_output/kernel"], axes=([-2, -1], [0, 1]))
        if "attention_output/bias" in weights:
            out += weights["attention_output/bias"]
        cache = _Cache(
            inputs=inputs,
            n_inputs=len(inputs),
            query=query,
            key=key,
            value=value,
            scaled=scaled,
            scale=scale,
            axes=axes,
            probs=probs,
            dropped=dropped,
            keep=keep,
            combined=combined,
            norm=norm,
        )
        return ([out, probs] if self.config["return_attention_scores"] else out), cache

    def _proj(self, weights, name, x):
        return _project(x, weights[f"{name}/kernel"], weights.get(f"{name}/bias"))

    def _backward(self, weights, cache, grad):
        inputs, n_inputs, query, key, value, scaled, scale, axes, *rest = cache
        probs, dropped, keep, combined, norm = rest
        grad, dprobs = grad if isinstance(grad, list) else (grad, None)
        dot, combine = equations(query.ndim, axes)
        grads: dict[str, np.ndarray] = {}
        kernel = weights["attention_output/kernel"]
        n_out = kernel.ndim - 2
        lead = combined.ndim - 2
        grads["attention_output/kernel"] = np.tensordot(
            combined, grad, axes=(list(range(lead)), list(range(lead)))
        )
        if "attention_output/bias" in weights:
            grads["attention_output/bias"] = grad.sum(axis=tuple(range(grad.ndim - n_out)))
        dcombined = np.tensordot(
            grad,
            kernel,
            axes=(list(range(grad.ndim - n_out, grad.ndim)), list(range(2, kernel.ndim))),
        )
        ddropped = np.einsum(_grad_equation(combine, 1, 0), value, dcombined)
        dvalue = np.einsum(_grad_equation(combine, 0, 1), dropped, dcombined)
        if keep is not None:
            ddropped = ddropped * keep
        if dprobs is not None:  # the scores output's gradient (the weights before dropout)
            ddropped = ddropped + dprobs
        dscores = softmax_grad(probs, ddropped, norm)
        dkey = np.einsum(_grad_equation(dot, 1, 0), scaled, dscores)
        dquery = np.einsum(_grad_equation(dot, 0, 1), key, dscores) * scale
        xq, xv = inputs[0], inputs[1]
        xk = inputs[2] if n_inputs == 3 else xv
        dxs = []
        for name, x, dz in (("query", xq, dquery), ("key", xk, dkey), ("value", xv, dvalue)):
            dx, g = _project_grads(x, weights[f"{name}/kernel"], dz, f"{name}/bias" in weights)
            grads.update({f"{name}/{k}": v for k, v in g.items()})
            dxs.append(dx)
        dq, dk, dv = dxs
        ordered = {s: grads[s] for s in weights if s in grads}
        if n_inputs == 3:
            return [dq, dv, dk], ordered
        return [dq, dv + dk], ordered

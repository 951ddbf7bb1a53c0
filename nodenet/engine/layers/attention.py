"""Dot-product and additive attention: Attention (Luong) and AdditiveAttention (Bahdanau).

Both read ``[query, value]`` or ``[query, value, key]`` (the key is the value when not
given), as Keras's ``keras/src/layers/attention/attention.py`` does: scores of every
query step against every key step, a softmax over the key steps, and the values
weighted by it. Shapes are ``(..., Tq, dim)`` for the query and ``(..., Tv, dim)`` for
the value and key; the output is ``(..., Tq, value dim)``. ``use_causal_mask`` (a call
argument in Keras) stops step ``i`` attending to steps ``j > i``; ``dropout`` drops
attention weights while training. The helpers here (the inputs' checks, the masked
softmax and its gradient, the dropout) serve :mod:`.multi_head_attention` too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nodenet.engine.layer import Example, Layer, Shape, WeightSpec, fmt_shape, known, register
from nodenet.engine.params import Bool, Choice, Float, Int, Param
from nodenet.errors import ShapeError

LARGE_NEGATIVE = 1e9  # what Keras subtracts from (MHA: puts at) masked scores


def take_inputs(layer: Layer, input_shapes: list[Shape]) -> tuple[Shape, Shape, Shape]:
    """(query, value, key) shapes of a 2- or 3-input attention block; the key is the
    value when not given."""
    if len(input_shapes) > 3:
        raise ShapeError(
            f"{layer.TYPE} takes query, value and an optional key: 2 or 3 inputs, "
            f"got {len(input_shapes)}"
        )
    query, value = (tuple(s) for s in input_shapes[:2])
    key = tuple(input_shapes[2]) if len(input_shapes) == 3 else value
    return query, value, key


def same(a: int | None, b: int | None) -> bool:
    return a is None or b is None or a == b


def causal_mask(t_query: int, t_value: int) -> np.ndarray:
    """Keras's causal mask, shape (1, Tq, Tv): query step ``i`` sees key steps ``j <= i``."""
    return np.tril(np.ones((t_query, t_value), dtype=bool))[None]


def masked_softmax(scores: np.ndarray, mask: np.ndarray | None, axes: tuple[int, ...]):
    """Softmax of ``scores`` over ``axes``, masked positions (``mask`` False) getting 0."""
    if mask is not None:
        scores = np.where(mask, scores, scores.dtype.type(-LARGE_NEGATIVE))
    shifted = scores - scores.max(axis=axes, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=axes, keepdims=True)
    if mask is not None:
        probs = np.where(mask, probs, 0)
    return probs


def softmax_grad(probs: np.ndarray, grad: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """dL/dscores from dL/dprobs for a softmax over ``axes`` (a masked position, its
    probability 0, gets 0)."""
    return probs * (grad - np.sum(grad * probs, axis=axes, keepdims=True))


def drop(probs: np.ndarray, rate: float, ctx) -> tuple[np.ndarray, np.ndarray | None]:
    """Attention weights after dropout while training (kept ones scaled by 1 / (1 - rate),
    as Keras's ``backend.random.dropout``), and the scaled keep mask for the backward."""
    if not ctx.training or rate == 0.0:
        return probs, None
    if rate >= 1.0:
        scale = np.zeros(probs.shape, dtype=probs.dtype)
    else:
        keep = ctx.rng.random(probs.shape, dtype=np.float32) >= np.float32(rate)
        scale = keep.astype(probs.dtype) / probs.dtype.type(1.0 - rate)
    return probs * scale, scale


def call_params() -> tuple[Param, ...]:
    """The call arguments the attention blocks take as parameters."""
    return (
        Bool(
            "use_causal_mask",
            False,
            "step i attends only to steps j <= i (decoder self-attention); a call argument "
            "in Keras",
        ),
        Bool(
            "return_attention_scores",
            False,
            "also output the attention weights (a second output); a call argument in Keras",
        ),
    )


class _DotAttention(Layer):
    """The shared base: inputs, causal mask, softmax, dropout and the weighted values.

    Subclasses supply ``_scores(weights, q, k) -> (scores, cache)`` and
    ``_scores_grads(weights, q, k, cache, dscores) -> (dq, dk, weight grads)`` on arrays
    (batch, ..., Tq, dim) and (batch, ..., Tv, dim), scores (batch, ..., Tq, Tv).
    """

    CATEGORY = "Attention"
    N_INPUTS = None
    MIN_INPUTS = 2
    MAX_INPUTS = 3  # query, value and an optional key
    CALL_ARGS = ("use_causal_mask", "return_attention_scores")
    KEY_PARAMS = ("use_causal_mask",)

    def n_outputs(self) -> int:
        return 2 if self.config["return_attention_scores"] else 1

    def infer_shapes(self, input_shapes):
        out = self.infer_shape(input_shapes)
        if not self.config["return_attention_scores"]:
            return [out]
        query, _, key = take_inputs(self, input_shapes)
        return [out, (*query[:-1], key[-2])]  # the weights after dropout, as Keras returns

    def infer_shape(self, input_shapes):
        query, value, key = take_inputs(self, input_shapes)
        for shape in (query, value, key):
            if len(shape) < 2:
                raise ShapeError(
                    f"{self.TYPE} expects inputs of 3 or more dimensions (batch, steps, "
                    f"features), got {fmt_shape(shape)}"
                )
        if len(value) != len(query) or len(key) != len(query):
            raise ShapeError(
                f"{self.TYPE} needs query, value and key of one rank, got "
                f"{fmt_shape(query)}, {fmt_shape(value)} and {fmt_shape(key)}"
            )
        lead = query[:-2]
        if not all(same(a, b) for s in (value, key) for a, b in zip(lead, s[:-2], strict=True)):
            raise ShapeError(
                f"{self.TYPE} needs query, value and key with the same leading axes, got "
                f"{fmt_shape(query)}, {fmt_shape(value)} and {fmt_shape(key)}"
            )
        if not same(value[-2], key[-2]):
            raise ShapeError(
                f"{self.TYPE} needs value and key of the same number of steps, got "
                f"{fmt_shape(value)} and {fmt_shape(key)}"
            )
        if not same(query[-1], key[-1]):
            raise ShapeError(
                f"{self.TYPE} scores the query against the key: their last axes must agree, "
                f"got {fmt_shape(query)} and {fmt_shape(key)}"
            )
        return (*query[:-1], value[-1])

    def _forward(self, weights, inputs, ctx):
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) == 3 else v
        scores, score_cache = self._scores(weights, q, k)
        mask = None
        if self.config["use_causal_mask"]:
            mask = causal_mask(scores.shape[-2], scores.shape[-1])
        probs = masked_softmax(scores, mask, (-1,))
        dropped, scale = drop(probs, self.config["dropout"], ctx)
        out = dropped @ v
        cache = (q, v, k, len(inputs), score_cache, probs, dropped, scale)
        return ([out, dropped] if self.config["return_attention_scores"] else out), cache

    def _backward(self, weights, cache, grad):
        q, v, k, n_inputs, score_cache, probs, dropped, scale = cache
        grad, dweights = grad if isinstance(grad, list) else (grad, None)
        dv = np.swapaxes(dropped, -1, -2) @ grad
        dprobs = grad @ np.swapaxes(v, -1, -2)
        if dweights is not None:
            dprobs = dprobs + dweights
        if scale is not None:
            dprobs = dprobs * scale
        dscores = softmax_grad(probs, dprobs, (-1,))
        dq, dk, weight_grads = self._scores_grads(weights, q, k, score_cache, dscores)
        if n_inputs == 3:
            return [dq, dv, dk], weight_grads
        return [dq, dv + dk], weight_grads

    def _scores(self, weights, q, k) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _scores_grads(self, weights, q, k, cache, dscores) -> tuple:
        raise NotImplementedError


def _tanh_sum_grads(dscores, t, factor):
    """For scores = sum(factor * t, -1) with t = tanh(u), u from (batch, ..., Tq, 1, dim)
    + (batch, ..., 1, Tv, dim): dL/du (batch, ..., Tq, Tv, dim)."""
    return dscores[..., None] * factor * (1 - t * t)


def _leading_sum(array: np.ndarray, rank: int) -> np.ndarray:
    """``array`` summed over every axis but its last ``rank``."""
    return array.sum(axis=tuple(range(array.ndim - rank))) if array.ndim > rank else array


@register
class Attention(_DotAttention):
    """Dot-product (Luong-style) attention of a query over a value (and optional key).

    Inputs: query (..., Tq, dim), value (..., Tv, vdim), optional key (..., Tv, dim).
    Output: (..., Tq, vdim). ``score_mode="dot"`` scores ``query @ key^T``,
    ``"concat"`` ``concat_score_weight * sum(tanh(query + key))``; ``use_scale`` adds a
    learned scalar ``scale``.
    """

    TYPE = "Attention"
    PARAMS = (
        Bool("use_scale", False, "learn a scalar that scales the attention scores"),
        Choice(
            "score_mode",
            "dot",
            "dot: query-key dot product; concat: the sum of tanh(query + key)",
            choices=("dot", "concat"),
        ),
        Float(
            "dropout",
            0.0,
            "fraction of the attention weights dropped while training",
            min=0.0,
            max=1.0,
        ),
        Int("seed", None, "seed of the exported layer's dropout", min=0, optional=True),
        *call_params(),
    )
    KEY_PARAMS = ("score_mode", "use_causal_mask")
    EXAMPLES = (
        Example({}, ((3, 4), (2, 4))),
        Example({"use_scale": True}, ((3, 2), (4, 3), (4, 2))),
        Example({"use_causal_mask": True}, ((4, 3), (4, 3))),
        Example({"score_mode": "concat"}, ((3, 2), (2, 3), (2, 2))),
        Example(
            {"score_mode": "concat", "use_scale": True, "use_causal_mask": True}, ((3, 2), (4, 2))
        ),
        Example({"dropout": 0.3, "seed": 2}, ((2, 3, 2), (2, 4, 2))),
        Example({"return_attention_scores": True, "use_causal_mask": True}, ((3, 2), (4, 2))),
    )

    def weight_specs(self, input_shapes):
        specs = []
        if self.config["use_scale"]:
            specs.append(WeightSpec("scale", (), "ones"))
        if self.config["score_mode"] == "concat":
            specs.append(WeightSpec("concat_score_weight", (), "ones"))
        return specs

    def _scores(self, weights, q, k):
        scale = weights.get("scale")
        if self.config["score_mode"] == "dot":
            dots = q @ np.swapaxes(k, -1, -2)
            return (dots if scale is None else dots * scale), dots
        summed = q[..., :, None, :] + k[..., None, :, :]
        t = np.tanh(summed if scale is None else scale * summed)
        tsum = t.sum(axis=-1)
        return weights["concat_score_weight"] * tsum, (summed, t, tsum)

    def _scores_grads(self, weights, q, k, cache, dscores):
        scale = weights.get("scale")
        grads = {}
        if self.config["score_mode"] == "dot":
            dots = cache
            if scale is not None:
                grads["scale"] = np.sum(dscores * dots).reshape(())
                dscores = dscores * scale
            return dscores @ k, np.swapaxes(dscores, -1, -2) @ q, grads
        summed, t, tsum = cache
        weight = weights["concat_score_weight"]
        grads_u = _tanh_sum_grads(dscores, t, weight)
        if scale is not None:
            grads["scale"] = np.sum(grads_u * summed).reshape(())
            grads_u = grads_u * scale
        grads["concat_score_weight"] = np.sum(dscores * tsum).reshape(())
        return grads_u.sum(axis=-2), grads_u.sum(axis=-3), grads


@register
class AdditiveAttention(_DotAttention):
    """Additive (Bahdanau-style) attention of a query over a value (and optional key).

    Inputs: query (..., Tq, dim), value (..., Tv, vdim), optional key (..., Tv, dim).
    Output: (..., Tq, vdim). Scores are ``sum(scale * tanh(query + key))`` over ``dim``;
    with ``use_scale`` the ``scale`` is a learned vector of ``dim`` values, else 1.
    """

    TYPE = "AdditiveAttention"
    PARAMS = (
        Bool("use_scale", True, "learn a scale vector for the scores"),
        Float(
            "dropout",
            0.0,
            "fraction of the attention weights dropped while training",
            min=0.0,
            max=1.0,
        ),
        Int("seed", None, "seed of the exported layer's dropout", min=0, optional=True),
        *call_params(),
    )
    EXAMPLES = (
        Example({}, ((3, 4), (2, 4))),
        Example({"use_scale": False}, ((3, 2), (4, 3), (4, 2))),
        Example({"use_causal_mask": True}, ((4, 3), (4, 3))),
        Example({"dropout": 0.2}, ((2, 3, 2), (2, 2, 2))),
        Example({"return_attention_scores": True}, ((3, 2), (4, 3), (4, 2))),
    )

    def weight_specs(self, input_shapes):
        if not self.config["use_scale"]:
            return []
        dim = known(input_shapes[0][-1], "AdditiveAttention's query features", input_shapes[0])
        return [WeightSpec("scale", (dim,), "glorot_uniform")]

    def _scores(self, weights, q, k):
        t = np.tanh(q[..., :, None, :] + k[..., None, :, :])
        scale = weights.get("scale")
        return (t if scale is None else t * scale).sum(axis=-1), t

    def _scores_grads(self, weights, q, k, t, dscores):
        scale = weights.get("scale")
        grads = {}
        if scale is not None:
            grads["scale"] = _leading_sum(dscores[..., None] * t, 1)
        grads_u = _tanh_sum_grads(dscores, t, 1.0 if scale is None else scale)
        return grads_u.sum(axis=-2), grads_u.sum(axis=-3), grads

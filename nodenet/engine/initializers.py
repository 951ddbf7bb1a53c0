"""Weight initializers with Keras 3 defaults and fan computation.

Fans follow ``keras.src.initializers.random_initializers.compute_fans``: for a
kernel of shape (..., in, out) the receptive field is the product of the
leading dimensions.
"""

from __future__ import annotations

import math

import numpy as np

from nodenet.engine.registry import Registry

INITIALIZERS: Registry = Registry("initializer")


def compute_fans(shape: tuple[int, ...]) -> tuple[float, float]:
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _variance_scaling(shape, rng, scale, mode, distribution):
    fan_in, fan_out = compute_fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    var = scale / max(1.0, n)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * var)
        return rng.uniform(-limit, limit, size=shape)
    # truncated normal at two standard deviations, as Keras does
    std = math.sqrt(var) / 0.87962566103423978
    return _truncated_normal(shape, rng, std)


def _truncated_normal(shape, rng, std):
    out = rng.normal(0.0, 1.0, size=shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.normal(0.0, 1.0, size=int(bad.sum()))
        bad = np.abs(out) > 2
    return out * std


INITIALIZERS.register("glorot_uniform")(
    lambda s, r: _variance_scaling(s, r, 1.0, "fan_avg", "uniform")
)
INITIALIZERS.register("glorot_normal")(
    lambda s, r: _variance_scaling(s, r, 1.0, "fan_avg", "normal")
)
INITIALIZERS.register("he_uniform")(lambda s, r: _variance_scaling(s, r, 2.0, "fan_in", "uniform"))
INITIALIZERS.register("he_normal")(lambda s, r: _variance_scaling(s, r, 2.0, "fan_in", "normal"))
INITIALIZERS.register("lecun_uniform")(
    lambda s, r: _variance_scaling(s, r, 1.0, "fan_in", "uniform")
)
INITIALIZERS.register("lecun_normal")(lambda s, r: _variance_scaling(s, r, 1.0, "fan_in", "normal"))
INITIALIZERS.register("random_uniform")(lambda s, r: r.uniform(-0.05, 0.05, size=s))
INITIALIZERS.register("random_normal")(lambda s, r: r.normal(0.0, 0.05, size=s))
INITIALIZERS.register("zeros")(lambda s, r: np.zeros(s))
INITIALIZERS.register("ones")(lambda s, r: np.ones(s))


@INITIALIZERS.register("orthogonal")
def _orthogonal(shape, rng):
    rows = math.prod(shape[:-1])
    cols = shape[-1]
    flat = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q.reshape(shape)


@INITIALIZERS.register("uniform")
def _embedding_uniform(shape, rng):
    # keras.layers.Embedding's default "uniform" is RandomUniform(-0.05, 0.05)
    return rng.uniform(-0.05, 0.05, size=shape)


NAMES: tuple[str, ...] = tuple(n for n in INITIALIZERS.names() if n != "uniform")


UNIT_FORGET_BIAS = "unit_forget_bias:"


def initialize(name: str, shape: tuple[int, ...], rng: np.random.Generator, dtype) -> np.ndarray:
    """A new array of ``shape`` drawn by initializer ``name``.

    ``"unit_forget_bias:INNER"`` is the LSTM bias of Keras's ``unit_forget_bias=True``:
    ``INNER`` for the input gate, ones for the forget gate, ``INNER`` for the cell and
    output gates (shape ``(4 * units,)``).
    """
    if name.startswith(UNIT_FORGET_BIAS):
        inner = name[len(UNIT_FORGET_BIAS) :]
        (size,) = shape
        units = size // 4
        return np.concatenate(
            [
                initialize(inner, (units,), rng, dtype),
                np.ones(units, dtype=dtype),
                initialize(inner, (2 * units,), rng, dtype),
            ]
        )
    return np.ascontiguousarray(INITIALIZERS.get(name)(tuple(shape), rng), dtype=dtype)

"""Element-wise activations with Keras 3 semantics, each forward beside its backward.

``apply(name, z)`` gives ``a``; ``grad(name, g, z, a)`` gives dL/dz from dL/da.
Softmax acts on the last axis, like ``keras.activations.softmax``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from nodenet.engine.registry import Registry

ACTIVATIONS: Registry = Registry("activation")

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_LEAKY_SLOPE = 0.2  # keras.activations.leaky_relu default negative_slope


def _linear(z):
    return z


def _linear_grad(g, z, a):
    return g


def _relu_into(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """max(z, 0) written to ``out`` (which may be ``z``).

    numpy's vector loop for maximum runs against an array, not a scalar
    (measured 3x faster), so the zero is a row as long as one sample.
    """
    if z.ndim < 2 or z.size == 0 or not out.flags.c_contiguous:
        return np.maximum(z, 0, out=out)
    shape = (len(z), z.size // len(z))
    zero = np.zeros(shape[1], dtype=z.dtype)
    np.maximum(z.reshape(shape), zero, out=out.reshape(shape))
    return out


def relu_inplace(z: np.ndarray) -> np.ndarray:
    """The relu of ``z`` (batch, ...) computed in place; returns ``z``.

    The output is positive exactly where ``z`` is, so it can stand in for the
    overwritten pre-activation in ``grad("relu", g, z, a)``.
    """
    return _relu_into(z, z)


def _relu(z):
    return _relu_into(z, np.empty(z.shape, dtype=z.dtype))


def _relu_grad(g, z, a):
    return g * (z > 0)


def _sigmoid(z):
    # exp of a non-positive number never overflows
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def _sigmoid_grad(g, z, a):
    return g * a * (1 - a)


def _tanh(z):
    return np.tanh(z)


def _tanh_grad(g, z, a):
    return g * (1 - a * a)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_grad(g, z, a):
    return a * (g - (g * a).sum(axis=-1, keepdims=True))


def _elu(z):
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0))).astype(z.dtype, copy=False)


def _elu_grad(g, z, a):
    return g * np.where(z > 0, 1, a + 1)


def _selu(z):
    neg = _SELU_ALPHA * np.expm1(np.minimum(z, 0))
    return (_SELU_SCALE * np.where(z > 0, z, neg)).astype(z.dtype, copy=False)


def _selu_grad(g, z, a):
    return g * np.where(z > 0, _SELU_SCALE, a + _SELU_SCALE * _SELU_ALPHA)


def _softplus(z):
    return (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))).astype(z.dtype, copy=False)


def _softplus_grad(g, z, a):
    return g * _sigmoid(z)


def _softsign(z):
    return z / (1 + np.abs(z))


def _softsign_grad(g, z, a):
    d = 1 + np.abs(z)
    return g / (d * d)


def _leaky_relu(z):
    return np.where(z > 0, z, _LEAKY_SLOPE * z).astype(z.dtype, copy=False)


def _leaky_relu_grad(g, z, a):
    return g * np.where(z > 0, 1, _LEAKY_SLOPE).astype(z.dtype, copy=False)


_SQRT_HALF = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def _gelu(z):
    # keras.activations.gelu(approximate=False): x * Phi(x)
    return (0.5 * z * (1 + erf(z * _SQRT_HALF))).astype(z.dtype, copy=False)


def _gelu_grad(g, z, a):
    cdf = 0.5 * (1 + erf(z * _SQRT_HALF))
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    return (g * (cdf + z * pdf)).astype(z.dtype, copy=False)


def _swish(z):
    return z * _sigmoid(z)


def _swish_grad(g, z, a):
    s = _sigmoid(z)
    return g * (s + z * s * (1 - s))


for _name, _pair in {
    "linear": (_linear, _linear_grad),
    "relu": (_relu, _relu_grad),
    "sigmoid": (_sigmoid, _sigmoid_grad),
    "tanh": (_tanh, _tanh_grad),
    "softmax": (_softmax, _softmax_grad),
    "elu": (_elu, _elu_grad),
    "selu": (_selu, _selu_grad),
    "softplus": (_softplus, _softplus_grad),
    "softsign": (_softsign, _softsign_grad),
    "leaky_relu": (_leaky_relu, _leaky_relu_grad),
    "gelu": (_gelu, _gelu_grad),
    "swish": (_swish, _swish_grad),
}.items():
    ACTIVATIONS.register(_name)(_pair)

NAMES: tuple[str, ...] = tuple(ACTIVATIONS.names())


def apply(name: str, z: np.ndarray) -> np.ndarray:
    """The activation ``name`` of ``z`` (any shape)."""
    return ACTIVATIONS.get(name)[0](z)


def grad(name: str, g: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """dL/dz given dL/da ``g``, the pre-activation ``z`` and the activation ``a``."""
    return ACTIVATIONS.get(name)[1](g, z, a)

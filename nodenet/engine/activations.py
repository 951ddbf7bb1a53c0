"""Element-wise activations with Keras 3 semantics, each forward beside its backward.

``apply(name, z)`` gives ``a``; ``grad(name, g, z, a)`` gives dL/dz from dL/da.
Softmax, log_softmax and sparsemax act on the last axis, like Keras's. Every name
``keras.activations.get`` accepts is here except ``glu`` (it halves the last axis) and
``threshold`` (it has no defaults, so a layer cannot name it).
"""

from __future__ import annotations

import numpy as np

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


def erf(x):
    """scipy.special.erf, imported on the first GELU: scipy.special costs ~25 MiB and
    0.2 s at import, which every training process would otherwise pay."""
    from scipy.special import erf as scipy_erf

    return scipy_erf(x)


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


def _relu6(z):
    return np.clip(z, 0, 6)


def _relu6_grad(g, z, a):
    return g * ((z > 0) & (z < 6))


def _celu(z):  # alpha = 1, Keras's default
    return (np.maximum(z, 0) + np.expm1(np.minimum(z, 0))).astype(z.dtype, copy=False)


def _celu_grad(g, z, a):
    return g * np.where(z > 0, 1, np.exp(np.minimum(z, 0))).astype(z.dtype, copy=False)


def _squareplus(z):  # b = 4, Keras's default
    return (z + np.sqrt(z * z + 4)) / 2


def _squareplus_grad(g, z, a):
    return g * (1 + z / np.sqrt(z * z + 4)) / 2


def _soft_shrink(z):  # threshold 0.5
    return np.where(z > 0.5, z - 0.5, np.where(z < -0.5, z + 0.5, 0)).astype(z.dtype, copy=False)


def _soft_shrink_grad(g, z, a):
    return g * (np.abs(z) > 0.5)


def _hard_shrink(z):  # threshold 0.5
    return np.where(np.abs(z) > 0.5, z, 0).astype(z.dtype, copy=False)


def _sparse_plus(z):
    near = np.clip(z, -1, 1) + 1  # the middle piece, never overflowing where unused
    mid = near * near / 4
    return np.where(z <= -1, 0, np.where(z < 1, mid, z)).astype(z.dtype, copy=False)


def _sparse_plus_grad(g, z, a):
    return g * np.where(z <= -1, 0, np.where(z < 1, (z + 1) / 2, 1)).astype(z.dtype, copy=False)


def _tanh_shrink(z):
    return z - np.tanh(z)


def _tanh_shrink_grad(g, z, a):
    t = np.tanh(z)
    return g * t * t


def _sparse_sigmoid(z):
    return np.clip((z + 1) / 2, 0, 1)


def _sparse_sigmoid_grad(g, z, a):
    return g * (np.abs(z) < 1) / 2


def _exponential(z):
    return np.exp(z)


def _exponential_grad(g, z, a):
    return g * a


def _hard_sigmoid(z):  # relu6(x + 3) / 6, as Keras 3
    return np.clip(z / 6 + 0.5, 0, 1)


def _hard_sigmoid_grad(g, z, a):
    return g * (np.abs(z) < 3) / 6


def _hard_silu(z):
    return z * _hard_sigmoid(z)


def _hard_silu_grad(g, z, a):
    return g * np.where(z <= -3, 0, np.where(z < 3, z / 3 + 0.5, 1)).astype(z.dtype, copy=False)


def _hard_tanh(z):
    return np.clip(z, -1, 1)


def _hard_tanh_grad(g, z, a):
    return g * (np.abs(z) < 1)


def _log_sigmoid(z):
    return -_softplus(-z)


def _log_sigmoid_grad(g, z, a):
    return g * _sigmoid(-z)


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _log_softmax_grad(g, z, a):
    return g - np.exp(a) * g.sum(axis=-1, keepdims=True)


def _mish(z):
    return z * np.tanh(_softplus(z))


def _mish_grad(g, z, a):
    t = np.tanh(_softplus(z))
    return g * (t + z * _sigmoid(z) * (1 - t * t))


def _sparsemax_tau(z):
    """Keras 3's threshold on the last axis and its derivative with respect to ``z``.

    Keras computes ``tau = (sum of the cumulative sums over the support - 1) / k``
    (every backend alike), so the top-k sorted value of rank m weighs (k - m + 1) / k.
    """
    order = np.argsort(-z, axis=-1, kind="stable")
    ranked = np.take_along_axis(z, order, axis=-1)
    cumsum = np.cumsum(ranked, axis=-1)
    r = np.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    support = ranked - (cumsum - 1) / r > 0
    k = support.sum(axis=-1, keepdims=True).astype(z.dtype)
    tau = (np.where(support, cumsum, 0).sum(axis=-1, keepdims=True) - 1) / k
    weight_ranked = np.where(support, (k - r + 1) / k, 0).astype(z.dtype, copy=False)
    weight = np.empty_like(weight_ranked)
    np.put_along_axis(weight, order, weight_ranked, axis=-1)
    return tau, weight


def _sparsemax(z):
    tau, _ = _sparsemax_tau(z)
    return np.maximum(z - tau, 0).astype(z.dtype, copy=False)


def _sparsemax_grad(g, z, a):
    _, weight = _sparsemax_tau(z)
    active = g * (a > 0)
    return active - weight * active.sum(axis=-1, keepdims=True)


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
    "silu": (_swish, _swish_grad),  # Keras 3's name for swish (what a saved model holds)
    "relu6": (_relu6, _relu6_grad),
    "celu": (_celu, _celu_grad),
    "squareplus": (_squareplus, _squareplus_grad),
    "soft_shrink": (_soft_shrink, _soft_shrink_grad),
    "hard_shrink": (_hard_shrink, _soft_shrink_grad),  # both pass where |x| > 0.5
    "sparse_plus": (_sparse_plus, _sparse_plus_grad),
    "tanh_shrink": (_tanh_shrink, _tanh_shrink_grad),
    "sparse_sigmoid": (_sparse_sigmoid, _sparse_sigmoid_grad),
    "exponential": (_exponential, _exponential_grad),
    "hard_sigmoid": (_hard_sigmoid, _hard_sigmoid_grad),
    "hard_silu": (_hard_silu, _hard_silu_grad),
    "hard_swish": (_hard_silu, _hard_silu_grad),  # Keras's alias of hard_silu
    "hard_tanh": (_hard_tanh, _hard_tanh_grad),
    "log_sigmoid": (_log_sigmoid, _log_sigmoid_grad),
    "log_softmax": (_log_softmax, _log_softmax_grad),
    "mish": (_mish, _mish_grad),
    "sparsemax": (_sparsemax, _sparsemax_grad),
}.items():
    ACTIVATIONS.register(_name)(_pair)

NAMES: tuple[str, ...] = tuple(ACTIVATIONS.names())


def apply(name: str, z: np.ndarray) -> np.ndarray:
    """The activation ``name`` of ``z`` (any shape)."""
    return ACTIVATIONS.get(name)[0](z)


def grad(name: str, g: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """dL/dz given dL/da ``g``, the pre-activation ``z`` and the activation ``a``."""
    return ACTIVATIONS.get(name)[1](g, z, a)

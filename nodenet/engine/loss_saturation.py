"""The fused cross-entropy gradient where Keras's probability clip saturates.

A cross-entropy on probabilities (``from_logits=False``) computes its value, as
Keras's torch and JAX backends do, on ``clip(p / sum(p), 1e-7, 1 - 1e-7)``
(binary: ``clip(p, 1e-7, 1 - 1e-7)``), and the clip passes no gradient outside
its bounds. The fused gradient with respect to the pre-activation ``z``
(``p sum(t) - t`` after a softmax, ``p - t`` after a sigmoid) is that chain's
value only where no clip is active. :func:`fused_grad` keeps it for those
positions, the cheap common case, and elsewhere takes the exact chain:

- sigmoid (element by element): ``dL/dp * p (1 - p)``, which is the fused value
  where ``p`` is inside the bounds and 0 where it is clipped;
- softmax (per position, over the classes): ``dL/dp`` through the
  renormalization and the clip (the loss's own ``_grad``), then through the
  softmax: ``p * (g - sum(g p))``.

So a saturated, confidently wrong softmax (``p = [1, 4e-18]`` for the target
``[0, 1]``) trains with gradient 0 there, as in Keras on torch or JAX (and in
nodenet's PyTorch export), not with ``[1, -1]``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

GradFn = Callable[[np.ndarray, np.ndarray, np.ndarray, object], np.ndarray]


def fused_grad(loss) -> GradFn:
    """The ``grad_fn`` for ``loss._run`` on a fused prediction: ``dvalue/dz``.

    ``loss`` is a cross-entropy whose ``_values`` cache ends with the mask of where
    the clip passes the gradient (shaped like the clipped probabilities).
    """

    def grad(t: np.ndarray, p: np.ndarray, coef: np.ndarray, cache) -> np.ndarray:
        fast = loss._fused_grad(t, p, coef, cache)
        mask = cache[-1]
        if np.count_nonzero(mask) == mask.size:  # nothing clipped: the common case
            return fast
        if loss.FUSES == "sigmoid":
            return np.where(mask, fast, fast.dtype.type(0))
        rows = ~mask.all(axis=-1)  # positions where some probability is clipped
        sub = tuple(c[rows] for c in cache)
        g = loss._grad(t[rows], p[rows], coef[rows], sub)  # dvalue/dp on those positions
        pr = p[rows]
        fast[rows] = pr * (g - np.sum(g * pr, axis=-1, keepdims=True))
        return fast

    return grad

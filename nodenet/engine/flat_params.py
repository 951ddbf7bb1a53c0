"""Every trainable weight of a model as a view into one contiguous array.

Training updates all weights in one pass: the optimizer runs its element-wise update
once over :attr:`FlatParams.weights` and :attr:`FlatParams.grads` (a buffer laid out
the same way) instead of once per array. The model's weight dicts hold views into
``weights``, so reading, saving and setting weights work as before; the numbers are
those of the per-array update, element for element.
"""

from __future__ import annotations

import numpy as np


class FlatParams:
    """Trainable weights as views into one array, and a same-laid-out gradient buffer.

    Parameters
    ----------
    arrays : dict
        The trainable arrays keyed ``node/name``, in the model's order.
    dtype : numpy dtype
        The model's float type.

    ``params[key]`` and ``grad_views[key]`` are views (the weight's shape) into
    :attr:`weights` and :attr:`grads`, both 1-D and C-contiguous.
    """

    def __init__(self, arrays: dict[str, np.ndarray], dtype):
        self.keys = tuple(arrays)
        self.layout = tuple((k, a.shape) for k, a in arrays.items())
        size = sum(a.size for a in arrays.values())
        self.weights = np.empty(size, dtype)
        self.grads = np.zeros(size, dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grad_views: dict[str, np.ndarray] = {}
        # node id -> {weight name: its gradient view}, filled by the model
        self.by_node: dict[str, dict[str, np.ndarray]] = {}
        start = 0
        for key, array in arrays.items():
            stop = start + array.size
            view = self.weights[start:stop].reshape(array.shape)
            view[...] = array
            self.params[key] = view
            self.grad_views[key] = self.grads[start:stop].reshape(array.shape)
            start = stop

    def views(self, array: np.ndarray) -> dict[str, np.ndarray]:
        """``array`` (laid out like :attr:`weights`) as one view per weight key."""
        out, start = {}, 0
        for key, shape in self.layout:
            stop = start + self.params[key].size
            out[key] = array[start:stop].reshape(shape)
            start = stop
        return out

    def holds(self, arrays: dict[str, np.ndarray]) -> bool:
        """Whether ``arrays`` are exactly this buffer's views (same keys, same objects)."""
        return tuple(arrays) == self.keys and all(arrays[k] is self.params[k] for k in self.keys)

    def gather(self, grads: dict[str, np.ndarray]) -> bool:
        """Copy ``grads`` into :attr:`grads` (those already there are left as they are).

        Returns False, copying nothing, unless every key has a gradient: a weight without
        one must be left alone, which only the per-array update does.
        """
        views = self.grad_views
        if len(grads) != len(views) or any(grads.get(k) is None for k in self.keys):
            return False
        for key in self.keys:
            g, view = grads[key], views[key]
            if g is not view:
                np.copyto(view, g, casting="same_kind")
        return True

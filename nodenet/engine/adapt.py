"""Blocks whose weights are statistics of the training data, set before training.

Keras's preprocessing ``Normalization`` learns its mean and variance with
``layer.adapt(data)`` before ``fit``. nodenet does the same in :func:`fit
<nodenet.engine.training.fit>`: each such block that has not had its weights set
(loaded from a file, imported, copied from an earlier run) is adapted to its own input
over the training samples, computed through the blocks before it in inference mode,
batch by batch, with a streaming mean and variance (float64 sums), so a large
dataset never has to be held at one point of the graph at once.

A block adapts when it has ``adapts()`` returning true, ``keep_axes(ndim)`` (the
axes with their own statistics) and ``adapted(mean, variance)`` (its weights from
them); :class:`nodenet.engine.layers.preprocessing.Normalization` is one. A block with
state that is no statistic (TextVectorization's vocabulary) instead has ``adapter()``: an
object fed each batch of its input (``add``) whose ``result()`` is its new state arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nodenet.engine.layer import Context, Layer

if TYPE_CHECKING:  # the model imports this module
    from nodenet.engine.model import Model

ADAPT_BATCH = 1024  # samples per batch of the adapting pass (less if the budget says so)


def adapts(layer: Layer) -> bool:
    """Whether ``layer`` has weights learned from data by :func:`adapt`."""
    check = getattr(layer, "adapts", None)
    return callable(check) and bool(check())


def pending(model: Model) -> set[str]:
    """The nodes of ``model`` that adapt: all of them while its weights are fresh."""
    return {node_id for node_id in model.order if adapts(model.layers[node_id])}


class Moments:
    """Mean and (biased) variance over every axis but ``keep``, fed batch by batch.

    Batches are merged with Chan et al.'s pairwise update in float64, the result
    the ``np.mean`` / ``np.var`` of all the batches put together.
    """

    def __init__(self, keep: tuple[int, ...]):
        self.keep = keep
        self.count = 0
        self.mean: np.ndarray | float = 0.0
        self.m2: np.ndarray | float = 0.0

    def add(self, x: np.ndarray) -> None:
        reduce = tuple(a for a in range(x.ndim) if a not in self.keep)
        n = int(np.prod([x.shape[a] for a in reduce], dtype=np.int64))
        if n == 0:
            return
        x = x.astype(np.float64)
        mean = x.mean(axis=reduce)
        m2 = np.square(x - np.expand_dims(mean, reduce)).sum(axis=reduce)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + np.square(delta) * (self.count * n / total)
        self.count = total

    def result(self, dtype) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.mean, dtype=np.float64)
        variance = np.asarray(self.m2, dtype=np.float64) / max(self.count, 1)
        return mean.astype(dtype), variance.astype(dtype)


def adapt(model: Model, inputs: dict[str, np.ndarray], batch_size: int = ADAPT_BATCH) -> list[str]:
    """Adapt every block of ``model`` still waiting for its statistics (``model.to_adapt``) to
    the samples ``inputs`` (keyed by Input id, checked); return the ids adapted, in order.

    Blocks are adapted in topological order, so one after another sees the earlier
    ones already adapted, as calling ``adapt`` on each in turn does in Keras.
    """
    done = []
    for node_id in model.order:
        if node_id not in model.to_adapt:
            continue
        layer = model.layers[node_id]
        if hasattr(layer, "adapter"):  # state learned from the data (a vocabulary)
            adapter = layer.adapter()
            for batch in _batches(model, inputs, batch_size):
                adapter.add(inputs_of(model, node_id, batch)[0])
            model.weights[node_id].update(adapter.result())
            model.to_adapt.discard(node_id)
            done.append(node_id)
            continue
        ndim = len(model.input_shapes(node_id)[0]) + 1
        moments = Moments(layer.keep_axes(ndim))
        for batch in _batches(model, inputs, batch_size):
            moments.add(inputs_of(model, node_id, batch)[0])
        mean, variance = moments.result(model.dtype)
        for name, value in layer.adapted(mean, variance).items():
            np.copyto(model.weights[node_id][name], value)
        model.to_adapt.discard(node_id)
        done.append(node_id)
    return done


def _batches(model: Model, inputs: dict[str, np.ndarray], batch_size: int):
    n = len(next(iter(inputs.values()))) if inputs else 0
    size = model.inference_batch(batch_size)
    for start in range(0, n, size):
        yield model.cast_batch({k: v[start : start + size] for k, v in inputs.items()})


def inputs_of(model: Model, node_id: str, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
    """What feeds ``node_id`` for a ``batch`` of inputs: only its ancestors run, in
    inference mode."""
    needed = _ancestors(model, node_id)
    ctx = Context(training=False)
    values: dict[str, Any] = {}
    for other in model.order:
        if other not in needed:
            continue
        layer = model.layers[other]
        if layer.TYPE == "Input" and other in batch:
            xs = [batch[other]]
        else:
            xs = [_value(model, values, src, port) for src, port in model.feeds[other]]
        values[other], _ = layer.forward(model.weights[other], xs, ctx)
    return [_value(model, values, src, port) for src, port in model.feeds[node_id]]


def _value(model: Model, values: dict[str, Any], src: str, port: int) -> np.ndarray:
    return values[src][port] if src in model.multi else values[src]


def _ancestors(model: Model, node_id: str) -> set[str]:
    found, stack = set(), list(model.sources[node_id])
    while stack:
        node = stack.pop()
        if node not in found:
            found.add(node)
            stack.extend(model.sources[node])
    return found

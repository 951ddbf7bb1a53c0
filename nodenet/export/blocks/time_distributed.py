"""Exporter of the TimeDistributed wrapper: it asks the wrapped block's exporter.

Keras: ``layers.TimeDistributed(<the wrapped block's layer>)``. PyTorch: the wrapped
block's module and forward on the steps folded into the batch, ``x.flatten(0, 1)``,
unfolded after (``.unflatten(0, (batch, -1))``); its weights are the block's, with
the block's own state.
"""

from __future__ import annotations

from nodenet.export._code import keras_class, py_arguments
from nodenet.export.blocks.base import BlockExporter, exporter, exports
from nodenet.export.snippets import Source


@exports("TimeDistributed")
class TimeDistributedExporter(BlockExporter):
    def __init__(self, layer):
        super().__init__(layer)
        self.inner: BlockExporter = exporter(layer.inner)

    @staticmethod
    def _step(input_shapes):
        """The wrapped block's input shapes: one step, (...) of (time, ...)."""
        return [tuple(input_shapes[0][1:])]

    def keras_layer(self):
        return self._wrapping(self.inner.keras_layer())

    def keras_layer_for(self, input_shapes):
        return self._wrapping(self.inner.keras_layer_for(self._step(input_shapes)))

    def _wrapping(self, inner_layer) -> tuple[str, dict]:
        inner_class, args = inner_layer
        required = [args.pop(k) for k in self.inner.KERAS_REQUIRED if k in args]
        return "TimeDistributed", {
            "layer": Source(f"{keras_class(inner_class)}({py_arguments(required, args)})")
        }

    def keras_permutation(self, input_shapes):
        """The wrapped block's permutation of a step, the time axis kept first."""
        dims = self.inner.keras_permutation(self._step(input_shapes))
        return None if dims is None else (1, *(d + 1 for d in dims))

    def torch_module(self, input_shapes):
        return self.inner.torch_module(self._step(input_shapes))

    def torch_forward(self, module, args, input_shapes):
        (x,) = args
        step = self.inner.torch_forward(module, [f"{x}.flatten(0, 1)"], self._step(input_shapes))
        return f"({step}).unflatten(0, ({x}.shape[0], -1))"

    def torch_state(self, weights, input_shapes):
        return self.inner.torch_state(weights, self._step(input_shapes))

    def keras_weights(self, state, input_shapes):
        return self.inner.keras_weights(state, self._step(input_shapes))

    def torch_weights(self, module, input_shapes):
        return self.inner.torch_weights(module, self._step(input_shapes))

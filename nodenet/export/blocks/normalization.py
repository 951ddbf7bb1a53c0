"""Exporters of BatchNormalization and LayerNormalization, and the torch modules they use.

BatchNormalization runs a generated module with Keras's names, layouts and moving
averages (torch's tracks an unbiased variance); LayerNormalization runs
``nn.LayerNorm`` over the moved axis, or a generated module when it has an
offset but no scale. For Keras, a LayerNormalization over another axis than the
last is written as ``Permute`` (that axis last), ``LayerNormalization()`` over the
last axis, and ``Permute`` back: the same weights (``gamma``, ``beta`` of the axis'
size) and the same numbers, and it runs on every backend (Keras 3's torch backend
refuses a non-last axis).
"""

from __future__ import annotations

from nodenet.engine.layers.normalization import feature_axis, feature_size
from nodenet.export import torch_helpers  # noqa: F401  (registers their torch modules)
from nodenet.export.blocks.base import BlockExporter, exports, renamed
from nodenet.export.snippets import arguments

_BATCH_NORM_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")


@exports("BatchNormalization")
class BatchNormalizationExporter(BlockExporter):
    def torch_module(self, input_shapes):
        """The generated ``BatchNormalization`` module (torch's tracks an unbiased variance)."""
        c = self.config
        size = feature_size(c["axis"], input_shapes[0], "BatchNormalization")
        defaults = {"axis": -1, "momentum": 0.99, "epsilon": 1e-3, "center": True, "scale": True}
        options = {k: c[k] for k, v in defaults.items() if c[k] != v}
        return f"BatchNormalization({arguments([size], options)})"

    def torch_forward(self, module, args, input_shapes):
        return f"{module}({args[0]})"

    def torch_state(self, weights, input_shapes):
        return dict(weights)  # the generated module keeps Keras's names and layouts

    def keras_weights(self, state, input_shapes):
        return {name: state[name] for name in _BATCH_NORM_WEIGHTS if name in state}

    def torch_weights(self, module, input_shapes):
        return {name: [f"{module}.{name}"] for name in _BATCH_NORM_WEIGHTS}


@exports("LayerNormalization")
class LayerNormalizationExporter(BlockExporter):
    def _offset_only(self) -> bool:
        """An offset without a scale: torch's LayerNorm has no such mode."""
        return self.config["center"] and not self.config["scale"]

    def _moved_axis(self, input_shapes) -> int | None:
        """The normalized axis (batch counted) when it is not the last one, else None."""
        (shape,) = input_shapes
        axis = feature_axis(self.config["axis"], len(shape) + 1, "LayerNormalization", shape)
        return None if axis == len(shape) else axis

    def keras_layer_for(self, input_shapes):
        """Keras's arguments; the axis left at -1 when :meth:`keras_permutation` moves it last."""
        class_name, args = self.keras_layer()
        if self._moved_axis(input_shapes) is not None:
            args.pop("axis", None)
        return class_name, args

    def keras_permutation(self, input_shapes):
        """The normalized axis moved last, the others in order (None when it is last)."""
        axis = self._moved_axis(input_shapes)
        if axis is None:
            return None
        return (*(d for d in range(1, len(input_shapes[0]) + 1) if d != axis), axis)

    def torch_module(self, input_shapes):
        """``nn.LayerNorm`` over the moved axis; one with an offset but no scale is generated."""
        c = self.config
        size = feature_size(c["axis"], input_shapes[0], "LayerNormalization")
        if self._offset_only():
            return f"LayerNormalization({size}, epsilon={c['epsilon']!r})"
        options = {"eps": c["epsilon"]}
        if not c["scale"]:
            options["elementwise_affine"] = False
        elif not c["center"]:
            options["bias"] = False
        return f"nn.LayerNorm({arguments([size], options)})"

    def torch_forward(self, module, args, input_shapes):
        (shape,) = input_shapes
        axis = feature_axis(self.config["axis"], len(shape) + 1, "LayerNormalization", shape)
        if axis == len(shape):
            return f"{module}({args[0]})"
        return f"{module}({args[0]}.movedim({axis}, -1)).movedim(-1, {axis})"

    def _names(self) -> dict[str, str]:
        return {"beta": "beta"} if self._offset_only() else {"gamma": "weight", "beta": "bias"}

    def torch_state(self, weights, input_shapes):
        return renamed(weights, self._names())

    def keras_weights(self, state, input_shapes):
        return renamed(state, {t: k for k, t in self._names().items()})

    def torch_weights(self, module, input_shapes):
        return {k: [f"{module}.{t}"] for k, t in self._names().items()}

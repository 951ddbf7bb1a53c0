"""The exporter of a block: its Keras 3 layer, its PyTorch module, and the weights between.

An exporter class is registered for one or more block types with :func:`exports`,
as blocks are with :func:`nodenet.engine.layer.register`; :func:`exporter` binds
the one of a block's type to a built block. Keras-layout weights (what nodenet
trains and stores) become the submodule's ``state_dict`` entries through
:meth:`BlockExporter.torch_state`, and come home through
:meth:`BlockExporter.keras_weights`, its exact inverse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from nodenet.engine.catalog import Layer, Shape
from nodenet.engine.params import Initializer, Regularizer
from nodenet.engine.registry import Registry
from nodenet.export._code import keras_class
from nodenet.export.snippets import keras_initializer, keras_regularizer, literal

Arrays = dict[str, np.ndarray]


class BlockExporter:
    """How one block is written for Keras 3 and PyTorch. Subclasses override the hooks."""

    KERAS_REQUIRED: ClassVar[tuple[str, ...]] = ()  # Keras arguments without a default

    def __init__(self, layer: Layer):
        self.layer = layer
        self.config = layer.config

    def keras_layer(self) -> tuple[str, dict[str, Any]]:
        """The ``keras.layers`` class equal to this block, and its constructor arguments.

        Arguments at nodenet's default (Keras's own) are left out, except those
        in ``KERAS_REQUIRED``; regularizers and initializers with arguments become
        ``keras.regularizers`` / ``keras.initializers`` source
        (:class:`nodenet.export.snippets.Source`).
        """
        args = {}
        for p in self.layer.PARAMS:
            if p.name in self.layer.CALL_ARGS:  # given to the call: keras_call
                continue
            value = self.config[p.name]
            if p.name in self.KERAS_REQUIRED or value != p.default:
                if isinstance(p, Regularizer):
                    value = keras_regularizer(value)
                elif isinstance(p, Initializer):
                    value = keras_initializer(value)
                args[p.name] = value
        return self.layer.TYPE, args

    def keras_layer_for(self, input_shapes: list[Shape]) -> tuple[str, dict[str, Any]]:
        """:meth:`keras_layer` for a block with these input shapes (batch left out); a block
        whose Keras form depends on them (LayerNormalization over a moved axis) overrides it."""
        return self.keras_layer()

    def keras_permutation(self, input_shapes: list[Shape]) -> tuple[int, ...] | None:
        """Keras ``Permute`` dims its Keras layer needs its input rearranged by (and the
        output rearranged back), or None: only LayerNormalization over a moved axis."""
        return None

    def keras_value(self, layer: str, tensors: list[str], input_shapes: list[Shape]) -> str:
        """The block's value in the Keras model: ``layer`` (the constructor's source) called
        on ``tensors``, inside ``Permute`` there and back when :meth:`keras_permutation` asks."""
        dims = self.keras_permutation(input_shapes)
        if dims is None:
            return f"{layer}({self.keras_call(tensors)})"
        back = tuple(dims.index(d) + 1 for d in range(1, len(dims) + 1))
        permute = keras_class("Permute")
        return f"{permute}({back!r})({layer}({permute}({dims!r})({self.keras_call(tensors)})))"

    def keras_call(self, tensors: list[str]) -> str:
        """The arguments of the Keras layer's call on the input variables ``tensors``: the
        tensor, or a list of them (a merge), then the block's call arguments that differ
        from their defaults (``use_causal_mask=True``)."""
        first = tensors[0] if len(tensors) == 1 else f"[{', '.join(tensors)}]"
        return ", ".join([first, *self.keras_call_keywords()])

    def keras_call_keywords(self) -> list[str]:
        """``name=value`` of each call argument (``Layer.CALL_ARGS``) not at its default."""
        defaults = {p.name: p.default for p in self.layer.PARAMS}
        return [
            f"{name}={literal(self.config[name])}"
            for name in self.layer.CALL_ARGS
            if self.config[name] != defaults[name]
        ]

    def output_suffixes(self, count: int) -> list[str]:
        """For a block with several outputs, what each output's variable adds to the node's
        name in generated code (``""`` for output 0)."""
        return ["", *(f"_{k}" for k in range(1, count))]

    def torch_module(self, input_shapes: list[Shape]) -> str | None:
        """Source building the torch submodule this block owns (``nn.Linear(64, 10)``),
        or None when its forward needs none."""
        return None

    def torch_forward(self, module: str, args: list[str], input_shapes: list[Shape]) -> str:
        """A torch expression of the output from the input expressions ``args`` (of a
        tuple of the outputs, in order, for a block with several).

        ``module`` is the submodule's attribute (``self.dense_1``). Tensors stay
        channels-last, as in Keras; the expression may call the helpers of
        :data:`nodenet.export.snippets.TORCH_HELPERS`.
        """
        raise NotImplementedError(f"{self.layer.TYPE} has no PyTorch export")

    def torch_state(self, weights: Arrays, input_shapes: list[Shape]) -> Arrays:
        """The submodule's ``state_dict`` entries (keys relative to it) from Keras-layout
        ``weights``."""
        return {}

    def keras_weights(self, state: Arrays, input_shapes: list[Shape]) -> Arrays:
        """The Keras-layout weights (``weight_specs`` names) from the submodule's
        ``state_dict`` entries: the inverse of :meth:`torch_state`."""
        return {}

    def torch_weights(self, module: str, input_shapes: list[Shape]) -> dict[str, list[str]]:
        """Per Keras weight name, the torch tensors holding it (expressions under ``module``).

        Keras's initializers and regularizers act on them; a weight torch keeps
        in two tensors (a GRU's two bias rows) lists both.
        """
        return {}


class Passthrough(BlockExporter):
    """A block whose torch forward is its input (Input, Output)."""

    def torch_forward(self, module, args, input_shapes):
        return args[0]


EXPORTERS: Registry[type[BlockExporter]] = Registry("block exporter")


def exports(*type_names: str) -> Callable[[type[BlockExporter]], type[BlockExporter]]:
    """Class decorator: the exporter of these block types."""

    def decorate(cls: type[BlockExporter]) -> type[BlockExporter]:
        for name in type_names:
            EXPORTERS.register(name)(cls)
        return cls

    return decorate


def exporter(layer: Layer) -> BlockExporter:
    """The exporter of ``layer``'s block type, bound to it."""
    return EXPORTERS.get(layer.TYPE)(layer)


def renamed(arrays: Arrays, names: dict[str, str]) -> Arrays:
    """``arrays`` with keys renamed by ``names`` (keys not in it are dropped)."""
    return {names[k]: v for k, v in arrays.items() if k in names}

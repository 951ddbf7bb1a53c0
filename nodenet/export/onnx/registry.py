"""The ONNX mapping of every block type: one function per type, registered by decorator.

A mapping emits the ONNX nodes computing a block in inference mode::

    @onnx_block("Dense")
    def dense(b: OnnxBuilder, layer: Layer, inputs: list[str], input_shapes: list[Shape],
              weights: dict[str, np.ndarray]) -> list[str]: ...

``inputs`` are tensor names (batch-first, channels-last as Keras has them), ``input_shapes``
their shapes without the batch axis, ``weights`` the block's arrays in Keras layouts keyed by
Keras weight name. It returns one tensor name per output of the block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodenet.engine.registry import Registry

OnnxMapping = Callable[..., list[str]]

ONNX_BLOCKS: Registry = Registry("ONNX block mapping")


def onnx_block(*type_names: str) -> Callable[[OnnxMapping], OnnxMapping]:
    """Decorator: register ``mapping`` as the ONNX mapping of each block type named."""

    def decorate(mapping: OnnxMapping) -> OnnxMapping:
        for name in type_names:
            ONNX_BLOCKS.register(name)(mapping)
        return mapping

    return decorate


def onnx_mapping(type_name: str) -> Any:
    """The mapping registered for ``type_name`` (:class:`UnknownNameError` when none)."""
    return ONNX_BLOCKS.get(type_name)

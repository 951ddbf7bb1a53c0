"""Exporters of the zero-padding and cropping blocks (no weights).

Keras gets ``padding`` / ``cropping`` in its shortest equal form (``1`` for
``[[1, 1], [1, 1]]``); PyTorch pads the channels-last tensor with ``F.pad`` (the
channel axis, last, gets no padding) and crops it by slicing, so no size need be
known when the code is written.
"""

from __future__ import annotations

from typing import Any

from nodenet.export.blocks.base import BlockExporter, exports
from nodenet.export.snippets import literal


def shortest(pairs: list[tuple[int, int]], rank: int) -> Any:
    """The shortest Keras argument equal to (before, after) ``pairs``, one per axis."""
    if all(b == a == pairs[0][0] for b, a in pairs):
        return pairs[0][0]
    if rank == 1:
        return list(pairs[0])
    if all(b == a for b, a in pairs):
        return [b for b, _ in pairs]
    return [list(pair) for pair in pairs]


class _WidthsExporter(BlockExporter):
    def keras_layer(self):
        name = self.layer.FIELD
        value = self.config[name]
        spec = next(p for p in self.layer.PARAMS if p.name == name)
        args = (
            {} if value == spec.default else {name: shortest(self.layer.widths(), self.layer.RANK)}
        )
        return self.layer.TYPE, args


@exports("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
class ZeroPaddingExporter(_WidthsExporter):
    def torch_forward(self, module, args, input_shapes):
        flat = [0, 0]  # F.pad starts at the last axis: the channels
        for before, after in reversed(self.layer.pads()):
            flat += [before, after]
        return f"F.pad({args[0]}, {literal(flat)})"


@exports("Cropping1D", "Cropping2D", "Cropping3D")
class CroppingExporter(_WidthsExporter):
    def torch_forward(self, module, args, input_shapes):
        cuts = [f"{b}:-{a}" if a else (f"{b}:" if b else ":") for b, a in self.layer.crops()]
        return f"{args[0]}[:, {', '.join(cuts)}]"

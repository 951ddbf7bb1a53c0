"""Exporter of GroupNormalization, and the torch module it uses.

The block runs on ``nn.GroupNorm`` over the channel axis moved to position 1
(torch's layout), or on a generated module when it has a scale but no offset or
an offset but no scale (``nn.GroupNorm`` has both or neither, and torch's ``F.group_norm``
given only one of them crashes in backward).
"""

from __future__ import annotations

from nodenet.engine.layers.normalization import feature_axis, feature_size
from nodenet.export.blocks.base import BlockExporter, exports, renamed
from nodenet.export.snippets import arguments, torch_helper

torch_helper(
    "GroupNormalization",
    '''
class GroupNormalization(nn.Module):
    """Keras's GroupNormalization on channels-first tensors, with a scale or an offset only."""

    def __init__(self, groups: int, features: int, epsilon: float, center: bool, scale: bool):
        super().__init__()
        self.groups, self.epsilon = groups, epsilon
        self.gamma = nn.Parameter(torch.ones(features)) if scale else None
        self.beta = nn.Parameter(torch.zeros(features)) if center else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.group_norm(x, self.groups, eps=self.epsilon)  # torch fails one of the two
        shape = (-1,) + (1,) * (x.ndim - 2)
        if self.gamma is not None:
            out = out * self.gamma.view(shape)
        if self.beta is not None:
            out = out + self.beta.view(shape)
        return out
''',
)


@exports("GroupNormalization")
class GroupNormalizationExporter(BlockExporter):
    def _native(self) -> bool:
        """Both a scale and an offset, or neither: ``nn.GroupNorm``'s two modes."""
        return self.config["center"] == self.config["scale"]

    def torch_module(self, input_shapes):
        c = self.config
        (shape,) = input_shapes
        size = feature_size(c["axis"], shape, "GroupNormalization")
        groups = self.layer.n_groups(shape)
        if not self._native():
            options = {"epsilon": c["epsilon"], "center": c["center"], "scale": c["scale"]}
            return f"GroupNormalization({arguments([groups, size], options)})"
        options = {"eps": c["epsilon"]}
        if not c["scale"]:
            options["affine"] = False
        return f"nn.GroupNorm({arguments([groups, size], options)})"

    def torch_forward(self, module, args, input_shapes):
        (shape,) = input_shapes
        axis = feature_axis(self.config["axis"], len(shape) + 1, "GroupNormalization", shape)
        if axis == 1:
            return f"{module}({args[0]})"
        return f"{module}({args[0]}.movedim({axis}, 1)).movedim(1, {axis})"

    def _names(self) -> dict[str, str]:
        if self._native():
            return {"gamma": "weight", "beta": "bias"}
        return {"gamma": "gamma", "beta": "beta"}

    def torch_state(self, weights, input_shapes):
        return renamed(weights, self._names())

    def keras_weights(self, state, input_shapes):
        return renamed(state, {t: k for k, t in self._names().items()})

    def torch_weights(self, module, input_shapes):
        return {k: [f"{module}.{t}"] for k, t in self._names().items()}

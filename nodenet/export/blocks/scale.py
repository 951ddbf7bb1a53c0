"""Exporters of LayerScale and CustomScaleLayer, keras.applications' own scaling layers.

In Keras both are the classes keras.applications defines (imported from
``keras.src.applications.convnext`` and ``keras.src.applications.inception_resnet_v2``,
the modules Keras records for them in a saved model), with their required arguments
written out. In PyTorch LayerScale is a generated module holding ``gamma``;
CustomScaleLayer is an expression.
"""

from __future__ import annotations

from nodenet.export.blocks.base import BlockExporter, exports
from nodenet.export.snippets import arguments, literal, torch_helper

torch_helper(
    "ChannelScale",
    '''
class ChannelScale(nn.Module):
    """keras.applications' LayerScale: the input times a learned vector on its last axis."""

    def __init__(self, features: int, init_values: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((features,), init_values))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma
''',
)


@exports("LayerScale")
class LayerScaleExporter(BlockExporter):
    KERAS_REQUIRED = ("init_values", "projection_dim")

    def torch_module(self, input_shapes):
        c = self.config
        return f"ChannelScale({arguments([c['projection_dim'], c['init_values']], {})})"

    def torch_forward(self, module, args, input_shapes):
        return f"{module}({args[0]})"

    def torch_state(self, weights, input_shapes):
        return {"gamma": weights["gamma"]}

    def keras_weights(self, state, input_shapes):
        return {"gamma": state["gamma"]}

    def torch_weights(self, module, input_shapes):
        return {"gamma": [f"{module}.gamma"]}


@exports("CustomScaleLayer")
class CustomScaleLayerExporter(BlockExporter):
    KERAS_REQUIRED = ("scale",)

    def torch_forward(self, module, args, input_shapes):
        shortcut, residual = args
        return f"{shortcut} + {residual} * {literal(self.config['scale'])}"

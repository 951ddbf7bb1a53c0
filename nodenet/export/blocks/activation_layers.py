"""Exporters of the activation layers (ReLU, LeakyReLU, PReLU, ELU, Softmax, Identity)
and the torch helpers they call.

``keras_relu`` is Keras 3's ``activations.relu`` with all three settings; ``PReLU`` keeps
Keras's ``alpha`` (the input's shape, 1 on shared axes) as one parameter, channels-last.
"""

from __future__ import annotations

from nodenet.export.blocks.base import BlockExporter, Passthrough, exports
from nodenet.export.snippets import arguments, torch_helper

torch_helper(
    "keras_relu",
    '''
def keras_relu(
    x: torch.Tensor, max_value: float | None, negative_slope: float, threshold: float
) -> torch.Tensor:
    """Keras's relu: x above the threshold (at most max_value), else 0, minus
    negative_slope * max(threshold - x, 0)."""
    out = torch.where(x > threshold, x, torch.zeros_like(x))
    if max_value is not None:
        out = torch.clamp(out, max=max_value)
    if negative_slope:
        out = out - negative_slope * torch.relu(threshold - x)
    return out
''',
)
torch_helper(
    "PReLU",
    '''
class PReLU(nn.Module):
    """Keras's PReLU: relu(x) - alpha * relu(-x), alpha shaped like a sample (channels-last)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) - self.alpha * torch.relu(-x)
''',
)


@exports("ReLU")
class ReLUExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        c = self.config
        top, slope, threshold = c["max_value"], c["negative_slope"], c["threshold"]
        if top is None and threshold == 0:
            return f"F.leaky_relu({args[0]}, {slope!r})" if slope else f"torch.relu({args[0]})"
        return f"keras_relu({args[0]}, {top!r}, {slope!r}, {threshold!r})"


@exports("LeakyReLU")
class LeakyReLUExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        return f"F.leaky_relu({args[0]}, {self.config['negative_slope']!r})"


@exports("PReLU")
class PReLUExporter(BlockExporter):
    def torch_module(self, input_shapes):
        shape = self.layer.alpha_shape(tuple(input_shapes[0]))
        return f"PReLU({arguments([list(shape)], {})})"

    def torch_forward(self, module, args, input_shapes):
        return f"{module}({args[0]})"

    def torch_state(self, weights, input_shapes):
        return {"alpha": weights["alpha"]}

    def keras_weights(self, state, input_shapes):
        return {"alpha": state["alpha"]}

    def torch_weights(self, module, input_shapes):
        return {"alpha": [f"{module}.alpha"]}


@exports("ELU")
class ELUExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        return f"F.elu({args[0]}, {self.config['alpha']!r})"


@exports("Softmax")
class SoftmaxExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        return f"torch.softmax({args[0]}, dim={self.config['axis']})"


@exports("Identity")
class IdentityExporter(Passthrough):
    """Keras's ``Identity``; in torch, its input."""

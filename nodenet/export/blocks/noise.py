"""Exporters of the scaling and noise blocks (:mod:`nodenet.engine.layers.noise`).

None of them owns weights. In PyTorch the noise is drawn only while the module
trains (``self.training``), so inference is the identity as in Keras; dropout
masks come from an ``nn.Dropout`` applied to ones of the mask's shape.
"""

from __future__ import annotations

from nodenet.engine.layers.noise import SELU_ALPHA, SELU_SCALE, UNIT_NORM_EPSILON
from nodenet.export.blocks.base import BlockExporter, exports
from nodenet.export.blocks.core import masked_dropout
from nodenet.export.snippets import torch_helper

torch_helper(
    "alpha_dropout",
    f'''
def alpha_dropout(x: torch.Tensor, rate: float, noise_shape, training: bool) -> torch.Tensor:
    """Keras's AlphaDropout: dropped values become SELU's saturation, then ``a * x + b``."""
    if not training or rate == 0.0:
        return x
    alpha_p = -{SELU_ALPHA!r} * {SELU_SCALE!r}
    keep = (torch.rand(noise_shape, device=x.device) >= rate).to(x.dtype)
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    return a * (x * keep + alpha_p * (1 - keep)) - a * alpha_p * rate
''',
)
torch_helper(
    "gaussian_noise",
    '''
def gaussian_noise(x: torch.Tensor, stddev: float, training: bool) -> torch.Tensor:
    """Keras's GaussianNoise: ``x`` plus zero-centred noise of ``stddev`` while training."""
    return x + stddev * torch.randn_like(x) if training else x
''',
)
torch_helper(
    "gaussian_dropout",
    '''
def gaussian_dropout(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Keras's GaussianDropout: ``x`` times noise of mean 1, variance rate / (1 - rate)."""
    if not training or rate == 0.0:
        return x
    return x * (1.0 + math.sqrt(rate / (1.0 - rate)) * torch.randn_like(x))
''',
)


@exports("Rescaling")
class RescalingExporter(BlockExporter):
    KERAS_REQUIRED = ("scale",)

    def torch_forward(self, module, args, input_shapes):
        scale, offset = (self.config[k] for k in ("scale", "offset"))
        x = args[0]  # a list broadcasts along the last axis
        scale = f"{x}.new_tensor({scale!r})" if isinstance(scale, list) else repr(scale)
        offset = f"{x}.new_tensor({offset!r})" if isinstance(offset, list) else repr(offset)
        return f"{x} * {scale} + {offset}"


@exports("UnitNormalization")
class UnitNormalizationExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        # x * min(rsqrt(sum(x^2)), 1 / epsilon), Keras's order-2 normalize
        x, axis = args[0], self.config["axis"]
        inv = f"torch.rsqrt(({x} * {x}).sum(dim={axis}, keepdim=True))"
        return f"{x} * {inv}.clamp(max={1.0 / UNIT_NORM_EPSILON!r})"


@exports("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")
class SpatialDropoutExporter(BlockExporter):
    KERAS_REQUIRED = ("rate",)

    def torch_module(self, input_shapes):
        return f"nn.Dropout({self.config['rate']!r})"

    def torch_forward(self, module, args, input_shapes):
        rank = len(input_shapes[0])
        return masked_dropout(module, args[0], [None, *([1] * (rank - 1)), None])


@exports("GaussianNoise")
class GaussianNoiseExporter(BlockExporter):
    KERAS_REQUIRED = ("stddev",)

    def torch_forward(self, module, args, input_shapes):
        x, stddev = args[0], self.config["stddev"]
        return x if stddev == 0.0 else f"gaussian_noise({x}, {stddev!r}, self.training)"


@exports("GaussianDropout")
class GaussianDropoutExporter(BlockExporter):
    KERAS_REQUIRED = ("rate",)

    def torch_forward(self, module, args, input_shapes):
        x, rate = args[0], self.config["rate"]
        return x if rate == 0.0 else f"gaussian_dropout({x}, {rate!r}, self.training)"


@exports("AlphaDropout")
class AlphaDropoutExporter(BlockExporter):
    KERAS_REQUIRED = ("rate",)

    def torch_forward(self, module, args, input_shapes):
        x, noise_shape = args[0], self.config["noise_shape"]
        if noise_shape is None:
            shape = f"{x}.shape"
        else:
            dims = [f"{x}.shape[{i}]" if d is None else str(d) for i, d in enumerate(noise_shape)]
            shape = f"({', '.join(dims)}{',' if len(dims) == 1 else ''})"  # as ruff formats it
        return f"alpha_dropout({x}, {self.config['rate']!r}, {shape}, self.training)"

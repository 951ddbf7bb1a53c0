"""Exporters of Normalization, Resizing and CenterCrop, and the torch helpers they call.

Keras gets the layers with their own arguments. PyTorch gets a generated
``Normalization`` module (buffers ``mean``, ``variance`` and ``count`` with Keras's
names and layouts) when the statistics are weights, or a ``normalize`` call with the
given constants; ``resize`` and ``center_crop`` crop or pad as Keras does, then
interpolate with half-pixel centres: bilinear through ``F.interpolate``
(``align_corners=False``, what Keras's torch backend runs) and nearest by exact
integer indices (torch's ``nearest-exact`` rounds a few exact ties down in float32).
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.layers.preprocessing import Normalization
from nodenet.engine.layers.text_vectorization import TextVectorization
from nodenet.export.blocks.base import BlockExporter, exports
from nodenet.export.snippets import Source, arguments, literal, torch_helper

_NORMALIZATION_WEIGHTS = ("mean", "variance", "count")

torch_helper(
    "normalize",
    '''
def normalize(x: torch.Tensor, mean, variance, shape: list[int], invert: bool) -> torch.Tensor:
    """Keras's Normalization: ``(x - mean) / max(sqrt(variance), 1e-7)``, or its inverse;
    ``mean`` and ``variance`` are reshaped to ``shape`` to broadcast over the batch."""
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device).reshape(shape)
    variance = torch.as_tensor(variance, dtype=x.dtype, device=x.device).reshape(shape)
    std = variance.sqrt().clamp(min=1e-7)
    return mean + x * std if invert else (x - mean) / std
''',
)
torch_helper(
    "Normalization",
    '''
class Normalization(nn.Module):
    """Keras's Normalization with its statistics as buffers (set by Keras's ``adapt``, or
    loaded): ``mean`` and ``variance`` of the kept axes, and Keras's ``count``."""

    def __init__(self, shape: list[int], broadcast: list[int], invert: bool = False):
        super().__init__()
        self.broadcast, self.invert = broadcast, invert
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("variance", torch.ones(shape))
        self.register_buffer("count", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, self.mean, self.variance, self.broadcast, self.invert)
''',
)
torch_helper(
    "resize",
    '''
def resize(
    x: torch.Tensor,
    height: int,
    width: int,
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    fill_value: float = 0.0,
) -> torch.Tensor:
    """Keras's Resizing of channels-last images (half-pixel centres, no antialiasing)."""
    h, w = x.shape[1], x.shape[2]
    if crop_to_aspect_ratio:
        rows = max(min(h, int(float(w * height) / width)), 1)
        cols = max(min(w, int(float(h * width) / height)), 1)
        top, left = int(float(h - rows) / 2), int(float(w - cols) / 2)
        x = x[:, top : top + rows, left : left + cols]
    elif pad_to_aspect_ratio:
        pad_h = int(float(max(h, int(float(w * height) / width)) - h) / 2)
        pad_w = int(float(max(w, int(float(h * width) / height)) - w) / 2)
        x = F.pad(x, (0, 0, pad_w, pad_w, pad_h, pad_h), value=fill_value)
    h, w = x.shape[1], x.shape[2]
    if (h, w) == (height, width):
        return x
    if interpolation == "nearest":  # floor((i + 0.5) * n_in / n_out), on integers
        rows = [min((2 * i + 1) * h // (2 * height), h - 1) for i in range(height)]
        cols = [min((2 * i + 1) * w // (2 * width), w - 1) for i in range(width)]
        return x[:, rows][:, :, cols]
    size = (height, width)
    out = F.interpolate(x.movedim(-1, 1), size=size, mode="bilinear", align_corners=False)
    return out.movedim(1, -1)
''',
)
torch_helper(
    "center_crop",
    '''
def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Keras's CenterCrop: the centred box, or (an image smaller than it) the largest box of
    its aspect ratio resized to it."""
    h, w = x.shape[1], x.shape[2]
    if h >= height and w >= width:
        top, left = (h - height) // 2, (w - width) // 2
        return x[:, top : top + height, left : left + width]
    return resize(x, height, width, crop_to_aspect_ratio=True)
''',
)


torch_helper(
    "adapt_normalization",
    '''
def adapt_normalization(model: nn.Module, data: dict, device) -> None:
    """Set each Normalization module's mean and variance from the training inputs (the
    validation split's tail left out), each seeing the modules before it, as nodenet does."""
    train = data["train"]
    if data.get("validation") is None and VALIDATION_SPLIT:
        train, _ = split_tail(train, VALIDATION_SPLIT)
    inputs = [np.asarray(train[0][key]) for key in INPUTS]
    model.eval()
    for norm in [m for m in model.modules() if isinstance(m, Normalization)]:
        dims = [d for d, size in enumerate(norm.broadcast) if size == 1]  # the batch and more
        sums = {"n": 0, "x": 0.0, "xx": 0.0}

        def add(module, args, dims=dims, sums=sums):
            x = args[0].double()
            sums["n"] += x.numel() // module.mean.numel()
            sums["x"] = sums["x"] + x.sum(dim=dims)
            sums["xx"] = sums["xx"] + (x * x).sum(dim=dims)

        hook = norm.register_forward_pre_hook(add)
        with torch.no_grad():
            for start in range(0, len(inputs[0]), 1024):
                batch = [x[start : start + 1024] for x in inputs]  # texts stay strings
                model(*(x if x.dtype.kind == "U" else torch.as_tensor(x).to(device) for x in batch))
        hook.remove()
        mean = sums["x"] / sums["n"]
        variance = (sums["xx"] / sums["n"] - mean * mean).clamp(min=0.0)
        norm.mean.copy_(mean.reshape(norm.mean.shape))
        norm.variance.copy_(variance.reshape(norm.variance.shape))
    model.train()
''',
)


@exports("Normalization")
class NormalizationExporter(BlockExporter):
    layer: Normalization

    def _broadcast(self, input_shapes) -> list[int]:
        return self.layer._broadcast_shape(input_shapes[0])

    def torch_module(self, input_shapes):
        if not self.layer.adapts():
            return None
        shape = list(self.layer._kept_shape(input_shapes[0]))
        options = {"invert": True} if self.config["invert"] else {}
        return f"Normalization({arguments([shape, self._broadcast(input_shapes)], options)})"

    def torch_forward(self, module, args, input_shapes):
        if self.layer.adapts():
            return f"{module}({args[0]})"
        c = self.config
        shape = [1] * len(self._broadcast(input_shapes))  # the constants, aligned as Keras does
        keep = self.layer.keep_axes(len(shape))
        dims = np.shape(c["mean"])
        for i in range(1, len(dims) + 1):
            shape[keep[-i]] = dims[-i]
        values = [literal(c["mean"]), literal(c["variance"]), literal(shape), literal(c["invert"])]
        return f"normalize({args[0]}, {', '.join(values)})"

    def torch_state(self, weights, input_shapes):
        return {k: weights[k] for k in _NORMALIZATION_WEIGHTS if k in weights}

    def keras_weights(self, state, input_shapes):
        return {k: state[k] for k in _NORMALIZATION_WEIGHTS if k in state}

    def torch_weights(self, module, input_shapes):
        if not self.layer.adapts():
            return {}
        return {k: [f"{module}.{k}"] for k in _NORMALIZATION_WEIGHTS}


@exports("Resizing")
class ResizingExporter(BlockExporter):
    KERAS_REQUIRED = ("height", "width")

    def torch_forward(self, module, args, input_shapes):
        c = self.config
        defaults = {
            "interpolation": "bilinear",
            "crop_to_aspect_ratio": False,
            "pad_to_aspect_ratio": False,
            "fill_value": 0.0,
        }
        options = {k: c[k] for k, v in defaults.items() if c[k] != v}
        if not c["pad_to_aspect_ratio"]:
            options.pop("fill_value", None)
        return f"resize({arguments([Source(args[0]), c['height'], c['width']], options)})"


@exports("CenterCrop")
class CenterCropExporter(BlockExporter):
    KERAS_REQUIRED = ("height", "width")

    def torch_forward(self, module, args, input_shapes):
        return f"center_crop({args[0]}, {self.config['height']}, {self.config['width']})"


def normalizing(layers) -> bool:
    """Whether any of ``layers`` (built blocks) is a Normalization learning its statistics."""
    return any(isinstance(layer, Normalization) and layer.adapts() for layer in layers)


def learning_vocabulary(layers) -> bool:
    """Whether any of ``layers`` is a TextVectorization learning its vocabulary."""
    return any(isinstance(layer, TextVectorization) and layer.adapts() for layer in layers)


def adapting(layers) -> bool:
    """Whether any of ``layers`` (built blocks) learns its state from the data before
    training: a Normalization's statistics or a TextVectorization's vocabulary."""
    layers = list(layers)
    return normalizing(layers) or learning_vocabulary(layers)


# the generated Keras script's adapt step, run before fit when no trained weights come with it
KERAS_ADAPT = '''def adapt_normalization(model: keras.Model, x: dict, split: float) -> None:
    """Set each Normalization layer's mean and variance, and each TextVectorization layer's
    vocabulary (unless given), from the training inputs ``x`` (the validation split's tail
    left out), each seeing the layers before it, as nodenet does."""
    n = len(next(iter(x.values())))
    keep = math.floor(n * (1.0 - split))  # Keras's train_validation_split count
    x = {key: value[:keep] for key, value in x.items()}
    for layer in model.layers:
        if isinstance(layer, keras.layers.TextVectorization):
            if not layer.get_vocabulary(include_special_tokens=False):
                layer.adapt(x[layer.input.name])  # a string Input's texts
        elif isinstance(layer, keras.layers.Normalization) and layer.input_mean is None:
            features = keras.Model(model.inputs, layer.input)
            layer.adapt(features.predict(x, batch_size=BATCH_SIZE, verbose=0))'''

"""Exporters of the image augmentation blocks (:mod:`nodenet.engine.layers.augmentation`).

Keras gets its own layers with the block's arguments and seed. PyTorch gets helper
functions that are the identity in eval mode (``self.training`` false) and, while
the module trains, draw each image's transform from torch's generator with Keras's
distributions: flips, Keras's ``affine_transform`` (gathered taps with its fill
modes) for rotation, zoom and translation, contrast and brightness clipped to the
value range, and Keras's crop box. RandomCrop in eval mode takes the centred box of
the target's aspect ratio resized to it, as nodenet does (Keras 3.15's layer passes
the images on uncropped at inference, keras-team/keras#21868).
"""

from __future__ import annotations

from nodenet.export.blocks.base import BlockExporter, exports
from nodenet.export.snippets import Source, arguments, torch_helper

torch_helper(
    "random_flip",
    '''
def random_flip(x: torch.Tensor, mode: str, training: bool) -> torch.Tensor:
    """Keras's RandomFlip: each image flipped with probability 0.5 while training (one draw
    flips both axes in ``horizontal_and_vertical``)."""
    if not training:
        return x
    dims = {"horizontal": [2], "vertical": [1]}.get(mode, [1, 2])
    flips = (torch.rand(x.shape[0], device=x.device) <= 0.5).reshape(-1, 1, 1, 1)
    return torch.where(flips, x.flip(dims), x)
''',
)
torch_helper(
    "affine_transform",
    '''
def affine_transform(
    x: torch.Tensor, matrices: torch.Tensor, interpolation: str, fill_mode: str, fill_value: float
) -> torch.Tensor:
    """Keras's affine_transform of channels-last images: output pixel (row y, column x)
    reads the input at column ``a0 x + a1 y + a2``, row ``b0 x + b1 y + b2`` (``matrices``
    (batch, 6)), between its neighbours (bilinear) or at the nearest one; neighbours
    outside the image are reflected, wrapped, clamped (nearest) or read as ``fill_value``."""
    b, h, w, c = x.shape
    m = matrices.to(device=x.device, dtype=torch.float32).reshape(b, 6, 1, 1)
    grid = [torch.arange(n, dtype=torch.float32, device=x.device) for n in (h, w)]
    ys, xs = torch.meshgrid(*grid, indexing="ij")
    cols = (m[:, 0] * xs + m[:, 1] * ys) + m[:, 2]
    rows = (m[:, 3] * xs + m[:, 4] * ys) + m[:, 5]

    def nodes(coords):
        if interpolation == "nearest":
            return [(torch.round(coords).long(), None)]
        lower = torch.floor(coords)
        return [(lower.long(), 1 - (coords - lower)), (lower.long() + 1, coords - lower)]

    def fix(index, size):
        if fill_mode == "wrap":
            return index % size
        if fill_mode == "reflect":
            index = index % (2 * size)
            return torch.where(index >= size, 2 * size - 1 - index, index)
        return index.clamp(0, size - 1)

    pixels = x.reshape(b, h * w, c)
    out = torch.zeros_like(pixels)
    for r, r_weight in nodes(rows):
        for q, q_weight in nodes(cols):
            flat = (fix(r, h) * w + fix(q, w)).reshape(b, h * w, 1).expand(b, h * w, c)
            value = torch.gather(pixels, 1, flat)
            if fill_mode == "constant":
                inside = ((r >= 0) & (r < h) & (q >= 0) & (q < w)).reshape(b, h * w, 1)
                value = torch.where(inside, value, torch.full_like(value, fill_value))
            if r_weight is not None:
                value = (r_weight * q_weight).reshape(b, h * w, 1).to(x.dtype) * value
            out = out + value
    return out.reshape(b, h, w, c)
''',
)
torch_helper(
    "affine_matrices",
    '''
def affine_matrices(angle, zoom_x, zoom_y, shift_x, shift_y, h: int, w: int) -> torch.Tensor:
    """Keras's (batch, 6) matrices: a rotation by ``angle`` radians and a zoom about the
    centre, then a shift in pixels (each a tensor over the batch)."""
    cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    a0, a1, b0, b1 = zoom_x * cos, -zoom_x * sin, zoom_y * sin, zoom_y * cos
    a2 = shift_x + cx - cx * a0 - cy * a1
    b2 = shift_y + cy - cx * b0 - cy * b1
    return torch.stack([a0, a1, a2, b0, b1, b2], dim=1)
''',
)
torch_helper(
    "random_affine",
    '''
def random_affine(
    x: torch.Tensor,
    kind: str,
    ranges: tuple,
    interpolation: str = "bilinear",
    fill_mode: str = "reflect",
    fill_value: float = 0.0,
    training: bool = False,
) -> torch.Tensor:
    """Keras's RandomRotation, RandomZoom or RandomTranslation while training: per image,
    an angle in [low, high] turns, zooms in [1 + low, 1 + high] (height, width) or shifts
    in [low, high] of the height and width, drawn uniformly."""
    if not training:
        return x
    b, h, w = x.shape[0], x.shape[1], x.shape[2]

    def draw(low, high):
        return torch.empty(b, dtype=torch.float64).uniform_(low, high)

    zeros, ones = torch.zeros(b, dtype=torch.float64), torch.ones(b, dtype=torch.float64)
    if kind == "rotation":
        angle = torch.deg2rad(draw(ranges[0][0] * 360.0, ranges[0][1] * 360.0))
        matrices = affine_matrices(angle, ones, ones, zeros, zeros, h, w)
    elif kind == "zoom":
        zoom_y = draw(1.0 + ranges[0][0], 1.0 + ranges[0][1])
        zoom_x = zoom_y if ranges[1] is None else draw(1.0 + ranges[1][0], 1.0 + ranges[1][1])
        matrices = affine_matrices(zeros, zoom_x, zoom_y, zeros, zeros, h, w)
    else:
        shift_y, shift_x = draw(*ranges[0]) * h, draw(*ranges[1]) * w
        matrices = affine_matrices(zeros, ones, ones, -shift_x, -shift_y, h, w)
    return affine_transform(x, matrices, interpolation, fill_mode, fill_value)
''',
)
torch_helper(
    "random_contrast",
    '''
def random_contrast(
    x: torch.Tensor, lower: float, upper: float, value_range: tuple, training: bool
) -> torch.Tensor:
    """Keras's RandomContrast: per image, ``(x - mean) * f + mean`` with ``f`` drawn in
    [1 - lower, 1 + upper] (the mean per channel over the image), clipped to the range."""
    if not training:
        return x
    shape = (x.shape[0], 1, 1, 1)
    f = torch.empty(shape, dtype=x.dtype, device=x.device).uniform_(1.0 - lower, 1.0 + upper)
    mean = x.mean(dim=1, keepdim=True).mean(dim=2, keepdim=True)
    return ((x - mean) * f + mean).clamp(value_range[0], value_range[1])
''',
)
torch_helper(
    "random_brightness",
    '''
def random_brightness(
    x: torch.Tensor, lower: float, upper: float, value_range: tuple, training: bool
) -> torch.Tensor:
    """Keras's RandomBrightness: per image, a shift drawn in [lower, upper] times the
    width of the value range, clipped to it."""
    if not training:
        return x
    low, high = sorted(value_range)
    shape = (x.shape[0], 1, 1, 1)
    delta = torch.empty(shape, dtype=x.dtype, device=x.device).uniform_(lower, upper)
    return (x + delta * (high - low)).clamp(low, high)
''',
)
torch_helper(
    "random_crop",
    '''
def random_crop(x: torch.Tensor, height: int, width: int, training: bool) -> torch.Tensor:
    """Keras's RandomCrop: one random box per batch while training (an image not larger
    than it on both sides: Keras's box towards its aspect ratio, resized); in eval mode the
    centred box of its aspect ratio, resized."""
    h, w = x.shape[1], x.shape[2]
    if not training:
        return resize(x, height, width, crop_to_aspect_ratio=True)
    if h > height and w > width:
        top = int(torch.randint(h - height + 1, ()))
        left = int(torch.randint(w - width + 1, ()))
        return x[:, top : top + height, left : left + width]
    rows = max(min(h, int(float(w * height) / width)), 1)
    cols = max(min(w, int(float(h * width) / height)), 1)
    top, left = int(float(h - rows) / 2), int(float(w - cols) / 2)
    return resize(x[:, top : top + height, left : left + width], height, width)
''',
)


TRAINING = Source("self.training")  # the module's mode: the blocks draw only while it trains


def factor_range(value, *, lower_zero: bool = False) -> list[float]:
    """``[lower, upper]`` of a Keras factor: a number ``f`` gives ``[-|f|, |f|]`` (or
    ``[0, f]`` where Keras bounds it below by 0), a pair sorted."""
    if isinstance(value, list):
        return sorted(value)
    return [0.0 if lower_zero else -abs(value), abs(value)]


@exports("RandomFlip")
class RandomFlipExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        return f"random_flip({arguments([Source(args[0]), self.config['mode'], TRAINING], {})})"


class _AffineExporter(BlockExporter):
    KIND = ""

    def ranges(self) -> list:
        raise NotImplementedError

    def torch_forward(self, module, args, input_shapes):
        c = self.config
        defaults = {"interpolation": "bilinear", "fill_mode": "reflect", "fill_value": 0.0}
        options = {k: c[k] for k, v in defaults.items() if c[k] != v}
        options["training"] = TRAINING
        return f"random_affine({arguments([Source(args[0]), self.KIND, self.ranges()], options)})"


@exports("RandomRotation")
class RandomRotationExporter(_AffineExporter):
    KERAS_REQUIRED = ("factor",)
    KIND = "rotation"

    def ranges(self):
        return [factor_range(self.config["factor"])]


@exports("RandomZoom")
class RandomZoomExporter(_AffineExporter):
    KERAS_REQUIRED = ("height_factor",)
    KIND = "zoom"

    def ranges(self):
        width = self.config["width_factor"]
        return [
            factor_range(self.config["height_factor"]),
            None if width is None else factor_range(width),
        ]


@exports("RandomTranslation")
class RandomTranslationExporter(_AffineExporter):
    KERAS_REQUIRED = ("height_factor", "width_factor")
    KIND = "translation"

    def ranges(self):
        return [factor_range(self.config[k]) for k in ("height_factor", "width_factor")]


@exports("RandomContrast")
class RandomContrastExporter(BlockExporter):
    KERAS_REQUIRED = ("factor",)

    def torch_forward(self, module, args, input_shapes):
        lower, upper = factor_range(self.config["factor"], lower_zero=True)
        values = [Source(args[0]), lower, upper, self.config["value_range"], TRAINING]
        return f"random_contrast({arguments(values, {})})"


@exports("RandomBrightness")
class RandomBrightnessExporter(BlockExporter):
    KERAS_REQUIRED = ("factor",)

    def torch_forward(self, module, args, input_shapes):
        lower, upper = factor_range(self.config["factor"])
        values = [Source(args[0]), lower, upper, self.config["value_range"], TRAINING]
        return f"random_brightness({arguments(values, {})})"


@exports("RandomCrop")
class RandomCropExporter(BlockExporter):
    KERAS_REQUIRED = ("height", "width")

    def torch_forward(self, module, args, input_shapes):
        c = self.config
        return f"random_crop({arguments([Source(args[0]), c['height'], c['width'], TRAINING], {})})"

"""Keras's ``affine_transform`` in numpy, for the rotation, zoom and translation blocks.

Output pixel (row y, column x) reads the input at a point given by a per-image
matrix, between its neighbours (bilinear) or at the nearest one, as Keras's JAX and
torch backends compute it (``map_coordinates``: each neighbour outside the image is
reflected, wrapped, clamped, or read as the fill value). It is written as up to four
weighted taps per output pixel, gathered forward and scattered back in the backward.
"""

from __future__ import annotations

import numpy as np

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


def _fix_index(index: np.ndarray, size: int, fill_mode: str) -> np.ndarray:
    """Out-of-range neighbour indices mapped into the image, as Keras's index fixers do."""
    if fill_mode == "wrap":
        return index % size
    if fill_mode == "reflect":  # (d c b a | a b c d | d c b a)
        period = 2 * size
        index = index % period
        return np.where(index >= size, period - 1 - index, index)
    return np.clip(index, 0, size - 1)  # nearest; constant reads fill for these


def _axis_nodes(coords: np.ndarray, interpolation: str):
    """(index, weight) of the neighbours along one axis: one (nearest, half to even) or
    two (bilinear, weights 1 - t and t)."""
    if interpolation == "nearest":
        return [(np.round(coords).astype(np.int64), None)]
    lower = np.floor(coords)
    upper_weight = coords - lower
    index = lower.astype(np.int64)
    return [(index, 1 - upper_weight), (index + 1, upper_weight)]


def affine_taps(shape, matrices: np.ndarray, interpolation: str, fill_mode: str):
    """The taps of ``affine_transform`` for images of ``shape`` (b, h, w, c).

    ``matrices`` (b, 6) holds Keras's ``[a0, a1, a2, b0, b1, b2]``: output pixel
    (row y, column x) reads the input at column ``a0 x + a1 y + a2`` and row
    ``b0 x + b1 y + b2`` (computed in float32, as Keras does). Returns a list of
    ``(flat index, weight, inside)``: flat indices into the (b * h * w) pixels,
    weights (b, h * w) and, for ``constant``, whether the neighbour is inside.
    """
    b, h, w, _ = shape
    ys, xs = np.meshgrid(
        np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij"
    )
    m = matrices.astype(np.float32).reshape(b, 6, 1, 1)
    cols = (m[:, 0] * xs + m[:, 1] * ys) + m[:, 2]
    rows = (m[:, 3] * xs + m[:, 4] * ys) + m[:, 5]
    base = (np.arange(b) * (h * w)).reshape(b, 1, 1)
    taps = []
    for r_index, r_weight in _axis_nodes(rows, interpolation):
        for c_index, c_weight in _axis_nodes(cols, interpolation):
            inside = None
            if fill_mode == "constant":
                inside = (r_index >= 0) & (r_index < h) & (c_index >= 0) & (c_index < w)
            flat = base + _fix_index(r_index, h, fill_mode) * w + _fix_index(c_index, w, fill_mode)
            if r_weight is None:
                weight = np.ones((b, h, w), dtype=np.float32)
            else:
                weight = r_weight * c_weight
            taps.append(
                (
                    flat.reshape(b, h * w),
                    weight.reshape(b, h * w),
                    None if inside is None else inside.reshape(b, h * w),
                )
            )
    return taps


def affine_apply(x: np.ndarray, taps, fill_value: float) -> np.ndarray:
    """The resampled images: the sum of every tap's weight times its pixel (or the fill)."""
    b, h, w, c = x.shape
    pixels = x.reshape(b * h * w, c)
    out = np.zeros((b, h * w, c), dtype=x.dtype)
    for flat, weight, inside in taps:
        value = pixels[flat]
        if inside is not None:
            value = np.where(inside[..., None], value, x.dtype.type(fill_value))
        out += weight.astype(x.dtype)[..., None] * value
    return out.reshape(b, h, w, c)


def affine_grad(grad: np.ndarray, taps) -> np.ndarray:
    """The adjoint of :func:`affine_apply` (the fill is a constant: no gradient)."""
    b, h, w, c = grad.shape
    n = b * h * w
    g = grad.reshape(b, h * w, c)
    index = np.concatenate([flat.reshape(-1) for flat, _, _ in taps])
    scales = []
    for _, weight, inside in taps:
        weight = weight.astype(grad.dtype)
        scales.append((weight if inside is None else weight * inside).reshape(-1))
    scale = np.concatenate(scales)
    values = np.concatenate([g.reshape(-1, c)] * len(taps)) * scale[:, None]
    dx = np.stack([np.bincount(index, values[:, k], minlength=n) for k in range(c)], axis=-1)
    return dx.astype(grad.dtype, copy=False).reshape(b, h, w, c)


def affine_matrices(
    angle: np.ndarray, zoom_x: np.ndarray, zoom_y: np.ndarray, shift_x, shift_y, h: int, w: int
) -> np.ndarray:
    """Keras's matrices (b, 6) for a rotation by ``angle`` radians about the centre, a zoom
    about the centre and a shift in pixels (each an array over the batch)."""
    cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)
    cos, sin = np.cos(angle), np.sin(angle)
    a0, a1 = zoom_x * cos, -zoom_x * sin
    b0, b1 = zoom_y * sin, zoom_y * cos
    a2 = shift_x + cx - cx * a0 - cy * a1
    b2 = shift_y + cy - cx * b0 - cy * b1
    return np.stack([a0, a1, a2, b0, b1, b2], axis=1)

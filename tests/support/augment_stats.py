"""Sampling statistics shared by the augmentation tests: test patterns whose transform can be
read back, and a two-sample comparison of the values read."""

from __future__ import annotations

import math

import numpy as np

N = 1000  # images per distribution
KS_CRITICAL = 1.95 * math.sqrt(2 / N)  # two-sample KS at alpha = 0.001, n = m = N


def ks(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic."""
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def blobs(n: int, row: float, col: float, size: int = 25) -> np.ndarray:
    """n copies of a Gaussian blob (sigma 1.5) centred at (row, col)."""
    r, c = np.mgrid[:size, :size]
    blob = np.exp(-((r - row) ** 2 + (c - col) ** 2) / (2 * 1.5**2))
    return np.broadcast_to(blob[None, :, :, None], (n, size, size, 1)).astype(np.float32).copy()


def centroids(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each image's centre of mass."""
    r, c = np.mgrid[: images.shape[1], : images.shape[2]]
    mass = images[..., 0].sum(axis=(1, 2))
    return (images[..., 0] * r).sum(axis=(1, 2)) / mass, (images[..., 0] * c).sum(
        axis=(1, 2)
    ) / mass


def compare(ours: np.ndarray, theirs: np.ndarray, low: float, high: float, slack: float):
    """Both samples lie in [low, high] (within ``slack``), reach near both ends, and share
    a distribution by the two-sample KS statistic."""
    for sample in (ours, theirs):
        assert sample.min() >= low - slack and sample.max() <= high + slack
        span = high - low
        assert (
            sample.min() <= low + 0.02 * span + slack and sample.max() >= high - 0.02 * span - slack
        )
    assert ks(ours, theirs) < KS_CRITICAL


def angles(images: np.ndarray, centre: float = 12.0) -> np.ndarray:
    """Degrees (counter-clockwise) of each image's centre of mass about the centre."""
    rows, cols = centroids(images)
    return np.degrees(np.arctan2(-(rows - centre), cols - centre))

"""Synthetic built-in datasets, generated from a seed with no file and no network.

Each maker takes ``(seed, options)`` and returns a :class:`Dataset` with ``x``
and ``y``. The same seed and options give the same arrays, byte for byte.

========================  ==============  =====================================
name                      task            arrays
========================  ==============  =====================================
``spirals``               classification  x (n, 2) float32, y (n,) int64
``xor``                   classification  x (n, 2) float32, y (n,) int64
``circles``, ``moons``    classification  x (n, 2) float32, y (n,) int64
``sine``                  regression      x (n, 1) float32, y (n,) float32
``sequence_sum``          regression      x (n, steps, 1) float32, y (n,) float32
``parity``                classification  x (n, steps, 1) float32, y (n,) int64
``reviews``               classification  x (n, maxlen) int32 tokens, y (n,) int64
========================  ==============  =====================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nodenet.engine.data.base import (
    Dataset,
    DatasetMeta,
    check_range,
    check_samples,
    register_builtin,
)


def _shuffled(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> tuple:
    order = rng.permutation(len(x))
    return x[order], y[order]


def _meta(classes: list[str] | None = None, **extra: Any) -> DatasetMeta:
    """Class names of ``y`` and extra facts; the loader fills name, task and description."""
    return DatasetMeta(classes={"y": classes} if classes else {}, extra=dict(extra))


@register_builtin(
    "spirals",
    task="classification",
    description="Interleaved 2-D spiral arms, one class per arm.",
    options={"samples": 600, "classes": 3, "noise": 0.2, "turns": 1.0},
)
def spirals(seed: int, options: dict[str, Any]) -> Dataset:
    """``classes`` spiral arms from the centre outwards; ``noise`` jitters the angle (rad)."""
    n, k = options["samples"], options["classes"]
    check_samples("spirals", n)
    check_range("spirals: option 'classes'", k, 2, 100)
    check_range("spirals: option 'noise'", options["noise"], 0.0)
    check_range("spirals: option 'turns'", options["turns"], 0.1, 100.0)
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    r = rng.uniform(0.05, 1.0, n)
    theta = 2 * np.pi * (y / k + options["turns"] * r) + options["noise"] * rng.standard_normal(n)
    x = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1).astype(np.float32)
    x, y = _shuffled(rng, x, y.astype(np.int64))
    names = [f"arm {i}" for i in range(k)]
    return Dataset({"x": x, "y": y}, _meta(names))


@register_builtin(
    "xor",
    task="classification",
    description="Points in the four quadrants; the class is 1 where x0 and x1 differ in sign.",
    options={"samples": 400, "noise": 0.05},
)
def xor(seed: int, options: dict[str, Any]) -> Dataset:
    """Uniform points kept 0.1 away from the axes, labelled ``(x0 > 0) xor (x1 > 0)``."""
    n = options["samples"]
    check_samples("xor", n)
    check_range("xor: option 'noise'", options["noise"], 0.0)
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1.0, 1.0, (n, 2))
    x = np.sign(u) * (0.1 + 0.9 * np.abs(u))
    y = ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(np.int64)
    x = (x + options["noise"] * rng.standard_normal((n, 2))).astype(np.float32)
    return Dataset({"x": x, "y": y}, _meta(["same", "diff"]))


@register_builtin(
    "circles",
    task="classification",
    description="A small circle inside a large one (scikit-learn make_circles).",
    options={"samples": 500, "noise": 0.05, "factor": 0.5},
)
def circles(seed: int, options: dict[str, Any]) -> Dataset:
    """Class 0 on the outer circle (radius 1), class 1 on the inner one (radius ``factor``)."""
    check_samples("circles", options["samples"])
    check_range("circles: option 'noise'", options["noise"], 0.0)
    check_range("circles: option 'factor'", options["factor"], 0.0, 0.99)
    from sklearn.datasets import make_circles  # imported on use: scikit-learn is ~120 MiB

    x, y = make_circles(
        options["samples"], noise=options["noise"], factor=options["factor"], random_state=seed
    )
    meta = _meta(["outer", "inner"])
    return Dataset({"x": x.astype(np.float32), "y": y.astype(np.int64)}, meta)


@register_builtin(
    "moons",
    task="classification",
    description="Two interleaving half circles (scikit-learn make_moons).",
    options={"samples": 500, "noise": 0.1},
)
def moons(seed: int, options: dict[str, Any]) -> Dataset:
    """Two interleaving half circles, one class each."""
    check_samples("moons", options["samples"])
    check_range("moons: option 'noise'", options["noise"], 0.0)
    from sklearn.datasets import make_moons  # imported on use, as make_circles

    x, y = make_moons(options["samples"], noise=options["noise"], random_state=seed)
    meta = _meta(["upper", "lower"])
    return Dataset({"x": x.astype(np.float32), "y": y.astype(np.int64)}, meta)


@register_builtin(
    "sine",
    task="regression",
    description="y = sin(x) plus Gaussian noise, x uniform in [-pi, pi].",
    options={"samples": 500, "noise": 0.05},
)
def sine(seed: int, options: dict[str, Any]) -> Dataset:
    """``x`` of shape (n, 1) uniform in [-pi, pi]; ``y = sin(x) + noise * N(0, 1)``, shape (n,)."""
    n = options["samples"]
    check_samples("sine", n)
    check_range("sine: option 'noise'", options["noise"], 0.0)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, (n, 1))
    y = np.sin(x[:, 0]) + options["noise"] * rng.standard_normal(n)
    meta = _meta()
    return Dataset({"x": x.astype(np.float32), "y": y.astype(np.float32)}, meta)


@register_builtin(
    "sequence_sum",
    task="regression",
    description="Sequences of numbers in [0, 1); the target is their sum (for RNNs).",
    options={"samples": 1000, "steps": 10},
)
def sequence_sum(seed: int, options: dict[str, Any]) -> Dataset:
    """``x`` (n, steps, 1) uniform in [0, 1); ``y`` (n,) the sum over the steps."""
    n, steps = options["samples"], options["steps"]
    check_samples("sequence_sum", n)
    check_range("sequence_sum: option 'steps'", steps, 1, 10_000)
    x = np.random.default_rng(seed).uniform(0.0, 1.0, (n, steps, 1)).astype(np.float32)
    y = x.sum(axis=(1, 2), dtype=np.float64).astype(np.float32)
    return Dataset({"x": x, "y": y}, _meta())


@register_builtin(
    "parity",
    task="classification",
    description="Sequences of bits; the class is 1 when the number of ones is odd (for RNNs).",
    options={"samples": 1000, "steps": 8},
)
def parity(seed: int, options: dict[str, Any]) -> Dataset:
    """``x`` (n, steps, 1) of 0.0 / 1.0; ``y`` (n,) the parity of the number of ones."""
    n, steps = options["samples"], options["steps"]
    check_samples("parity", n)
    check_range("parity: option 'steps'", steps, 1, 10_000)
    bits = np.random.default_rng(seed).integers(0, 2, (n, steps, 1))
    y = (bits.sum(axis=(1, 2)) % 2).astype(np.int64)
    meta = _meta(["even", "odd"])
    return Dataset({"x": bits.astype(np.float32), "y": y}, meta)


# -- a tiny sentiment corpus --------------------------------------------------------

# fmt: off
_NEUTRAL = (
    "the", "a", "this", "movie", "film", "plot", "story", "actors", "it", "was", "is", "and",
    "very", "really", "quite", "ending", "music", "scenes", "characters", "i",
)
_POSITIVE = (
    "good", "great", "excellent", "wonderful", "love", "enjoyed", "fun", "brilliant", "perfect",
    "best",
)
_NEGATIVE = (
    "bad", "awful", "terrible", "boring", "hate", "poor", "worst", "dull", "waste", "annoying",
)
# fmt: on
_NOT = "not"
VOCABULARY = ("<pad>", *_NEUTRAL, *_POSITIVE, *_NEGATIVE, _NOT)


@register_builtin(
    "reviews",
    task="classification",
    description=(
        f"Generated movie reviews as token ids padded to a fixed length (vocabulary of "
        f"{len(VOCABULARY)}, 0 is padding): positive or negative, 'not' flips the next word. "
        "For Embedding + LSTM."
    ),
    options={"samples": 1000, "maxlen": 20, "min_length": 4},
)
def reviews(seed: int, options: dict[str, Any]) -> Dataset:
    """Token sequences ``x`` (n, maxlen) int32, padded in front with 0 like Keras'
    ``pad_sequences``; ``y`` (n,) is 1 when the sentiment words, each flipped by a
    ``not`` just before it, add up positive. Reviews that add up to zero are redrawn.
    """
    n, maxlen, min_length = options["samples"], options["maxlen"], options["min_length"]
    check_samples("reviews", n)
    check_range("reviews: option 'maxlen'", maxlen, 2, 10_000)
    check_range("reviews: option 'min_length'", min_length, 1, maxlen)
    rng = np.random.default_rng(seed)
    polarity = np.zeros(len(VOCABULARY), np.int64)
    polarity[[VOCABULARY.index(w) for w in _POSITIVE]] = 1
    polarity[[VOCABULARY.index(w) for w in _NEGATIVE]] = -1
    kept_x, kept_y, total = [], [], 0
    while total < n:
        tokens = _draw_tokens(rng, 2 * (n - total) + 16, maxlen, min_length)
        after_not = np.pad(tokens[:, :-1] == VOCABULARY.index(_NOT), ((0, 0), (1, 0)))
        score = (polarity[tokens] * np.where(after_not, -1, 1)).sum(axis=1)
        keep = score != 0
        kept_x.append(tokens[keep])
        kept_y.append((score[keep] > 0).astype(np.int64))
        total += int(keep.sum())
    x = np.concatenate(kept_x)[:n].astype(np.int32)
    y = np.concatenate(kept_y)[:n]
    return Dataset({"x": x, "y": y}, _meta(["negative", "positive"], vocabulary=list(VOCABULARY)))


def _draw_tokens(rng: np.random.Generator, m: int, maxlen: int, min_length: int) -> np.ndarray:
    """``m`` token rows (m, maxlen): neutral words 60 %, each polarity 15 %, 'not' 10 %."""
    groups = [_NEUTRAL, _POSITIVE, _NEGATIVE, [_NOT]]
    weights = [0.60, 0.15, 0.15, 0.10]
    p = np.concatenate([np.full(len(g), w / len(g)) for g, w in zip(groups, weights, strict=True)])
    tokens = 1 + rng.choice(len(p), size=(m, maxlen), p=p)
    lengths = rng.integers(min_length, maxlen + 1, m)
    tokens[np.arange(maxlen) < (maxlen - lengths)[:, None]] = 0
    return tokens

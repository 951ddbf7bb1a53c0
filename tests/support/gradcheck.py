"""Finite-difference gradient checks for a block's forward/backward (float64)."""

from __future__ import annotations

import numpy as np

from nodenet.engine.catalog import Context, Layer
from nodenet.engine.initializers import initialize

BATCH = 3


def concrete(shape, fill=5):
    """A shape with variable (None) dimensions made concrete."""
    return tuple(fill if d is None else d for d in shape)


def make_inputs(layer: Layer, example, rng, dtype=np.float64):
    arrays = []
    for shape in example.input_shapes:
        full = (BATCH, *concrete(shape))
        if example.input_dtype == "string":  # one text per sample (TextVectorization)
            arrays.append(sample_texts(rng, full))
        elif example.input_dtype == "int32":
            arrays.append(rng.integers(0, example.int_high, size=full).astype(np.int32))
        else:
            arrays.append(rng.normal(0.0, 1.0, size=full).astype(dtype))
    return arrays


WORDS = ("The", "cat", "sat", "on", "a", "mat.", "Dog,", "DOG", "the", "end!", "a-b", "é")


def sample_texts(rng, shape) -> np.ndarray:
    """Strings of 0 to 7 words (some with punctuation and capitals) in an array of ``shape``."""
    count = int(np.prod(shape))
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(0, 8))) for _ in range(count)]
    return np.array(texts, dtype=str).reshape(shape)


def make_weights(layer: Layer, input_shapes, rng, dtype=np.float64):
    weights = {}
    for spec in layer.weight_specs(list(input_shapes)):
        w = initialize(spec.initializer, spec.shape, rng, dtype)
        # perturb so zero-initialized biases and unit gammas are exercised too
        # an array even for a scalar weight (shape ()), which numpy would make a scalar
        weights[spec.name] = np.asarray(w + rng.normal(0.0, 0.1, size=spec.shape).astype(dtype))
    return weights


def run_forward(layer, weights, inputs, training=True, seed=0):
    return layer.forward(
        weights, inputs, Context(training=training, rng=np.random.default_rng(seed))
    )


def check_gradients(layer: Layer, example, seed=0, eps=1e-6, samples=12, rtol=1e-4, atol=1e-6):
    """Compare backward's gradients with central differences; return the worst error."""
    rng = np.random.default_rng(seed)
    input_shapes = [concrete(s) for s in example.input_shapes]
    inputs = make_inputs(layer, example, rng)
    weights = make_weights(layer, input_shapes, rng)
    y, cache = run_forward(layer, {k: v.copy() for k, v in weights.items()}, inputs)
    several = isinstance(y, list)  # a block with several outputs: one probe each
    probes = [rng.normal(0.0, 1.0, size=out.shape) for out in (y if several else [y])]

    def loss():
        out, _ = run_forward(layer, {k: v.copy() for k, v in weights.items()}, inputs)
        outs = out if several else [out]
        return float(sum(np.sum(o * p) for o, p in zip(outs, probes, strict=True)))

    grad = [p.copy() for p in probes] if several else probes[0].copy()
    input_grads, weight_grads = layer.backward(weights, cache, grad)
    assert len(input_grads) == len(inputs), "backward must return one gradient per input"
    trainable = {s.name for s in layer.weight_specs(input_shapes) if s.trainable}
    assert set(weight_grads) == trainable, (
        f"weight gradients {sorted(weight_grads)} != trainable weights {sorted(trainable)}"
    )

    targets = [
        (f"input {i}", x, g)
        for i, (x, g) in enumerate(zip(inputs, input_grads, strict=False))
        if x.dtype.kind == "f"
    ]
    for i, (x, g) in enumerate(zip(inputs, input_grads, strict=False)):
        if x.dtype.kind != "f":
            assert g is None, f"input {i} is integer: its gradient must be None"
    targets += [(f"weight {k}", weights[k], weight_grads[k]) for k in sorted(weight_grads)]
    worst = 0.0
    for what, array, grad in targets:
        assert grad is not None, f"{what}: missing gradient"
        assert grad.shape == array.shape, f"{what}: gradient shape {grad.shape} != {array.shape}"
        flat = array.reshape(-1)
        picks = rng.choice(flat.size, size=min(samples, flat.size), replace=False)
        for j in picks:
            old = flat[j]
            flat[j] = old + eps
            up = loss()
            flat[j] = old - eps
            down = loss()
            flat[j] = old
            numeric = (up - down) / (2 * eps)
            analytic = grad.reshape(-1)[j]
            err = abs(numeric - analytic)
            assert err <= atol + rtol * max(abs(numeric), abs(analytic)), (
                f"{layer.TYPE} {example.params}: d/d{what}[{j}] numeric {numeric:.8g} "
                f"!= backward {analytic:.8g}"
            )
            worst = max(worst, err)
    return worst

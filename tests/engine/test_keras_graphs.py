"""Whole random graphs compute what Keras computes, forward and backward.

The random valid graphs of test_keras_reference are built in nodenet and in
Keras (torch backend), the same float32 weights copied into both; every output
must match Keras's forward, and every weight gradient of sum(outputs * R) must
match PyTorch autograd through the Keras model.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) is the reference")
torch = pytest.importorskip("torch", reason="the `ref` extra (torch) is the reference")

from nodenet.runner import build_model  # noqa: E402
from tests.support.keras_graphs import (  # noqa: E402
    linear_heads,
    random_graph,
    torch_backend_pooling_quirk,
    torch_strided_pointwise_quirk,
)

GRAPHS = 120
FORWARD_TOL = {"rtol": 1e-5, "atol": 1e-5}
GRAD_TOL = {"rtol": 1e-4, "atol": 1e-4}


def compare(seed: int) -> bool:
    """Compare one random graph; False when it holds a quirk of the reference (Keras's
    torch pooling, PyTorch's strided pointwise convolution) and was skipped."""
    project, draft = random_graph(seed)
    model = build_model(linear_heads(project), seed=seed)
    if torch_backend_pooling_quirk(model) or torch_strided_pointwise_quirk(model):
        return False
    rng = np.random.default_rng(seed)
    for node_id in model.order:  # perturb so zero biases and unit gammas are exercised
        for w in model.weights[node_id].values():
            w += rng.normal(0, 0.1, size=w.shape).astype(w.dtype)
    for node_id, klayer in draft.klayers.items():
        if klayer is not None and model.specs.get(node_id):
            klayer.set_weights([model.weights[node_id][s.name] for s in model.specs[node_id]])
    inputs = {i: rng.normal(size=(4, *model.shapes[i])).astype(np.float32) for i in model.input_ids}
    ours = model.forward(inputs, training=False, keep_cache=True)

    kin = [draft.tensors[i] for i in model.input_ids]
    kout = [draft.tensors[h.id] for h in model.heads]
    kmodel = keras.Model(kin, kout)
    tensors = [torch.tensor(inputs[i]) for i in model.input_ids]
    theirs = kmodel(tensors, training=False)
    theirs = theirs if isinstance(theirs, list | tuple) else [theirs]
    probes = {h.id: rng.normal(size=ours[h.id].shape).astype(np.float32) for h in model.heads}
    total = 0
    for head, t in zip(model.heads, theirs, strict=True):
        np.testing.assert_allclose(
            ours[head.id],
            t.detach().numpy(),
            **FORWARD_TOL,
            err_msg=f"seed {seed}: output {head.id}",
        )
        total = total + (t * torch.from_numpy(probes[head.id])).sum()
    if not total.requires_grad:  # a graph without trainable weights: nothing to compare
        return True
    total.backward()
    grads = model.backward(probes)
    for node_id, klayer in draft.klayers.items():
        if klayer is None:
            continue
        for spec, weight in zip(model.specs[node_id], klayer.weights, strict=True):
            if not spec.trainable:
                continue
            grad = weight.value.grad
            expected = np.zeros(spec.shape, np.float32) if grad is None else grad.numpy()
            np.testing.assert_allclose(
                grads[f"{node_id}/{spec.name}"],
                expected,
                **GRAD_TOL,
                err_msg=f"seed {seed}: {node_id}/{spec.name}",
            )
    return True


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(4))
def test_random_graphs_forward_and_gradients_match_keras_and_autograd(chunk):
    compared = [compare(seed) for seed in range(chunk, GRAPHS, 4)]
    assert sum(compared) >= 0.9 * len(compared), "too few graphs compared"

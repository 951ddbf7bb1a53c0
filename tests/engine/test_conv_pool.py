"""A convolution run as one step with its max pooling computes what the two blocks compute.

The per-block path is itself checked against Keras, PyTorch autograd and
finite differences (test_catalog_contract, test_keras_reference,
test_keras_graphs); here the fused path must give the same outputs and
gradients as that path, and its gradients must match finite differences.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nodenet.engine.model import Model
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model

HEAD = {"loss": "mean_squared_error", "metrics": []}

CASES = {
    # name: (input shape, conv type, conv params, pool params)
    "2d narrow relu": ((9, 8, 1), "Conv2D", {"filters": 3, "activation": "relu"}, {}),
    "2d wide relu, odd size": ((8, 9, 8), "Conv2D", {"filters": 4, "activation": "relu"}, {}),
    "2d wide linear, no bias": (
        (7, 7, 9),
        "Conv2D",
        {"filters": 2, "use_bias": False},
        {"pool_size": [3, 2]},
    ),
    "2d same, strided": (
        (9, 9, 2),
        "Conv2D",
        {"filters": 3, "strides": [2, 1], "padding": "same", "activation": "relu"},
        {},
    ),
    "2d dilated": (
        (10, 10, 8),
        "Conv2D",
        {"filters": 3, "dilation_rate": [2, 2], "activation": "relu"},
        {"pool_size": [2, 3]},
    ),
    "1d narrow relu": (
        (17, 2),
        "Conv1D",
        {"filters": 4, "kernel_size": 5, "activation": "relu"},
        {},
    ),
    "1d wide causal": (
        (12, 30),
        "Conv1D",
        {"filters": 3, "padding": "causal", "dilation_rate": 2, "activation": "relu"},
        {"pool_size": 3},
    ),
}


def project(case: str, after_input: bool) -> Project:
    """Input [-> Dense-free spacer] -> Conv -> MaxPooling -> Flatten -> Dense -> Output."""
    shape, conv, params, pool = CASES[case]
    pool_type = "MaxPooling2D" if conv == "Conv2D" else "MaxPooling1D"
    chain = [Node("x", "Input", {"shape": list(shape)})]
    if not after_input:  # a layer in front, so the convolution's input gradient is needed
        chain.append(Node("front", "Activation", {"activation": "tanh"}))
    chain += [
        Node("conv", conv, params),
        Node("pool", pool_type, pool),
        Node("flat", "Flatten", {}),
        Node("dense", "Dense", {"units": 3}),
        Node("y", "Output", HEAD),
    ]
    ids = [n.id for n in chain]
    return Project(case, chain, [Edge(a, b) for a, b in itertools.pairwise(ids)])


def outputs_and_grads(model: Model, x, probe, training=True):
    out = model.forward({"x": x}, training=training, keep_cache=True)["y"]
    return out, model.backward({"y": probe})


@pytest.mark.parametrize("after_input", [True, False], ids=["fed by data", "fed by a layer"])
@pytest.mark.parametrize("case", CASES)
def test_fused_pair_matches_the_two_blocks(case, after_input):
    fused = build_model(project(case, after_input), dtype=np.float64, seed=3)
    plain = build_model(project(case, after_input), dtype=np.float64, seed=3, fuse=False)
    assert fused.pool_after == {"conv": "pool"} and plain.pool_after == {}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, *CASES[case][0]))
    probe = rng.normal(size=(5, 3))
    for training in (True, False):  # inference mode finds the maxima in backward
        out_f, g_f = outputs_and_grads(fused, x, probe, training)
        out_p, g_p = outputs_and_grads(plain, x, probe, training)
        np.testing.assert_allclose(out_f, out_p, rtol=1e-12, atol=1e-12)
        assert g_f.keys() == g_p.keys()
        for key in g_p:
            np.testing.assert_allclose(g_f[key], g_p[key], rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("case", ["2d wide relu, odd size", "1d narrow relu", "2d same, strided"])
def test_fused_gradients_match_finite_differences(case):
    model = build_model(project(case, after_input=False), dtype=np.float64, seed=5)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, *CASES[case][0]))
    probe = rng.normal(size=(3, 3))
    _, grads = outputs_and_grads(model, x, probe)
    for name in ("kernel", "bias"):
        weight = model.weights["conv"].get(name)
        if weight is None:
            continue
        for index in list(np.ndindex(weight.shape))[:: max(1, weight.size // 10)]:
            saved = weight[index]
            weight[index] = saved + 1e-6
            up = float(np.sum(model.forward({"x": x})["y"] * probe))
            weight[index] = saved - 1e-6
            down = float(np.sum(model.forward({"x": x})["y"] * probe))
            weight[index] = saved
            numeric = (up - down) / 2e-6
            assert grads[f"conv/{name}"][index] == pytest.approx(numeric, rel=1e-5, abs=1e-7)


def test_pairs_that_cannot_fuse_run_block_by_block():
    shared = project("2d narrow relu", after_input=True)
    shared.nodes += [Node("side", "Flatten", {}), Node("side_y", "Output", HEAD)]
    shared.edges += [Edge("conv", "side"), Edge("side", "side_y")]  # conv's output read twice
    overlapping = project("2d narrow relu", after_input=True)
    overlapping.node("pool").params = {"pool_size": [2, 2], "strides": [1, 1]}
    padded = project("2d narrow relu", after_input=True)
    padded.node("pool").params = {"padding": "same"}  # 7 x 6: the last row is padded
    tanh = project("2d narrow relu", after_input=True)
    tanh.node("conv").params = {"filters": 3, "activation": "tanh"}
    for case in (overlapping, padded, tanh):
        assert build_model(case).pool_after == {}
    assert build_model(shared).pool_after == {}

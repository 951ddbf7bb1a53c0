"""A BatchNormalization run as one step with the relu Activation it feeds computes what the
two blocks compute, bit for bit: outputs, moving statistics, weight and input gradients.

The per-block path is itself checked against Keras and finite differences
(test_catalog_contract, test_keras_reference); here the fused path must give that
path's numbers, in float32 (what training runs) and float64.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model

HEAD = {"loss": "mean_squared_error", "metrics": []}

CASES = {
    # name: (input shape, BatchNormalization params, a convolution in front)
    "after a convolution": ((9, 8, 3), {}, True),
    "channels last, no affine": ((6, 5, 4), {"center": False, "scale": False}, True),
    "after a Dense": ((7,), {"momentum": 0.5}, False),
    "axis 1": ((4, 6), {"axis": 1, "epsilon": 0.01}, False),
}


def project(case: str) -> Project:
    """Input -> Activation(tanh) [-> Conv2D] -> BatchNormalization -> relu -> Flatten ->
    Dense -> Output; the tanh in front makes the input gradient needed."""
    shape, params, conv = CASES[case]
    chain = [
        Node("x", "Input", {"shape": list(shape)}),
        Node("front", "Activation", {"activation": "tanh"}),
    ]
    if conv:
        chain.append(Node("conv", "Conv2D", {"filters": 6, "kernel_size": 3}))
    chain += [
        Node("bn", "BatchNormalization", params),
        Node("relu", "Activation", {"activation": "relu"}),
        Node("flat", "Flatten", {}),
        Node("dense", "Dense", {"units": 3}),
        Node("y", "Output", HEAD),
    ]
    ids = [n.id for n in chain]
    return Project(case, chain, [Edge(a, b) for a, b in itertools.pairwise(ids)])


def run(model, x, probe, training):
    out = model.forward({"x": x}, training=training, keep_cache=True)["y"]
    grads = model.backward({"y": probe})
    return out, {k: v.copy() for k, v in grads.items()}


def assert_same_runs(fused, plain, x, probe):
    """Training, inference, training again: the same outputs, weight gradients and moving
    statistics (of the block ``bn``), bit for bit."""
    for training in (True, False, True):
        out_f, g_f = run(fused, x, probe, training)
        out_p, g_p = run(plain, x, probe, training)
        np.testing.assert_array_equal(out_f, out_p)
        assert g_f.keys() == g_p.keys()
        for key in g_p:
            np.testing.assert_array_equal(g_f[key], g_p[key], err_msg=key)
        for name in ("moving_mean", "moving_variance"):
            np.testing.assert_array_equal(fused.weights["bn"][name], plain.weights["bn"][name])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fused_pair_is_the_two_blocks_bit_for_bit(case, dtype):
    fused = build_model(project(case), dtype=dtype, seed=3)
    plain = build_model(project(case), dtype=dtype, seed=3, fuse=False)
    assert fused.relu_after == {"bn": "relu"} and plain.relu_after == {}
    rng = np.random.default_rng(0)
    # 40 samples of a 9x8 map: the channels-last path's parts, several of them
    x = rng.normal(size=(40, *CASES[case][0])).astype(dtype)
    probe = rng.normal(size=(40, 3)).astype(dtype)
    assert_same_runs(fused, plain, x, probe)


def test_pairs_that_cannot_fuse_run_block_by_block():
    shared = project("after a Dense")  # the normalized values are read twice
    shared.nodes += [Node("side", "Dense", {"units": 2}), Node("side_y", "Output", HEAD)]
    shared.edges += [Edge("bn", "side"), Edge("side", "side_y")]
    tanh = project("after a Dense")
    tanh.node("relu").params = {"activation": "tanh"}
    frozen = project("after a Dense")  # runs in inference mode, as Keras's does
    frozen.node("bn").trainable = False
    for case in (shared, tanh, frozen):
        assert build_model(case).relu_after == {}


def test_a_relu_read_twice_still_fuses_and_gets_both_gradients():
    """The relu's output feeds two heads: its gradient is their sum, as block by block."""
    both = project("after a convolution")
    both.nodes += [Node("side", "GlobalAveragePooling2D", {}), Node("side_y", "Output", HEAD)]
    both.edges += [Edge("relu", "side"), Edge("side", "side_y")]
    fused = build_model(both, dtype=np.float64, seed=1)
    plain = build_model(both, dtype=np.float64, seed=1, fuse=False)
    assert fused.relu_after == {"bn": "relu"}
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 9, 8, 3))
    probes = {"y": rng.normal(size=(6, 3)), "side_y": rng.normal(size=(6, 6))}
    for model in (fused, plain):
        model.forward({"x": x}, training=True)
    g_f, g_p = fused.backward(probes), plain.backward(probes)
    for key in g_p:
        np.testing.assert_array_equal(g_f[key], g_p[key], err_msg=key)

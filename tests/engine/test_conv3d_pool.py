"""Conv3D run as one step with its MaxPooling3D computes what the two blocks compute.

The 1D and 2D pairs are checked in test_conv_pool.py; the fused path is the
same code for every rank, and here the 3D pairs (narrow and wide windows,
padded and strided convolutions) must give the block-by-block outputs and
gradients.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model

CASES = {
    # name: (input shape, conv params, pool params)
    "narrow relu": ((4, 5, 4, 1), {"filters": 3, "kernel_size": 2, "activation": "relu"}, {}),
    "wide linear, no bias": (
        (5, 5, 6, 8),
        {"filters": 2, "kernel_size": 2, "use_bias": False},
        {"pool_size": [2, 1, 2]},
    ),
    "same, strided": (
        (6, 5, 5, 3),
        {
            "filters": 2,
            "kernel_size": 3,
            "strides": [2, 1, 1],
            "padding": "same",
            "activation": "relu",
        },
        {},
    ),
}


def project(case: str) -> Project:
    """Input -> tanh -> Conv3D -> MaxPooling3D -> Flatten -> Dense -> Output."""
    shape, conv, pool = CASES[case]
    chain = [
        Node("x", "Input", {"shape": list(shape)}),
        Node("front", "Activation", {"activation": "tanh"}),  # the conv's input gradient is read
        Node("conv", "Conv3D", conv),
        Node("pool", "MaxPooling3D", pool),
        Node("flat", "Flatten", {}),
        Node("dense", "Dense", {"units": 3}),
        Node("y", "Output", {"loss": "mean_squared_error", "metrics": []}),
    ]
    ids = [n.id for n in chain]
    return Project(case, chain, [Edge(a, b) for a, b in itertools.pairwise(ids)])


@pytest.mark.parametrize("case", CASES)
def test_fused_3d_pair_matches_the_two_blocks(case):
    fused = build_model(project(case), dtype=np.float64, seed=3)
    plain = build_model(project(case), dtype=np.float64, seed=3, fuse=False)
    assert fused.pool_after == {"conv": "pool"} and plain.pool_after == {}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, *CASES[case][0]))
    probe = rng.normal(size=(3, 3))
    for training in (True, False):  # inference mode finds the maxima in backward
        results = []
        for model in (fused, plain):
            out = model.forward({"x": x}, training=training, keep_cache=True)["y"]
            results.append((out, model.backward({"y": probe})))
        (out_f, g_f), (out_p, g_p) = results
        np.testing.assert_allclose(out_f, out_p, rtol=1e-12, atol=1e-12)
        assert g_f.keys() == g_p.keys()
        for key in g_p:
            np.testing.assert_allclose(g_f[key], g_p[key], rtol=1e-10, atol=1e-12, err_msg=key)

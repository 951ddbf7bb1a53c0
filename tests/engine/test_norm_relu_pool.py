"""A BatchNormalization run as one step with its relu Activation and the max pooling that
relu feeds computes what the three blocks compute, bit for bit: outputs, moving
statistics, weight and input gradients; with the kernels (the pooled output taken
straight from the normalized values) and without them (the blocks one after the other).

The per-block path is itself checked against Keras and finite differences
(test_catalog_contract, test_keras_reference).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nodenet.engine import kernels
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model
from tests.engine.test_norm_relu import HEAD, assert_same_runs

KERNEL_PATHS = ["kernels", "numpy"]

CASES = {
    # name: (input shape, BatchNormalization params, MaxPooling2D params)
    "2x2 windows, a row left over": ((9, 8, 3), {}, {}),
    "3x2 windows, rows and columns left over": ((10, 9, 3), {}, {"pool_size": [3, 2]}),
    "no affine": ((8, 8, 4), {"center": False, "scale": False}, {}),
    "only gamma, strides given": ((6, 7, 5), {"center": False}, {"strides": [2, 2]}),
    "one-pixel windows": ((4, 5, 3), {"momentum": 0.5}, {"pool_size": [1, 1]}),
    "normalized over the rows (axis 1)": ((8, 6, 3), {"axis": 1}, {}),
}


def project(case: str) -> Project:
    """Input -> Activation(tanh) -> Conv2D -> BatchNormalization -> relu -> MaxPooling2D ->
    Flatten -> Dense -> Output."""
    shape, norm, pool = CASES[case]
    chain = [
        Node("x", "Input", {"shape": list(shape)}),
        Node("front", "Activation", {"activation": "tanh"}),
        Node("conv", "Conv2D", {"filters": 6, "kernel_size": 1}),
        Node("bn", "BatchNormalization", norm),
        Node("relu", "Activation", {"activation": "relu"}),
        Node("pool", "MaxPooling2D", pool),
        Node("flat", "Flatten", {}),
        Node("dense", "Dense", {"units": 3}),
        Node("y", "Output", HEAD),
    ]
    ids = [n.id for n in chain]
    return Project(case, chain, [Edge(a, b) for a, b in itertools.pairwise(ids)])


def input_grad(model, x, probe):
    """The BatchNormalization's input gradient, as the convolution before it receives it."""
    model.forward({"x": x}, training=True)
    conv = model.layers["conv"]
    seen = {}
    backward = conv.backward

    def keep(weights, cache, grad, **kw):
        seen["g"] = grad.copy()
        return backward(weights, cache, grad, **kw)

    conv.backward = keep
    try:
        model.backward({"y": probe})
    finally:
        conv.backward = backward
    return seen["g"]


def assert_same(fused, plain, x, probe):
    assert_same_runs(fused, plain, x, probe)
    np.testing.assert_array_equal(input_grad(fused, x, probe), input_grad(plain, x, probe))


@pytest.fixture(params=KERNEL_PATHS)
def path(request, monkeypatch):
    if request.param == "kernels" and kernels.get() is None:
        pytest.skip("numba is not installed (the fast extra): only the numpy path runs")
    monkeypatch.setenv("NODENET_KERNELS", "" if request.param == "kernels" else "numpy")
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fused_triple_is_the_three_blocks_bit_for_bit(case, dtype, path):
    fused = build_model(project(case), dtype=dtype, seed=3)
    plain = build_model(project(case), dtype=dtype, seed=3, fuse=False)
    assert fused.pool_after_relu == {"bn": "pool"} and plain.pool_after_relu == {}
    rng = np.random.default_rng(0)
    # 40 samples: the normalization's parts, several of them
    x = rng.normal(size=(40, *CASES[case][0])).astype(dtype)
    probe = rng.normal(size=(40, 3)).astype(dtype)
    assert_same(fused, plain, x, probe)


def test_ties_send_the_gradient_to_the_first_maximum_only(path):
    """Inputs of a few values give windows with equal maxima, and windows whose values
    are all cut by the relu: the gradient goes where the blocks send it."""
    case = "2x2 windows, a row left over"
    fused = build_model(project(case), seed=1)
    plain = build_model(project(case), seed=1, fuse=False)
    rng = np.random.default_rng(4)
    x = rng.integers(-1, 2, size=(24, *CASES[case][0])).astype(np.float32)
    probe = rng.normal(size=(24, 3)).astype(np.float32)
    assert_same(fused, plain, x, probe)


def test_triples_that_cannot_fuse_run_as_before():
    case = "2x2 windows, a row left over"
    same = project(case)  # "same" padding adds a row: not windows tiling the input
    same.node("pool").params = {"padding": "same"}
    overlapping = project(case)
    overlapping.node("pool").params = {"pool_size": [3, 3], "strides": [2, 2]}
    average = project(case)
    average.node("pool").type = "AveragePooling2D"
    read_twice = project(case)  # the relu's output feeds a second block
    read_twice.nodes += [Node("side", "GlobalAveragePooling2D", {}), Node("side_y", "Output", HEAD)]
    read_twice.edges += [Edge("relu", "side"), Edge("side", "side_y")]
    for triple in (same, overlapping, average, read_twice):
        model = build_model(triple)
        assert model.relu_after == {"bn": "relu"} and model.pool_after_relu == {}

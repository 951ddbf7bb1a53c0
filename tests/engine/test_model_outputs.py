"""The engine routes each output of a multi-output block and sums gradients per output.

Uses the test-only block ``TestSplit`` (tests/support/split_block.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model
from tests.support.split_block import registered

MSE = {"loss": "mean_squared_error"}


@pytest.fixture(autouse=True)
def split_block():
    with registered():
        yield


def fanned() -> Project:
    """x (6,) -> s (3 outputs): output 0 -> d0 -> y0; output 1 -> d1 and d2 -> add -> y1;
    output 2 unused."""
    nodes = [
        Node("x", "Input", {"shape": [6]}),
        Node("s", "TestSplit", {"pieces": 3}),
        Node("d0", "Dense", {"units": 2}),
        Node("d1", "Dense", {"units": 1}),
        Node("d2", "Dense", {"units": 1}),
        Node("add", "Add"),
        Node("y0", "Output", MSE),
        Node("y1", "Output", MSE),
    ]
    edges = [
        Edge("x", "s"),
        Edge("s", "d0", 0, 0),
        Edge("s", "d1", 0, 1),
        Edge("s", "d2", 0, 1),
        Edge("d1", "add", 0),
        Edge("d2", "add", 1),
        Edge("d0", "y0"),
        Edge("add", "y1"),
    ]
    return Project("fanned", nodes, edges)


def loss(model, x, r0, r1) -> float:
    out = model.forward({"x": x}, training=True)
    return float((out["y0"] * r0).sum() + (out["y1"] * r1).sum())


def test_each_consumer_gets_its_output():
    model = build_model(fanned(), dtype=np.float64, seed=3)
    rng = np.random.default_rng(0)
    model.weights["s"]["scale"][:] = rng.normal(size=6)
    x = rng.normal(size=(5, 6))
    out = model.forward({"x": x})
    scaled = x * model.weights["s"]["scale"]
    w = model.weights
    np.testing.assert_allclose(out["y0"], scaled[:, 0:2] @ w["d0"]["kernel"] + w["d0"]["bias"])
    piece = scaled[:, 2:4]
    expected = piece @ w["d1"]["kernel"] + w["d1"]["bias"] + piece @ w["d2"]["kernel"]
    np.testing.assert_allclose(out["y1"], expected + w["d2"]["bias"])
    assert model.feeds["d1"] == [("s", 1)] and model.sources["d1"] == ["s"]
    assert model.input_shapes("d0") == [(2,)]


def test_gradients_are_summed_per_output_and_an_unused_output_gets_zero():
    model = build_model(fanned(), dtype=np.float64, seed=3)
    rng = np.random.default_rng(1)
    model.weights["s"]["scale"][:] = rng.normal(size=6)
    x, r0, r1 = rng.normal(size=(4, 6)), rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    loss(model, x, r0, r1)
    grads = model.backward({"y0": r0, "y1": r1})
    scale = model.weights["s"]["scale"]
    numeric = np.zeros(6)
    for j in range(6):
        keep = scale[j]
        scale[j] = keep + 1e-6
        up = loss(model, x, r0, r1)
        scale[j] = keep - 1e-6
        down = loss(model, x, r0, r1)
        scale[j] = keep
        numeric[j] = (up - down) / 2e-6
    np.testing.assert_allclose(grads["s/scale"], numeric, rtol=1e-6, atol=1e-8)
    assert np.all(grads["s/scale"][4:] == 0)  # output 2 feeds nothing
    assert np.any(grads["s/scale"][2:4] != 0)

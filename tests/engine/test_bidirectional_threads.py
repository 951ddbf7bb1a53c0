"""A Bidirectional block runs its two directions on two cores at once: the outputs, weight
gradients and input gradient are those of running them one after the other, bit for bit,
and dropout masks (drawn from one generator) stay the same."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nodenet.engine.layers import windows
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model

HEAD = {"loss": "mean_squared_error", "metrics": []}
CASES = {
    "lstm concat": ("LSTM", {"units": 5}, "concat"),
    "gru sequences sum": ("GRU", {"units": 4, "return_sequences": True}, "sum"),
    "simple_rnn mul": ("SimpleRNN", {"units": 3}, "mul"),
    "lstm dropout ave": ("LSTM", {"units": 4, "dropout": 0.3, "recurrent_dropout": 0.2}, "ave"),
}


def project(case: str) -> Project:
    kind, params, mode = CASES[case]
    nodes = [
        Node("x", "Input", {"shape": [7, 6]}),
        Node("front", "Dense", {"units": 6, "activation": "tanh"}),  # dx is needed
        Node(
            "bi", "Bidirectional", {"layer": {"type": kind, "params": params}, "merge_mode": mode}
        ),
        Node("flat", "Flatten", {}),
        Node("y", "Output", HEAD),
    ]
    ids = [n.id for n in nodes]
    return Project(case, nodes, [Edge(a, b) for a, b in itertools.pairwise(ids)])


def trained_step(case: str, threads: int, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", str(threads))
    model = build_model(project(case), dtype=np.float64, seed=4)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 7, 6))
    out = model.forward({"x": x}, training=True, rng=np.random.default_rng(5))["y"]
    grads = model.backward({"y": rng.normal(size=out.shape)})
    return out, {k: v.copy() for k, v in grads.items()}


@pytest.mark.parametrize("case", CASES)
def test_directions_on_two_threads_are_the_directions_in_turn(case, monkeypatch):
    monkeypatch.setattr(windows, "_PARALLEL_MIN", 0)  # two threads however small the batch
    out_1, grads_1 = trained_step(case, 1, monkeypatch)
    out_2, grads_2 = trained_step(case, 2, monkeypatch)
    np.testing.assert_array_equal(out_1, out_2)
    assert grads_1.keys() == grads_2.keys()
    for key in grads_1:
        np.testing.assert_array_equal(grads_1[key], grads_2[key], err_msg=key)

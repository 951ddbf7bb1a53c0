"""An AveragePooling3D whose window is larger than its input exports exactly to PyTorch.

torch's ``avg_pool3d`` refuses an input smaller than the window even with
padding (its 1D and 2D pools accept it), so the exporter writes such a pool
as sums over zero padding divided by the count of real elements; nodenet,
Keras's TensorFlow and JAX backends average the real elements the same way.
The catalog-wide export test covers the usual sizes.
"""

from __future__ import annotations

import itertools

import pytest

from nodenet.graph.project import Edge, Node, Project
from tests.support.generated import Case, check_torch

pytest.importorskip("torch")


@pytest.mark.parametrize(
    "pool",
    [
        {"pool_size": 3, "strides": 1, "padding": "same"},
        {"pool_size": [3, 1, 3], "strides": [1, 2, 1], "padding": "same"},
    ],
)
def test_average_pooling_3d_over_a_smaller_input(pool, tmp_path):
    chain = [
        Node("x", "Input", {"shape": [2, 3, 2, 2]}),
        Node("conv", "Conv3D", {"filters": 2, "kernel_size": 1}),
        Node("pool", "AveragePooling3D", pool),
        Node("flat", "Flatten", {}),
        Node("y", "Output", {"loss": "mean_squared_error", "metrics": []}),
    ]
    ids = [n.id for n in chain]
    project = Project("small", chain, [Edge(a, b) for a, b in itertools.pairwise(ids)])
    check_torch(Case(project, seed=0), tmp_path)

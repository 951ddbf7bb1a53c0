"""The exporter registry: every block has an exporter, and its torch state comes back exactly.

For every example of every block: Keras-layout weights -> the submodule's torch
state -> the inverse mapping gives the same arrays (same names, shapes, dtypes,
values), and the state of the whole one-block graph loads into the generated
PyTorch module with no key missing or left over.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from nodenet.engine.catalog import block_class, block_types
from nodenet.export import export_pytorch
from nodenet.export._common import read_graph, split_weights
from nodenet.export.blocks import EXPORTERS, BlockExporter, exporter
from nodenet.export.pytorch import torch_state
from nodenet.graph.project import Project
from tests.support.generated import example_graph, import_source
from tests.support.gradcheck import concrete

CASES = [
    pytest.param(name, i, id=f"{name}-{i}")
    for name in block_types()
    for i in range(len(block_class(name).EXAMPLES))
]


def test_every_block_type_has_an_exporter_and_no_exporter_is_orphaned():
    assert set(block_types()) == set(EXPORTERS.names())
    for name in block_types():
        cls = block_class(name)
        export = exporter(cls(cls.EXAMPLES[0].params, "node"))
        assert isinstance(export, BlockExporter) and export.layer.TYPE == name


def test_exporters_patch_no_engine_class_and_the_engine_holds_no_torch_code():
    package = Path(__file__).parents[2] / "nodenet"
    for path in (package / "export").rglob("*.py"):
        assert "setattr(" not in path.read_text(), path
    torch_code = re.compile(r"import torch|from torch|\bnn\.[A-Z]\w*\(|\btorch\.\w+\(|\bF\.\w+\(")
    for path in (package / "engine").rglob("*.py"):
        found = torch_code.search(path.read_text())
        assert found is None, f"{path}: {found and found.group()}"


def _random_weights(layer, shapes, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    specs = layer.weight_specs([concrete(s) for s in shapes])
    return {s.name: rng.normal(size=s.shape).astype(np.float32) for s in specs}


@pytest.mark.parametrize("name,index", CASES)
def test_torch_state_comes_back_as_the_same_keras_weights(name, index):
    cls = block_class(name)
    example = cls.EXAMPLES[index]
    shapes = [] if cls.N_INPUTS == 0 else list(example.input_shapes)
    layer = cls(example.params, "node")
    export = exporter(layer)
    weights = _random_weights(layer, shapes, index)
    state = export.torch_state(weights, shapes)
    back = export.keras_weights(state, shapes)
    assert list(back) == list(weights), "the inverse names every weight, in Keras order"
    for key, array in weights.items():
        assert back[key].dtype == array.dtype and back[key].shape == array.shape, key
        np.testing.assert_array_equal(back[key], array, err_msg=key)
    if weights:  # the state holds every value once
        assert sum(a.size for a in state.values()) == sum(a.size for a in weights.values())


def test_inverse_is_not_the_identity_where_layouts_differ():
    """A Dense kernel is (in, out) in Keras and (out, in) in torch: the mapping must move it."""
    layer = block_class("Dense")({"units": 3}, "node")
    weights = _random_weights(layer, [(2,)], 0)
    state = exporter(layer).torch_state(weights, [(2,)])
    assert state["weight"].shape == (3, 2)
    swapped = {**state, "weight": state["weight"][::-1]}
    back = exporter(layer).keras_weights(swapped, [(2,)])
    assert not np.array_equal(back["kernel"], weights["kernel"])


def _graph_weights(project: Project, seed: int) -> dict[str, np.ndarray]:
    graph = read_graph(project)
    rng = np.random.default_rng(seed)
    return {
        f"{node}/{spec.name}": rng.normal(size=spec.shape).astype(np.float32)
        for node in graph.order
        for spec in graph.specs(node)
    }


@pytest.mark.parametrize("name,index", CASES)
def test_torch_state_loads_into_the_generated_module(name, index, tmp_path):
    torch = pytest.importorskip("torch", reason="the `ref` extra (torch) runs the export")
    if name in ("Input", "Output"):
        return  # they are the graph's ends, not a block between them
    project = example_graph(name, index)
    module = import_source(export_pytorch(project).source, tmp_path, "state_load")
    net = module.build_model()
    graph = read_graph(project)
    state = torch_state(graph, split_weights(graph, _graph_weights(project, index)))
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    net.load_state_dict(tensors, strict=True)  # no key missing or left over, shapes agree
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), state[key], err_msg=key)

"""Every block of the catalog maps to ONNX, and every example runs in onnxruntime as in nodenet.

For each block of ``block_types()`` an ONNX mapping is registered; for each of its EXAMPLES
a one-block graph (``example_graph``) with perturbed weights is exported, checked by
``onnx.checker`` (full check) and strict shape inference at the default opset and at the
lowest and highest supported ones, and run by onnxruntime on random batches of 1 and 7
samples: the outputs equal ``Model.predict``'s within 1e-4 of the outputs' magnitude. Every
activation a block can name is checked the same way. Adding a block needs no new test code.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the `onnx` extra runs the ONNX export")
ort = pytest.importorskip("onnxruntime", reason="the `onnx` extra runs the exported model")

from nodenet.engine.activations import NAMES as ACTIVATIONS  # noqa: E402
from nodenet.engine.catalog import block_class, block_types  # noqa: E402
from nodenet.engine.model import Model  # noqa: E402
from nodenet.errors import ExportError  # noqa: E402
from nodenet.export.onnx import export_onnx  # noqa: E402
from nodenet.export.onnx.builder import MAX_OPSET, MIN_OPSET  # noqa: E402
from nodenet.export.onnx.export import load_mappings  # noqa: E402
from nodenet.export.onnx.registry import ONNX_BLOCKS  # noqa: E402
from nodenet.graph.project import Edge, Node, Project  # noqa: E402
from tests.support.generated import example_graph, perturbed_model  # noqa: E402

BLOCKS = block_types()
COMPUTING = [b for b in BLOCKS if b not in ("Input", "Output")]  # these two: in every graph
EXAMPLES = [(name, i) for name in COMPUTING for i in range(len(block_class(name).EXAMPLES))]
# blocks standard ONNX operators cannot compute: the export refuses them, naming the block
REFUSED = {"TextVectorization": "strings -> tokens by Keras's rules"}
RTOL = 1e-4  # relative to the size of the outputs: |ours - nodenet| <= 1e-4 * max(1, |nodenet|)


def session(model_proto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def batch_of(model: Model, n: int, rng, int_high: int = 5) -> dict[str, np.ndarray]:
    """``n`` random samples for every Input: normal floats or indices; None sizes are 5."""
    arrays = {}
    for node_id in model.input_ids:
        shape = tuple(5 if d is None else d for d in model.shapes[node_id])
        if model.layers[node_id].config["dtype"] == "int32":
            arrays[node_id] = rng.integers(0, int_high, size=(n, *shape)).astype(np.int32)
        else:
            arrays[node_id] = rng.normal(size=(n, *shape)).astype(np.float32)
    return arrays


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Equal within 1e-4 relative: to each value, and to the output's scale near zero."""
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale, err_msg=what)


def check_runs_as_nodenet(
    project, model: Model, int_high: int = 5, seed: int = 0, opset: int | None = None
) -> None:
    """Export ``project`` with ``model``'s weights; onnxruntime predicts what it predicts."""
    exported = export_onnx(project, model.get_weights(), opset=opset)
    if opset is not None:
        assert exported.opset_import[0].version == opset
    onnx.checker.check_model(exported, full_check=True)
    onnx.shape_inference.infer_shapes(exported, check_type=True, strict_mode=True)
    assert [i.name for i in exported.graph.input] == model.input_ids
    assert [o.name for o in exported.graph.output] == [h.id for h in model.heads]
    run = session(exported)
    rng = np.random.default_rng(seed)
    for n in (1, 7):
        x = batch_of(model, n, rng, int_high)
        expected = model.predict(x)
        got = dict(zip([o.name for o in exported.graph.output], run.run(None, x), strict=True))
        for head in model.heads:
            assert got[head.id].shape == expected[head.id].shape, head.id
            assert_close(got[head.id], expected[head.id], f"{head.id}, batch {n}")


@pytest.mark.parametrize("name", BLOCKS)
def test_every_block_has_an_onnx_mapping(name):
    load_mappings()
    assert name in ONNX_BLOCKS, f"{name} has no ONNX mapping"


@pytest.mark.parametrize("opset", [None, MIN_OPSET, MAX_OPSET], ids=["default", "min", "max"])
@pytest.mark.parametrize(("name", "index"), EXAMPLES, ids=[f"{n}-{i}" for n, i in EXAMPLES])
def test_every_example_runs_in_onnxruntime_as_in_nodenet(name, index, opset):
    load_mappings()
    if name not in ONNX_BLOCKS:
        pytest.fail(f"{name} has no ONNX mapping")
    example = block_class(name).EXAMPLES[index]
    project = example_graph(name, index)
    if name in REFUSED:
        with pytest.raises(ExportError, match=f"block: {name}"):
            export_onnx(project)
        return
    model = perturbed_model(project, seed=index + 1)
    check_runs_as_nodenet(project, model, int_high=example.int_high, seed=index, opset=opset)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_runs_as_in_nodenet(activation):
    """Each activation a block can name, on values spread over its interesting range."""
    project = Project(
        f"activation_{activation}",
        [
            Node("x", "Input", {"shape": [3, 6]}),
            Node("act", "Activation", {"activation": activation}),
            Node("y", "Output", {"loss": "mean_squared_error", "metrics": []}),
        ],
        [Edge("x", "act", 0), Edge("act", "y", 0)],
    )
    model = perturbed_model(project, seed=0)
    exported = export_onnx(project)
    rng = np.random.default_rng(2)
    for n in (1, 7):
        x = {"x": (rng.normal(size=(n, 3, 6)) * 4).astype(np.float32)}
        (got,) = session(exported).run(None, x)
        assert_close(got, model.predict(x)["y"], f"{activation}, batch {n}")

"""Keras 3 (torch backend) as the independent reference for every block and for whole graphs.

(a) Every block of the catalog, every declared example: the Keras layer built from
    the block's config gives the same output shape and parameter counts, and with
    the same float32 weights the same inference output (relative float32 tolerance
    1e-5, absolute 1e-5 near zero) and the same gradients of ``sum(output * R)``
    for inputs and weights (torch autograd through the Keras layer, within 1e-4).
    New blocks are covered without new test code. Merges Keras refuses are refused
    too, in one sentence naming both shapes.
(b) A few hundred random graphs (seeded numpy), grown with Keras checking each step,
    so only graphs Keras accepts are kept: every node's shape and parameter count,
    and the total, must be what Keras says; a failure prints the smallest subgraph.
(c) The two-input, two-output functional graph of the product brief.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections import Counter

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from nodenet.engine.catalog import Context, block_class, block_types  # noqa: E402
from nodenet.errors import ShapeError  # noqa: E402
from nodenet.graph.project import Edge, Node, Project, analyze  # noqa: E402
from tests.support.gradcheck import concrete, make_inputs, make_weights  # noqa: E402
from tests.support.keras_graphs import (  # noqa: E402
    ELEMENTWISE,
    UNARY,
    call_keras,
    compare_with_keras,
    keras_counts,
    keras_inputs,
    random_graph,
    to_keras,
)

pytestmark = pytest.mark.ref

if keras.backend.backend() != "torch":  # keras was imported earlier with another backend
    pytest.skip("these tests need keras on the torch backend", allow_module_level=True)

FORWARD_TOL = {"rtol": 1e-5, "atol": 1e-5}
GRAD_TOL = {"rtol": 1e-4, "atol": 1e-4}


# -- (a) every block, every example ------------------------------------------------

CASES = [
    pytest.param(name, i, id=f"{name}-{i}")
    for name in block_types()
    for i in range(len(block_class(name).EXAMPLES))
]


def _build(name: str, index: int):
    cls = block_class(name)
    example = cls.EXAMPLES[index]
    if example.input_dtype == "string" and importlib.util.find_spec("tensorflow") is None:
        pytest.skip(
            "Keras's string layers (TextVectorization) need TensorFlow, which is not "
            "installed; tests/engine/test_text_vectorization.py holds hand-computed references"
        )
    return cls(example.params, "node"), example


@pytest.mark.parametrize("name,index", CASES)
def test_shape_and_parameter_counts_match_keras(name, index):
    layer, example = _build(name, index)
    if layer.N_INPUTS == 0:  # Input: keras.Input of the same shape and dtype
        tensor = keras.Input(shape=tuple(layer.config["shape"]), dtype=layer.config["dtype"])
        assert tuple(tensor.shape[1:]) == layer.infer_shape([])
        assert layer.count_params([]) == (0, 0)
        return
    shapes = list(example.input_shapes)
    klayer = to_keras(name, layer.config)
    out = call_keras(klayer, keras_inputs(shapes, example.input_dtype))
    outs = list(out) if isinstance(out, (list, tuple)) else [out]  # several outputs
    assert layer.infer_shapes(shapes) == [tuple(o.shape[1:]) for o in outs]
    assert layer.n_outputs() == len(outs)
    assert layer.infer_shape(shapes) == tuple(outs[0].shape[1:])
    assert layer.count_params(shapes) == keras_counts(klayer)
    specs = layer.weight_specs(shapes)
    assert [s.shape for s in specs] == [tuple(w.shape) for w in klayer.weights]
    for spec, weight in zip(specs, klayer.weights, strict=True):
        unnamed = re.fullmatch(r"variable(_\d+)?", weight.name)  # add_weight without a name
        assert unnamed or spec.name.endswith(weight.name), f"{spec.name!r} is {weight.path}"
        assert spec.trainable == weight.trainable, spec.name


# an Input only passes its data on: its shape and dtype are checked above
COMPUTING_CASES = [case for case in CASES if block_class(case.values[0]).N_INPUTS != 0]


@pytest.mark.parametrize("name,index", COMPUTING_CASES)
def test_forward_and_gradients_match_keras(name, index):
    layer, example = _build(name, index)
    if example.input_dtype == "string":
        pytest.skip(
            "strings are no torch tensors and have no gradient: "
            "tests/export/test_text_vectorization_export.py compares outputs with Keras"
        )
    rng = np.random.default_rng(index)
    shapes = [concrete(s) for s in example.input_shapes]
    inputs = make_inputs(layer, example, rng, dtype=np.float32)
    weights = make_weights(layer, shapes, rng, dtype=np.float32)
    specs = layer.weight_specs(shapes)
    klayer = to_keras(name, layer.config)
    call_keras(klayer, keras_inputs(example.input_shapes, example.input_dtype))
    klayer.set_weights([weights[s.name] for s in specs])

    out, cache = layer.forward(weights, inputs, Context(training=False))
    tensors = [torch.tensor(x, requires_grad=x.dtype.kind == "f") for x in inputs]
    kout = call_keras(klayer, tensors, training=False)
    several = isinstance(out, list)  # a block with several outputs: each against Keras's
    outs, kouts = (out, list(kout)) if several else ([out], [kout])
    assert len(outs) == len(kouts)
    for i, (ours, theirs) in enumerate(zip(outs, kouts, strict=True)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), **FORWARD_TOL, err_msg=str(i))

    probes = [rng.normal(size=o.shape).astype(np.float32) for o in outs]
    sum((k * torch.from_numpy(p)).sum() for k, p in zip(kouts, probes, strict=True)).backward()
    grad = [p.copy() for p in probes] if several else probes[0].copy()
    input_grads, weight_grads = layer.backward(weights, cache, grad)
    for i, (ours, tensor) in enumerate(zip(input_grads, tensors, strict=True)):
        if not tensor.requires_grad:
            assert ours is None, f"input {i} holds indices: no gradient"
            continue
        theirs = _grad_of(tensor)
        np.testing.assert_allclose(ours, theirs, **GRAD_TOL, err_msg=f"input {i}")
    for spec, weight in zip(specs, klayer.weights, strict=True):
        if spec.trainable:
            theirs = _grad_of(weight.value)
            np.testing.assert_allclose(
                weight_grads[spec.name], theirs, **GRAD_TOL, err_msg=spec.name
            )


def _grad_of(tensor) -> np.ndarray:
    """The gradient autograd left on a tensor (zeros if it did not reach it)."""
    if tensor.grad is None:
        return np.zeros(tuple(tensor.shape), dtype=np.float32)
    return tensor.grad.detach().numpy()


REFUSED_MERGES = [
    (
        "Concatenate",
        {},
        [(128,), (28, 64)],
        "cannot concatenate (None, 128) and (None, 28, 64) on axis -1",
    ),
    (
        "Concatenate",
        {"axis": 1},
        [(2, 4), (3, 5)],
        "cannot concatenate (None, 2, 4) and (None, 3, 5) on axis 1",
    ),
    ("Add", {}, [(128,), (64,)], "cannot add (None, 128) and (None, 64)"),
    ("Subtract", {}, [(3, 4), (3, 5)], "cannot subtract (None, 3, 4) and (None, 3, 5)"),
    ("Maximum", {}, [(4,), (4,), (5,)], "cannot take the maximum of (None, 4) and (None, 5)"),
    ("Average", {}, [(7, 7, 3), (2,)], "cannot average (None, 7, 7, 3) and (None, 2)"),
    ("Multiply", {}, [(3, 1), (1, 4), (2, 4)], "cannot multiply (None, 3, 1) and (None, 2, 4)"),
    ("Dot", {"axes": 1}, [(3,), (4,)], "cannot take the dot product of (None, 3) and (None, 4)"),
]


@pytest.mark.parametrize("type_name,params,shapes,message", REFUSED_MERGES)
def test_merges_keras_refuses_are_refused_in_one_sentence(type_name, params, shapes, message):
    with pytest.raises(ValueError):
        call_keras(to_keras(type_name, block_class(type_name)(params).config), keras_inputs(shapes))
    with pytest.raises(ShapeError) as info:
        block_class(type_name)(params).infer_shape(shapes)
    text = str(info.value)
    assert text.startswith(message)
    assert "\n" not in text and text.count(". ") == 0


# -- (b) random graphs (grown by tests.support.keras_graphs) ------------------------------

GRAPHS = 300


@pytest.mark.slow
def test_random_graphs_match_keras():
    failures, refused, used = [], [], Counter()
    for seed in range(GRAPHS):
        project, draft = random_graph(seed)
        used.update(n.type for n in project.nodes)
        refused += [f"seed {seed}: {r}" for r in draft.refused]
        failure = compare_with_keras(project, draft)
        if failure is not None:
            failures.append(f"seed {seed}: {failure}")
    assert not failures, f"{len(failures)} graph(s) disagree; the first:\n{failures[0]}"
    assert not refused, "nodenet accepts what Keras refuses:\n" + "\n".join(refused[:10])
    # the generator really draws every block it knows, and DAGs with merges
    drawable = {*UNARY, "Concatenate", "Dot", *ELEMENTWISE} & set(block_types())
    assert drawable <= set(used), f"never drawn: {sorted(drawable - set(used))}"
    assert sum(used[t] for t in ("Concatenate", "Dot", *ELEMENTWISE)) >= GRAPHS // 2


# -- (c) the two-input, two-output graph of the brief --------------------------------

TWO_HEADS = [
    ("a", "Input", {"shape": [32]}, []),
    ("dense_a", "Dense", {"units": 64, "activation": "relu"}, ["a"]),
    ("b", "Input", {"shape": [10, 8]}, []),
    ("lstm_b", "LSTM", {"units": 16}, ["b"]),
    ("joined", "Concatenate", {}, ["dense_a", "lstm_b"]),
    ("dense_10", "Dense", {"units": 10, "activation": "softmax"}, ["joined"]),
    ("dense_1", "Dense", {"units": 1}, ["joined"]),
    ("out_1", "Output", {}, ["dense_10"]),
    ("out_2", "Output", {"loss": "mean_squared_error", "metrics": ["mae"]}, ["dense_1"]),
]


def test_two_input_two_output_graph_matches_keras():
    project = Project("two-heads")
    tensors, klayers = {}, {}
    for node_id, type_name, params, sources in TWO_HEADS:
        project.nodes.append(Node(node_id, type_name, params))
        project.edges += [Edge(s, node_id, port) for port, s in enumerate(sources)]
        if type_name == "Input":
            tensors[node_id] = keras.Input(shape=tuple(params["shape"]))
        elif type_name == "Output":
            tensors[node_id] = tensors[sources[0]]
        else:
            config = block_class(type_name)(params).config
            klayers[node_id] = to_keras(type_name, config)
            tensors[node_id] = call_keras(klayers[node_id], [tensors[s] for s in sources])
    analysis = analyze(project)
    assert analysis.ok, analysis.problems
    for node_id, _, _, _ in TWO_HEADS:
        assert analysis.shapes[node_id] == tuple(tensors[node_id].shape[1:]), node_id
        expected = keras_counts(klayers[node_id]) if node_id in klayers else (0, 0)
        assert analysis.params[node_id] == expected, node_id
    model = keras.Model([tensors["a"], tensors["b"]], [tensors["out_1"], tensors["out_2"]])
    total = sum(sum(c) for c in analysis.params.values())
    assert total == model.count_params() == 4603  # 2112 + 1600 + 810 + 81, by hand
    assert analysis.shapes["joined"] == (80,)

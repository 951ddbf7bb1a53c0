"""The ONNX mappings of the convolution, recurrent, attention and wrapper blocks, beyond
the catalog's examples: onnxruntime on the exported file against nodenet's prediction
(1e-4 relative) for batches of 1 and 7, on settings the examples leave out (strides and
dilation, groups, causal padding, go_backwards with states, stacked Bidirectional layers,
sizes known only at run time, activations ONNX's recurrent operators do not offer,
opsets other than the default)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from nodenet.engine.catalog import block_class
from nodenet.errors import ExportError
from nodenet.graph.project import Edge, Node, Project

onnx = pytest.importorskip("onnx", reason="the ONNX export needs the onnx package")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the exported file")

from nodenet.export.onnx.export import export_onnx, initial_model  # noqa: E402


def chain(specs: list[tuple[str, dict]], shapes: list[tuple]) -> Project:
    """Inputs of ``shapes`` -> the blocks of ``specs`` one after the other (the first reads
    every input) -> an Output per output of the last block."""
    nodes, edges = [], []
    for port, shape in enumerate(shapes):
        nodes.append(Node(f"input_{port}", "Input", {"shape": list(shape)}))
        edges.append(Edge(f"input_{port}", "block_0", port))
    for i, (type_name, params) in enumerate(specs):
        nodes.append(Node(f"block_{i}", type_name, copy.deepcopy(params)))
        if i:
            edges.append(Edge(f"block_{i - 1}", f"block_{i}", 0))
    last = f"block_{len(specs) - 1}"
    type_name, params = specs[-1]
    for k in range(block_class(type_name)(params).n_outputs()):
        nodes.append(Node(f"out_{k}", "Output", {"loss": "mean_squared_error", "metrics": []}))
        edges.append(Edge(last, f"out_{k}", 0, k))
    return Project("onnx_check", nodes, edges)


def check(
    project: Project, sizes: dict[int, int] | None = None, seed: int = 0, opset: int = 17
) -> None:
    """Export ``project`` with perturbed weights; onnxruntime gives nodenet's outputs for
    batches of 1 and 7 (an Input axis of size None gets ``sizes[axis]``, else 5)."""
    model = initial_model(project)
    rng = np.random.default_rng(seed)
    weights = {
        k: (w + rng.normal(0.0, 0.3, size=w.shape)).astype(np.float32)
        for k, w in model.get_weights().items()
    }
    model.set_weights(weights)
    proto = export_onnx(project, weights, opset)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        feed = {}
        for node_id in model.input_ids:
            shape = [
                (sizes or {}).get(i, 5) if d is None else d
                for i, d in enumerate(model.shapes[node_id])
            ]
            feed[node_id] = rng.normal(size=(batch, *shape)).astype(np.float32)
        expected = model.predict(feed)
        got = dict(
            zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True)
        )
        assert set(got) == set(expected)
        for name, want in expected.items():
            assert got[name].shape == want.shape, name
            np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-5, err_msg=name)


def one(type_name: str, shapes: list[tuple], **params) -> Project:
    return chain([(type_name, params)], shapes)


def lstm(**params) -> dict:
    return {"type": "LSTM", "params": params}


def gru(**params) -> dict:
    return {"type": "GRU", "params": params}


def block_type(project: Project) -> str:
    return next(n.type for n in project.nodes if n.id == "block_0")


CONV_CASES = [
    one("Conv1D", [(9, 3)], filters=2, kernel_size=3, padding="causal", strides=2),
    one("Conv1D", [(9, 4)], filters=4, kernel_size=3, padding="same", groups=4, dilation_rate=3),
    one("Conv2D", [(9, 8, 4)], filters=6, kernel_size=3, strides=2, groups=2, padding="same"),
    one("Conv2D", [(9, 8, 2)], filters=3, kernel_size=[3, 1], dilation_rate=[1, 3]),
    one("Conv3D", [(5, 6, 7, 2)], filters=2, kernel_size=3, strides=[1, 2, 3], padding="same"),
    one("Conv2DTranspose", [(3, 4, 2)], filters=3, kernel_size=1, strides=2, padding="same"),
    one("Conv1DTranspose", [(5, 2)], filters=2, kernel_size=5, strides=2, activation="gelu"),
    one("DepthwiseConv2D", [(9, 7, 3)], kernel_size=3, strides=2, depth_multiplier=2),
    one("SeparableConv1D", [(9, 2)], filters=3, kernel_size=3, dilation_rate=2, padding="same"),
    # sizes known only at run time
    one(
        "Conv2DTranspose",
        [(None, None, 2)],
        filters=2,
        kernel_size=3,
        strides=2,
        padding="same",
        output_padding=1,
    ),
    one(
        "DepthwiseConv1D", [(None, 3)], kernel_size=3, strides=2, padding="same", depth_multiplier=2
    ),
]


@pytest.mark.parametrize("project", CONV_CASES, ids=block_type)
def test_convolutions(project):
    check(project)


def test_same_padding_with_stride_over_sizes_known_at_run_time():
    project = one("Conv2D", [(None, None, 2)], filters=3, kernel_size=3, strides=2, padding="same")
    check(project, sizes={0: 7, 1: 8})
    check(one("Conv1D", [(None, 2)], filters=2, kernel_size=4, strides=3, padding="same"))


RECURRENT_CASES = [
    # ONNX's operators: softsign, go_backwards with its states, a returned sequence
    one("LSTM", [(5, 3)], units=3, activation="softsign", go_backwards=True, return_state=True),
    one("GRU", [(5, 2)], units=2, reset_after=False, go_backwards=True, return_sequences=True,
        return_state=True),
    one("SimpleRNN", [(None, 2)], units=3, return_sequences=True, go_backwards=True),
    one("LSTM", [(None, 2)], units=2, return_sequences=True, return_state=True),
    chain([("LSTM", {"units": 3, "return_sequences": True}), ("GRU", {"units": 2})], [(4, 2)]),
    # a Scan of plain operators: activations ONNX's recurrent operators do not take
    one("LSTM", [(4, 2)], units=3, activation="gelu", recurrent_activation="hard_sigmoid",
        return_sequences=True, return_state=True),
    one("LSTM", [(4, 2), (2,), (2,)], units=2, activation="elu", go_backwards=True,
        return_sequences=True, return_state=True),
    one("GRU", [(4, 3)], units=2, activation="swish", go_backwards=True, return_sequences=True),
    one("GRU", [(4, 2), (3,)], units=3, reset_after=False, recurrent_activation="hard_sigmoid",
        return_state=True, use_bias=False),
    one("SimpleRNN", [(3, 2), (2,)], units=2, activation="selu", go_backwards=True,
        return_state=True),
    # stacked Bidirectional layers, in ONNX's operators and in Scans
    chain(
        [
            ("Bidirectional", {"layer": lstm(units=3, return_sequences=True)}),
            ("Bidirectional", {"layer": lstm(units=2, return_sequences=True), "merge_mode": "ave"}),
            ("Bidirectional", {"layer": gru(units=2), "merge_mode": "mul"}),
        ],
        [(5, 2)],
    ),
    one("Bidirectional", [(4, 2)], layer=lstm(units=2, activation="gelu", return_sequences=True)),
    one("Bidirectional", [(4, 2)], layer=gru(units=2, recurrent_activation="hard_sigmoid"),
        merge_mode="sum"),
]  # fmt: skip


@pytest.mark.parametrize("project", RECURRENT_CASES, ids=block_type)
def test_recurrent(project):
    check(project)


def test_recurrent_uses_onnx_operators_where_they_compute_as_keras():
    proto = export_onnx(chain([("LSTM", {"units": 2, "go_backwards": True})], [(3, 2)]))
    (node,) = [n for n in proto.graph.node if n.op_type == "LSTM"]
    attrs = {a.name: a for a in node.attribute}
    assert attrs["direction"].s == b"reverse"
    assert [s.decode() for s in attrs["activations"].strings] == ["Sigmoid", "Tanh", "Tanh"]
    gelu = chain([("GRU", {"units": 2, "activation": "gelu"})], [(3, 2)])
    assert {n.op_type for n in export_onnx(gelu).graph.node} & {"GRU", "Scan"} == {"Scan"}


def test_scanned_steps_over_sequences_of_any_length():
    project = one("LSTM", [(None, 2)], units=2, activation="gelu", return_sequences=True)
    check(project, sizes={0: 6})
    check(one("GRU", [(None, 3)], units=2, recurrent_activation="hard_sigmoid", go_backwards=True))
    bidirectional = one("Bidirectional", [(None, 2)], layer=gru(units=2, activation="elu"))
    check(bidirectional, sizes={0: 1})


def mha(**params) -> dict:
    return {"num_heads": 2, "key_dim": 2, **params}


ATTENTION_CASES = [
    one("Attention", [(None, 3), (None, 3)], use_causal_mask=True, use_scale=True),
    one("Attention", [(2, None, 2), (2, None, 2)], use_causal_mask=True),
    one("Attention", [(2, 3, 2), (2, 4, 2), (2, 4, 2)], score_mode="concat",
        return_attention_scores=True),
    one("AdditiveAttention", [(None, 2), (None, 3), (None, 2)], use_causal_mask=True,
        return_attention_scores=True),
    one("MultiHeadAttention", [(None, 3), (None, 3)], use_causal_mask=True, **mha()),
    one("MultiHeadAttention", [(4, 3), (4, 5), (4, 2)], use_causal_mask=True,
        return_attention_scores=True, **mha(value_dim=3, output_shape=[2, 3])),
    one("MultiHeadAttention", [(2, 3, 4), (2, 3, 4)], **mha(attention_axes=[1, 2])),
    one("MultiHeadAttention", [(3, 3, 4), (3, 3, 4), (3, 3, 2)], use_causal_mask=True,
        **mha(attention_axes=[2], use_bias=False)),
]  # fmt: skip


@pytest.mark.parametrize("project", ATTENTION_CASES, ids=block_type)
def test_attention(project):
    check(project)


def test_a_causal_mask_over_run_time_steps_needs_opset_14():
    project = one("Attention", [(None, 3), (None, 3)], use_causal_mask=True)
    check(project, opset=14)
    with pytest.raises(ExportError, match="opset 14"):
        export_onnx(project, opset=13)
    check(one("Attention", [(4, 3), (4, 3)], use_causal_mask=True), opset=13)


def td(type_name: str, **params) -> dict:
    return {"layer": {"type": type_name, "params": params}}


WRAPPER_CASES = [
    one("TimeDistributed", [(None, 5, 4, 2)], **td("Conv2D", filters=3, kernel_size=2)),
    one("TimeDistributed", [(3, None, 2)], **td("LSTM", units=2, return_sequences=True)),
    one("TimeDistributed", [(3, 4, 2)], **td("Bidirectional", layer=lstm(units=2))),
    one("TimeDistributed", [(3, 6, 2)], **td("SeparableConv1D", filters=2, kernel_size=3,
        strides=2, padding="same", activation="relu")),
]  # fmt: skip


@pytest.mark.parametrize("project", WRAPPER_CASES, ids=lambda p: p.nodes[1].params["layer"]["type"])
def test_time_distributed(project):
    check(project, sizes={0: 3, 1: 4})


def test_text_vectorization_is_refused_with_its_reason():
    nodes = [
        Node("text", "Input", {"shape": [1], "dtype": "string"}),
        Node("vec", "TextVectorization", {"vocabulary": ["a", "b"], "output_sequence_length": 3}),
        Node("out", "Output", {"loss": "mean_squared_error", "metrics": []}),
    ]
    project = Project("text", nodes, [Edge("text", "vec", 0), Edge("vec", "out", 0)])
    with pytest.raises(ExportError, match=r"vec: TextVectorization .* token ids"):
        export_onnx(project)


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_other_opsets(opset):
    """The lowest and highest opsets the exporter writes, and 18 (Split's count, reductions'
    axes as inputs)."""
    for project in (CONV_CASES[2], *RECURRENT_CASES[4:6], RECURRENT_CASES[-1], ATTENTION_CASES[6]):
        check(project, opset=opset)
    check(WRAPPER_CASES[1], sizes={0: 3, 1: 4}, opset=opset)

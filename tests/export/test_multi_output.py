"""Blocks with several outputs end to end: recurrent ``return_state`` through both exports,
the Keras importer (a tensor's ``tensor_index`` is the edge's ``from_port``) and the summary.

The graph: an LSTM returning its sequence and its states (h, c), a GRU read backwards over
that sequence returning its state, the three states concatenated into a Dense head, and a
second Output reading the LSTM's c directly. Exported with weights, Keras and PyTorch
predict what nodenet predicts and take the same SGD step; Keras's saved archive of the
same model imports back edge for edge, and ``nodenet predict`` equals Keras ``predict``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nodenet.export import export_keras, export_pytorch, import_keras_config
from nodenet.graph.project import Edge, Node, Project, analyze
from nodenet.graph.summary import summarize
from tests.support.generated import Case, check_keras, check_torch, import_source

MSE = {"loss": "mean_squared_error", "metrics": []}


def states_graph(head_name: str = "head") -> Project:
    nodes = [
        Node("x", "Input", {"shape": [5, 3]}),
        Node(
            "enc",
            "LSTM",
            {"units": 4, "return_sequences": True, "return_state": True},
        ),
        Node("gru", "GRU", {"units": 3, "return_state": True, "go_backwards": True}),
        Node("cat", "Concatenate", {}),
        Node(head_name, "Dense", {"units": 2}),
        Node("y", "Output", MSE),
        Node("state", "Output", MSE),
    ]
    edges = [
        Edge("x", "enc"),
        Edge("enc", "gru"),
        Edge("enc", "cat", 0, 1),
        Edge("enc", "cat", 1, 2),
        Edge("gru", "cat", 2, 1),
        Edge("cat", head_name),
        Edge(head_name, "y"),
        Edge("enc", "state", 0, 2),
    ]
    return Project("states", nodes, edges)


def test_shapes_and_counts_per_output():
    analysis = analyze(states_graph())
    assert analysis.problems == []
    assert analysis.output_shapes["enc"] == ((5, 4), (4,), (4,))
    assert analysis.output_shapes["gru"] == ((3,), (3,))
    assert analysis.shapes["cat"] == (11,)
    assert analysis.shapes["state"] == (4,)


def test_the_summary_lists_every_output_and_names_the_one_read():
    summary = summarize(states_graph())
    rows = {r.id: r for r in summary.rows}
    assert rows["enc"].shape_text == "[(None, 5, 4), (None, 4), (None, 4)]"
    assert rows["cat"].connected_to == ("enc[1]", "enc[2]", "gru[1]")
    assert rows["state"].connected_to == ("enc[2]",)
    text = summary.to_text()
    assert "[(None, 5, 4), (None, 4), (None, 4)]" in text and "enc[1], enc[2], gru[1]" in text
    layers = {row["id"]: row for row in summary.to_dict()["layers"]}
    assert layers["enc"]["output_shape"] == [None, 5, 4]
    assert layers["enc"]["output_shapes"] == [[None, 5, 4], [None, 4], [None, 4]]
    assert "output_shapes" not in layers["cat"]


def test_generated_code_binds_every_output():
    keras_source = export_keras(states_graph()).source
    assert "enc, enc_h, enc_c = layers.LSTM(" in keras_source
    assert "gru, gru_h = layers.GRU(" in keras_source
    assert "[enc_h, enc_c, gru_h]" in keras_source
    assert '"state": enc_c' in keras_source
    torch_source = export_pytorch(states_graph()).source
    assert "enc, enc_h, enc_c = self.enc(x_)" in torch_source
    assert "gru, gru_h = self.gru(enc)" in torch_source


def test_an_output_variable_never_takes_another_nodes_name():
    project = states_graph(head_name="enc_h")
    source = export_keras(project).source
    assert "enc, enc_h_, enc_c = layers.LSTM(" in source
    assert "[enc_h_, enc_c, gru_h]" in source
    assert "enc_h = layers.Dense(" in source


keras = pytest.importorskip("keras", reason="the `ref` extra (keras) runs the exports")


@pytest.mark.ref
def test_both_exports_predict_and_train_as_nodenet(tmp_path):
    pytest.importorskip("torch")
    case = Case(states_graph(), seed=3)
    check_keras(case, tmp_path)
    check_torch(case, tmp_path)


def _keras_model(tmp_path):
    module = import_source(export_keras(states_graph()).source, tmp_path, "states")
    model = module.build_model()
    module.compile_model(model)
    return model


@pytest.mark.ref
def test_a_keras_config_imports_with_each_edge_reading_its_output(tmp_path):
    model = _keras_model(tmp_path)
    config = json.loads(model.to_json())
    config["compile_config"] = model.get_compile_config()
    back = import_keras_config(config)
    edges = {(e.src, e.dst, e.port, e.src_port) for e in back.edges}
    original = {(e.src, e.dst, e.port, e.src_port) for e in states_graph().edges}
    assert edges == original
    assert analyze(back).output_shapes == analyze(states_graph()).output_shapes


@pytest.mark.ref
def test_an_archive_with_weights_predicts_as_keras(tmp_path):
    pytest.importorskip("h5py")
    from nodenet.cli import main

    model = _keras_model(tmp_path)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        layer.set_weights(
            [rng.normal(0, 0.5, size=w.shape).astype("float32") for w in layer.weights]
        )
    archive = tmp_path / "states.keras"
    model.save(archive)
    project_path = tmp_path / "states.json"
    assert main(["import-keras", str(archive), "-o", str(project_path)]) == 0
    x = rng.normal(size=(3, 5, 3)).astype("float32")
    np.savez(tmp_path / "in.npz", x=x)
    out = tmp_path / "out.npz"
    weights = tmp_path / "states.weights.npz"
    args = ["predict", str(project_path), "--weights", str(weights)]
    assert main([*args, "--input", str(tmp_path / "in.npz"), "--output", str(out)]) == 0
    expected = model.predict(x, verbose=0)
    with np.load(out) as ours:
        for key in ("y", "state"):
            np.testing.assert_allclose(ours[key], np.asarray(expected[key]), atol=1e-5)


@pytest.mark.ref
def test_a_seq2seq_decoder_starts_from_the_encoders_states(tmp_path):
    """Keras's LSTM seq2seq: the decoder is called with ``initial_state=[h, c]``, which
    become its inputs 1 and 2; ``nodenet predict`` equals Keras ``predict``."""
    pytest.importorskip("h5py")
    from nodenet.cli import main

    layers = keras.layers
    encoder_in = keras.Input((5, 3), name="encoder_in")
    _, h, c = layers.LSTM(4, return_state=True, name="encoder")(encoder_in)
    decoder_in = keras.Input((6, 2), name="decoder_in")
    decoded = layers.LSTM(4, return_sequences=True, name="decoder")(
        decoder_in, initial_state=[h, c]
    )
    head = layers.Dense(3, activation="softmax", name="head")(decoded)
    model = keras.Model([encoder_in, decoder_in], head)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        arrays = [rng.normal(0, 0.5, size=w.shape) for w in layer.weights]
        layer.set_weights([a.astype("float32") for a in arrays])
    back = import_keras_config(json.loads(model.to_json()))
    edges = {(e.src, e.dst, e.port, e.src_port) for e in back.edges}
    assert {("encoder", "decoder", 1, 1), ("encoder", "decoder", 2, 2)} <= edges
    archive = tmp_path / "s2s.keras"
    model.save(archive)
    assert main(["import-keras", str(archive), "-o", str(tmp_path / "s2s.json")]) == 0
    x = {"encoder_in": rng.normal(size=(2, 5, 3)), "decoder_in": rng.normal(size=(2, 6, 2))}
    x = {k: v.astype("float32") for k, v in x.items()}
    np.savez(tmp_path / "in.npz", **x)
    args = ["predict", str(tmp_path / "s2s.json"), "--weights", str(tmp_path / "s2s.weights.npz")]
    out = tmp_path / "out.npz"
    assert main([*args, "--input", str(tmp_path / "in.npz"), "--output", str(out)]) == 0
    expected = model.predict([x["encoder_in"], x["decoder_in"]], verbose=0)
    with np.load(out) as ours:
        (key,) = ours.files
        np.testing.assert_allclose(ours[key], expected, atol=1e-5)


def test_initial_states_of_the_wrong_count_or_shape_are_refused_in_one_sentence():
    from nodenet.engine.catalog import block_class
    from nodenet.errors import ShapeError

    lstm = block_class("LSTM")({"units": 4})
    with pytest.raises(ShapeError, match=r"initial state\(s\) h and c \(3 inputs\); got 2"):
        lstm.infer_shape([(5, 3), (4,)])
    with pytest.raises(ShapeError, match=r"initial state c must be \(None, 4\), got \(None, 5\)"):
        lstm.infer_shape([(5, 3), (4,), (5,)])
    assert lstm.infer_shape([(5, 3), (4,), (4,)]) == (4,)


def test_bidirectional_refuses_return_state_clearly():
    from nodenet.engine.catalog import block_class
    from nodenet.errors import ParamError

    with pytest.raises(ParamError, match="Bidirectional does not return its layer's states"):
        block_class("Bidirectional").from_config(
            {"layer": {"type": "LSTM", "params": {"return_state": True}}}
        )


def test_the_layout_sizes_a_card_by_its_outputs_too():
    from nodenet.graph.layout import card_port_counts, output_port_count

    counts = card_port_counts(states_graph())
    assert (counts["enc"], counts["gru"], counts["cat"], counts["head"]) == (3, 2, 4, 1)
    assert output_port_count("LSTM", {"return_state": "yes"}) == 1  # flagged, one port

"""TextVectorization against Keras's rules, computed by hand.

Keras's layer runs on TensorFlow string ops (not installed here), so every expected
value below is worked out from Keras 3's code: ``tf.strings.lower`` (ASCII letters),
its punctuation regex, ``tf.strings.split`` (ASCII whitespace), ``tf.strings.ngrams``,
``index_lookup.finalize_state`` (``np.lexsort((tokens, counts))[::-1]``: count, then the
token's bytes, both descending; ``max_tokens`` counting the special tokens) and
``_inverse_document_frequency`` (``log(1 + N / (1 + df))``, OOV: the mean).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from nodenet.engine import text_tokens as tt
from nodenet.engine.catalog import Context, block_class
from nodenet.engine.training import fit
from nodenet.errors import DataError, ParamError, ShapeError, ValidationError, WeightsError
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model

TEXTS = np.array([["b a c"], ["a c d"]])  # a: 2, c: 2, b: 1, d: 1


def vectorizer(**params):
    return block_class("TextVectorization")(params, "tv")


def adapted(layer, texts=TEXTS):
    adapter = layer.adapter()
    adapter.add(texts)
    return adapter.result()


def run(layer, texts, state=None):
    out, _ = layer.forward(state or {}, [np.array(texts)], Context())
    return out


# -- the rules -----------------------------------------------------------------------------


def test_standardize_lowers_ascii_only_and_strips_keras_punctuation():
    assert tt.standardize("Hello, World! It's A-OK.") == "hello world its aok"
    assert tt.standardize("ÉCOLE Straße") == "École straße"  # É stays: ASCII letters only
    assert tt.standardize("x!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'y") == "xy"
    assert tt.standardize("Keep, Case", "strip_punctuation") == "Keep Case"
    assert tt.standardize("A, b", "lower") == "a, b"
    assert tt.standardize("A, b", None) == "A, b"


def test_split_on_ascii_whitespace_runs_and_per_character():
    assert tt.split(" a\tb\n\nc  d\r\x0b\x0ce ") == ["a", "b", "c", "d", "e"]
    assert tt.split("a\u00a0b c") == ["a\u00a0b", "c"]  # no-break space is not ASCII
    assert tt.split("ab é", "character") == ["a", "b", " ", "é"]
    assert tt.split("a b", None) == ["a b"]


def test_ngrams_come_width_by_width_and_skip_widths_longer_than_the_text():
    tokens = tt.tokenize("The cat sat", ngrams=2)
    assert tokens == ["the", "cat", "sat", "the cat", "cat sat"]
    assert tt.tokenize("The cat", ngrams=[3]) == []
    assert tt.tokenize("a b c", ngrams=[3, 1]) == ["a b c", "a", "b", "c"]


def test_vocabulary_ranks_by_count_then_token_bytes_descending():
    layer = vectorizer()
    assert list(adapted(layer)["vocabulary"]) == ["", "[UNK]", "c", "a", "d", "b"]
    # bytes, not code points or case-folding: "Z" (0x5a) < "a" (0x61) < "é" (0xc3 0xa9)
    layer = vectorizer(standardize=None)
    vocab = adapted(layer, np.array([["a Z é"]]))["vocabulary"]
    assert list(vocab) == ["", "[UNK]", "é", "a", "Z"]


def test_max_tokens_counts_the_special_tokens():
    assert list(adapted(vectorizer(max_tokens=4))["vocabulary"]) == ["", "[UNK]", "c", "a"]
    multi = vectorizer(max_tokens=4, output_mode="multi_hot", pad_to_max_tokens=True)
    assert list(adapted(multi)["vocabulary"]) == ["[UNK]", "c", "a", "d"]  # no mask index


def test_special_tokens_in_the_text_are_not_learned():
    layer = vectorizer(standardize=None)
    vocab = adapted(layer, np.array([["[UNK] x [UNK]"]]))["vocabulary"]
    assert list(vocab) == ["", "[UNK]", "x"]


# -- output modes --------------------------------------------------------------------------


def test_int_ids_pad_with_zeros_and_cut_at_output_sequence_length():
    layer = vectorizer(output_sequence_length=3)
    state = adapted(layer)  # "", [UNK], c, a, d, b
    out = run(layer, [["A b, C d!"], ["zz"], [""]], state)
    np.testing.assert_array_equal(out, [[3, 5, 2], [1, 0, 0], [0, 0, 0]])
    assert out.dtype == np.float32


def test_int_without_a_length_pads_to_the_longest_in_the_batch():
    layer = vectorizer()
    state = adapted(layer)
    np.testing.assert_array_equal(run(layer, [["a"], ["d c b"]], state), [[3, 0, 0], [4, 2, 5]])
    assert layer.infer_shape([(1,)]) == (None,)


def test_multi_hot_and_count_put_oov_at_index_zero():
    for mode, expected in (("multi_hot", [1, 0, 1, 0, 0]), ("count", [1, 0, 2, 0, 0])):
        layer = vectorizer(output_mode=mode, vocabulary=["c", "a", "d", "b"])
        assert layer.infer_shape([(1,)]) == (5,)
        np.testing.assert_array_equal(run(layer, [["a A zz"]]), [expected])


def test_pad_to_max_tokens_widens_the_vector():
    layer = vectorizer(output_mode="count", max_tokens=8, pad_to_max_tokens=True)
    state = adapted(layer)  # [UNK], c, a, d, b
    out = run(layer, [["b b q"]], state)
    np.testing.assert_array_equal(out, [[1, 0, 0, 0, 2, 0, 0, 0]])


def test_tf_idf_learns_keras_idf_with_the_mean_for_oov():
    layer = vectorizer(output_mode="tf_idf", max_tokens=7, pad_to_max_tokens=True)
    state = adapted(layer)  # two documents; a and c in both, b and d in one
    both, one = math.log(1 + 2 / 3), math.log(1 + 2 / 2)
    oov = (2 * np.float32(both) + 2 * np.float32(one)) / 4
    expected_idf = [oov, both, both, one, one, 0.0, 0.0]
    assert list(state["vocabulary"]) == ["[UNK]", "c", "a", "d", "b"]
    np.testing.assert_allclose(state["idf_weights"], expected_idf, rtol=1e-6)
    out = run(layer, [["a a zz"]], state)
    np.testing.assert_allclose(out, [[oov, 0, 2 * both, 0, 0, 0, 0]], rtol=1e-6)


def test_given_tf_idf_weights_get_their_mean_in_front():
    layer = vectorizer(output_mode="tf_idf", vocabulary=["the", "cat"], idf_weights=[0.5, 1.5])
    assert layer.infer_shape([(1,)]) == (3,)
    np.testing.assert_allclose(run(layer, [["The cat, the dog"]]), [[1.0, 1.0, 1.5]])


def test_given_vocabulary_may_start_with_the_special_tokens():
    plain = vectorizer(vocabulary=["x", "y"], output_sequence_length=3)
    full = vectorizer(vocabulary=["", "[UNK]", "x", "y"], output_sequence_length=3)
    for layer in (plain, full):
        np.testing.assert_array_equal(run(layer, [["y q x"]]), [[3, 1, 2]])


def test_ngrams_are_looked_up_like_words():
    layer = vectorizer(output_mode="multi_hot", vocabulary=["the cat", "cat"], ngrams=2)
    np.testing.assert_array_equal(run(layer, [["The cat sat"]]), [[1, 1, 1]])


# -- settings Keras refuses ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pad_to_max_tokens": True}, "pad_to_max_tokens"),
        ({"output_mode": "count", "output_sequence_length": 3}, "output_sequence_length"),
        ({"vocabulary": ["a", "a"]}, "vocabulary"),
        ({"vocabulary": ["a", ""]}, "vocabulary"),
        ({"vocabulary": ["a", "b", "c"], "max_tokens": 4}, "vocabulary"),
        ({"output_mode": "tf_idf", "vocabulary": ["a"]}, "idf_weights"),
        ({"output_mode": "tf_idf", "vocabulary": ["a"], "idf_weights": [1, 2]}, "idf_weights"),
        ({"idf_weights": [1.0], "vocabulary": ["a"]}, "idf_weights"),
        ({"max_tokens": 1}, "max_tokens"),
        ({"ngrams": 0}, "ngrams"),
    ],
)
def test_settings_keras_refuses_are_refused_naming_the_field(params, field):
    with pytest.raises(ParamError) as info:
        block_class("TextVectorization").from_config(params)
    assert info.value.param == field


def test_a_vector_mode_needs_its_width_before_the_data():
    with pytest.raises(ShapeError, match="pad_to_max_tokens, or give a vocabulary"):
        vectorizer(output_mode="multi_hot").infer_shape([(1,)])
    with pytest.raises(ShapeError, match="one string per sample"):
        vectorizer().infer_shape([(2,)])


# -- in a model: adapt, save, load, wiring -------------------------------------------------


def text_project(tv_params=None, dtype="string") -> Project:
    nodes = [
        Node("text", "Input", {"shape": [1], "dtype": dtype}),
        Node("tv", "TextVectorization", {"output_sequence_length": 4, **(tv_params or {})}),
        Node("emb", "Embedding", {"input_dim": 8, "output_dim": 3}),
        Node("pool", "GlobalAveragePooling1D", {}),
        Node("dense", "Dense", {"units": 2, "activation": "softmax"}),
        Node("label", "Output", {"loss": "categorical_crossentropy", "metrics": []}),
    ]
    edges = [Edge(a.id, b.id) for a, b in itertools.pairwise(nodes)]
    return Project("text", nodes, edges)


def dataset():
    train = ["good fun good", "bad dull", "good", "bad bad dull"] * 3
    tail = ["awful only here", "great only here"]  # the validation split (the tail)
    x = np.array([[t] for t in train + tail])
    y = np.eye(2, dtype=np.float32)[[0, 1, 0, 1] * 3 + [1, 0]]
    return x, y


def test_fit_adapts_the_vocabulary_to_the_training_split_only():
    model = build_model(text_project(), seed=0)
    assert model.to_adapt == {"tv"}
    assert model.count_params() == (8 * 3 + 3 * 2 + 2, 0)  # the vocabulary is no parameter
    x, y = dataset()
    fit(model, {"text": x}, {"label": y}, epochs=2, batch_size=4, validation_split=1 / 7)
    # train counts: good 9, bad 9, dull 6, fun 3; ties by bytes descending: good > bad
    expected = ["", "[UNK]", "good", "bad", "dull", "fun"]
    assert list(model.weights["tv"]["vocabulary"]) == expected
    assert not model.to_adapt


def test_the_vocabulary_is_saved_as_unicode_and_loads_without_pickle(tmp_path):
    model = build_model(text_project({"max_tokens": 8}), seed=0)  # the Embedding's input_dim
    x, y = dataset()
    fit(model, {"text": x}, {"label": y}, epochs=1, batch_size=4)
    assert len(model.weights["tv"]["vocabulary"]) == 8
    path = model.save_weights(tmp_path / "text.weights.npz")
    with np.load(path, allow_pickle=False) as saved:  # a '<U' array needs no pickle
        assert saved["tv/vocabulary"].dtype.kind == "U"
        assert list(saved["tv/vocabulary"]) == list(model.weights["tv"]["vocabulary"])
    again = build_model(text_project({"max_tokens": 8}), seed=1)
    again.load_weights(path)
    assert not again.to_adapt  # loaded, so kept: not learned again
    np.testing.assert_array_equal(
        again.weights["tv"]["vocabulary"], model.weights["tv"]["vocabulary"]
    )
    probe = {"text": np.array([["good awful"], ["dull fun bad"]])}
    np.testing.assert_array_equal(again.predict(probe)["label"], model.predict(probe)["label"])


def test_a_given_vocabulary_is_not_adapted():
    model = build_model(text_project({"vocabulary": ["bad", "good"]}), seed=0)
    assert not model.to_adapt
    x, y = dataset()
    fit(model, {"text": x}, {"label": y}, epochs=1, batch_size=4)
    assert list(model.weights["tv"]["vocabulary"]) == ["", "[UNK]", "bad", "good"]


def test_a_vocabulary_from_a_file_is_checked(tmp_path):
    model = build_model(text_project({"max_tokens": 4}), seed=0)
    weights = model.get_weights()
    weights["tv/vocabulary"] = np.array(["", "[UNK]", "a", "b", "c"])
    with pytest.raises(WeightsError, match="'tv': the vocabulary has 5 entries, more than 4"):
        model.set_weights(weights, source="w.npz")
    weights["tv/vocabulary"] = np.array([1.0, 2.0])
    with pytest.raises(WeightsError, match="1-D array of strings"):
        model.set_weights(weights, source="w.npz")
    del weights["tv/vocabulary"]
    with pytest.raises(WeightsError, match="no 'tv/vocabulary'"):
        model.set_weights(weights, source="w.npz")


def test_text_reaching_a_number_block_and_numbers_reaching_text_are_refused():
    project = text_project()
    project.nodes = [n for n in project.nodes if n.id not in ("tv", "emb", "pool")]
    project.edges = [Edge("text", "dense"), Edge("dense", "label")]
    project.nodes[0].params["shape"] = [1]
    # the analysis names the wiring before anything is built (the GUI shows it before Run)
    with pytest.raises(ValidationError, match="dense: the string Input 'text' feeds it text"):
        build_model(project, seed=0)
    with pytest.raises(ValidationError, match="feed it an Input of dtype string"):
        build_model(text_project(dtype="float32"), seed=0)


def test_data_of_the_wrong_kind_is_refused_naming_the_input():
    model = build_model(text_project(), seed=0)
    with pytest.raises(DataError, match="text: this string Input needs text"):
        model.predict({"text": np.zeros((2, 1), np.float32)})
    project = text_project()
    project.nodes = [
        Node("text", "Input", {"shape": [1]}),
        Node("dense", "Dense", {"units": 2}),
        Node("label", "Output", {"loss": "mean_squared_error", "metrics": []}),
    ]
    project.edges = [Edge("text", "dense"), Edge("dense", "label")]
    with pytest.raises(DataError, match="not numbers; for text give the Input dtype string"):
        build_model(project, seed=0).predict({"text": np.array([["a"]])})


def test_weight_histograms_leave_the_vocabulary_out():
    from nodenet.reports import histograms

    model = build_model(text_project({"vocabulary": ["bad", "good"]}), seed=0)
    shown = histograms(model.get_weights())
    assert "tv/vocabulary" not in shown and "emb/embeddings" in shown

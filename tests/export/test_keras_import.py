"""import-keras: Keras model configs become projects; what nodenet lacks is named, not dropped.

Round trip: the Keras export of a project, built by Keras and serialized by
Keras (``model.to_json()`` with its compile config, or a saved ``.keras``
archive), imports back to the same graph: block types, every setting, edges
and ports, Output losses, loss weights and metrics. Sequential configs, old
(Keras 2) functional configs, and every refusal are checked on configs Keras
itself wrote where Keras can write them.
"""

from __future__ import annotations

import json
import zipfile

import pytest

from nodenet.cli import main
from nodenet.errors import NodenetError, ProjectFileError
from nodenet.export import export_keras, import_keras, import_keras_config
from nodenet.graph.project import analyze, load
from tests.support.generated import SAMPLES, import_source

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) writes the configs")

pytestmark = pytest.mark.ref


def graph_of(project) -> tuple[dict, list]:
    """Types and full settings by node id, and (from, to, port) edges; a pool's default
    strides written out (as Keras does) count as the default."""
    analysis = analyze(project)
    assert analysis.ok, analysis.problems
    nodes = {}
    for node in project.nodes:
        config = dict(analysis.layers[node.id].config)
        if "pool_size" in config and config.get("strides") is None:
            config["strides"] = config["pool_size"]
        nodes[node.id] = (node.type, config)
    return nodes, sorted((e.src, e.dst, e.port) for e in project.edges)


def keras_model(project, tmp_path):
    module = import_source(export_keras(project).source, tmp_path, "roundtrip")
    model = module.build_model()
    module.compile_model(model)
    return model


def keras_config(model) -> dict:
    config = json.loads(model.to_json())
    config["compile_config"] = model.get_compile_config()
    return config


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_samples_round_trip_through_a_keras_archive(path, tmp_path):
    project = load(path)
    if any(n.type == "TextVectorization" for n in project.nodes):
        pytest.importorskip("tensorflow", reason="Keras's TextVectorization needs TensorFlow")
    model = keras_model(project, tmp_path)
    archive = tmp_path / f"{path.stem}.keras"
    model.save(archive)
    back = import_keras(archive)
    assert graph_of(back) == graph_of(project)
    assert back.name == project.name
    assert back.training["optimizer"]["name"] == project.training["optimizer"]["name"]
    rate = project.training["optimizer"]["learning_rate"]
    assert back.training["optimizer"]["learning_rate"] == pytest.approx(rate)


@pytest.mark.slow
def test_random_graphs_round_trip(tmp_path):
    from tests.support.keras_graphs import random_graph

    for seed in range(60):
        project, _ = random_graph(seed)
        back = import_keras_config(keras_config(keras_model(project, tmp_path)))
        assert graph_of(back) == graph_of(project), f"seed {seed}"


def test_imported_nodes_are_laid_out_left_to_right(tmp_path):
    project = load(SAMPLES[0])
    back = import_keras_config(keras_config(keras_model(project, tmp_path)))
    xs = [n.pos[0] for n in back.nodes]
    assert xs == sorted(xs) and len(set(map(tuple, (n.pos for n in back.nodes)))) == len(xs)


def test_sequential_models_import_with_or_without_an_input_layer():
    layers = keras.layers
    with_input = keras.Sequential(
        [keras.Input((12,)), layers.Dense(8, activation="relu"), layers.Dense(3)], name="seq"
    )
    project = import_keras_config(json.loads(with_input.to_json()))
    assert [n.type for n in project.nodes] == ["Input", "Dense", "Dense", "Output"]
    assert project.nodes[0].params == {"shape": [12]}
    assert project.nodes[1].params == {"units": 8, "activation": "relu"}
    built_later = keras.Sequential([layers.Conv1D(4, 3), layers.Flatten()])
    built_later.build((None, 10, 2))
    project = import_keras_config(json.loads(built_later.to_json()))
    assert [n.type for n in project.nodes] == ["Input", "Conv1D", "Flatten", "Output"]
    assert project.nodes[0].params == {"shape": [10, 2]}
    assert project.nodes[1].params == {"filters": 4}  # kernel_size 3 is the default
    assert analyze(project).ok


def test_keras_2_functional_configs_import():
    config = {
        "class_name": "Model",
        "config": {
            "name": "legacy",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "x",
                    "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "x"},
                    "inbound_nodes": [],
                },
                {
                    "class_name": "Dense",
                    "name": "d",
                    "config": {"name": "d", "units": 2, "activation": "softmax"},
                    "inbound_nodes": [[["x", 0, 0, {}]]],
                },
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["d", 0, 0]],
        },
    }
    project = import_keras_config(config)
    assert [(n.id, n.type) for n in project.nodes] == [
        ("x", "Input"),
        ("d", "Dense"),
        ("output", "Output"),
    ]
    assert analyze(project).ok


def test_blocks_and_settings_nodenet_lacks_are_all_named():
    layers = keras.layers
    x = keras.Input((8, 8, 4), name="image")
    y = layers.Conv2D(4, 3, name="custom")(x)
    y = layers.Conv2D(4, 3, kernel_constraint=keras.constraints.NonNeg(), name="conv")(y)
    y = layers.Flatten(name="flat")(y)
    y = layers.Dense(3, kernel_constraint=keras.constraints.NonNeg(), name="dense")(y)
    config = json.loads(keras.Model(x, y).to_json())
    config["config"]["layers"][1]["class_name"] = "MyConv"  # a custom class nodenet lacks
    with pytest.raises(NodenetError) as info:
        import_keras_config(config)
    lines = str(info.value).splitlines()
    assert "MyConv (custom)" in lines[1]
    assert "Conv2D 'conv': kernel_constraint='NonNeg'" in lines[2]
    assert "Dense 'dense': kernel_constraint='NonNeg'" in lines[3]
    assert len(lines) == 5 and lines[-1].startswith("What you can do")


def test_shared_layers_and_unknown_losses_are_refused():
    layers = keras.layers
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = layers.Dense(2, name="shared")
    model = keras.Model([a, b], layers.Add(name="sum")([shared(a), shared(b)]))
    with pytest.raises(NodenetError, match="shared"):
        import_keras_config(json.loads(model.to_json()))
    single = keras.Model(a, layers.Dense(2, name="d")(a))
    single.compile(loss="poisson")
    config = json.loads(single.to_json())
    config["compile_config"] = single.get_compile_config()
    with pytest.raises(NodenetError, match="poisson"):
        import_keras_config(config)


def test_keras_archives_are_read_from_their_config_only(tmp_path):
    archive = tmp_path / "model.keras"
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("config.json", model.to_json())
        zf.writestr("model.weights.h5", b"not read")
    assert [n.type for n in import_keras(archive).nodes] == ["Input", "Dense", "Output"]
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as zf:
        zf.writestr("metadata.json", "{}")
    with pytest.raises(ProjectFileError, match=r"without config\.json"):
        import_keras(tmp_path / "empty.keras")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ProjectFileError, match=r"bad\.json"):
        import_keras(tmp_path / "bad.json")


def test_cli_import_keras_writes_a_valid_project(tmp_path, capsys):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, activation="softmax")])
    config = tmp_path / "model.json"
    config.write_text(model.to_json())
    out = tmp_path / "imported.json"
    assert main(["import-keras", str(config), "-o", str(out)]) == 0
    capsys.readouterr()
    project = load(out)
    assert analyze(project).ok
    assert [n.type for n in project.nodes] == ["Input", "Dense", "Output"]
    config.write_text(
        json.dumps(
            {
                "class_name": "Sequential",
                "config": {
                    "layers": [
                        {
                            "class_name": "InputLayer",
                            "config": {"batch_shape": [None, 3], "name": "i"},
                        },
                        {"class_name": "Lambda", "config": {"name": "magic"}},
                    ]
                },
            }
        )
    )
    code = main(["import-keras", str(config), "-o", str(tmp_path / "no.json")])
    err = capsys.readouterr().err
    assert code == 1 and "Lambda (magic)" in err and "Traceback" not in err
    assert err.count("\n") == 3  # what stops the import, then what the user can do
    assert not (tmp_path / "no.json").exists()

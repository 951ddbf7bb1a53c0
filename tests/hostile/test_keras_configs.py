"""Hostile Keras model configs for ``import-keras`` (issue 13): every malformed config is a
typed error naming the layer and field, never AttributeError / IndexError / TypeError /
RecursionError; what is imported always reopens; a ``.keras`` member lying about its size
is never inflated past the budget. Hand-built configs (no Keras needed), so these run fast.
"""

from __future__ import annotations

import copy
import json
import struct
import tracemalloc
import zipfile

import pytest

from nodenet.cli import main
from nodenet.errors import NodenetError, ProjectFileError
from nodenet.export import keras_import
from nodenet.export.keras_import import import_keras, import_keras_config
from nodenet.graph.project import load


def tensor(name: str, index: int = 0) -> dict:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None, 4], "dtype": "float32", "keras_history": [name, index, 0]},
    }


def functional() -> dict:
    return {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "x",
                    "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "x"},
                    "inbound_nodes": [],
                },
                {
                    "class_name": "Dense",
                    "name": "d",
                    "config": {"name": "d", "units": 3},
                    "inbound_nodes": [{"args": [tensor("x")], "kwargs": {}}],
                },
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["d", 0, 0]],
        },
    }


def sequential() -> dict:
    return {
        "class_name": "Sequential",
        "config": {
            "name": "seq",
            "layers": [
                {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "in"}},
                {"class_name": "Dense", "config": {"name": "d", "units": 3}},
            ],
        },
    }


def edit(make, change) -> dict:
    config = make()
    change(config)
    return config


def _set(path: str, value):
    """A change setting ``config[...]`` at a dotted path (numbers index lists)."""

    def change(config):
        target = config
        *parents, last = path.split(".")
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


MALFORMED = {
    "body_is_a_list": edit(functional, _set("config", [])),
    "layers_is_a_string": edit(functional, _set("config.layers", "x")),
    "layer_is_a_number": edit(functional, _set("config.layers.1", 5)),
    "layer_config_is_a_list": edit(functional, _set("config.layers.1.config", [1])),
    "class_name_is_a_number": edit(functional, _set("config.layers.1.class_name", 5)),
    "batch_shape_is_a_number": edit(functional, _set("config.layers.0.config.batch_shape", 3)),
    "batch_shape_is_empty": edit(functional, _set("config.layers.0.config.batch_shape", [None])),
    "inbound_nodes_is_a_string": edit(functional, _set("config.layers.1.inbound_nodes", "x")),
    "inbound_args_is_a_number": edit(
        functional, _set("config.layers.1.inbound_nodes", [{"args": 5}])
    ),
    "inbound_tensor_config_is_a_list": edit(
        functional, _set("config.layers.1.inbound_nodes", [{"args": [{"config": [1]}]}])
    ),
    "keras_history_too_short": edit(
        functional,
        _set("config.layers.1.inbound_nodes.0.args.0.config.keras_history", ["x"]),
    ),
    "keras_history_index_is_text": edit(
        functional,
        _set("config.layers.1.inbound_nodes.0.args.0.config.keras_history", ["x", "0", 0]),
    ),
    "keras_2_inbound_is_a_number": edit(functional, _set("config.layers.1.inbound_nodes", [7])),
    "output_layers_is_a_number": edit(functional, _set("config.output_layers", 5)),
    "output_ref_name_is_a_number": edit(functional, _set("config.output_layers", [[5, 0, 0]])),
    "output_ref_is_empty": edit(functional, _set("config.output_layers", [[]])),
    "regularizer_is_a_string": edit(
        functional, _set("config.layers.1.config.kernel_regularizer", "l2")
    ),
    "regularizer_config_is_a_list": edit(
        functional,
        _set("config.layers.1.config.kernel_regularizer", {"class_name": "L2", "config": [1]}),
    ),
    "regularizer_10e400": edit(
        functional,
        _set(
            "config.layers.1.config.kernel_regularizer",
            {"class_name": "L2", "config": {"l2": 10**400}},
        ),
    ),
    "initializer_config_is_a_list": edit(
        functional,
        _set("config.layers.1.config.kernel_initializer", {"class_name": "X", "config": [1]}),
    ),
    "units_10e400": edit(functional, _set("config.layers.1.config.units", 10**400)),
    "bidirectional_layer_is_a_list": edit(
        functional,
        _set(
            "config.layers.1",
            {
                "class_name": "Bidirectional",
                "name": "b",
                "config": {"name": "b", "layer": [1]},
                "inbound_nodes": [{"args": [tensor("x")], "kwargs": {}}],
            },
        ),
    ),
    "compile_config_is_a_list": edit(functional, _set("compile_config", [1])),
    "loss_weights_is_text": edit(
        functional, _set("compile_config", {"loss": "mse", "loss_weights": "heavy"})
    ),
    "loss_weights_10e400": edit(
        functional, _set("compile_config", {"loss": "mse", "loss_weights": 10**400})
    ),
    "optimizer_config_is_a_list": edit(
        functional, _set("compile_config", {"optimizer": {"class_name": "Adam", "config": [1]}})
    ),
    "optimizer_name_is_a_list": edit(functional, _set("compile_config", {"optimizer": [1]})),
    "sequential_layers_is_an_object": edit(sequential, _set("config.layers", {})),
    "sequential_layer_is_a_string": edit(sequential, _set("config.layers.1", "Dense")),
    "sequential_first_shape_is_a_number": edit(
        sequential,
        _set("config.layers.0", {"class_name": "Dense", "config": {"units": 3, "batch_shape": 4}}),
    ),
    # imported names nodenet could not reopen
    "model_name_is_a_list": edit(functional, _set("config.name", ["m"])),
    "layer_name_is_a_number": edit(functional, _set("config.layers.1.name", 7)),
    "layer_name_has_a_slash": edit(
        functional,
        lambda c: (
            c["config"]["layers"][1].update(name="a/b"),
            c["config"].update(output_layers=[["a/b", 0, 0]]),
        ),
    ),
    "layer_name_has_a_newline": edit(
        functional,
        lambda c: (
            c["config"]["layers"][1].update(name="a\nb"),
            c["config"].update(output_layers=[["a\nb", 0, 0]]),
        ),
    ),
}


def test_the_templates_import():
    assert [n.type for n in import_keras_config(functional()).nodes] == ["Input", "Dense", "Output"]
    assert [n.type for n in import_keras_config(sequential()).nodes] == ["Input", "Dense", "Output"]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_config_is_a_typed_error(case):
    with pytest.raises(NodenetError) as err:
        import_keras_config(copy.deepcopy(MALFORMED[case]))
    message = str(err.value)
    assert len(message) < 600 and "\n" not in message, message[:300]


@pytest.mark.parametrize(
    "case, where",
    [
        ("layer_config_is_a_list", "layer 'd'"),
        ("keras_history_too_short", "layer 'd'"),
        ("batch_shape_is_a_number", "batch_shape"),
        ("regularizer_is_a_string", "regularizer"),
        ("output_ref_is_empty", "output_layers"),
        ("model_name_is_a_list", "name"),
        ("layer_name_has_a_slash", "'/'"),
    ],
)
def test_the_error_names_the_layer_or_field(case, where):
    with pytest.raises(NodenetError, match=where):
        import_keras_config(copy.deepcopy(MALFORMED[case]))


def test_a_model_name_carrying_code_comes_in_as_plain_text():
    payload = 'x""";open("PWNED","w").write("1");raise SystemExit(0);"""'
    project = import_keras_config(edit(functional, _set("config.name", payload)))
    assert project.name == payload


def test_deep_nesting_is_refused(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"class_name": "Functional", "config": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ProjectFileError, match="nested"):
        import_keras(path)
    deep: list = []
    for _ in range(200):
        deep = [deep]
    config = functional()
    config["config"]["layers"][1]["config"]["extra"] = deep
    with pytest.raises(ProjectFileError, match="nested"):
        import_keras_config(config)


@pytest.mark.parametrize(
    "text", ['{"class_name": "Functional", "config": {"name": ' + "9" * 5000 + "}}", "NaN"]
)
def test_unreadable_numbers_are_refused(text, tmp_path):
    path = tmp_path / "numbers.json"
    path.write_text(text)
    with pytest.raises(ProjectFileError, match=r"numbers\.json"):
        import_keras(path)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_cli_import_keras_never_exits_0_or_70_on_a_malformed_config(case, tmp_path, capsys):
    source = tmp_path / "model.json"
    source.write_text(json.dumps(MALFORMED[case]) if case != "units_10e400" else "{}")
    out = tmp_path / "out.json"
    assert main(["import-keras", str(source), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "model.json" in err and "internal error" not in err and len(err) < 700
    assert not out.exists()


def test_what_import_keras_writes_always_reopens(tmp_path, capsys):
    source = tmp_path / "model.json"
    source.write_text(json.dumps(functional()))
    out = tmp_path / "out.json"
    assert main(["import-keras", str(source), "-o", str(out)]) == 0
    assert [n.id for n in load(out).nodes] == ["x", "d", "output"]


def _lying_archive(path, real_bytes: int, claimed: int) -> None:
    """A .keras zip whose config.json inflates to ``real_bytes`` but claims ``claimed``."""
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("config.json", "w") as f,
    ):
        chunk = b" " * 2**20
        for _ in range(real_bytes // len(chunk)):
            f.write(chunk)
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, claimed)
    struct.pack_into("<I", data, central + 24, claimed)
    path.write_bytes(bytes(data))


def test_a_keras_member_lying_about_its_size_is_not_inflated(tmp_path):
    archive = tmp_path / "liar.keras"
    _lying_archive(archive, real_bytes=96 * 2**20, claimed=100)
    tracemalloc.start()
    try:
        with pytest.raises(ProjectFileError, match=r"liar\.keras"):
            import_keras(archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_a_keras_member_past_the_budget_is_refused_while_inflating(tmp_path, monkeypatch):
    monkeypatch.setattr(keras_import, "MAX_CONFIG_BYTES", 3 * 2**20)
    archive = tmp_path / "big.keras"
    _lying_archive(archive, real_bytes=8 * 2**20, claimed=2 * 2**20)
    with pytest.raises(ProjectFileError, match=r"big\.keras"):
        import_keras(archive)


def test_layout_of_a_long_chain_reads_in_order_in_rows():
    config = functional()
    layers = config["config"]["layers"]
    for i in range(200):
        layers.append(
            {
                "class_name": "Dense",
                "name": f"d{i}",
                "config": {"name": f"d{i}", "units": 3},
                "inbound_nodes": [{"args": [tensor(layers[-1]["name"])], "kwargs": {}}],
            }
        )
    config["config"]["output_layers"] = [[layers[-1]["name"], 0, 0]]
    project = import_keras_config(config)
    places = [(n.pos[1], n.pos[0]) for n in project.nodes]  # rows top to bottom, then x
    assert places == sorted(places) and len(set(places)) == len(places)
    assert len({y for y, _ in places}) > 1  # 200 blocks in one row would be unreadable

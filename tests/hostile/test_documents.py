"""Hostile project documents: every one is refused by ``load`` with a short message naming the
file, or loads and then validates, summarizes and analyzes without raising (issue 13).

The cases are examples of categories (numbers past float range, huge integers, overlong JSON
numbers, deep nesting, huge element counts, ports past any block, ids with the weights-key
separator, megabyte-long text echoed in messages); each category has a few members.
"""

from __future__ import annotations

import copy
import json
import math
import os

import pytest

from nodenet.cli import _print_json, main
from nodenet.errors import ProjectFileError, ValidationError, shorten
from nodenet.graph import project as project_module
from nodenet.graph.project import (
    Edge,
    Node,
    Project,
    analyze,
    id_problem,
    load,
    parse_json,
    validate,
)
from nodenet.graph.summary import connected_text, summarize

MESSAGE_LIMIT = 600  # a message echoing hostile text stays readable


def base() -> dict:
    return {
        "format": "nodenet-project",
        "version": 1,
        "name": "hostile",
        "nodes": [
            {"id": "x", "type": "Input", "params": {"shape": [4]}, "pos": [0, 0]},
            {"id": "d", "type": "Dense", "params": {"units": 3}, "pos": [200, 0]},
            {
                "id": "y",
                "type": "Output",
                "params": {"loss": "mean_squared_error"},
                "pos": [400, 0],
            },
        ],
        "edges": [{"from": "x", "to": "d", "port": 0}, {"from": "d", "to": "y", "port": 0}],
        "training": {"optimizer": {"name": "adam", "learning_rate": 0.001}, "epochs": 1},
    }


def with_(path: str, value) -> dict:
    """``base()`` with the value at a dotted ``path`` (list indices as numbers) replaced."""
    doc = base()
    *parents, last = path.split(".")
    target = doc
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc


HUGE = 10**400
HOSTILE = {
    # numbers past float range in float-typed fields and settings
    "learning_rate_10e400": with_("training.optimizer.learning_rate", HUGE),
    "validation_split_10e400": with_("training.validation_split", HUGE),
    "dropout_rate_1e308": with_(
        "nodes.1", {"id": "d", "type": "Dropout", "params": {"rate": 1e308}, "pos": [0, 0]}
    ),
    "dropout_rate_10e400": with_(
        "nodes.1", {"id": "d", "type": "Dropout", "params": {"rate": HUGE}, "pos": [0, 0]}
    ),
    "regularizer_10e400": with_("nodes.1.params", {"units": 3, "kernel_regularizer": {"l1": HUGE}}),
    "regularizer_19_digits": with_(
        "nodes.1.params", {"units": 3, "kernel_regularizer": {"l2": 10**19}}
    ),
    "schedule_values_10e400": with_(
        "training.optimizer.learning_rate",
        {"schedule": "PiecewiseConstantDecay", "boundaries": [10], "values": [HUGE, 0.1]},
    ),
    "schedule_boundaries_19_digits": with_(
        "training.optimizer.learning_rate",
        {"schedule": "PiecewiseConstantDecay", "boundaries": [10**19], "values": [0.1, 0.01]},
    ),
    "loss_weight_10e400": with_(
        "nodes.2.params", {"loss": "mean_squared_error", "loss_weight": HUGE}
    ),
    # huge integers in integer fields
    "units_10e18": with_("nodes.1.params", {"units": 10**18}),
    "units_10e400": with_("nodes.1.params", {"units": HUGE}),
    "units_2e31": with_("nodes.1.params", {"units": 2**31 - 1}),
    "input_shape_10e18": with_("nodes.0.params", {"shape": [10**18]}),
    "input_shape_two_big_dims": with_("nodes.0.params", {"shape": [2**31 - 1, 2**31 - 1]}),
    "epochs_10e18": with_("training.epochs", 10**18),
    "batch_size_10e18": with_("training.batch_size", 10**18),
    "patience_10e18": with_("training.early_stopping", {"patience": 10**18}),
    "seed_negative_huge": with_("training.seed", -(10**18)),
    # class_weight keys that int() cannot read, or that are not class indices
    "class_weight_superscript": with_("training.class_weight", {"²": 1.0}),
    "class_weight_arabic_digit": with_("training.class_weight", {"٣": 1.0}),
    "class_weight_negative": with_("training.class_weight", {"-1": 1.0}),
    "class_weight_huge_index": with_("training.class_weight", {"9" * 30: 1.0}),
    "class_weight_huge_weight": with_("training.class_weight", {"0": HUGE}),
    "class_weight_list": with_("training.class_weight", [1, 2]),
    # ports past every block
    "port_10e18": with_("edges.1", {"from": "d", "to": "y", "port": 10**18}),
    "port_200000_into_dense": with_("edges.1", {"from": "d", "to": "y", "port": 200_000}),
    # ids that collide with the weights-key separator, or are not text
    "id_with_slash": with_("nodes.1.id", "a/b"),
    "id_number": with_("nodes.1.id", 7),
    "id_newline": with_("nodes.1.id", "a\nb"),
    "id_1mb": with_("nodes.1.id", "i" * 1_000_000),
    # megabyte-long text echoed in messages
    "type_1mb": with_("nodes.1.type", "T" * 1_000_000),
    "param_name_1mb": with_("nodes.1.params", {"units": 3, "k" * 1_000_000: 1}),
    "optimizer_name_1mb": with_("training.optimizer", {"name": "o" * 1_000_000}),
    "optimizer_name_list": with_("training.optimizer", {"name": ["adam"]}),
    "edge_to_1mb_missing": with_("edges.1", {"from": "d", "to": "m" * 1_000_000, "port": 0}),
    # odd structure
    "early_stopping_list": with_("training.early_stopping", [1]),
    "reduce_lr_string": with_("training.reduce_lr_on_plateau", "yes"),
    "optimizer_string": with_("training.optimizer", "adam"),
    "optimizer_list": with_("training.optimizer", ["adam"]),
    "params_units_bool": with_("nodes.1.params", {"units": True}),
    "kernel_size_huge": with_("nodes.1.params", {"units": 3, "kernel_size": [10**18, 1]}),
}


def write(tmp_path, doc, name="hostile.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def short(text: str) -> bool:
    return len(text) <= MESSAGE_LIMIT and "\n" not in text.strip()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_document_is_refused_or_analyzed_without_raising(case, tmp_path):
    """load raises ProjectFileError (short, naming the file), or analyze/summary do not raise
    and every problem reads in one short line."""
    path = write(tmp_path, HOSTILE[case])
    try:
        project = load(path)
    except ProjectFileError as err:
        assert short(str(err)), str(err)[:300]
        assert "hostile.json" in str(err)
        return
    analysis = analyze(project)
    assert all(len(str(p)) <= MESSAGE_LIMIT for p in analysis.problems)
    try:
        summarize(project)
    except ValidationError:
        assert analysis.problems
    project.copy()  # what loaded can be copied (the GUI's undo does) without raising


@pytest.mark.parametrize(
    "case",
    [
        "learning_rate_10e400",
        "units_10e400",
        "class_weight_huge_weight",
        "loss_weight_10e400",
        "regularizer_10e400",
        "schedule_values_10e400",
    ],
)
def test_numbers_past_float_range_are_refused_at_load(case, tmp_path):
    """The GUI keeps its document: the file is refused before it replaces anything."""
    with pytest.raises(ProjectFileError, match=r"finite number|too large"):
        load(write(tmp_path, HOSTILE[case]))


@pytest.mark.parametrize(
    "case, field",
    [
        ("units_10e18", "units"),
        ("input_shape_10e18", "shape"),
        ("epochs_10e18", "training.epochs"),
        ("batch_size_10e18", "training.batch_size"),
        ("patience_10e18", "patience"),
        ("seed_negative_huge", "training.seed"),
        ("schedule_boundaries_19_digits", "boundaries"),
        ("kernel_size_huge", "kernel_size"),
    ],
)
def test_huge_integers_are_problems_naming_the_field(case, field, tmp_path):
    problems = validate(load(write(tmp_path, HOSTILE[case])))
    assert any(field in str(p) for p in problems), problems


def test_float_settings_built_in_memory_with_10e400_are_problems_not_overflows():
    """A document built by the API (not loaded) with 10**400 still validates."""
    project = Project.from_dict(base())
    project.training["optimizer"]["learning_rate"] = HUGE
    project.training["validation_split"] = HUGE
    project.nodes[1].params["kernel_regularizer"] = {"l1": HUGE}
    fields = " ".join(str(p) for p in validate(project))
    assert "learning_rate" in fields
    assert "validation_split" in fields
    assert "kernel_regularizer" in fields


@pytest.mark.parametrize("key", ["²", "٣", "-1", "1.0", " 1", "9" * 30])
def test_class_weight_keys_must_be_ascii_class_indices(key):
    project = Project.from_dict(with_("training.class_weight", {key: 1.0}))
    assert any("class_weight" in str(p) for p in validate(project))


def test_class_weight_with_ascii_indices_is_accepted():
    project = Project.from_dict(with_("training.class_weight", {"0": 1.0, "1": 2}))
    assert not [p for p in validate(project) if "class_weight" in str(p)]


# -- JSON text: numbers, nesting, sizes, counts ------------------------------------------------


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"a": ' + "9" * 5000 + "}", "5,000 digits"),
        ('{"a": -' + "9" * 4301 + "}", "4,301 digits"),
        ('{"a": 1e400}', "beyond the range"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": -Infinity}', "Infinity is not a JSON number"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply|values nested"),
        ("{" * 3000 + "}" * 3000, "not valid JSON|nested"),
    ],
)
def test_parse_json_refuses_unreadable_numbers_and_nesting(text, match):
    with pytest.raises(ProjectFileError, match=match) as err:
        parse_json(text, "clip")
    assert short(str(err.value))


def test_nesting_past_the_depth_limit_is_refused_at_load(tmp_path):
    doc = base()
    deep: list = []
    for _ in range(project_module.MAX_DEPTH + 5):
        deep = [deep]
    doc["extra"] = deep
    with pytest.raises(ProjectFileError, match="nested more than"):
        load(write(tmp_path, doc))


def test_millions_of_values_are_refused_before_parsing(tmp_path):
    """60 MB of ``[]`` peaked at 5-7 GB; now the count is checked on the text."""
    path = tmp_path / "lists.json"
    path.write_text("[" + "[]," * 2_500_000 + "[]]", encoding="utf-8")
    with pytest.raises(ProjectFileError, match="JSON values") as err:
        load(path)
    assert short(str(err.value))


def test_file_size_is_checked_on_the_bytes_read(tmp_path, monkeypatch):
    monkeypatch.setattr(project_module, "MAX_FILE_BYTES", 1000)
    path = write(tmp_path, with_("name", "n" * 2000))
    with pytest.raises(ProjectFileError, match="too large"):
        load(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(ProjectFileError, match="not a regular file"):
        load(fifo)


def test_too_many_nodes_are_refused_before_building_them(tmp_path, monkeypatch):
    monkeypatch.setattr(project_module, "MAX_NODES", 2)
    with pytest.raises(ProjectFileError, match="more than a project may hold"):
        load(write(tmp_path, base()))


def test_thousands_of_bad_items_give_one_short_error(tmp_path):
    doc = base()
    doc["nodes"] = [[] for _ in range(50_000)]
    with pytest.raises(ProjectFileError, match="more problem") as err:
        load(write(tmp_path, doc))
    assert short(str(err.value))


# -- ports and ids -----------------------------------------------------------------------------


def test_a_port_past_every_block_is_refused_before_any_range(tmp_path):
    with pytest.raises(ProjectFileError, match="port"):
        load(write(tmp_path, HOSTILE["port_10e18"]))


def test_a_far_port_into_a_merge_reports_the_first_gap():
    doc = base()
    doc["nodes"].insert(2, {"id": "c", "type": "Concatenate", "params": {}, "pos": [0, 0]})
    doc["edges"] = [
        {"from": "x", "to": "d", "port": 0},
        {"from": "x", "to": "c", "port": 0},
        {"from": "d", "to": "c", "port": 200_000},
        {"from": "c", "to": "y", "port": 0},
    ]
    problems = [str(p) for p in validate(Project.from_dict(doc))]
    assert any("c: input port 1 is not connected" in p for p in problems), problems


def test_ports_built_in_memory_never_build_a_range():
    """A huge port from the API (not the loader) is a problem, fast."""
    project = Project.from_dict(base())
    project.nodes.insert(2, Node("c", "Concatenate", {}))
    project.edges += [Edge("x", "c", 0), Edge("d", "c", 10**18)]
    assert any("port 1 is not connected" in str(p) for p in validate(project))


@pytest.mark.parametrize("node_id", ["a/b", "/", "a\tb", "x" * 201, "", "  "])
def test_ids_that_cannot_key_weights_are_refused(node_id, tmp_path):
    assert id_problem(node_id) is not None
    with pytest.raises(ProjectFileError, match="id"):
        load(write(tmp_path, with_("nodes.1.id", node_id)))


def test_an_id_with_a_slash_built_in_memory_is_a_problem():
    project = Project.from_dict(base())
    project.nodes[1].id = "a/b"
    project.edges = [Edge("x", "a/b"), Edge("a/b", "y")]
    assert any("'/'" in str(p) for p in validate(project))


@pytest.mark.parametrize("node_id", ["dense_1", "Dense 1", "d.1-x", "层"])
def test_ordinary_ids_are_accepted(node_id):
    assert id_problem(node_id) is None


# -- cycles ------------------------------------------------------------------------------------


def test_only_nodes_on_a_cycle_are_reported_not_those_downstream():
    project = Project(
        nodes=[
            Node("x", "Input", {"shape": [2]}),
            Node("a", "Add"),
            Node("b", "Dense", {"units": 2}),
            Node("after", "Dense", {"units": 2}),
            Node("y", "Output", {"loss": "mean_squared_error"}),
        ],
        edges=[
            Edge("x", "a", 0),
            Edge("b", "a", 1),
            Edge("a", "b", 0),
            Edge("b", "after", 0),
            Edge("after", "y", 0),
        ],
    )
    cyclic = sorted(p.node for p in validate(project) if "cycle" in p.message)
    assert cyclic == ["a", "b"]


# -- messages and the CLI ----------------------------------------------------------------------


def test_shorten_keeps_short_text_and_cuts_long_text():
    assert shorten("abc") == "abc"
    cut = shorten("x" * 1_000_000)
    assert len(cut) < 120 and "1,000,000 characters" in cut


def test_connected_to_cells_are_elided():
    assert connected_text(("a", "b")) == "a, b"
    assert connected_text(tuple(f"n{i}" for i in range(10_000))) == "n0, n1, n2 … and 9,997 more"
    assert connected_text(()) == "-"


@pytest.mark.parametrize(
    "case", ["learning_rate_10e400", "port_10e18", "id_with_slash", "id_1mb", "type_1mb"]
)
@pytest.mark.parametrize("command", ["validate", "summary"])
def test_cli_refuses_hostile_documents_in_one_short_line(case, command, tmp_path, capsys):
    path = write(tmp_path, HOSTILE[case])
    code = main([command, path])
    captured = capsys.readouterr()
    err = captured.err + captured.out  # validate lists problems on stdout
    assert code == 1, err[:300]
    lines = err.strip().splitlines()
    assert lines and all(len(line) <= 600 for line in lines)
    assert "internal error" not in err
    assert "hostile.json" in err or command == "validate"


def test_cli_refuses_a_5000_digit_number(tmp_path, capsys):
    path = tmp_path / "digits.json"
    path.write_text(json.dumps(base())[:-1] + ', "n": ' + "7" * 5000 + "}", encoding="utf-8")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "digits.json" in err and "5,000 digits" in err and len(err) < 400


def test_json_output_is_strict_json_with_null_for_non_finite(capsys):
    _print_json({"loss": math.nan, "history": [1.0, math.inf, -math.inf], "ok": 2})
    out = capsys.readouterr().out

    def refuse(name):
        raise AssertionError(f"{name} in --json output")

    doc = json.loads(out, parse_constant=refuse)
    assert doc == {"loss": None, "history": [1.0, None, None], "ok": 2}


def test_every_sample_still_loads_and_validates():
    from tests.support.generated import SAMPLES

    for path in SAMPLES:
        project = load(path)
        assert validate(copy.deepcopy(project)) == [], path

"""The project document: JSON round trip, atomic save, and validation of bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nodenet.errors import ProjectFileError
from nodenet.graph.project import Edge, Node, Project, analyze, load, save, validate

FIXTURES = Path(__file__).parent / "fixtures" / "models"


def mlp() -> Project:
    return Project(
        "mlp",
        [
            Node("pixels", "Input", {"shape": [784]}, [0, 0]),
            Node("dense_1", "Dense", {"units": 128, "activation": "relu"}, [220, 0]),
            Node("digit", "Output", {"loss": "categorical_crossentropy"}, [440, 0]),
        ],
        [Edge("pixels", "dense_1", 0), Edge("dense_1", "digit", 0)],
    )


def messages(project: Project) -> list[str]:
    return [str(p) for p in validate(project)]


# -- round trip -------------------------------------------------------------------


def test_save_and_load_give_back_the_same_document(tmp_path):
    project = mlp()
    project.data = {"source": {"kind": "builtin", "name": "digits"}}
    path = save(project, tmp_path / "mlp.json")
    again = load(path)
    assert again.to_dict() == project.to_dict()
    assert again.path == path


def test_saving_twice_gives_identical_bytes_with_stable_key_order(tmp_path):
    path = save(mlp(), tmp_path / "a.json")
    first = path.read_bytes()
    save(load(path), path)
    assert path.read_bytes() == first
    doc = json.loads(first)
    assert list(doc)[:3] == ["format", "version", "name"]
    assert list(doc["nodes"][0]) == ["id", "type", "params", "pos"]
    # one node per line: a diff of a changed node touches one line
    assert sum('"type": "Dense"' in line for line in first.decode().splitlines()) == 1


def test_every_fixture_round_trips(tmp_path):
    for path in FIXTURES.glob("*.json"):
        project = load(path)
        out = save(project, tmp_path / path.name)
        assert load(out).to_dict() == project.to_dict()


def test_keys_of_newer_versions_are_kept(tmp_path):
    doc = mlp().to_dict()
    doc["comments"] = ["kept"]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    save(load(path), path)
    assert json.loads(path.read_text())["comments"] == ["kept"]


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = save(mlp(), tmp_path / "p.json")
    before = path.read_bytes()
    changed = mlp()
    changed.name = "changed"

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(ProjectFileError, match="cannot be saved: No space left"):
        save(changed, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"], "temporary file left behind"


# -- unreadable files ---------------------------------------------------------------


def test_a_file_that_is_not_json_gets_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "format": "nodenet-project",\n  "version": 1,,\n}')
    with pytest.raises(ProjectFileError, match=r"bad\.json: not valid JSON: .* line 3, column 16"):
        load(path)


@pytest.mark.parametrize(
    "change,pattern",
    [
        ({"format": "something-else"}, "not a nodenet project"),
        ({"version": 99}, "version 99 was written by a newer nodenet"),
        ({"version": "1"}, "version must be a positive integer"),
        ({"nodes": {}}, "nodes must be a list"),
        ({"nodes": [{"type": "Dense"}]}, r"nodes\[0\]: id must be a non-empty string"),
        ({"nodes": [{"id": "a", "type": "Dense", "pos": [0]}]}, "a: pos must be two finite"),
        ({"edges": [{"from": "a"}]}, r"edges\[0\]: from and to must be node ids"),
        ({"edges": [{"from": "a", "to": "b", "port": -1}]}, "port must be a non-negative"),
    ],
)
def test_structurally_broken_files_are_refused_with_the_field(tmp_path, change, pattern):
    doc = mlp().to_dict()
    doc.update(change)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectFileError, match=pattern):
        load(path)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ProjectFileError, match="cannot be read"):
        load(tmp_path / "nope.json")


# -- validation: every problem at once, each naming its node ---------------------------


def test_a_valid_project_has_no_problems():
    assert validate(mlp()) == []


def test_unknown_block_type():
    p = mlp()
    p.nodes[1].type = "Dense3D"
    assert "dense_1: unknown block type 'Dense3D'" in messages(p)[0]


def test_unknown_parameter():
    p = mlp()
    p.nodes[1].params["unitz"] = 3
    assert any(m.startswith("dense_1: Dense has no parameter 'unitz'") for m in messages(p))


def test_ill_typed_parameter():
    p = mlp()
    p.nodes[1].params["units"] = "many"
    assert "dense_1: units must be an integer >= 1 (got 'many')" in messages(p)


def test_out_of_range_parameter():
    p = mlp()
    p.nodes[1].params["units"] = 0
    assert "dense_1: units must be an integer >= 1 (got 0)" in messages(p)


def test_bad_choice_lists_the_choices():
    p = mlp()
    p.nodes[1].params["activation"] = "relu7"
    (msg,) = messages(p)
    assert msg.startswith("dense_1: activation must be one of") and "'relu7'" in msg


def test_duplicate_id():
    p = mlp()
    p.nodes.append(Node("dense_1", "Dense", {"units": 2}))
    assert "dense_1: the id is used by more than one node" in messages(p)


def test_edge_to_a_missing_node():
    p = mlp()
    p.edges.append(Edge("dense_1", "ghost", 0))
    assert "dense_1: edge to a missing node 'ghost'" in messages(p)


def test_edge_to_a_missing_port():
    p = mlp()
    p.edges.append(Edge("pixels", "dense_1", 1))
    assert "dense_1: edge from 'pixels' to input port 1, but Dense has 1 input port(s)" in messages(
        p
    )


def test_two_edges_into_one_port():
    p = mlp()
    p.nodes.append(Node("other", "Input", {"shape": [784]}))
    p.edges.append(Edge("other", "dense_1", 0))
    assert "dense_1: input port 0 is fed by both 'pixels' and 'other'" in messages(p)


def test_cycle_names_the_nodes_on_it():
    p = mlp()
    p.nodes.insert(2, Node("dense_2", "Dense", {"units": 128}))
    p.edges = [
        Edge("pixels", "dense_1"),
        Edge("dense_1", "dense_2"),
        Edge("dense_2", "dense_1", 0),
        Edge("dense_2", "digit"),
    ]
    msgs = messages(p)
    assert "dense_1: is part of a cycle" in msgs
    assert "dense_2: is part of a cycle" in msgs
    assert not any(m.startswith("digit: is part") for m in msgs), "downstream is not on the cycle"


def test_unconnected_input_port():
    p = mlp()
    p.edges = [e for e in p.edges if e.dst != "dense_1"]
    msgs = messages(p)
    assert "dense_1: input port 0 is not connected" in msgs


def test_node_that_reaches_no_output():
    p = mlp()
    p.nodes.append(Node("dangling", "Dense", {"units": 4}))
    p.edges.append(Edge("dense_1", "dangling"))
    assert "dangling: does not reach any Output (its result is unused)" in messages(p)


def test_graph_without_input_or_output():
    p = Project("empty", [Node("d", "Dense", {"units": 3})], [])
    msgs = messages(p)
    assert "nodes: the graph has no Input block" in msgs
    assert "nodes: the graph has no Output block" in msgs


def test_every_problem_is_reported_at_once():
    p = mlp()
    p.nodes[1].params["units"] = -1
    p.nodes.append(Node("z", "Nope", {}))
    p.edges.append(Edge("x", "y"))
    msgs = messages(p)
    assert len(msgs) >= 3
    assert any(m.startswith("dense_1:") for m in msgs)
    assert any(m.startswith("z: unknown block type") for m in msgs)
    assert any("missing nodes" in m for m in msgs)


def test_shape_incompatibility_names_node_and_shapes():
    p = Project(
        "concat",
        [
            Node("a", "Input", {"shape": [128]}),
            Node("b", "Input", {"shape": [28, 64]}),
            Node("concat_1", "Concatenate", {"axis": -1}),
            Node("y", "Output", {}),
        ],
        [Edge("a", "concat_1", 0), Edge("b", "concat_1", 1), Edge("concat_1", "y")],
    )
    assert messages(p) == ["concat_1: cannot concatenate (None, 128) and (None, 28, 64) on axis -1"]


def test_shapes_are_inferred_for_the_valid_part_of_a_broken_graph():
    p = mlp()
    p.nodes.append(Node("dangling", "Dense", {"units": 4}))
    p.edges.append(Edge("dense_1", "dangling"))
    analysis = analyze(p)
    assert analysis.shapes["dense_1"] == (128,)
    assert analysis.shapes["dangling"] == (4,)
    assert analysis.params["dense_1"] == (784 * 128 + 128, 0)


def test_unique_ids():
    p = mlp()
    assert p.unique_id("dense") == "dense"
    assert p.unique_id("dense_1") == "dense_2"
    assert p.unique_id("pixels") == "pixels_1"


def test_saved_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = save(mlp(), tmp_path / "p.json")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_edge_index_agrees_with_incoming_and_outgoing():
    """The O(edges) index analyze and summary use gives what the per-node queries give."""
    project = Project(
        nodes=[Node(i, "Dense", {"units": 2}) for i in "abcd"],
        edges=[Edge("a", "c", 1), Edge("b", "c", 0), Edge("a", "d", 0), Edge("c", "d", 1)],
    )
    index = project.edge_index()
    for node in [*project.nodes, Node("missing", "Dense")]:
        assert index.incoming(node.id) == project.incoming(node.id)
        assert index.outgoing(node.id) == project.outgoing(node.id)
    project.edges[0].port = 5  # the GUI edits in place: a new index sees it, the old does not
    assert project.edge_index().incoming("c") == project.incoming("c")

"""Groups: the file format, flattening, validation, summary, weights and Repeat ×N."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from nodenet.cli import main
from nodenet.engine.training import fit
from nodenet.errors import ProjectFileError, ValidationError
from nodenet.graph.group_ops import GroupError, group_nodes, repeat, ungroup
from nodenet.graph.groups import GroupDef, GroupInput, GroupOutput, flatten, instance
from nodenet.graph.project import Edge, Node, Project, analyze, load, save, validate
from nodenet.graph.summary import summarize
from nodenet.runner import build_model


def res_block(units: int = 4) -> GroupDef:
    """Dense -> BatchNormalization -> Dense, plus the block's input: a residual block."""
    return GroupDef(
        nodes=[
            Node("d1", "Dense", {"units": units, "activation": "relu"}),
            Node("bn", "BatchNormalization", {}),
            Node("d2", "Dense", {"units": units}),
            Node("add", "Add", {}),
        ],
        edges=[Edge("d1", "bn"), Edge("bn", "d2"), Edge("d2", "add", 0)],
        inputs=[GroupInput("x", [("d1", 0), ("add", 1)])],
        outputs=[GroupOutput("y", "add")],
    )


def grouped(units: int = 4) -> Project:
    """Input -> b1 -> b2 -> Dense -> Output, b1 and b2 two instances of ``res``."""
    return Project(
        "grouped",
        nodes=[
            Node("x", "Input", {"shape": [units]}),
            instance("b1", "res"),
            instance("b2", "res"),
            Node("head", "Dense", {"units": 2}),
            Node("out", "Output", {"loss": "mean_squared_error"}),
        ],
        edges=[Edge("x", "b1"), Edge("b1", "b2"), Edge("b2", "head"), Edge("head", "out")],
        groups={"res": res_block(units)},
    )


def hand_flattened(units: int = 4) -> Project:
    """:func:`grouped` written out by hand, inner ids ``b1_d1``, ...."""
    nodes, edges = [Node("x", "Input", {"shape": [units]})], []
    source = "x"
    for b in ("b1", "b2"):
        for n in res_block(units).nodes:
            nodes.append(Node(f"{b}_{n.id}", n.type, dict(n.params)))
        edges += [
            Edge(source, f"{b}_d1"),
            Edge(f"{b}_d1", f"{b}_bn"),
            Edge(f"{b}_bn", f"{b}_d2"),
            Edge(f"{b}_d2", f"{b}_add", 0),
            Edge(source, f"{b}_add", 1),
        ]
        source = f"{b}_add"
    nodes += [
        Node("head", "Dense", {"units": 2}),
        Node("out", "Output", {"loss": "mean_squared_error"}),
    ]
    edges += [Edge(source, "head"), Edge("head", "out")]
    return Project("flat", nodes, edges)


def messages(project: Project) -> list[str]:
    return [str(p) for p in validate(project)]


# -- format ------------------------------------------------------------------------------


def test_groups_round_trip_through_a_version_3_file(tmp_path):
    project = grouped()
    path = save(project, tmp_path / "g.json")
    doc = json.loads(path.read_text())
    assert doc["version"] == 3
    assert doc["groups"]["res"]["inputs"] == [
        {"name": "x", "to": [{"node": "d1", "port": 0}, {"node": "add", "port": 1}]}
    ]
    assert doc["groups"]["res"]["outputs"] == [{"name": "y", "from": "add"}]
    assert doc["nodes"][1] == {
        "id": "b1",
        "type": "Group",
        "params": {"group": "res"},
        "pos": [0, 0],
    }
    again = load(path)
    assert again.to_dict() == project.to_dict()
    save(again, tmp_path / "h.json")
    assert (tmp_path / "h.json").read_text() == path.read_text()
    assert '\n        {"id": "d1", "type": "Dense"' in path.read_text()  # a block per line


def test_a_project_without_groups_still_saves_as_version_2(tmp_path):
    doc = json.loads(save(hand_flattened(), tmp_path / "f.json").read_text())
    assert doc["version"] == 2 and "groups" not in doc


def test_a_version_2_file_loads_unchanged():
    doc = hand_flattened().to_dict()
    assert doc["version"] == 2
    project = Project.from_dict(doc)
    assert project.groups == {} and project.to_dict() == doc


@pytest.mark.parametrize(
    "groups, expected",
    [
        ([], "groups must be an object"),
        ({"res": []}, "groups.res: a group definition must be an object"),
        ({"a/b": {}}, "contains '/'"),
        ({"res": {"nodes": {}}}, "groups.res: nodes must be a list"),
        ({"res": {"nodes": [{"id": "a/b", "type": "Dense"}]}}, "groups.res: nodes[0]: id"),
        ({"res": {"edges": [{"from": 1}]}}, "groups.res: edges[0]"),
        ({"res": {"inputs": [{"to": [{"node": "d", "port": -1}]}]}}, "port must be a port"),
        ({"res": {"outputs": [{"from": 3}]}}, "an output must be an object"),
    ],
)
def test_malformed_groups_are_refused_on_load_naming_where(groups, expected):
    doc = {**grouped().to_dict(), "groups": groups}
    with pytest.raises(ProjectFileError) as err:
        Project.from_dict(doc, "g.json")
    assert expected in str(err.value) and str(err.value).startswith("g.json: ")


# -- flattening and analysis ----------------------------------------------------------------


def test_the_engine_sees_a_group_as_its_inside():
    analysis = analyze(grouped())
    assert analysis.problems == []
    # the project's own nodes: what the canvas and the editor's summary show
    assert analysis.order == ["x", "b1", "b2", "head", "out"]
    assert analysis.shapes["b1"] == analysis.shapes["b2"] == (4,)
    # an instance's counts are its inside's totals: two Dense (20 each), BN 8 + 8
    assert analysis.params["b1"] == (48, 8)
    assert sum(map(sum, analysis.params.values())) == 122  # nothing counted twice
    assert analysis.inside.order == [
        "x",
        *(f"{b}/{n}" for b in ("b1", "b2") for n in ("d1", "bn", "d2", "add")),
        "head",
        "out",
    ]
    blueprint = analysis.blueprint(grouped())
    assert blueprint.sources["b1/add"] == (("b1/d2", 0), ("x", 0))
    assert blueprint.sources["b2/d1"] == (("b1/add", 0),)
    assert "b1" not in blueprint.shapes


def test_a_frozen_instance_freezes_its_inside():
    project = grouped()
    project.nodes[1].trainable = False
    analysis = analyze(project)
    assert analysis.params["b1"] == (0, 56) and analysis.params["b2"] == (48, 8)
    assert {"b1/d1", "b1/bn", "b1/d2", "b1/add"} <= analysis.blueprint(project).frozen


def test_nested_groups_flatten_with_a_path_per_level():
    project = grouped()
    project.groups["pair"] = GroupDef(
        nodes=[instance("first", "res"), instance("second", "res")],
        edges=[Edge("first", "second")],
        inputs=[GroupInput("x", [("first", 0)])],
        outputs=[GroupOutput("y", "second")],
    )
    project.nodes[1] = instance("b1", "pair")
    analysis = analyze(project)
    assert analysis.problems == []
    assert "b1/first/d1" in analysis.inside.order and "b1/second/add" in analysis.inside.order
    assert analysis.params["b1"] == (96, 16) and analysis.inside.params["b1/first"] == (48, 8)
    assert analysis.blueprint(project).sources["b1/first/add"] == (("b1/first/d2", 0), ("x", 0))


# -- numerics -----------------------------------------------------------------------------


def _renamed(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``b1/d1/kernel`` -> ``b1_d1/kernel``: the grouped model's keys in the flat one's."""
    out = {}
    for key, value in weights.items():
        parts = key.split("/")
        node = "_".join(parts[:2]) if parts[0] in ("b1", "b2") else parts[0]
        name = parts[2] if parts[0] in ("b1", "b2") else "/".join(parts[1:])
        out[f"{node}/{name}"] = value
    return out


def test_an_instance_used_twice_trains_and_predicts_as_the_flattened_graph():
    rng = np.random.default_rng(0)
    x = {"x": rng.normal(size=(64, 4))}
    y = {"out": rng.normal(size=(64, 2))}
    group_model = build_model(grouped(), dtype=np.float64, seed=3)
    flat_model = build_model(hand_flattened(), dtype=np.float64, seed=3)
    weights = group_model.get_weights()
    assert "b1/d1/kernel" in weights and "b2/bn/moving_mean" in weights
    assert not np.array_equal(weights["b1/d1/kernel"], weights["b2/d1/kernel"])  # its own
    flat_model.set_weights(_renamed(weights))
    settings = {"epochs": 3, "batch_size": 16, "optimizer": {"name": "adam"}, "seed": 5}
    first = fit(group_model, x, y, **settings)
    second = fit(flat_model, x, y, **settings)
    assert first.series("loss") == pytest.approx(second.series("loss"), abs=1e-12)
    trained = _renamed(group_model.get_weights())
    for key, value in flat_model.get_weights().items():
        np.testing.assert_allclose(trained[key], value, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        group_model.predict(x)["out"], flat_model.predict(x)["out"], rtol=0, atol=1e-12
    )


def test_weights_files_key_inner_weights_by_instance_then_block(tmp_path):
    model = build_model(grouped(), seed=1)
    path = model.save_weights(tmp_path / "g.weights.npz")
    with np.load(path) as arrays:
        keys = set(arrays.files)
    assert {"b1/d1/kernel", "b1/bn/gamma", "b2/d2/bias", "head/kernel"} <= keys
    other = build_model(grouped(), seed=2)
    with np.load(path) as arrays:
        other.set_weights(dict(arrays))
    for key, value in model.get_weights().items():
        np.testing.assert_array_equal(other.get_weights()[key], value)


# -- validation --------------------------------------------------------------------------


def test_a_problem_inside_names_the_instance_and_the_inner_block():
    project = grouped()
    project.groups["res"].nodes[2].params["units"] = 3  # the Add then sees (3,) and (4,)
    analysis = analyze(project)
    assert any(p.node == "b1/add" for p in analysis.problems)
    assert analysis.problems_for("b1") and all(
        p.node.startswith("b1/") for p in analysis.problems_for("b1")
    )
    with pytest.raises(ValidationError, match="b1/add"):
        analysis.blueprint(project)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda p: p.nodes.__setitem__(1, instance("b1", "nope")), "b1: unknown group 'nope'"),
        (
            lambda p: p.nodes[1].params.update(units=3),
            "b1: a Group block takes only the parameter 'group'",
        ),
        (
            lambda p: p.nodes[1].params.update(group=["res"]),
            "b1: a Group block must name its definition",
        ),
        (lambda p: p.edges.append(Edge("x", "b2", 1)), "b2: has no input port 1"),
        (lambda p: p.edges.append(Edge("b1", "head", 1, 2)), "b1: has no output 2"),
        (
            lambda p: p.edges.remove(p.edges[0]),
            "b1: group input port 0 is not connected",
        ),
        (
            lambda p: p.groups["res"].nodes.append(instance("again", "res")),
            "groups.res: contains itself (res -> res)",
        ),
        (
            lambda p: p.groups["res"].inputs[0].to.append(("ghost", 0)),
            "groups.res: input 0 feeds 'ghost', which the group does not hold",
        ),
        (
            lambda p: p.groups["res"].nodes.append(Node("o", "Output", {})),
            "groups.res: holds Output block 'o'",
        ),
        (lambda p: p.groups["res"].outputs.clear(), "groups.res: has no outputs"),
    ],
)
def test_group_mistakes_are_refused_with_clear_messages(edit, expected):
    project = grouped()
    edit(project)
    found = messages(project)
    assert any(m.startswith(expected) for m in found), found


def test_mutual_recursion_is_refused_at_every_instance():
    project = grouped()
    project.groups["a"] = GroupDef(
        [instance("inner", "b")], [], [GroupInput("x", [("inner", 0)])], [GroupOutput("y", "inner")]
    )
    project.groups["b"] = GroupDef(
        [instance("inner", "a")], [], [GroupInput("x", [("inner", 0)])], [GroupOutput("y", "inner")]
    )
    project.nodes[1] = instance("b1", "a")
    found = messages(project)
    assert "groups.a: contains itself (a -> b -> a)" in found
    assert any(m.startswith("b1: its group 'a' contains itself") for m in found)


def test_an_exponential_nesting_is_refused_before_anything_is_copied():
    groups = {"g0": res_block()}
    for level in range(1, 25):  # each level holds four of the one below: 4**24 blocks
        inner = [instance(f"i{k}", f"g{level - 1}") for k in range(4)]
        groups[f"g{level}"] = GroupDef(
            inner,
            [Edge(f"i{k}", f"i{k + 1}") for k in range(3)],
            [GroupInput("x", [("i0", 0)])],
            [GroupOutput("y", "i3")],
        )
    project = grouped()
    project.groups = groups
    project.nodes[1] = instance("b1", "g24")
    found = messages(project)
    assert any("more than 100,000 blocks once flattened" in m for m in found), found[:3]
    doc = json.loads(project.to_json())
    loaded = Project.from_dict(doc)  # loading never flattens
    assert set(loaded.groups) == set(groups)


def test_a_thousand_blocks_in_fifty_instances_analyze():
    definition = GroupDef(
        nodes=[Node(f"d{i}", "Dense", {"units": 2}) for i in range(20)],
        edges=[Edge(f"d{i}", f"d{i + 1}") for i in range(19)],
        inputs=[GroupInput("x", [("d0", 0)])],
        outputs=[GroupOutput("y", "d19")],
    )
    project = Project(
        "big",
        nodes=[
            Node("x", "Input", {"shape": [2]}),
            Node("out", "Output", {"loss": "mean_squared_error"}),
        ],
        groups={"chain": definition},
    )
    project, ids = repeat(project, "chain", 50)
    project.edges += [Edge("x", ids[0]), Edge(ids[-1], "out")]
    analysis = analyze(project)
    assert analysis.problems == [] and len(analysis.order) == 52
    assert len(analysis.inside.order) == 1002
    assert flatten(project).project.nodes[-1].id == "chain_50/d19"


# -- summary -----------------------------------------------------------------------------


def test_the_summary_nests_each_instance_like_a_keras_model(tmp_path, capsys):
    summary = summarize(grouped())
    assert [r.id for r in summary.rows] == ["x", "b1", "b2", "head", "out"]
    b1 = summary.rows[1]
    assert (b1.type, b1.group, b1.params, b1.connected_to) == ("Group", "res", 56, ("x",))
    assert [(r.id, r.connected_to) for r in b1.children] == [
        ("d1", ("x",)),
        ("bn", ("d1",)),
        ("d2", ("bn",)),
        ("add", ("d2", "x")),
    ]
    assert summary.total == 2 * 56 + 10
    text = summary.to_text()
    assert "b1 (res)" in text and "d1 (Dense)" not in text
    assert "  d1 (Dense)" in summary.to_text(expand_nested=True)
    path = save(grouped(), tmp_path / "g.json")
    assert main(["summary", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = doc["layers"][1]
    assert row["group"] == "res" and [r["id"] for r in row["layers"]] == ["d1", "bn", "d2", "add"]
    assert doc["total_params"] == 122
    assert main(["summary", str(path), "--expand-nested"]) == 0
    assert "  add (Add)" in capsys.readouterr().out


# -- Repeat ×N ---------------------------------------------------------------------------


def test_repeat_chains_instances_after_a_block_and_the_result_trains():
    project = grouped()
    before = copy.deepcopy(project.to_dict())
    repeated, ids = repeat(project, "res", 3, after="b2")
    assert project.to_dict() == before  # a pure function
    assert ids == ["res_1", "res_2", "res_3"]
    edges = {(e.src, e.dst) for e in repeated.edges}
    assert {("b2", "res_1"), ("res_1", "res_2"), ("res_2", "res_3"), ("res_3", "head")} <= edges
    assert ("b2", "head") not in edges
    analysis = analyze(repeated)
    assert analysis.problems == [] and analysis.params["res_2"] == (48, 8)
    model = build_model(repeated, seed=0)
    assert len({model.get_weights()[f"{i}/d1/kernel"].tobytes() for i in ids}) == 3


def test_repeat_refuses_what_it_cannot_stack():
    project = grouped()
    project.groups["two"] = GroupDef(
        [Node("a", "Dense", {"units": 1})],
        [],
        [GroupInput("x", [("a", 0)])],
        [GroupOutput("y", "a"), GroupOutput("z", "a")],
    )
    with pytest.raises(GroupError, match=r"'two' has 1 input\(s\) and 2 output"):
        repeat(project, "two", 2)
    with pytest.raises(GroupError, match="unknown group 'nope'"):
        repeat(project, "nope", 2)
    with pytest.raises(GroupError, match="times must be"):
        repeat(project, "res", 0)
    with pytest.raises(GroupError, match="no such block"):
        repeat(project, "res", 2, after="ghost")


# -- Group and Ungroup ---------------------------------------------------------------------

BLOCK = ["b2_d1", "b2_bn", "b2_d2", "b2_add"]


def test_grouping_a_selection_makes_a_definition_and_an_instance_wired_as_it_was():
    project = hand_flattened()
    grouped_project, new_id = group_nodes(project, BLOCK, "res")
    assert new_id == "res"
    assert [n.id for n in grouped_project.nodes] == [
        "x",
        *(f"b1_{n}" for n in "d1 bn d2 add".split()),
        "res",
        "head",
        "out",
    ]
    definition = grouped_project.groups["res"]
    assert [(p.name, p.to) for p in definition.inputs] == [
        ("input_0", [("b2_d1", 0), ("b2_add", 1)])
    ]
    assert [(p.node, p.port) for p in definition.outputs] == [("b2_add", 0)]
    edges = {(e.src, e.dst, e.port) for e in grouped_project.edges}
    assert {("b1_add", "res", 0), ("res", "head", 0)} <= edges
    before, after = analyze(project), analyze(grouped_project)
    assert after.problems == [] and after.params["res"] == (48, 8)
    assert sum(map(sum, before.params.values())) == sum(sum(after.params[i]) for i in after.order)
    back, ids = ungroup(grouped_project, "res")
    assert ids == BLOCK
    assert [n.to_dict() for n in back.nodes] == [n.to_dict() for n in project.nodes]
    assert sorted(tuple(e.to_dict().items()) for e in back.edges) == sorted(
        tuple(e.to_dict().items()) for e in project.edges
    )


def test_grouping_refuses_what_would_not_be_a_group():
    project = hand_flattened()
    with pytest.raises(GroupError, match="x: an Input block cannot go into a group"):
        group_nodes(project, ["x", "b1_d1"], "g")
    with pytest.raises(GroupError, match="comes back into it"):
        group_nodes(project, ["b1_d1", "b1_add"], "g")
    with pytest.raises(GroupError, match="no block 'ghost'"):
        group_nodes(project, ["ghost"], "g")
    with pytest.raises(GroupError, match="exists already"):
        group_nodes(grouped(), ["head"], "res")
    with pytest.raises(GroupError, match="is not a group block"):
        ungroup(project, "head")


# -- exporters ---------------------------------------------------------------------------


def test_groups_nested_too_deep_are_refused_whatever_their_order():
    project = grouped()
    project.groups = {"g0": res_block()}
    for level in range(1, 40):
        project.groups[f"g{level}"] = GroupDef(
            [instance("i", f"g{level - 1}")],
            [],
            [GroupInput("x", [("i", 0)])],
            [GroupOutput("y", "i")],
        )
    project.groups = dict(reversed(project.groups.items()))  # the deepest first
    project.nodes[1] = instance("b1", "g39")
    project.nodes[2] = instance("b2", "g20")
    project.edges[1] = Edge("x", "b2")
    found = messages(project)
    assert "groups.g32: nests groups more than 32 deep" in found
    assert (
        "b1: its group 'g39' holds 'i', a 'g38' group, which leads to one that nests groups "
        "more than 32 deep" in found
    )
    assert not any(m.startswith("b2") for m in found)
    assert analyze(project).inside.params["b2/i/i/i"] == (48, 8)


def test_a_long_chain_of_definitions_needs_no_recursion():
    groups = {"g0": res_block()}
    for level in range(1, 3000):  # each holds the one before: a cycle closes at the end
        groups[f"g{level}"] = GroupDef(
            [instance("i", f"g{level - 1}")],
            [],
            [GroupInput("x", [("i", 0)])],
            [GroupOutput("y", "i")],
        )
    groups["g0"] = GroupDef(
        [instance("i", "g2999")], [], [GroupInput("x", [("i", 0)])], [GroupOutput("y", "i")]
    )
    project = grouped()
    project.groups = groups
    found = messages(project)
    assert any(m.startswith("groups.g0: contains itself (g0 -> g2999 -> g2998") for m in found)

"""The one connection rule (editor and validation), topological order, paths."""

from __future__ import annotations

import itertools

import pytest

from nodenet.graph.project import Edge, Node, Project, validate
from nodenet.graph.topology import (
    Wiring,
    can_connect,
    connection_problems,
    path_between,
    reachable,
    topological_order,
)

MSE = {"loss": "mean_squared_error"}


def graph() -> Project:
    """x -> a -> b -> y; a merge ``sum`` fed by a on port 0, feeding ``diff`` on port 0."""
    nodes = [
        Node("x", "Input", {"shape": [4]}),
        Node("a", "Dense", {"units": 4}),
        Node("b", "Dense", {"units": 4}),
        Node("sum", "Add"),
        Node("diff", "Subtract"),
        Node("y", "Output", MSE),
        Node("odd", "NoSuchBlock"),
    ]
    edges = [Edge("x", "a"), Edge("a", "b"), Edge("b", "y"), Edge("a", "sum"), Edge("sum", "diff")]
    return Project("g", nodes, edges)


def editing(project: Project, outputs: dict[str, int] | None = None) -> Wiring:
    counts = outputs or {}
    wiring = Wiring.of_project(project)
    wiring.n_outputs = lambda node_id: counts.get(node_id, 1)
    return wiring


@pytest.mark.parametrize(
    ("src", "dst", "port", "reason"),
    [
        ("ghost", "b", 0, "there is no block named 'ghost'"),
        ("a", "ghost", 0, "there is no block named 'ghost'"),
        ("b", "b", 0, "b cannot feed itself"),
        ("y", "b", 0, "y is an Output: it ends the graph and cannot feed b"),
        ("a", "odd", 0, "odd has an unknown block type 'NoSuchBlock'"),
        ("a", "x", 0, "x is an Input: it takes no input"),
        ("x", "b", None, "every input port of b is already connected"),
        ("x", "b", 0, "b already has an input (a); disconnect it first"),
        ("x", "b", 1, "b (Dense) has no input port 1"),
        ("x", "b", -1, "-1 is not an input port"),
        ("x", "sum", 0, "input port 0 of sum is already fed by a"),
        ("diff", "sum", None, "diff → sum would make a cycle through sum → diff"),
    ],
)
def test_the_editor_is_told_why_an_edge_is_refused(src, dst, port, reason):
    assert can_connect(editing(graph()), src, dst, port) == reason


def test_a_free_port_is_chosen_and_a_merge_fills_in_order():
    wiring = editing(graph())
    assert connection_problems(wiring, "x", "sum", None) == ([], 1)
    assert connection_problems(wiring, "x", "sum", 7) == ([], 1)  # past the free port
    assert connection_problems(wiring, "x", "diff", None) == ([], 1)
    assert can_connect(wiring, "b", "sum", None) is None


def test_the_output_port_must_exist():
    project = graph()
    assert can_connect(editing(project, {"a": 2}), "a", "diff", 1, 1) is None
    assert can_connect(editing(project), "a", "diff", 1, 1) == "a (Dense) has no output 1"
    assert can_connect(editing(project), "a", "diff", 1, -1) == "-1 is not an output port"
    # an unknown output count (invalid parameters) is the node's own problem
    assert can_connect(Wiring.of_project(project), "a", "diff", 1, 3) is None


def test_a_file_keeps_its_ports_and_gets_every_problem_of_an_edge():
    wiring = Wiring({"x": "Input", "o": "Output", "m": "Add", "d": "Dense"})
    refusals, port = connection_problems(wiring, "x", "m", 5)
    assert (refusals, port) == ([], 5)  # a gap is reported with the node's ports
    refusals, _ = connection_problems(wiring, "o", "d", 3)
    assert [r.rule for r in refusals] == ["from-output", "no-port"]
    assert [r.problem for r in refusals] == [
        "an Output ends the graph; it cannot feed 'd' (connect from the block before it)",
        "edge from 'o' to input port 3, but Dense has 1 input port(s)",
    ]
    assert [r.node for r in refusals] == ["o", "d"]
    wiring.add(Edge("x", "d"))
    (taken,), _ = connection_problems(wiring, "m", "d", 0)
    assert (taken.problem, taken.node) == ("input port 0 is fed by both 'x' and 'm'", "d")
    (missing,), _ = connection_problems(wiring, "p", "q", 0)
    assert (missing.problem, missing.field) == ("edge between missing nodes (p -> q)", "edges")


def test_validation_reports_what_the_rule_finds():
    project = graph()
    project.nodes.pop()  # odd
    project.edges += [Edge("y", "diff", 0), Edge("a", "b", 0), Edge("b", "y", 0, 1)]
    problems = [str(p) for p in validate(project)]
    assert (
        "y: an Output ends the graph; it cannot feed 'diff' (connect from the block before it)"
        in problems
    )
    assert "b: input port 0 is fed by both 'a' and 'a'" in problems
    assert "y: edge from output 1 of 'b', but Dense has 1 output(s)" in problems


def test_topological_order_breaks_ties_by_file_order_and_finds_cycles():
    ids = ["c", "a", "b", "d", "e", "f"]
    edges = [("a", "b"), ("c", "b"), ("d", "e"), ("e", "d"), ("e", "f"), ("f", "f"), ("a", "zz")]
    order, cyclic = topological_order(ids, edges)
    assert order == ["c", "a", "b"]  # d, e on a cycle; f downstream of it
    assert cyclic == ["d", "e"]
    assert topological_order(["b", "a", "b"], [("a", "b")]) == (["a", "b"], [])


def test_path_between_and_reachable():
    project = graph()
    assert path_between(project.edges, "x", "y") == ["x", "a", "b", "y"]
    assert path_between(project.edges, "y", "x") == []
    assert path_between(project.edges, "a", "a") == ["a"]
    parents = {"y": ["b"], "b": ["a"], "a": ["x"]}
    assert reachable(["y"], parents) == {"y", "b", "a", "x"}
    assert reachable([], parents) == set()


def test_order_and_paths_are_linear_on_a_long_chain():
    n = 50_000  # a recursive or quadratic walk would not finish (or overflow the stack)
    ids = [f"n{i}" for i in range(n)]
    edges = [Edge(a, b) for a, b in itertools.pairwise(ids)]
    order, cyclic = topological_order(reversed(ids), ((e.src, e.dst) for e in edges))
    assert order == ids and cyclic == []
    assert len(path_between(edges, ids[0], ids[-1])) == n


def test_a_block_with_a_few_optional_inputs_takes_no_more_than_it_has():
    """An LSTM takes its sequence and at most the states h and c; attention at most a
    query, a value and a key."""
    nodes = [Node(i, "Input", {"shape": [3, 4]}) for i in ("x", "h", "c", "d")]
    nodes += [Node("lstm", "LSTM", {"units": 4}), Node("mha", "MultiHeadAttention")]
    edges = [Edge("x", "lstm"), Edge("h", "lstm", 1), Edge("c", "lstm", 2)]
    edges += [Edge("x", "mha"), Edge("h", "mha", 1), Edge("c", "mha", 2)]
    project = Project("g", nodes, edges)
    wiring = editing(project)
    for dst in ("lstm", "mha"):
        assert (
            can_connect(wiring, "d", dst, None) == f"every input port of {dst} is already connected"
        )
    assert can_connect(wiring, "d", "lstm", 3) == "every input port of lstm is already connected"
    file_edges = [*edges, Edge("d", "mha", 3)]
    problems, _ = connection_problems(
        Wiring.of_project(Project("g", nodes, file_edges)), "d", "mha", 3
    )
    assert any("takes at most 3 inputs" in p.problem for p in problems)

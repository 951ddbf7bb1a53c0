"""Edges from a named output: validation, shapes by output, the blueprint, the editor.

No catalog block has two outputs yet; the test-only ``TestSplit`` (tests/support/split_block.py) has
``pieces`` of them.
"""

from __future__ import annotations

import pytest

from nodenet.errors import NodenetError
from nodenet.graph.project import Edge, Node, Project, analyze
from nodenet.ui.document import Document

MSE = {"loss": "mean_squared_error"}


def split_graph(pieces: int = 2, port: int = 1) -> Project:
    """x (6,) -> s (TestSplit) -> output ``port`` -> d (Dense 1) -> y."""
    nodes = [
        Node("x", "Input", {"shape": [6]}),
        Node("s", "TestSplit", {"pieces": pieces}),
        Node("d", "Dense", {"units": 1}),
        Node("y", "Output", MSE),
    ]
    edges = [Edge("x", "s"), Edge("s", "d", 0, port), Edge("d", "y")]
    return Project("split", nodes, edges)


def test_shapes_are_inferred_per_output(split_block):
    analysis = analyze(split_graph(pieces=3, port=2))
    assert analysis.problems == []
    assert analysis.shapes["s"] == (2,)  # output 0
    assert analysis.output_shapes["s"] == ((2,), (2,), (2,))
    assert analysis.shape_of("s", 2) == (2,) and analysis.shape_of("s", 3) is None
    assert analysis.params["d"] == (3, 0)  # Dense(1) on 2 features
    project = split_graph(pieces=3, port=2)
    blueprint = analysis.blueprint(project)
    assert blueprint.sources["d"] == (("s", 2),)
    assert blueprint.sources["s"] == (("x", 0),)
    assert blueprint.output_shapes == {"s": ((2,), (2,), (2,))}


def test_an_edge_from_a_missing_output_is_a_problem(split_block):
    problems = [str(p) for p in analyze(split_graph(pieces=2, port=2)).problems]
    assert problems == ["d: edge from output 2 of 's', but TestSplit has 2 output(s)"]
    problems = [str(p) for p in analyze(split_graph(pieces=1, port=1)).problems]
    assert problems == ["d: edge from output 1 of 's', but TestSplit has 1 output(s)"]


def test_the_shape_of_the_named_output_reaches_its_consumer(split_block):
    project = split_graph(pieces=2, port=1)
    project.nodes[0].params["shape"] = [4, 6]
    analysis = analyze(project)
    assert analysis.problems == []
    assert analysis.shape_of("s", 1) == (4, 3)
    assert analysis.shapes["d"] == (4, 1)
    assert analysis.input_shapes(project, "d") == [(4, 3)]


def test_the_editor_connects_from_an_output_and_keeps_it_through_undo_and_paste(split_block):
    project = split_graph(pieces=3, port=1)
    project.nodes.append(Node("e", "Dense", {"units": 1}))
    doc = Document(project)
    assert doc.check_connection("s", "e", None, 7) == "s (TestSplit) has no output 7"
    assert doc.connect("s", "e", None, 2) is None
    assert doc.project.edges[-1] == Edge("s", "e", 0, 2)
    assert doc.analysis.input_shapes(doc.project, "e") == [(2,)]

    fragment = doc.copy(["s", "d", "e"])
    assert {"from": "s", "from_port": 1, "to": "d", "port": 0} in fragment["edges"]
    new_ids = doc.paste(fragment)
    renamed = dict(zip(["s", "d", "e"], new_ids, strict=True))
    pasted = [e for e in doc.project.edges if e.src == renamed["s"]]
    assert sorted((e.dst, e.src_port) for e in pasted) == [(renamed["d"], 1), (renamed["e"], 2)]

    before = doc.project.to_json()
    doc.remove_nodes(["s"])
    assert all(e.src != "s" for e in doc.project.edges)
    doc.undo()
    assert doc.project.to_json() == before
    assert Edge("s", "d", 0, 1) in doc.project.edges


def test_a_version_1_fragment_pastes(split_block):
    doc = Document(split_graph())
    fragment = {"format": "nodenet-fragment", "nodes": [doc.project.nodes[2].to_dict()]}
    assert doc.paste(fragment) == ["d_1"]
    fragment["version"] = 99
    with pytest.raises(NodenetError, match="version 99 was written by a newer nodenet"):
        doc.paste(fragment)


def test_the_summary_names_the_output_an_edge_reads(split_block):
    from nodenet.graph.summary import summarize

    rows = {r.id: r for r in summarize(split_graph(pieces=3, port=2)).rows}
    assert rows["d"].connected_to == ("s[2]",)
    assert rows["s"].connected_to == ("x",)

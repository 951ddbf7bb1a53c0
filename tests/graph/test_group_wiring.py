"""A Group instance's ports in the wiring rules, and held weights inside instances."""

from __future__ import annotations

import numpy as np

from nodenet.backend import NumpyBackend, hold_weights
from nodenet.graph.groups import GroupDef, GroupInput, GroupOutput, instance
from nodenet.graph.project import Edge, Node, Project, analyze
from nodenet.graph.topology import Wiring, can_connect


def two_in_two_out() -> GroupDef:
    """Two inputs added, then two heads: (a, b) -> add -> (h1, h2)."""
    return GroupDef(
        nodes=[
            Node("add", "Add", {}),
            Node("h1", "Dense", {"units": 3}),
            Node("h2", "Dense", {"units": 2}),
        ],
        edges=[Edge("add", "h1"), Edge("add", "h2")],
        inputs=[GroupInput("a", [("add", 0)]), GroupInput("b", [("add", 1)])],
        outputs=[GroupOutput("y1", "h1"), GroupOutput("y2", "h2")],
    )


def project() -> Project:
    return Project(
        "p",
        nodes=[
            Node("x", "Input", {"shape": [4]}),
            Node("z", "Input", {"shape": [4]}),
            instance("g", "pair"),
            Node("o1", "Output", {}),
            Node("o2", "Output", {}),
        ],
        edges=[],
        groups={"pair": two_in_two_out()},
    )


def test_a_group_has_its_definitions_ports_in_the_editor():
    p = project()
    wiring = Wiring.of_project(p, among=("x", "g"))
    assert can_connect(wiring, "x", "g") is None
    p.edges.append(Edge("x", "g", 0))
    assert can_connect(Wiring.of_project(p, among=("z", "g")), "z", "g") is None
    p.edges.append(Edge("z", "g", 1))
    reason = can_connect(Wiring.of_project(p, among=("x", "g")), "x", "g")
    assert reason == "every input port of g is already connected"
    assert "no input port 2" in can_connect(Wiring.of_project(p), "x", "g", 2)
    wiring = Wiring.of_project(p, among=("g", "o2"))
    assert can_connect(wiring, "g", "o2", 0, src_port=1) is None
    assert "no output 2" in can_connect(wiring, "g", "o2", 0, src_port=2)
    p.edges += [Edge("g", "o1", 0, 0), Edge("g", "o2", 0, 1)]
    analysis = analyze(p)
    assert analysis.ok, analysis.problems
    assert analysis.output_shapes["g"] == ((3,), (2,))


def test_an_unknown_definition_is_refused_as_an_unknown_block():
    p = project()
    p.nodes[2] = instance("g", "nothing")
    assert "unknown block type" in can_connect(Wiring.of_project(p), "x", "g")


def frozen_group_project() -> Project:
    inner = GroupDef(
        nodes=[Node("d", "Dense", {"units": 3}), Node("e", "Dense", {"units": 4})],
        edges=[Edge("d", "e")],
        inputs=[GroupInput("x", [("d", 0)])],
        outputs=[GroupOutput("y", "e")],
    )
    inner.nodes[1].trainable = False  # frozen inside the definition
    return Project(
        "p",
        nodes=[
            Node("x", "Input", {"shape": [4]}),
            instance("a", "blk"),
            instance("b", "blk"),
            Node("out", "Output", {}),
        ],
        edges=[Edge("x", "a"), Edge("a", "b"), Edge("b", "out")],
        groups={"blk": inner},
    )


def test_held_weights_follow_a_frozen_instance_and_frozen_inner_blocks():
    p = frozen_group_project()
    p.nodes[1].trainable = False  # instance a: everything inside frozen
    backend = NumpyBackend()
    backend.build(p, seed=0, load_data=False)
    held = {k: np.full_like(v, 7.0) for k, v in backend.get_weights().items()}
    kept = hold_weights(backend, p, held)
    assert kept == ["a/d/bias", "a/d/kernel", "a/e/bias", "a/e/kernel", "b/e/bias", "b/e/kernel"]
    weights = backend.get_weights()
    assert np.all(weights["a/d/kernel"] == 7.0) and np.all(weights["b/e/kernel"] == 7.0)
    assert not np.all(weights["b/d/kernel"] == 7.0)  # b's own Dense trains: starts fresh

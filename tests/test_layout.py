"""The automatic layered layout: a pure function of the project, checked on its geometry."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from nodenet.graph.layout import input_port_count, layered_layout
from nodenet.graph.project import Edge, Node, Project
from nodenet.ui.canvas import style

PITCH = style.NODE_WIDTH + style.LAYER_GAP


def project(nodes: list[tuple[str, str]], edges: list[tuple[str, str, int]]) -> Project:
    params = {"Input": {"shape": [8]}, "Dense": {"units": 4}}
    return Project(
        nodes=[Node(i, t, dict(params.get(t, {})), [0.0, 0.0]) for i, t in nodes],
        edges=[Edge(s, d, p) for s, d, p in edges],
    )


def chain(n: int) -> Project:
    ids = [f"n{i}" for i in range(n)]
    types = ["Input"] + ["Dense"] * (n - 2) + ["Output"]
    return project(
        list(zip(ids, types, strict=True)), [(a, b, 0) for a, b in itertools.pairwise(ids)]
    )


def rects(p: Project, pos: dict[str, tuple[float, float]]) -> dict[str, tuple[float, ...]]:
    out = {}
    for n in p.nodes:
        x, y = pos[n.id]
        out[n.id] = (x, y, x + style.NODE_WIDTH, y + style.node_height(input_port_count(p, n.id)))
    return out


def assert_no_overlap(p: Project, pos: dict[str, tuple[float, float]]) -> None:
    boxes = rects(p, pos)
    for a, b in itertools.combinations(boxes, 2):
        ax0, ay0, ax1, ay1 = boxes[a]
        bx0, by0, bx1, by1 = boxes[b]
        overlap = ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1
        assert not overlap, f"{a} {boxes[a]} overlaps {b} {boxes[b]}"


def column(pos: dict[str, tuple[float, float]], node_id: str) -> int:
    x = pos[node_id][0]
    assert x / PITCH == round(x / PITCH), f"{node_id} is not on a column: x={x}"
    return round(x / PITCH)


def segment_crossings(p: Project, pos: dict[str, tuple[float, float]]) -> int:
    """Crossings of straight segments out-port -> in-port between adjacent columns."""

    def ends(e: Edge) -> tuple[float, float, float]:
        n = input_port_count(p, e.dst)
        h_src = style.node_height(input_port_count(p, e.src))
        h_dst = style.node_height(n)
        y0 = pos[e.src][1] + h_src / 2
        y1 = pos[e.dst][1] + style.port_y(e.port, n, h_dst)
        return pos[e.src][0], y0, y1

    segments = [ends(e) for e in p.edges]
    count = 0
    for (x_a, a0, a1), (x_b, b0, b1) in itertools.combinations(segments, 2):
        if x_a == x_b and (a0 - b0) * (a1 - b1) < 0:
            count += 1
    return count


def test_a_chain_is_one_straight_row_one_column_apart():
    p = chain(6)
    pos = layered_layout(p)
    assert [column(pos, f"n{i}") for i in range(6)] == list(range(6))
    assert len({y for _, y in pos.values()}) == 1
    assert min(x for x, _ in pos.values()) == 0 and min(y for _, y in pos.values()) == 0


def test_every_edge_goes_right_and_cards_never_overlap():
    p = project(
        [
            ("a", "Input"),
            ("b", "Input"),
            ("d1", "Dense"),
            ("d2", "Dense"),
            ("d3", "Dense"),
            ("m", "Concatenate"),
            ("h", "Dense"),
            ("o1", "Output"),
            ("o2", "Output"),
        ],
        [
            ("a", "d1", 0),
            ("d1", "d2", 0),
            ("d2", "m", 0),
            ("b", "d3", 0),
            ("d3", "m", 1),
            ("m", "h", 0),
            ("h", "o1", 0),
            ("d1", "o2", 0),
        ],
    )
    pos = layered_layout(p)
    for e in p.edges:
        assert column(pos, e.dst) > column(pos, e.src), e
    assert_no_overlap(p, pos)
    assert column(pos, "a") == column(pos, "b") == 0  # inputs stay in the first column
    assert column(pos, "m") == 3
    assert column(pos, "d3") == 2  # a side branch sits next to the merge it feeds


def test_merge_parents_follow_port_order_and_nothing_crosses():
    # file order lists the port-1 branch first: the ordering must swap the branches
    p = project(
        [
            ("x2", "Input"),
            ("x1", "Input"),
            ("b2", "Dense"),
            ("b1", "Dense"),
            ("m", "Concatenate"),
            ("o", "Output"),
        ],
        [("x1", "b1", 0), ("x2", "b2", 0), ("b1", "m", 0), ("b2", "m", 1), ("m", "o", 0)],
    )
    pos = layered_layout(p)
    assert pos["b1"][1] < pos["b2"][1]
    assert pos["x1"][1] < pos["x2"][1]
    assert segment_crossings(p, pos) == 0
    assert_no_overlap(p, pos)


def test_barycentric_ordering_removes_crossings_of_parallel_chains():
    # two chains whose middle nodes are listed in the crossing order
    p = project(
        [
            ("i1", "Input"),
            ("i2", "Input"),
            ("c2", "Dense"),
            ("c1", "Dense"),
            ("e1", "Dense"),
            ("e2", "Dense"),
            ("o1", "Output"),
            ("o2", "Output"),
        ],
        [
            ("i1", "c1", 0),
            ("i2", "c2", 0),
            ("c1", "e1", 0),
            ("c2", "e2", 0),
            ("e1", "o1", 0),
            ("e2", "o2", 0),
        ],
    )
    pos = layered_layout(p)
    assert segment_crossings(p, pos) == 0
    # each chain is straight: a single parent means the same row
    for a, b in (("i1", "c1"), ("c1", "e1"), ("i2", "c2"), ("c2", "e2")):
        assert pos[a][1] == pos[b][1]


def test_a_fork_keeps_the_parent_between_its_children():
    p = project(
        [
            ("i", "Input"),
            ("h", "Dense"),
            ("a", "Dense"),
            ("b", "Dense"),
            ("oa", "Output"),
            ("ob", "Output"),
        ],
        [("i", "h", 0), ("h", "a", 0), ("h", "b", 0), ("a", "oa", 0), ("b", "ob", 0)],
    )
    pos = layered_layout(p)
    height = style.node_height(1)
    centre = pos["h"][1] + height / 2
    assert pos["a"][1] + height / 2 < centre < pos["b"][1] + height / 2 or (
        pos["b"][1] + height / 2 < centre < pos["a"][1] + height / 2
    )
    assert_no_overlap(p, pos)


def test_cycles_and_unknown_types_still_get_positions():
    p = project(
        [("i", "Input"), ("a", "Dense"), ("b", "Dense"), ("c", "Mystery"), ("o", "Output")],
        [
            ("i", "a", 0),
            ("a", "b", 0),
            ("b", "a", 0),
            ("b", "c", 0),
            ("c", "o", 0),
            ("o", "o", 0),
            ("ghost", "o", 0),
        ],
    )
    pos = layered_layout(p)
    assert set(pos) == {"i", "a", "b", "c", "o"}
    assert_no_overlap(p, pos)


def test_components_are_stacked_without_overlap():
    a, b = chain(3), chain(4)
    for n in b.nodes:
        n.id = "b_" + n.id
    for e in b.edges:
        e.src, e.dst = "b_" + e.src, "b_" + e.dst
    p = Project(nodes=a.nodes + b.nodes, edges=a.edges + b.edges)
    pos = layered_layout(p)
    assert_no_overlap(p, pos)
    bottom_a = max(pos[n.id][1] for n in a.nodes) + style.node_height(1)
    assert min(pos[n.id][1] for n in b.nodes) >= bottom_a + style.ROW_GAP


def test_merge_cards_grow_with_their_ports():
    inputs = [(f"i{k}", "Input") for k in range(5)]
    p = project(
        [*inputs, ("add", "Add"), ("o", "Output")],
        [(f"i{k}", "add", k) for k in range(5)] + [("add", "o", 0)],
    )
    assert input_port_count(p, "add") == 6  # five filled and one free
    pos = layered_layout(p)
    assert_no_overlap(p, pos)
    assert segment_crossings(p, pos) == 0


def test_layout_is_deterministic_and_leaves_the_project_alone():
    p = chain(5)
    before = p.to_json()
    assert layered_layout(p) == layered_layout(p)
    assert p.to_json() == before


def test_empty_project():
    assert layered_layout(Project()) == {}


@pytest.mark.parametrize("n", [40, 300])
def test_big_random_dags_are_tidy(n):
    import random

    rng = random.Random(n)
    nodes = [("in", "Input")] + [(f"d{i}", "Dense") for i in range(n - 2)] + [("out", "Output")]
    edges = [("in", "d0", 0)]
    for i in range(1, n - 2):
        edges.append((f"d{rng.randrange(max(0, i - 6), i)}", f"d{i}", 0))
    edges.append((f"d{n - 3}", "out", 0))
    p = project(nodes, edges)
    pos = layered_layout(p)
    assert len(pos) == n
    for e in p.edges:
        assert column(pos, e.dst) > column(pos, e.src)
    assert_no_overlap(p, pos)


def test_the_layout_module_loads_no_qt():
    code = (
        "import sys\n"
        "from nodenet.graph.layout import layered_layout\n"
        "print([m for m in sys.modules if m.startswith('PySide6')])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_crossings_are_counted_as_pairs_of_edges_that_cross():
    """The O(E log E) count against its definition, pair by pair, on random edge sets."""
    import random

    from nodenet.graph.layout import _inversions

    rng = random.Random(3)
    for _ in range(200):
        ends = sorted(
            (rng.randint(0, 6), rng.randint(0, 8) + rng.choice([0.0, 0.5]))
            for _ in range(rng.randint(0, 40))
        )
        pairs = sum(
            1 for i, (a0, b0) in enumerate(ends) for a1, b1 in ends[i + 1 :] if a1 > a0 and b1 < b0
        )
        assert _inversions(ends) == pairs

"""The shape-aware auto layout: deep graphs folded into bands, wide ones left layered."""

from __future__ import annotations

import itertools

from nodenet.graph.bands import FIT_MARGIN, LEGIBLE_ZOOM, auto_layout
from nodenet.graph.layout import layered_layout
from nodenet.graph.project import Edge, Node, Project
from tests.test_layout import PITCH, assert_no_overlap, chain

VIEW = (1200.0, 700.0)


def residual(blocks: int) -> Project:
    """Input, ``blocks`` residual blocks (3 Dense then an Add with the skip), Output."""
    nodes = [Node("x", "Input", {"shape": [8]})]
    edges: list[Edge] = []
    h = "x"
    for b in range(blocks):
        skip = h
        for j in range(3):
            nodes.append(Node(f"b{b}_d{j}", "Dense", {"units": 8}))
            edges.append(Edge(h, f"b{b}_d{j}", 0))
            h = f"b{b}_d{j}"
        nodes.append(Node(f"b{b}_add", "Add", {}))
        edges += [Edge(h, f"b{b}_add", 0), Edge(skip, f"b{b}_add", 1)]
        h = f"b{b}_add"
    nodes.append(Node("y", "Output", {"loss": "mean_squared_error"}))
    edges.append(Edge(h, "y", 0))
    return Project("residual", nodes, edges)


def wide(n: int) -> Project:
    """``n`` Inputs, each through a Dense, into one Concatenate: wide, three columns deep."""
    nodes = [Node(f"x{i}", "Input", {"shape": [2]}) for i in range(n)]
    nodes += [Node(f"d{i}", "Dense", {"units": 2}) for i in range(n)]
    nodes += [Node("cat", "Concatenate", {}), Node("y", "Output", {"loss": "mse"})]
    edges = [Edge(f"x{i}", f"d{i}", 0) for i in range(n)]
    edges += [Edge(f"d{i}", "cat", i) for i in range(n)]
    edges.append(Edge("cat", "y", 0))
    return Project("wide", nodes, edges)


def assert_reads_like_text(p: Project, pos: dict[str, tuple[float, float]]) -> None:
    """Every edge goes right within a band, or wraps from a band into a lower one."""
    for e in p.edges:
        (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
        assert x1 > x0 or y1 > y0, f"{e.src} -> {e.dst} goes back: {pos[e.src]} {pos[e.dst]}"


def test_a_chain_of_200_wraps_into_rows_the_view_shows_at_a_legible_zoom():
    p = chain(200)
    pos = auto_layout(p, VIEW)
    ids = [n.id for n in p.nodes]
    xs = [pos[i][0] for i in ids]
    assert all(x % PITCH == 0 for x in xs)
    per_band = int(max(xs) / PITCH) + 1
    assert (per_band * PITCH - (PITCH - 192) + FIT_MARGIN) * LEGIBLE_ZOOM <= VIEW[0]
    assert per_band >= 3
    bands = [[ids[0]]]
    for a, b in itertools.pairwise(ids):
        if pos[b][0] > pos[a][0]:
            assert pos[b] == (pos[a][0] + PITCH, pos[a][1])  # the next card on the same row
            bands[-1].append(b)
        else:  # the next row starts at the left, under the previous one
            assert pos[b][0] == 0 and pos[b][1] > pos[a][1] + 60
            bands.append([b])
    assert len(bands) == -(-200 // per_band)
    assert_no_overlap(p, pos)
    assert_reads_like_text(p, pos)


def test_residual_blocks_are_cut_between_blocks_so_skips_stay_in_their_band():
    p = residual(30)
    pos = auto_layout(p, VIEW)
    assert_no_overlap(p, pos)
    assert_reads_like_text(p, pos)
    main = [n.id for n in p.nodes]  # the main path, in order
    band, last = {main[0]: 0}, []
    for a, b in itertools.pairwise(main):
        if pos[b][0] <= pos[a][0]:  # a new band starts at b
            last.append(a)
        band[b] = len(last)
    assert len(last) >= 10  # folded
    for e in p.edges:  # an edge stays in its band, or wraps from the band's last card
        assert band[e.src] == band[e.dst] or e.src in last, (e.src, e.dst)
    assert set(last) <= {f"b{b}_add" for b in range(30)}  # bands end after a residual block


def test_a_wide_graph_stays_layered_left_to_right():
    p = wide(40)
    pos = auto_layout(p, VIEW)
    assert pos == layered_layout(p)
    assert {pos[f"x{i}"][0] for i in range(40)} == {0.0}
    assert pos["cat"][0] > pos["d0"][0] > pos["x0"][0]


def test_a_graph_that_fits_legibly_is_not_folded():
    for p in (chain(5), wide(3)):
        assert auto_layout(p, VIEW) == layered_layout(p)


def test_auto_layout_is_deterministic_and_depends_only_on_the_project_and_view():
    assert auto_layout(residual(20), VIEW) == auto_layout(residual(20), VIEW)
    assert auto_layout(chain(150), VIEW) == auto_layout(chain(150), VIEW)
    narrow = auto_layout(chain(150), (800.0, 600.0))
    broad = auto_layout(chain(150), (1900.0, 1000.0))
    assert max(x for x, _ in narrow.values()) < max(x for x, _ in broad.values())
    assert auto_layout(Project(), VIEW) == {}


def test_components_and_cycles_fold_without_overlaps():
    p = residual(12)
    p.nodes += [Node("z", "Input", {"shape": [8]}), Node("zd", "Dense", {"units": 8})]
    p.edges.append(Edge("z", "zd", 0))
    pos = auto_layout(p, VIEW)
    assert set(pos) == {n.id for n in p.nodes}
    assert_no_overlap(p, pos)

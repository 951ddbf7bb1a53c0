"""Automatic layered layout of a project graph, left to right. No Qt.

The classic Sugiyama steps, kept small:

1. break cycles (depth-first back edges are ignored);
2. longest-path layering: a node sits one column right of its deepest parent;
3. long edges get a dummy node in every column they cross, so they keep a lane;
4. barycentric ordering: columns are re-sorted by the mean position of their
   neighbours, sweeping right then left, keeping the order with fewest crossings;
5. vertical placement: each node is pulled level with the ports it connects to,
   columns packed without overlap by isotonic regression (pool adjacent violators).

Weakly connected components are laid out one under the other. A deep graph is
folded into bands by :func:`nodenet.graph.bands.auto_layout`, the layout the
editor and the Keras import use. Positions are the
top-left corners of the node cards, sized by :class:`Cards` (the canvas passes
the geometry it draws with; the default is the canvas's own).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from nodenet.engine.catalog import LAYERS, Layer, block_class
from nodenet.errors import NodenetError
from nodenet.graph.project import Project
from nodenet.graph.topology import topological_order

SWEEPS = 12
PLACEMENT_ROUNDS = 7  # odd: the last sweep goes rightwards, so chains leave inputs straight


@dataclass(frozen=True)
class Cards:
    """The geometry of node cards (scene units): what a layout needs to keep them apart."""

    width: float = 192.0
    header_height: float = 26.0
    line_height: float = 17.0
    body_lines: int = 3  # id; key parameters; output shape and parameter count
    body_margin: float = 5.0  # above and below the body lines
    padding: float = 8.0  # inside the card, left and right
    port_pitch: float = 18.0
    layer_gap: float = 96.0  # horizontal space between layout columns, room for edge labels
    row_gap: float = 34.0  # vertical space between nodes of one column

    def node_height(self, n_input_ports: int) -> float:
        """Height of a node card with ``n_input_ports`` input ports (or output ports, when
        it has more of those; see :func:`card_port_counts`)."""
        body = self.header_height + self.body_lines * self.line_height + 2 * self.body_margin
        return max(body, n_input_ports * self.port_pitch + 2 * self.padding)

    def port_y(self, index: int, n_ports: int, height: float) -> float:
        """Vertical position of port ``index`` of ``n_ports`` on one side (inputs on the
        left, outputs on the right), centred on the card."""
        top = height / 2 - (n_ports - 1) * self.port_pitch / 2
        return top + index * self.port_pitch

    @property
    def pitch(self) -> float:
        """From one column's left edge to the next one's."""
        return self.width + self.layer_gap

    @property
    def component_gap(self) -> float:
        """Space between weakly connected components laid out one under the other."""
        return 2 * self.row_gap


CARDS = Cards()


@dataclass
class _Graph:
    """One component: real and dummy vertices, edges ``(src, dst, port)`` one column apart."""

    cards: Cards
    heights: dict[str, float]
    ports: dict[str, int]  # input port count (for port offsets)
    layer: dict[str, int] = field(default_factory=dict)
    edges: list[tuple[str, str, int]] = field(default_factory=list)
    preds: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    succs: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))

    def add_edge(self, src: str, dst: str, port: int) -> None:
        self.edges.append((src, dst, port))
        self.preds[dst].append((src, port))
        self.succs[src].append((dst, port))


def input_port_count(project: Project, node_id: str) -> int:
    """Ports a node card draws: fixed by its block, or filled + one free for a merge."""
    return _port_count(project.node(node_id).type, len(project.incoming(node_id)))


def input_port_counts(project: Project) -> dict[str, int]:
    """:func:`input_port_count` of every node, in one O(nodes + edges) pass."""
    filled: dict[str, int] = defaultdict(int)
    for edge in project.edges:
        filled[edge.dst] += 1
    return {n.id: _port_count(n.type, filled[n.id]) for n in project.nodes}


def card_port_counts(project: Project) -> dict[str, int]:
    """The ports a card stacks on its taller side: its input ports, or its outputs (an
    LSTM with ``return_state`` has three): what sets its height."""
    ins = input_port_counts(project)
    return {n.id: max(ins[n.id], output_port_count(n.type, n.params)) for n in project.nodes}


def output_port_count(block_type: str, params: object) -> int:
    """Output ports of a card: the block's outputs with these settings (1 when unknown)."""
    if block_type not in LAYERS:
        return 1
    cls = block_class(block_type)
    if cls.n_outputs is Layer.n_outputs:  # most blocks: one output, no block built
        return 1
    try:
        return max(1, cls(params if isinstance(params, dict) else {}).n_outputs())
    except NodenetError:  # settings the editor flags: the card shows one port
        return 1


def _port_count(block_type: str, filled: int) -> int:
    if block_type not in LAYERS:
        return 1
    cls = block_class(block_type)
    if cls.N_INPUTS is None:
        return min(filled + 1, cls.MAX_INPUTS or filled + 1)
    return cls.N_INPUTS


def layered_layout(project: Project, cards: Cards = CARDS) -> dict[str, tuple[float, float]]:
    """Top-left position of every node for a tidy left-to-right drawing of ``project``.

    Pure: reads the project, changes nothing. Deterministic for a given project.
    """
    known = dict.fromkeys(n.id for n in project.nodes)
    ids = list(known)
    edges = [
        (e.src, e.dst, e.port)
        for e in project.edges
        if e.src in known and e.dst in known and e.src != e.dst
    ]
    ports = input_port_counts(project)
    tall = card_port_counts(project)
    inputs = {n.id for n in project.nodes if n.type == "Input"}
    positions: dict[str, tuple[float, float]] = {}
    top = 0.0
    components = _components(ids, edges)
    member_of = {node_id: k for k, component in enumerate(components) for node_id in component}
    own: list[list[tuple[str, str, int]]] = [[] for _ in components]
    for edge in edges:
        own[member_of[edge[0]]].append(edge)
    for component, component_edges in zip(components, own, strict=True):
        placed = _layout_component(component, component_edges, ports, inputs, cards, tall)
        bottom = top
        for node_id, (x, y) in placed.items():
            positions[node_id] = (x, y + top)
            bottom = max(bottom, y + top + cards.node_height(tall[node_id]))
        top = bottom + cards.component_gap
    return {k: (float(round(x)), float(round(y))) for k, (x, y) in positions.items()}


def _components(ids: list[str], edges: list[tuple[str, str, int]]) -> list[list[str]]:
    parent = {i: i for i in ids}

    def find(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for src, dst, _ in edges:
        parent[find(src)] = find(dst)
    groups: dict[str, list[str]] = defaultdict(list)
    for i in ids:
        groups[find(i)].append(i)
    return list(groups.values())


def _layout_component(
    ids: list[str],
    edges: list[tuple[str, str, int]],
    ports: dict[str, int],
    inputs: set[str],
    cards: Cards,
    tall: dict[str, int] | None = None,
) -> dict[str, tuple[float, float]]:
    edges = _acyclic(ids, edges)
    layer = _longest_path_layers(ids, edges, inputs)
    ports = {i: ports[i] for i in ids}
    heights = {i: cards.node_height((tall or ports)[i]) for i in ids}
    graph = _with_dummies(cards, ids, edges, layer, heights, ports)
    columns = _order_columns(graph)
    ys = _place_vertically(graph, columns)
    return {i: (layer[i] * cards.pitch, ys[i]) for i in ids}


def _acyclic(ids: list[str], edges: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Drop the edges that close a cycle (back edges of a depth-first search in file order)."""
    children: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for e in edges:
        children[e[0]].append(e)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[tuple[str, str, int]] = set()
    for root in ids:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(children[root]))]
        while stack:
            node, it = stack[-1]
            edge = next(it, None)
            if edge is None:
                state[node] = 2
                stack.pop()
            elif state.get(edge[1]) == 1:
                back.add(edge)
            elif edge[1] not in state:
                state[edge[1]] = 1
                stack.append((edge[1], iter(children[edge[1]])))
    return [e for e in edges if e not in back]


def _longest_path_layers(
    ids: list[str], edges: list[tuple[str, str, int]], inputs: set[str]
) -> dict[str, int]:
    """Column of every node: one right of its deepest parent, then pulled towards its children.

    Longest-path layering leaves side branches (a second input's Dense feeding a
    late merge) far to the left with a long edge after them; every node but an
    Input then moves right, as far as its nearest child allows, so branches sit
    next to where they merge and Inputs stay in the first column.
    """
    parents: dict[str, list[str]] = defaultdict(list)
    children: dict[str, list[str]] = defaultdict(list)
    for src, dst, _ in edges:
        parents[dst].append(src)
        children[src].append(dst)
    order, _ = topological_order(ids, ((src, dst) for src, dst, _ in edges))
    layer: dict[str, int] = {}
    for node_id in order:
        layer[node_id] = max((layer[p] + 1 for p in parents[node_id]), default=0)
    for node_id in reversed(order):
        kids = children[node_id]
        if kids and node_id not in inputs:
            layer[node_id] = max(layer[node_id], min(layer[k] for k in kids) - 1)
    return layer


def _with_dummies(cards, ids, edges, layer, heights, ports) -> _Graph:
    graph = _Graph(cards, dict(heights), dict(ports), dict(layer))
    for n, (src, dst, port) in enumerate(edges):
        prev = src
        for column in range(layer[src] + 1, layer[dst]):
            dummy = f"\0{n}:{column}"
            graph.layer[dummy] = column
            graph.heights[dummy] = cards.line_height
            graph.ports[dummy] = 1
            graph.add_edge(prev, dummy, 0)
            prev = dummy
        graph.add_edge(prev, dst, port)
    return graph


# -- ordering -----------------------------------------------------------------------


def _order_columns(graph: _Graph) -> list[list[str]]:
    """Vertices per column, in the order with the fewest crossings found by barycentric sweeps."""
    n_columns = max(graph.layer.values(), default=-1) + 1
    columns: list[list[str]] = [[] for _ in range(n_columns)]
    for vertex in _first_seen_order(graph):
        columns[graph.layer[vertex]].append(vertex)
    best = [list(c) for c in columns]
    best_crossings = _crossings(graph, columns)
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        sequence = range(1, n_columns) if downward else range(n_columns - 2, -1, -1)
        for c in sequence:
            neighbour = columns[c - 1] if downward else columns[c + 1]
            columns[c] = _sorted_by_barycenter(graph, columns[c], neighbour, downward)
        crossings = _crossings(graph, columns)
        if crossings < best_crossings:
            best, best_crossings = [list(c) for c in columns], crossings
        if best_crossings == 0:
            break
    return best


def _first_seen_order(graph: _Graph) -> list[str]:
    """Vertices in depth-first order from the sources, so related nodes start together."""
    seen: dict[str, None] = {}
    roots = [v for v in graph.heights if not graph.preds[v]]
    stack = list(reversed(roots))
    while stack:
        vertex = stack.pop()
        if vertex in seen:
            continue
        seen[vertex] = None
        kids = sorted(graph.succs[vertex], key=lambda s: s[1])
        stack.extend(child for child, _ in reversed(kids))
    seen.update(dict.fromkeys(graph.heights))
    return list(seen)


def _sorted_by_barycenter(graph, column, neighbour, downward) -> list[str]:
    rank = {v: i for i, v in enumerate(neighbour)}
    keys = {}
    for i, vertex in enumerate(column):
        if downward:
            # the port breaks ties: a merge's port 0 parent above its port 1 parent
            links = [rank[src] for src, _ in graph.preds[vertex] if src in rank]
        else:
            links = [
                rank[dst] + port / (graph.ports[dst] + 1)
                for dst, port in graph.succs[vertex]
                if dst in rank
            ]
        keys[vertex] = (sum(links) / len(links), i) if links else (float(i), i)
    return sorted(column, key=lambda v: keys[v])


def _crossings(graph: _Graph, columns: list[list[str]]) -> int:
    """Edge crossings between adjacent columns (ports count as sub-positions)."""
    total = 0
    for left, right in itertools.pairwise(columns):
        rank_l = {v: i for i, v in enumerate(left)}
        rank_r = {v: i for i, v in enumerate(right)}
        ends = sorted(
            (rank_l[src], rank_r[dst] + port / (graph.ports[dst] + 1))
            for dst in right
            for src, port in graph.preds[dst]
            if src in rank_l
        )
        total += _inversions(ends)
    return total


def _inversions(ends: list[tuple[int, float]]) -> int:
    """Pairs of ``ends`` (sorted) with ``a1 > a0`` and ``b1 < b0``: crossing edges, counted
    with a Fenwick tree over the ``b`` ranks in O(E log E)."""
    ranks = {b: i + 1 for i, b in enumerate(sorted({b for _, b in ends}))}
    tree = [0] * (len(ranks) + 1)
    total = seen = 0
    for _, group in itertools.groupby(ends, key=lambda end: end[0]):
        group = list(group)
        for _, b in group:  # the ends already seen (smaller a) that are lower than b
            k, not_above = ranks[b], 0
            while k:
                not_above += tree[k]
                k -= k & -k
            total += seen - not_above
        for _, b in group:
            k = ranks[b]
            while k < len(tree):
                tree[k] += 1
                k += k & -k
            seen += 1
    return total


# -- vertical placement --------------------------------------------------------------


def _place_vertically(graph: _Graph, columns: list[list[str]]) -> dict[str, float]:
    """Top of every vertex: level with its neighbours' ports, columns free of overlaps."""
    ys: dict[str, float] = {}
    for column in columns:
        y = 0.0
        for vertex in column:
            ys[vertex] = y
            y += graph.heights[vertex] + graph.cards.row_gap
    for round_ in range(PLACEMENT_ROUNDS):
        downward = round_ % 2 == 0
        sequence = columns if downward else list(reversed(columns))
        for column in sequence:
            wanted = [_wanted_top(graph, ys, v, downward) for v in column]
            for vertex, top in zip(column, _pack(graph, column, wanted), strict=True):
                ys[vertex] = top
    shift = min(ys.values(), default=0.0)
    return {v: y - shift for v, y in ys.items()}


def _in_port_y(graph: _Graph, vertex: str, port: int) -> float:
    return graph.cards.port_y(port, graph.ports[vertex], graph.heights[vertex])


def _wanted_top(graph: _Graph, ys: dict[str, float], vertex: str, downward: bool) -> float:
    """Where ``vertex`` would sit to make its edges straight (the mean over its links)."""
    half = graph.heights[vertex] / 2
    from_preds = [
        ys[src] + graph.heights[src] / 2 - _in_port_y(graph, vertex, port)
        for src, port in graph.preds[vertex]
    ]
    from_succs = [
        ys[dst] + _in_port_y(graph, dst, port) - half for dst, port in graph.succs[vertex]
    ]
    first, second = (from_preds, from_succs) if downward else (from_succs, from_preds)
    links = first or second
    return sum(links) / len(links) if links else ys[vertex]


def _pack(graph: _Graph, column: list[str], wanted: list[float]) -> list[float]:
    """Tops closest (least squares) to ``wanted`` keeping order and a gap: pool adjacent violators.

    With ``offset[i]`` the stacked height above vertex ``i``, ``top[i] = z[i] + offset[i]``
    and the constraints become ``z`` non-decreasing: an isotonic regression.
    """
    offsets, acc = [], 0.0
    for vertex in column:
        offsets.append(acc)
        acc += graph.heights[vertex] + graph.cards.row_gap
    blocks: list[list[float]] = []  # [sum, count]
    for target, offset in zip(wanted, offsets, strict=True):
        blocks.append([target - offset, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    z = [b[0] / b[1] for b in blocks for _ in range(int(b[1]))]
    return [zi + offset for zi, offset in zip(z, offsets, strict=True)]

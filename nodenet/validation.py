"""Validation of a project and inference of its shapes and parameter counts.

Every problem names its node (or field) in one sentence. The names are
re-exported by :mod:`nodenet.project`, where the rest of the document lives.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nodenet.engine.catalog import LAYERS, Layer, Shape, fmt_shape
from nodenet.engine.params import check_params
from nodenet.errors import NodenetError, shorten
from nodenet.safeio import over_budget, size_of

BYTES_PER_VALUE = 4  # weights and activations are float32

if TYPE_CHECKING:
    from nodenet.project import Edge, EdgeIndex, Node, Project

MAX_MESSAGE_CHARS = 400  # a problem's message is cut to this length


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a project, naming the node (or field) at fault."""

    message: str
    node: str | None = None
    field: str | None = None

    def __post_init__(self) -> None:  # a message echoing a huge shape or name stays readable
        object.__setattr__(self, "message", shorten(self.message, MAX_MESSAGE_CHARS))

    def __str__(self) -> str:
        where = self.node if self.node is not None else self.field
        return f"{shorten(where)}: {self.message}" if where is not None else self.message


@dataclass
class Analysis:
    """What :func:`analyze` learns: problems, topological order, shapes, parameter counts."""

    problems: list[Problem]
    order: list[str]  # node ids in topological order (nodes in cycles left out)
    shapes: dict[str, Shape]  # output shape of every node whose shape could be inferred
    params: dict[str, tuple[int, int]]  # (trainable, non-trainable) per node
    layers: dict[str, Layer]  # a layer object per node whose params are valid
    index: EdgeIndex | None = None  # the project's edges by node, as analyzed

    @property
    def ok(self) -> bool:
        return not self.problems

    def problems_for(self, node_id: str) -> list[Problem]:
        return [p for p in self.problems if p.node == node_id]

    def input_shapes(self, project: Project, node_id: str) -> list[Shape] | None:
        edges = self.index.incoming(node_id) if self.index else project.incoming(node_id)
        shapes = [self.shapes.get(e.src) for e in edges]
        return None if any(s is None for s in shapes) else shapes


def validate(project: Project) -> list[Problem]:
    """Every problem of the project, each naming its node or field."""
    return analyze(project).problems


def analyze(project: Project) -> Analysis:
    """Validate the graph and infer shapes and parameter counts, as far as possible.

    O(nodes + edges) besides each block's own checks: edges are indexed once, and one
    topological pass (Kahn) orders the nodes and finds the cycles.
    """
    from nodenet.project import id_problem

    problems: list[Problem] = []
    ids = [n.id for n in project.nodes]
    seen: set[str] = set()
    for node_id in ids:
        if node_id in seen:
            problems.append(Problem("the id is used by more than one node", node_id))
        seen.add(node_id)
        problem = id_problem(node_id)
        if problem is not None:
            problems.append(Problem(problem, field="nodes"))
    by_id = {n.id: n for n in project.nodes}
    index = project.edge_index()

    layers: dict[str, Layer] = {}
    for n in project.nodes:
        if not isinstance(n.type, str) or n.type not in LAYERS:
            problems.append(Problem(f"unknown block type {shorten(repr(n.type))}", n.id))
            continue
        cls = LAYERS.get(n.type)
        errors = check_params(cls.PARAMS, n.params, n.type)
        if errors:
            problems.extend(Problem(str(e), n.id) for e in errors)
            continue
        try:
            layers[n.id] = cls(n.params, n.id)
        except NodenetError as err:
            problems.append(Problem(str(err), n.id))

    if not project.inputs():
        problems.append(Problem("the graph has no Input block", field="nodes"))
    if not project.outputs():
        problems.append(Problem("the graph has no Output block", field="nodes"))

    problems.extend(_check_training(project.training))
    problems.extend(_check_edges(project, by_id))
    order, cyclic = _topological_order(project)
    for node_id in cyclic:
        problems.append(Problem("is part of a cycle", node_id))
    problems.extend(_check_ports(project, by_id, index))
    problems.extend(_check_reaches_output(project, by_id))

    shapes: dict[str, Shape] = {}
    params: dict[str, tuple[int, int]] = {}
    for node_id in order:
        layer = layers.get(node_id)
        if layer is None:
            continue
        in_shapes = [shapes.get(e.src) for e in index.incoming(node_id)]
        if any(s is None for s in in_shapes) or not layer.accepts_inputs(len(in_shapes)):
            continue
        try:
            shapes[node_id] = tuple(layer.infer_shape(in_shapes))
            params[node_id] = layer.count_params(in_shapes)
        except NodenetError as err:
            shapes.pop(node_id, None)
            problems.append(Problem(str(err), node_id))
        except OverflowError:  # sizes past float range reached a float computation
            shapes.pop(node_id, None)
            params.pop(node_id, None)
            problems.append(Problem("its output or weights are too large to compute", node_id))
    problems.extend(_check_memory(project, order, shapes, params))
    return Analysis(problems, order, shapes, params, layers, index)


def _check_memory(
    project: Project,
    order: list[str],
    shapes: dict[str, Shape],
    params: dict[str, tuple[int, int]],
) -> list[Problem]:
    """Weights and activations (float32) checked against the memory budget, before any
    allocation: each node's weights, each node's output for one sample, all weights
    together, and a training batch's outputs of every node (kept for the backward pass).
    """
    problems = []
    per_sample = 0
    outputs = {n.id for n in project.outputs()}
    for node_id in order:
        if node_id in params:
            count = sum(params[node_id])
            reason = _over_budget(count * BYTES_PER_VALUE)
            if reason is not None:
                problems.append(
                    Problem(f"its {_count(count)} weights would take {reason}", node_id)
                )
        if node_id in shapes and node_id not in outputs:
            size = size_of(shapes[node_id], BYTES_PER_VALUE)
            per_sample += size
            reason = _over_budget(size)
            if reason is not None:
                shape = shorten(fmt_shape(shapes[node_id]))
                problems.append(
                    Problem(f"one sample's output, of shape {shape}, would take {reason}", node_id)
                )
    if problems:
        return problems
    total = sum(sum(p) for p in params.values())
    reason = _over_budget(total * BYTES_PER_VALUE)
    if reason is not None:
        return [Problem(f"the model's {_count(total)} weights would take {reason}", field="nodes")]
    batch = project.training.get("batch_size") if isinstance(project.training, dict) else None
    if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0:
        reason = _over_budget(batch * per_sample)
        if reason is not None:
            problems.append(
                Problem(
                    f"the outputs of every block for a batch of {batch} samples would take "
                    f"{reason}; use a smaller batch",
                    field="training.batch_size",
                )
            )
    return problems


def _over_budget(size: int) -> str | None:
    """:func:`over_budget`, also for sizes past float range (a 40-dimension shape)."""
    if size < 2**1000:
        return over_budget(size)
    return f"about 10^{int(size.bit_length() * 0.30103)} bytes, far more than the memory budget"


def _count(count: int) -> str:
    """``1,234`` or ``about 10^400`` (a count too long to print in full)."""
    return f"{count:,}" if count < 10**30 else f"about 10^{int(count.bit_length() * 0.30103)}"


def _check_training(training: Any) -> list[Problem]:
    from nodenet.engine.settings import check_training

    optimizer = training.get("optimizer") if isinstance(training, dict) else None
    if isinstance(optimizer, dict) and not isinstance(optimizer.get("name"), str):
        # a list or object as the name would reach a registry lookup (unhashable)
        name = optimizer.get("name")
        return [
            Problem(
                f"must be an optimizer's name (got {shorten(repr(name))})",
                field="training.optimizer.name",
            )
        ]
    problems = []
    for text in check_training(training):
        where, _, message = text.partition(" ")
        problems.append(Problem(message, field=where.rstrip(":")))
    return problems


def _check_edges(project: Project, by_id: dict[str, Node]) -> list[Problem]:
    problems = []
    taken: dict[tuple[str, int], Edge] = {}
    for e in project.edges:
        where = f"{shorten(e.src)} -> {shorten(e.dst)}"
        if e.src not in by_id:
            if e.dst in by_id:
                problems.append(Problem(f"edge from a missing node {shorten(repr(e.src))}", e.dst))
            else:
                problems.append(Problem(f"edge between missing nodes ({where})", field="edges"))
            continue
        if e.dst not in by_id:
            problems.append(Problem(f"edge to a missing node {shorten(repr(e.dst))}", e.src))
            continue
        if e.src == e.dst:
            problems.append(Problem("is connected to itself", e.src))
            continue
        src_type = by_id[e.src].type
        if src_type == "Output":
            problems.append(
                Problem(
                    f"an Output ends the graph; it cannot feed {e.dst!r} "
                    "(connect from the block before it)",
                    e.src,
                )
            )
        dst_cls = LAYERS.get(by_id[e.dst].type) if by_id[e.dst].type in LAYERS else None
        if dst_cls is not None:
            if dst_cls.N_INPUTS == 0:
                problems.append(
                    Problem(f"{dst_cls.TYPE} takes no input, but {where} feeds it", e.dst)
                )
                continue
            if dst_cls.N_INPUTS is not None and e.port >= dst_cls.N_INPUTS:
                problems.append(
                    Problem(
                        f"edge from {e.src!r} to input port {e.port}, but {dst_cls.TYPE} has "
                        f"{dst_cls.N_INPUTS} input port(s)",
                        e.dst,
                    )
                )
                continue
        key = (e.dst, e.port)
        if key in taken:
            problems.append(
                Problem(
                    f"input port {e.port} is fed by both {taken[key].src!r} and {e.src!r}", e.dst
                )
            )
        taken[key] = e
    return problems


def _check_ports(project: Project, by_id: dict[str, Node], index: EdgeIndex) -> list[Problem]:
    """Unconnected ports; never builds a range over a port number taken from the file."""
    problems = []
    for n in project.nodes:
        if not isinstance(n.type, str) or n.type not in LAYERS:
            continue
        cls = LAYERS.get(n.type)
        ports = sorted({e.port for e in index.incoming(n.id) if e.src in by_id})
        if cls.N_INPUTS is not None:
            connected = set(ports)
            for port in range(cls.N_INPUTS):  # the catalog's own, small count
                if port not in connected:
                    problems.append(Problem(f"input port {port} is not connected", n.id))
        else:
            if len(ports) < cls.MIN_INPUTS:
                problems.append(
                    Problem(
                        f"{cls.TYPE} needs at least {cls.MIN_INPUTS} inputs, "
                        f"{len(ports)} connected",
                        n.id,
                    )
                )
            missing = _first_gap(ports)
            if missing is not None:
                problems.append(
                    Problem(
                        f"input port {missing} is not connected (ports are filled in order)",
                        n.id,
                    )
                )
    return problems


def _first_gap(ports: list[int]) -> int | None:
    """The first port missing from the sorted distinct ``ports`` (none: ``None``)."""
    for expected, port in enumerate(ports):
        if port != expected:
            return expected
    return None


def _topological_order(project: Project) -> tuple[list[str], list[str]]:
    """Kahn's algorithm, ties broken by file order; returns (order, nodes in cycles)."""
    ids = list(dict.fromkeys(n.id for n in project.nodes))
    index = {node_id: i for i, node_id in enumerate(ids)}
    indegree = dict.fromkeys(ids, 0)
    children: dict[str, list[str]] = {node_id: [] for node_id in ids}
    for e in project.edges:
        if e.src in index and e.dst in index and e.src != e.dst:
            indegree[e.dst] += 1
            children[e.src].append(e.dst)
    ready = [(index[i], i) for i in ids if indegree[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, node_id = heapq.heappop(ready)
        order.append(node_id)
        for child in children[node_id]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, (index[child], child))
    done = set(order)
    remaining = [i for i in ids if i not in done]
    # nodes downstream of a cycle are blocked, not cyclic: keep only those on a cycle
    on_cycle = _nodes_on_cycles(remaining, children)
    return order, [i for i in remaining if i in on_cycle]


def _nodes_on_cycles(within: list[str], children: dict[str, list[str]]) -> set[str]:
    """Nodes of ``within`` on a cycle: members of a strongly connected component of two or
    more nodes (self-loops are reported elsewhere). Tarjan's algorithm, iterative, linear."""
    members = set(within)
    number: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[str] = set()
    for root in within:
        if root in number:
            continue
        work = [(root, iter(children[root]))]
        number[root] = low[root] = len(number)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, kids = work[-1]
            child = next((c for c in kids if c in members), None)
            if child is not None:
                if child not in number:
                    number[child] = low[child] = len(number)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(children[child])))
                elif child in on_stack:
                    low[node] = min(low[node], number[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == number[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.update(component)
    return found


def _check_reaches_output(project: Project, by_id: dict[str, Node]) -> list[Problem]:
    parents: dict[str, list[str]] = {i: [] for i in by_id}
    for e in project.edges:
        if e.src in by_id and e.dst in by_id:
            parents[e.dst].append(e.src)
    reached = set()
    stack = [n.id for n in project.nodes if n.type == "Output"]
    while stack:
        node_id = stack.pop()
        if node_id in reached:
            continue
        reached.add(node_id)
        stack.extend(parents[node_id])
    if not project.outputs():
        return []
    return [
        Problem("does not reach any Output (its result is unused)", n.id)
        for n in project.nodes
        if n.id not in reached
    ]

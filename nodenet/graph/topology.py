"""The rules of a legal graph and the queries on its wiring, in one place.

- :func:`connection_problems` / :func:`can_connect`: whether an edge may join two
  blocks (both exist, not a self-loop, the source has that output, the target has that
  input port and it is free, no cycle). Validation checks every edge of a file with
  it; the editor checks an edge before it is made. Each broken rule is a
  :class:`Refusal` carrying both phrasings: the editor's sentence and the problem
  validation reports against a node.
- :func:`topological_order`: Kahn's order with ties broken by file order, and the
  nodes on cycles.
- :func:`path_between` and :func:`reachable`: path and reachability queries.

Every function is linear in nodes + edges (the heap of Kahn's order adds a log).
Qt-free; of the engine it reads only the block catalog.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nodenet.engine.catalog import LAYERS
from nodenet.errors import shorten

if TYPE_CHECKING:
    from nodenet.engine.layer import Layer
    from nodenet.graph.project import Edge


@dataclass(frozen=True)
class Refusal:
    """One rule an edge breaks.

    ``reason`` is the editor's sentence; ``problem`` what validation reports against
    ``node`` (or ``field``), ``None`` when validation reports it elsewhere (an unknown
    block type is the node's own problem). ``final``: later rules are not checked.
    """

    rule: str
    reason: str
    problem: str | None = None
    node: str | None = None
    field: str | None = None
    final: bool = True

    def __str__(self) -> str:
        return self.reason


class Wiring:
    """What the connection rules read of a graph.

    ``types``: node id -> block type. ``n_outputs``: a node's output count, ``None``
    when unknown (its parameters are invalid: that is its own problem). ``edges``: the
    graph's edges, when checking an edit (ports and cycles are read from them);
    without them the wiring is filled edge by edge with :meth:`add` (a file's edges,
    in order). ``editing``: a port of ``None`` means the next free port, a merge's
    ports fill in order, and an edge closing a cycle is refused; a file's ports are
    taken as written and its cycles are found by :func:`topological_order`.
    ``group_ports``: node id -> (inputs, outputs) of each ``Group`` instance whose
    definition is known (its ports are its definition's).
    """

    def __init__(
        self,
        types: Mapping[str, Any],
        n_outputs: Callable[[str], int | None] | None = None,
        edges: Sequence[Edge] | None = None,
        editing: bool = False,
        group_ports: Mapping[str, tuple[int, int]] | None = None,
    ):
        self.types = types
        self.group_ports = group_ports or {}
        base = n_outputs or _unknown
        if self.group_ports:

            def counted(node_id: str) -> int | None:
                ports = self.group_ports.get(node_id)
                return base(node_id) if ports is None else ports[1]

            self.n_outputs: Callable[[str], int | None] = counted
        else:
            self.n_outputs = base
        self.edges = edges
        self.editing = editing
        self._fed: dict[str, dict[int, str]] = {}
        self._classes: dict[Any, Any] = {}  # block type -> catalog class (None: unknown)

    def block_class(self, block_type: Any) -> Any:
        """The catalog class of ``block_type``, ``None`` if it is not one (cached)."""
        try:
            return self._classes[block_type]
        except KeyError:
            pass
        except TypeError:  # an unhashable type read from a file
            return None
        cls = LAYERS.get(block_type) if block_type in LAYERS else None
        self._classes[block_type] = cls
        return cls

    def node_class(self, node_id: str) -> Any:
        """What the rules read of a node's inputs: a ``Group`` instance's ports are its
        definition's, any other block's its catalog class's (``None``: unknown)."""
        ports = self.group_ports.get(node_id)
        if ports is not None:
            return _GroupPorts(ports[0])
        return self.block_class(self.types[node_id])

    @classmethod
    def of_project(
        cls,
        project: Any,
        layers: Mapping[str, Layer] | None = None,
        among: Iterable[str] | None = None,
    ) -> Wiring:
        """The wiring of a project being edited (``layers``: an analysis's, for output
        counts). ``among``: the only nodes whose types are asked for (the two ends of an
        edge), found without indexing every node."""
        known = layers or {}
        groups = getattr(project, "groups", None) or {}

        def n_outputs(node_id: str) -> int | None:
            layer = known.get(node_id)
            return None if layer is None else layer.n_outputs()

        if among is None:
            types = {n.id: n.type for n in project.nodes}
        else:
            wanted, types = set(among), {}
            for n in project.nodes:  # the first node of an id, as Project.node finds it
                if n.id in wanted and n.id not in types:
                    types[n.id] = n.type
                    if len(types) == len(wanted):
                        break
        ports = {}
        if groups:
            for n in project.nodes if among is None else ():
                _group_ports(n, groups, ports)
            for node_id in types if among is not None else ():
                _group_ports(project.node(node_id), groups, ports)
        return cls(types, n_outputs, project.edges, editing=True, group_ports=ports)

    def fed(self, node_id: str) -> dict[int, str]:
        """Input port -> the node feeding it, for ``node_id``."""
        if self.edges is not None:
            return {e.port: e.src for e in sorted(self._into(node_id), key=_port)}
        return self._fed.get(node_id, _NOTHING_FED)

    def add(self, edge: Edge) -> None:
        """Record that ``edge`` feeds its port (checking a file's edges one by one)."""
        self._fed.setdefault(edge.dst, {})[edge.port] = edge.src

    def _into(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges or () if e.dst == node_id]


_NOTHING_FED: dict[int, str] = {}  # shared, never written


@dataclass(frozen=True)
class _GroupPorts:
    """A ``Group`` instance's inputs, as the rules read a catalog class's."""

    N_INPUTS: int
    TYPE: str = "Group"
    MAX_INPUTS: int | None = None


def _group_ports(node: Any, groups: Mapping[str, Any], out: dict[str, tuple[int, int]]) -> None:
    """Record the (inputs, outputs) of ``node`` if it instantiates a known definition."""
    if node.type != "Group" or not isinstance(node.params, dict):
        return
    name = node.params.get("group")
    group = groups.get(name) if isinstance(name, str) else None
    if group is not None and node.id not in out:
        out[node.id] = (len(group.inputs), len(group.outputs))


def _unknown(_node_id: str) -> int | None:
    return None


def _port(edge: Edge) -> int:
    return edge.port


def can_connect(
    wiring: Wiring, src: str, dst: str, port: int | None = None, src_port: int = 0
) -> str | None:
    """``None`` if output ``src_port`` of ``src`` may feed input ``port`` of ``dst``, else
    the reason (one sentence)."""
    refusals, _ = connection_problems(wiring, src, dst, port, src_port)
    return refusals[0].reason if refusals else None


def connection_problems(
    wiring: Wiring, src: str, dst: str, port: int | None, src_port: int = 0
) -> tuple[list[Refusal], int]:
    """Every rule the edge breaks, in order, up to the first final one; and the port it
    takes (``port`` itself unless ``wiring.editing`` chose one)."""
    refusals: list[Refusal] = []
    types = wiring.types
    if src not in types or dst not in types:
        return [_missing(src, dst, src in types, dst in types)], 0
    if src == dst:
        return [Refusal("self", f"{src} cannot feed itself", "is connected to itself", src)], 0
    if types[src] == "Output":
        refusals.append(
            Refusal(
                "from-output",
                f"{src} is an Output: it ends the graph and cannot feed {dst}",
                f"an Output ends the graph; it cannot feed {dst!r} "
                "(connect from the block before it)",
                src,
                final=False,
            )
        )
    dst_type = types[dst]
    cls = wiring.node_class(dst)
    fed = wiring.fed(dst)
    if cls is None:
        reason = f"{dst} has an unknown block type {dst_type!r}"
        refusals.append(Refusal("unknown-type", reason, final=False))
        if port is None:
            return refusals, 0
    else:
        final, port = _input_port(wiring, cls, src, dst, port, fed)
        if final is not None:
            return [*refusals, final], port
    assert port is not None
    final = _output_port(wiring, src, dst, src_port)
    if final is None:
        final = _taken(cls, src, dst, port, fed)
    if final is None and wiring.editing and wiring.edges is not None:
        cycle = path_between(wiring.edges, dst, src)
        if cycle:
            reason = f"{src} → {dst} would make a cycle through {' → '.join(cycle)}"
            final = Refusal("cycle", reason)
    return ([*refusals, final] if final is not None else refusals), port


def _missing(src: str, dst: str, has_src: bool, has_dst: bool) -> Refusal:
    reason = f"there is no block named {(dst if has_src else src)!r}"
    if has_dst:
        return Refusal("missing", reason, f"edge from a missing node {shorten(repr(src))}", dst)
    if has_src:
        return Refusal("missing", reason, f"edge to a missing node {shorten(repr(dst))}", src)
    where = f"{shorten(src)} -> {shorten(dst)}"
    return Refusal("missing", reason, f"edge between missing nodes ({where})", field="edges")


def _input_port(
    wiring: Wiring, cls: Any, src: str, dst: str, port: int | None, fed: dict[int, str]
) -> tuple[Refusal | None, int]:
    """The input port the edge takes, or the final refusal."""
    if cls.N_INPUTS == 0:
        problem = f"{cls.TYPE} takes no input, but {shorten(src)} -> {shorten(dst)} feeds it"
        reason = f"{dst} is an {cls.TYPE}: it takes no input"
        return Refusal("no-input", reason, problem, dst), 0
    if wiring.editing:
        if port is not None and (not isinstance(port, int) or isinstance(port, bool) or port < 0):
            return Refusal("bad-port", f"{port!r} is not an input port"), 0
        free = next(p for p in range(len(fed) + 1) if p not in fed)
        if cls.N_INPUTS is None:  # a merge: ports fill in order
            if (
                cls.MAX_INPUTS is not None
                and (port is None or port >= free)
                and free >= cls.MAX_INPUTS
            ):
                return Refusal("full", f"every input port of {dst} is already connected"), 0
            port = free if port is None or port > free else port
        elif port is None:
            if free >= cls.N_INPUTS:
                return Refusal("full", f"every input port of {dst} is already connected"), 0
            port = free
    assert port is not None
    if cls.N_INPUTS is None and cls.MAX_INPUTS is not None and port >= cls.MAX_INPUTS:
        problem = (
            f"edge from {src!r} to input port {port}, but {cls.TYPE} takes at most "
            f"{cls.MAX_INPUTS} inputs"
        )
        reason = f"{dst} ({cls.TYPE}) takes at most {cls.MAX_INPUTS} inputs"
        return Refusal("no-port", reason, problem, dst), port
    if cls.N_INPUTS is not None and port >= cls.N_INPUTS:
        problem = (
            f"edge from {src!r} to input port {port}, but {cls.TYPE} has "
            f"{cls.N_INPUTS} input port(s)"
        )
        reason = f"{dst} ({cls.TYPE}) has no input port {port}"
        return Refusal("no-port", reason, problem, dst), port
    return None, port


def _output_port(wiring: Wiring, src: str, dst: str, src_port: Any) -> Refusal | None:
    if type(src_port) is int and src_port == 0:  # every block has an output 0
        return None
    if not isinstance(src_port, int) or isinstance(src_port, bool) or src_port < 0:
        return Refusal("bad-output", f"{src_port!r} is not an output port")
    count = wiring.n_outputs(src)
    if count is None or src_port < count:
        return None
    src_type = wiring.types[src]
    problem = f"edge from output {src_port} of {src!r}, but {src_type} has {count} output(s)"
    reason = f"{src} ({src_type}) has no output {src_port}"
    return Refusal("no-output", reason, problem, dst)


def _taken(cls: Any, src: str, dst: str, port: int, fed: dict[int, str]) -> Refusal | None:
    if port not in fed:
        return None
    other = fed[port]
    if cls is not None and cls.N_INPUTS == 1:
        reason = f"{dst} already has an input ({other}); disconnect it first"
    else:
        reason = f"input port {port} of {dst} is already fed by {other}"
    problem = f"input port {port} is fed by both {other!r} and {src!r}"
    return Refusal("taken", reason, problem, dst)


# -- order and paths -------------------------------------------------------------------


def topological_order(
    ids: Iterable[str], edges: Iterable[tuple[str, str]]
) -> tuple[list[str], list[str]]:
    """Kahn's algorithm, ties broken by the order of ``ids``; returns (order, nodes on
    cycles). Edges touching an unknown id and self-loops are ignored; nodes downstream
    of a cycle are left out of the order but are not on a cycle."""
    ids = list(dict.fromkeys(ids))
    index = {node_id: i for i, node_id in enumerate(ids)}
    indegree = dict.fromkeys(ids, 0)
    children: dict[str, list[str]] = {node_id: [] for node_id in ids}
    for src, dst in edges:
        if src in index and dst in index and src != dst:
            indegree[dst] += 1
            children[src].append(dst)
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


def path_between(edges: Iterable[Edge], start: str, goal: str) -> list[str]:
    """Node ids along a directed path ``start`` -> ... -> ``goal`` (empty if none)."""
    children: dict[str, list[str]] = {}
    for e in edges:
        children.setdefault(e.src, []).append(e.dst)
    came_from: dict[str, str | None] = {start: None}
    stack = [start]
    while stack:
        node_id = stack.pop()
        if node_id == goal:
            path = [node_id]
            while (previous := came_from[path[-1]]) is not None:
                path.append(previous)
            return path[::-1]
        for child in children.get(node_id, ()):
            if child not in came_from:
                came_from[child] = node_id
                stack.append(child)
    return []


def reachable(starts: Iterable[str], neighbours: Mapping[str, Iterable[str]]) -> set[str]:
    """Every node reached from ``starts`` (included) following ``neighbours``."""
    reached: set[str] = set()
    stack = list(starts)
    while stack:
        node_id = stack.pop()
        if node_id in reached:
            continue
        reached.add(node_id)
        stack.extend(neighbours.get(node_id, ()))
    return reached

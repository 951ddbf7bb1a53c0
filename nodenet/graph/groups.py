"""Groups: named sub-graphs (definitions) used as blocks (instances), and their flattening.

A project's ``groups`` maps a definition's name to a :class:`GroupDef`: inner nodes and
edges, and ports (:class:`GroupInput` feeds inner input ports, :class:`GroupOutput` reads
an inner output). A node of type ``"Group"`` with ``params {"group": NAME}`` is an
instance: its input port ``i`` is the definition's input ``i``, its output ``j`` the
definition's output ``j``. Definitions may hold instances of other definitions, never
(directly or not) of themselves.

Everything below the editor sees a project with groups as its inside:
:func:`flatten` replaces each instance by copies of its inner nodes, named
``instance/inner`` (``/`` never occurs in a user's id, so no flattened id can clash
with one, and the weights of an inner block are keyed ``instance/inner/weight``).
Flattening is linear in the size of the flattened graph, which is bounded
(:data:`MAX_NODES` nodes) before any copy is made; it reports what is wrong with a
group (unknown definition, a port out of range, recursion) as problems naming the
instance. Files are read by :mod:`nodenet.graph.group_format`; the format is documented in
``docs/project-format.md`` (version 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nodenet.errors import shorten
from nodenet.graph.project import (
    MAX_NODES,
    MAX_PORT,
    Edge,
    Node,
    Project,
)

if TYPE_CHECKING:
    from nodenet.graph.validation import Analysis, Problem

GROUP_TYPE = "Group"  # the type of an instance node
GROUP_PARAM = "group"  # its one parameter: the definition's name
SEPARATOR = "/"  # between an instance's id and an inner node's id in a flattened id
MAX_GROUP_DEPTH = 32  # definitions nested inside each other


@dataclass
class GroupInput:
    """A definition's input port: the inner input ports (node id, port) it feeds."""

    name: str
    to: list[tuple[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "to": [{"node": n, "port": p} for n, p in self.to]}


@dataclass
class GroupOutput:
    """A definition's output port: output ``port`` of inner node ``node``."""

    name: str
    node: str
    port: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "from": self.node}
        if self.port:
            out["from_port"] = self.port
        return out


@dataclass
class GroupDef:
    """A sub-graph with named ports, instantiated by ``Group`` nodes."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    inputs: list[GroupInput] = field(default_factory=list)
    outputs: list[GroupOutput] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "inputs": [p.to_dict() for p in self.inputs],
            "outputs": [p.to_dict() for p in self.outputs],
        }


def instance(node_id: str, definition: str, pos: list[float] | None = None) -> Node:
    """A ``Group`` node instantiating ``definition``."""
    return Node(node_id, GROUP_TYPE, {GROUP_PARAM: definition}, list(pos or [0.0, 0.0]))


def definition_of(node: Node) -> str | None:
    """The definition a ``Group`` node names, ``None`` if its params name none."""
    name = node.params.get(GROUP_PARAM) if isinstance(node.params, dict) else None
    return name if isinstance(name, str) else None


# -- checking definitions ------------------------------------------------------------------


def _problem(message: str, node: str | None = None, where: str | None = None) -> Problem:
    from nodenet.graph.validation import Problem

    return Problem(message, node, where)


class _Definitions:
    """Each definition checked once: its ports, its nesting and its flattened size."""

    def __init__(self, groups: dict[str, GroupDef]):
        self.groups = groups
        self.sizes: dict[str, int] = {}  # blocks once flattened
        self.depths: dict[str, int] = {}  # groups nested, itself included
        self.bad: dict[str, str] = {}  # name -> why its instances cannot be built
        self.roots: dict[str, str] = {}  # name -> the refusal all that goes back to
        self.problems: list[Problem] = []
        done: set[str] = set()
        for name in groups:
            if name not in done:
                self._walk(name, done)

    def _children(self, name: str) -> list[tuple[str, str]]:
        """(instance id, definition) of each known definition ``name`` instantiates."""
        out = []
        for n in self.groups[name].nodes:
            child = definition_of(n) if n.type == GROUP_TYPE else None
            if child is not None and child in self.groups:
                out.append((n.id, child))
        return out

    def _walk(self, root: str, done: set[str]) -> None:
        """Depth-first from ``root`` without recursion: each definition is finished after
        the ones it holds; one met again while open closes a cycle."""
        path, open_ = [root], {root}
        stack = [iter(self._children(root))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                name = path.pop()
                open_.discard(name)
                self._finish(name)
                done.add(name)
                continue
            child = step[1]
            if child in open_:
                cycle = " -> ".join([*path[path.index(child) :], child])
                self._refuse(child, f"contains itself ({shorten(cycle)})")
            elif child not in done:
                path.append(child)
                open_.add(child)
                stack.append(iter(self._children(child)))

    def _finish(self, name: str) -> None:
        """Size, depth and ports of ``name``, whose definitions inside are finished."""
        if name in self.bad:
            return
        reason = self._ports(self.groups[name])
        if reason is not None:
            self._refuse(name, reason)
            return
        total, depth = 0, 1
        for n in self.groups[name].nodes:
            total += n.type != GROUP_TYPE
        for node_id, child in self._children(name):
            if child in self.bad:
                self.roots[name] = self.roots[child]
                self.bad[name] = (
                    f"holds {shorten(node_id)!r}, a {shorten(child)!r} group, which "
                    f"{'' if child == self.roots[child] else 'leads to one that '}"
                    f"{self.bad[self.roots[child]]}"
                )
                return
            total += self.sizes[child]
            depth = max(depth, self.depths[child] + 1)
        if depth > MAX_GROUP_DEPTH:
            self._refuse(name, f"nests groups more than {MAX_GROUP_DEPTH} deep")
        elif total > MAX_NODES:
            self._refuse(name, f"holds more than {MAX_NODES:,} blocks once flattened")
        else:
            self.sizes[name], self.depths[name] = total, depth

    def _refuse(self, name: str, reason: str) -> None:
        if name not in self.bad:
            self.bad[name] = reason
            self.roots[name] = name
            self.problems.append(_problem(reason, where=f"groups.{shorten(name)}"))

    def _ports(self, group: GroupDef) -> str | None:
        """Why the ports of ``group`` cannot be wired, or ``None``."""
        kinds = {n.id: n for n in group.nodes}
        for n in group.nodes:
            if n.type in ("Input", "Output"):
                return (
                    f"holds {n.type} block {shorten(n.id)!r}: a group's inputs and outputs "
                    "are its ports"
                )
        for i, port in enumerate(group.inputs):
            for node, p in port.to:
                inner = kinds.get(node)
                if inner is None:
                    return f"input {i} feeds {shorten(node)!r}, which the group does not hold"
                if inner.type == GROUP_TYPE and p >= self._count(inner, "inputs"):
                    return f"input {i} feeds input port {p} of {shorten(node)!r}, which it lacks"
        for j, port in enumerate(group.outputs):
            inner = kinds.get(port.node)
            if inner is None:
                return f"output {j} reads {shorten(port.node)!r}, which the group does not hold"
            if inner.type == GROUP_TYPE and port.port >= self._count(inner, "outputs"):
                return (
                    f"output {j} reads output {port.port} of {shorten(port.node)!r}, which it lacks"
                )
        if not group.outputs:
            return "has no outputs"
        return None

    def _count(self, node: Node, what: str) -> int:
        child = self.groups.get(definition_of(node) or "")
        return MAX_PORT + 1 if child is None else len(getattr(child, what))


# -- flattening ------------------------------------------------------------------------------


@dataclass
class Flat:
    """A project's flattened graph: ``project`` has no ``Group`` node; ``inner`` holds the
    flattened ids (``instance/inner``); ``instances[path]`` is an instance's definition and
    its outputs in the flattened graph (node, output)."""

    project: Project
    problems: list[Problem]
    inner: set[str]
    instances: dict[str, tuple[str, list[tuple[str, int]]]]

    def outer(self, project: Project, inside: Analysis) -> Analysis:
        """The analysis of ``project`` itself from ``inside``, its flattened graph's: its own
        nodes in topological order (each instance where its first inner block is), their
        shapes and counts (an instance's: see :meth:`annotate`), every problem."""
        from nodenet.graph.validation import Analysis

        self.annotate(inside)
        own = {n.id for n in project.nodes}
        order: list[str] = []
        placed: set[str] = set()
        for flat_id in inside.order:
            top = flat_id.split(SEPARATOR, 1)[0]
            if top in own and top not in placed:
                placed.add(top)
                order.append(top)
        return Analysis(
            problems=inside.problems,
            order=order,
            shapes={i: inside.shapes[i] for i in order if i in inside.shapes},
            params={i: inside.params[i] for i in order if i in inside.params},
            layers={i: inside.layers[i] for i in order if i in inside.layers},
            index=project.edge_index(),
            output_shapes={i: inside.output_shapes[i] for i in order if i in inside.output_shapes},
            flat=self.project,
            inside=inside,
        )

    def annotate(self, analysis: Analysis) -> None:
        """Give each instance its outputs' shapes and its inside's parameter totals, and put
        the groups' own problems first."""
        analysis.problems[:0] = self.problems
        totals: dict[str, list[int]] = {path: [0, 0] for path in self.instances}
        for node_id, (trainable, frozen) in analysis.params.items():
            parts = node_id.split(SEPARATOR)
            for k in range(1, len(parts)):
                total = totals.get(SEPARATOR.join(parts[:k]))
                if total is not None:
                    total[0] += trainable
                    total[1] += frozen
        for path, (_, outs) in self.instances.items():
            shapes = [analysis.shape_of(src, port) for src, port in outs]
            if shapes and all(s is not None for s in shapes):
                analysis.shapes[path] = shapes[0]
                if len(shapes) > 1:
                    analysis.output_shapes[path] = tuple(shapes)
            analysis.params[path] = (totals[path][0], totals[path][1])


@dataclass
class _Ports:
    inputs: list[list[tuple[str, int]]]
    outputs: list[tuple[str, int]]


def flatten(project: Project) -> Flat:
    """``project`` with every instance replaced by its inside (see the module's docs)."""
    groups: dict[str, GroupDef] = getattr(project, "groups", None) or {}
    defs = _Definitions(groups)
    flattener = _Flattener(defs)
    flattener.problems.extend(defs.problems)
    total = 0
    for n in project.nodes:
        total += defs.sizes.get(definition_of(n) or "", 0) if n.type == GROUP_TYPE else 1
    if total > MAX_NODES:
        flattener.problems.append(
            _problem(
                f"{total:,} blocks once groups are flattened, more than {MAX_NODES:,}",
                None,
                "nodes",
            )
        )
        flattener.expand = False
    flattener.scope(project.nodes, project.edges, "", True)
    flat = Project(project.name, flattener.nodes, flattener.edges, project.training, project.data)
    flat.path = project.path
    return Flat(flat, flattener.problems, flattener.inner, flattener.instances)


class _Flattener:
    def __init__(self, defs: _Definitions):
        self.defs = defs
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.problems: list[Problem] = []
        self.inner: set[str] = set()
        self.instances: dict[str, tuple[str, list[tuple[str, int]]]] = {}
        self.expand = True

    def scope(
        self,
        nodes: list[Node],
        edges: list[Edge],
        prefix: str,
        trainable: bool,
        outside: set[tuple[str, int]] | frozenset = frozenset(),
    ) -> dict[str, _Ports]:
        """Flatten one graph (the project's, or a definition's under ``prefix``); the ports
        of its instances, by local id. ``outside``: the (node, port) a definition's inputs
        feed."""
        ports: dict[str, _Ports] = {}
        dropped: set[str] = set()
        for n in nodes:
            flat_id = prefix + n.id
            if n.type != GROUP_TYPE:
                learns = n.trainable and trainable
                self.nodes.append(Node(flat_id, n.type, n.params, n.pos, learns))
                if prefix:
                    self.inner.add(flat_id)
                continue
            name = self._definition(n, flat_id)
            if name is None:
                dropped.add(n.id)
                continue
            group = self.defs.groups[name]
            inside = flat_id + SEPARATOR
            fed_in = {target for port in group.inputs for target in port.to}
            inner = self.scope(group.nodes, group.edges, inside, trainable and n.trainable, fed_in)
            ins = [
                [dst for node, p in port.to for dst in _targets(inner, inside, node, p)]
                for port in group.inputs
            ]
            outs = [_source(inner, inside, port.node, port.port) for port in group.outputs]
            ports[n.id] = _Ports(ins, outs)
            self.instances[flat_id] = (name, outs)
        fed: dict[str, set[int]] = {i: set() for i in ports}
        for node, port in outside:
            if node in fed:
                fed[node].add(port)
        for e in edges:
            if e.src in dropped or e.dst in dropped:
                continue
            if e.src in ports:
                outs = ports[e.src].outputs
                if e.src_port >= len(outs):
                    self.problems.append(
                        _problem(
                            f"has no output {e.src_port} (its group has {len(outs)})",
                            prefix + e.src,
                        )
                    )
                    continue
                src = outs[e.src_port]
            else:
                src = (prefix + e.src, e.src_port)
            if e.dst in ports:
                ins = ports[e.dst].inputs
                if e.port >= len(ins):
                    self.problems.append(
                        _problem(
                            f"has no input port {e.port} (its group has {len(ins)})", prefix + e.dst
                        )
                    )
                    continue
                fed[e.dst].add(e.port)
                dsts = ins[e.port]
            else:
                dsts = [(prefix + e.dst, e.port)]
            self.edges.extend(Edge(src[0], dst, port, src[1]) for dst, port in dsts)
        for node_id, connected in fed.items():
            for port in range(len(ports[node_id].inputs)):
                if port not in connected:
                    self.problems.append(
                        _problem(f"group input port {port} is not connected", prefix + node_id)
                    )
        return ports

    def _definition(self, n: Node, flat_id: str) -> str | None:
        """The definition ``n`` instantiates, or ``None`` with a problem."""
        name = definition_of(n)
        extra = [k for k in n.params if k != GROUP_PARAM] if isinstance(n.params, dict) else []
        if name is None:
            message = f"a Group block must name its definition: params {{{GROUP_PARAM!r}: NAME}}"
        elif extra:
            message = f"a Group block takes only the parameter {GROUP_PARAM!r} (not {extra[0]!r})"
        elif name not in self.defs.groups:
            message = f"unknown group {shorten(name)!r} (the project defines no such group)"
        elif name in self.defs.bad:
            message = f"its group {shorten(name)!r} {self.defs.bad[name]}"
        elif not self.expand:
            return None
        else:
            return name
        self.problems.append(_problem(message, flat_id))
        return None


def _targets(inner: dict[str, _Ports], prefix: str, node: str, port: int) -> list[tuple[str, int]]:
    return inner[node].inputs[port] if node in inner else [(prefix + node, port)]


def _source(inner: dict[str, _Ports], prefix: str, node: str, port: int) -> tuple[str, int]:
    return inner[node].outputs[port] if node in inner else (prefix + node, port)

"""How a project's groups nest, as both exporters write them: one level (:class:`Scope`) per
definition, read at its first instance, and the project's own level above them.

The exporters walk the flattened graph (ids ``instance/inner``) for shapes, layers and
weights, and a scope for what one generated function or class holds: its blocks and
instances in topological order, and what feeds each input port. A local source
``("", k)`` is the definition's input ``k``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from nodenet.export._code import identifiers
from nodenet.graph.groups import GROUP_TYPE, SEPARATOR, GroupDef, definition_of, flatten
from nodenet.graph.project import Edge, Node, Project

__all__ = ["SEPARATOR", "Groups", "Scope", "read_groups"]

BUILDER_ARGS = ("name", "trainable", "model")  # the parameters of a Keras builder


@dataclass
class Scope:
    """One level: the project's own graph (``definition`` None, ``prefix`` "") or a
    definition's at its first instance (``prefix`` ``"b1/"``)."""

    definition: str | None
    prefix: str
    items: list[str]  # local ids, topological
    nodes: dict[str, Node]
    instances: dict[str, str]  # local id of an instance -> its definition
    feeds: dict[str, list[tuple[str, int]]]  # local id -> local source per input port
    outputs: list[tuple[str, int]] = field(default_factory=list)  # a definition's, local
    local: dict[str, str] = field(default_factory=dict)  # local id -> identifier
    inputs: list[str] = field(default_factory=list)  # a definition's input variables


@dataclass
class Groups:
    definitions: dict[str, GroupDef]
    top: Scope
    scopes: dict[str, Scope]  # the definitions instantiated, inner ones first
    paths: dict[str, str]  # flattened instance path -> definition
    outs: dict[str, list[tuple[str, int]]]  # flattened instance path -> its flat outputs
    every: dict[str, list[str]]  # definition -> the paths of all its instances
    aliases: dict[tuple[str, int], str] = field(default_factory=dict)  # see name_outputs
    targets: dict[str, list[str]] = field(default_factory=dict)  # top instance -> variables

    def name_outputs(self, names: dict[str, str], taken: set[str]) -> None:
        """A variable per output of each ``Group`` block in the graph: ``b1``, then
        ``b1_1``, ...; the flattened outputs they are read as."""
        taken = taken | set(names.values())
        for node_id in self.top.instances:
            chosen = []
            for j, source in enumerate(self.outs[node_id]):
                name = names[node_id] if j == 0 else f"{names[node_id]}_{j}"
                while j and name in taken:
                    name += "_"
                taken.add(name)
                chosen.append(name)
                self.aliases.setdefault(source, name)
            self.targets[node_id] = chosen

    def flat(self, scope: Scope, src: str, port: int) -> tuple[str, int]:
        """The flattened (node, output) a local source is, ``("", k)`` for an input."""
        if src == "":
            return src, port
        if src in scope.instances:
            return self.outs[scope.prefix + src][port]
        return scope.prefix + src, port

    def attr(self, flat_id: str, names: dict[str, str]) -> str:
        """``b1.d1``: the PyTorch attribute path of a flattened block."""
        first, *rest = flat_id.split(SEPARATOR)
        parts, path = [names[first]], first
        for seg in rest:
            parts.append(self.scopes[self.paths[path]].local[seg])
            path += SEPARATOR + seg
        return ".".join(parts)

    def keras_path(self, flat_id: str, top_name: str) -> str:
        """``b1/d1``: the Keras layer names from the model down to a flattened block
        (``top_name`` the first one's), as the weights file keys them."""
        first, *rest = flat_id.split(SEPARATOR)
        parts, path = [top_name], first
        for seg in rest:
            parts.append(layer_name(self.scopes[self.paths[path]], seg))
            path += SEPARATOR + seg
        return SEPARATOR.join(parts)


def layer_name(scope: Scope, local_id: str) -> str:
    """The Keras name of a block or instance inside a definition: its id, or its variable
    name when the id holds a "." (Keras's torch backend refuses it in a module name)."""
    return scope.local[local_id] if "." in local_id else local_id


def read_groups(project: Project, order: list[str], reserved: tuple[str, ...]) -> Groups:
    """The levels of a valid project with groups (``order``: its flattened graph's)."""
    flat = flatten(project)
    definitions = dict(getattr(project, "groups", None) or {})
    paths = {path: name for path, (name, _) in flat.instances.items()}
    outs = {path: list(o) for path, (_, o) in flat.instances.items()}
    every: dict[str, list[str]] = {}
    for path, name in paths.items():
        every.setdefault(name, []).append(path)
    position = {node_id: k for k, node_id in enumerate(order)}
    scopes: dict[str, Scope] = {}
    for name in sorted(every, key=lambda d: -min(p.count(SEPARATOR) for p in every[d])):
        group = definitions[name]
        path = every[name][0]
        feeds = _feeds(group.nodes, group.edges)
        for k, port in enumerate(group.inputs):
            for node, p in port.to:
                _set(feeds, node, p, ("", k))
        scope = _scope(name, path + SEPARATOR, group.nodes, feeds, position)
        scope.outputs = [(o.node, o.port) for o in group.outputs]
        taken = (*reserved, *BUILDER_ARGS)
        scope.local = identifiers([n.id for n in group.nodes], taken)
        ports = identifiers([p.name for p in group.inputs], (*taken, *scope.local.values()))
        scope.inputs = list(ports.values()) if len(ports) == len(group.inputs) else []
        if not scope.inputs:  # two ports of one name
            scope.inputs = list(identifiers([f"input_{k}" for k in range(len(group.inputs))]))
        scopes[name] = scope
    top = _scope(None, "", project.nodes, _feeds(project.nodes, project.edges), position)
    return Groups(definitions, top, scopes, paths, outs, every)


def _feeds(nodes: list[Node], edges: list[Edge]) -> dict[str, list[tuple[str, int]]]:
    feeds: dict[str, list[tuple[str, int]]] = {n.id: [] for n in nodes}
    for e in edges:
        _set(feeds, e.dst, e.port, (e.src, e.src_port))
    return feeds


def _set(feeds: dict, node: str, port: int, source: tuple[str, int]) -> None:
    sources = feeds.setdefault(node, [])
    while len(sources) <= port:
        sources.append(("", -1))
    sources[port] = source


def _scope(
    definition: str | None,
    prefix: str,
    nodes: list[Node],
    feeds: dict[str, list[tuple[str, int]]],
    position: dict[str, int],
) -> Scope:
    """A level's blocks and instances in topological order (Kahn's, ties in the order of the
    flattened graph)."""
    by_id = {n.id: n for n in nodes}
    instances = {n.id: definition_of(n) or "" for n in nodes if n.type == GROUP_TYPE}
    needs = {n.id: {s for s, _ in feeds.get(n.id, []) if s in by_id} for n in nodes}
    users: dict[str, list[str]] = {n.id: [] for n in nodes}
    for node_id, sources in needs.items():
        for src in sources:
            users[src].append(node_id)

    def rank(node_id: str) -> int:
        return position.get(prefix + node_id, len(position))

    ready = deque(sorted((i for i, s in needs.items() if not s), key=rank))
    items: list[str] = []
    while ready:
        node_id = ready.popleft()
        items.append(node_id)
        for user in users[node_id]:
            needs[user].discard(node_id)
            if not needs[user]:
                ready.append(user)
    return Scope(definition, prefix, items, by_id, instances, feeds)


def scope_vars(groups: Groups, scope: Scope, layers: dict) -> dict[tuple[str, int], str]:
    """A variable per local source of a definition's level: its inputs, each output of its
    blocks (``lstm``, ``lstm_h``) and of its instances (``b``, or ``b_0``, ``b_1``)."""
    from nodenet.export.blocks import exporter

    names: dict[tuple[str, int], str] = {("", k): v for k, v in enumerate(scope.inputs)}
    taken = {*scope.inputs, *scope.local.values(), *BUILDER_ARGS}
    for node_id in scope.items:
        base = scope.local[node_id]
        if node_id in scope.instances:
            count = len(groups.definitions[scope.instances[node_id]].outputs)
            suffixes = [""] if count == 1 else [f"_{j}" for j in range(count)]
        else:
            count = layers[scope.prefix + node_id].n_outputs()
            suffixes = (
                [""]
                if count < 2
                else exporter(layers[scope.prefix + node_id]).output_suffixes(count)
            )
        for port, suffix in enumerate(suffixes):
            name = base + suffix
            if suffix:
                while name in taken:
                    name += "_"
                taken.add(name)
            names[node_id, port] = name
    return names

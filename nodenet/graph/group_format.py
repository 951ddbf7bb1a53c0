"""Reading the ``groups`` object of a project file into :class:`GroupDef` values.

Within bounds (definitions, nodes and edges across all definitions, ports), each
problem named by where it is (``groups.res.nodes[2]: ...``); nothing is flattened or
run here. The format: ``docs/project-format.md`` (Groups).
"""

from __future__ import annotations

from typing import Any

from nodenet.errors import brief, shorten
from nodenet.graph.groups import GroupDef, GroupInput, GroupOutput
from nodenet.graph.project import (
    MAX_EDGES,
    MAX_NODES,
    MAX_PORT,
    _read_edge,
    _read_node,
    id_problem,
)

MAX_GROUPS = 10_000  # definitions in one project
MAX_GROUP_PORTS = 1_000  # inputs or outputs of one definition


def read_groups(value: Any, problems: list[str]) -> dict[str, GroupDef]:
    """The ``groups`` object of a file; what cannot be read is added to ``problems``
    (``groups.NAME...: sentence``) and left out."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"groups must be an object (got {brief(value)})")
        return {}
    if len(value) > MAX_GROUPS:
        problems.append(f"groups: {len(value):,} definitions, more than a project may hold")
        return {}
    out: dict[str, GroupDef] = {}
    budget = {"nodes": MAX_NODES, "edges": MAX_EDGES}
    for name, item in value.items():
        where = f"groups.{shorten(name)}"
        problem = id_problem(name)
        if problem is not None:
            problems.append(f"groups: a definition's name: {problem.replace('id ', '', 1)}")
            continue
        try:
            out[name] = _read_def(item, budget)
        except ValueError as err:
            problems.append(f"{where}: {err}")
    return out


def _read_def(item: Any, budget: dict[str, int]) -> GroupDef:
    if not isinstance(item, dict):
        raise ValueError("a group definition must be an object")
    nodes = _items(item, "nodes", _read_node, budget)
    edges = _items(item, "edges", _read_edge, budget)
    inputs = [_read_input(p) for p in _list(item, "inputs", MAX_GROUP_PORTS)]
    outputs = [_read_output(p) for p in _list(item, "outputs", MAX_GROUP_PORTS)]
    return GroupDef(nodes, edges, inputs, outputs)


def _list(item: dict, key: str, limit: int) -> list:
    value = item.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list")
    if len(value) > limit:
        raise ValueError(f"{key}: {len(value):,} items, more than a group may hold ({limit:,})")
    return value


def _items(item: dict, key: str, read, budget: dict[str, int]) -> list:
    values = _list(item, key, budget[key])
    budget[key] -= len(values)
    out = []
    for i, value in enumerate(values):
        try:
            out.append(read(value))
        except ValueError as err:
            raise ValueError(f"{key}[{i}]: {err}") from None
    return out


def _port(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_PORT:
        raise ValueError(
            f"{what} must be a port number from 0 to {MAX_PORT:,} (got {brief(value)})"
        )
    return value


def _name(value: Any, i: int) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise ValueError(f"port {i}: name must be a string of at most 200 characters")
    return value


def _read_input(value: Any) -> GroupInput:
    if not isinstance(value, dict):
        raise ValueError("an input must be an object {name, to}")
    to = value.get("to", [])
    if not isinstance(to, list) or len(to) > MAX_PORT:
        raise ValueError("an input's to must be a list of {node, port}")
    targets = []
    for t in to:
        if not isinstance(t, dict) or not isinstance(t.get("node"), str):
            raise ValueError("an input's to must be a list of {node, port}")
        targets.append((t["node"], _port(t.get("port", 0), "port")))
    return GroupInput(_name(value.get("name", ""), 0), targets)


def _read_output(value: Any) -> GroupOutput:
    if not isinstance(value, dict) or not isinstance(value.get("from"), str):
        raise ValueError("an output must be an object {name, from, from_port}")
    port = _port(value.get("from_port", 0), "from_port")
    return GroupOutput(_name(value.get("name", ""), 0), value["from"], port)

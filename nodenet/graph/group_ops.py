"""Pure operations on a project's groups, for the editor to wrap in undo commands.

- :func:`group_nodes`: a selection becomes a definition and one instance of it, its
  incoming and outgoing wires the instance's ports; :func:`ungroup` reverses it.
- :func:`repeat`: a chain of N instances of a single-input, single-output definition
  (Neural Network Console's RepeatStart/RepeatEnd, as data), each with its own weights.

Each function takes a project and returns a new one (the argument is left as it was),
in time linear in the project's size.
"""

from __future__ import annotations

import copy
import itertools

from nodenet.errors import NodenetError, shorten
from nodenet.graph.groups import (
    GROUP_TYPE,
    GroupDef,
    GroupInput,
    GroupOutput,
    definition_of,
    instance,
)
from nodenet.graph.project import MAX_NODES, Edge, FreshNames, Project, id_problem

STEP_X = 260.0  # canvas distance between the repeated instances


class GroupError(NodenetError):
    """A group operation cannot be done; the message names the group or block."""


def repeat(
    project: Project,
    definition: str,
    times: int,
    *,
    after: str | None = None,
    prefix: str | None = None,
    pos: list[float] | None = None,
) -> tuple[Project, list[str]]:
    """``project`` with ``times`` instances of ``definition`` chained one into the next,
    and their ids (``prefix_1``, ``prefix_2``, ... fresh in the project; ``prefix``
    defaults to the definition's name).

    ``after``: a node whose output 0 feeds the first instance; what that output fed
    before is fed by the last instance instead (the chain is inserted there). Without it
    the chain is left unconnected at both ends, at ``pos``.
    """
    group = project.groups.get(definition)
    if group is None:
        raise GroupError(f"unknown group {shorten(definition)!r}")
    if len(group.inputs) != 1 or len(group.outputs) != 1:
        raise GroupError(
            f"group {shorten(definition)!r} has {len(group.inputs)} input(s) and "
            f"{len(group.outputs)} output(s); only a group with one of each can be repeated"
        )
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_NODES:
        raise GroupError(f"repeat {shorten(definition)!r}: times must be from 1 to {MAX_NODES:,}")
    out = copy.deepcopy(project)
    out.path = project.path
    start = list(pos or [0.0, 0.0])
    if after is not None:
        try:
            source = out.node(after)
        except KeyError:
            raise GroupError(f"repeat after {shorten(after)!r}: no such block") from None
        start = [source.pos[0] + STEP_X, source.pos[1]]
    names = FreshNames({n.id for n in out.nodes})
    ids = [names.take(f"{prefix or definition}_1") for _ in range(times)]
    out.nodes.extend(
        instance(node_id, definition, [start[0] + k * STEP_X, start[1]])
        for k, node_id in enumerate(ids)
    )
    if after is not None:
        for e in out.edges:  # what ``after`` fed now comes from the chain's end
            if e.src == after and e.src_port == 0:
                e.src = ids[-1]
        out.edges.append(Edge(after, ids[0], 0))
    out.edges.extend(Edge(a, b, 0) for a, b in itertools.pairwise(ids))
    return out, ids


def group_nodes(
    project: Project, ids: list[str], definition: str, instance_id: str | None = None
) -> tuple[Project, str]:
    """``project`` with the blocks ``ids`` moved into a new definition ``definition`` and
    replaced by one instance of it (id ``instance_id``, default: a fresh id from the
    definition's name); and the instance's id.

    The selection's incoming wires become the group's inputs (one per distinct source
    output, in edge order, feeding every inner port that source fed) and its outgoing
    wires its outputs (one per distinct inner output read outside). Refused: an empty
    selection, unknown ids, Input or Output blocks, a taken definition name, a selection
    whose result nothing reads, and one that a path leaves and re-enters (the group
    would feed itself).
    """
    chosen = set(ids)
    by_id = {n.id: n for n in project.nodes}
    if not chosen:
        raise GroupError("select the blocks to group")
    for node_id in ids:
        node = by_id.get(node_id)
        if node is None:
            raise GroupError(f"group: no block {shorten(node_id)!r}")
        if node.type in ("Input", "Output"):
            raise GroupError(f"{shorten(node_id)}: an {node.type} block cannot go into a group")
    problem = id_problem(definition)
    if problem is not None:
        raise GroupError(f"group name: {problem}")
    if definition in project.groups:
        raise GroupError(f"a group named {shorten(definition)!r} exists already")
    if _reenters(project, chosen):
        raise GroupError(
            "a path leaves the selection and comes back into it: the group would feed itself"
        )
    ins: dict[tuple[str, int], int] = {}
    outs: dict[tuple[str, int], int] = {}
    inner_edges, inputs, outputs = [], [], []
    for e in project.edges:
        if e.src in chosen and e.dst in chosen:
            inner_edges.append(copy.copy(e))
        elif e.dst in chosen:
            i = ins.setdefault((e.src, e.src_port), len(ins))
            if i == len(inputs):
                inputs.append(GroupInput(f"input_{i}", []))
            inputs[i].to.append((e.dst, e.port))
        elif e.src in chosen:
            j = outs.setdefault((e.src, e.src_port), len(outs))
            if j == len(outputs):
                outputs.append(GroupOutput(f"output_{j}", e.src, e.src_port))
    if not outputs:
        raise GroupError("nothing outside the selection reads its result: a group needs an output")
    members = [copy.deepcopy(by_id[i]) for i in dict.fromkeys(ids)]
    left = min(n.pos[0] for n in members)
    top = min(n.pos[1] for n in members)
    for n in members:
        n.pos = [n.pos[0] - left, n.pos[1] - top]
    out = copy.deepcopy(project)
    out.path = project.path
    out.groups[definition] = GroupDef(members, inner_edges, inputs, outputs)
    taken = {n.id for n in project.nodes if n.id not in chosen}
    if instance_id is None:
        instance_id = FreshNames(set(taken)).take(definition)
    elif instance_id in taken or id_problem(instance_id) is not None:
        raise GroupError(
            f"{shorten(instance_id)!r} cannot be the group block's id: it is taken or invalid"
        )
    new_id = instance_id
    first = next(i for i, n in enumerate(project.nodes) if n.id in chosen)
    kept = [n for n in out.nodes if n.id not in chosen]
    kept.insert(
        sum(1 for n in project.nodes[:first] if n.id not in chosen),
        instance(new_id, definition, [left, top]),
    )
    out.nodes = kept
    edges = []
    for e in out.edges:
        if e.src in chosen and e.dst in chosen:
            continue
        if e.dst in chosen:
            port = ins[(e.src, e.src_port)]
            edges.append(Edge(e.src, new_id, port, e.src_port))
        elif e.src in chosen:
            edges.append(Edge(new_id, e.dst, e.port, outs[(e.src, e.src_port)]))
        else:
            edges.append(e)
    out.edges = _unique_edges(edges)
    return out, new_id


def _unique_edges(edges: list[Edge]) -> list[Edge]:
    """``edges`` without repeats (one source feeding several inner ports is one wire)."""
    seen: set[tuple[str, str, int, int]] = set()
    out = []
    for e in edges:
        key = (e.src, e.dst, e.port, e.src_port)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def _reenters(project: Project, chosen: set[str]) -> bool:
    """Whether a path from the selection through blocks outside it leads back in."""
    out_of: dict[str, list[str]] = {}
    for e in project.edges:
        out_of.setdefault(e.src, []).append(e.dst)
    stack = [d for s in chosen for d in out_of.get(s, []) if d not in chosen]
    seen = set(stack)
    while stack:
        for d in out_of.get(stack.pop(), []):
            if d in chosen:
                return True
            if d not in seen:
                seen.add(d)
                stack.append(d)
    return False


def ungroup(project: Project, instance_id: str) -> tuple[Project, list[str]]:
    """``project`` with the instance ``instance_id`` replaced by copies of its inner blocks
    (their ids kept where free, else made fresh), wired as the instance was; and their ids.
    The definition stays (other instances or the palette may use it)."""
    node = next((n for n in project.nodes if n.id == instance_id), None)
    if node is None or node.type != GROUP_TYPE:
        raise GroupError(f"ungroup: {shorten(instance_id)!r} is not a group block")
    name = definition_of(node)
    group = project.groups.get(name or "")
    if group is None:
        raise GroupError(f"{shorten(instance_id)}: unknown group {shorten(str(name))!r}")
    names = FreshNames({n.id for n in project.nodes if n.id != instance_id})
    ids = {n.id: names.take(n.id) for n in group.nodes}
    members = []
    for n in group.nodes:
        copied = copy.deepcopy(n)
        copied.id = ids[n.id]
        copied.pos = [n.pos[0] + node.pos[0], n.pos[1] + node.pos[1]]
        copied.trainable = n.trainable and node.trainable
        members.append(copied)
    out = copy.deepcopy(project)
    out.path = project.path
    at = next(i for i, n in enumerate(out.nodes) if n.id == instance_id)
    out.nodes[at : at + 1] = members
    edges = []
    for e in out.edges:
        if e.dst == instance_id:
            if e.port < len(group.inputs):
                edges += [Edge(e.src, ids[d], p, e.src_port) for d, p in group.inputs[e.port].to]
        elif e.src == instance_id:
            if e.src_port < len(group.outputs):
                o = group.outputs[e.src_port]
                edges.append(Edge(ids[o.node], e.dst, e.port, o.port))
        else:
            edges.append(e)
    edges += [Edge(ids[e.src], ids[e.dst], e.port, e.src_port) for e in group.edges]
    out.edges = edges
    return out, [ids[n.id] for n in group.nodes]

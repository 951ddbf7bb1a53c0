"""The summary rows of a project with groups: Keras's nested-model rows.

A group instance is one row (its outputs' shapes, its inside's parameter totals) whose
``children`` are the rows of its inner blocks, nested as deep as the groups are; the
rows of each level are in the topological order of the flattened graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nodenet.graph.groups import GROUP_TYPE, SEPARATOR, GroupInput, definition_of

if TYPE_CHECKING:
    from nodenet.graph.project import Edge, Node, Project
    from nodenet.graph.summary import Row
    from nodenet.graph.validation import Analysis


def group_rows(project: Project, analysis: Analysis) -> tuple[Row, ...]:
    """The top-level rows of a valid ``project`` with groups, inner rows nested."""
    analysis = analysis.inside or analysis  # the flattened graph's: ids ``instance/inner``
    scopes: dict[str, list[str]] = {}  # a scope's path ("" top level) -> its ids, in order
    seen: set[str] = set()
    for flat_id in analysis.order:
        parts = flat_id.split(SEPARATOR)
        for k in range(1, len(parts) + 1):
            path = SEPARATOR.join(parts[:k])
            if path not in seen:
                seen.add(path)
                scopes.setdefault(SEPARATOR.join(parts[: k - 1]), []).append(parts[k - 1])
    return _rows(project, analysis, scopes, "", project.nodes, project.edges, [])


def _rows(
    project: Project,
    analysis: Analysis,
    scopes: dict[str, list[str]],
    scope: str,
    nodes: list[Node],
    edges: list[Edge],
    inputs: list[GroupInput],
) -> tuple[Row, ...]:
    from nodenet.graph.summary import Row

    by_id = {n.id: n for n in nodes}
    sources = _sources(edges, inputs)
    rows = []
    for local in scopes.get(scope, []):
        path = f"{scope}{SEPARATOR}{local}" if scope else local
        node = by_id[local]
        group, children = None, ()
        if node.type == GROUP_TYPE:
            group = definition_of(node)
            inside = project.groups[group]
            children = _rows(
                project, analysis, scopes, path, inside.nodes, inside.edges, inside.inputs
            )
        trainable, non_trainable = analysis.params[path]
        rows.append(
            Row(
                local,
                node.type,
                analysis.shapes[path],
                trainable,
                non_trainable,
                sources.get(local, ()),
                analysis.output_shapes.get(path, ()),
                group,
                children,
            )
        )
    return tuple(rows)


def _sources(edges: list[Edge], inputs: list[GroupInput]) -> dict[str, tuple[str, ...]]:
    """What feeds each node of one level, by port: ``lstm[1]`` for an edge from output 1,
    a group input's name (``input_0`` when it has none) for a group's input port."""
    fed: dict[str, list[tuple[int, str]]] = {}
    for e in edges:
        text = f"{e.src}[{e.src_port}]" if e.src_port else e.src
        fed.setdefault(e.dst, []).append((e.port, text))
    for i, port in enumerate(inputs):
        for node, p in port.to:
            fed.setdefault(node, []).append((p, port.name or f"input_{i}"))
    return {
        node: tuple(t for _, t in sorted(items, key=lambda x: x[0])) for node, items in fed.items()
    }

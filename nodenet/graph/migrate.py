"""Bringing an older project file up to the current format version, one step per version.

:func:`migrate` runs on the parsed JSON before it is read, so a step sees the file as
written: anything may be malformed, and a step leaves what it does not recognise as it
is (the reader then reports it). Each step takes a version-``n`` document and returns a
version-``n + 1`` one, without changing its argument.

Version 2 (see docs/project-format.md) added edges from a named output (``from_port``,
0 when absent, so every version-1 edge keeps its meaning) and wrapper blocks holding
their inner block as a parameter. A block type whose parameters changed between the two
versions has an entry in :data:`PARAMS_V1_TO_V2`.

Version 3 added groups (a top-level ``groups`` object of sub-graph definitions and
``Group`` nodes instantiating them, :mod:`nodenet.graph.groups`). A version-2 document
means the same in version 3, so its step only changes the number. Saving writes version 3
only when the project has groups and version 2 otherwise, so a project without groups
still opens in a nodenet that reads up to version 2.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from nodenet.errors import ProjectFileError, shorten

VERSION = 3  # the newest version, written by a project with groups; 1..VERSION open
GROUPLESS_VERSION = 2  # the version a project without groups is written as

# Block type -> a function taking a version-1 node's ``params`` (an object) and returning
# its version-2 params. It may raise ValueError naming what it cannot read; the load then
# fails with the node's id. Types not listed keep their params.
ParamsStep = Callable[[dict[str, Any]], dict[str, Any]]
PARAMS_V1_TO_V2: dict[str, ParamsStep] = {}

# Version 1's Bidirectional: the wrapped layer's type in ``layer`` (default LSTM) and its
# settings flat beside ``merge_mode``; each type read only its own (frozen here as they
# were, so later changes to the blocks do not change what a version-1 file means).
_V1_RECURRENT = (
    "units activation use_bias kernel_initializer recurrent_initializer bias_initializer "
    "kernel_regularizer recurrent_regularizer bias_regularizer dropout recurrent_dropout "
    "return_sequences"
).split()
_V1_WRAPPED = {
    "SimpleRNN": frozenset(_V1_RECURRENT),
    "LSTM": frozenset([*_V1_RECURRENT, "recurrent_activation", "unit_forget_bias"]),
    "GRU": frozenset([*_V1_RECURRENT, "recurrent_activation", "reset_after"]),
}


def bidirectional_v1_to_v2(params: dict[str, Any]) -> dict[str, Any]:
    """``{"layer": "GRU", "units": 8, "merge_mode": "sum"}`` ->
    ``{"layer": {"type": "GRU", "params": {"units": 8}}, "merge_mode": "sum"}``.

    Settings the chosen layer ignored in version 1 are dropped; an unknown layer
    keeps every setting, for validation to report.
    """
    flat = dict(params)
    kind = flat.pop("layer", "LSTM")
    merge = {"merge_mode": flat.pop("merge_mode")} if "merge_mode" in flat else {}
    names = _V1_WRAPPED.get(kind) if isinstance(kind, str) else None
    if names is not None:
        flat = {k: v for k, v in flat.items() if k in names}
    return {"layer": {"type": kind, "params": flat}, **merge}


PARAMS_V1_TO_V2["Bidirectional"] = bidirectional_v1_to_v2


def migrate(doc: dict[str, Any], source: str = "project") -> dict[str, Any]:
    """``doc`` (of a version from 1 to :data:`VERSION`, checked by the caller) brought
    up to :data:`VERSION`; a current document is returned as it is."""
    version = doc.get("version")
    while isinstance(version, int) and version < VERSION:
        doc = STEPS[version](doc, source)
        version = doc["version"]
    return doc


def v1_to_v2(doc: dict[str, Any], source: str = "project") -> dict[str, Any]:
    """Version 1 -> 2: edges read output 0 (a ``from_port`` key meant nothing in version
    1 and is dropped); the params of the block types in :data:`PARAMS_V1_TO_V2` are
    rewritten."""
    out = dict(doc)
    out["version"] = 2
    edges = doc.get("edges")
    if isinstance(edges, list) and any(isinstance(e, dict) and "from_port" in e for e in edges):
        out["edges"] = [_without_from_port(e) for e in edges]
    nodes = doc.get("nodes")
    if isinstance(nodes, list) and PARAMS_V1_TO_V2:
        out["nodes"] = [_node_v1_to_v2(node, i, source) for i, node in enumerate(nodes)]
    return out


def _without_from_port(edge: Any) -> Any:
    if not isinstance(edge, dict) or "from_port" not in edge:
        return edge
    return {k: v for k, v in edge.items() if k != "from_port"}


def _node_v1_to_v2(node: Any, i: int, source: str) -> Any:
    if not isinstance(node, dict):
        return node
    step = PARAMS_V1_TO_V2.get(node.get("type")) if isinstance(node.get("type"), str) else None
    params = node.get("params", {})
    if step is None or not isinstance(params, dict):
        return node
    try:
        new = step(copy.deepcopy(params))
    except ValueError as err:
        where = shorten(node["id"]) if isinstance(node.get("id"), str) else f"nodes[{i}]"
        raise ProjectFileError(
            f"{source}: {where}: its version-1 {node['type']} parameters cannot be "
            f"brought to version 2: {shorten(str(err))}"
        ) from None
    return {**node, "params": new}


def v2_to_v3(doc: dict[str, Any], source: str = "project") -> dict[str, Any]:
    """Version 2 -> 3: nothing changes meaning (version 3 adds ``groups``). A ``groups``
    key in a version-2 file was an unknown key kept as it was; it is read as groups."""
    return {**doc, "version": 3}


STEPS: dict[int, Callable[[dict[str, Any], str], dict[str, Any]]] = {1: v1_to_v2, 2: v2_to_v3}

"""Folding what an ONNX graph spells in several operators into one nodenet block.

After the walk (:mod:`nodenet.export.onnx_import`): a constant added after a bias-free
Dense (MatMul + Add) becomes its bias; an activation read only from a Dense or a
convolution becomes that block's ``activation``; the last step taken from a recurrent
layer's sequence becomes ``return_sequences=False``; a Flatten of a global pooling that
keeps its dims becomes ``keepdims=False``. A constant added anywhere else, or a step taken
from anything else, is refused. Edges are indexed by their ends, so folding costs time
linear in the graph.
"""

from __future__ import annotations

from nodenet.engine.catalog import LAYERS
from nodenet.errors import shorten
from nodenet.graph.project import Edge, Node

_RECURRENT = ("LSTM", "GRU", "SimpleRNN")
_ACTIVATED = ("Dense", "Conv1D", "Conv2D", "Conv3D")
_GLOBAL = tuple(f"Global{k}Pooling{n}D" for k in ("Average", "Max") for n in (1, 2, 3))


class _Graph:
    """The importer's nodes and edges, indexed by id and by the ends of each edge."""

    def __init__(self, nodes: list[Node], edges: list[Edge]):
        self.nodes = {n.id: n for n in nodes}
        self.into: dict[str, Edge] = {}  # the one edge into a pseudo block or activation
        self.out: dict[str, list[Edge]] = {}
        for edge in edges:
            self.into.setdefault(edge.dst, edge)
            self.out.setdefault(edge.src, []).append(edge)
        self.removed: set[str] = set()

    def source(self, node: Node) -> tuple[Node, int]:
        edge = self.into[node.id]
        return self.nodes[edge.src], edge.src_port

    def readers(self, node: Node, port: int | None = None) -> int:
        """How many edges read ``node`` (its output ``port``)."""
        edges = self.out.get(node.id, [])
        return sum(1 for e in edges if port is None or e.src_port == port)

    def remove(self, node: Node) -> None:
        """Drop ``node``; what read it reads its source (the same output)."""
        source, port = self.source(node)
        edge = self.into[node.id]
        self.out[source.id].remove(edge)
        for reader in self.out.pop(node.id, []):
            reader.src, reader.src_port = source.id, port
            self.out[source.id].append(reader)
        self.removed.add(node.id)


def fuse(imp) -> None:
    """Fold pseudo blocks and separate activations into the blocks before them, in place."""
    g = _Graph(imp.nodes, imp.edges)
    for node in imp.nodes:
        if node.type == "_Bias":
            _bias(imp, g, node)
        elif node.type == "_LastStep":
            _last_step(imp, g, node)
    for node in imp.nodes:
        if node.id in g.removed:
            continue
        source, _ = g.source(node) if node.id in g.into else (None, 0)
        if source is None or g.readers(source) != 1:
            continue
        if node.type == "Activation" and source.type in _ACTIVATED:
            if "activation" not in source.params:
                source.params["activation"] = node.params.get("activation", "relu")
                g.remove(node)
        elif node.type == "Flatten" and source.type in _GLOBAL and source.params.get("keepdims"):
            del source.params["keepdims"]
            g.remove(node)
    imp.nodes = [n for n in imp.nodes if n.id not in g.removed]
    imp.edges = [e for e in imp.edges if e.dst not in g.removed]


def _bias(imp, g: _Graph, node: Node) -> None:
    source, _ = g.source(node)
    units = _param(source, "units") if source.type == "Dense" else None
    bias = imp.weights.pop(f"{node.id}/bias")
    if source.params.get("use_bias", True) or units != bias.size or g.readers(source) != 1:
        imp.problems.append(f"Add {shorten(node.id, 40)!r}: adding a constant is not supported")
        return
    del source.params["use_bias"]
    imp.weights[f"{source.id}/bias"] = bias
    g.remove(node)


def _last_step(imp, g: _Graph, node: Node) -> None:
    source, port = g.source(node)
    if (
        source.type not in _RECURRENT
        or port != 0
        or not source.params.get("return_sequences")
        or g.readers(source, 0) != 1
    ):
        imp.problems.append(
            f"Gather {shorten(node.id, 40)!r}: only the last step of a recurrent "
            "layer's sequence is supported"
        )
        return
    del source.params["return_sequences"]
    g.remove(node)


def _param(node: Node, name: str):
    """A block's parameter, its default when the node leaves it out."""
    if name in node.params:
        return node.params[name]
    return next(p.default for p in LAYERS.get(node.type).PARAMS if p.name == name)

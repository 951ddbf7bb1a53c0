"""What the engine builds a model from: a valid graph, already analyzed.

The document (:mod:`nodenet.graph`) produces a :class:`Blueprint` from a project
(:meth:`nodenet.graph.validation.Analysis.blueprint`); the engine reads only
this, never the document, so it can be built, tested and run without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nodenet.engine.layer import Layer, Shape


@dataclass(frozen=True)
class Blueprint:
    """A graph the engine can build: every node valid, shapes known, in topological order.

    ``sources[node]`` lists what feeds ``node``, by input port: (source node, its output).
    ``shapes[node]`` is the shape of the node's output 0; ``output_shapes[node]`` the
    shapes of every output of a node that has more than one.
    ``inputs`` and ``outputs`` are the Input and Output node ids in project order.
    ``frozen`` holds the blocks whose weights do not train (Keras's ``trainable=False``).
    """

    name: str
    order: tuple[str, ...]
    layers: dict[str, Layer]
    sources: dict[str, tuple[tuple[str, int], ...]]
    shapes: dict[str, Shape]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    output_shapes: dict[str, tuple[Shape, ...]] = field(default_factory=dict)
    frozen: frozenset[str] = frozenset()

    def shape_of(self, node_id: str, port: int = 0) -> Shape:
        """The shape of output ``port`` of ``node_id``."""
        if node_id in self.output_shapes:
            return self.output_shapes[node_id][port]
        if port:
            raise KeyError(f"{node_id} has one output, not an output {port}")
        return self.shapes[node_id]

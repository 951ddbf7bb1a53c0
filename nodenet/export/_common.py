"""What both exporters read from a project: the validated graph, its weights, its settings."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodenet import __version__
from nodenet.atomic import write_file as project_write_file
from nodenet.engine import settings
from nodenet.engine.catalog import Layer, Shape, WeightSpec
from nodenet.errors import SaveError, ValidationError, WeightsError
from nodenet.export._code import doc_text, identifiers
from nodenet.graph.project import Project, analyze

Weights = dict[str, np.ndarray]  # "node_id/weight_name" -> array, Keras layout


@dataclass(frozen=True)
class ExportedCode:
    """Generated source and, when exported with weights, the ``.npz`` it loads.

    The module finds the weights beside itself as ``<module stem>_weights.npz``;
    :meth:`write` puts both files in place.
    """

    source: str
    weights: bytes | None = None

    @staticmethod
    def weights_path(module_path: str | os.PathLike) -> Path:
        path = Path(module_path)
        return path.with_name(path.stem + "_weights.npz")

    def write(self, module_path: str | os.PathLike) -> list[Path]:
        """Write the module (and its weights) atomically; the paths written."""
        path = Path(module_path)
        write_file(path, self.source)
        if self.weights is None:
            return [path]
        write_file(self.weights_path(path), self.weights)
        return [path, self.weights_path(path)]


def write_file(path: Path, data: bytes | str) -> None:
    """Write atomically (temporary file, fsync, rename), readable as any new file.

    Raises :class:`nodenet.errors.SaveError` naming the file when it cannot be
    written; any previous file is left intact.
    """
    project_write_file(path, data, SaveError)


@dataclass
class Graph:
    """A valid project's graph as the exporters walk it."""

    project: Project
    order: list[str]  # topological
    layers: dict[str, Layer]
    sources: dict[str, list[str]]  # by input port
    shapes: dict[str, Shape]
    inputs: list[str]  # Input ids, file order
    outputs: list[str]  # Output ids, file order
    names: dict[str, str]  # node id -> Python identifier
    training: dict

    def input_shapes(self, node_id: str) -> list[Shape]:
        return [self.shapes[s] for s in self.sources[node_id]]

    def specs(self, node_id: str) -> list[WeightSpec]:
        return self.layers[node_id].weight_specs(self.input_shapes(node_id))

    def computing(self) -> list[str]:
        """Nodes that compute something (neither Input nor Output), in order."""
        return [i for i in self.order if self.layers[i].TYPE not in ("Input", "Output")]


def read_graph(project: Project, reserved: tuple[str, ...] = ()) -> Graph:
    """The graph of a project; raises :class:`ValidationError` listing its problems."""
    analysis = analyze(project)
    if analysis.problems:
        raise ValidationError(analysis.problems)
    order = list(analysis.order)
    index = analysis.index or project.edge_index()
    return Graph(
        project=project,
        order=order,
        layers={i: analysis.layers[i] for i in order},
        sources={i: [e.src for e in index.incoming(i)] for i in order},
        shapes=dict(analysis.shapes),
        inputs=[n.id for n in project.inputs()],
        outputs=[n.id for n in project.outputs()],
        names=identifiers([n.id for n in project.nodes], reserved),
        training=settings.resolved(project.training),
    )


def split_weights(graph: Graph, weights: Weights) -> dict[str, dict[str, np.ndarray]]:
    """``weights`` keyed ``node/name`` checked against the graph, grouped by node (float32)."""
    expected = {f"{i}/{s.name}": s.shape for i in graph.order for s in graph.specs(i)}
    for key in expected:
        if key not in weights:
            raise WeightsError(f"the weights have no {key!r} (the graph needs it)")
    for key in weights:
        if key not in expected:
            raise WeightsError(f"the weights have {key!r}, which the graph does not have")
    grouped: dict[str, dict[str, np.ndarray]] = {i: {} for i in graph.order}
    for key, shape in expected.items():
        array = np.asarray(weights[key])
        if array.shape != tuple(shape):
            raise WeightsError(
                f"weights {key!r} have shape {array.shape} but the graph needs {tuple(shape)}"
            )
        node_id, name = key.split("/", 1)
        grouped[node_id][name] = np.ascontiguousarray(array, dtype=np.float32)
    return grouped


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def banner(project: Project, what: str) -> str:
    """The first line of a generated module's docstring (the name escaped by :func:`doc_text`)."""
    return f"{doc_text(project.name)}: {what}, exported by nodenet {__version__}."

"""What both exporters read from a project: the validated graph, its weights, its settings."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nodenet import __version__
from nodenet.atomic import write_file as project_write_file
from nodenet.engine import settings
from nodenet.engine.catalog import Layer, Shape, WeightSpec
from nodenet.errors import SaveError, ValidationError, WeightsError
from nodenet.export._code import doc_text, identifiers
from nodenet.export._groups import SEPARATOR, Groups, read_groups
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
    """A valid project's graph as the exporters walk it.

    A block with several outputs (an LSTM with ``return_state``) binds one
    variable per output: ``names[id]`` for output 0, ``ports[id][k]`` for output
    k (``lstm``, ``lstm_h``, ``lstm_c``); :meth:`var` names what an edge reads.
    """

    project: Project
    order: list[str]  # topological
    layers: dict[str, Layer]
    sources: dict[str, list[str]]  # by input port
    shapes: dict[str, Shape]
    inputs: list[str]  # Input ids, file order
    outputs: list[str]  # Output ids, file order
    names: dict[str, str]  # node id -> Python identifier
    training: dict
    feeds: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # (source, output)
    output_shapes: dict[str, tuple[Shape, ...]] = field(default_factory=dict)  # several outputs
    ports: dict[str, list[str]] = field(default_factory=dict)  # several outputs: a name each
    groups: Groups | None = None  # a project with Group blocks: its definitions as written

    def attr(self, node_id: str) -> str:
        """The attribute path of a block in the PyTorch module: ``dense``, ``b1.d1``."""
        if self.groups is None or SEPARATOR not in node_id:
            return self.names[node_id]
        return self.groups.attr(node_id, self.names)

    def shape_of(self, node_id: str, port: int = 0) -> Shape:
        """The shape of output ``port`` of ``node_id``."""
        return self.output_shapes[node_id][port] if port else self.shapes[node_id]

    def var(self, node_id: str, port: int = 0) -> str:
        """The variable holding output ``port`` of ``node_id`` (with groups, an output of
        a ``Group`` block in the graph is named after the block: ``b1``, ``b1_1``)."""
        if self.groups is not None and (node_id, port) in self.groups.aliases:
            return self.groups.aliases[node_id, port]
        return self.ports[node_id][port] if node_id in self.ports else self.names[node_id]

    def args(self, node_id: str) -> list[str]:
        """The variables feeding ``node_id``, by input port."""
        return [self.var(src, port) for src, port in self.feeds[node_id]]

    def input_shapes(self, node_id: str) -> list[Shape]:
        return [self.shape_of(src, port) for src, port in self.feeds[node_id]]

    def specs(self, node_id: str) -> list[WeightSpec]:
        return self.layers[node_id].weight_specs(self.input_shapes(node_id))

    def computing(self) -> list[str]:
        """Nodes that compute something (neither Input nor Output), in order."""
        return [i for i in self.order if self.layers[i].TYPE not in ("Input", "Output")]

    def frozen(self) -> list[str]:
        """Computing nodes whose weights do not train (``Node.trainable`` false), in order."""
        frozen = {n.id for n in self.project.nodes if not n.trainable}
        return [i for i in self.computing() if i in frozen]

    def targets(self, node_id: str) -> str:
        """``a`` or ``a, a_h, a_c``: what a statement computing ``node_id`` assigns."""
        return ", ".join(self.ports.get(node_id, [self.names[node_id]]))


def read_graph(project: Project, reserved: tuple[str, ...] = ()) -> Graph:
    """The graph of a project; raises :class:`ValidationError` listing its problems.

    A project with groups is read as its flattened graph (ids ``instance/inner``, as the
    engine and weights files name them), with ``groups`` describing how its levels nest."""
    outer = analyze(project)
    if outer.problems:
        raise ValidationError(outer.problems)
    analysis, groups, own = outer, None, project
    if outer.inside is not None and outer.flat is not None:
        analysis, project = outer.inside, outer.flat
        groups = read_groups(own, analysis.order, reserved)
    order = list(analysis.order)
    index = analysis.index or project.edge_index()
    layers = {i: analysis.layers[i] for i in order}
    ids = [n.id for n in own.nodes] + [n.id for n in project.nodes if SEPARATOR in n.id]
    names = identifiers(ids, reserved)
    ports = _port_names(layers, names, reserved)
    if groups is not None:
        groups.name_outputs(names, {*reserved, *(v for p in ports.values() for v in p)})
    return Graph(
        groups=groups,
        project=project,
        order=order,
        layers=layers,
        sources={i: [e.src for e in index.incoming(i)] for i in order},
        shapes=dict(analysis.shapes),
        inputs=[n.id for n in project.inputs()],
        outputs=[n.id for n in project.outputs()],
        names=names,
        training=settings.resolved(project.training),
        feeds={i: [(e.src, e.src_port) for e in index.incoming(i)] for i in order},
        output_shapes=dict(analysis.output_shapes),
        ports=ports,
    )


def _port_names(
    layers: dict[str, Layer], names: dict[str, str], reserved: tuple[str, ...]
) -> dict[str, list[str]]:
    """A variable per output of each block with several: its name, then its name and the
    output's suffix (``_h``, ``_c`` for a recurrent block's states, else ``_1``, ``_2``),
    never one another name already holds."""
    from nodenet.export.blocks import exporter

    taken = set(names.values()) | set(reserved)
    ports = {}
    for node_id, layer in layers.items():
        count = layer.n_outputs()
        if count < 2:
            continue
        suffixes = exporter(layer).output_suffixes(count)
        base, chosen = names[node_id], [names[node_id]]
        for suffix in suffixes[1:]:
            name = base + suffix
            while name in taken:
                name += "_"
            chosen.append(name)
            taken.add(name)
        ports[node_id] = chosen
    return ports


def split_weights(graph: Graph, weights: Weights) -> dict[str, dict[str, np.ndarray]]:
    """``weights`` keyed ``node/name`` checked against the graph, grouped by node (float32)."""
    owner = {f"{i}/{s.name}": (i, s) for i in graph.order for s in graph.specs(i)}
    expected = {key: spec.shape for key, (_, spec) in owner.items()}
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
        node_id, name = owner[key][0], owner[key][1].name  # "b1/d1/kernel", "bi/forward/kernel"
        # reshaped: ascontiguousarray makes a scalar weight (shape ()) 1-D
        grouped[node_id][name] = np.ascontiguousarray(array, dtype=np.float32).reshape(shape)
    return grouped


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def banner(project: Project, what: str) -> str:
    """The first line of a generated module's docstring (the name escaped by :func:`doc_text`)."""
    return f"{doc_text(project.name)}: {what}, exported by nodenet {__version__}."

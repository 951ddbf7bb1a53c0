"""Validation of a project and inference of its shapes and parameter counts.

Every problem names its node (or field) in one sentence. The names are
re-exported by :mod:`nodenet.graph.project`, where the rest of the document lives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nodenet.engine.blueprint import Blueprint
from nodenet.engine.catalog import LAYERS, Layer, Shape, fmt_shape
from nodenet.engine.layer import text_wiring_problem
from nodenet.engine.params import check_params
from nodenet.errors import NodenetError, ValidationError, shorten
from nodenet.graph.topology import Wiring, connection_problems, reachable, topological_order
from nodenet.safeio import memory_budget, over_budget, size_of

BYTES_PER_VALUE = 4  # weights and activations are float32

if TYPE_CHECKING:
    from nodenet.graph.project import EdgeIndex, Node, Project

MAX_MESSAGE_CHARS = 400  # a problem's message is cut to this length
UNUSED = "does not reach any Output (its result is unused)"  # listed last: see analyze


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a project, naming the node (or field) at fault."""

    message: str
    node: str | None = None
    field: str | None = None

    def __post_init__(self) -> None:  # a message echoing a huge shape or name stays readable
        object.__setattr__(self, "message", shorten(self.message, MAX_MESSAGE_CHARS))

    def __str__(self) -> str:
        where = self.node if self.node is not None else self.field
        return f"{shorten(where)}: {self.message}" if where is not None else self.message


@dataclass
class Analysis:
    """What :func:`analyze` learns: problems, topological order, shapes, parameter counts.

    ``shapes[node]`` is the shape of the node's output 0 (its only output, for every
    block today); ``output_shapes[node]`` the shapes of all the outputs of a node that
    has more than one (:meth:`shape_of` reads either).
    """

    problems: list[Problem]
    order: list[str]  # node ids in topological order (nodes in cycles left out)
    shapes: dict[str, Shape]  # output shape of every node whose shape could be inferred
    params: dict[str, tuple[int, int]]  # (trainable, non-trainable) per node; frozen: (0, all)
    layers: dict[str, Layer]  # a layer object per node whose params are valid
    index: EdgeIndex | None = None  # the project's edges by node, as analyzed
    output_shapes: dict[str, tuple[Shape, ...]] = field(default_factory=dict)
    flat: Project | None = None  # a project with groups: its flattened graph
    inside: Analysis | None = None  # its analysis: inner ids ``instance/inner``, and the
    # shapes and totals of every instance (nested ones too) keyed by their path

    @property
    def ok(self) -> bool:
        return not self.problems

    def problems_for(self, node_id: str) -> list[Problem]:
        """The node's problems; a group instance's include those of its inner blocks."""
        inside = node_id + "/"
        return [
            p
            for p in self.problems
            if p.node == node_id or (p.node is not None and p.node.startswith(inside))
        ]

    def blueprint(self, project: Project) -> Blueprint:
        """What the engine builds ``project`` from; :class:`ValidationError` if it has problems."""
        if self.problems:
            raise ValidationError(self.problems)
        if self.inside is not None and self.flat is not None:  # built as its inside
            return self.inside.blueprint(self.flat)
        index = self.index or project.edge_index()
        return Blueprint(
            name=project.name,
            order=tuple(self.order),
            layers={i: self.layers[i] for i in self.order},
            sources={i: tuple((e.src, e.src_port) for e in index.incoming(i)) for i in self.order},
            shapes={i: s for i, s in self.shapes.items() if i in self.layers},  # no groups
            inputs=tuple(n.id for n in project.nodes if n.type == "Input"),
            outputs=tuple(n.id for n in project.nodes if n.type == "Output"),
            output_shapes=dict(self.output_shapes),
            frozen=frozenset(n.id for n in project.nodes if not n.trainable),
        )

    def shape_of(self, node_id: str, port: int = 0) -> Shape | None:
        """The shape of output ``port`` of ``node_id``, ``None`` if unknown."""
        return _port_shape(self.output_shapes, self.shapes, node_id, port)

    def input_shapes(self, project: Project, node_id: str) -> list[Shape] | None:
        edges = self.index.incoming(node_id) if self.index else project.incoming(node_id)
        shapes = [self.shape_of(e.src, e.src_port) for e in edges]
        return None if any(s is None for s in shapes) else shapes


def _port_shape(
    outputs: dict[str, tuple[Shape, ...]], shapes: dict[str, Shape], node_id: str, port: int
) -> Shape | None:
    if port == 0 or node_id not in outputs:
        return shapes.get(node_id) if port == 0 else None
    every = outputs[node_id]
    return every[port] if port < len(every) else None


def validate(project: Project) -> list[Problem]:
    """Every problem of the project, each naming its node or field."""
    return analyze(project).problems


def analyze(project: Project) -> Analysis:
    """Validate the graph and infer shapes and parameter counts, as far as possible.

    O(nodes + edges) besides each block's own checks: edges are indexed once, and one
    topological pass (Kahn) orders the nodes and finds the cycles. A project with groups
    is analyzed as its flattened graph (:mod:`nodenet.graph.groups`): the result
    describes the project's own nodes (an instance has its outputs' shapes and its
    inside's totals), lists every problem (inner ones named ``instance/inner``) and
    keeps the flattened graph's analysis in ``inside`` (the blueprint is built from it).
    """
    if not getattr(project, "groups", None) and not any(n.type == "Group" for n in project.nodes):
        return _analyze(project)
    from nodenet.graph.groups import flatten

    flat = flatten(project)
    inside = _analyze(flat.project, flat.inner)
    return flat.outer(project, inside)


def _analyze(project: Project, inner: set[str] | frozenset[str] = frozenset()) -> Analysis:
    """:func:`analyze` of a graph without groups; ``inner``: flattened ids (``group/id``),
    whose parts were checked as ids."""
    from nodenet.graph.project import id_problem

    problems: list[Problem] = []
    ids = [n.id for n in project.nodes]
    seen: set[str] = set()
    for node_id in ids:
        if node_id in seen:
            problems.append(Problem("the id is used by more than one node", node_id))
        seen.add(node_id)
        problem = id_problem(node_id) if node_id not in inner else None
        if problem is not None:
            problems.append(Problem(problem, field="nodes"))
    by_id = {n.id: n for n in project.nodes}
    index = project.edge_index()

    layers: dict[str, Layer] = {}
    for n in project.nodes:
        if not isinstance(n.type, str) or n.type not in LAYERS:
            problems.append(Problem(f"unknown block type {shorten(repr(n.type))}", n.id))
            continue
        cls = LAYERS.get(n.type)
        errors = check_params(cls.PARAMS, n.params, n.type)
        if errors:
            problems.extend(Problem(str(e), n.id) for e in errors)
            continue
        try:
            layers[n.id] = cls(n.params, n.id)
        except NodenetError as err:
            problems.append(Problem(str(err), n.id))

    # what is built wrong (parameters, wiring, shapes) first, then what is not built yet
    # (unconnected ports, no Input / Output), then the blocks whose result is unused
    unfinished: list[Problem] = []
    if not project.inputs():
        unfinished.append(Problem("the graph has no Input block", field="nodes"))
    if not project.outputs():
        unfinished.append(Problem("the graph has no Output block", field="nodes"))

    problems.extend(_check_edges(project, by_id, layers))
    for node_id in layers:  # text reaching a number block, numbers reaching a TextVectorization
        feeds = [(e.src, e.src_port) for e in index.incoming(node_id) if e.src in layers]
        problem = text_wiring_problem(layers, {node_id: feeds})
        if problem:
            problems.append(Problem(problem.removeprefix(f"{node_id}: "), node_id))
    order, cyclic = topological_order(ids, ((e.src, e.dst) for e in project.edges))
    for node_id in cyclic:
        problems.append(Problem("is part of a cycle", node_id))
    unfinished.extend(_check_ports(project, by_id, index))
    unfinished.extend(_check_reaches_output(project, by_id))

    shapes: dict[str, Shape] = {}
    outputs: dict[str, tuple[Shape, ...]] = {}  # every output's shape, of multi-output nodes
    params: dict[str, tuple[int, int]] = {}
    for node_id in order:
        layer = layers.get(node_id)
        if layer is None:
            continue
        in_shapes = [
            _port_shape(outputs, shapes, e.src, e.src_port) if e.src_port else shapes.get(e.src)
            for e in index.incoming(node_id)
        ]
        if any(s is None for s in in_shapes) or not layer.accepts_inputs(len(in_shapes)):
            continue
        try:
            every = tuple(tuple(s) for s in layer.infer_shapes(in_shapes))
            shapes[node_id] = every[0]
            if len(every) > 1:
                outputs[node_id] = every
            params[node_id] = layer.count_params(in_shapes)
            if not by_id[node_id].trainable:  # a frozen block's weights all count as non-trainable
                params[node_id] = (0, sum(params[node_id]))
        except NodenetError as err:
            shapes.pop(node_id, None)
            outputs.pop(node_id, None)
            problems.append(Problem(str(err), node_id))
        except OverflowError:  # sizes past float range reached a float computation
            shapes.pop(node_id, None)
            outputs.pop(node_id, None)
            params.pop(node_id, None)
            problems.append(Problem("its output or weights are too large to compute", node_id))
    problems.extend(_check_memory(project, order, shapes, params, outputs))
    problems.extend(_check_training(project.training))
    problems.extend(unfinished)
    return Analysis(problems, order, shapes, params, layers, index, outputs)


def _check_memory(
    project: Project,
    order: list[str],
    shapes: dict[str, Shape],
    params: dict[str, tuple[int, int]],
    outputs: dict[str, tuple[Shape, ...]],
) -> list[Problem]:
    """Weights and activations (float32) checked against the memory budget, before any
    allocation: each node's weights, each node's output for one sample, all weights
    together, and a training batch's outputs of every node (kept for the backward pass).
    """
    budget = memory_budget()
    problems = []
    per_sample = 0
    heads = {n.id for n in project.outputs()}
    for node_id in order:
        if node_id in params:
            count = sum(params[node_id])
            reason = _over_budget(count * BYTES_PER_VALUE, budget)
            if reason is not None:
                problems.append(
                    Problem(f"its {_count(count)} weights would take {reason}", node_id)
                )
        if node_id in shapes and node_id not in heads:
            for out_shape in outputs.get(node_id, (shapes[node_id],)):
                size = size_of(out_shape, BYTES_PER_VALUE)
                per_sample += size
                reason = _over_budget(size, budget)
                if reason is not None:
                    shape = shorten(fmt_shape(out_shape))
                    problems.append(
                        Problem(
                            f"one sample's output, of shape {shape}, would take {reason}", node_id
                        )
                    )
    if problems:
        return problems
    total = sum(sum(p) for p in params.values())
    reason = _over_budget(total * BYTES_PER_VALUE, budget)
    if reason is not None:
        return [Problem(f"the model's {_count(total)} weights would take {reason}", field="nodes")]
    batch = project.training.get("batch_size") if isinstance(project.training, dict) else None
    if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0:
        reason = _over_budget(batch * per_sample, budget)
        if reason is not None:
            problems.append(
                Problem(
                    f"the outputs of every block for a batch of {batch} samples would take "
                    f"{reason}; use a smaller batch",
                    field="training.batch_size",
                )
            )
    return problems


def _over_budget(size: int, budget: int) -> str | None:
    """:func:`over_budget`, also for sizes past float range (a 40-dimension shape)."""
    if size < 2**1000:
        return over_budget(size, budget)
    return f"about 10^{int(size.bit_length() * 0.30103)} bytes, far more than the memory budget"


def _count(count: int) -> str:
    """``1,234`` or ``about 10^400`` (a count too long to print in full)."""
    return f"{count:,}" if count < 10**30 else f"about 10^{int(count.bit_length() * 0.30103)}"


def _check_training(training: Any) -> list[Problem]:
    from nodenet.engine.settings import check_training

    optimizer = training.get("optimizer") if isinstance(training, dict) else None
    if isinstance(optimizer, dict) and not isinstance(optimizer.get("name"), str):
        # a list or object as the name would reach a registry lookup (unhashable)
        name = optimizer.get("name")
        return [
            Problem(
                f"must be an optimizer's name (got {shorten(repr(name))})",
                field="training.optimizer.name",
            )
        ]
    problems = []
    for text in check_training(training):
        where, _, message = text.partition(" ")
        problems.append(Problem(message, field=where.rstrip(":")))
    return problems


def _check_edges(
    project: Project, by_id: dict[str, Node], layers: dict[str, Layer]
) -> list[Problem]:
    """Every edge checked in file order with :func:`nodenet.graph.topology.connection_problems`
    (cycles are found by the topological order)."""

    def n_outputs(node_id: str) -> int | None:
        layer = layers.get(node_id)
        return None if layer is None else layer.n_outputs()

    wiring = Wiring({i: n.type for i, n in by_id.items()}, n_outputs)
    problems = []
    for e in project.edges:
        refusals, _ = connection_problems(wiring, e.src, e.dst, e.port, e.src_port)
        if not refusals:
            wiring.add(e)
            continue
        problems.extend(
            Problem(r.problem, r.node, r.field) for r in refusals if r.problem is not None
        )
        last = refusals[-1]
        if not last.final or last.rule == "taken":
            wiring.add(e)  # a later edge into the same port names this one
    return problems


def _check_ports(project: Project, by_id: dict[str, Node], index: EdgeIndex) -> list[Problem]:
    """Unconnected ports; never builds a range over a port number taken from the file."""
    problems = []
    for n in project.nodes:
        if not isinstance(n.type, str) or n.type not in LAYERS:
            continue
        cls = LAYERS.get(n.type)
        ports = sorted({e.port for e in index.incoming(n.id) if e.src in by_id})
        if cls.N_INPUTS is not None:
            connected = set(ports)
            for port in range(cls.N_INPUTS):  # the catalog's own, small count
                if port not in connected:
                    problems.append(Problem(f"input port {port} is not connected", n.id))
        else:
            if len(ports) < cls.MIN_INPUTS:
                problems.append(
                    Problem(
                        f"{cls.TYPE} needs at least {cls.MIN_INPUTS} inputs, "
                        f"{len(ports)} connected",
                        n.id,
                    )
                )
            missing = _first_gap(ports)
            if missing is not None:
                problems.append(
                    Problem(
                        f"input port {missing} is not connected (ports are filled in order)",
                        n.id,
                    )
                )
    return problems


def _first_gap(ports: list[int]) -> int | None:
    """The first port missing from the sorted distinct ``ports`` (none: ``None``)."""
    for expected, port in enumerate(ports):
        if port != expected:
            return expected
    return None


def _check_reaches_output(project: Project, by_id: dict[str, Node]) -> list[Problem]:
    parents: dict[str, list[str]] = {i: [] for i in by_id}
    for e in project.edges:
        if e.src in by_id and e.dst in by_id:
            parents[e.dst].append(e.src)
    reached = reachable((n.id for n in project.nodes if n.type == "Output"), parents)
    if not project.outputs():
        return []
    return [Problem(UNUSED, n.id) for n in project.nodes if n.id not in reached]

"""The Document: the open project, its analysis, its undo stack, and the shared selection.

Views (canvas, inspector, summary, training panel) read ``document.project``
and ``document.analysis`` and listen to the signals, which carry node ids,
never objects. Every edit goes through a method here and becomes exactly one
command on ``undo_stack`` (see :mod:`nodenet.ui.commands`); after each command
the project is analysed again, then the signals fire, then ``analysisChanged``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from nodenet.engine import Layer, block_class
from nodenet.engine.params import check_params
from nodenet.errors import NodenetError, ParamError, ProjectFileError, ShapeError, brief, shorten
from nodenet.graph.layout import layered_layout
from nodenet.graph.project import (
    MAX_COORDINATE,
    VERSION,
    Analysis,
    Edge,
    FreshNames,
    Node,
    Problem,
    Project,
    analyze,
    save,
    unique_name,
)
from nodenet.graph.topology import Wiring, connection_problems
from nodenet.ui.commands import (
    Command,
    InsertEdge,
    InsertNode,
    Op,
    SetParams,
    SetPos,
    SetSection,
    SetTrainable,
    compact_ports,
    remove_edges_ops,
    remove_nodes_ops,
    rename_ops,
)
from nodenet.ui.document_groups import GroupEdits
from nodenet.ui.document_scale import ScaleEdits

BLOCK_MIME = "application/x-nodenet-block"  # palette drag payload: the block type (UTF-8)
FRAGMENT_MIME = "application/x-nodenet-fragment"  # clipboard payload: a copied fragment (JSON)
FRAGMENT_FORMAT = "nodenet-fragment"
SECTIONS = ("training", "data")
ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
# The project reader accepts positions with |x|, |y| < MAX_COORDINATE: every edit clamps
# to just inside, so whatever the app saves (or autosaves) reopens.
POS_LIMIT = MAX_COORDINATE - 1
# what analyze() may raise besides NodenetError on a hostile project (a 10**400 parameter)
ANALYSIS_ERRORS = (ArithmeticError, ValueError, TypeError, RecursionError, KeyError, IndexError)


class ReadOnlyError(NodenetError):
    """An edit was refused because a training run is using the graph."""


READ_ONLY_TEXT = "the graph is read-only while a training run uses it"


def default_id(block_type: str) -> str:
    """Keras's layer naming: ``Conv2D`` -> ``conv2d``, ``SimpleRNN`` -> ``simple_rnn``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", block_type)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def new_project(name: str = "untitled") -> Project:
    """An empty canvas: one Input and one Output, not connected."""
    return Project(
        name=name,
        nodes=[Node("input", "Input", {}, [0.0, 0.0]), Node("output", "Output", {}, [480.0, 0.0])],
    )


class Selection(QObject):
    """The ids of the selected nodes, shared by the canvas, the inspector and the menus.

    Given a document, it follows renames and forgets removed nodes: the removed ids of
    one edit leave at once, with one ``changed`` when the edit ends (deleting 2,000
    selected blocks is one selection change, not 2,000).
    """

    changed = Signal()

    def __init__(self, document: Document | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._ids: list[str] = []
        self._gone: set[str] = set()  # removed by the edit under way; changed comes at its end
        if document is not None:
            document.nodeRemoved.connect(self._forget)
            document.nodeRenamed.connect(self._rename)
            document.projectReplaced.connect(self.clear)
            document.analysisChanged.connect(self._flush)

    def ids(self) -> list[str]:
        if self._gone:
            return [i for i in self._ids if i not in self._gone]
        return list(self._ids)

    def current(self) -> str | None:
        """The selected id when exactly one node is selected."""
        ids = self.ids()
        return ids[0] if len(ids) == 1 else None

    def set(self, ids: list[str]) -> None:
        ids = list(dict.fromkeys(ids))
        old, self._gone = self.ids(), set()
        if ids != old or ids != self._ids:
            self._ids = ids
            self.changed.emit()

    def clear(self) -> None:
        self.set([])

    def _forget(self, node_id: str) -> None:
        if node_id in self._ids:
            self._gone.add(node_id)

    def _flush(self) -> None:
        if self._gone:
            self.set(self.ids())

    def _rename(self, old: str, new: str) -> None:
        if old in self._ids:
            self.set([new if i == old else i for i in self._ids])


class Document(ScaleEdits, GroupEdits, QObject):
    """The open project and every way to edit it (one undo command per edit; the edits
    for big graphs come from :class:`~nodenet.ui.document_scale.ScaleEdits`)."""

    nodeAdded = Signal(str)
    nodeRemoved = Signal(str)
    nodeChanged = Signal(str)
    nodeMoved = Signal(str)
    nodeRenamed = Signal(str, str)
    edgeAdded = Signal(str, str, int)
    edgeRemoved = Signal(str, str, int)
    analysisChanged = Signal()
    projectReplaced = Signal()
    dirtyChanged = Signal(bool)
    readOnlyChanged = Signal(bool)
    settingsChanged = Signal(str)

    def __init__(self, project: Project | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.project: Project = project if project is not None else Project()
        self.analysis: Analysis = analyze(self.project)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        self.read_only = False
        # positions for :meth:`layout`; the canvas may install one that knows node sizes
        self.layout_engine: Callable[[Project], dict[str, tuple[float, float]]] = layered_layout
        self._depth = 0
        self._pending: list[tuple[str, tuple]] = []

    # -- machinery used by the commands ----------------------------------------

    @contextlib.contextmanager
    def editing(self) -> Iterator[None]:
        """Collect the signals of one command; analyse and emit them when it ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0:
            self.analysis = _safe_analysis(self.project)
            pending, self._pending = self._pending, []
            for name, args in pending:
                getattr(self, name).emit(*args)
            self.analysisChanged.emit()

    def _clean_changed(self, clean: bool) -> None:
        self.dirtyChanged.emit(not clean)

    def emit_later(self, signal: str, *args: Any) -> None:
        self._pending.append((signal, args))

    def _push(self, text: str, ops: list[Op]) -> None:
        if ops:
            self.undo_stack.push(Command(self, text, ops))

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(READ_ONLY_TEXT)

    def _variadic(self) -> set[str]:
        return {n.id for n in self.project.nodes if _is_variadic(n.type)}

    def _node(self, node_id: str) -> Node:
        try:
            return self.project.node(node_id)
        except KeyError:
            raise NodenetError(f"there is no block named {node_id!r}") from None

    # -- nodes ------------------------------------------------------------------

    def add_node(
        self,
        block_type: str,
        pos: tuple[float, float],
        params: dict | None = None,
        node_id: str | None = None,
    ) -> str:
        """Add a block; returns its id (Keras-style ``dense``, ``dense_1``, ... if not given)."""
        self._writable()
        cls = block_class(block_type)
        params = copy.deepcopy(params) if params is not None else {}
        cls.from_config(params)  # raises ParamError naming the block type
        if node_id is None:
            node_id = unique_name(default_id(block_type), {n.id for n in self.project.nodes})
        else:
            self.check_id(node_id)
        node = Node(node_id, block_type, params, list(_point(pos)))
        self._push(f"Add {block_type} {node_id}", [InsertNode(len(self.project.nodes), node)])
        return node_id

    def remove_nodes(self, ids: list[str]) -> None:
        """Delete nodes and every edge touching them; merges' ports are renumbered."""
        self._writable()
        doomed = {i for i in ids if self.project.has_node(i)}
        if not doomed:
            return
        text = (
            f"Delete {next(iter(doomed))}" if len(doomed) == 1 else f"Delete {len(doomed)} blocks"
        )
        self._push(text, remove_nodes_ops(self.project, doomed, self._variadic()))

    def move_nodes(self, positions: dict[str, tuple[float, float]]) -> None:
        self._writable()
        ops: list[SetPos] = []
        for node_id, pos in positions.items():
            node = self._node(node_id)
            new = _point(pos)
            if tuple(node.pos) != new:
                ops.append(SetPos(node, (node.pos[0], node.pos[1]), new))
        moved = [op.node.id for op in ops]
        self._push(f"Move {moved[0]}" if len(moved) == 1 else f"Move {len(moved)} blocks", ops)

    def set_params(self, node_id: str, params: dict) -> None:
        """Replace a node's parameters (the full dict); raises :class:`ParamError` if invalid."""
        self._writable()
        node = self._node(node_id)
        cls = block_class(node.type)
        errors = check_params(cls.PARAMS, params, node.type)
        if errors:
            raise errors[0]
        cls.from_config(params)  # checks that span several parameters
        if params == node.params:
            return
        changed = sorted(k for k in {*params, *node.params} if params.get(k) != node.params.get(k))
        text = f"Set {node_id} {', '.join(changed)}"
        self._push(text, [SetParams(node, copy.deepcopy(node.params), copy.deepcopy(params))])

    def set_param_many(self, ids: list[str], name: str, value: Any) -> int:
        """Set one parameter on several blocks as one command (the inspector's shared
        editing); every block is checked first, the first refusal raised naming its block.
        How many changed."""
        self._writable()
        ops: list[Op] = []
        by_id = {n.id: n for n in self.project.nodes}  # one pass: a big selection stays fast
        for node_id in ids:
            node = by_id.get(node_id) or self._node(node_id)
            params = {**node.params, name: copy.deepcopy(value)}
            cls = block_class(node.type)
            try:
                errors = check_params(cls.PARAMS, params, node.type)
                if errors:
                    raise errors[0]
                cls.from_config(params)
            except NodenetError as err:
                raise ParamError(f"{node_id}: {err}", name) from None
            if params != node.params:
                ops.append(SetParams(node, copy.deepcopy(node.params), params))
        what = ops[0].node.id if len(ops) == 1 else f"{len(ops)} blocks"
        self._push(f"Set {name} on {what}" if ops else "", ops)
        return len(ops)

    def has_weights(self, node_id: str) -> bool:
        """Whether a block owns weights (what freezing it holds still): by its count when
        the analysis knows it, else by its type."""
        counts = self.analysis.params.get(node_id)
        if counts is not None:
            return sum(counts) > 0
        try:
            cls = block_class(self._node(node_id).type)
        except NodenetError:
            return False
        return cls.weight_specs is not Layer.weight_specs

    def freezable(self, ids: list[str]) -> list[str]:
        """The blocks among ``ids`` that own weights, in project order."""
        chosen = set(ids)
        return [n.id for n in self.project.nodes if n.id in chosen and self.has_weights(n.id)]

    def set_trainable(self, ids: list[str], trainable: bool) -> int:
        """Freeze (``trainable=False``) or unfreeze the blocks with weights among ``ids``,
        as one command; how many changed."""
        self._writable()
        nodes = [self._node(i) for i in self.freezable(ids)]
        ops: list[Op] = [SetTrainable(n, n.trainable, trainable) for n in nodes]
        ops = [op for op in ops if op.old != op.new]
        if not ops:
            return 0
        verb = "Unfreeze" if trainable else "Freeze"
        what = ops[0].node.id if len(ops) == 1 else f"{len(ops)} blocks"
        self._push(f"{verb} {what}", ops)
        return len(ops)

    def toggle_trainable(self, ids: list[str]) -> int:
        """Freeze the blocks with weights among ``ids`` if they all train, else unfreeze
        them all (a mixed selection ends up trainable); how many changed."""
        nodes = [self._node(i) for i in self.freezable(ids)]
        return self.set_trainable(ids, not all(n.trainable for n in nodes))

    def check_id(self, node_id: str) -> None:
        """Raise :class:`NodenetError` unless ``node_id`` is a valid, unused id."""
        if not isinstance(node_id, str) or not node_id.strip():
            raise NodenetError("a block id cannot be empty")
        if not ID_PATTERN.fullmatch(node_id):
            raise NodenetError(
                f"{node_id!r} is not a valid id: use letters, digits, _ . - "
                "(starting with a letter or _, at most 64 characters)"
            )
        if self.project.has_node(node_id):
            raise NodenetError(f"the id {node_id!r} is already used by another block")

    def rename(self, old: str, new: str) -> None:
        """Rename a node; edges and the data section's mappings follow."""
        self._writable()
        self._node(old)
        if new == old:
            return
        self.check_id(new)
        self._push(f"Rename {old} to {new}", rename_ops(self.project, old, new))

    # -- edges --------------------------------------------------------------------

    def check_connection(
        self, src: str, dst: str, port: int | None, src_port: int = 0
    ) -> str | None:
        """``None`` if output ``src_port`` of ``src`` may feed input ``port`` of ``dst``,
        else the reason (one sentence).

        ``port=None`` means the next free port (merges grow one port per input).
        """
        reason, _ = self._plan_connection(src, dst, port, src_port)
        return reason

    def connect(self, src: str, dst: str, port: int | None = None, src_port: int = 0) -> str | None:
        """Connect, or return the reason it is refused (nothing changes then)."""
        if self.read_only:
            return READ_ONLY_TEXT
        reason, port = self._plan_connection(src, dst, port, src_port)
        if reason is not None:
            return reason
        edge = Edge(src, dst, port, src_port)
        self._push(f"Connect {src} → {dst}", [InsertEdge(len(self.project.edges), edge)])
        return None

    def disconnect(self, src: str, dst: str, port: int) -> None:
        """Remove an edge; a merge's remaining ports are renumbered 0..k-1."""
        self._writable()
        edge = next(
            (e for e in self.project.edges if (e.src, e.dst, e.port) == (src, dst, port)), None
        )
        if edge is None:
            raise NodenetError(f"there is no edge from {src} to port {port} of {dst}")
        ops = remove_edges_ops(self.project, [edge], self._variadic())
        self._push(f"Disconnect {src} → {dst}", ops)

    def _plan_connection(
        self, src: str, dst: str, port: int | None, src_port: int = 0
    ) -> tuple[str | None, int]:
        """The graph's rule (:func:`nodenet.graph.topology.connection_problems`), then
        the shapes: the reason the edge is refused, or ``None``, and the port it takes."""
        wiring = Wiring.of_project(self.project, self.analysis.layers, among=(src, dst))
        refusals, port = connection_problems(wiring, src, dst, port, src_port)
        if refusals:
            return refusals[0].reason, port
        return self._shape_reason(src, dst, port, src_port), port

    def _shape_reason(self, src: str, dst: str, port: int, src_port: int = 0) -> str | None:
        """The shape error ``dst`` would raise with the new input, if every shape is known."""
        analysis = self.analysis
        layer = analysis.layers.get(dst)
        incoming = [e for e in self.project.incoming(dst) if e.port != port]
        by_port = {e.port: analysis.shape_of(e.src, e.src_port) for e in incoming}
        by_port[port] = analysis.shape_of(src, src_port)
        if layer is None or any(shape is None for shape in by_port.values()):
            return None
        in_shapes = [by_port[p] for p in sorted(by_port)]
        if not layer.accepts_inputs(len(in_shapes)) or layer.partly_wired(len(in_shapes)):
            return None
        try:
            layer.infer_shape(in_shapes)
        except ShapeError as err:
            return f"{dst}: {err}"
        return None

    # -- clipboard, layout, settings -------------------------------------------------

    def copy(self, ids: list[str]) -> dict:
        """A fragment: the nodes (in project order) and the edges between them."""
        chosen = set(ids)
        return {
            "format": FRAGMENT_FORMAT,
            "version": VERSION,  # of the project format its nodes and edges follow
            "nodes": [n.to_dict() for n in self.project.nodes if n.id in chosen],
            "edges": [
                e.to_dict() for e in self.project.edges if e.src in chosen and e.dst in chosen
            ],
        }

    def paste(
        self, fragment: dict, offset: tuple[float, float] = (40, 40), prefix: str = ""
    ) -> list[str]:
        """Insert a fragment with fresh ids, shifted by ``offset``, as one command.

        With a ``prefix`` the new ids are ``prefix + id`` (``r2_conv``), a ``_1`` suffix
        added only where that is taken; an id the prefix makes invalid is refused."""
        self._writable()
        nodes, edges = _read_fragment(fragment)
        fresh = FreshNames({n.id for n in self.project.nodes})
        renamed: dict[str, str] = {}
        dx, dy = _point(offset)
        new_nodes = []
        for n in nodes:
            if prefix and not ID_PATTERN.fullmatch(prefix + n.id):
                raise NodenetError(
                    f"the prefix {prefix!r} makes {prefix + n.id!r} an invalid id: use letters,"
                    " digits, _ . - (starting with a letter or _, at most 64 characters)"
                )
            renamed[n.id] = fresh.take(prefix + n.id)
            pos = [clamp(n.pos[0] + dx), clamp(n.pos[1] + dy)]
            new_nodes.append(Node(renamed[n.id], n.type, n.params, pos, n.trainable))
        new_edges = compact_ports(
            [Edge(renamed[e.src], renamed[e.dst], e.port, e.src_port) for e in edges],
            {renamed[n.id] for n in nodes if _is_variadic(n.type)},
        )
        first_node, first_edge = len(self.project.nodes), len(self.project.edges)
        ops: list[Op] = [InsertNode(first_node + i, n) for i, n in enumerate(new_nodes)]
        ops += [InsertEdge(first_edge + i, e) for i, e in enumerate(new_edges)]
        self._push(f"Paste {len(new_nodes)} block(s)", ops)
        return [n.id for n in new_nodes]

    def layout(self) -> None:
        """Layered auto-layout: columns by depth from the inputs, one command."""
        self._writable()
        positions = self.layout_engine(self.project)
        ops: list[SetPos] = []
        for node in self.project.nodes:
            new = _point(positions.get(node.id, node.pos))
            if tuple(node.pos) != new:
                ops.append(SetPos(node, (node.pos[0], node.pos[1]), new))
        self._push("Auto layout", ops)

    def set_section(self, section: str, value: dict) -> None:
        """Replace the ``training`` or ``data`` section (undoable)."""
        self._writable()
        if section not in SECTIONS:
            raise NodenetError(f"unknown project section {section!r} (use training or data)")
        if not isinstance(value, dict):
            raise NodenetError(f"the {section} section must be an object")
        old = getattr(self.project, section)
        if value == old:
            return
        ops = [SetSection(section, copy.deepcopy(old), copy.deepcopy(value))]
        self._push(f"Change {section} settings", ops)

    # -- whole-document operations ------------------------------------------------------

    @staticmethod
    def checked_analysis(project: Project) -> Analysis:
        """``analyze(project)``, or :class:`NodenetError` if the analysis itself fails
        (a project must be analysable before it replaces the open one)."""
        try:
            return analyze(project)
        except NodenetError:
            raise
        except ANALYSIS_ERRORS as err:
            raise NodenetError(
                f"{shorten(project.name)} cannot be analysed: {_error_text(err)}"
            ) from None

    def replace_project(self, project: Project, analysis: Analysis | None = None) -> None:
        """Show another project (new / open): the undo history starts over, clean.

        The project is analysed first (or ``analysis`` of it is used): if that fails,
        :class:`NodenetError` is raised and the open project stays as it was.
        """
        analysis = analysis if analysis is not None else self.checked_analysis(project)
        self.undo_stack.clear()
        self.project = project
        self.analysis = analysis
        self.projectReplaced.emit()
        self.analysisChanged.emit()
        self.undo_stack.setClean()
        self.dirtyChanged.emit(False)

    def save(self, path: str | Path | None = None) -> Path:
        """Save to ``path`` (or where the project came from) and mark the document clean.

        A project still called "untitled" takes the file's name (its exports use it).
        """
        unnamed = path is not None and self.project.name == Project().name
        if unnamed:
            self.project.name = Path(path).stem
        try:
            target = save(self.project, path)
        except BaseException:
            if unnamed:
                self.project.name = Project().name
            raise
        self.undo_stack.setClean()
        return target

    def set_read_only(self, flag: bool) -> None:
        if flag != self.read_only:
            self.read_only = flag
            self.readOnlyChanged.emit(flag)

    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def undo(self) -> None:
        self._writable()
        self.undo_stack.undo()

    def redo(self) -> None:
        self._writable()
        self.undo_stack.redo()


# -- helpers -----------------------------------------------------------------------------


def _is_variadic(block_type: str) -> bool:
    try:
        return block_class(block_type).variadic()
    except NodenetError:
        return False


def _point(pos: Any) -> tuple[float, float]:
    """Two finite floats, clamped to the positions a project file may hold."""
    try:
        x, y = float(pos[0]), float(pos[1])
    except (TypeError, ValueError, OverflowError, IndexError, KeyError):
        x = y = math.nan
    if not (math.isfinite(x) and math.isfinite(y)):
        raise NodenetError(f"a position must be two finite numbers (got {brief(pos)})")
    return clamp(x), clamp(y)


def clamp(value: float) -> float:
    """``value`` brought within ±:data:`POS_LIMIT` (what a saved project may hold)."""
    return max(-POS_LIMIT, min(POS_LIMIT, value))


def _error_text(err: BaseException) -> str:
    return shorten(f"{type(err).__name__}: {err}")


def _safe_analysis(project: Project) -> Analysis:
    """The analysis of an edited project; if it fails, one problem saying so (undo works)."""
    try:
        return analyze(project)
    except NodenetError as err:
        problem = str(err)
    except ANALYSIS_ERRORS as err:
        problem = _error_text(err)
    return Analysis(
        [Problem(f"the graph cannot be analysed: {problem}", field="nodes")], [], {}, {}, {}
    )


def _read_fragment(fragment: Any) -> tuple[list[Node], list[Edge]]:
    """Parse a copied fragment with the project reader; edges must join fragment nodes."""
    if not isinstance(fragment, dict) or fragment.get("format") != FRAGMENT_FORMAT:
        raise NodenetError("the clipboard does not hold nodenet blocks")
    # a fragment without a version was copied by a nodenet writing version 1
    version = fragment.get("version", 1)
    doc = {"format": "nodenet-project", "version": version, "name": "fragment"}
    doc.update(nodes=fragment.get("nodes", []), edges=fragment.get("edges", []))
    try:
        part = Project.from_dict(doc, "the pasted blocks")
    except ProjectFileError as err:
        raise NodenetError(str(err)) from None
    ids = [n.id for n in part.nodes]
    if len(set(ids)) != len(ids):
        raise NodenetError("the pasted blocks repeat an id")
    known = set(ids)
    return part.nodes, [e for e in part.edges if e.src in known and e.dst in known]


__all__ = [
    "BLOCK_MIME",
    "FRAGMENT_MIME",
    "Document",
    "ParamError",
    "ReadOnlyError",
    "Selection",
    "default_id",
    "new_project",
]

"""The project document: nodes, edges, training and data settings.

Plain data, no Qt: it loads and saves JSON (atomically, with stable key order),
validates itself through the block catalog and infers every node's output
shape. Everything else reads it; the GUI changes it only through undo commands.

The file format is documented in ``docs/project-format.md``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodenet.atomic import write_file
from nodenet.engine.catalog import Shape, fmt_shape
from nodenet.errors import NodenetError, ProjectFileError, brief, shorten
from nodenet.graph.migrate import GROUPLESS_VERSION, VERSION, migrate

FORMAT = "nodenet-project"
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64  # lists and objects nested deeper than this are refused (a project needs ~6)
MAX_VALUES = 4_000_000  # JSON values (an upper bound counted on the text before parsing)
MAX_NODES = 100_000
MAX_EDGES = 250_000
MAX_PORT = MAX_EDGES  # an input port past the number of edges can never be filled in order
MAX_INT_DIGITS = 20  # JSON integers: int64 range and a little more, never 4,300 digits
MAX_ID_CHARS = 200
MAX_COORDINATE = 1e9  # a block's position: |x| and |y| below this
MAX_PROBLEMS = 8  # structural problems listed in one load error; the rest are counted
ID_SEPARATOR = "/"  # weights are keyed "node_id/weight_name"

DEFAULT_TRAINING: dict[str, Any] = {
    "optimizer": {"name": "adam", "learning_rate": 0.001},
    "epochs": 10,
    "batch_size": 32,
    "validation_split": 0.2,
    "shuffle": True,
    "seed": 1671,
    "early_stopping": None,
}
DEFAULT_DATA: dict[str, Any] = {}


@dataclass
class Node:
    """A block on the canvas: its id, its catalog ``type``, its ``params`` and position.

    ``trainable=False`` freezes the block's weights (Keras's ``layer.trainable``): training
    leaves them as they are. It is written to the file only when false.
    """

    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    pos: list[float] = field(default_factory=lambda: [0.0, 0.0])
    trainable: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "type": self.type,
            "params": copy.deepcopy(self.params),
            "pos": [_num(self.pos[0]), _num(self.pos[1])],
        }
        if not self.trainable:
            out["trainable"] = False
        return out


@dataclass
class Edge:
    """A wire from output ``src_port`` of ``src`` to input ``port`` of ``dst``."""

    src: str
    dst: str
    port: int = 0
    src_port: int = 0  # written as "from_port", left out when 0

    def to_dict(self) -> dict[str, Any]:
        if self.src_port:
            return {"from": self.src, "from_port": self.src_port, "to": self.dst, "port": self.port}
        return {"from": self.src, "to": self.dst, "port": self.port}


@dataclass
class EdgeIndex:
    """Edges by target (sorted by port) and by source, as of when it was built."""

    into: dict[str, list[Edge]]
    out_of: dict[str, list[Edge]]

    @classmethod
    def build(cls, edges: list[Edge]) -> EdgeIndex:
        into: dict[str, list[Edge]] = {}
        out_of: dict[str, list[Edge]] = {}
        for e in edges:
            into.setdefault(e.dst, []).append(e)
            out_of.setdefault(e.src, []).append(e)
        for items in into.values():
            items.sort(key=lambda e: e.port)
        return cls(into, out_of)

    def incoming(self, node_id: str) -> list[Edge]:
        return self.into.get(node_id, [])

    def outgoing(self, node_id: str) -> list[Edge]:
        return self.out_of.get(node_id, [])


def id_problem(node_id: Any) -> str | None:
    """Why ``node_id`` cannot be a block id, or ``None``: the rule every loader shares.

    An id is a non-empty string of at most :data:`MAX_ID_CHARS` characters without
    ``/`` (weights are keyed ``node_id/weight_name``) or control characters.
    """
    if not isinstance(node_id, str) or not node_id.strip():
        return f"id must be a non-empty string (got {brief(node_id)})"
    if len(node_id) > MAX_ID_CHARS:
        return f"id {shorten(node_id)!r} is longer than {MAX_ID_CHARS} characters"
    if ID_SEPARATOR in node_id:
        return (
            f"id {shorten(node_id)!r} contains {ID_SEPARATOR!r}, which separates the block "
            "from the weight name in weights files"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in node_id):
        return f"id {shorten(node_id)!r} contains a control character"
    return None


@dataclass
class Project:
    """The whole document. ``path`` is where it was loaded from (not saved)."""

    name: str = "untitled"
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_TRAINING))
    data: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_DATA))
    extra: dict[str, Any] = field(default_factory=dict)  # keys of newer versions, kept as is
    path: Path | None = None
    groups: dict[str, Any] = field(default_factory=dict)  # name -> groups.GroupDef

    # -- queries --------------------------------------------------------------

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def has_node(self, node_id: str) -> bool:
        return any(n.id == node_id for n in self.nodes)

    def incoming(self, node_id: str) -> list[Edge]:
        """Edges into ``node_id``, by port. O(edges): for many nodes use :meth:`edge_index`."""
        return sorted((e for e in self.edges if e.dst == node_id), key=lambda e: e.port)

    def outgoing(self, node_id: str) -> list[Edge]:
        """Edges out of ``node_id``. O(edges): for many nodes use :meth:`edge_index`."""
        return [e for e in self.edges if e.src == node_id]

    def edge_index(self) -> EdgeIndex:
        """Incoming and outgoing edges of every node, built in one O(edges) pass.

        A snapshot: build it again after an edit (the GUI edits edges in place).
        """
        return EdgeIndex.build(self.edges)

    def inputs(self) -> list[Node]:
        return [n for n in self.nodes if n.type == "Input"]

    def outputs(self) -> list[Node]:
        return [n for n in self.nodes if n.type == "Output"]

    def unique_id(self, base: str) -> str:
        """``base`` if free, else ``base_1``, ``base_2``, ..."""
        return unique_name(base, {n.id for n in self.nodes})

    # -- JSON -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION if self.groups else GROUPLESS_VERSION,
            "name": self.name,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "training": copy.deepcopy(self.training),
            "data": copy.deepcopy(self.data),
        }
        if self.groups:
            out["groups"] = {name: g.to_dict() for name, g in self.groups.items()}
        for key, value in self.extra.items():
            out.setdefault(key, copy.deepcopy(value))
        return out

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, doc: Any, source: str = "project") -> Project:
        """Build a project from parsed JSON; every structural problem is reported at once."""
        return _from_dict(doc, source)

    @classmethod
    def from_json(cls, text: str, source: str = "project") -> Project:
        return cls.from_dict(parse_json(text, source), source)

    def copy(self) -> Project:
        return Project.from_dict(self.to_dict())


def unique_name(base: str, taken: set[str], first: int = 1) -> str:
    """``base`` if not in ``taken``, else ``base_1``, ``base_2``, ... (``x_1`` -> ``x_2``).

    ``first``: the suffix to try first (:class:`FreshNames` resumes where it stopped).
    """
    if base not in taken:
        return base
    stem = _stem(base)
    i = first
    while f"{stem}_{i}" in taken:
        i += 1
    return f"{stem}_{i}"


def _stem(base: str) -> str:
    return base.rstrip("0123456789").rstrip("_") or base


class FreshNames:
    """:func:`unique_name` for many names in a row (a paste of 2,000 blocks) in linear
    time: each name taken joins ``taken``, and since names only ever join, the search for
    a stem's next free suffix resumes where the previous one stopped."""

    def __init__(self, taken: set[str]):
        self.taken = taken
        self._next: dict[str, int] = {}

    def take(self, base: str) -> str:
        stem = _stem(base)
        name = unique_name(base, self.taken, self._next.get(stem, 1))
        if name != base:
            self._next[stem] = int(name.rsplit("_", 1)[1]) + 1
        self.taken.add(name)
        return name


def _num(value: float) -> float | int:
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else round(value, 3)


# -- reading -----------------------------------------------------------------


class _BadNumber(ValueError):
    """Raised from inside the JSON parser's number hooks."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _BadNumber(f"an integer of {digits:,} digits is too large (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"the number {shorten(text, 40)} is beyond the range of a float")
    return value


def _parse_constant(text: str) -> Any:
    raise _BadNumber(f"{text} is not a JSON number (use a finite number or null)")


def parse_json(text: str, source: str) -> Any:
    """``json.loads`` within bounds, with errors that give the line and column.

    Refused, each with one sentence: text longer than :data:`MAX_FILE_BYTES`, more than
    :data:`MAX_VALUES` values (counted on the text before any object is built), nesting
    deeper than :data:`MAX_DEPTH`, integers of more than :data:`MAX_INT_DIGITS` digits,
    floats beyond float range, and ``NaN`` / ``Infinity``.
    """
    source = shorten(source)
    if not isinstance(text, str):
        raise ProjectFileError(f"{source}: expected JSON text (got {type(text).__name__})")
    if len(text) > MAX_FILE_BYTES:
        raise ProjectFileError(
            f"{source}: {len(text):,} characters is too long for a project "
            f"(limit {MAX_FILE_BYTES // 2**20} MiB)"
        )
    _check_counts(text, source)
    try:
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except json.JSONDecodeError as err:
        raise ProjectFileError(
            f"{source}: not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None
    except _BadNumber as err:
        raise ProjectFileError(f"{source}: {err}") from None
    except ValueError as err:  # Python's own int digit limit, should a hook be bypassed
        raise ProjectFileError(f"{source}: a number cannot be read ({shorten(err)})") from None
    except RecursionError:
        raise ProjectFileError(
            f"{source}: JSON nested too deeply (at most {MAX_DEPTH} levels)"
        ) from None


def _check_counts(text: str, source: str) -> None:
    """Refuse text with too many values before ``json.loads`` builds them.

    Brackets and commas inside strings count too, so the count is an upper bound. Depth
    is checked by the parser (its RecursionError) and after parsing (:func:`_check_depth`).
    """
    values = text.count("[") + text.count("{") + text.count(",")
    if values > MAX_VALUES:
        raise ProjectFileError(
            f"{source}: holds up to {values:,} JSON values, more than a project may "
            f"({MAX_VALUES:,})"
        )


def load(path: str | os.PathLike) -> Project:
    """Read a project file. Raises :class:`ProjectFileError` with the file's name."""
    path = Path(path)
    name = shorten(str(path))
    raw = read_bounded(path, MAX_FILE_BYTES, "a project file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ProjectFileError(f"{name}: not UTF-8 text (byte {err.start})") from None
    project = Project.from_json(text, name)
    project.path = path
    return project


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, refused once more than ``limit`` bytes have been read.

    Reads at most ``limit + 1`` bytes, whatever ``st_size`` says (a pipe or a device
    reports 0), and only from a regular file.
    """
    name = shorten(str(path))
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block open() forever
            raise ProjectFileError(f"{name}: not a regular file, so not {what}")
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except ProjectFileError:
        raise
    except OSError as err:
        raise ProjectFileError(f"{name}: cannot be read: {err.strerror or err}") from None
    if len(raw) > limit:
        raise ProjectFileError(f"{name}: more than {limit // 2**20} MiB, too large for {what}")
    return raw


def _from_dict(doc: Any, source: str) -> Project:
    if not isinstance(doc, dict):
        raise ProjectFileError(f"{source}: a project must be a JSON object")
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise ProjectFileError(
            f"{source}: not a nodenet project (format is {brief(fmt)}, expected {FORMAT!r})"
        )
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectFileError(
            f"{source}: version must be a positive integer (got {brief(version)})"
        )
    if version > VERSION:
        raise ProjectFileError(
            f"{source}: version {version} was written by a newer nodenet "
            f"(this one reads up to version {VERSION})"
        )
    _check_depth(doc, source)
    doc = migrate(doc, source)
    problems: list[str] = []
    name = doc.get("name", "untitled")
    if not isinstance(name, str):
        problems.append(f"name must be a string (got {brief(name)})")
        name = "untitled"
    nodes = _read_list(doc, "nodes", _read_node, problems, MAX_NODES)
    edges = _read_list(doc, "edges", _read_edge, problems, MAX_EDGES)
    training = doc.get("training", DEFAULT_TRAINING)
    if not isinstance(training, dict):
        problems.append("training must be an object")
    data = doc.get("data", DEFAULT_DATA)
    if not isinstance(data, dict):
        problems.append("data must be an object")
    from nodenet.graph.group_format import read_groups

    groups = read_groups(doc.get("groups"), problems)
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        tail = f"; and {more:,} more problem(s)" if more else ""
        raise ProjectFileError(f"{source}: " + "; ".join(shown) + tail)
    known = {"format", "version", "name", "nodes", "edges", "training", "data", "groups"}
    extra = {k: v for k, v in doc.items() if k not in known}
    merged_training = copy.deepcopy(DEFAULT_TRAINING)
    merged_training.update(copy.deepcopy(training))
    return Project(name, nodes, edges, merged_training, copy.deepcopy(data), extra, groups=groups)


def _check_depth(doc: Any, source: str) -> None:
    """Refuse values nested deeper than :data:`MAX_DEPTH`, numbers beyond float range and
    text that cannot be written back as UTF-8 (an unpaired ``\\ud800`` escape), naming
    where (no recursion; the path to a value is a linked ``(parent, key)`` pair, so each
    value costs O(1))."""
    stack: list[tuple[Any, int, Any]] = [(doc, 0, None)]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise ProjectFileError(
                f"{source}: {_where(path)}: values nested more than {MAX_DEPTH} levels deep"
            )
        if isinstance(value, dict):
            stack.extend((item, depth + 1, (path, key)) for key, item in value.items())
            stack.extend((key, depth + 1, (path, "(key)")) for key in value)
        elif isinstance(value, list):
            stack.extend((item, depth + 1, (path, i)) for i, item in enumerate(value))
        elif isinstance(value, int | float) and not isinstance(value, bool) and not _finite(value):
            raise ProjectFileError(
                f"{source}: {_where(path)}: {brief(value, 40)} is not a finite number "
                "within float range"
            )
        elif isinstance(value, str) and not _utf8(value):
            raise ProjectFileError(
                f"{source}: {_where(path)}: text holds an unpaired surrogate escape "
                "(like \\ud800), which is not a character"
            )


def _where(path: Any) -> str:
    """``nodes.3.params.units``: where a value sits, for a message (first six steps)."""
    keys = []
    while path is not None:
        path, key = path
        keys.append(str(key))
    return shorten(".".join(reversed(keys[-6:])) or "the document")


def _finite(value: int | float) -> bool:
    """Whether ``value`` is a float-range finite number (a huge int like 10**400 is not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_list(doc, key, read_item, problems, limit):
    items = doc.get(key, [])
    if not isinstance(items, list):
        problems.append(f"{key} must be a list")
        return []
    if len(items) > limit:
        problems.append(f"{key}: {len(items):,} items, more than a project may hold ({limit:,})")
        return []
    out = []
    for i, item in enumerate(items):
        try:
            out.append(read_item(item))
        except ValueError as err:
            problems.append(f"{key}[{i}]: {err}")
            if len(problems) > MAX_PROBLEMS * 50:  # enough to count "and N more" cheaply
                break
    return out


def _read_node(item: Any) -> Node:
    if not isinstance(item, dict):
        raise ValueError("a node must be an object")
    node_id, node_type = item.get("id"), item.get("type")
    problem = id_problem(node_id)
    if problem is not None:
        raise ValueError(problem)
    where = shorten(node_id)
    if not isinstance(node_type, str):
        raise ValueError(f"{where}: type must be a string (got {brief(node_type)})")
    params = item.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"{where}: params must be an object")
    pos = item.get("pos", [0, 0])
    if (
        not isinstance(pos, list)
        or len(pos) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos)
        or not all(math.isfinite(v) and abs(v) < MAX_COORDINATE for v in pos)
    ):
        raise ValueError(f"{where}: pos must be two finite numbers [x, y]")
    trainable = item.get("trainable", True)
    if not isinstance(trainable, bool):
        raise ValueError(f"{where}: trainable must be true or false (got {brief(trainable)})")
    position = [float(pos[0]), float(pos[1])]
    return Node(node_id, node_type, copy.deepcopy(params), position, trainable)


def _read_edge(item: Any) -> Edge:
    if not isinstance(item, dict):
        raise ValueError("an edge must be an object")
    src, dst, port = item.get("from"), item.get("to"), item.get("port", 0)
    if not isinstance(src, str) or not isinstance(dst, str):
        raise ValueError("from and to must be node ids (strings)")
    where = f"{shorten(src)} -> {shorten(dst)}"
    for key, value in (("port", port), ("from_port", item.get("from_port", 0))):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{where}: {key} must be a non-negative integer (got {brief(value)})")
        if value > MAX_PORT:
            raise ValueError(
                f"{where}: {key} {brief(value)} is past the last possible port {MAX_PORT:,}"
            )
    return Edge(src, dst, port, item.get("from_port", 0))


# -- writing -----------------------------------------------------------------


def dumps(doc: dict[str, Any]) -> str:
    """Stable, diff-friendly JSON: one node or edge per line, sections indented."""
    lines = ["{"]
    keys = list(doc)
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        value = doc[key]
        if key == "groups" and isinstance(value, dict) and value:
            lines.append(f'  "groups": {_dump_groups(value)}{comma}')
        elif key in ("nodes", "edges", "inputs", "outputs") and isinstance(value, list) and value:
            items = [json.dumps(item, ensure_ascii=False) for item in value]
            body = ",\n".join(f"    {item}" for item in items)
            lines.append(f'  "{key}": [\n{body}\n  ]{comma}')
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
            lines.append(f"  {json.dumps(key)}: {text}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dump_groups(groups: dict[str, Any]) -> str:
    """Each definition's nodes and edges one per line, like the project's own."""
    parts = []
    for name, group in groups.items():
        inner = dumps(group).rstrip("\n").replace("\n", "\n    ")
        parts.append(f"    {json.dumps(name, ensure_ascii=False)}: {inner}")
    return "{\n" + ",\n".join(parts) + "\n  }"


def save(project: Project, path: str | os.PathLike | None = None) -> Path:
    """Save atomically to ``path`` (or where the project came from)."""
    target = Path(path) if path is not None else project.path
    if target is None:
        raise ProjectFileError("the project has no file yet: choose where to save it")
    write_file(target, project.to_json(), ProjectFileError)
    project.path = target
    return target


# -- validation and shapes: nodenet.graph.validation, re-exported here ---------------------

from nodenet.graph.validation import Analysis, Problem, analyze, validate  # noqa: E402


def shape_text(shape: Shape | None) -> str:
    return "?" if shape is None else fmt_shape(shape)


__all__ = [
    "Analysis",
    "Edge",
    "EdgeIndex",
    "Node",
    "NodenetError",
    "Problem",
    "Project",
    "analyze",
    "dumps",
    "id_problem",
    "load",
    "migrate",
    "parse_json",
    "save",
    "shape_text",
    "validate",
]

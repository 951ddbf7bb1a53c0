"""The Keras-style model summary: a row per node, totals, as text or JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nodenet.engine.catalog import fmt_shape
from nodenet.errors import ValidationError, shorten
from nodenet.graph.project import Project, analyze

BYTES_PER_PARAM = 4  # float32
CONNECTED_SHOWN = 3  # sources named in a text row's "Connected to" before "… and N more"
CELL_CHARS = 60  # an id or type in a text row is cut to this many characters


@dataclass(frozen=True)
class Row:
    id: str
    type: str
    output_shape: tuple
    trainable: int
    non_trainable: int
    connected_to: tuple[str, ...]
    output_shapes: tuple[tuple, ...] = ()  # every output's shape, of a block with several
    group: str | None = None  # a group instance's definition (its type is "Group")
    children: tuple[Row, ...] = ()  # a group instance's inner rows, like Keras's nested Model

    @property
    def label(self) -> str:
        """``dense_1 (Dense)``; a group instance shows its definition: ``block_1 (res)``."""
        kind = self.group if self.group is not None else self.type
        return f"{shorten(self.id, CELL_CHARS)} ({shorten(kind, CELL_CHARS)})"

    @property
    def shape_text(self) -> str:
        """``(None, 4)``, or Keras's list ``[(None, 3, 4), (None, 4), (None, 4)]``."""
        if self.output_shapes:
            return "[" + ", ".join(fmt_shape(s) for s in self.output_shapes) + "]"
        return fmt_shape(self.output_shape)

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


@dataclass(frozen=True)
class Summary:
    name: str
    rows: tuple[Row, ...]

    @property
    def trainable(self) -> int:
        return sum(r.trainable for r in self.rows)

    @property
    def non_trainable(self) -> int:
        return sum(r.non_trainable for r in self.rows)

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layers": [_row_dict(r) for r in self.rows],
            "total_params": self.total,
            "trainable_params": self.trainable,
            "non_trainable_params": self.non_trainable,
        }

    def to_text(self, expand_nested: bool = False) -> str:
        """Keras's table; ``expand_nested`` also lists the rows inside each group, indented
        (Keras's ``summary(expand_nested=True)``)."""
        header = ("Layer (type)", "Output Shape", "Param #", "Connected to")
        body = [
            (
                indent + r.label,
                r.shape_text,
                f"{r.params:,}",
                connected_text(r.connected_to),
            )
            for indent, r in _walk(self.rows, expand_nested)
        ]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(4)]

        def line(cells):
            parts = [
                c.ljust(w) if i != 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=False))
            ]
            return "│ " + " │ ".join(parts) + " │"

        def rule(left, mid, right):
            return left + mid.join("─" * (w + 2) for w in widths) + right

        out = [f'Model: "{self.name}"', rule("┌", "┬", "┐"), line(header), rule("├", "┼", "┤")]
        out += [line(cells) for cells in body]
        out.append(rule("└", "┴", "┘"))
        out.append(f" Total params: {self.total:,} ({_size(self.total)})")
        out.append(f" Trainable params: {self.trainable:,} ({_size(self.trainable)})")
        out.append(f" Non-trainable params: {self.non_trainable:,} ({_size(self.non_trainable)})")
        return "\n".join(out)


def _walk(rows: tuple[Row, ...], nested: bool, indent: str = ""):
    """(indent, row) of each row, and of the rows inside groups when ``nested``."""
    for r in rows:
        yield indent, r
        if nested and r.children:
            yield from _walk(r.children, nested, indent + "  ")


def _row_dict(r: Row) -> dict[str, Any]:
    row = {
        "id": r.id,
        "type": r.type,
        "output_shape": [None, *r.output_shape],
        "params": r.params,
        "trainable_params": r.trainable,
        "non_trainable_params": r.non_trainable,
        "connected_to": list(r.connected_to),
    }
    if r.output_shapes:  # a block with several outputs: output_shape is output 0's
        row["output_shapes"] = [[None, *s] for s in r.output_shapes]
    if r.group is not None:  # a group instance: its inner rows nested, as Keras nests a Model
        row["group"] = r.group
        row["layers"] = [_row_dict(c) for c in r.children]
    return row


def connected_text(sources: tuple[str, ...] | list[str], shown: int = CONNECTED_SHOWN) -> str:
    """``a, b, c … and 9,997 more``: a "Connected to" cell of bounded length."""
    if not sources:
        return "-"
    names = ", ".join(shorten(s, CELL_CHARS) for s in sources[:shown])
    more = len(sources) - shown
    return f"{names} … and {more:,} more" if more > 0 else names


def _size(count: int) -> str:
    """``count`` float32 values in B / KB / MB / GB (integer arithmetic: never overflows)."""
    size = count * BYTES_PER_PARAM
    for power, unit in enumerate(("B", "KB", "MB")):
        if size < 1024 ** (power + 1):
            return f"{size / 1024**power:.2f} {unit}"
    if size < 2**100:
        return f"{size / 1024**3:.2f} GB"
    return f"{size // 1024**3:,} GB"


def summarize(project: Project) -> Summary:
    """The summary of a valid project; raises :class:`ValidationError` otherwise."""
    analysis = analyze(project)
    if analysis.problems:
        raise ValidationError(analysis.problems)
    if analysis.flat is not None:
        from nodenet.graph.group_summary import group_rows

        return Summary(project.name, group_rows(project, analysis))
    types = {n.id: n.type for n in project.nodes}
    rows = []
    index = analysis.index or project.edge_index()
    for node_id in analysis.order:
        trainable, non_trainable = analysis.params[node_id]
        # an edge from another output than 0 names it: ``lstm[1]``
        sources = tuple(
            f"{e.src}[{e.src_port}]" if e.src_port else e.src for e in index.incoming(node_id)
        )
        rows.append(
            Row(
                node_id,
                types[node_id],
                analysis.shapes[node_id],
                trainable,
                non_trainable,
                sources,
                analysis.output_shapes.get(node_id, ()),
            )
        )
    return Summary(project.name, tuple(rows))

"""Layouts that use the screen: a deep graph folded into bands of columns. No Qt.

:func:`auto_layout` chooses per graph shape. A wide graph (many inputs or branches,
few columns) keeps the left-to-right :func:`~nodenet.graph.layout.layered_layout`;
a deep one (a ResNet-50 is 170 columns) would fit its view only at a zoom where no
card can be read, so its columns are folded into bands read like lines of text,
each band as wide as the view shows at a legible zoom, cut where the fewest edges
cross (between residual blocks, so skip connections stay inside their band).
"""

from __future__ import annotations

import itertools

from nodenet.graph.layout import CARDS, Cards, card_port_counts, layered_layout
from nodenet.graph.project import Project

WRAP_ZOOM = 0.85  # auto_layout folds a long graph until it fits its view at this zoom
LEGIBLE_ZOOM = 0.8  # the canvas's zoom-out limit for legible card text (its view computes it)
VIEW = (1200.0, 700.0)  # the canvas area a layout plans for when it is not told one
FIT_MARGIN = 96.0  # what fitting a view leaves around the graph (48 on each side)


def auto_layout(
    project: Project,
    view: tuple[float, float] = VIEW,
    cards: Cards = CARDS,
    legible_zoom: float = LEGIBLE_ZOOM,
) -> dict[str, tuple[float, float]]:
    """The layout that suits the graph's shape: a deep graph folded into bands, a wide one layered.

    A graph whose :func:`layered_layout` is much wider than ``view`` (width, height)
    would be fitted at a zoom where card text cannot be read; it comes back as
    :func:`wrapped_layout`, bands of columns read like lines of text. A wide graph
    (many inputs or branches, few columns) stays one left-to-right layered drawing.
    """
    return wrapped_layout(project, view, cards, legible_zoom)


def wrapped_layout(
    project: Project,
    view: tuple[float, float] = VIEW,
    cards: Cards = CARDS,
    legible_zoom: float = LEGIBLE_ZOOM,
) -> dict[str, tuple[float, float]]:
    """:func:`layered_layout` folded into bands, like lines of text, so that a long
    chain fits a view of ``view`` (width, height) at a zoom where its text is legible.

    Band ``b`` holds columns ``start_b .. start_{b+1}-1``, under band ``b-1``. Bands are
    as wide as lets the whole drawing fit ``view`` at :data:`WRAP_ZOOM`; when no width
    does, as wide as ``view`` shows at ``legible_zoom``, so the reader scrolls down only.
    A band ends where the fewest edges cross from one column to the next (after a
    residual block's Add, not inside it), so skip connections stay within their band.
    A graph that fits ``view`` unfolded at ``legible_zoom``, or is not at least twice
    as wide (relative to the view) as tall, comes back as :func:`layered_layout`.
    Linear in nodes + edges (after the layered layout).
    """
    positions = layered_layout(project, cards)
    if not positions:
        return positions
    pitch = cards.pitch
    columns = {node_id: round(x / pitch) for node_id, (x, _) in positions.items()}
    tall = card_port_counts(project)
    heights = {node_id: cards.node_height(tall[node_id]) for node_id in positions}
    count = max(columns.values()) + 1
    top = min(y for _, y in positions.values())
    bottom = max(y + heights[node_id] for node_id, (_, y) in positions.items())
    width = count * pitch - cards.layer_gap + FIT_MARGIN
    height = bottom - top + FIT_MARGIN
    legible = min(view[0] / width, view[1] / height) >= legible_zoom
    if legible or width / height < 2 * view[0] / view[1]:  # fits, or wide rather than deep
        return positions
    costs = _cut_costs(project, columns, count)
    per_band = _band_width(count, bottom - top + cards.layer_gap, view, cards, legible_zoom)
    starts = _band_starts(count, per_band, costs)
    band_of = [0] * count
    for b, (start, end) in enumerate(itertools.pairwise([*starts, count])):
        band_of[start:end] = [b] * (end - start)
    low = [float("inf")] * len(starts)
    high = [float("-inf")] * len(starts)
    for node_id, (_, y) in positions.items():
        b = band_of[columns[node_id]]
        low[b] = min(low[b], y)
        high[b] = max(high[b], y + heights[node_id])
    offsets, acc = [], 0.0
    for b in range(len(starts)):
        offsets.append(acc - low[b])
        acc += high[b] - low[b] + cards.layer_gap  # room for the edge into the next band
    return {
        node_id: (
            float((columns[node_id] - starts[band_of[columns[node_id]]]) * pitch),
            float(round(y + offsets[band_of[columns[node_id]]])),
        )
        for node_id, (_, y) in positions.items()
    }


def _cut_costs(project: Project, columns: dict[str, int], count: int) -> list[tuple[int, int]]:
    """What a band break left of column ``c`` costs: ``(edges it cuts that start before
    column c-1, edges it cuts)``. An edge leaving the band's last column wraps to the
    next band from its end, as a line of text does; one leaving from further left
    would cross the rest of its band. Two difference arrays, O(nodes + edges)."""
    long = [0] * (count + 2)
    every = [0] * (count + 2)
    for edge in project.edges:
        a, b = columns.get(edge.src), columns.get(edge.dst)
        if a is None or b is None or a == b:
            continue
        a, b = min(a, b), max(a, b)
        every[a + 1] += 1
        every[b + 1] -= 1
        if a + 2 <= b:
            long[a + 2] += 1
            long[b + 1] -= 1
    costs, running_long, running = [], 0, 0
    for c in range(count):
        running_long += long[c]
        running += every[c]
        costs.append((running_long, running))
    return costs


def _band_width(
    count: int, band: float, view: tuple[float, float], cards: Cards, legible_zoom: float
) -> int:
    """Columns per band: the widest that fits everything at WRAP_ZOOM (else at the legible
    zoom), else as many as the view shows at the legible zoom."""
    pitch = cards.pitch

    def zoom(per_band: int) -> float:
        bands = -(-count // per_band)
        width = per_band * pitch - cards.layer_gap + FIT_MARGIN
        height = bands * band - cards.layer_gap + FIT_MARGIN
        return min(view[0] / width, view[1] / height)

    for target in (max(WRAP_ZOOM, legible_zoom), legible_zoom):
        for k in range(count, 0, -1):
            if zoom(k) >= target:
                return -(-count // -(-count // k))  # as many bands, evenly filled
    fits = int((view[0] / legible_zoom - FIT_MARGIN + cards.layer_gap) // pitch)
    return max(2, min(count, fits))


def _band_starts(count: int, per_band: int, costs: list[tuple[int, int]]) -> list[int]:
    """First column of every band: each band at most ``per_band`` columns, ending (in the
    back half of its room) where the fewest edges cross to the next column."""
    starts = [0]
    while count - starts[-1] > per_band:
        start = starts[-1]
        first = start + max(1, (per_band + 1) // 2)
        cut = min(range(first, start + per_band + 1), key=lambda c: (*costs[c], -c))
        starts.append(cut)
    return starts

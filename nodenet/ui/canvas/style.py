"""The canvas look: colours per block category, fonts, sizes, and text formatting.

Plain data and pure functions, no Qt, so the automatic layout can size nodes
exactly as the canvas draws them. Colours are ``#rrggbb`` strings; the items
turn them into ``QColor`` once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nodenet.graph.layout import CARDS

# -- colours -------------------------------------------------------------------

CATEGORY_COLORS: dict[str, str] = {
    "Input / Output": "#0ca678",
    "Core": "#4263eb",
    "Convolution": "#f76707",
    "Pooling": "#e0a100",
    "Recurrent": "#7048e8",
    "Normalization": "#1098ad",
    "Merge": "#ae3ec9",
    "Attention": "#d6336c",
    "Augmentation": "#5c940d",
    "Group": "#343a40",  # a group instance: a block made of blocks
}
UNKNOWN_COLOR = "#868e96"

BACKGROUND = "#f5f6f8"
GRID_MINOR = "#eceef2"
GRID_MAJOR = "#e0e3e9"
CARD = "#ffffff"
CARD_BORDER = "#d0d5dd"
SHADOW = "#101828"  # drawn at low alpha
TEXT = "#1d2433"
TEXT_MUTED = "#667085"
DETAIL_TEXT = "#475467"  # a card's detail lines: 7.7:1 on white, legible when small
TEXT_ON_COLOR = "#ffffff"
SELECTED = "#2563eb"
PROBLEM = "#e03131"
EDGE = "#98a2b3"
EDGE_SELECTED = "#2563eb"
LABEL_BACKGROUND = "#ffffff"
PORT_FILL = "#ffffff"
PORT_CONNECTED = "#475467"
PORT_OK = "#12b886"
PORT_REFUSED = "#e03131"
LINK_DRAFT = "#2563eb"
RUBBER_BAND = "#2563eb"
BANNER = "#b54708"
BANNER_TEXT = "#ffffff"
# a frozen block (trainable=False): a muted header with a snowflake
FROZEN_GREY = "#98a2b3"
FROZEN_MIX = 0.6
FROZEN_BADGE = "❄"
FROZEN_TIP = "❄ Frozen: training leaves its weights as they are (not trainable)"

# -- fonts (family fallbacks, point sizes) ------------------------------------

FONT_FAMILY = "Inter, Segoe UI, Helvetica Neue, DejaVu Sans, Arial"
MONO_FAMILY = "JetBrains Mono, Consolas, DejaVu Sans Mono, monospace"
TITLE_PT = 9.5
BODY_PT = 9.0  # the detail lines; the shape line (mono) is 0.5 pt smaller
LABEL_PT = 7.5

# -- geometry (scene units) ------------------------------------------------------

# card sizes are the layout's (nodenet.graph.layout.Cards), so it places cards as drawn
NODE_WIDTH = CARDS.width
HEADER_HEIGHT = CARDS.header_height
LINE_HEIGHT = CARDS.line_height
BODY_LINES = CARDS.body_lines
PADDING = CARDS.padding
BODY_MARGIN = CARDS.body_margin
RADIUS = 7.0
PORT_RADIUS = 5.0
PORT_HIT_RADIUS = 9.0
PORT_PITCH = CARDS.port_pitch
GRID = 20.0
LAYER_GAP = CARDS.layer_gap
ROW_GAP = CARDS.row_gap
SELECTED_PEN = 2.0
PROBLEM_PEN = 2.0
EDGE_PEN = 1.8

MIN_ZOOM = 0.04
MAX_ZOOM = 4.0
DETAIL_ZOOM = 0.55  # below this scale cards show only their id, edges drop their labels
OVERVIEW_ZOOM = 0.12  # below this scale cards show no text at all
OVERVIEW_PT = 8.0  # on-screen size of the id on a zoomed-out card
LEGIBLE_PX = 9.0  # Fit zooms out no further than leaves card detail lines this high


def category_color(category: str, muted: bool = False) -> str:
    """The header colour of a category; ``muted`` (a frozen block) mixes it with grey."""
    colour = CATEGORY_COLORS.get(category, UNKNOWN_COLOR)
    return mix(colour, FROZEN_GREY, FROZEN_MIX) if muted else colour


def mix(a: str, b: str, amount: float) -> str:
    """``#rrggbb`` ``amount`` of the way from ``a`` to ``b``."""
    pa = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    pb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * amount):02x}" for x, y in zip(pa, pb, strict=True))


node_height = CARDS.node_height
port_y = CARDS.port_y


# -- text --------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """A parameter value as a node shows it: ``3×3``, ``28×28×1``, ``relu``, ``0.5``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        if value and all(v is None or isinstance(v, int) for v in value):
            return "×".join("?" if v is None else str(v) for v in value)
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return str(value.get("name", "{…}"))
    return str(value)


def key_params_text(
    names: Sequence[str],
    config: dict[str, Any],
    nested: Callable[[dict[str, Any]], str] | None = None,
) -> str:
    """The key parameters on one line: ``128 units · relu``.

    Strings (activations, modes) show their value alone; booleans their name
    when true; a wrapped block (``{"type": ..., "params": ...}``) what ``nested``
    says of it (``LSTM · units 16``); everything else ``name value``
    (``kernel_size`` shortened to ``kernel``).
    """
    parts = []
    for name in names:
        if name not in config:
            continue
        value = config[name]
        if nested is not None and isinstance(value, dict) and "type" in value:
            parts.append(nested(value))
        elif isinstance(value, bool):
            if value:
                parts.append(name)
        elif isinstance(value, str):
            parts.append(value)
        else:
            label = name.removesuffix("_size") or name  # kernel_size 3×3 -> kernel 3×3
            parts.append(f"{label} {format_value(value)}")
    return " · ".join(parts)


def compact_shape(shape: Sequence[int | None] | None) -> str:
    """An edge label: ``28×28×1`` (the batch left out, ``?`` for a variable size)."""
    if shape is None:
        return "?"
    if len(shape) == 0:
        return "scalar"
    return "×".join("?" if d is None else str(d) for d in shape)


def count_texts(count: int) -> tuple[str, ...]:
    """A parameter count from the longest to the shortest form: the card shows what fits."""
    exact = f"{count:,}"
    if count < 10_000:
        short = exact
    elif count < 1_000_000:
        short = f"{count / 1000:.1f}K".replace(".0K", "K")
    else:
        short = f"{count / 1_000_000:.1f}M".replace(".0M", "M")
    return (f"{exact} params", exact, short)

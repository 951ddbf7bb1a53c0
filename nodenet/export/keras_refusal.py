"""The refusal of a Keras model nodenet cannot represent: short whatever the model's size.

Layers nodenet lacks are grouped by class with counts (``CustomNoise x300 (noise_0,
noise_1, noise_2, ... 297 more)``), problems that differ only in the layer they name are
grouped likewise, at most :data:`MAX_LINES` lines of them, and a last line names what the
user can do. A single problem stays one line.
"""

from __future__ import annotations

import re

from nodenet.errors import shorten

MAX_LINES = 8  # problem lines in a refusal, besides its first and last
MAX_NAMES = 3  # layer names shown per group
MAX_CLASSES = 6  # classes nodenet lacks shown by name
MAX_LINE_CHARS = 400
_ADVICE = (
    "What you can do: replace or remove these layers and settings in Keras (docs/blocks.md "
    "lists the blocks nodenet has), or leave them out and build those parts in the editor."
)


def refusal(missing: list[tuple[str, str]], problems: list[str]) -> str | None:
    """The message refusing a model for ``missing`` (class, layer name) pairs and
    ``problems``; ``None`` when there is nothing to refuse."""
    lines = []
    if missing:
        lines.append("it uses blocks nodenet lacks: " + _grouped_missing(missing))
    lines += _grouped_problems(problems)
    if not lines:
        return None
    if len(lines) == 1 and not missing:
        return lines[0]
    if len(lines) > MAX_LINES:
        lines[MAX_LINES - 1 :] = [f"... and {len(lines) - MAX_LINES + 1} more problems"]
    lines = [f"  {shorten(line, MAX_LINE_CHARS)}" for line in lines]
    return "\n".join(["nodenet cannot represent this model:", *lines, _ADVICE])


def _names(names: list[str]) -> str:
    shown = ", ".join(shorten(n, 24) for n in names[:MAX_NAMES])
    return shown + (f", ... {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else "")


def _grouped_missing(missing: list[tuple[str, str]]) -> str:
    """``Lambda (magic)``, ``GaussianNoise x300 (noise_0, noise_1, noise_2, ... 297 more)``:
    the most used classes first, at most :data:`MAX_CLASSES` of them."""
    groups: dict[str, list[str]] = {}
    for kind, name in missing:
        groups.setdefault(shorten(kind, 40), []).append(name)
    ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
    shown = [
        f"{kind}{f' x{len(names)}' if len(names) > 1 else ''} ({_names(names)})"
        for kind, names in ranked[:MAX_CLASSES]
    ]
    if len(ranked) > MAX_CLASSES:
        shown.append(f"... {len(ranked) - MAX_CLASSES} more classes")
    return ", ".join(shown)


_PROBLEM = re.compile(r"(?s)^(\w+) '((?:[^'\\]|\\.)*)'(:? .*)$")


def _grouped_problems(problems: list[str]) -> list[str]:
    """Problems that differ only in the layer named (``Dense 'd_7': ...``), one line each
    with the layers' count and first names; others as they are, without repeats."""
    groups: dict[tuple[str, str], list[str]] = {}
    first: dict[tuple[str, str], str] = {}
    for problem in problems:
        match = _PROBLEM.match(problem)
        kind, name, rest = match.groups() if match else (problem, "", "")
        groups.setdefault((kind, rest), []).append(name)
        first.setdefault((kind, rest), problem)
    return [
        first[key]
        if len(names) == 1 or not key[1]
        else f"{key[0]} x{len(names)} ({_names(names)}){key[1]}"
        for key, names in groups.items()
    ]

"""Writing Python source: quoted text, identifiers from node ids, imports, long lines wrapped.

Shared by the Keras and PyTorch exporters. Text from a project or an imported
model (its name, node ids, paths, setting values) reaches generated source only
through :func:`py_str` (a one-line string literal, built by ``repr``) or, in
docstrings, :func:`doc_text` (escaped so that it can never close the docstring);
:func:`py_value` and :func:`py_arguments` apply :func:`py_str` to every string
inside a value. Names in code come from :func:`identifiers` and :func:`class_name`.
Imports are derived from the finished code (a name is imported when the code
uses it), so the generated modules never carry a dead import; lines are wrapped
the way ``ruff format`` wraps calls, so they stay within 100 characters.
"""

from __future__ import annotations

import builtins
import io
import keyword
import re
import textwrap
import tokenize
from collections.abc import Iterable
from typing import Any

from nodenet.export.snippets import Source, literal

LINE = 100

# name the generated code may use -> the import that binds it (stdlib first, then third party)
IMPORTS: dict[str, tuple[str, str]] = {
    "argparse": ("stdlib", "import argparse"),
    "copy": ("stdlib", "import copy"),
    "math": ("stdlib", "import math"),
    "os": ("stdlib", "import os"),
    "Path": ("stdlib", "from pathlib import Path"),
    "np": ("third", "import numpy as np"),
    "keras": ("third", "import keras"),
    "layers": ("third", "from keras import layers"),
    "torch": ("third", "import torch"),
    "dist": ("third", "import torch.distributed as dist"),
    "F": ("third", "import torch.nn.functional as F"),
    "nn": ("third", "from torch import nn"),
    "DistributedDataParallel": (
        "third",
        "from torch.nn.parallel import DistributedDataParallel",
    ),
    "DataLoader": ("third", "from torch.utils.data import DataLoader"),
    "DistributedSampler": ("third", "from torch.utils.data import DistributedSampler"),
    "TensorDataset": ("third", "from torch.utils.data import TensorDataset"),
    "Dataset": ("third", "from torch.utils.data import Dataset"),
    "train_test_split": ("third", "from sklearn.model_selection import train_test_split"),
}
for _loader in ("digits", "iris", "wine", "breast_cancer", "diabetes"):
    IMPORTS[f"load_{_loader}"] = ("third", f"from sklearn.datasets import load_{_loader}")
# Keras layers that keras.applications defines outside keras.layers, by the module Keras
# itself records for them in a saved model: generated code imports them by name
KERAS_APPLICATION_LAYERS = {
    "LayerScale": "keras.src.applications.convnext",
    "CustomScaleLayer": "keras.src.applications.inception_resnet_v2",
}
for _name, _module in KERAS_APPLICATION_LAYERS.items():
    IMPORTS[_name] = ("third", f"from {_module} import {_name}")

_NN_MODULE_NAMES = """
T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda
double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
get_submodule half ipu load_state_dict modules mtia named_buffers named_children
named_modules named_parameters parameters register_backward_hook register_buffer
register_forward_hook register_forward_pre_hook register_full_backward_hook
register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter
register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
reset_parameters
""".split()

RESERVED = frozenset(
    {*keyword.kwlist, *dir(builtins), *IMPORTS, *_NN_MODULE_NAMES, "self", "model", "x", "y"}
)


def identifiers(ids: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """A distinct Python identifier for each node id: ``"conv 1"`` -> ``conv_1``.

    Names in ``reserved`` (and Python's keywords, builtins, imported names and
    nn.Module attributes) get a trailing underscore.
    """
    taken = set(RESERVED) | set(reserved)
    names: dict[str, str] = {}
    used: set[str] = set()
    for node_id in ids:
        name = re.sub(r"\W", "_", str(node_id), flags=re.ASCII) or "node"
        if name[0].isdigit() or name.startswith("_"):
            name = "n" + name if name[0].isdigit() else "n" + name.lstrip("_")
        while name in taken:
            name += "_"
        base = name
        i = 2
        while name in used or name in taken:
            name, i = f"{base}_{i}", i + 1
        names[node_id] = name
        used.add(name)
    return names


def class_name(text: str, taken: Iterable[str] = ()) -> str:
    """``digits_mlp`` -> ``DigitsMlp``; ``Model`` when nothing usable is left."""
    words = re.findall(r"[A-Za-z0-9]+", str(text))
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    if name[0].isdigit():
        name = "Model" + name
    while name in set(taken) or name in RESERVED:
        name += "Model"
    return name


def keras_class(name: str) -> str:
    """How generated code names Keras layer class ``name``: ``layers.Dense``, or the bare
    name of a layer imported from keras.applications (:data:`KERAS_APPLICATION_LAYERS`)."""
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"{name!r} is not a Keras class name")
    return name if name in KERAS_APPLICATION_LAYERS else f"layers.{name}"


def py_str(value: str) -> str:
    """``value`` as a one-line Python string literal that evaluates back to it exactly.

    Built by ``repr``, which escapes backslashes, quotes, line breaks and every
    character that is not printable (``\\x00``, ``\\u2028``, a lone ``\\ud800``);
    double quotes, as ``ruff format`` writes them, where the text holds none.
    """
    if not isinstance(value, str):
        raise TypeError(f"py_str takes text, not {type(value).__name__}")
    text = repr(str(value))
    if text[0] == "'" and '"' not in value:
        return f'"{text[1:-1]}"'
    return text


def py_value(value: Any) -> str:
    """A JSON-like value as source: strings through :func:`py_str`, lists as tuples (as
    Keras writes sizes), dicts with their keys quoted; :class:`Source` as it is."""
    if isinstance(value, Source):
        return str(value)
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, list | tuple):
        items = [py_value(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_value(k)}: {py_value(v)}" for k, v in value.items()) + "}"
    return literal(value)


def py_list(values: Iterable[Any]) -> str:
    """``[a, b]`` with each item through :func:`py_value`."""
    return "[" + ", ".join(py_value(v) for v in values) + "]"


def py_arguments(positional: list[Any], keywords: dict[str, Any]) -> str:
    """``a, b, key=value`` for a call, every value through :func:`py_value`."""
    for key in keywords:
        if not (isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)):
            raise ValueError(f"{key!r} cannot be a keyword argument")
    parts = [py_value(v) for v in positional]
    parts += [f"{k}={py_value(v)}" for k, v in keywords.items()]
    return ", ".join(parts)


def doc_text(value: Any) -> str:
    """Text for a docstring or a comment, as source that cannot end or break it.

    The docstring reads the text as ``repr`` shows it, without the quotes: one
    line, printable, ``\\n`` or ``\\ud800`` for what is not; in the source its
    backslashes are doubled and its ``"`` escaped.
    """
    shown = repr(str(value))[1:-1]
    return shown.replace("\\", "\\\\").replace('"', '\\"')


def global_names(code: str) -> set[str]:
    """Every name ``code`` reads or calls other than as an attribute or a keyword argument
    (comments and strings left out)."""
    try:
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(code).readline)
            if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
        ]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return set(re.findall(r"(?<![\w.])[A-Za-z_]\w*", code))
    names = set()
    for i, token in enumerate(tokens):
        after = tokens[i + 1].string if i + 1 < len(tokens) else ""
        before = tokens[i - 1].string if i else ""
        if token.type == tokenize.NAME and before != "." and after != "=":
            names.add(token.string)
    return names


def uses(code: str, name: str) -> bool:
    """Whether ``code`` uses global ``name``."""
    return name in global_names(code)


def import_block(code: str) -> str:
    """The sorted import lines ``code`` needs: stdlib, then third party, ``import`` before
    ``from``, one ``from`` line per module."""
    groups: dict[str, dict[str, set[str]]] = {"stdlib": {}, "third": {}}
    plain: dict[str, set[str]] = {"stdlib": set(), "third": set()}
    used = global_names(code)
    for name, (group, line) in IMPORTS.items():
        if name not in used:
            continue
        if line.startswith("from "):
            module, _, what = line[len("from ") :].partition(" import ")
            groups[group].setdefault(module, set()).add(what)
        else:
            plain[group].add(line)
    blocks = []
    for group in ("stdlib", "third"):
        lines = sorted(plain[group], key=_module_key)
        lines += [
            f"from {module} import {', '.join(sorted(names, key=_name_key))}"
            for module, names in sorted(groups[group].items())
        ]
        if lines:
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _module_key(line: str) -> str:
    return line.split()[1]


def _name_key(name: str) -> tuple[int, str]:
    """isort's order: CONSTANTS, Classes, functions."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


def wrap(line: str, width: int = LINE) -> str:
    """``line`` (indented) split inside a bracket the way ruff format does when longer
    than ``width``: at the last bracket whose head and tail fit (or the first), the
    contents on one indented line, or one item per line with a trailing comma."""
    if len(line) <= width:
        return line
    indent = line[: len(line) - len(line.lstrip())]
    pairs = _top_level_pairs(line)
    if not pairs:
        return line
    opener, closer = pairs[0]
    for o, c in reversed(pairs):
        if len(line[: o + 1]) <= width and len(indent + line[c:]) <= width:
            opener, closer = o, c
            break
    head, body, tail = line[: opener + 1], line[opener + 1 : closer], line[closer:]
    inner = indent + "    "
    parts = [p.strip() for p in _split_top_level(body)]
    literal = opener == 0 or line[opener - 1] in " =([{,:"  # a list, dict...: not a call
    if len(inner + body) <= width and not (literal and len(parts) > 1):
        return f"{head}\n{inner}{body}\n{indent}{tail}"
    if len(parts) == 1:
        return f"{head}\n{wrap(inner + parts[0], width)}\n{indent}{tail}"
    lines = [wrap(f"{inner}{p},", width) for p in parts if p]
    return "\n".join([head, *lines, f"{indent}{tail}"])


_PAIRS = {"(": ")", "[": "]", "{": "}"}


def _top_level_pairs(line: str) -> list[tuple[int, int]]:
    """(opening, closing) indices of the non-empty brackets not nested in others."""
    pairs, depth, quote, start = [], 0, None, 0
    escaped = False
    for i, ch in enumerate(line):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in _PAIRS:
            if depth == 0:
                start = i
            depth += 1
        elif ch in _PAIRS.values():
            depth -= 1
            if depth == 0 and i > start + 1:
                pairs.append((start, i))
    return pairs


def _split_top_level(body: str) -> list[str]:
    parts, depth, quote, start = [], 0, None, 0
    escaped = False
    for i, ch in enumerate(body):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in _PAIRS:
            depth += 1
        elif ch in _PAIRS.values():
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return parts


def block(lines: Iterable[str], indent: int = 0) -> str:
    """Lines indented by ``indent`` spaces and wrapped, joined with newlines."""
    pad = " " * indent
    return "\n".join(wrap(pad + line if line else "") for line in lines)


def docstring(text: str, indent: int = 0, width: int = LINE - 8) -> list[str]:
    """A docstring of ``text`` (paragraphs split by blank lines) wrapped at ``width``.

    ``text`` is the generator's own prose, any project text in it through
    :func:`doc_text`; words are never broken, so no escape is split.
    """
    pad = " " * indent
    paragraphs = [
        textwrap.wrap(p, width - indent, break_long_words=False, break_on_hyphens=False)
        for p in text.split("\n\n")
    ]
    lines = []
    for i, paragraph in enumerate(paragraphs):
        if i:
            lines.append("")
        lines += paragraph
    if len(lines) == 1 and len(pad + lines[0]) + 6 <= LINE:
        return [f'{pad}"""{lines[0]}"""']
    lines[0] = '"""' + lines[0]
    return [pad + line if line else "" for line in lines] + [pad + '"""']


def total(terms: list[str], indent: int, keyword: str = "return ") -> list[str]:
    """``return a + b + c``, or one term per line in parentheses when too long."""
    line = " " * indent + keyword + " + ".join(terms)
    if len(line) <= LINE:
        return [line]
    pad = " " * (indent + 4)
    lines = [" " * indent + keyword + "(", pad + terms[0]]
    lines += [wrap(f"{pad}+ {term}") for term in terms[1:]]
    return [*lines, " " * indent + ")"]

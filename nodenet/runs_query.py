"""The small query language of ``nodenet runs --sort/--filter`` and :meth:`RunsDB.list`.

A key is a run's column (``id``, ``name``, ``status``, ``backend``, ``duration``, ...), a
final metric by its Keras name (``val_accuracy``) or a test metric as ``test_NAME``
(``test_accuracy``). A filter is comma-separated conditions ``KEY=VALUE``, ``KEY~TEXT``
(contains, ignoring case), ``KEY<N``, ``KEY>N``, ``KEY<=N``, ``KEY>=N``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from nodenet.errors import NodenetError, shorten

Predicate = Callable[[Mapping[str, Any]], bool]


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def value_of(run: Mapping[str, Any], key: str) -> Any:
    """A run's column ``key``, else its final metric ``key``, else test metric ``test_X``."""
    if key in run:
        return run[key]
    final = run.get("final_metrics") or {}
    if key in final:
        return number(final[key])
    test = run.get("test_metrics") or {}
    if key.startswith("test_") and key[5:] in test:
        return number(test[key[5:]])
    return None


_CONDITION = re.compile(r"^\s*([\w.]+)\s*(<=|>=|=|~|<|>)\s*(.*?)\s*$")


def conditions(text: str | None) -> list[Predicate]:
    """The filter conditions of ``text`` (see the module) as predicates."""
    found = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        match = _CONDITION.match(part)
        if match is None:
            raise NodenetError(
                f"filter {shorten(part.strip())!r}: write KEY=VALUE, KEY~TEXT, KEY<N or KEY>N"
            )
        found.append(_predicate(*match.groups()))
    return found


def _predicate(key: str, op: str, wanted: str) -> Predicate:
    if op in ("=", "~"):

        def text(run) -> bool:
            value = value_of(run, key)
            shown = "" if value is None else str(value)
            return wanted.lower() in shown.lower() if op == "~" else shown == wanted

        return text
    limit = number(wanted)
    if limit is None:
        raise NodenetError(f"filter {key}{op}{shorten(wanted)}: {wanted!r} is not a number")
    compare = {"<": float.__lt__, ">": float.__gt__, "<=": float.__le__, ">=": float.__ge__}[op]

    def within(run) -> bool:
        value = number(value_of(run, key))
        return value is not None and compare(value, limit)

    return within

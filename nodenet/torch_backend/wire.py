"""The run's typed events as JSON lines, between the training process and nodenet.

The child writes one JSON object per line on its stdout, ``{"event": NAME, ...}`` with
the fields of the :mod:`nodenet.engine.events` dataclass; the parent reads them back into
the same objects the numpy engine emits. Besides the events, records: ``result`` (the
loss and metrics of an evaluation), ``timing`` (an epoch's CPU seconds in the process)
and ``log`` (a line to show). Non-finite floats
travel as the strings ``"nan"``, ``"inf"``, ``"-inf"``; a line that is not such an
object (a library printing to stdout) is not an event.
"""

from __future__ import annotations

import json
import math
from typing import Any

from nodenet.engine.events import BatchEnd, EpochEnd, Event, Failed, Finished, History, Prepared

_NAMES = {Prepared: "prepared", BatchEnd: "batch", EpochEnd: "epoch", Failed: "failed"}
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _out(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _out(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_out(v) for v in value]
    return value


def _number(value: Any) -> float:
    return _NON_FINITE[value] if isinstance(value, str) else float(value)


def _metrics(doc: Any) -> dict[str, float]:
    return {str(k): _number(v) for k, v in dict(doc).items()}


def encode(event: Event) -> str:
    """One JSON line (no newline) for ``event``."""
    if isinstance(event, Finished):
        h = event.history
        doc = {
            "event": "finished",
            "epochs": h.epochs,
            "stopped": h.stopped,
            "best_epoch": h.best_epoch,
            "restored_best": h.restored_best,
            "steps": event.steps,
            "samples": event.samples,
            "seconds": event.seconds,
        }
    else:
        doc = {"event": _NAMES[type(event)], **event.__dict__}
    return json.dumps(_out(doc), allow_nan=False)


def record(kind: str, **fields: Any) -> str:
    """A JSON line that is not an event: ``result``, ``timing`` or ``log``."""
    return json.dumps(_out({"event": kind, **fields}), allow_nan=False)


def decode(line: str) -> Event | dict[str, Any] | None:
    """The event of a line, a record's dict (``{"event": "result", ...}``), or None for a
    line that is neither."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    kind = doc.pop("event", None)
    try:
        if kind == "prepared":
            return Prepared(**{**doc, "outputs": tuple(doc["outputs"])})
        if kind == "batch":
            return BatchEnd(
                **{
                    **doc,
                    "metrics": _metrics(doc["metrics"]),
                    "batch_loss": _number(doc["batch_loss"]),
                    "samples_per_sec": _number(doc["samples_per_sec"]),
                }
            )
        if kind == "epoch":
            return EpochEnd(**{**doc, "metrics": _metrics(doc["metrics"])})
        if kind == "finished":
            history = History(
                [_metrics(e) for e in doc["epochs"]],
                doc["stopped"],
                doc["best_epoch"],
                bool(doc["restored_best"]),
            )
            return Finished(history, int(doc["steps"]), int(doc["samples"]), float(doc["seconds"]))
        if kind == "failed":
            return Failed(str(doc["message"]))
    except (KeyError, TypeError, ValueError):
        return None
    if kind in ("result", "log", "timing"):
        return {"event": kind, **doc}
    return None

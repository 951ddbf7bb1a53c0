"""What a sweep found: its trials, the best ones, parameter importances, and whether the
best trial beat the project's own settings (trial 0). Plain data, for the command line
(table or JSON) and the GUI's results view."""

from __future__ import annotations

import math
from typing import Any

STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


def trial_row(trial) -> dict[str, Any]:
    """One trial as plain data."""
    attrs = trial.user_attrs
    value = trial.value if trial.values else None
    return {
        "number": trial.number,
        "state": STATES.get(trial.state.name, trial.state.name.lower()),
        "value": value if value is None or math.isfinite(value) else None,
        "params": dict(trial.params),
        "run": attrs.get("run_id"),
        "defaults": bool(attrs.get("defaults")),
        "metrics": attrs.get("metrics") or {},
        "test": attrs.get("test") or {},
        "pruned_at": attrs.get("pruned_at"),
        "seconds": (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete and trial.datetime_start
            else None
        ),
    }


def comparison_metric(objective: str, metrics: dict[str, Any]) -> str:
    """The metric the best trial and the project's settings are compared on: the validation
    accuracy when logged (the figure a user judges a classifier by), else the objective."""
    accurate = [k for k in metrics if k.startswith("val_") and k.endswith("accuracy")]
    return accurate[0] if accurate else objective


def summarize(study) -> dict[str, Any]:
    """The sweep as plain data: study, objective, trials, best, importances, comparison."""
    objective = study.user_attrs.get("objective", "value")
    maximize = study.direction.name == "MAXIMIZE"
    rows = [trial_row(t) for t in study.trials]
    done = [r for r in rows if r["state"] == "complete" and r["value"] is not None]
    ranked = sorted(done, key=lambda r: -r["value"] if maximize else r["value"])
    best = ranked[0] if ranked else None
    defaults = next((r for r in rows if r["defaults"]), None)
    return {
        "study": study.study_name,
        "objective": objective,
        "direction": "maximize" if maximize else "minimize",
        "params": study.user_attrs.get("params", []),
        "counts": {s: sum(r["state"] == s for r in rows) for s in STATES.values()},
        "best": best,
        "ranked": [r["number"] for r in ranked],
        "trials": rows,
        "importances": importances(study),
        "comparison": compare(best, defaults, objective, maximize),
    }


def importances(study) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA) over the completed trials; empty when too
    few trials finished to tell."""
    import optuna

    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if len(done) < 2:
        return {}
    try:
        found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}
    return {k: float(v) for k, v in found.items()}


def compare(best, defaults, objective: str, maximize: bool) -> dict[str, Any]:
    """Whether the best trial beat the project's own settings, said in a sentence."""
    if best is None:
        return {"beats": None, "text": "no trial finished: nothing to compare"}
    if defaults is None or defaults["state"] != "complete":
        return {
            "beats": None,
            "text": "the project's own settings were not run to the end (trial 0): no comparison",
        }
    metric = comparison_metric(objective, defaults["metrics"])
    ours, theirs = best["metrics"].get(metric), defaults["metrics"].get(metric)
    if ours is None or theirs is None:
        return {"beats": None, "text": f"{metric} is not logged: no comparison"}
    from nodenet.engine.metrics import direction_of

    up = maximize if metric == objective else direction_of(metric) == "up"
    beats = ours > theirs if up else ours < theirs
    if best["number"] == defaults["number"]:
        text = (
            f"the best trial is the project's own settings (trial 0, {metric} {theirs:.4g}): "
            "no trial beat them"
        )
        return {"beats": False, "metric": metric, "best": ours, "defaults": theirs, "text": text}
    verb = "beats" if beats else "only equals" if ours == theirs else "does not beat"
    text = (
        f"the best trial (#{best['number']}, {metric} {ours:.4g}) {verb} the project's own "
        f"settings (trial 0, {metric} {theirs:.4g})"
    )
    return {"beats": beats, "metric": metric, "best": ours, "defaults": theirs, "text": text}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def best_table(summary: dict[str, Any], top: int = 10) -> str:
    """The best trials (then the project's own settings if not among them) as a table."""
    by_number = {r["number"]: r for r in summary["trials"]}
    shown = [by_number[n] for n in summary["ranked"][:top]]
    defaults = next((r for r in summary["trials"] if r["defaults"]), None)
    if defaults is not None and defaults not in shown:
        shown.append(defaults)
    keys = list(dict.fromkeys(k for r in summary["trials"] for k in r["params"]))
    extra = [m for m in ("val_accuracy",) if any(m in r["metrics"] for r in shown)]
    extra = [m for m in extra if m != summary["objective"]]
    head = ["trial", "run", summary["objective"], *extra, *[k.split(".")[-1] for k in keys]]
    rows = [head]
    for r in shown:
        label = f"{r['number']}" + (" (project)" if r["defaults"] else "")
        cells = [label, _cell(r["run"]), _cell(r["value"])]
        cells += [_cell(r["metrics"].get(m)) for m in extra]
        cells += [_cell(r["params"].get(k)) for k in keys]
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def report_text(summary: dict[str, Any]) -> str:
    """The whole report: counts, the best trials, importances, the comparison."""
    counts = summary["counts"]
    lines = [
        f"study {summary['study']}: {summary['direction']} {summary['objective']}; "
        f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed",
        "",
        best_table(summary),
    ]
    if summary["importances"]:
        lines += ["", "parameter importances:"]
        width = max(len(k) for k in summary["importances"])
        for key, value in summary["importances"].items():
            lines.append(f"  {key.ljust(width)}  {value:.3f}")
    lines += ["", summary["comparison"]["text"]]
    return "\n".join(lines)

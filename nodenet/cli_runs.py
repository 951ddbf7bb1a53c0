"""``nodenet runs``: the runs recorded beside a project (docs/runs.md), and the recording
of ``nodenet train`` runs.

``nodenet runs FILE`` lists them; ``show ID``, ``export --csv`` / ``--tensorboard DIR``,
``rename ID NAME``, ``annotate ID NOTE``, ``delete ID`` and ``keep N`` (the weights
retention) act on them. FILE is the project (``NAME.json``) or its ``NAME.runs.sqlite``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodenet.errors import NodenetError
from nodenet.runs_db import RunsDB, recorded, runs_path

if TYPE_CHECKING:
    from nodenet.runs_recorder import Recorder

HELP = "list, show, export, rename and delete the runs recorded beside a project"


# -- recording `nodenet train` ----------------------------------------------------------------


def add_record_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-record",
        action="store_true",
        help="do not record the run in NAME.runs.sqlite beside the project (docs/runs.md)",
    )


def record_training(args: argparse.Namespace, project: Any, backend: Any) -> Recorder:
    """The recorder of a ``nodenet train`` run (off with ``--no-record``); a database that
    cannot be used is one line on stderr, and training goes on unrecorded."""
    from nodenet.runs_recorder import Recorder, start_recording

    if getattr(args, "no_record", False):
        return Recorder.off()
    device = getattr(args, "device", None) if getattr(backend, "name", "") == "torch" else "cpu"
    recorder = start_recording(project, backend, source="cli", device=device)
    if recorder.error:
        print(f"nodenet: {recorder.error}", file=sys.stderr)
    return recorder


def end_recording(recorder: Recorder, test, weights, history) -> None:
    """After ``train`` saved its weights: the test metrics and the run's weights copy."""
    before = recorder.error
    recorder.done(test, weights, history)
    if recorder.error and recorder.error != before:
        print(f"nodenet: {recorder.error}", file=sys.stderr)


# -- nodenet runs -----------------------------------------------------------------------------


def add_runs_options(p: argparse.ArgumentParser) -> None:
    """``nodenet runs FILE`` (its FILE and ``--json`` come with every command)."""
    p.add_argument(
        "--sort",
        metavar="KEY",
        default="id",
        help="id, started, duration, name, status or a metric (val_accuracy, test_accuracy, ...)",
    )
    p.add_argument("--desc", action="store_true", help="sort from the largest")
    p.add_argument(
        "--filter",
        metavar="EXPR",
        help="comma-separated KEY=VALUE, KEY~TEXT, KEY<N, KEY>N (status=finished,val_loss<0.3)",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    show = actions.add_parser("show", help="one run: settings, machine, every epoch's metrics")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    export = actions.add_parser("export", help="every epoch of every run as CSV, or TensorBoard")
    what = export.add_mutually_exclusive_group(required=True)
    what.add_argument("--csv", action="store_true", help="one row per run and epoch")
    what.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="event files, one folder per run (needs tensorboardX or tensorboard installed)",
    )
    export.add_argument("-o", "--output", metavar="F", help="the CSV file (default: stdout)")
    rename = actions.add_parser("rename", help="name a run")
    rename.add_argument("id", type=int)
    rename.add_argument("name")
    annotate = actions.add_parser("annotate", help="attach a note to a run")
    annotate.add_argument("id", type=int)
    annotate.add_argument("note")
    delete = actions.add_parser("delete", help="remove a run and its weights file")
    delete.add_argument("id", type=int)
    keep = actions.add_parser(
        "keep", help="how many of the latest runs keep their weights (the best always does)"
    )
    keep.add_argument("count", type=int)


def cmd_runs(args: argparse.Namespace) -> int:
    path = database_of(args.file)
    action = getattr(args, "action", None)
    if action is None and not recorded(path):
        if args.json:
            _print_json([])
        else:
            print(f"{path}: no runs recorded yet", file=sys.stderr)
        return 0
    with RunsDB(path, create=False) as db:
        if action is None:
            runs = db.list(sort_by=args.sort, filter=args.filter, descending=args.desc)
            if args.json:
                _print_json([{k: v for k, v in r.items() if k != "project"} for r in runs])
            else:
                print(table(runs))
        elif action == "show":
            run = db.get(args.id)
            if args.json:
                _print_json(run)
            else:
                print(describe(run, db.weights_file(run)))
        elif action == "export":
            export(db, args)
        elif action == "rename":
            db.rename(args.id, args.name)
        elif action == "annotate":
            db.annotate(args.id, args.note)
        elif action == "delete":
            db.delete(args.id)
            print(f"{path}: run {args.id} deleted", file=sys.stderr)
        elif action == "keep":
            db.set_keep(args.count)
            print(f"{path}: the latest {args.count} runs keep their weights", file=sys.stderr)
    return 0


def database_of(file: str) -> Path:
    """The runs database of a project file, or the database itself."""
    path = Path(file)
    return path if path.name.endswith(".sqlite") else runs_path(path)


def _print_json(doc) -> None:
    from nodenet.cli import _print_json as print_json

    print_json(doc)


# -- text -----------------------------------------------------------------------------------


def when(seconds: float | None) -> str:
    return "" if seconds is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{rest:02d}s"


def _pick(runs: list[dict], column: str, prefer: tuple[str, ...]) -> str | None:
    """The metric the table shows: the first of ``prefer`` any run has in ``column``."""
    seen = {k for r in runs for k in (r.get(column) or {})}
    return next((k for k in prefer if k in seen), None)


def _figure(value: Any) -> str:
    return "" if value is None else f"{value:.4g}"


def table(runs: list[dict]) -> str:
    """The runs as a text table: id, name, status, when, duration, backend, the final
    validation metric and the test metric."""
    val = _pick(runs, "final_metrics", ("val_accuracy", "val_loss", "accuracy", "loss"))
    test = _pick(runs, "test_metrics", ("accuracy", "loss"))
    head = ["id", "name", "status", "when", "duration", "backend", val or "val", f"test {test}"]
    rows = [
        [
            str(r["id"]),
            r["name"] or "",
            r["status"],
            when(r["started"]),
            duration(r["duration"]),
            r["backend"] or "",
            _figure((r["final_metrics"] or {}).get(val)),
            _figure((r["test_metrics"] or {}).get(test)),
        ]
        for r in runs
    ]
    return aligned(head, rows) if rows else "no runs recorded yet"


def aligned(head: list[str], rows: list[list[str]]) -> str:
    """``head`` and ``rows`` in left-aligned columns two spaces apart."""
    widths = [max(len(x) for x in column) for column in zip(head, *rows, strict=True)]
    return "\n".join(
        "  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in (head, *rows)
    )


def describe(run: dict, weights: Path | None) -> str:
    """One run as text: what, when, where, how it ended, then its epochs."""
    machine = run.get("machine") or {}
    lines = [
        f"run {run['id']}{': ' + run['name'] if run['name'] else ''}",
        f"status: {run['status']}" + (f" ({run['message']})" if run["message"] else ""),
        f"started: {when(run['started'])}, duration {duration(run['duration'])}",
        f"backend: {run['backend']} on {run['device']}, seed {run['seed']}",
        f"machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('platform', '?')}; nodenet {run['nodenet_version']}",
    ]
    if run["note"]:
        lines.append(f"note: {run['note']}")
    if run["study"] is not None:
        lines.append(f"study: {run['study']}, trial {run['trial']}")
    for label, key in (("final", "final_metrics"), ("test", "test_metrics")):
        if run[key]:
            lines.append(
                f"{label}: " + " - ".join(f"{k} {_figure(v)}" for k, v in run[key].items())
            )
    lines.append(f"weights: {weights if weights else 'not kept'}")
    lines.append(f"batch loss points: {len(run['batches'])}")
    if run["epochs"]:
        keys = [k for k in run["epochs"][0] if k != "epoch"]
        rows = [[str(e["epoch"]), *(_figure(e.get(k)) for k in keys)] for e in run["epochs"]]
        lines += ["", aligned(["epoch", *keys], rows)]
    return "\n".join(lines)


# -- export ---------------------------------------------------------------------------------


def export(db: RunsDB, args: argparse.Namespace) -> None:
    runs = [db.get(r["id"]) for r in db.list(sort_by="id", filter=args.filter)]
    if args.tensorboard:
        written = tensorboard(runs, Path(args.tensorboard))
        print(f"{args.tensorboard}: event files of {written} runs", file=sys.stderr)
        return
    text = epochs_csv(runs)
    if args.output:
        from nodenet.atomic import write_file

        write_file(args.output, text)
        print(f"{args.output}: {len(runs)} runs", file=sys.stderr)
    else:
        sys.stdout.write(text)


def epochs_csv(runs: list[dict]) -> str:
    """One row per run and epoch: the run's id, name, status, backend and seed, the epoch,
    then every metric any epoch has (empty where an epoch lacks it)."""
    metrics = list(dict.fromkeys(k for r in runs for e in r["epochs"] for k in e if k != "epoch"))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "name", "status", "backend", "seed", "epoch", *metrics])
    for r in runs:
        for e in r["epochs"]:
            fixed = [r["id"], r["name"], r["status"], r["backend"], r["seed"], e["epoch"]]
            writer.writerow(fixed + [e.get(k, "") for k in metrics])
    return out.getvalue()


def tensorboard(runs: list[dict], folder: Path) -> int:
    """TensorBoard event files, ``FOLDER/run-<id>``, with each run's epoch metrics and batch
    loss; needs a writer already installed (tensorboardX, or tensorboard's through torch)."""
    writer_class = _summary_writer()
    for r in runs:
        writer = writer_class(str(folder / f"run-{r['id']}"))
        try:
            for e in r["epochs"]:
                for key, value in e.items():
                    if key != "epoch" and value is not None:
                        writer.add_scalar(f"epoch/{key}", value, e["epoch"])
            for step, _epoch, loss in r["batches"]:
                if loss is not None:
                    writer.add_scalar("batch/loss", loss, step)
        finally:
            writer.close()
    return len(runs)


def _summary_writer():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        try:
            import tensorboard  # noqa: F401  (torch's writer needs it)
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise NodenetError(
                "TensorBoard event files need a writer installed: pip install tensorboardX "
                "(or tensorboard with PyTorch); export --csv needs nothing"
            ) from None
    return SummaryWriter


__all__ = [
    "HELP",
    "add_record_option",
    "add_runs_options",
    "cmd_runs",
    "end_recording",
    "record_training",
]

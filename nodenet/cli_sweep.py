"""``nodenet sweep``: search hyperparameters with Optuna, every trial a recorded run.

See ``docs/sweeps.md``. The study and the trials' runs go to ``NAME.runs.sqlite`` beside
the project; ``--apply -o OUT.json`` writes the project with the best trial's values.
"""

from __future__ import annotations

import argparse
import sys

from nodenet.cli_types import positive_count

HELP = "search hyperparameters with Optuna; every trial a run in NAME.runs.sqlite"


def add_sweep_options(p: argparse.ArgumentParser) -> None:
    """``nodenet sweep FILE`` (its FILE and ``--json`` come with every command)."""
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=KIND:ARGS",
        help="a setting and its range, e.g. training.optimizer.learning_rate=loguniform:1e-4:1e-1,"
        " nodes.hidden.units=int:16:256, KEY=uniform:A:B, KEY=categorical:a,b,c (repeat)",
    )
    p.add_argument("--trials", type=positive_count, default=20, metavar="N", help="trials (20)")
    p.add_argument(
        "--jobs",
        type=positive_count,
        default=1,
        metavar="J",
        help="trials at once, in separate processes sharing the cores (1)",
    )
    p.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe")
    p.add_argument(
        "--prune", choices=("median",), help="stop bad trials early (Optuna's MedianPruner)"
    )
    p.add_argument("--seed", type=int, metavar="S", help="the sampler's seed")
    p.add_argument(
        "--backend", choices=("numpy", "torch"), default="numpy", help="what trains each trial"
    )
    p.add_argument("--device", default="cpu", help="with --backend torch: cpu, cuda, cuda:N")
    p.add_argument(
        "--epochs", type=positive_count, metavar="N", help="override the project's epochs"
    )
    p.add_argument(
        "--objective",
        metavar="METRIC",
        help="the logged value to optimize (default: the early-stopping monitor, else val_loss)",
    )
    p.add_argument("--study", metavar="NAME", help="study name (continues one that exists)")
    p.add_argument(
        "--apply", action="store_true", help="write the project with the best trial's values"
    )
    p.add_argument("-o", "--output", metavar="OUT", help="with --apply: the project file to write")
    p.add_argument(
        "--allow-outside-data",
        action="store_true",
        help="read data files outside the project's folder too (refused by default)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-trial lines on stderr")


def cmd_sweep(args: argparse.Namespace) -> int:
    from nodenet.errors import NodenetError
    from nodenet.sweep import SweepConfig, require_optuna, run_sweep
    from nodenet.sweep_report import report_text, summarize, trial_row

    require_optuna()
    if args.apply and not args.output:
        raise NodenetError("--apply needs -o OUT.json, the project file to write")
    if args.output and not args.apply:
        raise NodenetError("-o writes the best trial's project: add --apply")
    config = SweepConfig(
        project_file=args.file,
        params=list(args.param),
        trials=args.trials,
        jobs=args.jobs,
        sampler=args.sampler,
        prune=args.prune,
        seed=args.seed,
        backend=args.backend,
        device=args.device,
        epochs=args.epochs,
        objective=args.objective,
        study=args.study,
        allow_outside_data=args.allow_outside_data,
    )

    def said(trial) -> None:
        if args.quiet:
            return
        row = trial_row(trial)
        value = "-" if row["value"] is None else f"{row['value']:.4g}"
        params = ", ".join(
            f"{k.split('.')[-1]}={v:.4g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
            for k, v in row["params"].items()
        )
        note = f" at epoch {row['pruned_at']}" if row["pruned_at"] else ""
        print(f"trial {row['number']}: {row['state']}{note} {value} ({params})", file=sys.stderr)

    study = run_sweep(config, on_trial=said)
    summary = summarize(study)
    if args.apply:
        _apply(args, summary)
    if args.json:
        from nodenet.cli import _print_json

        _print_json(summary)
    else:
        print(report_text(summary))
    return 0


def _apply(args: argparse.Namespace, summary: dict) -> None:
    from nodenet.errors import NodenetError
    from nodenet.graph.project import load, save
    from nodenet.sweep_space import apply_trial

    best = summary["best"]
    if best is None:
        raise NodenetError("no trial finished: there is no best trial to apply")
    project = apply_trial(load(args.file), best["params"])
    save(project, args.output)
    print(f"{args.output}: the project with trial {best['number']}'s values", file=sys.stderr)

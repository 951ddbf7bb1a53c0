"""Train every sample project to the end and check the test result it promises.

    python benchmarks/train_samples.py                  # every sample; writes docs/samples.md
    python benchmarks/train_samples.py mnist_mlp otto_products   # some samples; prints only
    python benchmarks/train_samples.py --no-fallback    # skip the runs without the extra
    python benchmarks/train_samples.py --update mnist_cnn   # retrain one, update its rows

Each sample trains as ``nodenet train sample_projects/NAME.json`` would: its own epochs,
batch size, seed and early stopping, through :func:`nodenet.runner.build_run`. It is
then scored on its test split and compared with its promise
(:meth:`nodenet.samples.Sample.effective_promise`). A sample with a ``fallback`` is also
trained as on a machine without the ``datasets`` extra (its dataset hidden, the fallback
applied by :func:`nodenet.samples.load_sample`), and that promise is checked too.

The exit status is 1 when a promise is not met. Runs take several minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from unittest import mock

from nodenet import samples
from nodenet.errors import DataError
from nodenet.runner import build_run
from nodenet.samples import Promise, Sample, list_samples, load_sample, read_sample

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "samples.md"


@dataclass
class Result:
    """One sample trained to the end: what it ran on, its test scores, its promise."""

    sample: Sample
    fallback: bool  # trained on the fallback data (the dataset hidden)
    dataset: str
    epochs: int
    stopped: str | None
    seconds: float
    test: dict[str, float]
    promise: Promise | None
    value: float | None
    heads: int = 1

    @property
    def met(self) -> bool | None:
        if self.promise is None or self.value is None:
            return None
        return self.promise.met_by(self.value)


@contextlib.contextmanager
def hidden(dataset: str | None) -> Iterator[None]:
    """Within the block, built-in ``dataset`` counts as not installed (for the fallbacks)."""
    if dataset is None:
        yield
        return
    real = samples.builtin_datasets

    def without() -> list[dict]:
        return [{**d, "available": d["available"] and d["name"] != dataset} for d in real()]

    with mock.patch.object(samples, "builtin_datasets", without):
        yield


def describe_source(source: dict) -> str:
    """``mnist_5k`` for a built-in dataset, the file name for a file."""
    if source.get("kind") == "builtin":
        return str(source.get("name"))
    return Path(str(source.get("path", "?"))).name


def train(sample: Sample, fallback: bool) -> Result:
    """Train ``sample`` to the end (on its fallback data if ``fallback``) and score it."""
    with hidden(sample.fallback["missing"] if fallback else None):
        project = load_sample(sample)
    start = time.perf_counter()
    run = build_run(project)
    history = run.fit()
    test = run.evaluate_test() or {}
    seconds = time.perf_counter() - start
    result = Result(
        sample,
        fallback,
        describe_source(project.data["source"]),
        len(history.epochs),
        history.stopped,
        seconds,
        test,
        promise=None,
        value=None,
        heads=len(run.model.heads),
    )
    return judge(result)


def judge(result: Result) -> Result:
    """``result`` with the sample's promise, as its file says now, and the value it concerns."""
    sample = read_sample(result.sample.path)
    with hidden(sample.fallback["missing"] if result.fallback else None):
        promise = sample.effective_promise()
    result.sample, result.promise, result.value = sample, promise, None
    if promise is not None:
        key = promise.metric if result.heads == 1 else f"{promise.output}_{promise.metric}"
        result.value = result.test.get(key)
    return result


def row(result: Result) -> str:
    """One Markdown table row."""
    scores = ", ".join(f"{k} {v:.4g}" for k, v in result.test.items())
    epochs = f"{result.epochs}" + (" (early stop)" if result.stopped == "early_stopping" else "")
    met = {True: "yes", False: "**no**", None: "-"}[result.met]
    promise = str(result.promise) if result.promise else "-"
    command = f"`python benchmarks/train_samples.py {result.sample.name}`"
    return (
        f"| {result.sample.name} | {result.dataset} | {epochs} | {scores} | {promise} | {met} "
        f"| {result.seconds:.0f} s | {command} |"
    )


HEADER = [
    "| sample | dataset | epochs run | test metrics | promise | met | time | reproduce |",
    "|---|---|---|---|---|---|---|---|",
]


def document(results: list[Result]) -> str:
    """docs/samples.md: what was run, and a table per data situation."""
    installed = [r for r in results if not r.fallback]
    fallbacks = [r for r in results if r.fallback]
    lines = [
        "# The sample projects, trained to the end",
        "",
        "Written by `python benchmarks/train_samples.py` (do not edit by hand). Each sample",
        "trains with its own settings (epochs, batch size, seed, early stopping on the",
        "validation loss, restoring the best weights), exactly as `nodenet train",
        "sample_projects/NAME.json` does, and is then scored on its test split, which it never",
        "saw while training. The promise is the one in the sample's description.",
        "",
        f"Run on {date.today().isoformat()}, Python {platform.python_version()}, "
        f"{platform.machine()} ({platform.system()}); the times are wall-clock on a shared",
        "2-core machine and vary from run to run.",
        "",
        "## With the `datasets` extra",
        "",
        *HEADER,
        *map(row, installed),
    ]
    if fallbacks:
        lines += [
            "",
            FALLBACK_SECTION,
            "",
            "The MNIST samples are written for `mnist_5k` (5,000 MNIST images, in the",
            "`datasets` extra). Without it, File > Open Sample loads them on scikit-learn's",
            "8x8 `digits` instead (their `fallback`), with the promise given for that data:",
            "",
            *HEADER,
            *map(row, fallbacks),
        ]
    return "\n".join(lines) + "\n"


FALLBACK_SECTION = "## Without the `datasets` extra"
TORCH_SECTION = "## PyTorch backend vs the nodenet engine"  # benchmarks/torch_vs_numpy_samples.py


def kept(text: str) -> str:
    """The section of ``text`` that torch_vs_numpy_samples.py writes, to keep on a rewrite."""
    lines = text.splitlines()
    if TORCH_SECTION not in lines:
        return ""
    return "\n" + "\n".join(lines[lines.index(TORCH_SECTION) :]) + "\n"


def update(text: str, results: list[Result]) -> str:
    """``text`` (docs/samples.md) with the rows of the samples in ``results`` replaced."""
    lines = text.splitlines()
    end = lines.index(TORCH_SECTION) if TORCH_SECTION in lines else len(lines)
    section = lines.index(FALLBACK_SECTION) if FALLBACK_SECTION in lines else end
    for result in results:
        span = range(section, end) if result.fallback else range(section)
        start = f"| {result.sample.name} |"
        at = next((i for i in span if lines[i].startswith(start)), None)
        if at is None:
            raise SystemExit(f"{result.sample.name} has no row to update: run every sample")
        lines[at] = row(result)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="samples to train (default: all)")
    parser.add_argument(
        "--no-fallback", action="store_true", help="skip the runs on the fallback data"
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help=f"replace the rows of the named samples in {DOC.relative_to(ROOT)}",
    )
    parser.add_argument(
        "--out", type=Path, help=f"write the table here (default with no names: {DOC})"
    )
    args = parser.parse_args(argv)
    chosen = [s for s in list_samples() if not args.names or s.name in args.names]
    unknown = set(args.names) - {s.name for s in chosen}
    if unknown:
        parser.error(f"no sample called {', '.join(sorted(unknown))}")
    jobs = [(s, False) for s in chosen if not s.uses_fallback()]
    if not args.no_fallback:
        jobs += [(s, True) for s in chosen if s.fallback]
    results = []
    for sample, fallback in jobs:
        try:
            result = train(sample, fallback)
        except DataError as err:  # a dataset of the extra, without a fallback
            print(f"| {sample.name} | not run: {err} |", flush=True)
            continue
        results.append(result)
        print(row(result), flush=True)
    results = [judge(r) for r in results]  # the promises as the files say at the end
    out = args.out or (DOC if not args.names or args.update else None)
    if out is not None:
        old = out.read_text() if out.exists() else ""
        out.write_text(update(old, results) if args.update else document(results) + kept(old))
        print(f"wrote {out}")
    missed = [r for r in results if r.met is False]
    for r in missed:
        print(
            f"NOT MET: {r.sample.name}{' (fallback)' if r.fallback else ''}: "
            f"{r.value:.4g}, promised {r.promise}",
            file=sys.stderr,
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

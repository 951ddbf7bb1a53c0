"""Train every sample project on the nodenet engine and on the PyTorch backend, and compare.

    python benchmarks/torch_vs_numpy_samples.py            # every sample; writes docs/samples.md
    python benchmarks/torch_vs_numpy_samples.py digits_mlp otto_products   # these, in this order
    python benchmarks/torch_vs_numpy_samples.py --budget 2400   # start no sample after 40 min

Each sample trains twice with its own settings (epochs, batch size, seed, early stopping),
as ``nodenet train sample_projects/NAME.json --backend numpy|torch --device cpu`` would:
once on :class:`nodenet.backend.NumpyBackend`, once on
:class:`nodenet.torch_backend.TorchBackend` (PyTorch CPU, one process). Both build the
project with the same seed, so both start from the same initial weights. The sample's
main test metric (the one its promise names) is compared: for an accuracy, the difference
in points and whether it is within 1 point; for a loss, the relative difference.

The samples run one after the other (never two at once). A sample whose Input takes text
is refused by the PyTorch backend and is listed with the reason. Writes the section
"PyTorch backend vs the nodenet engine" of docs/samples.md when every sample was asked
for (or with ``--out``); samples left out by ``--budget`` are listed as not measured.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nodenet.backend import NumpyBackend
from nodenet.errors import DataError
from nodenet.samples import Sample, list_samples, load_sample

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "samples.md"
HEADING = "## PyTorch backend vs the nodenet engine"


@dataclass
class Side:
    """One backend's run of a sample: epochs run, its test metrics, the compared value."""

    epochs: int
    stopped: str | None
    seconds: float
    test: dict[str, float]
    value: float | None


@dataclass
class Comparison:
    """A sample trained on both backends, or the reason it was not."""

    sample: Sample
    key: str = ""
    numpy: Side | None = None
    torch: Side | None = None
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_accuracy(self) -> bool:
        return "accuracy" in self.key

    @property
    def difference(self) -> float | None:
        """torch minus numpy: in points for an accuracy, relative (%) for a loss."""
        if self.numpy is None or self.torch is None:
            return None
        a, b = self.numpy.value, self.torch.value
        if a is None or b is None:
            return None
        return 100 * (b - a) if self.is_accuracy else 100 * (b - a) / abs(a)

    @property
    def within(self) -> bool | None:
        diff = self.difference
        return None if diff is None or not self.is_accuracy else abs(diff) <= 1.0


def main_key(sample: Sample, heads: int) -> str:
    """The test metric the sample's promise names (``digit_accuracy`` with several heads)."""
    promise = sample.effective_promise()
    if promise is None:
        return "loss"
    return promise.metric if heads == 1 else f"{promise.output}_{promise.metric}"


def make_backend(name: str):
    if name == "numpy":
        return NumpyBackend()
    from nodenet.torch_backend import TorchBackend

    return TorchBackend("cpu", 1)


def train(sample: Sample, name: str) -> tuple[Side, str]:
    """Train ``sample`` on backend ``name`` as ``nodenet train`` does; its side and key."""
    project = load_sample(sample)
    backend = make_backend(name)
    try:
        start = time.perf_counter()
        backend.build(project)
        history = backend.fit()
        test = backend.evaluate() or {}
        seconds = time.perf_counter() - start
        key = main_key(sample, len(backend.outputs))
        side = Side(len(history.epochs), history.stopped, seconds, test, test.get(key))
        return side, key
    finally:
        if hasattr(backend, "close"):
            backend.close()


def compare(sample: Sample) -> Comparison:
    result = Comparison(sample)
    for name in ("numpy", "torch"):
        try:
            side, result.key = train(sample, name)
        except DataError as err:
            if name == "torch":
                result.note = f"refused by the PyTorch backend: {err}"
            else:
                result.note = f"not run: {err}"
            return result
        setattr(result, name, side)
    return result


def _epochs(side: Side | None) -> str:
    if side is None:
        return "-"
    return f"{side.epochs}" + ("*" if side.stopped == "early_stopping" else "")


def _value(side: Side | None, key: str) -> str:
    if side is None or side.value is None:
        return "-"
    return f"{side.value:.4f}" if "accuracy" in key else f"{side.value:.4g}"


def row(c: Comparison) -> str:
    """One Markdown table row."""
    if c.note and c.numpy is None:
        return f"| {c.sample.name} | - | - | - | - | - | {c.note} |"
    if c.note:
        return (
            f"| {c.sample.name} | {_epochs(c.numpy)} / - | {c.key} | {_value(c.numpy, c.key)} "
            f"| - | - | {c.note} |"
        )
    diff = c.difference
    if diff is None:
        shown, verdict = "-", "-"
    elif c.is_accuracy:
        shown = f"{diff:+.2f} pt"
        verdict = "yes" if c.within else "**no**"
    else:
        shown, verdict = f"{diff:+.1f} % (relative)", "n/a (a loss)"
    times = f"{c.numpy.seconds:.0f} s / {c.torch.seconds:.0f} s"
    return (
        f"| {c.sample.name} | {_epochs(c.numpy)} / {_epochs(c.torch)} | {c.key} "
        f"| {_value(c.numpy, c.key)} | {_value(c.torch, c.key)} | {shown} | {verdict}; {times} |"
    )


HEADER = [
    "| sample | epochs (numpy / torch) | metric | numpy | torch | torch - numpy "
    "| within 1 point; time (numpy / torch) |",
    "|---|---|---|---|---|---|---|",
]


def machine() -> str:
    """``lscpu``'s model name and the number of CPUs."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU"
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in out.splitlines())
    )
    return f"{fields.get('Model name', 'unknown CPU')}, {fields.get('CPU(s)', '?')} cores"


def section(results: list[Comparison], missing: list[Sample], command: str) -> list[str]:
    """The lines of the section (from its heading)."""
    import torch

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        HEADING,
        "",
        f"Written by `{command}` (do not edit by hand). Each sample trains",
        "with its own settings (epochs, batch size, seed, early stopping restoring the best",
        "weights) on the nodenet engine and on the PyTorch backend (`--backend torch --device",
        "cpu`, one process), from the same initial weights (same seed), and is scored on its",
        "test split. The metric is the one the sample's promise names; for an accuracy the",
        "difference is in points, for a loss it is relative. `*`: stopped early.",
        "",
        f"Run on {when}, {machine()}, PyTorch {torch.__version__}. The machine was",
        "shared, so the times are indicative only; the PyTorch time includes starting its",
        "process (importing PyTorch) and handing the data over.",
        "",
        *HEADER,
        *map(row, results),
    ]
    lines += [f"| {s.name} | - | - | - | - | - | not measured (time budget) |" for s in missing]
    return lines


def write(path: Path, lines: list[str]) -> None:
    """Put the section ``lines`` (from its heading) into ``path``, replacing the one there."""
    text = path.read_text().splitlines() if path.exists() else []
    if lines[0] in text:
        start = text.index(lines[0])
        end = next((i for i in range(start + 1, len(text)) if text[i].startswith("## ")), len(text))
        text[start:end] = [*lines, ""] if end < len(text) else lines
    else:
        text += ["", *lines]
    path.write_text("\n".join(text).rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="samples to train, in this order (default: all)")
    parser.add_argument(
        "--budget", type=float, help="seconds after which no further sample is started"
    )
    parser.add_argument("--out", type=Path, help=f"write the section here (default: {DOC})")
    args = parser.parse_args(argv)
    by_name = {s.name: s for s in list_samples()}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        parser.error(f"no sample called {', '.join(unknown)}")
    chosen = [by_name[n] for n in args.names] or list(by_name.values())
    start = time.perf_counter()
    results: list[Comparison] = []
    missing: list[Sample] = []
    out = args.out or (DOC if len(chosen) == len(by_name) else None)
    order = {s.name: i for i, s in enumerate(list_samples())}
    given = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "benchmarks/torch_vs_numpy_samples.py", *given])

    def save(pending: list[Sample]) -> None:
        # after every sample, so a run cut short leaves what it measured
        if out is not None:
            done = sorted(results, key=lambda c: order[c.sample.name])
            rest = sorted(missing + pending, key=lambda s: order[s.name])
            write(out, section(done, rest, command))

    for k, sample in enumerate(chosen):
        if args.budget is not None and time.perf_counter() - start > args.budget:
            missing.append(sample)
            continue
        result = compare(sample)
        results.append(result)
        print(row(result), flush=True)
        save(chosen[k + 1 :])
    save([])
    if out is not None:
        print(f"wrote {out}")
    for c in results:
        if c.within is False:
            print(f"MORE THAN 1 POINT: {c.sample.name}: {c.difference:+.2f}", file=sys.stderr)
    return 1 if any(c.within is False for c in results) else 0


if __name__ == "__main__":
    sys.exit(main())

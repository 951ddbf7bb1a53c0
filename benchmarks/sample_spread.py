"""How far a sample's test metric moves when its initial weights move by one float32 ulp.

    python benchmarks/sample_spread.py SAMPLE [SAMPLE ...] [--runs 5] [--out docs/samples.md]

Trains the sample as ``nodenet train`` does, ``--runs`` times per backend: run 0 from the
project's own initial weights, run k from those weights with every value nudged by one
float32 ulp up or down (a pattern drawn with seed k, the same for both backends). The
nudge is of the size of the rounding differences between two correct implementations
(another BLAS, another order of a sum), so the spread it causes is the floor under any
comparison of two backends' accuracies on that sample: a difference inside it says
nothing about either backend. With ``--out``, the table goes into that file's section
"Spread of a sample's accuracy" (docs/samples.md).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout
from benchmarks.torch_vs_numpy_samples import machine, main_key, make_backend, write
from nodenet.samples import find_sample, load_sample


def nudged(weights: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """``weights`` with every float moved one ulp, up or down by a seeded coin (seed 0: as is)."""
    if seed == 0:
        return weights
    rng = np.random.default_rng(seed)
    out = {}
    for key, array in sorted(weights.items()):
        if not np.issubdtype(array.dtype, np.floating):
            out[key] = array
            continue
        away = np.where(rng.random(array.shape) < 0.5, -np.inf, np.inf).astype(array.dtype)
        out[key] = np.nextafter(array, away)
    return out


def run(sample, backend_name: str, seed: int) -> float:
    project = load_sample(sample)
    backend = make_backend(backend_name)
    try:
        backend.build(project)
        backend.set_weights(nudged(backend.get_weights(), seed), source="nudged weights")
        backend.fit()
        test = backend.evaluate() or {}
        return float(test[main_key(sample, len(backend.outputs))])
    finally:
        if hasattr(backend, "close"):
            backend.close()


HEADING = "## Spread of a sample's accuracy"
BACKENDS = ("numpy", "torch")


def cell(values: list[float]) -> str:
    runs = " ".join(f"{v:.4f}" for v in values)
    return f"{runs} (mean {statistics.mean(values):.4f}, range {spread(values):.2f} pt)"


def spread(values: list[float]) -> float:
    return 100 * (max(values) - min(values))


def section(rows: dict[str, dict[str, list[float]]], runs: int, command: str) -> list[str]:
    import torch

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        HEADING,
        "",
        f"Written by `{command}` (do not edit by hand). Each sample trained {runs} times on",
        "each backend as above: run 1 from the project's initial weights, the others from",
        "those weights with every value moved by one float32 ulp (a seeded pattern, the same",
        "for both backends). Such a nudge is the size of the rounding differences between two",
        "correct implementations, so the range it causes is the floor under any single-run",
        "comparison of the two backends on that sample.",
        "",
        f"Run on {when}, {machine()}, PyTorch {torch.__version__}.",
        "",
        "| sample | numpy engine: test accuracy per run | PyTorch backend | torch - numpy, means |",
        "|---|---|---|---|",
    ]
    for name, values in rows.items():
        diff = 100 * (statistics.mean(values["torch"]) - statistics.mean(values["numpy"]))
        lines.append(
            f"| {name} | {cell(values['numpy'])} | {cell(values['torch'])} | {diff:+.2f} pt |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="+")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the section into this Markdown file")
    args = parser.parse_args()
    rows: dict[str, dict[str, list[float]]] = {}
    for name in args.samples:
        sample = find_sample(name)
        rows[name] = {}
        for backend in BACKENDS:
            rows[name][backend] = [run(sample, backend, seed) for seed in range(args.runs)]
            print(f"{name} {backend}: {cell(rows[name][backend])}", flush=True)
    if args.out is not None:
        command = shlex.join(["python", "benchmarks/sample_spread.py", *sys.argv[1:]])
        write(args.out, section(rows, args.runs, command))


if __name__ == "__main__":
    main()

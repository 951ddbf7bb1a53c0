"""Training throughput: nodenet's numpy engine vs PyTorch CPU vs Keras 3 (torch backend).

The same models (``engine_bench_models.py``: an MLP, a deeper MLP at batch 32, CNNs with and
without BatchNormalization, a Conv1D net, LSTM, GRU, SimpleRNN, an Embedding +
Bidirectional LSTM, a two-input model), Adam, random data, 2 threads, all in one process,
so the ratios hold even on a shared, noisy machine. Each framework trains the same number
of batches after a warm-up. Within a repeat nodenet and PyTorch take turns of about 0.1 s
(``--blocks``: all of nodenet's, then all of PyTorch's), then Keras trains its
batches; each repeat's nodenet/PyTorch ratio is computed against that repeat's PyTorch
timing. Reported: the median samples/s of each framework and the ratios' min-max over
the repeats.

The header gives the machine (CPU, cores, numpy/torch versions, BLAS kernel, load average)
and the hardware limit: the float32 matrix-product rate of numpy (1024^3, best of 15)
and torch.mm. Each model's row gives the GFLOP/s every framework reached, counted from the
layer shapes (matrix products and convolutions only, ``2*m*n*k`` per product, a training
step being three forwards; see ``engine_bench_models``), and its share of the best sgemm
rate.

    python benchmarks/engine_vs_torch.py [--batches 40] [--repeats 3] [--models mlp,cnn,...]
    python benchmarks/engine_vs_torch.py --markdown   # also a table for benchmarks/README.md
    python benchmarks/engine_vs_torch.py --memory     # peak RSS of the MLP on 60,000 x 784
    python benchmarks/engine_vs_torch.py --noise      # PyTorch against itself: the noise
    python benchmarks/engine_vs_torch.py --isa avx2   # as on a CPU without AVX-512

Needs the `ref` extra (torch, keras).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

# --isa avx2: the libraries kept to AVX2 on an AVX-512 machine, as on a CPU without
# AVX-512; each reads its variable when it loads, so this runs before numpy and torch do
AVX2_ONLY = {
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's OpenBLAS: its AVX2 kernels
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy's own loops
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's element-wise kernels
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # PyTorch's BLAS
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # PyTorch's convolutions and LSTM
}
if "--isa" in sys.argv[1:-1] and sys.argv[sys.argv.index("--isa") + 1] == "avx2":
    os.environ.update(AVX2_ONLY)
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
# as nodenet/__init__.py does: BLAS workers sleep right after a product instead of
# spinning on the second core (this script loads numpy before nodenet)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

import numpy as np  # noqa: E402 (after the environment above, which numpy reads)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout
from benchmarks.engine_bench_models import (  # noqa: E402
    BATCH,
    MODELS,
    batch_of,
    forward_flops,
    keras_model,
    keras_params,
    random_data,
    torch_module,
    torch_params,
)
from benchmarks.turns import (  # noqa: E402
    HANDOVER,
    TURN_SECONDS,
    rest,
    time_in_turns,
    torch_against_itself,
)
from nodenet.runner import build_model  # noqa: E402

__all__ = ["BATCH", "MODELS", "main", "random_data", "torch_module"]
FRAMEWORKS = ("nodenet", "pytorch", "keras")

# -- the machine -----------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's "model name" from /proc/cpuinfo (the platform's processor elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_kernel() -> str:
    """The BLAS libraries loaded, with the kernel each chose (threadpoolctl's report)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    found = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        detail = info.get("architecture") or info.get("threading_layer") or "?"
        found.append(
            f"{info['internal_api']} {info.get('version')} {detail} "
            f"({info['num_threads']} threads, from {library_home(info['filepath'])})"
        )
    return "; ".join(found) or "unknown"


def instruction_sets() -> str:
    """The widest vector instructions numpy's loops and PyTorch's kernels use, and the
    ``--isa`` limits set in the environment."""
    import torch

    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # another numpy layout
        numpy_isa = "unknown"
    else:
        levels = (("X86_V4", "AVX-512"), ("X86_V3", "AVX2"))
        numpy_isa = next((name for key, name in levels if features.get(key)), "SSE")
    limits = [f"{k}={os.environ[k]}" for k in AVX2_ONLY if k in os.environ]
    text = f"numpy {numpy_isa}, torch {torch.backends.cpu.get_cpu_capability()}"
    return text + (f" (limited: {' '.join(limits)})" if limits else "")


def library_home(path: str) -> str:
    """The package folder a shared library was loaded from (numpy.libs, torch/lib ...)."""
    folder = os.path.dirname(path)
    parent = os.path.basename(os.path.dirname(folder))
    return (
        os.path.basename(folder)
        if parent == "site-packages"
        else f"{parent}/{os.path.basename(folder)}"
    )


def load() -> str:
    """The load average over 1, 5 and 15 minutes."""
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def sgemm_rates(size: int = 1024, repeats: int = 15) -> dict[str, float]:
    """GFLOP/s of one float32 ``size``^3 product, best of ``repeats``, numpy and torch.mm
    taking turns."""
    import torch

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    runs = {"numpy": lambda: a @ b, "torch.mm": lambda: torch.mm(ta, tb)}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats + 1):  # the first round warms up both
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: 2 * size**3 / seconds / 1e9 for name, seconds in best.items()}


def header(sgemm: dict[str, float]) -> list[str]:
    import torch

    return [
        f"CPU {cpu_model()}, {os.cpu_count()} cores; numpy {np.__version__}, "
        f"torch {torch.__version__}, python {platform.python_version()}",
        f"BLAS: {blas_kernel()}",
        f"instruction sets: {instruction_sets()}",
        "sgemm 1024^3 float32, 2 threads, best of 15: " + rates(sgemm),
    ]


def rates(sgemm: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in sgemm.items())


# -- timing ----------------------------------------------------------------------------


def time_keras(project, x, y, batches, batch=BATCH):
    model = keras_model(project)
    xs = list(x.values())
    ys = next(iter(y.values()))
    model.fit([v[: 4 * batch] for v in xs], ys[: 4 * batch], batch_size=batch, verbose=0)
    start = time.perf_counter()
    model.fit(xs, ys, batch_size=batch, epochs=1, verbose=0, shuffle=True)
    return batches * batch / (time.perf_counter() - start)


def check_params(name, project, model, keras: bool) -> int:
    """The weight count of ``model`` (nodenet's of ``project``), after checking PyTorch's
    (and Keras's) agree."""
    counts = {"nodenet": model.count_params(), "pytorch": torch_params(torch_module(name))}
    if keras:
        counts["keras"] = keras_params(keras_model(project))
    if len(set(counts.values())) != 1:
        raise SystemExit(
            f"{name}: the frameworks' models differ, (trainable, non-trainable) weights: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
    return sum(counts["nodenet"])


def measure(name, batches, repeats, keras: bool, rng, turn_seconds=TURN_SECONDS) -> dict:
    """One model's samples/s per framework and repeat: nodenet and PyTorch in turns
    (:func:`time_in_turns`), then Keras."""
    project = MODELS[name]()
    batch = batch_of(name)
    model = build_model(project)
    params = check_params(name, project, model, keras)
    x, y = random_data(model, batches * batch, rng)
    runs = {k: [] for k in FRAMEWORKS}
    for _ in range(repeats):  # interleaved, so load swings hit all three alike
        nodenet, pytorch = time_in_turns(project, name, x, y, batches, batch, turn_seconds)
        runs["nodenet"].append(nodenet)
        runs["pytorch"].append(pytorch)
        if keras:
            rest(HANDOVER)
            runs["keras"].append(time_keras(project, x, y, batches, batch))
    step_flops = 3 * forward_flops(project)  # per sample
    median = {k: statistics.median(v) if v else float("nan") for k, v in runs.items()}
    return {
        "name": name,
        "batch": batch,
        "params": params,
        "median": median,
        "nn/pt": span(runs["nodenet"], runs["pytorch"]),
        "nn/keras": span(runs["nodenet"], runs["keras"]),
        "gflops": {k: v * step_flops / 1e9 for k, v in median.items()},
        "step_gflop": step_flops * batch / 1e9,
    }


def span(a: list[float], b: list[float]) -> tuple[float, float]:
    """Min and max over the repeats of a[i] / b[i] (nan, nan without b)."""
    ratios = [p / q for p, q in zip(a, b, strict=False)]
    return (min(ratios), max(ratios)) if ratios else (float("nan"), float("nan"))


# -- reports ---------------------------------------------------------------------------


def percent(gflops: float, limit: float) -> str:
    share = 100 * gflops / limit
    return f"{share:.1f}" if share < 10 else f"{share:.0f}"


def fmt_span(lo: float, hi: float) -> str:
    return "-" if lo != lo else f"{lo:.2f}-{hi:.2f}"


def row(r: dict, limit: float) -> str:
    m, g = r["median"], r["gflops"]
    pct = "/".join("-" if g[k] != g[k] else percent(g[k], limit) for k in FRAMEWORKS)
    gf = "/".join("-" if g[k] != g[k] else f"{g[k]:.1f}" for k in FRAMEWORKS)
    k = "-" if m["keras"] != m["keras"] else f"{m['keras']:.0f}"
    return (
        f"{r['name']:<11}{r['batch']:>6}{r['params']:>9}{r['step_gflop']:>8.2f}"
        f"{m['nodenet']:>9.0f}{m['pytorch']:>9.0f}{k:>8}"
        f"{fmt_span(*r['nn/pt']):>12}{fmt_span(*r['nn/keras']):>11}{gf:>17}{pct:>10}"
    )


COLUMNS = (
    f"{'model':<11}{'batch':>6}{'params':>9}{'GF/step':>8}{'nodenet':>9}{'pytorch':>9}"
    f"{'keras':>8}{'nn/pt':>12}{'nn/keras':>11}{'GFLOP/s nn/pt/ks':>17}{'% sgemm':>10}"
)


def markdown(results: list[dict], limit: float) -> str:
    lines = [
        "| model | batch | nodenet | PyTorch | Keras | nodenet/PyTorch | "
        "nodenet GFLOP/s | % of sgemm |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m, g = r["median"], r["gflops"]["nodenet"]
        keras = "-" if m["keras"] != m["keras"] else f"{m['keras']:,.0f}"
        lines.append(
            f"| {r['name']} | {r['batch']} | {m['nodenet']:,.0f} | {m['pytorch']:,.0f} | "
            f"{keras} | {fmt_span(*r['nn/pt']).replace('-', '–')} | {g:.1f} | "
            f"{percent(g, limit)}% |"
        )
    return "\n".join(lines)


def noise(names, batches, repeats, rng) -> None:
    """``--noise``: each model's PyTorch training against itself, per repeat, in turns and
    one after the other: the spread a shared machine alone gives a ratio."""
    print(f"PyTorch against itself, {repeats} repeats of {batches} batches: ratio min-max")
    print(f"{'model':<11}{'in turns':>12}{'one after the other':>22}")
    for name in names:
        batch = batch_of(name)
        x, y = random_data(build_model(MODELS[name]()), batches * batch, rng)
        ratios = {turn: [] for turn in (TURN_SECONDS, float("inf"))}
        for _ in range(repeats):
            for turn, found in ratios.items():
                found.append(torch_against_itself(name, x, y, batches, batch, turn))
        spans = [fmt_span(min(r), max(r)) for r in ratios.values()]
        print(f"{name:<11}{spans[0]:>12}{spans[1]:>22}", flush=True)


# -- memory ----------------------------------------------------------------------------


MEMORY_SCRIPT = """
import resource, numpy as np, sys
sys.path.insert(0, {root!r})
from benchmarks.engine_vs_torch import MODELS
from nodenet.runner import build_model
from nodenet.engine.training import fit
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096
model = build_model(MODELS['mlp'](), seed=0)
base = rss()
rng = np.random.default_rng(0)
x = {{'x': rng.random((60000, 784), dtype=np.float32)}}
y = {{'y': np.eye(10, dtype=np.float32)[rng.integers(0, 10, 60000)]}}
data = x['x'].nbytes + y['y'].nbytes
fit(model, x, y, epochs=1, batch_size=128)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(f"data {{data/2**20:.0f}} MiB; process before data {{base/2**20:.0f}} MiB; "
      f"peak {{peak/2**20:.0f}} MiB; peak - before - data = {{(peak-base-data)/2**20:.0f}} MiB")
"""


def memory() -> None:
    """The MLP's peak RSS, with the fused kernels (numba's compiler runtime loaded, where
    installed) and with numpy alone (``NODENET_KERNELS=numpy``)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for label, value in (("kernels", ""), ("numpy alone", "numpy")):
        print(f"{label}: ", end="", flush=True)
        env = {**os.environ, "NODENET_KERNELS": value}
        script = MEMORY_SCRIPT.format(root=root)
        subprocess.run([sys.executable, "-c", script], check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument(
        "--blocks",
        action="store_true",
        help="time nodenet's and PyTorch's batches of a repeat one after the other, "
        f"not in turns of about {TURN_SECONDS} s",
    )
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument(
        "--noise",
        action="store_true",
        help="time PyTorch against itself instead: how far the machine alone moves a ratio",
    )
    parser.add_argument(
        "--isa",
        choices=["native", "avx2"],
        default="native",
        help="avx2: keep numpy, OpenBLAS and PyTorch to AVX2 (a CPU without AVX-512)",
    )
    args = parser.parse_args()
    if args.memory:
        memory()
        return
    names = args.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown models {', '.join(unknown)}; known: {', '.join(MODELS)}")
    start_load = load()
    sgemm = sgemm_rates()
    limit = max(sgemm.values())
    for line in header(sgemm):
        print(line)
    print(f"load average at start {start_load}")
    rng = np.random.default_rng(0)
    if args.noise:
        noise(names, args.batches, args.repeats, rng)
        print(f"load average at end {load()}")
        return
    if args.blocks:
        turn_seconds, timing = float("inf"), "one after the other"
    else:
        turn_seconds, timing = TURN_SECONDS, f"in turns of about {TURN_SECONDS} s"
    print(
        f"{args.batches} batches per run, {args.repeats} interleaved repeats, nodenet and "
        f"PyTorch {timing}; samples/s "
        f"medians, ratio min-max over repeats; GF/step: GFLOP of one training step; "
        f"% of the best sgemm rate ({limit:.1f} GFLOP/s)"
    )
    print(COLUMNS)
    keras = not args.no_keras
    results = []
    for name in names:
        results.append(measure(name, args.batches, args.repeats, keras, rng, turn_seconds))
        print(row(results[-1], limit), flush=True)
    print(f"load average at end {load()}; sgemm at end: {rates(sgemm_rates())}")
    if args.markdown:
        print()
        print(
            f"{cpu_model()}, {os.cpu_count()} cores; sgemm {limit:.1f} GFLOP/s; load "
            f"{start_load} -> {load()}; {args.repeats} repeats of {args.batches} batches\n"
        )
        print(markdown(results, limit))


if __name__ == "__main__":
    main()

"""Training throughput of the PyTorch backend vs hand-written PyTorch loops, on the CPU.

The five models of ``benchmarks/engine_vs_torch.py`` (batch 128, Adam, random data), each
trained by :class:`nodenet.torch_backend.TorchBackend` (its child process, events, stop
polling, running metrics) and by two hand-written loops in this process:

- ``loop``: engine_vs_torch's own PyTorch module (logits and ``CrossEntropyLoss``: what
  someone would write by hand) in the shortest loop: gather, forward, loss, backward, step;
- ``same``: the module nodenet generates for the project (softmax, Keras's
  cross-entropy, its Keras Adam) in the same loop. The ratio to it is the backend's own
  overhead.

Each run's figure is the best of ``--windows`` windows of ``--batches`` batches (for the
backend, its epochs after the first, which warms up; for the loops, runs of as many
batches after a 4-batch warm-up). ``--repeats`` runs of the three are interleaved; the
table gives each one's median samples/s and the range (min-max) of the per-run ratios. Two
clocks: ``--clock cpu`` (the default) counts CPU seconds on one thread
(``time.process_time``; the backend's child reports each epoch's,
``TorchBackend.epoch_cpu_seconds``), which hardly depend on what else a shared machine
runs; ``--clock wall`` times wall seconds on ``--threads`` threads (default 2; the
backend's from its EpochEnd events), meaningful on a quiet machine only. This process
tunes its allocator as the backend's child does (``tune_allocator``), so the ratios
measure the backend's own work.

    python benchmarks/torch_backend_vs_loop.py [--clock cpu|wall] [--batches 100]
        [--windows 4] [--repeats 3] [--models mlp,cnn,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# before numpy and torch: the thread count (inherited by the backend's child process), and
# BLAS workers that sleep after a product instead of spinning on the cores being timed
_threads = "1" if "wall" not in sys.argv else "2"
for _i, _arg in enumerate(sys.argv[:-1]):
    if _arg == "--threads":
        _threads = sys.argv[_i + 1]
os.environ.setdefault("OMP_NUM_THREADS", _threads)
os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout
from benchmarks.engine_vs_torch import (  # noqa: E402
    BATCH,
    MODELS,
    cpu_model,
    load,
    random_data,
    torch_module,
)
from nodenet.engine.events import EpochEnd  # noqa: E402
from nodenet.engine.runtime import tune_allocator  # noqa: E402
from nodenet.runner import build_model  # noqa: E402
from nodenet.torch_backend import TorchBackend  # noqa: E402
from nodenet.torch_backend.source import child_source, graph_of, torch_arrays  # noqa: E402


def with_data(project, x, y, folder: Path):
    """``project`` reading ``x`` / ``y`` from an ``.npz`` in ``folder``; Adam, batch 128,
    no validation and no test split: every sample trains."""
    labels = {k: v.argmax(axis=1).astype(np.int32) for k, v in y.items()}
    np.savez(folder / f"{project.name}.npz", **x, **labels)
    project.data = {
        "source": {"kind": "npz", "path": f"{project.name}.npz"},
        "inputs": {k: k for k in x},
        "targets": {k: k for k in y},
        "preprocess": {"normalize": "none", "target_encoding": "onehot"},
        "split": {"test": 0.0, "seed": 0},
    }
    project.training.update(
        optimizer={"name": "adam", "learning_rate": 1e-3},
        batch_size=BATCH,
        shuffle=True,
        seed=0,
        validation_split=0.0,
        early_stopping=None,
    )
    project.path = folder / f"{project.name}.json"
    return project


def time_backend(project, args) -> float:
    backend = TorchBackend("cpu", threads=args.threads)
    backend.build(project)
    ends: list[EpochEnd] = []
    backend.fit(
        on_event=lambda e: ends.append(e) if isinstance(e, EpochEnd) else None,
        epochs=1 + args.windows,
        progress_interval=0.05,  # the GUI's default
    )
    backend.close()
    if args.clock == "cpu":
        seconds = backend.epoch_cpu_seconds[1:]
    else:
        seconds = [e.epoch_seconds for e in ends[1:]]
    return args.batches * BATCH / min(seconds)


def best_window(run, args) -> float:
    """samples/s of the best of ``windows`` runs of ``run(batches)`` after a warm-up."""
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    run(4)
    best = 0.0
    for _ in range(args.windows):
        start = clock()
        run(args.batches)
        best = max(best, args.batches * BATCH / (clock() - start))
    return best


def loop_of(module, loss_of, xs: list, ys: list, optimizer=None):
    """The shortest training loop on ``module``: ``run(count)`` trains ``count`` batches
    (with torch's Adam unless given an ``optimizer``)."""
    import torch

    if optimizer is None:
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, eps=1e-7)

    def run(count: int) -> None:
        order = torch.randperm(len(xs[0]))
        for b in range(count):
            idx = order[b * BATCH : (b + 1) * BATCH]
            loss = loss_of(module(*[v[idx] for v in xs]), [v[idx] for v in ys])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return run


def time_loop(name, x, y, args) -> float:
    """engine_vs_torch's hand-written module (logits, CrossEntropyLoss)."""
    import torch

    torch.set_num_threads(args.threads)
    xs = [torch.from_numpy(v) for v in x.values()]
    labels = [torch.from_numpy(next(iter(y.values())).argmax(1))]
    cross_entropy = torch.nn.CrossEntropyLoss()
    run = loop_of(torch_module(name), lambda out, ys: cross_entropy(out, ys[0]), xs, labels)
    return best_window(run, args)


def time_same_module(project, x, y, args) -> float:
    """The module nodenet generates (softmax, Keras's cross-entropy), nodenet's weights."""
    import torch

    torch.set_num_threads(args.threads)
    code: dict = {"__name__": "bench_model", "__file__": "bench_model.py"}
    exec(compile(child_source(project), "<nodenet generated>", "exec"), code)
    model = code["build_model"]()
    state = torch_arrays(graph_of(project), build_model(project, seed=0).get_weights())
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    xs = [torch.from_numpy(v) for v in x.values()]
    ys = [torch.from_numpy(v) for v in y.values()]

    def loss_of(out, targets):
        return code["compute_loss"](out, dict(zip(y, targets, strict=True)))

    return best_window(loop_of(model, loss_of, xs, ys, code["make_optimizer"](model)), args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--threads", type=int, default=int(_threads))
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--models",
        default="mlp,cnn,lstm,simple_rnn,two_input",
        help=f"comma-separated, of: {', '.join(MODELS)}",
    )
    args = parser.parse_args()
    tune_allocator()
    rng = np.random.default_rng(0)
    import torch

    print(f"CPU {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}; load {load()}")
    print(
        f"batch {BATCH}, {args.windows} windows of {args.batches} batches, {args.clock} clock, "
        f"{args.threads} thread(s), {args.repeats} interleaved runs; median samples/s, "
        "range of the per-run ratios"
    )
    print(f"{'model':<12}{'backend':>10}{'loop':>10}{'same':>10}{'b/loop':>13}{'b/same':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            project = MODELS[name]()
            x, y = random_data(build_model(project), args.batches * BATCH, rng)
            project = with_data(project, x, y, Path(tmp))
            runs: dict[str, list[float]] = {"backend": [], "loop": [], "same": []}
            for _ in range(args.repeats):  # interleaved: load swings hit all three alike
                runs["backend"].append(time_backend(project, args))
                runs["loop"].append(time_loop(name, x, y, args))
                runs["same"].append(time_same_module(project, x, y, args))
            median = {k: float(np.median(v)) for k, v in runs.items()}
            print(
                f"{name:<12}{median['backend']:>10.0f}{median['loop']:>10.0f}"
                f"{median['same']:>10.0f}{ratio_range(runs, 'loop'):>13}"
                f"{ratio_range(runs, 'same'):>13}",
                flush=True,
            )
    print(f"load at the end {load()}")


def ratio_range(runs: dict[str, list[float]], reference: str) -> str:
    """min-max over the runs of the backend's samples/s over ``reference``'s."""
    ratios = [b / r for b, r in zip(runs["backend"], runs[reference], strict=True)]
    return f"{min(ratios):.2f}-{max(ratios):.2f}"


if __name__ == "__main__":
    main()

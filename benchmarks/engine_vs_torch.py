"""Training throughput: nodenet's numpy engine vs PyTorch CPU vs Keras 3 (torch backend).

Same models, same shapes, batch 128, Adam, random data, 2 threads, all in one process, so the
ratios hold even on a shared, noisy machine. Each framework trains the same number of batches
after a warm-up; the best of ``--repeats`` timings is kept.

    python benchmarks/engine_vs_torch.py [--batches 40] [--repeats 3] [--models mlp,cnn,...]
    python benchmarks/engine_vs_torch.py --memory   # peak RSS of the MLP on 60,000 x 784

Needs the `ref` extra (torch, keras).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
# as nodenet/__init__.py does: BLAS workers sleep right after a product instead of
# spinning on the second core (this script loads numpy before nodenet)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

import itertools

import numpy as np

from nodenet.engine.model import Model
from nodenet.engine.training import fit
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model

BATCH = 128
OUT = {"loss": "categorical_crossentropy", "metrics": []}


def chain(name, input_shape, layers):
    nodes = [Node("x", "Input", {"shape": list(input_shape)})]
    for i, (kind, params) in enumerate(layers):
        nodes.append(Node(f"n{i}", kind, params))
    nodes.append(Node("y", "Output", OUT))
    ids = [n.id for n in nodes]
    return Project(name, nodes, [Edge(a, b) for a, b in itertools.pairwise(ids)])


def two_input():
    nodes = [
        Node("a", "Input", {"shape": [784]}),
        Node("b", "Input", {"shape": [28, 28]}),
        Node("da", "Dense", {"units": 128, "activation": "relu"}),
        Node("lb", "LSTM", {"units": 64}),
        Node("cat", "Concatenate", {}),
        Node("out", "Dense", {"units": 10, "activation": "softmax"}),
        Node("y", "Output", OUT),
    ]
    edges = [
        Edge("a", "da"),
        Edge("b", "lb"),
        Edge("da", "cat", 0),
        Edge("lb", "cat", 1),
        Edge("cat", "out"),
        Edge("out", "y"),
    ]
    return Project("two_input", nodes, edges)


SOFTMAX10 = ("Dense", {"units": 10, "activation": "softmax"})
MODELS = {
    "mlp": lambda: chain(
        "mlp",
        (784,),
        [
            ("Dense", {"units": 128, "activation": "relu"}),
            ("Dense", {"units": 128, "activation": "relu"}),
            SOFTMAX10,
        ],
    ),
    "cnn": lambda: chain(
        "cnn",
        (28, 28, 1),
        [
            ("Conv2D", {"filters": 32, "kernel_size": 3, "activation": "relu"}),
            ("MaxPooling2D", {}),
            ("Conv2D", {"filters": 64, "kernel_size": 3, "activation": "relu"}),
            ("MaxPooling2D", {}),
            ("Flatten", {}),
            ("Dense", {"units": 128, "activation": "relu"}),
            SOFTMAX10,
        ],
    ),
    "lstm": lambda: chain("lstm", (28, 28), [("LSTM", {"units": 128}), SOFTMAX10]),
    "simple_rnn": lambda: chain("simple_rnn", (28, 28), [("SimpleRNN", {"units": 256}), SOFTMAX10]),
    "two_input": two_input,
}


def random_data(model: Model, n: int, rng):
    x = {i: rng.normal(size=(n, *model.shapes[i])).astype(np.float32) for i in model.input_ids}
    y = {h.id: np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)] for h in model.heads}
    return x, y


# -- nodenet ---------------------------------------------------------------------------


def time_nodenet(project, x, y, batches):
    model = build_model(project, seed=0)
    warm = {k: v[: 4 * BATCH] for k, v in x.items()}, {k: v[: 4 * BATCH] for k, v in y.items()}
    fit(model, *warm, epochs=1, batch_size=BATCH, shuffle=False)
    start = time.perf_counter()
    fit(model, x, y, epochs=1, batch_size=BATCH, shuffle=True, seed=0)
    return batches * BATCH / (time.perf_counter() - start)


# -- torch -----------------------------------------------------------------------------


def torch_module(name):
    import torch
    from torch import nn

    class LastStep(nn.Module):
        def __init__(self, rnn):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            out, _ = self.rnn(x)
            return out[:, -1]

    class ChannelsFirst(nn.Module):
        def forward(self, x):
            return x.permute(0, 3, 1, 2)

    if name == "mlp":
        return nn.Sequential(
            nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
        )
    if name == "cnn":
        return nn.Sequential(
            ChannelsFirst(),
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 5 * 5, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )
    if name == "lstm":
        return nn.Sequential(LastStep(nn.LSTM(28, 128, batch_first=True)), nn.Linear(128, 10))
    if name == "simple_rnn":
        return nn.Sequential(LastStep(nn.RNN(28, 256, batch_first=True)), nn.Linear(256, 10))

    class TwoInput(nn.Module):
        def __init__(self):
            super().__init__()
            self.da = nn.Linear(784, 128)
            self.lb = LastStep(nn.LSTM(28, 64, batch_first=True))
            self.out = nn.Linear(192, 10)

        def forward(self, a, b):
            return self.out(torch.cat([torch.relu(self.da(a)), self.lb(b)], dim=1))

    return TwoInput()


def time_torch(name, x, y, batches):
    import torch

    torch.set_num_threads(2)
    module = torch_module(name)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    xs = [torch.from_numpy(v) for v in x.values()]
    target = torch.from_numpy(next(iter(y.values())).argmax(1))

    def run(count):
        order = torch.randperm(len(target))
        for b in range(count):
            idx = order[b * BATCH : (b + 1) * BATCH]
            opt.zero_grad()
            loss = loss_fn(module(*[v[idx] for v in xs]), target[idx])
            loss.backward()
            opt.step()

    run(4)
    start = time.perf_counter()
    run(batches)
    return batches * BATCH / (time.perf_counter() - start)


# -- keras -----------------------------------------------------------------------------


def keras_model(project):
    import keras

    tensors = {}
    ins = []
    for node in project.nodes:
        if node.type == "Input":
            tensors[node.id] = keras.Input(shape=tuple(node.params["shape"]), name=node.id)
            ins.append(tensors[node.id])
    outs = []
    for node in project.nodes:
        if node.type == "Input":
            continue
        sources = [tensors[e.src] for e in project.incoming(node.id)]
        if node.type == "Output":
            outs.append(sources[0])
            continue
        layer = getattr(keras.layers, node.type)(**node.params)
        tensors[node.id] = layer(sources if len(sources) > 1 else sources[0])
    model = keras.Model(ins, outs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    return model


def time_keras(project, x, y, batches):
    model = keras_model(project)
    xs = list(x.values())
    ys = next(iter(y.values()))
    model.fit([v[: 4 * BATCH] for v in xs], ys[: 4 * BATCH], batch_size=BATCH, verbose=0)
    start = time.perf_counter()
    model.fit(xs, ys, batch_size=BATCH, epochs=1, verbose=0, shuffle=True)
    return batches * BATCH / (time.perf_counter() - start)


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
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", MEMORY_SCRIPT.format(root=root)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    if args.memory:
        memory()
        return
    rng = np.random.default_rng(0)
    print(f"batch {BATCH}, {args.batches} batches, best of {args.repeats}; samples/s")
    header = f"{'model':<12}{'nodenet':>10}{'pytorch':>10}{'keras':>10}{'nn/pt':>8}{'nn/keras':>10}"
    print(header)
    for name in args.models.split(","):
        project = MODELS[name]()
        x, y = random_data(build_model(project), args.batches * BATCH, rng)
        best = {"nodenet": 0.0, "pytorch": 0.0, "keras": 0.0}
        for _ in range(args.repeats):  # interleaved, so load swings hit all three alike
            best["nodenet"] = max(best["nodenet"], time_nodenet(project, x, y, args.batches))
            best["pytorch"] = max(best["pytorch"], time_torch(name, x, y, args.batches))
            if not args.no_keras:
                best["keras"] = max(best["keras"], time_keras(project, x, y, args.batches))
        k = best["keras"] or float("nan")
        print(
            f"{name:<12}{best['nodenet']:>10.0f}{best['pytorch']:>10.0f}{k:>10.0f}"
            f"{best['nodenet'] / best['pytorch']:>8.2f}{best['nodenet'] / k:>10.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

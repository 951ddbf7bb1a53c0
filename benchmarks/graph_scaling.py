"""Validate, summary and import-keras on chains and fan-ins of growing size.

Builds, at each size N:

- a chain: Input -> N-2 Dense(4) -> Output;
- a fan-in: N-2 Inputs -> one Concatenate -> Output (one merge with N-2 ports);
- the chain as a Keras 3 functional config (``model.to_json()`` layout), for
  ``import_keras_config``.

and times ``validate``, ``summarize(...).to_text()`` and the import, ``--repeats`` times each,
printing microseconds per block (min-max over the repeats). Linear growth shows as a flat
per-block figure from 1,000 to 50,000 blocks; the old quadratic costs grew ~N^0.7-0.9 here.

    python benchmarks/graph_scaling.py [--sizes 1000 5000 10000 50000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

from nodenet.export.keras_import import import_keras_config
from nodenet.graph.project import Edge, Node, Project, validate
from nodenet.graph.summary import summarize

MSE = {"loss": "mean_squared_error"}


def chain(n: int) -> Project:
    nodes = [Node("x", "Input", {"shape": [4]})]
    nodes += [Node(f"d{i}", "Dense", {"units": 4}) for i in range(n - 2)]
    nodes.append(Node("y", "Output", MSE))
    edges = [Edge(a.id, b.id, 0) for a, b in itertools.pairwise(nodes)]
    return Project("chain", nodes, edges)


def fan_in(n: int) -> Project:
    inputs = [Node(f"x{i}", "Input", {"shape": [1]}) for i in range(n - 2)]
    nodes = [*inputs, Node("c", "Concatenate"), Node("y", "Output", MSE)]
    edges = [Edge(x.id, "c", port) for port, x in enumerate(inputs)]
    edges.append(Edge("c", "y", 0))
    return Project("fan_in", nodes, edges)


def keras_chain(n: int) -> dict:
    def tensor(name: str) -> dict:
        history = [name, 0, 0]
        config = {"shape": [None, 4], "dtype": "float32", "keras_history": history}
        return {"class_name": "__keras_tensor__", "config": config}

    layers = [
        {
            "class_name": "InputLayer",
            "name": "x",
            "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "x"},
            "inbound_nodes": [],
        }
    ]
    for i in range(n - 2):
        layers.append(
            {
                "class_name": "Dense",
                "name": f"d{i}",
                "config": {"name": f"d{i}", "units": 4},
                "inbound_nodes": [{"args": [tensor(layers[-1]["name"])], "kwargs": {}}],
            }
        )
    body = {
        "name": "chain",
        "layers": layers,
        "input_layers": [["x", 0, 0]],
        "output_layers": [[layers[-1]["name"], 0, 0]],
    }
    return {"class_name": "Functional", "config": body}


def timed(job: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        job()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000, 50000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'blocks':>7}  {'job':<18} {'seconds':>15}  {'us per block':>15}")
    for n in args.sizes:
        c, f, k = chain(n), fan_in(n), keras_chain(n)
        assert not validate(c) and not validate(f)
        jobs = {
            "chain validate": lambda c=c: validate(c),
            "chain summary": lambda c=c: summarize(c).to_text(),
            "fan-in validate": lambda f=f: validate(f),
            "fan-in summary": lambda f=f: summarize(f).to_text(),
            "chain import": lambda k=k: import_keras_config(k),
        }
        for name, job in jobs.items():
            times = timed(job, args.repeats)
            low, high = min(times), max(times)
            per = f"{low / n * 1e6:.1f}-{high / n * 1e6:.1f}"
            print(f"{n:>7,}  {name:<18} {low:>7.3f}-{high:<7.3f}  {per:>15}", flush=True)
        text = summarize(f).to_text()
        print(f"{n:>7,}  fan-in summary text: {len(text):,} characters", flush=True)


if __name__ == "__main__":
    main()

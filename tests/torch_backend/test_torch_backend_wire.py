"""What crosses between nodenet and its PyTorch process, without starting one.

Events survive their JSON lines (non-finite losses too) as equal objects; a line that
is not an event is not taken for one. Weights go to torch layouts and come back to
Keras layouts unchanged, for every sample project (groups included).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nodenet.engine.events import BatchEnd, EpochEnd, Failed, Finished, History, Prepared
from nodenet.graph.project import load
from nodenet.runner import build_model
from nodenet.torch_backend import wire
from nodenet.torch_backend.process import child_command
from nodenet.torch_backend.source import graph_of, keras_arrays, torch_arrays

SAMPLES = [
    pytest.param(
        path,
        marks=pytest.mark.skip(reason="its Input takes text, which the PyTorch backend refuses")
        if any(n.type == "Input" and n.params.get("dtype") == "string" for n in load(path).nodes)
        else (),
    )
    for path in sorted((Path(__file__).parents[2] / "sample_projects").glob("*.json"))
]
EVENTS = [
    Prepared(100, 10, 20, 3, 4, 32, 1234, ("digit", "other")),
    BatchEnd(1, 3, 2, 4, 2, {"loss": 0.5, "accuracy": 0.75, "learning_rate": 0.001}, 0.4, 812.5),
    EpochEnd(1, 3, {"loss": 0.5, "val_loss": 0.625}, 4, 0.25),
    Finished(
        History([{"loss": 0.5, "epoch_seconds": 0.25}], "early_stopping", 1, True), 4, 100, 1.5
    ),
    Failed('the loss became nan at "epoch" 1\nsecond line'),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_survives_its_json_line(event):
    line = wire.encode(event)
    assert "\n" not in line
    assert wire.decode(line + "\n") == event


def test_non_finite_values_survive():
    event = BatchEnd(1, 1, 1, 1, 1, {"loss": math.inf}, math.nan, -math.inf)
    back = wire.decode(wire.encode(event))
    assert back.metrics["loss"] == math.inf and math.isnan(back.batch_loss)
    assert back.samples_per_sec == -math.inf


@pytest.mark.parametrize(
    "line",
    ["", "Epoch 1/3 - loss 0.5", "{not json", "[1, 2]", '{"event": "nope"}', '{"event": "batch"}'],
)
def test_a_line_that_is_not_an_event_is_none(line):
    assert wire.decode(line) is None


def test_records_come_back_as_dicts():
    assert wire.decode(wire.record("result", split="test", metrics={"loss": 1.0})) == {
        "event": "result",
        "split": "test",
        "metrics": {"loss": 1.0},
    }


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_weights_come_back_to_keras_layouts_unchanged(path):
    project = load(path)
    rng = np.random.default_rng(0)
    weights = {
        k: rng.normal(size=v.shape).astype(np.float32)
        for k, v in build_model(project, seed=0).get_weights().items()
    }
    graph = graph_of(project)
    back = keras_arrays(graph, torch_arrays(graph, weights))
    assert back.keys() == weights.keys()
    for key, value in weights.items():
        assert back[key].dtype == np.float32 and np.array_equal(back[key], value), key


def test_the_command_runs_the_child_alone_or_under_torchrun(tmp_path):
    alone = child_command(tmp_path, python="py")
    assert alone == ["py", "-m", "nodenet.torch_backend.child", str(tmp_path)]
    two = child_command(tmp_path, 2, python="py")
    assert two[:4] == ["py", "-m", "torch.distributed.run", "--nproc-per-node=2"]
    assert "--standalone" in two and two[-3:] == alone[1:]
    machines = child_command(tmp_path, 4, "2", "host:29500", python="py")
    assert "--nnodes=2" in machines and "--rdzv-endpoint=host:29500" in machines
    assert "--standalone" not in machines

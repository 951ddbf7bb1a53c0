"""The PyTorch backend trains in its own process as the numpy engine trains in nodenet's.

Parity: from the same initial weights, without shuffling and with SGD, every batch loss
of one epoch equals the numpy engine's within 1e-4 (relative), on the digits MLP and the
MNIST-1D CNN samples, and with Adam on the MNIST-1D GRU. The events arrive in the engine's
order; the weights come home in Keras layouts and predict what PyTorch predicted. Stop is
polled before every batch; a child killed mid-run becomes a Failed event and a
TrainingError naming the signal.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the PyTorch backend needs torch (the `torch` extra)")

from nodenet.backend import BatchEnd, EpochEnd, Failed, Finished, NumpyBackend, Prepared
from nodenet.errors import TrainingError
from nodenet.graph.project import load
from nodenet.samples import with_fallback
from nodenet.torch_backend import TorchBackend, handover

SAMPLES = Path(__file__).parents[2] / "sample_projects"


def sample(stem: str, **training):
    project, _ = with_fallback(load(SAMPLES / f"{stem}.json"))
    project.training.update(training)
    return project


def sgd_epoch(stem: str):
    return sample(
        stem,
        epochs=1,
        shuffle=False,
        early_stopping=None,
        optimizer={"name": "sgd", "learning_rate": 0.01},
    )


def batch_losses(backend, project) -> tuple[np.ndarray, list]:
    backend.build(project)
    events = []
    backend.fit(on_event=events.append)
    return np.array([e.batch_loss for e in events if isinstance(e, BatchEnd)]), events


def check_parity(
    stem: str, in_memory_bytes: int = TorchBackend.in_memory_bytes, optimizer: dict | None = None
) -> None:
    project = sgd_epoch(stem)
    if optimizer:
        project.training["optimizer"] = optimizer
    backend = TorchBackend("cpu")
    backend.in_memory_bytes = in_memory_bytes
    ours, events = batch_losses(backend, project)
    reference, numpy_events = batch_losses(NumpyBackend(), project)
    assert len(ours) == len(reference) > 10
    np.testing.assert_allclose(ours, reference, rtol=1e-4)
    kinds = [type(e) for e in events]
    assert kinds == [type(e) for e in numpy_events]
    assert kinds[0] is Prepared and kinds[-1] is Finished and kinds[-2] is EpochEnd
    assert events[0] == numpy_events[0]  # the same counts: samples, batches, parameters


def test_per_batch_losses_equal_the_engines_on_the_digits_mlp():
    check_parity("digits_mlp")


@pytest.mark.slow
def test_per_batch_losses_equal_the_engines_on_the_mnist1d_cnn():
    check_parity("mnist1d_cnn")


@pytest.mark.slow
def test_adam_steps_as_the_engines_on_the_mnist1d_gru():
    """The generated Adam is Keras's (epsilon added to the raw root), so the losses track."""
    check_parity("mnist1d_gru", optimizer={"name": "adam", "learning_rate": 0.005})


@pytest.mark.slow
def test_data_gathered_from_its_mapped_files_batch_by_batch_trains_alike():
    check_parity("digits_mlp", in_memory_bytes=0)


@pytest.mark.slow
def test_weights_come_home_in_keras_layouts_and_predict_as_torch_did():
    project = sample("digits_mlp", epochs=2)
    backend = TorchBackend("cpu")
    backend.build(project)
    start = backend.get_weights()
    history = backend.fit()
    assert len(history.epochs) == 2 and "val_loss" in history.epochs[-1]
    trained = backend.get_weights()
    assert trained.keys() == start.keys()
    assert all(trained[k].shape == start[k].shape for k in start)
    assert any(not np.allclose(trained[k], start[k]) for k in start)
    engine = NumpyBackend()
    engine.build(project)
    engine.set_weights(trained)
    x = backend.data.test["inputs"]
    torch_probs = backend.predict(x)["digit"]
    np.testing.assert_allclose(torch_probs, engine.predict(x)["digit"], atol=1e-5)
    ours, theirs = backend.evaluate(), engine.evaluate()
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=1e-6)
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4)


@pytest.mark.slow
def test_a_stop_before_the_first_batch_trains_nothing():
    backend = TorchBackend("cpu")
    backend.build(sample("digits_mlp", epochs=50))
    start = backend.get_weights()
    events = []
    history = backend.fit(on_event=events.append, should_stop=lambda: True)
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.steps == 0
    assert history.stopped == "user" and history.epochs == []
    assert all(np.array_equal(v, start[k]) for k, v in backend.get_weights().items())


def test_stop_during_a_run_ends_it_and_keeps_the_weights_so_far():
    backend = TorchBackend("cpu")
    backend.build(sample("digits_mlp", epochs=200, early_stopping=None))
    batches: list[BatchEnd] = []
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, BatchEnd):
            batches.append(event)

    history = backend.fit(on_event=on_event, should_stop=lambda: len(batches) >= 3)
    assert history.stopped == "user"
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.steps < 200 * batches[0].batches  # it did not run to the end
    assert (backend._folder / handover.STOP).exists()


def test_a_killed_child_becomes_a_failed_event_naming_the_signal():
    backend = TorchBackend("cpu")
    backend.build(sample("digits_mlp", epochs=500, early_stopping=None))
    start = backend.get_weights()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, BatchEnd) and event.step == 2:
            os.kill(backend.process.pid, signal.SIGKILL)

    with pytest.raises(TrainingError) as raised:
        backend.fit(on_event=on_event)
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.message == str(raised.value)
    assert "SIGKILL" in failed.message and str(backend.process.pid) in failed.message
    assert not any(isinstance(e, Finished) for e in events)
    assert all(np.array_equal(v, start[k]) for k, v in backend.get_weights().items())


@pytest.mark.slow
def test_an_error_in_the_child_is_reported_with_its_message():
    backend = TorchBackend("cpu")
    backend.build(sample("digits_mlp", epochs=1, optimizer={"name": "sgd", "learning_rate": 1e30}))
    events = []
    with pytest.raises(TrainingError, match="the loss became"):
        backend.fit(on_event=events.append)
    assert isinstance(events[-1], Failed) and "the loss became" in events[-1].message


@pytest.mark.slow
def test_the_backend_runs_again_after_its_child_was_killed():
    backend = TorchBackend("cpu")
    backend.build(sample("digits_mlp", epochs=500, early_stopping=None))

    def on_event(event):
        if isinstance(event, BatchEnd) and event.step == 1:
            backend.process.kill()

    with pytest.raises(TrainingError, match="SIGKILL"):
        backend.fit(on_event=on_event)
    backend.build(sample("digits_mlp", epochs=1))
    assert len(backend.fit().epochs) == 1


@pytest.mark.slow
def test_a_child_that_does_not_stop_in_time_is_killed():
    backend = TorchBackend("cpu", stop_timeout=0.0)  # no time at all to answer
    backend.build(sample("digits_mlp", epochs=500, early_stopping=None))
    steps = []
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, BatchEnd):
            steps.append(event.step)

    with pytest.raises(TrainingError, match="did not stop within 0 s of the stop request"):
        backend.fit(on_event=on_event, should_stop=lambda: len(steps) >= 2)
    assert isinstance(events[-1], Failed)
    assert backend.process.proc.poll() is not None  # it is gone

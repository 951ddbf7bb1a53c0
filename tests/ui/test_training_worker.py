"""The training worker: signals carry the run's events, stop ends within a batch, errors are
messages; any Backend will do.

The evaluation helpers are checked against hand-derived values and scikit-learn.
"""

from __future__ import annotations

import math
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject, Slot
from sklearn.metrics import confusion_matrix

from nodenet.backend import Backend, BatchEnd, EpochEnd, Finished, History, Prepared
from nodenet.graph.project import load
from nodenet.reports import head_report, histograms
from nodenet.ui.training.worker import TrainingController

SAMPLE = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"
DIGITS = 1797
TIMEOUT = 180_000


@pytest.fixture
def project(tmp_path):
    """The digits sample, copied so weights land in a temporary folder; 2 short epochs."""
    path = tmp_path / "digits_mlp.json"
    shutil.copy(SAMPLE, path)
    project = load(path)
    project.training["epochs"] = 2
    project.training["early_stopping"] = None
    return project


class Recorder(QObject):
    """Receives the worker's signals on the GUI thread (queued), like the panel does."""

    def __init__(self):
        super().__init__()
        self.batches, self.epochs, self.prepared = [], [], []
        self.result, self.error = None, None

    def attach(self, worker) -> None:
        worker.prepared.connect(self.on_prepared)
        worker.batchEnd.connect(self.on_batch)
        worker.epochEnd.connect(self.on_epoch)
        worker.finished.connect(self.on_finished)
        worker.failed.connect(self.on_failed)

    @Slot(object)
    def on_prepared(self, info):
        self.prepared.append(info)

    @Slot(object)
    def on_batch(self, logs):
        self.batches.append(logs)

    @Slot(object)
    def on_epoch(self, logs):
        self.epochs.append(logs)

    @Slot(object)
    def on_finished(self, result):
        self.result = result

    @Slot(str)
    def on_failed(self, message):
        self.error = message


def train(qtbot, project, **options):
    controller = TrainingController()
    recorder = Recorder()
    controller.start(project, connect=recorder.attach, batch_interval=0.0, **options)
    with qtbot.waitSignal(controller.threadFinished, timeout=TIMEOUT):
        pass
    return controller, recorder


def test_signals_carry_every_batch_and_epoch_and_the_history(qtbot, project):
    controller, rec = train(qtbot, project)
    assert rec.error is None
    result = rec.result
    info = rec.prepared[0]
    # 0.2 of 1797 held out for testing (rounded); of the other 1438, Keras's
    # fit(validation_split=0.1) trains on floor(1438 * 0.9) = 1294 and validates on 144
    assert info.test == round(DIGITS * 0.2) == 359
    assert info.train == 1294
    batches = -(-info.train // 32)
    assert info.batches == batches
    assert len(rec.batches) == 2 * batches == result["steps"]
    assert [b.step for b in rec.batches] == list(range(1, 2 * batches + 1))
    assert [e.epoch for e in rec.epochs] == [1, 2]
    for key, values in result["history"].items():
        if key != "epoch_seconds":
            assert values == [e.metrics[key] for e in rec.epochs], key
    assert result["history"]["epoch_seconds"] == [e.epoch_seconds for e in rec.epochs]
    # an epoch's loss is the sample-weighted mean of its batches' losses
    for epoch, logs in enumerate(rec.epochs, start=1):
        losses = [b.batch_loss for b in rec.batches if b.epoch == epoch]
        sizes = [32] * (batches - 1) + [info.train - 32 * (batches - 1)]
        assert np.average(losses, weights=sizes) == pytest.approx(logs.metrics["loss"], rel=1e-9)
    assert result["weights_file"] == str(project.path.with_name("digits_mlp.weights.npz"))
    with np.load(result["weights_file"]) as saved:
        assert set(saved.files) == set(result["weights"])
        for key in saved.files:
            np.testing.assert_array_equal(saved[key], result["weights"][key])
    assert controller.worker is None and not controller.running


def test_confusion_matrix_agrees_with_the_engine_accuracy(qtbot, project):
    _, rec = train(qtbot, project)
    result = rec.result
    matrix = result["heads"]["digit"]["confusion"]
    assert matrix.shape == (10, 10)
    assert matrix.sum() == result["test"]["size"] == round(DIGITS * 0.2)
    accuracy = np.trace(matrix) / matrix.sum()
    assert accuracy == pytest.approx(result["test"]["metrics"]["accuracy"], abs=1e-12)
    samples = result["samples"]
    assert samples["image_shapes"]["pixels"] == (8, 8)
    assert samples["inputs"]["pixels"].shape == (8, 64)
    # normalization undone for display: the digits' pixel values 0..16 come back
    raw = samples["inputs"]["pixels"]
    assert raw.min() >= -1e-6 and raw.max() <= 16 + 1e-6
    np.testing.assert_allclose(raw, np.round(raw), atol=1e-4)
    assert set(result["gradient_histograms"]) == {
        f"{node}/{name}"
        for node in ("hidden_1", "hidden_2", "probs")
        for name in ("kernel", "bias")
    }


def test_the_document_may_change_while_the_snapshot_trains(qtbot, project):
    controller = TrainingController()
    rec = Recorder()
    controller.start(project, connect=rec.attach, batch_interval=0.0)
    project.training["epochs"] = 7  # too late: the run took a copy
    project.nodes[1].params["units"] = 3
    with qtbot.waitSignal(controller.threadFinished, timeout=TIMEOUT):
        pass
    assert rec.result["epochs"] == 2
    assert rec.result["weights"]["hidden_1/kernel"].shape == (64, 128)


def test_stop_ends_training_within_one_batch(qtbot, project):
    project.training["epochs"] = 50
    controller = TrainingController()
    seen_at_stop = []

    class Stopper(QObject):
        batches_after = 0

        @Slot(object)
        def on_batch(self, logs):
            if not seen_at_stop and logs.step >= 5:
                controller.stop()
                seen_at_stop.append(worker.steps)
            elif seen_at_stop and logs.step > seen_at_stop[0]:
                Stopper.batches_after += 1

    stopper, rec = Stopper(), Recorder()

    def attach(worker):
        worker.batchEnd.connect(stopper.on_batch)
        rec.attach(worker)

    worker = controller.start(project, connect=attach, batch_interval=0.0)
    with qtbot.waitSignal(controller.threadFinished, timeout=TIMEOUT):
        pass
    assert rec.result["stopped"] == "user"
    assert rec.result["steps"] - seen_at_stop[0] <= 1
    assert Stopper.batches_after <= 1
    # every epoch begun is logged, the partly trained last one too; on a loaded machine
    # the stop can come epochs after step 5, as the GUI thread sees the batches late
    per_epoch = rec.batches[0].batches
    assert rec.result["epochs"] == math.ceil(rec.result["steps"] / per_epoch) < 50
    assert rec.result["weights_file"] is not None  # the weights so far are kept


def test_nan_loss_is_a_message_naming_epoch_and_batch(qtbot, project):
    project.training["optimizer"] = {"name": "sgd", "learning_rate": 1e30}
    _, rec = train(qtbot, project)
    assert rec.result is None
    assert "the loss became" in rec.error
    assert "epoch 1, batch" in rec.error


def test_data_that_does_not_fit_the_input_names_node_and_shapes(qtbot, project):
    project.nodes[0].params["shape"] = [784]
    _, rec = train(qtbot, project)
    assert rec.prepared == []
    assert "pixels" in rec.error and "64" in rec.error and "784" in rec.error


def test_shutdown_stops_a_running_thread(qtbot, project):
    project.training["epochs"] = 1000
    controller = TrainingController()
    rec = Recorder()
    controller.start(project, connect=rec.attach, batch_interval=0.0)
    qtbot.waitUntil(lambda: len(rec.batches) >= 3, timeout=TIMEOUT)
    assert controller.shutdown(timeout_ms=TIMEOUT)
    assert not controller.running


def test_evaluation_only_starts_from_given_weights(qtbot, project):
    _, first = train(qtbot, project)
    weights = first.result["weights"]
    _, again = train(qtbot, project, epochs=0, initial_weights=weights, save_to=None)
    assert again.result["epochs"] == 0 and again.result["weights_file"] is None
    assert again.result["test"]["metrics"] == pytest.approx(first.result["test"]["metrics"])


# -- helpers, against hand-derived values ---------------------------------------------


def test_head_report_matches_scikit_learn_for_one_hot_and_sparse_labels():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 50)
    probs = rng.random((50, 4))
    expected = confusion_matrix(labels, probs.argmax(1), labels=range(4))
    one_hot = np.eye(4, dtype=np.float32)[labels]
    for loss, y in (
        ("categorical_crossentropy", one_hot),
        ("sparse_categorical_crossentropy", labels.astype(np.int32)),
    ):
        report = head_report(loss, y, probs, ["a", "b", "c", "d"])
        np.testing.assert_array_equal(report["confusion"], expected)
        assert report["classes"] == ["a", "b", "c", "d"]


def test_head_report_thresholds_a_single_sigmoid_unit():
    y = np.array([[0.0], [1.0], [1.0], [0.0]], dtype=np.float32)
    p = np.array([[0.2], [0.7], [0.4], [0.9]], dtype=np.float32)
    report = head_report("binary_crossentropy", y, p, None)
    np.testing.assert_array_equal(report["confusion"], [[1, 1], [1, 1]])
    assert report["classes"] == ["0", "1"]


def test_head_report_gives_regression_pairs_and_skips_multi_label():
    y = np.linspace(0, 1, 5000, dtype=np.float32)[:, None]
    report = head_report("mean_squared_error", y, 2 * y, None)
    assert report["task"] == "regression" and len(report["true"]) == 2000
    np.testing.assert_allclose(report["pred"], 2 * report["true"], rtol=1e-6)
    multi = head_report("binary_crossentropy", np.ones((3, 2)), np.ones((3, 2)), None)
    assert multi["confusion"] is None


def test_histograms_count_every_finite_value():
    arrays = {"a/kernel": np.array([0.0, 0.25, 0.5, 1.0, np.nan]), "b/bias": np.zeros(3)}
    out = histograms(arrays, bins=4)
    np.testing.assert_array_equal(out["a/kernel"]["counts"], [1, 1, 1, 1])
    np.testing.assert_allclose(out["a/kernel"]["edges"], [0, 0.25, 0.5, 0.75, 1.0])
    assert out["a/kernel"]["mean"] == pytest.approx(0.4375)
    np.testing.assert_array_equal(out["b/bias"]["counts"], [0, 0, 3, 0])  # spread ±0.5


def test_worker_never_runs_on_the_gui_thread(qtbot, project):
    controller = TrainingController()
    threads = []

    class Probe(QObject):
        @Slot(object)
        def on_prepared(self, info):
            threads.append(threading.current_thread())

    probe = Probe()

    def attach(worker):
        worker.prepared.connect(lambda info: threads.append(threading.current_thread()))
        worker.prepared.connect(probe.on_prepared)

    controller.start(project, connect=attach, batch_interval=0.0)
    with qtbot.waitSignal(controller.threadFinished, timeout=TIMEOUT):
        pass
    emitted_in, delivered_in = threads
    assert emitted_in is not threading.main_thread()  # a direct connection runs in the worker
    assert delivered_in is threading.main_thread()  # a QObject slot receives it queued


# -- the Backend seam ------------------------------------------------------------------


class FakeBackend:
    """A Backend that trains nothing: it reports a scripted run of 2 epochs of 3 batches."""

    name = "fake"
    data = None
    training: dict = {}
    outputs = {"out": "mean_squared_error"}

    def __init__(self):
        self.weights = {"dense/kernel": np.ones((2, 3), np.float32)}
        self.built = None

    def build(self, project, *, seed=None, load_data=True, allow_outside_data=False):
        self.built = project

    def fit(
        self, *, on_event=None, callbacks=(), should_stop=None, epochs=None, progress_interval=0.0
    ):
        history = History()
        on_event(Prepared(90, 10, 0, 2, 3, 30, 6, ("out",)))
        for epoch in (1, 2):
            for batch in (1, 2, 3):
                for callback in callbacks:
                    callback.on_gradients(batch - 1, {"dense/kernel": np.full((2, 3), 0.5)})
                loss = 1.0 / (epoch * batch)
                metrics = {"loss": loss, "learning_rate": 0.01}
                on_event(BatchEnd(epoch, 2, batch, 3, 3 * (epoch - 1) + batch, metrics, loss, 9.0))
            logs = {"loss": 0.5 / epoch, "val_loss": 0.6 / epoch, "learning_rate": 0.01}
            history.epochs.append({**logs, "epoch_seconds": 0.25})
            on_event(EpochEnd(epoch, 2, logs, 3 * epoch, 0.25))
        on_event(Finished(history, steps=6, samples=180, seconds=2.0))
        return history

    def evaluate(self, inputs=None, targets=None):
        return None

    def predict(self, inputs, batch_size=256):
        return {}

    def get_weights(self):
        return {k: v.copy() for k, v in self.weights.items()}

    def set_weights(self, weights, source="weights"):
        self.weights = dict(weights)

    def count_params(self):
        return 6, 0

    def save_weights(self, path):
        np.savez(path, **self.weights)
        return Path(path)

    def load_weights(self, path):
        with np.load(path) as saved:
            self.weights = dict(saved)


def test_the_worker_trains_through_any_backend_and_forwards_its_events(qtbot, project, tmp_path):
    assert isinstance(FakeBackend(), Backend)
    _, rec = train(qtbot, project, backend=FakeBackend, save_to=tmp_path / "w.npz")
    assert rec.error is None
    (prepared,) = rec.prepared
    assert isinstance(prepared, Prepared) and prepared.outputs == ("out",)
    assert [(b.epoch, b.batch, b.step) for b in rec.batches] == [
        (e, b, 3 * (e - 1) + b) for e in (1, 2) for b in (1, 2, 3)
    ]
    assert all(isinstance(e, EpochEnd) for e in rec.epochs)
    assert [e.metrics["val_loss"] for e in rec.epochs] == [0.6, 0.3]
    result = rec.result
    assert result["history"]["val_loss"] == [0.6, 0.3] and result["epochs"] == 2
    assert (result["steps"], result["fit_seconds"], result["samples_per_sec"]) == (6, 2.0, 90.0)
    assert result["test"] is None  # the fake has no test split
    # the gradient probe is a callback: it saw the fake's gradients
    grads = result["gradient_histograms"]["dense/kernel"]
    assert grads["mean"] == 0.5 and grads["counts"].sum() == 6
    assert result["weight_histograms"]["dense/kernel"]["mean"] == 1.0
    assert result["weights_file"] == str(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as saved:
        np.testing.assert_array_equal(saved["dense/kernel"], np.ones((2, 3)))

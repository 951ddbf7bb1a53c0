"""The built model and the training loop: gradients through whole graphs, fit's contract."""

from __future__ import annotations

import numpy as np
import pytest

from nodenet.engine.callbacks import Callback
from nodenet.engine.events import BatchEnd, EpochEnd, Finished, Prepared
from nodenet.engine.training import evaluate, fit, split_validation
from nodenet.errors import DataError, TrainingError, WeightsError
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model


def two_heads(reg=None) -> Project:
    """Two inputs, a fan-out, a merge, two outputs with loss weights."""
    dense = {"units": 6, "activation": "tanh", "kernel_regularizer": reg}
    return Project(
        "two_heads",
        [
            Node("a", "Input", {"shape": [5]}),
            Node("b", "Input", {"shape": [4, 3]}),
            Node("da", "Dense", dense),
            Node("rnn", "LSTM", {"units": 6}),
            Node("sum", "Add", {}),
            Node("cat", "Concatenate", {}),
            Node("probs", "Dense", {"units": 3, "activation": "softmax"}),
            Node("value", "Dense", {"units": 1}),
            Node("label", "Output", {"loss": "categorical_crossentropy", "loss_weight": 1.0}),
            Node(
                "size",
                "Output",
                {"loss": "mean_squared_error", "metrics": ["mae"], "loss_weight": 0.5},
            ),
        ],
        [
            Edge("a", "da"),
            Edge("b", "rnn"),
            Edge("da", "sum", 0),
            Edge("rnn", "sum", 1),
            Edge("sum", "cat", 0),
            Edge("da", "cat", 1),  # da fans out to sum and cat
            Edge("cat", "probs"),
            Edge("cat", "value"),
            Edge("probs", "label"),
            Edge("value", "size"),
        ],
    )


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = {"a": rng.normal(size=(n, 5)), "b": rng.normal(size=(n, 4, 3))}
    labels = rng.integers(0, 3, size=n)
    y = {"label": np.eye(3)[labels], "size": rng.normal(size=(n, 1))}
    return x, y


def total_loss(model, x, y):
    from nodenet.engine.training import _Scorer

    scorer = _Scorer(model, y)
    loss, grads = scorer.score(model.forward(x, training=True), y, None, want_grads=True)
    return loss, grads


@pytest.mark.parametrize("reg", [None, {"l1": 0.01, "l2": 0.02}])
def test_whole_graph_gradients_match_finite_differences(reg):
    model = build_model(two_heads(reg), dtype=np.float64, seed=3)
    x, y = data(6)
    x = model.check_inputs(x)
    _loss, out_grads = total_loss(model, x, y)
    grads = model.backward(out_grads)
    model.regularization(grads)
    params, keys = model.trainable()
    rng = np.random.default_rng(0)
    eps = 1e-6
    for key, _, _ in keys:
        w = params[key].reshape(-1)
        for j in rng.choice(w.size, size=min(5, w.size), replace=False):
            old = w[j]
            w[j] = old + eps
            up = total_loss(model, x, y)[0] + model.regularization()
            w[j] = old - eps
            down = total_loss(model, x, y)[0] + model.regularization()
            w[j] = old
            numeric = (up - down) / (2 * eps)
            assert grads[key].reshape(-1)[j] == pytest.approx(numeric, rel=1e-4, abs=1e-7), key


def test_the_same_seed_gives_the_same_run_bit_for_bit():
    x, y = data()
    runs = []
    for _ in range(2):
        model = build_model(two_heads(), seed=7)
        history = fit(model, x, y, epochs=2, batch_size=8, seed=11, validation_split=0.25)
        runs.append((model.get_weights(), history.epochs))
    (w1, h1), (w2, h2) = runs
    assert all(np.array_equal(w1[k], w2[k]) for k in w1)
    strip = [{k: v for k, v in e.items() if k != "epoch_seconds"} for e in h1]
    assert strip == [{k: v for k, v in e.items() if k != "epoch_seconds"} for e in h2]


def batches_into(seen: list):
    """An event sink keeping the BatchEnd events in ``seen``."""
    return lambda event: seen.append(event) if isinstance(event, BatchEnd) else None


def epochs_into(seen: list):
    """An event sink keeping every EpochEnd's metrics in ``seen``."""
    return lambda event: seen.append(event.metrics) if isinstance(event, EpochEnd) else None


def test_should_stop_ends_training_within_one_batch_and_leaves_a_usable_model():
    x, y = data(200)
    model = build_model(two_heads(), seed=1)
    seen = []
    history = fit(
        model,
        x,
        y,
        epochs=50,
        batch_size=10,
        seed=0,
        on_event=batches_into(seen),
        should_stop=lambda: len(seen) >= 3,
    )
    assert len(seen) == 3, "no batch may start after the stop request"
    assert history.stopped == "user"
    out = model.predict(x)
    assert all(np.isfinite(v).all() for v in out.values())


def test_progress_events_are_complete():
    x, y = data()
    batches, epochs = [], []
    fit(
        build_model(two_heads(), seed=1),
        x,
        y,
        epochs=2,
        batch_size=16,
        seed=0,
        validation_split=0.25,
        on_event=lambda e: batches.append(e) if isinstance(e, BatchEnd) else epochs_into(epochs)(e),
    )
    assert [b.batch for b in batches] == [1, 2, 1, 2]
    for key in (
        "loss",
        "label_accuracy",
        "size_mae",
        "label_loss",
        "size_loss",
        "learning_rate",
    ):
        assert key in batches[-1].metrics
    assert batches[-1].samples_per_sec > 0 and batches[-1].epoch == 2 and batches[-1].batches == 2
    assert {"val_loss", "val_label_accuracy", "val_size_mae"} <= set(epochs[-1])
    assert all(isinstance(v, int | float) for v in epochs[-1].values())


def test_a_loss_that_becomes_nan_stops_with_epoch_and_batch_and_keeps_finite_weights():
    x, y = data(80)
    y["size"] = y["size"] * 1e30
    model = build_model(two_heads(), seed=1)
    with pytest.raises(TrainingError, match=r"the loss became (nan|inf) at epoch \d+, batch \d+"):
        fit(model, x, y, epochs=5, batch_size=8, optimizer={"name": "sgd", "learning_rate": 1e6})
    assert all(np.isfinite(w).all() for w in model.get_weights().values())


def test_validation_split_takes_the_end_of_the_data_like_keras():
    x = {"a": np.arange(10.0).reshape(10, 1)}
    y = {"o": np.arange(10.0).reshape(10, 1)}
    (tx, _ty), (vx, _vy) = split_validation(x, y, 0.2)
    assert tx["a"].ravel().tolist() == list(range(8))
    assert vx["a"].ravel().tolist() == [8, 9]


def test_early_stopping_restores_the_best_epoch():
    x, y = data(60)
    vx, vy = data(30, seed=5)
    model = build_model(two_heads(), seed=2)
    snapshots = []
    history = fit(
        model,
        x,
        y,
        epochs=30,
        batch_size=6,
        seed=0,
        validation_data=(vx, vy),
        optimizer={"name": "adam", "learning_rate": 0.05},
        on_event=lambda e: (
            snapshots.append((e.metrics["val_loss"], model.get_weights()))
            if isinstance(e, EpochEnd)
            else None
        ),
        early_stopping={"monitor": "val_loss", "patience": 2, "restore_best": True},
    )
    assert history.stopped == "early_stopping"
    best = int(np.argmin([s[0] for s in snapshots]))
    assert history.best_epoch == best + 1
    restored = model.get_weights()
    assert all(np.array_equal(restored[k], snapshots[best][1][k]) for k in restored)


def test_class_weight_scales_each_sample_loss():
    project = Project(
        "c",
        [
            Node("x", "Input", {"shape": [2]}),
            Node("p", "Dense", {"units": 2, "activation": "softmax"}),
            Node("y", "Output", {}),
        ],
        [Edge("x", "p"), Edge("p", "y")],
    )
    model = build_model(project, seed=0)
    x = {"x": np.array([[1.0, 0.0], [0.0, 1.0]])}
    y = {"y": np.array([[1.0, 0.0], [0.0, 1.0]])}
    probs = model.predict(x)["y"]
    per_sample = -np.log(np.clip(probs[[0, 1], [0, 1]], 1e-7, 1))
    logs = []
    fit(
        model,
        x,
        y,
        epochs=1,
        batch_size=2,
        shuffle=False,
        class_weight={0: 3.0, 1: 0.5},
        optimizer={"name": "sgd", "learning_rate": 0.0},
        on_event=epochs_into(logs),
    )
    expected = (3.0 * per_sample[0] + 0.5 * per_sample[1]) / 2
    assert logs[0]["loss"] == pytest.approx(expected, rel=1e-5)


def test_weights_round_trip_and_mismatch_is_named(tmp_path):
    model = build_model(two_heads(), seed=1)
    path = model.save_weights(tmp_path / "m.weights.npz")
    other = build_model(two_heads(), seed=2)
    other.load_weights(path)
    assert all(
        np.array_equal(model.get_weights()[k], other.get_weights()[k]) for k in model.get_weights()
    )
    flat = model.get_weights()
    flat["da/kernel"] = np.zeros((5, 7), np.float32)
    np.savez(tmp_path / "bad.npz", **flat)
    with pytest.raises(
        WeightsError,
        match=r"'da/kernel' has shape \(5, 7\) but the graph "
        r"needs \(5, 6\)",
    ):
        other.load_weights(tmp_path / "bad.npz")
    del flat["da/kernel"]
    np.savez(tmp_path / "missing.npz", **flat)
    with pytest.raises(WeightsError, match="has no 'da/kernel'"):
        other.load_weights(tmp_path / "missing.npz")


def test_weights_files_with_pickled_objects_are_refused(tmp_path):
    model = build_model(two_heads(), seed=1)
    flat = {k: v for k, v in model.get_weights().items()}
    flat["da/kernel"] = np.array([object()] * 30, dtype=object).reshape(5, 6)
    np.savez(tmp_path / "evil.npz", **flat)
    with pytest.raises(WeightsError, match=r"evil\.npz: array 'da/kernel' holds Python objects"):
        model.load_weights(tmp_path / "evil.npz")


def test_evaluate_reports_loss_and_metrics_in_inference_mode():
    x, y = data(30)
    model = build_model(two_heads(), seed=1)
    result = evaluate(model, x, y, batch_size=7)
    out = model.predict(x)
    mse = float(np.mean((out["size"] - y["size"]) ** 2))
    assert result["size_loss"] == pytest.approx(mse, rel=1e-5)
    acc = float(np.mean(out["label"].argmax(1) == y["label"].argmax(1)))
    assert result["label_accuracy"] == pytest.approx(acc)


def test_missing_input_data_is_named():
    x, y = data()
    del x["b"]
    with pytest.raises(DataError, match="no data for the Input 'b'"):
        fit(build_model(two_heads()), x, y)


def test_progress_interval_reports_the_last_batch_of_every_epoch_at_least():
    x, y = data(64)
    seen = []
    fit(
        build_model(two_heads(), seed=1),
        x,
        y,
        epochs=3,
        batch_size=8,
        seed=0,
        on_event=batches_into(seen),
        progress_interval=3600.0,
    )
    # the first batch is due (nothing reported yet), then only each epoch's last one
    assert [(b.epoch, b.batch) for b in seen] == [(1, 1), (1, 8), (2, 8), (3, 8)]


@pytest.mark.parametrize("step", ["forward", "backward"])
def test_a_bug_inside_a_block_is_reported_naming_the_block_and_the_pass(step, monkeypatch):
    model = build_model(two_heads(), seed=0)
    rnn = model.layers["rnn"]

    def broken(*args, **kwargs):
        raise ZeroDivisionError("simulated")

    monkeypatch.setattr(rnn, step, broken)  # this instance only
    rng = np.random.default_rng(0)
    x = {"a": rng.normal(size=(8, 5)), "b": rng.normal(size=(8, 4, 3))}
    y = {"label": np.eye(3)[rng.integers(0, 3, 8)], "size": rng.normal(size=(8, 1))}
    with pytest.raises(TrainingError) as caught:
        fit(model, x, y, epochs=1, batch_size=4)
    expected = f"the block 'rnn' (LSTM) failed in its {step} pass (ZeroDivisionError: simulated)"
    assert expected in str(caught.value)
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


def test_fit_reports_its_events_in_order_and_the_history_they_carry():
    x, y = data(40)
    events = []
    history = fit(
        build_model(two_heads(), seed=1),
        x,
        y,
        epochs=2,
        batch_size=16,
        seed=0,
        validation_split=0.25,
        on_event=events.append,
        test_samples=7,
    )
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Prepared", *(["BatchEnd"] * 2 + ["EpochEnd"]) * 2, "Finished"]
    prepared, finished = events[0], events[-1]
    assert isinstance(prepared, Prepared) and isinstance(finished, Finished)
    assert (prepared.train, prepared.val, prepared.test) == (30, 10, 7)
    assert (prepared.epochs, prepared.batches, prepared.outputs) == (2, 2, ("label", "size"))
    assert prepared.params == sum(build_model(two_heads()).count_params())
    assert [e.step for e in events if isinstance(e, BatchEnd)] == [1, 2, 3, 4]
    assert finished.history is history and (finished.steps, finished.samples) == (4, 60)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    for event, logs in zip(epochs, history.epochs, strict=True):
        assert dict(event.metrics) == {k: v for k, v in logs.items() if k != "epoch_seconds"}
        assert event.epoch_seconds == logs["epoch_seconds"]
        assert list(event.metrics)[-1] == "learning_rate"
    # a batch's loss is the batch's own when every batch is reported
    batches = [e for e in events if isinstance(e, BatchEnd)]
    assert batches[0].batch_loss == pytest.approx(batches[0].loss)
    assert np.average([b.batch_loss for b in batches[:2]], weights=[16, 14]) == pytest.approx(
        epochs[0].metrics["loss"], rel=1e-9
    )


def test_a_slow_throttle_holds_epoch_events_until_the_end_and_loses_none():
    x, y = data(64)
    events = []
    fit(
        build_model(two_heads(), seed=1),
        x,
        y,
        epochs=3,
        batch_size=32,
        seed=0,
        on_event=events.append,
        progress_interval=3600.0,
    )
    order = [
        (type(e).__name__, getattr(e, "epoch", None), getattr(e, "batch", None)) for e in events
    ]
    assert order == [
        ("Prepared", None, None),
        ("BatchEnd", 1, 1),  # the first batch is due; afterwards only each epoch's last
        ("BatchEnd", 1, 2),  # held, with the epoch ends, until the run ends
        ("EpochEnd", 1, None),
        ("BatchEnd", 2, 2),
        ("EpochEnd", 2, None),
        ("BatchEnd", 3, 2),
        ("EpochEnd", 3, None),
        ("Finished", None, None),
    ]
    # batch_loss: the loss since the previous BatchEnd (the batch's own), not the running mean
    second = events[2]
    assert second.batch_loss != pytest.approx(second.loss)


class Recording(Callback):
    """Writes down every hook call."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_gradients(self, batch, grads):
        self.calls.append(("gradients", batch, sorted(grads)))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, sorted(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, "val_loss" in logs))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end",))


def test_callbacks_get_keras_hooks_in_order_and_the_gradients_of_every_batch():
    x, y = data(20)
    model = build_model(two_heads(), seed=1)
    recording = Recording()
    fit(model, x, y, epochs=2, batch_size=16, seed=0, callbacks=[recording])
    keys = sorted(f"{node}/{name}" for node, ws in model.weights.items() for name in ws)
    logs = ["label_accuracy", "label_loss", "loss", "size_loss", "size_mae"]
    per_epoch = lambda e: [  # noqa: E731
        ("epoch_begin", e),
        ("gradients", 0, keys),
        ("batch_end", 0, logs),
        ("gradients", 1, keys),
        ("batch_end", 1, logs),
        ("epoch_end", e, False),
    ]
    assert recording.calls == [("train_begin",), *per_epoch(0), *per_epoch(1), ("train_end",)]


def test_a_callback_stops_training_through_the_state():
    class StopAfterOne(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.state.stop_training = True

    x, y = data(20)
    history = fit(build_model(two_heads(), seed=1), x, y, epochs=5, callbacks=[StopAfterOne()])
    assert len(history.epochs) == 1 and history.stopped == "callback"


def test_the_gradient_probe_keeps_the_last_batch_gradients_as_the_optimizer_saw_them():
    from nodenet.engine.callbacks import GradientProbe

    x, y = data(8)
    model = build_model(two_heads(), dtype=np.float64, seed=1)
    before = model.get_weights()
    probe = GradientProbe()
    lr = 0.1
    fit(
        model,
        x,
        y,
        epochs=1,
        batch_size=8,
        shuffle=False,
        callbacks=[probe],
        optimizer={"name": "sgd", "learning_rate": lr},
    )
    after = model.get_weights()
    assert set(probe.latest) == set(before)
    for key, grad in probe.latest.items():
        np.testing.assert_allclose(after[key], before[key] - lr * grad, rtol=1e-6, atol=1e-9)

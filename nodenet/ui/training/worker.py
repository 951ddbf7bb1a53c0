"""Training off the GUI thread: a worker ``QObject`` on a named ``QThread``.

The worker trains a *snapshot* of the project (the document may change freely
meanwhile), calls the engine's ``Run.fit`` with progress and stop callables,
and forwards plain dicts as Qt signals. It never touches a widget. The GUI side
(:class:`TrainingController`) owns the thread, starts the worker with a queued
signal, stops it through a ``threading.Event`` polled before every batch, and
shuts it down cleanly when the window closes.

Signals of :class:`TrainingWorker` (each carries a plain ``dict``):

``prepared``  model built and data loaded: sample counts, batches, parameters.
``batchEnd``  at most every ``batch_interval`` seconds: the engine's batch logs
              plus ``step`` (batches done in all), ``epochs``, ``batch_loss`` (the mean
              loss of the batches since the previous signal) and ``smooth_loss``.
``epochEnd``  every epoch, in order: the engine's epoch logs (``loss``, metrics,
              ``val_*``, ``learning_rate``, ``epoch``, ``epochs``) and ``step``; epochs
              shorter than ``batch_interval`` are sent together with the next batch.
``finished``  ``History.to_dict()`` plus the evaluation (see :func:`summarize`).
``failed``    one message (``str``) naming what went wrong.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from nodenet.engine import Run, build_run, weights_path
from nodenet.errors import NodenetError
from nodenet.ui.training.results import summarize

SMOOTHING = 0.9  # weight of the past in the per-batch loss average


class TrainingWorker(QObject):
    """Builds, trains and evaluates one run; lives on the training thread.

    Parameters
    ----------
    project : nodenet.project.Project
        A snapshot nobody else touches (``path`` kept, for data and weights).
    epochs : int, optional
        Overrides the project's ``training.epochs``; 0 only evaluates.
    batch_interval : float
        Minimum seconds between two ``batchEnd`` signals (0: every batch).
    initial_weights : dict of arrays, optional
        Weights (``node/name`` keys) to start from instead of fresh ones.
    save_to : path, optional
        Where to write the trained weights (``NAME.weights.npz``).
    """

    prepared = Signal(object)
    batchEnd = Signal(object)
    epochEnd = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        project,
        *,
        epochs: int | None = None,
        batch_interval: float = 0.05,
        initial_weights: dict[str, np.ndarray] | None = None,
        save_to: Path | None = None,
    ):
        super().__init__()
        self.project = project
        self.epochs = epochs
        self.batch_interval = batch_interval
        self.initial_weights = initial_weights
        self.save_to = save_to
        self.stop_event = threading.Event()
        self.steps = 0
        self._home = (
            QThread.currentThread()
        )  # batches trained so far; read by the GUI thread for tests

    @Slot()
    def run(self) -> None:
        """Train and evaluate; ends with exactly one ``finished`` or ``failed``."""
        try:
            result = self._run()
        except NodenetError as err:
            self.failed.emit(str(err))
        except MemoryError:
            self.failed.emit(
                "out of memory: the model or the data is too large for this machine "
                "(try a smaller batch size or fewer units)"
            )
        except Exception as err:  # a bug must not take the application down
            traceback.print_exc(file=sys.stderr)
            self.failed.emit(describe_failure(err))
        else:
            self.finished.emit(result)
        finally:
            # hand the object back to the GUI thread: its deletion (thread.finished ->
            # deleteLater) then happens there, never concurrently with the GUI's own deletions
            self.moveToThread(self._home)

    def _run(self) -> dict[str, Any]:
        with leave_a_core():
            return self._train()

    def _train(self) -> dict[str, Any]:
        run = build_run(self.project)
        if self.initial_weights is not None:
            run.model.set_weights(self.initial_weights, source="the trained weights")
        progress = _Progress(self, run)
        self.prepared.emit(progress.describe(run))
        probe = _GradientProbe(run.model)
        start = time.perf_counter()
        history = run.fit(
            on_batch=progress.on_batch,
            on_epoch=progress.on_epoch,
            should_stop=self.stop_event.is_set,
            epochs=progress.epochs,
            progress_interval=self.batch_interval,
        )
        fit_seconds = time.perf_counter() - start
        progress.emit_epochs()
        result = history.to_dict()
        result.update(summarize(run, probe.latest))
        result.update(
            steps=self.steps,
            fit_seconds=fit_seconds,
            samples_per_sec=progress.samples_done / fit_seconds if fit_seconds > 0 else 0.0,
            weights=run.model.get_weights(),
        )
        result.update(self._save(run))
        return result

    def _save(self, run: Run) -> dict[str, Any]:
        if self.save_to is None or self.epochs == 0:
            return {"weights_file": None, "weights_error": None}
        try:
            return {
                "weights_file": str(run.model.save_weights(self.save_to)),
                "weights_error": None,
            }
        except (OSError, NodenetError) as err:
            return {"weights_file": None, "weights_error": str(err)}


def describe_failure(err: Exception) -> str:
    """One sentence for an unexpected exception (a failing block is already named by the
    engine, which raises a TrainingError for it)."""
    what = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return f"unexpected error ({what})"


def leave_a_core() -> contextlib.AbstractContextManager:
    """BLAS threads limited to the cores minus one while training, so the event loop
    keeps a core: on a busy 2-core machine, 2 spinning BLAS threads beside the GUI
    thread made a small MLP's batches over 20x slower. No limit without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover (installed with scikit-learn)
        return contextlib.nullcontext()
    return threadpool_limits(limits=max(1, (os.cpu_count() or 2) - 1), user_api="blas")


class _Progress:
    """The worker's ``fit`` callbacks: counts batches, throttles the signals, and turns
    the engine's running means into the loss of the batches since the previous point."""

    def __init__(self, worker: TrainingWorker, run: Run):
        self.worker = worker
        self.epochs = run.training["epochs"] if worker.epochs is None else worker.epochs
        self.batch_size = run.training["batch_size"]
        self.samples = _fit_samples(run)
        self.batches = math.ceil(self.samples / self.batch_size)
        self.samples_done = 0  # in completed (or stopped) epochs
        self._last_emit = -math.inf
        self._last_batch: dict[str, Any] = {}
        self._epoch_logs: list[dict[str, Any]] = []  # not yet emitted
        self._epoch = 0
        self._seen = 0  # samples of the epoch up to the previous point
        self._sum = 0.0  # their summed loss
        self._average = 0.0
        self._step = 0  # the step of the previous point

    def on_batch(self, logs: dict[str, Any]) -> None:
        """After every batch: hot, so cheap unless a signal is due."""
        worker = self.worker
        # the engine reports at most every batch_interval: count steps from the logs
        worker.steps = (logs["epoch"] - 1) * logs["batches"] + logs["batch"]
        self._last_batch = logs
        if self._due():
            self.emit_epochs()
            worker.batchEnd.emit(self.point(logs, worker.steps))

    def on_epoch(self, logs: dict[str, Any]) -> None:
        """After every epoch. Epochs shorter than ``batch_interval`` go out together with
        the next batch signal: one wake-up of the GUI thread instead of many."""
        self.samples_done += self.seen(self._last_batch)
        self._epoch_logs.append({**logs, "step": self.worker.steps})
        if self._due():
            self.emit_epochs()

    def emit_epochs(self) -> None:
        for logs in self._epoch_logs:
            self.worker.epochEnd.emit(logs)
        self._epoch_logs.clear()

    def _due(self) -> bool:
        now = time.perf_counter()
        if now - self._last_emit < self.worker.batch_interval:
            return False
        self._last_emit = now
        return True

    def describe(self, run: Run) -> dict[str, Any]:
        sizes = dict(run.data.meta.sizes)
        val = sizes.get("val", 0) or (
            sizes.get("train", 0) - self.samples if run.training["validation_split"] else 0
        )
        trainable, frozen = run.model.count_params()
        return {
            "train": self.samples,
            "val": val,
            "test": sizes.get("test", 0),
            "epochs": self.epochs,
            "batches": self.batches,
            "params": trainable + frozen,
            "outputs": [head.id for head in run.model.heads],
        }

    def seen(self, logs: dict[str, Any]) -> int:
        """Samples of the epoch trained after the batch these logs report."""
        if not logs:
            return 0
        if logs["batches"] != self.batches:  # unexpected: assume equal batches
            return logs["batch"] * self.batch_size
        return min(logs["batch"] * self.batch_size, self.samples)

    def point(self, logs: dict[str, Any], step: int) -> dict[str, Any]:
        """The batch logs plus ``step``, ``epochs``, ``batch_loss`` (mean loss of the
        batches since the previous point: this batch's when every batch is reported)
        and ``smooth_loss`` (its debiased exponential moving average)."""
        if logs["epoch"] != self._epoch:
            self._epoch, self._seen, self._sum = logs["epoch"], 0, 0.0
        seen = self.seen(logs)
        total = logs["loss"] * seen
        batch_loss = (total - self._sum) / max(seen - self._seen, 1)
        self._seen, self._sum = seen, total
        # an exponential moving average per batch, as if each batch since the previous
        # point had this loss: sparse points then lag no more than dense ones
        keep = SMOOTHING ** (step - self._step)
        self._step = step
        self._average = keep * self._average + (1 - keep) * batch_loss
        smooth = self._average / (1 - SMOOTHING**step)
        return {
            **logs,
            "step": step,
            "epochs": self.epochs,
            "batch_loss": batch_loss,
            "smooth_loss": smooth,
        }


def _fit_samples(run: Run) -> int:
    """How many samples ``fit`` trains on (after a Keras-style ``validation_split``)."""
    n = len(next(iter(run.data.train["inputs"].values())))
    val = run.data.val
    has_val = bool(val) and len(next(iter(val["inputs"].values()), [])) > 0
    fraction = run.training["validation_split"]
    return n if has_val or not fraction else n - math.floor(n * fraction)


class _GradientProbe:
    """Keeps the weight gradients of the latest training batch (by wrapping ``backward``)."""

    def __init__(self, model):
        self.latest: dict[str, np.ndarray] | None = None
        self._backward = model.backward
        model.backward = self

    def __call__(self, output_grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        grads = self._backward(output_grads)
        self.latest = grads  # the engine adds regularization to this dict in place
        return grads


# -- the GUI side ---------------------------------------------------------------------


class TrainingController(QObject):
    """Owns the training thread: start a worker, stop it, shut down on exit.

    Connect to the returned worker's signals from a ``QObject`` living in the
    GUI thread (a widget's method), so they arrive queued on the GUI thread.
    """

    startRequested = Signal()  # queued to the worker's run()
    threadFinished = Signal()  # the thread has ended and the worker is released

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self.worker: TrainingWorker | None = None
        self._done = False  # the worker has emitted finished or failed

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(
        self,
        project,
        connect: Callable[[TrainingWorker], None] | None = None,
        **options: Any,
    ) -> TrainingWorker:
        """Train a snapshot of ``project`` (``options`` as for :class:`TrainingWorker`).

        ``connect(worker)`` is called before the thread starts: connect the
        worker's signals there, or a fast failure may be emitted before anyone
        listens.
        """
        if self._thread is not None:
            if not self._done:
                raise RuntimeError("a training run is already in progress")
            self._thread.quit()  # the last run has ended; its thread may still be winding down
            self._thread.wait()
            self._release()
        snapshot = project.copy()
        snapshot.path = project.path
        options.setdefault("save_to", weights_path(project))
        worker = TrainingWorker(snapshot, **options)
        thread = QThread()
        thread.setObjectName("nodenet-training")
        worker.moveToThread(thread)
        self.startRequested.connect(worker.run, Qt.ConnectionType.QueuedConnection)
        self._thread, self.worker, self._done = thread, worker, False
        # queued slots run in connection order: done flag, the caller's slots, then quit,
        # so the worker still exists (and is their sender) when the caller's slots run
        worker.finished.connect(self._worker_done)
        worker.failed.connect(self._worker_done)
        if connect is not None:
            connect(worker)
        worker.finished.connect(thread.quit)
        worker.failed.connect(thread.quit)
        thread.finished.connect(worker.deleteLater)
        thread.finished.connect(self._thread_finished)
        thread.start()
        self.startRequested.emit()
        return worker

    def stop(self) -> None:
        """Ask the run to stop before its next batch (the weights so far are kept)."""
        if self.worker is not None:
            self.worker.stop_event.set()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop and wait for the thread to end; True when it did within the timeout."""
        thread = self._thread
        if thread is None:
            return True
        self.stop()
        thread.quit()
        done = thread.wait(timeout_ms)
        if done:
            self._release()
        return done

    @Slot()
    def _worker_done(self) -> None:
        self._done = True

    @Slot()
    def _thread_finished(self) -> None:
        if self.sender() is self._thread:  # not an earlier thread released by start()
            self._release()

    def _release(self) -> None:
        if self._thread is None:
            return
        with warnings.catch_warnings():  # Qt already dropped it if the worker is deleted
            warnings.simplefilter("ignore", RuntimeWarning)
            self.startRequested.disconnect()  # the finished worker's run()
        self._thread.deleteLater()
        self._thread, self.worker = None, None
        self.threadFinished.emit()

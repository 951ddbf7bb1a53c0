"""Training off the GUI thread: a worker ``QObject`` on a named ``QThread``.

The worker trains a *snapshot* of the project (the document may change freely
meanwhile) through a :class:`nodenet.backend.Backend` (the numpy engine unless told
otherwise) and forwards the run's typed events (:mod:`nodenet.engine.events`) as Qt
signals carrying the event objects. It never touches a widget, and it does not
throttle: the engine's ``fit`` does, once (``batch_interval`` is its
``progress_interval``). The GUI side (:class:`TrainingController`) owns the thread,
starts the worker with a queued signal, stops it through a ``threading.Event``
polled before every batch, and shuts it down cleanly when the window closes.

Signals of :class:`TrainingWorker`:

``prepared``  a :class:`~nodenet.engine.events.Prepared`: sample counts, batches,
              parameters, Output ids.
``batchEnd``  a :class:`~nodenet.engine.events.BatchEnd` (throttled by ``fit``).
``epochEnd``  an :class:`~nodenet.engine.events.EpochEnd`, every epoch, in order.
``finished``  a ``dict``: ``History.to_dict()`` plus the evaluation
              (:func:`nodenet.reports.summarize`), ``steps``, ``fit_seconds``,
              ``samples_per_sec``, ``weights`` and where they were saved, ``run_id``
              (the run recorded in ``NAME.runs.sqlite``, None for an unsaved project)
              and ``runs_error`` (why recording failed, or None).
``failed``    one message (``str``) naming what went wrong.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from nodenet.backend import (
    Backend,
    BatchEnd,
    EpochEnd,
    Event,
    Finished,
    GradientProbe,
    NumpyBackend,
    Prepared,
    hold_weights,
)
from nodenet.errors import NodenetError
from nodenet.reports import summarize
from nodenet.runner import weights_path
from nodenet.runs_recorder import Recorder, start_recording
from nodenet.ui.gui_thread_gc import no_collection


class TrainingWorker(QObject):
    """Builds, trains and evaluates one run; lives on the training thread.

    Parameters
    ----------
    project : nodenet.graph.project.Project
        A snapshot nobody else touches (``path`` kept, for data and weights).
    epochs : int, optional
        Overrides the project's ``training.epochs``; 0 only evaluates.
    batch_interval : float
        Minimum seconds between two ``batchEnd`` signals (0: every batch).
    initial_weights : dict of arrays, optional
        Weights (``node/name`` keys) to start from instead of fresh ones.
    held_weights : dict of arrays, optional
        Weights held so far (``node/name`` keys): the frozen blocks (with the project's
        ``warm_start`` setting, every block) start from those that still fit them (same
        key and shape); the others start fresh. Training leaves frozen ones as they were.
    save_to : path, optional
        Where to write the trained weights (``NAME.weights.npz``).
    backend : callable returning a Backend
        What trains (default: :class:`nodenet.backend.NumpyBackend`).
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
        held_weights: dict[str, np.ndarray] | None = None,
        save_to: Path | None = None,
        backend: Callable[[], Backend] = NumpyBackend,
    ):
        super().__init__()
        self.project = project
        self.epochs = epochs
        self.batch_interval = batch_interval
        self.initial_weights = initial_weights
        self.held_weights = held_weights
        self.save_to = save_to
        self.make_backend = backend
        self.stop_event = threading.Event()
        self.steps = 0  # batches trained so far; read by the GUI thread for tests
        self.backend: Backend | None = None  # once made (a PyTorch run: its child process)
        self._finished: Finished | None = None
        self._home = QThread.currentThread()
        self.recorder = Recorder.off()  # the run in NAME.runs.sqlite (saved projects only)

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
            # deleteLater) then happens there, never concurrently with the GUI's own
            # deletions; and no collection there meanwhile (see gui_thread_gc)
            with no_collection():
                self.moveToThread(self._home)

    def _run(self) -> dict[str, Any]:
        with leave_a_core():
            try:
                return self._train()
            finally:
                self.recorder.abandon()  # an error before the run's end: recorded as failed

    def _train(self) -> dict[str, Any]:
        backend = self.backend = self.make_backend()  # read by tests (a child's process)
        backend.build(self.project)
        if self.initial_weights is not None:
            backend.set_weights(self.initial_weights, source="the trained weights")
        if self.held_weights:
            hold_weights(backend, self.project, self.held_weights)
        probe = GradientProbe()
        self._finished = None
        if self.epochs != 0:  # 0 only evaluates: no run to record
            self.recorder = start_recording(self.project, backend, source="gui")
        history = backend.fit(
            on_event=self.recorder.wrap(self._forward),
            callbacks=[probe],
            should_stop=self.stop_event.is_set,
            epochs=self.epochs,
            progress_interval=self.batch_interval,
        )
        finished = self._finished or Finished(history)  # a backend that reports no end
        result = finished.history.to_dict()
        result.update(summarize(backend, probe.latest))
        result.update(
            steps=finished.steps,
            fit_seconds=finished.seconds,
            samples_per_sec=finished.samples_per_sec,
            weights=backend.get_weights(),
        )
        result.update(self._save(backend))
        test = (result.get("test") or {}).get("metrics")
        self.recorder.done(test, result["weights_file"], finished.history)
        result.update(run_id=self.recorder.run_id, runs_error=self.recorder.error)
        return result

    def _forward(self, event: Event) -> None:
        """Each event of the run as its signal (Failed is raised too: ``run`` reports it)."""
        if isinstance(event, BatchEnd):
            self.steps = event.step
            self.batchEnd.emit(event)
        elif isinstance(event, EpochEnd):
            self.epochEnd.emit(event)
        elif isinstance(event, Prepared):
            self.prepared.emit(event)
        elif isinstance(event, Finished):
            self.steps, self._finished = event.steps, event

    def _save(self, backend: Backend) -> dict[str, Any]:
        if self.save_to is None or self.epochs == 0:
            return {"weights_file": None, "weights_error": None}
        try:
            return {
                "weights_file": str(backend.save_weights(self.save_to)),
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

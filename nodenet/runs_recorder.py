"""Recording a training run in the project's runs database, from the run's typed events.

:class:`Recorder` is a sink for the events of :mod:`nodenet.engine.events`: any backend
(the numpy engine, PyTorch in a child process) is recorded the same way, by what it
reports. Put it in front of the caller's own sink with :meth:`Recorder.wrap`; after
the run, :meth:`Recorder.done` adds the test metrics and keeps the weights file.
:func:`start_recording` opens ``NAME.runs.sqlite`` beside a saved project and starts
the run; a project never saved (no path) is not recorded.

Recording never stops training: a database that cannot be opened or written turns the
recorder off and leaves the reason in :attr:`Recorder.error`.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nodenet.engine.events import (
    EPOCH_SECONDS,
    BatchEnd,
    EpochEnd,
    Event,
    Failed,
    Finished,
    History,
    Prepared,
    Sink,
)
from nodenet.errors import NodenetError
from nodenet.runs_db import RunsDB, runs_path

HEARTBEAT_SECONDS = 15.0  # batch points and the heartbeat are written at least this often
STATUS_OF_STOP = {None: "finished", "early_stopping": "early_stopped"}  # else "stopped"


class Recorder:
    """Records one run's events in ``db`` as run ``run_id``; off when ``db`` is None."""

    def __init__(self, db: RunsDB | None, run_id: int | None, error: str | None = None):
        self.db, self.run_id, self.error = db, run_id, error
        self.path = db.path if db is not None else None
        self.ended = False  # the run's end is recorded (and the database closed until done())
        self._points: list[tuple[int, int, float]] = []
        self._written = time.monotonic()

    @classmethod
    def off(cls, reason: str | None = None) -> Recorder:
        """A recorder that records nothing (``reason``: why, when it is a problem)."""
        return cls(None, None, reason)

    @property
    def on(self) -> bool:
        return self.db is not None

    def wrap(self, sink: Sink | None) -> Sink:
        """A sink recording each event, then handing it to ``sink``."""

        def both(event: Event) -> None:
            self(event)
            if sink is not None:
                sink(event)

        return both

    def __call__(self, event: Event) -> None:
        if self.db is None:
            return
        with self._guard():
            self._record(event)

    def done(
        self,
        test: Mapping[str, float] | None = None,
        weights: str | Path | None = None,
        history: History | None = None,
    ) -> None:
        """After the run: its test metrics and a copy of its weights file (retention
        applied); ``history`` ends a run whose backend reported no end. Closes the
        database."""
        if self.path is None or (self.db is None and not self.ended):
            return  # off, or switched off by a failure
        with self._guard():
            if not self.ended and history is not None:
                self._record(Finished(history))
            if self.db is None:  # the run's end closed it
                self.db = RunsDB(self.path)
            if test is not None:
                self.db.set_test_metrics(self.run_id, test)
            if weights is not None and Path(weights).is_file():
                self.db.keep_weights(self.run_id, weights)
        self.close()

    def abandon(self) -> None:
        """Call in a ``finally`` around the run: when an exception is leaving, a run that
        reported no end is marked ``interrupted`` (KeyboardInterrupt) or ``failed`` (another
        exception) and the database is closed; otherwise nothing happens."""
        error = sys.exc_info()[1]
        if isinstance(error, KeyboardInterrupt | SystemExit):
            self.close("interrupted", "stopped at once (a second Ctrl-C, or told to quit)")
        elif error is not None:
            self.close("failed", f"training stopped on an error ({type(error).__name__}: {error})")

    def close(self, status: str = "failed", message: str | None = None) -> None:
        """Close the database; a run that reported no end is marked ``status``."""
        if self.db is None:
            return
        if not self.ended:
            with self._guard():
                self._flush()
                self.db.finish(
                    self.run_id, status, message=message or "training ended without a result"
                )
                self.ended = True
        with contextlib.suppress(sqlite3.Error):
            if self.db is not None:
                self.db.close()
        self.db = None

    # -- inside ----------------------------------------------------------------------------

    def _record(self, event: Event) -> None:
        db, run_id = self.db, self.run_id
        if isinstance(event, BatchEnd):
            self._points.append((event.step, event.epoch, event.batch_loss))
            if time.monotonic() - self._written >= HEARTBEAT_SECONDS:
                self._flush()
        elif isinstance(event, EpochEnd):
            db.epoch(run_id, event.epoch, epoch_logs(event), self._points)
            self._points, self._written = [], time.monotonic()
        elif isinstance(event, Prepared):
            db.prepared(
                run_id,
                {
                    "train": event.train,
                    "val": event.val,
                    "test": event.test,
                    "epochs": event.epochs,
                    "batches": event.batches,
                    "batch_size": event.batch_size,
                    "params": event.params,
                    "outputs": list(event.outputs),
                },
            )
        elif isinstance(event, Finished):
            self._flush()
            history = event.history
            final = None
            if history.epochs:
                chosen = history.best_epoch if history.restored_best else None
                final = history.epochs[(chosen or len(history.epochs)) - 1]
                final = {k: v for k, v in final.items() if k != EPOCH_SECONDS}
            status = STATUS_OF_STOP.get(history.stopped, "stopped")
            db.finish(run_id, status, final_metrics=final, best_epoch=history.best_epoch)
            self._ended()
        elif isinstance(event, Failed):
            self._flush()
            db.finish(run_id, "failed", message=event.message)
            self._ended()

    def _ended(self) -> None:
        """The end is recorded: close the database now, so that nothing is left open if
        the caller never gets to :meth:`done` (an error saving the weights)."""
        self.ended = True
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        self.db = None

    def _flush(self) -> None:
        if self._points:
            self.db.batches(self.run_id, self._points)
        self._points, self._written = [], time.monotonic()

    @contextlib.contextmanager
    def _guard(self):
        """Turn a database failure into :attr:`error` and switch recording off."""
        try:
            yield
        except (sqlite3.Error, OSError, UnicodeError, NodenetError) as err:
            path = self.db.path if self.db is not None else "the runs database"
            self.error = f"{path}: the run is no longer recorded: {err}"
            with contextlib.suppress(sqlite3.Error):
                if self.db is not None:
                    self.db.close()
            self.db = None


def epoch_logs(event: EpochEnd) -> dict[str, float]:
    """What the runs database keeps of an epoch: its metrics and its duration."""
    return {**event.metrics, EPOCH_SECONDS: event.epoch_seconds}


def start_recording(
    project: Any,
    backend: Any,
    *,
    source: str,
    device: str | None = None,
    name: str = "",
    study: str | None = None,
    trial: int | None = None,
) -> Recorder:
    """Open the runs database beside the saved ``project`` and start a run for the built
    ``backend``; :meth:`Recorder.off` for a project without a path, or (with the reason
    in ``error``) when the database cannot be used."""
    if getattr(project, "path", None) is None:
        return Recorder.off()
    from nodenet import __version__

    path = runs_path(project.path)
    db = None
    try:
        db = RunsDB(path)
        training = getattr(backend, "training", None) or {}
        run_id = db.start_run(
            name=name,
            source=source,
            backend=getattr(backend, "name", None),
            device=device or getattr(backend, "device", None) or "cpu",
            machine=machine(),
            nodenet_version=__version__,
            project=project.to_dict(),
            project_file=str(Path(project.path).resolve()),
            seed=training.get("seed"),
            study=study,
            trial=trial,
        )
    except (sqlite3.Error, OSError, UnicodeError, NodenetError) as err:
        if db is not None:
            db.close()
        message = str(err) if str(path) in str(err) else f"{path}: {err}"
        return Recorder.off(f"the run is not recorded: {message}")
    return Recorder(db, run_id)


def machine() -> dict[str, Any]:
    """The machine a run ran on: platform, CPU model, cores, Python and numpy versions."""
    import numpy

    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` else)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()

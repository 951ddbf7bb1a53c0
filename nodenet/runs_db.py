"""Every training run of a project, kept in one SQLite file beside it: ``NAME.runs.sqlite``.

:class:`RunsDB` is the file's API: start a run, add its epochs and a thinned per-batch
loss, finish it, list / get / rename / annotate / delete runs, and keep each run's
weights in ``NAME.runs/<id>.weights.npz`` under a retention setting (the last 20 runs'
weights plus the best by validation loss). :mod:`nodenet.runs_recorder` turns a
backend's typed events into these calls; :mod:`nodenet.runs_schema` holds the schema.

Each call is its own transaction (committed at once, WAL mode), so a run survives a crash
of the process up to its last finished epoch; a run left ``running`` by a process that is
gone is shown as ``interrupted`` the next time the file is opened or listed.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nodenet.atomic import atomic_write
from nodenet.errors import NodenetError, SaveError
from nodenet.runs_query import conditions, value_of
from nodenet.runs_schema import STATUSES, RunsDBError, connect, recorded

__all__ = ["MAX_BATCH_POINTS", "RunsDB", "RunsDBError", "recorded", "runs_path", "weights_folder"]

MAX_BATCH_POINTS = 2000  # per run; past it every other stored point goes (the stride doubles)
KEEP_WEIGHTS = 20  # default retention: the last runs whose weights are kept (plus the best)
STALE_SECONDS = 3600.0  # a run whose process cannot be checked and has no heartbeat this long
JSON_COLUMNS = ("machine", "project", "prepared", "final_metrics", "test_metrics")


def runs_path(project_file: str | Path) -> Path:
    """The runs database of the project file ``NAME.json``: ``NAME.runs.sqlite`` beside it."""
    path = Path(project_file)
    return path.with_name(path.stem + ".runs.sqlite")


def weights_folder(db_path: str | Path) -> Path:
    """Where runs keep their weights: ``NAME.runs/`` beside ``NAME.runs.sqlite``."""
    path = Path(db_path)
    return path.with_name(path.name.removesuffix(".sqlite"))


class RunsDB:
    """One project's runs database (see the module); a context manager that closes it.

    Opening refuses a damaged file, another program's database or a newer schema with
    :class:`RunsDBError` and never writes to it; ``create=False`` refuses a missing file.
    """

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        self.conn = connect(self.path, create=create)
        self.conn.row_factory = sqlite3.Row
        self._batch_state: dict[int, list[int]] = {}  # run id -> [next seq, stride]
        self.settle()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RunsDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing a run ---------------------------------------------------------------------

    def start_run(
        self,
        *,
        name: str = "",
        source: str = "api",
        backend: str | None = None,
        device: str | None = None,
        machine: Mapping[str, Any] | None = None,
        nodenet_version: str | None = None,
        project: Mapping[str, Any] | None = None,
        project_file: str | None = None,
        seed: int | None = None,
        study: str | None = None,
        trial: int | None = None,
        pid: int | None = None,
    ) -> int:
        """Record a new run as ``running`` (by this process unless ``pid``); its id."""
        now = time.time()
        pid = os.getpid() if pid is None else pid
        values = {
            "name": name,
            "status": "running",
            "started": now,
            "heartbeat": now,
            "source": source,
            "pid": pid,
            "host": socket.gethostname(),
            "pid_started": process_token(pid),
            "backend": backend,
            "device": device,
            "machine": _dumps(machine),
            "nodenet_version": nodenet_version,
            "project": _dumps(project),
            "project_file": project_file,
            "seed": seed,
            "study": study,
            "trial": trial,
        }
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._write() as conn:
            cursor = conn.execute(
                f"INSERT INTO runs ({columns}) VALUES ({marks})", tuple(values.values())
            )
            run_id = int(cursor.lastrowid)
        self._batch_state[run_id] = [0, 1]
        return run_id

    def prepared(self, run_id: int, info: Mapping[str, Any]) -> None:
        """The sample counts, batches and parameters the run starts with."""
        with self._write() as conn:
            conn.execute("UPDATE runs SET prepared = ? WHERE id = ?", (_dumps(info), run_id))

    def epoch(
        self,
        run_id: int,
        epoch: int,
        metrics: Mapping[str, float],
        batches: Iterable[tuple[int, int, float]] = (),
    ) -> None:
        """A finished epoch's metrics (and the batch points ``(step, epoch, loss)`` reported
        since the last write), committed together with a heartbeat."""
        with self._write() as conn:
            self._add_batches(conn, run_id, batches)
            conn.execute(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, metrics) VALUES (?, ?, ?)",
                (run_id, int(epoch), _dumps(metrics)),
            )
            conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run_id))

    def batch(self, run_id: int, step: int, loss: float, epoch: int = 0) -> None:
        """One batch's loss, thinned: at most :data:`MAX_BATCH_POINTS` points stay per run."""
        self.batches(run_id, [(step, epoch, loss)])

    def batches(self, run_id: int, points: Iterable[tuple[int, int, float]]) -> None:
        """Batch points ``(step, epoch, loss)`` in one transaction, with a heartbeat."""
        with self._write() as conn:
            self._add_batches(conn, run_id, points)
            conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run_id))

    def finish(
        self,
        run_id: int,
        status: str,
        *,
        message: str | None = None,
        final_metrics: Mapping[str, float] | None = None,
        best_epoch: int | None = None,
    ) -> None:
        """How the run ended (one of :data:`STATUSES` but ``running``), when, and its figures."""
        if status not in STATUSES or status == "running":
            raise ValueError(f"not a final status: {status!r}")
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, message = ?, ended = ?, duration = ? - started, "
                "heartbeat = ?, final_metrics = COALESCE(?, final_metrics), best_epoch = ? "
                "WHERE id = ?",
                (status, message, now, now, now, _dumps(final_metrics), best_epoch, run_id),
            )

    def set_test_metrics(self, run_id: int, metrics: Mapping[str, float] | None) -> None:
        with self._write() as conn:
            conn.execute("UPDATE runs SET test_metrics = ? WHERE id = ?", (_dumps(metrics), run_id))

    def keep_weights(self, run_id: int, weights_file: str | Path) -> Path:
        """Copy the run's weights file to ``NAME.runs/<id>.weights.npz`` (atomically), record
        it, then apply the retention setting. Returns the copy's path."""
        folder = weights_folder(self.path)
        target = folder / f"{run_id}.weights.npz"
        try:
            folder.mkdir(exist_ok=True)
            atomic_write(target, Path(weights_file).read_bytes())
        except OSError as err:
            raise SaveError(f"{target}: cannot be saved: {err.strerror or err}") from None
        relative = f"{folder.name}/{target.name}"
        with self._write() as conn:
            conn.execute("UPDATE runs SET weights = ? WHERE id = ?", (relative, run_id))
        self.apply_retention()
        return target

    # -- retention -------------------------------------------------------------------------

    @property
    def keep(self) -> int:
        """How many of the latest runs keep their weights (the best one always does)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'keep_weights'").fetchone()
        return int(row[0]) if row else KEEP_WEIGHTS

    def set_keep(self, count: int) -> None:
        """Set the retention (how many of the latest runs keep weights) and apply it."""
        if count < 0:
            raise NodenetError(f"the number of runs keeping weights must be 0 or more, not {count}")
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('keep_weights', ?)", (str(count),)
            )
        self.apply_retention()

    def best_run(self) -> int | None:
        """The run with weights and the lowest final ``val_loss`` (``loss`` when no run has
        a validation split), or None."""
        rows = self.conn.execute(
            "SELECT id, final_metrics FROM runs WHERE weights IS NOT NULL ORDER BY id"
        ).fetchall()
        scored = [(run_id, _loads(metrics) or {}) for run_id, metrics in rows]
        key = "val_loss" if any("val_loss" in m for _, m in scored) else "loss"
        ranked = [(_number(m.get(key)), run_id) for run_id, m in scored]
        ranked = [(v, run_id) for v, run_id in ranked if v is not None]
        return min(ranked)[1] if ranked else None

    def apply_retention(self) -> list[int]:
        """Delete the weights files of runs past the retention setting (their rows stay);
        the ids whose weights went."""
        rows = self.conn.execute(
            "SELECT id, weights FROM runs WHERE weights IS NOT NULL ORDER BY id DESC"
        ).fetchall()
        best, keep = self.best_run(), self.keep
        dropped = [(i, w) for n, (i, w) in enumerate(rows) if n >= keep and i != best]
        for run_id, relative in dropped:
            with contextlib.suppress(FileNotFoundError):
                (self.path.parent / relative).unlink()
            with self._write() as conn:
                conn.execute("UPDATE runs SET weights = NULL WHERE id = ?", (run_id,))
        return [i for i, _ in dropped]

    # -- reading and editing ---------------------------------------------------------------

    def list(
        self, sort_by: str = "id", filter: str | None = None, descending: bool = False
    ) -> list[dict[str, Any]]:
        """Every run (without epochs), filtered then sorted.

        ``sort_by``: a column (``id``, ``name``, ``started``, ``duration``, ``status``) or a
        metric: ``val_accuracy`` (final metrics) or ``test_accuracy`` (test metrics);
        runs without it come last. ``filter``: comma-separated conditions, each
        ``KEY=VALUE``, ``KEY~TEXT`` (contains) or ``KEY<N`` / ``KEY>N`` (with ``<=``,
        ``>=``), ``KEY`` a column or a metric as for ``sort_by``.
        """
        self.settle()
        rows = [_row(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY id")]
        for condition in conditions(filter):
            rows = [r for r in rows if condition(r)]
        present = [r for r in rows if value_of(r, sort_by) is not None]
        missing = [r for r in rows if value_of(r, sort_by) is None]
        present.sort(key=lambda r: value_of(r, sort_by), reverse=descending)
        return present + missing

    def get(self, run_id: int) -> dict[str, Any]:
        """One run with its ``epochs`` (a list of metric dicts, epoch 1 first) and
        ``batches`` (``[step, epoch, loss]`` points); :class:`NodenetError` when unknown."""
        self.settle()
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NodenetError(f"{self.path}: no run {run_id}")
        run = _row(row)
        run["epochs"] = [
            {"epoch": e, **(_loads(m) or {})}
            for e, m in self.conn.execute(
                "SELECT epoch, metrics FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,)
            )
        ]
        run["batches"] = [
            list(p)
            for p in self.conn.execute(
                "SELECT step, epoch, loss FROM batches WHERE run_id = ? ORDER BY seq", (run_id,)
            )
        ]
        return run

    def rename(self, run_id: int, name: str) -> None:
        self._edit(run_id, "UPDATE runs SET name = ? WHERE id = ?", name)

    def annotate(self, run_id: int, note: str) -> None:
        self._edit(run_id, "UPDATE runs SET note = ? WHERE id = ?", note)

    def delete(self, run_id: int) -> None:
        """Remove a run, its epochs, batch points and weights file."""
        run = self.get(run_id)
        with self._write() as conn:
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        if run["weights"]:
            with contextlib.suppress(FileNotFoundError):
                (self.path.parent / run["weights"]).unlink()

    def weights_file(self, run: Mapping[str, Any]) -> Path | None:
        """The run's kept weights file, or None (never kept, or gone with retention)."""
        return self.path.parent / run["weights"] if run.get("weights") else None

    def settle(self) -> list[int]:
        """Mark runs whose process is gone ``interrupted`` (ended at their last heartbeat);
        the ids marked."""
        rows = self.conn.execute(
            "SELECT id, pid, host, pid_started, heartbeat, started FROM runs "
            "WHERE status = 'running'"
        ).fetchall()
        gone = [tuple(r) for r in rows if _process_gone(*tuple(r)[1:])]
        for run_id, pid, host, _token, heartbeat, started in gone:
            ended = heartbeat or started
            message = (
                f"the process that ran it (pid {pid} on {host}) ended without finishing it; "
                "its epochs up to the last finished one are kept"
            )
            with self._write() as conn:
                conn.execute(
                    "UPDATE runs SET status = 'interrupted', message = ?, ended = ?, "
                    "duration = ? - started WHERE id = ? AND status = 'running'",
                    (message, ended, ended, run_id),
                )
        return [r[0] for r in gone]

    # -- inside ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self):
        """One write transaction (``BEGIN IMMEDIATE``: waits for other writers up to the
        busy timeout), committed on leaving."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _edit(self, run_id: int, sql: str, text: str) -> None:
        text = str(text)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise NodenetError(f"{text!r} holds characters that are not text (not UTF-8)") from None
        with self._write() as conn:
            if conn.execute(sql, (str(text), run_id)).rowcount == 0:
                raise NodenetError(f"{self.path}: no run {run_id}")

    def _add_batches(self, conn, run_id: int, points: Iterable[tuple[int, int, float]]) -> None:
        """Keep every ``stride``-th point (by arrival); when a run holds
        :data:`MAX_BATCH_POINTS`, the stride doubles and every other kept point goes."""
        state = self._batch_state.get(run_id)
        if state is None:
            state = self._batch_state[run_id] = _resume_batches(conn, run_id)
        for step, epoch, loss in points:
            seq, stride = state
            state[0] = seq + 1
            if seq % stride:
                continue
            conn.execute(
                "INSERT OR REPLACE INTO batches (run_id, seq, step, epoch, loss) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, seq, int(step), int(epoch), _number(loss)),
            )
            count = conn.execute(
                "SELECT COUNT(*) FROM batches WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            if count >= MAX_BATCH_POINTS:
                state[1] = stride * 2
                conn.execute(
                    "DELETE FROM batches WHERE run_id = ? AND seq % ? != 0", (run_id, state[1])
                )


def _resume_batches(conn, run_id: int) -> list[int]:
    """The thinning state ``[next seq, stride]`` of a run another connection wrote before:
    the stride is the smallest power of two dividing every kept seq."""
    last, count = conn.execute(
        "SELECT MAX(seq), COUNT(*) FROM batches WHERE run_id = ?", (run_id,)
    ).fetchone()
    if last is None:
        return [0, 1]
    stride = 1
    while (
        stride < 2**30
        and conn.execute(
            "SELECT COUNT(*) FROM batches WHERE run_id = ? AND seq % ? != 0",
            (run_id, stride * 2),
        ).fetchone()[0]
        == 0
        and count > 1
    ):
        stride *= 2
    return [last + 1, stride]


def _row(row: sqlite3.Row) -> dict[str, Any]:
    run = dict(row)
    for key in JSON_COLUMNS:
        run[key] = _loads(run.get(key))
    return run


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(_finite(value), allow_nan=False)  # ASCII: any text binds


def _finite(value: Any) -> Any:
    """Plain JSON data: non-finite floats (a diverged loss) become None, numpy scalars
    Python numbers, tuples lists."""
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _number(value)
    return str(value)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# -- is the process of a running run still there? -------------------------------------------


def process_token(pid: int) -> str | None:
    """What tells process ``pid`` from a later one with the same pid: its start time in
    clock ticks since boot (Linux ``/proc``), or None where that is not readable."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return None
    return text.rpartition(")")[2].split()


def _process_gone(pid, host, token, heartbeat, started) -> bool:
    """Whether the process that ran a ``running`` run is gone: checked by pid (and its start
    token) on this machine; elsewhere, or where pids cannot be checked, by a heartbeat older
    than :data:`STALE_SECONDS`."""
    if pid is not None and host == socket.gethostname() and os.name == "posix":
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # alive, another user's
        fields = _proc_stat(int(pid))
        if fields is not None:
            zombie = fields[0] in ("Z", "X")
            reused = token is not None and len(fields) > 19 and fields[19] != token
            return zombie or reused
        return False
    return time.time() - float(heartbeat or started) > STALE_SECONDS

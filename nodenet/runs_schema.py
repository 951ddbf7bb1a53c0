"""The runs database's schema, its version and migrations, and the checks made on opening.

A project's runs live in one SQLite file beside it, ``NAME.runs.sqlite``
(:mod:`nodenet.runs_db` reads and writes it). This module only knows the file:
:func:`connect` opens it (WAL mode, a busy timeout), refuses a file that is no
SQLite database, fails ``PRAGMA quick_check``, belongs to another program or has a
newer schema than this nodenet knows (:class:`RunsDBError`, the file untouched), and
creates or migrates the schema in one transaction. docs/runs.md describes the tables.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from nodenet.errors import NodenetError

SCHEMA_VERSION = 1
APPLICATION_ID = 0x4E4E5255  # "NNRU": PRAGMA application_id marks the file as nodenet's
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's transaction
SQLITE_MAGIC = b"SQLite format 3\x00"
STATUSES = ("running", "finished", "stopped", "early_stopped", "failed", "interrupted")

_STATUS_CHECK = ", ".join(f"'{s}'" for s in STATUSES)

# Version 1: every table. A later version appends its statements to MIGRATIONS under the
# version it migrates from; :func:`connect` runs them in order in one transaction.
SCHEMA = [
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    f"""CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ({_STATUS_CHECK})),
        message TEXT,
        started REAL NOT NULL,
        ended REAL,
        duration REAL,
        heartbeat REAL,
        source TEXT,
        pid INTEGER,
        host TEXT,
        pid_started TEXT,
        backend TEXT,
        device TEXT,
        machine TEXT,
        nodenet_version TEXT,
        project TEXT,
        project_file TEXT,
        seed INTEGER,
        prepared TEXT,
        final_metrics TEXT,
        test_metrics TEXT,
        best_epoch INTEGER,
        weights TEXT,
        study TEXT,
        trial INTEGER
    )""",
    """CREATE TABLE epochs (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        metrics TEXT NOT NULL,
        PRIMARY KEY (run_id, epoch)
    )""",
    """CREATE TABLE batches (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        step INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        loss REAL,
        PRIMARY KEY (run_id, seq)
    )""",
    "CREATE INDEX runs_status ON runs(status)",
    "CREATE INDEX runs_study ON runs(study, trial)",
]
MIGRATIONS: dict[int, list[str]] = {}  # from version -> statements to the next version

# Optuna's tables (a sweep's study lives in the same file): a file holding only these gets
# the runs tables added, as if it were empty
OPTUNA_TABLES = frozenset(
    """alembic_version studies study_directions study_user_attributes study_system_attributes
    trials trial_user_attributes trial_system_attributes trial_params trial_values
    trial_intermediate_values trial_heartbeats version_info""".split()
)


class RunsDBError(NodenetError):
    """A runs database cannot be used: not a database, damaged, another program's, or
    written by a newer nodenet. The file is left exactly as it was."""


def recorded(db_path: str | Path) -> bool:
    """Whether the runs database ``db_path`` has been started. An empty file is not: it is
    the moment between another process creating the file and writing its first page, and a
    reader then sees no runs yet rather than an error."""
    try:
        return Path(db_path).stat().st_size > 0
    except FileNotFoundError:
        return False


def connect(path: str | Path, *, create: bool = True) -> sqlite3.Connection:
    """An open connection to the runs database ``path``, its schema current.

    Refuses (:class:`RunsDBError`, one sentence naming the file) anything it must not
    write to; creates the file when missing and ``create``.
    """
    path = Path(path)
    fresh = not recorded(path)
    if fresh and not create:
        raise RunsDBError(f"{path}: no runs database (no run of this project was recorded)")
    if not fresh:
        _check_header(path)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    except sqlite3.Error as err:
        raise RunsDBError(f"{path}: cannot be opened as a runs database: {err}") from None
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        if not fresh:
            _check_intact(conn, path)
        _ensure_schema(conn, path)
        _retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a commit survives a crash of the app
    except sqlite3.DatabaseError as err:
        conn.close()
        raise RunsDBError(f"{path}: not a usable runs database: {err}") from None
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int | None:
    """The version stored in the ``meta`` table, or None when there is none."""
    with contextlib.suppress(sqlite3.OperationalError):
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None:
            return int(row[0])
    return None


def _check_header(path: Path) -> None:
    """An SQLite file starts with its magic string: refuse anything else before SQLite
    sees it (SQLite would otherwise make a fresh database of an empty or odd file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as err:
        raise RunsDBError(f"{path}: cannot be read: {err.strerror or err}") from None
    if head != SQLITE_MAGIC:
        raise RunsDBError(
            f"{path}: not an SQLite database (damaged or another file); "
            "nodenet leaves it as it is: move it away to record runs again"
        )


def _check_intact(conn: sqlite3.Connection, path: Path) -> None:
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as err:
        raise RunsDBError(
            f"{path}: the runs database is damaged ({err}); nodenet leaves it "
            "as it is: move it away to record runs again"
        ) from None
    if [r[0] for r in rows] != ["ok"]:
        first = rows[0][0] if rows else "no answer"
        raise RunsDBError(
            f"{path}: the runs database is damaged (quick_check: {first}); nodenet leaves it "
            "as it is: move it away to record runs again"
        )


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables in an empty file, migrate an older schema, refuse a newer one or a
    database of another program; all inside one write transaction, so that two processes
    opening a new file at once create it once."""
    version = _readable_version(conn, path)
    if version == SCHEMA_VERSION:
        return
    _retry(lambda: conn.execute("BEGIN IMMEDIATE"))
    try:
        version = _readable_version(conn, path)  # another process may have created it
        if version is None:
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?), "
                "('keep_weights', '20'), ('created', ?)",
                (str(SCHEMA_VERSION), str(time.time())),
            )
        else:
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _readable_version(conn: sqlite3.Connection, path: Path) -> int | None:
    """The schema version, None for an empty database; refusals for the others."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables <= OPTUNA_TABLES | {"sqlite_sequence"}:
        return None
    version = schema_version(conn)
    if "meta" not in tables or version is None:
        raise RunsDBError(
            f"{path}: an SQLite database that is not nodenet's runs database; "
            "nodenet leaves it as it is"
        )
    if version > SCHEMA_VERSION:
        raise RunsDBError(
            f"{path}: written by a newer nodenet (runs schema version {version}; this one "
            f"knows up to {SCHEMA_VERSION}); upgrade nodenet to read it. The file is left as it is"
        )
    if version < 1 or (version < SCHEMA_VERSION and version not in MIGRATIONS):
        raise RunsDBError(f"{path}: unknown runs schema version {version}")
    return version


def _retry(action, attempts: int = 20):
    """Run ``action``, retrying while another process holds a lock SQLite's busy handler
    does not wait for (changing the journal mode, a transaction started at once)."""
    for attempt in range(attempts):
        try:
            return action()
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    return None

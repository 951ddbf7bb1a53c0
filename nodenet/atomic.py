"""Atomic file writes: a temporary file beside the target, fsynced, renamed over it.

Every file nodenet writes (projects, weights, histories, exports, autosaves)
goes through :func:`atomic_write` or :func:`atomic_stream`, so a crash, a kill
or a full disk never leaves a half-written file: the previous one stays.
Standard library only, so the document can save without loading numpy.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import stat
import tempfile
import time
from pathlib import Path

from nodenet.errors import NodenetError, SaveError

STALE_TEMP_SECONDS = 60  # a temporary file this old was left by a killed write


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    A crash or a full disk never leaves a half-written file: the old one stays,
    and the temporary file is removed. The new file gets the permissions
    ``open()`` would give it. Raises :class:`OSError`; :func:`write_file` turns
    that into a nodenet error naming the file.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    remove_stale_temps(path)  # what a write killed before its rename left behind
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            # mkstemp creates 0600 files; give the result the permissions open() would
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


@functools.cache
def write_into_new_folder(path: str | os.PathLike, data: bytes | str) -> None:
    """Write a file inside a folder that is itself being built in a temporary place and
    renamed into place when complete (the folder is the atomic unit: a crash leaves only the
    temporary folder, which the next attempt removes). No fsync per file: thousands of them
    are written this way (a generated sample dataset)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _umask() -> int:
    """The process umask (read once: reading it means setting it, which is not thread-safe)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable where the platform allows it (POSIX folders open read-only)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_file(
    path: str | os.PathLike, data: bytes | str, error: type[NodenetError] = SaveError
) -> Path:
    """:func:`atomic_write`, raising ``error`` with one sentence naming the file on failure.

    A missing folder, no permission or a full disk leave any previous file intact.
    """
    try:
        atomic_write(path, data)
    except UnicodeEncodeError as err:
        raise error(f"{path}: cannot be saved: text holds {err.object[err.start]!r}") from None
    except OSError as err:
        raise error(_cannot_save(Path(path), err)) from None
    return Path(path)


def remove_stale_temps(path: str | os.PathLike, age: float = STALE_TEMP_SECONDS) -> None:
    """Remove ``.NAME.*.tmp`` files beside ``path`` older than ``age`` seconds.

    An atomic write (:func:`atomic_write`, :func:`atomic_stream`)
    writes ``.NAME.<random>.tmp`` then renames it; a process killed in between
    leaves it behind. The next write to the same target removes it; a younger
    one may belong to a write still running and is left alone.
    """
    path = Path(path)
    now = time.time()
    with contextlib.suppress(OSError):
        for candidate in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                info = candidate.lstat()
                if stat.S_ISREG(info.st_mode) and now - info.st_mtime > age:
                    candidate.unlink()


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


@contextlib.contextmanager
def atomic_stream(path: str | os.PathLike, error: type[NodenetError] = SaveError):
    """A binary file to write ``path`` through: a temporary file renamed over ``path``.

    Like :func:`atomic_write`, for data too large to hold in
    memory: a failure (or an exception in the ``with`` body) leaves any previous
    file intact and removes the temporary file; an :class:`OSError` becomes
    ``error`` naming the file.
    """
    path = Path(path)
    remove_stale_temps(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise error(_cannot_save(path, err)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise error(_cannot_save(path, err)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _cannot_save(path: Path, err: OSError) -> str:
    reason = err.strerror or str(err) or type(err).__name__
    return f"{path}: cannot be saved: {reason} (any previous file is left intact)"

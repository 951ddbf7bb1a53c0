"""Autosave and crash recovery: unsaved work is never more than a minute from disk.

Every :func:`autosave_seconds` (60 by default) a window whose document has
unsaved changes writes them, atomically, to its own *recovery file* in
:func:`recovery_dir`. The file records the project and the file it belongs to
(none for an untitled project). It is removed when the document becomes clean
again (saved, or undone back to the saved state, or replaced by another
project) and when the window closes normally (after Save or Discard).

A window holds a :class:`QLockFile` beside its recovery file while it lives, so
a recovery file whose lock is free (or stale: its process is gone) was left by
a crash. When a window starts, :class:`RecoveryOffer` finds those files and
shows a bar above the canvas: **Recover** opens the unsaved work (dirty, with
its original file, so Save writes back there), **Discard** deletes it. Several
are offered one after the other, newest first.

Recovery files live in ``NODENET_RECOVERY_DIR`` when set (tests), else in the
user's data directory (``~/.local/share/nodenet/recovery`` on Linux).
``NODENET_AUTOSAVE_SECONDS`` or the ``autosave/seconds`` setting changes the
interval; 0 turns autosave off.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QLockFile, QObject, QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QLabel,
    QPushButton,
    QSizePolicy,
    QStyle,
    QWidget,
)

from nodenet.atomic import atomic_write
from nodenet.errors import NodenetError, ProjectFileError
from nodenet.graph.project import Project, parse_json
from nodenet.ui.notice import WindowBar

if TYPE_CHECKING:
    from nodenet.ui.document import Document
    from nodenet.ui.main_window import MainWindow

FORMAT = "nodenet-recovery"
VERSION = 1
DEFAULT_SECONDS = 60.0
FOLDER_ENV = "NODENET_RECOVERY_DIR"
SECONDS_ENV = "NODENET_AUTOSAVE_SECONDS"
SECONDS_KEY = "autosave/seconds"
MAX_RECOVERY_BYTES = 64 * 1024 * 1024


def recovery_dir() -> Path:
    """Where recovery files live: ``$NODENET_RECOVERY_DIR``, else the user's data folder."""
    override = os.environ.get(FOLDER_ENV)
    if override:
        return Path(override)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return Path(base or Path.home()) / "nodenet" / "recovery"


def autosave_seconds(settings: QSettings | None = None) -> float:
    """The autosave interval: ``$NODENET_AUTOSAVE_SECONDS``, the setting, or 60 (0: off)."""
    raw: Any = os.environ.get(SECONDS_ENV)
    if raw is None and settings is not None:
        raw = settings.value(SECONDS_KEY)
    try:
        seconds = float(raw) if raw is not None else DEFAULT_SECONDS
    except (TypeError, ValueError):
        return DEFAULT_SECONDS
    return seconds if seconds >= 0 else DEFAULT_SECONDS


# -- recovery files ---------------------------------------------------------------------


def recovery_json(project: dict[str, Any], file: Path | None, saved_at: datetime) -> str:
    """The text of a recovery file: the project (as ``Project.to_dict()``) and the file
    it belongs to."""
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "file": None if file is None else str(Path(file).resolve()),
        "saved_at": saved_at.isoformat(timespec="seconds"),
        "project": project,
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def read_recovery(path: Path) -> tuple[Project, datetime]:
    """The project of a recovery file (``path`` set to its original file) and when it
    was written. Raises :class:`ProjectFileError` naming the file."""
    try:
        if path.stat().st_size > MAX_RECOVERY_BYTES:
            raise ProjectFileError(f"{path}: too large for a recovery file")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ProjectFileError(f"{path}: cannot be read ({err})") from None
    doc = parse_json(text, str(path))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ProjectFileError(f"{path}: not a nodenet recovery file")
    original, stamp = doc.get("file"), doc.get("saved_at")
    if not (original is None or isinstance(original, str)) or not isinstance(stamp, str):
        raise ProjectFileError(f"{path}: the recovery file's header is damaged")
    project = Project.from_dict(doc.get("project"), str(path))
    project.path = Path(original) if original else None
    try:
        saved_at = datetime.fromisoformat(stamp)
    except ValueError:
        saved_at = datetime.fromtimestamp(path.stat().st_mtime)
    return project, saved_at


def _lock_for(path: Path) -> QLockFile:
    lock = QLockFile(str(path.with_suffix(".lock")))
    lock.setStaleLockTime(0)  # stale only when its process is gone, however old it is
    return lock


@dataclass
class Recovery:
    """Unsaved work left by a session that ended without saving (claimed by this one)."""

    file: Path
    project: Project
    saved_at: datetime
    lock: QLockFile

    def discard(self) -> None:
        """Delete the recovery file and give up the claim."""
        with contextlib.suppress(FileNotFoundError):
            self.file.unlink()
        self.release()

    def release(self) -> None:
        """Give up the claim; the file stays for the next start."""
        if self.lock.isLocked():
            self.lock.unlock()


def find_recoveries(folder: Path | None = None) -> list[Recovery]:
    """Recovery files no live session owns, newest first, each claimed (locked) by this
    process so that two windows never offer the same one. Unreadable files are skipped."""
    folder = recovery_dir() if folder is None else folder
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob("*.json"):
        lock = _lock_for(path)
        if not lock.tryLock(0):
            continue  # a running window's file, or another window already offers it
        try:
            project, saved_at = read_recovery(path)
        except (NodenetError, ValueError, RecursionError, OverflowError):
            lock.unlock()  # ProjectFileError, or a bound the reader missed: skip the file
            continue
        found.append(Recovery(path, project, saved_at, lock))
    for lock_path in folder.glob("*.lock"):  # locks a crash left without their file
        if not lock_path.with_suffix(".json").exists():
            lock = _lock_for(lock_path.with_suffix(".json"))
            if lock.tryLock(0):
                lock.unlock()
    return sorted(found, key=lambda r: r.saved_at, reverse=True)


# -- the autosave timer ---------------------------------------------------------------------


class Autosave(QObject):
    """Writes ``document``'s unsaved work to one recovery file every ``seconds``.

    ``file`` is this session's recovery file (unique per window); it exists only
    while the document has unsaved work that the timer (or :meth:`write_now`)
    has written. ``written`` carries the file after each write, ``failed`` a
    message naming the file and the reason when a write fails.
    """

    written = Signal(str)
    failed = Signal(str)

    def __init__(
        self,
        document: Document,
        folder: Path | None = None,
        seconds: float = DEFAULT_SECONDS,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.document = document
        self.folder = recovery_dir() if folder is None else folder
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.file = self.folder / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        self._lock = _lock_for(self.file)
        self._last_state: tuple | None = None
        self._last_error: str | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, round(seconds * 1000)))
        self.timer.timeout.connect(self.tick)
        document.dirtyChanged.connect(self._dirty_changed)
        if seconds > 0:
            self.timer.start()

    def tick(self) -> None:
        """Write the unsaved work if it changed since the last write."""
        if self.document.is_dirty():
            self.write_now()

    def write_now(self) -> bool:
        """Write the document to the recovery file now; False (and ``failed``) on error."""
        project = self.document.project
        state = (project.path, project.to_dict())
        if state == self._last_state and self.file.exists():
            return True
        text = recovery_json(state[1], project.path, datetime.now())
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not self._lock.isLocked() and not self._lock.tryLock(0):
                raise OSError(f"its lock {self.file.with_suffix('.lock').name} is taken")
            atomic_write(self.file, text)
        except OSError as err:
            message = f"Autosave to {self.file} failed: {err.strerror or err}"
            if message != self._last_error:  # say it once, not every minute
                self._last_error = message
                self.failed.emit(message)
            return False
        self._last_state, self._last_error = state, None
        self.written.emit(str(self.file))
        return True

    def remove(self) -> None:
        """Delete the recovery file (the work is saved, discarded or undone)."""
        with contextlib.suppress(OSError):
            self.file.unlink()
        self._last_state = None
        if self._lock.isLocked():
            self._lock.unlock()

    def finish(self) -> None:
        """The window closes normally: stop the timer and remove the file."""
        self.timer.stop()
        self.remove()

    def _dirty_changed(self, dirty: bool) -> None:
        if not dirty:
            self.remove()


# -- the offer to recover ---------------------------------------------------------------------


class RecoveryBar(WindowBar):
    """A bar under the toolbar: what was found, **Recover** and **Discard**."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Recovery", "toolbar_recovery", parent)
        icon = QLabel()
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        icon.setPixmap(
            self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(size)
        )
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.RichText)
        # long names must not widen the window: the label shrinks (its tooltip has it all)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.recover_button = QPushButton("Recover")
        self.recover_button.setToolTip("Open the unsaved work (Save then writes it to its file)")
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("Delete the unsaved work for good")
        self.row.addWidget(icon)
        self.row.addWidget(self.label, 1)
        self.row.addWidget(self.recover_button)
        self.row.addWidget(self.discard_button)

    def show_recovery(self, recovery: Recovery, more: int) -> None:
        project = recovery.project
        path = project.path
        where = f"{Path(path).name}, " if path is not None else "never saved, "
        others = f" — {more} more after this one" if more else ""
        self.label.setText(
            f"<b>Unsaved work found:</b> {html.escape(project.name)} ({html.escape(where)}"
            f"autosaved {_when(recovery.saved_at)}) was not saved before nodenet closed."
            f"{others}"
        )
        full = str(path) if path is not None else "an untitled project"
        self.label.setToolTip(f"{project.name}: {full}")
        self.show()


def _when(moment: datetime) -> str:
    if moment.date() == datetime.now().date():
        return f"at {moment:%H:%M}"
    return f"on {moment:%Y-%m-%d} at {moment:%H:%M}"


class RecoveryOffer(QObject):
    """Offers the recovery files found at start, one at a time, in ``window``'s bar."""

    def __init__(self, window: MainWindow, autosave: Autosave, recoveries: list[Recovery]):
        super().__init__(window)
        self.window = window
        self.autosave = autosave
        self.pending = list(recoveries)
        self.bar = RecoveryBar(window)
        window.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.bar)
        self.bar.recover_button.clicked.connect(self.recover)
        self.bar.discard_button.clicked.connect(self.discard)
        self._show_next()

    def recover(self) -> bool:
        """Open the first pending work, dirty; its recovery file then becomes this window's."""
        if not self.pending or not self.window.maybe_save():
            return False
        recovery = self.pending.pop(0)
        document = self.window.document
        try:
            document.replace_project(recovery.project)
        except NodenetError as err:  # its analysis fails: the open project stays
            recovery.release()
            self.window.show_message(f"Cannot recover {recovery.file.name}: {err}"[:300])
            self._show_next()
            return False
        document.undo_stack.resetClean()  # unsaved: the title has its star, Save is due
        if self.autosave.write_now():  # safe in this session's file before the old one goes
            recovery.discard()
        else:
            recovery.release()
        self.window.show_message(f"Recovered the unsaved work of {recovery.project.name}")
        self._show_next()
        return True

    def discard(self) -> None:
        """Delete the first pending work."""
        if self.pending:
            recovery = self.pending.pop(0)
            recovery.discard()
            self.window.show_message(f"Discarded the unsaved work of {recovery.project.name}")
        self._show_next()

    def release(self) -> None:
        """Leave what was not answered for the next start."""
        for recovery in self.pending:
            recovery.release()
        self.pending.clear()
        self.bar.hide()

    def _show_next(self) -> None:
        if self.pending:
            self.bar.show_recovery(self.pending[0], len(self.pending) - 1)
        else:
            self.bar.hide()


class WorkGuard(QObject):
    """A window's autosave and its offer to recover what a crash left (see the module)."""

    def __init__(self, window: MainWindow):
        super().__init__(window)
        folder = recovery_dir()
        self.autosave = Autosave(window.document, folder, autosave_seconds(window.settings), self)
        self.autosave.failed.connect(window.show_message)
        self.offer = RecoveryOffer(window, self.autosave, find_recoveries(folder))

    def finish(self) -> None:
        """The window closes normally (saved or discarded): nothing is left to recover."""
        self.autosave.finish()
        self.offer.release()


def install(window: MainWindow) -> WorkGuard:
    """Give ``window`` autosave and crash recovery; call ``finish()`` when it closes."""
    return WorkGuard(window)


def save_error_text(path: str | os.PathLike, err: Exception) -> str:
    """The message of a failed save: the file, the reason, and that nothing was lost."""
    text = getattr(err, "strerror", None) or str(err)  # ProjectFileError: "PATH: cannot ..."
    reason = text.split("cannot be saved: ", 1)[-1].split(" (any previous file", 1)[0]
    return (
        f"{Path(path).name} could not be saved: {reason}.\n\n"
        f"The file on disk ({path}) is unchanged and your changes are still open: "
        "fix the cause and save again, or use Save As… to save them elsewhere."
    )

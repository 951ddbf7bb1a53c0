"""Driving one PyTorch process from nodenet: start it, read its lines, stop it, end it.

The process runs in its own session (a terminal's Ctrl-C reaches nodenet, which stops
it cleanly, not the process itself), so ending it ends its whole group: ``torchrun`` and
every worker. Its stdout is read line by line in a thread and decoded
(:mod:`nodenet.torch_backend.wire`); the last lines of its stderr are kept to explain a
crash. A stop request creates the job's ``stop`` file, which the process polls before
every batch; a process that has not ended ``stop_timeout`` seconds later is killed.
"""

from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodenet.torch_backend import handover, wire

_EOF = object()
STDERR_LINES = 6  # of a failed process's stderr, in its message


def child_command(
    folder: Path,
    nproc: int = 1,
    nnodes: str | None = None,
    rdzv_endpoint: str | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The command line of the process: the child module itself, or under
    ``torch.distributed.run`` (torchrun) with ``nproc`` processes per machine."""
    child = ["-m", "nodenet.torch_backend.child", str(folder)]
    if nproc <= 1 and nnodes is None:
        return [python, *child]
    launch = [python, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes is None:
        launch.append("--standalone")
    else:
        launch += [f"--nnodes={nnodes}", "--rdzv-backend=c10d"]
        if rdzv_endpoint:
            launch.append(f"--rdzv-endpoint={rdzv_endpoint}")
    return [*launch, *child]


def child_env() -> dict[str, str]:
    """The environment: this one, with nodenet importable in the child."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ChildProcess:
    """One running process; :meth:`drive` hands each decoded line to a callable."""

    def __init__(self, command: list[str], folder: Path):
        self.folder = folder
        (folder / handover.STOP).unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=folder,
            env=child_env(),
            start_new_session=True,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.lines: queue.Queue = queue.Queue()
        self.stderr: collections.deque[str] = collections.deque(maxlen=200)
        self.killed_after_stop: float | None = None  # the seconds it was given to stop
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True, name="nodenet-torch-out"),
            threading.Thread(target=self._read_stderr, daemon=True, name="nodenet-torch-err"),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(_EOF)

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def request_stop(self) -> None:
        (self.folder / handover.STOP).touch()

    def kill(self) -> None:
        """End the process and everything it started (its session's group)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()

    def drive(
        self,
        handle: Callable[[Any], None],
        should_stop: Callable[[], bool] | None = None,
        stop_timeout: float = 10.0,
        poll: float = 0.05,
    ) -> int:
        """Hand every event or record to ``handle`` until the process ends; its exit code.

        ``should_stop`` is polled between lines (at least every ``poll`` seconds). If
        ``handle`` raises, the process is killed and the error goes on.
        """
        stop_at: float | None = None
        try:
            while True:
                if stop_at is None and should_stop is not None and should_stop():
                    self.request_stop()
                    stop_at = time.monotonic()
                if stop_at is not None and time.monotonic() - stop_at > stop_timeout:
                    if self.proc.poll() is None:
                        self.killed_after_stop = stop_timeout
                        self.kill()
                    stop_at = float("inf")
                try:
                    line = self.lines.get(timeout=poll)
                except queue.Empty:
                    continue
                if line is _EOF:
                    break
                item = wire.decode(line)
                if item is not None:
                    handle(item)
        except BaseException:
            self.kill()
            raise
        finally:
            code = self.proc.wait()
            for reader in self._readers:
                reader.join(timeout=5)
        return code

    def failure(self, code: int) -> str:
        """Why the process ended without finishing: how it ended and its last stderr lines."""
        if self.killed_after_stop is not None:
            how = (
                f"did not stop within {self.killed_after_stop:g} s of the stop request and "
                "was ended"
            )
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            how = f"was ended by {name}"
        else:
            how = f"ended with exit code {code}"
        lines = [line for line in self.stderr if line.strip()][-STDERR_LINES:]
        tail = f"; its last messages: {' | '.join(lines)}" if lines else ""
        return f"the PyTorch process (pid {self.pid}) {how} before finishing{tail}"

"""A disk cache of decoded samples, so epochs after the first read no image decoder.

One ``.npy`` file per folder dataset and decoding setting, holding ``(files,
*sample_shape)`` float32 samples, in the user's cache folder
(``$NODENET_CACHE_DIR``, else ``$XDG_CACHE_HOME/nodenet/folders``, else
``~/.cache/nodenet/folders``). Its name is a digest of the folder's path, every
file's name, size and modification time, and the decoding options: a changed
folder gets a new cache. Samples are written and read with positioned reads and
writes (``os.pread`` / ``os.pwrite``), not a memory map, so the cache's pages
never count in the process's memory; a companion ``.state.npy`` says which
samples are written, so a later run starts with them.

Nothing is cached when the disk lacks room for twice the cache; the reason is
kept in :attr:`DiskCache.note`. Delete the folder to free the space.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.safeio import fmt_bytes

HEADER_BYTES = 128  # the .npy header, padded (format 1.0 pads it to a multiple of 64)


def cache_root() -> Path:
    """Where folder caches live (see the module docstring)."""
    given = os.environ.get("NODENET_CACHE_DIR")
    if given:
        return Path(given)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "nodenet" / "folders"


def cache_key(root: Path, names: list[str], options: dict[str, Any]) -> str:
    """A digest of the folder, its files (name, size, mtime) and the decoding options."""
    digest = hashlib.sha256(str(root.resolve()).encode())
    digest.update(json.dumps(options, sort_keys=True).encode())
    for name in names:
        try:
            st = (root / name).stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        digest.update(f"\0{name}\0{stamp}".encode())
    return digest.hexdigest()[:32]


class DiskCache:
    """Decoded samples of one folder dataset on disk, written once, read many times."""

    def __init__(self, key: str, count: int, sample_shape: tuple[int, ...], folder: Path):
        self.count, self.sample_shape = count, tuple(sample_shape)
        self.sample_bytes = int(np.prod(sample_shape, dtype=np.int64)) * 4
        self.path = folder / f"{key}.npy"
        self.state_path = folder / f"{key}.state.npy"
        self.fd: int | None = None
        self.note: str | None = None
        self.done = np.zeros(count, bool)
        size = HEADER_BYTES + count * self.sample_bytes
        try:
            folder.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(folder).free
            existing = self.path.stat().st_size if self.path.exists() else 0
            if existing != size and free < 2 * size:
                self.note = (
                    f"no disk cache: {fmt_bytes(size)} needed, {fmt_bytes(free)} free in {folder}"
                )
                return
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._closer = weakref.finalize(self, _close_quietly, self.fd)
            if existing != size:
                self._create(size)
            else:
                self._load_state()
        except OSError as err:
            self.note = f"no disk cache in {folder}: {err.strerror or err}"
            self.close()

    def _create(self, size: int) -> None:
        header = {"descr": "<f4", "fortran_order": False, "shape": (self.count, *self.sample_shape)}
        text = repr(header).encode("latin1")
        pad = HEADER_BYTES - 10 - len(text) - 1
        if pad < 0:  # a sample of very many axes; not worth a cache
            raise OSError("the sample shape is too long for the cache header")
        blob = b"\x93NUMPY\x01\x00" + (HEADER_BYTES - 10).to_bytes(2, "little")
        blob += text + b" " * pad + b"\n"
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, blob, 0)
        os.ftruncate(self.fd, size)  # sparse: only the samples written take disk space
        self.state_path.unlink(missing_ok=True)

    def _load_state(self) -> None:
        try:
            state = np.load(self.state_path, allow_pickle=False)
        except (OSError, ValueError):
            return
        if state.shape == (self.count,) and state.dtype == bool:
            self.done = state.copy()

    @property
    def usable(self) -> bool:
        return self.fd is not None

    def offset(self, file_id: int) -> int:
        return HEADER_BYTES + file_id * self.sample_bytes

    def read(self, file_id: int, out: np.ndarray) -> bool:
        """Fill ``out`` with sample ``file_id``; False when it is not cached."""
        if self.fd is None or not self.done[file_id]:
            return False
        data = os.pread(self.fd, self.sample_bytes, self.offset(file_id))
        if len(data) != self.sample_bytes:
            return False
        out[...] = np.frombuffer(data, np.float32).reshape(self.sample_shape)
        return True

    def write(self, file_id: int, sample: np.ndarray) -> bool:
        """Store sample ``file_id``; False when the cache is not usable."""
        if self.fd is None:
            return False
        data = np.ascontiguousarray(sample, np.float32).tobytes()
        try:
            if os.pwrite(self.fd, data, self.offset(file_id)) != len(data):
                return False
        except OSError as err:  # the disk filled up meanwhile: stop caching
            self.note = f"the disk cache stopped: {err.strerror or err}"
            self.close()
            return False
        self.done[file_id] = True
        return True

    def ready(self) -> np.ndarray:
        """Which samples are cached (bool per file)."""
        return self.done

    def save_state(self) -> None:
        """Record which samples are written, for the next run."""
        if self.fd is None:
            return
        try:
            tmp = self.state_path.with_suffix(".tmp.npy")
            np.save(tmp, self.done, allow_pickle=False)
            os.replace(tmp, self.state_path)
        except OSError:
            pass

    def close(self) -> None:
        """Close the cache file (also done when the cache is garbage-collected)."""
        if self.fd is not None:
            self._closer()
            self.fd = None


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)

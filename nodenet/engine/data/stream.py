"""Samples read from files batch by batch, in a background thread ahead of the training step.

A :class:`FileSamples` is a list of files and a decoder for one of them. A
:class:`StreamedColumn` is the part of it one split uses (its files' positions),
and stands where an Input's array would stand: it has a length and a sample
shape, and :meth:`StreamedColumn.batches` yields ``(positions, batch)`` pairs for
an epoch's order. A reader thread decodes the batches ahead into a bounded queue
(:data:`PREFETCH` batches), so memory holds at most ``batch_size x (PREFETCH + 2)``
samples, never the dataset. With a :class:`~nodenet.engine.data.folder_cache.DiskCache`,
each decoded sample is also written to disk the first time and read from there
afterwards.

A file that cannot be decoded (not an image, truncated, deleted since the folder
was indexed) is skipped: its batch comes out one sample shorter, the file is
counted in the :class:`SkipLog` with its reason, and is not tried again. The
time the consumer waits for the reader is measured (:class:`StreamStats`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.engine.data.folder_decode import UnreadableFile
from nodenet.errors import DataError

PREFETCH = 3  # decoded batches waiting in the queue
SKIPS_KEPT = 20  # skipped files remembered by name; the others are only counted
_END = object()
BAD = 1  # the state of a file that could not be read


class SkipLog:
    """Files skipped because they could not be read: a count and the first few with reasons.

    Thread-safe; shared by every split of one folder dataset.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.first: list[tuple[str, str]] = []

    def add(self, name: str, reason: str) -> None:
        with self._lock:
            self.count += 1
            if len(self.first) < SKIPS_KEPT:
                self.first.append((name, reason))

    def to_dict(self) -> dict[str, Any]:
        """``{"count": n, "files": [{"file": name, "reason": why}, ...]}`` (JSON-friendly)."""
        with self._lock:
            files = [{"file": n, "reason": r} for n, r in self.first]
            return {"count": self.count, "files": files}

    def message(self, shown: int = 3) -> str | None:
        """One line for a terminal, or None when nothing was skipped."""
        with self._lock:
            if not self.count:
                return None
            listed = "; ".join(f"{n}: {r}" for n, r in self.first[:shown])
            more = f"; and {self.count - shown} more" if self.count > shown else ""
            return f"{self.count} file(s) could not be read and were skipped: {listed}{more}"


@dataclass
class StreamStats:
    """Time spent by the consumer waiting for decoded batches, and batches served."""

    wait_seconds: float = 0.0
    batches: int = 0
    decoded: int = 0
    from_cache: int = 0

    def reset(self) -> None:
        self.wait_seconds, self.batches, self.decoded, self.from_cache = 0.0, 0, 0, 0


@dataclass
class FileSamples:
    """Files and how to decode one; shared by the splits of a folder dataset.

    ``decode(path) -> array`` gives a sample of ``sample_shape`` and ``dtype`` or
    raises :class:`UnreadableFile`; with a unicode ``dtype`` it gives a string, and each
    batch is ``(n, 1)`` texts as wide as its longest. ``names`` are the files' paths relative to
    ``root`` (as the messages show them). ``scale`` multiplies every batch
    (the project's ``data.preprocess.scale``); the cache holds unscaled samples.
    """

    root: Path
    names: list[str]
    decode: Callable[[Path], np.ndarray]
    sample_shape: tuple[int, ...]
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    scale: float | None = None
    cache: Any = None  # a folder_cache.DiskCache, or None
    skipped: SkipLog = field(default_factory=SkipLog)
    stats: StreamStats = field(default_factory=StreamStats)

    def __post_init__(self) -> None:
        self.state = np.zeros(len(self.names), np.uint8)
        self._lock = threading.Lock()

    def load(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(kept, batch)``: the ids that could be read and their samples, stacked."""
        if self.dtype.kind == "U":
            return self._load_texts(ids)
        out = np.empty((len(ids), *self.sample_shape), self.dtype)
        kept = np.ones(len(ids), bool)
        with self._lock:
            for i, file_id in enumerate(ids):
                kept[i] = self._one(int(file_id), out, i)
        batch = out[kept] if not kept.all() else out
        if self.scale is not None:
            batch *= np.asarray(self.scale, batch.dtype)
        return kept, batch

    def _load_texts(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Texts (``decode`` gives a string): a ``(kept, 1)`` unicode batch as wide as its
        longest text; no cache, no scale."""
        kept, texts = np.ones(len(ids), bool), []
        with self._lock:
            for i, file_id in enumerate(map(int, ids)):
                if self.state[file_id] == BAD:
                    kept[i] = False
                    continue
                try:
                    texts.append(self.decode(self.root / self.names[file_id]))
                except UnreadableFile as err:
                    self.state[file_id] = BAD
                    self.skipped.add(self.names[file_id], str(err))
                    kept[i] = False
                    continue
                self.stats.decoded += 1
        return kept, np.array(texts, dtype=str).reshape(-1, 1)

    def _one(self, file_id: int, out: np.ndarray, row: int) -> bool:
        if self.state[file_id] == BAD:
            return False
        if self.cache is not None and self.cache.read(file_id, out[row]):
            self.stats.from_cache += 1
            return True
        try:
            sample = self.decode(self.root / self.names[file_id])
        except UnreadableFile as err:
            self.state[file_id] = BAD
            self.skipped.add(self.names[file_id], str(err))
            return False
        out[row] = sample
        self.stats.decoded += 1
        if self.cache is not None:
            self.cache.write(file_id, out[row])
        return True


class StreamedColumn:
    """The samples of one split, read on demand: stands for an Input's array.

    ``ids`` are the split's files (indices into ``source.names``), in sample order.
    """

    streamed = True

    def __init__(self, source: FileSamples, ids: np.ndarray):
        self.source = source
        self.ids = np.asarray(ids, np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.ids), *self.source.sample_shape)

    @property
    def dtype(self) -> np.dtype:
        return self.source.dtype

    @property
    def ndim(self) -> int:
        return 1 + len(self.source.sample_shape)

    def __array__(self, dtype=None, copy=None):
        raise DataError(
            f"the {len(self.ids):,} samples read from {self.source.root.name}/ are streamed batch "
            "by batch and are never made into one array here"
        )

    def subset(self, positions: np.ndarray | slice) -> StreamedColumn:
        """The samples at ``positions`` (of this column) as a column of their own."""
        return StreamedColumn(self.source, self.ids[positions])

    def load(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(kept positions, batch)`` for ``positions``, read now in this thread."""
        positions = np.asarray(positions, np.int64)
        kept, batch = self.source.load(self.ids[positions])
        return positions[kept], batch

    def __getitem__(self, key: slice) -> np.ndarray:
        """The readable samples of a slice (unreadable ones left out), for statistics."""
        if not isinstance(key, slice):
            raise TypeError("a streamed column is read by slices or with batches()")
        return self.load(np.arange(len(self.ids))[key])[1]

    def batches(
        self, order: np.ndarray, batch_size: int, *, sort: bool = False, prefetch: int = PREFETCH
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(positions, batch)`` for each run of ``batch_size`` positions of ``order``.

        Decoded by a background thread up to ``prefetch`` batches ahead. ``sort``
        reads each batch's files in sorted order (the batch is the same set). A
        batch whose files all failed comes out empty. Closing the iterator early
        stops the reader.
        """
        order = np.asarray(order, np.int64)
        chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        out: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def read() -> None:
            try:
                for chunk in chunks:
                    if not put(self.load(np.sort(chunk) if sort else chunk)):
                        return
                put(_END)
            except BaseException as err:  # handed to the consumer, raised there
                put(err)

        reader = threading.Thread(target=read, name="nodenet-folder-reader", daemon=True)
        reader.start()
        stats = self.source.stats
        try:
            while True:
                start = time.perf_counter()
                item = out.get()
                stats.wait_seconds += time.perf_counter() - start
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                stats.batches += 1
                yield item
        finally:
            stop.set()
            reader.join()
            if self.source.cache is not None:
                self.source.cache.save_state()


def is_streamed(arrays: Any) -> bool:
    """Whether a dict of Input data holds a streamed column."""
    return isinstance(arrays, dict) and any(getattr(v, "streamed", False) for v in arrays.values())

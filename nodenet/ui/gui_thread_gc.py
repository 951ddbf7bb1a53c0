"""Python's cycle collector runs in the GUI thread only.

The collector runs in whichever thread happens to allocate when its threshold is
crossed: a training, sweep or explanation thread as often as the GUI thread. A
garbage cycle holding Qt objects (a closed dialog, a menu) is then destroyed in that
thread, where ``QObject``'s destructor waits for a lock the GUI thread holds while the
GUI thread waits for the interpreter lock: the app freezes. So automatic collection
is switched off, and a timer in the GUI thread collects instead (pyqtgraph's
``GarbageCollector``, which was written for exactly this).

A worker thread that hands a QObject to another thread (``moveToThread``, as the
training worker does when its run ends) holds Qt's locks of both threads and may need
the interpreter lock meanwhile; a collection in the GUI thread, destroying a QObject,
holds the interpreter lock and waits for Qt's: the same freeze, or a crash when both go
ahead. :func:`no_collection` keeps collections out while such a hand-over runs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from pyqtgraph.util.garbage_collector import GarbageCollector

# held by a collection, or by a hand-over between threads; re-entrant, for a finalizer
# that runs the event loop, and with it another check, during a collection
_handover = threading.RLock()


class _Collector(GarbageCollector):
    """pyqtgraph's collector, never collecting while a hand-over runs."""

    def check(self) -> None:
        with _handover:  # waiting releases the interpreter lock
            super().check()


@contextlib.contextmanager
def no_collection() -> Iterator[None]:
    """No collection in the GUI thread meanwhile (for ``moveToThread`` in a worker)."""
    with _handover:
        yield


_collector: list[GarbageCollector] = []


def collect_in_gui_thread(interval: float = 1.0) -> GarbageCollector:
    """Switch automatic collection off and collect every ``interval`` seconds in this
    (the GUI) thread; once per process. Call after the QApplication exists."""
    if not _collector:
        _collector.append(_Collector(interval=interval))
    return _collector[0]

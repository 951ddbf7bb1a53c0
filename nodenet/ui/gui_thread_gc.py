"""Python's cycle collector runs in the GUI thread only.

The collector runs in whichever thread happens to allocate when its threshold is
crossed: a training, sweep or explanation thread as often as the GUI thread. A
garbage cycle holding Qt objects (a closed dialog, a menu) is then destroyed in that
thread, where ``QObject``'s destructor waits for a lock the GUI thread holds while the
GUI thread waits for the interpreter lock: the app freezes. So automatic collection
is switched off, and a timer in the GUI thread collects instead (pyqtgraph's
``GarbageCollector``, which was written for exactly this).
"""

from __future__ import annotations

from pyqtgraph.util.garbage_collector import GarbageCollector

_collector: list[GarbageCollector] = []


def collect_in_gui_thread(interval: float = 1.0) -> GarbageCollector:
    """Switch automatic collection off and collect every ``interval`` seconds in this
    (the GUI) thread; once per process. Call after the QApplication exists."""
    if not _collector:
        _collector.append(GarbageCollector(interval=interval))
    return _collector[0]

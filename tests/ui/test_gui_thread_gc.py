"""Garbage cycles are collected in the GUI thread, never in a worker thread."""

import gc
import threading
import weakref

from PySide6.QtCore import QObject

from nodenet.ui.gui_thread_gc import collect_in_gui_thread


class Holder:
    """Half of a reference cycle that keeps a QObject alive."""


def test_a_cycle_holding_a_qobject_dies_in_the_gui_thread_not_in_a_worker(qtbot):
    collect_in_gui_thread(interval=0.05)
    assert not gc.isenabled()
    gc.collect()  # start from a clean heap: the counts below are this test's
    holder, other = Holder(), Holder()
    holder.other, other.holder = other, holder
    holder.qobject = QObject()
    destroyed_in = []
    holder.qobject.destroyed.connect(lambda: destroyed_in.append(threading.current_thread()))
    alive = weakref.ref(holder)
    del holder, other

    junk = []

    def allocate():  # a worker allocating far past the collector's threshold
        junk.extend([i] for i in range(5 * gc.get_threshold()[0]))

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    assert alive() is not None  # no collection ran in the worker
    qtbot.waitUntil(lambda: alive() is None, timeout=5000)
    assert destroyed_in == [threading.main_thread()]

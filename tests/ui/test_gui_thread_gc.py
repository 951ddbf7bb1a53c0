"""Garbage cycles are collected in the GUI thread, never in a worker thread."""

import gc
import threading
import weakref

from PySide6.QtCore import QObject

from nodenet.ui.gui_thread_gc import collect_in_gui_thread, no_collection


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


def test_no_collection_runs_while_a_worker_hands_an_object_to_another_thread(qtbot):
    """A collection in the GUI thread waits for a hand-over (moveToThread) in a worker:
    the two together froze the suite (the GUI thread collecting a QObject, waiting for
    Qt's lock; the worker moving its QObject, holding that lock, waiting for Python's)."""
    collector = collect_in_gui_thread(interval=0.05)
    inside, release, order = threading.Event(), threading.Event(), []

    def hand_over():
        with no_collection():
            inside.set()
            release.wait(5)
            order.append("hand-over done")

    worker = threading.Thread(target=hand_over)
    worker.start()
    assert inside.wait(5)
    threading.Timer(0.2, release.set).start()
    collector.check()  # blocks until the hand-over is done
    order.append("collected")
    worker.join()
    assert order == ["hand-over done", "collected"]

"""UI test setup: isolated QSettings per test, and a clean clipboard at the end."""

import os
import tempfile
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QMessageBox

from nodenet.ui.gui_thread_gc import collect_in_gui_thread
from nodenet.ui.main_window import MainWindow
from tests.ui import SCREEN, isolated_settings, offscreen_platform

if os.environ.get("QT_QPA_PLATFORM") == "offscreen":  # before the QApplication exists
    # a desktop-sized screen, as people have, not Qt's offscreen default of 800x800
    os.environ["QT_QPA_PLATFORM"] = offscreen_platform(*SCREEN, Path(tempfile.mkdtemp()))


@pytest.fixture(autouse=True, scope="session")
def _collect_in_the_gui_thread(qapp):
    """As the app does: widgets of earlier tests collected in a sweep's or training's
    thread froze the suite (the GUI thread and that thread each waiting for the other)."""
    collect_in_gui_thread()


@pytest.fixture(autouse=True)
def _isolated_qsettings(tmp_path_factory):
    isolated_settings(tmp_path_factory.mktemp("qsettings"))


@pytest.fixture(autouse=True)
def _clear_clipboard(qapp):
    """Data a test left on the clipboard crashes Qt's offscreen platform at exit."""
    yield
    qapp.clipboard().clear()


@pytest.fixture(autouse=True)
def _delete_closed_widgets(qapp, qtbot, monkeypatch):
    """The widgets a test closed are deleted by Qt before the next test. pytest-qt closes
    them and asks for their deletion (``deleteLater``), which only an event loop carries
    out: after tests that never run one, dozens of main windows (thousands of top-level
    menus and frames) stayed alive, slowing every later event loop (the soak took twice as
    long) and lying in wait for scans of the top-level widgets.

    pytest-qt holds them by weak reference only, so a window whose test has returned is
    garbage until then, and a collection in between (the GUI thread's collector runs in
    pytest-qt's own event processing after the test) deleted the whole window from its
    wrapper's deallocation: the suite crashed there. So they are held until Qt has
    deleted them."""
    held = []
    add_widget = type(qtbot).addWidget

    def add_and_hold(self, widget, *, before_close_func=None):
        held.append(widget)
        add_widget(self, widget, before_close_func=before_close_func)

    monkeypatch.setattr(type(qtbot), "addWidget", add_and_hold)
    yield
    qapp.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    held.clear()


@pytest.fixture(autouse=True)
def _isolated_recovery(tmp_path_factory, monkeypatch):
    """Autosave's recovery files go to a fresh folder per test, never the user's."""
    monkeypatch.setenv("NODENET_RECOVERY_DIR", str(tmp_path_factory.mktemp("recovery")))


@pytest.fixture
def no_prompts(monkeypatch):
    """Fail if a message box would block; record the ones a test expects."""
    shown = []

    def critical(parent, title, text, *args):
        shown.append((title, text))
        return QMessageBox.StandardButton.Ok

    def question(*args):
        raise AssertionError("unexpected prompt")

    monkeypatch.setattr(QMessageBox, "critical", critical)
    monkeypatch.setattr(QMessageBox, "question", question)
    return shown


@pytest.fixture
def make_window(qtbot):
    """Shown main windows; closing them at teardown asks nothing."""

    def make() -> MainWindow:
        window = MainWindow()
        qtbot.addWidget(window, before_close_func=_forget_unsaved_work)
        window.show()
        qtbot.waitExposed(window)
        return window

    return make


def _forget_unsaved_work(window: MainWindow) -> None:
    """Closing at teardown must not ask about unsaved edits or trained weights."""
    window.document.undo_stack.setClean()
    window.training_panel.weights_unsaved = False

"""Start nodenet on a sample as ``nodenet FILE`` does, on an offscreen screen of a given
size, press Ctrl+R on the canvas, and report what a person would see, as JSON.

    python -m tests.ui.run_view_probe WIDTH HEIGHT SAMPLE

Run in its own process because Qt's screen size is fixed when the application
starts (tests/ui/test_run_view.py). Reported: the screen's available area, the
window's frame, the rectangles of the docks, canvas and status bar inside the
window, and, while the run trains (after its first epoch) and after it ends,
whether the Run panel and its Curves tab are in view and the height of every
plot shown.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _rect(r) -> list[int]:
    return [r.x(), r.y(), r.width(), r.height()]


def _in_window(window, widget) -> list[int] | None:
    """``widget``'s rectangle in window coordinates when all of it is in view: shown,
    and inside every widget that holds it (a scroll area's viewport clips); else None."""
    from PySide6.QtCore import QPoint, QRect

    if not widget.isVisible():
        return None
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    ancestor = widget.parentWidget()
    while ancestor is not None and ancestor is not window:
        if not QRect(ancestor.mapTo(window, QPoint(0, 0)), ancestor.size()).contains(rect):
            return None
        ancestor = ancestor.parentWidget()
    return _rect(rect) if window.rect().contains(rect) else None


def _run_view(window) -> dict:
    panel = window.training_panel
    dock = window.docks["training"]
    plots = {
        key: {"height": widget.height(), "shown": _in_window(window, widget) is not None}
        for key, widget in panel.plots._widgets.items()
        if not widget.isHidden()
    }
    return {
        "dock": _in_window(window, dock),
        "curves_tab": panel.tabs.currentWidget() is panel.plots,
        "plots": plots,
        "run_button": _in_window(window, panel.run_button),
        "stop_button": _in_window(window, panel.stop_button),
        "evaluate_button": _in_window(window, panel.evaluate_button),
        "progress": _in_window(window, panel.progress),
        "blocks_in_view": _blocks_in_view(window.canvas),
    }


def main(width: int, height: int, sample: str) -> dict:
    folder = Path(tempfile.mkdtemp())
    sys.path.insert(0, str(Path(__file__).parents[2]))
    from tests.ui import isolated_settings, offscreen_platform

    os.environ["QT_QPA_PLATFORM"] = offscreen_platform(width, height, folder)
    os.environ["NODENET_RECOVERY_DIR"] = str(folder / "recovery")
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    isolated_settings(folder / "settings")  # a first start: no saved window state
    from nodenet.ui.app import start_window

    window = start_window(sample)
    window.showMaximized() if window.start_maximized else window.show()

    def wait(condition, seconds: float = 120.0) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            if condition():
                return True
            time.sleep(0.01)
        return False

    QTest.qWaitForWindowExposed(window)
    wait(lambda: False, 0.3)  # the first layout passes
    canvas = window.canvas
    report = {
        "available": _rect(window.screen().availableGeometry()),
        "frame": _rect(window.frameGeometry()),
        "window": [window.width(), window.height()],
        "docks": {name: _in_window(window, dock) for name, dock in window.docks.items()},
        "canvas": _in_window(window, canvas),
        "status_bar": _in_window(window, window.statusBar()),
        "blocks_in_view": _blocks_in_view(canvas),
        "zoom": canvas.zoom(),
    }
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton)  # an empty spot
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    panel = window.training_panel
    report["started"] = wait(lambda: panel.running or panel.plots.runs, 10)
    report["trained_an_epoch"] = wait(lambda: _epochs(panel) >= 1 or not panel.running)
    # the curves of the first epoch appear at the plots' next refresh (at most a second)
    wait(lambda: _shown(panel, "accuracy"), 30)
    wait(lambda: False, 0.3)
    report["during"] = _run_view(window)
    report["finished"] = wait(lambda: not panel.running)
    wait(lambda: False, 0.3)
    report["after"] = _run_view(window)
    window.document.undo_stack.setClean()
    window.training_panel.weights_unsaved = False  # nothing to ask about on close
    window.close()
    return report


def _shown(panel, key: str) -> bool:
    widget = panel.plots._widgets.get(key)
    return widget is not None and widget.isVisible()


def _epochs(panel) -> int:
    record = next(iter(panel.plots.runs.values()), None)
    series = record.series.get("loss") if record is not None else None
    return 0 if series is None else series.size


def _blocks_in_view(canvas) -> list[str]:
    """The blocks whose whole card is inside the canvas's visible area."""
    visible = canvas.visible_scene_rect()
    return sorted(
        node_id
        for node_id, item in canvas.canvas_scene.nodes.items()
        if visible.contains(item.sceneBoundingRect())
    )


if __name__ == "__main__":
    width, height, sample = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    print(json.dumps(main(width, height, sample)))

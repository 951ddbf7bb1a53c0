"""The node-editor canvas: a QGraphicsView mirroring the project document.

``CanvasView(document, selection)`` is the widget. The automatic layout,
:func:`nodenet.graph.layout.layered_layout`, is Qt-free, so importing this
package loads Qt only when ``CanvasView`` is first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nodenet.ui.canvas.view import CanvasView

__all__ = ["CanvasView"]


def __getattr__(name: str) -> Any:
    if name == "CanvasView":
        from nodenet.ui.canvas.view import CanvasView

        return CanvasView
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Export a project to ONNX, built directly from the graph with the ``onnx`` package.

``export_onnx(project, weights=None, opset=17)`` gives an ``onnx.ModelProto`` (needs the
``onnx`` extra: ``pip install "nodenet[onnx]"``); each block maps to standard operators
through the mappings registered in this package's ``ops_*`` modules (:mod:`.registry`).
"""

from __future__ import annotations

from typing import Any

from nodenet.errors import ExportError

INSTALL_HINT = 'the ONNX export needs the onnx package: pip install "nodenet[onnx]"'


def require_onnx() -> None:
    """Raise :class:`ExportError` saying how to install ``onnx`` when it is missing."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ExportError(INSTALL_HINT) from None


def export_onnx(project, weights: dict | None = None, opset: int | None = None) -> Any:
    """The ONNX model of ``project`` (see :func:`nodenet.export.onnx.export.export_onnx`)."""
    require_onnx()
    from nodenet.export.onnx.export import export_onnx as run

    return run(project, weights, opset)


def write_onnx_file(project, weights: dict | None, path, opset: int | None = None):
    """Export ``project`` and write the ``.onnx`` file at ``path`` (atomically); the path."""
    model = export_onnx(project, weights, opset)
    from nodenet.export.onnx.export import save_onnx

    return save_onnx(model, path)


__all__ = ["INSTALL_HINT", "export_onnx", "require_onnx", "write_onnx_file"]

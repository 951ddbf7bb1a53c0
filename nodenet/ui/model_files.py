"""Model files other tools read and write: File → Export → ONNX file / Keras model file,
and ONNX in File → Import.

The exports write one file (the graph with the Run panel's trained weights when there are
some, else the seeded initial ones) and say what it holds: inputs, outputs, opset, size.
An ONNX import replaces the project as a Keras import does (unsaved, its weights in the
Run panel) and says the same of the file it read. A missing optional package (onnx,
keras) is named with the command that installs it; nothing else changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from nodenet.errors import NodenetError, shorten
from nodenet.export import import_onnx, require_onnx, save_keras_model, write_onnx_file

if TYPE_CHECKING:
    from nodenet.ui.main_window import MainWindow

KINDS = {  # kind -> (title, suffix, file filter)
    "onnx": ("ONNX file", ".onnx", "ONNX models (*.onnx);;All files (*)"),
    "keras-model": ("Keras model file", ".keras", "Keras models (*.keras);;All files (*)"),
}
MESSAGE_CHARS = 600


def describe_onnx(path: Path) -> str:
    """``opset 17 · inputs x (None, 28, 28, 1) · outputs digit · 1.2 MB`` of an ONNX file
    (its graph only: initializer data is not read)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def shape(value) -> str:
        dims = value.type.tensor_type.shape.dim
        return "(" + ", ".join(d.dim_param or str(d.dim_value) for d in dims) + ")"

    inputs = ", ".join(f"{v.name} {shape(v)}" for v in model.graph.input)
    outputs = ", ".join(f"{v.name} {shape(v)}" for v in model.graph.output)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return f"opset {opset} · inputs {inputs} · outputs {outputs} · {_size(path)}"


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 1024:.0f} KB"


def export_model_file(window: MainWindow, kind: str, path: str | Path | None = None) -> Path | None:
    """Write the project as an ONNX or Keras model file (asking where unless ``path``)."""
    title, suffix, file_filter = KINDS[kind]
    project = window.document.project
    if path is None:
        folder = project.path.parent if project.path else Path.home()
        suggested = str(folder / f"{project.name}{suffix}")
        path, _ = QFileDialog.getSaveFileName(window, f"Export {title}", suggested, file_filter)
        if not path:
            return None
    path = Path(path)
    if path.suffix != suffix:
        path = path.with_suffix(suffix)
    weights = window.training_panel.trained_weights
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        written = _write(kind, project, weights, path)
        facts = describe_onnx(written) if kind == "onnx" else _size(written)
    except NodenetError as err:
        QApplication.restoreOverrideCursor()
        text = shorten(str(err), MESSAGE_CHARS)
        QMessageBox.critical(window, f"Cannot export the {title}", text)
        return None
    QApplication.restoreOverrideCursor()
    which = "trained" if weights is not None else "initial (untrained)"
    window.show_message(f"Wrote {written.name} with the {which} weights: {facts}")
    return written


def _write(kind: str, project, weights, path: Path) -> Path:
    if kind == "keras-model":
        return save_keras_model(project, weights, path)
    return write_onnx_file(project, weights, path)


def read_onnx(path: Path):
    """``(project, weights, facts)`` of an ONNX file; :class:`NodenetError` if it cannot
    be imported (onnx missing: how to install it)."""
    require_onnx()
    project, weights = import_onnx(path)
    return project, weights, describe_onnx(path)

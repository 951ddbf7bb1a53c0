"""File → Export: a preview of the generated Keras 3 or PyTorch module, Copy and Save.

``ExportDialog(project, target, weights)`` exports a snapshot of the project
with :func:`nodenet.export.export_keras` or :func:`~nodenet.export.export_pytorch`
and shows the source read-only, highlighted as Python. "With trained weights"
is offered when the Run panel holds weights (``node_id/weight_name`` arrays);
Save writes the module, and its ``_weights.npz`` beside it, atomically. Every
problem (an invalid graph, weights that no longer fit, a file that cannot be
written) is shown in the dialog or a message box, never raised.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nodenet.errors import NodenetError, shorten
from nodenet.export import ExportedCode, export_keras, export_pytorch
from nodenet.graph.project import Project

TARGETS = {
    "keras": ("Keras 3", export_keras, "keras"),
    "pytorch": ("PyTorch", export_pytorch, "torch"),
}
PY_FILTER = "Python modules (*.py);;All files (*)"
NO_WEIGHTS_TIP = "Train the model first (Run): there are no trained weights to export."
ERROR_STYLE = "background: #fdecea; border: 1px solid #e57373; color: #611a15; padding: 6px;"

_TRIPLE = ('"""', "'''")
_TOKENS = re.compile(
    r"(?P<comment>#[^\n]*)"
    r"|(?P<string>(?<!\w)[rRbBfFuU]{0,2}(?:\"\"\"|'''|\"(?:\\.|[^\"\\])*\"?|'(?:\\.|[^'\\])*'?))"
    r"|(?P<number>\b(?:0[xXoObB][0-9a-fA-F_]+|\d[\d_]*\.?[\d_]*(?:[eE][+-]?\d+)?j?)\b)"
    rf"|(?P<keyword>\b(?:{'|'.join(keyword.kwlist)})\b)"
    r"|(?P<builtin>\b(?:self|print|len|range|dict|list|tuple|int|float|str|super)\b)"
)


def _format(color: str, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(QColor(color))
    if bold:
        fmt.setFontWeight(QFont.Weight.Bold)
    fmt.setFontItalic(italic)
    return fmt


class PythonHighlighter(QSyntaxHighlighter):
    """Keywords, builtins, strings (triple-quoted ones across lines), comments and numbers.

    A block's state is the index of the triple quote left open at its end, or -1.
    """

    def __init__(self, document: QTextDocument):
        super().__init__(document)
        self.formats = {
            "keyword": _format("#0033b3", bold=True),
            "builtin": _format("#871094"),
            "string": _format("#067d17"),
            "comment": _format("#8c8c8c", italic=True),
            "number": _format("#1750eb"),
        }

    def highlightBlock(self, text: str) -> None:
        self.setCurrentBlockState(-1)
        start = 0
        if self.previousBlockState() >= 0:
            start = self._close_string(text, 0, _TRIPLE[self.previousBlockState()])
        for match in _TOKENS.finditer(text, start):
            if match.start() < start:  # inside a string closed further on
                continue
            kind = match.lastgroup
            quote = match.group().lstrip("rRbBfFuU")
            if kind == "string" and quote in _TRIPLE:
                start = self._close_string(text, match.start(), quote, match.end())
                if self.currentBlockState() >= 0:
                    return
                continue
            self.setFormat(match.start(), match.end() - match.start(), self.formats[kind])

    def _close_string(self, text: str, begin: int, quote: str, search: int = 0) -> int:
        """Format a triple-quoted string from ``begin``; the index after it (or the end)."""
        end = text.find(quote, search)
        if end < 0:
            self.setCurrentBlockState(_TRIPLE.index(quote))
            end = len(text)
        else:
            end += len(quote)
        self.setFormat(begin, end - begin, self.formats["string"])
        return end


class ExportDialog(QDialog):
    """The preview of one export (``target`` "keras" or "pytorch") of ``project``.

    ``weights``: the trained weights (``node_id/weight_name`` -> array) or None.
    """

    def __init__(
        self,
        project: Project,
        target: str,
        weights: dict[str, np.ndarray] | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.project = project.copy()  # later edits of the document do not reach the preview
        self.target = target
        self.weights = weights
        self.code: ExportedCode | None = None
        self.title, self._exporter, self._suffix = TARGETS[target]
        self.setWindowTitle(f"Export {self.title} code — {project.name}")
        self._build()
        self.refresh()
        self.resize(900, 680)

    def _build(self) -> None:
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.preview.setFont(font)
        self.highlighter = PythonHighlighter(self.preview.document())
        self.with_weights = QCheckBox("With trained weights")
        if self.weights is None:
            self.with_weights.setEnabled(False)
            self.with_weights.setToolTip(NO_WEIGHTS_TIP)
        else:
            self.with_weights.setChecked(True)
            self.with_weights.setToolTip("Write the Run panel's trained weights beside the module")
        self.with_weights.toggled.connect(self.refresh)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the source to the clipboard")
        self.copy_button.clicked.connect(self.copy)
        self.save_button = QPushButton("Save…")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(lambda: self.save())
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.with_weights)
        buttons.addStretch(1)
        for button in (self.copy_button, self.save_button, close):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.error)
        layout.addWidget(self.preview, 1)
        layout.addLayout(buttons)

    # -- exporting ------------------------------------------------------------------

    def refresh(self) -> None:
        """Export again (with or without weights) and show the source or the problem."""
        weights = self.weights if self.with_weights.isChecked() else None
        try:
            self.code = self._exporter(self.project, weights)
        except NodenetError as err:
            self.code = None
            self._show_error(err, weights is not None)
        except (ArithmeticError, ValueError, TypeError, RecursionError) as err:
            self.code = None  # an exporter bug must not raise in a slot: say what happened
            self._show_error(NodenetError(shorten(f"{type(err).__name__}: {err}", 500)), False)
        else:
            self.error.hide()
            self.preview.setPlainText(self.code.source)
        self.copy_button.setEnabled(self.code is not None)
        self.save_button.setEnabled(self.code is not None)
        self.intro.setText(self._intro())

    def _show_error(self, err: NodenetError, with_weights: bool) -> None:
        what = "with its trained weights " if with_weights else ""
        hint = (
            "\nThe graph changed since training: train again, or export without weights."
            if with_weights
            else ""
        )
        self.error.setText(f"The project cannot be exported {what}to {self.title}: {err}{hint}")
        self.error.show()
        self.preview.clear()

    def _intro(self) -> str:
        if self.code is None:
            return f"{self.title} module of {self.project.name}"
        lines = self.code.source.count("\n")
        text = f"{self.title} module of {self.project.name} · {lines} lines"
        if self.code.weights is not None:
            text += " · Save also writes <module>_weights.npz beside it, which the module loads"
        return text

    def suggested_path(self) -> Path:
        """``<project>_<keras|torch>.py`` in the project's folder (home without one)."""
        folder = self.project.path.parent if self.project.path else Path.home()
        stem = re.sub(r"\W+", "_", self.project.name).strip("_") or "model"
        return folder / f"{stem}_{self._suffix}.py"

    # -- actions --------------------------------------------------------------------

    def copy(self) -> None:
        if self.code is not None:
            QApplication.clipboard().setText(self.code.source)
            self.intro.setText(f"{self._intro()} · copied to the clipboard")

    def save(self, path: str | Path | None = None) -> list[Path]:
        """Ask where (unless ``path``), then write the module and its weights; the paths."""
        if self.code is None:
            return []
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, f"Save {self.title} code", str(self.suggested_path()), PY_FILTER
            )
            if not path:
                return []
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".py")
        try:
            written = self.code.write(path)
        except NodenetError as err:  # SaveError: names the file and the reason
            QMessageBox.critical(self, "Cannot save the code", str(err))
            return []
        except OSError as err:
            QMessageBox.critical(
                self, "Cannot save the code", f"{path} cannot be written:\n\n{err.strerror or err}"
            )
            return []
        self.intro.setText(f"{self._intro()} · saved {', '.join(p.name for p in written)}")
        return written

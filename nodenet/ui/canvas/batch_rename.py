"""The batch rename dialog: a prefix, a suffix and a find/replace for the selected ids.

The new ids show as they are typed; OK renames every block as one undo command
(:meth:`~nodenet.ui.document_scale.ScaleEdits.rename_many`). A refusal (an id
used by another block, two blocks given one id, an invalid id) shows in the
dialog, which stays open.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from nodenet.errors import NodenetError
from nodenet.ui.canvas import style
from nodenet.ui.document_scale import batch_names

PREVIEW_ROWS = 6


class BatchRenameDialog(QDialog):
    """Rename ``ids`` of ``document`` at once: prefix, suffix, replace."""

    def __init__(self, document, ids: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Rename {len(ids)} blocks")
        self.document = document
        self.ids = list(ids)
        self.renamed = 0
        self.prefix = self._field("Add before each id, e.g. r2_")
        self.suffix = self._field("Add after each id, e.g. _b")
        self.find = self._field("Text to replace in each id (empty: none)")
        self.replace = self._field("What the found text becomes")
        form = QFormLayout()
        form.addRow("&Prefix:", self.prefix)
        form.addRow("&Suffix:", self.suffix)
        form.addRow("&Find:", self.find)
        form.addRow("Replace &with:", self.replace)
        self.preview = QLabel()
        self.preview.setObjectName("batch_rename_preview")
        self.error = QLabel()
        self.error.setObjectName("batch_rename_error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {style.PORT_REFUSED};")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setToolTip(
            "Rename the blocks (one undo step)"
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setToolTip("Rename nothing")
        self.buttons.accepted.connect(self.apply)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self._update()
        self.prefix.setFocus()

    def _field(self, tip: str) -> QLineEdit:
        field = QLineEdit()
        field.setToolTip(tip)
        field.textChanged.connect(self._update)
        return field

    def mapping(self) -> dict[str, str]:
        return batch_names(
            self.ids,
            self.prefix.text().strip(),
            self.suffix.text().strip(),
            self.find.text(),
            self.replace.text(),
        )

    def _update(self) -> None:
        changed = [(old, new) for old, new in self.mapping().items() if new != old]
        rows = [f"{old} → {new}" for old, new in changed[:PREVIEW_ROWS]]
        if len(changed) > PREVIEW_ROWS:
            rows.append(f"… and {len(changed) - PREVIEW_ROWS} more")
        self.preview.setText("\n".join(rows) or "No id changes yet")
        self.error.clear()

    def apply(self) -> None:
        """Rename (one command) and close, or show why not and stay open."""
        try:
            self.renamed = self.document.rename_many(self.mapping())
        except NodenetError as err:
            self.error.setText(f"Cannot rename: {err}")
            return
        self.accept()

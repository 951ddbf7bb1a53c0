"""A notice across the top of the window: something about the open project a person
must not miss (a sample running on a stand-in dataset, and how to install the real
one). It stays until dismissed or until another project is opened.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolBar, QToolButton, QWidget

STYLES = {
    "info": ("#e8f4fd", "#64b5f6", "#0d3c61"),
    "warning": ("#fff8e1", "#ffb74d", "#5d4037"),
}


class NoticeBar(QToolBar):
    """A full-width, non-movable strip under the main toolbar; hidden while empty."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Notice", parent)
        self.setObjectName("toolbar_notice")  # saveState needs names
        self.setMovable(False)
        self.setFloatable(False)
        self.toggleViewAction().setVisible(False)  # not a panel a person switches on
        self.frame = QFrame()
        self.frame.setObjectName("notice")
        row = QHBoxLayout(self.frame)
        row.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.label, 1)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss this notice")
        self.close_button.clicked.connect(self.clear)
        row.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.addWidget(self.frame)
        self.hide()

    def show_notice(self, text: str, kind: str = "warning") -> None:
        background, border, colour = STYLES[kind]
        self.frame.setStyleSheet(
            f"QFrame#notice {{ background: {background}; border: 1px solid {border};"
            f" border-radius: 4px; }} QLabel {{ color: {colour}; }}"
        )
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def clear(self) -> None:
        self.label.setText("")
        self.hide()

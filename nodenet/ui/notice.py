"""Bars across the top of the window, under the toolbar, for what a person must not miss.

:class:`WindowBar` is the strip itself (full width, not movable, not a panel one
switches on); :class:`NoticeBar` says something about the open project (a sample
running on a stand-in dataset, and how to install the real one) until dismissed or
until another project is opened. The autosave's recovery offer is another such bar.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolBar, QToolButton, QWidget

STYLES = {  # background, border, text
    "info": ("#e8f4fd", "#64b5f6", "#0d3c61"),
    "warning": ("#fff8e1", "#ffb74d", "#5d4037"),
}


class WindowBar(QToolBar):
    """A full-width, non-movable strip under the main toolbar holding one framed row
    (``self.row``) coloured by :meth:`set_kind`."""

    def __init__(self, title: str, name: str, parent: QWidget | None = None):
        super().__init__(title, parent)
        self.setObjectName(name)  # saveState needs names
        self.setMovable(False)
        self.setFloatable(False)
        self.toggleViewAction().setVisible(False)  # not in the toolbars' context menu
        self.frame = QFrame()
        self.frame.setObjectName("bar_frame")
        self.row = QHBoxLayout(self.frame)
        self.row.setContentsMargins(8, 3, 4, 3)
        self.addWidget(self.frame)
        self.set_kind("warning")

    def set_kind(self, kind: str) -> None:
        background, border, colour = STYLES[kind]
        self.frame.setStyleSheet(
            f"QFrame#bar_frame {{ background: {background}; border: 1px solid {border};"
            f" border-radius: 3px; }} QLabel {{ color: {colour}; }}"
        )


class NoticeBar(WindowBar):
    """A sentence about the open project and a button that dismisses it; hidden while empty."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Notice", "toolbar_notice", parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.row.addWidget(self.label, 1)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss this notice")
        self.close_button.clicked.connect(self.clear)
        self.row.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_notice(self, text: str, kind: str = "warning") -> None:
        self.set_kind(kind)
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def clear(self) -> None:
        self.label.setText("")
        self.hide()

"""The welcome page: new project, open, recent files and the samples, shown when nodenet starts.

:class:`Welcome` puts the page and the canvas in a stack as the main window's
central widget. While the page shows, the docks and the toolbar are hidden (the
window layout is restored, and saved, as it was); opening or creating a project,
any edit or a training run brings the editor back. Help → Welcome returns to it,
File → Open Sample shows the same sample cards in a dialog.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics, QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from nodenet.ui.canvas import style
from nodenet.ui.sample_gallery import (
    CARD_STYLE,
    ClickableCard,
    OpenSampleDialog,
    SampleGallery,
    card_label,
    gallery_scroll,
)
from nodenet.ui.settings import RecentFiles

if TYPE_CHECKING:
    from nodenet.ui.main_window import MainWindow

SIDEBAR_WIDTH = 320
TAGLINE = "Design neural networks by drawing them, train them on your laptop, take them anywhere."
FIRST_STEPS = (
    "Open a sample and press Run (Ctrl+R): the curves grow as it trains.",
    "Drag blocks from the palette onto the canvas; drag from a port to wire them.",
    "Help → Welcome (Alt+Home) brings this page back.",
)
SAMPLES_INTRO = (
    "Each sample comes with its data and training settings: open one and press Run. "
    "It opens as an untitled copy, so the bundled file is never changed."
)

PAGE_STYLE = f"""
QWidget#welcome {{ background: {style.BACKGROUND}; }}
QFrame#sidebar {{ background: {style.CARD}; border: none;
    border-right: 1px solid {style.CARD_BORDER}; }}
QLabel#appName {{ color: {style.TEXT}; font-weight: 700; }}
QLabel#heading {{ color: {style.TEXT}; font-weight: 600; }}
QLabel#muted {{ color: {style.TEXT_MUTED}; }}
QLabel#section {{ color: {style.TEXT_MUTED}; font-weight: 600; letter-spacing: 1px; }}
QPushButton#primary, QPushButton#secondary {{
    border-radius: 6px; padding: 8px 14px; text-align: left; font-weight: 600; }}
QPushButton#primary {{ background: {style.SELECTED}; color: white; border: 1px solid #1d4ed8; }}
QPushButton#primary:hover {{ background: #1d4ed8; }}
QPushButton#secondary {{ background: {style.CARD}; color: {style.TEXT};
    border: 1px solid {style.CARD_BORDER}; }}
QPushButton#secondary:hover {{ border-color: {style.SELECTED}; }}
QPushButton#link {{ border: none; background: transparent; color: {style.SELECTED};
    text-align: left; padding: 2px 0; }}
QPushButton#link:hover {{ text-decoration: underline; }}
QPushButton:focus {{ outline: none; border: 2px solid {style.SELECTED}; }}
QScrollArea#recentScroll, QWidget#recentList {{ background: transparent; border: none; }}
""" + CARD_STYLE.replace("QFrame#card {", "QFrame#card { padding: 0px;")


def _font_label(text: str, name: str, delta: float = 0.0) -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    if delta:
        font = label.font()
        font.setPointSizeF(font.pointSizeF() + delta)
        label.setFont(font)
    return label


def _button(text: str, name: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setToolTip(tip)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    return button


def short_folder(folder: Path) -> str:
    """``folder`` with the home folder written ``~``."""
    try:
        return str(Path("~") / folder.relative_to(Path.home()))
    except ValueError:
        return str(folder)


class RecentEntry(ClickableCard):
    """A recent project: its name and folder; greyed and inert when the file is gone."""

    def __init__(self, path: str, width: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.path = path
        self.missing = not Path(path).is_file()
        name = card_label(Path(path).name, "cardTitle", self)
        folder_text = short_folder(Path(path).parent)
        if self.missing:
            folder_text = f"not found: {folder_text}"
        folder = card_label("", "cardNote", self)
        folder.setWordWrap(False)
        metrics = QFontMetrics(folder.font())
        folder.setText(metrics.elidedText(folder_text, Qt.TextElideMode.ElideMiddle, width - 24))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(2)
        layout.addWidget(name)
        layout.addWidget(folder)
        if self.missing:
            self.setEnabled(False)
            self.setToolTip(f"{path}\nThe file was moved or deleted.")
        else:
            self.setToolTip(f"Open {path}")


class WelcomePage(QWidget):
    """The page itself: actions on the left, sample cards on the right.

    Signals: ``newRequested``, ``openRequested``, ``backRequested``,
    ``recentChosen(path)``, ``sampleChosen(Sample)``, ``forgetMissing``.
    """

    newRequested = Signal()
    openRequested = Signal()
    backRequested = Signal()
    forgetMissing = Signal()
    recentChosen = Signal(str)
    sampleChosen = Signal(object)

    def __init__(self, recent: RecentFiles, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("welcome")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setStyleSheet(PAGE_STYLE)
        self.recent = recent
        self.entries: list[RecentEntry] = []
        self.back_to: str | None = None
        self.gallery: SampleGallery | None = None  # built when the page first shows
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._sidebar())
        layout.addLayout(self._samples_column(), 1)
        self.refresh()

    def _sidebar(self) -> QFrame:
        sidebar = QFrame()
        sidebar.setObjectName("sidebar")
        sidebar.setFixedWidth(SIDEBAR_WIDTH)
        self.new_button = _button(
            "New project", "primary", "Start from an empty canvas: one Input, one Output (Ctrl+N)"
        )
        self.open_button = _button("Open…", "secondary", "Open a project file (Ctrl+O)")
        self.back_button = _button("", "link", "Return to the project you were editing (Esc)")
        self.forget_button = _button(
            "Forget missing files", "link", "Remove the files that no longer exist from the list"
        )
        self.new_button.clicked.connect(self.newRequested)
        self.open_button.clicked.connect(self.openRequested)
        self.back_button.clicked.connect(self.backRequested)
        self.forget_button.clicked.connect(self.forgetMissing)
        self.recent_box = QVBoxLayout()
        self.recent_box.setSpacing(6)
        recent_widget = QWidget()
        recent_widget.setObjectName("recentList")
        recent_widget.setLayout(self.recent_box)
        self.recent_box.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setObjectName("recentScroll")
        scroll.viewport().setAutoFillBackground(False)
        scroll.setWidget(recent_widget)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        column = QVBoxLayout(sidebar)
        column.setContentsMargins(28, 32, 28, 20)
        column.setSpacing(10)
        column.addWidget(_font_label("nodenet", "appName", 14))
        column.addWidget(_font_label(TAGLINE, "muted", 0.5))
        column.addSpacing(16)
        column.addWidget(self.new_button)
        column.addWidget(self.open_button)
        column.addWidget(self.back_button)
        column.addSpacing(18)
        column.addWidget(_font_label("RECENT PROJECTS", "section", -1))
        column.addWidget(scroll, 1)
        column.addWidget(self.forget_button)
        column.addSpacing(12)
        column.addWidget(_font_label("FIRST STEPS", "section", -1))
        for step in FIRST_STEPS:
            column.addWidget(_font_label(f"•  {step}", "muted"))
        return sidebar

    def _samples_column(self) -> QVBoxLayout:
        column = QVBoxLayout()
        column.setContentsMargins(36, 32, 12, 0)
        column.setSpacing(6)
        column.addWidget(_font_label("Samples", "heading", 7))
        intro = _font_label(SAMPLES_INTRO, "muted", 0.5)
        column.addWidget(intro)
        column.addSpacing(12)
        self.gallery_scroll = gallery_scroll(QWidget())
        column.addWidget(self.gallery_scroll, 1)
        return column

    def load_samples(self) -> SampleGallery:
        """The sample cards (drawn the first time only)."""
        if self.gallery is None:
            self.gallery = SampleGallery()
            self.gallery.setStyleSheet("")  # the page's sheet styles the cards
            self.gallery.setContentsMargins(0, 0, 0, 24)
            self.gallery.sampleChosen.connect(self.sampleChosen)
            self.gallery_scroll.setWidget(self.gallery)
            self.gallery.setAutoFillBackground(False)  # setWidget turned it on
        return self.gallery

    def refresh(self, back_to: str | None = None) -> None:
        """Fill the recent files again; offer the way back to ``back_to`` (a project name)."""
        while self.recent_box.count():
            widget = self.recent_box.takeAt(0).widget()
            if widget is not None:
                widget.hide()
                widget.deleteLater()
        self.entries = []
        width = SIDEBAR_WIDTH - 56
        for path in self.recent.paths():
            entry = RecentEntry(path, width)
            entry.clicked.connect(lambda p=path: self.recentChosen.emit(p))
            self.entries.append(entry)
            self.recent_box.addWidget(entry)
        if not self.entries:
            self.recent_box.addWidget(
                _font_label("No recent projects yet: they will appear here.", "muted")
            )
        self.recent_box.addStretch(1)
        self.forget_button.setVisible(any(e.missing for e in self.entries))
        self.back_to = back_to
        self.back_button.setVisible(back_to is not None)
        self.back_button.setText(f"←  Back to {back_to}" if back_to else "")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.back_button.isVisible():
            self.backRequested.emit()
            return
        super().keyPressEvent(event)


class Welcome(QObject):
    """The welcome page of ``window``: :meth:`show` (Help → Welcome) and
    :meth:`choose_sample` (File → Open Sample…), commands of
    :data:`nodenet.ui.actions.COMMANDS`.
    """

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.page = WelcomePage(window.recent)
        ignored = QSizePolicy.Policy.Ignored  # the page must not make the editor's minimum size
        self.page.setSizePolicy(ignored, ignored)
        self.stack = QStackedWidget()
        canvas = window.takeCentralWidget()
        self.stack.addWidget(canvas)
        self.stack.addWidget(self.page)
        window.setCentralWidget(self.stack)
        self.sample_dialog: OpenSampleDialog | None = None
        self._state = QByteArray()
        self._title = ""
        self._connect()
        window.installEventFilter(self)

    def _connect(self) -> None:
        page, window, document = self.page, self.window, self.window.document
        page.newRequested.connect(lambda: window.new_project())
        page.openRequested.connect(lambda: window.open_dialog())
        page.recentChosen.connect(self._open_recent)
        page.sampleChosen.connect(lambda sample: window.open_sample(sample.path))
        page.backRequested.connect(self.leave)
        page.forgetMissing.connect(self._forget_missing)
        document.projectReplaced.connect(self.leave)
        document.undo_stack.indexChanged.connect(self.leave)
        document.readOnlyChanged.connect(lambda flag: flag and self.leave())

    @property
    def active(self) -> bool:
        return self.stack.currentWidget() is self.page

    def show(self, returnable: bool = True) -> None:
        """Show the page; ``returnable`` offers the way back to the open project."""
        window = self.window
        self.page.load_samples()
        self.page.refresh(window.document.project.name if returnable else None)
        if not self.active:
            self._state = window.saveState()
            self._title = window.windowTitle()
            self._hide_editor()
            self.stack.setCurrentWidget(self.page)
        window.setWindowTitle("Welcome — nodenet")
        self.page.new_button.setFocus(Qt.FocusReason.OtherFocusReason)

    def leave(self) -> None:
        """Back to the editor, its docks and toolbar as they were."""
        if not self.active:
            return
        self.stack.setCurrentIndex(0)
        self._restore_editor()
        self.window.setWindowTitle(self._title)

    def choose_sample(self) -> OpenSampleDialog:
        """File → Open Sample: the gallery in a dialog; choosing a card opens that sample."""
        if self.sample_dialog is not None:
            self.sample_dialog.deleteLater()
        dialog = OpenSampleDialog(self.window)
        dialog.accepted.connect(lambda: self.window.open_sample(dialog.chosen.path))
        self.sample_dialog = dialog
        dialog.open()
        return dialog

    def _hide_editor(self) -> None:
        for dock in self.window.docks.values():
            dock.hide()
        self.window.toolbar.hide()
        self.window.status_label.hide()

    def _restore_editor(self) -> None:
        """The docks and the main toolbar as they were; other bars keep their state."""
        window = self.window
        others = {bar: bar.isHidden() for bar in window.findChildren(QToolBar)}
        others.pop(window.toolbar, None)
        window.restoreState(self._state)
        for bar, hidden in others.items():
            bar.setHidden(hidden)
        window.status_label.show()

    def _open_recent(self, path: str) -> None:
        if not self.window.open_file(path) and self.active:  # gone meanwhile: list it again
            self.page.refresh(self.page.back_to)

    def _forget_missing(self) -> None:
        for entry in self.page.entries:
            if entry.missing:
                self.window.recent.remove(entry.path)
        self.page.refresh(self.page.back_to)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """On close, put the docks back first so the window saves the editor's layout."""
        if watched is self.window and event.type() == QEvent.Type.Close and self.active:
            self._restore_editor()
            QTimer.singleShot(0, self._after_close_attempt)
        return False

    def _after_close_attempt(self) -> None:
        if self.active and self.window.isVisible():  # the close was cancelled
            self._hide_editor()

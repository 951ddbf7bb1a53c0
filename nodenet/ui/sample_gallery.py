"""The bundled samples as cards: a thumbnail of each graph, its title, description and promise.

Shared by the welcome page and File → Open Sample. A thumbnail is the real
canvas scene of the sample rendered offscreen into a :class:`QImage`, fitted to
the thumbnail, and kept in memory keyed by the file's path and modification
time (a sample edited on disk is drawn again; nothing is written to disk).
"""

from __future__ import annotations

import copy
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QGuiApplication,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPixmap,
)
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from nodenet.errors import NodenetError
from nodenet.graph.project import Project, load
from nodenet.samples import Sample, list_samples, load_sample, with_fallback
from nodenet.ui.canvas import style
from nodenet.ui.document import Document

THUMB_SIZE = QSize(280, 96)  # logical pixels, drawn at the screen's pixel ratio
CARD_WIDTH = 304
GAP = 18
MAX_THUMB_ZOOM = 0.6  # a two-block graph is not blown up past this scale
THUMB_MARGIN = 28.0  # scene units around the graph
SOURCE_KEYS = ("path", "test_path")  # data-source keys holding file paths

CARD_STYLE = f"""
QFrame#card {{
    background: {style.CARD};
    border: 1px solid {style.CARD_BORDER};
    border-radius: 10px;
}}
QFrame#card:hover {{ border: 1px solid {style.SELECTED}; }}
QFrame#card:focus {{ border: 2px solid {style.SELECTED}; }}
QFrame#card:disabled {{ background: transparent; border: 1px dashed {style.CARD_BORDER}; }}
QFrame#card QLabel {{ background: transparent; border: none; }}
QLabel#cardTitle {{ color: {style.TEXT}; font-weight: 600; }}
QLabel#cardText {{ color: #475467; }}
QLabel#cardNote {{ color: {style.TEXT_MUTED}; }}
QLabel#cardNote:disabled, QLabel#cardTitle:disabled {{ color: #98a2b3; }}
"""

_thumbnails: dict[tuple[str, int, int, float], tuple[int, QImage]] = {}


# -- finding and opening samples ---------------------------------------------------------


def open_sample_copy(path: str | Path) -> tuple[Project, str | None]:
    """The sample at ``path`` as an untitled project (Save asks where to put it), and
    the sentence saying which stand-in dataset it runs on, if any.

    Its fallback applies when its dataset is missing (:func:`with_fallback`), and
    data files named relative to the sample become absolute, so the copy trains
    wherever it is saved. A project file without sample metadata opens as is.
    """
    path = Path(path)
    project, note = with_fallback(load(path))
    source = (project.data or {}).get("source")
    if isinstance(source, dict):
        project.data = copy.deepcopy(project.data)
        for key in SOURCE_KEYS:
            value = project.data["source"].get(key)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                project.data["source"][key] = str((path.parent / value).resolve())
    project.path = None
    return project, note


# -- thumbnails ------------------------------------------------------------------------


def render_project(project: Project, size: QSize, ratio: float = 2.0) -> QImage:
    """The project's graph as the canvas draws it, fitted into ``size`` (logical pixels).

    The image has ``size * ratio`` pixels and that device pixel ratio, its corners
    rounded (transparent outside).
    """
    from nodenet.ui.canvas.scene import CanvasScene

    document = Document(project)
    scene = CanvasScene(document, document)
    width, height = size.width(), size.height()
    graph = scene.graph_rect().adjusted(-THUMB_MARGIN, -THUMB_MARGIN, THUMB_MARGIN, THUMB_MARGIN)
    scale = min(width / max(graph.width(), 1.0), height / max(graph.height(), 1.0))
    scale = min(scale, MAX_THUMB_ZOOM)
    source = QRectF(0, 0, width / scale, height / scale)
    source.moveCenter(graph.center())
    scene.set_detailed(scale >= style.DETAIL_ZOOM)
    image = QImage(
        round(width * ratio), round(height * ratio), QImage.Format.Format_ARGB32_Premultiplied
    )
    image.setDevicePixelRatio(ratio)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHints(
        QPainter.RenderHint.Antialiasing
        | QPainter.RenderHint.TextAntialiasing
        | QPainter.RenderHint.SmoothPixmapTransform
    )
    clip = QPainterPath()
    clip.addRoundedRect(QRectF(0, 0, width, height), 6, 6)
    painter.setClipPath(clip)
    scene.render(painter, QRectF(0, 0, width, height), source)
    painter.end()
    return image


def sample_thumbnail(sample: Sample, size: QSize = THUMB_SIZE, ratio: float = 2.0) -> QImage:
    """The sample's graph rendered offscreen; cached until the file changes."""
    key = (str(sample.path), size.width(), size.height(), ratio)
    mtime = sample.path.stat().st_mtime_ns
    cached = _thumbnails.get(key)
    if cached is None or cached[0] != mtime:
        _thumbnails[key] = (mtime, render_project(load_sample(sample), size, ratio))
    return _thumbnails[key][1]


def screen_ratio() -> float:
    """The pixel ratio thumbnails are drawn at: the screen's, so they are drawn pixel for pixel."""
    screen = QGuiApplication.primaryScreen()
    return max(1.0, screen.devicePixelRatio() if screen is not None else 1.0)


# -- cards ------------------------------------------------------------------------------


class ClickableCard(QFrame):
    """A white card that acts as a button: click, Enter or Space emits ``clicked``."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        self.setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._pressed = False

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._pressed = event.button() == Qt.MouseButton.LeftButton
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        inside = self.rect().contains(event.position().toPoint())
        if self._pressed and event.button() == Qt.MouseButton.LeftButton and inside:
            self.clicked.emit()
        self._pressed = False
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.clicked.emit()
            return
        super().keyPressEvent(event)


def card_label(text: str, name: str, parent: QWidget, point_delta: float = 0.0) -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    if point_delta:
        font = label.font()
        font.setPointSizeF(font.pointSizeF() + point_delta)
        label.setFont(font)
    return label


class SampleCard(ClickableCard):
    """One sample: the thumbnail of its graph, its title, description and promised result."""

    def __init__(self, sample: Sample, parent: QWidget | None = None):
        super().__init__(parent)
        self.sample = sample
        self.setFixedWidth(CARD_WIDTH)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        self.setToolTip(f"Open “{sample.title}” as an untitled copy ({sample.path.name})")
        self.setAccessibleName(sample.title)
        self.thumbnail = QLabel(self)
        self.thumbnail.setFixedSize(THUMB_SIZE)
        image = sample_thumbnail(sample, THUMB_SIZE, screen_ratio())
        self.thumbnail.setPixmap(QPixmap.fromImage(image))
        self.title = card_label(sample.title, "cardTitle", self, 1.5)
        self.description = card_label(sample.description, "cardText", self)
        layout = QVBoxLayout(self)
        pad = (CARD_WIDTH - THUMB_SIZE.width()) // 2
        layout.setContentsMargins(pad, pad, pad, pad + 2)
        layout.setSpacing(8)
        layout.addWidget(self.thumbnail)
        layout.addWidget(self.title)
        layout.addWidget(self.description)
        layout.addStretch(1)
        promise = sample.effective_promise()
        if promise is not None:
            layout.addWidget(card_label(f"Reaches {promise} on its test set", "cardNote", self))


class SampleGallery(QWidget):
    """Every bundled sample as a card, as many columns as fit. ``sampleChosen(Sample)``."""

    sampleChosen = Signal(object)

    def __init__(self, samples: list[Sample] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setStyleSheet(CARD_STYLE)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(GAP)
        self.cards: list[SampleCard] = []
        self.columns = 0
        for sample in list_samples(skip_unreadable=True) if samples is None else samples:
            try:
                card = SampleCard(sample, self)
            except (NodenetError, OSError):  # a broken sample file: leave it out of the gallery
                continue
            card.clicked.connect(lambda s=sample: self.sampleChosen.emit(s))
            self.cards.append(card)
        if not self.cards:
            self.grid.addWidget(card_label("No samples are installed.", "cardNote", self), 0, 0)
        self._reflow(3)

    def card(self, name: str) -> SampleCard:
        """The card of the sample called ``name`` (file stem)."""
        return next(c for c in self.cards if c.sample.name == name)

    def columns_for(self, width: int) -> int:
        return max(1, (width + GAP) // (CARD_WIDTH + GAP))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._reflow(self.columns_for(event.size().width()))

    def _reflow(self, columns: int) -> None:
        if columns == self.columns or not self.cards:
            return
        self.columns = columns
        for card in self.cards:
            self.grid.removeWidget(card)
        for i, card in enumerate(self.cards):
            self.grid.addWidget(card, i // columns, i % columns)
        for column in range(self.grid.columnCount()):
            self.grid.setColumnStretch(column, 0)
        self.grid.setColumnStretch(columns, 1)  # cards stay left-aligned
        self.grid.setRowStretch(self.grid.rowCount(), 1)


def gallery_scroll(gallery: QWidget) -> QScrollArea:
    """The gallery in a frameless vertical scroll area showing the page's background."""
    scroll = QScrollArea()
    scroll.setWidget(gallery)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.viewport().setAutoFillBackground(False)
    gallery.setAutoFillBackground(False)  # setWidget turned it on
    return scroll


class OpenSampleDialog(QDialog):
    """File → Open Sample: the gallery; a click on a card accepts with ``chosen`` set."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Open Sample")
        self.setObjectName("openSample")
        self.setStyleSheet(f"QDialog#openSample {{ background: {style.BACKGROUND}; }}")
        self.chosen: Sample | None = None
        heading = QLabel("Open a sample project")
        font = heading.font()
        font.setPointSizeF(font.pointSizeF() + 5)
        font.setWeight(font.Weight.DemiBold)
        heading.setFont(font)
        intro = card_label(
            "Each sample comes with its data and training settings: open one and press Run. "
            "It opens as an untitled copy, so the bundled file is never changed.",
            "cardNote",
            self,
        )
        intro.setStyleSheet(f"color: {style.TEXT_MUTED};")
        self.gallery = SampleGallery(parent=self)
        self.gallery.sampleChosen.connect(self._choose)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setToolTip(
            "Close without opening a sample (Esc)"
        )
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 16)
        layout.setSpacing(10)
        layout.addWidget(heading)
        layout.addWidget(intro)
        layout.addSpacing(6)
        layout.addWidget(gallery_scroll(self.gallery), 1)
        layout.addWidget(buttons)
        columns = min(3, max(1, len(self.gallery.cards)))
        self.resize(columns * (CARD_WIDTH + GAP) + 48 + 24, 760)

    def _choose(self, sample: Sample) -> None:
        self.chosen = sample
        self.accept()

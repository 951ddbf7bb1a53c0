"""What the network looks at for one test sample: its saliency map and Grad-CAM for a chosen
class and convolution block (image models), and the activations of a chosen block.

The numbers come from :class:`nodenet.explain.Explainer`, computed on a worker thread (a
pass over a big model may take a moment); a result arriving after another sample, class
or block was chosen is dropped.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QVBoxLayout, QWidget

from nodenet.errors import NodenetError
from nodenet.explain import Explainer, grad_cam_maps, resize_bilinear, saliency_map
from nodenet.ui.training.data_preview import to_pixmap

PICTURE = 168  # pixels per side of each picture
GRID_MAPS = 64  # feature maps drawn at most in the activations grid
HEAT = pg.colormap.get("inferno")
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nodenet-explain")
        return _POOL


def heat_pixmap(values: np.ndarray, size: int = PICTURE, under: np.ndarray | None = None):
    """A 2-D array as a heat map ``size`` pixels high (scaled to its own range), blended
    half and half over the grey picture ``under`` of the same shape when given."""
    values = np.asarray(values, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    rgb = HEAT.map(scaled.reshape(-1), mode="float")[:, :3].reshape(*values.shape, 3)
    if under is not None:
        grey = np.asarray(under, dtype=np.float64)
        if grey.ndim == 3:
            grey = grey.mean(axis=2)
        g_low, g_high = float(grey.min()), float(grey.max())
        grey = (grey - g_low) / (g_high - g_low) if g_high > g_low else np.zeros_like(grey)
        rgb = 0.5 * rgb + 0.5 * grey[..., None]
    pixels = np.ascontiguousarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    h, w = pixels.shape[:2]
    image = QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaledToHeight(size, Qt.TransformationMode.FastTransformation)


def feature_grid(activation: np.ndarray) -> np.ndarray:
    """One sample's activations as a 2-D picture: feature maps ``(h, w, c)`` tiled in a grid
    (the first :data:`GRID_MAPS`, each scaled to its own range, one pixel apart), a 2-D
    output as it is, a vector folded into a near-square."""
    a = np.asarray(activation, dtype=np.float64)
    if a.ndim == 3:
        maps = a[..., :GRID_MAPS]
        low = maps.min(axis=(0, 1))
        span = np.where(maps.max(axis=(0, 1)) > low, maps.max(axis=(0, 1)) - low, 1.0)
        maps = (maps - low) / span
        h, w, c = maps.shape
        columns = int(np.ceil(np.sqrt(c)))
        rows = int(np.ceil(c / columns))
        grid = np.zeros((rows * (h + 1) - 1, columns * (w + 1) - 1))
        for k in range(c):
            r, col = divmod(k, columns)
            grid[r * (h + 1) : r * (h + 1) + h, col * (w + 1) : col * (w + 1) + w] = maps[..., k]
        return grid
    if a.ndim == 2:
        return a
    flat = a.reshape(-1)
    side = int(np.ceil(np.sqrt(flat.size)))
    return np.concatenate([flat, np.full(side * side - flat.size, flat.min())]).reshape(side, -1)


class _Relay(QObject):
    """Carries a worker thread's result to the GUI thread (a queued signal)."""

    done = Signal(int, object)


class ExplanationView(QWidget):
    """Saliency, Grad-CAM and activations of the chosen test sample."""

    explained = Signal()  # a result was drawn (tests wait on it)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.explainer: Explainer | None = None
        self.inputs: dict[str, Any] = {}
        self.head_id: str | None = None
        self.sample: int | None = None
        self.result: dict[str, Any] | None = None  # the arrays drawn
        self.image_shapes: dict[str, Any] = {}
        self._serial = 0
        self._relay = _Relay(self)
        self._relay.done.connect(self._arrived)
        self.cls = QComboBox()
        self.cls.setToolTip("The class whose score the saliency and Grad-CAM explain")
        self.cam_block = QComboBox()
        self.cam_block.setToolTip("The block whose feature maps Grad-CAM weighs")
        self.act_block = QComboBox()
        self.act_block.setToolTip("The block whose output for this sample is drawn")
        for combo in (self.cls, self.cam_block, self.act_block):
            combo.currentIndexChanged.connect(self._request)
        self.status = QLabel("Choose a sample to see what the network looks at.")
        self.status.setWordWrap(True)
        self.pictures = {k: QLabel() for k in ("input", "saliency", "grad_cam", "activations")}
        for label in self.pictures.values():
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setMinimumSize(PICTURE // 2, PICTURE // 2)
        grid = QGridLayout()
        titles = ("input", "saliency (|gradient|)", "Grad-CAM", "activations")
        for column, (key, title) in enumerate(zip(self.pictures, titles, strict=True)):
            grid.addWidget(QLabel(title), 0, column, Qt.AlignmentFlag.AlignHCenter)
            grid.addWidget(self.pictures[key], 1, column)
        grid.setRowStretch(2, 1)  # titles and pictures at the top
        controls = QGridLayout()
        for row, (text, combo) in enumerate(
            (("class", self.cls), ("Grad-CAM block", self.cam_block), ("block", self.act_block))
        ):
            controls.addWidget(QLabel(text), row // 2, 2 * (row % 2))
            controls.addWidget(combo, row // 2, 2 * (row % 2) + 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.status)
        layout.addLayout(grid, 1)

    def set_model(
        self,
        explainer: Explainer | None,
        inputs: dict[str, Any],
        head_id: str,
        classes: list,
        image_shapes: dict[str, Any] | None = None,
    ) -> None:
        """Explain ``head_id`` of ``explainer``'s model on ``inputs`` (test arrays); an Input
        with a picture shape in ``image_shapes`` (:func:`nodenet.reports.image_shape`, a flat
        image too) is drawn as a picture."""
        self.explainer, self.inputs, self.head_id, self.sample = explainer, inputs, head_id, None
        self.image_shapes = dict(image_shapes or {})
        self.result = None
        for combo in (self.cls, self.cam_block, self.act_block):
            combo.blockSignals(True)
            combo.clear()
        if explainer is not None:
            self.cls.addItems([str(c) for c in classes])
            if explainer.conv_blocks():
                self.cam_block.addItems(explainer.conv_blocks())
                self.cam_block.setCurrentText(explainer.default_cam_block() or "")
            self.act_block.addItems(explainer.blocks())
        for combo in (self.cls, self.cam_block, self.act_block):
            combo.blockSignals(False)
        for label in self.pictures.values():
            label.clear()
        self.status.setText(
            "Choose a sample to see what the network looks at."
            if explainer is not None
            else "Explanations need the numpy engine's model of this run."
        )

    def show_sample(self, sample: int, predicted: int | None = None) -> None:
        """Explain test sample ``sample`` (for its ``predicted`` class first, if given)."""
        self.sample = sample
        if predicted is not None and 0 <= predicted < self.cls.count():
            self.cls.blockSignals(True)
            self.cls.setCurrentIndex(predicted)
            self.cls.blockSignals(False)
        self._request()

    @Slot()
    def _request(self) -> None:
        if self.explainer is None or self.sample is None:
            return
        self._serial += 1
        serial, sample = self._serial, self.sample
        x = {k: np.asarray(v[sample : sample + 1]) for k, v in self.inputs.items()}
        cls = self.cls.currentIndex() if self.cls.count() else None
        job = (
            self.explainer,
            x,
            cls,
            self.head_id,
            self.image_shapes,
            self.cam_block.currentText(),
            self.act_block.currentText(),
        )
        self.status.setText(f"Explaining sample {sample} …")
        future = _pool().submit(_explain, *job)
        relay = self._relay
        future.add_done_callback(lambda f: _deliver(relay, serial, _outcome(f)))

    @Slot(int, object)
    def _arrived(self, serial: int, outcome: Any) -> None:
        if serial != self._serial:
            return  # another sample, class or block was chosen meanwhile
        if isinstance(outcome, str):
            self.status.setText(outcome)
            self.explained.emit()
            return
        self.result = outcome
        image = outcome.get("image")
        shown = {
            "input": None if image is None else to_pixmap(outcome["picture"], PICTURE),
            "saliency": _maybe(outcome.get("saliency")),
            "grad_cam": None
            if outcome.get("grad_cam") is None
            else heat_pixmap(outcome["grad_cam"], under=image),
            "activations": _maybe(feature_grid(outcome["activations"])),
        }
        for key, pixmap in shown.items():
            if pixmap is None:
                self.pictures[key].clear()
            else:
                self.pictures[key].setPixmap(pixmap)
        cls = self.cls.currentText()
        score = outcome.get("score")
        self.status.setText(
            f"Sample {self.sample}: class {cls}"
            + ("" if score is None else f", score {score:.4g}")
            + ("" if image is not None else " (saliency and Grad-CAM need an image input)")
        )
        self.explained.emit()


def _deliver(relay: _Relay, serial: int, outcome: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the view was closed meanwhile
        relay.done.emit(serial, outcome)


def _maybe(values: np.ndarray | None):
    return None if values is None else heat_pixmap(values)


def _outcome(future) -> Any:
    """A job's result, or the message of what went wrong in it."""
    try:
        return future.result()
    except NodenetError as err:
        return str(err)
    except Exception as err:  # a bug must not take the view down
        return f"the explanation failed ({type(err).__name__}: {err})"


def _image_input(explainer: Explainer, x: dict, shapes: dict) -> tuple[str, tuple] | None:
    """The Input drawn as a picture and its picture shape: the model's first image Input,
    else the first float Input with a picture shape (a flat image)."""
    for image_id in explainer.image_inputs():
        return image_id, tuple(np.shape(x[image_id])[1:])
    for image_id, shape in shapes.items():
        if shape is not None and image_id in x and np.asarray(x[image_id]).dtype.kind == "f":
            return image_id, tuple(shape)
    return None


def _explain(
    explainer: Explainer,
    x: dict,
    cls: int | None,
    head_id: str,
    shapes: dict,
    cam_block: str,
    act_block: str,
) -> dict[str, Any]:
    """The arrays one sample's explanation draws (runs on the worker thread)."""
    out: dict[str, Any] = {"image": None, "saliency": None, "grad_cam": None, "score": None}
    found_image = _image_input(explainer, x, shapes)
    if found_image is not None and cls is not None:
        image_id, shape = found_image
        blocks = (cam_block,) if cam_block else ()
        found = explainer.gradients(x, cls, head_id, blocks=blocks)
        image = np.asarray(x[image_id][0], dtype=np.float64).reshape(shape)
        gradient = np.asarray(found.inputs[image_id]).reshape(1, *shape)
        if image.ndim == 3 and shape[2] == 1:
            image, gradient = image[..., 0], gradient[..., 0]
        grey = image if image.ndim == 2 else image.mean(axis=2)
        out["picture"] = image if image.ndim == 2 or shape[2] == 3 else grey
        out["image"] = grey
        out["saliency"] = saliency_map(gradient)[0]
        out["score"] = float(found.score[0])
        if cam_block:
            cam = grad_cam_maps(found.values[cam_block], found.grads[cam_block])
            out["grad_cam"] = resize_bilinear(cam, out["image"].shape)[0]
    out["activations"] = explainer.activations(x, act_block)[0] if act_block else np.zeros((1, 1))
    return out

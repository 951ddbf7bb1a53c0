"""What an image model looks at: saliency maps, Grad-CAM and the activations of any block.

All three come from one forward and one backward pass of the engine's blocks for a few
samples (:class:`Explainer`), in inference mode, the gradient seeded with a one-hot at the
chosen class of the chosen Output:

- the **class score** is the class's logit where the block feeding the Output applies
  softmax or sigmoid itself (the score Simonyan et al. and Selvaraju et al. differentiate),
  else the Output's value;
- the **saliency map** (Simonyan, Vedaldi & Zisserman 2014) is the gradient of the class
  score with respect to the input; :func:`saliency_map` shows it as the largest absolute
  value over the channels of each pixel;
- **Grad-CAM** (Selvaraju et al. 2017, the original form): for a block with feature maps
  ``A`` ``(h, w, k)``, ``alpha_k`` is the spatial mean of d score / d A_k and the map
  ``ReLU(sum_k alpha_k A_k)`` ``(h, w)`` is resized to the input's ``(H, W)`` bilinearly
  with half-pixel centres (as ``torch.nn.functional.interpolate(mode="bilinear",
  align_corners=False)``); it is not normalized (a view scales it to its maximum).

The passes run the blocks one by one without the conv + pooling fusion of
:class:`nodenet.engine.model.Model` (every block's output exists, results are the same) and
with every block computing its input gradient. Plain numpy, no Qt.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from nodenet.engine.layer import Context
from nodenet.engine.model import Head, Model
from nodenet.errors import DataError

LOGIT_ACTIVATIONS = ("softmax", "sigmoid")
_PASSES = threading.Lock()  # a pass switches every block's needs_input_grad on for a while


@dataclass
class Gradients:
    """One forward and backward pass: the class ``score`` ``(n,)``, d score / d input per
    float Input id, and per asked block its output (``values``) and d score / d output
    (``grads``), axis 0 the sample."""

    score: np.ndarray
    inputs: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]


class Explainer:
    """Saliency, Grad-CAM and activations of a built :class:`Model` for chosen samples.

    ``inputs`` everywhere: arrays keyed by Input id, axis 0 the sample, as the model takes
    them (prepared: scaled and normalized).
    """

    def __init__(self, model: Model):
        self.model = model

    # -- what can be explained ----------------------------------------------------------

    def blocks(self) -> list[str]:
        """Every block with one output whose activations can be shown (not the Inputs
        and Outputs), in the graph's order."""
        model = self.model
        return [
            i
            for i in model.order
            if model.layers[i].TYPE not in ("Input", "Output") and i not in model.multi
        ]

    def conv_blocks(self) -> list[str]:
        """The blocks with feature maps ``(h, w, channels)`` that Grad-CAM can use, the last
        (usually the best: the most abstract maps still in space) first."""
        model = self.model
        return [i for i in reversed(self.blocks()) if len(model.shapes[i]) == 3]

    def default_cam_block(self) -> str | None:
        """The block Grad-CAM uses unless told: the last convolution (Selvaraju et al.'s
        choice), else the last block with feature maps, else None."""
        blocks = self.conv_blocks()
        convs = [b for b in blocks if "Conv" in self.model.layers[b].TYPE]
        return (convs or blocks or [None])[0]

    def image_inputs(self) -> list[str]:
        """The float Inputs shaped ``(h, w)`` or ``(h, w, channels)``."""
        model = self.model
        return [
            i
            for i in model.input_ids
            if model.layers[i].config["dtype"] not in ("int32", "string")
            and len(model.shapes[i]) in (2, 3)
        ]

    def head(self, head_id: str | None = None) -> Head:
        """The Output ``head_id`` (the first by default); DataError if there is none."""
        for head in self.model.heads:
            if head_id is None or head.id == head_id:
                return head
        raise DataError(f"the model has no Output {head_id!r} to explain")

    # -- the passes ----------------------------------------------------------------------

    def activations(self, inputs: dict[str, np.ndarray], block: str) -> np.ndarray:
        """The output of ``block`` for ``inputs`` (inference mode), axis 0 the sample."""
        if block not in self.blocks():
            raise DataError(f"the model has no block {block!r} with one output to show")
        values, _ = self._forward(inputs, keep=(block,))
        return values[block]

    def gradients(
        self,
        inputs: dict[str, np.ndarray],
        cls: int,
        head_id: str | None = None,
        blocks: tuple[str, ...] = (),
    ) -> Gradients:
        """d (score of class ``cls`` of the Output ``head_id``) / d inputs and ``blocks``."""
        head = self.head(head_id)
        width = self.model.shapes[head.id]
        if len(width) != 1:
            raise DataError(
                f"{head.id}: explanations need an Output of class scores (samples, classes), "
                f"not one shaped {tuple(width)}"
            )
        if not 0 <= cls < width[0]:
            raise DataError(f"{head.id}: there is no class {cls} (it has {width[0]})")
        for block in blocks:
            if block not in self.blocks():
                raise DataError(f"the model has no block {block!r} with one output to explain")
        with _PASSES:
            values, caches = self._forward(inputs, keep=None)
            source = self.model.layers[head.source]
            logits = (
                head.source not in self.model.multi
                and source.POST_ACTIVATION
                and source.config["activation"] in LOGIT_ACTIVATIONS
            )
            seed_node = head.source if logits else head.id
            value = values[seed_node]
            score_of = caches[seed_node][1] if logits else value  # z: the pre-activation
            seed = np.zeros_like(score_of)
            seed[:, cls] = 1.0
            input_grads, block_grads = self._backward(
                values, caches, seed_node, seed, logits, blocks
            )
        return Gradients(
            score=np.asarray(score_of)[:, cls].copy(),
            inputs=input_grads,
            values={b: values[b] for b in blocks},
            grads=block_grads,
        )

    def saliency(
        self, inputs: dict[str, np.ndarray], cls: int, head_id: str | None = None
    ) -> dict[str, np.ndarray]:
        """d score / d input per float Input id, shaped like the input."""
        return self.gradients(inputs, cls, head_id).inputs

    def grad_cam(
        self,
        inputs: dict[str, np.ndarray],
        cls: int,
        block: str,
        head_id: str | None = None,
        size: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Grad-CAM maps ``(n, H, W)`` of ``block`` for class ``cls``, resized to ``size``
        (default: the first image Input's height and width; no resizing without one)."""
        if block not in self.conv_blocks():
            raise DataError(f"{block!r} has no feature maps (height, width, channels) to use")
        found = self.gradients(inputs, cls, head_id, blocks=(block,))
        cam = grad_cam_maps(found.values[block], found.grads[block])
        if size is None:
            images = self.image_inputs()
            size = tuple(self.model.shapes[images[0]][:2]) if images else cam.shape[1:]
        return resize_bilinear(cam, size)

    def _forward(
        self, inputs: dict[str, np.ndarray], keep: tuple[str, ...] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every block's output (only ``keep``'s unless ``keep`` is None) and, when
        ``keep`` is None, every block's cache for :meth:`_backward`."""
        model = self.model
        fed = model.check_inputs(inputs)
        ctx = Context(training=False, rng=np.random.default_rng(0))
        values: dict[str, Any] = {}
        caches: dict[str, Any] = {}
        for node_id in model.order:
            layer = model.layers[node_id]
            if layer.TYPE == "Input":
                xs = [fed[node_id]]
            else:
                feeds = model.feeds[node_id]
                xs = [values[s][p] if s in model.multi else values[s] for s, p in feeds]
            values[node_id], cache = layer.forward(model.weights[node_id], xs, ctx)
            if keep is None:
                caches[node_id] = cache
        if keep is not None:
            values = {k: values[k] for k in keep}
        return values, caches

    def _backward(
        self,
        values: dict[str, Any],
        caches: dict[str, Any],
        seed_node: str,
        seed: np.ndarray,
        from_logits: bool,
        blocks: tuple[str, ...],
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """d score / d input per float Input and d score / d output of each of ``blocks``."""
        model = self.model
        grads: dict[str, Any] = {seed_node: seed}
        input_grads: dict[str, np.ndarray] = {}
        block_grads: dict[str, np.ndarray] = {}
        saved = {i: getattr(model.layers[i], "needs_input_grad", True) for i in model.order}
        try:
            for layer in model.layers.values():
                layer.needs_input_grad = True
            for node_id in reversed(model.order):
                if node_id not in grads:
                    continue
                g = grads.pop(node_id)
                layer = model.layers[node_id]
                if layer.TYPE == "Input":
                    input_grads[node_id] = g
                    continue
                if node_id in blocks:
                    block_grads[node_id] = g
                if node_id in model.multi:  # an output nothing used gets a zero gradient
                    g = [
                        np.zeros_like(v) if gi is None else gi
                        for gi, v in zip(g, values[node_id], strict=True)
                    ]
                logits = from_logits and node_id == seed_node
                weights, cache = model.weights[node_id], caches[node_id]
                ins, _ = layer.backward(weights, cache, g, from_logits=logits)
                for (src, port), ig in zip(model.feeds[node_id], ins, strict=False):
                    if ig is None:
                        continue
                    if src in model.multi:
                        per_output = grads.setdefault(src, [None] * model.multi[src])
                        old = per_output[port]
                        per_output[port] = ig if old is None else old + ig
                    else:
                        grads[src] = grads[src] + ig if src in grads else ig
        finally:
            for node_id, needed in saved.items():
                model.layers[node_id].needs_input_grad = needed
        for block in blocks:  # a block the score does not depend on
            if block not in block_grads:
                block_grads[block] = np.zeros_like(values[block])
        return input_grads, block_grads


def grad_cam_maps(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """``ReLU(sum_k alpha_k A_k)`` ``(n, h, w)`` from feature maps ``A`` and d score / d A,
    both ``(n, h, w, k)``; ``alpha_k`` is the mean of d score / d A_k over h and w."""
    alpha = np.asarray(grads, dtype=np.float64).mean(axis=(1, 2))  # (n, k)
    cam = np.einsum("nhwk,nk->nhw", np.asarray(activations, dtype=np.float64), alpha)
    return np.maximum(cam, 0.0)


def resize_bilinear(maps: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """``maps`` ``(n, h, w)`` resized to ``size`` ``(H, W)`` bilinearly, half-pixel centres
    (source coordinate ``(i + 0.5) * h / H - 0.5``, clamped to the edges)."""
    maps = np.asarray(maps, dtype=np.float64)
    (y0, y1, ty), (x0, x1, tx) = (
        _axis(size[0], maps.shape[1]),
        _axis(size[1], maps.shape[2]),
    )
    top = maps[:, y0][:, :, x0] * (1 - tx) + maps[:, y0][:, :, x1] * tx
    bottom = maps[:, y1][:, :, x0] * (1 - tx) + maps[:, y1][:, :, x1] * tx
    return top * (1 - ty)[:, None] + bottom * ty[:, None]


def _axis(out: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output position: the two source indices and the weight of the second."""
    source = np.maximum((np.arange(out) + 0.5) * (size / out) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(int), size - 1)
    high = np.minimum(low + 1, size - 1)
    return low, high, source - low


def saliency_map(gradient: np.ndarray) -> np.ndarray:
    """A saliency map ``(n, h, w)`` from d score / d image ``(n, h, w[, channels])``: each
    pixel's largest absolute gradient over its channels (Simonyan et al.)."""
    gradient = np.abs(np.asarray(gradient, dtype=np.float64))
    return gradient.max(axis=3) if gradient.ndim == 4 else gradient

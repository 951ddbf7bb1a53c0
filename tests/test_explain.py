"""Saliency, Grad-CAM and activations (nodenet.explain) against PyTorch autograd and finite
differences.

The MNIST CNN sample with random (perturbed) weights is exported to PyTorch
(:mod:`nodenet.export.pytorch`, checked layer for layer against nodenet in
tests/export); autograd on that module gives the reference gradients of the class logit
with respect to the image and to the second convolution's feature maps, and torch's
``interpolate(mode="bilinear", align_corners=False)`` the reference resizing. A tiny
float64 model is checked against central finite differences of its predictions.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from nodenet.explain import Explainer, grad_cam_maps, resize_bilinear, saliency_map
from nodenet.graph.project import Edge, Node, Project, load
from nodenet.runner import build_model

SAMPLE = Path(__file__).parents[1] / "sample_projects" / "mnist_cnn.json"
CLASSES = (3, 7)


def perturbed(model, seed: int):
    """The model with every weight moved randomly: the biases are no longer zero."""
    rng = np.random.default_rng(seed)
    for weights in model.weights.values():
        for w in weights.values():
            w += rng.normal(0.0, 0.05, size=w.shape).astype(w.dtype)
    return model


@pytest.fixture(scope="module")
def mnist():
    project = load(SAMPLE)
    model = perturbed(build_model(project, seed=3), 3)
    images = np.random.default_rng(4).random((3, 28, 28, 1)).astype(np.float32)
    return project, model, images


def torch_reference(project, model, images, cls: int, tmp_path):
    """(d logit / d image, conv_2's feature maps, d logit / d them) by torch autograd on
    the PyTorch export of ``model``."""
    torch = pytest.importorskip("torch", reason="the `ref` extra (torch) is the reference")
    from nodenet.export import export_pytorch
    from tests.support.generated import import_source

    code = export_pytorch(project, model.get_weights())
    module = import_source(code.source, tmp_path, "explain_reference")
    net = module.build_model()
    path = tmp_path / "explain_weights.npz"
    path.write_bytes(code.weights)
    module.load_weights(net, path)
    net.eval()
    logits, relus = [], []
    net.probs.register_forward_hook(lambda _m, _i, out: logits.append(out))
    real_relu = torch.relu

    def recording_relu(x):  # the exported forward applies each block's ReLU with torch.relu
        out = real_relu(x)
        out.retain_grad()
        relus.append(out)
        return out

    x = torch.tensor(images, requires_grad=True)
    with mock.patch.object(torch, "relu", recording_relu):
        net(x)
    conv_2 = relus[1]  # conv_1, conv_2, hidden: the second is conv_2's output (channels last)
    logits[0][:, cls].sum().backward()
    return x.grad.numpy(), conv_2.detach().numpy(), conv_2.grad.numpy()


@pytest.mark.parametrize("cls", CLASSES)
def test_saliency_and_grad_cam_of_the_mnist_cnn_match_torch_autograd(mnist, cls, tmp_path):
    torch = pytest.importorskip("torch", reason="the `ref` extra (torch) is the reference")
    project, model, images = mnist
    x_grad, maps, maps_grad = torch_reference(project, model, images, cls, tmp_path)
    explainer = Explainer(model)
    found = explainer.gradients({"image": images}, cls, blocks=("conv_2",))

    scale = np.abs(x_grad).max()
    assert scale > 1e-3  # the gradients are not all zero
    np.testing.assert_allclose(found.inputs["image"], x_grad, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(found.values["conv_2"], maps, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        found.grads["conv_2"], maps_grad, rtol=1e-4, atol=1e-4 * np.abs(maps_grad).max()
    )

    alpha = maps_grad.mean(axis=(1, 2))  # Grad-CAM from torch's numbers, torch's resizing
    cam = np.maximum((maps * alpha[:, None, None, :]).sum(-1), 0.0)
    expected = torch.nn.functional.interpolate(
        torch.tensor(cam[:, None]), size=(28, 28), mode="bilinear", align_corners=False
    )[:, 0].numpy()
    got = explainer.grad_cam({"image": images}, cls, "conv_2")
    assert got.shape == (3, 28, 28) and expected.max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * expected.max())
    np.testing.assert_allclose(
        explainer.saliency({"image": images}, cls)["image"], x_grad, rtol=1e-4, atol=1e-4 * scale
    )


def test_grad_cam_differs_between_classes(mnist):
    _, model, images = mnist
    explainer = Explainer(model)
    first, second = (explainer.grad_cam({"image": images[:1]}, c, "conv_2") for c in CLASSES)
    assert not np.allclose(first, second)


def test_activations_are_the_blocks_outputs(mnist):
    _, model, images = mnist
    explainer = Explainer(model)
    assert explainer.conv_blocks() == ["pool_2", "conv_2", "pool_1", "conv_1"]
    assert explainer.default_cam_block() == "conv_2"
    conv_1 = explainer.activations({"image": images}, "conv_1")
    kernel = model.weights["conv_1"]["kernel"]  # (3, 3, 1, 16), "same" padding, ReLU
    bias = model.weights["conv_1"]["bias"]
    padded = np.pad(images[..., 0].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    expected = np.zeros((3, 28, 28, 16))
    for dy in range(3):
        for dx in range(3):
            expected += padded[:, dy : dy + 28, dx : dx + 28, None] * kernel[dy, dx, 0]
    np.testing.assert_allclose(conv_1, np.maximum(expected + bias, 0), rtol=1e-4, atol=1e-5)
    probs = explainer.activations({"image": images}, "probs")
    np.testing.assert_allclose(probs, model.predict({"image": images})["digit"], atol=1e-6)


def tiny_project(activation: str) -> Project:
    """Input 6x6x2 -> Conv2D 3 filters tanh -> MaxPooling -> Flatten -> Dense 4 -> Output."""
    nodes = [
        Node("x", "Input", {"shape": [6, 6, 2]}),
        Node("conv", "Conv2D", {"filters": 3, "kernel_size": [3, 3], "activation": "tanh"}),
        Node("pool", "MaxPooling2D", {"pool_size": [2, 2]}),
        Node("flat", "Flatten", {}),
        Node("dense", "Dense", {"units": 4, "activation": activation}),
        Node("y", "Output", {"loss": "mean_squared_error", "metrics": []}),
    ]
    chain = ["x", "conv", "pool", "flat", "dense", "y"]
    return Project("tiny", nodes, [Edge(a, b, 0) for a, b in itertools.pairwise(chain)])


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += eps
        down[index] -= eps
        grad[index] = (f(up) - f(down)) / (2 * eps)
    return grad


def test_saliency_matches_finite_differences_of_the_output():
    model = perturbed(build_model(tiny_project("linear"), dtype=np.float64, seed=5), 5)
    x = np.random.default_rng(6).normal(size=(1, 6, 6, 2))
    cls = 2
    got = Explainer(model).saliency({"x": x}, cls)["x"]
    expected = numerical_gradient(lambda v: model.predict({"x": v})["y"][0, cls], x)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


def test_the_score_of_a_softmax_head_is_its_logit():
    """d logit_c - d logit_j = d (log p_c - log p_j): finite differences of the probabilities."""
    model = perturbed(build_model(tiny_project("softmax"), dtype=np.float64, seed=7), 7)
    x = np.random.default_rng(8).normal(size=(1, 6, 6, 2))
    explainer = Explainer(model)
    c, j = 1, 3
    got = explainer.saliency({"x": x}, c)["x"] - explainer.saliency({"x": x}, j)["x"]

    def log_ratio(v):
        p = model.predict({"x": v})["y"][0]
        return np.log(p[c]) - np.log(p[j])

    np.testing.assert_allclose(got, numerical_gradient(log_ratio, x), rtol=1e-6, atol=1e-8)


def test_resizing_matches_torch_interpolate():
    torch = pytest.importorskip("torch", reason="the `ref` extra (torch) is the reference")
    maps = np.random.default_rng(9).random((2, 5, 7))
    for size in ((28, 28), (11, 3), (5, 7), (2, 2)):
        expected = torch.nn.functional.interpolate(
            torch.tensor(maps[:, None]), size=size, mode="bilinear", align_corners=False
        )[:, 0].numpy()
        np.testing.assert_allclose(resize_bilinear(maps, size), expected, atol=1e-12)


def test_grad_cam_and_saliency_maps_by_hand():
    activations = np.zeros((1, 2, 2, 2))
    activations[0, :, :, 0] = [[1.0, 2.0], [3.0, 4.0]]
    activations[0, :, :, 1] = [[4.0, 0.0], [0.0, 0.0]]
    grads = np.zeros((1, 2, 2, 2))
    grads[0, :, :, 0] = 0.5  # alpha_0 = 0.5
    grads[0, 0, 0, 1] = -4.0  # alpha_1 = -1
    cam = grad_cam_maps(activations, grads)
    np.testing.assert_allclose(cam[0], [[0.0, 1.0], [1.5, 2.0]])  # ReLU(0.5 A0 - A1)
    gradient = np.array([[[[0.1, -0.3], [0.2, 0.0]]]])  # (1, 1, 2, 2): channels last
    np.testing.assert_allclose(saliency_map(gradient), [[[0.3, 0.2]]])


def test_what_cannot_be_explained_is_refused_with_a_message(mnist):
    from nodenet.errors import DataError

    _, model, images = mnist
    explainer = Explainer(model)
    with pytest.raises(DataError, match="no class 10"):
        explainer.saliency({"image": images}, 10)
    with pytest.raises(DataError, match="'hidden' has no feature maps"):
        explainer.grad_cam({"image": images}, 1, "hidden")
    with pytest.raises(DataError, match="no Output 'nope'"):
        explainer.saliency({"image": images}, 1, head_id="nope")

"""Convolutions and BatchNormalization run part by part of the batch, on several threads.

Checked against PyTorch autograd on batches big enough to run in parallel and
split unevenly into parts, over several steps in a row: a convolution's window
buffer is handed from one step's backward to the next step's forward, so a
stale or shared buffer would show as wrong gradients in the later steps.
"""

from __future__ import annotations

import numpy as np
import pytest

from nodenet.engine.catalog import LAYERS, Context

torch = pytest.importorskip("torch", reason="PyTorch autograd is the reference here")


def _torch_conv(x, kernel, bias, relu: bool, pool: bool):
    """PyTorch's Conv2D (valid, stride 1) [+ relu] [+ 2x2 max pooling], channels-last in and out."""
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tk = torch.tensor(kernel, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(bias, dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.conv2d(tx.permute(0, 3, 1, 2), tk.permute(3, 2, 0, 1), tb)
    if relu:
        y = torch.relu(y)
    if pool:
        y = torch.nn.functional.max_pool2d(y, 2)
    return tx, tk, tb, y.permute(0, 2, 3, 1)


@pytest.mark.parametrize("channels", [1, 12])  # narrow and wide windows
@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_over_several_steps_matches_torch(channels, relu):
    layer = LAYERS.get("Conv2D")({"filters": 16, "activation": "relu" if relu else "linear"})
    rng = np.random.default_rng(channels)
    kernel = rng.normal(size=(3, 3, channels, 16)).astype(np.float32) * 0.3
    bias = rng.normal(size=16).astype(np.float32) * 0.1
    weights = {"kernel": kernel, "bias": bias}
    for step in range(3):
        x = rng.normal(size=(37, 19, 17, channels)).astype(np.float32)
        probe = rng.normal(size=(37, 17, 15, 16)).astype(np.float32)
        y, cache = layer.forward(weights, [x], Context(training=True))
        (dx,), dw = layer.backward(weights, cache, probe)
        tx, tk, tb, ty = _torch_conv(x, kernel, bias, relu, pool=False)
        (ty * torch.tensor(probe, dtype=torch.float64)).sum().backward()
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-4, err_msg=f"{step}")
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dw["kernel"], tk.grad.numpy(), rtol=1e-4, atol=2e-3)
        np.testing.assert_allclose(dw["bias"], tb.grad.numpy(), rtol=1e-4, atol=2e-3)


def test_fused_conv_and_pool_over_several_steps_matches_torch():
    from nodenet.engine.layers import conv_pool

    conv = LAYERS.get("Conv2D")({"filters": 16, "activation": "relu"})
    pool = LAYERS.get("MaxPooling2D")({})
    rng = np.random.default_rng(5)
    kernel = rng.normal(size=(3, 3, 12, 16)).astype(np.float32) * 0.3
    bias = rng.normal(size=16).astype(np.float32) * 0.1
    weights = {"kernel": kernel, "bias": bias}
    for _ in range(3):
        x = rng.normal(size=(37, 19, 17, 12)).astype(np.float32)
        probe = rng.normal(size=(37, 8, 7, 16)).astype(np.float32)
        y, cache = conv_pool.forward(conv, pool, weights, x, Context(training=True))
        (dx,), dw = conv_pool.backward(conv, weights, cache, probe)
        tx, tk, tb, ty = _torch_conv(x, kernel, bias, relu=True, pool=True)
        (ty * torch.tensor(probe, dtype=torch.float64)).sum().backward()
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dw["kernel"], tk.grad.numpy(), rtol=1e-4, atol=2e-3)
        np.testing.assert_allclose(dw["bias"], tb.grad.numpy(), rtol=1e-4, atol=2e-3)


def test_batchnorm_channels_last_matches_torch():
    layer = LAYERS.get("BatchNormalization")({})
    rng = np.random.default_rng(3)
    gamma = rng.uniform(0.5, 1.5, 24).astype(np.float32)
    beta = rng.normal(size=24).astype(np.float32)
    weights = {
        "gamma": gamma,
        "beta": beta,
        "moving_mean": np.zeros(24, np.float32),
        "moving_variance": np.ones(24, np.float32),
    }
    x = (3.0 + 2.0 * rng.normal(size=(45, 23, 21, 24))).astype(np.float32)
    probe = rng.normal(size=x.shape).astype(np.float32)
    y, cache = layer.forward(weights, [x], Context(training=True))
    (dx,), dw = layer.backward(weights, cache, probe)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tg = torch.tensor(gamma, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    ty = torch.nn.functional.batch_norm(
        tx.permute(0, 3, 1, 2), None, None, tg, tb, training=True, eps=1e-3
    ).permute(0, 2, 3, 1)
    (ty * torch.tensor(probe, dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw["gamma"], tg.grad.numpy(), rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(dw["beta"], tb.grad.numpy(), rtol=1e-4, atol=1e-2)
    expected_mean = 0.01 * x.reshape(-1, 24).astype(np.float64).mean(0)
    np.testing.assert_allclose(weights["moving_mean"], expected_mean, rtol=1e-5, atol=1e-6)

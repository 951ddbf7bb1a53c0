"""Every activation name against Keras 3 (torch backend) and against its PyTorch export.

For each name in :data:`nodenet.engine.activations.NAMES`: the value and the gradient of
``sum(a * R)`` equal ``keras.activations.get(name)`` through torch autograd (float64, tight;
float32, the dtype kept), and the generated PyTorch expression (``torch_activation``, and
the recurrent helper's ``ACTIVATIONS`` table) computes the same values. Inputs avoid the
kinks (|x| within 1e-3 of 0, +-0.5, +-1, +-3, 6) where a subgradient is a convention.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from nodenet.engine import activations  # noqa: E402
from nodenet.export import blocks  # noqa: E402, F401  (registers the torch helpers)
from nodenet.export.snippets import TORCH_HELPERS, torch_activation  # noqa: E402

pytestmark = pytest.mark.ref

if keras.backend.backend() != "torch":
    pytest.skip("these tests need keras on the torch backend", allow_module_level=True)

_KINKS = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 6.0])


def _inputs(dtype, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-8, 8, size=(4, 3, 7))
    near = np.abs(x[..., None] - _KINKS).min(axis=-1) < 1e-3
    return np.where(near, x + 0.01, x).astype(dtype)


def test_every_keras_activation_name_is_known():
    from keras.src.activations import ALL_OBJECTS_DICT

    missing = set(ALL_OBJECTS_DICT) - set(activations.NAMES) - {"glu", "threshold"}
    assert not missing
    assert set(activations.NAMES) <= set(ALL_OBJECTS_DICT)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", activations.NAMES)
def test_value_and_gradient_match_keras(name, dtype):
    z = _inputs(dtype)
    a = activations.apply(name, z)
    assert a.dtype == dtype and a.shape == z.shape
    probe = np.random.default_rng(1).normal(size=z.shape).astype(dtype)
    g = activations.grad(name, probe.copy(), z, a)
    assert g.dtype == dtype

    tensor = torch.tensor(z, requires_grad=True)
    out = keras.activations.get(name)(tensor)
    (out * torch.from_numpy(probe)).sum().backward()
    # float64: torch's hardsigmoid backward holds 1/6 as a float32 constant
    tol = {"rtol": 1e-7, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-5}
    np.testing.assert_allclose(a, out.detach().numpy(), **tol)
    np.testing.assert_allclose(g, tensor.grad.numpy(), **tol)


@pytest.mark.parametrize("name", activations.NAMES)
def test_pytorch_export_matches(name):
    import torch.nn.functional as F

    z = _inputs(np.float32, seed=2)
    expected = activations.apply(name, z)
    scope = {"torch": torch, "F": F, "nn": torch.nn}
    for source in TORCH_HELPERS.values():  # our own helper sources, in their order
        exec(source, scope)
    x = torch.from_numpy(z)
    got = eval(torch_activation(name, "x"), {**scope, "x": x})
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
    table = scope["ACTIVATIONS"][name](x)
    np.testing.assert_allclose(table.numpy(), expected, rtol=1e-5, atol=1e-5)

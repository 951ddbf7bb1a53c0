"""The exported PyTorch module's Adam and AdamW against the engine's (Keras-exact, see
tests/engine/test_flat_update.py): the same start weights and gradients, step by step.

The gradients include tiny ones (1e-6), where Keras's epsilon, added to sqrt(v), and torch's,
added to the bias-corrected root, give different updates: torch's own Adam fails here."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the `ref` extra (torch) runs the PyTorch export")

from nodenet.engine.flat_params import FlatParams  # noqa: E402
from nodenet.engine.optimizers import make_optimizer  # noqa: E402
from nodenet.export import export_pytorch  # noqa: E402
from nodenet.graph.project import Edge, Node, Project  # noqa: E402
from tests.support.generated import import_source  # noqa: E402

pytestmark = pytest.mark.ref

SHAPES = {"kernel": (7, 5), "bias": (5,), "gamma": (3, 2, 2)}
SCALES = (1e-6, 1e-3, 1.0)  # gradient sizes: epsilon matters most for the smallest
CONFIGS = {
    "adam": {"name": "adam", "learning_rate": 0.01},
    "adam_betas": {"name": "adam", "learning_rate": 0.002, "beta_1": 0.8, "beta_2": 0.99},
    "adam_amsgrad": {"name": "adam", "learning_rate": 0.01, "amsgrad": True},
    "adamw": {"name": "adamw", "learning_rate": 0.01, "weight_decay": 0.1},
    "adamw_amsgrad": {"name": "adamw", "learning_rate": 0.01, "amsgrad": True},
}


def generated_module(config: dict, tmp_path):
    """The exported PyTorch module of a one-Dense project trained with ``config``."""
    nodes = [
        Node("x", "Input", {"shape": [3]}),
        Node("d", "Dense", {"units": 2}),
        Node("y", "Output", {"loss": "mean_squared_error"}),
    ]
    project = Project("adam", nodes, [Edge("x", "d"), Edge("d", "y")])
    project.training["optimizer"] = config
    return import_source(export_pytorch(project).source, tmp_path, "adam")


def gradients(scale: float, count: int, rng) -> list[dict[str, np.ndarray]]:
    return [
        {k: (scale * rng.normal(size=s)).astype(np.float32) for k, s in SHAPES.items()}
        for _ in range(count)
    ]


def torch_steps(optimizer, params: list, grads: list[dict]) -> None:
    for step in grads:
        for param, key in zip(params, SHAPES, strict=True):
            param.grad = torch.from_numpy(step[key].copy())
        optimizer.step()


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", CONFIGS)
def test_generated_adam_steps_as_the_engine(name, scale, tmp_path):
    config = CONFIGS[name]
    rng = np.random.default_rng(7)
    start = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    grads = gradients(scale, 12, rng)
    engine = make_optimizer(config)
    flat = FlatParams(start, np.float32)
    for step in grads:
        engine.apply_flat(flat, step)

    module = generated_module(config, tmp_path)
    params = [torch.nn.Parameter(torch.from_numpy(start[k].copy())) for k in SHAPES]
    optimizer = module.make_optimizer(torch.nn.ParameterList(params))
    torch_steps(optimizer, params, grads)
    for param, key in zip(params, SHAPES, strict=True):
        moved = flat.params[key] - start[key]  # compare the steps, not the (large) weights
        np.testing.assert_allclose(
            param.detach().numpy() - start[key], moved, rtol=1e-4, atol=1e-4 * np.abs(moved).max()
        )


def test_torch_adam_differs_where_the_generated_one_agrees():
    """The check above can fail: torch's Adam, epsilon unchanged, misses the engine's steps
    for small gradients by far more than its tolerance."""
    rng = np.random.default_rng(7)
    start = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    grads = gradients(1e-6, 12, rng)
    engine = make_optimizer(CONFIGS["adam"])
    flat = FlatParams(start, np.float32)
    for step in grads:
        engine.apply_flat(flat, step)
    params = [torch.nn.Parameter(torch.from_numpy(start[k].copy())) for k in SHAPES]
    torch_steps(torch.optim.Adam(params, lr=0.01, eps=1e-7), params, grads)
    moved = flat.params["kernel"] - start["kernel"]
    torch_moved = params[0].detach().numpy() - start["kernel"]
    assert np.abs(torch_moved - moved).max() > 0.01 * np.abs(moved).max()

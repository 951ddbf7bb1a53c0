"""LayerNormalization over a non-last axis in the Keras export: Permute, normalize over the
last axis, Permute back; Keras on torch (in this process) and on JAX (a subprocess) give
nodenet's outputs from nodenet's weights."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) runs the Keras export")

from nodenet.export import export_keras  # noqa: E402
from nodenet.graph.project import Edge, Node, Project  # noqa: E402
from nodenet.runner import build_model  # noqa: E402
from tests.support.generated import import_source  # noqa: E402

ROOT = Path(__file__).parents[2]
CASES = [((5, 4), 1), ((3, 4, 2), 2), ((3, 4, 2), -3), ((3, 4, 2), 3), ((5, 4), -1)]
WRAPPED = ((3, 5, 4), 1, True)  # TimeDistributed: axis 1 of each (5, 4) step


def normalizing(shape, axis, wrapped: bool = False) -> Project:
    """Input -> LayerNormalization(axis) (inside TimeDistributed when ``wrapped``) -> Dense."""
    norm = {"type": "LayerNormalization", "params": {"axis": axis}}
    return Project(
        "layer_norm_axis",
        [
            Node("x", "Input", {"shape": list(shape)}),
            Node("ln", "TimeDistributed", {"layer": norm})
            if wrapped
            else Node("ln", "LayerNormalization", {"axis": axis}),
            Node("f", "Flatten", {}),
            Node("d", "Dense", {"units": 3}),
            Node("y", "Output", {"loss": "mean_squared_error"}),
        ],
        [Edge("x", "ln"), Edge("ln", "f"), Edge("f", "d"), Edge("d", "y")],
    )


def trained_like(project):
    """nodenet's model with gamma and beta away from 1 and 0, its weights and an input."""
    model = build_model(project, seed=1)
    weights = model.get_weights()
    rng = np.random.default_rng(0)
    for key in ("ln/gamma", "ln/beta"):
        weights[key] = rng.normal(size=weights[key].shape).astype(np.float32)
    model.set_weights(weights)
    x = rng.normal(size=(6, *project.nodes[0].params["shape"])).astype(np.float32)
    return model, weights, x


def keras_prediction(module, weights_file: Path, x):
    model = module.build_model()
    module.load_weights(model, weights_file)
    out = model.predict(x, verbose=0)
    return out["y"] if isinstance(out, dict) else out


@pytest.mark.parametrize("shape,axis,wrapped", [*((s, a, False) for s, a in CASES), WRAPPED])
def test_keras_export_runs_on_this_backend_and_matches_nodenet(shape, axis, wrapped, tmp_path):
    project = normalizing(shape, axis, wrapped)
    model, weights, x = trained_like(project)
    code = export_keras(project, weights)
    moved = axis not in (-1, len(shape) - wrapped)
    assert ("layers.Permute(" in code.source) == moved
    (tmp_path / "w.npz").write_bytes(code.weights)
    module = import_source(code.source, tmp_path, "ln_axis")
    ours = model.predict({"x": x})["y"]
    np.testing.assert_allclose(keras_prediction(module, tmp_path / "w.npz", x), ours, atol=1e-5)


def test_keras_export_runs_on_jax(tmp_path):
    pytest.importorskip("jax", reason="jax runs the Keras export on its JAX backend")
    project = normalizing((3, 4, 2), 1)
    model, weights, x = trained_like(project)
    code = export_keras(project, weights)
    (tmp_path / "ln_jax.py").write_text(code.source)
    (tmp_path / "w.npz").write_bytes(code.weights)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        sys.path.insert(0, {str(tmp_path)!r})
        import ln_jax
        model = ln_jax.build_model()
        ln_jax.load_weights(model, {str(tmp_path / "w.npz")!r})
        out = model.predict(np.load({str(tmp_path / "x.npy")!r}), verbose=0)
        np.save({str(tmp_path / "out.npy")!r}, out["y"] if isinstance(out, dict) else out)
        """
    )
    env = {"KERAS_BACKEND": "jax", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ours = model.predict({"x": x})["y"]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), ours, atol=1e-5)

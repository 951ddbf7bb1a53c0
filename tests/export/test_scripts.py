"""The exported scripts run: nodenet export from the command line, then training.

The PyTorch script trains a sample for an epoch on the CPU, then again under
``torchrun --nproc_per_node 2`` (DistributedDataParallel over gloo); the Keras
script trains for an epoch too; a dataset that does not ship with
scikit-learn is read from the ``--data`` file nodenet writes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nodenet.cli import main
from nodenet.graph.project import load
from nodenet.runner import build_model
from tests.support.generated import SAMPLES

pytest.importorskip("torch", reason="the `ref` extra (torch) runs the PyTorch script")

pytestmark = pytest.mark.ref

DIGITS = next(p for p in SAMPLES if p.stem == "digits_mlp")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "KERAS_BACKEND": "torch", "PYTHONWARNINGS": "ignore"}
EPOCH = re.compile(r"Epoch 1/1 - loss (\d+\.\d+) - accuracy \d+\.\d+ - val_loss (\d+\.\d+)")


def export(tmp_path: Path, project: Path, to: str, *options: str) -> Path:
    out = tmp_path / f"{project.stem}_{to}.py"
    assert main(["export", str(project), "--to", to, "-o", str(out), *options]) == 0
    return out


def run(command: list[str], cwd: Path, timeout: int = 300, env: dict | None = None) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_pytorch_script_trains_a_sample_for_an_epoch(tmp_path):
    weights = tmp_path / "digits.weights.npz"
    build_model(load(DIGITS), seed=1).save_weights(weights)
    script = export(tmp_path, DIGITS, "pytorch", "--weights", str(weights))
    assert (tmp_path / "digits_mlp_pytorch_weights.npz").exists()
    out = run([sys.executable, str(script), "--epochs", "1", "--device", "cpu"], tmp_path)
    ((_, val_loss),) = EPOCH.findall(out)
    assert 0 < float(val_loss) < 1.0  # digits are learned within one epoch
    trained = tmp_path / "digits_mlp_pytorch_trained.npz"
    with np.load(trained, allow_pickle=False) as npz:
        assert set(npz.files) == {
            f"{n}.{k}" for n in ("hidden_1", "hidden_2", "probs") for k in ("weight", "bias")
        }
    assert "Test - loss" in out


@pytest.mark.slow
def test_pytorch_script_trains_under_torchrun_on_two_processes(tmp_path):
    script = export(tmp_path, DIGITS, "pytorch")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]
    out = run(command, tmp_path)
    assert len(EPOCH.findall(out)) == 1, out  # logs come from the first process only
    assert (tmp_path / "digits_mlp_pytorch_trained.npz").exists()


@pytest.mark.slow
def test_keras_script_trains_a_sample_for_an_epoch(tmp_path):
    pytest.importorskip("keras", reason="the `ref` extra (keras) runs the Keras script")
    from nodenet.keras_backend import installed_backends

    script = export(tmp_path, DIGITS, "keras")
    # without KERAS_BACKEND the module takes the first installed backend and says which
    env = {k: v for k, v in ENV.items() if k != "KERAS_BACKEND"}
    out = run([sys.executable, str(script), "--epochs", "1"], tmp_path, env=env)
    assert f"on the {installed_backends()[0]} backend" in out.splitlines()[0]
    assert "Total params: 26,122" in out and "val_loss" in out and "val_accuracy" in out


@pytest.mark.slow
def test_data_file_feeds_a_dataset_scikit_learn_lacks(tmp_path):
    """Two inputs and two outputs, from the .npz nodenet prepares (`export --data`)."""
    project = next(p for p in SAMPLES if p.stem == "two_in_two_out")
    script = export(tmp_path, project, "pytorch", "--data")
    data = tmp_path / "two_in_two_out_pytorch_data.npz"
    with np.load(data, allow_pickle=False) as npz:
        assert npz["train/image"].shape[1:] == (8, 8, 1) and npz["test/digit"].shape[1:] == (10,)
        assert {"train/meta", "train/ink", "test/image"} <= set(npz.files)
    out = run([sys.executable, str(script), "--epochs", "1", "--device", "cpu"], tmp_path)
    assert re.search(r"Epoch 1/1 - loss \d.* - digit_accuracy .* - val_ink_mae", out), out
    assert "Test - loss" in out


def test_export_errors_are_one_sentence(tmp_path, capsys):
    weights = tmp_path / "other.weights.npz"
    build_model(load(next(p for p in SAMPLES if p.stem == "diabetes_regression"))).save_weights(
        weights
    )
    code = main(
        [
            "export",
            str(DIGITS),
            "--to",
            "keras",
            "--weights",
            str(weights),
            "-o",
            str(tmp_path / "out.py"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "other.weights.npz" in err
    assert "'probs/kernel'" in err
    assert not (tmp_path / "out.py").exists()
    code = main(
        [
            "export",
            str(tmp_path / "missing.json"),
            "--to",
            "pytorch",
            "-o",
            str(tmp_path / "out.py"),
        ]
    )
    assert code == 1 and "missing.json" in capsys.readouterr().err


def test_callbacks_of_the_training_loop_act(tmp_path, capsys):
    """ReduceLROnPlateau lowers the rate and early stopping stops, restoring the best
    weights, when validation does not improve (a learning rate far too high)."""
    import torch

    from tests.support.generated import import_source

    project = load(DIGITS)
    project.training.update(
        {
            "optimizer": {"name": "sgd", "learning_rate": 50.0},
            "reduce_lr_on_plateau": {"monitor": "val_loss", "patience": 1, "factor": 0.5},
            "early_stopping": {"monitor": "val_accuracy", "patience": 2, "restore_best": True},
        }
    )
    from nodenet.export import export_pytorch

    module = import_source(export_pytorch(project).source, tmp_path, "callbacks")
    rng = np.random.default_rng(0)
    x = {"pixels": rng.normal(size=(64, 64)).astype(np.float32)}
    y = {"digit": np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=64)]}
    loader = torch.utils.data.DataLoader(module.to_dataset(x, y), batch_size=16)
    torch.manual_seed(0)
    net = module.build_model()
    optimizer = module.make_optimizer(net)
    module.fit(net, optimizer, loader, loader, 30, torch.device("cpu"), 0)
    out = capsys.readouterr().out
    assert "Early stopping after epoch" in out
    assert optimizer.param_groups[0]["lr"] < 50.0
    logged = [float(v) for v in re.findall(r"val_accuracy (\d+\.\d+)", out)]
    best = max(logged)
    final, _ = module.run_epoch(net, loader, torch.device("cpu"))
    assert final["accuracy"] == pytest.approx(best, abs=1e-4)  # the best weights came back

"""`nodenet train|evaluate|predict --backend torch`: PyTorch's weights work in nodenet.

The accuracy a PyTorch run prints (computed by PyTorch) is reproduced by the numpy
engine's `nodenet evaluate` on the weights it wrote; `--nproc 2` (torchrun, gloo) trains
as well as one process and its weights load; without PyTorch, choosing it says how to
install it and exits with 2.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from nodenet.cli import main
from nodenet.safeio import read_npz

SAMPLES = Path(__file__).parents[2] / "sample_projects"


def copy_sample(tmp_path: Path, name: str = "digits_mlp", **training) -> Path:
    doc = json.loads((SAMPLES / f"{name}.json").read_text())
    doc["training"].update(training)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def test_without_torch_choosing_it_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    path = copy_sample(tmp_path, epochs=1)
    for command in (["train", str(path)], ["evaluate", str(path), "--weights", "w.npz"]):
        assert main([*command, "--backend", "torch"]) == 2
        err = capsys.readouterr().err
        assert "pip install 'nodenet[torch]'" in err and "not installed" in err
    assert not list(tmp_path.glob("*.npz"))  # nothing was trained or written


def test_the_device_option_is_checked_before_anything_runs(tmp_path, capsys):
    path = copy_sample(tmp_path, epochs=1)
    with pytest.raises(SystemExit) as raised:
        main(["train", str(path), "--backend", "torch", "--device", "gpu"])
    assert raised.value.code == 2
    assert "expected cpu, cuda, cuda:N or mps" in capsys.readouterr().err


torch = pytest.importorskip("torch", reason="the PyTorch backend needs torch (the `torch` extra)")


def test_a_missing_gpu_is_named(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: nothing is missing")
    path = copy_sample(tmp_path, epochs=1)
    assert main(["train", str(path), "--backend", "torch", "--device", "cuda:0"]) == 1
    err = capsys.readouterr().err
    assert "device 'cuda:0'" in err and "CUDA" in err
    assert not list(tmp_path.glob("*.npz"))


def test_devices_this_machine_lacks_are_refused_naming_what_is_missing():
    from nodenet.torch_backend import DeviceError, TorchBackend, available_devices

    found = available_devices()
    assert found[0] == "cpu"
    assert ("mps" in found) == torch.backends.mps.is_available()
    if "mps" not in found:
        with pytest.raises(DeviceError, match="device 'mps': Apple's Metal"):
            TorchBackend("mps")
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last (or the first of none)
    with pytest.raises(DeviceError, match=f"device '{missing}'"):
        TorchBackend(missing)


def run(capsys, args: list[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_numpy_evaluate_reproduces_the_accuracy_torch_printed(tmp_path, capsys):
    path = copy_sample(tmp_path, epochs=3)
    weights = tmp_path / "W.weights.npz"
    trained = json.loads(
        run(
            capsys,
            ["train", str(path), "--json", "--backend", "torch", "--weights-out", str(weights)],
        )
    )
    assert len(trained["history"]["loss"]) == 3 and trained["weights"] == str(weights)
    evaluated = json.loads(
        run(capsys, ["evaluate", str(path), "--json", "--weights", str(weights)])
    )
    assert abs(evaluated["accuracy"] - trained["test"]["accuracy"]) * 100 <= 0.1
    assert evaluated["loss"] == pytest.approx(trained["test"]["loss"], rel=1e-4)
    # the same with evaluate and predict on PyTorch
    on_torch = json.loads(
        run(
            capsys,
            ["evaluate", str(path), "--json", "--weights", str(weights), "--backend", "torch"],
        )
    )
    assert on_torch["accuracy"] == pytest.approx(evaluated["accuracy"], abs=1e-6)
    x = tmp_path / "x.npz"
    rng = np.random.default_rng(0)
    np.savez(x, pixels=rng.normal(size=(7, 64)).astype(np.float32))
    for backend in ("numpy", "torch"):
        out = tmp_path / f"{backend}.npz"
        args = ["predict", str(path), "--weights", str(weights), "--input", str(x)]
        run(capsys, [*args, "--output", str(out), "--backend", backend])
    ours, theirs = read_npz(tmp_path / "torch.npz"), read_npz(tmp_path / "numpy.npz")
    assert ours.keys() == theirs.keys() == {"digit"} and ours["digit"].shape == (7, 10)
    np.testing.assert_allclose(ours["digit"], theirs["digit"], atol=1e-5)


@pytest.mark.slow
def test_two_processes_train_as_well_as_one_and_their_weights_load(tmp_path, capsys):
    path = copy_sample(tmp_path, epochs=15, early_stopping=None)
    results = {}
    for nproc in ("1", "2"):
        weights = tmp_path / f"n{nproc}.weights.npz"
        args = ["train", str(path), "--json", "--backend", "torch", "--weights-out", str(weights)]
        results[nproc] = json.loads(run(capsys, [*args, "--nproc", nproc]))
        evaluated = json.loads(
            run(capsys, ["evaluate", str(path), "--json", "--weights", str(weights)])
        )
        assert abs(evaluated["accuracy"] - results[nproc]["test"]["accuracy"]) * 100 <= 0.1
    one, two = results["1"]["test"]["accuracy"], results["2"]["test"]["accuracy"]
    assert abs(one - two) * 100 <= 1.0, (one, two)

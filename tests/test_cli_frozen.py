"""``nodenet train`` of a project with frozen blocks: they start from the weights file beside
the project (an import's, or an earlier run's) where it fits them, and training leaves them
as they are; every other block starts fresh, as always."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from nodenet.cli import main
from nodenet.graph.project import load
from nodenet.runner import build_model

SAMPLE = Path(__file__).parent.parent / "sample_projects" / "digits_mlp.json"


def test_train_keeps_frozen_blocks_from_the_weights_beside_the_project(tmp_path, capsys):
    path = tmp_path / "digits.json"
    shutil.copy(SAMPLE, path)
    doc = json.loads(path.read_text())
    for node in doc["nodes"]:
        if node["id"] == "hidden_1":
            node["trainable"] = False
    doc["training"].update(epochs=1, early_stopping=None)
    path.write_text(json.dumps(doc))
    rng = np.random.default_rng(0)
    held = {
        k: v + rng.normal(size=v.shape).astype(v.dtype)
        for k, v in build_model(load(path), seed=3).get_weights().items()
    }
    np.savez(tmp_path / "digits.weights.npz", **held)
    assert main(["train", str(path)]) == 0
    assert "the frozen blocks start from digits.weights.npz" in capsys.readouterr().err
    with np.load(tmp_path / "digits.weights.npz") as trained:
        for key, value in held.items():
            assert np.array_equal(trained[key], value) == key.startswith("hidden_1/"), key


def test_with_warm_start_every_block_starts_from_the_weights_beside_the_project(tmp_path, capsys):
    path = tmp_path / "digits.json"
    shutil.copy(SAMPLE, path)
    doc = json.loads(path.read_text())
    doc["training"].update(epochs=0, early_stopping=None, warm_start=True)
    path.write_text(json.dumps(doc))
    fresh = build_model(load(path), seed=doc["training"]["seed"]).get_weights()
    held = {k: v + np.float32(0.5) for k, v in fresh.items()}
    np.savez(tmp_path / "digits.weights.npz", **held)
    assert main(["train", str(path)]) == 0  # 0 epochs: the weights it starts from
    assert "the blocks start from digits.weights.npz" in capsys.readouterr().err
    with np.load(tmp_path / "digits.weights.npz") as written:
        for key, value in held.items():
            np.testing.assert_array_equal(written[key], value, err_msg=key)
    doc["training"]["warm_start"] = False
    path.write_text(json.dumps(doc))
    assert main(["train", str(path)]) == 0
    with np.load(tmp_path / "digits.weights.npz") as written:
        for key, value in fresh.items():
            np.testing.assert_array_equal(written[key], value, err_msg=key)

"""Learning works on real data: the sample projects reach the accuracy they promise.

Each test trains a bundled sample end to end through the same runner the GUI and
`nodenet train` use, and scores it on data it never saw during training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nodenet.engine.runner import build_run
from nodenet.project import load

SAMPLES = Path(__file__).parent.parent.parent / "sample_projects"


def train(name: str):
    run = build_run(load(SAMPLES / f"{name}.json"))
    history = run.fit()
    return run, history, run.evaluate_test()


def test_digits_mlp_reaches_96_percent():
    _, _, test = train("digits_mlp")
    assert test["accuracy"] >= 0.96


def test_mnist1d_conv1d_reaches_90_percent():
    pytest.importorskip("mnist1d", reason="MNIST-1D comes with the `datasets` extra")
    _, _, test = train("mnist1d_cnn")
    assert test["accuracy"] >= 0.90


def test_mnist1d_gru_reaches_85_percent():
    pytest.importorskip("mnist1d", reason="MNIST-1D comes with the `datasets` extra")
    _, _, test = train("mnist1d_gru")
    assert test["accuracy"] >= 0.85


def test_diabetes_regression_beats_predicting_the_mean_by_a_wide_margin():
    run, _, test = train("diabetes_regression")
    y_train = run.data.train["targets"]["target"]
    y_test = run.data.test["targets"]["target"]
    baseline = float(np.mean((y_test - y_train.mean()) ** 2))
    assert test["loss"] < 0.6 * baseline, (test["loss"], baseline)


def test_two_input_two_output_sample_learns_both_heads():
    run, _, test = train("two_in_two_out")
    assert test["digit_accuracy"] >= 0.93
    ink = run.data.test["targets"]["ink"]
    spread = float(np.mean(np.abs(ink - np.median(run.data.train["targets"]["ink"]))))
    assert test["ink_mae"] < 0.5 * spread, (test["ink_mae"], spread)

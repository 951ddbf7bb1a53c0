"""Per-class metrics, curves, residuals and the per-sample table of the evaluation reports,
checked against numbers computed by hand (pair counting for the AUC)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nodenet.reports import head_report, summarize, to_json
from nodenet.reports_metrics import CURVE_POINTS, RESIDUAL_POINTS, thin

SAMPLES = Path(__file__).parents[1] / "sample_projects"


def three_classes():
    true = np.array([0, 0, 1, 1, 2, 2, 2])
    probs = np.array(
        [
            [0.8, 0.1, 0.1],  # 0 -> 0
            [0.3, 0.6, 0.1],  # 0 -> 1
            [0.2, 0.7, 0.1],  # 1 -> 1
            [0.1, 0.5, 0.4],  # 1 -> 1
            [0.1, 0.2, 0.7],  # 2 -> 2
            [0.5, 0.1, 0.4],  # 2 -> 0
            [0.2, 0.2, 0.6],  # 2 -> 2
        ]
    )
    return true, probs


def pair_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """The probability that a positive outscores a negative (ties count one half)."""
    pos, neg = score[positive], score[~positive]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def test_classifier_report_per_class_curves_and_table():
    true, probs = three_classes()
    report = head_report("sparse_categorical_crossentropy", true, probs, ["a", "b", "c"])
    per_class = report["per_class"]
    # predicted: [0, 1, 1, 1, 2, 0, 2]
    np.testing.assert_allclose(per_class["precision"], [1 / 2, 2 / 3, 2 / 2])
    np.testing.assert_allclose(per_class["recall"], [1 / 2, 2 / 2, 2 / 3])
    np.testing.assert_allclose(per_class["f1"], [0.5, 0.8, 0.8])
    assert per_class["support"].tolist() == [2, 2, 3]
    np.testing.assert_allclose(per_class["macro"]["f1"], (0.5 + 0.8 + 0.8) / 3)
    for c, curves in enumerate(report["curves"]):
        positive = true == c
        assert np.isclose(curves["roc"]["auc"], pair_auc(positive, probs[:, c]))
        roc = curves["roc"]
        assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1 and roc["fpr"][-1] == 1
    table = report["table"]
    assert table["pred"].tolist() == [0, 1, 1, 1, 2, 0, 2]
    np.testing.assert_allclose(table["confidence"], [0.8, 0.6, 0.7, 0.5, 0.7, 0.5, 0.6])
    mistakes = int((~table["correct"]).sum())
    confusion = report["confusion"]
    assert mistakes == confusion.sum() - np.trace(confusion) == 2


def test_average_precision_by_hand():
    true = np.array([1, 0, 1, 0])
    probs = np.array([0.9, 0.8, 0.7, 0.1])[:, None]  # one sigmoid unit
    report = head_report("binary_crossentropy", true.astype(float), probs, None)
    # ranked: 1 (P=1, R=.5), 0, 1 (P=2/3, R=1), 0: AP = .5 * 1 + .5 * 2/3
    np.testing.assert_allclose(report["curves"][1]["pr"]["ap"], 0.5 + 1 / 3)
    np.testing.assert_allclose(report["curves"][1]["roc"]["auc"], 0.75)
    np.testing.assert_allclose(report["table"]["confidence"], [0.9, 0.8, 0.7, 0.9])


def test_a_class_absent_from_the_test_split_has_no_curves():
    true, probs = three_classes()
    true = np.where(true == 2, 1, true)
    report = head_report("sparse_categorical_crossentropy", true, probs, None)
    assert report["curves"][2] is None and report["per_class"]["support"][2] == 0


def test_curves_are_thinned_keeping_both_ends():
    values = np.arange(10_000.0)
    thinned = thin(values)
    assert len(thinned) == CURVE_POINTS and thinned[0] == 0 and thinned[-1] == 9_999
    rng = np.random.default_rng(0)
    true = rng.integers(0, 2, 5000)
    probs = np.clip(true * 0.3 + rng.random(5000) * 0.7, 0, 1)[:, None]
    report = head_report("binary_crossentropy", true.astype(float), probs, None)
    assert len(report["curves"][1]["roc"]["fpr"]) <= CURVE_POINTS
    assert np.isclose(report["curves"][1]["roc"]["auc"], pair_auc(true == 1, probs[:, 0]))


def test_regression_residuals_and_table():
    true = np.arange(3000.0).reshape(1500, 2)
    pred = true * 0.5
    report = head_report("mean_squared_error", true, pred, None)
    residuals = report["residuals"]
    assert len(residuals["residual"]) == RESIDUAL_POINTS
    np.testing.assert_allclose(residuals["residual"], residuals["true"] * 0.5)
    table = report["table"]
    assert len(table["error"]) == 1500
    np.testing.assert_allclose(table["error"][:2], [0.25, 1.25])  # mean |true - pred|: (0+.5)/2


def test_summarize_covers_every_test_sample_and_evaluate_json_carries_it():
    from nodenet.backend import NumpyBackend
    from nodenet.graph.project import load

    backend = NumpyBackend()
    backend.build(load(SAMPLES / "digits_mlp.json"))
    summary = summarize(backend, None)
    size = summary["test"]["size"]
    (report,) = summary["heads"].values()
    assert len(report["table"]["true"]) == size == 359  # 20% of 1,797
    assert summary["explainer"] is not None
    assert len(next(iter(summary["test_inputs"]["inputs"].values()))) == size
    data = json.loads(json.dumps(to_json(summary)))
    head = next(iter(data["heads"].values()))
    assert len(head["table"]["correct"]) == size
    assert len(head["per_class"]["f1"]) == 10 and len(head["curves"]) == 10
    confusion = np.array(head["confusion"])
    assert confusion.sum() - np.trace(confusion) == size - sum(head["table"]["correct"])


def test_a_diverged_run_has_a_table_but_no_curves():
    true, probs = three_classes()
    probs[0] = np.nan
    report = head_report("sparse_categorical_crossentropy", true, probs, None)
    assert report["curves"] == [None, None, None]
    assert len(report["table"]["pred"]) == len(true)


def test_nodenet_evaluate_json_carries_the_reports(tmp_path, capsys):
    import shutil

    from nodenet.backend import NumpyBackend
    from nodenet.cli import main
    from nodenet.graph.project import load

    path = tmp_path / "digits_mlp.json"
    shutil.copy(SAMPLES / "digits_mlp.json", path)
    backend = NumpyBackend()
    backend.build(load(path), load_data=False)
    weights = backend.save_weights(tmp_path / "w.npz")
    assert main(["evaluate", str(path), "--weights", str(weights), "--json"]) == 0
    digit = json.loads(capsys.readouterr()[0])["reports"]["heads"]["digit"]
    confusion = np.array(digit["confusion"])
    table = digit["table"]
    assert len(table["pred"]) == confusion.sum() == 359
    assert np.array_equal(np.bincount(table["true"], minlength=10), confusion.sum(axis=1))
    assert np.array_equal(np.bincount(table["pred"], minlength=10), confusion.sum(axis=0))
    assert digit["per_class"]["support"] == confusion.sum(axis=1).tolist()
    recall = np.diag(confusion) / confusion.sum(axis=1)
    np.testing.assert_allclose(digit["per_class"]["recall"], recall)
    roc = digit["curves"][0]["roc"]
    assert len(roc["fpr"]) == len(roc["tpr"]) and 0 <= roc["auc"] <= 1


def test_curves_stop_after_the_first_classes():
    from nodenet.reports_metrics import CURVE_CLASSES

    k = CURVE_CLASSES + 5
    true = np.arange(4 * k) % k
    probs = np.random.default_rng(1).random((4 * k, k))
    report = head_report("sparse_categorical_crossentropy", true, probs, None)
    assert report["curves"][CURVE_CLASSES - 1] is not None
    assert report["curves"][CURVE_CLASSES:] == [None] * 5
    assert len(report["per_class"]["f1"]) == k  # the table covers every class

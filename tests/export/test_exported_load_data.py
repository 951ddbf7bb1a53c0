"""The generated modules' load_data() returns nodenet's own prepared arrays (float64
statistics, then float32), on bundled samples that standardize their inputs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the samples read scikit-learn's bundled datasets")

from pathlib import Path

from nodenet.export import export_keras, export_pytorch
from nodenet.graph.project import load
from nodenet.runner import build_run
from tests.support.generated import import_source

SAMPLES = Path(__file__).parents[2] / "sample_projects"


def standardizing(name: str, variant: str):
    """A bundled sample as it is, switched to min-max scaling with a scale factor, or
    holding nothing out (its samples then stay in the dataset's order)."""
    project = load(SAMPLES / f"{name}.json")
    if variant == "minmax":
        project.data["preprocess"] = {**project.data["preprocess"], "normalize": "minmax"}
        project.data["preprocess"]["scale"] = 0.37
    elif variant == "no_split":
        project.data.pop("split", None)
    return project


CASES = [
    ("digits_mlp", "as_is"),
    ("diabetes_regression", "as_is"),
    ("digits_mlp", "minmax"),
    ("diabetes_regression", "no_split"),
]


@pytest.mark.parametrize("name,variant", CASES)
@pytest.mark.parametrize("exporter", ["keras", "pytorch"])
def test_load_data_equals_nodenets_prepared_arrays(name, variant, exporter, tmp_path):
    if exporter == "keras":
        pytest.importorskip("keras")
    else:
        pytest.importorskip("torch")
    project = standardizing(name, variant)
    run = build_run(project)
    code = (export_keras if exporter == "keras" else export_pytorch)(project)
    data = import_source(code.source, tmp_path, "data").load_data()
    expected = {p: a for p, a in (("train", run.data.train), ("test", run.data.test)) if a}
    assert set(data) == set(expected)
    for part, arrays in expected.items():
        inputs, targets = data[part]
        for node_id, array in arrays["inputs"].items():
            assert inputs[node_id].dtype == np.float32
            np.testing.assert_allclose(inputs[node_id], array, rtol=0, atol=1e-7, err_msg=part)
        for node_id, array in arrays["targets"].items():
            np.testing.assert_array_equal(targets[node_id], array, err_msg=part)


def test_the_keras_module_fits_with_validation_split():
    """Keras's own fit holds out the validation samples, by the rule nodenet follows."""
    pytest.importorskip("keras")
    source = export_keras(load(SAMPLES / "digits_mlp.json")).source
    assert "VALIDATION_SPLIT = 0.1" in source
    assert "validation_split=VALIDATION_SPLIT," in source

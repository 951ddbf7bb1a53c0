"""Every built-in Keras 3 initializer with its arguments: the value form (a name, or
``{"class_name": ..., "config": {...}}``), its strict checks, exact draws (Constant,
Zeros, Ones, Identity) and the distributions of the random ones on large draws, against
their formulas and against Keras's own draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nodenet.engine import block_class, block_types
from nodenet.engine.initializers import (
    KINDS,
    NAMES,
    InitializerError,
    initialize,
    normalize,
    unit_forget_bias,
)
from nodenet.engine.params import Initializer
from nodenet.errors import ParamError
from nodenet.graph.project import Edge, Node, Project, analyze

RNG = np.random.default_rng(1671)
BIG = (400, 500)  # 200,000 draws: the sample std is within ~0.3% of the true one


def draw(value, shape=BIG, dtype=np.float64, seed=0):
    return initialize(value, shape, np.random.default_rng(seed), dtype)


def vs(config: dict) -> dict:
    return {"class_name": "VarianceScaling", "config": config}


# -- the value form ------------------------------------------------------------------


@pytest.mark.parametrize("name", [*NAMES, "uniform"])
def test_every_name_draws_its_shape_and_dtype(name):
    shape = (4, 4) if name == "identity" else (3, 2, 4, 5)
    for dtype in (np.float32, np.float64):
        w = draw(name, shape, dtype)
        assert w.shape == shape and w.dtype == dtype and np.isfinite(w).all()


def test_the_classes_are_keras_3s_built_ins():
    expected = {
        "Constant", "Zeros", "Ones", "Identity", "Orthogonal", "RandomNormal",
        "RandomUniform", "TruncatedNormal", "VarianceScaling", "GlorotUniform",
        "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal",
    }  # fmt: skip
    assert set(KINDS) == expected
    assert {k.name for k in KINDS.values()} == set(NAMES)


@pytest.mark.parametrize(
    "value, canonical",
    [
        ("he_normal", "he_normal"),
        ({"class_name": "HeNormal", "config": {}}, "he_normal"),
        ({"class_name": "HeNormal"}, "he_normal"),
        ({"class_name": "he_normal", "config": {"seed": None}}, "he_normal"),
        ({"class_name": "Constant", "config": {"value": 0}}, "constant"),
        (
            {"class_name": "Constant", "config": {"value": 1}},
            {"class_name": "Constant", "config": {"value": 1.0}},
        ),
        (
            vs({"scale": 2, "mode": "fan_out", "distribution": "truncated_normal"}),
            vs({"scale": 2.0, "mode": "fan_out"}),
        ),
        (vs({"distribution": "normal"}), "variance_scaling"),  # Keras's alias
        (
            {"class_name": "GlorotUniform", "config": {"input_axes": [0], "output_axes": [1, 2]}},
            {"class_name": "GlorotUniform", "config": {"input_axes": [0], "output_axes": [1, 2]}},
        ),
    ],
)  # fmt: skip
def test_a_value_normalizes_to_one_canonical_form(value, canonical):
    assert normalize(value) == canonical
    assert normalize(canonical) == canonical


@pytest.mark.parametrize(
    "value, message",
    [
        ("he_normall", "must be one of glorot_uniform"),
        (3, "must be a name or"),
        ({"class_name": "Lambda"}, "class_name must be one of Glorot"),
        ({"class_name": "Constant", "config": {"value": "a"}}, "Constant value must be a finite"),
        ({"class_name": "Constant", "config": {"value": float("nan")}}, "Constant value"),
        ({"class_name": "Constant", "config": {"value": [1, 2]}}, "Constant value"),
        ({"class_name": "Constant", "config": {"seed": 3}}, "seed is not kept"),
        ({"class_name": "Constant", "module": "x"}, "has no key 'module'"),
        ({"class_name": "Constant", "config": []}, "config must be an object"),
        ({"class_name": "Zeros", "config": {"value": 1}}, "Zeros has no argument 'value'"),
        (vs({"scale": 0}), r"VarianceScaling scale must be a finite number > 0"),
        (vs({"scale": True}), "VarianceScaling scale"),
        (vs({"mode": "fan_sum"}), "mode must be one of fan_in, fan_out, fan_avg"),
        (vs({"distribution": "gamma"}), "distribution must be one of truncated_normal"),
        (vs({"input_axes": [0]}), "input_axes and output_axes together"),
        (vs({"input_axes": [0.5], "output_axes": [1]}), "input_axes must be null or a list"),
        ({"class_name": "RandomNormal", "config": {"stddev": -1}}, "stddev must be a finite"),
        ({"class_name": "RandomUniform", "config": {"minval": 1}}, "minval must not exceed"),
    ],
)
def test_a_bad_value_is_refused_naming_the_argument(value, message):
    with pytest.raises(InitializerError, match=message):
        normalize(value)
    with pytest.raises(ParamError, match=message) as info:
        Initializer("kernel_initializer", "glorot_uniform").coerce(value)
    assert info.value.param == "kernel_initializer"
    assert str(info.value).startswith("kernel_initializer ")


def test_a_project_error_names_the_node_and_the_argument():
    bad = vs({"scale": -2.0})
    project = Project(
        name="bad",
        nodes=[
            Node("x", "Input", {"shape": [3]}, (0, 0)),
            Node("hidden", "Dense", {"units": 2, "kernel_initializer": bad}, (1, 0)),
            Node("y", "Output", {"loss": "mean_squared_error", "metrics": []}, (2, 0)),
        ],
        edges=[Edge("x", "hidden", 0), Edge("hidden", "y", 0)],
    )
    messages = " ".join(str(p) for p in analyze(project).problems)
    assert "hidden" in messages and "kernel_initializer VarianceScaling scale" in messages


def test_an_old_project_with_plain_names_still_loads():
    layer = block_class("Dense")({"units": 2, "kernel_initializer": "he_uniform"})
    assert layer.config["kernel_initializer"] == "he_uniform"
    embedding = block_class("Embedding")({"input_dim": 5, "output_dim": 2})
    assert embedding.config["embeddings_initializer"] == "uniform"


def test_every_initializer_setting_of_the_catalog_takes_objects():
    """A block's ``*_initializer`` parameter is an Initializer descriptor (new blocks too)."""
    plain = [
        f"{t}.{p.name}"
        for t in block_types()
        for p in block_class(t).PARAMS
        if p.name.endswith("_initializer") and not isinstance(p, Initializer)
    ]
    assert plain == []


# -- exact draws ---------------------------------------------------------------------


def test_constant_zeros_ones_and_identity_are_exact():
    c = {"class_name": "Constant", "config": {"value": 0.1}}
    assert np.array_equal(draw(c, (3, 4), np.float32), np.full((3, 4), 0.1, np.float32))
    assert np.array_equal(draw("constant", (5,)), np.zeros(5))
    assert np.array_equal(draw("zeros", (2, 3)), np.zeros((2, 3)))
    assert np.array_equal(draw("ones", (2, 3, 1)), np.ones((2, 3, 1)))
    assert np.array_equal(draw("identity", (3, 3)), np.eye(3))
    gained = {"class_name": "Identity", "config": {"gain": 3.0}}
    assert np.array_equal(draw(gained, (3, 5)), 3.0 * np.eye(3, 5))


def test_identity_refuses_a_weight_that_is_not_a_matrix():
    with pytest.raises(InitializerError, match=r"conv: kernel: .*Identity.*2-D.*\(3, 3, 1, 2\)"):
        initialize("identity", (3, 3, 1, 2), RNG, np.float32, "conv: kernel")


@pytest.mark.parametrize("shape", [(50, 30), (30, 50), (3, 3, 4, 8)])
def test_orthogonal_has_orthonormal_columns_or_rows_times_the_gain(shape):
    w = draw({"class_name": "Orthogonal", "config": {"gain": 2.0}}, shape)
    flat = w.reshape(-1, shape[-1])
    small = min(flat.shape)
    product = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(product, 4.0 * np.eye(small), atol=1e-10)


def test_unit_forget_bias_sets_the_forget_quarter_to_ones():
    inner = {"class_name": "Constant", "config": {"value": 0.5}}
    b = initialize(unit_forget_bias(inner), (12,), RNG, np.float32)
    assert b.tolist() == [0.5] * 3 + [1.0] * 3 + [0.5] * 6


# -- distributions ----------------------------------------------------------------------


def check_moments(w, mean, std, rel=0.01):
    assert abs(w.mean() - mean) < 0.01 * std + 1e-12
    assert w.std() == pytest.approx(std, rel=rel)


def test_random_normal_uniform_and_truncated_normal_follow_their_arguments():
    w = draw({"class_name": "RandomNormal", "config": {"mean": 1.0, "stddev": 2.0}})
    check_moments(w, 1.0, 2.0)
    w = draw({"class_name": "RandomUniform", "config": {"minval": -1.0, "maxval": 3.0}})
    assert w.min() >= -1.0 and w.max() <= 3.0
    check_moments(w, 1.0, 4.0 / math.sqrt(12))
    w = draw({"class_name": "TruncatedNormal", "config": {"mean": 0.5, "stddev": 0.1}})
    assert w.min() >= 0.3 and w.max() <= 0.7  # two standard deviations
    assert w.min() < 0.31 and w.max() > 0.69
    check_moments(w, 0.5, 0.1 * 0.87962566103423978)  # the std of a 2-sigma truncation


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_has_variance_scale_over_fan(mode, distribution):
    shape = (3, 3, 40, 100)  # fan_in 360, fan_out 900
    fan = {"fan_in": 360, "fan_out": 900, "fan_avg": 630}[mode]
    value = vs({"scale": 2.0, "mode": mode, "distribution": distribution})
    w = draw(value, shape)
    std = math.sqrt(2.0 / fan)
    check_moments(w, 0.0, std)
    if distribution == "uniform":
        assert np.abs(w).max() <= math.sqrt(3) * std
    elif distribution == "truncated_normal":
        assert np.abs(w).max() <= 2 * std / 0.87962566103423978
    else:
        assert np.abs(w).max() > 2 * std / 0.87962566103423978  # untruncated tails


@pytest.mark.parametrize(
    "name, scale, mode",
    [
        ("glorot_uniform", 1.0, "fan_avg"),
        ("glorot_normal", 1.0, "fan_avg"),
        ("he_uniform", 2.0, "fan_in"),
        ("he_normal", 2.0, "fan_in"),
        ("lecun_uniform", 1.0, "fan_in"),
        ("lecun_normal", 1.0, "fan_in"),
    ],
)
def test_the_presets_are_variance_scaling(name, scale, mode):
    fan = {"fan_in": 400, "fan_avg": 450}[mode]
    check_moments(draw(name), 0.0, math.sqrt(scale / fan))
    axes = {"class_name": KINDS_BY_NAME[name], "config": {"input_axes": [1], "output_axes": [0]}}
    swapped = {"fan_in": 500, "fan_avg": 450}[mode]  # the axes swap fan_in and fan_out
    check_moments(draw(axes), 0.0, math.sqrt(scale / swapped))


KINDS_BY_NAME = {k.name: k.class_name for k in KINDS.values()}


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("torch")
    return pytest.importorskip("keras")


@pytest.mark.ref
@pytest.mark.parametrize(
    "value",
    [
        vs({"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}),
        vs({"scale": 0.5, "mode": "fan_avg", "distribution": "untruncated_normal"}),
        vs({"mode": "fan_in", "distribution": "uniform"}),
        {"class_name": "TruncatedNormal", "config": {"mean": 0.2, "stddev": 0.3}},
        {"class_name": "RandomUniform", "config": {"minval": 0.0, "maxval": 2.0}},
        {"class_name": "HeNormal", "config": {"input_axes": [0], "output_axes": [1]}},
        "glorot_normal",
        "lecun_uniform",
    ],
)
def test_draws_match_keras_draws_in_distribution(keras, value):
    shape = (3, 50, 200)
    ours = draw(value, shape)
    identifier = value if isinstance(value, str) else {**value, "config": dict(value["config"])}
    theirs = np.asarray(
        keras.ops.convert_to_numpy(keras.initializers.get(identifier)(shape, "float64"))
    )
    assert abs(ours.mean() - theirs.mean()) < 0.02 * theirs.std()
    assert ours.std() == pytest.approx(theirs.std(), rel=0.02)
    # quantiles, not extremes: Keras's torch backend redraws a truncated normal only
    # four times, so one value in ~250,000 passes the bound (TF and JAX truncate strictly)
    q = (0.001, 0.999)
    span = theirs.max() - theirs.min()
    np.testing.assert_allclose(np.quantile(ours, q), np.quantile(theirs, q), atol=0.05 * span)

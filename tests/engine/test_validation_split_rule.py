"""validation_split counts and the data order, against Keras's train_validation_split and
hand-written numbers; the PyTorch export's split_tail follows the same rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nodenet.engine.data import preprocess
from nodenet.engine.training import split_validation, validation_cut
from nodenet.errors import DataError
from nodenet.export._torch_templates import SPLIT_TAIL

# (n, fraction, training samples, validation samples) as Keras 3.15's fit counts them
KNOWN = [
    (1797, 0.1, 1617, 180),  # floor(1797 * 0.1) = 179 would validate on one fewer
    (1438, 0.1, 1294, 144),  # digits_mlp: 1797 minus its 359 test samples, then 0.1
    (1797, 0.2, 1437, 360),
    (10, 0.3, 7, 3),
    (12, 0.25, 9, 3),
    (100, 0.15, 85, 15),
    (100, 0.28, 72, 28),
    (3, 1 / 3, 2, 1),
    (7, 0.1, 6, 1),  # floor(7 * 0.1) = 0 would validate on nothing
    (4000, 0.1, 3600, 400),  # the mnist_5k samples: 5000 minus 1000 test
    (2, 0.5, 1, 1),
]


def pairs():
    """Sizes 2..2000 (sampled) against a grid of fractions and odd ones."""
    rng = np.random.default_rng(0)
    sizes = sorted({2, 3, 7, 10, 12, 100, 1438, 1797, 2000, *rng.integers(2, 2001, 120)})
    fractions = [*np.round(np.arange(0.01, 1.0, 0.01), 2).tolist(), 0.15, 0.28, 1 / 3, 2 / 3]
    return [(int(n), f) for n in sizes for f in fractions]


def nodenet_counts(n: int, fraction: float):
    x = {"x": np.arange(n)}
    try:
        (train, _), (val, _) = split_validation(x, {}, fraction)
    except DataError:
        return None
    return len(train["x"]), len(val["x"])


@pytest.mark.parametrize("n,fraction,train,val", KNOWN)
def test_known_counts(n, fraction, train, val):
    assert nodenet_counts(n, fraction) == (train, val)
    assert validation_cut(n, fraction) == train


def test_counts_equal_keras_over_many_pairs():
    pytest.importorskip("torch", reason="Keras runs here on its torch backend")
    keras_split = pytest.importorskip(
        "keras.src.trainers.data_adapters.array_slicing",
        reason="keras is not installed: its train_validation_split is the reference",
    ).train_validation_split
    checked = 0
    for n, fraction in pairs():
        try:
            train, val = keras_split(np.arange(n), fraction)
            expected = (len(train), len(val))
        except ValueError:
            expected = None
        assert nodenet_counts(n, fraction) == expected, (n, fraction)
        checked += expected is not None
    assert checked > 10000


def test_the_split_takes_the_last_samples():
    (train, _), (val, _) = split_validation({"x": np.arange(12)}, {}, 0.25)
    np.testing.assert_array_equal(val["x"], [9, 10, 11])
    np.testing.assert_array_equal(train["x"], np.arange(9))


@pytest.mark.parametrize("n,fraction", [(1, 0.5), (2, 0.99), (4, 0.8), (10, 1e-17)])
def test_an_empty_part_is_a_data_error_naming_the_numbers(n, fraction):
    with pytest.raises(DataError, match=rf"validation_split {fraction} of {n} samples"):
        split_validation({"x": np.arange(n)}, {}, fraction)


def test_no_split_keeps_everything():
    (train, _), val = split_validation({"x": np.arange(5)}, {}, 0.0)
    assert val is None and len(train["x"]) == 5


def test_pytorch_export_split_tail_counts_the_same():
    space = {"math": math, "INPUTS": ["x"]}
    exec(SPLIT_TAIL, space)  # the generated module's own function
    for n, fraction, train, val in KNOWN:
        head, tail = space["split_tail"](({"x": np.arange(n)}, {"y": np.arange(n)}), fraction)
        assert (len(head[0]["x"]), len(tail[1]["y"])) == (train, val)
        np.testing.assert_array_equal(tail[0]["x"], np.arange(train, n))


def test_without_held_out_fractions_the_data_keeps_its_order():
    train, val, test = preprocess.split_indices(12, 0.0, 0.0, seed=3)
    np.testing.assert_array_equal(train, np.arange(12))
    assert len(val) == len(test) == 0


def test_prepared_data_keeps_file_order_and_validates_on_its_tail(tmp_path):
    """x = 0..11, no data.split, validation_split 0.25: training on 0..8 in file order,
    validation on [9, 10, 11], as Keras's fit(validation_split=0.25, shuffle=False)."""
    from nodenet.engine.data.prepare import prepare

    np.savez(tmp_path / "count.npz", x=np.arange(12.0)[:, None], y=np.arange(12.0)[:, None])
    config = {
        "source": {"kind": "npz", "path": "count.npz"},
        "inputs": {"x": "x"},
        "targets": {"y": "y"},
    }
    data = prepare(config, {"x": ((1,), "float32")}, {"y": ((1,), "mean_squared_error")}, tmp_path)
    assert data.val is None and data.test is None
    x, y = data.train["inputs"], data.train["targets"]
    np.testing.assert_array_equal(x["x"][:, 0], np.arange(12))
    (train, _), (val, val_y) = split_validation(x, y, 0.25)
    np.testing.assert_array_equal(val["x"][:, 0], [9, 10, 11])
    np.testing.assert_array_equal(val_y["y"][:, 0], [9, 10, 11])
    np.testing.assert_array_equal(train["x"][:, 0], np.arange(9))

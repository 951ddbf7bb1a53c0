"""Normalization, Resizing and CenterCrop beyond the catalog contract: parameter errors,
exact nearest-neighbour ties, Keras's crop and pad geometry (the catalog-wide tests
compare every EXAMPLE with Keras)."""

from __future__ import annotations

import numpy as np
import pytest

from nodenet.engine.catalog import Context, block_class
from nodenet.engine.layers.preprocessing import (
    crop_to_aspect,
    interpolation_matrix,
    pad_to_aspect,
)
from nodenet.errors import ParamError, ShapeError


def make(type_name: str, **params):
    return block_class(type_name)(params, "node")


@pytest.mark.parametrize(
    "params,field",
    [
        ({"mean": 1.0}, "mean"),
        ({"mean": [1.0, 2.0], "variance": [1.0]}, "variance"),
        ({"mean": [[1.0, 2.0]], "variance": [[1.0, 2.0]]}, "mean"),  # rank 2 > one axis
        ({"mean": 0.0, "variance": -1.0}, "variance"),
        ({"axis": "last"}, "axis"),
        ({"axis": [1, 1]}, "axis"),
        ({"mean": "zero", "variance": 1.0}, "mean"),
        ({"mean": [[1.0], [2.0, 3.0]], "variance": 1.0}, "mean"),  # ragged
    ],
)
def test_normalization_refuses_bad_settings_naming_the_field(params, field):
    with pytest.raises(ParamError) as info:
        make("Normalization", **params)
    assert info.value.param == field


def test_normalization_axes_are_written_in_their_shortest_form():
    assert make("Normalization", axis=[-1]).config["axis"] == -1
    assert make("Normalization", axis=[]).config["axis"] is None
    assert make("Normalization", axis=[1, 2]).config["axis"] == [1, 2]


@pytest.mark.parametrize(
    "params,shape,message",
    [
        ({"axis": 3}, (4, 2), "out of range"),
        ({"axis": 0}, (4,), "batch axis"),
        ({"axis": 1}, (None, 3), "known sizes"),
        ({"mean": [1.0, 2.0], "variance": [1.0, 1.0]}, (3,), "does not fit"),
    ],
)
def test_normalization_shape_errors_say_why(params, shape, message):
    with pytest.raises(ShapeError, match=message):
        make("Normalization", **params).infer_shape([shape])


def test_normalization_divides_by_at_least_epsilon_and_inverts():
    layer = make("Normalization", axis=None, mean=2.0, variance=0.0)
    x = np.array([[2.0, 2.5]], dtype=np.float32)
    out, _ = layer.forward({}, [x], Context())
    np.testing.assert_allclose(out, [[0.0, 0.5 / 1e-7]], rtol=1e-6)
    back = make("Normalization", axis=None, mean=2.0, variance=0.0, invert=True)
    np.testing.assert_allclose(back.forward({}, [out], Context())[0], x, rtol=1e-6)


@pytest.mark.parametrize(
    "n_in,n_out,row,index", [(14, 23, 11, 7), (26, 11, 5, 13), (28, 23, 11, 14)]
)
def test_nearest_takes_the_exact_half_pixel_index_at_ties(n_in, n_out, row, index):
    """(row + 0.5) * n_in / n_out is a whole number here: nodenet floors the exact value
    (JAX's Keras does too); Keras's torch backend rounds these down in float32."""
    matrix = interpolation_matrix(n_in, n_out, "nearest")
    assert matrix[row].argmax() == index and matrix.sum(axis=1).tolist() == [1.0] * n_out


def test_bilinear_rows_sum_to_one_and_keep_a_constant_image():
    for n_in, n_out in [(1, 5), (5, 1), (7, 3), (3, 7), (4, 4)]:
        matrix = interpolation_matrix(n_in, n_out, "bilinear")
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert np.array_equal(interpolation_matrix(4, 4, "bilinear"), np.eye(4))


def test_crop_and_pad_boxes_follow_keras_formulas():
    assert crop_to_aspect(3, 6, 4, 4) == (0, 1, 3, 3)
    assert crop_to_aspect(10, 4, 2, 5) == (4, 0, 1, 4)
    assert pad_to_aspect(2, 5, 4, 4) == (1, 0)  # Keras pads the same on both sides
    assert pad_to_aspect(3, 3, 6, 3) == (1, 0)


def test_center_crop_takes_the_middle_box_when_it_fits():
    layer = make("CenterCrop", height=2, width=3)
    x = np.arange(4 * 5, dtype=np.float32).reshape(1, 4, 5, 1)
    out, _ = layer.forward({}, [x], Context())
    np.testing.assert_array_equal(out[0, :, :, 0], x[0, 1:3, 1:4, 0])


def test_resizing_refuses_crop_and_pad_together():
    with pytest.raises(ParamError, match="cannot both be true"):
        make("Resizing", height=3, width=3, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ParamError, match="interpolation"):
        make("Resizing", height=3, width=3, interpolation="bicubic")


def test_resizing_takes_images_only():
    with pytest.raises(ShapeError, match="4-D"):
        make("Resizing", height=3, width=3).infer_shape([(5, 2)])

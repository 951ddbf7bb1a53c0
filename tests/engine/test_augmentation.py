"""The augmentation blocks against Keras 3 (torch backend) as the reference.

(a) The resampler equals ``keras.ops.image.affine_transform`` for every fill mode and
    interpolation, and its backward equals autograd through Keras's.
(b) While training, given the random draws Keras's own layer made, each block's output
    equals the layer's ``transform_images`` (so the transforms have Keras's formulas).
(c) The draws have Keras's distributions: the angle, zoom and shift recovered from a
    blob, the contrast and brightness recovered from the pixels, flip and crop counts,
    compared with Keras's layers' training-mode outputs on the same batch (two-sample
    Kolmogorov-Smirnov within sampling error) and with the documented ranges.
(d) Identity at inference (RandomCrop: the centred box of the target's aspect ratio,
    resized, as Keras's ``Resizing(crop_to_aspect_ratio=True)`` computes it), seeded runs
    repeat exactly, and Keras's invalid factors are refused with the field's name.
"""

from __future__ import annotations

import itertools
import math
import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from nodenet.engine.catalog import Context, block_class  # noqa: E402
from nodenet.engine.layers.augment_affine import (  # noqa: E402
    FILL_MODES,
    INTERPOLATIONS,
    affine_apply,
    affine_grad,
    affine_taps,
)
from nodenet.errors import ParamError  # noqa: E402
from tests.support.augment_stats import N, angles, blobs, centroids, compare  # noqa: E402

if keras.backend.backend() != "torch":
    pytest.skip("these tests need keras on the torch backend", allow_module_level=True)


def run(type_name: str, params: dict, x: np.ndarray, training=True, rng=None):
    layer = block_class(type_name)(params, "node")
    ctx = Context(training=training, rng=rng if rng is not None else np.random.default_rng(0))
    return layer.forward({}, [x], ctx)


def keras_train(klayer, x: np.ndarray) -> np.ndarray:
    return klayer(torch.tensor(x), training=True).detach().numpy()  # a copy: Keras adds in place


class Draws:
    """A stand-in for the run's generator that hands out given values in order, checking
    the range each draw asks for."""

    def __init__(self, *draws):
        self.draws = list(draws)

    def _next(self, kind, *args):
        expected_kind, expected, value = self.draws.pop(0)
        assert kind == expected_kind
        if expected is not None:
            np.testing.assert_allclose(args, expected, rtol=1e-6)
        return value

    def uniform(self, low, high, size):
        value = self._next("uniform", low, high)
        return np.asarray(value, dtype=np.float64).reshape(size)

    def random(self, size):
        return np.asarray(self._next("random"), dtype=np.float64).reshape(size)

    def integers(self, low, high):
        return np.asarray(self._next("integers", low, *np.atleast_1d(high)))


# -- (a) the resampler ---------------------------------------------------------------------


def random_matrices(rng, b: int, h: int, w: int) -> np.ndarray:
    """Rotations, zooms and shifts that reach well outside the image (float32, (b, 8))."""
    angle = rng.uniform(-np.pi, np.pi, b)
    zoom_x, zoom_y = rng.uniform(0.5, 1.8, b), rng.uniform(0.5, 1.8, b)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a0, a1 = zoom_x * np.cos(angle), -zoom_x * np.sin(angle)
    b0, b1 = zoom_y * np.sin(angle), zoom_y * np.cos(angle)
    a2 = rng.uniform(-0.7, 0.7, b) * w + cx - cx * a0 - cy * a1
    b2 = rng.uniform(-0.7, 0.7, b) * h + cy - cx * b0 - cy * b1
    return np.stack([a0, a1, a2, b0, b1, b2, 0 * a0, 0 * a0], axis=1).astype(np.float32)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_resampler_equals_keras_affine_transform_and_its_gradient(fill_mode, interpolation):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 7, 5, 2)).astype(np.float32)
    matrices = random_matrices(rng, 6, 7, 5)
    tensor = torch.tensor(x, requires_grad=True)
    theirs = keras.ops.image.affine_transform(
        tensor, torch.tensor(matrices), interpolation, fill_mode, fill_value=0.7
    )
    taps = affine_taps(x.shape, matrices[:, :6], interpolation, fill_mode)
    ours = affine_apply(x, taps, 0.7)
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-5, atol=1e-5)

    probe = rng.normal(size=x.shape).astype(np.float32)
    (theirs * torch.from_numpy(probe)).sum().backward()
    np.testing.assert_allclose(affine_grad(probe, taps), tensor.grad.numpy(), atol=1e-5)


def test_resampler_on_a_one_pixel_axis_reflects_to_that_pixel():
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 3, 2)
    matrices = np.array([[1, 0, 0.4, 0, 1, -2.3, 0, 0]], dtype=np.float32)
    theirs = keras.ops.image.affine_transform(torch.from_numpy(x), torch.tensor(matrices))
    for mode in FILL_MODES:
        theirs = keras.ops.image.affine_transform(
            torch.from_numpy(x), torch.tensor(matrices), fill_mode=mode
        )
        taps = affine_taps(x.shape, matrices[:, :6], "bilinear", mode)
        np.testing.assert_allclose(affine_apply(x, taps, 0.0), theirs.numpy(), atol=1e-6)


# -- (b) the same draws as Keras's layer: the same output ------------------------------------


IMAGES = np.random.default_rng(11).uniform(0, 255, size=(5, 7, 6, 3)).astype(np.float32)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_rotation_of_kerass_angles_equals_kerass(fill_mode):
    params = {"factor": [-0.3, 0.2], "fill_mode": fill_mode, "fill_value": 9.0}
    klayer = keras.layers.RandomRotation(**params)
    t = klayer.get_random_transformation(torch.from_numpy(IMAGES), training=True)
    theirs = klayer.transform_images(torch.from_numpy(IMAGES), t, training=True)
    draws = Draws(("uniform", (-0.3 * 360, 0.2 * 360), t["angle"].numpy()))
    ours, _ = run("RandomRotation", params, IMAGES, rng=draws)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize(
    "params,ranges",
    [
        ({"height_factor": 0.3}, [(0.7, 1.3)]),
        ({"height_factor": [-0.4, -0.1], "width_factor": 0.5}, [(0.6, 0.9), (0.5, 1.5)]),
        ({"height_factor": 0.2, "fill_mode": "wrap", "interpolation": "nearest"}, [(0.8, 1.2)]),
    ],
)
def test_zoom_of_kerass_factors_equals_kerass(params, ranges):
    klayer = keras.layers.RandomZoom(**params)
    t = klayer.get_random_transformation(torch.from_numpy(IMAGES), training=True)
    theirs = klayer.transform_images(torch.from_numpy(IMAGES), t, training=True)
    zooms = [t["height_zoom"].numpy(), t["width_zoom"].numpy()][: len(ranges)]
    draws = Draws(*[("uniform", r, z) for r, z in zip(ranges, zooms, strict=True)])
    ours, _ = run("RandomZoom", params, IMAGES, rng=draws)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=2e-3)


def test_translation_of_kerass_shifts_equals_kerass():
    params = {"height_factor": [-0.5, 0.2], "width_factor": 0.4, "fill_mode": "constant"}
    klayer = keras.layers.RandomTranslation(**params)
    t = klayer.get_random_transformation(torch.from_numpy(IMAGES), training=True)
    theirs = klayer.transform_images(torch.from_numpy(IMAGES), t, training=True)
    shifts = t["translations"].numpy().astype(np.float64)  # (b, [x, y]) in pixels
    draws = Draws(
        ("uniform", (-0.5, 0.2), shifts[:, 1] / 7),
        ("uniform", (-0.4, 0.4), shifts[:, 0] / 6),
    )
    ours, _ = run("RandomTranslation", params, IMAGES, rng=draws)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize(
    "params,expected",
    [({"factor": 0.5}, (1.0, 1.5)), ({"factor": [0.3, 0.6], "value_range": [0, 200]}, (0.7, 1.6))],
)
def test_contrast_of_kerass_factors_equals_kerass(params, expected):
    klayer = keras.layers.RandomContrast(**params)
    t = klayer.get_random_transformation(torch.from_numpy(IMAGES), training=True)
    theirs = klayer.transform_images(torch.from_numpy(IMAGES), t, training=True)
    draws = Draws(("uniform", expected, t["contrast_factor"].numpy()))
    ours, _ = run("RandomContrast", params, IMAGES, rng=draws)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-3)


def test_brightness_of_kerass_shifts_equals_kerass():
    params = {"factor": [-0.2, 0.4], "value_range": [255, 0]}
    klayer = keras.layers.RandomBrightness(**params)
    t = klayer.get_random_transformation(torch.from_numpy(IMAGES), training=True)
    theirs = klayer.transform_images(torch.from_numpy(IMAGES.copy()), t, training=True)
    draws = Draws(("uniform", (-0.2, 0.4), t["rgb_delta"].numpy() / 255.0))
    ours, _ = run("RandomBrightness", params, IMAGES, rng=draws)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_flip_of_kerass_draws_equals_kerass(mode):
    klayer = keras.layers.RandomFlip(mode)
    t = klayer.get_random_transformation(torch.from_numpy(IMAGES), training=True)
    theirs = klayer.transform_images(torch.from_numpy(IMAGES), t, training=True)
    flips = t["flips"].numpy().reshape(-1)
    draws = Draws(("random", None, np.where(flips, 0.25, 0.75)))
    ours, cache = run("RandomFlip", {"mode": mode}, IMAGES, rng=draws)
    np.testing.assert_array_equal(ours, theirs.numpy())
    layer = block_class("RandomFlip")({"mode": mode})
    grad = np.random.default_rng(1).normal(size=IMAGES.shape)
    (dx,), _ = layer.backward({}, cache, grad)
    assert np.sum(dx * IMAGES) == pytest.approx(np.sum(grad * ours))  # the adjoint


def test_crop_of_kerass_corner_equals_kerass():
    klayer = keras.layers.RandomCrop(4, 3)
    t = klayer.get_random_transformation(torch.from_numpy(IMAGES), training=True)
    theirs = klayer.transform_images(torch.from_numpy(IMAGES), t, training=True)
    corner = np.array([int(t[0]), int(t[1])])
    ours, _ = run(
        "RandomCrop", {"height": 4, "width": 3}, IMAGES, rng=Draws(("integers", (0, 4, 4), corner))
    )
    np.testing.assert_array_equal(ours, theirs.numpy())


@pytest.mark.parametrize(
    "size,target", [((4, 5), (4, 3)), ((3, 3), (4, 2)), ((6, 4), (3, 4)), ((2, 7), (5, 5))]
)
def test_crop_of_an_image_not_larger_than_the_box_equals_kerass_while_training(size, target):
    x = np.random.default_rng(2).normal(size=(2, *size, 2)).astype(np.float32)
    theirs = keras_train(keras.layers.RandomCrop(*target), x)
    ours, _ = run("RandomCrop", {"height": target[0], "width": target[1]}, x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


# -- (c) distributions --------------------------------------------------------------------


@pytest.mark.parametrize("factor", [0.1, [0.05, 0.2]])
def test_rotation_angles_have_kerass_distribution(factor):
    x = blobs(N, 12, 19)
    params = {"factor": factor, "fill_mode": "constant"}
    ours, _ = run("RandomRotation", params, x, rng=np.random.default_rng(4))
    theirs = keras_train(keras.layers.RandomRotation(**params, seed=4), x)

    low, high = (
        (-factor * 360, factor * 360) if not isinstance(factor, list) else np.multiply(factor, 360)
    )
    compare(angles(ours), angles(theirs), low, high, slack=1.0)


def test_zoom_factors_have_kerass_distribution():
    x = blobs(N, 19, 19)
    params = {"height_factor": [-0.2, 0.2], "width_factor": [0.1, 0.3], "fill_mode": "constant"}
    ours, _ = run("RandomZoom", params, x, rng=np.random.default_rng(5))
    theirs = keras_train(keras.layers.RandomZoom(**params, seed=5), x)
    for axis, (low, high) in enumerate([(0.8, 1.2), (1.1, 1.3)]):  # rows, columns
        zoom = [7.0 / (centroids(images)[axis] - 12) for images in (ours, theirs)]
        compare(*zoom, low, high, slack=0.02)


def test_zoom_without_width_factor_keeps_the_aspect_ratio():
    x = blobs(50, 19, 19)
    out, _ = run("RandomZoom", {"height_factor": 0.3, "fill_mode": "constant"}, x)
    rows, cols = centroids(out)
    np.testing.assert_allclose(rows, cols, atol=1e-3)


def test_translation_shifts_have_kerass_distribution():
    x = blobs(N, 12, 12)
    params = {"height_factor": 0.2, "width_factor": [-0.1, 0.3], "fill_mode": "constant"}
    ours, _ = run("RandomTranslation", params, x, rng=np.random.default_rng(6))
    theirs = keras_train(keras.layers.RandomTranslation(**params, seed=6), x)
    for axis, (low, high) in enumerate([(-5.0, 5.0), (-2.5, 7.5)]):  # pixels of 25
        shifts = [centroids(images)[axis] - 12 for images in (ours, theirs)]
        compare(*shifts, low, high, slack=0.05)


@pytest.mark.parametrize("factor,low,high", [(0.5, 1.0, 1.5), ([0.4, 0.2], 0.8, 1.4)])
def test_contrast_factors_have_kerass_distribution(factor, low, high):
    x = np.random.default_rng(7).uniform(50, 200, size=(N, 5, 5, 2)).astype(np.float32)
    params = {"factor": factor, "value_range": [-1e4, 1e4]}
    ours, _ = run("RandomContrast", params, x, rng=np.random.default_rng(7))
    theirs = keras_train(keras.layers.RandomContrast(**params, seed=7), x)

    def factors(images):
        return images[..., 0].std(axis=(1, 2)) / x[..., 0].std(axis=(1, 2))

    compare(factors(ours), factors(theirs), low, high, slack=1e-3)


def test_brightness_shifts_have_kerass_distribution():
    x = np.random.default_rng(8).uniform(100, 150, size=(N, 4, 4, 3)).astype(np.float32)
    params = {"factor": 0.2}
    ours, _ = run("RandomBrightness", params, x, rng=np.random.default_rng(8))
    theirs = keras_train(keras.layers.RandomBrightness(**params, seed=8), x)
    shifts = [(images - x).mean(axis=(1, 2, 3)) for images in (ours, theirs)]
    compare(*shifts, -51.0, 51.0, slack=1e-2)


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_flip_rate_is_kerass(mode):
    x = np.arange(N * 4, dtype=np.float32).reshape(N, 2, 2, 1)
    ours, _ = run("RandomFlip", {"mode": mode}, x, rng=np.random.default_rng(9))
    theirs = keras_train(keras.layers.RandomFlip(mode, seed=9), x)
    for out in (ours, theirs):
        left_right = out[:, 0, 0, 0] == x[:, 0, 1, 0]
        top_bottom = out[:, 0, 0, 0] == x[:, 1, 0, 0]
        half_turn = out[:, 0, 0, 0] == x[:, 1, 1, 0]
        kept = out[:, 0, 0, 0] == x[:, 0, 0, 0]
        flipped = {"horizontal": left_right, "vertical": top_bottom}.get(mode, half_turn)
        assert np.all(flipped | kept)  # one draw: both axes at once, never one of two
        assert abs(flipped.mean() - 0.5) < 4 * math.sqrt(0.25 / N)


def test_crop_corners_are_uniform_and_shared_by_the_batch_as_in_keras():
    x = np.arange(2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7, 1)
    rng = np.random.default_rng(10)
    klayer = keras.layers.RandomCrop(4, 4, seed=10)
    counts = {"ours": np.zeros((3, 4)), "keras": np.zeros((3, 4))}
    for _ in range(600):
        for key, out in (
            ("ours", run("RandomCrop", {"height": 4, "width": 4}, x, rng=rng)[0]),
            ("keras", keras_train(klayer, x)),
        ):
            top, left = divmod(int(out[0, 0, 0, 0]), 7)
            np.testing.assert_array_equal(out[1], x[1, top : top + 4, left : left + 4])
            counts[key][top, left] += 1
    for table in counts.values():  # 50 expected in each of the 12 corners
        assert np.all(np.abs(table - 50) < 5 * math.sqrt(50 * 11 / 12))


# -- (d) inference, seeds, settings -------------------------------------------------------

BLOCKS = {
    "RandomFlip": {},
    "RandomRotation": {"factor": 0.3},
    "RandomZoom": {"height_factor": 0.3},
    "RandomTranslation": {"height_factor": 0.3, "width_factor": 0.2},
    "RandomContrast": {"factor": 0.4},
    "RandomBrightness": {"factor": 0.4},
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_inference_is_kerass_identity_and_training_repeats_with_the_seed(name):
    x = np.random.default_rng(12).uniform(0, 255, size=(4, 6, 5, 3)).astype(np.float32)
    klayer = getattr(keras.layers, name)(**BLOCKS[name])
    theirs = klayer(torch.from_numpy(x), training=False).numpy()
    ours, _ = run(name, BLOCKS[name], x, training=False)
    np.testing.assert_array_equal(ours, theirs)
    first, _ = run(name, BLOCKS[name], x, rng=np.random.default_rng(3))
    again, _ = run(name, BLOCKS[name], x, rng=np.random.default_rng(3))
    other, _ = run(name, BLOCKS[name], x, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_integer_pixels_become_float32_as_in_keras():
    x = np.random.default_rng(0).integers(0, 255, size=(2, 4, 4, 3)).astype(np.uint8)
    for name, params in BLOCKS.items():
        out, _ = run(name, params, x, training=False)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, x.astype(np.float32))


@pytest.mark.parametrize(
    "size,target", [((6, 7), (4, 4)), ((5, 9), (4, 3)), ((3, 3), (4, 2)), ((4, 3), (4, 3))]
)
def test_crop_at_inference_is_the_centred_aspect_box_resized(size, target):
    x = np.random.default_rng(2).normal(size=(2, *size, 2)).astype(np.float32)
    reference = keras.layers.Resizing(*target, crop_to_aspect_ratio=True)
    ours, _ = run("RandomCrop", {"height": target[0], "width": target[1]}, x, training=False)
    np.testing.assert_allclose(ours, reference(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name,params,field",
    [
        ("RandomRotation", {"factor": 1.5}, "factor"),
        ("RandomZoom", {"height_factor": -1.0}, "height_factor"),
        ("RandomZoom", {"height_factor": 0.2, "width_factor": [0.1, 1.2]}, "width_factor"),
        ("RandomTranslation", {"height_factor": 0.1, "width_factor": -1.1}, "width_factor"),
        ("RandomContrast", {"factor": 1.5}, "factor"),
        ("RandomBrightness", {"factor": [0.1, 0.2, 0.3]}, "factor"),
        ("RandomBrightness", {"factor": 0.1, "value_range": 255}, "value_range"),
    ],
)
def test_factors_keras_refuses_are_refused_naming_the_field(name, params, field):
    with pytest.raises(ValueError):
        getattr(keras.layers, name)(**params)
    with pytest.raises(ParamError) as info:
        block_class(name)(params)
    assert info.value.param == field and field in str(info.value)


def test_a_model_trains_through_the_seven_blocks_and_predicts_without_their_draws():
    from nodenet.engine.training import fit
    from nodenet.graph.project import Edge, Node, Project
    from nodenet.runner import build_model

    def chain(*blocks):
        nodes = [Node("x", "Input", {"shape": [10, 9, 1]})]
        nodes += [Node(f"b{i}", kind, params) for i, (kind, params) in enumerate(blocks)]
        nodes += [Node("flat", "Flatten", {}), Node("dense", "Dense", {"units": 2})]
        nodes.append(Node("y", "Output", {"loss": "mean_squared_error", "metrics": []}))
        edges = [Edge(a.id, b.id) for a, b in itertools.pairwise(nodes)]
        return Project("augment", nodes, edges)

    crop = ("RandomCrop", {"height": 8, "width": 8})
    augmented = build_model(chain(*BLOCKS.items(), crop), seed=0)
    rng = np.random.default_rng(0)
    x = {"x": rng.uniform(0, 255, size=(32, 10, 9, 1)).astype(np.float32)}
    y = {"y": rng.normal(size=(32, 2)).astype(np.float32)}
    history = fit(augmented, x, y, epochs=2, batch_size=8, seed=1)
    assert all(np.isfinite(epoch["loss"]) for epoch in history.epochs)
    # at inference only the crop acts: the centred box, resized (Keras's Resizing)
    plain = build_model(
        chain(("Resizing", {"height": 8, "width": 8, "crop_to_aspect_ratio": True}))
    )
    weights = augmented.get_weights()
    plain.set_weights(weights)
    np.testing.assert_allclose(augmented.predict(x)["y"], plain.predict(x)["y"], rtol=1e-5)

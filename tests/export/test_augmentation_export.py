"""The augmentation blocks in exported PyTorch and Keras code, and imported from Keras.

The PyTorch helpers are checked against Keras 3 (torch backend): ``affine_transform``
equals Keras's for every fill mode and interpolation (values and gradients); in
eval mode the generated module equals nodenet's predictions (RandomCrop's centred,
resized box included); in train mode each block's draws have the distribution of
Keras's own layer on the same batch (the angle, zoom and shift read back from a
blob, contrast and brightness from the pixels, flip and crop counts). The Keras
export runs Keras's layers with the block's arguments and seed; a Keras model of
the seven layers imports as the seven blocks with the same settings.
"""

from __future__ import annotations

import itertools
import json
import math
import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from nodenet.export import export_keras, export_pytorch  # noqa: E402
from nodenet.export.keras_import import import_keras_config  # noqa: E402
from nodenet.export.snippets import TORCH_HELPERS  # noqa: E402
from nodenet.graph.project import Edge, Node, Project  # noqa: E402
from nodenet.runner import build_model  # noqa: E402
from tests.support.augment_stats import N, angles, blobs, centroids, compare  # noqa: E402
from tests.support.generated import import_source  # noqa: E402

pytestmark = pytest.mark.ref

if keras.backend.backend() != "torch":
    pytest.skip("these tests need keras on the torch backend", allow_module_level=True)

SEVEN = [
    ("flip", "RandomFlip", {"mode": "horizontal", "seed": 1}),
    ("rotate", "RandomRotation", {"factor": [-0.2, 0.3], "fill_mode": "constant", "seed": 2}),
    ("zoom", "RandomZoom", {"height_factor": 0.2, "width_factor": [-0.1, 0.3]}),
    ("shift", "RandomTranslation", {"height_factor": 0.1, "width_factor": 0.2}),
    ("contrast", "RandomContrast", {"factor": 0.5, "value_range": [0, 1]}),
    ("bright", "RandomBrightness", {"factor": 0.3, "value_range": [0, 1]}),
    ("crop", "RandomCrop", {"height": 6, "width": 5, "seed": 3}),
]


def chain(blocks, shape) -> Project:
    """Input -> blocks -> Output (mean squared error)."""
    nodes = [Node("x", "Input", {"shape": list(shape)})]
    nodes += [Node(node_id, kind, dict(params)) for node_id, kind, params in blocks]
    nodes.append(Node("y", "Output", {"loss": "mean_squared_error", "metrics": []}))
    edges = [Edge(a.id, b.id) for a, b in itertools.pairwise(nodes)]
    return Project("augment", nodes, edges)


def torch_net(project: Project, tmp_path):
    code = export_pytorch(project, build_model(project).get_weights())
    return import_source(code.source, tmp_path, "augment_torch").build_model()


def keras_model(project: Project, tmp_path):
    code = export_keras(project, build_model(project).get_weights())
    return import_source(code.source, tmp_path, "augment_keras").build_model(), code.source


def helper(name: str):
    """A helper of the generated PyTorch code, with the helpers it calls."""
    namespace = {"torch": torch, "F": torch.nn.functional, "nn": torch.nn, "math": math}
    for source in TORCH_HELPERS.values():
        exec(source, namespace)  # our own generated source
    return namespace[name]


def train_torch(project: Project, x: np.ndarray, tmp_path, seed: int = 0) -> np.ndarray:
    net = torch_net(project, tmp_path)
    net.train()
    torch.manual_seed(seed)
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def train_keras_layer(klayer, x: np.ndarray) -> np.ndarray:
    return klayer(torch.tensor(x), training=True).detach().numpy()  # a copy: Keras adds in place


# -- the resampler ---------------------------------------------------------------------------


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_torch_affine_transform_equals_kerass(fill_mode, interpolation):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 6, 7, 2)).astype(np.float32)
    angle, zoom = rng.uniform(-3, 3, 4), rng.uniform(0.5, 1.8, 4)
    cx, cy = 3.0, 2.5
    a0, a1, b0, b1 = zoom * np.cos(angle), -zoom * np.sin(angle), np.sin(angle), np.cos(angle)
    a2 = rng.uniform(-5, 5, 4) + cx - cx * a0 - cy * a1
    b2 = rng.uniform(-4, 4, 4) + cy - cx * b0 - cy * b1
    zeros = np.zeros(4)
    matrices = np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], 1).astype(np.float32)
    ours_in, theirs_in = (torch.tensor(x, requires_grad=True) for _ in range(2))
    ours = helper("affine_transform")(
        ours_in, torch.tensor(matrices[:, :6]), interpolation, fill_mode, 0.3
    )
    theirs = keras.ops.image.affine_transform(
        theirs_in, torch.tensor(matrices), interpolation, fill_mode, 0.3
    )
    np.testing.assert_allclose(ours.detach(), theirs.detach(), rtol=1e-5, atol=1e-5)
    probe = torch.from_numpy(rng.normal(size=x.shape).astype(np.float32))
    (ours * probe).sum().backward()
    (theirs * probe).sum().backward()
    np.testing.assert_allclose(ours_in.grad, theirs_in.grad, atol=1e-5)


# -- the generated modules -------------------------------------------------------------------


def test_pytorch_export_is_nodenets_in_eval_mode_and_augments_in_train_mode(tmp_path):
    project = chain(SEVEN, (9, 8, 3))
    x = np.random.default_rng(0).uniform(0, 1, size=(4, 9, 8, 3)).astype(np.float32)
    expected = build_model(project).predict({"x": x})["y"]
    assert expected.shape == (4, 6, 5, 3)
    net = torch_net(project, tmp_path)
    net.eval()
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), expected, atol=1e-5)
    trained = train_torch(project, x, tmp_path)
    assert trained.shape == expected.shape and not np.allclose(trained, expected)
    assert trained.min() >= 0.0 and trained.max() <= 1.0  # brightness clips to its range


def test_keras_export_runs_kerass_layers_with_the_blocks_arguments(tmp_path):
    blocks = [b for b in SEVEN if b[1] != "RandomCrop"] + [
        ("crop", "RandomCrop", {"height": 9, "width": 8, "seed": 3})
    ]
    project = chain(blocks, (9, 8, 3))
    model, source = keras_model(project, tmp_path)
    for text in ("RandomFlip(", "mode='horizontal'", "seed=1", "RandomCrop(9, 8, seed=3"):
        assert text in source.replace('"', "'")
    x = np.random.default_rng(1).uniform(0, 1, size=(4, 9, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(
        model.predict(x, verbose=0)["y"], x, atol=1e-6
    )  # inference: identity
    trained = model(torch.from_numpy(x), training=True)["y"].detach().numpy()
    assert trained.shape == x.shape and not np.allclose(trained, x)
    rotate = model.get_layer("rotate").get_config()
    assert rotate["factor"] in ([-0.2, 0.3], (-0.2, 0.3)) and rotate["fill_mode"] == "constant"


def test_keras_export_of_a_crop_takes_the_box_while_training(tmp_path):
    """Keras 3.15's RandomCrop passes images on uncropped at inference
    (keras-team/keras#21868); while training it crops as the block does."""
    model, _ = keras_model(chain([SEVEN[-1]], (9, 8, 3)), tmp_path)
    x = np.arange(2 * 9 * 8 * 3, dtype=np.float32).reshape(2, 9, 8, 3)
    out = model(torch.from_numpy(x), training=True)["y"].detach().numpy()
    top, left = divmod(int(out[0, 0, 0, 0]) // 3, 8)
    np.testing.assert_array_equal(out, x[:, top : top + 6, left : left + 5])


# -- train-mode distributions of the PyTorch export against Keras's layers ----------------------


@pytest.mark.parametrize("factor", [0.1, [-0.05, 0.15]])
def test_torch_rotation_angles_have_kerass_distribution(factor, tmp_path):
    x = blobs(N, 12, 19)
    params = {"factor": factor, "fill_mode": "constant"}
    ours = train_torch(chain([("r", "RandomRotation", params)], x.shape[1:]), x, tmp_path)
    theirs = train_keras_layer(keras.layers.RandomRotation(**params, seed=1), x)
    low, high = np.multiply(factor if isinstance(factor, list) else [-factor, factor], 360)
    compare(angles(ours), angles(theirs), low, high, slack=1.0)


def test_torch_zoom_and_translation_have_kerass_distribution(tmp_path):
    x = blobs(N, 19, 19)
    params = {"height_factor": [-0.2, 0.2], "width_factor": [0.1, 0.3], "fill_mode": "constant"}
    ours = train_torch(chain([("z", "RandomZoom", params)], x.shape[1:]), x, tmp_path)
    theirs = train_keras_layer(keras.layers.RandomZoom(**params, seed=2), x)
    for axis, (low, high) in enumerate([(0.8, 1.2), (1.1, 1.3)]):
        zoom = [7.0 / (centroids(images)[axis] - 12) for images in (ours, theirs)]
        compare(*zoom, low, high, slack=0.02)

    x = blobs(N, 12, 12)
    params = {"height_factor": 0.2, "width_factor": [-0.1, 0.3], "fill_mode": "constant"}
    ours = train_torch(chain([("t", "RandomTranslation", params)], x.shape[1:]), x, tmp_path)
    theirs = train_keras_layer(keras.layers.RandomTranslation(**params, seed=3), x)
    for axis, (low, high) in enumerate([(-5.0, 5.0), (-2.5, 7.5)]):
        shifts = [centroids(images)[axis] - 12 for images in (ours, theirs)]
        compare(*shifts, low, high, slack=0.05)


def test_torch_contrast_and_brightness_have_kerass_distribution(tmp_path):
    x = np.random.default_rng(7).uniform(100, 150, size=(N, 5, 5, 2)).astype(np.float32)
    params = {"factor": [0.4, 0.2], "value_range": [-1e4, 1e4]}
    ours = train_torch(chain([("c", "RandomContrast", params)], x.shape[1:]), x, tmp_path)
    theirs = train_keras_layer(keras.layers.RandomContrast(**params, seed=4), x)
    factors = [y[..., 0].std(axis=(1, 2)) / x[..., 0].std(axis=(1, 2)) for y in (ours, theirs)]
    compare(*factors, 0.8, 1.4, slack=1e-3)

    params = {"factor": 0.2}
    ours = train_torch(chain([("b", "RandomBrightness", params)], x.shape[1:]), x, tmp_path)
    theirs = train_keras_layer(keras.layers.RandomBrightness(**params, seed=5), x)
    shifts = [(y - x).mean(axis=(1, 2, 3)) for y in (ours, theirs)]
    compare(*shifts, -51.0, 51.0, slack=1e-2)


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_torch_flip_rate_is_kerass(mode, tmp_path):
    x = np.arange(N * 4, dtype=np.float32).reshape(N, 2, 2, 1)
    ours = train_torch(chain([("f", "RandomFlip", {"mode": mode})], (2, 2, 1)), x, tmp_path)
    theirs = train_keras_layer(keras.layers.RandomFlip(mode, seed=6), x)
    corner = {"horizontal": (0, 1), "vertical": (1, 0)}.get(mode, (1, 1))
    for out in (ours, theirs):
        flipped = out[:, 0, 0, 0] == x[:, corner[0], corner[1], 0]
        assert np.all(flipped | (out[:, 0, 0, 0] == x[:, 0, 0, 0]))
        assert abs(flipped.mean() - 0.5) < 4 * math.sqrt(0.25 / N)


def test_torch_crop_corners_are_uniform_and_shared_by_the_batch(tmp_path):
    net = torch_net(chain([("c", "RandomCrop", {"height": 4, "width": 4})], (6, 7, 1)), tmp_path)
    net.train()
    torch.manual_seed(0)
    x = torch.arange(2 * 6 * 7, dtype=torch.float32).reshape(2, 6, 7, 1)
    counts = np.zeros((3, 4))
    for _ in range(600):
        out = net(x)
        top, left = divmod(int(out[0, 0, 0, 0]), 7)
        np.testing.assert_array_equal(out[1], x[1, top : top + 4, left : left + 4])
        counts[top, left] += 1
    assert np.all(np.abs(counts - 50) < 5 * math.sqrt(50 * 11 / 12))  # 50 expected per corner


# -- Keras import --------------------------------------------------------------------------------


def test_a_keras_model_of_the_seven_layers_imports_as_the_seven_blocks():
    model = keras.Sequential(
        [
            keras.Input((10, 9, 3)),
            keras.layers.RandomFlip("horizontal", seed=1),
            keras.layers.RandomRotation((-0.2, 0.3), fill_mode="constant", fill_value=0.5),
            keras.layers.RandomZoom(0.2, (-0.1, 0.3), interpolation="nearest"),
            keras.layers.RandomTranslation(0.3, 0.2, fill_mode="wrap"),
            keras.layers.RandomContrast(0.5, value_range=(0, 1)),
            keras.layers.RandomBrightness(0.3, value_range=(1, 0)),
            keras.layers.RandomCrop(6, 5, seed=3),
        ]
    )
    project = import_keras_config(json.loads(model.to_json()))
    blocks = {n.type: n.params for n in project.nodes if n.type not in ("Input", "Output")}
    assert blocks == {
        "RandomFlip": {"mode": "horizontal", "seed": 1},
        "RandomRotation": {"factor": [-0.2, 0.3], "fill_mode": "constant", "fill_value": 0.5},
        "RandomZoom": {
            "height_factor": 0.2,
            "width_factor": [-0.1, 0.3],
            "interpolation": "nearest",
        },
        "RandomTranslation": {"height_factor": 0.3, "width_factor": 0.2, "fill_mode": "wrap"},
        "RandomContrast": {"factor": [0, 0.5], "value_range": [0, 1]},  # Keras's (0, factor)
        "RandomBrightness": {"factor": [-0.3, 0.3], "value_range": [0, 1]},  # sorted by Keras
        "RandomCrop": {"height": 6, "width": 5, "seed": 3},
    }
    x = np.random.default_rng(2).uniform(0, 1, size=(3, 10, 9, 3)).astype(np.float32)
    out = build_model(project).predict({project.nodes[0].id: x})
    assert next(iter(out.values())).shape == (3, 6, 5, 3)

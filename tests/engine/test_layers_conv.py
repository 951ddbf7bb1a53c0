"""Convolution, upsampling and pooling blocks: hand-derived values and Keras/PyTorch parity.

The catalog contract test already checks every EXAMPLE's shapes and finite
differences; here are the family's own facts: where "same" padding goes,
what average pooling divides by at the edges, where max pooling sends the
gradient of a tie, and gradients against PyTorch autograd (through Keras 3's
torch backend) for settings with asymmetric padding, strides and dilation.
"""

from __future__ import annotations

import numpy as np
import pytest

from nodenet.engine.catalog import LAYERS, Context
from nodenet.errors import ParamError, ShapeError


def run(block: str, params: dict, x, weights=None) -> np.ndarray:
    layer = LAYERS.get(block)(params)
    y, _ = layer.forward(weights or {}, [np.asarray(x, dtype=np.float32)], Context())
    return y


def grads(block: str, params: dict, x, weights, probe):
    layer = LAYERS.get(block)(params)
    _, cache = layer.forward(weights, [x], Context())
    return layer.backward(weights, cache, probe)


# -- hand-computed convolutions ---------------------------------------------------


def seq(*values):
    """A (1, steps, 1) batch."""
    return np.array(values, dtype=np.float32).reshape(1, -1, 1)


def taps(*values):
    """A Conv1D kernel (kernel_size, 1, 1)."""
    return {"kernel": np.array(values, dtype=np.float32).reshape(-1, 1, 1)}


def test_conv1d_valid_is_a_correlation_without_kernel_flip():
    y = run(
        "Conv1D", {"filters": 1, "kernel_size": 2, "use_bias": False}, seq(1, 2, 3, 4), taps(1, 10)
    )
    assert y.ravel().tolist() == [21, 32, 43]


def test_conv1d_same_puts_the_odd_padding_at_the_end():
    # kernel 2: one zero of padding, after the last step
    y = run(
        "Conv1D",
        {"filters": 1, "kernel_size": 2, "padding": "same", "use_bias": False},
        seq(1, 2, 3),
        taps(1, 10),
    )
    assert y.ravel().tolist() == [21, 32, 3]


def test_conv1d_causal_pads_on_the_left_only():
    y = run(
        "Conv1D",
        {"filters": 1, "kernel_size": 2, "padding": "causal", "use_bias": False},
        seq(1, 2, 3),
        taps(1, 10),
    )
    assert y.ravel().tolist() == [10, 21, 32]
    dilated = run(
        "Conv1D",
        {
            "filters": 1,
            "kernel_size": 2,
            "padding": "causal",
            "dilation_rate": 2,
            "use_bias": False,
        },
        seq(1, 2, 3, 4),
        taps(1, 10),
    )
    assert dilated.ravel().tolist() == [10, 20, 31, 42]


def test_conv2d_same_with_stride_two_pads_after_when_the_total_is_odd():
    # 4x4 input, 3x3 kernel, stride 2: output 2x2, total padding 1 -> (0, 1)
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    kernel = np.ones((3, 3, 1, 1), dtype=np.float32)
    y = run(
        "Conv2D",
        {"filters": 1, "kernel_size": 3, "strides": 2, "padding": "same", "use_bias": False},
        x,
        {"kernel": kernel},
    )
    img = x[0, :, :, 0]
    expected = [
        [img[0:3, 0:3].sum(), img[0:3, 2:4].sum()],
        [img[2:4, 0:3].sum(), img[2:4, 2:4].sum()],
    ]
    np.testing.assert_array_equal(y[0, :, :, 0], expected)


def test_conv2d_kernel_layout_is_rows_cols_in_out_and_bias_is_per_filter():
    x = np.zeros((1, 2, 2, 2), dtype=np.float32)
    x[0, 1, 0, 1] = 1.0  # one pixel, second channel
    kernel = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    bias = np.array([100, 200, 300], dtype=np.float32)
    y = run("Conv2D", {"filters": 3, "kernel_size": 2}, x, {"kernel": kernel, "bias": bias})
    assert y.shape == (1, 1, 1, 3)
    np.testing.assert_array_equal(y[0, 0, 0], kernel[1, 0, 1] + bias)


def test_conv2d_transpose_kernel_is_rows_cols_filters_in():
    # a single input pixel stamps the kernel, weighted by its channels
    x = np.array([1.0, 2.0], dtype=np.float32).reshape(1, 1, 1, 2)
    kernel = np.random.default_rng(0).normal(size=(2, 3, 4, 2)).astype(np.float32)
    y = run(
        "Conv2DTranspose",
        {"filters": 4, "kernel_size": [2, 3], "use_bias": False},
        x,
        {"kernel": kernel},
    )
    np.testing.assert_allclose(y[0], kernel @ np.array([1.0, 2.0], dtype=np.float32), rtol=1e-6)


def test_conv2d_transpose_stride_places_stamps_and_same_crops_to_input_times_strides():
    x = np.array([1.0, 10.0], dtype=np.float32).reshape(1, 1, 2, 1)
    kernel = np.array([1.0, 2.0, 3.0], dtype=np.float32).reshape(1, 3, 1, 1)
    params = {"filters": 1, "kernel_size": [1, 3], "strides": [1, 2], "use_bias": False}
    full = run("Conv2DTranspose", params, x, {"kernel": kernel})
    assert full.ravel().tolist() == [1, 2, 13, 20, 30]  # (2 - 1) * 2 + 3 positions
    same = run("Conv2DTranspose", {**params, "padding": "same"}, x, {"kernel": kernel})
    # Keras keeps input * strides = 4 positions; the padding arithmetic (total
    # strides + kernel - 2 = 3, of which kernel - 1 = 2 before) cuts the last one
    assert same.ravel().tolist() == [1, 2, 13, 20]


# -- upsampling -------------------------------------------------------------------


def test_upsampling_nearest_repeats_and_bilinear_uses_half_pixel_centres():
    x = np.array([0.0, 4.0], dtype=np.float32).reshape(1, 1, 2, 1)
    nearest = run("UpSampling2D", {"size": [1, 2]}, x)
    assert nearest.ravel().tolist() == [0, 0, 4, 4]
    linear = run("UpSampling2D", {"size": [1, 2], "interpolation": "bilinear"}, x)
    assert linear.ravel().tolist() == [0, 1, 3, 4]  # samples at -0.25 (clamped), 0.25, 0.75, 1.25
    assert run("UpSampling1D", {"size": 3}, seq(1, 2)).ravel().tolist() == [1, 1, 1, 2, 2, 2]


# -- pooling ---------------------------------------------------------------------


def test_average_pooling_same_divides_by_the_real_elements_of_each_window():
    x = seq(1, 2, 3, 4, 5, 6)
    # pool 3 stride 2: padding (0, 1); the last window holds 5 and 6 only
    y = run("AveragePooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}, x)
    np.testing.assert_allclose(y.ravel(), [2, 4, 5.5])
    # pool 4 stride 1: padding (1, 2)
    y = run("AveragePooling1D", {"pool_size": 4, "strides": 1, "padding": "same"}, x)
    np.testing.assert_allclose(y.ravel(), [2, 2.5, 3.5, 4.5, 5, 5.5])
    # NOTE: Keras 3.15's torch backend pads these asymmetric windows with copies of
    # the edge instead (5.667 for the first case); TF and JAX agree with the above.


def test_average_pooling_2d_same_matches_the_keras_documentation():
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    y = run("AveragePooling2D", {"pool_size": 2, "strides": 1, "padding": "same"}, x)
    np.testing.assert_allclose(y[0, :, :, 0], [[3, 4, 4.5], [6, 7, 7.5], [7.5, 8.5, 9]])


def test_average_pooling_backward_shares_by_the_same_counts():
    x = seq(1, 2, 3, 4, 5, 6)
    g = np.ones((1, 3, 1), dtype=np.float32)
    (dx,), _ = grads(
        "AveragePooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}, x, {}, g
    )
    np.testing.assert_allclose(dx.ravel(), [1 / 3, 1 / 3, 2 / 3, 1 / 3, 5 / 6, 1 / 2])


def test_max_pooling_valid_drops_the_overhang_and_its_gradient_is_zero():
    x = seq(3, 1, 2, 5, 9)
    y = run("MaxPooling1D", {}, x)
    assert y.ravel().tolist() == [3, 5]
    (dx,), _ = grads("MaxPooling1D", {}, x, {}, np.array([1.0, 2.0], np.float32).reshape(1, 2, 1))
    assert dx.ravel().tolist() == [1, 0, 0, 2, 0]


def test_max_pooling_sends_a_tie_to_the_first_maximum():
    x = np.ones((1, 4, 4, 1), dtype=np.float32)
    g = np.arange(1, 5, dtype=np.float32).reshape(1, 2, 2, 1)
    (dx,), _ = grads("MaxPooling2D", {}, x, {}, g)
    expected = np.zeros((4, 4), dtype=np.float32)
    expected[::2, ::2] = [[1, 2], [3, 4]]
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)
    # overlapping windows: each output routes to the first maximum it sees
    (dx,), _ = grads(
        "MaxPooling1D",
        {"pool_size": 3, "strides": 1},
        seq(2, 2, 2, 2),
        {},
        np.array([1.0, 10.0], np.float32).reshape(1, 2, 1),
    )
    assert dx.ravel().tolist() == [1, 10, 0, 0]


def test_global_max_pooling_splits_a_tie_evenly():
    x = seq(1, 7, 7, 2)
    (dx,), _ = grads("GlobalMaxPooling1D", {}, x, {}, np.array([[4.0]], np.float32))
    assert dx.ravel().tolist() == [0, 2, 2, 0]


# -- settings and shapes -----------------------------------------------------------


def test_strides_with_dilation_are_refused_like_keras():
    for block in ("Conv1D", "Conv2D", "Conv2DTranspose"):
        with pytest.raises(ParamError, match="dilation_rate"):
            LAYERS.get(block)({"strides": 2, "dilation_rate": 2})
    with pytest.raises(ParamError, match="output_padding"):
        LAYERS.get("Conv2DTranspose")({"strides": 2, "output_padding": 2})


def test_shapes_keep_unknown_steps_and_refuse_a_window_that_does_not_fit():
    conv = LAYERS.get("Conv1D")({"filters": 4, "kernel_size": 3, "strides": 2})
    assert conv.infer_shape([(None, 2)]) == (None, 4)
    assert conv.infer_shape([(9, 2)]) == (4, 4)
    with pytest.raises(ShapeError, match="kernel_size"):
        LAYERS.get("Conv2D")({"kernel_size": 5}).infer_shape([(4, 8, 1)])
    with pytest.raises(ShapeError, match="pool_size"):
        LAYERS.get("MaxPooling2D")({"pool_size": 3}).infer_shape([(2, 8, 1)])
    pool = LAYERS.get("MaxPooling2D")({"padding": "same"})
    assert pool.infer_shape([(2, 7, 3)]) == (1, 4, 3)
    assert LAYERS.get("GlobalAveragePooling2D")({"keepdims": True}).infer_shape([(5, 5, 3)]) == (
        1,
        1,
        3,
    )


def test_the_mnist_cnn_counts_parameters_like_keras():
    conv1 = LAYERS.get("Conv2D")({"filters": 32, "kernel_size": 3, "activation": "relu"})
    conv2 = LAYERS.get("Conv2D")({"filters": 64, "kernel_size": 3, "activation": "relu"})
    pool = LAYERS.get("MaxPooling2D")({})
    s1 = conv1.infer_shape([(28, 28, 1)])
    s2 = pool.infer_shape([s1])
    s3 = conv2.infer_shape([s2])
    assert (s1, s2, s3, pool.infer_shape([s3])) == (
        (26, 26, 32),
        (13, 13, 32),
        (11, 11, 64),
        (5, 5, 64),
    )
    assert conv1.count_params([(28, 28, 1)]) == (320, 0)
    assert conv2.count_params([s2]) == (18_496, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_forward_and_backward(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 5, 2)).astype(dtype)
    for block, params in [
        ("Conv2D", {"filters": 2, "padding": "same"}),
        ("Conv2DTranspose", {"filters": 2, "strides": 2}),
        ("MaxPooling2D", {"padding": "same"}),
        ("AveragePooling2D", {"padding": "same"}),
        ("UpSampling2D", {"interpolation": "bilinear"}),
    ]:
        layer = LAYERS.get(block)(params)
        w = {
            s.name: rng.normal(size=s.shape).astype(dtype)
            for s in layer.weight_specs([x.shape[1:]])
        }
        y, cache = layer.forward(w, [x], Context())
        (dx,), dw = layer.backward(w, cache, np.ones_like(y))
        assert y.dtype == dtype and dx.dtype == dtype, block
        assert all(g.dtype == dtype for g in dw.values()), block


# -- Keras / PyTorch parity --------------------------------------------------------

KERAS_CASES = [
    ("Conv1D", {"filters": 3, "kernel_size": 4, "strides": 3, "padding": "same"}, (11, 2)),
    ("Conv1D", {"filters": 2, "kernel_size": 3, "padding": "causal", "dilation_rate": 3}, (10, 3)),
    (
        "Conv2D",
        {"filters": 4, "kernel_size": [4, 3], "strides": [3, 2], "padding": "same"},
        (10, 9, 3),
    ),
    (
        "Conv2D",
        {"filters": 2, "kernel_size": 3, "dilation_rate": [1, 2], "padding": "same"},
        (7, 8, 2),
    ),
    (
        "Conv2DTranspose",
        {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"},
        (4, 5, 2),
    ),
    (
        "Conv2DTranspose",
        {"filters": 2, "kernel_size": [4, 2], "strides": [3, 2], "padding": "valid"},
        (3, 4, 3),
    ),
    (
        "Conv2DTranspose",
        {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same"},
        (5, 4, 2),
    ),
    ("MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}, (8, 7, 2)),
    ("MaxPooling1D", {"pool_size": 4, "strides": 3, "padding": "same"}, (11, 2)),
    ("AveragePooling2D", {"pool_size": [3, 2], "strides": [2, 1]}, (9, 6, 2)),
    ("AveragePooling2D", {"pool_size": 3, "strides": 1, "padding": "same"}, (6, 5, 2)),
    ("UpSampling2D", {"size": [3, 2], "interpolation": "bilinear"}, (4, 5, 2)),
    ("UpSampling2D", {"size": [2, 3]}, (3, 4, 2)),
    ("GlobalMaxPooling2D", {}, (5, 4, 3)),
    ("GlobalAveragePooling1D", {"keepdims": True}, (6, 3)),
]


def keras_layer(block: str, params: dict):
    keras = pytest.importorskip("keras")
    pytest.importorskip("torch")
    if keras.backend.backend() != "torch":
        pytest.skip("the reference runs Keras on its torch backend")
    config = {k: (None if v == "linear" else v) for k, v in params.items()}
    return getattr(keras.layers, block)(**config)


def compare_with_keras(block: str, params: dict, shape: tuple, batch: int = 3) -> None:
    """Forward, input gradient and weight gradients against Keras on torch autograd."""
    torch = pytest.importorskip("torch")
    reference = keras_layer(block, params)
    layer = LAYERS.get(block)(params)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(batch, *shape)).astype(np.float32)
    specs = layer.weight_specs([shape])
    weights = {s.name: rng.normal(0, 0.5, size=s.shape).astype(np.float32) for s in specs}
    reference.build((None, *shape))
    if specs:
        reference.set_weights([weights[s.name] for s in specs])
    xt = torch.tensor(x, requires_grad=True)
    yt = reference(xt)
    y, cache = layer.forward(weights, [x], Context())
    assert y.shape == tuple(yt.shape) == (batch, *layer.infer_shape([shape]))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-5)

    probe = rng.normal(size=y.shape).astype(np.float32)
    (yt * torch.tensor(probe)).sum().backward()
    (dx,), dw = layer.backward(weights, cache, probe)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for spec, variable in zip(specs, reference.weights, strict=True):
        expected = variable.value.grad.numpy()
        # a weight gradient sums batch * positions float32 terms: allow for their rounding
        atol = 1e-4 * max(1.0, float(np.abs(expected).max()) * batch / 30)
        np.testing.assert_allclose(dw[spec.name], expected, rtol=1e-4, atol=atol, err_msg=spec.name)


@pytest.mark.parametrize(
    "block,params,shape", KERAS_CASES, ids=[f"{b}-{i}" for i, (b, _, _) in enumerate(KERAS_CASES)]
)
def test_forward_and_gradients_match_keras_on_torch_autograd(block, params, shape):
    compare_with_keras(block, params, shape)


BIG_CASES = [
    ("Conv2D", {"filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"}),
    ("Conv2DTranspose", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}),
    ("MaxPooling2D", {}),
    ("MaxPooling2D", {"pool_size": 3, "strides": 2}),
    ("AveragePooling2D", {"pool_size": 2, "padding": "same"}),
]


@pytest.mark.parametrize("block,params", BIG_CASES, ids=[b for b, _ in BIG_CASES])
def test_big_batches_split_over_threads_still_match_keras(block, params, monkeypatch):
    # large enough for the element-wise work to be split over 3 threads
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    compare_with_keras(block, params, (21, 19, 12), batch=70)


def test_max_pooling_tie_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.zeros((2, 6, 6, 3), dtype=np.float32)  # all ties, as after a ReLU
    x[0, 1, 1, 0] = 1.0
    probe = np.random.default_rng(1).normal(size=(2, 3, 3, 3)).astype(np.float32)
    for params in [{}, {"pool_size": 3, "strides": 2, "padding": "same"}]:
        reference = keras_layer("MaxPooling2D", params)
        xt = torch.tensor(x, requires_grad=True)
        yt = reference(xt)
        (yt * torch.tensor(probe[:, : yt.shape[1], : yt.shape[2]])).sum().backward()
        (dx,), _ = grads(
            "MaxPooling2D", params, x, {}, probe[:, : yt.shape[1], : yt.shape[2]].copy()
        )
        np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-6, err_msg=str(params))

"""Core, Embedding and normalization blocks: behaviour the catalog contract does not cover.

Keras 3 (torch backend) is the reference: BatchNormalization's training step
and moving statistics, gradients through torch autograd, Dropout's scaling,
Embedding's index handling. Tests needing Keras skip when it is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from nodenet.engine.catalog import Context, Example, block_class
from nodenet.errors import DataError, ParamError, ShapeError
from tests.support.gradcheck import check_gradients


def make(type_name: str, params: dict | None = None, name: str = "node"):
    return block_class(type_name)(params or {}, name)


def keras_layer(type_name: str, config: dict, input_shape: tuple, weights: list):
    """The Keras layer for a nodenet block config, built and given ``weights``."""
    keras = pytest.importorskip("keras")
    kwargs = {
        k: keras.regularizers.L1L2(**v) if k.endswith("_regularizer") and v else v
        for k, v in config.items()
    }
    layer = getattr(keras.layers, type_name)(**kwargs)
    layer.build((None, *input_shape))
    layer.set_weights([np.array(w) for w in weights])
    return layer


def keras_grads(layer, x: np.ndarray, probe: np.ndarray, training: bool):
    """Output and gradients of ``sum(output * probe)`` through Keras, by torch autograd."""
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=x.dtype.kind == "f")
    out = layer(xt, training=training)
    (out * torch.tensor(probe)).sum().backward()
    dx = None if xt.grad is None else xt.grad.numpy()
    dw = {w.name: w.value.grad.numpy() for w in layer.trainable_weights}
    return out.detach().numpy(), dx, dw


def ours(layer, weights, x, training, probe, seed=0):
    out, cache = layer.forward(weights, [x], Context(training, np.random.default_rng(seed)))
    (dx,), dw = layer.backward(weights, cache, probe)
    return out, dx, dw


def test_weights_follow_keras_order_and_trainability():
    bn = make("BatchNormalization")
    specs = bn.weight_specs([(5, 3)])
    assert [(s.name, s.shape, s.trainable) for s in specs] == [
        ("gamma", (3,), True),
        ("beta", (3,), True),
        ("moving_mean", (3,), False),
        ("moving_variance", (3,), False),
    ]
    assert bn.count_params([(5, 3)]) == (6, 6)
    assert [s.name for s in make("LayerNormalization").weight_specs([(4,)])] == ["gamma", "beta"]
    assert [s.name for s in make("BatchNormalization", {"scale": False}).weight_specs([(2,)])] == [
        "beta",
        "moving_mean",
        "moving_variance",
    ]


# -- BatchNormalization ------------------------------------------------------


@pytest.mark.parametrize(
    "params,shape",
    [
        ({"momentum": 0.9}, (5,)),
        ({"axis": 1, "momentum": 0.8, "epsilon": 0.01}, (3, 4)),
        ({"momentum": 0.5, "center": False}, (4, 4, 3)),
        ({"axis": -2, "scale": False}, (2, 3, 4)),
    ],
)
def test_batchnorm_training_steps_match_keras(params, shape):
    """Several training steps: outputs, gradients and moving statistics, then inference."""
    layer = make("BatchNormalization", params)
    rng = np.random.default_rng(3)
    specs = layer.weight_specs([shape])
    weights = {s.name: rng.uniform(0.5, 1.5, s.shape).astype(np.float32) for s in specs}
    ref = keras_layer(
        "BatchNormalization", layer.get_config(), shape, [weights[s.name] for s in specs]
    )
    for step in range(3):
        x = rng.normal(2.0 * step, 1.5, size=(8, *shape)).astype(np.float32)
        probe = rng.normal(size=x.shape).astype(np.float32)
        out, dx, dw = ours(layer, weights, x, True, probe)
        k_out, k_dx, k_dw = keras_grads(ref, x, probe, training=True)
        for w in ref.trainable_weights:
            w.value.grad = None
        np.testing.assert_allclose(out, k_out, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dx, k_dx, rtol=1e-4, atol=1e-5)
        assert set(dw) == set(k_dw)
        for name in dw:
            np.testing.assert_allclose(dw[name], k_dw[name], rtol=1e-4, atol=1e-4)
        for name in ("moving_mean", "moving_variance"):
            keras_value = getattr(ref, name).numpy()
            np.testing.assert_allclose(weights[name], keras_value, rtol=1e-6, atol=1e-7)
    x = rng.normal(1.0, 2.0, size=(6, *shape)).astype(np.float32)
    out, _ = layer.forward(weights, [x], Context(training=False))
    np.testing.assert_allclose(out, ref(x, training=False).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_batchnorm_moving_update_by_hand():
    """One step from the Keras initial state, checked against a float64 computation."""
    layer = make("BatchNormalization", {"momentum": 0.9})
    x = np.array([[1.0, 10.0], [3.0, 10.0], [8.0, 13.0]], dtype=np.float32)
    weights = {
        "gamma": np.ones(2, np.float32),
        "beta": np.zeros(2, np.float32),
        "moving_mean": np.zeros(2, np.float32),
        "moving_variance": np.ones(2, np.float32),
    }
    layer.forward(weights, [x], Context(training=True))
    mean = np.array([4.0, 11.0])
    var = np.array([(9 + 1 + 16) / 3, (1 + 1 + 4) / 3])  # biased: divides by the count
    np.testing.assert_allclose(weights["moving_mean"], 0.1 * mean, rtol=1e-6)
    np.testing.assert_allclose(weights["moving_variance"], 0.9 + 0.1 * var, rtol=1e-6)


def test_batchnorm_inference_leaves_moving_statistics_alone():
    layer = make("BatchNormalization")
    weights = {s.name: np.full(s.shape, 0.7, np.float32) for s in layer.weight_specs([(3,)])}
    before = {k: v.copy() for k, v in weights.items()}
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    out, _ = layer.forward(weights, [x], Context(training=False))
    for name, value in before.items():
        assert np.array_equal(weights[name], value)
    expected = (x - 0.7) / np.sqrt(0.7 + 1e-3) * 0.7 + 0.7
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_batchnorm_stays_finite_far_from_zero():
    """Raw inputs far from zero: the batch variance is the true one, not a cancellation error."""
    layer = make("BatchNormalization")
    x = (10_000.0 + np.random.default_rng(1).normal(size=(64, 4))).astype(np.float32)
    weights = {s.name: np.ones(s.shape, np.float32) for s in layer.weight_specs([(4,)])}
    out, _ = layer.forward(weights, [x], Context(training=True))
    x64 = x.astype(np.float64)
    expected = (x64 - x64.mean(0)) / np.sqrt(x64.var(0) + 1e-3) + 1
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, expected, atol=2e-3)  # x - mean: float32 at 1e4


def test_batchnorm_inference_backward_uses_moving_statistics():
    layer = make("BatchNormalization", {"axis": 1})
    rng = np.random.default_rng(0)
    weights = {s.name: rng.uniform(0.5, 1.5, s.shape) for s in layer.weight_specs([(3, 2)])}
    x = rng.normal(size=(4, 3, 2))
    probe = rng.normal(size=x.shape)
    _, dx, dw = ours(layer, weights, x, False, probe)
    scale = (weights["gamma"] / np.sqrt(weights["moving_variance"] + 1e-3))[:, None]
    np.testing.assert_allclose(dx, probe * scale, rtol=1e-12)
    np.testing.assert_allclose(dw["beta"], probe.sum(axis=(0, 2)), rtol=1e-12)
    x_hat = (x - weights["moving_mean"][:, None]) / np.sqrt(weights["moving_variance"] + 1e-3)[
        :, None
    ]
    np.testing.assert_allclose(dw["gamma"], (probe * x_hat).sum(axis=(0, 2)), rtol=1e-12)


@pytest.mark.parametrize("block", ["BatchNormalization", "LayerNormalization"])
@pytest.mark.parametrize(
    "axis,shape,message",
    [
        (0, (3,), "not a feature axis"),
        (3, (3, 2), "not a feature axis"),
        (-3, (3,), "not a feature axis"),
        (-1, (2, None), "known size"),
    ],
)
def test_normalization_refuses_bad_axes(block, axis, shape, message):
    with pytest.raises(ShapeError, match=message):
        make(block, {"axis": axis}).infer_shape([shape])


# -- LayerNormalization ------------------------------------------------------


@pytest.mark.parametrize(
    "params,shape,offset",
    [({}, (7,), 0.0), ({"epsilon": 1e-5}, (3, 16), 50.0), ({"center": False}, (2, 2, 5), 0.0)],
)
def test_layernorm_matches_keras_with_gradients(params, shape, offset):
    layer = make("LayerNormalization", params)
    rng = np.random.default_rng(5)
    specs = layer.weight_specs([shape])
    weights = {s.name: rng.normal(1.0, 0.3, s.shape).astype(np.float32) for s in specs}
    ref = keras_layer(
        "LayerNormalization", layer.get_config(), shape, [weights[s.name] for s in specs]
    )
    x = (offset + rng.normal(size=(4, *shape))).astype(np.float32)
    probe = rng.normal(size=x.shape).astype(np.float32)
    out, dx, dw = ours(layer, weights, x, True, probe)
    k_out, k_dx, k_dw = keras_grads(ref, x, probe, training=True)
    np.testing.assert_allclose(out, k_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx, k_dx, rtol=1e-3, atol=1e-4)
    for name in dw:
        np.testing.assert_allclose(dw[name], k_dw[name], rtol=1e-4, atol=1e-4)


def test_layernorm_on_an_inner_axis_is_keras_on_that_axis():
    """axis=1 of (batch, 3, 4) normalizes each column: Keras's axis=-1 on the transpose.

    (Keras's torch backend hands a lone axis to ``F.layer_norm``, which always
    normalizes the last axis, so it fails here; nodenet follows the documented
    meaning, which the TensorFlow and JAX backends implement.)
    """
    layer = make("LayerNormalization", {"axis": 1})
    rng = np.random.default_rng(2)
    gamma, beta = rng.normal(size=(2, 3)).astype(np.float32)
    x = rng.normal(size=(5, 3, 4)).astype(np.float32)
    out, _ = layer.forward({"gamma": gamma, "beta": beta}, [x], Context())
    ref = keras_layer("LayerNormalization", {}, (4, 3), [gamma, beta])
    expected = ref(np.swapaxes(x, 1, 2)).detach().numpy()
    np.testing.assert_allclose(out, np.swapaxes(expected, 1, 2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "block,params,shape",
    [
        ("LayerNormalization", {"axis": 1}, (3, 4)),
        ("LayerNormalization", {"axis": -2}, (2, 3, 2)),
        ("BatchNormalization", {"axis": 1}, (2, 3, 2)),
    ],
)
def test_inner_axis_gradients_match_finite_differences(block, params, shape):
    check_gradients(make(block, params), Example(params, (shape,)))


# -- Dropout -----------------------------------------------------------------


def test_dropout_is_the_identity_at_inference():
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    out, _ = make("Dropout", {"rate": 0.9}).forward({}, [x], Context(training=False))
    assert np.array_equal(out, x)


def test_dropout_scaling_statistics():
    rate = 0.3
    layer = make("Dropout", {"rate": rate})
    x = np.ones((400, 500), np.float32)
    out, dx, _ = ours(layer, {}, x, True, np.full_like(x, 2.0), seed=11)
    kept = out != 0
    n = x.size
    assert abs(kept.mean() - (1 - rate)) < 4 * np.sqrt(rate * (1 - rate) / n)
    assert np.all(out[kept] == np.float32(1) / np.float32(1 - rate))
    assert abs(out.mean() - 1.0) < 0.01  # inverted dropout keeps the expectation
    np.testing.assert_array_equal(dx, 2.0 * out)  # backward reuses the forward's mask
    again, _ = layer.forward({}, [x], Context(True, np.random.default_rng(11)))
    other, _ = layer.forward({}, [x], Context(True, np.random.default_rng(12)))
    assert np.array_equal(again, out) and not np.array_equal(other, out)


@pytest.mark.parametrize("rate", [0.25, 0.6, 1.0])
def test_dropout_training_matches_keras_scaling(rate):
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(4).normal(size=(300, 40)).astype(np.float32)
    ref = keras.layers.Dropout(rate)(x, training=True).detach().numpy()
    out, _ = make("Dropout", {"rate": rate}).forward({}, [x], Context(training=True))
    both = (out != 0) & (ref != 0)
    np.testing.assert_allclose(out[both], ref[both], rtol=1e-6)
    assert abs((out != 0).mean() - (ref != 0).mean()) < 0.03
    if rate == 1.0:
        assert not out.any() and not ref.any()


# -- Embedding ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [10, 57, -1])
def test_embedding_out_of_range_index_is_a_data_error_naming_the_block(bad):
    layer = make("Embedding", {"input_dim": 10, "output_dim": 3}, name="words")
    weights = {"embeddings": np.zeros((10, 3), np.float32)}
    x = np.array([[1, 2, bad]], dtype=np.int32)
    with pytest.raises(DataError, match=rf"'words'.*{bad}.*input_dim=10"):
        layer.forward(weights, [x], Context())


def test_embedding_refuses_nan_indices():
    layer = make("Embedding", {"input_dim": 4, "output_dim": 2}, name="tokens")
    with pytest.raises(DataError, match="tokens"):
        layer.forward({"embeddings": np.zeros((4, 2))}, [np.array([[0.0, np.nan]])], Context())


def test_embedding_float_indices_are_truncated_like_keras():
    layer = make("Embedding", {"input_dim": 5, "output_dim": 3})
    table = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    x = np.array([[1.7, 2.2, 0.9], [4.99, 0.0, 3.5]], dtype=np.float32)
    out, _ = layer.forward({"embeddings": table}, [x], Context())
    ref = keras_layer("Embedding", layer.get_config(), (3,), [table])
    np.testing.assert_array_equal(out, ref(x).detach().numpy())


def test_embedding_gradient_sums_repeated_indices_like_keras():
    layer = make("Embedding", {"input_dim": 6, "output_dim": 4})
    rng = np.random.default_rng(7)
    table = rng.normal(size=(6, 4)).astype(np.float32)
    x = rng.integers(0, 4, size=(8, 5)).astype(np.int32)  # rows 4 and 5 unused
    probe = rng.normal(size=(8, 5, 4)).astype(np.float32)
    out, cache = layer.forward({"embeddings": table}, [x], Context(training=True))
    (dx,), dw = layer.backward({"embeddings": table}, cache, probe)
    ref = keras_layer("Embedding", layer.get_config(), (5,), [table])
    k_out, _, k_dw = keras_grads(ref, x, probe, training=True)
    assert dx is None
    assert dw["embeddings"].dtype == np.float32
    np.testing.assert_array_equal(out, k_out)
    np.testing.assert_allclose(dw["embeddings"], k_dw["embeddings"], rtol=1e-5, atol=1e-6)
    assert not dw["embeddings"][4:].any()


def test_embedding_output_shape_keeps_variable_lengths():
    layer = make("Embedding", {"input_dim": 9, "output_dim": 7})
    assert layer.infer_shape([(None,)]) == (None, 7)
    assert layer.infer_shape([(3, 4)]) == (3, 4, 7)


# -- shape blocks ------------------------------------------------------------


@pytest.mark.parametrize(
    "target,shape,match",
    [([4, 2], (3, 3), "9 values.*8 values"), ([-1, 4], (6,), "not a multiple of 4")],
)
def test_reshape_refuses_sizes_that_disagree(target, shape, match):
    with pytest.raises(ShapeError, match=match):
        make("Reshape", {"target_shape": target}).infer_shape([shape])


def test_reshape_refuses_two_unknowns():
    with pytest.raises(ParamError, match="target_shape"):
        make("Reshape", {"target_shape": [-1, -1]})


@pytest.mark.parametrize(
    "block,params,shape",
    [
        ("Reshape", {"target_shape": [-1, 2]}, (None, 4)),
        ("Reshape", {"target_shape": [3, 4]}, (2, None)),
        ("Flatten", {}, (None, 3)),
        ("Flatten", {}, (2, 3, 4)),
        ("Permute", {"dims": [2, 1]}, (None, 3)),
        ("RepeatVector", {"n": 4}, (None,)),
    ],
)
def test_variable_dimensions_follow_keras(block, params, shape):
    keras = pytest.importorskip("keras")
    ref = getattr(keras.layers, block)(**params).compute_output_shape((None, *shape))
    assert make(block, params).infer_shape([shape]) == tuple(ref[1:])


def test_reshape_with_a_variable_input_checks_sizes_when_run():
    layer = make("Reshape", {"target_shape": [3, 4]})
    with pytest.raises(ShapeError, match="Reshape"):
        layer.forward({}, [np.zeros((2, 5, 2), np.float32)], Context())


@pytest.mark.parametrize("dims", [[1, 1], [0, 1], [1, 3], [2, 3]])
def test_permute_refuses_a_non_permutation(dims):
    with pytest.raises(ParamError, match="Permute: dims"):
        block_class("Permute").from_config({"dims": dims})


def test_permute_rank_must_match_dims():
    with pytest.raises(ShapeError, match="3-D input"):
        make("Permute", {"dims": [2, 1]}).infer_shape([(2, 3, 4)])


def test_repeat_vector_needs_a_2d_input():
    with pytest.raises(ShapeError, match="RepeatVector expects a 2-D input"):
        make("RepeatVector", {"n": 2}).infer_shape([(3, 4)])

"""The fused kernels (nodenet.engine.kernels) give bit for bit what the numpy code gives.

Every caller keeps its numpy code for machines without numba; here each fused path
runs against that code on the same inputs and must agree exactly, not within a
tolerance: the kernels perform the same float operations in the same order. The one
exception is exp in float32 (``exp32``), checked against float64's exp on its own and
then within float32 rounding through an LSTM. The numpy code itself is checked against
Keras in the blocks' own tests (which run with the kernels where numba is installed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from nodenet.engine import kernels
from nodenet.engine.layers import rnn_cells, rnn_ops
from nodenet.engine.layers.rnn_ops import _Masks
from nodenet.engine.optimizers import make_optimizer

pytest.importorskip("numba", reason="the kernels need numba (the fast extra)")

DTYPES = [np.float32, np.float64]


@pytest.fixture
def numpy_exp(monkeypatch):
    """The kernels with numpy's exp in place of exp32, for bit-for-bit comparisons."""

    def exp_in_place(x, times):
        np.multiply(x, times, out=x)
        with np.errstate(over="ignore"):
            np.exp(x, out=x)

    monkeypatch.setattr(kernels.get(), "exp32_in_place", exp_in_place)


@pytest.fixture
def kernels_off(monkeypatch):
    """A function that runs ``fn`` with the kernels turned off, as on a machine without them."""

    def run(fn):
        with monkeypatch.context() as m:
            m.setenv("NODENET_KERNELS", "numpy")
            return fn()

    return run


def test_the_kernels_are_there_and_the_environment_turns_them_off(monkeypatch):
    assert kernels.get() is not None
    monkeypatch.setenv("NODENET_KERNELS", "numpy")
    assert kernels.get() is None


def test_the_kernels_run_without_loading_scipy_linalg_which_stays_importable():
    """numba's registries look for scipy's BLAS, some 16 MiB no kernel uses: not loaded."""
    script = """
import sys
import numpy as np
from nodenet.engine import kernels
w, g, m, v = (np.ones(64, np.float32) for _ in range(4))
f = np.float32
kernels.get().adam(w, g, m, v, f(0.9), f(0.1), f(0.999), f(0.001), f(1e-7), f(0.001))
assert np.isfinite(w).all() and (w < 1).all(), w
assert "scipy.linalg" not in sys.modules, "numba loaded scipy.linalg"
import scipy.linalg
print(scipy.linalg.norm(np.ones(4)))
"""
    env = {k: v for k, v in os.environ.items() if k != "NODENET_KERNELS"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2.0"


def test_an_import_is_refused_in_the_calling_thread_only(tmp_path, monkeypatch):
    (tmp_path / "nodenet_probe_module.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "nodenet_probe_module", raising=False)
    elsewhere = []

    def import_in_a_thread():
        import nodenet_probe_module

        elsewhere.append(nodenet_probe_module.VALUE)

    with kernels._refused_in_this_thread("nodenet_probe_module"):
        with pytest.raises(ModuleNotFoundError):
            import nodenet_probe_module
        thread = threading.Thread(target=import_in_a_thread)
        thread.start()
        thread.join()
    assert elsewhere == [1]
    import nodenet_probe_module

    assert nodenet_probe_module.VALUE == 1


def test_without_numba_the_engine_runs_its_numpy_code(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba now fails
    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setattr(kernels, "_kernels", None)
    assert kernels.get() is None
    H, _ = _lstm(np.float32, rng=np.random.default_rng(0))
    assert np.isfinite(H).all()


def _lstm(dtype, rng, batch=9, steps=6, features=5, units=12, rec_dropout=False, initial=False):
    """An LSTM forward and backward at random weights: (H, (dxs, grads, initial grads))."""
    return _cell("LSTM", dtype, rng, batch, steps, features, units, rec_dropout, initial)


def _cell(kind, dtype, rng, batch, steps, features, units, rec_dropout, initial):
    """A cell's forward and backward at random weights: (H, (dxs, grads, initial grads))."""
    cell = rnn_cells.CELLS[kind]
    width = cell.GATES * units
    xs = rng.standard_normal((steps, batch, features)).astype(dtype)
    w = {
        "kernel": rng.standard_normal((features, width)).astype(dtype),
        "recurrent_kernel": rng.standard_normal((units, width)).astype(dtype),
        "bias": rng.standard_normal(width).astype(dtype),
    }
    c = {"units": units, "activation": "tanh", "recurrent_activation": "sigmoid"}
    masks = _Masks()
    if rec_dropout:
        rec = rng.random((cell.GATES, batch, units)) > 0.3
        masks = _Masks(rec=rec.astype(dtype) / dtype(0.7))
    states = None
    if initial:
        states = [rng.standard_normal((batch, units)).astype(dtype) for _ in range(cell.STATES)]
    H, cache = cell.run(w, xs, c, masks, states)
    H = H.copy()
    dhs = rng.standard_normal((steps, batch, units)).astype(dtype)
    dc_last = rng.standard_normal((batch, units)).astype(dtype) if cell.STATES == 2 else None
    back = cell.run_back(w, cache, c, dhs, None, dc_last, initial=initial)
    return H, back


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("vector_tanh", [True, False], ids=["tanh", "exp"])
@pytest.mark.parametrize(
    "variant", [{}, {"rec_dropout": True}, {"initial": True}, {"batch": 1, "units": 3}]
)
def test_lstm_forward_and_backward_are_the_numpy_code_bit_for_bit(
    dtype, vector_tanh, variant, monkeypatch, kernels_off, numpy_exp
):
    monkeypatch.setattr(rnn_ops, "VECTOR_TANH", vector_tanh)
    fused = _lstm(dtype, np.random.default_rng(3), **variant)
    plain = kernels_off(lambda: _lstm(dtype, np.random.default_rng(3), **variant))
    H, (dxs, grads, initial_grads) = fused
    H0, (dxs0, grads0, initial_grads0) = plain
    np.testing.assert_array_equal(H, H0)
    np.testing.assert_array_equal(dxs, dxs0)
    assert grads.keys() == grads0.keys()
    for key in grads:
        np.testing.assert_array_equal(grads[key], grads0[key], err_msg=key)
    assert len(initial_grads) == len(initial_grads0) == (2 if variant.get("initial") else 0)
    for ours, theirs in zip(initial_grads, initial_grads0, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_exp32_is_within_one_ulp_and_keeps_the_limits():
    exp32_in_place = kernels.get().exp32_in_place
    x = np.linspace(-87.33, 88.37, 2_000_001, dtype=np.float32)
    ours = x.copy()
    exp32_in_place(ours, np.float32(1))
    exact = np.exp(x.astype(np.float64))
    ulps = np.abs(ours - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 1.0
    edges = np.array([0, -0.0, 1, 89.0, 1e30, np.inf, -88.0, -1e30, -np.inf, np.nan], np.float32)
    out = edges.copy()
    exp32_in_place(out, np.float32(1))
    np.testing.assert_array_equal(out[:3], [1, 1, np.float32(np.e)])
    np.testing.assert_array_equal(out[3:9], [np.inf] * 3 + [0] * 3)  # as 1 / (1 + exp) needs
    assert np.isnan(out[9])


@pytest.mark.parametrize("variant", [{}, {"rec_dropout": True}, {"initial": True}])
def test_lstm_with_exp32_stays_within_float32_rounding_of_numpy(variant, monkeypatch, kernels_off):
    monkeypatch.setattr(rnn_ops, "VECTOR_TANH", False)
    H, (dxs, grads, _) = _lstm(np.float32, np.random.default_rng(4), **variant)
    plain = kernels_off(lambda: _lstm(np.float32, np.random.default_rng(4), **variant))
    H0, (dxs0, grads0, _) = plain
    np.testing.assert_allclose(H, H0, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(H, H0)  # exp32 did run: its rounding differs somewhere
    np.testing.assert_allclose(dxs, dxs0, rtol=1e-4, atol=1e-5)
    for key in grads:
        np.testing.assert_allclose(grads[key], grads0[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("vector_tanh", [True, False], ids=["tanh", "exp"])
@pytest.mark.parametrize("variant", [{}, {"rec_dropout": True}, {"initial": True}])
def test_simple_rnn_is_the_numpy_code_bit_for_bit_but_for_exp32(
    dtype, vector_tanh, variant, monkeypatch, kernels_off
):
    """Its backward is the numpy code's exactly; its forward too, but where exp32 takes
    tanh (float32 on the exp path), which stays within float32 rounding."""
    monkeypatch.setattr(rnn_ops, "VECTOR_TANH", vector_tanh)
    args = {"batch": 9, "steps": 6, "features": 5, "units": 12, "rec_dropout": False}
    args.update({"initial": False, **variant})
    H, (dxs, grads, initial_grads) = _cell("SimpleRNN", dtype, np.random.default_rng(2), **args)
    H0, back0 = kernels_off(lambda: _cell("SimpleRNN", dtype, np.random.default_rng(2), **args))
    exp32 = dtype == np.float32 and not vector_tanh
    check = np.testing.assert_allclose if exp32 else np.testing.assert_array_equal
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if exp32 else {}
    check(H, H0, **tolerance)
    check(dxs, back0[0], **tolerance)
    for key in grads:
        check(grads[key], back0[1][key], err_msg=key, **tolerance)
    for ours, theirs in zip(initial_grads, back0[2], strict=True):
        check(ours, theirs, **tolerance)
    if exp32:
        assert not np.array_equal(H, H0)  # exp32 did run: its rounding differs somewhere


def test_simple_rnn_backward_is_bit_for_bit_from_the_same_states(kernels_off):
    """Given the same forward, the fused backward (one pass per step) is the numpy code's."""
    cell, rng = rnn_cells.CELLS["SimpleRNN"], np.random.default_rng(3)
    xs = rng.standard_normal((5, 7, 4)).astype(np.float32)
    w = {
        "kernel": rng.standard_normal((4, 10)).astype(np.float32),
        "recurrent_kernel": rng.standard_normal((10, 10)).astype(np.float32) / 3,
        "bias": rng.standard_normal(10).astype(np.float32),
    }
    c = {"units": 10, "activation": "tanh"}
    _, cache = cell.run(w, xs, c, _Masks())
    dhs = rng.standard_normal((5, 7, 10)).astype(np.float32)
    fused = cell.run_back(w, cache, c, dhs, None)
    plain = kernels_off(lambda: cell.run_back(w, cache, c, dhs, None))
    np.testing.assert_array_equal(fused[0], plain[0])
    for key in fused[1]:
        np.testing.assert_array_equal(fused[1][key], plain[1][key], err_msg=key)


def _adam_steps(dtype, config, flat: bool):
    from nodenet.engine.flat_params import FlatParams

    rng = np.random.default_rng(5)
    params = {
        "dense/kernel": rng.standard_normal((40, 7)).astype(dtype),
        "dense/bias": rng.standard_normal(7).astype(dtype),
    }
    opt = make_optimizer({"name": "adam", **config})
    holder = FlatParams(params, dtype) if flat else None
    for _ in range(6):
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
        if flat:
            opt.apply_flat(holder, grads)
        else:
            opt.apply(params, grads)
    return holder.params if flat else params


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("flat", [False, True], ids=["per-array", "flat"])
@pytest.mark.parametrize(
    "config", [{}, {"learning_rate": 0.03, "beta_1": 0.8, "epsilon": 1e-4}, {"amsgrad": True}]
)
def test_adam_is_the_numpy_update_bit_for_bit(dtype, flat, config, kernels_off):
    fused = _adam_steps(dtype, config, flat)
    plain = kernels_off(lambda: _adam_steps(dtype, config, flat))
    for key in plain:
        np.testing.assert_array_equal(fused[key], plain[key], err_msg=key)
        assert not np.array_equal(fused[key], _initial(dtype)[key])  # the steps did move it


def _initial(dtype):
    rng = np.random.default_rng(5)
    return {
        "dense/kernel": rng.standard_normal((40, 7)).astype(dtype),
        "dense/bias": rng.standard_normal(7).astype(dtype),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("pool", [(2, 2), (3, 2), (1, 1)], ids=str)
def test_normalized_relu_pooling_takes_numpys_maximum_and_its_first_place(dtype, pool):
    """The pooled relu of (x - mean) * scale + beta, against numpy's pooling of the same
    values: a NaN wins its window; ``first`` holds the first offset with the maximum,
    -1 where the maximum is not above zero; ties (integer inputs) and rows and columns
    left over by the windows included."""
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 3, size=(6, 7, 9, 12)).astype(dtype)
    x[0, 0, 0, 0] = x[1, 4, 5, 3] = np.nan
    mean, scale, beta = (rng.integers(-1, 2, 12).astype(dtype) for _ in range(3))
    scale += 2
    oh, ow = 7 // pool[0], 9 // pool[1]
    y = np.empty((6, oh, ow, 12), dtype)
    first = np.empty(y.shape, np.int32)
    kernels.get().norm_relu_pool2d(x, mean, scale, beta, True, pool, y, first)

    v = np.maximum((x - mean) * scale + beta, 0)[:, : oh * pool[0], : ow * pool[1]]
    windows = v.reshape(6, oh, pool[0], ow, pool[1], 12).transpose(0, 1, 3, 5, 2, 4)
    windows = windows.reshape(6, oh, ow, 12, -1)  # offsets last, row-major in the window
    top = np.maximum.reduce(windows, axis=-1)
    np.testing.assert_array_equal(y, top)
    place = np.argmax((windows == top[..., None]) | np.isnan(windows), axis=-1)
    expected = np.where(top > 0, place, -1)
    np.testing.assert_array_equal(first, expected)
    assert np.isnan(y[0, 0, 0, 0]) and np.isnan(y[1, 4 // pool[0], 5 // pool[1], 3])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", [(16, 9, 9, 32), (7, 5, 3), (300, 10)], ids=str)
@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "bare"])
def test_batch_normalization_is_the_numpy_code_bit_for_bit(dtype, shape, relu, affine, kernels_off):
    from nodenet.engine.layers import norm_parts

    rng = np.random.default_rng(6)
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    x.flat[::7] = 0  # exact zeros: relu's and the mask's edge
    gamma, beta = rng.standard_normal((2, shape[-1])).astype(dtype) if affine else (None, None)
    grad = rng.standard_normal(shape).astype(dtype)

    def run():
        out, cache = norm_parts.forward(x, gamma, beta, 1e-3, relu)
        centered, rstd, scale, mean, var = cache
        back = norm_parts.backward(grad, centered, rstd, scale, out if relu else None)
        return out, centered, mean, var, *back

    fused, plain = run(), kernels_off(run)
    for name, ours, theirs in zip(
        ("out", "centered", "mean", "var", "dx", "grad_beta", "grad_gamma"),
        fused,
        plain,
        strict=True,
    ):
        np.testing.assert_array_equal(ours, theirs, err_msg=name)


@pytest.mark.parametrize(
    "window,strides,dilation,size,pooled,channels,spatial",
    [
        ((3, 3), (1, 1), (1, 1), (1, 1), (11, 11), 32, (13, 13)),  # a convolution
        ((3, 3), (1, 1), (1, 1), (2, 2), (5, 5), 32, (13, 13)),  # one run with its pooling
        ((3, 2), (2, 1), (1, 2), (1, 1), (4, 5), 20, (9, 7)),  # strides and dilation
        ((2, 2), (1, 1), (2, 1), (3, 2), (2, 3), 17, (11, 9)),
    ],
)
def test_convolution_window_scatter_is_the_numpy_code_bit_for_bit(
    window, strides, dilation, size, pooled, channels, spatial, kernels_off
):
    from nodenet.engine.layers import conv_parts

    geo = conv_parts.Geometry(window, strides, dilation, size, pooled, channels, 8)
    assert not geo.narrow  # the wide layout, which the kernel serves
    rng = np.random.default_rng(8)
    dcols = rng.standard_normal((5 * geo.rows, geo.width)).astype(np.float32)
    shape = (5, *spatial, channels)

    def scatter():
        dxp = np.full(shape, np.nan, np.float32)  # every element is written
        conv_parts._scatter(dcols, geo, dxp)
        return dxp

    fused, plain = scatter(), kernels_off(scatter)
    np.testing.assert_array_equal(fused, plain)
    assert np.count_nonzero(plain) > plain.size // 2  # windows cover most of the input

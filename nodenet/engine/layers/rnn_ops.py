"""What every recurrent cell shares: activations, dropout masks, products, the Cell base.

:mod:`nodenet.engine.layers.rnn_cells` (SimpleRNN, LSTM) and
:mod:`nodenet.engine.layers.rnn_gru` (GRU) build on these.

How a cell computes: time-major (steps, batch, ...) inside. A SimpleRNN, LSTM or
GRU (``reset_after``) step meets [kernel; recurrent_kernel; bias] in one product
([x_t, h_t, 1] @ W, :class:`_Steps`); a GRU without ``reset_after`` (and any cell
with recurrent dropout) meets ``kernel`` for the whole sequence in one product up
front, then the fused ``recurrent_kernel`` once per step. The backward through
time mirrors this, and forms the weight gradients with one product over all steps.
Products run batch-major, (batch, k*units); the element-wise gate work runs
gate-major, (k, batch, units), where each gate is one contiguous block.

The loop over the steps runs once over the whole batch, its products on every BLAS
thread. The rows of a batch never meet inside the recurrence, so the loop could run
on parts of the batch, one core and one BLAS thread each; measured on a quiet 2-core
machine that was slower for every recurrent model of ``benchmarks/engine_vs_torch.py``
(LSTM(128): 4,154-4,601 samples/s split in two, against 5,191-6,045), winning only
when other processes hold the cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nodenet.engine import activations, kernels
from nodenet.engine.layer import Context, WeightSpec

# -- activations and the gate-major layout ----------------------------------


BY_OUTPUT = ("sigmoid", "tanh")  # activations whose slope needs only their output


def _vector_tanh() -> bool:
    """Whether numpy's tanh runs vectorized on this machine.

    numpy vectorizes float32 tanh for AVX-512 only (x86-64-v4): there 16k values
    take about 4 us, against 28 us on an AVX2 CPU, where ``exp`` takes 14 us. Off
    x86, or when numpy does not say, tanh is taken as fast.
    """
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy 1.x
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return True
    if not features.get("AVX2"):
        return True  # not an x86 CPU of the last decade: numpy's own choice stands
    return bool(features.get("X86_V4", features.get("AVX512_SKX", False)))


# The cells take their gates through tanh where numpy vectorizes it, else through exp:
# the same functions to float precision, rounded differently (half an ulp of tanh's
# result against about two), about 1.5x faster on an AVX2 CPU. Fixed per machine.
VECTOR_TANH = _vector_tanh()


def _tanh_into(z: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = tanh(z)``; ``out`` may be ``z``."""
    if VECTOR_TANH:
        np.tanh(z, out=out)
        return
    np.multiply(z, -2, out=out)  # tanh(z) = 2 / (1 + exp(-2z)) - 1
    _one_plus_exp(out)
    np.divide(2, out, out=out)
    out -= 1


def _sigmoid_into(z: np.ndarray, out: np.ndarray, times: int = 1) -> None:
    """``out[...] = sigmoid(times * z)``; ``out`` may be ``z``.

    ``times=2`` takes the sigmoid of products whose weights were halved (exact,
    :func:`_halved`), which saves a pass with numpy's vector tanh.
    """
    if VECTOR_TANH:  # sigmoid(a) = 0.5 * tanh(a / 2) + 0.5, exact to half an ulp of 0.5
        if times == 2:
            np.tanh(z, out=out)
        else:
            np.multiply(z, 0.5, out=out)
            np.tanh(out, out=out)
        out *= 0.5
        out += 0.5
        return
    np.multiply(z, -times, out=out)  # 1 / (1 + exp(-a))
    _one_plus_exp(out)
    np.reciprocal(out, out=out)


def _one_plus_exp(x: np.ndarray) -> None:
    """``x[...] = 1 + exp(x)``; an overflow to inf is what tanh's and sigmoid's limits need."""
    _exp_in_place(x)
    x += 1


def _exp_in_place(x: np.ndarray, times: int = 1) -> None:
    """``x[...] = exp(x * times)`` (``times`` a power of two or its negative, so that the
    product is exact), an overflow to inf silenced: :func:`kernels.exp32` for contiguous
    float32 arrays where the kernels are, in one pass, else numpy's."""
    kern = kernels.get()
    if kern is not None and x.dtype == np.float32 and x.flags.c_contiguous:
        kern.exp32_in_place(x.reshape(-1), np.float32(times))
        return
    if times != 1:
        np.multiply(x, times, out=x)
    with np.errstate(over="ignore"):
        np.exp(x, out=x)


def _halved(weights: dict, columns: slice) -> dict:
    """Copies of ``weights`` with ``columns`` (of the last axis) halved: the products of a
    sigmoid gate then give a / 2 exactly, for :func:`_sigmoid_into` with ``times=2``."""
    out = {k: v.copy() for k, v in weights.items()}
    for array in out.values():
        array[..., columns] *= 0.5
    return out


def _activate(name: str, z: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = activation(z)``; z (..., units), softmax along units; ``out`` may be ``z``.

    Sigmoid and tanh as :func:`_sigmoid_into` and :func:`_tanh_into` take them.
    """
    if name == "sigmoid":
        _sigmoid_into(z, out)
    elif name == "tanh":
        _tanh_into(z, out)
    else:
        out[...] = activations.apply(name, z)


def _grad_into(name: str, g: np.ndarray, z: np.ndarray, a: np.ndarray, scratch=None) -> None:
    """Turn ``g`` from dL/da into dL/dz in place, for a = activation(z).

    sigmoid: a * (1 - a); tanh: 1 - a * a (``z`` unused). ``scratch``: a buffer
    of g's shape for the slope, or None to allocate one.
    """
    if name == "sigmoid":
        slope = np.subtract(1, a, out=scratch)
        slope *= a
        g *= slope
    elif name == "tanh":
        slope = np.multiply(a, a, out=scratch)
        np.subtract(1, slope, out=slope)
        g *= slope
    else:
        g[...] = activations.grad(name, g, z, a)


def _gates(a: np.ndarray, k: int) -> np.ndarray:
    """A (batch, k*units) array seen gate-major, (k, batch, units) (a view).

    Products are fused over the gates in (batch, k*units); the element-wise
    work runs on contiguous (k, batch, units) buffers, several times faster in
    numpy than on column slices.
    """
    return a.reshape(a.shape[0], k, -1).swapaxes(0, 1)


# -- dropout masks and the products every cell shares ------------------------------


@dataclass
class _Masks:
    """Dropout masks of one batch (already scaled by 1 / (1 - rate)).

    ``inp``: None or (n, batch, features), n = 1 (one mask for every gate) or k
    (one per gate). ``rec``: None or (k, batch, units), one per gate.
    """

    inp: np.ndarray | None = None
    rec: np.ndarray | None = None

    def rec_rows(self, rows: slice) -> np.ndarray | None:
        """The recurrent masks of some rows of the batch, (k, rows, units), or None."""
        return None if self.rec is None else self.rec[:, rows]


def _dropout_masks(rng: np.random.Generator, rate: float, count: int, shape, dtype):
    """``count`` masks of ``shape`` keeping each entry with 1 - rate; None when rate is 0."""
    if rate == 0:
        return None
    keep = rng.random((count, *shape)) >= rate
    return (keep / (1.0 - rate)).astype(dtype)


def _project(xs: np.ndarray, kernel: np.ndarray, bias, mask):
    """Input pre-activations of every step in one product.

    xs (steps, batch, features); kernel (features, k*units); bias (k*units,) or
    None. Returns A (steps, batch, k*units) and what met the kernel (for the
    backward): xs masked, (steps*batch, features), or (k, steps*batch, features).
    """
    steps, batch, n_in = xs.shape
    flat = xs.reshape(-1, n_in)
    if mask is None or len(mask) == 1:
        xin = flat if mask is None else (xs * mask[0]).reshape(-1, n_in)
        a = xin @ kernel
    else:
        width = kernel.shape[1] // len(mask)
        xin = (xs[None] * mask[:, None]).reshape(len(mask), -1, n_in)
        a = np.empty((flat.shape[0], kernel.shape[1]), xs.dtype)
        for g in range(len(mask)):
            cols = slice(g * width, (g + 1) * width)
            a[:, cols] = xin[g] @ kernel[:, cols]
    if bias is not None:
        a += bias
    return a.reshape(steps, batch, -1), xin


def _project_back(da: np.ndarray, xin: np.ndarray, kernel: np.ndarray, mask, need_dx=True):
    """Backward of :func:`_project`: (dxs (steps, batch, features) or None, dkernel)."""
    steps, batch, _ = da.shape
    da2 = da.reshape(-1, da.shape[-1])
    if mask is None or len(mask) == 1:
        dkernel = xin.T @ da2
        if not need_dx:
            return None, dkernel
        dx = (da2 @ kernel.T).reshape(steps, batch, -1)
        if mask is not None:
            dx *= mask[0]
        return dx, dkernel
    width = kernel.shape[1] // len(mask)
    dx = np.zeros((steps, batch, kernel.shape[0]), da.dtype) if need_dx else None
    dkernel = np.empty_like(kernel)
    for g in range(len(mask)):
        cols = slice(g * width, (g + 1) * width)
        dkernel[:, cols] = xin[g].T @ da2[:, cols]
        if need_dx:
            dx += (da2[:, cols] @ kernel[:, cols].T).reshape(steps, batch, -1) * mask[g]
    return dx, dkernel


def _recur(h: np.ndarray, rk: np.ndarray, rmask, out: np.ndarray) -> np.ndarray:
    """State h (batch, units) times recurrent_kernel (units, n*units), into ``out``.

    One fused product without a mask; with ``rmask`` (n, batch, units) each
    gate's columns meet the state masked for that gate.
    """
    if rmask is None:
        return np.matmul(h, rk, out=out)
    units = h.shape[1]
    for g in range(len(rmask)):
        cols = slice(g * units, (g + 1) * units)
        out[:, cols] = (h * rmask[g]) @ rk[:, cols]
    return out


def _recur_back(da: np.ndarray, rk_t: np.ndarray, rmask, out: np.ndarray) -> np.ndarray:
    """dL/dh (batch, units) from dL/d(h @ rk), da (batch, n*units), into ``out``.

    ``rk_t``: recurrent_kernel.T (n*units, units), contiguous (a plain product is
    faster than one with a transposed operand).
    """
    if rmask is None:
        return np.matmul(da, rk_t, out=out)
    units = rk_t.shape[1]
    out[...] = 0
    for g in range(len(rmask)):
        cols = slice(g * units, (g + 1) * units)
        out += (da[:, cols] @ rk_t[cols]) * rmask[g]
    return out


def _recur_kernel_grad(h_prev: np.ndarray, da: np.ndarray, rmask) -> np.ndarray:
    """dL/d(recurrent_kernel) (units, n*units) over all steps.

    h_prev (steps, batch, units): the state each step read; da (steps, batch, n*units).
    """
    units = h_prev.shape[-1]
    if rmask is None:
        return h_prev.reshape(-1, units).T @ da.reshape(-1, da.shape[-1])
    out = np.empty((units, da.shape[-1]), da.dtype)
    for g in range(len(rmask)):
        cols = slice(g * units, (g + 1) * units)
        out[:, cols] = (h_prev * rmask[g]).reshape(-1, units).T @ da[..., cols].reshape(-1, units)
    return out


def _fused_grads(w: dict, da: np.ndarray, H: np.ndarray, xin, masks: _Masks, need_dx=True):
    """dxs (or None) and weight gradients when da (steps, batch, k*units) met kernel,
    bias and recurrent_kernel."""
    dxs, dkernel = _project_back(da, xin, w["kernel"], masks.inp, need_dx)
    grads = {"kernel": dkernel, "recurrent_kernel": _recur_kernel_grad(H[:-1], da, masks.rec)}
    if "bias" in w:
        grads["bias"] = da.sum(axis=(0, 1))
    return dxs, grads


class _Steps:
    """The pre-activations of every step, a = x_t @ kernel + h_t @ recurrent_kernel + bias.

    Without recurrent dropout, [x_t, h_t, 1] sit side by side in S (steps + 1,
    batch, features + units [+ 1]) and meet [kernel; recurrent_kernel; bias] in one
    product per step (a bias of two rows meets two columns of ones): the input
    projection never goes through memory, and the backward's weight gradients are
    one product S.T @ dA over all steps. The states H (steps + 1, batch, units)
    are then a view of S's state columns. With recurrent dropout (one mask per
    gate), x @ kernel + bias of all steps is one product up front and each step
    adds its masked state's products.

    ``w``: the weights the forward multiplies by (gate columns in the cell's order).
    """

    def __init__(self, xs: np.ndarray, w: dict, units: int, masks: _Masks, initial):
        steps, batch, n_in = xs.shape
        self.masks, self.n_in = masks, n_in
        if masks.rec is not None:
            self.X, self.xin = _project(xs, w["kernel"], w.get("bias"), masks.inp)
            self.H, self.rk, self.S = _start(xs, units, initial), w["recurrent_kernel"], None
            return
        parts = [w["kernel"], w["recurrent_kernel"]]
        if "bias" in w:  # one row, or a GRU's two (input and state biases)
            parts.append(np.atleast_2d(w["bias"]))
        self.W = np.concatenate(parts)  # (features + units [+ bias rows], k*units)
        S = np.empty((steps + 1, batch, len(self.W)), xs.dtype)
        np.multiply(xs, 1 if masks.inp is None else masks.inp[0], out=S[:-1, :, :n_in])
        S[-1, :, :n_in] = 0
        S[:, :, n_in + units :] = 1
        self.S, self.H = S, S[:, :, n_in : n_in + units]
        self.H[0] = 0 if initial is None else initial[0]

    def step(self, t: int, r: slice, rmask, out: np.ndarray) -> np.ndarray:
        """Pre-activations of step ``t`` for rows ``r`` of the batch, into ``out``."""
        if self.S is not None:
            return np.matmul(self.S[t, r], self.W, out=out)
        _recur(self.H[t, r], self.rk, rmask, out)
        out += self.X[t, r]
        return out

    def state_columns(self, t: int) -> tuple[np.ndarray, int]:
        """H[t] as (a C-contiguous (batch, n) array, the column its units start at)."""
        if self.S is None:
            return self.H[t], 0
        return self.S[t], self.n_in

    def grads(self, w: dict, dA: np.ndarray, need_dx: bool):
        """dL/dxs (None without ``need_dx``) and the weight gradients, given
        dA = dL/da (steps, batch, k*units) and the weights ``w`` a truly met."""
        if self.S is None:
            return _fused_grads(w, dA, self.H, self.xin, self.masks, need_dx)
        width, n_in, units = dA.shape[-1], self.n_in, self.H.shape[-1]
        da = dA.reshape(-1, width)
        d = self.S[:-1].reshape(-1, self.S.shape[-1]).T @ da
        grads = {"kernel": d[:n_in], "recurrent_kernel": d[n_in : n_in + units]}
        if "bias" in w:
            grads["bias"] = d[n_in + units :].reshape(w["bias"].shape)
        if not need_dx:
            return None, grads
        dx = (da @ w["kernel"].T).reshape(*dA.shape[:2], n_in)
        if self.masks.inp is not None:
            dx *= self.masks.inp[0]
        return dx, grads


def _start(xs: np.ndarray, units: int, initial, k: int = 0) -> np.ndarray:
    """States H (steps + 1, batch, units), H[0] the ``k``-th initial state or zeros."""
    steps, batch, _ = xs.shape
    H = np.empty((steps + 1, batch, units), xs.dtype)
    if initial is not None and len(initial) > k:
        H[0] = initial[k]
    else:
        H[0] = 0
    return H


def _start_back(dhs, dh_last, shape, dtype) -> np.ndarray:
    """The state gradient before the last step: dL/dH[-1] (batch, units)."""
    dh = np.zeros(shape, dtype) if dh_last is None else np.array(dh_last, dtype=dtype)
    if dhs is not None:
        dh += dhs[-1]
    return dh


# -- the cell kinds' common ground --------------------------------------------------


class Cell:
    """A recurrent cell kind: its weights, masks and sequence forward/backward.

    ``run`` takes xs (steps, batch, features) in reading order (and the initial
    states, zeros if not given) and returns the states H (steps + 1, batch, units)
    (H[0] the initial state) and a cache; ``run_back`` takes dL/dH[1:] as ``dhs``
    (steps, batch, units) and/or dL/dH[-1] as ``dh_last`` (batch, units) (an
    LSTM also dL/dC[-1] as ``dc_last``) and returns dL/dxs (None unless
    ``need_dx``), the weight gradients and, with ``initial``, the initial states'
    gradients ([dL/dH[0]], or [dL/dH[0], dL/dC[0]]; else []).
    """

    KIND: ClassVar[str] = ""
    GATES: ClassVar[int] = 1
    STATES: ClassVar[int] = 1  # h; an LSTM also carries c

    def final_states(self, H: np.ndarray, cache: Any) -> list[np.ndarray]:
        """The states after the last step, in Keras's order ([h], or [h, c])."""
        return [H[-1].copy()]

    def bias_spec(self, c: dict) -> tuple[tuple[int, ...], str]:
        return (self.GATES * c["units"],), c["bias_initializer"]

    def weight_specs(self, n_in: int, c: dict, prefix: str = "") -> list[WeightSpec]:
        width = self.GATES * c["units"]
        specs = [
            WeightSpec(
                f"{prefix}kernel",
                (n_in, width),
                c["kernel_initializer"],
                regularizer=c["kernel_regularizer"],
            ),
            WeightSpec(
                f"{prefix}recurrent_kernel",
                (c["units"], width),
                c["recurrent_initializer"],
                regularizer=c["recurrent_regularizer"],
            ),
        ]
        if c["use_bias"]:
            shape, init = self.bias_spec(c)
            specs.append(
                WeightSpec(f"{prefix}bias", shape, init, regularizer=c["bias_regularizer"])
            )
        return specs

    def draw_masks(self, c: dict, ctx: Context, batch: int, n_in: int, dtype) -> _Masks:
        """The batch's dropout masks in Keras's gate order (none outside training)."""
        if not ctx.training:
            return _Masks()
        per_gate = self.GATES if c["recurrent_dropout"] > 0 else 1
        return _Masks(
            _dropout_masks(ctx.rng, c["dropout"], per_gate, (batch, n_in), dtype),
            _dropout_masks(ctx.rng, c["recurrent_dropout"], self.GATES, (batch, c["units"]), dtype),
        )

    def run(
        self, w: dict, xs: np.ndarray, c: dict, masks: _Masks, initial=None
    ) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def run_back(
        self, w: dict, cache: Any, c: dict, dhs, dh_last, dc_last=None, initial=False, need_dx=True
    ) -> tuple[np.ndarray | None, dict, list]:
        raise NotImplementedError

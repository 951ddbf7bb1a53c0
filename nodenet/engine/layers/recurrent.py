"""Recurrent blocks: SimpleRNN, LSTM, GRU and Bidirectional, with Keras 3 semantics.

Input (batch, steps, features). Output (batch, units), or (batch, steps, units)
with ``return_sequences``. Weights are Keras's: ``kernel`` (features, k*units),
``recurrent_kernel`` (units, k*units) and ``bias`` (k*units,), or (2, 3*units)
for a GRU with ``reset_after`` (row 0 meets the input, row 1 the state). Gates
sit in Keras order: LSTM i, f, c, o (k = 4); GRU z, r, h (k = 3); SimpleRNN k = 1.

``go_backwards`` reads the sequence from its last step and, like Keras, returns
the outputs in that reading order (reversed). Dropout masks are drawn once per
batch and reused at every step, only in training. Like Keras (which switches
to ``implementation=1`` when ``recurrent_dropout`` is set), LSTM and GRU then
draw one mask per gate for the inputs and one per gate for the state;
otherwise one input mask serves every gate.

How it computes: time-major (steps, batch, ...) inside. The whole sequence
meets ``kernel`` in one product up front; each step multiplies the state by
the fused ``recurrent_kernel`` once (a GRU with ``reset_after=False`` needs a
second product for its candidate, as in Keras). The backward through time
mirrors this, and forms the weight gradients with one product over all steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nodenet.engine import activations
from nodenet.engine.initializers import NAMES as INITS
from nodenet.engine.initializers import UNIT_FORGET_BIAS
from nodenet.engine.layer import Context, Example, Layer, WeightSpec, expect_rank, known, register
from nodenet.engine.params import Bool, Choice, Float, Int, Regularizer

# -- activations over gate blocks --------------------------------------------


def _activate(name: str, z: np.ndarray, out: np.ndarray, units: int) -> None:
    """``out[...] = activation(z)`` for z (batch, n*units): n gates side by side.

    Softmax normalizes each gate's (batch, units) block, as Keras does per gate.
    Sigmoid is computed as 0.5 * tanh(z / 2) + 0.5 (exact to half an ulp of
    0.5): numpy's vectorized tanh makes it several times faster than expit.
    """
    if name == "sigmoid":
        np.multiply(z, 0.5, out=out)
        np.tanh(out, out=out)
        out *= 0.5
        out += 0.5
    elif name == "tanh":
        np.tanh(z, out=out)
    elif name == "softmax":
        for s in range(0, z.shape[-1], units):
            out[:, s : s + units] = activations.apply(name, z[:, s : s + units])
    else:
        out[...] = activations.apply(name, z)


def _activate_grad(name: str, g: np.ndarray, z: np.ndarray, a: np.ndarray, units: int):
    """dL/dz from dL/da ``g`` for :func:`_activate` (all (batch, n*units))."""
    if name != "softmax":
        return activations.grad(name, g, z, a)
    out = np.empty_like(g)
    for s in range(0, g.shape[-1], units):
        b = slice(s, s + units)
        out[:, b] = activations.grad(name, g[:, b], z[:, b], a[:, b])
    return out


# -- dropout masks and the two products every cell shares ----------------------


@dataclass
class _Masks:
    """Dropout masks of one batch (already scaled by 1 / (1 - rate)).

    ``inp``: None or (n, batch, features), n = 1 (one mask for every gate) or k
    (one per gate). ``rec``: None or (k, batch, units), one per gate.
    """

    inp: np.ndarray | None = None
    rec: np.ndarray | None = None


def _dropout_masks(rng: np.random.Generator, rate: float, count: int, shape, dtype):
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


def _project_back(da: np.ndarray, xin: np.ndarray, kernel: np.ndarray, mask):
    """Backward of :func:`_project`: (dxs (steps, batch, features), dkernel)."""
    steps, batch, _ = da.shape
    da2 = da.reshape(-1, da.shape[-1])
    if mask is None or len(mask) == 1:
        dx = (da2 @ kernel.T).reshape(steps, batch, -1)
        if mask is not None:
            dx *= mask[0]
        return dx, xin.T @ da2
    width = kernel.shape[1] // len(mask)
    dx = np.zeros((steps, batch, kernel.shape[0]), da.dtype)
    dkernel = np.empty_like(kernel)
    for g in range(len(mask)):
        cols = slice(g * width, (g + 1) * width)
        dkernel[:, cols] = xin[g].T @ da2[:, cols]
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


def _recur_back(da: np.ndarray, rk: np.ndarray, rmask) -> np.ndarray:
    """dL/dh (batch, units) from dL/d(h @ rk), da (batch, n*units)."""
    if rmask is None:
        return da @ rk.T
    units = rk.shape[0]
    dh = np.zeros((da.shape[0], units), da.dtype)
    for g in range(len(rmask)):
        cols = slice(g * units, (g + 1) * units)
        dh += (da[:, cols] @ rk[:, cols].T) * rmask[g]
    return dh


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


# -- cells: one step rule each, run over a whole time-major sequence -----------


class _Cell:
    """A recurrent cell kind: its weights, masks and sequence forward/backward.

    ``run`` takes xs (steps, batch, features) in reading order and returns the
    states H (steps + 1, batch, units) (H[0] is the zero initial state) and a
    cache; ``run_back`` takes dL/dH[1:] as ``dhs`` (steps, batch, units) or
    only dL/dH[-1] as ``dh_last`` (batch, units) and returns dL/dxs and the
    weight gradients.
    """

    KIND: ClassVar[str] = ""
    GATES: ClassVar[int] = 1

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
        if not ctx.training:
            return _Masks()
        per_gate = self.GATES if c["recurrent_dropout"] > 0 else 1
        return _Masks(
            _dropout_masks(ctx.rng, c["dropout"], per_gate, (batch, n_in), dtype),
            _dropout_masks(ctx.rng, c["recurrent_dropout"], self.GATES, (batch, c["units"]), dtype),
        )

    def run(self, w: dict, xs: np.ndarray, c: dict, masks: _Masks) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def run_back(self, w: dict, cache: Any, c: dict, dhs, dh_last) -> tuple[np.ndarray, dict]:
        raise NotImplementedError


def _start_back(dhs, dh_last, shape, dtype) -> np.ndarray:
    """The state gradient before the last step: dL/dH[-1] (batch, units)."""
    dh = np.zeros(shape, dtype) if dh_last is None else np.array(dh_last, dtype=dtype)
    if dhs is not None:
        dh += dhs[-1]
    return dh


def _fused_grads(w: dict, da: np.ndarray, H: np.ndarray, xin, masks: _Masks):
    """dxs and weight gradients when da (steps, batch, k*units) met kernel, bias and rk."""
    dxs, dkernel = _project_back(da, xin, w["kernel"], masks.inp)
    grads = {"kernel": dkernel, "recurrent_kernel": _recur_kernel_grad(H[:-1], da, masks.rec)}
    if "bias" in w:
        grads["bias"] = da.sum(axis=(0, 1))
    return dxs, grads


class _SimpleRNNCell(_Cell):
    """h = activation(x @ kernel + h_prev @ recurrent_kernel + bias)."""

    KIND = "SimpleRNN"
    GATES = 1

    def run(self, w, xs, c, masks):
        steps, batch, _ = xs.shape
        units, act = c["units"], c["activation"]
        A, xin = _project(xs, w["kernel"], w.get("bias"), masks.inp)
        H = np.zeros((steps + 1, batch, units), xs.dtype)
        rk, buf = w["recurrent_kernel"], np.empty((batch, units), xs.dtype)
        for t in range(steps):
            A[t] += _recur(H[t], rk, masks.rec, buf)
            _activate(act, A[t], H[t + 1], units)
        return H, (A, H, xin, masks)

    def run_back(self, w, cache, c, dhs, dh_last):
        A, H, xin, masks = cache
        units, act, rk = c["units"], c["activation"], w["recurrent_kernel"]
        dA = np.empty_like(A)
        dh = _start_back(dhs, dh_last, H.shape[1:], A.dtype)
        for t in reversed(range(len(A))):
            dA[t] = _activate_grad(act, dh, A[t], H[t + 1], units)
            if t:
                dh = _recur_back(dA[t], rk, masks.rec)
                if dhs is not None:
                    dh += dhs[t - 1]
        return _fused_grads(w, dA, H, xin, masks)


class _LSTMCell(_Cell):
    """Gates i, f, c, o; c = f*c_prev + i*act(a_c); h = o*act(c)."""

    KIND = "LSTM"
    GATES = 4

    def bias_spec(self, c):
        init = c["bias_initializer"]
        if c["unit_forget_bias"]:  # Keras: forget-gate slice of the initial bias is ones
            init = UNIT_FORGET_BIAS + init
        return (4 * c["units"],), init

    def run(self, w, xs, c, masks):
        steps, batch, _ = xs.shape
        u, act, ract = c["units"], c["activation"], c["recurrent_activation"]
        A, xin = _project(xs, w["kernel"], w.get("bias"), masks.inp)  # pre-activations
        G = np.empty_like(A)  # gate activations i, f, g, o
        H = np.zeros((steps + 1, batch, u), xs.dtype)
        C = np.zeros((steps + 1, batch, u), xs.dtype)
        AC = np.empty((steps, batch, u), xs.dtype)  # act(c)
        rk, buf = w["recurrent_kernel"], np.empty((batch, 4 * u), xs.dtype)
        for t in range(steps):
            a, gt = A[t], G[t]
            a += _recur(H[t], rk, masks.rec, buf)
            _activate(ract, a[:, : 2 * u], gt[:, : 2 * u], u)
            _activate(act, a[:, 2 * u : 3 * u], gt[:, 2 * u : 3 * u], u)
            _activate(ract, a[:, 3 * u :], gt[:, 3 * u :], u)
            np.multiply(gt[:, u : 2 * u], C[t], out=C[t + 1])
            C[t + 1] += gt[:, :u] * gt[:, 2 * u : 3 * u]
            _activate(act, C[t + 1], AC[t], u)
            np.multiply(gt[:, 3 * u :], AC[t], out=H[t + 1])
        return H, (A, G, H, C, AC, xin, masks)

    def run_back(self, w, cache, c, dhs, dh_last):
        A, G, H, C, AC, xin, masks = cache
        u, act, ract = c["units"], c["activation"], c["recurrent_activation"]
        rk, dA = w["recurrent_kernel"], np.empty_like(A)
        dh = _start_back(dhs, dh_last, H.shape[1:], A.dtype)
        dc = np.zeros_like(dh)
        for t in reversed(range(len(A))):
            a, gt, da = A[t], G[t], dA[t]
            dc += _activate_grad(act, dh * gt[:, 3 * u :], C[t + 1], AC[t], u)
            np.multiply(dc, gt[:, 2 * u : 3 * u], out=da[:, :u])
            np.multiply(dc, C[t], out=da[:, u : 2 * u])
            np.multiply(dc, gt[:, :u], out=da[:, 2 * u : 3 * u])
            np.multiply(dh, AC[t], out=da[:, 3 * u :])
            for cols, name in (
                (slice(0, 2 * u), ract),
                (slice(2 * u, 3 * u), act),
                (slice(3 * u, 4 * u), ract),
            ):
                da[:, cols] = _activate_grad(name, da[:, cols], a[:, cols], gt[:, cols], u)
            if t:
                dc *= gt[:, u : 2 * u]
                dh = _recur_back(da, rk, masks.rec)
                if dhs is not None:
                    dh += dhs[t - 1]
        return _fused_grads(w, dA, H, xin, masks)


class _GRUCell(_Cell):
    """Gates z, r and candidate hh; h = z*h_prev + (1 - z)*hh.

    ``reset_after``: hh = act(x_h + r*(h_prev @ rk_h + b_rec_h)) with a second
    bias row for the state; otherwise hh = act(x_h + (r*h_prev) @ rk_h).
    """

    KIND = "GRU"
    GATES = 3

    def bias_spec(self, c):
        width = 3 * c["units"]
        return ((2, width) if c["reset_after"] else (width,)), c["bias_initializer"]

    def run(self, w, xs, c, masks):
        bias = w.get("bias")
        if c["reset_after"] and bias is not None:
            bias = bias[0]
        A, xin = _project(xs, w["kernel"], bias, masks.inp)  # becomes the pre-activations
        steps, batch, _ = xs.shape
        H = np.zeros((steps + 1, batch, c["units"]), xs.dtype)
        G = np.empty_like(A)  # z, r, hh
        step = self._step_after if c["reset_after"] else self._step_before
        M = step(w, A, G, H, c, masks)
        return H, (A, G, H, M, xin, masks)

    def _step_after(self, w, A, G, H, c, masks):
        """The loop with reset_after; returns M, every step's h_prev @ rk (+ b_rec)."""
        u, rk = c["units"], w["recurrent_kernel"]
        M = np.empty_like(A)
        rbias = w["bias"][1] if "bias" in w else None
        for t in range(len(A)):
            a, g, m = A[t], G[t], M[t]
            _recur(H[t], rk, masks.rec, m)
            if rbias is not None:
                m += rbias
            a[:, : 2 * u] += m[:, : 2 * u]
            _activate(c["recurrent_activation"], a[:, : 2 * u], g[:, : 2 * u], u)
            a[:, 2 * u :] += g[:, u : 2 * u] * m[:, 2 * u :]
            _activate(c["activation"], a[:, 2 * u :], g[:, 2 * u :], u)
            H[t + 1] = g[:, :u] * H[t] + (1 - g[:, :u]) * g[:, 2 * u :]
        return M

    def _step_before(self, w, A, G, H, c, masks):
        """The loop without reset_after; returns M, every step's r * h_prev (masked)."""
        u, rk = c["units"], w["recurrent_kernel"]
        rk_zr, rk_h = rk[:, : 2 * u], rk[:, 2 * u :]
        rmask_zr = None if masks.rec is None else masks.rec[:2]
        M = np.empty(H[1:].shape, A.dtype)
        buf = np.empty((A.shape[1], 2 * u), A.dtype)
        for t in range(len(A)):
            a, g = A[t], G[t]
            a[:, : 2 * u] += _recur(H[t], rk_zr, rmask_zr, buf)
            _activate(c["recurrent_activation"], a[:, : 2 * u], g[:, : 2 * u], u)
            h_h = H[t] if masks.rec is None else H[t] * masks.rec[2]
            np.multiply(g[:, u : 2 * u], h_h, out=M[t])
            a[:, 2 * u :] += M[t] @ rk_h
            _activate(c["activation"], a[:, 2 * u :], g[:, 2 * u :], u)
            H[t + 1] = g[:, :u] * H[t] + (1 - g[:, :u]) * g[:, 2 * u :]
        return M

    def run_back(self, w, cache, c, dhs, dh_last):
        A, G, H, M, xin, masks = cache
        u, act = c["units"], c["activation"]
        dA = np.empty_like(A)
        dM = np.empty_like(A) if c["reset_after"] else None  # dL/d(h_prev @ rk (+ b_rec))
        dh = _start_back(dhs, dh_last, H.shape[1:], A.dtype)
        for t in reversed(range(len(A))):
            a, g, da = A[t], G[t], dA[t]
            z, hh = g[:, :u], g[:, 2 * u :]
            da[:, 2 * u :] = _activate_grad(act, dh * (1 - z), a[:, 2 * u :], hh, u)
            da[:, :u] = dh * (H[t] - hh)
            if c["reset_after"]:
                da[:, u : 2 * u] = da[:, 2 * u :] * M[t][:, 2 * u :]
                self._gates_back(da, a, g, c)
                dM[t, :, : 2 * u] = da[:, : 2 * u]
                np.multiply(da[:, 2 * u :], g[:, u : 2 * u], out=dM[t, :, 2 * u :])
                dh_prev = _recur_back(dM[t], w["recurrent_kernel"], masks.rec)
            else:
                dh_prev = self._before_back(w, da, a, g, H[t], c, masks)
            dh = dh_prev + dh * z
            if dhs is not None and t:
                dh += dhs[t - 1]
        return self._weight_grads(w, dA, dM, H, M, xin, c, masks)

    def _gates_back(self, da, a, g, c) -> None:
        """Turn da[:, :2u] from dL/d(z, r) into dL/d(a_z, a_r), in place."""
        zr = slice(0, 2 * c["units"])
        da[:, zr] = _activate_grad(
            c["recurrent_activation"], da[:, zr], a[:, zr], g[:, zr], c["units"]
        )

    def _before_back(self, w, da, a, g, h_prev, c, masks) -> np.ndarray:
        """Step backward without reset_after: fills da[:, :2u]; returns part of dh_prev."""
        u, rk, rmask = c["units"], w["recurrent_kernel"], masks.rec
        d_rh = da[:, 2 * u :] @ rk[:, 2 * u :].T  # dL/d(r * h_h)
        h_h = h_prev if rmask is None else h_prev * rmask[2]
        da[:, u : 2 * u] = d_rh * h_h
        self._gates_back(da, a, g, c)
        dh = _recur_back(da[:, : 2 * u], rk[:, : 2 * u], None if rmask is None else rmask[:2])
        d_h = d_rh * g[:, u : 2 * u]
        return dh + (d_h if rmask is None else d_h * rmask[2])

    def _weight_grads(self, w, dA, dM, H, M, xin, c, masks):
        dxs, dkernel = _project_back(dA, xin, w["kernel"], masks.inp)
        grads = {"kernel": dkernel}
        if c["reset_after"]:
            grads["recurrent_kernel"] = _recur_kernel_grad(H[:-1], dM, masks.rec)
            if "bias" in w:
                grads["bias"] = np.stack([dA.sum(axis=(0, 1)), dM.sum(axis=(0, 1))])
            return dxs, grads
        u = c["units"]
        rmask_zr = None if masks.rec is None else masks.rec[:2]
        grads["recurrent_kernel"] = np.concatenate(
            [
                _recur_kernel_grad(H[:-1], dA[..., : 2 * u], rmask_zr),
                M.reshape(-1, u).T @ dA[..., 2 * u :].reshape(-1, u),
            ],
            axis=1,
        )
        if "bias" in w:
            grads["bias"] = dA.sum(axis=(0, 1))
        return dxs, grads


CELLS: dict[str, _Cell] = {cell.KIND: cell for cell in (_SimpleRNNCell(), _LSTMCell(), _GRUCell())}


# -- running a cell over a batch-major sequence -------------------------------


def _run(cell: _Cell, w: dict, x: np.ndarray, c: dict, ctx: Context, backwards: bool):
    """Output of ``cell`` over x (batch, steps, features), and a cache.

    The output is (batch, units), or (batch, steps, units) in reading order
    with ``return_sequences``.
    """
    xs = x.transpose(1, 0, 2)
    xs = np.ascontiguousarray(xs[::-1] if backwards else xs)
    masks = cell.draw_masks(c, ctx, x.shape[0], x.shape[2], x.dtype)
    H, cache = cell.run(w, xs, c, masks)
    if c["return_sequences"]:
        return np.ascontiguousarray(H[1:].transpose(1, 0, 2)), cache
    return H[-1].copy(), cache


def _run_back(cell: _Cell, w: dict, cache, c: dict, grad: np.ndarray, backwards: bool):
    """dL/dx (batch, steps, features) and the weight gradients, given dL/d(output)."""
    if c["return_sequences"]:
        dxs, grads = cell.run_back(w, cache, c, grad.transpose(1, 0, 2), None)
    else:
        dxs, grads = cell.run_back(w, cache, c, None, grad)
    dx = dxs.transpose(1, 0, 2)
    return np.ascontiguousarray(dx[:, ::-1] if backwards else dx), grads


# -- parameters -----------------------------------------------------------------

_UNITS = Int("units", 32, "dimensionality of the output (and of the state)", min=1)
_ACTIVATION = Choice(
    "activation", "tanh", "applied to the candidate state and the output", choices=activations.NAMES
)
_RECURRENT_ACTIVATION = Choice(
    "recurrent_activation", "sigmoid", "applied to the gates", choices=activations.NAMES
)
_USE_BIAS = Bool("use_bias", True, "add learned biases")
_INITIALIZERS = (
    Choice("kernel_initializer", "glorot_uniform", "how the input kernel starts", choices=INITS),
    Choice("recurrent_initializer", "orthogonal", "how the recurrent kernel starts", choices=INITS),
    Choice("bias_initializer", "zeros", "how the bias starts", choices=INITS),
)
_UNIT_FORGET_BIAS = Bool("unit_forget_bias", True, "start the forget-gate bias at one")
_REGULARIZERS = (
    Regularizer("kernel_regularizer", None, "L1/L2 penalty on the input kernel"),
    Regularizer("recurrent_regularizer", None, "L1/L2 penalty on the recurrent kernel"),
    Regularizer("bias_regularizer", None, "L1/L2 penalty on the bias"),
)
_DROPOUTS = (
    Float(
        "dropout",
        0.0,
        "fraction of input features dropped in training (one mask per batch)",
        min=0.0,
        max=1.0,
        max_exclusive=True,
    ),
    Float(
        "recurrent_dropout",
        0.0,
        "fraction of state units dropped in training",
        min=0.0,
        max=1.0,
        max_exclusive=True,
    ),
)
_RETURN_SEQUENCES = Bool("return_sequences", False, "output every step, not only the last")
_GO_BACKWARDS = Bool(
    "go_backwards", False, "read the sequence from its end (the output sequence comes reversed)"
)
_RESET_AFTER = Bool("reset_after", True, "apply the reset gate after the recurrent product")


# -- blocks -------------------------------------------------------------------


class _Recurrent(Layer):
    """A recurrent block: one cell run over the steps of the input."""

    CATEGORY = "Recurrent"
    KEY_PARAMS = ("units", "return_sequences")
    CELL: ClassVar[_Cell]

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, 2, self.TYPE)
        return _output_shape(shape, self.config)

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        n_in = known(shape[-1], f"{self.TYPE}'s feature axis", shape)
        return self.CELL.weight_specs(n_in, self.config)

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        return _run(self.CELL, weights, x, self.config, ctx, self.config["go_backwards"])

    def _backward(self, weights, cache, grad):
        dx, grads = _run_back(
            self.CELL, weights, cache, self.config, grad, self.config["go_backwards"]
        )
        return [dx], grads


def _output_shape(shape, c: dict) -> tuple:
    """(steps, units) with return_sequences, else (units,); shape is (steps, features)."""
    return (shape[0], c["units"]) if c["return_sequences"] else (c["units"],)


@register
class SimpleRNN(_Recurrent):
    """Fully-connected RNN: h = activation(x @ kernel + h_prev @ recurrent_kernel + bias).

    Input shape: (steps, features). Output shape: (units,), or (steps, units)
    with ``return_sequences``. Weights: kernel (features, units),
    recurrent_kernel (units, units), bias (units,).
    """

    TYPE = "SimpleRNN"
    CELL = CELLS["SimpleRNN"]
    PARAMS = (
        _UNITS,
        _ACTIVATION,
        _USE_BIAS,
        *_INITIALIZERS,
        *_REGULARIZERS,
        *_DROPOUTS,
        _RETURN_SEQUENCES,
        _GO_BACKWARDS,
    )
    EXAMPLES = (
        Example({"units": 3}, ((4, 2),)),
        Example({"units": 2, "return_sequences": True, "activation": "relu"}, ((3, 3),)),
        Example({"units": 3, "go_backwards": True, "return_sequences": True}, ((4, 2),)),
        Example({"units": 2, "use_bias": False, "go_backwards": True}, ((3, 2),)),
        Example({"units": 3, "dropout": 0.3, "recurrent_dropout": 0.4}, ((4, 2),)),
    )


@register
class LSTM(_Recurrent):
    """Long short-term memory: gates i, f, c, o over a cell state and a hidden state.

    Input shape: (steps, features). Output shape: (units,), or (steps, units)
    with ``return_sequences``. Weights: kernel (features, 4*units),
    recurrent_kernel (units, 4*units), bias (4*units,), gates in order i, f, c, o.
    """

    TYPE = "LSTM"
    CELL = CELLS["LSTM"]
    PARAMS = (
        _UNITS,
        _ACTIVATION,
        _RECURRENT_ACTIVATION,
        _USE_BIAS,
        *_INITIALIZERS,
        _UNIT_FORGET_BIAS,
        *_REGULARIZERS,
        *_DROPOUTS,
        _RETURN_SEQUENCES,
        _GO_BACKWARDS,
    )
    EXAMPLES = (
        Example({"units": 3}, ((4, 2),)),
        Example({"units": 2, "return_sequences": True}, ((3, 3),)),
        Example({"units": 3, "go_backwards": True, "return_sequences": True}, ((4, 2),)),
        Example(
            {"units": 2, "use_bias": False, "activation": "relu", "recurrent_activation": "tanh"},
            ((3, 2),),
        ),
        Example({"units": 2, "dropout": 0.3}, ((3, 2),)),
        Example(
            {"units": 3, "dropout": 0.3, "recurrent_dropout": 0.4, "return_sequences": True},
            ((4, 2),),
        ),
    )


@register
class GRU(_Recurrent):
    """Gated recurrent unit: gates z, r and a candidate state (Keras reset_after by default).

    Input shape: (steps, features). Output shape: (units,), or (steps, units)
    with ``return_sequences``. Weights: kernel (features, 3*units),
    recurrent_kernel (units, 3*units), bias (2, 3*units) with ``reset_after``
    else (3*units,), gates in order z, r, h.
    """

    TYPE = "GRU"
    CELL = CELLS["GRU"]
    PARAMS = (
        _UNITS,
        _ACTIVATION,
        _RECURRENT_ACTIVATION,
        _USE_BIAS,
        *_INITIALIZERS,
        *_REGULARIZERS,
        *_DROPOUTS,
        _RETURN_SEQUENCES,
        _GO_BACKWARDS,
        _RESET_AFTER,
    )
    EXAMPLES = (
        Example({"units": 3}, ((4, 2),)),
        Example({"units": 2, "return_sequences": True}, ((3, 3),)),
        Example({"units": 3, "go_backwards": True, "return_sequences": True}, ((4, 2),)),
        Example({"units": 3, "reset_after": False}, ((4, 2),)),
        Example(
            {
                "units": 2,
                "reset_after": False,
                "use_bias": False,
                "return_sequences": True,
                "go_backwards": True,
            },
            ((3, 2),),
        ),
        Example({"units": 2, "use_bias": False}, ((3, 2),)),
        Example({"units": 3, "dropout": 0.3, "recurrent_dropout": 0.4}, ((4, 2),)),
        Example(
            {
                "units": 3,
                "dropout": 0.3,
                "recurrent_dropout": 0.4,
                "reset_after": False,
                "return_sequences": True,
            },
            ((4, 2),),
        ),
    )


MERGE_MODES = ("concat", "sum", "mul", "ave")


@register
class Bidirectional(Layer):
    """Runs a recurrent layer forwards and backwards over the input and merges the two.

    ``layer`` picks SimpleRNN, LSTM or GRU; its parameters sit flat beside
    ``merge_mode`` (those that do not apply to the chosen layer are ignored).
    Input shape: (steps, features). Output shape: (units,) or (steps, units)
    with ``return_sequences``, last axis doubled by ``concat``. The backward
    sequence is flipped back to input order before merging. Weights: the
    layer's, named ``forward/...`` then ``backward/...``.
    """

    TYPE = "Bidirectional"
    CATEGORY = "Recurrent"
    PARAMS = (
        Choice("layer", "LSTM", "the recurrent layer run in both directions", choices=tuple(CELLS)),
        Choice(
            "merge_mode", "concat", "how the two directions' outputs combine", choices=MERGE_MODES
        ),
        _UNITS,
        _ACTIVATION,
        _RECURRENT_ACTIVATION,
        _USE_BIAS,
        *_INITIALIZERS,
        _UNIT_FORGET_BIAS,
        *_REGULARIZERS,
        *_DROPOUTS,
        _RETURN_SEQUENCES,
        _RESET_AFTER,
    )
    KEY_PARAMS = ("layer", "units", "merge_mode")
    EXAMPLES = (
        Example({"units": 2}, ((3, 2),)),
        Example(
            {"layer": "LSTM", "units": 2, "merge_mode": "sum", "return_sequences": True}, ((3, 2),)
        ),
        Example({"layer": "GRU", "units": 3, "merge_mode": "mul"}, ((4, 2),)),
        Example(
            {
                "layer": "GRU",
                "units": 2,
                "merge_mode": "ave",
                "reset_after": False,
                "return_sequences": True,
            },
            ((3, 2),),
        ),
        Example(
            {"layer": "SimpleRNN", "units": 3, "merge_mode": "concat", "return_sequences": True},
            ((4, 2),),
        ),
        Example(
            {
                "layer": "SimpleRNN",
                "units": 2,
                "merge_mode": "mul",
                "return_sequences": True,
                "dropout": 0.3,
                "recurrent_dropout": 0.3,
            },
            ((3, 2),),
        ),
    )
    DIRECTIONS = (("forward/", False), ("backward/", True))

    @property
    def cell(self) -> _Cell:
        return CELLS[self.config["layer"]]

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, 2, "Bidirectional")
        out = _output_shape(shape, self.config)
        if self.config["merge_mode"] == "concat":
            out = (*out[:-1], 2 * out[-1])
        return out

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        n_in = known(shape[-1], "Bidirectional's feature axis", shape)
        return [
            spec
            for prefix, _ in self.DIRECTIONS
            for spec in self.cell.weight_specs(n_in, self.config, prefix)
        ]

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        ys, caches = [], []
        for prefix, backwards in self.DIRECTIONS:
            y, cache = _run(self.cell, _strip(weights, prefix), x, self.config, ctx, backwards)
            ys.append(y)
            caches.append(cache)
        y, y_rev = ys
        if self.config["return_sequences"]:
            y_rev = y_rev[:, ::-1]  # back to input order, as Keras flips it
        return _merge(self.config["merge_mode"], y, y_rev), (caches, y, y_rev)

    def _backward(self, weights, cache, grad):
        caches, y, y_rev = cache
        grads_both = _merge_back(self.config["merge_mode"], grad, y, y_rev)
        if self.config["return_sequences"]:
            grads_both[1] = grads_both[1][:, ::-1]
        dx, grads = 0, {}
        for (prefix, backwards), g, inner in zip(self.DIRECTIONS, grads_both, caches, strict=True):
            d, wgrads = _run_back(
                self.cell, _strip(weights, prefix), inner, self.config, g, backwards
            )
            dx = dx + d
            grads.update({prefix + k: v for k, v in wgrads.items()})
        return [dx], grads


def _strip(weights: dict, prefix: str) -> dict:
    """The weights under ``prefix`` (``forward/`` or ``backward/``), without it."""
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}


def _merge(mode: str, y: np.ndarray, y_rev: np.ndarray) -> np.ndarray:
    """Keras's merge of the forward and the (input-ordered) backward outputs."""
    if mode == "concat":
        return np.concatenate([y, y_rev], axis=-1)
    if mode == "sum":
        return y + y_rev
    if mode == "mul":
        return y * y_rev
    return (y + y_rev) / 2


def _merge_back(mode: str, grad: np.ndarray, y: np.ndarray, y_rev: np.ndarray) -> list:
    """[dL/dy, dL/dy_rev] from dL/d(merged)."""
    if mode == "concat":
        units = y.shape[-1]
        return [grad[..., :units], grad[..., units:]]
    if mode == "sum":
        return [grad, grad]
    if mode == "mul":
        return [grad * y_rev, grad * y]
    half = grad / 2
    return [half, half]

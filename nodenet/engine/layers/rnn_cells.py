"""The numerics of the recurrent blocks: SimpleRNN, LSTM and GRU cells over a sequence.

:mod:`nodenet.engine.layers.recurrent` declares the blocks; this module runs
them. A cell kind knows its weights (Keras names, layouts and gate order:
LSTM i, f, c, o; GRU z, r, h), draws its dropout masks and computes a whole
sequence forward and backward. The GRU lives in
:mod:`nodenet.engine.layers.rnn_gru`, what the cells share (the products, the
activations, running the steps on parts of the batch) in
:mod:`nodenet.engine.layers.rnn_ops`.

Dropout masks are drawn once per batch and reused at every step, only in
training. Like Keras (which switches to ``implementation=1`` when
``recurrent_dropout`` is set), LSTM and GRU then draw one mask per gate for the
inputs and one per gate for the state; otherwise one input mask serves every
gate.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine import kernels
from nodenet.engine.initializers import unit_forget_bias
from nodenet.engine.layers import rnn_ops
from nodenet.engine.layers.rnn_gru import GRUCell
from nodenet.engine.layers.rnn_ops import (
    BY_OUTPUT,
    Cell,
    _activate,
    _gates,
    _grad_into,
    _halved,
    _Masks,
    _recur_back,
    _sigmoid_into,
    _start,
    _start_back,
    _Steps,
)


class _SimpleRNNCell(Cell):
    """h = activation(a), a = x @ kernel + h_prev @ recurrent_kernel + bias.

    Backward: da = dh * activation'(a); dh_prev = da @ recurrent_kernel.T (plus the
    output's gradient at that step).
    """

    KIND = "SimpleRNN"
    GATES = 1

    def run(self, w, xs, c, masks, initial=None):
        steps, batch, _ = xs.shape
        pre = _Steps(xs, w, c["units"], masks, initial)
        H, act = pre.H, c["activation"]
        A = np.empty((steps, *H.shape[1:]), xs.dtype)  # pre-activations

        def loop(r: slice) -> None:
            rmask = masks.rec_rows(r)
            for t in range(steps):
                _activate(act, pre.step(t, r, rmask, A[t, r]), H[t + 1, r])

        kern = kernels.get() if act == "tanh" and A.dtype == np.float32 else None
        if kern is None or rnn_ops.VECTOR_TANH:
            loop(slice(0, batch))
        else:  # tanh through exp32, straight into the states
            for t in range(steps):
                a = pre.step(t, slice(0, batch), masks.rec, A[t])
                kern.tanh_exp32(a, *pre.state_columns(t + 1))
        return H, (A, H, pre, masks)

    def run_back(self, w, cache, c, dhs, dh_last, dc_last=None, initial=False, need_dx=True):
        A, H, pre, masks = cache
        steps, batch, _ = A.shape
        dA = np.empty_like(A)
        dH0 = _start_back(dhs, dh_last, H.shape[1:], A.dtype)  # dL/dH[-1], then dL/dH[0]
        rk_t, act = np.ascontiguousarray(w["recurrent_kernel"].T), c["activation"]

        kern = kernels.get() if act == "tanh" else None

        def loop(r: slice) -> None:
            rmask, dh = masks.rec_rows(r), dH0[r]
            scratch = np.empty_like(dh)
            for t in reversed(range(steps)):
                da = dA[t, r]
                if kern is not None:  # da = dh (1 - h^2) in one pass
                    kern.tanh_back(dh, *pre.state_columns(t + 1), da)
                else:
                    da[...] = dh
                    _grad_into(act, da, A[t, r], H[t + 1, r], scratch)
                if t or initial:  # at t = 0: dL/dH[0]
                    _recur_back(da, rk_t, rmask, dh)
                if dhs is not None and t:
                    dh += dhs[t - 1, r]

        loop(slice(0, batch))
        dxs, grads = pre.grads(w, dA, need_dx)
        return dxs, grads, [dH0] if initial else []


# LSTM gates run in the order i, f, o, c inside (sigmoid gates side by side, one pass
# each); Keras's weights and masks hold them as i, f, c, o: swapping the last two
# blocks of the gate axis turns either order into the other.
_SWAP_LAST_TWO = [0, 1, 3, 2]


def _ifoc(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """``a`` with its 4 gate blocks along ``axis`` swapped between i, f, c, o and i, f, o, c."""
    if axis == 0:  # a stack of masks, one per gate
        return a[_SWAP_LAST_TWO]
    shape = a.shape
    return a.reshape(*shape[:-1], 4, -1)[..., _SWAP_LAST_TWO, :].reshape(shape)


class _LSTMCell(Cell):
    """Gates i, f, o = ract(a_i, a_f, a_o), g = act(a_c); c = f*c_prev + i*g; h = o*act(c).

    a = x @ kernel + h_prev @ recurrent_kernel + bias, per gate. Backward, with
    dc = dL/dc (+ dh * o * act'(c)): da_i = dc * g * ract'; da_f = dc * c_prev * ract';
    da_o = dh * act(c) * ract'; da_c = dc * i * act'; dc_prev = dc * f;
    dh_prev = da @ recurrent_kernel.T.
    """

    KIND = "LSTM"
    GATES = 4
    STATES = 2

    def final_states(self, H, cache):
        return [H[-1].copy(), cache[3][-1].copy()]

    def bias_spec(self, c):
        init = c["bias_initializer"]
        if c["unit_forget_bias"]:  # Keras: forget-gate slice of the initial bias is ones
            init = unit_forget_bias(init)
        return (4 * c["units"],), init

    def run(self, w, xs, c, masks, initial=None):
        steps, batch, _ = xs.shape
        w = {k: _ifoc(v) for k, v in w.items()}  # gates i, f, o, c from here on
        masks = _Masks(
            *(m if m is None or len(m) == 1 else _ifoc(m, 0) for m in (masks.inp, masks.rec))
        )
        ract, act = c["recurrent_activation"], c["activation"]
        # sigmoid gates i, f, o: halved weights give a / 2, whose sigmoid is cheaper
        fw = _halved(w, slice(0, 3 * c["units"])) if ract == "sigmoid" else w
        pre = _Steps(xs, fw, c["units"], masks, initial)
        H, C = pre.H, _start(xs, c["units"], initial, 1)
        AC = np.empty_like(C[1:])  # act(c)
        G = np.empty((steps, 4, *C.shape[1:]), xs.dtype)  # i, f, o, g; gate-major
        Z = None if ract in BY_OUTPUT and act in BY_OUTPUT else np.empty_like(G)  # a, if needed

        def loop(r: slice) -> None:
            rmask, buf = masks.rec_rows(r), np.empty((r.stop - r.start, 4 * c["units"]), G.dtype)
            ig = np.empty_like(C[0, r])
            for t in range(steps):
                z, g = _gates(pre.step(t, r, rmask, buf), 4), G[t, :, r]
                if Z is not None:  # kept for the activations' slopes
                    np.copyto(Z[t, :, r], z)
                    z = Z[t, :, r]
                if fw is w:
                    _activate(ract, z[:3], g[:3])
                else:  # z holds a / 2 there
                    _sigmoid_into(z[:3], g[:3], times=2)
                _activate(act, z[3], g[3])
                np.multiply(g[1], C[t, r], out=C[t + 1, r])
                C[t + 1, r] += np.multiply(g[0], g[3], out=ig)
                _activate(act, C[t + 1, r], AC[t, r])
                np.multiply(g[2], AC[t, r], out=H[t + 1, r])

        kern = kernels.get() if fw is not w and act == "tanh" else None
        if kern is None:
            loop(slice(0, batch))
        else:  # the Keras defaults (sigmoid gates, tanh), fused: the same numbers
            _fused_steps(kern, pre, masks, G, C, AC)
        return H, (Z, G, H, C, AC, pre, masks, w)

    def run_back(self, w, cache, c, dhs, dh_last, dc_last=None, initial=False, need_dx=True):
        Z, G, H, C, AC, pre, masks, w = cache  # w: gates i, f, o, c
        steps, _, batch, units = G.shape
        ract, act = c["recurrent_activation"], c["activation"]
        dA = np.empty((steps, batch, 4 * units), G.dtype)  # batch-major
        dH0 = _start_back(dhs, dh_last, H.shape[1:], G.dtype)  # dL/dH[-1], then dL/dH[0]
        dC0 = np.zeros_like(dH0) if dc_last is None else np.array(dc_last, dtype=G.dtype)
        rk_t = np.ascontiguousarray(w["recurrent_kernel"].T)

        def loop(r: slice) -> None:
            rmask, dh, dc = masks.rec_rows(r), dH0[r], dC0[r]
            dz = np.empty_like(G[0, :, r])  # one step, gate-major
            dh_c, scratch = np.empty_like(dh), np.empty_like(dz)
            for t in reversed(range(steps)):
                z, (i, f, o, g) = (G if Z is None else Z)[t, :, r], G[t, :, r]
                np.multiply(dh, o, out=dh_c)
                _grad_into(act, dh_c, C[t + 1, r], AC[t, r], scratch[3])
                dc += dh_c
                np.multiply(dc, g, out=dz[0])
                np.multiply(dc, C[t, r], out=dz[1])
                np.multiply(dh, AC[t, r], out=dz[2])
                np.multiply(dc, i, out=dz[3])
                _grad_into(ract, dz[:3], z[:3], G[t, :3, r], scratch[:3])
                _grad_into(act, dz[3], z[3], g, scratch[3])
                _gates(dA[t, r], 4)[...] = dz
                if t or initial:  # at t = 0: dL/dC[0] and dL/dH[0]
                    dc *= f
                    _recur_back(dA[t, r], rk_t, rmask, dh)
                if dhs is not None and t:
                    dh += dhs[t - 1, r]

        kern = kernels.get() if ract == "sigmoid" and act == "tanh" else None
        if kern is None:
            loop(slice(0, batch))
        else:
            _fused_steps_back(kern, masks, G, C, AC, dA, dH0, dC0, rk_t, dhs, initial)
        dxs, grads = pre.grads(w, dA, need_dx)
        grads = {k: _ifoc(v) for k, v in grads.items()}  # back to Keras's i, f, c, o
        return dxs, grads, [dH0, dC0] if initial else []


def _fused_steps(kern, pre: _Steps, masks: _Masks, G, C, AC) -> None:
    """The LSTM forward of :meth:`_LSTMCell.run` through :mod:`nodenet.engine.kernels`:
    per step the product, numpy's tanh (or exp) of it, and one kernel for the gates and
    the cell state (with exp, numpy's exp of -2c and a second kernel for act(c) and h)."""
    steps, _, batch, units = G.shape
    full, rmask, from_exp = slice(0, batch), masks.rec, not rnn_ops.VECTOR_TANH
    z = np.empty((batch, 4 * units), G.dtype)
    for t in range(steps):
        pre.step(t, full, rmask, z)
        if from_exp:  # as _sigmoid_into and _tanh_into take them: exp(-2z)
            rnn_ops._exp_in_place(z, times=-2)
        else:
            np.tanh(z, out=z)
        kern.lstm_gates(z, from_exp, C[t], G[t], C[t + 1], AC[t])
        if from_exp:
            rnn_ops._exp_in_place(AC[t])
            kern.lstm_out_from_exp(AC[t], G[t], *pre.state_columns(t + 1))
        else:
            np.tanh(C[t + 1], out=AC[t])
            np.multiply(G[t, 2], AC[t], out=pre.H[t + 1])


def _fused_steps_back(kern, masks: _Masks, G, C, AC, dA, dh, dc, rk_t, dhs, initial) -> None:
    """The LSTM backward of :meth:`_LSTMCell.run_back` through one kernel per step."""
    steps = len(G)
    for t in reversed(range(steps)):
        carry = bool(t or initial)  # at t = 0: dL/dC[0] and dL/dH[0]
        kern.lstm_back(dh, dc, G[t], C[t], AC[t], dA[t], carry)
        if carry:
            _recur_back(dA[t], rk_t, masks.rec, dh)
        if dhs is not None and t:
            dh += dhs[t - 1]


CELLS: dict[str, Cell] = {cell.KIND: cell for cell in (_SimpleRNNCell(), _LSTMCell(), GRUCell())}

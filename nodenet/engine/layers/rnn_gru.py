"""The GRU cell (Keras's gate order z, r, h; ``reset_after`` or not), forward and backward.

Registered with the other cells in :mod:`nodenet.engine.layers.rnn_cells`; the
shared products are in :mod:`nodenet.engine.layers.rnn_ops`.

Two paths, the same numbers up to rounding: with ``reset_after`` (Keras's default)
and no recurrent dropout, each step is one product of [x_t, h_t, 1, 1] with joined
weights (:func:`_run_joined`), as a LSTM's step is; otherwise the input product of
every step comes first and each step multiplies the state by ``recurrent_kernel``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nodenet.engine.layers.rnn_ops import (
    BY_OUTPUT,
    Cell,
    _activate,
    _gates,
    _grad_into,
    _halved,
    _project,
    _project_back,
    _recur,
    _recur_back,
    _recur_kernel_grad,
    _sigmoid_into,
    _start,
    _start_back,
    _Steps,
)


class GRUCell(Cell):
    """Gates z, r = ract(a_z, a_r) and candidate hh = act(a_h); h = z*h_prev + (1 - z)*hh.

    ``reset_after``: a_h = x_h + r*m with m = h_prev @ rk_h + b_rec_h (a second bias row
    for the state); otherwise a_h = x_h + m @ rk_h with m = r*h_prev. Backward: dh_prev
    gets dh * z directly, and the products' share through recurrent_kernel.
    """

    KIND = "GRU"
    GATES = 3

    def bias_spec(self, c):
        width = 3 * c["units"]
        return ((2, width) if c["reset_after"] else (width,)), c["bias_initializer"]

    def run(self, w, xs, c, masks, initial=None):
        if c["reset_after"] and masks.rec is None:
            return _run_joined(w, xs, c, masks, initial)
        bias = w.get("bias")
        if c["reset_after"] and bias is not None:
            bias = bias[0]
        X, xin = _project(xs, w["kernel"], bias, masks.inp)
        steps, batch, _ = xs.shape
        H = _start(xs, c["units"], initial)
        Z = np.empty((steps, 3, *H.shape[1:]), xs.dtype)  # pre-activations, gate-major
        G = np.empty_like(Z)  # z, r, hh
        M = np.empty_like(H[1:])  # what r multiplies: h_prev @ rk_h + b_rec_h, or h_prev
        step = self._step_after if c["reset_after"] else self._step_before
        width = (3 if c["reset_after"] else 2) * c["units"]

        def loop(r: slice) -> None:
            rmask = masks.rec_rows(r)
            buf = np.empty((r.stop - r.start, width), xs.dtype)
            diff = np.empty_like(H[0, r])
            for t in range(steps):
                g = G[t, :, r]
                step(w, X[t, r], Z[t, :, r], g, H[t, r], M[t, r], c, rmask, buf)
                np.subtract(H[t, r], g[2], out=diff)  # h = hh + z * (h_prev - hh)
                diff *= g[0]
                np.add(g[2], diff, out=H[t + 1, r])

        loop(slice(0, batch))
        return H, (Z, G, H, M, xin, masks)

    def _step_after(self, w, x, z, g, h, m, c, rmask, buf):
        """Gates of one step with reset_after; m = h @ rk_h + b_rec_h."""
        _recur(h, w["recurrent_kernel"], rmask, buf)
        if "bias" in w:
            buf += w["bias"][1]
        xg, hg = _gates(x, 3), _gates(buf, 3)
        np.add(xg[:2], hg[:2], out=z[:2])
        _activate(c["recurrent_activation"], z[:2], g[:2])
        m[...] = hg[2]
        np.multiply(g[1], m, out=z[2])
        z[2] += xg[2]
        _activate(c["activation"], z[2], g[2])

    def _step_before(self, w, x, z, g, h, m, c, rmask, buf):
        """Gates of one step without reset_after; m = r * h (h masked for the candidate)."""
        u, rk = c["units"], w["recurrent_kernel"]
        _recur(h, rk[:, : 2 * u], None if rmask is None else rmask[:2], buf)
        xg = _gates(x, 3)
        np.add(xg[:2], _gates(buf, 2), out=z[:2])
        _activate(c["recurrent_activation"], z[:2], g[:2])
        np.multiply(g[1], h if rmask is None else h * rmask[2], out=m)
        np.matmul(m, rk[:, 2 * u :], out=z[2])
        z[2] += xg[2]
        _activate(c["activation"], z[2], g[2])

    def run_back(self, w, cache, c, dhs, dh_last, dc_last=None, initial=False, need_dx=True):
        if isinstance(cache, _Joined):
            return _run_joined_back(w, cache, c, dhs, dh_last, initial, need_dx)
        Z, G, H, M, xin, masks = cache
        steps, _, batch, units = Z.shape
        dX = np.empty((steps, batch, 3 * units), Z.dtype)  # batch-major
        dM = np.empty_like(dX) if c["reset_after"] else None  # dL/d(h_prev @ rk (+ b_rec))
        dH0 = _start_back(dhs, dh_last, H.shape[1:], Z.dtype)  # dL/dH[-1], then dL/dH[0]
        after = c["reset_after"]
        rk_t = np.ascontiguousarray(w["recurrent_kernel"].T)

        def loop(r: slice) -> None:
            rmask, dh = masks.rec_rows(r), dH0[r]
            dz = np.empty_like(Z[0, :, r])  # one step, gate-major
            scratch, dh_prev = np.empty_like(dz), np.empty_like(dh)
            for t in reversed(range(steps)):
                z, g = Z[t, :, r], G[t, :, r]
                np.subtract(1, g[0], out=dz[2])
                dz[2] *= dh
                _grad_into(c["activation"], dz[2], z[2], g[2], scratch[2])
                np.subtract(H[t, r], g[2], out=dz[0])
                dz[0] *= dh
                if after:
                    args = (dz, z, g, M[t, r], dX[t, r], dM[t, r], rmask, scratch, dh_prev)
                    self._after_back(rk_t, c, *args)
                else:
                    args = (dz, z, g, H[t, r], dX[t, r], rmask, scratch, dh_prev)
                    self._before_back(rk_t, c, *args)
                dh *= g[0]
                dh += dh_prev
                if dhs is not None and t:
                    dh += dhs[t - 1, r]

        loop(slice(0, batch))
        dxs, grads = self._weight_grads(w, dX, dM, H, M, xin, c, masks, need_dx)
        return dxs, grads, [dH0] if initial else []  # dH0: dL/dH[0]

    def _after_back(self, rk_t, c, dz, z, g, m, dx, dm, rmask, scratch, out) -> None:
        """One step back with reset_after: fills dx, dm and ``out`` (dL/dh_prev through rk)."""
        np.multiply(dz[2], m, out=dz[1])
        _grad_into(c["recurrent_activation"], dz[:2], z[:2], g[:2], scratch[:2])
        _gates(dx, 3)[...] = dz
        dmg = _gates(dm, 3)
        dmg[:2] = dz[:2]
        np.multiply(dz[2], g[1], out=dmg[2])
        _recur_back(dm, rk_t, rmask, out)

    def _before_back(self, rk_t, c, dz, z, g, h_prev, dx, rmask, scratch, out) -> None:
        """One step back without reset_after: fills dx and ``out`` (dL/dh_prev through rk)."""
        u = c["units"]
        d_rh = dz[2] @ rk_t[2 * u :]  # dL/d(r * h_h)
        np.multiply(d_rh, h_prev if rmask is None else h_prev * rmask[2], out=dz[1])
        _grad_into(c["recurrent_activation"], dz[:2], z[:2], g[:2], scratch[:2])
        _gates(dx, 3)[...] = dz
        _recur_back(dx[:, : 2 * u], rk_t[: 2 * u], None if rmask is None else rmask[:2], out)
        d_rh *= g[1]
        out += d_rh if rmask is None else d_rh * rmask[2]

    def _weight_grads(self, w, dX, dM, H, M, xin, c, masks, need_dx):
        dxs, dkernel = _project_back(dX, xin, w["kernel"], masks.inp, need_dx)
        grads = {"kernel": dkernel}
        if c["reset_after"]:
            grads["recurrent_kernel"] = _recur_kernel_grad(H[:-1], dM, masks.rec)
            if "bias" in w:
                grads["bias"] = np.stack([dX.sum(axis=(0, 1)), dM.sum(axis=(0, 1))])
            return dxs, grads
        u = c["units"]
        rmask_zr = None if masks.rec is None else masks.rec[:2]
        grads["recurrent_kernel"] = np.concatenate(
            [
                _recur_kernel_grad(H[:-1], dX[..., : 2 * u], rmask_zr),
                M.reshape(-1, u).T @ dX[..., 2 * u :].reshape(-1, u),
            ],
            axis=1,
        )
        if "bias" in w:
            grads["bias"] = dX.sum(axis=(0, 1))
        return dxs, grads


# -- reset_after without recurrent dropout: one product per step ---------------------------

# The joined product's column blocks: the candidate's input part x @ kernel_h + b_h,
# the update and reset gates (input, state and both biases at once), and the
# candidate's state part m = h @ rk_h + b_rec_h, which the reset gate multiplies.
_XH, _Z, _R, _MH = range(4)


def _joined_weights(w: dict, units: int) -> dict:
    """Keras's GRU weights (gates z, r, h; a bias of two rows) as one product's:
    [kernel; recurrent_kernel; bias] with the column blocks x_h, z, r, m_h, zeros
    where a block does not read that input."""
    u, kernel, recurrent = units, w["kernel"], w["recurrent_kernel"]
    out = {
        "kernel": np.zeros((len(kernel), 4 * u), kernel.dtype),
        "recurrent_kernel": np.zeros((u, 4 * u), kernel.dtype),
    }
    out["kernel"][:, :u] = kernel[:, 2 * u :]
    out["kernel"][:, u : 3 * u] = kernel[:, : 2 * u]
    out["recurrent_kernel"][:, u:] = recurrent
    if "bias" in w:
        bias = out["bias"] = np.zeros((2, 4 * u), kernel.dtype)
        bias[0, :u] = w["bias"][0, 2 * u :]
        bias[0, u : 3 * u] = w["bias"][0, : 2 * u]
        bias[1, u:] = w["bias"][1]
    return out


def _keras_grads(joined: dict, units: int) -> dict:
    """The gradients of :func:`_joined_weights`'s arrays as those of Keras's weights."""
    u, dk = units, joined["kernel"]
    grads = {
        "kernel": np.concatenate([dk[:, u : 3 * u], dk[:, :u]], axis=1),
        "recurrent_kernel": np.ascontiguousarray(joined["recurrent_kernel"][:, u:]),
    }
    if "bias" in joined:
        db = joined["bias"]
        grads["bias"] = np.stack([np.concatenate([db[0, u : 3 * u], db[0, :u]]), db[1, u:]])
    return grads


@dataclass
class _Joined:
    """The forward's cache of :func:`_run_joined`."""

    P: np.ndarray  # each step's product (the z and r blocks halved with a sigmoid)
    G: np.ndarray  # the gates z, r, hh
    A: np.ndarray | None  # the candidate's pre-activation, unless its slope needs only hh
    pre: _Steps
    joined: dict  # the weights, not halved


def _run_joined(w, xs, c, masks, initial):
    """The GRU forward with ``reset_after`` and no recurrent dropout.

    [x_t, h_t, 1, 1] meets the joined weights (:func:`_joined_weights`) in one product
    per step, which gives the gates' pre-activations and both parts of the candidate's
    at once (as a LSTM's step does), where the general path needs an input product up
    front and a bias and gate additions per step.
    """
    steps, batch, _ = xs.shape
    u, ract, act = c["units"], c["recurrent_activation"], c["activation"]
    halved = ract == "sigmoid"
    joined = _joined_weights(w, u)
    pre = _Steps(xs, _halved(joined, slice(u, 3 * u)) if halved else joined, u, masks, initial)
    H = pre.H
    P = np.empty((steps, batch, 4 * u), xs.dtype)  # each step's product: x_h, z, r, m_h
    G = np.empty((steps, 3, batch, u), xs.dtype)  # z, r, hh
    A = None if act in BY_OUTPUT else np.empty((steps, batch, u), xs.dtype)  # hh's argument
    a_buf, diff = np.empty((batch, u), xs.dtype), np.empty((batch, u), xs.dtype)
    rows = slice(0, batch)
    for t in range(steps):
        p, g = _gates(pre.step(t, rows, None, P[t]), 4), G[t]
        if halved:  # p holds a / 2 there
            _sigmoid_into(p[_Z : _R + 1], g[:2], times=2)
        else:
            _activate(ract, p[_Z : _R + 1], g[:2])
        a = a_buf if A is None else A[t]
        np.multiply(g[1], p[_MH], out=a)  # hh = act(x_h + r * m_h)
        a += p[_XH]
        _activate(act, a, g[2])
        np.subtract(H[t], g[2], out=diff)  # h = hh + z * (h_prev - hh)
        diff *= g[0]
        np.add(g[2], diff, out=H[t + 1])
    return H, _Joined(P, G, A, pre, joined)


def _run_joined_back(w, cache: _Joined, c, dhs, dh_last, initial, need_dx):
    """Backward of :func:`_run_joined`: dL/dxs, Keras's weight gradients, dL/dH[0]."""
    P, G, A, pre = cache.P, cache.G, cache.A, cache.pre
    steps, _, batch, u = G.shape
    H, ract, act = pre.H, c["recurrent_activation"], c["activation"]
    dP = np.empty_like(P)  # dL/d(each step's product), the same column blocks
    dh = _start_back(dhs, dh_last, H.shape[1:], G.dtype)  # dL/dH[-1], then dL/dH[0]
    rk_t = np.ascontiguousarray(w["recurrent_kernel"].T)  # rows z, r, h: blocks z, r, m_h
    dz, scratch = np.empty((4, batch, u), G.dtype), np.empty((4, batch, u), G.dtype)
    dh_rk = np.empty_like(dh)
    for t in reversed(range(steps)):
        p, g = _gates(P[t], 4), G[t]
        np.subtract(1, g[0], out=dz[_XH])  # the candidate's pre-activation
        dz[_XH] *= dh
        _grad_into(act, dz[_XH], None if A is None else A[t], g[2], scratch[_XH])
        np.subtract(H[t], g[2], out=dz[_Z])
        dz[_Z] *= dh
        np.multiply(dz[_XH], p[_MH], out=dz[_R])
        _grad_into(ract, dz[_Z : _R + 1], p[_Z : _R + 1], g[:2], scratch[_Z : _R + 1])
        np.multiply(dz[_XH], g[1], out=dz[_MH])
        _gates(dP[t], 4)[...] = dz
        dh *= g[0]
        if t or initial:  # at t = 0: dL/dH[0]
            _recur_back(dP[t, :, u:], rk_t, None, dh_rk)
            dh += dh_rk
        if dhs is not None and t:
            dh += dhs[t - 1]
    dxs, grads = pre.grads(cache.joined, dP, need_dx)  # dP: by the weights, not halved
    return dxs, _keras_grads(grads, u), [dh] if initial else []

"""The numerics of the recurrent blocks: SimpleRNN, LSTM and GRU cells over a sequence.

:mod:`nodenet.engine.layers.recurrent` declares the blocks; this module runs
them. A cell kind knows its weights (Keras names, layouts and gate order:
LSTM i, f, c, o; GRU z, r, h), draws its dropout masks and computes a whole
sequence forward and backward.

Dropout masks are drawn once per batch and reused at every step, only in
training. Like Keras (which switches to ``implementation=1`` when
``recurrent_dropout`` is set), LSTM and GRU then draw one mask per gate for the
inputs and one per gate for the state; otherwise one input mask serves every
gate.

How it computes: time-major (steps, batch, ...) inside. The whole sequence
meets ``kernel`` in one product up front; each step multiplies the state by
the fused ``recurrent_kernel`` once (a GRU with ``reset_after=False`` needs a
second product for its candidate, as in Keras). The backward through time
mirrors this, and forms the weight gradients with one product over all steps.
Products run batch-major, (batch, k*units); the element-wise gate work runs
gate-major, (k, batch, units), where each gate is one contiguous block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nodenet.engine import activations
from nodenet.engine.initializers import unit_forget_bias
from nodenet.engine.layer import Context, WeightSpec

# -- activations and the gate-major layout ----------------------------------


def _activate(name: str, z: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = activation(z)``; z (..., units), softmax along units.

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
    else:
        out[...] = activations.apply(name, z)


def _grad_into(name: str, g: np.ndarray, z: np.ndarray, a: np.ndarray) -> None:
    """Turn ``g`` from dL/da into dL/dz in place, for a = activation(z)."""
    if name == "sigmoid":
        slope = np.subtract(1, a)
        slope *= a
        g *= slope
    elif name == "tanh":
        slope = np.multiply(a, a)
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


class Cell:
    """A recurrent cell kind: its weights, masks and sequence forward/backward.

    ``run`` takes xs (steps, batch, features) in reading order (and the initial
    states, zeros if not given) and returns the states H (steps + 1, batch, units)
    (H[0] the initial state) and a cache; ``run_back`` takes dL/dH[1:] as ``dhs``
    (steps, batch, units) and/or dL/dH[-1] as ``dh_last`` (batch, units) (an
    LSTM also dL/dC[-1] as ``dc_last``) and returns dL/dxs, the weight gradients
    and, with ``initial``, the initial states' gradients ([dL/dH[0]], or
    [dL/dH[0], dL/dC[0]]; else []).
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
        self, w: dict, cache: Any, c: dict, dhs, dh_last, dc_last=None, initial=False
    ) -> tuple[np.ndarray, dict, list]:
        raise NotImplementedError


def _start(xs: np.ndarray, units: int, initial, k: int = 0) -> np.ndarray:
    """States H (steps + 1, batch, units), H[0] the ``k``-th initial state or zeros."""
    steps, batch, _ = xs.shape
    H = np.zeros((steps + 1, batch, units), xs.dtype)
    if initial is not None and len(initial) > k:
        H[0] = initial[k]
    return H


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


class _SimpleRNNCell(Cell):
    """h = activation(x @ kernel + h_prev @ recurrent_kernel + bias)."""

    KIND = "SimpleRNN"
    GATES = 1

    def run(self, w, xs, c, masks, initial=None):
        steps = xs.shape[0]
        A, xin = _project(xs, w["kernel"], w.get("bias"), masks.inp)  # pre-activations
        H = _start(xs, c["units"], initial)
        rk, buf = w["recurrent_kernel"], np.empty(H.shape[1:], xs.dtype)
        for t in range(steps):
            A[t] += _recur(H[t], rk, masks.rec, buf)
            _activate(c["activation"], A[t], H[t + 1])
        return H, (A, H, xin, masks)

    def run_back(self, w, cache, c, dhs, dh_last, dc_last=None, initial=False):
        A, H, xin, masks = cache
        dA = np.empty_like(A)
        dh = _start_back(dhs, dh_last, H.shape[1:], A.dtype)
        for t in reversed(range(len(A))):
            dA[t] = dh
            _grad_into(c["activation"], dA[t], A[t], H[t + 1])
            if t or initial:  # at t = 0: dL/dH[0]
                dh = _recur_back(dA[t], w["recurrent_kernel"], masks.rec)
            if dhs is not None and t:
                dh += dhs[t - 1]
        return (*_fused_grads(w, dA, H, xin, masks), [dh] if initial else [])


class _LSTMCell(Cell):
    """Gates i, f, c, o; c = f*c_prev + i*act(a_c); h = o*act(c)."""

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
        steps = xs.shape[0]
        X, xin = _project(xs, w["kernel"], w.get("bias"), masks.inp)
        H = _start(xs, c["units"], initial)
        C = _start(xs, c["units"], initial, 1)
        AC = np.empty_like(H[1:])  # act(c)
        Z = np.empty((steps, 4, *H.shape[1:]), xs.dtype)  # pre-activations, gate-major
        G = np.empty_like(Z)  # i, f, g, o
        rk, buf = w["recurrent_kernel"], np.empty(X.shape[1:], xs.dtype)
        ract, act = c["recurrent_activation"], c["activation"]
        for t in range(steps):
            z, (i, f, g, o) = Z[t], G[t]
            _recur(H[t], rk, masks.rec, buf)
            np.add(_gates(X[t], 4), _gates(buf, 4), out=z)
            _activate(ract, z[:2], G[t, :2])
            _activate(act, z[2], g)
            _activate(ract, z[3], o)
            np.multiply(f, C[t], out=C[t + 1])
            C[t + 1] += i * g
            _activate(act, C[t + 1], AC[t])
            np.multiply(o, AC[t], out=H[t + 1])
        return H, (Z, G, H, C, AC, xin, masks)

    def run_back(self, w, cache, c, dhs, dh_last, dc_last=None, initial=False):
        Z, G, H, C, AC, xin, masks = cache
        ract, act = c["recurrent_activation"], c["activation"]
        dA = np.empty((len(Z), Z.shape[2], 4 * Z.shape[3]), Z.dtype)  # batch-major
        dz = np.empty_like(Z[0])  # one step, gate-major
        dh = _start_back(dhs, dh_last, H.shape[1:], Z.dtype)
        dc = np.zeros_like(dh) if dc_last is None else np.array(dc_last, dtype=Z.dtype)
        for t in reversed(range(len(Z))):
            z, (i, f, g, o) = Z[t], G[t]
            dh_c = dh * o
            _grad_into(act, dh_c, C[t + 1], AC[t])
            dc += dh_c
            np.multiply(dc, g, out=dz[0])
            np.multiply(dc, C[t], out=dz[1])
            np.multiply(dc, i, out=dz[2])
            np.multiply(dh, AC[t], out=dz[3])
            _grad_into(ract, dz[:2], z[:2], G[t, :2])
            _grad_into(act, dz[2], z[2], g)
            _grad_into(ract, dz[3], z[3], o)
            _gates(dA[t], 4)[...] = dz
            if t or initial:  # at t = 0: dL/dC[0] and dL/dH[0]
                dc *= f
                dh = _recur_back(dA[t], w["recurrent_kernel"], masks.rec)
            if dhs is not None and t:
                dh += dhs[t - 1]
        return (*_fused_grads(w, dA, H, xin, masks), [dh, dc] if initial else [])


class _GRUCell(Cell):
    """Gates z, r and candidate hh; h = z*h_prev + (1 - z)*hh.

    ``reset_after``: hh = act(x_h + r*(h_prev @ rk_h + b_rec_h)) with a second
    bias row for the state; otherwise hh = act(x_h + (r*h_prev) @ rk_h).
    """

    KIND = "GRU"
    GATES = 3

    def bias_spec(self, c):
        width = 3 * c["units"]
        return ((2, width) if c["reset_after"] else (width,)), c["bias_initializer"]

    def run(self, w, xs, c, masks, initial=None):
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
        buf = np.empty((batch, (3 if c["reset_after"] else 2) * c["units"]), xs.dtype)
        for t in range(steps):
            step(w, X[t], Z[t], G[t], H[t], M[t], c, masks, buf)
            z, hh = G[t, 0], G[t, 2]
            np.multiply(z, H[t], out=H[t + 1])
            H[t + 1] += (1 - z) * hh
        return H, (Z, G, H, M, xin, masks)

    def _step_after(self, w, x, z, g, h, m, c, masks, buf):
        """Gates of one step with reset_after; m = h @ rk_h + b_rec_h."""
        _recur(h, w["recurrent_kernel"], masks.rec, buf)
        if "bias" in w:
            buf += w["bias"][1]
        xg, hg = _gates(x, 3), _gates(buf, 3)
        np.add(xg[:2], hg[:2], out=z[:2])
        _activate(c["recurrent_activation"], z[:2], g[:2])
        m[...] = hg[2]
        np.multiply(g[1], m, out=z[2])
        z[2] += xg[2]
        _activate(c["activation"], z[2], g[2])

    def _step_before(self, w, x, z, g, h, m, c, masks, buf):
        """Gates of one step without reset_after; m = r * h (h masked for the candidate)."""
        u, rk, rmask = c["units"], w["recurrent_kernel"], masks.rec
        _recur(h, rk[:, : 2 * u], None if rmask is None else rmask[:2], buf)
        xg = _gates(x, 3)
        np.add(xg[:2], _gates(buf, 2), out=z[:2])
        _activate(c["recurrent_activation"], z[:2], g[:2])
        np.multiply(g[1], h if rmask is None else h * rmask[2], out=m)
        np.matmul(m, rk[:, 2 * u :], out=z[2])
        z[2] += xg[2]
        _activate(c["activation"], z[2], g[2])

    def run_back(self, w, cache, c, dhs, dh_last, dc_last=None, initial=False):
        Z, G, H, M, xin, masks = cache
        dX = np.empty((len(Z), Z.shape[2], 3 * Z.shape[3]), Z.dtype)  # batch-major
        dM = np.empty_like(dX) if c["reset_after"] else None  # dL/d(h_prev @ rk (+ b_rec))
        dz = np.empty_like(Z[0])  # one step, gate-major
        dh = _start_back(dhs, dh_last, H.shape[1:], Z.dtype)
        for t in reversed(range(len(Z))):
            z, g = Z[t], G[t]
            np.multiply(dh, 1 - g[0], out=dz[2])
            _grad_into(c["activation"], dz[2], z[2], g[2])
            np.multiply(dh, H[t] - g[2], out=dz[0])
            if c["reset_after"]:
                dh_prev = self._after_back(w, dz, z, g, M[t], dX[t], dM[t], c, masks)
            else:
                dh_prev = self._before_back(w, dz, z, g, H[t], dX[t], c, masks)
            dh = dh_prev + dh * g[0]
            if dhs is not None and t:
                dh += dhs[t - 1]
        grads = self._weight_grads(w, dX, dM, H, M, xin, c, masks)
        return (*grads, [dh] if initial else [])  # dh: dL/dH[0]

    def _after_back(self, w, dz, z, g, m, dx, dm, c, masks) -> np.ndarray:
        """One step back with reset_after: fills dx, dm; returns dL/dh_prev through rk."""
        np.multiply(dz[2], m, out=dz[1])
        _grad_into(c["recurrent_activation"], dz[:2], z[:2], g[:2])
        _gates(dx, 3)[...] = dz
        dmg = _gates(dm, 3)
        dmg[:2] = dz[:2]
        np.multiply(dz[2], g[1], out=dmg[2])
        return _recur_back(dm, w["recurrent_kernel"], masks.rec)

    def _before_back(self, w, dz, z, g, h_prev, dx, c, masks) -> np.ndarray:
        """One step back without reset_after: fills dx; returns dL/dh_prev through rk."""
        u, rk, rmask = c["units"], w["recurrent_kernel"], masks.rec
        d_rh = dz[2] @ rk[:, 2 * u :].T  # dL/d(r * h_h)
        np.multiply(d_rh, h_prev if rmask is None else h_prev * rmask[2], out=dz[1])
        _grad_into(c["recurrent_activation"], dz[:2], z[:2], g[:2])
        _gates(dx, 3)[...] = dz
        dh = _recur_back(dx[:, : 2 * u], rk[:, : 2 * u], None if rmask is None else rmask[:2])
        d_h = d_rh * g[1]
        return dh + (d_h if rmask is None else d_h * rmask[2])

    def _weight_grads(self, w, dX, dM, H, M, xin, c, masks):
        dxs, dkernel = _project_back(dX, xin, w["kernel"], masks.inp)
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


CELLS: dict[str, Cell] = {cell.KIND: cell for cell in (_SimpleRNNCell(), _LSTMCell(), _GRUCell())}

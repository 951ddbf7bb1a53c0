"""Fused element-wise kernels for the engine's hottest loops, compiled by numba when present.

numpy makes one call, and one pass over memory, per operation: an LSTM step's gate
arithmetic is some twenty calls on arrays of 16k values, and at that size the calls
and the passes cost more than the arithmetic. Each kernel here is a plain loop that
does such a chain in one pass. It performs the same float operations in the same
order as the numpy code it stands in for, with no fused multiply-add (numba's
default), so its results are bit for bit that code's
(``tests/engine/test_kernels.py``); tanh stays numpy's own, and exp too but for
float32 arrays, which :func:`exp32` takes within 1 ulp in half numpy's time.

numba is optional (the ``fast`` extra). :func:`get` returns this module's kernels,
or None without numba or with ``NODENET_KERNELS=numpy`` in the environment, and
every caller then runs its numpy code. numba is imported on the first call only
(about 0.3 s); each kernel compiles on its first use for a dtype (about a second)
and is cached on disk from then on. Kernels release the GIL.

Array arguments must be C-contiguous: numba vectorizes loops over those only. Loops that
branch per row index their arrays (``x[a, b]``) instead of taking row views: numba
counts the references of each view, two atomic operations on every row, which cost
more than a short row's arithmetic where it cannot prove them unneeded.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import sys
import threading
from types import SimpleNamespace

import numpy as np

_lock = threading.Lock()
_kernels: SimpleNamespace | None = None
_tried = False


def enabled() -> bool:
    """Whether the kernels are wanted: not turned off by ``NODENET_KERNELS=numpy``."""
    return os.environ.get("NODENET_KERNELS", "").strip().lower() != "numpy"


def get() -> SimpleNamespace | None:
    """The compiled kernels, or None (numba missing or turned off): callers use numpy."""
    global _kernels, _tried
    if not enabled():
        return None
    if not _tried:
        with _lock:
            if not _tried:
                _kernels = _build()
                _tried = True
    return _kernels


def _build() -> SimpleNamespace | None:
    try:
        import numba
    except ImportError:
        return None
    # error_model="numpy": division by zero gives inf as in numpy, with no check per
    # element, which would keep the loops from vectorizing
    jit = numba.njit(cache=True, nogil=True, error_model="numpy")
    # the kernels call these by their module names: compiled versions replace them
    globals()["_float_from_bits"] = _bits_intrinsic(numba)
    inline = numba.njit(cache=True, error_model="numpy", inline="always")
    for helper in (exp32, _next_position):
        globals()[helper.__name__] = inline(helper)
    _load_registries_without_scipy_linalg()
    return SimpleNamespace(**{f.__name__: jit(f) for f in _KERNELS})


def _load_registries_without_scipy_linalg() -> None:
    """Load numba's registries of compiled numpy functions now, without scipy.linalg.

    numba loads them once, on the first call of any compiled function, and one of them
    imports scipy.linalg to look for a BLAS for ``np.dot`` and the like in compiled code:
    some 16 MiB that no kernel here uses. With the import refused, numba records that it
    has no BLAS. The refusal holds for this thread and this call only, so a scipy.linalg
    that another thread imports meanwhile, or that the program imports later, loads as
    usual; where scipy.linalg is loaded already, nothing is refused and nothing saved.
    A numba without this internal loads them on the first call, as it would anyway.
    """
    try:
        from numba.core.registry import cpu_target

        context = cpu_target.target_context
    except (ImportError, AttributeError):  # pragma: no cover (another numba's layout)
        return
    with _refused_in_this_thread("scipy.linalg"):
        context.refresh()


@contextlib.contextmanager
def _refused_in_this_thread(module: str):
    """Imports of ``module`` in the calling thread fail (ModuleNotFoundError) meanwhile."""
    thread = threading.get_ident()

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == module and threading.get_ident() == thread:
                raise ModuleNotFoundError(f"{module} is not loaded for numba", name=name)
            return None

    finder = Refuse()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def _bits_intrinsic(numba):
    """:func:`_float_from_bits` for compiled code: a bit cast, which vectorizes."""
    from llvmlite import ir

    @numba.extending.intrinsic
    def float_from_bits(typingctx, bits):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.FloatType())

        return numba.types.float32(numba.types.int32), codegen

    return float_from_bits


# -- exp in float32 ------------------------------------------------------------------

_EXP_HI = np.float32(88.3762626647949)  # beyond these, 2^n of exp32 is no normal float
_EXP_LO = np.float32(-87.3365478515625)


def _float_from_bits(bits):
    """The float32 whose bits are the int32 ``bits``."""
    return np.int32(bits).view(np.float32)


def exp32(x):
    """exp of a float32 within 1 ulp (numpy's float32 exp on AVX2: 2.4 ulp), twice as fast.

    Cephes's expf: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-6 polynomial,
    times 2^n built from its bits. Past what a normal float holds it gives inf above
    88.376 and 0 below -87.337: the limits of the 1 / (1 + exp) forms of sigmoid and
    tanh it serves, for which the values cut off (below 2^-126 or within a factor 1.5
    of the largest float) make no difference.
    """
    xc = min(max(x, _EXP_LO), _EXP_HI)
    n = np.floor(xc * np.float32(1.44269504088896341) + np.float32(0.5))
    r = xc - n * np.float32(0.693359375)  # ln2 in two parts: n * the first is exact
    r = r - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * (r * r) + r + np.float32(1)
    y = p * _float_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))
    y = np.float32(np.inf) if x > _EXP_HI else y
    return np.float32(0) if x < _EXP_LO else y


def exp32_in_place(x, times):
    """``x[k] = exp32(x[k] * times)`` over a 1-d float32 array, ``times`` a float32 (the
    cells take exp(-2z): one pass instead of numpy's multiply and then this one). In
    place: two arrays would need an overlap check, which fails, unvectorized, when they
    are one."""
    for k in range(x.shape[0]):
        x[k] = exp32(x[k] * times)


# -- SimpleRNN: a tanh step forward and back ------------------------------------------


def tanh_exp32(a, states, column):
    """h = tanh(a) = 2 / (1 + exp32(-2a)) - 1 of ``a`` (batch, units) into
    ``states[:, column:column + units]``, as the cells' exp path takes it."""
    units = a.shape[1]
    one, two, minus_two = np.float32(1), np.float32(2), np.float32(-2)
    for b in range(a.shape[0]):
        row, h = a[b], states[b, column : column + units]
        for j in range(units):
            h[j] = two / (one + exp32(row[j] * minus_two)) - one


def tanh_back(dh, states, column, da):
    """da = dh (1 - h^2), h = ``states[:, column:column + units]`` the step's output."""
    units = dh.shape[1]
    one = dh.dtype.type(1)
    for b in range(dh.shape[0]):
        g, h, d = dh[b], states[b, column : column + units], da[b]
        for j in range(units):
            d[j] = g[j] * (one - h[j] * h[j])


# -- LSTM: one step forward, one step back -------------------------------------------
#
# The gate layout is the cell's (rnn_cells): i, f, o, c. A forward step's products
# z (batch, 4*units) are, per gate column block, a_i/2, a_f/2, a_o/2 (the sigmoid
# gates' weights halved) and a_c. numpy turns z in place into either tanh(z) or
# exp(-2z); the kernels take it from there.


def lstm_gates(t, from_exp, c_prev, gates, c, c_arg):
    """Gates and cell state of one step from ``t`` (batch, 4*units).

    ``from_exp``: ``t`` = exp(-2z), so sigmoid = 1 / (1 + t) and tanh = 2 / (1 + t) - 1;
    else ``t`` = tanh(z), so sigmoid = 0.5 t + 0.5 (z was halved) and tanh = t.
    Writes ``gates`` (4, batch, units) as i, f, o, g; c = f c_prev + i g, and with
    ``from_exp`` -2c to ``c_arg`` (whose exp :func:`lstm_out_from_exp` takes).
    """
    batch, units = c_prev.shape
    one, two, half = t.dtype.type(1), t.dtype.type(2), t.dtype.type(0.5)
    minus_two = t.dtype.type(-2)
    for b in range(batch):
        if from_exp:
            for j in range(units):
                i = one / (one + t[b, j])
                f = one / (one + t[b, units + j])
                g = two / (one + t[b, 3 * units + j]) - one
                gates[0, b, j] = i
                gates[1, b, j] = f
                gates[2, b, j] = one / (one + t[b, 2 * units + j])
                gates[3, b, j] = g
                cj = f * c_prev[b, j] + i * g
                c[b, j] = cj
                c_arg[b, j] = cj * minus_two
        else:
            for j in range(units):
                i = t[b, j] * half + half
                f = t[b, units + j] * half + half
                g = t[b, 3 * units + j]
                gates[0, b, j] = i
                gates[1, b, j] = f
                gates[2, b, j] = t[b, 2 * units + j] * half + half
                gates[3, b, j] = g
                c[b, j] = f * c_prev[b, j] + i * g


def lstm_out_from_exp(e, gates, states, column):
    """act(c) = 2 / (1 + e) - 1 in place of ``e`` = exp(-2c) (batch, units), and the
    output h = o act(c) into ``states[:, column:column + units]``."""
    batch, units = e.shape
    one, two = e.dtype.type(1), e.dtype.type(2)
    for b in range(batch):
        eb, ob, hb = e[b], gates[2, b], states[b, column : column + units]
        for j in range(units):
            ac = two / (one + eb[j]) - one
            eb[j] = ac
            hb[j] = ob[j] * ac


def lstm_back(dh, dc, gates, c_prev, ac, da, carry):
    """One step back: dL/d(products) into ``da`` (batch, 4*units), from dh = dL/dh and
    dc = dL/dc (batch, units) after the step, ``gates`` (4, batch, units) i, f, o, g.

    dc += dh o act'(c); da_i = dc g i(1-i); da_f = dc c_prev f(1-f);
    da_o = dh act(c) o(1-o); da_c = dc i (1-g^2); then, with ``carry``, dc *= f
    (dL/dc_prev).
    """
    batch, units = dh.shape
    one = dh.dtype.type(1)
    for b in range(batch):
        gi, gf, go, gg = gates[0, b], gates[1, b], gates[2, b], gates[3, b]
        acb, dhb, dcb, cpb = ac[b], dh[b], dc[b], c_prev[b]
        di, df = da[b, :units], da[b, units : 2 * units]
        do, dg = da[b, 2 * units : 3 * units], da[b, 3 * units :]
        for j in range(units):
            i, f, o, g, a, h = gi[j], gf[j], go[j], gg[j], acb[j], dhb[j]
            d = dcb[j] + (h * o) * (one - a * a)
            di[j] = (d * g) * ((one - i) * i)
            df[j] = (d * cpb[j]) * ((one - f) * f)
            do[j] = (h * a) * ((one - o) * o)
            dg[j] = (d * i) * (one - g * g)
            dcb[j] = d * f if carry else d


# -- BatchNormalization over the last axis, on one part of the rows (norm_parts) -----
#
# Each takes rows (rows, features) and per-feature vectors; the sums run over the rows
# in order, each feature on its own, as numpy's einsum adds them.


def norm_sums(x, sums):
    """``sums[b] += x[a, b]`` over the rows, in ``sums``'s dtype (float64)."""
    for a in range(x.shape[0]):
        row = x[a]
        for b in range(x.shape[1]):
            sums[b] += sums.dtype.type(row[b])


def norm_center(x, mean, centered, squares):
    """``centered = x - mean``, and ``squares[b] += centered[a, b]^2`` over the rows."""
    for a in range(x.shape[0]):
        row, out = x[a], centered[a]
        for b in range(x.shape[1]):
            c = row[b] - mean[b]
            out[b] = c
            squares[b] += c * c


def norm_squares(x, mean, squares):
    """:func:`norm_center` without storing the centered values."""
    for a in range(x.shape[0]):
        row = x[a]
        for b in range(x.shape[1]):
            c = row[b] - mean[b]
            squares[b] += c * c


def norm_scale(centered, scale, beta, add_beta, relu, out):
    """``out = centered * scale (+ beta)``, with ``relu`` its maximum with 0 (a NaN stays,
    as with numpy's maximum)."""
    zero = out.dtype.type(0)
    for a in range(centered.shape[0]):
        row, o = centered[a], out[a]
        for b in range(centered.shape[1]):
            v = row[b] * scale[b]
            if add_beta:
                v = v + beta[b]
            if relu:
                v = v if (v >= zero or v != v) else zero
            o[b] = v


def norm_back_sums(grad, centered, relu_out, relu, masked, sum_g, sum_gc):
    """With ``relu``, ``masked = grad * (relu_out > 0)``; then, of that gradient g,
    ``sum_g[b] += g`` and ``sum_gc[b] += g * centered`` over the rows."""
    one, zero = grad.dtype.type(1), grad.dtype.type(0)
    for a in range(grad.shape[0]):
        row, c, m, r = grad[a], centered[a], masked[a], relu_out[a]
        for b in range(grad.shape[1]):
            g = row[b]
            if relu:
                g = g * (one if r[b] > zero else zero)
                m[b] = g
            sum_g[b] += g
            sum_gc[b] += g * c[b]


def norm_back_dx(grad, centered, scale, slope, shift, dx):
    """``dx = grad * scale + (centered * slope + shift)``, per feature."""
    for a in range(grad.shape[0]):
        g, c, d = grad[a], centered[a], dx[a]
        for b in range(grad.shape[1]):
            d[b] = g[b] * scale[b] + (c[b] * slope[b] + shift[b])


# -- BatchNormalization, relu and max pooling in one (norm_parts, windows that tile) ----
#
# The pooled output and each window's first maximum are taken straight from the centered
# values; the gradient of a row position is the pooled gradient where that position held
# its window's first maximum (above zero), else 0, as the pooling's spread and the relu
# mask give it. ``first`` holds that window offset (row-major), or -1 for none.


def norm_relu_pool2d(x, mean, scale, beta, add_beta, pool, y, first):
    """``y`` = the max pooling (windows ``pool``, tiling) of :func:`norm_scale`'s relu
    output of ``x - mean`` (x: part, h, w, features), and ``first`` (int32) its first
    maxima: the same maximum as numpy's (a NaN wins), the first window offset holding
    it, -1 where it is not above zero.

    A row of windows keeps its running maxima in ``tops`` and ``hits``, each window
    offset reading one of their two halves and writing the other: a maximum kept in
    place would be a store of a select of the stored value, which LLVM makes a masked
    store, many times slower on AMD's CPUs.
    """
    zero, none = y.dtype.type(0), first.dtype.type(-1)
    ph, pw = pool
    count = ph * pw
    tops = np.empty((2, y.shape[2], y.shape[3]), y.dtype)
    hits = np.empty((2, y.shape[2], y.shape[3]), first.dtype)
    for n in range(y.shape[0]):
        for i in range(y.shape[1]):
            for q in range(count):
                h, w0, offset = i * ph + q // pw, q % pw, first.dtype.type(q)
                new, old = q % 2, (q + 1) % 2
                for j in range(y.shape[2]):
                    w = j * pw + w0
                    for b in range(y.shape[3]):
                        v = (x[n, h, w, b] - mean[b]) * scale[b]
                        if add_beta:
                            v = v + beta[b]
                        v = v if (v >= zero or v != v) else zero
                        if q == 0:
                            tops[new, j, b], hits[new, j, b] = v, offset
                        else:  # numpy's maximum keeps top unless top < v or v is NaN
                            top, hit = tops[old, j, b], hits[old, j, b]
                            take = (top < v) | (v != v)
                            tops[new, j, b] = v if take else top
                            hits[new, j, b] = offset if take else hit
            last = (count - 1) % 2
            for j in range(y.shape[2]):
                for b in range(y.shape[3]):
                    top = tops[last, j, b]
                    y[n, i, j, b] = top
                    first[n, i, j, b] = hits[last, j, b] if top > zero else none


def norm_pool_back_sums(grad, first, x, mean, start, shape, pool, sum_g, sum_gc):
    """:func:`norm_back_sums` of the rows ``x - mean`` (from row ``start`` of the batch's
    images ``shape``), their gradient read from the pooled ``grad`` and ``first``: the
    pooled gradient where the row held its window's first maximum, else 0 (which leaves
    the sums as they are)."""
    zero = sum_g.dtype.type(0)
    n, rest = divmod(start, shape[0] * shape[1])
    h, w = divmod(rest, shape[1])
    for a in range(x.shape[0]):
        i, j = h // pool[0], w // pool[1]
        if i < grad.shape[1] and j < grad.shape[2]:
            offset = first.dtype.type((h - i * pool[0]) * pool[1] + (w - j * pool[1]))
            for b in range(x.shape[1]):
                g = grad[n, i, j, b]  # read whatever the hit: a select, not a masked load
                g = g if first[n, i, j, b] == offset else zero
                sum_g[b] += g
                sum_gc[b] += g * (x[a, b] - mean[b])
        n, h, w = _next_position(n, h, w, shape)


def norm_pool_back_dx(grad, first, x, mean, start, shape, pool, scale, slope, shift, dx):
    """:func:`norm_back_dx` of the rows ``x - mean``, their gradient read as
    :func:`norm_pool_back_sums` reads it."""
    zero = dx.dtype.type(0)
    n, rest = divmod(start, shape[0] * shape[1])
    h, w = divmod(rest, shape[1])
    for a in range(x.shape[0]):
        i, j = h // pool[0], w // pool[1]
        if i < grad.shape[1] and j < grad.shape[2]:
            offset = first.dtype.type((h - i * pool[0]) * pool[1] + (w - j * pool[1]))
            for b in range(x.shape[1]):
                g = grad[n, i, j, b]
                g = g if first[n, i, j, b] == offset else zero
                dx[a, b] = g * scale[b] + ((x[a, b] - mean[b]) * slope[b] + shift[b])
        else:  # outside every window: no gradient
            for b in range(x.shape[1]):
                dx[a, b] = zero * scale[b] + ((x[a, b] - mean[b]) * slope[b] + shift[b])
        n, h, w = _next_position(n, h, w, shape)


def _next_position(n, h, w, shape):
    """The image position (sample, row, column) after ``(n, h, w)`` in images ``shape``."""
    w += 1
    if w == shape[1]:
        w, h = 0, h + 1
        if h == shape[0]:
            h, n = 0, n + 1
    return n, h, w


# -- convolution windows over two spatial axes (conv_parts, the wide layout) -----------
#
# Along a spatial axis, kernel tap o, pooling offset q (of ``size``) and pooled position
# j (of ``pooled``) read input position q*s + o*d + j*s*size (s: stride, d: dilation).
# A window matrix row is (sample, q0, q1, j0, j1), its columns (o0, o1, channel). The
# gather stays numpy's (whole channel vectors per copy, faster than a loop here).


def conv_scatter2d(dcols, dxp, size, pooled, window, strides, dilation):
    """Adjoint of the window gather: ``dxp`` (part, h, w, channels) zeroed, then the
    window gradients ``dcols`` added in tap by tap (row-major), as numpy's scatter adds."""
    channels = dxp.shape[3]
    flat = dxp.reshape(-1)
    for k in range(flat.shape[0]):
        flat[k] = 0
    for o0 in range(window[0]):
        for o1 in range(window[1]):
            col, row = (o0 * window[1] + o1) * channels, 0
            for n in range(dxp.shape[0]):
                for q0 in range(size[0]):
                    for q1 in range(size[1]):
                        for j0 in range(pooled[0]):
                            y = q0 * strides[0] + o0 * dilation[0] + j0 * strides[0] * size[0]
                            for j1 in range(pooled[1]):
                                x = q1 * strides[1] + o1 * dilation[1] + j1 * strides[1] * size[1]
                                for c in range(channels):
                                    dxp[n, y, x, c] += dcols[row, col + c]
                                row += 1


# -- optimizers ----------------------------------------------------------------------


def adam(w, g, m, v, beta_1, rest_1, beta_2, rest_2, epsilon, alpha):
    """Adam on flat arrays, in place: m = beta_1 m + rest_1 g; v = beta_2 v + rest_2 g^2;
    w -= alpha m / (sqrt(v) + epsilon) (``rest_k`` = 1 - beta_k, rounded as numpy's)."""
    for k in range(w.shape[0]):
        gk = g[k]
        mk = m[k] * beta_1 + gk * rest_1
        vk = v[k] * beta_2 + (gk * gk) * rest_2
        m[k] = mk
        v[k] = vk
        w[k] = w[k] - (mk * alpha) / (np.sqrt(vk) + epsilon)


_KERNELS = (  # what :func:`get` compiles, each under its own name
    exp32_in_place,
    tanh_exp32,
    tanh_back,
    lstm_gates,
    lstm_out_from_exp,
    lstm_back,
    norm_sums,
    norm_center,
    norm_squares,
    norm_scale,
    norm_back_sums,
    norm_back_dx,
    norm_relu_pool2d,
    norm_pool_back_sums,
    norm_pool_back_dx,
    conv_scatter2d,
    adam,
)

"""ONNX mappings of the recurrent blocks: SimpleRNN, LSTM, GRU and Bidirectional.

Each maps to ONNX's ``RNN`` / ``LSTM`` / ``GRU`` operator when its activations are ones
those operators take without parameters (:data:`OP_ACTIVATIONS`), which they compute as
Keras does: the LSTM's gates ``f`` = recurrent_activation, ``g`` = ``h`` = activation;
the GRU's ``f`` = recurrent_activation, ``g`` = activation, Keras's ``reset_after`` being
ONNX's ``linear_before_reset=1`` (the state's bias row is ONNX's ``Rb``). Weights move
from Keras's ``(features, k*units)`` to ONNX's ``(directions, k*units, features)``, the
LSTM's gates from Keras's order i, f, c, o to ONNX's i, o, f, c (a GRU's z, r, h is the
same in both). ``go_backwards`` is ``direction="reverse"``: ONNX gives the sequence in
input order and Keras in reading order, so a returned sequence is flipped back;
Bidirectional is ``direction="bidirectional"``, whose backward half already comes in input
order as Keras merges it. Initial states (inputs 1 and 2) are ``initial_h`` / ``initial_c``.

Any other activation (gelu, elu, hard_sigmoid, ...) runs as a ``Scan`` over the steps
whose body is one step in plain operators (the input's product with the kernel computed for
every step beforehand), for sequences of any length. Dropout does nothing in inference.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nodenet.engine.layer import Layer, Shape
from nodenet.export.onnx.builder import OnnxBuilder
from nodenet.export.onnx.registry import onnx_block

# Keras activation -> the name ONNX's recurrent operators give it (no alpha / beta needed)
OP_ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softsign": "Softsign"}
_GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
_OP = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}
_INT64_MIN = -(2**63)


# -- weights in ONNX's layouts ---------------------------------------------------------


def _to_onnx_gates(kind: str, a: np.ndarray) -> np.ndarray:
    """Columns of ``a`` (..., k*units) from Keras's gate order to ONNX's (LSTM only)."""
    if kind != "LSTM":
        return a
    i, f, c, o = np.split(a, 4, axis=-1)
    return np.concatenate([i, o, f, c], axis=-1)


def _onnx_arrays(kind: str, cfg: dict, w: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One direction's ``W`` (k*units, features), ``R`` (k*units, units) and ``B``
    (2*k*units,) (None without a bias) from its Keras weights."""
    kernel = _to_onnx_gates(kind, w["kernel"]).T
    recurrent = _to_onnx_gates(kind, w["recurrent_kernel"]).T
    bias = w.get("bias")
    if bias is None:
        return kernel, recurrent, None
    if kind == "GRU" and cfg["reset_after"]:
        both = np.concatenate([bias[0], bias[1]])  # row 0 meets the input, row 1 the state
    else:
        both = np.concatenate([_to_onnx_gates(kind, bias), np.zeros_like(bias)])
    return kernel, recurrent, both


def _strip(weights: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}


# -- small graph pieces ------------------------------------------------------------------


def _squeeze(b, x: str, axis: int) -> str:
    return b.op("Squeeze", [x, b.ints("axes", [axis])])


def _unsqueeze(b, x: str, axis: int) -> str:
    return b.op("Unsqueeze", [x, b.ints("axes", [axis])])


def _split(b, x: str, hint: str, count: int, axis: int) -> list[str]:
    """``x`` cut into ``count`` equal parts along ``axis`` (opset 18 wants the count said)."""
    count_attr = count if b.opset >= 18 else None
    return b.op("Split", [x], hint, outputs=count, axis=axis, num_outputs=count_attr)


def _flip_time(b, x: str) -> str:
    """``x`` (batch, steps, units) with its steps in the opposite order."""
    return b.op(
        "Slice",
        [x, b.ints("starts", [-1]), b.ints("ends", [_INT64_MIN]), b.ints("axes", [1]),
         b.ints("steps", [-1])],
        "flip",
    )  # fmt: skip


def _directions(b, y: str, count: int, axis: int) -> list[str]:
    """``y`` split into its ``count`` directions along ``axis``, that axis removed."""
    if count == 1:
        return [_squeeze(b, y, axis)]
    parts = _split(b, y, "direction", count, axis)
    return [_squeeze(b, p, axis) for p in parts]


# -- ONNX's recurrent operators ------------------------------------------------------------


def _operator(b, kind: str, cfg: dict, x: str, sets: list[dict], direction: str, initial):
    """Run ONNX's operator; per direction the sequence (batch, steps, units) in input order
    (None unless returned), the last h and (LSTM) the last c, each (batch, units)."""
    units = cfg["units"]
    arrays = [_onnx_arrays(kind, cfg, w) for w in sets]
    inputs = [
        b.op("Transpose", [x], "time_major", perm=[1, 0, 2]),
        b.init("W", np.stack([a[0] for a in arrays])),
        b.init("R", np.stack([a[1] for a in arrays])),
        "" if arrays[0][2] is None else b.init("B", np.stack([a[2] for a in arrays])),
        "",  # sequence_lens: every sequence runs its full length
    ]
    inputs += [_unsqueeze(b, s, 0) for s in initial]
    acts = [OP_ACTIVATIONS[cfg["activation"]]]
    if kind != "SimpleRNN":
        acts = [OP_ACTIVATIONS[cfg["recurrent_activation"]], *acts]
    if kind == "LSTM":
        acts.append(acts[-1])
    attrs = {"hidden_size": units, "direction": direction, "activations": acts * len(sets)}
    if kind == "GRU":
        attrs["linear_before_reset"] = int(bool(cfg["reset_after"]))
    outs = b.op(_OP[kind], inputs, kind.lower(), outputs=3 if kind == "LSTM" else 2, **attrs)
    count = len(sets)
    seqs = [None] * count
    if cfg["return_sequences"]:  # Y (steps, directions, batch, units)
        y = b.op("Transpose", [outs[0]], "batch_major", perm=[2, 0, 1, 3])
        seqs = _directions(b, y, count, 2)
    states = [_directions(b, s, count, 0) for s in outs[1:]]  # (directions, batch, units)
    return [(seqs[d], *[s[d] for s in states]) for d in range(count)]


# -- any activation: a Scan whose body is one step in plain operators ------------------


def _zeros(b, x: str, units: int) -> str:
    """Zeros (batch, units), the batch read from ``x``."""
    batch = b.op("Slice", [b.op("Shape", [x]), b.ints("s", [0]), b.ints("e", [1])])
    shape = b.op("Concat", [batch, b.ints("units", [units])], axis=0)
    zero = numpy_helper.from_array(np.zeros(1, np.float32))
    return b.op("ConstantOfShape", [shape], "zeros", value=zero)


def _step(b, kind: str, cfg: dict, xt: str, h: str, c: str | None, rk, rb) -> tuple:
    """One step from ``xt`` (batch, k*units), the input's share (bias included): the new
    (h, c) (c None but for an LSTM)."""
    act, ract = cfg["activation"], cfg.get("recurrent_activation")
    if kind == "SimpleRNN":
        return b.activation(b.op("Add", [xt, b.op("MatMul", [h, rk])]), act), None
    if kind == "GRU":
        return _gru_step(b, cfg, xt, h, rk, rb), None
    z = b.op("Add", [xt, b.op("MatMul", [h, rk])])
    zi, zf, zc, zo = _split(b, z, "gate", 4, -1)
    i, f, o = (b.activation(g, ract) for g in (zi, zf, zo))
    c = b.op("Add", [b.op("Mul", [f, c]), b.op("Mul", [i, b.activation(zc, act)])], "c")
    return b.op("Mul", [o, b.activation(c, act)], "h"), c


def _state(name: str, units: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, units])


def _scanned(b, kind, cfg, x, w, backwards: bool, initial) -> tuple:
    """One direction as a ``Scan`` over the steps whose body is one step in plain operators:
    (sequence in input order or None, h[, c]) as :func:`_operator` gives them."""
    units = cfg["units"]
    bias = w.get("bias")
    rb = None
    if bias is not None and kind == "GRU" and cfg["reset_after"]:
        bias, rb = bias[0], b.init("recurrent_bias", bias[1])
    proj = b.op("MatMul", [x, b.init("kernel", w["kernel"])], "project")
    if bias is not None:
        proj = b.op("Add", [proj, b.init("bias", bias)], "project")
    rk = w["recurrent_kernel"]
    if kind == "GRU" and not cfg["reset_after"]:
        rk = (b.init("rk_zr", rk[:, : 2 * units]), b.init("rk_h", rk[:, 2 * units :]))
    else:
        rk = b.init("recurrent_kernel", rk)
    states = list(initial) or [_zeros(b, x, units)] * (2 if kind == "LSTM" else 1)
    body = OnnxBuilder(b.opset)
    body.scope(b.fresh("step"))  # names of the body's own, unique in the whole model
    h_in = body.fresh("h_prev")
    c_in = body.fresh("c_prev") if kind == "LSTM" else None
    x_in = body.fresh("x_t")
    h, c = _step(body, kind, cfg, x_in, h_in, c_in, rk, rb)
    sequence = cfg["return_sequences"]
    out_names = [h] + ([c] if c else []) + ([body.op("Identity", [h], "h_t")] if sequence else [])
    graph = helper.make_graph(
        body.nodes,
        body.fresh("body"),
        [_state(n, units) for n in (h_in, c_in) if n] + [_state(x_in, _GATES[kind] * units)],
        [_state(n, units) for n in out_names],
        body.initializers,
    )
    for name in [*(i.name for i in graph.input), *(t.name for t in graph.initializer)]:
        b.reserve(name)
    for node in graph.node:
        for name in node.output:
            b.reserve(name)
    outs = b.op(
        "Scan",
        [*states, proj],
        "scan",
        outputs=len(out_names),
        body=graph,
        num_scan_inputs=1,
        scan_input_axes=[1],
        scan_input_directions=[int(backwards)],
        scan_output_axes=[1] if sequence else None,
        scan_output_directions=[int(backwards)] if sequence else None,
    )
    outs = outs if isinstance(outs, list) else [outs]
    seq = outs[-1] if sequence else None
    return (seq, *outs[: 2 if kind == "LSTM" else 1])


def _gru_step(b, cfg, xt: str, h: str, rk, rb) -> str:
    """One GRU step: z, r, the candidate, and h = z * h_prev + (1 - z) * candidate."""
    act, ract = cfg["activation"], cfg["recurrent_activation"]
    xz, xr, xh = _split(b, xt, "x_gate", 3, -1)
    if cfg["reset_after"]:
        hm = b.op("MatMul", [h, rk])
        if rb is not None:
            hm = b.op("Add", [hm, rb])
        hz, hr, hh = _split(b, hm, "h_gate", 3, -1)
        z = b.activation(b.op("Add", [xz, hz]), ract)
        r = b.activation(b.op("Add", [xr, hr]), ract)
        cand = b.activation(b.op("Add", [xh, b.op("Mul", [r, hh])]), act)
    else:
        rk_gates, rk_cand = rk
        hz, hr = _split(b, b.op("MatMul", [h, rk_gates]), "h_gate", 2, -1)
        z = b.activation(b.op("Add", [xz, hz]), ract)
        r = b.activation(b.op("Add", [xr, hr]), ract)
        cand = b.activation(b.op("Add", [xh, b.op("MatMul", [b.op("Mul", [r, h]), rk_cand])]), act)
    keep = b.op("Mul", [z, h])
    new = b.op("Mul", [b.op("Sub", [b.scalar("one", 1.0), z]), cand])
    return b.op("Add", [keep, new], "h")


# -- the blocks ------------------------------------------------------------------------------


def _run(b, kind: str, cfg: dict, x: str, sets: list[dict], backwards: bool, initial: list):
    """Per direction (forward, or backward for ``backwards``; both when ``sets`` has two):
    (sequence in input order or None, h[, c])."""
    acts = [cfg["activation"]] + ([cfg["recurrent_activation"]] if kind != "SimpleRNN" else [])
    if all(a in OP_ACTIVATIONS for a in acts):
        direction = "bidirectional" if len(sets) == 2 else ("reverse" if backwards else "forward")
        return _operator(b, kind, cfg, x, sets, direction, initial)
    if len(sets) == 2:
        return [
            _scanned(b, kind, cfg, x, w, d, []) for w, d in zip(sets, (False, True), strict=True)
        ]
    return [_scanned(b, kind, cfg, x, sets[0], backwards, initial)]


@onnx_block("SimpleRNN", "LSTM", "GRU")
def recurrent(b, layer: Layer, inputs: list[str], input_shapes: list[Shape], weights: dict):
    """One direction; the outputs as Keras returns them: the sequence (reading order) or the
    last h, then with ``return_state`` the last states."""
    cfg = layer.config
    x, *initial = inputs
    backwards = bool(cfg["go_backwards"])
    ((seq, *states),) = _run(b, layer.TYPE, cfg, x, [weights], backwards, initial)
    out = states[0] if seq is None else (_flip_time(b, seq) if backwards else seq)
    return [out, *states] if cfg["return_state"] else [out]


_MERGES = {"concat": "Concat", "sum": "Add", "mul": "Mul", "ave": "Add"}


@onnx_block("Bidirectional")
def bidirectional(b, layer: Layer, inputs: list[str], input_shapes: list[Shape], weights: dict):
    """Both directions in one operator (or unrolled twice), merged as Keras merges them."""
    inner = layer.inner
    cfg = inner.config
    sets = [_strip(weights, prefix) for prefix, _ in layer.DIRECTIONS]
    both = _run(b, inner.TYPE, cfg, inputs[0], sets, False, [])
    fwd, bwd = (seq if seq is not None else h for seq, h, *_ in both)
    mode = layer.config["merge_mode"]
    if mode == "concat":
        return [b.op("Concat", [fwd, bwd], "merge", axis=-1)]
    merged = b.op(_MERGES[mode], [fwd, bwd], "merge")
    return [b.mul(merged, 0.5) if mode == "ave" else merged]

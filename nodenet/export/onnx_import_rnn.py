"""ONNX LSTM, GRU and RNN operators as nodenet's LSTM, GRU and SimpleRNN blocks.

ONNX keeps gates in the order i, o, f, c (LSTM) and z, r, h (GRU) with weights ``(gates *
hidden, input)`` and separate input and recurrent biases; Keras keeps i, f, c, o and z, r, h
with kernels ``(input, gates * hidden)``. A GRU with ``linear_before_reset=1`` (PyTorch's) is
Keras's ``reset_after=True``, its two biases kept apart. The sequence ``Y`` is
``(time, directions, batch, hidden)``: a view of the block's sequence output with the time
axis first and an inserted axis; ``Y_h`` and ``Y_c`` are the final states.

A bidirectional layer whose final states are split by direction and concatenated
(forward, backward) along the features is a Bidirectional block (``merge_mode="concat"``,
weights ``forward/...`` and ``backward/...``), followed through
:mod:`nodenet.export.onnx_import_shapes`.
"""

from __future__ import annotations

import numpy as np

from nodenet.export.onnx_import import Importer, Refused, View, attrs

_LSTM_ORDER = (0, 2, 3, 1)  # Keras's i, f, c, o from ONNX's i, o, f, c
_DEFAULTS = {
    "LSTM": ["sigmoid", "tanh", "tanh"],
    "GRU": ["sigmoid", "tanh"],
    "RNN": ["tanh"],
}
_KINDS = {"LSTM": ("LSTM", _LSTM_ORDER), "GRU": ("GRU", None), "RNN": ("SimpleRNN", None)}


def _gates(array: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    blocks = np.split(array, len(order), axis=0)
    return np.concatenate([blocks[k] for k in order], axis=0)


def _text(value) -> str:
    return (value.decode() if isinstance(value, bytes) else str(value)).lower()


def _checked(imp: Importer, node, directions: int) -> tuple[dict, int, View]:
    a = attrs(node)
    if a.get("clip") is not None or a.get("input_forget", 0):
        raise Refused("clip and input_forget are not supported")
    given = [_text(x) for x in a.get("activations", [])]
    defaults = _DEFAULTS[node.op_type]
    allowed = (defaults * directions, ["relu"] * directions if node.op_type == "RNN" else None)
    if given and given not in allowed:
        raise Refused(f"activations {given} are not supported")
    if len(node.input) > 4 and node.input[4]:
        raise Refused("sequence_lens is not supported")
    if node.op_type == "LSTM" and len(node.input) > 7 and node.input[7]:
        raise Refused("peephole weights are not supported")
    for name in node.input[5:7]:
        if name and imp.symbolic.get(name) == "zeros":
            continue
        if name and np.any(np.asarray(imp.const(name, "initial state"))):
            raise Refused("a non-zero initial state is not supported")
    view = imp.view(node.input[0])
    wanted = (0, 1, 2) if a.get("layout", 0) else (1, 0, 2)
    view = imp.arrange(view, wanted, node.name or node.output[0])
    return a, int(a["hidden_size"]), view


def _weights(imp: Importer, node, a: dict, kind: str, order, direction: int) -> dict:
    """One direction's weights in Keras's layouts."""
    hidden = int(a["hidden_size"])
    w = np.asarray(imp.const(node.input[1], "W"), np.float32)[direction]
    r = np.asarray(imp.const(node.input[2], "R"), np.float32)[direction]
    gates = w.shape[0] // hidden
    if len(node.input) > 3 and node.input[3]:
        b = np.asarray(imp.const(node.input[3], "B"), np.float32)[direction]
    else:
        b = np.zeros(2 * gates * hidden, np.float32)
    wb, rb = b[: gates * hidden], b[gates * hidden :]
    if order is not None:
        w, r, wb, rb = (_gates(x, order) for x in (w, r, wb, rb))
    weights = {"kernel": w.T, "recurrent_kernel": r.T}
    reset_after = kind == "GRU" and a.get("linear_before_reset", 0)
    weights["bias"] = np.stack([wb, rb]) if reset_after else wb + rb
    return weights


def _params(a: dict, kind: str) -> dict:
    params: dict = {"units": int(a["hidden_size"])}
    if kind == "GRU" and not a.get("linear_before_reset", 0):
        params["reset_after"] = False
    if kind == "SimpleRNN" and [_text(x) for x in a.get("activations", [])][:1] == ["relu"]:
        params["activation"] = "relu"
    return params


def recurrent(imp: Importer, node) -> list:
    """An ONNX LSTM, GRU or RNN operator as the block of the same kind."""
    kind, order = _KINDS[node.op_type]
    a = attrs(node)
    direction = _text(a.get("direction", b"forward"))
    if direction == "bidirectional":
        return _bidirectional(imp, node, a, kind, order)
    if direction != "forward":
        raise Refused(f"direction={direction} is not supported")
    a, _, view = _checked(imp, node, 1)
    read = [bool(n) and imp.users.get(n, 0) > 0 for n in node.output] + [False] * 3
    sequence, state = read[0], read[2] or (read[0] and read[1])
    params = _params(a, kind)
    if sequence:
        params["return_sequences"] = True
    if state:
        params["return_state"] = True
    weights = _weights(imp, node, a, kind, order, 0)
    node_id = imp.block(node, kind, params, [view], weights)
    batch_major = bool(a.get("layout", 0))
    y = (0, 1, None, 2) if batch_major else (1, None, 0, 2)
    final = (0, None, 1) if batch_major else (None, 0, 1)
    views = [View(node_id, 0, y), View(node_id, 1 if state else 0, final), View(node_id, 2, final)]
    return views[: len(node.output)]


def _bidirectional(imp: Importer, node, a: dict, kind: str, order) -> list:
    from nodenet.export.onnx_import_shapes import Directions

    read = [bool(n) and imp.users.get(n, 0) > 0 for n in node.output] + [False] * 3
    if read[0] or read[2] or a.get("layout", 0):
        raise Refused("only a bidirectional layer's final states, split and concatenated")
    a, _, view = _checked(imp, node, 2)
    weights = {
        f"{name}/{key}": array
        for k, name in enumerate(("forward", "backward"))
        for key, array in _weights(imp, node, a, kind, order, k).items()
    }
    params = {"layer": {"type": kind, "params": _params(a, kind)}}
    node_id = imp.block(node, "Bidirectional", params, [view], weights)
    return [None, Directions(node_id), None][: len(node.output)]


lstm = gru = rnn = recurrent

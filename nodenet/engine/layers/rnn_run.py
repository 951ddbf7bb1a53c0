"""Running a recurrent cell over a batch-major sequence, forward and back.

The recurrent blocks (:mod:`nodenet.engine.layers.recurrent`) and their
Bidirectional wrapper call these; the cells themselves are in
:mod:`nodenet.engine.layers.rnn_cells`. The sequence is read time-major, from its
end with ``backwards``; a block with ``return_state`` also returns the states after
the last step, and initial states may replace the zeros the cell starts from.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.layer import Context
from nodenet.engine.layers.rnn_ops import Cell


def run_cell(
    cell: Cell,
    w: dict,
    x: np.ndarray,
    c: dict,
    ctx: Context,
    backwards: bool,
    states: bool = False,
    initial: list | None = None,
):
    """Output of ``cell`` over x (batch, steps, features), and a cache.

    The output is (batch, units), or (batch, steps, units) in reading order
    with ``return_sequences``; with ``states``, the list [output, *last states].
    ``initial``: the states before the first step read (zeros if None).
    """
    xs = x.transpose(1, 0, 2)
    xs = np.ascontiguousarray(xs[::-1] if backwards else xs)
    masks = cell.draw_masks(c, ctx, x.shape[0], x.shape[2], x.dtype)
    H, cache = cell.run(w, xs, c, masks, initial)
    y = np.ascontiguousarray(H[1:].transpose(1, 0, 2)) if c["return_sequences"] else H[-1].copy()
    return ([y, *cell.final_states(H, cache)] if states else y), cache


def run_cell_back(
    cell: Cell,
    w: dict,
    cache,
    c: dict,
    grad,
    backwards: bool,
    initial: bool = False,
    need_dx: bool = True,
):
    """dL/dx (batch, steps, features), the weight gradients and, with ``initial`` (the
    block was given initial states), theirs (else []), given dL/d(output), or the list
    [dL/d(output), dL/dh (, dL/dc)] of a block that returns its states. dL/dx is None
    without ``need_dx`` (a block fed by data)."""
    grad, *dstates = grad if isinstance(grad, list) else [grad]
    dh_last = dstates[0] if dstates else None
    dc_last = dstates[1] if len(dstates) > 1 else None
    if c["return_sequences"]:
        dhs = grad.transpose(1, 0, 2)
    else:
        dhs, dh_last = None, grad if dh_last is None else grad + dh_last
    dxs, grads, dstates = cell.run_back(w, cache, c, dhs, dh_last, dc_last, initial, need_dx)
    if dxs is None:
        return None, grads, dstates
    dx = dxs.transpose(1, 0, 2)
    return np.ascontiguousarray(dx[:, ::-1] if backwards else dx), grads, dstates

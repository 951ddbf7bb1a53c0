"""Exporters of the recurrent blocks and of the Bidirectional wrapper.

GRU (``reset_after``), LSTM and SimpleRNN with their default activations and no
recurrent dropout run on torch's own modules (GRU gates reordered z, r, h ->
r, z, n; LSTM and SimpleRNN carry Keras's single bias as the weights of a
constant input feature, since torch's have two biases); anything else runs the
generated ``Recurrent`` module, a step loop with Keras's weights, gate order and
dropout masks (see :mod:`nodenet.export.torch_helpers`). With ``return_state``
the block has several outputs and runs the step loop too, which returns
(output, h) or (output, h, c) as Keras does.

Bidirectional asks the exporter of the layer it wraps for one direction's
module, input and weights, whatever that layer is: torch's bidirectional module
when the layer runs natively and draws no dropout masks (each Keras direction
draws its own), else two generated ``Recurrent`` modules.
"""

from __future__ import annotations

import numpy as np

from nodenet.export import torch_helpers  # noqa: F401  (registers their torch helpers)
from nodenet.export._code import py_arguments, py_str, py_value
from nodenet.export.blocks.base import Arrays, BlockExporter, exporter, exports
from nodenet.export.snippets import Source

_LOOP_WEIGHTS = ("kernel", "recurrent_kernel", "bias")
_LOOP_DEFAULTS = {  # the generated Recurrent module's defaults
    "activation": "tanh",
    "recurrent_activation": "sigmoid",
    "use_bias": True,
    "dropout": 0.0,
    "recurrent_dropout": 0.0,
    "return_sequences": False,
    "go_backwards": False,
    "reset_after": True,
    "return_state": False,
}


def _zrh_to_rzn(a: np.ndarray) -> np.ndarray:
    """GRU gate blocks on the last axis from Keras's z, r, h to torch's r, z, n."""
    z, r, h = np.split(a, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def _rzn_to_zrh(a: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_zrh_to_rzn`."""
    r, z, h = np.split(a, 3, axis=-1)
    return np.concatenate([z, r, h], axis=-1)


@exports("SimpleRNN", "LSTM", "GRU")
class RecurrentExporter(BlockExporter):
    """One recurrent layer; its ``direction_*`` methods serve the wrappers too."""

    KERAS_REQUIRED = ("units",)

    @property
    def kind(self) -> str:
        return self.layer.TYPE

    def output_suffixes(self, count):
        """With return_state: the output, then h (and c for an LSTM), as Keras returns them."""
        return ["", "_h", "_c"][:count]

    def keras_call(self, tensors):
        """The sequence, then its initial states: ``x, initial_state=[h, c]``."""
        if len(tensors) == 1:
            return tensors[0]
        return f"{tensors[0]}, initial_state=[{', '.join(tensors[1:])}]"

    def native(self, input_shapes: list | None = None) -> bool:
        """Whether torch's own nn.RNN / nn.LSTM / nn.GRU computes this layer exactly (the
        step loop returns the states and starts from given ones)."""
        c = self.config
        if c["recurrent_dropout"] > 0 or c.get("return_state"):
            return False
        if input_shapes is not None and len(input_shapes) > 1:  # initial states
            return False
        if self.kind == "SimpleRNN":
            return c["activation"] in ("tanh", "relu")
        if self.kind == "GRU" and not c["reset_after"]:
            return False
        return c["activation"] == "tanh" and c["recurrent_activation"] == "sigmoid"

    def ones_column(self) -> bool:
        """LSTM and SimpleRNN carry their one bias as the weights of a constant input feature."""
        return self.kind != "GRU" and self.config["use_bias"]

    # -- one direction, as a module of its own or inside a wrapper ---------------------------

    def loop_module(self, n_in: int, backwards: bool) -> str:
        """The generated ``Recurrent`` module: its arguments that differ from its defaults."""
        values = {**self.config, "go_backwards": backwards}
        options = {k: values[k] for k, v in _LOOP_DEFAULTS.items() if values.get(k, v) != v}
        if self.kind == "SimpleRNN":
            options.pop("recurrent_activation", None)
        if self.kind != "GRU":
            options.pop("reset_after", None)
        return f"Recurrent({py_arguments([self.kind, n_in, self.config['units']], options)})"

    def native_module(self, n_in: int, bidirectional: bool) -> str:
        c = self.config
        size = f"{n_in} + 1" if self.ones_column() else str(n_in)
        options = {}
        if self.kind == "SimpleRNN" and c["activation"] == "relu":
            options["nonlinearity"] = "relu"
        if self.ones_column() or not c["use_bias"]:
            options["bias"] = False
        options["batch_first"] = True
        if bidirectional:
            options["bidirectional"] = True
        torch_class = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}[self.kind]
        return f"nn.{torch_class}({py_arguments([Source(size), c['units']], options)})"

    def native_input(self, x: str, backwards: bool) -> str:
        if backwards:
            x = f"{x}.flip(1)"
        if self.config["dropout"] > 0:  # one mask per batch for every step and gate, as Keras
            x = f"time_dropout({x}, {py_value(self.config['dropout'])}, self.training)"
        return f"with_ones({x})" if self.ones_column() else x

    def native_state(self, weights: Arrays, suffix: str) -> Arrays:
        """torch's parameters of one direction from Keras's kernel, recurrent_kernel, bias."""
        kernel, recurrent = weights["kernel"], weights["recurrent_kernel"]
        bias = weights.get("bias")
        if self.kind == "GRU":
            state = {
                f"weight_ih_l0{suffix}": _zrh_to_rzn(kernel).T,
                f"weight_hh_l0{suffix}": _zrh_to_rzn(recurrent).T,
            }
            if bias is not None:
                state[f"bias_ih_l0{suffix}"] = _zrh_to_rzn(bias[0])
                state[f"bias_hh_l0{suffix}"] = _zrh_to_rzn(bias[1])
            return state
        weight_ih = kernel.T if bias is None else np.concatenate([kernel.T, bias[:, None]], axis=1)
        return {f"weight_ih_l0{suffix}": weight_ih, f"weight_hh_l0{suffix}": recurrent.T}

    def native_weights(self, state: Arrays, suffix: str) -> Arrays:
        """Keras's kernel, recurrent_kernel and bias of one direction: the inverse of
        :meth:`native_state`."""
        weight_ih, weight_hh = state[f"weight_ih_l0{suffix}"], state[f"weight_hh_l0{suffix}"]
        if self.kind == "GRU":
            weights = {
                "kernel": _rzn_to_zrh(weight_ih.T),
                "recurrent_kernel": _rzn_to_zrh(weight_hh.T),
            }
            if f"bias_ih_l0{suffix}" in state:
                rows = (state[f"bias_ih_l0{suffix}"], state[f"bias_hh_l0{suffix}"])
                weights["bias"] = np.stack([_rzn_to_zrh(row) for row in rows])
            return weights
        if not self.ones_column():
            return {"kernel": weight_ih.T, "recurrent_kernel": weight_hh.T}
        return {
            "kernel": weight_ih[:, :-1].T,
            "recurrent_kernel": weight_hh.T,
            "bias": weight_ih[:, -1],
        }

    def native_refs(self, module: str, suffix: str) -> dict[str, list[str]]:
        ih, hh = f"{module}.weight_ih_l0{suffix}", f"{module}.weight_hh_l0{suffix}"
        if self.kind == "GRU":
            biases = [f"{module}.bias_ih_l0{suffix}", f"{module}.bias_hh_l0{suffix}"]
            return {"kernel": [ih], "recurrent_kernel": [hh], "bias": biases}
        if self.ones_column():
            return {"kernel": [f"{ih}[:, :-1]"], "recurrent_kernel": [hh], "bias": [f"{ih}[:, -1]"]}
        return {"kernel": [ih], "recurrent_kernel": [hh]}

    # -- the block on its own ---------------------------------------------------------------

    def torch_module(self, input_shapes):
        n_in = input_shapes[0][-1]
        if self.native(input_shapes):
            return self.native_module(n_in, bidirectional=False)
        return self.loop_module(n_in, self.config["go_backwards"])

    def torch_forward(self, module, args, input_shapes):
        if not self.native(input_shapes):
            return f"{module}({', '.join(args)})"  # the sequence, then any initial states
        out = f"{module}({self.native_input(args[0], self.config['go_backwards'])})[0]"
        return out if self.config["return_sequences"] else f"{out}[:, -1]"

    def torch_state(self, weights, input_shapes):
        return self.native_state(weights, "") if self.native(input_shapes) else dict(weights)

    def keras_weights(self, state, input_shapes):
        if self.native(input_shapes):
            return self.native_weights(state, "")
        return {k: state[k] for k in _LOOP_WEIGHTS if k in state}

    def torch_weights(self, module, input_shapes):
        if self.native(input_shapes):
            return self.native_refs(module, "")
        return {name: [f"{module}.{name}"] for name in _LOOP_WEIGHTS}


# Keras's weight prefix, torch's suffix in a bidirectional module, the generated wrapper's
# attribute
_DIRECTIONS = (("forward/", "", "forward_layer"), ("backward/", "_reverse", "backward_layer"))


def _under(arrays: Arrays, prefix: str) -> Arrays:
    """The arrays whose key starts with ``prefix``, keyed without it."""
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


@exports("Bidirectional")
class BidirectionalExporter(BlockExporter):
    """``layers.Bidirectional(<the wrapped layer>)``; in torch, see the module docstring."""

    def __init__(self, layer):
        super().__init__(layer)
        self.inner: RecurrentExporter = exporter(layer.inner)

    def _native(self) -> bool:
        return self.inner.native() and self.inner.config["dropout"] == 0

    def keras_layer(self):
        inner_class, args = self.inner.keras_layer()
        required = [args.pop(k) for k in self.inner.KERAS_REQUIRED if k in args]
        wrapped = {"layer": Source(f"layers.{inner_class}({py_arguments(required, args)})")}
        if self.config["merge_mode"] != "concat":
            wrapped["merge_mode"] = self.config["merge_mode"]
        return "Bidirectional", wrapped

    def torch_module(self, input_shapes):
        n_in = input_shapes[0][-1]
        if self._native():
            return self.inner.native_module(n_in, bidirectional=True)
        forward = self.inner.loop_module(n_in, backwards=False)
        backward = self.inner.loop_module(n_in, backwards=True)
        mode = self.config["merge_mode"]
        merge = "" if mode == "concat" else f", merge_mode={py_str(mode)}"
        return f"Bidirectional({forward}, {backward}{merge})"

    def torch_forward(self, module, args, input_shapes):
        if not self._native():
            return f"{module}({args[0]})"
        out = f"{module}({self.inner.native_input(args[0], backwards=False)})[0]"
        sequences, mode = self.inner.config["return_sequences"], self.config["merge_mode"]
        if mode == "concat" and sequences:
            return out  # torch aligns the backward direction with the input, as Keras does
        return f"merge_directions({out}, {py_str(mode)}, last_step={not sequences})"

    def torch_state(self, weights, input_shapes):
        state = {}
        for prefix, suffix, attribute in _DIRECTIONS:
            own = _under(weights, prefix)
            if self._native():
                state.update(self.inner.native_state(own, suffix))
            else:
                state.update({f"{attribute}.{k}": v for k, v in own.items()})
        return state

    def keras_weights(self, state, input_shapes):
        weights = {}
        for prefix, suffix, attribute in _DIRECTIONS:
            if self._native():
                own = self.inner.native_weights(state, suffix)
            else:
                own = _under(state, f"{attribute}.")
            weights.update({prefix + k: v for k, v in own.items()})
        return weights

    def torch_weights(self, module, input_shapes):
        refs = {}
        for prefix, suffix, attribute in _DIRECTIONS:
            if self._native():
                own = self.inner.native_refs(module, suffix)
            else:
                own = {name: [f"{module}.{attribute}.{name}"] for name in _LOOP_WEIGHTS}
            refs.update({prefix + name: targets for name, targets in own.items()})
        return refs

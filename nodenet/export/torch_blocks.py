"""Export hooks of the convolution, pooling and recurrent block families.

Every block carries its Keras 3 and PyTorch snippets as the export hooks of
:class:`nodenet.engine.layer.Layer`, and a new block defines them in its own file.
The hooks of these three families are long (padding arithmetic, channel order,
gate reordering), so they live here, one function per hook, beside the numerics
files they translate (``conv.py``, ``pooling.py``, ``recurrent.py``), which stay
readable at under 500 lines. :func:`register` attaches them to the classes at
import time; a hook a class defines itself is never replaced.

Recurrent blocks: GRU (``reset_after``), LSTM and SimpleRNN with their default
activations and no recurrent dropout run on torch's own modules (GRU gates
reordered z, r, h -> r, z, n; LSTM and SimpleRNN carry Keras's single bias as
the weights of a constant input feature, since torch's have two biases);
anything else runs the generated ``Recurrent`` module, a step loop with
Keras's weights, gate order and dropout masks (see :mod:`.torch_helpers`).
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.catalog import LAYERS, Layer
from nodenet.engine.snippets import (
    Source,
    channels_first,
    channels_last,
    one_or_tuple,
    same_padding,
    torch_activation,
    torch_pad,
)
from nodenet.export import torch_helpers  # noqa: F401  (registers their torch helpers)
from nodenet.export._code import py_arguments, py_str, py_value

# -- convolutions -----------------------------------------------------------------------


def _conv_pads(layer, spatial) -> list[tuple[int, int]] | None:
    """Keras's (before, after) zero padding per spatial axis; None when it needs the sizes
    and they are unknown."""
    kernel, strides, dilation = layer.sizes()
    padding = layer.config["padding"]
    if padding == "valid":
        return [(0, 0)] * layer.RANK
    if padding == "causal":
        return [((kernel[0] - 1) * dilation[0], 0)]
    if None in spatial and max(strides) > 1:
        return None
    axes = zip(spatial, kernel, strides, dilation, strict=True)
    return [same_padding(n or 1, k, s, d) for n, k, s, d in axes]


def _symmetric(pads) -> bool:
    return pads is not None and all(before == after for before, after in pads)


def conv_torch_module(self, input_shapes):
    (shape,) = input_shapes
    kernel, strides, dilation = self.sizes()
    options = {}
    if max(strides) > 1:
        options["stride"] = one_or_tuple(strides)
    pads = _conv_pads(self, shape[:-1])
    if _symmetric(pads) and any(before for before, _ in pads):
        options["padding"] = one_or_tuple([before for before, _ in pads])
    if max(dilation) > 1:
        options["dilation"] = one_or_tuple(dilation)
    if not self.config["use_bias"]:
        options["bias"] = False
    args = [shape[-1], self.config["filters"], one_or_tuple(kernel)]
    return f"nn.Conv{self.RANK}d({py_arguments(args, options)})"


def conv_torch_forward(self, module, args, input_shapes):
    x = channels_first(args[0])
    pads = _conv_pads(self, input_shapes[0][:-1])
    if pads is None:
        _, strides, dilation = self.sizes()
        x = f"pad_same({x}, {py_value(self.sizes()[0])}, {py_value(strides)}, {py_value(dilation)})"
    elif not _symmetric(pads):
        x = f"F.pad({x}, {torch_pad(pads)})"
    return torch_activation(self.config["activation"], channels_last(f"{module}({x})"))


def conv_torch_state(self, weights, input_shapes):
    kernel = weights["kernel"]  # (*window, in, out) -> torch's (out, in, *window)
    state = {"weight": np.moveaxis(kernel, (-1, -2), (0, 1))}
    if "bias" in weights:
        state["bias"] = weights["bias"]
    return state


def conv_torch_weights(self, module, input_shapes):
    return {"kernel": [f"{module}.weight"], "bias": [f"{module}.bias"]}


def _transpose_geometry(layer) -> tuple[list[int], list[int], list[int]]:
    """torch's padding and output_padding per axis, and what to cut off the end after.

    Keras keeps the full transposed output minus (before, after) per axis;
    torch cuts ``padding`` at both ends and adds ``output_padding`` at the end.
    """
    paddings, extras, cuts = [], [], []
    for before, after in layer.crops():  # before >= 0; after < 0 adds positions
        paddings.append(before)
        extras.append(max(before - after, 0))
        cuts.append(max(after - before, 0))
    return paddings, extras, cuts


def conv_transpose_torch_module(self, input_shapes):
    (shape,) = input_shapes
    kernel, strides, dilation = self.sizes()
    paddings, extras, _ = _transpose_geometry(self)
    options = {}
    if max(strides) > 1:
        options["stride"] = one_or_tuple(strides)
    if any(paddings):
        options["padding"] = one_or_tuple(paddings)
    if any(extras):
        options["output_padding"] = one_or_tuple(extras)
    if not self.config["use_bias"]:
        options["bias"] = False
    if max(dilation) > 1:
        options["dilation"] = one_or_tuple(dilation)
    args = [shape[-1], self.config["filters"], one_or_tuple(kernel)]
    return f"nn.ConvTranspose2d({py_arguments(args, options)})"


def conv_transpose_torch_forward(self, module, args, input_shapes):
    out = f"{module}({channels_first(args[0])})"
    _, _, cuts = _transpose_geometry(self)
    if any(cuts):
        rows, cols = (f":-{c}" if c else ":" for c in cuts)
        out = f"{out}[:, :, {rows}, {cols}]"
    return torch_activation(self.config["activation"], channels_last(out))


def conv_transpose_torch_state(self, weights, input_shapes):
    state = {"weight": weights["kernel"].transpose(3, 2, 0, 1)}  # -> (in, out, kh, kw)
    if "bias" in weights:
        state["bias"] = weights["bias"]
    return state


def upsampling1d_torch_forward(self, module, args, input_shapes):
    return f"{args[0]}.repeat_interleave({py_value(self.config['size'])}, dim=1)"


def upsampling2d_torch_forward(self, module, args, input_shapes):
    rows, cols = self.config["size"]
    if self.config["interpolation"] == "nearest":
        return f"{args[0]}.repeat_interleave({rows}, dim=1).repeat_interleave({cols}, dim=2)"
    scale = py_value([rows, cols])
    scaled = f'F.interpolate({channels_first(args[0])}, scale_factor={scale}, mode="bilinear")'
    return channels_last(scaled)  # half-pixel centres, edges clamped: Keras's bilinear


# -- pooling ------------------------------------------------------------------------------


def _per_axis(value, rank: int) -> tuple[int, ...] | None:
    """A size setting (an int, a list, or None) as one int per spatial axis."""
    if value is None:
        return None
    return tuple(value) if isinstance(value, list) else (value,) * rank


def pooling_torch_forward(self, module, args, input_shapes):
    """Keras's pooling on the torch backend: symmetric "same" padding is left to the pool
    (averages ignore it); padding with an odd side anywhere replicates the edge values
    first, and averages then count them."""
    spatial = input_shapes[0][:-1]
    pool, strides = (_per_axis(self.config[k], self.RANK) for k in ("pool_size", "strides"))
    strides = strides or pool
    x = channels_first(args[0])
    if self.config["padding"] == "same" and None in spatial:
        mode = '"max"' if self.MODE == "max" else '"average"'
        return channels_last(f"pool_same({x}, {mode}, {py_value(pool)}, {py_value(strides)})")
    kind = "max" if self.MODE == "max" else "avg"
    options = {} if strides == pool else {"stride": one_or_tuple(strides)}
    if self.config["padding"] == "same":
        pads = [same_padding(n, p, s) for n, p, s in zip(spatial, pool, strides, strict=True)]
        if _symmetric(pads):
            if any(before for before, _ in pads):
                options["padding"] = one_or_tuple([before for before, _ in pads])
                if kind == "avg":
                    options["count_include_pad"] = False
        else:
            x = f'F.pad({x}, {torch_pad(pads)}, mode="replicate")'
    call = f"F.{kind}_pool{self.RANK}d({py_arguments([Source(x), one_or_tuple(pool)], options)})"
    return channels_last(call)


def global_pooling_torch_forward(self, module, args, input_shapes):
    dims = "1" if self.RANK == 1 else "(1, 2)"
    keep = ", keepdim=True" if self.config["keepdims"] else ""
    reduce = "amax" if self.MODE == "max" else "mean"
    return f"{args[0]}.{reduce}(dim={dims}{keep})"


# -- recurrent ------------------------------------------------------------------------------


def _native(kind: str, c: dict) -> bool:
    """Whether torch's own nn.RNN / nn.LSTM / nn.GRU computes this layer exactly."""
    if c["recurrent_dropout"] > 0:
        return False
    if kind == "SimpleRNN":
        return c["activation"] in ("tanh", "relu")
    if kind == "GRU" and not c["reset_after"]:
        return False
    return c["activation"] == "tanh" and c["recurrent_activation"] == "sigmoid"


def _ones_column(kind: str, c: dict) -> bool:
    """LSTM and SimpleRNN carry their one bias as the weights of a constant input feature."""
    return kind != "GRU" and c["use_bias"]


def _recurrent_options(kind: str, c: dict, n_in: int, backwards: bool) -> str:
    """Arguments of the generated ``Recurrent`` module: what differs from its defaults."""
    defaults = {
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "return_sequences": False,
        "go_backwards": False,
        "reset_after": True,
    }
    values = {**c, "go_backwards": backwards}
    options = {k: values[k] for k, v in defaults.items() if k in values and values[k] != v}
    if kind == "SimpleRNN":
        options.pop("recurrent_activation", None)
    if kind != "GRU":
        options.pop("reset_after", None)
    return f"Recurrent({py_arguments([kind, n_in, c['units']], options)})"


def _native_module(kind: str, c: dict, n_in: int, bidirectional: bool) -> str:
    size = f"{n_in} + 1" if _ones_column(kind, c) else str(n_in)
    options = {}
    if kind == "SimpleRNN" and c["activation"] == "relu":
        options["nonlinearity"] = "relu"
    if _ones_column(kind, c) or not c["use_bias"]:
        options["bias"] = False
    options["batch_first"] = True
    if bidirectional:
        options["bidirectional"] = True
    torch_class = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}[kind]
    return f"nn.{torch_class}({py_arguments([Source(size), c['units']], options)})"


def _native_input(kind: str, c: dict, x: str, backwards: bool) -> str:
    if backwards:
        x = f"{x}.flip(1)"
    if c["dropout"] > 0:  # one mask per batch for every step and gate, as Keras draws it
        x = f"time_dropout({x}, {py_value(c['dropout'])}, self.training)"
    return f"with_ones({x})" if _ones_column(kind, c) else x


def recurrent_torch_module(self, input_shapes):
    n_in = input_shapes[0][-1]
    if _native(self.TYPE, self.config):
        return _native_module(self.TYPE, self.config, n_in, bidirectional=False)
    return _recurrent_options(self.TYPE, self.config, n_in, self.config["go_backwards"])


def recurrent_torch_forward(self, module, args, input_shapes):
    c = self.config
    if not _native(self.TYPE, c):
        return f"{module}({args[0]})"
    out = f"{module}({_native_input(self.TYPE, c, args[0], c['go_backwards'])})[0]"
    return out if c["return_sequences"] else f"{out}[:, -1]"


def _zrh_to_rzn(a: np.ndarray) -> np.ndarray:
    """GRU gate blocks on the last axis from Keras's z, r, h to torch's r, z, n."""
    z, r, h = np.split(a, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def _native_state(kind: str, weights: dict, suffix: str) -> dict[str, np.ndarray]:
    """torch's parameters of one direction from Keras's kernel, recurrent_kernel, bias."""
    kernel, recurrent, bias = weights["kernel"], weights["recurrent_kernel"], weights.get("bias")
    if kind == "GRU":
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


def _native_refs(kind: str, c: dict, module: str, suffix: str) -> dict[str, list[str]]:
    ih, hh = f"{module}.weight_ih_l0{suffix}", f"{module}.weight_hh_l0{suffix}"
    if kind == "GRU":
        biases = [f"{module}.bias_ih_l0{suffix}", f"{module}.bias_hh_l0{suffix}"]
        return {"kernel": [ih], "recurrent_kernel": [hh], "bias": biases}
    if _ones_column(kind, c):
        return {"kernel": [f"{ih}[:, :-1]"], "recurrent_kernel": [hh], "bias": [f"{ih}[:, -1]"]}
    return {"kernel": [ih], "recurrent_kernel": [hh]}


def _loop_refs(module: str) -> dict[str, list[str]]:
    return {name: [f"{module}.{name}"] for name in ("kernel", "recurrent_kernel", "bias")}


def recurrent_torch_state(self, weights, input_shapes):
    if _native(self.TYPE, self.config):
        return _native_state(self.TYPE, weights, "")
    return dict(weights)


def recurrent_torch_weights(self, module, input_shapes):
    if _native(self.TYPE, self.config):
        return _native_refs(self.TYPE, self.config, module, "")
    return _loop_refs(module)


# Bidirectional: torch's bidirectional module when the layer is native and draws no dropout
# masks (each Keras direction draws its own); else two generated Recurrent modules.

_DIRECTIONS = (("forward/", "", "forward_layer"), ("backward/", "_reverse", "backward_layer"))


def _bidirectional_native(c: dict) -> bool:
    return _native(c["layer"], c) and c["dropout"] == 0


def bidirectional_keras_layer(self):
    c = self.config
    inner = LAYERS.get(c["layer"])
    own = {p.name: p for p in inner.PARAMS}
    required = [c[name] for name in inner.KERAS_REQUIRED]
    options = {
        name: value
        for name, value in Layer.keras_layer(self)[1].items()
        if name in own and name not in inner.KERAS_REQUIRED
    }
    args = {"layer": Source(f"layers.{c['layer']}({py_arguments(required, options)})")}
    if c["merge_mode"] != "concat":
        args["merge_mode"] = c["merge_mode"]
    return "Bidirectional", args


def bidirectional_torch_module(self, input_shapes):
    c, n_in = self.config, input_shapes[0][-1]
    if _bidirectional_native(c):
        return _native_module(c["layer"], c, n_in, bidirectional=True)
    forward = _recurrent_options(c["layer"], c, n_in, backwards=False)
    backward = _recurrent_options(c["layer"], c, n_in, backwards=True)
    merge = "" if c["merge_mode"] == "concat" else f", merge_mode={py_str(c['merge_mode'])}"
    return f"Bidirectional({forward}, {backward}{merge})"


def bidirectional_torch_forward(self, module, args, input_shapes):
    c = self.config
    if not _bidirectional_native(c):
        return f"{module}({args[0]})"
    out = f"{module}({_native_input(c['layer'], c, args[0], backwards=False)})[0]"
    if c["merge_mode"] == "concat" and c["return_sequences"]:
        return out  # torch aligns the backward direction with the input, as Keras does
    last = not c["return_sequences"]
    return f"merge_directions({out}, {py_str(c['merge_mode'])}, last_step={last})"


def bidirectional_torch_state(self, weights, input_shapes):
    c, state = self.config, {}
    for prefix, suffix, attribute in _DIRECTIONS:
        own = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        if _bidirectional_native(c):
            state.update(_native_state(c["layer"], own, suffix))
        else:
            state.update({f"{attribute}.{k}": v for k, v in own.items()})
    return state


def bidirectional_torch_weights(self, module, input_shapes):
    c, refs = self.config, {}
    for prefix, suffix, attribute in _DIRECTIONS:
        if _bidirectional_native(c):
            own = _native_refs(c["layer"], c, module, suffix)
        else:
            own = _loop_refs(f"{module}.{attribute}")
        refs.update({prefix + name: targets for name, targets in own.items()})
    return refs


# -- registration ---------------------------------------------------------------------------

_CONV = {
    "KERAS_REQUIRED": ("filters", "kernel_size"),
    "torch_module": conv_torch_module,
    "torch_forward": conv_torch_forward,
    "torch_state": conv_torch_state,
    "torch_weights": conv_torch_weights,
}
_POOLING = {"torch_forward": pooling_torch_forward}
_AVERAGE_POOLING = {"KERAS_REQUIRED": ("pool_size",), **_POOLING}  # Keras gives it no default
_GLOBAL_POOLING = {"torch_forward": global_pooling_torch_forward}
_RECURRENT = {
    "KERAS_REQUIRED": ("units",),
    "torch_module": recurrent_torch_module,
    "torch_forward": recurrent_torch_forward,
    "torch_state": recurrent_torch_state,
    "torch_weights": recurrent_torch_weights,
}

PENDING: dict[str, dict] = {
    "Conv1D": _CONV,
    "Conv2D": _CONV,
    "Conv2DTranspose": {
        **_CONV,
        "torch_module": conv_transpose_torch_module,
        "torch_forward": conv_transpose_torch_forward,
        "torch_state": conv_transpose_torch_state,
    },
    "UpSampling1D": {"torch_forward": upsampling1d_torch_forward},
    "UpSampling2D": {"torch_forward": upsampling2d_torch_forward},
    "MaxPooling1D": _POOLING,
    "MaxPooling2D": _POOLING,
    "AveragePooling1D": _AVERAGE_POOLING,
    "AveragePooling2D": _AVERAGE_POOLING,
    "GlobalMaxPooling1D": _GLOBAL_POOLING,
    "GlobalMaxPooling2D": _GLOBAL_POOLING,
    "GlobalAveragePooling1D": _GLOBAL_POOLING,
    "GlobalAveragePooling2D": _GLOBAL_POOLING,
    "SimpleRNN": _RECURRENT,
    "LSTM": _RECURRENT,
    "GRU": _RECURRENT,
    "Bidirectional": {
        "keras_layer": bidirectional_keras_layer,
        "torch_module": bidirectional_torch_module,
        "torch_forward": bidirectional_torch_forward,
        "torch_state": bidirectional_torch_state,
        "torch_weights": bidirectional_torch_weights,
    },
}


def register() -> None:
    """Put each hook onto its block's class, unless the class defines that hook itself."""
    for type_name, hooks in PENDING.items():
        cls = LAYERS.get(type_name)
        for name, hook in hooks.items():
            if name == "KERAS_REQUIRED":
                if not cls.KERAS_REQUIRED:
                    cls.KERAS_REQUIRED = hook
            elif getattr(cls, name) is getattr(Layer, name):
                setattr(cls, name, hook)


register()

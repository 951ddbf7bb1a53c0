"""Helpers for the source the block exporters write (see :mod:`nodenet.export.blocks`).

An exporter turns a block's settings into Python source for Keras 3 and PyTorch;
this module holds what several exporters share: values written as source, Keras
regularizers, torch activations, Keras's initializers in torch, and the small
helper functions the generated PyTorch code may call (channels-last moves,
Keras's initializers). Nothing here imports Keras or PyTorch: the source is
text, checked by the export tests against both libraries.
"""

from __future__ import annotations

import json
import math
from typing import Any

from nodenet.engine.initializers import UNIT_FORGET_BIAS, resolve, variance_scaling_config


class Source(str):
    """Python source standing for a value in generated code: its ``repr`` is itself."""

    def __repr__(self) -> str:
        return str(self)


def literal(value: Any) -> str:
    """``value`` (JSON-like) as Python source; lists become tuples, as Keras writes sizes."""
    if isinstance(value, Source):
        return str(value)
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, str):  # repr escapes what JSON would leave raw (lone surrogates)
        return json.dumps(value, ensure_ascii=False) if value.isprintable() else repr(value)
    if isinstance(value, list | tuple):
        items = [literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as source")


def arguments(positional: list[Any], keywords: dict[str, Any]) -> str:
    """``a, b, key=value`` for a call."""
    parts = [literal(v) for v in positional]
    parts += [f"{k}={literal(v)}" for k, v in keywords.items()]
    return ", ".join(parts)


def keras_regularizer(value: dict | None) -> Source | None:
    """A nodenet regularizer ``{"l1": a, "l2": b}`` as ``keras.regularizers`` source."""
    if value is None:
        return None
    l1, l2 = value.get("l1", 0.0), value.get("l2", 0.0)
    if l1 and not l2:
        return Source(f"keras.regularizers.L1({l1!r})")
    if l2 and not l1:
        return Source(f"keras.regularizers.L2({l2!r})")
    return Source(f"keras.regularizers.L1L2(l1={l1!r}, l2={l2!r})")


def keras_initializer(value: Any) -> Any:
    """A nodenet initializer as a Keras argument: a name stays a name; an object becomes
    ``keras.initializers.VarianceScaling(scale=2.0, mode="fan_out")`` source."""
    if value == "constant":  # Keras 3.15 cannot build Constant from its name alone
        return Source("keras.initializers.Constant(0.0)")
    if not isinstance(value, dict):
        return value
    kind, _ = resolve(value)
    return Source(f"keras.initializers.{kind.class_name}({arguments([], value['config'])})")


_KERAS_LOSSES = {
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
}


def keras_loss(output_config: dict) -> Any:
    """An Output's loss as ``compile`` takes it: its name, or
    ``keras.losses.CategoricalCrossentropy(from_logits=True)`` with options set."""
    options = {
        k: output_config[k]
        for k, default in (("from_logits", False), ("label_smoothing", 0.0))
        if output_config.get(k, default) != default
    }
    if not options:
        return output_config["loss"]
    name = _KERAS_LOSSES[output_config["loss"]]
    return Source(f"keras.losses.{name}({arguments([], options)})")


# -- PyTorch ---------------------------------------------------------------------

_TORCH_ACTIVATIONS = {
    "relu": "torch.relu({})",
    "sigmoid": "torch.sigmoid({})",
    "tanh": "torch.tanh({})",
    "softmax": "torch.softmax({}, dim=-1)",
    "elu": "F.elu({})",
    "selu": "F.selu({})",
    "softplus": "F.softplus({})",
    "softsign": "F.softsign({})",
    "leaky_relu": "F.leaky_relu({}, 0.2)",  # Keras's default negative slope
    "gelu": "F.gelu({})",  # exact (erf), as keras.activations.gelu
    "swish": "F.silu({})",
    "silu": "F.silu({})",
    "relu6": "F.relu6({})",
    "celu": "F.celu({})",
    "squareplus": "squareplus({})",  # helpers of nodenet.export.torch_helpers
    "soft_shrink": "F.softshrink({}, 0.5)",
    "hard_shrink": "F.hardshrink({}, 0.5)",
    "sparse_plus": "sparse_plus({})",
    "tanh_shrink": "F.tanhshrink({})",
    "sparse_sigmoid": "sparse_sigmoid({})",
    "exponential": "torch.exp({})",
    "hard_sigmoid": "F.hardsigmoid({})",  # relu6(x + 3) / 6, as Keras 3
    "hard_silu": "F.hardswish({})",
    "hard_swish": "F.hardswish({})",
    "hard_tanh": "F.hardtanh({})",
    "log_sigmoid": "F.logsigmoid({})",
    "log_softmax": "torch.log_softmax({}, dim=-1)",
    "mish": "F.mish({})",
    "sparsemax": "sparsemax({})",
}


def torch_activation(name: str, expr: str) -> str:
    """``expr`` passed through activation ``name`` (Keras semantics) in torch."""
    if name == "linear":
        return expr
    return _TORCH_ACTIVATIONS[name].format(expr)


def channels_first(expr: str) -> str:
    """A channels-last tensor expression moved to torch's channels-first layout."""
    return f"channels_first({expr})"


def channels_last(expr: str) -> str:
    return f"channels_last({expr})"


TORCH_HELPERS: dict[str, str] = {}  # helper name -> its source, emitted where the code calls it


def torch_helper(name: str, source: str) -> None:
    """Register a helper (function or class) the generated PyTorch code may call by ``name``."""
    TORCH_HELPERS[name] = source.strip("\n") + "\n"


torch_helper(
    "channels_first",
    '''
def channels_first(x: torch.Tensor) -> torch.Tensor:
    """(batch, *spatial, channels) -> (batch, channels, *spatial), the layout torch's ops use."""
    return x.movedim(-1, 1)
''',
)
torch_helper(
    "channels_last",
    '''
def channels_last(x: torch.Tensor) -> torch.Tensor:
    """(batch, channels, *spatial) -> (batch, *spatial, channels), the layout Keras keeps."""
    return x.movedim(1, -1)
''',
)
torch_helper(
    "variance_scaling_",
    '''
def variance_scaling_(tensor: torch.Tensor, scale: float, fan: float, distribution: str) -> None:
    """Keras's VarianceScaling: uniform, normal, or normal truncated at two standard
    deviations."""
    variance = scale / max(1.0, fan)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        nn.init.uniform_(tensor, -limit, limit)
    elif distribution == "untruncated_normal":
        nn.init.normal_(tensor, 0.0, math.sqrt(variance))
    else:
        std = math.sqrt(variance) / 0.87962566103423978
        nn.init.trunc_normal_(tensor, std=std, a=-2.0 * std, b=2.0 * std)
''',
)

torch_helper(
    "identity_",
    '''
def identity_(tensor: torch.Tensor, gain: float) -> None:
    """Keras's Identity initializer: gain times the identity matrix (torch's transposed
    layout of a Keras kernel is the identity too)."""
    with torch.no_grad():
        nn.init.eye_(tensor).mul_(gain)
''',
)


def _fan(config: dict, shape: tuple[int, ...]) -> str:
    """The fan of Keras's VarianceScaling for a weight of Keras ``shape``, as source."""
    from nodenet.engine.initializers import compute_fans

    fan_in, fan_out = (
        int(f) for f in compute_fans(shape, config["input_axes"], config["output_axes"])
    )
    if config["mode"] == "fan_in":
        return str(fan_in)
    if config["mode"] == "fan_out":
        return str(fan_out)
    return f"({fan_in} + {fan_out}) / 2"


def _gain(config: dict) -> str:
    gain = config.get("gain", 1.0)
    return "" if gain == 1.0 else f", gain={gain!r}"


def torch_init(initializer: Any, target: str, keras_shape: tuple[int, ...]) -> list[str]:
    """Statements drawing ``target`` (a torch tensor expression) as Keras's ``initializer``
    (a name or an object with arguments) draws a weight of ``keras_shape``: same
    distribution, fans taken from the Keras shape.

    ``(unit_forget_bias, INNER)`` (an LSTM bias) draws INNER, then sets the forget
    gate's quarter to ones.
    """
    if isinstance(initializer, tuple) and initializer[:1] == (UNIT_FORGET_BIAS,):
        (size,) = keras_shape
        units = size // 4
        inner = torch_init(initializer[1], target, keras_shape)
        forget = _slice(target, f"{units}:{2 * units}")
        return [*inner, f"nn.init.ones_({forget})  # unit_forget_bias"]
    note = initializer if isinstance(initializer, str) else initializer["class_name"]
    scaling = variance_scaling_config(initializer)
    if scaling is not None:
        fan = _fan(scaling, keras_shape)
        scale, distribution = scaling["scale"], scaling["distribution"]
        return [f'variance_scaling_({target}, {scale!r}, {fan}, "{distribution}")  # {note}']
    kind, c = resolve(initializer)
    simple = {
        "Zeros": f"nn.init.zeros_({target})",
        "Ones": f"nn.init.ones_({target})",
        "Constant": f"nn.init.constant_({target}, {c.get('value')!r})",
        "Orthogonal": f"nn.init.orthogonal_({target}{_gain(c)})",
        "RandomUniform": f"nn.init.uniform_({target}, {c.get('minval')!r}, {c.get('maxval')!r})",
        "RandomNormal": f"nn.init.normal_({target}, {c.get('mean')!r}, {c.get('stddev')!r})",
        "TruncatedNormal": (
            f"nn.init.trunc_normal_({target}, {c.get('mean')!r}, {c.get('stddev')!r},"
            f" {c.get('mean', 0) - 2 * c.get('stddev', 0)!r},"
            f" {c.get('mean', 0) + 2 * c.get('stddev', 0)!r})"
        ),
        "Identity": f"identity_({target}, {c.get('gain')!r})",
    }
    return [simple[kind.class_name]]


def _slice(target: str, rows: str) -> str:
    """``target[rows]``, or the rows of a column selection ``t[:, -1]`` -> ``t[rows, -1]``."""
    if target.endswith("]") and "[:, " in target:
        head, _, column = target.rpartition("[:, ")
        return f"{head}[{rows}, {column}"
    return f"{target}[{rows}]"


def torch_pad(pads: list[tuple[int, int]]) -> str:
    """``F.pad``'s padding for channels-first spatial (before, after) pads: last axis first."""
    flat = [p for pair in reversed(pads) for p in pair]
    return literal(flat)


def one_or_tuple(values: list[int] | tuple[int, ...]) -> Any:
    """``3`` for ``(3, 3)``: torch takes one int for every spatial axis."""
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values

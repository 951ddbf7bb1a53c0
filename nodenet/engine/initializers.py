"""Weight initializers: every built-in Keras 3 initializer, with its arguments.

A block's initializer setting is either a **name** (``"glorot_uniform"``, ``"zeros"``:
Keras's snake-case names, each the initializer at its default arguments) or an
**object** close to Keras's serialized form, holding the arguments that differ from
the defaults::

    {"class_name": "VarianceScaling",
     "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}}

:func:`normalize` checks a value strictly (the class, each argument's name, type and
range) and returns its one canonical form: the Keras class name, only the arguments
not at their default, and a plain name when none is left
(``{"class_name": "HeNormal", "config": {}}`` is ``"he_normal"``). No code is ever
run: the classes are a fixed table. ``seed`` is not kept: nodenet draws every weight
from the run's seed (``training.seed``), so ``"seed": null`` is accepted and dropped
and a number is refused.

Fans follow ``keras.src.initializers.random_initializers.compute_fans``: for a kernel
of shape (..., in, out) the receptive field is the product of the leading dimensions
(``input_axes`` / ``output_axes``, when both are given, name the axes instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nodenet.errors import ParamError, brief

Value = str | dict  # a block's initializer setting (normalized)
Config = dict[str, Any]  # every argument of an initializer, defaults filled in


class InitializerError(ParamError):
    """An initializer value that is not one nodenet (and Keras) knows."""


# -- fans and distributions ---------------------------------------------------------


def compute_fans(
    shape: tuple[int, ...], input_axes: list | None = None, output_axes: list | None = None
) -> tuple[float, float]:
    if input_axes is not None and output_axes is not None:
        return float(math.prod(shape[a] for a in input_axes)), float(
            math.prod(shape[a] for a in output_axes)
        )
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def fan(config: Config, shape: tuple[int, ...]) -> float:
    """The fan VarianceScaling divides by: ``max(1, fan_in | fan_out | their mean)``."""
    fan_in, fan_out = compute_fans(shape, config["input_axes"], config["output_axes"])
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
    return max(1.0, n[config["mode"]])


def _truncated_normal(shape, rng, mean, std):
    """Normal draws re-drawn until within two standard deviations, as Keras's."""
    out = rng.normal(0.0, 1.0, size=shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.normal(0.0, 1.0, size=int(bad.sum()))
        bad = np.abs(out) > 2
    return out * std + mean


def _variance_scaling(shape, rng, c):
    var = c["scale"] / fan(c, shape)
    if c["distribution"] == "uniform":
        limit = math.sqrt(3.0 * var)
        return rng.uniform(-limit, limit, size=shape)
    if c["distribution"] == "untruncated_normal":
        return rng.normal(0.0, math.sqrt(var), size=shape)
    # truncated at two standard deviations; the std is corrected for the truncation
    return _truncated_normal(shape, rng, 0.0, math.sqrt(var) / 0.87962566103423978)


def _orthogonal(shape, rng, c):
    rows = math.prod(shape[:-1])
    cols = shape[-1]
    flat = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return c["gain"] * q.reshape(shape)


def _identity(shape, rng, c):
    if len(shape) != 2:
        raise InitializerError(
            f"the Identity initializer needs a 2-D weight, got shape {tuple(shape)}"
        )
    return c["gain"] * np.eye(*shape)


# -- the table of initializers ------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    """One argument of an initializer: its name, default and check (value -> value)."""

    name: str
    default: Any
    check: Callable[[Any], Any]
    expected: str


def _number(low: float | None = None, exclusive: bool = False) -> Callable[[Any], Any]:
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        number = float(value)
        if not math.isfinite(number) or (
            low is not None and (number < low or (exclusive and number == low))
        ):
            raise ValueError
        return number

    return check


def _one_of(*choices: str, aliases: dict | None = None) -> Callable[[Any], Any]:
    def check(value):
        if not isinstance(value, str):
            raise ValueError
        value = (aliases or {}).get(value, value)
        if value not in choices:
            raise ValueError
        return value

    return check


def _axes(value):
    if value is None:
        return None
    ok = isinstance(value, list | tuple) and 0 < len(value) <= 32
    if not ok or not all(isinstance(a, int) and not isinstance(a, bool) for a in value):
        raise ValueError
    if not all(-32 <= a < 32 for a in value):
        raise ValueError
    return list(value)


def _float_arg(name, default, low=None, exclusive=False):
    bound = "" if low is None else f" {'>' if exclusive else '>='} {low:g}"
    return Arg(name, default, _number(low, exclusive), f"a finite number{bound}")


_AXES = (
    Arg("input_axes", None, _axes, "null or a list of axis indices"),
    Arg("output_axes", None, _axes, "null or a list of axis indices"),
)
_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


@dataclass(frozen=True)
class Kind:
    """A Keras initializer class: its names, arguments and how it draws a weight."""

    class_name: str
    name: str  # Keras's snake-case name
    args: tuple[Arg, ...]
    draw: Callable[[tuple[int, ...], np.random.Generator, Config], np.ndarray]
    fixed: Config | None = None  # a VarianceScaling preset: scale, mode, distribution

    def defaults(self) -> Config:
        return {a.name: a.default for a in self.args}


def _preset(class_name, name, scale, mode, distribution):
    fixed = {"scale": scale, "mode": mode, "distribution": distribution}
    return Kind(
        class_name,
        name,
        _AXES,
        lambda s, r, c: _variance_scaling(s, r, {**c, **fixed}),
        fixed,
    )


KINDS: dict[str, Kind] = {
    k.class_name: k
    for k in (
        _preset("GlorotUniform", "glorot_uniform", 1.0, "fan_avg", "uniform"),
        _preset("GlorotNormal", "glorot_normal", 1.0, "fan_avg", "truncated_normal"),
        _preset("HeUniform", "he_uniform", 2.0, "fan_in", "uniform"),
        _preset("HeNormal", "he_normal", 2.0, "fan_in", "truncated_normal"),
        _preset("LecunUniform", "lecun_uniform", 1.0, "fan_in", "uniform"),
        _preset("LecunNormal", "lecun_normal", 1.0, "fan_in", "truncated_normal"),
        Kind(
            "Constant",
            "constant",
            (_float_arg("value", 0.0),),
            lambda s, r, c: np.full(s, c["value"]),
        ),
        Kind("Zeros", "zeros", (), lambda s, r, c: np.zeros(s)),
        Kind("Ones", "ones", (), lambda s, r, c: np.ones(s)),
        Kind("Identity", "identity", (_float_arg("gain", 1.0),), _identity),
        Kind("Orthogonal", "orthogonal", (_float_arg("gain", 1.0),), _orthogonal),
        Kind(
            "RandomNormal",
            "random_normal",
            (_float_arg("mean", 0.0), _float_arg("stddev", 0.05, 0.0)),
            lambda s, r, c: r.normal(c["mean"], c["stddev"], size=s),
        ),
        Kind(
            "RandomUniform",
            "random_uniform",
            (_float_arg("minval", -0.05), _float_arg("maxval", 0.05)),
            lambda s, r, c: r.uniform(c["minval"], c["maxval"], size=s),
        ),
        Kind(
            "TruncatedNormal",
            "truncated_normal",
            (_float_arg("mean", 0.0), _float_arg("stddev", 0.05, 0.0)),
            lambda s, r, c: _truncated_normal(s, r, c["mean"], c["stddev"]),
        ),
        Kind(
            "VarianceScaling",
            "variance_scaling",
            (
                _float_arg("scale", 1.0, 0.0, exclusive=True),
                Arg("mode", "fan_in", _one_of(*_MODES), "one of " + ", ".join(_MODES)),
                Arg(
                    "distribution",
                    "truncated_normal",
                    _one_of(*_DISTRIBUTIONS, aliases={"normal": "truncated_normal"}),
                    "one of " + ", ".join(_DISTRIBUTIONS),
                ),
                *_AXES,
            ),
            _variance_scaling,
        ),
    )
}
BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS.values()}
ALIASES = {"uniform": "random_uniform"}  # keras.layers.Embedding's default is "uniform"

NAMES: tuple[str, ...] = tuple(BY_NAME)
"""The plain names a block's initializer setting takes (``"uniform"`` is accepted too)."""


# -- checking and resolving values ------------------------------------------------------


def _kind_of(class_name: Any) -> Kind:
    kind = KINDS.get(class_name) if isinstance(class_name, str) else None
    if kind is None and isinstance(class_name, str):
        kind = BY_NAME.get(class_name)
    if kind is None:
        known = ", ".join(KINDS)
        raise InitializerError(f"class_name must be one of {known} (got {brief(class_name)})")
    return kind


def normalize(value: Any) -> Value:
    """``value`` checked and in canonical form; raises :class:`InitializerError`
    naming the argument at fault."""
    if isinstance(value, str):
        if value in BY_NAME or value in ALIASES:
            return value
        names = ", ".join(NAMES)
        raise InitializerError(f"must be one of {names}, or an object (got {brief(value)})")
    if not isinstance(value, dict) or "class_name" not in value:
        raise InitializerError(
            f'must be a name or {{"class_name": ..., "config": {{...}}}} (got {brief(value)})'
        )
    extra = set(value) - {"class_name", "config"}
    if extra:
        raise InitializerError(f"has no key {brief(sorted(extra)[0])} (keys: class_name, config)")
    kind = _kind_of(value["class_name"])
    given = value.get("config", {})
    if not isinstance(given, dict):
        raise InitializerError(f"{kind.class_name} config must be an object (got {brief(given)})")
    args = {a.name: a for a in kind.args}
    config = {}
    for key, raw in given.items():
        if key == "seed":
            if raw is not None:
                raise InitializerError(
                    f"{kind.class_name} seed is not kept: nodenet draws every weight from"
                    " the run's seed (training.seed); leave it out",
                )
            continue
        if key not in args:
            names = ", ".join(args) or "none"
            raise InitializerError(
                f"{kind.class_name} has no argument {brief(key)} (it has: {names})"
            )
        try:
            checked = args[key].check(raw)
        except ValueError:
            raise InitializerError(
                f"{kind.class_name} {key} must be {args[key].expected} (got {brief(raw)})"
            ) from None
        if checked != args[key].default:
            config[key] = checked
    if ("input_axes" in config) != ("output_axes" in config):
        raise InitializerError(f"{kind.class_name} needs input_axes and output_axes together")
    if (
        kind.class_name == "RandomUniform"
        and _full(kind, config)["minval"] > _full(kind, config)["maxval"]
    ):
        raise InitializerError("RandomUniform minval must not exceed maxval")
    if not config:
        return kind.name
    return {"class_name": kind.class_name, "config": config}


def _full(kind: Kind, config: Config) -> Config:
    return {**kind.defaults(), **config}


def resolve(value: Value) -> tuple[Kind, Config]:
    """The initializer class of a (normalized) value and every argument, defaults filled."""
    if isinstance(value, str):
        return BY_NAME[ALIASES.get(value, value)], BY_NAME[ALIASES.get(value, value)].defaults()
    kind = KINDS[value["class_name"]]
    return kind, _full(kind, value.get("config", {}))


def variance_scaling_config(value: Value) -> Config | None:
    """Scale, mode, distribution and axes of a VarianceScaling-family value, else None."""
    kind, config = resolve(value)
    if kind.fixed is not None:
        return {**config, **kind.fixed}
    return config if kind.class_name == "VarianceScaling" else None


# -- drawing ---------------------------------------------------------------------------

UNIT_FORGET_BIAS = "unit_forget_bias"


def unit_forget_bias(inner: Value) -> tuple[str, Value]:
    """The LSTM bias of Keras's ``unit_forget_bias=True``, drawn with ``inner``."""
    return (UNIT_FORGET_BIAS, inner)


def initialize(
    value: Value | tuple,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    dtype,
    where: str = "",
) -> np.ndarray:
    """A new array of ``shape`` drawn by initializer ``value`` (a name or an object).

    :func:`unit_forget_bias` ``(INNER)`` is the LSTM bias of Keras's
    ``unit_forget_bias=True``: ``INNER`` for the input gate, ones for the forget gate,
    ``INNER`` for the cell and output gates (shape ``(4 * units,)``). ``where``
    (``"dense_1: kernel"``) starts the message of an :class:`InitializerError`.
    """
    try:
        return _draw(value, tuple(shape), rng, dtype)
    except InitializerError as err:
        raise InitializerError(f"{where}: {err}" if where else str(err), err.param) from None


def _draw(value, shape, rng, dtype):
    if isinstance(value, tuple) and value[:1] == (UNIT_FORGET_BIAS,):
        inner = value[1]
        (size,) = shape
        units = size // 4
        return np.concatenate(
            [
                _draw(inner, (units,), rng, dtype),
                np.ones(units, dtype=dtype),
                _draw(inner, (2 * units,), rng, dtype),
            ]
        )
    kind, config = resolve(normalize(value))
    if config.get("input_axes") is not None:
        rank = len(shape)
        if not all(-rank <= a < rank for a in (*config["input_axes"], *config["output_axes"])):
            raise InitializerError(
                f"{kind.class_name} axes {config['input_axes']}, {config['output_axes']}"
                f" do not fit a weight of shape {shape}"
            )
    # reshaped: ascontiguousarray makes a scalar weight (shape ()) 1-D
    return np.ascontiguousarray(kind.draw(shape, rng, config), dtype=dtype).reshape(shape)

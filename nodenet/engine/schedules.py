"""Learning-rate schedules and ReduceLROnPlateau, with Keras 3 formulas.

A schedule is a callable ``step -> learning rate`` built from a config such as
``{"schedule": "ExponentialDecay", "initial_learning_rate": 0.01,
"decay_steps": 1000, "decay_rate": 0.96}``; the optimizer calls it with its
``iterations`` (0 for the first update). Arguments are named as in
``keras.optimizers.schedules``; Keras requires ``initial_learning_rate``,
``decay_steps``, ``decay_rate`` (and ``boundaries``/``values``) while nodenet
fills the form defaults below, so an exporter must write every argument.
Values are computed in float32, as Keras does with ``floatx``.

:data:`REDUCE_LR_PARAMS` are the settings of ``keras.callbacks.ReduceLROnPlateau``, which
:class:`nodenet.engine.callbacks.ReduceLROnPlateau` reproduces.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nodenet.engine.params import Bool, Choice, Float, Int, NumberList, Param, Text, json_repr
from nodenet.engine.registry import Registry
from nodenet.errors import ParamError

_F32 = np.float32

# -- descriptors the shared params module lacks ---------------------------------


def field_error(spec: Param, value: Any, err: ParamError, field: str) -> ParamError:
    """``err`` restated under ``field`` (``training.optimizer.beta_1 must be ...``)."""
    if getattr(spec, "nested", False):  # the message already names the sub-field
        return ParamError(f"{field}.{err}", f"{field}.{err.param or spec.name}")
    text = f"{field}.{spec.name} must be {spec.describe()} (got {json_repr(value)})"
    return ParamError(text, f"{field}.{spec.name}")


def check_fields(
    specs: tuple[Param, ...], config: dict, field: str, ignore: tuple[str, ...] = ()
) -> tuple[dict[str, Any], list[ParamError]]:
    """Check ``config`` against ``specs``: every value (defaults filled) and every problem.

    Keys in ``ignore`` (such as ``name``) are left to the caller.
    """
    known = {spec.name: spec for spec in specs}
    errors = [
        ParamError(
            f"{field} has no parameter {key!r} (it has: {', '.join(known) or 'none'})",
            f"{field}.{key}",
        )
        for key in config
        if key not in known and key not in ignore
    ]
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in config:
            values[spec.name] = spec.default
            continue
        try:
            values[spec.name] = spec.coerce(config[spec.name])
        except ParamError as err:
            errors.append(field_error(spec, config[spec.name], err, field))
    return values, errors


# -- schedules -------------------------------------------------------------------

SCHEDULES: Registry = Registry("learning-rate schedule")


def _initial(default: float = 0.01) -> Float:
    return Float("initial_learning_rate", default, "learning rate at step 0", min=0.0)


def _decay_steps(default: int = 1000) -> Int:
    return Int("decay_steps", default, "steps over which the rate decays", min=1)


class Schedule:
    """A learning rate as a function of the optimizer step."""

    NAME: ClassVar[str] = ""
    PARAMS: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, config: dict[str, Any]):
        self.config = dict(config)

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"schedule": self.NAME, **self.config}

    def __repr__(self) -> str:
        return f"{self.NAME}({self.config})"


def _register(cls):
    SCHEDULES.register(cls.NAME)(cls)
    return cls


@_register
class ExponentialDecay(Schedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; the exponent
    is floored when ``staircase``."""

    NAME = "ExponentialDecay"
    PARAMS = (
        _initial(),
        _decay_steps(),
        Float("decay_rate", 0.96, "factor applied every decay_steps", min=0.0),
        Bool("staircase", False, "decay in whole steps of decay_steps"),
    )

    def __call__(self, step: int) -> float:
        c = self.config
        p = _F32(step) / _F32(c["decay_steps"])
        if c["staircase"]:
            p = np.floor(p)
        return float(_F32(c["initial_learning_rate"]) * _F32(c["decay_rate"]) ** p)


@_register
class InverseTimeDecay(Schedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``; the ratio
    ``step / decay_steps`` is floored when ``staircase``."""

    NAME = "InverseTimeDecay"
    PARAMS = (
        _initial(),
        _decay_steps(),
        Float("decay_rate", 0.5, "how fast the rate falls", min=0.0),
        Bool("staircase", False, "decay in whole steps of decay_steps"),
    )

    def __call__(self, step: int) -> float:
        c = self.config
        p = _F32(step) / _F32(c["decay_steps"])
        if c["staircase"]:
            p = np.floor(p)
        return float(_F32(c["initial_learning_rate"]) / (_F32(1) + _F32(c["decay_rate"]) * p))


@_register
class PiecewiseConstantDecay(Schedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last."""

    NAME = "PiecewiseConstantDecay"
    PARAMS = (
        NumberList(
            "boundaries",
            [1000],
            "steps where the rate changes",
            integer=True,
            increasing=True,
            min=0,
        ),
        NumberList("values", [0.01, 0.001], "rates, one more than boundaries", min=0.0),
    )

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        if len(config["values"]) != len(config["boundaries"]) + 1:
            raise ParamError(
                f"values must have one more entry than boundaries (got {len(config['values'])}"
                f" values for {len(config['boundaries'])} boundaries)",
                "values",
            )

    def __call__(self, step: int) -> float:
        index = bisect.bisect_left(self.config["boundaries"], step)
        return float(_F32(self.config["values"][index]))


@_register
class CosineDecay(Schedule):
    """Cosine decay with an optional linear warmup (Keras 3).

    Without ``warmup_target``: ``lr0 * ((1 - alpha) * c + alpha)`` with
    ``c = 0.5 (1 + cos(pi min(step, decay_steps) / decay_steps))``.
    With it: for ``step < warmup_steps`` the rate goes linearly from
    ``initial_learning_rate`` to ``warmup_target``; afterwards it decays from
    ``warmup_target`` as above, counting steps from the end of the warmup.
    """

    NAME = "CosineDecay"
    PARAMS = (
        _initial(),
        _decay_steps(),
        Float("alpha", 0.0, "final rate as a fraction of the starting one", min=0.0, max=1.0),
        Float(
            "warmup_target",
            None,
            "rate reached after the warmup (null: no warmup)",
            min=0.0,
            optional=True,
        ),
        Int("warmup_steps", 0, "steps of linear warmup", min=0),
    )

    def __call__(self, step: int) -> float:
        c = self.config
        lr0, decay_steps, s = _F32(c["initial_learning_rate"]), _F32(c["decay_steps"]), _F32(step)
        if c["warmup_target"] is None:
            return float(self._decay(min(s, decay_steps), decay_steps, lr0))
        target, warmup = _F32(c["warmup_target"]), _F32(c["warmup_steps"])
        s = min(s, decay_steps + warmup)
        if s < warmup:
            return float((target - lr0) * (s / warmup) + lr0)
        return float(self._decay(s - warmup, decay_steps, target))

    def _decay(self, step, decay_steps, start):
        cosine = _F32(0.5) * (_F32(1) + np.cos(_F32(math.pi) * (step / decay_steps)))
        alpha = _F32(self.config["alpha"])
        return start * ((_F32(1) - alpha) * cosine + alpha)


SCHEDULE_PARAMS: dict[str, tuple[Param, ...]] = {
    name: cls.PARAMS for name, cls in SCHEDULES.items()
}


def check_schedule(config: Any, field: str) -> tuple[dict[str, Any] | None, list[ParamError]]:
    """The normalized schedule config (``schedule`` key first) and every problem."""
    names = ", ".join(json_repr(n) for n in SCHEDULES)
    if not isinstance(config, dict):
        return None, [ParamError(f"{field} must be a number or a schedule object", field)]
    name = config.get("schedule")
    if name not in SCHEDULES:
        text = f"{field}.schedule must be one of {names} (got {json_repr(name)})"
        return None, [ParamError(text, f"{field}.schedule")]
    cls = SCHEDULES.get(name)
    values, errors = check_fields(cls.PARAMS, config, field, ignore=("schedule",))
    if not errors:
        try:
            cls(values)
        except ParamError as err:
            errors.append(ParamError(f"{field}.{err}", f"{field}.{err.param}"))
    return {"schedule": name, **values}, errors


def make_schedule(config: dict, field: str = "learning_rate") -> Schedule:
    """A schedule from its config; raises :class:`ParamError` naming ``field.<key>``."""
    values, errors = check_schedule(config, field)
    if errors:
        raise errors[0]
    return SCHEDULES.get(values.pop("schedule"))(values)


@dataclass(frozen=True)
class LearningRate(Param):
    """An optimizer's ``learning_rate``: a number >= 0 or a schedule object."""

    kind: ClassVar[str] = "learning_rate"
    nested: ClassVar[bool] = True  # errors name the sub-field themselves

    def coerce(self, value: Any) -> Any:
        if isinstance(value, dict):
            values, errors = check_schedule(value, self.name)
            if errors:
                raise errors[0]
            return values
        number = Float(self.name, self.default, min=0.0)
        try:
            return number.coerce(value)
        except ParamError:
            text = f"{self.name} must be {self.describe()} (got {json_repr(value)})"
            raise ParamError(text, self.name) from None

    def describe(self) -> str:
        return "a finite number >= 0 or a schedule object"


# -- ReduceLROnPlateau ---------------------------------------------------------------

REDUCE_LR_PARAMS: tuple[Param, ...] = (
    Text("monitor", "val_loss", "logged quantity to watch"),
    Float("factor", 0.1, "new rate = rate * factor", min=0.0, max=1.0, max_exclusive=True),
    Int("patience", 10, "epochs without improvement before reducing", min=0),
    Choice(
        "mode",
        "auto",
        "whether the monitored value should fall or rise",
        choices=("auto", "min", "max"),
    ),
    Float("min_delta", 1e-4, "smallest change that counts as an improvement", min=0.0),
    Int("cooldown", 0, "epochs to wait after a reduction", min=0),
    Float("min_lr", 0.0, "lower bound on the rate", min=0.0),
)


def __getattr__(name: str):
    """``ReduceLROnPlateau`` moved to :mod:`nodenet.engine.callbacks` (it is a callback);
    still importable from here."""
    if name == "ReduceLROnPlateau":
        from nodenet.engine.callbacks import ReduceLROnPlateau

        return ReduceLROnPlateau
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
